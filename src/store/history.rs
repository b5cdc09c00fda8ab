//! History as series: naming each series once, appending one poll's samples as open rows,
//! and reading any tier back as rollup rows (`history::AggRow`) for the charts. The bytes
//! are `history::codec`'s; what a column means is `history`'s.

use std::collections::HashMap;

use sqlx::Row as _;
use uuid::Uuid;

use super::sql::Builder;
use super::{Store, StoreError};
use crate::history::codec::{self, Row};
use crate::history::{self, period_start, AggRow, Kind, Tier};
use crate::model::Snapshot;

/// Rows per statement, well below SQLite's limit on bound variables.
const ROWS: usize = 500;

/// A series' identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct SeriesKey {
    pub server_id: String,
    pub kind: Kind,
    pub name: String,
}

/// A stored value that does not decode: the file was damaged or hand-edited.
pub(super) fn corrupt(table: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        message: e.to_string(),
    }
}

/// The series ids (with their detail) and container ids this process has written, so a
/// batch in steady state names no series and reads nothing back: the per-batch upsert and
/// read of every series were most of a write's statements. Emptied whenever this process
/// deletes series; a batch that meets a series deleted by another process (a foreign-key
/// failure) empties it and is written again.
#[derive(Debug, Default)]
pub(super) struct SeriesCache {
    ids: HashMap<SeriesKey, (i64, Option<String>)>,
    containers: std::collections::HashSet<(i64, String)>,
}

impl SeriesCache {
    pub fn clear(&mut self) {
        self.ids.clear();
        self.containers.clear();
    }
}

/// A series a batch writes to, with its detail (a mount's filesystem, a container's image).
type Wanted<'a> = (SeriesKey, Option<&'a str>);

/// Names every series the samples touch (creating those new, updating a changed
/// filesystem or image) and returns their ids.
pub(super) async fn series_ids(
    tx: &mut sqlx::AnyConnection,
    wanted: &[(SeriesKey, Option<&str>)],
) -> Result<HashMap<SeriesKey, i64>, StoreError> {
    let wanted = super::sql::last_per_key(wanted, |(k, _)| k.clone());
    for chunk in wanted.chunks(ROWS) {
        let mut q = Builder::new("insert into series (server_id, kind, name, detail) ");
        q.push_values(chunk, |mut b, (k, detail)| {
            b.push_bind(k.server_id.as_str())
                .push_bind(k.kind.code())
                .push_bind(k.name.as_str())
                .push_bind(*detail);
        });
        // Only a changed detail writes: an unchanged series costs a lookup, not a page.
        q.push(
            " on conflict (server_id, kind, name) do update set detail = excluded.detail \
             where series.detail is distinct from excluded.detail",
        );
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    let mut servers: Vec<&str> = wanted.iter().map(|(k, _)| k.server_id.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    let mut out = HashMap::with_capacity(wanted.len());
    for chunk in servers.chunks(ROWS) {
        let mut q =
            Builder::new("select id, server_id, kind, name from series where server_id in (");
        let mut list = q.separated(", ");
        for s in chunk {
            list.push_bind(*s);
        }
        q.push(")");
        for r in q.build().persistent(false).fetch_all(&mut *tx).await? {
            let kind = Kind::from_code(r.try_get("kind")?)
                .ok_or_else(|| corrupt("series", "unknown kind"))?;
            out.insert(
                SeriesKey {
                    server_id: r.try_get("server_id")?,
                    kind,
                    name: r.try_get("name")?,
                },
                r.try_get("id")?,
            );
        }
    }
    Ok(out)
}

/// Appends the samples of a batch of polls as open rows (`raw_points`), with the ids each
/// container name was seen with.
pub(super) async fn append(
    tx: &mut sqlx::AnyConnection,
    cache: &std::sync::Mutex<SeriesCache>,
    samples: &[(String, i64, &Snapshot)],
) -> Result<(), StoreError> {
    let mut wanted: Vec<(SeriesKey, Option<&str>)> = Vec::new();
    let mut points: Vec<(SeriesKey, i64, Vec<Option<i64>>)> = Vec::new();
    let mut ids: Vec<(SeriesKey, &str)> = Vec::new();
    for (sid, ts, s) in samples {
        let key = |kind, name: &str| SeriesKey {
            server_id: sid.clone(),
            kind,
            name: name.to_owned(),
        };
        wanted.push((key(Kind::Server, ""), None));
        points.push((
            key(Kind::Server, ""),
            *ts,
            history::server_values(&s.server),
        ));
        for d in &s.disks {
            wanted.push((key(Kind::Mount, &d.mount), Some(d.filesystem.as_str())));
            points.push((key(Kind::Mount, &d.mount), *ts, history::mount_values(d)));
        }
        for c in &s.containers {
            let k = key(Kind::Container, &c.name);
            wanted.push((k.clone(), c.image.as_deref()));
            if !c.container_id.is_empty() {
                ids.push((k.clone(), c.container_id.as_str()));
            }
            let values = history::container_values(c);
            // A stopped container has no figures: its state is in the latest sample.
            if !history::all_null(&values) {
                points.push((k, *ts, values));
            }
        }
    }
    // A host reporting the same mount or container twice names one series.
    wanted.sort_by(|a, b| {
        (&a.0.server_id, a.0.kind.code(), &a.0.name).cmp(&(
            &b.0.server_id,
            b.0.kind.code(),
            &b.0.name,
        ))
    });
    wanted.dedup_by(|a, b| a.0 == b.0);
    let (mut series, unknown): (HashMap<SeriesKey, i64>, Vec<Wanted<'_>>) = {
        let c = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut known = HashMap::with_capacity(wanted.len());
        let mut unknown = Vec::new();
        for (k, detail) in wanted {
            match c.ids.get(&k) {
                Some((id, d)) if d.as_deref() == detail => {
                    known.insert(k, *id);
                }
                _ => unknown.push((k, detail)),
            }
        }
        (known, unknown)
    };
    if !unknown.is_empty() {
        let fresh = series_ids(&mut *tx, &unknown).await?;
        let mut c = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (k, detail) in &unknown {
            if let Some(id) = fresh.get(k) {
                c.ids.insert(k.clone(), (*id, detail.map(str::to_owned)));
            }
        }
        series.extend(fresh);
    }
    let rows: Vec<(i64, i64, Vec<u8>)> = points
        .iter()
        .filter_map(|(k, ts, v)| series.get(k).map(|id| (*id, *ts, codec::encode_row(v))))
        .collect();
    for chunk in rows.chunks(ROWS) {
        let mut q = Builder::new("insert into raw_points (series, ts, vals) ");
        q.push_values(chunk, |mut b, (id, ts, vals)| {
            b.push_bind(*id).push_bind(*ts).push_bind(vals.as_slice());
        });
        // Two samples of one series in the same millisecond: the first stays.
        q.push(" on conflict do nothing");
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    let ids: Vec<(i64, &str)> = {
        let c = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ids.iter()
            .filter_map(|(k, cid)| series.get(k).map(|id| (*id, *cid)))
            .filter(|(id, cid)| !c.containers.contains(&(*id, (*cid).to_owned())))
            .collect()
    };
    for chunk in ids.chunks(ROWS) {
        let mut q = Builder::new("insert into container_ids (series, container_id) ");
        q.push_values(chunk, |mut b, (id, cid)| {
            b.push_bind(*id).push_bind(*cid);
        });
        q.push(" on conflict do nothing");
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    // Remembered only once written: the transaction may yet fail, and then the next batch
    // writes them again (each insert ignores what is there).
    let mut c = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    c.containers
        .extend(ids.iter().map(|(id, cid)| (*id, (*cid).to_owned())));
    Ok(())
}

/// One stored series of a server.
#[derive(Debug, Clone)]
pub(super) struct SeriesRow {
    pub id: i64,
    pub server_id: Uuid,
    pub name: String,
    pub detail: Option<String>,
}

/// Decodes a chunk's rows; the error names the table.
pub(super) fn decode_chunk(data: &[u8]) -> Result<Vec<Row>, StoreError> {
    codec::decode_chunk(data).map_err(|e| corrupt("chunks", e))
}

impl Store {
    /// The series of `kind` of these servers (all servers: `None`), by id.
    pub(super) async fn series_of(
        &self,
        kind: Kind,
        servers: Option<&[Uuid]>,
    ) -> Result<Vec<SeriesRow>, StoreError> {
        let mut out = Vec::new();
        // Every server: one query without a filter (`None` below); else a query per ROWS ids.
        let chunks: Vec<Option<&[Uuid]>> = match servers {
            None => vec![None],
            Some(ids) => ids.chunks(ROWS).map(Some).collect(),
        };
        for chunk in chunks {
            let mut q =
                Builder::new("select id, server_id, name, detail from series where kind = ");
            q.push_bind(kind.code());
            if let Some(ids) = chunk {
                q.push(" and server_id in (");
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(id.to_string());
                }
                sep.push_unseparated(")");
            }
            q.push(" order by server_id, name");
            for r in q.build().fetch_all(&self.pool).await? {
                let sid: String = r.try_get("server_id")?;
                out.push(SeriesRow {
                    id: r.try_get("id")?,
                    server_id: Uuid::parse_str(&sid).map_err(|e| corrupt("series", e))?,
                    name: r.try_get("name")?,
                    detail: r.try_get("detail")?,
                });
            }
        }
        Ok(out)
    }

    /// The container series of a server named by container name, or by any id it had.
    pub(super) async fn container_series(
        &self,
        server_id: Uuid,
        container: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "select s.id from series s where s.server_id = $1 and s.kind = 2 and (s.name = $2 \
             or exists (select 1 from container_ids c where c.series = s.id and c.container_id = $2)) \
             order by s.name = $2 desc limit 1",
        )
        .bind(server_id.to_string())
        .bind(container)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// How far the rollups of `tier` have been stored: later rows are made from the finer
    /// tier when read.
    pub(super) async fn done_until(&self, tier: Tier) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("select done_until from history_state where tier = $1")
                .bind(tier.code())
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    /// The raw samples of these series between `a` and `b` (inclusive), from closed-hour
    /// chunks and open rows, per series in time order.
    pub(super) async fn raw_rows(
        &self,
        series: &[i64],
        a: i64,
        b: i64,
    ) -> Result<HashMap<i64, Vec<Row>>, StoreError> {
        let mut out: HashMap<i64, Vec<Row>> = HashMap::new();
        for chunk in series.chunks(ROWS) {
            for (id, rows) in self.chunk_rows(Tier::Raw, chunk, a, b).await? {
                out.entry(id).or_default().extend(rows);
            }
            let mut q = Builder::new("select series, ts, vals from raw_points where series in ");
            in_list(&mut q, chunk);
            q.push(" and ts >= ")
                .push_bind(a)
                .push(" and ts <= ")
                .push_bind(b);
            for r in q.build().fetch_all(&self.pool).await? {
                let id: i64 = r.try_get("series")?;
                let vals: Vec<u8> = r.try_get("vals")?;
                out.entry(id).or_default().push(Row {
                    ts: r.try_get("ts")?,
                    values: codec::decode_row(&vals).map_err(|e| corrupt("raw_points", e))?,
                });
            }
        }
        for rows in out.values_mut() {
            rows.sort_by_key(|r| r.ts);
        }
        Ok(out)
    }

    /// The rows between `a` and `b` (inclusive) of the chunks of `tier` of these series (at
    /// most [`ROWS`] of them), per chunk.
    async fn chunk_rows(
        &self,
        tier: Tier,
        series: &[i64],
        a: i64,
        b: i64,
    ) -> Result<Vec<(i64, Vec<Row>)>, StoreError> {
        let mut q = Builder::new("select series, data from chunks where tier = ");
        q.push_bind(tier.code()).push(" and series in ");
        in_list(&mut q, series);
        q.push(" and start >= ")
            .push_bind(period_start(a, tier.chunk_ms()))
            .push(" and start <= ")
            .push_bind(b);
        let mut out = Vec::new();
        for r in q.build().fetch_all(&self.pool).await? {
            let data: Vec<u8> = r.try_get("data")?;
            let rows = decode_chunk(&data)?
                .into_iter()
                .filter(|r| r.ts >= a && r.ts <= b)
                .collect();
            out.push((r.try_get("series")?, rows));
        }
        Ok(out)
    }

    /// Stored rollup rows of `tier` for these series with a period start in `a..=b`.
    async fn stored_rollups(
        &self,
        tier: Tier,
        kind: Kind,
        series: &[i64],
        a: i64,
        b: i64,
    ) -> Result<HashMap<i64, Vec<AggRow>>, StoreError> {
        let width = kind.fields().len();
        let mut out: HashMap<i64, Vec<AggRow>> = HashMap::new();
        for chunk in series.chunks(ROWS) {
            for (id, rows) in self.chunk_rows(tier, chunk, a, b).await? {
                let stored = out.entry(id).or_default();
                for row in rows {
                    stored.push(
                        AggRow::from_row(&row, width)
                            .ok_or_else(|| corrupt("chunks", "a rollup row of the wrong width"))?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// These series' history between `a` and `b` as rows of `tier`: raw samples each as a
    /// row of its own, or rollup rows: those stored, then the periods not rolled up yet
    /// made from the finer tier (so the open hour and day are on every chart).
    pub(super) async fn tier_rows(
        &self,
        tier: Tier,
        kind: Kind,
        series: &[i64],
        a: i64,
        b: i64,
    ) -> Result<HashMap<i64, Vec<AggRow>>, StoreError> {
        let Some(source) = tier.source() else {
            let raw = self.raw_rows(series, a, b).await?;
            return Ok(raw
                .into_iter()
                .map(|(id, rows)| (id, rows.iter().map(AggRow::of_sample).collect()))
                .collect());
        };
        let span = tier.row_ms(0);
        let a = period_start(a, span);
        let done = self.done_until(tier).await?;
        let mut out = if a < done {
            self.stored_rollups(tier, kind, series, a, b.min(done - 1))
                .await?
        } else {
            HashMap::new()
        };
        if b >= done {
            let fresh = Box::pin(self.tier_rows(source, kind, series, a.max(done), b)).await?;
            for (id, rows) in fresh {
                out.entry(id).or_default().extend(
                    history::rollup(&rows, span)
                        .into_iter()
                        .filter(|r| r.ts >= done),
                );
            }
        }
        Ok(out)
    }
}

/// Pushes `(?, ?, ...)` with the ids bound.
pub(super) fn in_list(q: &mut Builder<'_>, ids: &[i64]) {
    q.push("(");
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    sep.push_unseparated(")");
}
