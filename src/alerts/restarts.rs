//! Restarts seen across polls, for `container_restarts`: a container that entered
//! `restarting`, or whose "Up" time is shorter than the time since our last poll saw it
//! running (it restarted in between). Counted per container over the last 10 minutes, so a
//! restart loop shows however short each run is. State across polls, but no clock of its own.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::model::ContainerSample;
use crate::parse::docker_ps::up_seconds;

/// How far back restarts count.
pub const WINDOW_SECS: i64 = 600;

#[derive(Debug)]
struct Seen {
    at: DateTime<Utc>,
    running: bool,
    restarting: bool,
    restarts: VecDeque<DateTime<Utc>>,
}

/// Every container's last observation and its recent restarts.
#[derive(Debug, Default)]
pub struct RestartTracker {
    seen: HashMap<(Uuid, String), Seen>,
}

impl RestartTracker {
    /// Records one poll of a server's containers and returns each one's restarts within the
    /// window, by name. Containers no longer listed are forgotten.
    pub fn observe(
        &mut self,
        server: Uuid,
        containers: &[ContainerSample],
        now: DateTime<Utc>,
    ) -> HashMap<String, u32> {
        let window = Duration::seconds(WINDOW_SECS);
        let mut out = HashMap::with_capacity(containers.len());
        for c in containers {
            let restarting = c.state == "restarting";
            let running = c.state == "running";
            let key = (server, c.name.clone());
            let entry = self.seen.entry(key).or_insert_with(|| Seen {
                at: now,
                running,
                restarting,
                restarts: VecDeque::new(),
            });
            let since_last = (now - entry.at).num_seconds().max(0);
            let started_since = since_last > 0
                && entry.running
                && running
                && up_seconds(&c.status_text)
                    .is_some_and(|up| i64::try_from(up).unwrap_or(i64::MAX) < since_last);
            let entered_restarting = since_last > 0 && restarting && !entry.restarting;
            if started_since || entered_restarting {
                entry.restarts.push_back(now);
            }
            while entry.restarts.front().is_some_and(|t| now - *t > window) {
                entry.restarts.pop_front();
            }
            entry.at = now;
            entry.running = running;
            entry.restarting = restarting;
            out.insert(
                c.name.clone(),
                u32::try_from(entry.restarts.len()).unwrap_or(u32::MAX),
            );
        }
        self.seen
            .retain(|(s, name), _| *s != server || out.contains_key(name.as_str()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, state: &str, status: &str) -> ContainerSample {
        ContainerSample {
            container_id: "0123456789ab".into(),
            name: name.into(),
            image: None,
            state: state.into(),
            status_text: status.into(),
            exit_code: None,
            health: None,
            cpu_percent: None,
            cpu_time_seconds: None,
            mem_used_bytes: None,
            mem_limit_bytes: None,
            mem_percent: None,
            net_rx_bytes: None,
            net_tx_bytes: None,
            block_read_bytes: None,
            block_write_bytes: None,
            pids: None,
        }
    }

    #[test]
    fn a_restart_loop_is_counted_and_ages_out() {
        let mut t = RestartTracker::default();
        let s = Uuid::new_v4();
        let t0 = Utc::now();
        let at = |secs: i64| t0 + Duration::seconds(secs);
        assert_eq!(
            t.observe(s, &[c("web", "running", "Up 3 hours")], at(0))["web"],
            0
        );
        // Up 5 seconds, 60 s after we saw it running: it restarted in between.
        assert_eq!(
            t.observe(s, &[c("web", "running", "Up 5 seconds")], at(60))["web"],
            1
        );
        assert_eq!(
            t.observe(
                s,
                &[c("web", "restarting", "Restarting (1) 2 seconds ago")],
                at(120)
            )["web"],
            2
        );
        assert_eq!(
            t.observe(
                s,
                &[c("web", "restarting", "Restarting (1) 1 second ago")],
                at(180)
            )["web"],
            2,
            "still the same restart"
        );
        assert_eq!(
            t.observe(s, &[c("web", "running", "Up 2 minutes")], at(300))["web"],
            2
        );
        assert_eq!(
            t.observe(s, &[c("web", "running", "Up 12 minutes")], at(1000))["web"],
            0,
            "older than 10 minutes"
        );
    }

    #[test]
    fn a_steady_container_never_counts() {
        let mut t = RestartTracker::default();
        let s = Uuid::new_v4();
        let t0 = Utc::now();
        for i in 0..10 {
            let up = format!("Up {} minutes", 10 + i);
            let n = t.observe(
                s,
                &[c("db", "running", &up)],
                t0 + Duration::seconds(60 * i),
            );
            assert_eq!(n["db"], 0);
        }
    }
}
