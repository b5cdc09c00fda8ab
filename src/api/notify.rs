//! `/api/notification-channels` and `/api/notifications` (issue #13): admins manage where
//! notifications go, send a test message, and read the outbox with each delivery's attempts.
//! No response holds a channel's secret: sealed fields show as `[sealed]`, with `has_secret`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Admin;
use super::error::ApiError;
use super::json::{parse_id, JsonObject, Params};
use super::AppState;
use crate::notify::{self, ChannelInput, NotifyError};
use crate::store::notifications::NotificationFilter;

/// The test endpoint's deadline for the receiver's answer.
const TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        match e {
            NotifyError::Invalid(v) => v.into(),
            NotifyError::NotFound => ApiError::not_found("id", "no such notification channel"),
            NotifyError::InUse { rules } => ApiError::Conflict {
                field: "id".into(),
                message: format!(
                    "alert rules still name this channel: {}; remove it from them first",
                    rules.join(", ")
                ),
            },
            NotifyError::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn input(body: &JsonObject) -> Result<ChannelInput, ApiError> {
    body.only(&["name", "kind", "enabled", "config"])?;
    let config = match body.0.get("config") {
        None => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(ApiError::bad("config", "expected a JSON object")),
    };
    Ok(ChannelInput {
        name: body.string("name")?,
        kind: body.string("kind")?,
        enabled: body.bool("enabled")?,
        config,
    })
}

pub async fn list(State(st): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let items = notify::channel::list(&st.store).await?;
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

pub async fn create(
    State(st): State<AppState>,
    Admin(c): Admin,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let view = notify::channel::create(&st.store, input(&body)?, &c.actor).await?;
    Ok((StatusCode::CREATED, Json(json!(view))))
}

pub async fn update(
    State(st): State<AppState>,
    Admin(c): Admin,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let view = notify::channel::update(&st.store, id, input(&body)?, &c.actor).await?;
    Ok(Json(json!(view)))
}

pub async fn remove(
    State(st): State<AppState>,
    Admin(c): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    notify::channel::delete(&st.store, parse_id("id", &id)?, &c.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/notification-channels/{id}/test`: 200 with what the receiver said, whether it
/// took the message or not (`delivered`).
pub async fn test(
    State(st): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let a = notify::test_channel(&st.store, id, TEST_TIMEOUT).await?;
    Ok(Json(json!({
        "delivered": a.delivered,
        "status": a.http_status,
        "answer": a.answer,
        "error": a.error,
    })))
}

/// `GET /api/notifications?channel=&status=&limit=&offset=`, newest first; `channel` is a
/// channel's id or name.
pub async fn notifications(
    State(st): State<AppState>,
    _: Admin,
    q: Params,
) -> Result<Json<Value>, ApiError> {
    q.only(&["channel", "status", "limit", "offset"])?;
    let channel_id = match q.get("channel") {
        None => None,
        Some(c) => match uuid::Uuid::parse_str(c) {
            Ok(id) => Some(id),
            Err(_) => Some(
                st.store
                    .channels()
                    .await?
                    .into_iter()
                    .find(|r| r.name == c)
                    .map(|r| r.id)
                    .ok_or_else(|| {
                        ApiError::bad("channel", format!("no channel with id or name '{c}'"))
                    })?,
            ),
        },
    };
    let status = match q.get("status") {
        None => None,
        Some(s @ ("pending" | "delivered" | "failed")) => Some(s.to_string()),
        Some(s) => {
            return Err(ApiError::bad(
                "status",
                format!("'{s}' is not a delivery status: pending, delivered or failed"),
            ))
        }
    };
    let filter = NotificationFilter {
        channel_id,
        status,
        limit: q.uint("limit", 1, 1000)?.unwrap_or(100),
        offset: q.uint("offset", 0, u32::MAX)?.unwrap_or(0),
    };
    let (total, items) = st.store.notifications(&filter).await?;
    Ok(Json(json!({ "total": total, "items": items })))
}
