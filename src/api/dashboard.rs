//! The embedded dashboard page: no CDN, no external requests; it reads the same JSON API.

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("dashboard.html");

pub async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
}

const LOGIN: &str = include_str!("login.html");

pub async fn login() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        LOGIN,
    )
}
