//! One poll against the rules: from the values in hand and the server's open alerts, the
//! decisions (open, move on, drop, resolve) and what to tell. Pure: no clock but `now`, no
//! history, no SQL, so it runs inside the writer's batch for thousands of hosts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    glob_matches, Alert, AlertRule, AlertSeverity, AlertState, Metric, Observed, Threshold,
};
use crate::inventory::ServerStatus;
use crate::model::{Snapshot, Thresholds};

/// What one poll says about one server, as rules read it.
#[derive(Debug, Clone, Copy)]
pub struct PollFacts<'a> {
    pub server_id: Uuid,
    pub server_name: &'a str,
    pub tags: &'a [String],
    /// The status this poll leaves the server in.
    pub status: ServerStatus,
    /// `None` when the poll failed: sample metrics keep their alerts' state.
    pub snapshot: Option<&'a Snapshot>,
    /// CPUs, from the probe, for `load1_per_core`.
    pub cpus: Option<u32>,
    /// The server's health thresholds (overrides applied), for rules that follow them.
    pub thresholds: Option<&'a Thresholds>,
    /// Restarts of each container in the last 10 minutes, by name.
    pub restarts: Option<&'a HashMap<String, u32>>,
}

/// What to tell about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Fired,
    Resolved,
    /// Still firing, unacknowledged, `repeat_secs` since the last notification.
    Repeat,
}

/// A decision about one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new episode: pending, or firing at once when the rule has no `for_secs`.
    Open(Alert),
    /// An open episode moves on: its value, state or notification time.
    Update(Alert),
    /// A pending episode whose condition stopped before it fired: it leaves no trace.
    Drop(Uuid),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub change: Change,
    pub notice: Option<Notice>,
}

/// Evaluates one poll of one server. `open` are the server's pending and firing alerts.
pub fn evaluate(
    rules: &[AlertRule],
    facts: &PollFacts<'_>,
    open: &[Alert],
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut out = Vec::new();
    for rule in rules {
        let mine = open.iter().filter(|a| a.rule_id == rule.id);
        if !rule.enabled || !rule.scope.covers(facts.server_name, facts.tags) {
            // A rule switched off or narrowed: its episodes end without a message.
            for a in mine {
                out.push(end(a, now, None));
            }
            continue;
        }
        if rule.metric.needs_sample() && facts.snapshot.is_none() {
            continue;
        }
        let limits = following(rule, facts.thresholds);
        let seen = observe(rule, facts);
        for (subject, value) in &seen {
            let existing = open
                .iter()
                .find(|a| a.rule_id == rule.id && a.subject == *subject);
            let Some(value) = value else {
                // The subject is there but this figure was not read: no evidence either way.
                continue;
            };
            if let Some(d) = step(rule, limits, facts.server_id, subject, value, existing, now) {
                out.push(d);
            }
        }
        // Mounts unmounted, containers removed: their episodes end.
        for a in mine {
            if !seen.iter().any(|(s, _)| *s == a.subject) {
                let notice = (a.state == AlertState::Firing && rule.notify_resolved)
                    .then_some(Notice::Resolved);
                out.push(end(a, now, notice));
            }
        }
    }
    out
}

/// For a rule that follows the health thresholds, this server's (threshold, clear threshold).
fn following(rule: &AlertRule, thresholds: Option<&Thresholds>) -> Option<(f64, f64)> {
    let level = rule.follows_health?;
    let t = thresholds?.get(rule.metric.health_key()?, level == AlertSeverity::Critical)?;
    Some((t, t - 5.0))
}

/// Ends an open episode: a pending one is dropped, a firing one resolved.
fn end(a: &Alert, now: DateTime<Utc>, notice: Option<Notice>) -> Decision {
    match a.state {
        AlertState::Pending => Decision {
            change: Change::Drop(a.id),
            notice: None,
        },
        _ => {
            let mut a = a.clone();
            a.state = AlertState::Resolved;
            a.resolved_at = Some(now);
            if notice.is_some() {
                a.last_notified_at = Some(now);
            }
            Decision {
                change: Change::Update(a),
                notice,
            }
        }
    }
}

fn step(
    rule: &AlertRule,
    limits: Option<(f64, f64)>,
    server_id: Uuid,
    subject: &str,
    value: &Observed,
    existing: Option<&Alert>,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let fires = passes(rule, limits, value, false);
    let Some(a) = existing else {
        if !fires {
            return None;
        }
        let firing = rule.for_secs == 0;
        return Some(Decision {
            change: Change::Open(Alert {
                id: Uuid::new_v4(),
                rule_id: rule.id,
                server_id,
                subject: subject.to_string(),
                state: if firing {
                    AlertState::Firing
                } else {
                    AlertState::Pending
                },
                value: Some(value.clone()),
                started_at: now,
                fired_at: firing.then_some(now),
                resolved_at: None,
                last_notified_at: firing.then_some(now),
                acked_at: None,
                acked_by: None,
                ack_comment: None,
            }),
            notice: firing.then_some(Notice::Fired),
        });
    };
    let mut a = a.clone();
    a.value = Some(value.clone());
    match a.state {
        AlertState::Pending if !fires => Some(Decision {
            change: Change::Drop(a.id),
            notice: None,
        }),
        AlertState::Pending => {
            let held = (now - a.started_at).num_milliseconds() >= secs_ms(rule.for_secs);
            let notice = held.then(|| {
                a.state = AlertState::Firing;
                a.fired_at = Some(now);
                a.last_notified_at = Some(now);
                Notice::Fired
            });
            Some(Decision {
                change: Change::Update(a),
                notice,
            })
        }
        AlertState::Firing if !passes(rule, limits, value, true) => {
            let notice = rule.notify_resolved.then_some(Notice::Resolved);
            Some(end(&a, now, notice))
        }
        AlertState::Firing => {
            let since = a.last_notified_at.or(a.fired_at).unwrap_or(a.started_at);
            let due = rule.repeat_secs > 0
                && a.acked_at.is_none()
                && (now - since).num_milliseconds() >= secs_ms(rule.repeat_secs);
            if due {
                a.last_notified_at = Some(now);
            }
            Some(Decision {
                change: Change::Update(a),
                notice: due.then_some(Notice::Repeat),
            })
        }
        AlertState::Resolved => None,
    }
}

fn secs_ms(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX / 1000) * 1000
}

/// Whether the value passes the rule: against the threshold to fire, against the clear
/// threshold (when there is one) to stay firing. `limits` replaces both for a rule that
/// follows the health thresholds.
fn passes(rule: &AlertRule, limits: Option<(f64, f64)>, value: &Observed, staying: bool) -> bool {
    match (&rule.threshold, value) {
        (Threshold::Number(t), Observed::Number(v)) => {
            let (fire, clear) = limits.unwrap_or((*t, rule.clear_threshold.unwrap_or(*t)));
            rule.op.holds(*v, if staying { clear } else { fire })
        }
        (Threshold::Word(t), Observed::Word(v)) => rule.op.holds_text(v, t),
        _ => false,
    }
}

/// The rule's metric in this poll: one value per subject ('' for server-wide), `None` where
/// the subject exists but the figure was not read.
fn observe<'s>(rule: &AlertRule, facts: &PollFacts<'s>) -> Vec<(&'s str, Option<Observed>)> {
    let num = |v: Option<f64>| v.filter(|v| v.is_finite()).map(Observed::Number);
    let whole = |v: Option<Observed>| vec![("", v)];
    if rule.metric == Metric::ServerStatus {
        return whole(Some(Observed::Word(facts.status.as_str().to_string())));
    }
    let Some(s) = facts.snapshot else {
        return Vec::new();
    };
    let server = &s.server;
    match rule.metric {
        Metric::CpuPercent => whole(num(server.cpu_busy_percent)),
        Metric::MemoryPercent => whole(num(server.memory_percent())),
        Metric::SwapPercent => whole(num(
            match (server.swap_used_bytes, server.swap_total_bytes) {
                (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64 * 100.0),
                _ => None,
            },
        )),
        Metric::Load1PerCore => whole(num(match (server.load1, facts.cpus) {
            (Some(l), Some(c)) if c > 0 => Some(l / f64::from(c)),
            _ => None,
        })),
        Metric::UptimeSeconds => whole(num(server.uptime_seconds.map(|u| u as f64))),
        Metric::PollProblem => whole(Some(Observed::Number(s.problems.len() as f64))),
        Metric::DiskPercent => s
            .disks
            .iter()
            .filter(|d| glob_matches(&rule.mount, &d.mount))
            .map(|d| {
                let pct = d.use_percent.or(match (d.used_bytes, d.total_bytes) {
                    (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64 * 100.0),
                    _ => None,
                });
                (d.mount.as_str(), num(pct))
            })
            .collect(),
        Metric::ContainerCpuPercent
        | Metric::ContainerMemoryPercent
        | Metric::ContainerState
        | Metric::ContainerRestarts => s
            .containers
            .iter()
            .filter(|c| glob_matches(&rule.container, &c.name))
            .map(|c| {
                let v = match rule.metric {
                    Metric::ContainerCpuPercent => num(c.cpu_percent),
                    Metric::ContainerRestarts => facts
                        .restarts
                        .and_then(|r| r.get(&c.name))
                        .map(|n| Observed::Number(f64::from(*n))),
                    Metric::ContainerMemoryPercent => {
                        num(c
                            .mem_percent
                            .or(match (c.mem_used_bytes, c.mem_limit_bytes) {
                                (Some(u), Some(l)) if l > 0 => Some(u as f64 / l as f64 * 100.0),
                                _ => None,
                            }))
                    }
                    _ => Some(Observed::Word(
                        if c.health.as_deref() == Some("unhealthy") {
                            "unhealthy".to_string()
                        } else {
                            c.state.clone()
                        },
                    )),
                };
                (c.name.as_str(), v)
            })
            .collect(),
        Metric::ServerStatus => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{RuleInput, Scope};
    use crate::model::{DiskSample, DockerState, ServerSample};

    fn rule(
        metric: &str,
        op: &str,
        t: serde_json::Value,
        clear: Option<f64>,
        for_secs: u64,
    ) -> AlertRule {
        RuleInput {
            name: Some(format!("{metric} {op} {t}")),
            metric: Some(metric.into()),
            op: Some(op.into()),
            threshold: Some(t),
            clear_threshold: Some(clear),
            for_secs: Some(for_secs),
            ..Default::default()
        }
        .create(Uuid::new_v4(), Utc::now())
        .expect("valid rule")
    }

    fn snap(cpu: f64, disks: &[(&str, f64)]) -> Snapshot {
        Snapshot {
            taken_at: Utc::now(),
            server: ServerSample {
                cpu_busy_percent: Some(cpu),
                ..Default::default()
            },
            disks: disks
                .iter()
                .map(|(m, p)| DiskSample {
                    filesystem: "/dev/vda1".into(),
                    mount: (*m).into(),
                    total_bytes: Some(100),
                    used_bytes: None,
                    available_bytes: None,
                    use_percent: Some(*p),
                })
                .collect(),
            containers: Vec::new(),
            docker: DockerState::Missing,
            problems: Vec::new(),
        }
    }

    /// Runs polls of one server through the rules, keeping its open alerts as the store
    /// would, and returns the notices of each poll.
    struct Server {
        id: Uuid,
        open: Vec<Alert>,
    }

    impl Server {
        fn new() -> Self {
            Self {
                id: Uuid::new_v4(),
                open: Vec::new(),
            }
        }

        fn poll(
            &mut self,
            rules: &[AlertRule],
            status: ServerStatus,
            s: Option<&Snapshot>,
            at: DateTime<Utc>,
        ) -> Vec<(String, Notice)> {
            let facts = PollFacts {
                server_id: self.id,
                server_name: "web-1",
                tags: &[],
                status,
                snapshot: s,
                cpus: Some(4),
                thresholds: None,
                restarts: None,
            };
            let decisions = evaluate(rules, &facts, &self.open, at);
            let mut notices = Vec::new();
            for d in decisions {
                let subject = match &d.change {
                    Change::Open(a) | Change::Update(a) => a.subject.clone(),
                    Change::Drop(_) => String::new(),
                };
                if let Some(n) = d.notice {
                    notices.push((subject, n));
                }
                match d.change {
                    Change::Open(a) => self.open.push(a),
                    Change::Update(a) => {
                        self.open.retain(|o| o.id != a.id);
                        if a.state != AlertState::Resolved {
                            self.open.push(a);
                        }
                    }
                    Change::Drop(id) => self.open.retain(|o| o.id != id),
                }
            }
            notices
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time")
    }

    #[test]
    fn an_alert_fires_only_once_the_condition_held_for_its_time() {
        let rules = [rule("cpu_percent", ">=", 90.into(), None, 300)];
        let mut s = Server::new();
        let up = ServerStatus::Online;
        assert!(s.poll(&rules, up, Some(&snap(95.0, &[])), t(0)).is_empty());
        assert_eq!(s.open[0].state, AlertState::Pending);
        assert!(s
            .poll(&rules, up, Some(&snap(96.0, &[])), t(240))
            .is_empty());
        assert_eq!(
            s.poll(&rules, up, Some(&snap(97.0, &[])), t(300)),
            [(String::new(), Notice::Fired)]
        );
        assert_eq!(s.open[0].state, AlertState::Firing);
    }

    #[test]
    fn a_dip_before_for_secs_starts_the_wait_again() {
        let rules = [rule("cpu_percent", ">=", 90.into(), None, 300)];
        let mut s = Server::new();
        let up = ServerStatus::Online;
        s.poll(&rules, up, Some(&snap(95.0, &[])), t(0));
        s.poll(&rules, up, Some(&snap(50.0, &[])), t(120));
        assert!(
            s.open.is_empty(),
            "a pending alert whose condition stopped is dropped"
        );
        s.poll(&rules, up, Some(&snap(95.0, &[])), t(180));
        assert!(
            s.poll(&rules, up, Some(&snap(95.0, &[])), t(420))
                .is_empty(),
            "only 240 s held"
        );
        assert_eq!(s.poll(&rules, up, Some(&snap(95.0, &[])), t(480)).len(), 1);
    }

    #[test]
    fn a_value_oscillating_between_clear_and_fire_thresholds_does_not_flap() {
        let rules = [rule("cpu_percent", ">=", 90.into(), Some(80.0), 0)];
        let mut s = Server::new();
        let up = ServerStatus::Online;
        let mut notices = Vec::new();
        for (i, v) in [95.0, 85.0, 91.0, 82.0, 93.0, 81.0].into_iter().enumerate() {
            notices.extend(s.poll(&rules, up, Some(&snap(v, &[])), t(i as i64 * 60)));
        }
        assert_eq!(
            notices,
            [(String::new(), Notice::Fired)],
            "fired once, never cleared"
        );
        assert_eq!(
            s.poll(&rules, up, Some(&snap(79.0, &[])), t(600)),
            [(String::new(), Notice::Resolved)]
        );
        assert!(s.open.is_empty());
    }

    #[test]
    fn a_failed_poll_keeps_metric_alerts_and_status_rules_see_it() {
        let rules = [
            rule("cpu_percent", ">=", 90.into(), None, 0),
            rule("server_status", "==", "offline".into(), None, 0),
        ];
        let mut s = Server::new();
        s.poll(&rules, ServerStatus::Online, Some(&snap(95.0, &[])), t(0));
        let n = s.poll(&rules, ServerStatus::Offline, None, t(60));
        assert_eq!(
            n,
            [(String::new(), Notice::Fired)],
            "the offline rule fires"
        );
        assert_eq!(
            s.open.len(),
            2,
            "the cpu alert is still firing: {:?}",
            s.open
        );
        let n = s.poll(&rules, ServerStatus::Online, Some(&snap(10.0, &[])), t(120));
        assert_eq!(n.len(), 2, "both resolve: {n:?}");
    }

    #[test]
    fn one_alert_per_mount_and_an_unmounted_disk_resolves() {
        let mut r = rule("disk_percent", ">", 90.into(), None, 0);
        r.mount = "/srv/*".into();
        let rules = [r];
        let mut s = Server::new();
        let up = ServerStatus::Online;
        let n = s.poll(
            &rules,
            up,
            Some(&snap(
                1.0,
                &[("/", 99.0), ("/srv/a", 95.0), ("/srv/b", 97.0)],
            )),
            t(0),
        );
        let subjects: Vec<&str> = n.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(subjects, ["/srv/a", "/srv/b"], "the glob leaves / out");
        let n = s.poll(
            &rules,
            up,
            Some(&snap(1.0, &[("/", 99.0), ("/srv/a", 95.0)])),
            t(60),
        );
        assert_eq!(n, [("/srv/b".to_string(), Notice::Resolved)]);
    }

    #[test]
    fn repeats_stop_once_acknowledged() {
        let mut r = rule("cpu_percent", ">=", 90.into(), None, 0);
        r.repeat_secs = 600;
        let rules = [r];
        let mut s = Server::new();
        let up = ServerStatus::Online;
        s.poll(&rules, up, Some(&snap(95.0, &[])), t(0));
        assert!(s
            .poll(&rules, up, Some(&snap(95.0, &[])), t(300))
            .is_empty());
        assert_eq!(
            s.poll(&rules, up, Some(&snap(95.0, &[])), t(600)),
            [(String::new(), Notice::Repeat)]
        );
        s.open[0].acked_at = Some(t(650));
        assert!(s
            .poll(&rules, up, Some(&snap(95.0, &[])), t(1300))
            .is_empty());
    }

    #[test]
    fn a_rule_out_of_scope_or_disabled_ends_its_alerts_quietly() {
        let mut r = rule("cpu_percent", ">=", 90.into(), None, 0);
        let mut s = Server::new();
        let up = ServerStatus::Online;
        s.poll(std::slice::from_ref(&r), up, Some(&snap(95.0, &[])), t(0));
        r.scope = Scope {
            tags: vec!["db".into()],
            servers: Vec::new(),
        };
        assert!(s.poll(&[r], up, Some(&snap(95.0, &[])), t(60)).is_empty());
        assert!(s.open.is_empty());
    }

    #[test]
    fn a_rule_that_follows_health_fires_at_the_servers_own_threshold() {
        let mut r = rule("cpu_percent", ">=", 75.into(), Some(70.0), 0);
        r.follows_health = Some(AlertSeverity::Critical);
        let rules = [r];
        let strict = Thresholds {
            cpu_critical_percent: 60.0,
            ..Default::default()
        };
        let snapshot = snap(65.0, &[]);
        let relaxed = Thresholds::default();
        for (thresholds, fires) in [(&strict, true), (&relaxed, false)] {
            let facts = PollFacts {
                server_id: Uuid::new_v4(),
                server_name: "db-1",
                tags: &[],
                status: ServerStatus::Online,
                snapshot: Some(&snapshot),
                cpus: None,
                thresholds: Some(thresholds),
                restarts: None,
            };
            // 65 against its own 60, then against the configured 95.
            assert_eq!(!evaluate(&rules, &facts, &[], t(0)).is_empty(), fires);
        }
    }
}
