//! A rule as an operator writes it: every field optional (a PATCH names only what changes),
//! validated into an [`AlertRule`] with errors that name the field.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AlertRule, AlertSeverity, Metric, Op, Scope, Threshold};
use crate::inventory::ValidationError;

/// The fields of a rule as given; `None` keeps the current value (or the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleInput {
    pub name: Option<String>,
    pub metric: Option<String>,
    pub op: Option<String>,
    /// A number, or a word for `container_state` and `server_status`.
    pub threshold: Option<serde_json::Value>,
    /// `Some(None)` removes the clear threshold.
    pub clear_threshold: Option<Option<f64>>,
    pub for_secs: Option<u64>,
    pub severity: Option<String>,
    pub scope: Option<Scope>,
    pub mount: Option<String>,
    pub container: Option<String>,
    pub channels: Option<Vec<String>>,
    pub repeat_secs: Option<u64>,
    pub notify_resolved: Option<bool>,
    pub enabled: Option<bool>,
}

/// A patch is an input applied to an existing rule.
pub type RulePatch = RuleInput;

/// Words `container_state` compares with.
const CONTAINER_STATES: &[&str] = &[
    "running",
    "exited",
    "restarting",
    "paused",
    "created",
    "dead",
    "removing",
    "unhealthy",
];
/// Words `server_status` compares with (`stale`: online, but no sample for 3 intervals,
/// found by the writer's sweep rather than by a poll).
const SERVER_STATUSES: &[&str] = &["online", "offline", "host_key_changed", "stale"];
/// A week: longer holds or repeats are mistakes.
const MAX_SECS: u64 = 7 * 86_400;

fn bad(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(field, message)
}

impl RuleInput {
    /// A new rule: `name`, `metric`, `op` and `threshold` are required.
    ///
    /// # Errors
    /// The first missing or invalid field.
    pub fn create(&self, id: Uuid, now: DateTime<Utc>) -> Result<AlertRule, ValidationError> {
        for (field, given) in [
            ("name", self.name.is_some()),
            ("metric", self.metric.is_some()),
            ("op", self.op.is_some()),
            ("threshold", self.threshold.is_some()),
        ] {
            if !given {
                return Err(bad(field, "is required"));
            }
        }
        let base = AlertRule {
            id,
            name: String::new(),
            metric: Metric::CpuPercent,
            op: Op::Ge,
            threshold: Threshold::Number(0.0),
            clear_threshold: None,
            for_secs: 0,
            severity: AlertSeverity::Warning,
            scope: Scope::default(),
            mount: "*".into(),
            container: "*".into(),
            channels: Vec::new(),
            repeat_secs: 0,
            notify_resolved: true,
            enabled: true,
            follows_health: None,
            created_at: now,
            updated_at: now,
        };
        self.apply(&base, now)
    }

    /// The rule as this input leaves it, validated as a whole.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn apply(
        &self,
        base: &AlertRule,
        now: DateTime<Utc>,
    ) -> Result<AlertRule, ValidationError> {
        let mut r = base.clone();
        r.updated_at = now;
        // A rule given its own numbers no longer follows the health thresholds.
        if self.threshold.is_some() || self.clear_threshold.is_some() || self.metric.is_some() {
            r.follows_health = None;
        }
        if let Some(name) = &self.name {
            let name = name.trim();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(bad("name", "must be 1-64 printable characters"));
            }
            r.name = name.to_string();
        }
        let metric_changed = self.metric.is_some();
        if let Some(m) = &self.metric {
            r.metric = m.parse().map_err(|e: String| bad("metric", e))?;
        }
        if let Some(o) = &self.op {
            r.op = o.parse().map_err(|e: String| bad("op", e))?;
        }
        if let Some(t) = &self.threshold {
            r.threshold = threshold(r.metric, t)?;
        } else if metric_changed {
            // The old threshold was for another metric: check it fits the new one.
            let v = match &r.threshold {
                Threshold::Number(n) => serde_json::json!(n),
                Threshold::Word(w) => serde_json::json!(w),
            };
            r.threshold = threshold(r.metric, &v)?;
        }
        if r.metric.is_textual() && !matches!(r.op, Op::Eq | Op::Ne) {
            return Err(bad(
                "op",
                format!("{} compares words: use == or !=", r.metric),
            ));
        }
        if let Some(c) = self.clear_threshold {
            r.clear_threshold = c;
        }
        if let Some(c) = r.clear_threshold {
            let Threshold::Number(t) = r.threshold else {
                return Err(bad(
                    "clear_threshold",
                    format!("{} has no clear threshold", r.metric),
                ));
            };
            let on_clearing_side = match r.op {
                Op::Gt | Op::Ge => c <= t,
                Op::Lt | Op::Le => c >= t,
                Op::Eq | Op::Ne => false,
            };
            if !c.is_finite() || !on_clearing_side {
                return Err(bad(
                    "clear_threshold",
                    format!(
                        "{c} must be on the clearing side of the threshold {t} (op {})",
                        r.op.as_str()
                    ),
                ));
            }
        }
        if let Some(s) = self.for_secs {
            if s > MAX_SECS {
                return Err(bad("for_secs", "at most 604800 (7 days)"));
            }
            r.for_secs = s;
        }
        if let Some(s) = self.repeat_secs {
            if s != 0 && !(60..=MAX_SECS).contains(&s) {
                return Err(bad("repeat_secs", "0 (never) or 60 to 604800 seconds"));
            }
            r.repeat_secs = s;
        }
        if let Some(s) = &self.severity {
            r.severity = s.parse().map_err(|e: String| bad("severity", e))?;
        }
        if let Some(s) = &self.scope {
            for t in s.tags.iter().chain(&s.servers) {
                if t.is_empty() || t.len() > 64 {
                    return Err(bad("scope", format!("'{t}' is not a tag or server name")));
                }
            }
            r.scope = s.clone();
        }
        if let Some(g) = &self.mount {
            r.mount = glob(g, "mount")?;
        }
        if let Some(g) = &self.container {
            r.container = glob(g, "container")?;
        }
        if r.mount != "*" && !r.metric.per_mount() {
            return Err(bad(
                "mount",
                format!("{} is not per mount: leave mount out", r.metric),
            ));
        }
        if r.container != "*" && !r.metric.per_container() {
            return Err(bad(
                "container",
                format!("{} is not per container: leave container out", r.metric),
            ));
        }
        if let Some(c) = &self.channels {
            if c.len() > 16 || c.iter().any(|n| n.is_empty() || n.len() > 64) {
                return Err(bad(
                    "channels",
                    "at most 16 channel names of 1-64 characters",
                ));
            }
            r.channels = c.clone();
        }
        if let Some(b) = self.notify_resolved {
            r.notify_resolved = b;
        }
        if let Some(b) = self.enabled {
            r.enabled = b;
        }
        Ok(r)
    }
}

fn threshold(metric: Metric, v: &serde_json::Value) -> Result<Threshold, ValidationError> {
    if metric.is_textual() {
        let words = if metric == Metric::ContainerState {
            CONTAINER_STATES
        } else {
            SERVER_STATUSES
        };
        return match v.as_str() {
            Some(w) if words.contains(&w) => Ok(Threshold::Word(w.to_string())),
            _ => Err(bad(
                "threshold",
                format!("{metric} compares with one of {}", words.join(", ")),
            )),
        };
    }
    match v.as_f64() {
        Some(n) if n.is_finite() => Ok(Threshold::Number(n)),
        _ => Err(bad("threshold", format!("{metric} compares with a number"))),
    }
}

fn glob(g: &str, field: &'static str) -> Result<String, ValidationError> {
    if g.is_empty() || g.len() > 256 || g.chars().any(char::is_control) {
        return Err(bad(
            field,
            "a glob of 1-256 printable characters (* and ? match)",
        ));
    }
    Ok(g.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(metric: &str, op: &str, threshold: serde_json::Value) -> RuleInput {
        RuleInput {
            name: Some("r".into()),
            metric: Some(metric.into()),
            op: Some(op.into()),
            threshold: Some(threshold),
            ..Default::default()
        }
    }

    fn field(r: Result<AlertRule, ValidationError>) -> &'static str {
        r.expect_err("invalid").field
    }

    #[test]
    fn a_rule_needs_its_four_fields_and_names_the_missing_one() {
        let mut i = input("cpu_percent", ">", serde_json::json!(90));
        i.op = None;
        assert_eq!(field(i.create(Uuid::new_v4(), Utc::now())), "op");
        assert!(input("cpu_percent", ">", serde_json::json!(90))
            .create(Uuid::new_v4(), Utc::now())
            .is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let now = Utc::now();
        let id = Uuid::new_v4();
        assert_eq!(
            field(input("cpu", ">", serde_json::json!(1)).create(id, now)),
            "metric"
        );
        assert_eq!(
            field(input("cpu_percent", "=>", serde_json::json!(1)).create(id, now)),
            "op"
        );
        assert_eq!(
            field(input("cpu_percent", ">", serde_json::json!("x")).create(id, now)),
            "threshold"
        );
        assert_eq!(
            field(input("server_status", ">", serde_json::json!("offline")).create(id, now)),
            "op"
        );
        assert_eq!(
            field(input("server_status", "==", serde_json::json!("gone")).create(id, now)),
            "threshold"
        );
        let mut i = input("cpu_percent", ">", serde_json::json!(90));
        i.mount = Some("/var/*".into());
        assert_eq!(
            field(i.create(id, now)),
            "mount",
            "a glob on a metric without one"
        );
        let mut i = input("cpu_percent", ">", serde_json::json!(90));
        i.clear_threshold = Some(Some(95.0));
        assert_eq!(field(i.create(id, now)), "clear_threshold");
        let mut i = input("disk_percent", ">", serde_json::json!(90));
        i.mount = Some("/srv/*".into());
        i.clear_threshold = Some(Some(85.0));
        assert!(i.create(id, now).is_ok());
    }

    #[test]
    fn a_patch_changing_the_metric_rechecks_the_old_threshold() {
        let now = Utc::now();
        let rule = input("cpu_percent", "==", serde_json::json!(90))
            .create(Uuid::new_v4(), now)
            .expect("valid");
        let patch = RulePatch {
            metric: Some("server_status".into()),
            ..Default::default()
        };
        assert_eq!(field(patch.apply(&rule, now)), "threshold");
    }
}
