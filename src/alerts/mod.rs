//! Alert rules and the alerts they raise: the vocabulary (metrics, comparisons, states), a
//! rule's validation, and the pure evaluation of one poll against the rules
//! ([`eval::evaluate`]). No SQL and no delivery: the scheduler's writer stores what evaluation
//! decides in the poll's own transaction, and `notify` tells people.

pub mod eval;
pub mod outage;
pub mod restarts;
mod rule;
mod silence;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

pub use rule::{RuleInput, RulePatch};
pub use silence::{Silence, SilenceInput};

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    CpuPercent,
    MemoryPercent,
    SwapPercent,
    Load1PerCore,
    /// One alert per mount matched by the rule's mount glob.
    DiskPercent,
    /// One alert per container matched by the rule's container glob.
    ContainerCpuPercent,
    ContainerMemoryPercent,
    /// `running`, `exited`, `restarting`, `paused`, `created`, `dead`, or `unhealthy` (a
    /// running container whose health check fails).
    ContainerState,
    /// Restarts seen in the last 10 minutes: restart loops.
    ContainerRestarts,
    /// `online`, `offline`, `host_key_changed` as the poll leaves the server.
    ServerStatus,
    UptimeSeconds,
    /// How many sections of the poll could not be read.
    PollProblem,
}

impl Metric {
    /// The health threshold family of this metric (`cpu`, `memory`, `disk`), if any.
    pub fn health_key(self) -> Option<&'static str> {
        match self {
            Self::CpuPercent => Some("cpu"),
            Self::MemoryPercent => Some("memory"),
            Self::DiskPercent => Some("disk"),
            _ => None,
        }
    }

    pub const ALL: [Metric; 12] = [
        Self::CpuPercent,
        Self::MemoryPercent,
        Self::SwapPercent,
        Self::Load1PerCore,
        Self::DiskPercent,
        Self::ContainerCpuPercent,
        Self::ContainerMemoryPercent,
        Self::ContainerState,
        Self::ContainerRestarts,
        Self::ServerStatus,
        Self::UptimeSeconds,
        Self::PollProblem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CpuPercent => "cpu_percent",
            Self::MemoryPercent => "memory_percent",
            Self::SwapPercent => "swap_percent",
            Self::Load1PerCore => "load1_per_core",
            Self::DiskPercent => "disk_percent",
            Self::ContainerCpuPercent => "container_cpu_percent",
            Self::ContainerMemoryPercent => "container_memory_percent",
            Self::ContainerState => "container_state",
            Self::ContainerRestarts => "container_restarts",
            Self::ServerStatus => "server_status",
            Self::UptimeSeconds => "uptime_seconds",
            Self::PollProblem => "poll_problem",
        }
    }

    /// Compared with a word (`==`/`!=` only), not a number.
    pub fn is_textual(self) -> bool {
        matches!(self, Self::ContainerState | Self::ServerStatus)
    }

    /// Per mount: the rule's `mount` glob applies.
    pub fn per_mount(self) -> bool {
        self == Self::DiskPercent
    }

    /// Per container: the rule's `container` glob applies.
    pub fn per_container(self) -> bool {
        matches!(
            self,
            Self::ContainerCpuPercent
                | Self::ContainerMemoryPercent
                | Self::ContainerState
                | Self::ContainerRestarts
        )
    }

    /// Read from the poll's sample: a poll that failed says nothing about it, so its alerts
    /// keep their state (the server's `server_status` alert covers an unreachable host).
    pub fn needs_sample(self) -> bool {
        self != Self::ServerStatus
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                format!("'{s}' is not a metric: one of {}", all.join(", "))
            })
    }
}

/// How a value is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    pub const ALL: [Op; 6] = [Self::Gt, Self::Ge, Self::Lt, Self::Le, Self::Eq, Self::Ne];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::Gt => value > threshold,
            Self::Ge => value >= threshold,
            Self::Lt => value < threshold,
            Self::Le => value <= threshold,
            // Measured values are decimals: equal within a hair.
            Self::Eq => (value - threshold).abs() < 1e-9,
            Self::Ne => (value - threshold).abs() >= 1e-9,
        }
    }

    pub fn holds_text(self, value: &str, threshold: &str) -> bool {
        match self {
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
            // Validation allows only == and != on words.
            _ => false,
        }
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("'{s}' is not a comparison: one of >, >=, <, <=, ==, !="))
    }
}

/// What a rule compares with: a number, or a word for the textual metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Threshold {
    Number(f64),
    Word(String),
}

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    Warning,
    Critical,
}

impl AlertSeverity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl FromStr for AlertSeverity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "warning" => Ok(Self::Warning),
            "critical" => Ok(Self::Critical),
            _ => Err(format!("'{s}' is not a severity: warning or critical")),
        }
    }
}

/// Which servers a rule covers: those with any of the tags or any of the names; everyone
/// when both are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    pub tags: Vec<String>,
    pub servers: Vec<String>,
}

impl Scope {
    pub fn covers(&self, name: &str, tags: &[String]) -> bool {
        (self.tags.is_empty() && self.servers.is_empty())
            || self.servers.iter().any(|s| s == name)
            || self.tags.iter().any(|t| tags.contains(t))
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRule {
    pub id: Uuid,
    pub name: String,
    pub metric: Metric,
    pub op: Op,
    pub threshold: Threshold,
    /// Hysteresis: a firing alert clears only once the value no longer passes this.
    pub clear_threshold: Option<f64>,
    pub for_secs: u64,
    pub severity: AlertSeverity,
    pub scope: Scope,
    pub mount: String,
    pub container: String,
    pub channels: Vec<String>,
    pub repeat_secs: u64,
    pub notify_resolved: bool,
    pub enabled: bool,
    /// Fires at the server's own health threshold of this level for its metric (config,
    /// then tag and server overrides) instead of `threshold`, clearing 5 points lower. The
    /// default CPU, memory and disk rules do; editing the threshold ends it.
    pub follows_health: Option<AlertSeverity>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where an alert episode stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds, `for_secs` not yet over.
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

impl FromStr for AlertState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "firing" => Ok(Self::Firing),
            "resolved" => Ok(Self::Resolved),
            _ => Err(format!(
                "'{s}' is not an alert state: pending, firing or resolved"
            )),
        }
    }
}

/// The value an alert was last seen at.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Observed {
    Number(f64),
    Word(String),
}

/// One episode of one rule on one server (and mount or container).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub server_id: Uuid,
    /// The mount or container; empty for server-wide metrics.
    pub subject: String,
    pub state: AlertState,
    pub value: Option<Observed>,
    pub started_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub last_notified_at: Option<DateTime<Utc>>,
    pub acked_at: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub ack_comment: Option<String>,
}

/// Whether `text` matches a shell-style glob: `*` any run, `?` one character.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    // Most rules say `*`, or name one mount: no matching machinery for those.
    if glob == "*" {
        return true;
    }
    if !glob.contains(['*', '?']) {
        return glob == text;
    }
    if glob.is_ascii() && text.is_ascii() {
        return wildcard(glob.as_bytes(), text.as_bytes());
    }
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    wildcard(&g, &t)
}

/// `*`/`?` matching over any slice of characters (bytes for ASCII, chars otherwise).
fn wildcard<C: Copy + PartialEq + From<u8>>(g: &[C], t: &[C]) -> bool {
    let (star, any) = (C::from(b'*'), C::from(b'?'));
    // Iterative matching with one backtrack point: linear for the globs people write.
    let (mut gi, mut ti) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == any || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == star {
            back = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = back {
            gi = sg + 1;
            ti = st + 1;
            back = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_matches("*", "/"));
        assert!(glob_matches("/var/*", "/var/lib/data"));
        assert!(!glob_matches("/var/*", "/srv"));
        assert!(glob_matches("web-?", "web-1"));
        assert!(!glob_matches("web-?", "web-10"));
        assert!(glob_matches("*db*", "postgres-db-1"));
        assert!(glob_matches("", ""));
        assert!(!glob_matches("", "x"));
    }

    #[test]
    fn words_parse_back() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>(), Ok(m));
        }
        for o in Op::ALL {
            assert_eq!(o.as_str().parse::<Op>(), Ok(o));
        }
        assert!("cpu".parse::<Metric>().is_err());
    }

    #[test]
    fn comparisons() {
        assert!(Op::Ge.holds(75.0, 75.0));
        assert!(!Op::Gt.holds(75.0, 75.0));
        assert!(Op::Lt.holds(500.0, 600.0));
        assert!(Op::Eq.holds_text("offline", "offline"));
        assert!(Op::Ne.holds_text("online", "offline"));
    }

    #[test]
    fn an_empty_scope_covers_everyone() {
        let tags = vec!["prod".to_string()];
        assert!(Scope::default().covers("web-1", &tags));
        let s = Scope {
            tags: vec!["db".into()],
            servers: vec!["web-2".into()],
        };
        assert!(!s.covers("web-1", &tags));
        assert!(s.covers("web-2", &tags));
        assert!(s.covers("x", &["db".to_string()]));
    }
}
