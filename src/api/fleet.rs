//! `/api/dashboard/summary`: the fleet at a glance.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::auth::Viewer;
use super::error::ApiError;
use super::json::Params;
use super::AppState;
use crate::config::Thresholds;
use crate::inventory::{Server, ServerStatus};
use crate::model::thresholds_for;
use crate::store::{ActivityFilter, LatestSample};

/// healthy / warning / critical from the thresholds; offline when not polled successfully.
///
/// Between its first failed poll and `offline_after_failures` a server stays online, but its
/// latest stored sample predates that failure: judging the sample would put "critical" beside
/// an "unreachable" reason, two polls in one row. Such a server is "unknown" until a poll
/// succeeds again. The failure count is the signal, not `last_poll_at > last_sample_at`: a
/// successful poll also stamps `last_poll_at` after the sample's `taken_at`
/// (scheduler::transition), so that comparison holds after every poll.
pub fn health(
    server: &Server,
    status: ServerStatus,
    s: Option<&LatestSample>,
    t: &Thresholds,
) -> &'static str {
    if !matches!(status, ServerStatus::Online) {
        return match status {
            ServerStatus::Stale => "warning",
            ServerStatus::Disabled | ServerStatus::Unknown => "unknown",
            _ => "offline",
        };
    }
    if server.consecutive_failures > 0 {
        return "unknown";
    }
    let Some(s) = s else { return "unknown" };
    let over = |v: Option<f64>, limit: f64| v.is_some_and(|v| v >= limit);
    if over(s.cpu_busy_percent, t.cpu_critical_percent)
        || over(s.memory_percent, t.memory_critical_percent)
        || over(s.disk_percent, t.disk_critical_percent)
    {
        "critical"
    } else if over(s.cpu_busy_percent, t.cpu_warning_percent)
        || over(s.memory_percent, t.memory_warning_percent)
        || over(s.disk_percent, t.disk_warning_percent)
    {
        "warning"
    } else {
        "healthy"
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn avg(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64 * 10.0).round() / 10.0)
}

pub async fn summary(State(st): State<AppState>, _: Viewer) -> Result<Json<Value>, ApiError> {
    Ok(Json(summary_json(&st).await?))
}

/// The summary's JSON: `GET /api/dashboard/summary` and the MCP tools `get_dashboard_summary`
/// and `list_servers` (issue #15) answer from this one function, so they cannot disagree.
///
/// # Errors
/// The store fails.
pub async fn summary_json(st: &AppState) -> Result<Value, ApiError> {
    let now = Utc::now();
    let interval = st.settings.poll_interval_secs;
    let servers = st.store.servers().await?;
    let latest: HashMap<_, _> = st
        .store
        .latest_samples(None)
        .await?
        .into_iter()
        .map(|l| (l.server_id, l))
        .collect();
    let statuses: Vec<_> = servers
        .iter()
        .map(|s| (s, s.effective_status(now, interval)))
        .collect();
    let (firing, firing_by_server) = st.store.firing_counts().await?;
    let overrides = st.store.threshold_overrides().await?;
    let online: Vec<_> = statuses
        .iter()
        .filter(|(_, st)| *st == ServerStatus::Online)
        .map(|(s, _)| s.id)
        .collect();

    let counts: HashMap<&str, u64> = st
        .store
        .container_counts(&online)
        .await?
        .into_iter()
        .map(|(c, n)| (c.as_str(), n))
        .collect();
    let online_latest: Vec<&LatestSample> = online.iter().filter_map(|id| latest.get(id)).collect();
    let rows: Vec<Value> = statuses
        .iter()
        .map(|(s, status)| {
            let l = latest.get(&s.id);
            json!({
                "id": s.id,
                "name": s.name,
                "host": s.host,
                "tags": s.tags,
                "status": status,
                "health": health(
                    s,
                    *status,
                    l,
                    &thresholds_for(&st.settings.thresholds, &overrides, &s.name, &s.tags),
                ),
                "reason": s.reason,
                "last_sample_at": s.last_sample_at,
                // By the server's clock, so the dashboard can tell old values without
                // trusting the viewer's clock.
                "sample_age_secs": s.last_sample_at.map(|t| (now - t).num_seconds().max(0)),
                "cpu_percent": l.and_then(|l| l.cpu_busy_percent).map(round1),
                "memory_percent": l.and_then(|l| l.memory_percent).map(round1),
                "disk_percent": l.and_then(|l| l.disk_percent).map(round1),
                "load1": l.and_then(|l| l.load1),
                "alerts_firing": firing_by_server.get(&s.id).copied().unwrap_or(0),
            })
        })
        .collect();
    let (_, recent) = st
        .store
        .activity(&ActivityFilter {
            limit: 10,
            ..Default::default()
        })
        .await?;
    let count = |want: &[ServerStatus]| statuses.iter().filter(|(_, s)| want.contains(s)).count();
    let running = counts.get("running").copied().unwrap_or(0);
    let stopped = counts.get("stopped").copied().unwrap_or(0);
    let error = counts.get("error").copied().unwrap_or(0);
    Ok(json!({
        "generated_at": now,
        // What "recent" means for the sample ages above.
        "poll_interval_secs": interval,
        "total_servers": servers.len(),
        "online_servers": count(&[ServerStatus::Online]),
        "offline_servers": count(&[ServerStatus::Offline, ServerStatus::HostKeyChanged]),
        "stale_servers": count(&[ServerStatus::Stale]),
        "unknown_servers": count(&[ServerStatus::Unknown]),
        "disabled_servers": count(&[ServerStatus::Disabled]),
        "total_containers": running + stopped + error,
        "running_containers": running,
        "stopped_containers": stopped,
        "error_containers": error,
        "avg_cpu_percent": avg(online_latest.iter().map(|l| l.cpu_busy_percent)),
        "avg_memory_percent": avg(online_latest.iter().map(|l| l.memory_percent)),
        "avg_disk_percent": avg(online_latest.iter().map(|l| l.disk_percent)),
        "firing_alerts": firing,
        "servers": rows,
        "recent_activities": recent,
    }))
}

/// Most server ids one sparkline request may name (the overview shows 300 rows at a time).
const MAX_SPARKLINE_IDS: usize = 1000;

/// `/api/dashboard/sparklines?minutes=60&points=30[&ids=ID,ID,...]`: the CPU of the named servers
/// (or of all) in `points` equal slices of the last `minutes`, in one answer; apart from the
/// summary so the overview asks only for the rows it shows.
pub async fn sparklines(
    State(st): State<AppState>,
    _: Viewer,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    p.only(&["minutes", "points", "ids"])?;
    let minutes = p.uint("minutes", 1, 24 * 60)?.unwrap_or(60);
    let points = p.uint("points", 2, 240)?.unwrap_or(30);
    let ids = p
        .get("ids")
        .map(|list| {
            let ids = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    uuid::Uuid::parse_str(s)
                        .map_err(|_| ApiError::bad("ids", format!("'{s}' is not a server id")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if ids.len() > MAX_SPARKLINE_IDS {
                return Err(ApiError::bad(
                    "ids",
                    format!("at most {MAX_SPARKLINE_IDS} ids per request"),
                ));
            }
            Ok(ids)
        })
        .transpose()?;
    let until = Utc::now();
    let since = until - chrono::Duration::minutes(i64::from(minutes));
    let items = st
        .store
        .cpu_sparklines(ids.as_deref(), since, until, points as usize)
        .await?;
    Ok(Json(
        json!({ "since": since, "until": until, "points": points, "items": items }),
    ))
}
