//! Who may do what: roles, password hashing (argon2id), bearer secrets (API tokens and login
//! sessions, stored as SHA-256 hashes), and the failed-login limiter. No SQL and no HTTP:
//! `store` keeps the hashes, `api` reads the headers.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a user or token may do; each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read the dashboard, metrics, containers and the activity log; never secrets.
    Viewer,
    /// Also register, edit, remove and trust servers.
    Operator,
    /// Everything: users, tokens, raw host output.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "'{other}' is not a role: use admin, operator or viewer"
            )),
        }
    }
}

/// A secret handed out once (token, session id, password). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A new random bearer secret: a prefix that says what it is, then 256 random bits in hex.
pub fn new_secret(prefix: &str) -> Secret {
    let bytes: [u8; 32] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Secret(format!("{prefix}_{hex}"))
}

/// How a bearer secret is stored and looked up. Unsalted SHA-256 is right here: the secret
/// has 256 random bits, so there is nothing to brute-force, and lookup must be by equality.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A password unusable for login: hashing failed (never expected) or the policy refused it.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password: must be 8 to 1024 characters")]
    Policy,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes a password with argon2id and a random salt (PHC string format).
///
/// # Errors
/// The password is shorter than 8 or longer than 1024 characters.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let n = password.chars().count();
    if !(8..=1024).contains(&n) {
        return Err(PasswordError::Policy);
    }
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the stored PHC string.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A user name: the same rule as server names, so names are safe in logs and URLs.
pub fn validate_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a name: use 1-64 letters, digits, '-', '_', '.', '@'",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// Parses `90d`, `12h`, `30m`, `3600s` (or a bare number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 90d, 12h, 30m"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("'{s}' is not a duration such as 90d, 12h, 30m")),
    };
    if secs == 0 {
        return Err("a duration must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Counts failed logins per user name and per source address over a sliding window. While
/// either is over its limit, every login for it is refused, even with the right password,
/// so guessing cannot continue by getting one right.
#[derive(Debug)]
pub struct LoginLimiter {
    per_user: u32,
    per_source: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(per_user: u32, per_source: u32, window: Duration) -> Self {
        Self {
            per_user,
            per_source,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when a login for this user or from this source must be refused now.
    pub fn blocked(&self, user: &str, source: &str) -> Option<Duration> {
        let mut map = self.failures.lock().ok()?;
        let now = Instant::now();
        let mut worst = None;
        for (key, limit) in [
            (format!("user:{user}"), self.per_user),
            (format!("source:{source}"), self.per_source),
        ] {
            if let Some(q) = map.get_mut(&key) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    q.pop_front();
                }
                if q.len() >= limit as usize {
                    let oldest = q.front().copied().unwrap_or(now);
                    let wait = self.window.saturating_sub(now.duration_since(oldest));
                    worst = Some(worst.map_or(wait, |w: Duration| w.max(wait)));
                }
            }
        }
        worst
    }

    pub fn failed(&self, user: &str, source: &str) {
        if let Ok(mut map) = self.failures.lock() {
            let now = Instant::now();
            for key in [format!("user:{user}"), format!("source:{source}")] {
                map.entry(key).or_default().push_back(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!("operator".parse::<Role>(), Ok(Role::Operator));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let a = hash_password("correct horse").expect("hash");
        let b = hash_password("correct horse").expect("hash");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsf", &a));
        assert!(!verify_password("x", "not a phc string"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn secrets_are_random_and_hidden_from_debug() {
        let a = new_secret("fpt");
        let b = new_secret("fpt");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("fpt_") && a.expose().len() == 4 + 64);
        assert!(!format!("{a:?}").contains(a.expose()));
        assert_eq!(secret_hash("x").len(), 64);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0d").is_err());
    }

    #[test]
    fn limiter_blocks_after_the_limit_and_names_a_wait() {
        let l = LoginLimiter::new(3, 5, Duration::from_secs(900));
        for _ in 0..3 {
            assert!(l.blocked("alice", "10.0.0.1").is_none());
            l.failed("alice", "10.0.0.1");
        }
        let wait = l
            .blocked("alice", "10.0.0.9")
            .expect("user blocked from anywhere");
        assert!(wait > Duration::from_secs(800));
        assert!(l.blocked("bob", "10.0.0.2").is_none());
        l.failed("bob", "10.0.0.1");
        l.failed("carol", "10.0.0.1");
        assert!(
            l.blocked("dave", "10.0.0.1").is_some(),
            "source over its limit of 5"
        );
    }
}
