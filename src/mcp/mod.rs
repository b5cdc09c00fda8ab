//! MCP (Model Context Protocol, issue #15): the fleet's tools for assistants, over stdio
//! (`fleetpoll mcp`, acting as the API token in `FLEETPOLL_TOKEN`) and over streamable HTTP
//! (`/mcp` beside the API under `serve`, with a Bearer token).
//!
//! This module owns MCP alone: the tools' names, input schemas and answers, the 8 KB budget of
//! an answer, and the two transports. It never queries the store for what the API shows: every
//! answer comes from the function the matching API handler calls (`api::fleet::summary_json`,
//! `api::metrics::history_json`, ...), so a tool and its endpoint cannot drift apart. Callers
//! are checked by `api::auth::Caller::from_secret`, the Bearer check itself.
//!
//! - `tools.rs`: the argument types (their JSON Schemas are derived, as rmcp does) and what
//!   each tool does;
//! - `budget.rs`: keeping each answer under 8 KB (pages, fewer points, a note saying so);
//! - `http.rs`: `/mcp`: Bearer token, Origin check, rmcp's streamable HTTP service.

mod budget;
pub mod http;
mod tools;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::{json, Value};

use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::AppState;
use crate::auth::Secret;

/// Why a tool call could not be answered. Every variant becomes an MCP *tool* error (a result
/// with `isError`), which the assistant reads and can act on, never a protocol error, which
/// clients show as an opaque failure.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// An argument is missing, malformed, out of range or names nothing (`server`, `period`,
    /// `alert`, ...).
    #[error("{field}: {message}")]
    Argument { field: String, message: String },
    /// A write tool was called without `confirm: true`; nothing was written.
    #[error("confirm: {0}")]
    NotConfirmed(String),
    /// The token's role is below what the tool needs.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The token is unknown, expired or revoked (it may have been revoked since the start).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Our fault (the store failed): logged here with its detail, answered generically.
    #[error("internal error: {0}")]
    Internal(String),
}

impl McpError {
    pub fn arg(field: &str, message: impl Into<String>) -> Self {
        Self::Argument {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The API's error for a call on the tool's arguments. The API names its own fields (a
    /// path's `id`); `rename` maps them to the tool's argument names (`id` -> `alert`).
    pub fn from_api(e: ApiError, rename: &[(&str, &str)]) -> Self {
        let field_of = |f: String| {
            rename
                .iter()
                .find(|(from, _)| *from == f)
                .map_or(f, |(_, to)| (*to).to_string())
        };
        match e {
            ApiError::BadRequest { field, message }
            | ApiError::NotFound { field, message }
            | ApiError::Conflict { field, message } => Self::Argument {
                field: field_of(field),
                message,
            },
            ApiError::Forbidden(m) => Self::Forbidden(m),
            ApiError::Unauthorized(m) => Self::Unauthorized(m),
            other => Self::Internal(other.to_string()),
        }
    }

    /// The tool error's structured body: `{"error", "field"}` like the API's 4xx bodies.
    fn into_result(self) -> CallToolResult {
        let body = match &self {
            Self::Argument { field, .. } => json!({ "error": self.to_string(), "field": field }),
            Self::NotConfirmed(_) => json!({ "error": self.to_string(), "field": "confirm" }),
            Self::Forbidden(_) | Self::Unauthorized(_) => json!({ "error": self.to_string() }),
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "MCP tool call failed");
                json!({ "error": "internal error; see the server log" })
            }
        };
        CallToolResult::structured_error(body)
    }
}

impl From<ApiError> for McpError {
    fn from(e: ApiError) -> Self {
        Self::from_api(e, &[])
    }
}

/// Who is calling, by transport.
#[derive(Clone)]
enum Identity {
    /// stdio: the token of `FLEETPOLL_TOKEN`, checked again at every call so that a token
    /// revoked or expired while the assistant runs stops working at once.
    Token(Arc<Secret>),
    /// HTTP: the caller the `/mcp` middleware checked for this very request, found in the
    /// request's extensions (rmcp hands the request's parts to the handler).
    Request,
}

/// The MCP server: the API's state and who is calling.
#[derive(Clone)]
pub struct FleetTools {
    state: AppState,
    identity: Identity,
}

impl FleetTools {
    async fn caller(&self, cx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        match &self.identity {
            Identity::Token(secret) => {
                Ok(Caller::from_secret(&self.state.store, secret.expose(), None).await?)
            }
            Identity::Request => cx
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|p| p.extensions.get::<Caller>())
                .cloned()
                .ok_or_else(|| McpError::Unauthorized("no credentials with this request".into())),
        }
    }
}

impl ServerHandler for FleetTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("fleetpoll", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "fleetpoll monitors a fleet of servers over SSH. Start with get_dashboard_summary, \
                 then list_servers or explain_server. A server is named by its name or id. \
                 Answers are at most 8 KB: lists come a page at a time (follow `next`), long \
                 histories are downsampled (see `note`).",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::list().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.unwrap_or_default());
        let answer = match self.caller(&cx).await {
            Ok(caller) => tools::call(&self.state, &caller, &request.name, args).await,
            Err(e) => Err(e),
        };
        Ok(match answer {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => e.into_result(),
        }
        .into())
    }
}

/// Why `fleetpoll mcp` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `FLEETPOLL_TOKEN` is unset or empty.
    #[error("FLEETPOLL_TOKEN is not set: create a token (`fleetpoll token create --name NAME --role viewer`) and pass it in that variable")]
    NoToken,
    /// The token is unknown, expired or revoked. The token itself is never shown.
    #[error("FLEETPOLL_TOKEN is not a live API token (unknown, expired or revoked)")]
    BadToken,
    /// The store failed while checking the token.
    #[error("checking FLEETPOLL_TOKEN: {0}")]
    Store(String),
    /// The stdio transport failed.
    #[error("MCP over stdio: {0}")]
    Transport(String),
}

/// Serves MCP on stdin/stdout as the token `token` (from `FLEETPOLL_TOKEN`) until the client
/// closes stdin. The token is checked before anything is read, so a bad one exits at once.
///
/// # Errors
/// No token or a dead one, or the transport fails.
pub async fn serve_stdio(state: AppState, token: Option<Secret>) -> Result<(), StartError> {
    let token = token
        .filter(|t| !t.expose().trim().is_empty())
        .ok_or(StartError::NoToken)?;
    let caller = match Caller::from_secret(&state.store, token.expose().trim(), None).await {
        Ok(c) => c,
        Err(ApiError::Unauthorized(_)) => return Err(StartError::BadToken),
        Err(e) => return Err(StartError::Store(e.to_string())),
    };
    tracing::info!(caller = %caller.actor.name, role = %caller.role, "Serving MCP on stdio");
    let tools = FleetTools {
        state,
        identity: Identity::Token(Arc::new(Secret::new(token.expose().trim().to_string()))),
    };
    let running = tools
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StartError::Transport(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| StartError::Transport(e.to_string()))?;
    Ok(())
}
