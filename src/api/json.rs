//! Request decoding that names the offending field. Bodies are read as JSON objects and each
//! field is taken out with its expected type, so a wrong type, an unknown field or a
//! missing one is a 400 that says which; query strings get the same treatment.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;

/// A JSON object body.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Self::Rejection> {
        json_content_type(req.headers())?;
        // A client that sends its headers and then trickles (or withholds) the body would
        // otherwise hold its connection and buffer until the request's 30 s deadline (#17).
        let wait = st.settings.http_body_timeout();
        let bytes = match tokio::time::timeout(wait, Bytes::from_request(req, st)).await {
            Err(_) => {
                return Err(ApiError::Timeout {
                    field: "body".into(),
                    message: format!("did not arrive within {} s", wait.as_secs()),
                })
            }
            Ok(Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(
                _,
            )))) => {
                return Err(ApiError::TooLarge {
                    field: "body".into(),
                    message: "larger than this route accepts".into(),
                })
            }
            Ok(Err(e)) => return Err(ApiError::bad("body", e.body_text())),
            Ok(Ok(bytes)) => bytes,
        };
        Self::parse(&bytes)
    }
}

impl JsonObject {
    /// A body already read, for routes where the body is optional.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad("body", format!("not valid JSON: {e}")))?;
        match value {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(ApiError::bad("body", "expected a JSON object")),
        }
    }
}

/// An RFC 3339 time, or a 400 naming `key`.
fn rfc3339(key: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad(
                key,
                format!("'{v}' is not an RFC 3339 time such as 2026-11-24T05:00:00Z"),
            )
        })
}

/// Refuses a body not declared as JSON. A page on another origin can send `text/plain` (or a
/// form encoding) without the browser asking us first, and a JSON object survives that
/// encoding; `application/json` it can only send after a CORS preflight, which we never grant.
fn json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = given
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if essence.is_some_and(|e| e.eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType {
        field: "content-type".into(),
        message: match given {
            Some(v) => format!(
                "the body must be sent as application/json, not '{}'",
                v.chars().take(100).collect::<String>()
            ),
            None => "the body must be sent as application/json; no Content-Type was given".into(),
        },
    })
}

impl JsonObject {
    /// Fails on any key not in `allowed`, so typos are not silently ignored.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad(
                k,
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// A string field holding an RFC 3339 time.
    pub fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.string(key)?.map(|v| rfc3339(key, &v)).transpose()
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad(key, "expected a string")),
        }
    }

    /// `null` is `Some(None)`: "clear this field".
    pub fn nullable_string(&self, key: &str) -> Result<Option<Option<String>>, ApiError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(_) => Err(ApiError::bad(key, "expected a string or null")),
        }
    }

    pub fn port(&self, key: &str) -> Result<Option<u16>, ApiError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n
                .as_u64()
                .and_then(|v| u16::try_from(v).ok())
                .filter(|v| *v > 0)
            {
                Some(p) => Ok(Some(p)),
                None => Err(ApiError::bad(
                    key,
                    format!("{n} is not a port: must be between 1 and 65535"),
                )),
            },
            Some(_) => Err(ApiError::bad(key, "expected a number between 1 and 65535")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::bad(key, "expected true or false")),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::bad(key, "expected an array of strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::bad(key, "expected an array of strings")),
        }
    }
}

/// Query parameters, checked against a list of allowed names.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad("query", e.body_text()))?;
        Ok(Self(map))
    }
}

impl Params {
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad(
                k,
                format!("unknown parameter; expected one of: {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.get(key).map(|v| rfc3339(key, v)).transpose()
    }

    pub fn uint(&self, key: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad(
                            key,
                            format!("'{v}' must be a whole number between {min} and {max}"),
                        )
                    })
            })
            .transpose()
    }

    pub fn uuid(&self, key: &str) -> Result<Option<Uuid>, ApiError> {
        self.get(key).map(|v| parse_id(key, v)).transpose()
    }
}

pub fn parse_id(field: &str, v: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(v).map_err(|_| ApiError::bad(field, format!("'{v}' is not a UUID")))
}
