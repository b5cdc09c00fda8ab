//! The tools: their arguments (each struct's JSON Schema is the tool's input schema, derived
//! with schemars as rmcp does), and what each does. Every answer is the JSON of the API
//! endpoint that shows the same thing, made by the same function, plus MCP's own paging
//! hints (`next`, `note`); nothing here reads the store for what the API already answers.

use chrono::{DateTime, Utc};
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::budget::{self, MAX_ANSWER_BYTES};
use super::McpError;
use crate::alerts::AlertState;
use crate::api::auth::Caller;
use crate::api::metrics::Window;
use crate::api::{activity, alerts, fleet, metrics, servers, AppState};
use crate::auth::Role;
use crate::inventory::Server;
use crate::outcome::Severity;
use crate::store::{ActivityFilter, AlertFilter, StoreError};

/// `get_dashboard_summary` takes nothing.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A page of the fleet's servers, filtered.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListServersArgs {
    /// Only servers carrying this tag.
    pub tag: Option<String>,
    /// Only servers in this status: online, offline, host_key_changed, stale, unknown, disabled.
    pub status: Option<String>,
    /// Only servers of this health: healthy, warning, critical, offline, unknown.
    pub health: Option<String>,
    /// Servers per page, 1-100 (default 25).
    pub limit: Option<u32>,
    /// Servers to skip (default 0): the previous answer's `next.offset`.
    pub offset: Option<u32>,
}

/// A server's metric history.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerMetricsArgs {
    /// The server's name or id.
    pub server: String,
    /// How far back: 1h, 24h, 7d, 30d, 90d or 1y (default 1h).
    pub period: Option<String>,
    /// At most this many points, each the mean of its slice of the period, 1-500 (default
    /// 60); fewer when 8 KB cannot hold them.
    pub points: Option<u32>,
}

/// Containers' ("apps'") history on one server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppMetricsArgs {
    /// The server's name or id.
    pub server: String,
    /// A container's name or id; without it, every container of the server, a page at a time.
    pub app: Option<String>,
    /// How far back: 1h, 24h, 7d, 30d, 90d or 1y (default 1h).
    pub period: Option<String>,
    /// At most this many points per container, 1-500 (default 60 for one container, 6 for
    /// all).
    pub points: Option<u32>,
    /// Without `app`: containers per page, 1-50 (default 5).
    pub limit: Option<u32>,
    /// Without `app`: containers to skip (the previous answer's `next.offset`).
    pub offset: Option<u32>,
}

/// A page of the activity log (the audit trail), newest first.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityArgs {
    /// Only entries of this type, e.g. server_offline, alert_firing, server_added.
    pub activity_type: Option<String>,
    /// Only entries about this server (name or id).
    pub server: Option<String>,
    /// Only entries by this actor, e.g. system, token:ci, user:alice.
    pub actor: Option<String>,
    /// Only entries of this severity: info, warning, critical.
    pub severity: Option<String>,
    /// Only entries at or after this time (RFC 3339, e.g. 2026-11-24T05:00:00Z).
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339).
    pub until: Option<String>,
    /// Entries per page, 1-100 (default 20).
    pub limit: Option<u32>,
    /// Entries to skip (the previous answer's `next.offset`).
    pub offset: Option<u32>,
}

/// A page of alerts, newest first.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsArgs {
    /// Only alerts in this state: pending, firing, resolved.
    pub state: Option<String>,
    /// Only alerts of this server (name or id).
    pub server: Option<String>,
    /// Alerts per page, 1-100 (default 20).
    pub limit: Option<u32>,
    /// Alerts to skip (the previous answer's `next.offset`).
    pub offset: Option<u32>,
}

/// One server, explained.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainArgs {
    /// The server's name or id.
    pub server: String,
}

/// Acknowledge an open alert: no more repeat notifications until it resolves.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AckArgs {
    /// The alert's id (from get_alerts).
    pub alert: String,
    /// Why, for the audit trail (at most 1,000 characters).
    pub comment: Option<String>,
    /// Must be true: this changes the alert and is audited. Ask the user first.
    pub confirm: Option<bool>,
}

const SUMMARY: &str = "get_dashboard_summary";
const LIST_SERVERS: &str = "list_servers";
const SERVER_METRICS: &str = "get_server_metrics";
const APP_METRICS: &str = "get_app_metrics";
const ACTIVITY: &str = "get_activity_logs";
const ALERTS: &str = "get_alerts";
const EXPLAIN: &str = "explain_server";
const ACK: &str = "acknowledge_alert";

/// Every tool, with its input schema.
pub fn list() -> Vec<Tool> {
    fn tool<T: JsonSchema + 'static>(name: &'static str, description: &'static str) -> Tool {
        Tool::new(name, description, schema_for_type::<T>())
            .annotate(ToolAnnotations::new().read_only(true).open_world(false))
    }
    vec![
        tool::<NoArgs>(
            SUMMARY,
            "The fleet at a glance: servers by status, containers by state, average CPU, \
             memory and disk of online servers, firing alerts by severity, newest activity. \
             Same figures as GET /api/dashboard/summary, without its per-server rows \
             (list_servers has them).",
        ),
        tool::<ListServersArgs>(
            LIST_SERVERS,
            "Servers with status, health, reason and latest CPU/memory/disk/load, filtered by \
             tag, status or health, a page at a time (follow `next`). The summary's rows.",
        ),
        tool::<ServerMetricsArgs>(
            SERVER_METRICS,
            "A server's CPU, memory, swap and load history over a period, downsampled to fit \
             (GET /api/servers/{id}/metrics).",
        ),
        tool::<AppMetricsArgs>(
            APP_METRICS,
            "A container's CPU, memory, network and I/O history on a server; without `app`, \
             every container of the server with its latest state and a short history, a page \
             at a time.",
        ),
        tool::<ActivityArgs>(
            ACTIVITY,
            "The activity log (audit trail), newest first, filtered by type, server, actor, \
             severity and time, a page at a time (GET /api/activity).",
        ),
        tool::<AlertsArgs>(
            ALERTS,
            "Alerts, newest first, by state and server, a page at a time (GET /api/alerts).",
        ),
        tool::<ExplainArgs>(
            EXPLAIN,
            "Why a server is in its state: status, health, reason, sections that could not be \
             read, firing alerts and the last sample's figures, in a few lines.",
        ),
        Tool::new(
            ACK,
            "Acknowledge an open alert (operators and admins; needs confirm: true). Audited as \
             the API's acknowledge, with via = mcp.",
            schema_for_type::<AckArgs>(),
        )
        .annotate(
            ToolAnnotations::new()
                .read_only(false)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        ),
    ]
}

/// Runs the tool `name` for `caller` on `args`.
///
/// # Errors
/// A tool error: a bad or unknown argument (named), a role too low, no confirmation, or the
/// store failed.
pub async fn call(
    st: &AppState,
    caller: &Caller,
    name: &str,
    args: Value,
) -> Result<Value, McpError> {
    match name {
        SUMMARY => {
            parse::<NoArgs>(args)?;
            summary(st).await
        }
        LIST_SERVERS => list_servers(st, parse(args)?).await,
        SERVER_METRICS => server_metrics(st, parse(args)?).await,
        APP_METRICS => app_metrics(st, parse(args)?).await,
        ACTIVITY => activity_logs(st, parse(args)?).await,
        ALERTS => alert_list(st, parse(args)?).await,
        EXPLAIN => explain(st, parse(args)?).await,
        ACK => acknowledge(st, caller, parse(args)?).await,
        other => Err(McpError::arg("name", format!("no tool '{}'", clip(other)))),
    }
}

/// The arguments as `T`; a mistake names the argument (`limit: invalid type ...`, `server:
/// missing`, `colour: not an argument of this tool`).
fn parse<T: DeserializeOwned>(args: Value) -> Result<T, McpError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde says which field is missing or unknown in its message, with the path at the
        // object itself; a wrong type has the field in the path.
        let named = message.split('`').nth(1).map(str::to_string);
        let field = if path.is_empty() || path == "." {
            named.unwrap_or_else(|| "arguments".into())
        } else {
            path
        };
        McpError::arg(&field, message)
    })
}

/// A value a caller gave, shortened for an error message.
fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// `value` when it lies in `min..=max`, else an error naming `field`.
fn bounded(
    field: &str,
    value: Option<u32>,
    min: u32,
    max: u32,
    default: u32,
) -> Result<u32, McpError> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(McpError::arg(
            field,
            format!("{v} is not between {min} and {max}"),
        )),
    }
}

/// The server named by `name_or_id`: an id first (names cannot look like one), else a name.
async fn server(st: &AppState, name_or_id: &str) -> Result<Server, McpError> {
    let missing = || {
        McpError::arg(
            "server",
            format!(
                "no server named or with id '{}' (list_servers shows them)",
                clip(name_or_id)
            ),
        )
    };
    let looked_up = match Uuid::parse_str(name_or_id.trim()) {
        Ok(id) => st.store.server(id).await,
        Err(_) => st.store.server_by_name(name_or_id.trim()).await,
    };
    match looked_up {
        Ok(s) => Ok(s),
        Err(StoreError::NotFound(_)) => Err(missing()),
        Err(e) => Err(McpError::Internal(e.to_string())),
    }
}

fn time(field: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, McpError> {
    v.map(|t| {
        DateTime::parse_from_rfc3339(t.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                McpError::arg(
                    field,
                    format!(
                        "'{}' is not an RFC 3339 time such as 2026-11-24T05:00:00Z",
                        clip(t)
                    ),
                )
            })
    })
    .transpose()
}

async fn summary(st: &AppState) -> Result<Value, McpError> {
    let mut v = fleet::summary_json(st).await?;
    if let Some(o) = v.as_object_mut() {
        // One row per server does not fit 8 KB for a fleet of any size; list_servers pages them.
        o.shift_remove("servers");
        o.insert(
            "servers_note".into(),
            json!("one row per server: list_servers (filter by tag, status, health)"),
        );
    }
    let mut cut = 0;
    while !budget::fits(&v) {
        match v["recent_activities"].as_array_mut() {
            Some(a) if !a.is_empty() => {
                a.pop();
                cut += 1;
            }
            _ => break,
        }
    }
    if cut > 0 {
        v["note"] = json!(format!(
            "{cut} of the newest activities were left out to fit in 8 KB: get_activity_logs has them"
        ));
    }
    Ok(v)
}

const STATUSES: &[&str] = &[
    "online",
    "offline",
    "host_key_changed",
    "stale",
    "unknown",
    "disabled",
];
const HEALTHS: &[&str] = &["healthy", "warning", "critical", "offline", "unknown"];

fn one_of(field: &str, v: Option<String>, allowed: &[&str]) -> Result<Option<String>, McpError> {
    match v {
        Some(s) if !allowed.contains(&s.as_str()) => Err(McpError::arg(
            field,
            format!("'{}' is not one of {}", clip(&s), allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

async fn list_servers(st: &AppState, a: ListServersArgs) -> Result<Value, McpError> {
    let status = one_of("status", a.status, STATUSES)?;
    let health = one_of("health", a.health, HEALTHS)?;
    let limit = bounded("limit", a.limit, 1, 100, 25)? as usize;
    let offset = a.offset.unwrap_or(0) as usize;
    let summary = fleet::summary_json(st).await?;
    let rows = summary["servers"].as_array().cloned().unwrap_or_default();
    let is = |row: &Value, key: &str, want: &Option<String>| {
        want.as_deref().is_none_or(|w| row[key].as_str() == Some(w))
    };
    let matching: Vec<Value> = rows
        .into_iter()
        .filter(|r| {
            a.tag.as_deref().is_none_or(|t| {
                r["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|x| x.as_str() == Some(t)))
            }) && is(r, "status", &status)
                && is(r, "health", &health)
        })
        .collect();
    let total = matching.len();
    let items: Vec<Value> = matching.into_iter().skip(offset).take(limit).collect();
    Ok(budget::page(
        json!({ "total": total, "limit": limit, "offset": offset, "items": items }),
        "items",
        offset,
        total,
    ))
}

/// The window of a period, with the API's own message for a bad one, naming `period`.
fn period_window(period: Option<&str>, points: u32) -> Result<Window, McpError> {
    let (since, until) = metrics::range_of(period, None, None)
        .map_err(|e| McpError::from_api(e, &[("since", "period")]))?;
    Ok(Window {
        since,
        until,
        points: i64::from(points),
    })
}

/// A history that fits: asks the store for `points`, and while the answer is too large asks
/// again for proportionally fewer (the store's own bucket means, so the shape stays true),
/// then as a last resort drops the oldest points. Says what it did in `note`.
async fn fitted_history(
    st: &AppState,
    id: Uuid,
    app: Option<&str>,
    mut w: Window,
) -> Result<Value, McpError> {
    let asked = w.points;
    let rename: &[(&str, &str)] = &[("container", "app")];
    let mut v = Value::Null;
    for _ in 0..4 {
        v = match app {
            None => metrics::history_json(st, id, &w).await?,
            Some(c) => metrics::container_history_json(st, id, c, &w)
                .await
                .map_err(|e| McpError::from_api(e, rename))?,
        };
        let size = budget::size(&v);
        let got = v["points"].as_i64().unwrap_or(0);
        if size <= MAX_ANSWER_BYTES - 300 || got <= 1 {
            break;
        }
        let share = (MAX_ANSWER_BYTES - 300) as f64 / size as f64 * 0.9;
        let fewer = ((got as f64 * share) as i64).clamp(1, w.points - 1);
        w.points = fewer.min(got - 1).max(1);
    }
    let mut v = budget::newest_points(v, "items");
    v["max_points"] = json!(w.points);
    if w.points < asked && v.get("note").is_none() {
        v["note"] = json!(format!(
            "downsampled to at most {} points (each the mean of its slice) to fit in 8 KB; \
             ask for a shorter period for more detail",
            w.points
        ));
    }
    Ok(v)
}

async fn server_metrics(st: &AppState, a: ServerMetricsArgs) -> Result<Value, McpError> {
    let points = bounded("points", a.points, 1, 500, 60)?;
    let w = period_window(a.period.as_deref(), points)?;
    let s = server(st, &a.server).await?;
    let mut v = fitted_history(st, s.id, None, w).await?;
    v["server_name"] = json!(s.name);
    Ok(v)
}

async fn app_metrics(st: &AppState, a: AppMetricsArgs) -> Result<Value, McpError> {
    let one = a.app.is_some();
    let points = bounded("points", a.points, 1, 500, if one { 60 } else { 6 })?;
    let w = period_window(a.period.as_deref(), points)?;
    let s = server(st, &a.server).await?;
    if let Some(app) = a.app.as_deref() {
        let mut v = fitted_history(st, s.id, Some(app), w).await?;
        v["server_name"] = json!(s.name);
        return Ok(v);
    }
    let limit = bounded("limit", a.limit, 1, 50, 5)? as usize;
    let offset = a.offset.unwrap_or(0) as usize;
    let mut v = metrics::containers_json(st, s.id, limit, offset).await?;
    let total = v["total"].as_u64().unwrap_or(0) as usize;
    let latest = v["items"].as_array().cloned().unwrap_or_default();
    let mut items = Vec::with_capacity(latest.len());
    for c in latest {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let mut history = metrics::container_history_json(st, s.id, &name, &w).await?;
        history["max_points"] = json!(w.points);
        items.push(json!({ "container": c, "history": history }));
    }
    v["items"] = json!(items);
    v["server_name"] = json!(s.name);
    Ok(budget::page(v, "items", offset, total))
}

async fn activity_logs(st: &AppState, a: ActivityArgs) -> Result<Value, McpError> {
    let severity = a
        .severity
        .as_deref()
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|m| McpError::arg("severity", m))
        })
        .transpose()?;
    let server_id = match a.server.as_deref() {
        Some(s) => Some(server(st, s).await?.id),
        None => None,
    };
    let filter = ActivityFilter {
        kind: a.activity_type,
        server_id,
        actor: a.actor,
        severity,
        since: time("since", a.since.as_deref())?,
        until: time("until", a.until.as_deref())?,
        limit: bounded("limit", a.limit, 1, 100, 20)?,
        offset: a.offset.unwrap_or(0),
    };
    let v = activity::list_json(st, &filter).await?;
    let total = v["total"].as_u64().unwrap_or(0) as usize;
    Ok(budget::page(v, "items", filter.offset as usize, total))
}

async fn alert_list(st: &AppState, a: AlertsArgs) -> Result<Value, McpError> {
    let state = a
        .state
        .as_deref()
        .map(|s| {
            s.parse::<AlertState>()
                .map_err(|m| McpError::arg("state", m))
        })
        .transpose()?;
    let server_id = match a.server.as_deref() {
        Some(s) => Some(server(st, s).await?.id),
        None => None,
    };
    let filter = AlertFilter {
        state,
        server_id,
        limit: bounded("limit", a.limit, 1, 100, 20)?,
        offset: a.offset.unwrap_or(0),
        ..Default::default()
    };
    let mut v = alerts::list_json(st, &filter).await?;
    v["limit"] = json!(filter.limit);
    v["offset"] = json!(filter.offset);
    let total = v["total"].as_u64().unwrap_or(0) as usize;
    Ok(budget::page(v, "items", filter.offset as usize, total))
}

/// The sections a poll could not read, from the server's reason (`parse_failed: df: ...;
/// command_failed: docker_ps: ...`, as the scheduler writes it).
fn failing_sections(reason: Option<&str>) -> Vec<String> {
    reason
        .unwrap_or_default()
        .split("; ")
        .filter_map(|part| {
            let (kind, rest) = part.split_once(": ")?;
            matches!(kind, "parse_failed" | "command_failed").then(|| {
                rest.split([':', ' '])
                    .next()
                    .unwrap_or(rest)
                    .trim()
                    .to_string()
            })
        })
        .filter(|s| !s.is_empty())
        .collect()
}

fn figure(v: &Value, suffix: &str) -> String {
    match v.as_f64() {
        Some(x) => format!("{}{suffix}", (x * 10.0).round() / 10.0),
        None => "n/a".into(),
    }
}

async fn explain(st: &AppState, a: ExplainArgs) -> Result<Value, McpError> {
    let s = server(st, &a.server).await?;
    let shown = servers::show_json(st, s.id)
        .await
        .map_err(|e| McpError::from_api(e, &[("id", "server")]))?;
    let firing = alerts::list_json(
        st,
        &AlertFilter {
            state: Some(AlertState::Firing),
            server_id: Some(s.id),
            limit: 10,
            ..Default::default()
        },
    )
    .await?;
    let last = st
        .store
        .latest_samples(Some(s.id))
        .await
        .map_err(|e| McpError::Internal(e.to_string()))?
        .into_iter()
        .next();
    let status = shown["status"].as_str().unwrap_or("unknown");
    let health = shown["health"].as_str().unwrap_or("unknown");
    let reason = shown["reason"].as_str();
    let sections = failing_sections(reason);
    let mut lines = vec![format!("{} is {status}; health {health}.", s.name)];
    if !s.enabled {
        lines.push("It is disabled: fleetpoll does not poll it.".into());
    }
    if let Some(r) = reason {
        lines.push(format!(
            "Reason: {}",
            r.chars().take(300).collect::<String>()
        ));
    }
    if !sections.is_empty() {
        lines.push(format!(
            "Sections the last poll could not read: {} (the other sections were stored).",
            sections.join(", ")
        ));
    }
    let items = firing["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        lines.push("No alert is firing.".into());
    } else {
        let named: Vec<String> = items
            .iter()
            .take(3)
            .map(|x| {
                format!(
                    "{} ({}, {}{})",
                    x["rule"].as_str().unwrap_or("?"),
                    x["severity"].as_str().unwrap_or("?"),
                    x["subject"].as_str().unwrap_or(""),
                    x["value"]
                        .as_f64()
                        .map(|v| format!(" = {v}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        lines.push(format!(
            "{} alert(s) firing: {}.",
            firing["total"].as_u64().unwrap_or(items.len() as u64),
            named.join("; ")
        ));
    }
    let last_json = json!(last);
    match &last {
        Some(l) => lines.push(format!(
            "Last sample at {}: CPU {}, memory {}, fullest disk {}, load1 {}.",
            crate::text::timestamp(&l.timestamp),
            figure(&last_json["cpu_busy_percent"], "%"),
            figure(&last_json["memory_percent"], "%"),
            figure(&last_json["disk_percent"], "%"),
            figure(&last_json["load1"], ""),
        )),
        None => lines.push("No sample stored yet.".into()),
    }
    let mut v = json!({
        "server": shown,
        "status": status,
        "health": health,
        "reason": reason,
        "failing_sections": sections,
        "firing_alerts": { "total": firing["total"], "items": items },
        "last_sample": last_json,
        "explanation": lines,
    });
    while !budget::fits(&v) {
        match v["firing_alerts"]["items"].as_array_mut() {
            Some(a) if !a.is_empty() => {
                a.pop();
                v["note"] =
                    json!("some firing alerts were left out to fit in 8 KB: get_alerts has them");
            }
            _ => break,
        }
    }
    Ok(v)
}

async fn acknowledge(st: &AppState, caller: &Caller, a: AckArgs) -> Result<Value, McpError> {
    caller
        .require(Role::Operator)
        .map_err(|e| McpError::from_api(e, &[]))?;
    if a.confirm != Some(true) {
        return Err(McpError::NotConfirmed(
            "must be true to acknowledge an alert; nothing was written (ask the user first)".into(),
        ));
    }
    let id = Uuid::parse_str(a.alert.trim())
        .map_err(|_| McpError::arg("alert", format!("'{}' is not an alert id", clip(&a.alert))))?;
    alerts::ack_json(st, id, a.comment.as_deref(), &caller.actor, Some("mcp"))
        .await
        .map_err(|e| McpError::from_api(e, &[("id", "alert")]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema() {
        let tools = list();
        assert_eq!(tools.len(), 8);
        for t in &tools {
            assert_eq!(
                t.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                t.name
            );
        }
        let ack = tools.iter().find(|t| t.name == ACK).expect("ack");
        let props = ack.input_schema.get("properties").expect("properties");
        assert!(props.get("confirm").is_some() && props.get("alert").is_some());
    }

    #[test]
    fn a_bad_argument_is_named() {
        let e = parse::<ServerMetricsArgs>(json!({ "server": "a", "points": "many" }))
            .expect_err("type");
        assert!(
            matches!(&e, McpError::Argument { field, .. } if field == "points"),
            "{e}"
        );
        let e = parse::<ServerMetricsArgs>(json!({ "period": "1h" })).expect_err("missing");
        assert!(
            matches!(&e, McpError::Argument { field, .. } if field == "server"),
            "{e}"
        );
        let e =
            parse::<ServerMetricsArgs>(json!({ "server": "a", "colour": 1 })).expect_err("unknown");
        assert!(
            matches!(&e, McpError::Argument { field, .. } if field == "colour"),
            "{e}"
        );
    }

    #[test]
    fn failing_sections_are_read_from_the_reason() {
        let r = "parse_failed: df: line 3: expected 6 columns; command_failed: docker_ps exited with status 1: denied";
        assert_eq!(failing_sections(Some(r)), ["df", "docker_ps"]);
        assert!(failing_sections(Some("unreachable: connection refused")).is_empty());
        assert!(failing_sections(None).is_empty());
    }
}
