//! `/mcp`: MCP over streamable HTTP beside the API, under `serve`.
//!
//! Every request carries an API token (`Authorization: Bearer`), checked by the API's own
//! `Caller::from_secret`: no token or a dead one is 401, before rmcp reads the body. The
//! caller goes into the request's extensions, where the tools find it, so each request acts
//! as its own token; there are no MCP sessions to outlive a revoked token (the service runs
//! stateless and answers plain JSON).
//!
//! DNS rebinding: a page on `http://evil.example` whose name an attacker points at 127.0.0.1
//! reaches this port with `Host: evil.example` and `Origin: http://evil.example`, so comparing
//! the two proves nothing. A request whose `Origin` is present and names neither a loopback
//! host nor the address fleetpoll listens on is refused with 403. Clients that are not
//! browsers send no `Origin` and pass. rmcp's own `Host` allow-list stays off: fleetpoll may
//! listen on any address or name, and the token and the Origin rule already stand guard.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use super::{FleetTools, Identity};
use crate::api::auth::{bearer_secret, Caller};
use crate::api::error::ApiError;
use crate::api::AppState;

/// Where MCP answers.
pub const PATH: &str = "/mcp";

/// A request body larger than this is refused (413): the largest tool call is a few hundred
/// bytes of arguments.
const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Guard {
    state: AppState,
    /// The address the server is bound to: an `Origin` naming it is the server itself.
    bound: SocketAddr,
}

/// The `/mcp` route, to merge into the API's router. `bound` is the listener's real address;
/// `cancel` ends rmcp's work at shutdown.
pub fn router(state: AppState, bound: SocketAddr, cancel: CancellationToken) -> Router {
    let tools = FleetTools {
        state: state.clone(),
        identity: Identity::Request,
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_cancellation_token(cancel)
        .disable_allowed_hosts();
    // No sessions: each request stands alone, checked by its own token.
    let service: StreamableHttpService<FleetTools, NeverSessionManager> =
        StreamableHttpService::new(
            move || Ok(tools.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        );
    Router::new()
        .route_service(PATH, service)
        .layer(axum::middleware::from_fn_with_state(
            Guard { state, bound },
            guard,
        ))
        // As on the API's routes: a client that sends its body slowly cannot hold shutdown
        // (or a connection) hostage. Answers are plain JSON, never a long-lived stream.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
}

/// Origin first (no database work for a refused page), then the token.
async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    if let Some(origin) = req.headers().get("origin") {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        if !origin_allowed(&origin, g.bound) {
            return Err(ApiError::CrossOrigin {
                field: "origin".into(),
                message: format!(
                    "'{}' is not this server or localhost; MCP is refused to other origins",
                    origin.chars().take(200).collect::<String>()
                ),
            });
        }
    }
    let Some(secret) = bearer_secret(req.headers()) else {
        return Err(ApiError::Unauthorized(
            "MCP needs an API token as 'Authorization: Bearer' (fleetpoll token create)".into(),
        ));
    };
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let caller = Caller::from_secret(&g.state.store, &secret, source).await?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// Whether a browser page at `origin` may talk to the server bound at `bound`: only pages on
/// a loopback host, or on the very address the server listens on.
fn origin_allowed(origin: &str, bound: SocketAddr) -> bool {
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        // `null` (a sandboxed page, a file) and anything malformed.
        return false;
    };
    if !matches!(scheme, "http" | "https") {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        // [::1]:8080
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || (!bound.ip().is_unspecified() && ip == bound.ip()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_pages_and_the_server_itself_pass() {
        let local: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let lan: SocketAddr = "10.0.0.5:8080".parse().expect("addr");
        let any: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "https://LOCALHOST",
            "http://[::1]:8080",
            "http://127.1.2.3",
        ] {
            assert!(origin_allowed(ok, local), "{ok}");
        }
        assert!(origin_allowed("http://10.0.0.5:8080", lan));
        for bad in [
            "http://evil.example",
            "http://evil.example:8080",
            "null",
            "file://",
            "http://10.0.0.5:8080",
            "http://localhost.evil.example",
            "ftp://127.0.0.1",
        ] {
            assert!(!origin_allowed(bad, local), "{bad}");
        }
        assert!(!origin_allowed("http://0.0.0.0:8080", any));
    }
}
