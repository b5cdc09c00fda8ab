//! SQLite through sqlx: the only module that holds SQL. Opens the database (WAL, foreign
//! keys, created with its directory when missing), applies the embedded migrations, and
//! exposes one method per question the rest of the program asks. No axum or russh types.

mod activity;
mod alerts;
mod auth;
mod charts;
mod history;
mod maintenance;
/// Notification channels, intents and the outbox (issue #13), for `notify`.
pub mod notifications;
mod samples;
mod servers;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::SqlitePool;

pub use activity::{ActivityFilter, ActivityRow, NewActivity};
pub use alerts::{AlertFilter, AlertRow, AlertWrite, FiringCounts};
pub use auth::{TokenRow, UserRow};
pub use charts::{DiskHistory, DiskPoint, DiskSeries, Sparkline};
pub use maintenance::{CompactCounts, Cutoffs, DbStats, RetentionCounts, TierStats};
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
fn one_row(done: &sqlx::sqlite::SqliteQueryResult, what: Missing) -> Result<(), StoreError> {
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// The database's directory: where the master key file lives.
    dir: std::path::PathBuf,
    /// Series this process has named, shared by its clones (the writer's and the API's).
    series: std::sync::Arc<std::sync::Mutex<history::SeriesCache>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// # Errors
    /// The directory cannot be created, the file cannot be opened, or a migration fails.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // The file holds password hashes and sealed keys: only its owner reads it. SQLite
        // gives the -wal and -shm files the database file's mode.
        private_file(path)?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a crash may lose the last commits but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Takes effect for a new file (before its first table); older files get it from
            // the vacuum that ends the conversion of their samples, or `fleetpoll db vacuum`.
            // Retention and the size cap then give pages back with `incremental_vacuum`.
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            // 16 MiB of page cache per connection (SQLite's default is 2 MB): each batch
            // appends to every series' open rows, one leaf page per series, and with the
            // default cache a few hundred hosts already reread those pages for each batch.
            .pragma("cache_size", "-16384")
            // The CLI and `serve` may write at the same time; wait rather than fail.
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let side = std::path::PathBuf::from(side);
            if side.exists() {
                private_file(&side)?;
            }
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(
                || std::path::PathBuf::from("."),
                std::path::Path::to_path_buf,
            );
        let store = Self {
            pool,
            dir,
            series: std::sync::Arc::default(),
        };
        store.convert_legacy().await?;
        Ok(store)
    }

    /// The database's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
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
