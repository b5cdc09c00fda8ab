//! The database through sqlx: the only module that holds SQL. Opens it (SQLite by default:
//! WAL, foreign keys, created with its directory when missing; or PostgreSQL from a
//! `postgres://` URL), applies that backend's embedded migrations, and exposes one method per
//! question the rest of the program asks. No axum or russh types.
//!
//! One set of queries serves both backends through sqlx's Any driver: placeholders are `$N`
//! (SQLite reads them too), columns have the same names and kinds on both, and the few places
//! where the dialects part ask [`Store::backend`].

mod activity;
mod alerts;
mod auth;
mod charts;
mod history;
mod maintenance;
/// Notification channels, intents and the outbox (issue #13), for `notify`.
pub mod notifications;
mod pollers;
mod samples;
mod servers;
mod sql;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{AnyPool, Executor};

pub use activity::{ActivityFilter, ActivityRow, NewActivity};
pub use alerts::{AlertFilter, AlertRow, AlertWrite, FiringCounts};
pub use auth::{TokenRow, UserRow};
pub use charts::{DiskHistory, DiskPoint, DiskSeries, Sparkline};
pub use maintenance::{CompactCounts, Cutoffs, DbStats, RetentionCounts, TierStats};
pub use pollers::{fencing_margin, LeaseRound, PollerInfo, PollerRow};
pub use samples::{
    Band, ContainerPoint, ContainerRow, DiskRow, History, LatestSample, MetricPoint, PollWrite,
};
pub use servers::{InventoryVersion, ServerUpdate, StoredKey, StoredRawOutput};

/// A database failure, or a client mistake the database detected.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A lookup or change by id or name found no such row.
    #[error("no such {0}")]
    NotFound(Missing),
    /// A UNIQUE constraint: names the field that must be unique.
    #[error("{field} '{value}' is already taken")]
    Conflict { field: &'static str, value: String },
    /// A change already made: revoking a revoked token.
    #[error("{what} is already {state}")]
    Already { what: String, state: &'static str },
    /// The database's directory or file could not be created or made private.
    #[error("cannot create database directory or file '{path}': {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The database server did not answer or refused us (the message names no password).
    #[error("cannot connect to {location}: {message}")]
    Connect { location: String, message: String },
    /// The file is there but SQLite will not open it (not a database, or damaged).
    #[error("SQLite refuses the file: {0}")]
    NotSqlite(String),
    /// Something one backend does and the other does not; says what to do instead.
    #[error("not on PostgreSQL: {0}")]
    Unsupported(&'static str),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A stored value that does not read back (hand-edited database).
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        table: &'static str,
        message: String,
    },
}

impl StoreError {
    /// The database did not answer (down, restarting, unreachable): the same write may
    /// succeed later, unlike one it refused.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Sqlx(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            )
            | Self::Connect { .. } => true,
            // Connection exceptions (08...) and an administrator's shutdown (57P..).
            Self::Sqlx(sqlx::Error::Database(d)) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        }
    }
}

/// Creates `path` with mode 0600 when it does not exist, and narrows an existing file to 0600
/// (databases created before this rule were 0644 under the usual umask).
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source: std::io::Error| StoreError::CreateDir {
        path: path.display().to_string(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path).map_err(err)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
                    .map_err(err)?;
            }
            Ok(())
        }
        Err(e) => Err(err(e)),
    }
}

/// What a one-row lookup or change did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Server,
    User,
    Token,
    AlertRule,
    /// An open (pending or firing) alert.
    Alert,
    /// A silence still running or ahead.
    Silence,
    ThresholdOverride,
    /// A server's kept raw output: none of its polls failed to be read so far.
    FailedOutput,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Server => "server",
            Self::User => "user",
            Self::Token => "token",
            Self::AlertRule => "alert rule",
            Self::Alert => "open alert",
            Self::Silence => "silence in force or ahead",
            Self::ThresholdOverride => "threshold override",
            Self::FailedOutput => "failed output",
        })
    }
}

/// `NotFound` when a statement that targets one row by id touched none.
fn one_row(done: &AnyQueryResult, what: Missing) -> Result<(), StoreError> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

/// Where the database is: a SQLite file (the default) or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    /// A `postgres://` or `postgresql://` URL, which may carry a password.
    Postgres(String),
}

impl Location {
    /// A path, `sqlite:PATH` / `sqlite://PATH`, or a `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Self::Postgres(text.to_owned());
        }
        let path = text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
            .unwrap_or(text);
        Self::Sqlite(std::path::PathBuf::from(path))
    }

    /// The SQLite file, when the database is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(p) => Some(p),
            Self::Postgres(_) => None,
        }
    }
}

/// Shown in logs and errors: a PostgreSQL URL without its password.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "{}", p.display()),
            Self::Postgres(url) => f.write_str(&sql::redact_url(url)),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Location({self})")
    }
}

/// Which SQL dialect the open database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where the master key file lives: the SQLite file's directory, or the state directory
    /// given with a PostgreSQL URL.
    dir: std::path::PathBuf,
    /// Series this process has named, shared by its clones (the writer's and the API's).
    series: std::sync::Arc<std::sync::Mutex<history::SeriesCache>>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    ///
    /// # Errors
    /// The directory cannot be created, the file cannot be opened, or a migration fails.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_at(&Location::Sqlite(path.to_path_buf()), None).await
    }

    /// Opens the database at `location` and migrates it. `state_dir` holds the master key;
    /// by default it is the SQLite file's directory, or `data` with PostgreSQL.
    ///
    /// # Errors
    /// The directory cannot be created, the database cannot be reached, or a migration fails.
    pub async fn open_at(
        location: &Location,
        state_dir: Option<&Path>,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (pool, backend, default_dir) = match location {
            Location::Sqlite(path) => (open_sqlite(path).await?, Backend::Sqlite, sqlite_dir(path)),
            Location::Postgres(url) => (
                open_postgres(url).await?,
                Backend::Postgres,
                std::path::PathBuf::from("data"),
            ),
        };
        let store = Self {
            pool,
            backend,
            dir: state_dir.map_or(default_dir, Path::to_path_buf),
            series: std::sync::Arc::default(),
        };
        if backend == Backend::Sqlite {
            store.convert_legacy().await?;
        } else {
            // Today's and the next days' partitions; the upkeep keeps making them ahead.
            let now = Utc::now().timestamp_millis();
            store
                .prepare_partitions(
                    now - crate::history::DAY_MS,
                    now + 2 * crate::history::DAY_MS,
                )
                .await?;
        }
        Ok(store)
    }

    /// The database's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Whether anything is sealed under the master key (a stored SSH key, a channel's
    /// secret): then a missing master key was lost, and a new one must not be made.
    ///
    /// # Errors
    /// Database failure.
    pub async fn holds_sealed(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "select 1 from servers where key_sealed is not null \
             union all select 1 from notification_channels where secret_sealed is not null \
             limit 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that writes: on SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a read-then-write step never fails on a lock taken in between.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_dir(path: &Path) -> std::path::PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        )
}

async fn open_sqlite(path: &Path) -> Result<AnyPool, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    // The file holds password hashes and sealed keys: only its owner reads it. SQLite
    // gives the -wal and -shm files the database file's mode.
    private_file(path)?;
    let url = sql::sqlite_url(path).map_err(|source| StoreError::CreateDir {
        path: path.display().to_string(),
        source,
    })?;
    // One connection first: a file SQLite refuses (not a database) is said once, plainly,
    // instead of the pool retrying it until its acquire timeout.
    let refused = |e: sqlx::Error| {
        StoreError::NotSqlite(match &e {
            sqlx::Error::Database(d) => d.message().to_string(),
            other => other.to_string(),
        })
    };
    let mut first = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .map_err(refused)?;
    first.execute(SQLITE_PRAGMAS).await.map_err(refused)?;
    sqlx::Connection::close(first).await.map_err(refused)?;
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            private_file(&side)?;
        }
    }
    Ok(pool)
}

/// Set on every SQLite connection (sqlx's Any driver takes only a URL).
const SQLITE_PRAGMAS: &str = "\
    pragma busy_timeout = 10000; \
    pragma foreign_keys = on; \
    pragma auto_vacuum = incremental; \
    pragma journal_mode = wal; \
    pragma synchronous = normal; \
    pragma cache_size = -16384;";
// Why each: the CLI and `serve` may write at the same time, so wait rather than fail.
// auto_vacuum takes effect for a new file (before its first table); older files get it from
// the vacuum that ends the conversion of their samples, or `fleetpoll db vacuum`, and
// retention and the size cap then give pages back with `incremental_vacuum`. WAL + NORMAL: a
// crash may lose the last commits but never corrupts the file. 16 MiB of page cache per
// connection (SQLite's default is 2 MB): each batch appends to every series' open rows, one
// leaf page per series, and with the default cache a few hundred hosts already reread those
// pages for each batch.

async fn open_postgres(url: &str) -> Result<AnyPool, StoreError> {
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .map_err(|e| StoreError::Connect {
            location: sql::redact_url(url),
            message: sql::redact_error(&e.to_string(), url),
        })?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn i64_to_u64(v: Option<i64>) -> Option<u64> {
    v.map(|v| u64::try_from(v).unwrap_or(0))
}
