//! The activity log's vocabulary: every user action and system event is an
//! [`ActivityEvent`], turned into a stored entry here and logged through tracing at the same
//! time, so the audit trail and the logs cannot drift apart. Types are `noun_verb`.
//! Nothing secret goes in: servers are named by id and name, keys by path and fingerprint.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::outcome::Severity;
use crate::store::{NewActivity, RetentionCounts, Store, StoreError};

/// Every kind of entry the log can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityEvent {
    SystemStarted {
        version: String,
        listen: String,
    },
    SystemStopped,
    ServerAdded {
        host: String,
        port: u16,
        user: String,
        key_path: String,
        tags: Vec<String>,
    },
    ServerUpdated {
        changes: serde_json::Value,
    },
    ServerRemoved,
    ServerOnline {
        previous: String,
    },
    ServerOffline {
        reason: String,
        message: String,
    },
    /// A poll worked but some sections could not be used (or worked again after that).
    ServerDegraded {
        problems: String,
    },
    ServerRecovered,
    HostKeyPinned {
        fingerprint: String,
    },
    HostKeyChanged {
        pinned: String,
        presented: String,
    },
    HostKeyTrusted {
        previous: Option<String>,
        trusted: Option<String>,
    },
    DockerUnavailable {
        message: String,
    },
    DockerAvailable,
    UserCreated {
        name: String,
        role: String,
    },
    UserUpdated {
        name: String,
        changes: serde_json::Value,
    },
    UserDeleted {
        name: String,
    },
    UserLogin {
        name: String,
    },
    UserLogout {
        name: String,
    },
    /// The attempted name only; the password never reaches the log.
    UserLoginFailed {
        attempted: String,
        reason: String,
    },
    TokenCreated {
        name: String,
        role: String,
        expires_at: Option<String>,
    },
    TokenRevoked {
        name: String,
    },
    /// The probe found a platform different from the stored one (first contact included).
    PlatformDetected {
        platform: serde_json::Value,
        summary: String,
    },
    RetentionCleanup {
        counts: RetentionCounts,
        retention_days: u64,
    },
}

impl ActivityEvent {
    /// The stored `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SystemStarted { .. } => "system_started",
            Self::SystemStopped => "system_stopped",
            Self::ServerAdded { .. } => "server_added",
            Self::ServerUpdated { .. } => "server_updated",
            Self::ServerRemoved => "server_removed",
            Self::ServerOnline { .. } => "server_online",
            Self::ServerOffline { .. } => "server_offline",
            Self::ServerDegraded { .. } => "server_degraded",
            Self::ServerRecovered => "server_recovered",
            Self::HostKeyPinned { .. } => "host_key_pinned",
            Self::HostKeyChanged { .. } => "host_key_changed",
            Self::HostKeyTrusted { .. } => "host_key_trusted",
            Self::DockerUnavailable { .. } => "docker_unavailable",
            Self::DockerAvailable => "docker_available",
            Self::PlatformDetected { .. } => "platform_detected",
            Self::UserCreated { .. } => "user_created",
            Self::UserUpdated { .. } => "user_updated",
            Self::UserDeleted { .. } => "user_deleted",
            Self::UserLogin { .. } => "user_login",
            Self::UserLogout { .. } => "user_logout",
            Self::UserLoginFailed { .. } => "user_login_failed",
            Self::TokenCreated { .. } => "token_created",
            Self::TokenRevoked { .. } => "token_revoked",
            Self::RetentionCleanup { .. } => "retention_cleanup",
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Self::HostKeyChanged { .. } => Severity::Critical,
            Self::ServerOffline { .. }
            | Self::ServerDegraded { .. }
            | Self::HostKeyTrusted { .. } => Severity::Warning,
            Self::DockerUnavailable { .. } | Self::UserLoginFailed { .. } => Severity::Warning,
            _ => Severity::Info,
        }
    }

    fn message(&self, server: Option<&str>) -> String {
        let s = server.unwrap_or("?");
        match self {
            Self::SystemStarted { version, listen } => format!("fleetpoll {version} started, listening on {listen}"),
            Self::SystemStopped => "fleetpoll stopped".into(),
            Self::ServerAdded { host, port, user, .. } => format!("Server {s} added ({user}@{host}:{port})"),
            Self::ServerUpdated { .. } => format!("Server {s} updated"),
            Self::ServerRemoved => format!("Server {s} removed"),
            Self::ServerOnline { previous } => format!("Server {s} is online (was {previous})"),
            Self::ServerOffline { reason, message } => format!("Server {s} is offline: {reason}: {message}"),
            Self::ServerDegraded { problems } => format!("Server {s} answered, but not every metric could be read: {problems}"),
            Self::ServerRecovered => format!("Server {s}: every metric reads again"),
            Self::HostKeyPinned { fingerprint } => format!("Host key of {s} pinned on first connect: {fingerprint}"),
            Self::HostKeyChanged { pinned, presented } => format!(
                "Host key of {s} CHANGED: pinned {pinned}, presented {presented}; polling refused until an operator trusts the new key"
            ),
            Self::HostKeyTrusted { previous, trusted } => format!(
                "Host key of {s} trusted: {} (was {})",
                trusted.as_deref().unwrap_or("re-pin on next connect"),
                previous.as_deref().unwrap_or("none")
            ),
            Self::DockerUnavailable { message } => format!("No container metrics from {s}: {message}"),
            Self::DockerAvailable => format!("Container metrics from {s} are available again"),
            Self::PlatformDetected { summary, .. } => format!("Platform of {s}: {summary}"),
            Self::UserCreated { name, role } => format!("User {name} created with role {role}"),
            Self::UserUpdated { name, .. } => format!("User {name} updated"),
            Self::UserDeleted { name } => format!("User {name} deleted"),
            Self::UserLogin { name } => format!("User {name} logged in"),
            Self::UserLogout { name } => format!("User {name} logged out"),
            Self::UserLoginFailed { attempted, reason } => format!("Failed login as '{attempted}': {reason}"),
            Self::TokenCreated { name, role, expires_at } => format!(
                "API token {name} created with role {role}, {}",
                expires_at.as_deref().map_or("never expires".to_string(), |e| format!("expires {e}"))
            ),
            Self::TokenRevoked { name } => format!("API token {name} revoked"),
            Self::RetentionCleanup { counts, retention_days } => format!(
                "Retention removed samples older than {retention_days} days: {} server, {} disk, {} container rows",
                counts.server_metrics, counts.disk_usage, counts.container_metrics
            ),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            Self::SystemStarted { version, listen } => {
                json!({ "version": version, "listen": listen })
            }
            Self::ServerAdded {
                host,
                port,
                user,
                key_path,
                tags,
            } => {
                json!({ "host": host, "port": port, "user": user, "key_path": key_path, "tags": tags })
            }
            Self::ServerUpdated { changes } => json!({ "changes": changes }),
            Self::ServerOnline { previous } => json!({ "previous_status": previous }),
            Self::ServerOffline { reason, message } => {
                json!({ "reason": reason, "error": message })
            }
            Self::ServerDegraded { problems } => json!({ "problems": problems }),
            Self::HostKeyPinned { fingerprint } => json!({ "fingerprint": fingerprint }),
            Self::HostKeyChanged { pinned, presented } => {
                json!({ "pinned": pinned, "presented": presented })
            }
            Self::HostKeyTrusted { previous, trusted } => {
                json!({ "previous": previous, "trusted": trusted })
            }
            Self::DockerUnavailable { message } => json!({ "error": message }),
            Self::PlatformDetected { platform, .. } => json!({ "platform": platform }),
            Self::UserCreated { name, role } => json!({ "user": name, "role": role }),
            Self::UserUpdated { name, changes } => json!({ "user": name, "changes": changes }),
            Self::UserDeleted { name } | Self::UserLogin { name } | Self::UserLogout { name } => {
                json!({ "user": name })
            }
            Self::UserLoginFailed { attempted, reason } => {
                json!({ "attempted_user": attempted, "reason": reason })
            }
            Self::TokenCreated {
                name,
                role,
                expires_at,
            } => json!({ "token": name, "role": role, "expires_at": expires_at }),
            Self::TokenRevoked { name } => json!({ "token": name }),
            Self::RetentionCleanup {
                counts,
                retention_days,
            } => json!({
                "retention_days": retention_days,
                "server_metrics": counts.server_metrics,
                "disk_usage": counts.disk_usage,
                "container_metrics": counts.container_metrics,
            }),
            _ => json!({}),
        }
    }
}

/// Who did it, and from where: `system` for the scheduler, `cli:<login>` for local
/// commands, `user:<name>` or `token:<name>` for API calls (with the client address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    /// The client address of an API call.
    pub source: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            name: SYSTEM.to_string(),
            source: None,
        }
    }

    /// The OS user running a CLI command. `sudo` keeps the invoking user; without
    /// USER/LOGNAME (cron, containers) the uid's passwd entry names the account.
    pub fn cli() -> Self {
        Self {
            name: cli_actor(),
            source: None,
        }
    }

    pub fn api(name: String, source: std::net::IpAddr) -> Self {
        Self {
            name,
            source: Some(source.to_string()),
        }
    }
}

/// `cli:<login>` of the OS user running a command.
fn cli_actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(login_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

fn login_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid_field = f.nth(1)?;
            (uid_field == uid).then(|| name.to_string())
        })
        .or(Some(format!("uid{uid}")))
}

pub const SYSTEM: &str = "system";

/// Builds the stored entry. Call [`emit`] once it is committed.
pub fn entry(
    event: &ActivityEvent,
    actor: &Actor,
    server: Option<(Uuid, &str)>,
    ts: DateTime<Utc>,
) -> NewActivity {
    NewActivity {
        ts,
        kind: event.kind().to_string(),
        severity: event.severity(),
        actor: actor.name.clone(),
        server_id: server.map(|(id, _)| id),
        server_name: server.map(|(_, n)| n.to_string()),
        message: event.message(server.map(|(_, n)| n)),
        details: match (event.details(), &actor.source) {
            (serde_json::Value::Object(mut m), Some(src)) => {
                m.insert("source".into(), json!(src));
                serde_json::Value::Object(m)
            }
            (d, _) => d,
        },
    }
}

/// Logs committed entries through tracing, at a level matching their severity.
pub fn emit(entries: &[NewActivity]) {
    for e in entries {
        let server = e.server_name.as_deref().unwrap_or("-");
        match e.severity {
            Severity::Critical => {
                tracing::error!(kind = %e.kind, actor = %e.actor, server, "{}", e.message)
            }
            Severity::Warning => {
                tracing::warn!(kind = %e.kind, actor = %e.actor, server, "{}", e.message)
            }
            Severity::Info => {
                tracing::info!(kind = %e.kind, actor = %e.actor, server, "{}", e.message)
            }
        }
    }
}

/// Stores one event and logs it.
///
/// # Errors
/// Database failure (nothing is logged then).
pub async fn record(
    store: &Store,
    event: ActivityEvent,
    actor: &Actor,
    server: Option<(Uuid, &str)>,
) -> Result<(), StoreError> {
    let e = entry(&event, actor, server, Utc::now());
    store.append_activity(std::slice::from_ref(&e)).await?;
    emit(std::slice::from_ref(&e));
    Ok(())
}

/// Export formats of the activity log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "csv" => Ok(Self::Csv),
            "jsonl" => Ok(Self::JsonLines),
            other => Err(format!(
                "'{other}' is not an export format: use csv or jsonl"
            )),
        }
    }
}

/// The entries as CSV (RFC 4180, header first) or JSON lines, for auditors' tools.
pub fn export(rows: &[crate::store::ActivityRow], format: ExportFormat) -> String {
    let mut out = String::new();
    match format {
        ExportFormat::JsonLines => {
            for r in rows {
                out.push_str(&serde_json::to_string(r).unwrap_or_default());
                out.push('\n');
            }
        }
        ExportFormat::Csv => {
            out.push_str(
                "id,timestamp,type,severity,actor,server_id,server_name,message,details\r\n",
            );
            for r in rows {
                let cells = [
                    r.id.to_string(),
                    r.timestamp.to_rfc3339(),
                    r.kind.clone(),
                    r.severity.to_string(),
                    r.actor.clone(),
                    r.server_id.clone().unwrap_or_default(),
                    r.server_name.clone().unwrap_or_default(),
                    r.message.clone(),
                    r.details.to_string(),
                ];
                let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                out.push_str(&line.join(","));
                out.push_str("\r\n");
            }
        }
    }
    out
}

/// Quotes a CSV cell when needed, and defuses spreadsheet formulas: a cell an attacker
/// controls (an attempted user name) must not run as a formula in the auditor's spreadsheet.
fn csv_cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn host_key_change_is_critical_and_names_both_keys() {
        let e = entry(
            &ActivityEvent::HostKeyChanged {
                pinned: "SHA256:old".into(),
                presented: "SHA256:new".into(),
            },
            &Actor::system(),
            Some((Uuid::nil(), "web-1")),
            Utc::now(),
        );
        assert_eq!(e.kind, "host_key_changed");
        assert_eq!(e.severity, Severity::Critical);
        assert!(
            e.message.contains("SHA256:old")
                && e.message.contains("SHA256:new")
                && e.message.contains("web-1")
        );
    }
}
