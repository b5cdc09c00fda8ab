//! `GET /api/pollers` (admins): the processes sharing this database (issue #14), with their
//! heartbeat, role and the hosts each holds.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Admin;
use super::error::ApiError;
use super::AppState;

pub async fn list(State(st): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let live_ms = i64::try_from(st.settings.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let items = st.store.pollers(chrono::Utc::now(), live_ms).await?;
    Ok(Json(json!({
        "total": items.len(),
        "live": items.iter().filter(|p| p.live).count(),
        "items": items,
    })))
}
