//! What one poll of one server produced, in the shape the store keeps: every measured value
//! is an `Option` with its unit in the name; a value the host did not report is `None`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::outcome::ProblemKind;
use crate::parse::ParseError;

/// Thresholds that turn a server's latest sample into a health colour.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub cpu_warning_percent: f64,
    pub cpu_critical_percent: f64,
    pub memory_warning_percent: f64,
    pub memory_critical_percent: f64,
    pub disk_warning_percent: f64,
    pub disk_critical_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cpu_warning_percent: 80.0,
            cpu_critical_percent: 95.0,
            memory_warning_percent: 85.0,
            memory_critical_percent: 95.0,
            disk_warning_percent: 80.0,
            disk_critical_percent: 90.0,
        }
    }
}

impl Thresholds {
    /// The warning or critical threshold of `metric` (`cpu`, `memory` or `disk`).
    pub fn get(&self, metric: &str, critical: bool) -> Option<f64> {
        Some(match (metric, critical) {
            ("cpu", false) => self.cpu_warning_percent,
            ("cpu", true) => self.cpu_critical_percent,
            ("memory", false) => self.memory_warning_percent,
            ("memory", true) => self.memory_critical_percent,
            ("disk", false) => self.disk_warning_percent,
            ("disk", true) => self.disk_critical_percent,
            _ => return None,
        })
    }

    /// These thresholds with the keys an override gives; an unknown key is an error naming it.
    ///
    /// # Errors
    /// A key that is not a threshold, or a value that is not a percentage.
    pub fn with(&self, over: &serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let mut t = self.clone();
        for (k, v) in over {
            let slot = match k.as_str() {
                "cpu_warning_percent" => &mut t.cpu_warning_percent,
                "cpu_critical_percent" => &mut t.cpu_critical_percent,
                "memory_warning_percent" => &mut t.memory_warning_percent,
                "memory_critical_percent" => &mut t.memory_critical_percent,
                "disk_warning_percent" => &mut t.disk_warning_percent,
                "disk_critical_percent" => &mut t.disk_critical_percent,
                other => return Err(format!("'{other}' is not a threshold")),
            };
            match v.as_f64() {
                Some(p) if (0.0..=100.0).contains(&p) => *slot = p,
                _ => return Err(format!("{k}: expected a percentage from 0 to 100")),
            }
        }
        Ok(t)
    }
}

/// Health thresholds overridden for every server with a tag, or for one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdOverride {
    /// `tag` or `server`.
    pub kind: String,
    /// The tag, or the server's name.
    pub name: String,
    /// The keys it sets; the others keep the value below it.
    pub thresholds: serde_json::Map<String, serde_json::Value>,
    pub updated_at: DateTime<Utc>,
}

/// A server's thresholds: the configured ones, then its tags' overrides (in tag order), then
/// its own.
pub fn thresholds_for(
    base: &Thresholds,
    overrides: &[ThresholdOverride],
    server: &str,
    tags: &[String],
) -> Thresholds {
    let mut t = base.clone();
    let mut apply = |kind: &str, name: &str| {
        if let Some(o) = overrides.iter().find(|o| o.kind == kind && o.name == name) {
            if let Ok(next) = t.with(&o.thresholds) {
                t = next;
            }
        }
    };
    let mut sorted: Vec<&String> = tags.iter().collect();
    sorted.sort();
    for tag in sorted {
        apply("tag", tag);
    }
    apply("server", server);
    t
}

/// Host-wide figures from top and free.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ServerSample {
    /// 100 - idle, over the interval between top's two frames (not since boot).
    pub cpu_busy_percent: Option<f64>,
    pub cpu_user_percent: Option<f64>,
    pub cpu_system_percent: Option<f64>,
    pub cpu_iowait_percent: Option<f64>,
    pub cpu_steal_percent: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub uptime_seconds: Option<u64>,
    pub tasks_total: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_free_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
}

impl ServerSample {
    /// Share of memory in use: (total - available) when `available` is known, else used.
    pub fn memory_percent(&self) -> Option<f64> {
        let total = self.mem_total_bytes.filter(|t| *t > 0)? as f64;
        let used = match (self.mem_available_bytes, self.mem_used_bytes) {
            (Some(avail), _) => total - avail as f64,
            (None, Some(used)) => used as f64,
            (None, None) => return None,
        };
        Some((used / total * 100.0).clamp(0.0, 100.0))
    }
}

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DiskSample {
    pub filesystem: String,
    pub mount: String,
    pub total_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub use_percent: Option<f64>,
}

/// How a container is doing, collapsed for the fleet counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerHealth {
    Running,
    Stopped,
    /// Exited non-zero, restarting, dead or unhealthy.
    Error,
}

impl ContainerHealth {
    pub const ALL: [ContainerHealth; 3] = [Self::Running, Self::Stopped, Self::Error];

    /// The stored and served word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Error => "error",
        }
    }
}

impl std::str::FromStr for ContainerHealth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not a container category"))
    }
}

/// One container: state from `docker ps`, usage from `docker stats`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ContainerSample {
    pub container_id: String,
    pub name: String,
    pub image: Option<String>,
    /// running, exited, paused, restarting, created, dead.
    pub state: String,
    /// Docker's own words, e.g. `Exited (3) 2 minutes ago`.
    pub status_text: String,
    pub exit_code: Option<i32>,
    pub health: Option<String>,
    /// Percent of one CPU over the last second or so (docker) or since our previous poll
    /// (podman); may exceed 100 for a container using several CPUs.
    pub cpu_percent: Option<f64>,
    /// Cumulative CPU seconds when the engine reports them (podman); used for `cpu_percent`.
    #[serde(skip)]
    pub cpu_time_seconds: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_limit_bytes: Option<u64>,
    pub mem_percent: Option<f64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub block_read_bytes: Option<u64>,
    pub block_write_bytes: Option<u64>,
    pub pids: Option<u64>,
}

impl ContainerSample {
    pub fn category(&self) -> ContainerHealth {
        classify(&self.state, self.exit_code, self.health.as_deref())
    }
}

/// Shared by the poller and the store so counts agree wherever they are made.
pub fn classify(state: &str, exit_code: Option<i32>, health: Option<&str>) -> ContainerHealth {
    match state {
        "restarting" | "dead" => ContainerHealth::Error,
        "exited" if exit_code.is_some_and(|c| c != 0) => ContainerHealth::Error,
        "running" if health == Some("unhealthy") => ContainerHealth::Error,
        "running" => ContainerHealth::Running,
        _ => ContainerHealth::Stopped,
    }
}

/// Whether container figures could be collected on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum DockerState {
    Available,
    /// No `docker` on the PATH: a host without containers, not a failure.
    Missing,
    /// `docker` exists but this user may not use it (not in the docker group).
    Denied(String),
    /// `docker` ran and failed for another reason (daemon down, ...).
    Failed(String),
}

impl DockerState {
    /// One line for the activity log and the server's reason.
    pub fn describe(&self) -> Option<String> {
        match self {
            Self::Available => None,
            Self::Missing => Some("docker is not installed (no container metrics)".into()),
            Self::Denied(m) => Some(format!("docker is not permitted for this user: {m}")),
            Self::Failed(m) => Some(format!("docker failed: {m}")),
        }
    }
}

/// A section that ran but could not be used; the rest of the poll is still stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionProblem {
    /// The section's name in the poll script: `top`, `free`, `df`, `docker_ps`, ...
    pub section: String,
    pub cause: ProblemCause,
}

/// What went wrong with one section.
#[derive(Debug, Clone, PartialEq)]
pub enum ProblemCause {
    /// The section never appeared: the script stopped before it (with this exit status).
    Missing { script_exit_status: Option<u32> },
    /// The command failed; its error text is the reason.
    Exited {
        status: Option<i32>,
        /// The first line of its error output, or `no error output`.
        error_line: String,
    },
    /// The command succeeded and printed what its parser could not read.
    Unreadable(ParseError),
    /// Values no machine can have, clamped to the possible range (which, in words).
    Implausible(String),
}

impl SectionProblem {
    pub fn kind(&self) -> ProblemKind {
        match self.cause {
            ProblemCause::Missing { .. } | ProblemCause::Exited { .. } => {
                ProblemKind::CommandFailed
            }
            ProblemCause::Unreadable(_) | ProblemCause::Implausible(_) => ProblemKind::ParseFailed,
        }
    }

    /// One line for people: the server's reason, the activity log, `poll --once`.
    pub fn message(&self) -> String {
        let name = &self.section;
        match &self.cause {
            ProblemCause::Missing { script_exit_status } => format!(
                "{name}: no output (the script stopped early, exit status {script_exit_status:?})"
            ),
            ProblemCause::Exited { status, error_line } => format!(
                "{name} exited with status {}: {error_line}",
                status.map_or("?".into(), |c| c.to_string())
            ),
            ProblemCause::Unreadable(e) => e.to_string(),
            ProblemCause::Implausible(what) => format!("{name}: implausible, clamped: {what}"),
        }
    }
}

/// Serialized as `{section, kind, message}`: the shape `poll --once --json` prints.
impl Serialize for SectionProblem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SectionProblem", 3)?;
        st.serialize_field("section", &self.section)?;
        st.serialize_field("kind", &self.kind())?;
        st.serialize_field("message", &self.message())?;
        st.end()
    }
}

/// The raw text of a poll whose output could not all be read, kept for an admin to inspect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawOutput {
    pub problems: String,
    pub exit_status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

impl RawOutput {
    /// Kept raw output is capped: enough to see what went wrong, never a disk hog.
    pub const CAP_BYTES: usize = 256 * 1024;

    pub fn capped(
        stdout: &[u8],
        stderr: &[u8],
        exit_status: Option<u32>,
        problems: String,
    ) -> Self {
        let cap =
            |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(Self::CAP_BYTES)]).into_owned();
        Self {
            problems,
            exit_status,
            stdout: cap(stdout),
            stderr: cap(stderr),
        }
    }
}

/// Everything one successful poll produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub taken_at: DateTime<Utc>,
    pub server: ServerSample,
    pub disks: Vec<DiskSample>,
    pub containers: Vec<ContainerSample>,
    pub docker: DockerState,
    pub problems: Vec<SectionProblem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_percent_prefers_available() {
        let s = ServerSample {
            mem_total_bytes: Some(1000),
            mem_used_bytes: Some(100),
            mem_available_bytes: Some(600),
            ..Default::default()
        };
        assert_eq!(s.memory_percent(), Some(40.0));
        let s = ServerSample {
            mem_total_bytes: Some(1000),
            mem_used_bytes: Some(100),
            ..Default::default()
        };
        assert_eq!(s.memory_percent(), Some(10.0));
        assert_eq!(ServerSample::default().memory_percent(), None);
    }

    #[test]
    fn container_categories() {
        assert_eq!(classify("running", None, None), ContainerHealth::Running);
        assert_eq!(
            classify("running", None, Some("unhealthy")),
            ContainerHealth::Error
        );
        assert_eq!(classify("exited", Some(0), None), ContainerHealth::Stopped);
        assert_eq!(classify("exited", Some(3), None), ContainerHealth::Error);
        assert_eq!(
            classify("restarting", Some(1), None),
            ContainerHealth::Error
        );
        assert_eq!(classify("paused", None, None), ContainerHealth::Stopped);
    }

    #[test]
    fn a_server_override_beats_its_tags_which_beat_the_config() {
        let over = |kind: &str, name: &str, v: serde_json::Value| ThresholdOverride {
            kind: kind.into(),
            name: name.into(),
            thresholds: v.as_object().cloned().unwrap_or_default(),
            updated_at: Utc::now(),
        };
        let overrides = [
            over(
                "tag",
                "db",
                serde_json::json!({ "disk_warning_percent": 60, "cpu_critical_percent": 99 }),
            ),
            over(
                "server",
                "db-1",
                serde_json::json!({ "disk_warning_percent": 50 }),
            ),
        ];
        let base = Thresholds::default();
        let tags = vec!["db".to_string()];
        let t = thresholds_for(&base, &overrides, "db-1", &tags);
        assert_eq!(
            (t.disk_warning_percent, t.cpu_critical_percent),
            (50.0, 99.0)
        );
        let t = thresholds_for(&base, &overrides, "db-2", &tags);
        assert_eq!(t.disk_warning_percent, 60.0);
        let t = thresholds_for(&base, &overrides, "web-1", &[]);
        assert_eq!(t, base);
        assert!(base
            .with(serde_json::json!({ "cpu": 1 }).as_object().expect("map"))
            .is_err());
    }
}
