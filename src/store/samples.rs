//! Samples: server metrics, disk usage and container metrics; writing one poll's results,
//! reading the latest and the downsampled history, and retention.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

use super::activity::{insert_many as insert_activity, NewActivity};
use super::alerts::{write_alerts, AlertWrite};
use super::servers::{apply_updates, ServerUpdate, ROWS_PER_STATEMENT};
use super::{from_ms, i64_to_u64, to_ms, u64_to_i64, Store, StoreError};
use crate::model::{ContainerHealth, ContainerSample, DiskSample, Snapshot};

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
    /// How many raw samples this point averages.
    pub samples: i64,
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
}

/// Rows deleted by one retention run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionCounts {
    pub server_metrics: u64,
    pub disk_usage: u64,
    pub container_metrics: u64,
}

/// The `server_id` column as a UUID; a value that is not one means a hand-edited database.
pub(super) fn server_id_of(row: &SqliteRow, table: &'static str) -> Result<Uuid, StoreError> {
    let id: String = row.try_get("server_id")?;
    Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

pub(super) fn opt_f(row: &SqliteRow, col: &str) -> Result<Option<f64>, StoreError> {
    Ok(row.try_get::<Option<f64>, _>(col)?)
}

pub(super) fn opt_u(row: &SqliteRow, col: &str) -> Result<Option<u64>, StoreError> {
    // avg() comes back as REAL, max() of an INTEGER column as INTEGER: accept both.
    if let Ok(v) = row.try_get::<Option<i64>, _>(col) {
        return Ok(i64_to_u64(v));
    }
    let v: Option<f64> = row.try_get::<Option<f64>, _>(col)?;
    Ok(v.map(|v| {
        if v.is_finite() && v > 0.0 {
            v.round() as u64
        } else {
            0
        }
    }))
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
        let mut tx = self.pool.begin().await?;
        write_batch(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
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

async fn write_batch(
    tx: &mut sqlx::SqliteConnection,
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
    for chunk in samples.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "insert into server_metrics (server_id, ts, cpu_busy_percent, cpu_user_percent, cpu_system_percent, \
             cpu_iowait_percent, cpu_steal_percent, load1, load5, load15, uptime_seconds, tasks_total, \
             mem_total_bytes, mem_used_bytes, mem_free_bytes, mem_available_bytes, swap_total_bytes, swap_used_bytes) ",
        );
        q.push_values(chunk, |mut b, (sid, ts, s)| {
            let m = &s.server;
            b.push_bind(sid.as_str())
                .push_bind(*ts)
                .push_bind(m.cpu_busy_percent)
                .push_bind(m.cpu_user_percent)
                .push_bind(m.cpu_system_percent)
                .push_bind(m.cpu_iowait_percent)
                .push_bind(m.cpu_steal_percent)
                .push_bind(m.load1)
                .push_bind(m.load5)
                .push_bind(m.load15)
                .push_bind(u64_to_i64(m.uptime_seconds))
                .push_bind(u64_to_i64(m.tasks_total))
                .push_bind(u64_to_i64(m.mem_total_bytes))
                .push_bind(u64_to_i64(m.mem_used_bytes))
                .push_bind(u64_to_i64(m.mem_free_bytes))
                .push_bind(u64_to_i64(m.mem_available_bytes))
                .push_bind(u64_to_i64(m.swap_total_bytes))
                .push_bind(u64_to_i64(m.swap_used_bytes));
        });
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    let disks: Vec<(&str, i64, &DiskSample)> = samples
        .iter()
        .flat_map(|(sid, ts, s)| s.disks.iter().map(move |d| (sid.as_str(), *ts, d)))
        .collect();
    for chunk in disks.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "insert into disk_usage (server_id, ts, filesystem, mount, total_bytes, used_bytes, available_bytes, use_percent) ",
        );
        q.push_values(chunk, |mut b, (sid, ts, d)| {
            b.push_bind(*sid)
                .push_bind(*ts)
                .push_bind(d.filesystem.as_str())
                .push_bind(d.mount.as_str())
                .push_bind(u64_to_i64(d.total_bytes))
                .push_bind(u64_to_i64(d.used_bytes))
                .push_bind(u64_to_i64(d.available_bytes))
                .push_bind(d.use_percent);
        });
        q.build().persistent(false).execute(&mut *tx).await?;
    }
    let containers: Vec<(&str, i64, &ContainerSample)> = samples
        .iter()
        .flat_map(|(sid, ts, s)| s.containers.iter().map(move |c| (sid.as_str(), *ts, c)))
        .collect();
    for chunk in containers.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "insert into container_metrics (server_id, ts, container_id, name, image, state, status_text, exit_code, \
             health, category, cpu_percent, mem_used_bytes, mem_limit_bytes, mem_percent, net_rx_bytes, net_tx_bytes, \
             block_read_bytes, block_write_bytes, pids) ",
        );
        q.push_values(chunk, |mut b, (sid, ts, c)| {
            b.push_bind(*sid)
                .push_bind(*ts)
                .push_bind(c.container_id.as_str())
                .push_bind(c.name.as_str())
                .push_bind(c.image.as_deref())
                .push_bind(c.state.as_str())
                .push_bind(c.status_text.as_str())
                .push_bind(c.exit_code)
                .push_bind(c.health.as_deref())
                .push_bind(c.category().as_str())
                .push_bind(c.cpu_percent)
                .push_bind(u64_to_i64(c.mem_used_bytes))
                .push_bind(u64_to_i64(c.mem_limit_bytes))
                .push_bind(c.mem_percent)
                .push_bind(u64_to_i64(c.net_rx_bytes))
                .push_bind(u64_to_i64(c.net_tx_bytes))
                .push_bind(u64_to_i64(c.block_read_bytes))
                .push_bind(u64_to_i64(c.block_write_bytes))
                .push_bind(u64_to_i64(c.pids));
        });
        q.build().persistent(false).execute(&mut *tx).await?;
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

impl Store {
    /// The latest sample of one server (`Some`) or of every server that has one, keyed by the
    /// server's `last_sample_at` so it reads one row per server through the (server_id, ts) index.
    pub async fn latest_samples(
        &self,
        server_id: Option<Uuid>,
    ) -> Result<Vec<LatestSample>, StoreError> {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "select s.id as server_id, m.ts, m.cpu_busy_percent, m.mem_total_bytes, m.mem_used_bytes, m.mem_available_bytes, m.load1, \
             (select max(d.use_percent) from disk_usage d where d.server_id = s.id and d.ts = s.last_sample_at) as disk_percent \
             from servers s join server_metrics m on m.server_id = s.id and m.ts = s.last_sample_at",
        );
        if let Some(id) = server_id {
            q.push(" where s.id = ").push_bind(id.to_string());
        }
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let sample = crate::model::ServerSample {
                    mem_total_bytes: i64_to_u64(r.try_get("mem_total_bytes")?),
                    mem_used_bytes: i64_to_u64(r.try_get("mem_used_bytes")?),
                    mem_available_bytes: i64_to_u64(r.try_get("mem_available_bytes")?),
                    ..Default::default()
                };
                Ok(LatestSample {
                    server_id: server_id_of(r, "server_metrics")?,
                    timestamp: from_ms(r.try_get("ts")?),
                    cpu_busy_percent: opt_f(r, "cpu_busy_percent")?,
                    memory_percent: sample.memory_percent(),
                    disk_percent: opt_f(r, "disk_percent")?,
                    load1: opt_f(r, "load1")?,
                })
            })
            .collect()
    }

    /// Server history between `since` and `until`, averaged into at most `max_points` buckets.
    pub async fn metric_history(
        &self,
        server_id: Uuid,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
    ) -> Result<Vec<MetricPoint>, StoreError> {
        let (a, b) = (to_ms(since), to_ms(until));
        let bucket = ((b - a) / max_points.max(1)).max(1);
        let rows = sqlx::query(
            "select max(ts) as ts, count(*) as n, avg(cpu_busy_percent) as cpu_busy_percent, \
             avg(case when mem_total_bytes > 0 then 100.0 * (mem_total_bytes - coalesce(mem_available_bytes, mem_total_bytes - mem_used_bytes)) / mem_total_bytes end) as memory_percent, \
             avg(mem_used_bytes) as mem_used_bytes, avg(mem_total_bytes) as mem_total_bytes, avg(mem_available_bytes) as mem_available_bytes, \
             avg(swap_used_bytes) as swap_used_bytes, avg(swap_total_bytes) as swap_total_bytes, \
             avg(load1) as load1, avg(load5) as load5, avg(load15) as load15, max(uptime_seconds) as uptime_seconds, \
             avg(tasks_total) as tasks_total \
             from server_metrics where server_id = ? and ts >= ? and ts <= ? group by (ts - ?) / ? order by 1",
        )
        .bind(server_id.to_string())
        .bind(a)
        .bind(b)
        .bind(a)
        .bind(bucket)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricPoint {
                    timestamp: from_ms(r.try_get("ts")?),
                    cpu_busy_percent: opt_f(r, "cpu_busy_percent")?,
                    memory_percent: opt_f(r, "memory_percent")?,
                    mem_used_bytes: opt_u(r, "mem_used_bytes")?,
                    mem_total_bytes: opt_u(r, "mem_total_bytes")?,
                    mem_available_bytes: opt_u(r, "mem_available_bytes")?,
                    swap_used_bytes: opt_u(r, "swap_used_bytes")?,
                    swap_total_bytes: opt_u(r, "swap_total_bytes")?,
                    load1: opt_f(r, "load1")?,
                    load5: opt_f(r, "load5")?,
                    load15: opt_f(r, "load15")?,
                    uptime_seconds: opt_u(r, "uptime_seconds")?,
                    tasks_total: opt_u(r, "tasks_total")?,
                    samples: r.try_get("n")?,
                })
            })
            .collect()
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

    /// The mounts of the latest sample of one server, or of every server (`None`).
    pub async fn latest_disks_of(
        &self,
        server_id: Option<Uuid>,
    ) -> Result<Vec<(Uuid, DiskRow)>, StoreError> {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "select d.server_id, d.ts, d.filesystem, d.mount, d.total_bytes, d.used_bytes, d.available_bytes, d.use_percent \
             from disk_usage d join servers s on s.id = d.server_id and d.ts = s.last_sample_at",
        );
        if let Some(id) = server_id {
            q.push(" where d.server_id = ").push_bind(id.to_string());
        }
        q.push(" order by d.mount");
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let sid = server_id_of(r, "disk_usage")?;
                Ok((
                    sid,
                    DiskRow {
                        timestamp: from_ms(r.try_get("ts")?),
                        filesystem: r.try_get("filesystem")?,
                        mount: r.try_get("mount")?,
                        total_bytes: i64_to_u64(r.try_get("total_bytes")?),
                        used_bytes: i64_to_u64(r.try_get("used_bytes")?),
                        available_bytes: i64_to_u64(r.try_get("available_bytes")?),
                        use_percent: opt_f(r, "use_percent")?,
                    },
                ))
            })
            .collect()
    }

    /// The containers of the server's latest sample; `None` for every server at once.
    pub async fn latest_containers(
        &self,
        server_id: Option<Uuid>,
    ) -> Result<Vec<(Uuid, ContainerRow)>, StoreError> {
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "select c.server_id, c.ts, c.container_id, c.name, c.image, c.state, c.status_text, c.exit_code, c.health, c.category, \
             c.cpu_percent, c.mem_used_bytes, c.mem_limit_bytes, c.mem_percent, c.net_rx_bytes, c.net_tx_bytes, \
             c.block_read_bytes, c.block_write_bytes, c.pids \
             from container_metrics c join servers s on s.id = c.server_id and c.ts = s.last_sample_at",
        );
        if let Some(id) = server_id {
            q.push(" where c.server_id = ").push_bind(id.to_string());
        }
        q.push(" order by c.name");
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let sid = server_id_of(r, "container_metrics")?;
                Ok((
                    sid,
                    ContainerRow {
                        timestamp: from_ms(r.try_get("ts")?),
                        container_id: r.try_get("container_id")?,
                        name: r.try_get("name")?,
                        image: r.try_get("image")?,
                        state: r.try_get("state")?,
                        status_text: r.try_get("status_text")?,
                        exit_code: r.try_get("exit_code")?,
                        health: r.try_get("health")?,
                        category: r.try_get::<String, _>("category")?.parse().map_err(
                            |message| StoreError::Corrupt {
                                table: "container_metrics",
                                message,
                            },
                        )?,
                        cpu_percent: opt_f(r, "cpu_percent")?,
                        mem_used_bytes: i64_to_u64(r.try_get("mem_used_bytes")?),
                        mem_limit_bytes: i64_to_u64(r.try_get("mem_limit_bytes")?),
                        mem_percent: opt_f(r, "mem_percent")?,
                        net_rx_bytes: i64_to_u64(r.try_get("net_rx_bytes")?),
                        net_tx_bytes: i64_to_u64(r.try_get("net_tx_bytes")?),
                        block_read_bytes: i64_to_u64(r.try_get("block_read_bytes")?),
                        block_write_bytes: i64_to_u64(r.try_get("block_write_bytes")?),
                        pids: i64_to_u64(r.try_get("pids")?),
                    },
                ))
            })
            .collect()
    }

    /// One container's history (by name or id), averaged into at most `max_points` buckets.
    pub async fn container_history(
        &self,
        server_id: Uuid,
        container: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
    ) -> Result<Vec<ContainerPoint>, StoreError> {
        let (a, b) = (to_ms(since), to_ms(until));
        let bucket = ((b - a) / max_points.max(1)).max(1);
        let rows = sqlx::query(
            "select max(ts) as ts, count(*) as n, avg(cpu_percent) as cpu_percent, avg(mem_used_bytes) as mem_used_bytes, \
             avg(mem_limit_bytes) as mem_limit_bytes, max(net_rx_bytes) as net_rx_bytes, max(net_tx_bytes) as net_tx_bytes, \
             max(block_read_bytes) as block_read_bytes, max(block_write_bytes) as block_write_bytes, avg(pids) as pids \
             from container_metrics where server_id = ? and (name = ? or container_id = ?) and ts >= ? and ts <= ? \
             group by (ts - ?) / ? order by 1",
        )
        .bind(server_id.to_string())
        .bind(container)
        .bind(container)
        .bind(a)
        .bind(b)
        .bind(a)
        .bind(bucket)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ContainerPoint {
                    timestamp: from_ms(r.try_get("ts")?),
                    cpu_percent: opt_f(r, "cpu_percent")?,
                    mem_used_bytes: opt_u(r, "mem_used_bytes")?,
                    mem_limit_bytes: opt_u(r, "mem_limit_bytes")?,
                    net_rx_bytes: opt_u(r, "net_rx_bytes")?,
                    net_tx_bytes: opt_u(r, "net_tx_bytes")?,
                    block_read_bytes: opt_u(r, "block_read_bytes")?,
                    block_write_bytes: opt_u(r, "block_write_bytes")?,
                    pids: opt_u(r, "pids")?,
                    samples: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// True when the server has ever reported a container of this name or id.
    pub async fn container_known(
        &self,
        server_id: Uuid,
        container: &str,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from (select 1 from container_metrics where server_id = ? and (name = ? or container_id = ?) limit 1)",
        )
        .bind(server_id.to_string())
        .bind(container)
        .bind(container)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Deletes samples older than `cutoff` in chunks, so a large backlog never holds the
    /// write lock for long, and logs the run in the activity log in the last transaction.
    pub async fn apply_retention(
        &self,
        cutoff: DateTime<Utc>,
        event: impl FnOnce(RetentionCounts) -> Option<NewActivity>,
    ) -> Result<RetentionCounts, StoreError> {
        const CHUNK: i64 = 5_000;
        let c = to_ms(cutoff);
        let mut counts = RetentionCounts::default();
        for (table, slot) in [
            ("server_metrics", &mut counts.server_metrics),
            ("disk_usage", &mut counts.disk_usage),
            ("container_metrics", &mut counts.container_metrics),
        ] {
            loop {
                let done = sqlx::query(&format!(
                    "delete from {table} where id in (select id from {table} where ts < ? limit ?)"
                ))
                .bind(c)
                .bind(CHUNK)
                .execute(&self.pool)
                .await?;
                *slot += done.rows_affected();
                if done.rows_affected() < CHUNK as u64 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        if let Some(e) = event(counts) {
            self.append_activity(&[e]).await?;
        }
        Ok(counts)
    }
}
