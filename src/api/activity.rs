//! `/api/activity`: the audit trail, newest first, filtered and paged.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Viewer;
use super::error::ApiError;
use super::json::Params;
use super::AppState;
use crate::activity::SEVERITIES;
use crate::store::ActivityFilter;

pub const MAX_LIMIT: u32 = 1000;

pub async fn list(
    State(st): State<AppState>,
    _: Viewer,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    p.only(&[
        "type",
        "server_id",
        "actor",
        "severity",
        "since",
        "until",
        "limit",
        "offset",
    ])?;
    let severity = p.get("severity").map(str::to_string);
    if let Some(s) = &severity {
        if !SEVERITIES.contains(&s.as_str()) {
            return Err(ApiError::bad(
                "severity",
                format!("'{s}' is not one of {}", SEVERITIES.join(", ")),
            ));
        }
    }
    let filter = ActivityFilter {
        kind: p.get("type").map(str::to_string),
        server_id: p.uuid("server_id")?,
        actor: p.get("actor").map(str::to_string),
        severity,
        since: p.time("since")?,
        until: p.time("until")?,
        limit: p.uint("limit", 1, MAX_LIMIT)?.unwrap_or(50),
        offset: p.uint("offset", 0, u32::MAX)?.unwrap_or(0),
    };
    let (total, items) = st.store.activity(&filter).await?;
    Ok(Json(
        json!({ "total": total, "limit": filter.limit, "offset": filter.offset, "items": items }),
    ))
}
