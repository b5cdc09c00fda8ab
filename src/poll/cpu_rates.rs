//! Current container CPU from cumulative CPU time. Podman's one-shot CPU% is the average since
//! the container started; the current figure comes from its cumulative CPU seconds between two
//! of our polls. Rates need two samples, so they are computed here, apart from parsing.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

use crate::model::Snapshot;

/// A container's cumulative CPU seconds at the time of a poll.
type CpuMark = (f64, Instant);

/// The last mark of every container seen, per server.
#[derive(Default)]
pub(super) struct CpuRates {
    marks: Mutex<HashMap<(Uuid, String), CpuMark>>,
}

impl CpuRates {
    /// Replaces podman's since-start CPU% with the use between this poll and the previous
    /// one (None on the first poll of a container). Docker's figure is already current: the
    /// daemon measures it over about a second before answering, and it reports no CPU time.
    pub(super) fn apply(&self, server: Uuid, snapshot: &mut Snapshot, now: Instant) {
        let Ok(mut marks) = self.marks.lock() else {
            return;
        };
        for c in &mut snapshot.containers {
            let Some(total) = c.cpu_time_seconds else {
                continue;
            };
            let key = (server, c.container_id.clone());
            c.cpu_percent = marks.get(&key).and_then(|(prev, at)| {
                let wall = now.duration_since(*at).as_secs_f64();
                (wall > 0.0 && total >= *prev)
                    .then(|| ((total - prev) / wall * 1000.0).round() / 10.0)
            });
            marks.insert(key, (total, now));
        }
        // Forget containers of this server that no longer exist.
        let live: HashSet<&str> = snapshot
            .containers
            .iter()
            .map(|c| c.container_id.as_str())
            .collect();
        marks.retain(|(sid, cid), _| *sid != server || live.contains(cid.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{ContainerSample, DockerState};

    fn snapshot(cpu_time: &[(&str, f64)]) -> Snapshot {
        Snapshot {
            taken_at: chrono::Utc::now(),
            server: Default::default(),
            disks: Vec::new(),
            containers: cpu_time
                .iter()
                .map(|(id, t)| ContainerSample {
                    container_id: id.to_string(),
                    name: id.to_string(),
                    image: None,
                    state: "running".into(),
                    status_text: "Up".into(),
                    exit_code: None,
                    health: None,
                    cpu_percent: Some(99.0),
                    cpu_time_seconds: Some(*t),
                    mem_used_bytes: None,
                    mem_limit_bytes: None,
                    mem_percent: None,
                    net_rx_bytes: None,
                    net_tx_bytes: None,
                    block_read_bytes: None,
                    block_write_bytes: None,
                    pids: None,
                })
                .collect(),
            docker: DockerState::Available,
            problems: Vec::new(),
        }
    }

    #[test]
    fn cpu_is_the_use_between_two_polls_and_unknown_on_the_first() {
        let rates = CpuRates::default();
        let server = Uuid::new_v4();
        let t0 = Instant::now();
        let mut first = snapshot(&[("a", 10.0)]);
        rates.apply(server, &mut first, t0);
        assert_eq!(first.containers[0].cpu_percent, None);
        // 5 CPU seconds over 10 wall seconds: 50%.
        let mut second = snapshot(&[("a", 15.0)]);
        rates.apply(server, &mut second, t0 + Duration::from_secs(10));
        assert_eq!(second.containers[0].cpu_percent, Some(50.0));
    }

    #[test]
    fn a_restarted_container_whose_counter_went_back_has_no_rate() {
        let rates = CpuRates::default();
        let server = Uuid::new_v4();
        let t0 = Instant::now();
        rates.apply(server, &mut snapshot(&[("a", 10.0)]), t0);
        let mut after = snapshot(&[("a", 2.0)]);
        rates.apply(server, &mut after, t0 + Duration::from_secs(10));
        assert_eq!(after.containers[0].cpu_percent, None);
    }
}
