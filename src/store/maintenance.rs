//! Keeping the history small: compaction of closed hours into chunks with their hourly and
//! daily rollups, retention per tier, the size cap, statistics, online backup and vacuum,
//! and the one-time conversion of the rows of the previous schema.
//!
//! Every step that writes takes the write lock with `BEGIN IMMEDIATE` for a few dozen series
//! at most and lets go: the scheduler's writer must never wait long behind maintenance.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sqlx::Row as _;

use super::history::{self as series, corrupt, decode_chunk};
use super::samples::write_latest;
use super::sql::Builder;
use super::{from_ms, Backend, Store, StoreError};
use crate::history::codec::{self, Row};
use crate::history::{self, period_start, AggRow, Kind, Tier, DAY_MS, HOUR_MS};
use crate::model::{ContainerSample, DiskSample, ServerSample, Snapshot};

/// Series per compaction step: one step is one short write transaction (at 40, the writer's
/// batches waited behind steps for up to 5x their own time).
const SERIES_PER_STEP: i64 = 10;
/// Series per retention statement, for the same reason.
const SERIES_PER_CLEANUP: i64 = 100;

/// What one compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CompactCounts {
    /// Hour chunks written (new or merged with late samples).
    pub hours: u64,
    /// Open rows moved into chunks.
    pub samples: u64,
}

/// What one cleanup removed, by tier, and the bytes the file gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionCounts {
    /// Raw chunks and open rows.
    pub raw: u64,
    pub hourly: u64,
    pub daily: u64,
    pub bytes_freed: u64,
}

impl RetentionCounts {
    pub fn total(&self) -> u64 {
        self.raw + self.hourly + self.daily
    }
}

/// How old each tier may get, as cutoffs in ms: chunks whose period ended before are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub raw: i64,
    pub hourly: i64,
    pub daily: i64,
}

/// One tier's share of the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierStats {
    /// `raw_open` (rows of hours not yet compacted), `raw`, `hourly`, `daily`.
    pub tier: &'static str,
    pub bytes: u64,
    /// Stored rows (samples, or rollup rows).
    pub rows: u64,
    /// rows x fields.
    pub values: u64,
    pub bytes_per_value: Option<f64>,
    /// Bytes per server and day of history held.
    pub bytes_per_host_day: Option<f64>,
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
    pub newest: Option<chrono::DateTime<chrono::Utc>>,
}

/// `fleetpoll db stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DbStats {
    pub file_bytes: u64,
    pub free_bytes: u64,
    pub servers: u64,
    /// Every table and index by name, largest first.
    pub tables: Vec<(String, u64)>,
    pub tiers: Vec<TierStats>,
}

fn fields(kind: i64) -> u64 {
    Kind::from_code(kind).map_or(0, |k| k.fields().len() as u64)
}

impl Store {
    /// Bytes the database holds in pages in use (what the size cap counts).
    pub async fn used_bytes(&self) -> Result<u64, StoreError> {
        if self.backend == Backend::Postgres {
            return self.file_bytes().await;
        }
        let mut conn = self.pool.acquire().await?;
        let pages: i64 = sqlx::query_scalar("pragma page_count")
            .fetch_one(&mut *conn)
            .await?;
        let free: i64 = sqlx::query_scalar("pragma freelist_count")
            .fetch_one(&mut *conn)
            .await?;
        let size: i64 = sqlx::query_scalar("pragma page_size")
            .fetch_one(&mut *conn)
            .await?;
        Ok(u64::try_from((pages - free).max(0) * size).unwrap_or(0))
    }

    /// Moves every open row older than `boundary` (an hour start) into its hour's chunk,
    /// writing that hour's rollup row and, when the day is over, the day's. Rerunning it,
    /// or resuming after a crash, gives the same chunks: each series' hour is one
    /// transaction, and rows are merged by time. Sleeps `pause` between steps.
    ///
    /// # Errors
    /// Database failure; the steps before it are kept.
    pub async fn compact(
        &self,
        boundary: i64,
        pause: std::time::Duration,
    ) -> Result<CompactCounts, StoreError> {
        let mut counts = CompactCounts::default();
        let mut after = 0;
        // Days that close in this pass get their daily row even when their last hours had
        // no samples to compact (a host down at midnight).
        let closed_days = (
            self.done_until(Tier::Daily).await?,
            period_start(boundary, DAY_MS),
        );
        while let Some(last) = self
            .compact_step(boundary, closed_days, after, &mut counts)
            .await?
        {
            after = last;
            tokio::time::sleep(pause).await;
        }
        // Readers take rollup rows before these marks and make the rest from finer rows.
        for (tier, mark) in [
            (Tier::Raw, boundary),
            (Tier::Hourly, boundary),
            (Tier::Daily, period_start(boundary, DAY_MS)),
        ] {
            sqlx::query("update history_state set done_until = case when done_until > $1 then done_until else $1 end \
                 where tier = $2")
                .bind(mark)
                .bind(tier.code())
                .execute(&self.pool)
                .await?;
        }
        Ok(counts)
    }

    /// One step: the series after `after`, up to [`SERIES_PER_STEP`]; `None` when none is left.
    async fn compact_step(
        &self,
        boundary: i64,
        (closed_from, closed_to): (i64, i64),
        after: i64,
        counts: &mut CompactCounts,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<(i64, i64)> =
            sqlx::query_as("select id, kind from series where id > $1 order by id limit $2")
                .bind(after)
                .bind(SERIES_PER_STEP)
                .fetch_all(&mut *tx)
                .await?;
        let Some(&(last, _)) = ids.last() else {
            tx.commit().await?;
            return Ok(None);
        };
        let mut q = Builder::new("select series, ts, vals from raw_points where series in ");
        let list: Vec<i64> = ids.iter().map(|(id, _)| *id).collect();
        series::in_list(&mut q, &list);
        q.push(" and ts < ")
            .push_bind(boundary)
            .push(" order by series, ts");
        let mut hours: BTreeMap<(i64, i64), Vec<Row>> = BTreeMap::new();
        for r in q.build().fetch_all(&mut *tx).await? {
            let id: i64 = r.try_get("series")?;
            let ts: i64 = r.try_get("ts")?;
            let vals: Vec<u8> = r.try_get("vals")?;
            let values = codec::decode_row(&vals).map_err(|e| corrupt("raw_points", e))?;
            hours
                .entry((id, period_start(ts, HOUR_MS)))
                .or_default()
                .push(Row { ts, values });
        }
        let kinds: BTreeMap<i64, Kind> = ids
            .iter()
            .filter_map(|(id, k)| Kind::from_code(*k).map(|k| (*id, k)))
            .collect();
        let mut days: std::collections::BTreeSet<(i64, i64)> = std::collections::BTreeSet::new();
        // On a first pass (`closed_from` 0) only the days with samples are looked at.
        if closed_from > 0 {
            for id in kinds.keys() {
                let mut day = closed_from;
                while day < closed_to {
                    days.insert((*id, day));
                    day += DAY_MS;
                }
            }
        }
        for ((id, hour), fresh) in hours {
            let Some(kind) = kinds.get(&id).copied() else {
                continue;
            };
            counts.samples += fresh.len() as u64;
            counts.hours += 1;
            let width = kind.fields().len();
            let mut rows = read_chunk(&mut tx, id, Tier::Raw, hour).await?;
            merge_rows(&mut rows, fresh);
            write_chunk(&mut tx, id, Tier::Raw, hour, width, &rows).await?;
            sqlx::query("delete from raw_points where series = $1 and ts >= $2 and ts < $3")
                .bind(id)
                .bind(hour)
                .bind((hour + HOUR_MS).min(boundary))
                .execute(&mut *tx)
                .await?;
            let samples: Vec<AggRow> = rows.iter().map(AggRow::of_sample).collect();
            let hourly = history::rollup(&samples, HOUR_MS);
            let day = period_start(hour, DAY_MS);
            put_rollups(&mut tx, id, Tier::Hourly, day, kind, hourly).await?;
            if day + DAY_MS <= boundary {
                days.insert((id, day));
            }
        }
        for (id, day) in days {
            let Some(kind) = kinds.get(&id).copied() else {
                continue;
            };
            let width = kind.fields().len();
            let hours: Vec<AggRow> = read_chunk(&mut tx, id, Tier::Hourly, day)
                .await?
                .iter()
                .map(|r| {
                    AggRow::from_row(r, width)
                        .ok_or_else(|| corrupt("chunks", "a rollup row of the wrong width"))
                })
                .collect::<Result<_, _>>()?;
            if !hours.is_empty() {
                let daily = history::rollup(&hours, DAY_MS);
                put_rollups(&mut tx, id, Tier::Daily, day, kind, daily).await?;
            }
        }
        tx.commit().await?;
        Ok(Some(last))
    }

    /// Drops what is older than each tier's cutoff, series that have nothing left, and gives
    /// the freed pages back to the file system.
    ///
    /// # Errors
    /// Database failure; the batches before it are kept.
    pub async fn apply_retention(&self, cut: Cutoffs) -> Result<RetentionCounts, StoreError> {
        let before = self.used_bytes().await?;
        let mut counts = RetentionCounts::default();
        if self.backend == Backend::Postgres {
            // Whole partitions first (issue #14); the rows below then go one statement per
            // few series from the partitions that straddle a cutoff and the defaults. A
            // partition goes when its end is past the cutoff: its widths (a day, a week, 91
            // days) are whole numbers of its tier's chunk period and start at the epoch, as
            // chunks do, so its last chunk ends where it ends, the rule the rows below follow.
            for (parent, before_ms, tier) in [
                ("chunks_t0", cut.raw, Tier::Raw),
                ("raw_points", cut.raw, Tier::Raw),
                ("chunks_t1", cut.hourly, Tier::Hourly),
                ("chunks_t2", cut.daily, Tier::Daily),
            ] {
                let rows: i64 = sqlx::query_scalar("select fleetpoll_drop_partitions($1, $2)")
                    .bind(parent)
                    .bind(before_ms)
                    .fetch_one(&self.pool)
                    .await?;
                let rows = u64::try_from(rows).unwrap_or(0);
                match tier {
                    Tier::Raw => counts.raw += rows,
                    Tier::Hourly => counts.hourly += rows,
                    Tier::Daily => counts.daily += rows,
                }
            }
        }
        let mut after = 0i64;
        loop {
            let ids: Vec<i64> =
                sqlx::query_scalar("select id from series where id > $1 order by id limit $2")
                    .bind(after)
                    .bind(SERIES_PER_CLEANUP)
                    .fetch_all(&self.pool)
                    .await?;
            let Some(&last) = ids.last() else { break };
            after = last;
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            for (tier, cutoff, slot) in [
                (Tier::Raw, cut.raw, &mut counts.raw),
                (Tier::Hourly, cut.hourly, &mut counts.hourly),
                (Tier::Daily, cut.daily, &mut counts.daily),
            ] {
                // A chunk goes when its whole period is past the cutoff.
                let done = sqlx::query(&format!(
                    "delete from chunks where series in ({list}) and tier = $1 and start <= $2"
                ))
                .bind(tier.code())
                .bind(cutoff - tier.chunk_ms())
                .execute(&self.pool)
                .await?;
                *slot += done.rows_affected();
            }
            let done = sqlx::query(&format!(
                "delete from raw_points where series in ({list}) and ts < $1"
            ))
            .bind(cut.raw)
            .execute(&self.pool)
            .await?;
            counts.raw += done.rows_affected();
            // Mounts and containers long gone; a server's own series goes with the server.
            sqlx::query(&format!(
                "delete from series where id in ({list}) and kind <> 0 \
                 and not exists (select 1 from chunks c where c.series = series.id) \
                 and not exists (select 1 from raw_points r where r.series = series.id)"
            ))
            .execute(&self.pool)
            .await?;
            tokio::task::yield_now().await;
        }
        // Series may have gone: the writer names the ones it meets again.
        self.forget_series();
        self.release_free_pages().await?;
        counts.bytes_freed = before.saturating_sub(self.used_bytes().await?);
        Ok(counts)
    }

    /// PostgreSQL: makes the history partitions from `from` to `to` (ms) that are missing;
    /// returns how many (always 0 on SQLite, which has none).
    pub async fn prepare_partitions(&self, from: i64, to: i64) -> Result<u32, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(0);
        }
        let made: i32 = sqlx::query_scalar("select fleetpoll_prepare_partitions($1, $2)")
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .await?;
        Ok(u32::try_from(made).unwrap_or(0))
    }

    /// Hands free pages back to the file system (the file shrinks at the next checkpoint).
    pub async fn release_free_pages(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // Makes the deleted rows' space reusable (autovacuum would, later); the files
            // keep their size, as PostgreSQL files do.
            sqlx::query("vacuum raw_points, chunks, series")
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        sqlx::query("pragma incremental_vacuum")
            .execute(&mut *conn)
            .await?;
        sqlx::query("pragma wal_checkpoint(truncate)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The oldest chunk start of a tier, read series by series through the primary index
    /// (there is no index on time alone).
    pub async fn oldest(&self, tier: Tier) -> Result<Option<i64>, StoreError> {
        let mut oldest: Option<i64> = None;
        let mut after = 0i64;
        loop {
            let ids: Vec<i64> =
                sqlx::query_scalar("select id from series where id > $1 order by id limit $2")
                    .bind(after)
                    .bind(SERIES_PER_CLEANUP)
                    .fetch_all(&self.pool)
                    .await?;
            let Some(&last) = ids.last() else { break };
            after = last;
            let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let m: Option<i64> = sqlx::query_scalar(&format!(
                "select min(start) from chunks where series in ({list}) and tier = $1"
            ))
            .bind(tier.code())
            .fetch_one(&self.pool)
            .await?;
            oldest = match (oldest, m) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(oldest)
    }

    /// Statistics for `fleetpoll db stats`: per table from SQLite's `dbstat`, per tier from
    /// the chunks (a table's pages shared out by the bytes each tier's rows hold).
    pub async fn stats(&self) -> Result<DbStats, StoreError> {
        let file_bytes = self.file_bytes().await?;
        let mut conn = self.pool.acquire().await?;
        let (free, tables): (i64, Vec<(String, i64)>) = match self.backend {
            Backend::Sqlite => {
                let size: i64 = sqlx::query_scalar("pragma page_size")
                    .fetch_one(&mut *conn)
                    .await?;
                let free: i64 = sqlx::query_scalar("pragma freelist_count")
                    .fetch_one(&mut *conn)
                    .await?;
                let tables = sqlx::query_as(
                    "select name, sum(pgsize) from dbstat group by name order by 2 desc",
                )
                .fetch_all(&mut *conn)
                .await?;
                (free * size, tables)
            }
            // Each table with its indexes and TOAST, a partitioned one as the sum of its
            // partitions; free space inside PostgreSQL's files is reused by later rows and not
            // counted apart.
            Backend::Postgres => (
                0,
                sqlx::query_as(
                    "select cast(cast(coalesce(pg_partition_root(c.oid), c.oid) as regclass) as text), \
                     cast(sum(pg_total_relation_size(c.oid)) as bigint) from pg_class c \
                     join pg_namespace n on n.oid = c.relnamespace \
                     where c.relkind = 'r' and n.nspname = current_schema() group by 1 order by 2 desc",
                )
                .fetch_all(&mut *conn)
                .await?,
            ),
        };
        let size_of = |name: &str| -> u64 {
            tables
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, b)| u64::try_from(*b).unwrap_or(0))
        };
        let servers: i64 = sqlx::query_scalar("select count(*) from servers")
            .fetch_one(&mut *conn)
            .await?;
        let mut tiers = Vec::new();
        // Open rows: the whole raw_points table.
        let open: Vec<(i64, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "select s.kind, count(*), min(r.ts), max(r.ts) from raw_points r join series s on s.id = r.series group by s.kind",
        )
        .fetch_all(&mut *conn)
        .await?;
        let rows: u64 = open.iter().map(|o| u64::try_from(o.1).unwrap_or(0)).sum();
        let values: u64 = open
            .iter()
            .map(|o| u64::try_from(o.1).unwrap_or(0) * fields(o.0))
            .sum();
        let oldest = open.iter().filter_map(|o| o.2).min();
        let newest = open.iter().filter_map(|o| o.3).max();
        let days = span_days(oldest, newest.map(|n| n + 60_000));
        tiers.push(tier_stats(
            "raw_open",
            size_of("raw_points"),
            rows,
            values,
            (oldest, newest),
            servers,
            days,
        ));
        let chunked: Vec<(i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "select c.tier, s.kind, cast(sum(c.rows) as bigint), count(*), cast(sum(length(c.data)) as bigint), \
             min(c.start), max(c.start) \
             from chunks c join series s on s.id = c.series group by c.tier, s.kind",
        )
        .fetch_all(&mut *conn)
        .await?;
        let table_bytes = size_of("chunks") + size_of("chunks_series_tier_start");
        let all_data: i64 = chunked.iter().map(|c| c.4).sum();
        for tier in Tier::ALL {
            let mine: Vec<_> = chunked.iter().filter(|c| c.0 == tier.code()).collect();
            let data: i64 = mine.iter().map(|c| c.4).sum();
            let bytes = if all_data > 0 {
                (table_bytes as f64 * data as f64 / all_data as f64).round() as u64
            } else {
                0
            };
            let rows: u64 = mine.iter().map(|c| u64::try_from(c.2).unwrap_or(0)).sum();
            let values: u64 = mine
                .iter()
                .map(|c| u64::try_from(c.2).unwrap_or(0) * fields(c.1))
                .sum();
            let oldest = mine.iter().map(|c| c.5).min();
            let newest = mine.iter().map(|c| c.6 + tier.chunk_ms()).max();
            // Days of history per server: the span of raw chunks; for a rollup, its server
            // rows (one per server and hour or day) times their width.
            let server_rows = mine
                .iter()
                .filter(|c| c.1 == Kind::Server.code())
                .map(|c| c.2)
                .sum::<i64>();
            let days = match tier {
                Tier::Raw => span_days(oldest, newest),
                rollup => {
                    server_rows as f64 * rollup.row_ms(0) as f64
                        / DAY_MS as f64
                        / servers.max(1) as f64
                }
            };
            tiers.push(tier_stats(
                tier.as_str(),
                bytes,
                rows,
                values,
                (oldest, newest),
                servers,
                days,
            ));
        }
        Ok(DbStats {
            file_bytes,
            free_bytes: u64::try_from(free).unwrap_or(0),
            servers: u64::try_from(servers).unwrap_or(0),
            tables: tables
                .into_iter()
                .map(|(n, b)| (n, u64::try_from(b).unwrap_or(0)))
                .collect(),
            tiers,
        })
    }

    /// A consistent copy of the live database at `dest` (SQLite's `VACUUM INTO`), readable
    /// by its owner only; refuses to overwrite a file.
    ///
    /// # Errors
    /// `dest` exists or cannot be written; database failure.
    pub async fn backup(&self, dest: &Path) -> Result<u64, StoreError> {
        if self.backend == Backend::Postgres {
            return Err(StoreError::Unsupported(
                "an online copy is SQLite's; back a PostgreSQL database up with pg_dump or its \
                 own continuous archiving",
            ));
        }
        if dest.exists() {
            return Err(StoreError::CreateDir {
                path: dest.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "file exists; choose a new name",
                ),
            });
        }
        super::private_file(dest)?;
        // VACUUM INTO wants a missing or empty file: the private one just made is empty.
        sqlx::query("vacuum into $1")
            .bind(dest.display().to_string())
            .execute(&self.pool)
            .await?;
        Ok(std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
    }

    /// Rewrites the whole file (VACUUM), which also turns on incremental vacuum for files
    /// made before it existed. Returns the file's size before and after.
    pub async fn vacuum(&self) -> Result<(u64, u64), StoreError> {
        let before = self.file_bytes().await?;
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // Plain VACUUM: space for reuse and fresh planner statistics, without the
            // exclusive lock of VACUUM FULL that would stop the other pollers.
            sqlx::query("vacuum (analyze)").execute(&mut *conn).await?;
            drop(conn);
            return Ok((before, self.file_bytes().await?));
        }
        sqlx::query("pragma auto_vacuum = incremental")
            .execute(&mut *conn)
            .await?;
        sqlx::query("vacuum").execute(&mut *conn).await?;
        sqlx::query("pragma wal_checkpoint(truncate)")
            .execute(&mut *conn)
            .await?;
        drop(conn);
        Ok((before, self.file_bytes().await?))
    }

    async fn file_bytes(&self) -> Result<u64, StoreError> {
        if self.backend == Backend::Postgres {
            let size: i64 = sqlx::query_scalar("select pg_database_size(current_database())")
                .fetch_one(&self.pool)
                .await?;
            return Ok(u64::try_from(size).unwrap_or(0));
        }
        let mut conn = self.pool.acquire().await?;
        let pages: i64 = sqlx::query_scalar("pragma page_count")
            .fetch_one(&mut *conn)
            .await?;
        let size: i64 = sqlx::query_scalar("pragma page_size")
            .fetch_one(&mut *conn)
            .await?;
        Ok(u64::try_from(pages * size).unwrap_or(0))
    }

    /// Converts the sample rows of the schema before issue #12 (renamed `legacy_*` by
    /// migration 0009) into series, a few hundred polls per transaction, deleting what is
    /// converted, so an interrupted conversion resumes where it stopped. Then drops the old
    /// tables and rewrites the file, which gives their space back.
    pub(super) async fn convert_legacy(&self) -> Result<(), StoreError> {
        let legacy: i64 = sqlx::query_scalar(
            "select count(*) from sqlite_master where type = 'table' and name = 'legacy_server_metrics'",
        )
        .fetch_one(&self.pool)
        .await?;
        if legacy == 0 {
            return Ok(());
        }
        let total: i64 = sqlx::query_scalar("select count(*) from legacy_server_metrics")
            .fetch_one(&self.pool)
            .await?;
        // A new database passes through migration 0009 too, with nothing to convert.
        if total > 0 {
            tracing::info!(
                samples = total,
                "Converting stored samples to the compact history (once)"
            );
        }
        let servers: Vec<String> = sqlx::query_scalar("select id from servers")
            .fetch_all(&self.pool)
            .await?;
        for sid in servers {
            while self.convert_some(&sid).await? {}
        }
        let mut conn = self.pool.acquire().await?;
        for t in [
            "legacy_container_metrics",
            "legacy_disk_usage",
            "legacy_server_metrics",
        ] {
            sqlx::query(&format!("drop table {t}"))
                .execute(&mut *conn)
                .await?;
        }
        drop(conn);
        // The rewrite gives the old rows' space back and turns on incremental vacuum for a
        // file made before it; a new file has it already and nothing to give back.
        let auto_vacuum: i64 = sqlx::query_scalar("pragma auto_vacuum")
            .fetch_one(&self.pool)
            .await?;
        if total > 0 || auto_vacuum != 2 {
            let (before, after) = self.vacuum().await?;
            tracing::info!(
                samples = total,
                before,
                after,
                "Converted the stored samples"
            );
        }
        Ok(())
    }

    /// Converts up to 500 of one server's oldest legacy samples; false when none was left.
    async fn convert_some(&self, sid: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let metrics = sqlx::query(
            "select * from legacy_server_metrics where server_id = $1 order by ts limit 500",
        )
        .bind(sid)
        .fetch_all(&mut *tx)
        .await?;
        let (Some(first), Some(last)) = (metrics.first(), metrics.last()) else {
            tx.commit().await?;
            return Ok(false);
        };
        let (a, b): (i64, i64) = (first.try_get("ts")?, last.try_get("ts")?);
        let mut snaps: BTreeMap<i64, Snapshot> = BTreeMap::new();
        let u = |r: &sqlx::any::AnyRow, c: &str| -> Result<Option<u64>, StoreError> {
            Ok(super::i64_to_u64(r.try_get(c)?))
        };
        for r in &metrics {
            let ts: i64 = r.try_get("ts")?;
            snaps.insert(
                ts,
                Snapshot {
                    taken_at: from_ms(ts),
                    server: ServerSample {
                        cpu_busy_percent: r.try_get("cpu_busy_percent")?,
                        cpu_user_percent: r.try_get("cpu_user_percent")?,
                        cpu_system_percent: r.try_get("cpu_system_percent")?,
                        cpu_iowait_percent: r.try_get("cpu_iowait_percent")?,
                        cpu_steal_percent: r.try_get("cpu_steal_percent")?,
                        load1: r.try_get("load1")?,
                        load5: r.try_get("load5")?,
                        load15: r.try_get("load15")?,
                        uptime_seconds: u(r, "uptime_seconds")?,
                        tasks_total: u(r, "tasks_total")?,
                        mem_total_bytes: u(r, "mem_total_bytes")?,
                        mem_used_bytes: u(r, "mem_used_bytes")?,
                        mem_free_bytes: u(r, "mem_free_bytes")?,
                        mem_available_bytes: u(r, "mem_available_bytes")?,
                        swap_total_bytes: u(r, "swap_total_bytes")?,
                        swap_used_bytes: u(r, "swap_used_bytes")?,
                    },
                    disks: Vec::new(),
                    containers: Vec::new(),
                    docker: crate::model::DockerState::Available,
                    problems: Vec::new(),
                },
            );
        }
        for r in sqlx::query(
            "select * from legacy_disk_usage where server_id = $1 and ts >= $2 and ts <= $3 order by mount",
        )
        .bind(sid)
        .bind(a)
        .bind(b)
        .fetch_all(&mut *tx)
        .await?
        {
            if let Some(s) = snaps.get_mut(&r.try_get::<i64, _>("ts")?) {
                s.disks.push(DiskSample {
                    filesystem: r.try_get("filesystem")?,
                    mount: r.try_get("mount")?,
                    total_bytes: u(&r, "total_bytes")?,
                    used_bytes: u(&r, "used_bytes")?,
                    available_bytes: u(&r, "available_bytes")?,
                    use_percent: r.try_get("use_percent")?,
                });
            }
        }
        for r in sqlx::query(
            "select * from legacy_container_metrics where server_id = $1 and ts >= $2 and ts <= $3 order by name",
        )
        .bind(sid)
        .bind(a)
        .bind(b)
        .fetch_all(&mut *tx)
        .await?
        {
            if let Some(s) = snaps.get_mut(&r.try_get::<i64, _>("ts")?) {
                s.containers.push(ContainerSample {
                    container_id: r.try_get("container_id")?,
                    name: r.try_get("name")?,
                    image: r.try_get("image")?,
                    state: r.try_get("state")?,
                    status_text: r.try_get("status_text")?,
                    exit_code: r.try_get("exit_code")?,
                    health: r.try_get("health")?,
                    cpu_percent: r.try_get("cpu_percent")?,
                    cpu_time_seconds: None,
                    mem_used_bytes: u(&r, "mem_used_bytes")?,
                    mem_limit_bytes: u(&r, "mem_limit_bytes")?,
                    mem_percent: r.try_get("mem_percent")?,
                    net_rx_bytes: u(&r, "net_rx_bytes")?,
                    net_tx_bytes: u(&r, "net_tx_bytes")?,
                    block_read_bytes: u(&r, "block_read_bytes")?,
                    block_write_bytes: u(&r, "block_write_bytes")?,
                    pids: u(&r, "pids")?,
                });
            }
        }
        let samples: Vec<(String, i64, &Snapshot)> = snaps
            .iter()
            .map(|(ts, s)| (sid.to_owned(), *ts, s))
            .collect();
        series::append(&mut tx, &self.series, &samples).await?;
        if let Some(latest) = samples.last() {
            write_latest(&mut tx, std::slice::from_ref(latest)).await?;
        }
        for t in [
            "legacy_server_metrics",
            "legacy_disk_usage",
            "legacy_container_metrics",
        ] {
            sqlx::query(&format!(
                "delete from {t} where server_id = $1 and ts <= $2"
            ))
            .bind(sid)
            .bind(b)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

fn span_days(oldest: Option<i64>, newest: Option<i64>) -> f64 {
    match (oldest, newest) {
        (Some(a), Some(b)) => (b - a).max(0) as f64 / DAY_MS as f64,
        _ => 0.0,
    }
}

/// `days`: how many days of history each server has in the tier.
fn tier_stats(
    tier: &'static str,
    bytes: u64,
    rows: u64,
    values: u64,
    (oldest, newest): (Option<i64>, Option<i64>),
    servers: i64,
    days: f64,
) -> TierStats {
    TierStats {
        tier,
        bytes,
        rows,
        values,
        bytes_per_value: (values > 0).then(|| bytes as f64 / values as f64),
        bytes_per_host_day: (servers > 0 && days > 0.0)
            .then(|| bytes as f64 / servers as f64 / days),
        oldest: oldest.map(from_ms),
        newest: newest.map(from_ms),
    }
}

/// Adds `fresh` rows to `rows`, one row per time (a fresh row replaces a stored one), in
/// time order.
fn merge_rows(rows: &mut Vec<Row>, fresh: Vec<Row>) {
    let mut by_ts: BTreeMap<i64, Row> = rows.drain(..).map(|r| (r.ts, r)).collect();
    for r in fresh {
        by_ts.insert(r.ts, r);
    }
    rows.extend(by_ts.into_values());
}

async fn read_chunk(
    tx: &mut sqlx::AnyConnection,
    series: i64,
    tier: Tier,
    start: i64,
) -> Result<Vec<Row>, StoreError> {
    let data: Option<Vec<u8>> = sqlx::query_scalar(
        "select data from chunks where series = $1 and tier = $2 and start = $3",
    )
    .bind(series)
    .bind(tier.code())
    .bind(start)
    .fetch_optional(&mut *tx)
    .await?;
    data.map_or(Ok(Vec::new()), |d| decode_chunk(&d))
}

async fn write_chunk(
    tx: &mut sqlx::AnyConnection,
    series: i64,
    tier: Tier,
    start: i64,
    columns: usize,
    rows: &[Row],
) -> Result<(), StoreError> {
    let data = codec::encode_chunk(columns, rows);
    sqlx::query(
        "insert into chunks (series, tier, start, rows, data) values ($1, $2, $3, $4, $5) \
         on conflict (series, tier, start) do update set rows = excluded.rows, data = excluded.data",
    )
    .bind(series)
    .bind(tier.code())
    .bind(start)
    .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
    .bind(data)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Puts rollup rows into the chunk of `tier` starting at `start`, replacing rows of the same
/// period; returns the chunk's rows after.
async fn put_rollups(
    tx: &mut sqlx::AnyConnection,
    series: i64,
    tier: Tier,
    start: i64,
    kind: Kind,
    new: Vec<AggRow>,
) -> Result<(), StoreError> {
    let fields = kind.fields();
    let mut rows = read_chunk(&mut *tx, series, tier, start).await?;
    merge_rows(&mut rows, new.iter().map(|r| r.to_row(fields)).collect());
    write_chunk(&mut *tx, series, tier, start, 1 + 4 * fields.len(), &rows).await
}
