//! The activity log's vocabulary: every user action and system event is an
//! [`ActivityEvent`], turned into a stored entry here and logged through tracing at the same
//! time, so the audit trail and the logs cannot drift apart. Types are `noun_verb`.
//! Nothing secret goes in: servers are named by id and name, keys by path and fingerprint.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::outcome::Severity;
use crate::store::{NewActivity, RetentionCounts, Store, StoreError};
use crate::text;

/// Why a cleanup removed history.
#[derive(Debug, Clone, PartialEq)]
pub enum Cleanup {
    /// Each tier past its age.
    Age {
        raw_days: u64,
        hourly_days: u64,
        daily_days: u64,
    },
    /// The file over `max_db_size_mb`: the oldest of `tier` before `before` went.
    SizeCap {
        max_db_size_mb: u64,
        tier: crate::history::Tier,
        before: chrono::DateTime<chrono::Utc>,
    },
}

/// Every kind of entry the log can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum ActivityEvent {
    SystemStarted {
        version: String,
        listen: String,
    },
    SystemStopped,
    /// `fleetpoll db backup`: an online copy of the database was written.
    DatabaseBackedUp {
        path: String,
        bytes: u64,
    },
    /// `fleetpoll db vacuum`: the file was rewritten.
    DatabaseVacuumed {
        before: u64,
        after: u64,
    },
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
        why: Cleanup,
    },
    /// An alert rule's condition held (for its time): the alert fires.
    AlertFiring {
        alert_id: Uuid,
        rule: String,
        severity: crate::alerts::AlertSeverity,
        metric: String,
        subject: String,
        value: String,
        threshold: String,
    },
    AlertResolved {
        alert_id: Uuid,
        rule: String,
        subject: String,
        value: String,
    },
    AlertAcknowledged {
        alert_id: Uuid,
        rule: String,
        subject: String,
        comment: Option<String>,
        /// The channel, when not the CLI, the API or the dashboard: `mcp` (issue #15), so an
        /// auditor can tell an assistant's acknowledgement from a person's.
        via: Option<&'static str>,
    },
    AlertRuleCreated {
        name: String,
        rule: serde_json::Value,
    },
    AlertRuleUpdated {
        name: String,
        changes: serde_json::Value,
    },
    AlertRuleDeleted {
        name: String,
    },
    SilenceCreated {
        silence: crate::alerts::Silence,
    },
    /// Health thresholds set for a tag or a server.
    ThresholdsOverridden {
        kind: String,
        name: String,
        thresholds: serde_json::Value,
    },
    ThresholdOverrideRemoved {
        kind: String,
        name: String,
    },
    /// Many servers of one group (a /24, a tag) fail with one reason at once.
    OutageStarted {
        group: String,
        reason: String,
        failing: usize,
        total: usize,
    },
    OutageEnded {
        group: String,
        since: DateTime<Utc>,
    },
    /// More than `outage_fraction` of the whole fleet failing at once: the poller's own
    /// network or load, not the hosts.
    PollerDegraded {
        reason: String,
        failing: usize,
        total: usize,
    },
    /// A silence ended: at its end time, or early by an operator.
    SilenceExpired {
        silence: crate::alerts::Silence,
        early: bool,
    },
    /// Entries of a condition that recurred at every poll, counted instead of written (see
    /// [`Folding`]).
    EntriesFolded {
        kind: &'static str,
        count: u64,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    // Notification channels and deliveries (issue #13, `notify`). Channels are named by name
    // and kind; their secrets never reach an entry.
    ChannelCreated {
        name: String,
        kind: String,
    },
    /// `changes` names the fields that changed; secret fields only as "changed".
    ChannelUpdated {
        name: String,
        changes: serde_json::Value,
    },
    ChannelDeleted {
        name: String,
        kind: String,
    },
    /// A receiver acknowledged a notification (a 2xx, or the SMTP server accepted it).
    NotificationSent {
        channel: String,
        kind: String,
        notification_id: String,
        group_key: String,
        attempts: i64,
        http_status: Option<i64>,
    },
    /// Given up: no attempt succeeded within the delivery window.
    NotificationFailed {
        channel: String,
        kind: String,
        notification_id: String,
        group_key: String,
        attempts: i64,
        last_error: String,
    },
}

impl ActivityEvent {
    /// The stored `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SystemStarted { .. } => "system_started",
            Self::SystemStopped => "system_stopped",
            Self::DatabaseBackedUp { .. } => "database_backed_up",
            Self::DatabaseVacuumed { .. } => "database_vacuumed",
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
            Self::EntriesFolded { .. } => "entries_folded",
            Self::AlertFiring { .. } => "alert_firing",
            Self::AlertResolved { .. } => "alert_resolved",
            Self::AlertAcknowledged { .. } => "alert_acknowledged",
            Self::AlertRuleCreated { .. } => "alert_rule_created",
            Self::AlertRuleUpdated { .. } => "alert_rule_updated",
            Self::AlertRuleDeleted { .. } => "alert_rule_deleted",
            Self::SilenceCreated { .. } => "silence_created",
            Self::ThresholdsOverridden { .. } => "thresholds_overridden",
            Self::ThresholdOverrideRemoved { .. } => "threshold_override_removed",
            Self::OutageStarted { .. } => "outage_started",
            Self::OutageEnded { .. } => "outage_ended",
            Self::PollerDegraded { .. } => "poller_degraded",
            Self::SilenceExpired { .. } => "silence_expired",
            Self::ChannelCreated { .. } => "channel_created",
            Self::ChannelUpdated { .. } => "channel_updated",
            Self::ChannelDeleted { .. } => "channel_deleted",
            Self::NotificationSent { .. } => "notification_sent",
            Self::NotificationFailed { .. } => "notification_failed",
        }
    }

    /// Kinds a host can bring back at every poll with new text (a new docker error, a new OS
    /// string from a host that drops each session, an unreadable line that comes and goes, a
    /// new host key): one entry each per server and [`Folding`] window, the rest counted.
    /// Status changes (online, offline) are never folded: each is an event an auditor needs.
    pub fn may_recur_per_poll(&self) -> bool {
        matches!(
            self,
            Self::DockerUnavailable { .. }
                | Self::DockerAvailable
                | Self::PlatformDetected { .. }
                | Self::ServerDegraded { .. }
                | Self::ServerRecovered
                | Self::HostKeyChanged { .. }
        )
    }

    pub fn severity(&self) -> Severity {
        match self {
            Self::HostKeyChanged { .. }
            | Self::OutageStarted { .. }
            | Self::PollerDegraded { .. } => Severity::Critical,
            Self::AlertFiring { severity, .. } => match severity {
                crate::alerts::AlertSeverity::Critical => Severity::Critical,
                crate::alerts::AlertSeverity::Warning => Severity::Warning,
            },
            Self::ServerOffline { .. }
            | Self::ServerDegraded { .. }
            | Self::HostKeyTrusted { .. } => Severity::Warning,
            Self::DockerUnavailable { .. } | Self::UserLoginFailed { .. } => Severity::Warning,
            Self::NotificationFailed { .. } => Severity::Warning,
            _ => Severity::Info,
        }
    }

    fn message(&self, server: Option<&str>) -> String {
        let s = server.unwrap_or("?");
        match self {
            Self::SystemStarted { version, listen } => format!("fleetpoll {version} started, listening on {listen}"),
            Self::SystemStopped => "fleetpoll stopped".into(),
            Self::DatabaseBackedUp { path, bytes } => {
                format!("Database backed up to {path} ({})", crate::text::bytes(*bytes))
            }
            Self::DatabaseVacuumed { before, after } => format!(
                "Database vacuumed: {} -> {}",
                crate::text::bytes(*before),
                crate::text::bytes(*after)
            ),
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
            Self::RetentionCleanup { counts, why } => {
                let what = format!(
                    "{} raw, {} hourly and {} daily rows or chunks; {} freed",
                    counts.raw,
                    counts.hourly,
                    counts.daily,
                    crate::text::bytes(counts.bytes_freed)
                );
                match why {
                    Cleanup::Age { raw_days, hourly_days, daily_days } => format!(
                        "Retention removed history past its age (raw {raw_days} d, hourly {hourly_days} d, daily {daily_days} d): {what}"
                    ),
                    Cleanup::SizeCap { max_db_size_mb, tier, before } => format!(
                        "The database was over its size cap of {max_db_size_mb} MB: removed {} history before {}: {what}",
                        tier.as_str(),
                        before.format("%Y-%m-%d %H:%M UTC")
                    ),
                }
            }
            Self::AlertFiring { rule, subject, value, threshold, .. } => format!(
                "Alert '{rule}' firing on {s}{}: {value} (threshold {threshold})",
                on(subject)
            ),
            Self::AlertResolved { rule, subject, value, .. } => {
                format!("Alert '{rule}' resolved on {s}{}: {value}", on(subject))
            }
            Self::AlertAcknowledged { rule, subject, comment, .. } => format!(
                "Alert '{rule}' on {s}{} acknowledged{}",
                on(subject),
                comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
            ),
            Self::AlertRuleCreated { name, .. } => format!("Alert rule '{name}' created"),
            Self::AlertRuleUpdated { name, .. } => format!("Alert rule '{name}' updated"),
            Self::AlertRuleDeleted { name } => format!("Alert rule '{name}' deleted"),
            Self::OutageStarted { group, reason, failing, total } => {
                format!("Outage of {group}: {failing} of {total} servers {reason}")
            }
            Self::OutageEnded { group, since } => format!(
                "Outage of {group} since {} UTC is over",
                since.format("%Y-%m-%d %H:%M")
            ),
            Self::PollerDegraded { reason, failing, total } => format!(
                "The poller is degraded: {failing} of {total} servers {reason} at once (its own network or load, not the hosts); their notifications wait"
            ),
            Self::ThresholdsOverridden { kind, name, thresholds } => {
                format!("Health thresholds of {kind} {name} set: {thresholds}")
            }
            Self::ThresholdOverrideRemoved { kind, name } => {
                format!("Health thresholds of {kind} {name} back to the configured ones")
            }
            Self::SilenceCreated { silence: x } => format!(
                "Silence for {} from {} to {} UTC: {}",
                matchers(x),
                x.starts_at.format("%Y-%m-%d %H:%M"),
                x.ends_at.format("%Y-%m-%d %H:%M"),
                x.comment
            ),
            Self::SilenceExpired { silence: x, early } => format!(
                "Silence for {} {}",
                matchers(x),
                if *early { "ended early" } else { "is over" }
            ),
            Self::EntriesFolded { kind, count, since, until } => format!(
                "{count} more {kind} entries of {s} from {} to {} UTC were not written one by one: the condition recurred at every poll",
                since.format("%Y-%m-%d %H:%M"),
                until.format("%H:%M")
            ),
            Self::ChannelCreated { name, kind } => format!("Notification channel {name} ({kind}) created"),
            Self::ChannelUpdated { name, .. } => format!("Notification channel {name} updated"),
            Self::ChannelDeleted { name, kind } => format!("Notification channel {name} ({kind}) deleted"),
            Self::NotificationSent { channel, group_key, attempts, .. } => format!(
                "Notification {group_key} delivered to {channel} (attempt {attempts})"
            ),
            Self::NotificationFailed { channel, group_key, attempts, last_error, .. } => format!(
                "Notification {group_key} to {channel} given up after {attempts} attempts: {last_error}"
            ),
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            Self::SystemStarted { version, listen } => {
                json!({ "version": version, "listen": listen })
            }
            Self::DatabaseBackedUp { path, bytes } => json!({ "path": path, "bytes": bytes }),
            Self::DatabaseVacuumed { before, after } => {
                json!({ "bytes_before": before, "bytes_after": after })
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
            Self::RetentionCleanup { counts, why } => {
                let mut d = json!({
                    "raw": counts.raw,
                    "hourly": counts.hourly,
                    "daily": counts.daily,
                    "rows": counts.total(),
                    "bytes_freed": counts.bytes_freed,
                });
                let extra = match why {
                    Cleanup::Age {
                        raw_days,
                        hourly_days,
                        daily_days,
                    } => json!({
                        "reason": "age", "retention_days": raw_days,
                        "rollup_hourly_days": hourly_days, "rollup_daily_days": daily_days,
                    }),
                    Cleanup::SizeCap {
                        max_db_size_mb,
                        tier,
                        before,
                    } => json!({
                        "reason": "size_cap", "max_db_size_mb": max_db_size_mb,
                        "tier": tier.as_str(), "before": before,
                    }),
                };
                if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
                    d.extend(extra.clone());
                }
                d
            }
            Self::EntriesFolded {
                kind,
                count,
                since,
                until,
            } => json!({ "type": kind, "count": count, "since": since, "until": until }),
            Self::AlertFiring {
                alert_id,
                rule,
                severity,
                metric,
                subject,
                value,
                threshold,
            } => json!({
                "alert_id": alert_id, "rule": rule, "severity": severity, "metric": metric,
                "subject": subject, "value": value, "threshold": threshold,
            }),
            Self::AlertResolved {
                alert_id,
                rule,
                subject,
                value,
            } => json!({ "alert_id": alert_id, "rule": rule, "subject": subject, "value": value }),
            Self::AlertAcknowledged {
                alert_id,
                rule,
                subject,
                comment,
                via,
            } => {
                let mut d = json!({ "alert_id": alert_id, "rule": rule, "subject": subject, "comment": comment });
                if let Some(via) = via {
                    d["via"] = json!(via);
                }
                d
            }
            Self::AlertRuleCreated { name, rule } => json!({ "rule": name, "definition": rule }),
            Self::AlertRuleUpdated { name, changes } => json!({ "rule": name, "changes": changes }),
            Self::AlertRuleDeleted { name } => json!({ "rule": name }),
            Self::SilenceCreated { silence } => json!({ "silence": silence }),
            Self::ThresholdsOverridden {
                kind,
                name,
                thresholds,
            } => json!({ "kind": kind, "name": name, "thresholds": thresholds }),
            Self::ThresholdOverrideRemoved { kind, name } => json!({ "kind": kind, "name": name }),
            Self::OutageStarted {
                group,
                reason,
                failing,
                total,
            } => json!({ "group": group, "reason": reason, "failing": failing, "total": total }),
            Self::OutageEnded { group, since } => json!({ "group": group, "since": since }),
            Self::PollerDegraded {
                reason,
                failing,
                total,
            } => json!({ "reason": reason, "failing": failing, "total": total }),
            Self::SilenceExpired { silence, early } => {
                json!({ "silence": silence, "early": early })
            }
            Self::ChannelCreated { name, kind } | Self::ChannelDeleted { name, kind } => {
                json!({ "channel": name, "kind": kind })
            }
            Self::ChannelUpdated { name, changes } => {
                json!({ "channel": name, "changes": changes })
            }
            Self::NotificationSent {
                channel,
                kind,
                notification_id,
                group_key,
                attempts,
                http_status,
            } => json!({
                "channel": channel, "kind": kind, "notification_id": notification_id,
                "group_key": group_key, "attempts": attempts, "http_status": http_status,
            }),
            Self::NotificationFailed {
                channel,
                kind,
                notification_id,
                group_key,
                attempts,
                last_error,
            } => json!({
                "channel": channel, "kind": kind, "notification_id": notification_id,
                "group_key": group_key, "attempts": attempts, "last_error": last_error,
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
        // Hosts choose much of what goes into an entry (a docker error, an OS name, an
        // unreadable line): every string is bounded, whatever its source.
        message: text::clip_owned(event.message(server.map(|(_, n)| n)), text::MAX_ENTRY_TEXT),
        details: {
            let mut d = match (event.details(), &actor.source) {
                (serde_json::Value::Object(mut m), Some(src)) => {
                    m.insert("source".into(), json!(src));
                    serde_json::Value::Object(m)
                }
                (d, _) => d,
            };
            text::clip_json(&mut d, text::MAX_ENTRY_TEXT);
            d
        },
    }
}

/// Logs committed entries through tracing, at a level matching their severity.
/// Info entries go to the console at DEBUG instead of INFO: set by `demo`, whose fifty hosts
/// would otherwise print three lines each (added, platform, online) over its login. The
/// entries are stored all the same; warnings and critical ones still show.
static INFO_AT_DEBUG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// See [`INFO_AT_DEBUG`].
pub fn info_entries_at_debug() {
    INFO_AT_DEBUG.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn emit(entries: &[NewActivity]) {
    let quiet = INFO_AT_DEBUG.load(std::sync::atomic::Ordering::Relaxed);
    for e in entries {
        let server = e.server_name.as_deref().unwrap_or("-");
        match e.severity {
            Severity::Info if quiet => {
                tracing::debug!(kind = %e.kind, actor = %e.actor, server, "{}", e.message)
            }
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
                    crate::text::timestamp(&r.timestamp),
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

/// A silence's matchers in words: "rule 'cpu warning', server web-1".
fn matchers(s: &crate::alerts::Silence) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &s.rule {
        parts.push(format!("rule '{r}'"));
    }
    if let Some(v) = &s.server {
        parts.push(format!("server {v}"));
    }
    if let Some(t) = &s.tag {
        parts.push(format!("tag {t}"));
    }
    parts.join(", ")
}

/// " (mount /srv)"-style suffix naming an alert's mount or container, if any.
fn on(subject: &str) -> String {
    if subject.is_empty() {
        String::new()
    } else {
        format!(" ({subject})")
    }
}

/// Folds a condition that recurs at every poll into one entry per server, kind and window:
/// the first entry of a window is written, the rest of the window only counted, and when the
/// window closes the count is written as one [`ActivityEvent::EntriesFolded`]. A host printing
/// a new docker error at every poll so costs two entries an hour, not one per poll.
pub struct Folding {
    window: chrono::Duration,
    state: std::sync::Mutex<FoldState>,
}

#[derive(Default)]
struct FoldState {
    open: std::collections::HashMap<(Uuid, &'static str), Fold>,
    /// Counts of windows closed by `admit`, waiting for `closed` to hand them out.
    closed: Vec<(Uuid, String, ActivityEvent)>,
}

struct Fold {
    server_name: String,
    since: DateTime<Utc>,
    last: DateTime<Utc>,
    count: u64,
}

impl Fold {
    fn report(&self, server: Uuid, kind: &'static str) -> Option<(Uuid, String, ActivityEvent)> {
        (self.count > 0).then(|| {
            (
                server,
                self.server_name.clone(),
                ActivityEvent::EntriesFolded {
                    kind,
                    count: self.count,
                    since: self.since,
                    until: self.last,
                },
            )
        })
    }
}

impl Folding {
    pub fn new(window: std::time::Duration) -> Self {
        Self {
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1)),
            state: std::sync::Mutex::new(FoldState::default()),
        }
    }

    /// Whether this server's event is to be written now (true), or counted into its window.
    pub fn admit(&self, server: (Uuid, &str), event: &ActivityEvent, now: DateTime<Utc>) -> bool {
        if !event.may_recur_per_poll() {
            return true;
        }
        let Ok(mut state) = self.state.lock() else {
            return true;
        };
        let kind = event.kind();
        if let Some(f) = state.open.get_mut(&(server.0, kind)) {
            if now - f.since < self.window {
                f.count += 1;
                f.last = now;
                return false;
            }
        }
        let fresh = Fold {
            server_name: server.1.to_string(),
            since: now,
            last: now,
            count: 0,
        };
        if let Some(old) = state.open.insert((server.0, kind), fresh) {
            if let Some(r) = old.report(server.0, kind) {
                state.closed.push(r);
            }
        }
        true
    }

    /// The counts of windows that have closed by `now`, as entries to write; their windows
    /// are forgotten.
    pub fn closed(&self, now: DateTime<Utc>) -> Vec<(Uuid, String, ActivityEvent)> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        let mut out = std::mem::take(&mut state.closed);
        let window = self.window;
        state.open.retain(|(server, kind), f| {
            if now - f.since < window {
                return true;
            }
            out.extend(f.report(*server, kind));
            false
        });
        out
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

    #[test]
    fn a_condition_recurring_at_every_poll_is_one_entry_and_a_count_per_window() {
        let f = Folding::new(std::time::Duration::from_secs(3600));
        let server = (Uuid::new_v4(), "web-1");
        let t0 = Utc::now();
        let docker = |m: &str| ActivityEvent::DockerUnavailable { message: m.into() };
        assert!(f.admit(server, &docker("a"), t0));
        for i in 1..=59 {
            let at = t0 + chrono::Duration::minutes(i);
            assert!(!f.admit(server, &docker(&format!("new text {i}")), at));
        }
        // Status changes and other servers are never folded.
        assert!(f.admit(
            server,
            &ActivityEvent::ServerOffline {
                reason: "x".into(),
                message: "y".into()
            },
            t0
        ));
        assert!(f.admit((Uuid::new_v4(), "web-2"), &docker("a"), t0));
        assert!(
            f.closed(t0 + chrono::Duration::minutes(59)).is_empty(),
            "window still open"
        );

        let later = t0 + chrono::Duration::minutes(61);
        let closed = f.closed(later);
        assert_eq!(closed.len(), 1, "web-2 folded nothing");
        let (id, name, event) = &closed[0];
        assert_eq!((*id, name.as_str()), (server.0, "web-1"));
        assert!(
            matches!(
                event,
                ActivityEvent::EntriesFolded {
                    kind: "docker_unavailable",
                    count: 59,
                    ..
                }
            ),
            "{event:?}"
        );
        // After the window, the condition is written again.
        assert!(f.admit(server, &docker("b"), later));
    }

    #[test]
    fn a_window_reopened_by_a_new_entry_still_reports_its_count() {
        let f = Folding::new(std::time::Duration::from_secs(60));
        let server = (Uuid::new_v4(), "web-1");
        let t0 = Utc::now();
        let e = ActivityEvent::DockerAvailable;
        assert!(f.admit(server, &e, t0));
        assert!(!f.admit(server, &e, t0 + chrono::Duration::seconds(30)));
        assert!(f.admit(server, &e, t0 + chrono::Duration::seconds(90)));
        let closed = f.closed(t0 + chrono::Duration::seconds(91));
        assert_eq!(closed.len(), 1);
        assert!(matches!(
            closed[0].2,
            ActivityEvent::EntriesFolded { count: 1, .. }
        ));
    }

    #[test]
    fn every_string_of_an_entry_is_bounded() {
        let huge = "x".repeat(2_000_000);
        let e = entry(
            &ActivityEvent::DockerUnavailable {
                message: huge.clone(),
            },
            &Actor::system(),
            Some((Uuid::new_v4(), "web-1")),
            Utc::now(),
        );
        assert!(
            e.message.len() < crate::text::MAX_ENTRY_TEXT + 64,
            "{}",
            e.message.len()
        );
        assert!(e.message.ends_with("more bytes]"));
        assert!(e.details.to_string().len() < crate::text::MAX_ENTRY_TEXT + 128);
    }
}
