//! Series the dashboard draws that the API's other reads do not give: each mount's disk use
//! over time, and every server's CPU over the last hour in one query for the overview's
//! sparklines. Downsampled in SQL like `metric_history`, so 30 days never leave the database
//! as raw rows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::samples::{opt_f, opt_u, server_id_of};
use super::{from_ms, to_ms, Store, StoreError};

/// One point of one mount's (possibly averaged) use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskPoint {
    pub timestamp: DateTime<Utc>,
    pub use_percent: Option<f64>,
    pub used_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
}

/// One mount's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskSeries {
    pub mount: String,
    pub filesystem: String,
    pub points: Vec<DiskPoint>,
}

/// One server's recent CPU: the average of each of `buckets` equal slices of the window,
/// oldest first, `None` where the slice has no sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sparkline {
    pub server_id: Uuid,
    pub cpu: Vec<Option<f64>>,
}

/// Bucket width so that `since..until` gives at most `max_points` buckets.
fn bucket_ms(since: i64, until: i64, max_points: i64) -> i64 {
    ((until - since) / max_points.max(1)).max(1)
}

impl Store {
    /// Each mount's use between `since` and `until`, at most `max_points` per mount, mounts in
    /// path order.
    pub async fn disk_history(
        &self,
        server_id: Uuid,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
    ) -> Result<Vec<DiskSeries>, StoreError> {
        let (a, b) = (to_ms(since), to_ms(until));
        let rows = sqlx::query(
            "select mount, max(filesystem) as filesystem, max(ts) as ts, avg(use_percent) as use_percent, \
             avg(used_bytes) as used_bytes, avg(total_bytes) as total_bytes \
             from disk_usage where server_id = ? and ts >= ? and ts <= ? \
             group by mount, (ts - ?) / ? order by mount, ts",
        )
        .bind(server_id.to_string())
        .bind(a)
        .bind(b)
        .bind(a)
        .bind(bucket_ms(a, b, max_points))
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<DiskSeries> = Vec::new();
        for r in &rows {
            let mount: String = r.try_get("mount")?;
            let point = DiskPoint {
                timestamp: from_ms(r.try_get("ts")?),
                use_percent: opt_f(r, "use_percent")?,
                used_bytes: opt_u(r, "used_bytes")?,
                total_bytes: opt_u(r, "total_bytes")?,
            };
            match out.last_mut() {
                Some(s) if s.mount == mount => s.points.push(point),
                _ => out.push(DiskSeries {
                    mount,
                    filesystem: r.try_get("filesystem")?,
                    points: vec![point],
                }),
            }
        }
        Ok(out)
    }

    /// The CPU of the given servers (or of all, `None`) between `since` and `until` in
    /// `buckets` slices each, in one query: the overview draws a sparkline per shown row.
    pub async fn cpu_sparklines(
        &self,
        server_ids: Option<&[Uuid]>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        buckets: usize,
    ) -> Result<Vec<Sparkline>, StoreError> {
        let (a, b) = (to_ms(since), to_ms(until));
        let n = i64::try_from(buckets.max(1)).unwrap_or(i64::MAX);
        // Rounded up, so that every sample of the window falls in a slice below `buckets`.
        let width = ((b - a + n - 1) / n).max(1);
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("select server_id, (ts - ");
        q.push_bind(a)
            .push(") / ")
            .push_bind(width)
            .push(" as slice, avg(cpu_busy_percent) as cpu from server_metrics where ts >= ")
            .push_bind(a)
            .push(" and ts <= ")
            .push_bind(b);
        if let Some(ids) = server_ids {
            q.push(" and server_id in (");
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(id.to_string());
            }
            list.push_unseparated(")");
        }
        q.push(" group by server_id, slice order by server_id, slice");
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut out: Vec<Sparkline> = Vec::new();
        for r in &rows {
            let id = server_id_of(r, "server_metrics")?;
            let slice: i64 = r.try_get("slice")?;
            let slice = usize::try_from(slice).unwrap_or(0).min(buckets.max(1) - 1);
            if out.last().is_none_or(|s| s.server_id != id) {
                out.push(Sparkline {
                    server_id: id,
                    cpu: vec![None; buckets.max(1)],
                });
            }
            if let Some(s) = out.last_mut() {
                s.cpu[slice] = opt_f(r, "cpu")?;
            }
        }
        Ok(out)
    }
}
