//! The HTTP API and dashboard: extract, call the store, shape the JSON. Handlers never touch
//! SSH or polling; status codes live in `error.rs` alone.

mod accounts;
pub mod activity;
pub mod alerts;
pub mod auth;
pub mod conn;
mod dashboard;
pub mod error;
pub mod fleet;
mod json;
pub mod metrics;
mod notify;
mod pollers;
mod prometheus;
pub mod servers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::config::Settings;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    /// The poller's own counters, shared with the scheduler.
    pub metrics: Arc<crate::observe::Metrics>,
    /// Failed logins per user name and client address.
    pub limiter: Arc<crate::auth::LoginLimiter>,
    /// Calls of the validate endpoints per caller.
    pub validations: Arc<crate::auth::RateLimit>,
}

impl AppState {
    /// Counts a validate call of this caller; 429 past the limit.
    pub(crate) fn validation_allowed(&self, caller: &str) -> Result<(), error::ApiError> {
        self.validations
            .check(caller)
            .map_err(|wait| error::ApiError::TooManyRequests {
                what: "validations".into(),
                retry_after_secs: wait.as_secs().max(1),
            })
    }

    pub fn new(
        store: Store,
        settings: Arc<Settings>,
        metrics: Arc<crate::observe::Metrics>,
    ) -> Self {
        let limiter = Arc::new(crate::auth::LoginLimiter::new(
            settings.login_max_failures_per_user,
            settings.login_max_failures_per_source,
            Duration::from_secs(settings.login_window_secs),
        ));
        Self {
            store,
            settings,
            metrics,
            limiter,
            // A form checks once per submit: 60 a minute is a person typing fast, not a scan.
            validations: Arc::new(crate::auth::RateLimit::new(60, Duration::from_secs(60))),
        }
    }
}

/// Login and logout: a name and a password, or nothing. 4 KiB also bounds what a stranger can
/// make the server buffer, since login is the one body anyone may send (#17).
const SMALL_BODY: usize = 4 * 1024;
/// Users and tokens: a name, a role, a lifetime and a password of at most 1,024 characters,
/// each up to six bytes when JSON-escaped.
const ACCOUNT_BODY: usize = 16 * 1024;
// Server routes keep axum's 2 MB default: a stored private key travels in the body, and only
// operators, who are authenticated before the body is read, reach them.

/// The whole router, so tests can serve it on port 0.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(prometheus::metrics))
        .route("/api/dashboard/summary", get(fleet::summary))
        .route("/api/servers", get(servers::list).post(servers::create))
        .route(
            "/api/servers/{id}",
            get(servers::show)
                .patch(servers::update)
                .delete(servers::remove),
        )
        .route("/api/servers/{id}/trust", post(servers::trust))
        .route("/api/servers/{id}/metrics", get(metrics::history))
        .route("/api/servers/{id}/disks", get(metrics::disks))
        .route("/api/servers/{id}/last-output", get(servers::last_output))
        .route("/api/servers/{id}/containers", get(metrics::containers))
        .route(
            "/api/servers/{id}/containers/{container}/metrics",
            get(metrics::container_history),
        )
        .route("/api/activity", get(activity::list))
        .route(
            "/api/auth/login",
            post(auth::login).layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route(
            "/api/auth/logout",
            post(auth::logout).layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route(
            "/api/users",
            get(accounts::list_users)
                .post(accounts::create_user)
                .layer(DefaultBodyLimit::max(ACCOUNT_BODY)),
        )
        .route(
            "/api/users/{id}",
            axum::routing::patch(accounts::update_user)
                .delete(accounts::delete_user)
                .layer(DefaultBodyLimit::max(ACCOUNT_BODY)),
        )
        .route(
            "/api/tokens",
            get(accounts::list_tokens)
                .post(accounts::create_token)
                .layer(DefaultBodyLimit::max(ACCOUNT_BODY)),
        )
        .route(
            "/api/tokens/{id}",
            axum::routing::delete(accounts::revoke_token),
        )
        .route("/api/auth/me", get(auth::me))
        .route("/api/dashboard/sparklines", get(fleet::sparklines))
        .route("/api/servers/validate", post(servers::validate_new))
        .route("/api/servers/{id}/validate", post(servers::validate_update))
        .route(
            "/api/servers/{id}/disks/history",
            get(metrics::disk_history),
        )
        .route("/api/activity/types", get(activity::types))
        .route(
            "/api/alert-rules",
            get(alerts::list_rules).post(alerts::create_rule),
        )
        .route(
            "/api/alert-rules/{id}",
            get(alerts::get_rule)
                .patch(alerts::update_rule)
                .delete(alerts::delete_rule),
        )
        .route("/api/alert-rules/validate", post(alerts::validate_new_rule))
        .route(
            "/api/alert-rules/{id}/validate",
            post(alerts::validate_rule_update),
        )
        .route("/api/threshold-overrides", get(alerts::list_overrides))
        .route(
            "/api/threshold-overrides/{kind}/{name}",
            axum::routing::put(alerts::set_override).delete(alerts::remove_override),
        )
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/{id}/ack", post(alerts::ack))
        .route(
            "/api/silences",
            get(alerts::list_silences).post(alerts::create_silence),
        )
        .route(
            "/api/silences/{id}",
            axum::routing::delete(alerts::expire_silence),
        )
        // Notification channels and the outbox (issue #13), admins only.
        .route(
            "/api/notification-channels",
            get(notify::list).post(notify::create),
        )
        .route(
            "/api/notification-channels/{id}",
            axum::routing::patch(notify::update).delete(notify::remove),
        )
        .route("/api/notification-channels/{id}/test", post(notify::test))
        .route("/api/notifications", get(notify::notifications))
        .route("/api/pollers", get(pollers::list))
        .route("/login", get(dashboard::login))
        .route("/", get(dashboard::app))
        .route("/servers/{id}", get(dashboard::app))
        .route("/activity", get(dashboard::app))
        .route("/alerts", get(dashboard::app))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/favicon.ico", get(dashboard::favicon))
        .fallback(|| async { error::ApiError::not_found("path", "no such route") })
        .layer(axum::middleware::from_fn(auth::same_origin_writes))
        // A slow client cannot hold shutdown hostage.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

/// What a `--role poller` process answers: its health and its own figures. The API and the
/// dashboard belong to the `all` and `api` processes, which a load balancer puts in front of
/// people; a poller is a worker and shows nothing else.
pub fn poller_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(prometheus::metrics))
        .fallback(|| async {
            error::ApiError::not_found(
                "path",
                "this process only polls (role poller): it serves /healthz and /metrics; \
                 the API and dashboard are on the processes of role all or api",
            )
        })
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests; connections are
/// bounded and timed out as `conn` describes.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = conn::Limits::from_settings(&state.settings);
    conn::serve(listener, router(state), limits, shutdown).await
}
