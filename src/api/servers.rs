//! `/api/servers`: register, list, show, edit, remove, trust a new host key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::auth::{Admin, Operator, Viewer};
use super::error::ApiError;
use super::json::{parse_id, JsonObject};
use super::AppState;
use crate::inventory::{NewServer, Server, ServerPatch};
use crate::ops;

const FIELDS: &[&str] = &[
    "name",
    "host",
    "port",
    "user",
    "key_path",
    "key_passphrase_env",
    "key",
    "tags",
    "enabled",
];

pub(super) fn dto(s: &Server, interval_secs: u64) -> Value {
    json!(s.view(Utc::now(), interval_secs))
}

fn required(body: &JsonObject, key: &str) -> Result<String, ApiError> {
    body.string(key)?
        .ok_or_else(|| ApiError::bad(key, "is required"))
}

pub async fn list(State(st): State<AppState>, _: Viewer) -> Result<Json<Value>, ApiError> {
    let servers = st.store.servers().await?;
    let items: Vec<Value> = servers
        .iter()
        .map(|s| dto(s, st.settings.poll_interval_secs))
        .collect();
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// The registration in a create request's body.
fn new_server(body: &JsonObject) -> Result<NewServer, ApiError> {
    body.only(FIELDS)?;
    Ok(NewServer {
        name: required(body, "name")?,
        host: required(body, "host")?,
        port: body.port("port")?.unwrap_or(22),
        user: required(body, "user")?,
        key_path: body.string("key_path")?.unwrap_or_default(),
        key_passphrase_env: body.nullable_string("key_passphrase_env")?.flatten(),
        tags: body.strings("tags")?.unwrap_or_default(),
        enabled: body.bool("enabled")?.unwrap_or(true),
        key_material: body.string("key")?.map(crate::auth::Secret::new),
        key_stored: false,
    })
}

/// The changes in an edit request's body.
fn server_patch(body: &JsonObject) -> Result<ServerPatch, ApiError> {
    body.only(FIELDS)?;
    Ok(ServerPatch {
        name: body.string("name")?,
        host: body.string("host")?,
        port: body.port("port")?,
        user: body.string("user")?,
        key_path: body.string("key_path")?,
        key_passphrase_env: body.nullable_string("key_passphrase_env")?,
        tags: body.strings("tags")?,
        enabled: body.bool("enabled")?,
        key_material: body.string("key")?.map(crate::auth::Secret::new),
    })
}

pub async fn create(
    State(st): State<AppState>,
    Operator(caller): Operator,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    let new = new_server(&body)?;
    ops::check_api_key_reference(
        &st.settings,
        Some(&new.key_path),
        new.key_passphrase_env.as_deref(),
    )
    .await?;
    let server = ops::add_server(&st.store, new, &caller.actor).await?;
    Ok((
        StatusCode::CREATED,
        Json(dto(&server, st.settings.poll_interval_secs)),
    ))
}

/// The API's limits on what a key reference may name (see `ops::check_api_key_reference`).
async fn patch_key_policy(st: &AppState, patch: &ServerPatch) -> Result<(), ApiError> {
    ops::check_api_key_reference(
        &st.settings,
        patch.key_path.as_deref(),
        patch.key_passphrase_env.clone().flatten().as_deref(),
    )
    .await?;
    Ok(())
}

/// A check's answer: 200 either way, so a form can show the message of a bad value without
/// a failed request. The message is the one create or edit would give.
pub(super) fn verdict(result: Result<(), ApiError>) -> Result<Json<Value>, ApiError> {
    match result {
        Ok(()) => Ok(Json(json!({ "valid": true }))),
        Err(
            ApiError::BadRequest { field, message }
            | ApiError::Conflict { field, message }
            | ApiError::NotFound { field, message },
        ) => Ok(Json(
            json!({ "valid": false, "field": field, "error": format!("{field}: {message}") }),
        )),
        Err(other) => Err(other),
    }
}

/// `POST /api/servers/validate`: would this create succeed? Saves nothing, logs nothing.
pub async fn validate_new(
    State(st): State<AppState>,
    Operator(c): Operator,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    st.validation_allowed(&c.actor.name)?;
    verdict(
        async {
            let new = new_server(&body)?;
            ops::check_api_key_reference(
                &st.settings,
                Some(&new.key_path),
                new.key_passphrase_env.as_deref(),
            )
            .await?;
            ops::check_new_server(&st.store, &new).await?;
            Ok(())
        }
        .await,
    )
}

/// `POST /api/servers/{id}/validate`: would this edit succeed? Saves nothing, logs nothing.
pub async fn validate_update(
    State(st): State<AppState>,
    Operator(c): Operator,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    st.validation_allowed(&c.actor.name)?;
    let id = parse_id("id", &id)?;
    st.store.server(id).await?;
    verdict(
        async {
            let patch = server_patch(&body)?;
            patch_key_policy(&st, &patch).await?;
            ops::check_server_update(&st.store, id, &patch).await?;
            Ok(())
        }
        .await,
    )
}

pub async fn show(
    State(st): State<AppState>,
    _: Viewer,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(show_json(&st, parse_id("id", &id)?).await?))
}

/// One server with its health badge: `GET /api/servers/{id}` and the MCP tool
/// `explain_server`.
///
/// # Errors
/// No such server (404 naming `id`), or the store fails.
pub async fn show_json(st: &AppState, id: uuid::Uuid) -> Result<Value, ApiError> {
    let server = st.store.server(id).await?;
    let latest = st.store.latest_samples(Some(server.id)).await?;
    let mut v = dto(&server, st.settings.poll_interval_secs);
    // The health badge of the summary row, so one server's page need not read the whole fleet.
    v["health"] = json!(super::fleet::health(
        &server,
        server.effective_status(Utc::now(), st.settings.poll_interval_secs),
        latest.first(),
        &crate::model::thresholds_for(
            &st.settings.thresholds,
            &st.store.threshold_overrides().await?,
            &server.name,
            &server.tags,
        ),
    ));
    Ok(v)
}

pub async fn update(
    State(st): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let patch = server_patch(&body)?;
    patch_key_policy(&st, &patch).await?;
    let server = ops::update_server(&st.store, id, patch, &caller.actor).await?;
    Ok(Json(dto(&server, st.settings.poll_interval_secs)))
}

pub async fn remove(
    State(st): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::remove_server(&st.store, parse_id("id", &id)?, &caller.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn trust(
    State(st): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let server = ops::trust_host_key(&st.store, parse_id("id", &id)?, &caller.actor).await?;
    Ok(Json(dto(&server, st.settings.poll_interval_secs)))
}

/// The raw text of the last poll that could not all be read. Admin-only: it may show process
/// names, mount paths and container names of the host.
pub async fn last_output(
    State(st): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    st.store.server(id).await?;
    match st.store.last_failed_output(id).await {
        Ok(raw) => Ok(Json(json!(raw))),
        Err(crate::store::StoreError::NotFound(_)) => Err(ApiError::not_found(
            "last_output",
            "every poll of this server so far could be read",
        )),
        Err(e) => Err(e.into()),
    }
}
