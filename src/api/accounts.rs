//! `/api/users` and `/api/tokens`: admin-only account management. Token secrets are in the
//! creation response only; no endpoint returns a password hash or a token hash.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Admin;
use super::error::ApiError;
use super::json::{parse_id, JsonObject};
use super::AppState;
use crate::auth::{parse_duration, Role};
use crate::ops;

fn role(body: &JsonObject, required: bool) -> Result<Option<Role>, ApiError> {
    match body.string("role")? {
        Some(r) => r
            .parse()
            .map(Some)
            .map_err(|m: String| ApiError::bad("role", m)),
        None if required => Err(ApiError::bad(
            "role",
            "is required: admin, operator or viewer",
        )),
        None => Ok(None),
    }
}

pub async fn list_users(State(st): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let users = st.store.users().await?;
    Ok(Json(json!({ "total": users.len(), "items": users })))
}

pub async fn create_user(
    State(st): State<AppState>,
    Admin(c): Admin,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    body.only(&["name", "role", "password"])?;
    let name = body
        .string("name")?
        .ok_or_else(|| ApiError::bad("name", "is required"))?;
    let password = body
        .string("password")?
        .ok_or_else(|| ApiError::bad("password", "is required"))?;
    let role = role(&body, true)?.unwrap_or(Role::Viewer);
    let user = ops::create_user(&st.store, &name, role, &password, &c.actor).await?;
    Ok((StatusCode::CREATED, Json(json!(user))))
}

pub async fn update_user(
    State(st): State<AppState>,
    Admin(c): Admin,
    Path(id): Path<String>,
    body: JsonObject,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    body.only(&["role", "password"])?;
    let role = role(&body, false)?;
    let password = body.string("password")?;
    let user = ops::update_user(&st.store, id, role, password.as_deref(), &c.actor).await?;
    Ok(Json(json!(user)))
}

pub async fn delete_user(
    State(st): State<AppState>,
    Admin(c): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::delete_user(&st.store, parse_id("id", &id)?, &c.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tokens(State(st): State<AppState>, _: Admin) -> Result<Json<Value>, ApiError> {
    let tokens = st.store.tokens().await?;
    Ok(Json(json!({ "total": tokens.len(), "items": tokens })))
}

pub async fn create_token(
    State(st): State<AppState>,
    Admin(c): Admin,
    body: JsonObject,
) -> Result<impl IntoResponse, ApiError> {
    body.only(&["name", "role", "expires"])?;
    let name = body
        .string("name")?
        .ok_or_else(|| ApiError::bad("name", "is required"))?;
    let role = role(&body, true)?.unwrap_or(Role::Viewer);
    let lifetime = body
        .string("expires")?
        .map(|e| parse_duration(&e).map_err(|m| ApiError::bad("expires", m)))
        .transpose()?;
    let (token, secret) = ops::create_token(&st.store, &name, role, lifetime, &c.actor).await?;
    let mut v = json!(token);
    v["token"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(v)))
}

pub async fn revoke_token(
    State(st): State<AppState>,
    Admin(c): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::revoke_token(&st.store, parse_id("id", &id)?, &c.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}
