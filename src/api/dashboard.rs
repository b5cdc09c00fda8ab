//! The web dashboard: a page shell per URL (`/`, `/servers/{id}`, `/activity`, `/alerts`,
//! `/login`) and the assets they load, all embedded in the binary. The pages hold no data; the
//! script reads the same JSON API as everyone else. Nothing is fetched from anywhere but this
//! server, and the Content-Security-Policy says so to the browser too.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use super::auth::Caller;
use super::error::ApiError;

const SHELL: &str = include_str!("dashboard/app.html");
const LOGIN: &str = include_str!("dashboard/login.html");

/// `(path under /assets/, content type, body)`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("dashboard/favicon.svg"),
    ),
];

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A hash of every asset: pages link `/assets/x?v=<hash>`, so an asset can be cached for a
/// year and a new build is still picked up at once.
fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = Sha256::new();
        for (name, _, body) in ASSETS {
            h.update(name.as_bytes());
            h.update(body.as_bytes());
        }
        h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

#[derive(Clone, Copy)]
enum Page {
    App = 0,
    Login = 1,
}

fn page(which: Page) -> Response {
    static PAGES: OnceLock<[String; 2]> = OnceLock::new();
    let pages = PAGES.get_or_init(|| [SHELL, LOGIN].map(|t| t.replace("{{version}}", version())));
    let body = &pages[which as usize];
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body.clone(),
    )
        .into_response()
}

/// The shell of every signed-in page; without a live session, the login page with a way back.
pub async fn app(caller: Result<Caller, ApiError>, uri: Uri) -> Response {
    if caller.is_err() {
        let back = local_path(uri.path_and_query().map_or("/", |p| p.as_str()));
        let next: String = url_encode(back);
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    page(Page::App)
}

pub async fn login() -> Response {
    page(Page::Login)
}

/// `/assets/{name}`: immutable for a year when asked for with the current version, else
/// revalidated by ETag.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    let Some((_, mime, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::not_found("path", "no such asset").into_response();
    };
    let etag = format!("\"{}\"", version());
    let current = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == format!("v={}", version())));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            ),
        ],
        *body,
    )
        .into_response()
}

/// Browsers ask for `/favicon.ico` whatever the page says.
pub async fn favicon() -> Redirect {
    Redirect::permanent(&format!("/assets/favicon.svg?v={}", version()))
}

/// `next` if it is a path on this server, else `/`: `/` alone or `/` followed by anything but
/// `/` or `\` (browsers read `//host` and `/\host` as another host), and no control character
/// (browsers drop tabs and newlines from URLs, so `/\t/host` becomes `//host`). The login
/// page's script (`localPath` in app.js) applies the same rule before it follows `next` (#17).
fn local_path(next: &str) -> &str {
    let mut chars = next.chars();
    let path = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !next.chars().any(char::is_control);
    if path {
        next
    } else {
        "/"
    }
}

/// Percent-encodes everything but unreserved characters and `/`, for a path in a query.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_link_assets_with_the_current_version_and_nothing_external() {
        for t in [SHELL, LOGIN] {
            assert!(
                t.contains("{{version}}"),
                "a page links its assets unversioned"
            );
            assert!(!t.contains("http://") && !t.contains("https://") && !t.contains("//cdn"));
            assert!(
                !t.contains("<script>"),
                "inline script would be refused by the CSP"
            );
        }
        for (name, _, body) in ASSETS {
            // The SVG namespace is a name, not a request.
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !body.contains("https://") && !body.contains("http://"),
                "{name} refers to another origin"
            );
        }
    }

    #[test]
    fn only_a_path_on_this_server_is_a_place_to_return_to() {
        for ok in ["/", "/activity?type=x", "/servers/1", "/%09/x"] {
            assert_eq!(local_path(ok), ok);
        }
        for bad in [
            "//127.0.0.2:18398/x",
            "/\\127.0.0.2/x",
            "/\t/127.0.0.2:18398/x",
            "/\n/x",
            "https://evil.example/",
            "",
            "x",
        ] {
            assert_eq!(local_path(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn a_return_path_is_encoded_whole() {
        assert_eq!(
            url_encode("/servers/1?period=7d&x=a b"),
            "/servers/1%3Fperiod%3D7d%26x%3Da%20b"
        );
    }
}
