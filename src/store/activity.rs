//! The `activity` table: append and query. Rows are never updated; retention does not touch
//! them (the audit trail is kept until an operator decides otherwise).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::sql::Builder;
use uuid::Uuid;

use super::{from_ms, to_ms, Store, StoreError};
use crate::outcome::Severity;
use crate::text;

/// An entry to append. Built by `crate::activity`, which owns the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    pub ts: DateTime<Utc>,
    pub kind: String,
    pub severity: Severity,
    pub actor: String,
    pub server_id: Option<Uuid>,
    pub server_name: Option<String>,
    pub message: String,
    pub details: serde_json::Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityRow {
    pub id: i64,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub severity: Severity,
    pub actor: String,
    pub server_id: Option<String>,
    pub server_name: Option<String>,
    pub message: String,
    pub details: serde_json::Value,
}

/// Filters for listing; every field optional.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub kind: Option<String>,
    pub server_id: Option<Uuid>,
    pub actor: Option<String>,
    pub severity: Option<Severity>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
    pub offset: u32,
}

fn read(row: &AnyRow) -> Result<ActivityRow, StoreError> {
    let details: String = row.try_get("details")?;
    Ok(ActivityRow {
        id: row.try_get("id")?,
        timestamp: from_ms(row.try_get("ts")?),
        kind: row.try_get("type")?,
        severity: row
            .try_get::<String, _>("severity")?
            .parse()
            .map_err(|message| StoreError::Corrupt {
                table: "activity",
                message,
            })?,
        actor: row.try_get("actor")?,
        server_id: row.try_get("server_id")?,
        server_name: row.try_get("server_name")?,
        // Clipped again on the way out, so entries stored before the cap existed cannot
        // make a response unbounded.
        message: text::clip_owned(row.try_get("message")?, text::MAX_ENTRY_TEXT),
        details: {
            let mut d = serde_json::from_str(&details).unwrap_or(serde_json::Value::Null);
            text::clip_json(&mut d, text::MAX_ENTRY_TEXT);
            d
        },
    })
}

/// Appends entries, one statement per chunk of rows (a statement is a round trip to sqlx's
/// SQLite thread; see `servers::apply_updates`).
pub(super) async fn insert_many(
    conn: &mut sqlx::AnyConnection,
    entries: &[NewActivity],
) -> Result<(), StoreError> {
    for chunk in entries.chunks(super::servers::ROWS_PER_STATEMENT) {
        let mut q = Builder::new(
            "insert into activity (ts, type, severity, actor, server_id, server_name, message, details) ",
        );
        q.push_values(chunk, |mut b, a| {
            b.push_bind(to_ms(a.ts))
                .push_bind(a.kind.as_str())
                .push_bind(a.severity.as_str())
                .push_bind(a.actor.as_str())
                .push_bind(a.server_id.map(|i| i.to_string()))
                .push_bind(a.server_name.as_deref())
                .push_bind(a.message.as_str())
                .push_bind(a.details.to_string());
        });
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

fn push_filters<'a>(q: &mut Builder<'a>, f: &'a ActivityFilter) {
    q.push(" where 1 = 1");
    if let Some(k) = &f.kind {
        q.push(" and type = ").push_bind(k);
    }
    if let Some(id) = f.server_id {
        q.push(" and server_id = ").push_bind(id.to_string());
    }
    if let Some(a) = &f.actor {
        q.push(" and actor = ").push_bind(a);
    }
    if let Some(s) = f.severity {
        q.push(" and severity = ").push_bind(s.as_str());
    }
    if let Some(t) = f.since {
        q.push(" and ts >= ").push_bind(to_ms(t));
    }
    if let Some(t) = f.until {
        q.push(" and ts <= ").push_bind(to_ms(t));
    }
}

impl Store {
    /// Appends entries in one transaction.
    ///
    /// # Errors
    /// Database failure; nothing is written then.
    pub async fn append_activity(&self, entries: &[NewActivity]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_many(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Newest first, with the total count matching the filter.
    pub async fn activity(
        &self,
        f: &ActivityFilter,
    ) -> Result<(i64, Vec<ActivityRow>), StoreError> {
        let mut count = Builder::new("select count(*) from activity");
        push_filters(&mut count, f);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = Builder::new(
            "select id, ts, type, severity, actor, server_id, server_name, message, details from activity",
        );
        push_filters(&mut q, f);
        q.push(" order by ts desc, id desc limit ")
            .push_bind(i64::from(f.limit))
            .push(" offset ")
            .push_bind(i64::from(f.offset));
        let rows = q.build().fetch_all(&self.pool).await?;
        let items = rows.iter().map(read).collect::<Result<Vec<_>, _>>()?;
        Ok((total, items))
    }

    /// The activity types that occur in the log, for the activity page's filter.
    pub async fn activity_types(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("select distinct type from activity order by type")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
