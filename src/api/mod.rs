//! The HTTP API and dashboard: extract, call the store, shape the JSON. Handlers never touch
//! SSH or polling; status codes live in `error.rs` alone.

mod accounts;
mod activity;
mod alerts;
pub mod auth;
mod dashboard;
pub mod error;
mod fleet;
mod json;
mod metrics;
mod notify;
mod prometheus;
mod servers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
}

impl AppState {
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
        }
    }
}

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
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route(
            "/api/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route(
            "/api/users/{id}",
            axum::routing::patch(accounts::update_user).delete(accounts::delete_user),
        )
        .route(
            "/api/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
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
        .route("/login", get(dashboard::login))
        .route("/", get(dashboard::app))
        .route("/servers/{id}", get(dashboard::app))
        .route("/activity", get(dashboard::app))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/favicon.ico", get(dashboard::favicon))
        .fallback(|| async { error::ApiError::not_found("path", "no such route") })
        // A slow client cannot hold shutdown hostage.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
