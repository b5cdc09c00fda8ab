//! The poller's own numbers: counters and histograms updated by the scheduler and poller,
//! rendered in the Prometheus text format (version 0.0.4) by the API's `/metrics`. Lock-free
//! atomics only, so recording costs nothing measurable on the hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::outcome::Outcome;

/// A histogram with fixed upper bounds in seconds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in microseconds, to keep it an integer.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (b, slot) in self.bounds.iter().zip(&self.buckets) {
            if secs <= *b {
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, slot) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                slot.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

const POLL_BOUNDS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0];
const LAG_BOUNDS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
const DB_BOUNDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// Everything the poller counts about itself.
#[derive(Debug)]
pub struct Metrics {
    polls: Vec<AtomicU64>,
    pub poll_duration: Histogram,
    /// How late a poll started relative to its slot.
    pub cycle_lag: Histogram,
    /// Polls not started because the previous poll of that host was still running.
    pub skipped: AtomicU64,
    /// New SSH sessions opened (TCP connect through authentication).
    pub handshakes: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub open_sessions: AtomicU64,
    /// One transaction of the writer.
    pub db_write: Histogram,
    /// Hosts this poller holds a lease on (several pollers on PostgreSQL, issue #14).
    pub leased_hosts: AtomicU64,
    /// Notification attempts by channel kind and outcome (`delivered`, `retried`, `failed`),
    /// counted by `notify`'s dispatcher. Few pairs: a map under a lock costs nothing here.
    notifications: std::sync::Mutex<std::collections::BTreeMap<(String, &'static str), u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            polls: Outcome::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            poll_duration: Histogram::new(POLL_BOUNDS),
            cycle_lag: Histogram::new(LAG_BOUNDS),
            skipped: AtomicU64::new(0),
            handshakes: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            open_sessions: AtomicU64::new(0),
            db_write: Histogram::new(DB_BOUNDS),
            leased_hosts: AtomicU64::new(0),
            notifications: std::sync::Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts one poll.
    pub fn poll_done(&self, outcome: Outcome, took: Duration) {
        self.polls[outcome.index()].fetch_add(1, Ordering::Relaxed);
        self.poll_duration.observe(took);
    }

    pub fn polls(&self, outcome: Outcome) -> u64 {
        self.polls[outcome.index()].load(Ordering::Relaxed)
    }

    /// Counts one notification attempt of a channel kind.
    pub fn notification(&self, channel_kind: &str, outcome: &'static str) {
        if let Ok(mut m) = self.notifications.lock() {
            *m.entry((channel_kind.to_string(), outcome)).or_default() += 1;
        }
    }

    fn render_notifications(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP fleetpoll_notifications_total Notification attempts, by channel kind and outcome.\n# TYPE fleetpoll_notifications_total counter"
        );
        if let Ok(m) = self.notifications.lock() {
            for ((kind, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "fleetpoll_notifications_total{{channel_kind=\"{}\",outcome=\"{outcome}\"}} {n}",
                    label(kind)
                );
            }
        }
    }

    /// The poller's own series, followed by the process's.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP fleetpoll_polls_total Polls finished, by outcome.\n# TYPE fleetpoll_polls_total counter"
        );
        for (o, c) in Outcome::ALL.iter().zip(&self.polls) {
            let _ = writeln!(
                out,
                "fleetpoll_polls_total{{outcome=\"{o}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        self.poll_duration.render(
            out,
            "fleetpoll_poll_duration_seconds",
            "Wall time of one poll, connect to last byte.",
        );
        self.cycle_lag.render(
            out,
            "fleetpoll_cycle_lag_seconds",
            "How late a poll started after its scheduled slot.",
        );
        counter(
            out,
            "fleetpoll_skipped_polls_total",
            "Polls skipped because the previous poll of the host was still running.",
            self.skipped.load(Ordering::Relaxed),
        );
        counter(
            out,
            "fleetpoll_ssh_handshakes_total",
            "SSH sessions opened (connect through authentication).",
            self.handshakes.load(Ordering::Relaxed),
        );
        counter(
            out,
            "fleetpoll_ssh_handshake_failures_total",
            "SSH session openings that failed.",
            self.handshake_failures.load(Ordering::Relaxed),
        );
        gauge(
            out,
            "fleetpoll_ssh_open_connections",
            "SSH sessions kept open for reuse.",
            self.open_sessions.load(Ordering::Relaxed) as f64,
        );
        self.db_write.render(
            out,
            "fleetpoll_db_write_seconds",
            "Time of one write transaction (a batch of poll results).",
        );
        gauge(
            out,
            "fleetpoll_leased_hosts",
            "Hosts this poller holds a lease on (pollers sharing a PostgreSQL database).",
            self.leased_hosts.load(Ordering::Relaxed) as f64,
        );
        self.render_notifications(out);
        process(out);
    }
}

pub fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

pub fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

/// Escapes a label value as the text format requires.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The standard process series, read from /proc/self (Linux); absent elsewhere.
fn process(out: &mut String) {
    // Clock ticks per second: 100 on every Linux architecture fleetpoll targets.
    const TICKS: f64 = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may contain spaces.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            gauge_or_counter(
                out,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                "counter",
                (ticks(11) + ticks(12)) / TICKS,
            );
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(rss) = kib("VmRSS:") {
            gauge(
                out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss * 1024.0,
            );
        }
        if let Some(vsz) = kib("VmSize:") {
            gauge(
                out,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                vsz * 1024.0,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
}

fn gauge_or_counter(out: &mut String, name: &str, help: &str, kind: &str, v: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum 5.55\n"), "{out}");
    }

    #[test]
    fn render_has_polls_by_outcome_and_process_series() {
        let m = Metrics::default();
        m.poll_done(Outcome::Ok, Duration::from_secs(1));
        m.poll_done(Outcome::Timeout, Duration::from_secs(30));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("fleetpoll_polls_total{outcome=\"ok\"} 1\n"));
        assert!(out.contains("fleetpoll_polls_total{outcome=\"timeout\"} 1\n"));
        assert!(out.contains("fleetpoll_polls_total{outcome=\"parse_failed\"} 0\n"));
        assert_eq!(m.polls(Outcome::Timeout), 1);
        assert!(out.contains("process_resident_memory_bytes "));
        assert!(out.contains("process_open_fds "));
        assert!(out.contains("process_cpu_seconds_total "));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
