//! The only place that knows HTTP status codes. Client mistakes become 4xx with a JSON body
//! naming the field; anything else becomes a generic 500 whose detail is logged once here
//! and never sent to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::inventory::ValidationError;
use crate::ops::{AccountError, OpsError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a field is missing, malformed or out of range.
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// 404: the thing named by `field` does not exist.
    #[error("{field}: {message}")]
    NotFound { field: String, message: String },
    /// 409: the value of `field` is taken.
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// 401: no credentials, or ones that are unknown, expired or revoked.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: known caller, role too low.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 408: the body named by `field` did not arrive in time.
    #[error("{field}: {message}")]
    Timeout { field: String, message: String },
    /// 413: the body named by `field` is larger than the route accepts.
    #[error("{field}: {message}")]
    TooLarge { field: String, message: String },
    /// 403 naming the header (`origin`, `sec-fetch-site`): a browser write from another origin.
    #[error("{field}: {message}")]
    CrossOrigin { field: String, message: String },
    /// 415: a body in a format other than JSON.
    #[error("{field}: {message}")]
    UnsupportedMediaType { field: String, message: String },
    /// 429: too many of `what` (failed logins, validations) from this caller; retry after
    /// this many seconds.
    #[error("too many {what}")]
    TooManyRequests { what: String, retry_after_secs: u64 },
    /// 500: our fault; the detail is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(field: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn not_found(field: &str, message: impl Into<String>) -> Self {
        Self::NotFound {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::bad(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found("id", format!("no such {what}")),
            StoreError::Conflict { field, value } => Self::Conflict {
                field: field.to_string(),
                message: format!("'{value}' is already taken"),
            },
            StoreError::Already { .. } => Self::Conflict {
                field: "id".into(),
                message: e.to_string(),
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid(v) => v.into(),
            OpsError::Store(s) => s.into(),
            OpsError::Vault(v) => ApiError::Internal(v.to_string()),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid { field, message } => ApiError::bad(field, message),
            AccountError::Store(StoreError::NotFound(_)) => {
                ApiError::not_found("id", "no such user or token")
            }
            AccountError::LastAdmin { field, name } => ApiError::Conflict {
                field: field.to_string(),
                message: format!(
                    "{name} is the last admin; give another user the admin role first"
                ),
            },
            AccountError::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Self::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                json!({ "error": format!("{field}: {message}"), "field": field }),
            ),
            Self::NotFound { field, message } => (
                StatusCode::NOT_FOUND,
                json!({ "error": format!("{field}: {message}"), "field": field }),
            ),
            Self::Conflict { field, message } => (
                StatusCode::CONFLICT,
                json!({ "error": format!("{field}: {message}"), "field": field }),
            ),
            Self::Timeout { field, message } => (
                StatusCode::REQUEST_TIMEOUT,
                json!({ "error": format!("{field}: {message}"), "field": field }),
            ),
            Self::TooLarge { field, message } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": format!("{field}: {message}"), "field": field }),
            ),
            Self::CrossOrigin { field, message } => (
                StatusCode::FORBIDDEN,
                json!({ "error": format!("{field}: {message}"), "field": field }),
            ),
            Self::UnsupportedMediaType { field, message } => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({ "error": format!("{field}: {message}"), "field": field }),
            ),
            Self::Unauthorized(m) => (StatusCode::UNAUTHORIZED, json!({ "error": m })),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "error": m })),
            Self::TooManyRequests {
                what,
                retry_after_secs,
            } => {
                let body = json!({
                    "error": format!("too many {what}; try again in {retry_after_secs} s"),
                    "retry_after_secs": retry_after_secs,
                });
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(
                        axum::http::header::RETRY_AFTER,
                        retry_after_secs.to_string(),
                    )],
                    Json(body),
                )
                    .into_response();
            }
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "Request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal error; see the server log" }),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
