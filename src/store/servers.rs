//! The `servers` table: registrations, status and the pinned host key.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::sql::Builder;
use super::{from_ms, one_row, to_ms, Missing, Store, StoreError};
use crate::inventory::{NewServer, Server, ServerStatus};
use crate::text;

const COLUMNS: &str = "id, name, host, port, \"user\", key_path, key_passphrase_env, tags, enabled, status, reason, \
     last_sample_at, last_poll_at, host_key_fingerprint, pending_host_key_fingerprint, created_at, updated_at, platform, consecutive_failures, key_sealed, key_fingerprint, docker_note";

fn read(row: &AnyRow) -> Result<Server, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "servers",
        message,
    };
    let id: String = row.try_get("id")?;
    let tags: String = row.try_get("tags")?;
    let status: String = row.try_get("status")?;
    let port: i64 = row.try_get("port")?;
    Ok(Server {
        id: Uuid::parse_str(&id).map_err(|e| corrupt(format!("id '{id}': {e}")))?,
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port: u16::try_from(port).map_err(|_| corrupt(format!("port {port}")))?,
        user: row.try_get("user")?,
        key_path: row.try_get("key_path")?,
        key_passphrase_env: row.try_get("key_passphrase_env")?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt(format!("tags: {e}")))?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        status: status.parse().map_err(corrupt)?,
        reason: row
            .try_get::<Option<String>, _>("reason")?
            .map(|r| text::clip_owned(r, text::MAX_ENTRY_TEXT)),
        last_sample_at: row
            .try_get::<Option<i64>, _>("last_sample_at")?
            .map(from_ms),
        last_poll_at: row.try_get::<Option<i64>, _>("last_poll_at")?.map(from_ms),
        host_key_fingerprint: row.try_get("host_key_fingerprint")?,
        pending_host_key_fingerprint: row.try_get("pending_host_key_fingerprint")?,
        platform: row
            .try_get::<Option<String>, _>("platform")?
            .and_then(|p| serde_json::from_str(&p).ok()),
        consecutive_failures: u32::try_from(row.try_get::<i64, _>("consecutive_failures")?)
            .unwrap_or(0),
        key_sealed: row
            .try_get::<Option<Vec<u8>>, _>("key_sealed")?
            .map(crate::inventory::Sealed),
        key_fingerprint: row.try_get("key_fingerprint")?,
        docker_note: row
            .try_get::<Option<String>, _>("docker_note")?
            .map(|r| text::clip_owned(r, text::MAX_ENTRY_TEXT)),
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

fn conflict(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            field: "name",
            value: name.to_string(),
        },
        _ => StoreError::Sqlx(e),
    }
}

impl Store {
    /// Registers a server with status `unknown`.
    ///
    /// # Errors
    /// `Conflict` when the name is taken.
    pub async fn insert_server(
        &self,
        s: &NewServer,
        key: &StoredKey,
        now: DateTime<Utc>,
    ) -> Result<Server, StoreError> {
        let (sealed, fingerprint) = match key {
            StoredKey::Set {
                sealed,
                fingerprint,
            } => (Some(sealed.as_slice()), Some(fingerprint.as_str())),
            StoredKey::Keep | StoredKey::Clear => (None, None),
        };
        let id = Uuid::new_v4();
        let tags = serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "insert into servers (id, name, host, port, \"user\", key_path, key_passphrase_env, tags, enabled, \
             status, created_at, updated_at, key_sealed, key_fingerprint) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'unknown', $10, $11, $12, $13)",
        )
        .bind(id.to_string())
        .bind(&s.name)
        .bind(&s.host)
        .bind(i64::from(s.port))
        .bind(&s.user)
        .bind(&s.key_path)
        .bind(&s.key_passphrase_env)
        .bind(tags)
        .bind(i64::from(s.enabled))
        .bind(to_ms(now))
        .bind(to_ms(now))
        .bind(sealed)
        .bind(fingerprint)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, &s.name))?;
        self.server(id).await
    }

    /// # Errors
    /// `NotFound` when no server has this id.
    pub async fn server(&self, id: Uuid) -> Result<Server, StoreError> {
        let row = sqlx::query(&format!("select {COLUMNS} from servers where id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound(Missing::Server))?;
        read(&row)
    }

    /// # Errors
    /// `NotFound` when no server has this name.
    pub async fn server_by_name(&self, name: &str) -> Result<Server, StoreError> {
        let row = sqlx::query(&format!("select {COLUMNS} from servers where name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound(Missing::Server))?;
        read(&row)
    }

    /// The servers with these ids (those that still exist), in one query.
    pub async fn servers_by_id(&self, ids: &[Uuid]) -> Result<Vec<Server>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        // Well below SQLite's limit on bound variables.
        for chunk in ids.chunks(500) {
            let mut q = Builder::new(format!("select {COLUMNS} from servers where id in ("));
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            q.push(")");
            for row in q.build().persistent(false).fetch_all(&self.pool).await? {
                out.push(read(&row)?);
            }
        }
        Ok(out)
    }

    /// A cheap summary that changes whenever the inventory as the scheduler sees it does:
    /// a server added or removed (count), edited or trusted (`updated_at`, set by every edit),
    /// or pinned by its first poll (count of pins; a pin is the only registration field a
    /// poll writes, and it never bumps `updated_at`). Reading every row, with its platform
    /// JSON, each few seconds was most of the scheduler's own cost on a large fleet.
    pub async fn inventory_version(&self) -> Result<InventoryVersion, StoreError> {
        let row = sqlx::query(
            "select count(*) as n, cast(coalesce(sum(updated_at), 0) as double precision) as edits, max(updated_at) as latest, \
             count(host_key_fingerprint) as pins from servers",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(InventoryVersion {
            servers: row.try_get("n")?,
            edits: row.try_get("edits")?,
            latest: row.try_get("latest")?,
            pins: row.try_get("pins")?,
        })
    }

    /// Every server, by name.
    pub async fn servers(&self) -> Result<Vec<Server>, StoreError> {
        let rows = sqlx::query(&format!("select {COLUMNS} from servers order by name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read).collect()
    }

    /// Replaces the registration fields. A changed host, port or user unpins the host key
    /// only when `reset_pin` says so (the caller decides: a new address is a new machine).
    ///
    /// # Errors
    /// `NotFound`, or `Conflict` on a taken name.
    pub async fn update_server(
        &self,
        id: Uuid,
        s: &NewServer,
        key: &StoredKey,
        reset_pin: bool,
        now: DateTime<Utc>,
    ) -> Result<Server, StoreError> {
        // The key's two values, when written, are bound after the nine fields and before the id.
        let (key_sql, id_param) = match key {
            StoredKey::Keep => ("", "$10"),
            StoredKey::Clear | StoredKey::Set { .. } => {
                (", key_sealed = $10, key_fingerprint = $11", "$12")
            }
        };
        let tags = serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into());
        let pin_sql = if reset_pin {
            ", host_key_fingerprint = null, pending_host_key_fingerprint = null, status = 'unknown', reason = null"
        } else {
            ""
        };
        let sql = format!(
            "update servers set name = $1, host = $2, port = $3, \"user\" = $4, key_path = $5, key_passphrase_env = $6, \
             tags = $7, enabled = $8, updated_at = $9{pin_sql}{key_sql} where id = {id_param}"
        );
        let q = sqlx::query(&sql);
        let q = q
            .bind(&s.name)
            .bind(&s.host)
            .bind(i64::from(s.port))
            .bind(&s.user)
            .bind(&s.key_path)
            .bind(&s.key_passphrase_env)
            .bind(tags)
            .bind(i64::from(s.enabled))
            .bind(to_ms(now));
        let q = match key {
            StoredKey::Keep => q,
            StoredKey::Clear => q.bind(None::<Vec<u8>>).bind(None::<String>),
            StoredKey::Set {
                sealed,
                fingerprint,
            } => q.bind(sealed.clone()).bind(fingerprint.clone()),
        };
        let done = q
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| conflict(e, &s.name))?;
        one_row(&done, Missing::Server)?;
        self.server(id).await
    }

    /// Deletes a server and, by cascade, its samples. Activity entries stay.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn delete_server(&self, id: Uuid) -> Result<(), StoreError> {
        let done = sqlx::query("delete from servers where id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        one_row(&done, Missing::Server)
    }

    /// Pins `fingerprint` as the server's host key and clears any pending one; the server
    /// goes back to `unknown` until the next poll says otherwise.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn trust_host_key(
        &self,
        id: Uuid,
        fingerprint: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Server, StoreError> {
        let done = sqlx::query(
            "update servers set host_key_fingerprint = $1, pending_host_key_fingerprint = null, \
             status = case when status = 'host_key_changed' then 'unknown' else status end, \
             reason = case when status = 'host_key_changed' then null else reason end, updated_at = $2 where id = $3",
        )
        .bind(fingerprint)
        .bind(to_ms(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        one_row(&done, Missing::Server)?;
        self.server(id).await
    }
}

/// See [`Store::inventory_version`]; compare two for equality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InventoryVersion {
    servers: i64,
    edits: f64,
    latest: Option<i64>,
    pins: i64,
}

/// What to do with a server's stored key on insert or update.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredKey {
    Keep,
    Clear,
    /// Sealed key text and the fingerprint of its public half.
    Set {
        sealed: Vec<u8>,
        fingerprint: String,
    },
}

/// How a poll changes the server row; written in the same transaction as its samples.
#[derive(Debug, Clone, Default)]
pub struct ServerUpdate {
    pub status: Option<ServerStatus>,
    /// `Some(None)` clears the reason.
    pub reason: Option<Option<String>>,
    pub docker_note: Option<Option<String>>,
    pub last_sample_at: Option<DateTime<Utc>>,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub pin: Option<String>,
    pub pending: Option<String>,
    pub platform: Option<crate::probe::Platform>,
    pub consecutive_failures: Option<u32>,
    /// Raw output of a poll that could not all be read; replaces the stored one.
    pub raw: Option<crate::model::RawOutput>,
}

/// Rows per statement when writing a batch: far below SQLite's limit on bound variables
/// (32,766 since 3.32) at the widest row we write.
///
/// Statements with a row count that varies from batch to batch are run with
/// `persistent(false)`: sqlx would otherwise keep each distinct text prepared in its
/// per-connection cache (100 statements, each a compiled program of tens of KiB for a
/// many-row insert), memory that grew with the batch sizes seen and was never used again.
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// Applies a batch's server updates in one statement per chunk: sqlx runs each statement as a
/// round trip to its SQLite thread, and one per polled server was most of a poll's CPU. Each
/// update names the fields it changes; the others keep their stored value (a flag column says
/// whether an `Option<Option<_>>` field is set, since null is a value there). Ids must be
/// distinct: with two rows for one server, SQLite applies either.
pub(super) async fn apply_updates(
    tx: &mut sqlx::AnyConnection,
    updates: &[(Uuid, &ServerUpdate)],
) -> Result<(), StoreError> {
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
        let mut q = Builder::new(
            "with v(id, status, set_reason, reason, set_docker_note, docker_note, last_sample_at, last_poll_at, \
             pin, pending, consecutive_failures, platform) as (",
        );
        q.push_values(chunk, |mut b, (id, u)| {
            b.push_bind(id.to_string())
                .push_bind(u.status.map(|s| s.as_str()))
                .push_bind(u.reason.is_some())
                .push_bind(u.reason.clone().flatten())
                .push_bind(u.docker_note.is_some())
                .push_bind(u.docker_note.clone().flatten())
                .push_bind(u.last_sample_at.map(to_ms))
                .push_bind(u.last_poll_at.map(to_ms))
                .push_bind(u.pin.clone())
                .push_bind(u.pending.clone())
                .push_bind(u.consecutive_failures.map(i64::from))
                .push_bind(
                    u.platform
                        .as_ref()
                        .map(|p| serde_json::to_string(p).unwrap_or_default()),
                );
        });
        // `values` would name the columns column1..; the CTE names them. A pin is only
        // written when nothing is pinned yet: a concurrent `trust` must win.
        q.push(
            ") update servers set \
             status = coalesce(v.status, servers.status), \
             reason = case when v.set_reason then v.reason else servers.reason end, \
             docker_note = case when v.set_docker_note then v.docker_note else servers.docker_note end, \
             last_sample_at = coalesce(v.last_sample_at, servers.last_sample_at), \
             last_poll_at = coalesce(v.last_poll_at, servers.last_poll_at), \
             host_key_fingerprint = coalesce(servers.host_key_fingerprint, v.pin), \
             pending_host_key_fingerprint = coalesce(v.pending, servers.pending_host_key_fingerprint), \
             consecutive_failures = coalesce(v.consecutive_failures, servers.consecutive_failures), \
             platform = coalesce(v.platform, servers.platform) \
             from v where servers.id = v.id",
        );
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    let raws: Vec<(Uuid, &ServerUpdate, &crate::model::RawOutput)> = updates
        .iter()
        .filter_map(|(id, u)| u.raw.as_ref().map(|r| (*id, *u, r)))
        .collect();
    let raws = super::sql::last_per_key(&raws, |(id, _, _)| *id);
    for chunk in raws.chunks(ROWS_PER_STATEMENT) {
        let mut q = Builder::new(
            "insert into last_failed_output (server_id, ts, problems, exit_status, stdout, stderr) ",
        );
        q.push_values(chunk, |mut b, (id, u, raw)| {
            b.push_bind(id.to_string())
                .push_bind(to_ms(u.last_poll_at.unwrap_or_else(Utc::now)))
                .push_bind(raw.problems.as_str())
                .push_bind(raw.exit_status.map(i64::from))
                .push_bind(raw.stdout.as_str())
                .push_bind(raw.stderr.as_str());
        });
        q.push(
            " on conflict (server_id) do update set ts = excluded.ts, problems = excluded.problems, \
             exit_status = excluded.exit_status, stdout = excluded.stdout, stderr = excluded.stderr",
        );
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    Ok(())
}

/// The stored raw output of a server's last poll that could not all be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRawOutput {
    pub timestamp: DateTime<Utc>,
    pub problems: String,
    pub exit_status: Option<i64>,
    pub stdout: String,
    pub stderr: String,
}

impl Store {
    /// # Errors
    /// `NotFound` when no failed output is stored for this server.
    pub async fn last_failed_output(&self, id: Uuid) -> Result<StoredRawOutput, StoreError> {
        let row = sqlx::query("select ts, problems, exit_status, stdout, stderr from last_failed_output where server_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound(Missing::FailedOutput))?;
        Ok(StoredRawOutput {
            timestamp: from_ms(row.try_get("ts")?),
            problems: row.try_get("problems")?,
            exit_status: row.try_get("exit_status")?,
            stdout: row.try_get("stdout")?,
            stderr: row.try_get("stderr")?,
        })
    }
}
