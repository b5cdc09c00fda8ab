//! `/api/alert-rules` (viewers read, operators write), `/api/alerts` (list, acknowledge) and
//! `/api/silences`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::auth::{Operator, Viewer};
use super::error::ApiError;
use super::json::{parse_id, JsonObject, Params};
use super::servers::verdict;
use super::AppState;
use crate::alerts::{AlertRule, AlertState, RuleInput, Scope, SilenceInput};
use crate::ops;
use crate::store::AlertFilter;

const RULE_FIELDS: &[&str] = &[
    "name",
    "metric",
    "op",
    "threshold",
    "clear_threshold",
    "for_secs",
    "severity",
    "scope",
    "mount",
    "container",
    "channels",
    "repeat_secs",
    "notify_resolved",
    "enabled",
];

pub const MAX_LIMIT: u32 = 1000;

fn secs(body: &JsonObject, key: &str) -> Result<Option<u64>, ApiError> {
    match body.0.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad(key, "expected a whole number of seconds")),
    }
}

/// A rule's fields from a request body; absent fields are `None`.
fn rule_input(body: &JsonObject) -> Result<RuleInput, ApiError> {
    body.only(RULE_FIELDS)?;
    let threshold = match body.0.get("threshold") {
        None => None,
        Some(v @ (Value::Number(_) | Value::String(_))) => Some(v.clone()),
        Some(_) => return Err(ApiError::bad("threshold", "expected a number or a word")),
    };
    let clear_threshold = match body.0.get("clear_threshold") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(v.as_f64().ok_or_else(|| {
            ApiError::bad("clear_threshold", "expected a number or null")
        })?)),
    };
    let scope = match body.0.get("scope") {
        None => None,
        Some(v) => Some(serde_json::from_value::<Scope>(v.clone()).map_err(|e| {
            ApiError::bad(
                "scope",
                format!("expected {{\"tags\": [...], \"servers\": [...]}}: {e}"),
            )
        })?),
    };
    Ok(RuleInput {
        name: body.string("name")?,
        metric: body.string("metric")?,
        op: body.string("op")?,
        threshold,
        clear_threshold,
        for_secs: secs(body, "for_secs")?,
        severity: body.string("severity")?,
        scope,
        mount: body.string("mount")?,
        container: body.string("container")?,
        channels: body.strings("channels")?,
        repeat_secs: secs(body, "repeat_secs")?,
        notify_resolved: body.bool("notify_resolved")?,
        enabled: body.bool("enabled")?,
    })
}

pub async fn list_rules(State(st): State<AppState>, _: Viewer) -> Result<Json<Value>, ApiError> {
    let rules = st.store.alert_rules().await?;
    Ok(Json(json!({ "total": rules.len(), "items": rules })))
}

pub async fn get_rule(
    State(st): State<AppState>,
    _: Viewer,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(Json(json!(st.store.alert_rule(id).await?)))
}

pub async fn create_rule(
    State(st): State<AppState>,
    Operator(c): Operator,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let input = rule_input(&body)?;
    let rule = ops::create_alert_rule(&st.store, &input, &c.actor).await?;
    Ok((StatusCode::CREATED, Json(json!(rule))))
}

pub async fn update_rule(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let patch = rule_input(&body)?;
    let rule = ops::update_alert_rule(&st.store, id, &patch, &c.actor).await?;
    Ok(Json(json!(rule)))
}

/// What a create or edit would refuse beyond the fields themselves: a taken name, a channel
/// that does not exist (the same checks and messages as `ops`).
async fn check_rule(st: &AppState, rule: &AlertRule) -> Result<(), ApiError> {
    let taken = st
        .store
        .alert_rules()
        .await?
        .iter()
        .any(|r| r.name == rule.name && r.id != rule.id);
    if taken {
        return Err(crate::store::StoreError::Conflict {
            field: "name",
            value: rule.name.clone(),
        }
        .into());
    }
    let known = st.store.known_channels(&rule.channels).await?;
    if let Some(n) = rule.channels.iter().find(|n| !known.contains(n)) {
        return Err(ApiError::bad(
            "channels",
            format!("no notification channel named '{n}' (see /api/notification-channels)"),
        ));
    }
    Ok(())
}

/// `POST /api/alert-rules/validate`: would this create succeed? Always 200, so the dashboard's
/// rule form shows the API's message for a bad field without a failed request. Saves nothing.
pub async fn validate_new_rule(
    State(st): State<AppState>,
    Operator(c): Operator,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    st.validation_allowed(&c.actor.name)?;
    verdict(
        async {
            let rule = rule_input(&body)?.create(uuid::Uuid::new_v4(), chrono::Utc::now())?;
            check_rule(&st, &rule).await
        }
        .await,
    )
}

/// `POST /api/alert-rules/{id}/validate`: would this edit succeed? Saves nothing.
pub async fn validate_rule_update(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    st.validation_allowed(&c.actor.name)?;
    let before = st.store.alert_rule(parse_id("id", &id)?).await?;
    verdict(
        async {
            let rule = rule_input(&body)?.apply(&before, chrono::Utc::now())?;
            check_rule(&st, &rule).await
        }
        .await,
    )
}

pub async fn delete_rule(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id("id", &id)?;
    ops::delete_alert_rule(&st.store, id, &c.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/alerts?state=&server_id=&rule=&since=&limit=&offset=`, newest first.
pub async fn list(
    State(st): State<AppState>,
    _: Viewer,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    p.only(&["state", "server_id", "rule", "since", "limit", "offset"])?;
    let filter = AlertFilter {
        state: p
            .get("state")
            .map(|s| {
                s.parse::<AlertState>()
                    .map_err(|m| ApiError::bad("state", m))
            })
            .transpose()?,
        server_id: p.uuid("server_id")?,
        rule_id: p.uuid("rule")?,
        since: p.time("since")?,
        limit: p.uint("limit", 1, MAX_LIMIT)?.unwrap_or(50),
        offset: p.uint("offset", 0, u32::MAX)?.unwrap_or(0),
    };
    Ok(Json(list_json(&st, &filter).await?))
}

/// A page of alerts: `GET /api/alerts` and the MCP tools `get_alerts` and `explain_server`.
///
/// # Errors
/// The store fails.
pub async fn list_json(st: &AppState, filter: &AlertFilter) -> Result<Value, ApiError> {
    let (total, items) = st.store.alerts(filter).await?;
    Ok(json!({ "total": total, "items": items }))
}

/// `POST /api/alerts/{id}/ack`, with `{"comment": "..."}` or no body.
pub async fn ack(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let comment = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let b = JsonObject::parse(&body)?;
        b.only(&["comment"])?;
        b.string("comment")?
    };
    Ok(Json(
        ack_json(&st, id, comment.as_deref(), &c.actor, None).await?,
    ))
}

/// Acknowledges an alert as `actor` (who must be an operator): `POST /api/alerts/{id}/ack`
/// and the MCP tool `acknowledge_alert`, which names itself in `via` for the audit entry.
///
/// # Errors
/// No such alert, an alert not open, a bad comment, or the store fails.
pub async fn ack_json(
    st: &AppState,
    id: uuid::Uuid,
    comment: Option<&str>,
    actor: &crate::activity::Actor,
    via: Option<&'static str>,
) -> Result<Value, ApiError> {
    let row = ops::ack_alert_via(&st.store, id, comment, actor, via).await?;
    Ok(json!(row))
}

/// `GET /api/silences[?all=true]`: those running or ahead, or every one.
pub async fn list_silences(
    State(st): State<AppState>,
    _: Viewer,
    p: Params,
) -> Result<Json<Value>, ApiError> {
    p.only(&["all"])?;
    let all = match p.get("all") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(ApiError::bad("all", format!("'{v}' is not true or false"))),
    };
    let items = st.store.silences(all).await?;
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// `POST /api/silences` with `{rule?, server?, tag?, starts_at?, ends_at, comment}`.
pub async fn create_silence(
    State(st): State<AppState>,
    Operator(c): Operator,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    body.only(&["rule", "server", "tag", "starts_at", "ends_at", "comment"])?;
    let input = SilenceInput {
        rule: body.string("rule")?,
        server: body.string("server")?,
        tag: body.string("tag")?,
        starts_at: body.time("starts_at")?,
        ends_at: body.time("ends_at")?,
        comment: body.string("comment")?,
    };
    let silence = ops::create_silence(&st.store, &input, &c.actor).await?;
    Ok((StatusCode::CREATED, Json(json!(silence))))
}

/// `DELETE /api/silences/{id}`: ends it now (it stays listed with `?all=true`).
pub async fn expire_silence(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    Ok(Json(json!(
        ops::expire_silence(&st.store, id, &c.actor).await?
    )))
}

/// `GET /api/threshold-overrides`: the configured health thresholds and every override.
pub async fn list_overrides(
    State(st): State<AppState>,
    _: Viewer,
) -> Result<Json<Value>, ApiError> {
    let items = st.store.threshold_overrides().await?;
    Ok(Json(
        json!({ "configured": st.settings.thresholds, "total": items.len(), "items": items }),
    ))
}

/// `PUT /api/threshold-overrides/{tag|server}/{name}` with any of the six threshold keys.
pub async fn set_override(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path((kind, name)): Path<(String, String)>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    let o = ops::set_threshold_override(
        &st.store,
        &st.settings.thresholds,
        &kind,
        &name,
        body.0,
        &c.actor,
    )
    .await?;
    Ok(Json(json!(o)))
}

/// `DELETE /api/threshold-overrides/{tag|server}/{name}`: back to the configured thresholds.
pub async fn remove_override(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path((kind, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    ops::remove_threshold_override(&st.store, &kind, &name, &c.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
