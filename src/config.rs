//! Settings: one TOML file (every key optional, defaults below), then `FLEETPOLL_<KEY>`
//! environment variables, then command-line flags. Parsed into [`Settings`] and validated
//! once; no network or database access here.
//!
//! Environment names are the key upper-cased, with the table name as a prefix for keys in a
//! table: `poll_interval_secs` -> `FLEETPOLL_POLL_INTERVAL_SECS`, `[thresholds]
//! cpu_warning_percent` -> `FLEETPOLL_THRESHOLDS_CPU_WARNING_PERCENT`. An unknown
//! `FLEETPOLL_*` variable is an error, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where `serve` looks for a config file when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/fleetpoll.toml";
/// The one environment variable that is not a setting: it names the config file.
pub const CONFIG_ENV: &str = "FLEETPOLL_CONFIG";
/// The API token `fleetpoll mcp` acts as (issue #15). A secret, not a setting: read by the
/// command alone and never echoed, so the settings loader passes over it.
pub const TOKEN_ENV: &str = "FLEETPOLL_TOKEN";

/// A setting that could not be read; always names the key (or variable) and quotes the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file '{path}': {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file '{path}': {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown setting {name} (known keys: {known})")]
    UnknownEnv { name: String, known: String },
    #[error("bad value for {key}: '{value}': {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
}

pub use crate::model::Thresholds;
use crate::store::Location;

/// Every setting, with the defaults documented in `config/fleetpoll.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the API and dashboard listen on.
    pub listen: String,
    /// SQLite database file; created with its directory on first run.
    pub database_path: PathBuf,
    /// When set, the database instead: a `postgres://` URL (PostgreSQL 15 or later, shared
    /// by several fleetpoll processes) or a SQLite path or `sqlite://` URL.
    pub database_url: String,
    /// The master key's directory (it unseals stored SSH keys and channel secrets); empty
    /// means the SQLite file's directory, or `data` with PostgreSQL.
    pub state_dir: PathBuf,
    /// Seconds between two polls of the same server.
    pub poll_interval_secs: u64,
    /// Polls in flight at once.
    pub concurrency: usize,
    /// TCP connect plus SSH handshake.
    pub connect_timeout_secs: u64,
    /// Public-key authentication.
    pub auth_timeout_secs: u64,
    /// The whole remote command (all sections of one poll).
    pub command_timeout_secs: u64,
    /// Consecutive failed polls before a server is `offline` (one lost packet is not an outage).
    pub offline_after_failures: u32,
    /// A failing server is retried after interval x 2^(failures-1), with jitter, capped here.
    pub backoff_max_secs: u64,
    /// New SSH sessions opened per second at most, fleet-wide.
    pub handshakes_per_second: u32,
    /// New SSH sessions being opened at once per target address (or host name), below
    /// sshd's MaxStartups default of 10; a NAT or jump host shows many hosts on one address.
    pub handshakes_per_target: u32,
    /// A dashboard login lasts this long.
    pub session_ttl_secs: u64,
    /// Failed logins within `login_window_secs` after which login answers 429, per user
    /// name and per client address.
    pub login_max_failures_per_user: u32,
    pub login_max_failures_per_source: u32,
    pub login_window_secs: u64,
    /// HTTP connections served at once; beyond it new clients wait in the kernel's backlog.
    /// 0 means a quarter of the process's open-file limit, so that idle or slow clients can
    /// never take the descriptors that SSH sessions and SQLite need.
    pub http_max_connections: usize,
    /// A request's line and headers must arrive within this many seconds of the server
    /// starting to wait for them: after the connection opens, and after each response on a
    /// kept-alive connection (so it is also how long an idle kept-alive connection lives).
    pub http_header_timeout_secs: u64,
    /// A request body must arrive whole within this many seconds of the handler asking for it.
    pub http_body_timeout_secs: u64,
    /// Raw samples older than this are deleted.
    pub retention_days: u64,
    /// Hourly rollups (min, avg, max per hour) are kept this many days (issue #12).
    pub rollup_hourly_days: u64,
    /// Daily rollups are kept this many days.
    pub rollup_daily_days: u64,
    /// Over this many MB in use, the oldest raw history goes first, then the oldest hourly;
    /// 0 = no cap.
    pub max_db_size_mb: u64,
    /// Seconds between two retention runs.
    pub retention_check_secs: u64,
    /// What `serve` runs: `all` (poll and serve the API), `poller` (poll, and serve only
    /// `/healthz` and `/metrics`) or `api` (the API only). Several processes share one
    /// PostgreSQL database; with SQLite only `all`.
    pub role: String,
    /// With PostgreSQL, a poller holds each of its hosts for this long and renews every
    /// third of it; a poller that dies has its hosts taken over after it.
    pub lease_secs: u64,
    /// Alerts of one rule that change state within this many seconds go out as one
    /// notification per channel (issue #13); 0 sends each at the next dispatcher tick.
    pub group_wait_secs: u64,
    /// More than this share of a /24, a tag or the fleet failing with one reason within an
    /// interval is one outage notification, not one per server (issue #13); 1 turns it off.
    pub outage_fraction: f64,
    /// When set, an `http(s)://` URL that gets a JSON POST with this process's counts every
    /// poll interval (a dead man's switch notices a poller that stopped); empty: none.
    pub heartbeat_url: String,
    /// Directories whose key files the API and dashboard may name, separated by `:`; empty
    /// means the database's directory and `~/.ssh` of the user running fleetpoll. The CLI is
    /// not restricted: whoever runs it is already the poller's user.
    pub api_key_dirs: String,
    /// Passphrase variables the API and dashboard may name start with this.
    pub api_passphrase_env_prefix: String,
    pub thresholds: Thresholds,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_path: PathBuf::from("data/fleetpoll.db"),
            database_url: String::new(),
            state_dir: PathBuf::new(),
            poll_interval_secs: 60,
            concurrency: 256,
            connect_timeout_secs: 10,
            auth_timeout_secs: 10,
            command_timeout_secs: 30,
            offline_after_failures: 2,
            backoff_max_secs: 600,
            handshakes_per_second: 200,
            handshakes_per_target: 8,
            session_ttl_secs: 43_200,
            login_max_failures_per_user: 10,
            login_max_failures_per_source: 20,
            login_window_secs: 900,
            http_max_connections: 0,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 10,
            retention_days: 7,
            rollup_hourly_days: 90,
            rollup_daily_days: 730,
            max_db_size_mb: 0,
            retention_check_secs: 3600,
            role: "all".into(),
            lease_secs: 30,
            group_wait_secs: 30,
            outage_fraction: 0.3,
            heartbeat_url: String::new(),
            api_key_dirs: String::new(),
            api_passphrase_env_prefix: "FLEETPOLL_KEY_".into(),
            thresholds: Thresholds::default(),
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "listen",
    "database_path",
    "database_url",
    "state_dir",
    "poll_interval_secs",
    "concurrency",
    "connect_timeout_secs",
    "auth_timeout_secs",
    "command_timeout_secs",
    "offline_after_failures",
    "backoff_max_secs",
    "handshakes_per_second",
    "handshakes_per_target",
    "session_ttl_secs",
    "login_max_failures_per_user",
    "login_max_failures_per_source",
    "login_window_secs",
    "http_max_connections",
    "http_header_timeout_secs",
    "http_body_timeout_secs",
    "retention_days",
    "rollup_hourly_days",
    "rollup_daily_days",
    "max_db_size_mb",
    "retention_check_secs",
    "role",
    "lease_secs",
    "group_wait_secs",
    "outage_fraction",
    "heartbeat_url",
    "api_key_dirs",
    "api_passphrase_env_prefix",
];
const THRESHOLD_KEYS: &[&str] = &[
    "cpu_warning_percent",
    "cpu_critical_percent",
    "memory_warning_percent",
    "memory_critical_percent",
    "disk_warning_percent",
    "disk_critical_percent",
];

impl Settings {
    /// How long each history tier is kept, for the store's choice of tier.
    pub fn keep(&self) -> crate::history::Keep {
        let days = |d: u64| {
            i64::try_from(d)
                .unwrap_or(i64::MAX / crate::history::DAY_MS)
                .saturating_mul(crate::history::DAY_MS)
        };
        crate::history::Keep {
            raw_ms: days(self.retention_days),
            hourly_ms: days(self.rollup_hourly_days),
            daily_ms: days(self.rollup_daily_days),
            poll_interval_ms: i64::try_from(self.poll_interval_secs)
                .unwrap_or(0)
                .saturating_mul(1000),
        }
    }

    /// Loads settings: `explicit` (from `--config`) must exist; otherwise `FLEETPOLL_CONFIG`
    /// (must exist too), otherwise `config/fleetpoll.toml` when present, otherwise defaults.
    /// Then applies `FLEETPOLL_*` variables from `env`.
    ///
    /// # Errors
    /// A missing explicit file, bad TOML, an unknown key or variable, or a bad value.
    pub fn load(
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let from_env = env
            .iter()
            .find(|(k, _)| k == CONFIG_ENV)
            .map(|(_, v)| PathBuf::from(v));
        let path = match (explicit, from_env) {
            (Some(p), _) => Some(p.to_path_buf()),
            (None, Some(p)) => Some(p),
            (None, None) => {
                let p = PathBuf::from(DEFAULT_CONFIG_PATH);
                p.exists().then_some(p)
            }
        };
        let mut settings = match path {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        for (name, value) in &env {
            let Some(key) = name.strip_prefix("FLEETPOLL_") else {
                continue;
            };
            if name == CONFIG_ENV || name == TOKEN_ENV || name == crate::vault::MASTER_KEY_ENV {
                continue;
            }
            settings.set(&key.to_ascii_lowercase(), value, name)?;
        }
        settings.validate()?;
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            // toml's message points at the spot with a caret under a quoted line: kept on
            // its lines (squashed onto one, the caret pointed nowhere).
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Sets one key from a string, as given by an environment variable named `shown`.
    fn set(&mut self, key: &str, value: &str, shown: &str) -> Result<(), ConfigError> {
        let bad = |reason: &str| ConfigError::BadValue {
            key: shown.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let int = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| bad("expected a whole number"))
        };
        let float = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad("expected a number"))
        };
        match key {
            "listen" => self.listen = value.to_string(),
            "database_path" => self.database_path = PathBuf::from(value),
            "database_url" => self.database_url = value.to_string(),
            "state_dir" => self.state_dir = PathBuf::from(value),
            "poll_interval_secs" => self.poll_interval_secs = int()?,
            "concurrency" => {
                self.concurrency = usize::try_from(int()?).map_err(|_| bad("too large"))?
            }
            "connect_timeout_secs" => self.connect_timeout_secs = int()?,
            "auth_timeout_secs" => self.auth_timeout_secs = int()?,
            "command_timeout_secs" => self.command_timeout_secs = int()?,
            "offline_after_failures" => {
                self.offline_after_failures = u32::try_from(int()?).map_err(|_| bad("too large"))?
            }
            "backoff_max_secs" => self.backoff_max_secs = int()?,
            "session_ttl_secs" => self.session_ttl_secs = int()?,
            "login_window_secs" => self.login_window_secs = int()?,
            "login_max_failures_per_user" => {
                self.login_max_failures_per_user =
                    u32::try_from(int()?).map_err(|_| bad("too large"))?
            }
            "login_max_failures_per_source" => {
                self.login_max_failures_per_source =
                    u32::try_from(int()?).map_err(|_| bad("too large"))?
            }
            "handshakes_per_second" => {
                self.handshakes_per_second = u32::try_from(int()?).map_err(|_| bad("too large"))?
            }
            "handshakes_per_target" => {
                self.handshakes_per_target = u32::try_from(int()?).map_err(|_| bad("too large"))?
            }
            "http_max_connections" => {
                self.http_max_connections = usize::try_from(int()?).map_err(|_| bad("too large"))?
            }
            "http_header_timeout_secs" => self.http_header_timeout_secs = int()?,
            "http_body_timeout_secs" => self.http_body_timeout_secs = int()?,
            "retention_days" => self.retention_days = int()?,
            "rollup_hourly_days" => self.rollup_hourly_days = int()?,
            "rollup_daily_days" => self.rollup_daily_days = int()?,
            "max_db_size_mb" => self.max_db_size_mb = int()?,
            "retention_check_secs" => self.retention_check_secs = int()?,
            "role" => self.role = value.trim().to_string(),
            "lease_secs" => self.lease_secs = int()?,
            "group_wait_secs" => self.group_wait_secs = int()?,
            "outage_fraction" => self.outage_fraction = float()?,
            "heartbeat_url" => self.heartbeat_url = value.to_string(),
            "api_key_dirs" => self.api_key_dirs = value.to_string(),
            "api_passphrase_env_prefix" => self.api_passphrase_env_prefix = value.to_string(),
            other => {
                let t = &mut self.thresholds;
                let slot = match other.strip_prefix("thresholds_") {
                    Some("cpu_warning_percent") => &mut t.cpu_warning_percent,
                    Some("cpu_critical_percent") => &mut t.cpu_critical_percent,
                    Some("memory_warning_percent") => &mut t.memory_warning_percent,
                    Some("memory_critical_percent") => &mut t.memory_critical_percent,
                    Some("disk_warning_percent") => &mut t.disk_warning_percent,
                    Some("disk_critical_percent") => &mut t.disk_critical_percent,
                    _ => {
                        let known = TOP_KEYS
                            .iter()
                            .map(|k| format!("FLEETPOLL_{}", k.to_ascii_uppercase()))
                            .chain(THRESHOLD_KEYS.iter().map(|k| {
                                format!("FLEETPOLL_THRESHOLDS_{}", k.to_ascii_uppercase())
                            }))
                            .collect::<Vec<_>>()
                            .join(", ");
                        return Err(ConfigError::UnknownEnv {
                            name: shown.to_string(),
                            known,
                        });
                    }
                };
                *slot = float()?;
            }
        }
        Ok(())
    }

    /// Checks ranges and relations that serde cannot.
    ///
    /// # Errors
    /// The first bad key, by name.
    /// The heartbeat's URL, when one is set.
    ///
    /// # Errors
    /// What is wrong with it (its text is never repeated: it may carry a secret).
    pub fn heartbeat(&self) -> Result<Option<reqwest::Url>, String> {
        let text = self.heartbeat_url.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("expected an http:// or https:// URL with a host".into());
        }
        Ok(Some(url))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, reason: &str| ConfigError::BadValue {
            key: key.to_string(),
            value,
            reason: reason.to_string(),
        };
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(bad(
                "listen",
                self.listen.clone(),
                "expected IP:PORT, e.g. 127.0.0.1:8080",
            ));
        }
        if self.database_path.as_os_str().is_empty() {
            return Err(bad("database_path", String::new(), "must not be empty"));
        }
        let url = self.database_url.trim();
        if let Some((scheme, _)) = url.split_once("://") {
            if !["postgres", "postgresql", "sqlite"].contains(&scheme) {
                return Err(bad(
                    "database_url",
                    format!("{scheme}://..."),
                    "expected postgres://USER@HOST:PORT/DB, or a SQLite path or sqlite:// URL",
                ));
            }
        }
        if !["all", "poller", "api"].contains(&self.role.as_str()) {
            return Err(bad(
                "role",
                self.role.clone(),
                "expected all, poller or api",
            ));
        }
        if self.role != "all" && !matches!(self.database(), Location::Postgres(_)) {
            return Err(bad(
                "role",
                self.role.clone(),
                "several processes share a PostgreSQL database (database_url = \"postgres://...\"); \
                 with SQLite one `serve` does everything (role all)",
            ));
        }
        if self.lease_secs < 3 {
            return Err(bad(
                "lease_secs",
                self.lease_secs.to_string(),
                "must be at least 3",
            ));
        }
        // PostgreSQL's files do not shrink when rows go (only VACUUM FULL, which locks every
        // poller out, gives space back), so a cap on their size would delete history that
        // frees nothing.
        if self.max_db_size_mb > 0 && matches!(self.database(), Location::Postgres(_)) {
            return Err(bad(
                "max_db_size_mb",
                self.max_db_size_mb.to_string(),
                "applies to SQLite only; on PostgreSQL history is kept by age \
                 (retention_days, rollup_hourly_days, rollup_daily_days)",
            ));
        }
        for (key, v) in [
            ("poll_interval_secs", self.poll_interval_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("auth_timeout_secs", self.auth_timeout_secs),
            ("command_timeout_secs", self.command_timeout_secs),
            (
                "offline_after_failures",
                u64::from(self.offline_after_failures),
            ),
            ("backoff_max_secs", self.backoff_max_secs),
            (
                "handshakes_per_second",
                u64::from(self.handshakes_per_second),
            ),
            (
                "handshakes_per_target",
                u64::from(self.handshakes_per_target),
            ),
            ("session_ttl_secs", self.session_ttl_secs),
            (
                "login_max_failures_per_user",
                u64::from(self.login_max_failures_per_user),
            ),
            (
                "login_max_failures_per_source",
                u64::from(self.login_max_failures_per_source),
            ),
            ("login_window_secs", self.login_window_secs),
            ("http_header_timeout_secs", self.http_header_timeout_secs),
            ("http_body_timeout_secs", self.http_body_timeout_secs),
            ("retention_days", self.retention_days),
            ("rollup_hourly_days", self.rollup_hourly_days),
            ("rollup_daily_days", self.rollup_daily_days),
            ("retention_check_secs", self.retention_check_secs),
            ("lease_secs", self.lease_secs),
        ] {
            if v == 0 {
                return Err(bad(key, v.to_string(), "must be at least 1"));
            }
        }
        // Each tier is made from the one before while that one is still kept.
        if self.rollup_hourly_days < self.retention_days {
            return Err(bad(
                "rollup_hourly_days",
                self.rollup_hourly_days.to_string(),
                "must be at least retention_days",
            ));
        }
        if self.rollup_daily_days < self.rollup_hourly_days {
            return Err(bad(
                "rollup_daily_days",
                self.rollup_daily_days.to_string(),
                "must be at least rollup_hourly_days",
            ));
        }
        if self.rollup_daily_days > 36_500 {
            return Err(bad(
                "rollup_daily_days",
                self.rollup_daily_days.to_string(),
                "must be at most 36500",
            ));
        }
        if self.poll_interval_secs > 86_400 {
            return Err(bad(
                "poll_interval_secs",
                self.poll_interval_secs.to_string(),
                "must be at most 86400",
            ));
        }
        if self.group_wait_secs > 3600 {
            return Err(bad(
                "group_wait_secs",
                self.group_wait_secs.to_string(),
                "must be at most 3600",
            ));
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(bad(
                "concurrency",
                self.concurrency.to_string(),
                "must be between 1 and 10000",
            ));
        }
        if let Err(reason) = self.heartbeat() {
            // The URL itself is not repeated: push URLs carry their secret.
            return Err(bad("heartbeat_url", "(not shown)".into(), &reason));
        }
        if !(0.05..=1.0).contains(&self.outage_fraction) {
            return Err(bad(
                "outage_fraction",
                self.outage_fraction.to_string(),
                "must be between 0.05 and 1 (1 turns correlation off)",
            ));
        }
        if self.http_header_timeout_secs > 3600 {
            return Err(bad(
                "http_header_timeout_secs",
                self.http_header_timeout_secs.to_string(),
                "must be at most 3600",
            ));
        }
        // The body is read inside the request's own 30 s deadline: a longer wait never happens.
        if self.http_body_timeout_secs > 30 {
            return Err(bad(
                "http_body_timeout_secs",
                self.http_body_timeout_secs.to_string(),
                "must be at most 30",
            ));
        }
        if self.http_max_connections > 1_000_000 {
            return Err(bad(
                "http_max_connections",
                self.http_max_connections.to_string(),
                "must be at most 1000000 (0 = a quarter of the open-file limit)",
            ));
        }
        let t = &self.thresholds;
        for (name, warn, crit) in [
            ("cpu", t.cpu_warning_percent, t.cpu_critical_percent),
            (
                "memory",
                t.memory_warning_percent,
                t.memory_critical_percent,
            ),
            ("disk", t.disk_warning_percent, t.disk_critical_percent),
        ] {
            for (which, v) in [("warning", warn), ("critical", crit)] {
                if !(0.0..=100.0).contains(&v) {
                    return Err(bad(
                        &format!("thresholds.{name}_{which}_percent"),
                        v.to_string(),
                        "must be between 0 and 100",
                    ));
                }
            }
            if warn > crit {
                return Err(bad(
                    &format!("thresholds.{name}_warning_percent"),
                    warn.to_string(),
                    "must not exceed the critical threshold",
                ));
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // validate() has checked it; the fallback only guards a hand-built Settings.
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }

    pub fn http_header_timeout(&self) -> Duration {
        Duration::from_secs(self.http_header_timeout_secs)
    }

    pub fn http_body_timeout(&self) -> Duration {
        Duration::from_secs(self.http_body_timeout_secs)
    }

    /// The directories of `api_key_dirs`, or its default.
    pub fn api_key_dirs(&self) -> Vec<PathBuf> {
        if !self.api_key_dirs.trim().is_empty() {
            return self
                .api_key_dirs
                .split(':')
                .filter(|d| !d.trim().is_empty())
                .map(PathBuf::from)
                .collect();
        }
        let mut dirs = vec![self.key_dir()];
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            dirs.push(PathBuf::from(home).join(".ssh"));
        }
        dirs
    }

    /// Where the database is: `database_url` when set, else the `database_path` file.
    pub fn database(&self) -> Location {
        if self.database_url.trim().is_empty() {
            Location::Sqlite(self.database_path.clone())
        } else {
            Location::parse(self.database_url.trim())
        }
    }

    /// `--db`: a URL replaces `database_url`, a path `database_path`.
    pub fn set_database(&mut self, db: &str) {
        if db.contains("://") || db.starts_with("sqlite:") {
            self.database_url = db.to_owned();
        } else {
            self.database_path = PathBuf::from(db);
            self.database_url.clear();
        }
    }

    /// The directory of the master key: `state_dir`, else the SQLite file's directory, else
    /// `data`.
    pub fn key_dir(&self) -> PathBuf {
        if !self.state_dir.as_os_str().is_empty() {
            return self.state_dir.clone();
        }
        match self.database() {
            Location::Sqlite(path) => match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            },
            Location::Postgres(_) => PathBuf::from("data"),
        }
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }

    /// The longest one poll may wait on its host once it has a handshake slot: connect,
    /// authentication, the probe of a new session and the poll script, each under its own
    /// deadline.
    pub fn poll_deadline(&self) -> Duration {
        Duration::from_secs(
            self.connect_timeout_secs + self.auth_timeout_secs + 2 * self.command_timeout_secs,
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_heartbeat_url_must_be_http_and_is_never_repeated_in_the_error() {
        let mut s = Settings::default();
        assert_eq!(s.heartbeat(), Ok(None));
        s.heartbeat_url = "https://hc-ping.com/5e1f-secret".into();
        assert!(s.heartbeat().expect("ok").is_some());
        assert!(s.validate().is_ok());
        for bad in [
            "ftp://example.com/5e1f-secret",
            "hc-ping.com/5e1f-secret",
            "mailto:ops@5e1f-secret.example",
        ] {
            s.heartbeat_url = bad.into();
            let e = s.validate().expect_err(bad).to_string();
            assert!(
                e.contains("heartbeat_url") && !e.contains("5e1f-secret"),
                "{e}"
            );
        }
    }

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_config_file_equals_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fleetpoll.toml");
        let s = Settings::load(Some(&path), env(&[])).expect("shipped config loads");
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn the_database_is_a_file_or_a_postgres_url() {
        let mut s = Settings::default();
        assert_eq!(
            s.database(),
            Location::Sqlite(PathBuf::from("data/fleetpoll.db"))
        );
        assert_eq!(s.key_dir(), PathBuf::from("data"));
        s.set_database("postgres://fp:pw@db:5432/fleet");
        assert_eq!(
            s.database(),
            Location::Postgres("postgres://fp:pw@db:5432/fleet".into())
        );
        assert_eq!(s.database().to_string(), "postgres://fp:***@db:5432/fleet");
        s.set_database("/var/lib/fleetpoll/f.db");
        assert_eq!(
            s.database(),
            Location::Sqlite(PathBuf::from("/var/lib/fleetpoll/f.db"))
        );
        assert_eq!(s.key_dir(), PathBuf::from("/var/lib/fleetpoll"));
        s.set_database("sqlite:///tmp/x.db");
        assert_eq!(s.database(), Location::Sqlite(PathBuf::from("/tmp/x.db")));
    }

    #[test]
    fn a_size_cap_or_an_unknown_scheme_is_refused_with_postgres() {
        let err = Settings::load(
            None,
            env(&[
                ("FLEETPOLL_DATABASE_URL", "postgres://db/fleet"),
                ("FLEETPOLL_MAX_DB_SIZE_MB", "100"),
            ]),
        )
        .expect_err("cap on postgres");
        assert!(err.to_string().contains("max_db_size_mb"), "{err}");
        let err = Settings::load(None, env(&[("FLEETPOLL_DATABASE_URL", "mysql://db/fleet")]))
            .expect_err("mysql");
        assert!(err.to_string().contains("database_url"), "{err}");
    }

    #[test]
    fn several_roles_need_postgres() {
        let err = Settings::load(None, env(&[("FLEETPOLL_ROLE", "poller")])).expect_err("sqlite");
        assert!(err.to_string().contains("role"), "{err}");
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        let s = Settings::load(
            None,
            env(&[
                ("FLEETPOLL_ROLE", "api"),
                ("FLEETPOLL_DATABASE_URL", "postgres://db/fleet"),
            ]),
        )
        .expect("api on postgres");
        assert_eq!(s.role, "api");
        let err = Settings::load(
            None,
            env(&[
                ("FLEETPOLL_ROLE", "leader"),
                ("FLEETPOLL_DATABASE_URL", "postgres://db/fleet"),
            ]),
        )
        .expect_err("unknown role");
        assert!(err.to_string().contains("all, poller or api"), "{err}");
    }

    #[test]
    fn environment_overrides_a_key_and_a_threshold() {
        let s = Settings::load(
            None,
            env(&[
                ("FLEETPOLL_POLL_INTERVAL_SECS", "15"),
                ("FLEETPOLL_THRESHOLDS_DISK_CRITICAL_PERCENT", "97.5"),
                ("OTHER", "x"),
            ]),
        )
        .expect("loads");
        assert_eq!(s.poll_interval_secs, 15);
        assert_eq!(s.thresholds.disk_critical_percent, 97.5);
    }

    #[test]
    fn unknown_environment_key_is_an_error_naming_it() {
        let err = Settings::load(None, env(&[("FLEETPOLL_POLL_INTERVAL", "15")]))
            .expect_err("unknown key");
        assert!(
            err.to_string().contains("FLEETPOLL_POLL_INTERVAL "),
            "{err}"
        );
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let err =
            Settings::load(None, env(&[("FLEETPOLL_CONCURRENCY", "many")])).expect_err("bad value");
        assert!(err.to_string().contains("FLEETPOLL_CONCURRENCY"), "{err}");
        assert!(err.to_string().contains("'many'"), "{err}");
    }

    #[test]
    fn unknown_file_key_and_bad_type_name_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "poll_interval = 5\n").expect("write");
        let err = Settings::load(Some(&p), env(&[])).expect_err("unknown");
        assert!(err.to_string().contains("poll_interval"), "{err}");
        std::fs::write(&p, "concurrency = \"lots\"\n").expect("write");
        let err = Settings::load(Some(&p), env(&[])).expect_err("bad type");
        assert!(err.to_string().contains("concurrency"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/fleetpoll.toml")), env(&[]))
            .expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/fleetpoll.toml"),
            "{err}"
        );
    }

    #[test]
    fn warning_above_critical_is_rejected() {
        let err = Settings::load(
            None,
            env(&[("FLEETPOLL_THRESHOLDS_CPU_WARNING_PERCENT", "99")]),
        )
        .expect_err("warning > critical");
        assert!(err.to_string().contains("cpu_warning_percent"), "{err}");
    }

    #[test]
    fn http_limits_come_from_the_environment_and_are_checked() {
        let s = Settings::load(
            None,
            env(&[
                ("FLEETPOLL_HTTP_MAX_CONNECTIONS", "100"),
                ("FLEETPOLL_HTTP_HEADER_TIMEOUT_SECS", "5"),
                ("FLEETPOLL_HTTP_BODY_TIMEOUT_SECS", "3"),
            ]),
        )
        .expect("loads");
        assert_eq!(
            (
                s.http_max_connections,
                s.http_header_timeout_secs,
                s.http_body_timeout_secs
            ),
            (100, 5, 3)
        );
        for (key, value) in [
            ("FLEETPOLL_HTTP_BODY_TIMEOUT_SECS", "60"),
            ("FLEETPOLL_HTTP_BODY_TIMEOUT_SECS", "0"),
            ("FLEETPOLL_HTTP_HEADER_TIMEOUT_SECS", "0"),
        ] {
            let err = Settings::load(None, env(&[(key, value)])).expect_err("out of range");
            assert!(err.to_string().contains("timeout_secs"), "{err}");
        }
    }
}
