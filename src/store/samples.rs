//! Samples: writing one poll's results (the latest sample whole, its figures appended to the
//! history), and reading the latest sample and the history of a server, a mount or a
//! container at the tier a chart needs.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::activity::{insert_many as insert_activity, NewActivity};
use super::alerts::{write_alerts, AlertWrite};
use super::history::{self as series, corrupt};
use super::servers::{apply_updates, ServerUpdate, ROWS_PER_STATEMENT};
use super::sql::{Builder, Real};
use super::{from_ms, to_ms, Store, StoreError};
use crate::history::{self, Keep, Kind, Point, Tier};
use crate::model::{ContainerHealth, ContainerSample, DiskSample, ServerSample, Snapshot};

/// The latest server-wide sample of one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatestSample {
    pub server_id: Uuid,
    pub timestamp: DateTime<Utc>,
    pub cpu_busy_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    /// The fullest mount's use.
    pub disk_percent: Option<f64>,
    pub load1: Option<f64>,
}

/// The lowest and highest value of each of a point's fields over the samples it stands
/// for; only points of a rollup tier carry them.
pub type Band = Map<String, Value>;

/// One point of a server's (possibly downsampled) history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    pub timestamp: DateTime<Utc>,
    pub cpu_busy_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    pub swap_used_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub uptime_seconds: Option<u64>,
    pub tasks_total: Option<u64>,
    /// How many raw samples this point summarises.
    pub samples: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Band>,
}

/// One mount in the latest sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskRow {
    pub timestamp: DateTime<Utc>,
    pub filesystem: String,
    pub mount: String,
    pub total_bytes: Option<u64>,
    pub used_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub use_percent: Option<f64>,
}

/// One container in the latest sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerRow {
    pub timestamp: DateTime<Utc>,
    pub container_id: String,
    pub name: String,
    pub image: Option<String>,
    pub state: String,
    pub status_text: String,
    pub exit_code: Option<i32>,
    pub health: Option<String>,
    pub category: ContainerHealth,
    pub cpu_percent: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_limit_bytes: Option<u64>,
    pub mem_percent: Option<f64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub block_read_bytes: Option<u64>,
    pub block_write_bytes: Option<u64>,
    pub pids: Option<u64>,
}

/// One point of a container's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerPoint {
    pub timestamp: DateTime<Utc>,
    pub cpu_percent: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_limit_bytes: Option<u64>,
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    pub block_read_bytes: Option<u64>,
    pub block_write_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub samples: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Band>,
}

/// A chart's points and what one point stands for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History<P> {
    pub tier: Tier,
    /// The time one point covers: the bucket width, and never less than the tier's own rows
    /// (the poll interval for raw samples, an hour, a day).
    pub resolution_secs: i64,
    pub items: Vec<P>,
}

/// The `server_id` column as a UUID; a value that is not one means a hand-edited database.
pub(super) fn server_id_of(row: &AnyRow, table: &'static str) -> Result<Uuid, StoreError> {
    let id: String = row.try_get("server_id")?;
    Uuid::parse_str(&id).map_err(|e| corrupt(table, e))
}

pub(super) fn opt_f(row: &AnyRow, col: &str) -> Result<Option<f64>, StoreError> {
    Ok(row.try_get::<Option<f64>, _>(col)?)
}

/// A point's field by name: its value, and its band when the tier is a rollup.
pub(super) struct PointView<'a> {
    pub kind: Kind,
    pub point: &'a Point,
}

impl PointView<'_> {
    /// A figure as shown: percentages and loads to 0.01, what the tools print (a mean of
    /// hundredths has as many decimals as the division gives, and every one of them is
    /// bytes in a 30-day answer).
    pub fn f(&self, name: &str) -> Option<f64> {
        let i = self.kind.field(name)?;
        let v = self.point.value[i]?;
        Some(match self.kind.fields()[i].scale {
            history::Scale::Hundredths => (v * 100.0).round() / 100.0,
            history::Scale::Unit => v,
        })
    }

    pub fn u(&self, name: &str) -> Option<u64> {
        self.f(name)
            .map(|v| if v > 0.0 { v.round() as u64 } else { 0 })
    }

    pub fn band(&self, names: &[&str], max: bool) -> Band {
        let side = if max {
            &self.point.max
        } else {
            &self.point.min
        };
        names
            .iter()
            .filter_map(|n| {
                let v = self.kind.field(n).and_then(|i| side[i])?;
                Some(((*n).to_owned(), Value::from(v)))
            })
            .collect()
    }

    pub fn timestamp(&self) -> DateTime<Utc> {
        from_ms(self.point.ts)
    }
}

const METRIC_FIELDS: [&str; 12] = [
    "cpu_busy_percent",
    "memory_percent",
    "mem_used_bytes",
    "mem_total_bytes",
    "mem_available_bytes",
    "swap_used_bytes",
    "swap_total_bytes",
    "load1",
    "load5",
    "load15",
    "uptime_seconds",
    "tasks_total",
];

const CONTAINER_FIELDS: [&str; 8] = [
    "cpu_percent",
    "mem_used_bytes",
    "mem_limit_bytes",
    "net_rx_bytes",
    "net_tx_bytes",
    "block_read_bytes",
    "block_write_bytes",
    "pids",
];

/// The bands of a point, or none for raw samples (where they would repeat the value).
pub(super) fn bands(v: &PointView<'_>, tier: Tier, names: &[&str]) -> (Option<Band>, Option<Band>) {
    if tier == Tier::Raw {
        return (None, None);
    }
    (Some(v.band(names, false)), Some(v.band(names, true)))
}

/// How a chart of a window is read: the tier, the bucket width, the width of the tier's own
/// rows, and what one point stands for.
pub(super) struct Plan {
    pub tier: Tier,
    pub width: i64,
    pub row_ms: i64,
    pub resolution_secs: i64,
}

/// The plan of a chart of `since..until` in at most `max_points` points.
pub(super) fn plan(
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    max_points: i64,
    keep: Keep,
) -> Plan {
    let (a, b) = (to_ms(since), to_ms(until));
    let (tier, width) = history::choose(a, b, max_points, to_ms(Utc::now()), keep);
    let row_ms = tier.row_ms(keep.poll_interval_ms);
    // Whole seconds, rounded up: a point never stands for less than it does.
    let resolution_secs = ((width.max(row_ms) + 999) / 1000).max(1);
    Plan {
        tier,
        width,
        row_ms,
        resolution_secs,
    }
}

impl Store {
    /// Writes one poll in one transaction: the snapshot's rows (when there is one), the
    /// server's new state, and the activity entries the poll caused.
    ///
    /// # Errors
    /// Database failure; nothing is written then.
    pub async fn record_poll(
        &self,
        server_id: Uuid,
        snapshot: Option<&Snapshot>,
        update: &ServerUpdate,
        events: &[NewActivity],
    ) -> Result<(), StoreError> {
        self.record_polls(&[PollWrite {
            server_id,
            snapshot,
            update,
            events,
            alerts: &[],
        }])
        .await
    }

    /// Writes several polls in one transaction (the scheduler's writer batches them, so
    /// a large fleet costs one fsync per batch rather than per host), with one statement per
    /// table for the whole batch: sqlx runs every statement as a round trip to its SQLite
    /// thread, and those hops, not SQLite, were most of a poll's CPU.
    ///
    /// # Errors
    /// Database failure; nothing of the batch is written then.
    pub async fn record_polls(&self, batch: &[PollWrite<'_>]) -> Result<(), StoreError> {
        self.record_fenced(None, batch).await.map(|_| ())
    }

    /// Like [`Store::record_polls`] for poller `me` sharing the fleet (issue #14): a result
    /// for a server whose lease it no longer holds is not written. Returns how many were
    /// refused.
    ///
    /// # Errors
    /// Database failure; nothing of the batch is written then.
    pub async fn record_polls_leased(
        &self,
        me: Uuid,
        batch: &[PollWrite<'_>],
    ) -> Result<usize, StoreError> {
        self.record_fenced(Some(me), batch).await
    }

    async fn record_fenced(
        &self,
        fence: Option<Uuid>,
        batch: &[PollWrite<'_>],
    ) -> Result<usize, StoreError> {
        match self.try_record_polls(fence, batch).await {
            Ok(refused) => Ok(refused),
            // A series this process remembered was deleted by another (`db maintain`, a
            // server removed from the CLI): forget them all and name them again.
            Err(StoreError::Sqlx(sqlx::Error::Database(e)))
                if e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation =>
            {
                self.forget_series();
                self.try_record_polls(fence, batch).await
            }
            Err(e) => {
                self.forget_series();
                Err(e)
            }
        }
    }

    /// One transaction; with a `fence`, only the results of servers it holds a lease on
    /// (their lease rows share-locked until the commit). Returns how many were refused.
    async fn try_record_polls(
        &self,
        fence: Option<Uuid>,
        batch: &[PollWrite<'_>],
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Without a fence (SQLite, one poller) the batch goes as it is, uncopied.
        let kept: std::borrow::Cow<'_, [PollWrite<'_>]> = match fence {
            None => std::borrow::Cow::Borrowed(batch),
            Some(me) => {
                let ids: Vec<Uuid> = batch.iter().map(|w| w.server_id).collect();
                let held = self
                    .leased_of(&mut tx, me, &ids, chrono::Utc::now())
                    .await?;
                std::borrow::Cow::Owned(
                    batch
                        .iter()
                        .filter(|w| held.contains(&w.server_id))
                        .copied()
                        .collect(),
                )
            }
        };
        write_batch(&mut tx, &self.series, &kept).await?;
        tx.commit().await?;
        Ok(batch.len() - kept.len())
    }

    /// Empties the series cache (after series were deleted, or a write failed).
    pub(super) fn forget_series(&self) {
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// One poll's writes, borrowed from the scheduler. Within one batch, each server appears
/// at most once (its update is applied by a join on the id).
#[derive(Debug, Clone, Copy)]
pub struct PollWrite<'a> {
    pub server_id: Uuid,
    pub snapshot: Option<&'a Snapshot>,
    pub update: &'a ServerUpdate,
    pub events: &'a [NewActivity],
    /// What the alert rules decided about this poll, with the intents to notify.
    pub alerts: &'a [AlertWrite],
}

/// The latest sample as stored: the figures the overview reads as columns, the rest as JSON.
struct LatestWrite<'a> {
    server_id: &'a str,
    ts: i64,
    snapshot: &'a Snapshot,
}

pub(super) async fn write_latest(
    tx: &mut sqlx::AnyConnection,
    samples: &[(String, i64, &Snapshot)],
) -> Result<(), StoreError> {
    // One row per server, the newest (the last of equals), as the upsert's condition would
    // leave it; PostgreSQL refuses to reach a row twice in one statement.
    let mut newest: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, (sid, ts, _)) in samples.iter().enumerate() {
        match newest.get(sid.as_str()) {
            Some(&j) if samples[j].1 > *ts => {}
            _ => {
                newest.insert(sid.as_str(), i);
            }
        }
    }
    let rows: Vec<LatestWrite<'_>> = samples
        .iter()
        .enumerate()
        .filter(|(i, (sid, _, _))| newest.get(sid.as_str()) == Some(i))
        .map(|(_, (sid, ts, s))| LatestWrite {
            server_id: sid.as_str(),
            ts: *ts,
            snapshot: s,
        })
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = Builder::new(
            "insert into latest_samples (server_id, ts, cpu_busy_percent, memory_percent, disk_percent, load1, \
             containers_running, containers_stopped, containers_error, server, disks, containers) ",
        );
        q.push_values(chunk, |mut b, w| {
            let s = w.snapshot;
            let count = |c: ContainerHealth| {
                s.containers.iter().filter(|x| x.category() == c).count() as i64
            };
            let disk = s
                .disks
                .iter()
                .filter_map(|d| d.use_percent)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            b.push_bind(w.server_id)
                .push_bind(w.ts)
                .push_bind(Real(s.server.cpu_busy_percent))
                .push_bind(Real(s.server.memory_percent()))
                .push_bind(Real(disk))
                .push_bind(Real(s.server.load1))
                .push_bind(count(ContainerHealth::Running))
                .push_bind(count(ContainerHealth::Stopped))
                .push_bind(count(ContainerHealth::Error))
                .push_bind(serde_json::to_string(&s.server).unwrap_or_default())
                .push_bind(serde_json::to_string(&s.disks).unwrap_or_default())
                .push_bind(serde_json::to_string(&s.containers).unwrap_or_default());
        });
        // A late write of an older poll never replaces a newer sample.
        q.push(
            " on conflict (server_id) do update set ts = excluded.ts, cpu_busy_percent = excluded.cpu_busy_percent, \
             memory_percent = excluded.memory_percent, disk_percent = excluded.disk_percent, load1 = excluded.load1, \
             containers_running = excluded.containers_running, containers_stopped = excluded.containers_stopped, \
             containers_error = excluded.containers_error, server = excluded.server, disks = excluded.disks, \
             containers = excluded.containers where excluded.ts >= latest_samples.ts",
        );
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    Ok(())
}

async fn write_batch(
    tx: &mut sqlx::AnyConnection,
    cache: &std::sync::Mutex<series::SeriesCache>,
    batch: &[PollWrite<'_>],
) -> Result<(), StoreError> {
    // Every row of one poll carries its server id and time; format each id once.
    let samples: Vec<(String, i64, &Snapshot)> = batch
        .iter()
        .filter_map(|w| {
            w.snapshot
                .map(|s| (w.server_id.to_string(), to_ms(s.taken_at), s))
        })
        .collect();
    if !samples.is_empty() {
        series::append(&mut *tx, cache, &samples).await?;
        write_latest(&mut *tx, &samples).await?;
    }
    let updates: Vec<(Uuid, &ServerUpdate)> =
        batch.iter().map(|w| (w.server_id, w.update)).collect();
    apply_updates(&mut *tx, &updates).await?;
    let events: Vec<NewActivity> = batch
        .iter()
        .flat_map(|w| w.events.iter().cloned())
        .collect();
    insert_activity(&mut *tx, &events).await?;
    let alerts: Vec<&AlertWrite> = batch.iter().flat_map(|w| w.alerts.iter()).collect();
    if !alerts.is_empty() {
        write_alerts(&mut *tx, &alerts, chrono::Utc::now()).await?;
    }
    Ok(())
}

/// The latest sample's JSON columns, read back.
fn json_of<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| corrupt("latest_samples", e))
}

impl Store {
    /// The latest sample of one server (`Some`) or of every server that has one.
    pub async fn latest_samples(
        &self,
        server_id: Option<Uuid>,
    ) -> Result<Vec<LatestSample>, StoreError> {
        let mut q = Builder::new(
            "select server_id, ts, cpu_busy_percent, memory_percent, disk_percent, load1 from latest_samples",
        );
        if let Some(id) = server_id {
            q.push(" where server_id = ").push_bind(id.to_string());
        }
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(LatestSample {
                    server_id: server_id_of(r, "latest_samples")?,
                    timestamp: from_ms(r.try_get("ts")?),
                    cpu_busy_percent: opt_f(r, "cpu_busy_percent")?,
                    memory_percent: opt_f(r, "memory_percent")?,
                    disk_percent: opt_f(r, "disk_percent")?,
                    load1: opt_f(r, "load1")?,
                })
            })
            .collect()
    }

    /// The server-wide figures of the latest sample of one server.
    pub async fn latest_server_sample(
        &self,
        server_id: Uuid,
    ) -> Result<Option<(DateTime<Utc>, ServerSample)>, StoreError> {
        let row = sqlx::query("select ts, server from latest_samples where server_id = $1")
            .bind(server_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((from_ms(r.try_get("ts")?), json_of(&r, "server")?)))
            .transpose()
    }

    /// Containers of the latest samples of online servers by category, in one query.
    pub async fn container_counts(
        &self,
        servers: &[Uuid],
    ) -> Result<[(ContainerHealth, u64); 3], StoreError> {
        let mut totals = [0u64; 3];
        for chunk in servers.chunks(ROWS_PER_STATEMENT) {
            let mut q = Builder::new(
                "select cast(coalesce(sum(containers_running), 0) as bigint) as r, \
                 cast(coalesce(sum(containers_stopped), 0) as bigint) as s, \
                 cast(coalesce(sum(containers_error), 0) as bigint) as e from latest_samples where server_id in (",
            );
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.to_string());
            }
            sep.push_unseparated(")");
            let r = q.build().fetch_one(&self.pool).await?;
            for (i, col) in ["r", "s", "e"].into_iter().enumerate() {
                totals[i] += u64::try_from(r.try_get::<i64, _>(col)?).unwrap_or(0);
            }
        }
        Ok([
            (ContainerHealth::Running, totals[0]),
            (ContainerHealth::Stopped, totals[1]),
            (ContainerHealth::Error, totals[2]),
        ])
    }

    /// These series' history between `since` and `until` in at most `max_points` points
    /// each, from the tier that fits the window; series without a point are left out.
    pub(super) async fn points(
        &self,
        kind: Kind,
        series: &[i64],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
        keep: Keep,
    ) -> Result<(Plan, HashMap<i64, Vec<Point>>), StoreError> {
        let plan = plan(since, until, max_points, keep);
        let (a, b) = (to_ms(since), to_ms(until));
        let points = self
            .tier_rows(plan.tier, kind, series, a, b)
            .await?
            .into_iter()
            .filter_map(|(id, rows)| {
                let rows: Vec<_> = rows
                    .into_iter()
                    .filter(|r| r.ts >= a && r.ts <= b)
                    .collect();
                (!rows.is_empty())
                    .then(|| (id, history::bucket(&rows, kind, a, plan.width, plan.row_ms)))
            })
            .collect();
        Ok((plan, points))
    }

    /// One series' points (none when the series does not exist), as [`Store::points`].
    async fn one_series(
        &self,
        kind: Kind,
        series: Option<i64>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
        keep: Keep,
    ) -> Result<(Plan, Vec<Point>), StoreError> {
        let ids: Vec<i64> = series.into_iter().collect();
        let (plan, mut points) = self
            .points(kind, &ids, since, until, max_points, keep)
            .await?;
        let points = series.and_then(|id| points.remove(&id)).unwrap_or_default();
        Ok((plan, points))
    }

    /// Server history between `since` and `until` in at most `max_points` points, from the
    /// tier that fits the window.
    pub async fn metric_history(
        &self,
        server_id: Uuid,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
        keep: Keep,
    ) -> Result<History<MetricPoint>, StoreError> {
        let series = self
            .series_of(Kind::Server, Some(&[server_id]))
            .await?
            .first()
            .map(|s| s.id);
        let (plan, points) = self
            .one_series(Kind::Server, series, since, until, max_points, keep)
            .await?;
        let tier = plan.tier;
        let items = points
            .iter()
            .map(|p| {
                let v = PointView {
                    kind: Kind::Server,
                    point: p,
                };
                let (min, max) = bands(&v, tier, &METRIC_FIELDS);
                MetricPoint {
                    timestamp: v.timestamp(),
                    cpu_busy_percent: v.f("cpu_busy_percent"),
                    memory_percent: v.f("memory_percent"),
                    mem_used_bytes: v.u("mem_used_bytes"),
                    mem_total_bytes: v.u("mem_total_bytes"),
                    mem_available_bytes: v.u("mem_available_bytes"),
                    swap_used_bytes: v.u("swap_used_bytes"),
                    swap_total_bytes: v.u("swap_total_bytes"),
                    load1: v.f("load1"),
                    load5: v.f("load5"),
                    load15: v.f("load15"),
                    uptime_seconds: v.u("uptime_seconds"),
                    tasks_total: v.u("tasks_total"),
                    samples: p.samples,
                    min,
                    max,
                }
            })
            .collect();
        Ok(History {
            tier,
            resolution_secs: plan.resolution_secs,
            items,
        })
    }

    /// The mounts of the server's latest sample.
    pub async fn latest_disks(&self, server_id: Uuid) -> Result<Vec<DiskRow>, StoreError> {
        Ok(self
            .latest_disks_of(Some(server_id))
            .await?
            .into_iter()
            .map(|(_, d)| d)
            .collect())
    }

    /// The mounts of the latest sample of one server, or of every server (`None`), by path.
    pub async fn latest_disks_of(
        &self,
        server_id: Option<Uuid>,
    ) -> Result<Vec<(Uuid, DiskRow)>, StoreError> {
        let mut q = Builder::new("select server_id, ts, disks from latest_samples");
        if let Some(id) = server_id {
            q.push(" where server_id = ").push_bind(id.to_string());
        }
        let mut out = Vec::new();
        for r in q.build().fetch_all(&self.pool).await? {
            let sid = server_id_of(&r, "latest_samples")?;
            let ts = from_ms(r.try_get("ts")?);
            let mut disks: Vec<DiskSample> = json_of(&r, "disks")?;
            disks.sort_by(|a, b| a.mount.cmp(&b.mount));
            out.extend(disks.into_iter().map(|d| {
                (
                    sid,
                    DiskRow {
                        timestamp: ts,
                        filesystem: d.filesystem,
                        mount: d.mount,
                        total_bytes: d.total_bytes,
                        used_bytes: d.used_bytes,
                        available_bytes: d.available_bytes,
                        use_percent: d.use_percent,
                    },
                )
            }));
        }
        Ok(out)
    }

    /// The containers of the server's latest sample by name; `None` for every server at once.
    pub async fn latest_containers(
        &self,
        server_id: Option<Uuid>,
    ) -> Result<Vec<(Uuid, ContainerRow)>, StoreError> {
        let mut q = Builder::new("select server_id, ts, containers from latest_samples");
        if let Some(id) = server_id {
            q.push(" where server_id = ").push_bind(id.to_string());
        }
        let mut out = Vec::new();
        for r in q.build().fetch_all(&self.pool).await? {
            let sid = server_id_of(&r, "latest_samples")?;
            let ts = from_ms(r.try_get("ts")?);
            let mut containers: Vec<ContainerSample> = json_of(&r, "containers")?;
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            out.extend(containers.into_iter().map(|c| (sid, container_row(ts, c))));
        }
        Ok(out)
    }

    /// One container's history (by name or id) in at most `max_points` points.
    pub async fn container_history(
        &self,
        server_id: Uuid,
        container: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
        keep: Keep,
    ) -> Result<History<ContainerPoint>, StoreError> {
        let series = self.container_series(server_id, container).await?;
        let (plan, points) = self
            .one_series(Kind::Container, series, since, until, max_points, keep)
            .await?;
        let tier = plan.tier;
        let items = points
            .iter()
            .map(|p| {
                let v = PointView {
                    kind: Kind::Container,
                    point: p,
                };
                let (min, max) = bands(&v, tier, &CONTAINER_FIELDS);
                ContainerPoint {
                    timestamp: v.timestamp(),
                    cpu_percent: v.f("cpu_percent"),
                    mem_used_bytes: v.u("mem_used_bytes"),
                    mem_limit_bytes: v.u("mem_limit_bytes"),
                    net_rx_bytes: v.u("net_rx_bytes"),
                    net_tx_bytes: v.u("net_tx_bytes"),
                    block_read_bytes: v.u("block_read_bytes"),
                    block_write_bytes: v.u("block_write_bytes"),
                    pids: v.u("pids"),
                    samples: p.samples,
                    min,
                    max,
                }
            })
            .collect();
        Ok(History {
            tier,
            resolution_secs: plan.resolution_secs,
            items,
        })
    }

    /// True when the server has ever reported a container of this name or id.
    pub async fn container_known(
        &self,
        server_id: Uuid,
        container: &str,
    ) -> Result<bool, StoreError> {
        if self.container_series(server_id, container).await?.is_some() {
            return Ok(true);
        }
        Ok(self
            .latest_containers(Some(server_id))
            .await?
            .iter()
            .any(|(_, c)| c.name == container || c.container_id == container))
    }
}

fn container_row(ts: DateTime<Utc>, c: ContainerSample) -> ContainerRow {
    let category = c.category();
    ContainerRow {
        timestamp: ts,
        container_id: c.container_id,
        name: c.name,
        image: c.image,
        state: c.state,
        status_text: c.status_text,
        exit_code: c.exit_code,
        health: c.health,
        category,
        cpu_percent: c.cpu_percent,
        mem_used_bytes: c.mem_used_bytes,
        mem_limit_bytes: c.mem_limit_bytes,
        mem_percent: c.mem_percent,
        net_rx_bytes: c.net_rx_bytes,
        net_tx_bytes: c.net_tx_bytes,
        block_read_bytes: c.block_read_bytes,
        block_write_bytes: c.block_write_bytes,
        pids: c.pids,
    }
}
