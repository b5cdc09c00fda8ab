//! What a notification says: the webhook body of issue #13 (stored in the outbox, the same
//! on every attempt but for `sent_at`), the plain text the chat kinds and email get, and the
//! webhook signature. Pure: no I/O.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::alerts::Metric;
use crate::store::notifications::GroupedAlert;

/// The webhook body, version 1. Field order is the documented one (serde_json keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub version: u32,
    /// `firing`, `resolved`, or `test` for a channel's test message.
    pub status: String,
    /// `rule:<rule id>:<status>`: what the alerts of one notification have in common.
    pub group_key: String,
    pub alerts: Vec<AlertItem>,
    /// Set on the notification of an outage: many servers of one group failing together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<OutageItem>,
    /// When this attempt left; everything else is identical on every attempt.
    pub sent_at: DateTime<Utc>,
}

/// An outage: `group` is `subnet 10.1.2.0/24`, `tag rack-a` or `the whole fleet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageItem {
    pub group: String,
    /// Why they fail (`unreachable`, `timeout`, ...).
    pub reason: String,
    pub failing: usize,
    pub total: usize,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertItem {
    pub id: String,
    /// The rule's name.
    pub rule: String,
    pub severity: String,
    pub server_id: String,
    pub server_name: String,
    pub metric: String,
    /// The mount of a disk alert; null otherwise.
    pub mount: Option<String>,
    /// The container of a container alert; null otherwise.
    pub container: Option<String>,
    /// A number, a word (`container_state`, `server_status`), or null when unknown.
    pub value: Value,
    pub threshold: Value,
    /// What this notification tells of the alert: `firing` or `resolved`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

pub const VERSION: u32 = 1;

/// The group key of a rule's alerts changing to `status`.
pub fn group_key(rule_id: &str, status: &str) -> String {
    format!("rule:{rule_id}:{status}")
}

fn number_or_word(n: Option<f64>, w: Option<&str>) -> Value {
    match (n, w) {
        (Some(n), _) => serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
        (None, Some(w)) => Value::String(w.to_string()),
        (None, None) => Value::Null,
    }
}

impl Payload {
    /// The body for one group of intents: each alert once (an alert repeated while the
    /// group waited is listed once), in the order given.
    pub fn for_group(
        status: &str,
        group_key: String,
        alerts: &[GroupedAlert],
        now: DateTime<Utc>,
    ) -> Self {
        let mut seen = std::collections::HashSet::new();
        let items = alerts
            .iter()
            .filter(|a| seen.insert(a.alert_id.as_str()))
            .map(|a| {
                let metric = a.metric.parse::<Metric>().ok();
                let subject = (!a.subject.is_empty()).then(|| a.subject.clone());
                AlertItem {
                    id: a.alert_id.clone(),
                    rule: a.rule_name.clone(),
                    severity: a.severity.clone(),
                    server_id: a.server_id.clone(),
                    server_name: a.server_name.clone(),
                    metric: a.metric.clone(),
                    mount: subject
                        .clone()
                        .filter(|_| metric.is_some_and(Metric::per_mount)),
                    container: subject.filter(|_| metric.is_some_and(Metric::per_container)),
                    value: number_or_word(a.value, a.value_text.as_deref()),
                    threshold: number_or_word(a.threshold, a.threshold_text.as_deref()),
                    state: status.to_string(),
                    started_at: a.started_at,
                    resolved_at: a.resolved_at.filter(|_| status == "resolved"),
                }
            })
            .collect();
        Self {
            version: VERSION,
            status: status.to_string(),
            group_key,
            alerts: items,
            outage: None,
            sent_at: now,
        }
    }

    /// The body of an outage's start (`firing`) or end (`resolved`).
    pub fn outage(status: &str, outage: OutageItem, now: DateTime<Utc>) -> Self {
        Self {
            version: VERSION,
            status: status.to_string(),
            group_key: format!("outage:{}", outage.group),
            alerts: Vec::new(),
            outage: Some(outage),
            sent_at: now,
        }
    }

    /// A channel's test message: no alerts.
    pub fn test(now: DateTime<Utc>) -> Self {
        Self {
            version: VERSION,
            status: "test".into(),
            group_key: "test".into(),
            alerts: Vec::new(),
            outage: None,
            sent_at: now,
        }
    }

    /// The highest severity among the alerts, `warning` when there are none.
    pub fn severity(&self) -> &str {
        if self.outage.is_some() {
            return "critical";
        }
        if self.alerts.iter().any(|a| a.severity == "critical") {
            "critical"
        } else {
            "warning"
        }
    }

    /// One line: `[FIRING] disk critical: 3 servers`.
    pub fn title(&self) -> String {
        if self.status == "test" {
            return "[TEST] fleetpoll test message".into();
        }
        if let Some(o) = &self.outage {
            return match o.ended_at {
                None => format!(
                    "[OUTAGE] {}: {} of {} servers {}",
                    o.group, o.failing, o.total, o.reason
                ),
                Some(_) => format!("[RESOLVED] outage of {} is over", o.group),
            };
        }
        let rule = self.alerts.first().map_or("alert", |a| a.rule.as_str());
        let mut servers: Vec<&str> = self.alerts.iter().map(|a| a.server_name.as_str()).collect();
        servers.sort_unstable();
        servers.dedup();
        let n = servers.len();
        format!(
            "[{}] {rule}: {n} server{}",
            self.status.to_uppercase(),
            if n == 1 { "" } else { "s" }
        )
    }

    /// The title, then one line per alert, cut to `max` bytes with the cut said.
    pub fn text(&self, max: usize) -> String {
        let mut out = self.title();
        if self.status == "test" {
            out.push_str("\nThis channel works: fleetpoll can reach it.");
        }
        for a in &self.alerts {
            let place = match (&a.mount, &a.container) {
                (Some(m), _) => format!("{} {m}", a.server_name),
                (_, Some(c)) => format!("{} container {c}", a.server_name),
                _ => a.server_name.clone(),
            };
            // 93.456 -> "93.46", 90.0 -> "90": as a person would write them.
            let shown = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.as_f64().map_or_else(
                    || n.to_string(),
                    |f| {
                        let t = format!("{f:.2}");
                        t.trim_end_matches('0').trim_end_matches('.').to_string()
                    },
                ),
                Value::Null => "?".into(),
                other => other.to_string(),
            };
            out.push_str(&format!(
                "\n- {place}: {} {} (threshold {}, {})",
                a.metric,
                shown(&a.value),
                shown(&a.threshold),
                a.severity
            ));
        }
        crate::text::clip_owned(out, max)
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`, the `X-Fleetpoll-Signature` value.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str, server: &str, metric: &str, subject: &str, value: f64) -> GroupedAlert {
        GroupedAlert {
            intent_id: 1,
            alert_id: id.into(),
            rule_name: "disk critical".into(),
            metric: metric.into(),
            op: ">=".into(),
            severity: "critical".into(),
            threshold: Some(90.0),
            threshold_text: None,
            server_id: format!("id-{server}"),
            server_name: server.into(),
            subject: subject.into(),
            state: "firing".into(),
            value: Some(value),
            value_text: None,
            started_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            resolved_at: None,
        }
    }

    #[test]
    fn the_body_has_the_documented_fields_in_order_and_each_alert_once() {
        let now = DateTime::from_timestamp(1_700_000_100, 0).unwrap_or_default();
        let a = alert("a1", "web-1", "disk_percent", "/var", 93.5);
        let p = Payload::for_group(
            "firing",
            group_key("r1", "firing"),
            &[
                a.clone(),
                a,
                alert("a2", "web-2", "disk_percent", "/", 91.0),
            ],
            now,
        );
        let v = serde_json::to_value(&p).expect("json");
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["version", "status", "group_key", "alerts", "sent_at"]
        );
        let alerts = v["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), 2);
        let keys: Vec<&str> = alerts[0]
            .as_object()
            .expect("o")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "rule",
                "severity",
                "server_id",
                "server_name",
                "metric",
                "mount",
                "container",
                "value",
                "threshold",
                "state",
                "started_at",
                "resolved_at"
            ]
        );
        assert_eq!(alerts[0]["mount"], "/var");
        assert_eq!(alerts[0]["container"], Value::Null);
        assert_eq!(alerts[0]["value"], 93.5);
        assert_eq!(v["group_key"], "rule:r1:firing");
        assert_eq!(p.title(), "[FIRING] disk critical: 2 servers");
        let text = p.text(10_000);
        assert!(
            text.contains("web-1 /var: disk_percent 93.5 (threshold 90, critical)"),
            "{text}"
        );
    }

    #[test]
    fn container_alerts_name_the_container_and_words_stay_words() {
        let mut a = alert("a1", "db-1", "container_state", "postgres", 0.0);
        a.value = None;
        a.value_text = Some("unhealthy".into());
        a.threshold = None;
        a.threshold_text = Some("unhealthy".into());
        let p = Payload::for_group("resolved", "k".into(), &[a], Utc::now());
        assert_eq!(p.alerts[0].container.as_deref(), Some("postgres"));
        assert_eq!(p.alerts[0].mount, None);
        assert_eq!(p.alerts[0].value, "unhealthy");
        assert_eq!(p.alerts[0].state, "resolved");
    }

    #[test]
    fn text_is_cut_with_the_cut_said() {
        let alerts: Vec<GroupedAlert> = (0..200)
            .map(|i| {
                alert(
                    &format!("a{i}"),
                    &format!("web-{i}"),
                    "cpu_percent",
                    "",
                    99.0,
                )
            })
            .collect();
        let p = Payload::for_group("firing", "k".into(), &alerts, Utc::now());
        let t = p.text(1900);
        assert!(t.len() < 1900 + 40, "{}", t.len());
        assert!(t.ends_with("more bytes]"));
    }

    /// RFC 4231, test case 2.
    #[test]
    fn signature_is_hmac_sha256_in_hex() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
