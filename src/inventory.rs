//! What to poll: a server registration (host, port, user, and its private key: a path on the
//! poller, or the key itself, stored sealed under the master key) and its validation.
//! Checking that the key is usable is delegated to `ssh::keys::resolve`, the one place that
//! reads keys; this module never holds key material beyond the operator's input.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A field that failed validation, with a message an operator can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }

    /// A key that cannot be used, blamed on `field` (`key_path` or `key`), or on
    /// `key_passphrase_env` when the variable it names is not set.
    pub fn key(field: &'static str, e: &crate::ssh::keys::KeyError) -> Self {
        let field = match e {
            crate::ssh::keys::KeyError::PassphraseUnset(_) => "key_passphrase_env",
            _ => field,
        };
        Self::new(field, e.to_string())
    }
}

/// Where a server stands, as shown in the API. `stale` is derived when read (a server
/// whose last good sample is older than three intervals), never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    Unknown,
    Online,
    Offline,
    HostKeyChanged,
    Stale,
    Disabled,
}

impl ServerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Online => "online",
            Self::Offline => "offline",
            Self::HostKeyChanged => "host_key_changed",
            Self::Stale => "stale",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServerStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "unknown" => Self::Unknown,
            "online" => Self::Online,
            "offline" => Self::Offline,
            "host_key_changed" => Self::HostKeyChanged,
            "stale" => Self::Stale,
            "disabled" => Self::Disabled,
            other => return Err(format!("unknown status '{other}'")),
        })
    }
}

/// A registered server as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key_path: String,
    /// Name of the environment variable that holds the key's passphrase; never the passphrase.
    pub key_passphrase_env: Option<String>,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub status: ServerStatus,
    /// Why the last poll failed or was incomplete, when it did.
    pub reason: Option<String>,
    pub last_sample_at: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// The pinned host key (trust on first use), `SHA256:...`.
    pub host_key_fingerprint: Option<String>,
    /// The key a host presented that did not match the pin; `trust` pins it.
    pub pending_host_key_fingerprint: Option<String>,
    /// What the host runs, from the probe at the last (re)connect.
    pub platform: Option<crate::probe::Platform>,
    /// Failed polls in a row; `offline` from `offline_after_failures` on.
    pub consecutive_failures: u32,
    /// The private key, when stored in the database instead of referenced by path.
    #[serde(skip)]
    pub key_sealed: Option<Sealed>,
    /// SHA256 fingerprint of a stored key's public half.
    pub key_fingerprint: Option<String>,
    /// Why container metrics are missing, as last logged (so a change is logged once).
    pub docker_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Server {
    /// The registration part, for editing.
    pub fn registration(&self) -> NewServer {
        NewServer {
            name: self.name.clone(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            key_path: self.key_path.clone(),
            key_passphrase_env: self.key_passphrase_env.clone(),
            tags: self.tags.clone(),
            enabled: self.enabled,
            key_material: None,
            key_stored: self.key_sealed.is_some(),
        }
    }

    /// Status as shown: disabled wins; an online server without a recent sample is stale.
    pub fn effective_status(&self, now: DateTime<Utc>, interval_secs: u64) -> ServerStatus {
        if !self.enabled {
            return ServerStatus::Disabled;
        }
        if self.status == ServerStatus::Online {
            let limit = chrono::Duration::seconds(
                i64::try_from(interval_secs.saturating_mul(3)).unwrap_or(i64::MAX / 2),
            );
            if let Some(last) = self.last_sample_at {
                if now - last > limit {
                    return ServerStatus::Stale;
                }
            }
        }
        self.status
    }
}

/// A server as the API and `--json` show it: the registration plus state; the key is
/// referred to by path only.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    /// None when the key is stored in the database.
    pub key_path: Option<&'a str>,
    pub key_stored: bool,
    pub key_fingerprint: Option<&'a str>,
    pub key_passphrase_env: Option<&'a str>,
    pub tags: &'a [String],
    pub enabled: bool,
    pub status: ServerStatus,
    pub reason: Option<&'a str>,
    pub last_sample_at: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub host_key_fingerprint: Option<&'a str>,
    pub pending_host_key_fingerprint: Option<&'a str>,
    pub platform: Option<&'a crate::probe::Platform>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Server {
    /// The shown form, with the status as of `now` (stale after three missed intervals).
    pub fn view(&self, now: DateTime<Utc>, interval_secs: u64) -> ServerView<'_> {
        ServerView {
            id: self.id,
            name: &self.name,
            host: &self.host,
            port: self.port,
            user: &self.user,
            key_path: (!self.key_path.is_empty()).then_some(self.key_path.as_str()),
            key_stored: self.key_sealed.is_some(),
            key_fingerprint: self.key_fingerprint.as_deref(),
            key_passphrase_env: self.key_passphrase_env.as_deref(),
            tags: &self.tags,
            enabled: self.enabled,
            status: self.effective_status(now, interval_secs),
            reason: self.reason.as_deref(),
            last_sample_at: self.last_sample_at,
            last_poll_at: self.last_poll_at,
            host_key_fingerprint: self.host_key_fingerprint.as_deref(),
            pending_host_key_fingerprint: self.pending_host_key_fingerprint.as_deref(),
            platform: self.platform.as_ref(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A private key sealed under the master key (`vault`); opaque without it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// A validated registration: what `server add` and `POST /api/servers` create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewServer {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Path of the private key on the poller; empty when the key is stored.
    pub key_path: String,
    pub user: String,
    pub key_passphrase_env: Option<String>,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// A private key (OpenSSH or PEM text) to store encrypted instead of a path. Never
    /// serialized, so it cannot reach a response or the activity log.
    #[serde(skip)]
    pub key_material: Option<crate::auth::Secret>,
    /// The server already has a stored key (kept unless replaced).
    #[serde(skip)]
    pub key_stored: bool,
}

/// Fields a PATCH may change; `None` leaves the field alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerPatch {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key_path: Option<String>,
    pub key_passphrase_env: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub enabled: Option<bool>,
    /// A new private key to store (replaces the path or the stored key).
    pub key_material: Option<crate::auth::Secret>,
}

impl ServerPatch {
    pub fn apply(&self, base: &NewServer) -> NewServer {
        let mut s = base.clone();
        if let Some(v) = &self.name {
            s.name = v.clone();
        }
        if let Some(v) = &self.host {
            s.host = v.clone();
        }
        if let Some(v) = self.port {
            s.port = v;
        }
        if let Some(v) = &self.user {
            s.user = v.clone();
        }
        if let Some(v) = &self.key_path {
            s.key_path = v.clone();
            if !v.is_empty() {
                s.key_material = None;
                s.key_stored = false;
            }
        }
        if let Some(m) = &self.key_material {
            s.key_material = Some(m.clone());
            s.key_path = String::new();
        }
        if let Some(v) = &self.key_passphrase_env {
            s.key_passphrase_env = v.clone();
        }
        if let Some(v) = &self.tags {
            s.tags = v.clone();
        }
        if let Some(v) = self.enabled {
            s.enabled = v;
        }
        s
    }

    /// True when the change affects how the server is reached (drop its open connection).
    pub fn touches_connection(&self) -> bool {
        self.host.is_some()
            || self.port.is_some()
            || self.user.is_some()
            || self.key_path.is_some()
            || self.key_material.is_some()
            || self.key_passphrase_env.is_some()
    }
}

impl NewServer {
    /// Checks every field's syntax, then that the key file holds a private key russh can
    /// load (with its passphrase from the named environment variable, if any).
    ///
    /// # Errors
    /// The first bad field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_syntax()?;
        use crate::ssh::keys::{resolve, KeySource};
        let (source, field) = match &self.key_material {
            Some(material) => (KeySource::Text(material.expose()), "key"),
            // Kept as stored; the master key opens it at the next poll.
            None if self.key_stored && self.key_path.is_empty() => return Ok(()),
            None => (KeySource::File(Path::new(&self.key_path)), "key_path"),
        };
        resolve(source, self.key_passphrase_env.as_deref())
            .map(|_| ())
            .map_err(|e| ValidationError::key(field, &e))
    }

    /// Every check that needs no file system.
    ///
    /// # Errors
    /// The first bad field.
    pub fn validate_syntax(&self) -> Result<(), ValidationError> {
        validate_name(&self.name)?;
        validate_host(&self.host)?;
        if self.port == 0 {
            return Err(ValidationError::new("port", "must be between 1 and 65535"));
        }
        validate_user(&self.user)?;
        let stored = self.key_material.is_some() || self.key_stored;
        if self.key_path.trim().is_empty() && !stored {
            return Err(ValidationError::new(
                "key_path",
                "must not be empty (or give the key itself to store)",
            ));
        }
        if !self.key_path.trim().is_empty() && self.key_material.is_some() {
            return Err(ValidationError::new(
                "key",
                "give either key_path or key, not both",
            ));
        }
        if let Some(var) = &self.key_passphrase_env {
            let ok = !var.is_empty()
                && var.len() <= 128
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !var.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err(ValidationError::new(
                    "key_passphrase_env",
                    format!("'{var}' is not an environment variable name"),
                ));
            }
        }
        if self.tags.len() > 32 {
            return Err(ValidationError::new("tags", "at most 32 tags"));
        }
        for tag in &self.tags {
            let ok = !tag.is_empty()
                && tag.len() <= 64
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '='));
            if !ok {
                return Err(ValidationError::new(
                    "tags",
                    format!(
                        "'{tag}' is not a tag: use 1-64 letters, digits, '-', '_', '.', ':', '='"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn validate_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            format!("'{name}' is not a server name: use 1-64 letters, digits, '-', '_', '.', starting with a letter or digit"),
        ))
    }
}

/// A hostname (RFC 1123 labels) or an IPv4/IPv6 address.
pub fn validate_host(host: &str) -> Result<(), ValidationError> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let bad = || {
        ValidationError::new(
            "host",
            format!("'{host}' is neither an IP address nor a valid hostname"),
        )
    };
    let h = host.strip_suffix('.').unwrap_or(host);
    if h.is_empty() || h.len() > 253 {
        return Err(bad());
    }
    // All-numeric dotted names would be read as (bad) IPv4 addresses by resolvers.
    if h.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit())) {
        return Err(bad());
    }
    for label in h.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// A login name as useradd accepts it: letters, digits, `_`, `.`, `-`, not starting with `-`.
fn validate_user(user: &str) -> Result<(), ValidationError> {
    let ok = !user.is_empty()
        && user.len() <= 32
        && user.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "user",
            format!("'{user}' is not a valid login name"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewServer {
        NewServer {
            name: "web-1".into(),
            host: "10.0.0.5".into(),
            port: 22,
            user: "monitor".into(),
            key_path: "/k".into(),
            key_passphrase_env: None,
            tags: vec!["prod".into()],
            enabled: true,
            key_material: None,
            key_stored: false,
        }
    }

    #[test]
    fn accepts_hostnames_and_addresses() {
        for h in [
            "10.0.0.5",
            "::1",
            "fe80::1",
            "web-1.example.com",
            "localhost",
            "db01.",
        ] {
            assert!(validate_host(h).is_ok(), "{h}");
        }
    }

    #[test]
    fn rejects_bad_hosts() {
        for h in [
            "",
            "bad host",
            "-a.com",
            "a..b",
            "999.1.1.1",
            "a_b.com",
            "x;rm -rf",
        ] {
            let e = validate_host(h).expect_err(h);
            assert_eq!(e.field, "host");
        }
    }

    #[test]
    fn syntax_errors_name_their_field() {
        let mut s = sample();
        s.port = 0;
        assert_eq!(s.validate_syntax().expect_err("port").field, "port");
        let mut s = sample();
        s.user = "-root".into();
        assert_eq!(s.validate_syntax().expect_err("user").field, "user");
        let mut s = sample();
        s.name = "web 1".into();
        assert_eq!(s.validate_syntax().expect_err("name").field, "name");
        let mut s = sample();
        s.tags = vec!["a b".into()];
        assert_eq!(s.validate_syntax().expect_err("tags").field, "tags");
        assert!(sample().validate_syntax().is_ok());
    }

    #[test]
    fn missing_key_file_is_a_key_path_error() {
        let mut s = sample();
        s.key_path = "/nonexistent/id_ed25519".into();
        let e = s.validate().expect_err("missing key");
        assert_eq!(e.field, "key_path");
        assert!(
            e.message.contains("/nonexistent/id_ed25519"),
            "{}",
            e.message
        );
    }

    #[test]
    fn an_unset_passphrase_variable_is_blamed_on_that_field() {
        let mut s = sample();
        s.key_path = "/nonexistent/id_ed25519".into();
        s.key_passphrase_env = Some("FLEETPOLL_TEST_PASSPHRASE_NEVER_SET_9C1E".into());
        let e = s.validate().expect_err("unset variable");
        assert_eq!(e.field, "key_passphrase_env");
        assert!(
            e.message
                .contains("FLEETPOLL_TEST_PASSPHRASE_NEVER_SET_9C1E"),
            "{}",
            e.message
        );
    }
}
