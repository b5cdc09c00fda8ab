//! `/api/activity`: the audit trail, newest first, filtered and paged.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::Viewer;
use super::error::ApiError;
use super::json::Params;
use super::AppState;
use crate::activity::{export, ExportFormat};
use crate::outcome::Severity;
use crate::store::ActivityFilter;

pub const MAX_LIMIT: u32 = 1000;
/// Exports may be long; still bounded so one request cannot exhaust memory.
pub const MAX_EXPORT: u32 = 100_000;

pub async fn list(State(st): State<AppState>, _: Viewer, p: Params) -> Result<Response, ApiError> {
    p.only(&[
        "format",
        "type",
        "server_id",
        "actor",
        "severity",
        "since",
        "until",
        "limit",
        "offset",
    ])?;
    let format = p
        .get("format")
        .map(|f| {
            f.parse::<ExportFormat>()
                .map_err(|m| ApiError::bad("format", m))
        })
        .transpose()?;
    let severity = p
        .get("severity")
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|m| ApiError::bad("severity", m))
        })
        .transpose()?;
    let filter = ActivityFilter {
        kind: p.get("type").map(str::to_string),
        server_id: p.uuid("server_id")?,
        actor: p.get("actor").map(str::to_string),
        severity,
        since: p.time("since")?,
        until: p.time("until")?,
        limit: match format {
            Some(_) => p.uint("limit", 1, MAX_EXPORT)?.unwrap_or(MAX_EXPORT),
            None => p.uint("limit", 1, MAX_LIMIT)?.unwrap_or(50),
        },
        offset: p.uint("offset", 0, u32::MAX)?.unwrap_or(0),
    };
    Ok(match format {
        Some(f) => {
            let (mime, ext) = match f {
                ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
                ExportFormat::JsonLines => ("application/x-ndjson", "jsonl"),
            };
            let (_, items) = st.store.activity(&filter).await?;
            (
                [
                    (header::CONTENT_TYPE, mime.to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"fleetpoll-activity.{ext}\""),
                    ),
                ],
                export(&items, f),
            )
                .into_response()
        }
        None => Json(list_json(&st, &filter).await?).into_response(),
    })
}

/// A page of the log: `GET /api/activity` and the MCP tool `get_activity_logs`.
///
/// # Errors
/// The store fails.
pub async fn list_json(st: &AppState, filter: &ActivityFilter) -> Result<Value, ApiError> {
    let (total, items) = st.store.activity(filter).await?;
    Ok(json!({ "total": total, "limit": filter.limit, "offset": filter.offset, "items": items }))
}

/// The types present in the log, so a filter offers only what can match.
pub async fn types(
    State(st): State<AppState>,
    _: Viewer,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "items": st.store.activity_types().await? })))
}
