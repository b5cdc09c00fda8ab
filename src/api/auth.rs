//! Who is calling: a bearer secret (`Authorization: Bearer`, an API token or a login session)
//! or the dashboard's `fleetpoll_session` cookie, checked against their stored hashes. The
//! role guards `Viewer`, `Operator` and `Admin` are extractors, so a handler states the role it
//! needs in its signature and cannot forget to check it. Also login and logout.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;

use super::error::ApiError;
use super::json::JsonObject;
use super::AppState;
use crate::activity::{self, ActivityEvent, Actor};
use crate::auth::{self, Role};

pub const COOKIE_NAME: &str = "fleetpoll_session";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub role: Role,
    /// Set for login sessions: the hash that identifies the session (for logout).
    pub session_hash: Option<String>,
}

/// The secret of an `Authorization: Bearer` header, if the request has one.
pub fn bearer_secret(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|s| s.trim().to_string())
}

/// The bearer secret of a request: the Authorization header wins over the cookie.
fn presented_secret(parts: &Parts) -> Option<String> {
    if let Some(v) = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v.strip_prefix("Bearer ").map(|s| s.trim().to_string());
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE_NAME}="))
                .map(str::to_string)
        })
}

pub fn peer(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let source = peer(parts);
        let Some(secret) = presented_secret(parts) else {
            return Err(ApiError::Unauthorized(
                "log in (POST /api/auth/login) or send an API token as 'Authorization: Bearer'"
                    .into(),
            ));
        };
        Caller::from_secret(&st.store, &secret, Some(source)).await
    }
}

impl Caller {
    /// The caller a bearer secret stands for: a live login session or API token, looked up by
    /// the secret's hash. Every way in uses this one check: the `Authorization` header and
    /// the cookie here, `/mcp`, and `fleetpoll mcp` with `FLEETPOLL_TOKEN` (no address then).
    ///
    /// # Errors
    /// 401 for a secret that is unknown, expired or revoked; the store fails.
    pub async fn from_secret(
        store: &crate::store::Store,
        secret: &str,
        source: Option<std::net::IpAddr>,
    ) -> Result<Self, ApiError> {
        let actor = |name: String| Actor {
            name,
            source: source.map(|s| s.to_string()),
        };
        let hash = auth::secret_hash(secret);
        let now = Utc::now();
        if let Some(user) = store.session_user(&hash, now).await? {
            return Ok(Self {
                actor: actor(format!("user:{}", user.name)),
                role: user.role,
                session_hash: Some(hash),
            });
        }
        if let Some(token) = store.live_token(&hash, now).await? {
            return Ok(Self {
                actor: actor(format!("token:{}", token.name)),
                role: token.role,
                session_hash: None,
            });
        }
        Err(ApiError::Unauthorized(
            "unknown, expired or revoked credentials".into(),
        ))
    }

    /// This caller may do what `role` may; else the 403 the role guards give.
    ///
    /// # Errors
    /// The caller's role is below `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role < role {
            return Err(ApiError::Forbidden(format!(
                "this needs the {} role; {} has {}",
                role, self.actor.name, self.role
            )));
        }
        Ok(())
    }
}

macro_rules! guard {
    ($name:ident, $role:expr) => {
        /// A caller with at least this role; 401 without credentials, 403 below the role.
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                st: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let caller = Caller::from_request_parts(parts, st).await?;
                caller.require($role)?;
                Ok(Self(caller))
            }
        }
    };
}

guard!(Viewer, Role::Viewer);
guard!(Operator, Role::Operator);
guard!(Admin, Role::Admin);

/// Refuses a state-changing request that a browser sent from another origin (#17).
/// `SameSite=Strict` keeps the session cookie off requests from other *sites*, but a page on
/// another port or a sibling subdomain is the same site, so its form or `fetch` would carry
/// the cookie. Browsers say where a request comes from: `Origin` on every POST, PUT, PATCH
/// and DELETE (Chromium and Firefox), `Sec-Fetch-Site` on every request; one of them must
/// name this server. A request with neither is not from a current browser (curl, scripts)
/// and passes. Login is covered too, so another page cannot log a browser in as someone else.
///
/// Requests with an `Authorization` header pass: the cookie is then not used at all (the
/// header wins), and a page on another origin cannot add that header without a CORS
/// preflight, which this server never grants.
pub async fn same_origin_writes(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    if !req.method().is_safe() && !req.headers().contains_key(AUTHORIZATION) {
        check_same_origin(req.headers())?;
    }
    Ok(next.run(req).await)
}

fn check_same_origin(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    if let Some(origin) = text("origin") {
        // A proxy in front may rewrite Host; it then passes the browser's in X-Forwarded-Host,
        // which a page cannot set on another origin's request without a preflight either.
        let ours: Vec<String> = [text("host"), text("x-forwarded-host")]
            .into_iter()
            .flatten()
            .filter_map(|h| h.split(',').next().map(|h| h.trim().to_string()))
            .collect();
        let authority = origin.split_once("://").map(|(_, a)| a);
        if authority.is_some_and(|a| ours.iter().any(|h| h.eq_ignore_ascii_case(a))) {
            return Ok(());
        }
        return Err(ApiError::CrossOrigin {
            field: "origin".into(),
            message: format!(
                "a request from '{}' may not change anything on '{}'",
                origin.chars().take(200).collect::<String>(),
                ours.first().map_or("", String::as_str)
            ),
        });
    }
    match text("sec-fetch-site").as_deref() {
        None | Some("same-origin" | "none") => Ok(()),
        Some(other) => Err(ApiError::CrossOrigin {
            field: "sec-fetch-site".into(),
            message: format!(
                "'{}': only this server's own pages may change anything",
                other.chars().take(40).collect::<String>()
            ),
        }),
    }
}

/// `POST /api/auth/login` with `{"username", "password"}`.
pub async fn login(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: JsonObject,
) -> Result<Response, ApiError> {
    body.only(&["username", "password"])?;
    let username = body
        .string("username")?
        .ok_or_else(|| ApiError::bad("username", "is required"))?;
    if username.len() > auth::MAX_LOGIN_NAME_BYTES {
        return Err(ApiError::bad(
            "username",
            format!(
                "longer than {} bytes: no user has such a name",
                auth::MAX_LOGIN_NAME_BYTES
            ),
        ));
    }
    let password = body
        .string("password")?
        .ok_or_else(|| ApiError::bad("password", "is required"))?;
    let source = peer.ip().to_string();
    let anon = Actor::api("anonymous".into(), peer.ip());
    let fail = |attempted: &str, registered: bool, reason: &str| ActivityEvent::UserLoginFailed {
        attempted: shown_login_name(attempted, registered),
        reason: reason.to_string(),
    };
    // Refusals that were only counted while their block lasted: one entry each, now it is over.
    for ended in st.limiter.ended_blocks() {
        let by = if ended.by_user {
            "the user name"
        } else {
            "the address"
        };
        let from = ended.source.parse().unwrap_or(peer.ip());
        let reason = format!(
            "too many failed logins: {} more attempts refused while {by} was blocked",
            ended.unlogged
        );
        let actor = Actor::api("anonymous".into(), from);
        activity::record(&st.store, fail(&ended.user, false, &reason), &actor, None).await?;
    }
    // Counted now, before the password check, so concurrent guesses cannot all get one.
    let attempt = match st.limiter.admit(&username, &source) {
        auth::Admission::Check(attempt) => attempt,
        auth::Admission::Refuse { wait, log } => {
            if log {
                let reason = "too many failed logins; further refused attempts until the block \
                              ends are counted in one later entry";
                activity::record(&st.store, fail(&username, false, reason), &anon, None).await?;
            }
            return Err(ApiError::TooManyRequests {
                what: "failed logins".into(),
                retry_after_secs: wait.as_secs().max(1),
            });
        }
    };
    // API nodes sharing a PostgreSQL database count failures together (issue #14): this
    // node's own count above sees only the attempts made here.
    let shared = st.store.backend() == crate::store::Backend::Postgres;
    let window =
        chrono::Duration::seconds(i64::try_from(st.settings.login_window_secs).unwrap_or(900));
    let keys = auth::login_keys(&username, &source);
    if shared {
        let since = Utc::now() - window;
        for (key, limit) in keys.iter().zip([
            st.settings.login_max_failures_per_user,
            st.settings.login_max_failures_per_source,
        ]) {
            if st.store.login_failures_since(key, since).await? >= i64::from(limit) {
                let wait = window.to_std().unwrap_or_default();
                if st.limiter.refused_elsewhere(key, &username, &source, wait) {
                    let reason = "too many failed logins across the API nodes; further refused \
                                  attempts until the block ends are counted in one later entry";
                    activity::record(&st.store, fail(&username, false, reason), &anon, None)
                        .await?;
                }
                return Err(ApiError::TooManyRequests {
                    what: "failed logins".into(),
                    retry_after_secs: st.settings.login_window_secs.max(1),
                });
            }
        }
    }
    let found = st.store.user_for_login(&username).await?;
    // Verify against a fixed hash when the user does not exist, so timing does not tell.
    let (user, ok) = match found {
        Some((user, hash)) => {
            let ok = auth::verify_password(&password, &hash);
            (Some(user), ok)
        }
        None => {
            let _ = auth::verify_password(&password, dummy_hash());
            (None, false)
        }
    };
    let registered = user.is_some();
    let Some(user) = user.filter(|_| ok) else {
        // The attempt stays counted: it was a failure.
        if shared {
            let now = Utc::now();
            st.store
                .record_login_failure(&keys, now, now - window)
                .await?;
        }
        activity::record(
            &st.store,
            fail(&username, registered, "wrong user name or password"),
            &anon,
            None,
        )
        .await?;
        return Err(ApiError::Unauthorized("wrong user name or password".into()));
    };
    st.limiter.succeeded(attempt);
    let secret = auth::new_secret("fps");
    let expires_at = Utc::now()
        + chrono::Duration::seconds(i64::try_from(st.settings.session_ttl_secs).unwrap_or(43_200));
    st.store
        .insert_session(
            &auth::secret_hash(secret.expose()),
            user.id,
            expires_at,
            &source,
        )
        .await?;
    activity::record(
        &st.store,
        ActivityEvent::UserLogin {
            name: user.name.clone(),
        },
        &Actor::api(format!("user:{}", user.name), peer.ip()),
        None,
    )
    .await?;
    let cookie = format!(
        "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        secret.expose(),
        st.settings.session_ttl_secs
    );
    let body = json!({
        "token": secret.expose(),
        "expires_at": expires_at,
        "user": { "name": user.name, "role": user.role },
    });
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

/// `POST /api/auth/logout`: ends the session used for this request.
pub async fn logout(
    State(st): State<AppState>,
    Viewer(caller): Viewer,
) -> Result<Response, ApiError> {
    let Some(hash) = caller.session_hash else {
        return Err(ApiError::bad(
            "session",
            "an API token has no session to end; revoke it instead",
        ));
    };
    st.store.delete_session(&hash).await?;
    let name = caller.actor.name.trim_start_matches("user:").to_string();
    activity::record(
        &st.store,
        ActivityEvent::UserLogout { name },
        &caller.actor,
        None,
    )
    .await?;
    let cookie = format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(SET_COOKIE, cookie)], Json(json!({ "logged_out": true }))).into_response())
}

/// `GET /api/auth/me`: who the caller is, so the dashboard shows only the actions the role allows.
pub async fn me(Viewer(caller): Viewer) -> Json<serde_json::Value> {
    let (kind, name) = match caller.actor.name.split_once(':') {
        Some((kind, name)) => (kind.to_string(), name.to_string()),
        None => (String::new(), caller.actor.name.clone()),
    };
    Json(json!({ "name": name, "kind": kind, "role": caller.role }))
}

/// What the activity log (and so stderr and the dashboard) shows of an attempted user name:
/// the name when it is a registered user or could be one, else `(unknown user)`. People type
/// their password into the name field; that must not end up in the log (#17).
fn shown_login_name(attempted: &str, registered: bool) -> String {
    if registered || auth::validate_user_name(attempted).is_ok() {
        attempted.to_string()
    } else {
        UNKNOWN_USER.to_string()
    }
}

const UNKNOWN_USER: &str = "(unknown user)";

/// An argon2id hash of a random string, verified against when the user does not exist so that
/// a wrong name and a wrong password take the same time.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(auth::new_secret("dummy").expose()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> axum::http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    axum::http::HeaderName::from_static(k),
                    axum::http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn only_this_servers_origin_may_write() {
        let ok = |pairs: &[(&'static str, &'static str)]| check_same_origin(&headers(pairs));
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])
        .is_ok());
        assert!(ok(&[
            ("host", "Fleet.example:8080"),
            ("origin", "http://fleet.example:8080")
        ])
        .is_ok());
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "fleet.example"),
            ("origin", "https://fleet.example")
        ])
        .is_ok());
        assert!(
            ok(&[("host", "127.0.0.1:8080")]).is_ok(),
            "curl sends neither"
        );
        assert!(ok(&[
            ("host", "127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin")
        ])
        .is_ok());
        assert!(ok(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "none")]).is_ok());
        for bad in [
            headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:9999"),
            ]),
            headers(&[
                ("host", "fleet.example"),
                ("origin", "http://evil.fleet.example"),
            ]),
            headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:8080")]),
            headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")]),
            headers(&[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")]),
        ] {
            assert!(check_same_origin(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_names_that_could_be_users_reach_the_log() {
        assert_eq!(shown_login_name("alice", false), "alice");
        assert_eq!(
            shown_login_name("ops.team@example", false),
            "ops.team@example"
        );
        assert_eq!(shown_login_name("Tr0ub4dor&3", false), UNKNOWN_USER);
        assert_eq!(
            shown_login_name("correct horse battery", false),
            UNKNOWN_USER
        );
        assert_eq!(shown_login_name("=cmd|' /C calc'!A0", false), UNKNOWN_USER);
        assert_eq!(shown_login_name(&"a".repeat(65), false), UNKNOWN_USER);
    }
}
