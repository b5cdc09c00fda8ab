//! Per-server history: metrics over a period (downsampled), latest disks, latest containers,
//! and one container's history.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Viewer;
use super::error::ApiError;
use super::json::{parse_id, Params};
use super::AppState;

/// Enough points for a chart at any screen width; more is noise and bytes.
const DEFAULT_POINTS: u32 = 500;

/// The periods a history may be asked for, shortest first.
pub const PERIODS: &[&str] = &["1h", "24h", "7d", "30d", "90d", "1y"];

/// `period=1h|24h|7d|30d|90d|1y` (default 1h) or an explicit `since`/`until` in RFC 3339.
fn range(p: &Params) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    range_of(p.get("period"), p.time("since")?, p.time("until")?)
}

/// The window of a period (default 1h) or of `since`/`until`; shared with the MCP tools, so a
/// bad period gets the same message there.
///
/// # Errors
/// An unknown period, both a period and `since`, or `since` not before `until`.
pub fn range_of(
    period: Option<&str>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let until = until.unwrap_or_else(Utc::now);
    let since = match (since, period) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "period",
                "give either period or since, not both",
            ))
        }
        (Some(s), None) => s,
        (None, period) => {
            let d = match period.unwrap_or("1h") {
                "1h" => Duration::hours(1),
                "24h" => Duration::hours(24),
                "7d" => Duration::days(7),
                "30d" => Duration::days(30),
                "90d" => Duration::days(90),
                "1y" => Duration::days(365),
                other => {
                    return Err(ApiError::bad(
                        "period",
                        format!("'{other}' is not one of 1h, 24h, 7d, 30d, 90d, 1y"),
                    ))
                }
            };
            until - d
        }
    };
    if since >= until {
        return Err(ApiError::bad("since", "must be before until"));
    }
    Ok((since, until))
}

/// A history request's time window and how many points it may return.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub points: i64,
}

/// `period` or `since`/`until`, and `points` (1-5000, default 500); nothing else.
fn window(p: &Params) -> Result<Window, ApiError> {
    p.only(&["period", "since", "until", "points"])?;
    let (since, until) = range(p)?;
    let points = p.uint("points", 1, 5000)?.unwrap_or(DEFAULT_POINTS);
    Ok(Window {
        since,
        until,
        points: i64::from(points),
    })
}

/// The server named in the path (404 when unknown) and the window asked for.
async fn server_window(st: &AppState, id: &str, p: &Params) -> Result<(Uuid, Window), ApiError> {
    let id = parse_id("id", id)?;
    let w = window(p)?;
    st.store.server(id).await?;
    Ok((id, w))
}

pub async fn history(
    State(st): State<AppState>,
    _: Viewer,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let (id, w) = server_window(&st, &id, &p).await?;
    Ok(Json(history_json(&st, id, &w).await?))
}

/// A known server's history over `w`: `GET /api/servers/{id}/metrics` and the MCP tool
/// `get_server_metrics`.
///
/// # Errors
/// The store fails.
pub async fn history_json(st: &AppState, id: Uuid, w: &Window) -> Result<Value, ApiError> {
    let h = st
        .store
        .metric_history(id, w.since, w.until, w.points, st.settings.keep())
        .await?;
    Ok(json!({
        "server_id": id, "since": w.since, "until": w.until, "tier": h.tier,
        "resolution_secs": h.resolution_secs, "points": h.items.len(), "items": h.items,
    }))
}

pub async fn disks(
    State(st): State<AppState>,
    _: Viewer,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    st.store.server(id).await?;
    let items = st.store.latest_disks(id).await?;
    Ok(Json(json!({ "server_id": id, "items": items })))
}

/// Each mount's use over the period: the disk chart's series.
pub async fn disk_history(
    State(st): State<AppState>,
    _: Viewer,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let (id, w) = server_window(&st, &id, &p).await?;
    let h = st
        .store
        .disk_history(id, w.since, w.until, w.points, st.settings.keep())
        .await?;
    Ok(Json(json!({
        "server_id": id, "since": w.since, "until": w.until, "tier": h.tier,
        "resolution_secs": h.resolution_secs, "mounts": h.mounts,
    })))
}

/// Containers per page at most: a host with 20,000 containers made a 7.7 MB answer.
pub const MAX_CONTAINERS: u32 = 1000;

/// `GET /api/servers/{id}/containers?limit=&offset=`: the latest sample's containers by name,
/// a page at a time (default 500), with their `total`.
pub async fn containers(
    State(st): State<AppState>,
    _: Viewer,
    Path(id): Path<String>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    p.only(&["limit", "offset"])?;
    let limit = p.uint("limit", 1, MAX_CONTAINERS)?.unwrap_or(500) as usize;
    let offset = p.uint("offset", 0, u32::MAX)?.unwrap_or(0) as usize;
    let id = parse_id("id", &id)?;
    st.store.server(id).await?;
    Ok(Json(containers_json(&st, id, limit, offset).await?))
}

/// A page of a known server's latest containers: `GET /api/servers/{id}/containers` and the
/// MCP tool `get_app_metrics` without `app`.
///
/// # Errors
/// The store fails.
pub async fn containers_json(
    st: &AppState,
    id: Uuid,
    limit: usize,
    offset: usize,
) -> Result<Value, ApiError> {
    let all = st.store.latest_containers(Some(id)).await?;
    let total = all.len();
    let items: Vec<_> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, c)| c)
        .collect();
    Ok(json!({
        "server_id": id, "total": total, "limit": limit, "offset": offset, "items": items,
    }))
}

pub async fn container_history(
    State(st): State<AppState>,
    _: Viewer,
    Path((id, container)): Path<(String, String)>,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    let (id, w) = server_window(&st, &id, &p).await?;
    Ok(Json(container_history_json(&st, id, &container, &w).await?))
}

/// One container's history on a known server (404 naming `container` when it never ran
/// there): `GET /api/servers/{id}/containers/{name}/metrics` and the MCP tool
/// `get_app_metrics`.
///
/// # Errors
/// An unknown container, or the store fails.
pub async fn container_history_json(
    st: &AppState,
    id: Uuid,
    container: &str,
    w: &Window,
) -> Result<Value, ApiError> {
    if !st.store.container_known(id, container).await? {
        return Err(ApiError::not_found(
            "container",
            format!("no container '{container}' on this server"),
        ));
    }
    let h = st
        .store
        .container_history(
            id,
            container,
            w.since,
            w.until,
            w.points,
            st.settings.keep(),
        )
        .await?;
    Ok(json!({
        "server_id": id, "container": container, "since": w.since, "until": w.until,
        "tier": h.tier, "resolution_secs": h.resolution_secs, "points": h.items.len(),
        "items": h.items,
    }))
}
