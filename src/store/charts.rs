//! Series the dashboard draws that the API's other reads do not give: each mount's disk use
//! over time, and every shown server's CPU over the last hour for the overview's sparklines.
//! Both read the history at the tier that fits, like `metric_history`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::samples::{bands, Band, PointView};
use super::{to_ms, Store, StoreError};
use crate::history::{self, AggRow, Keep, Kind, Tier};

/// One point of one mount's (possibly averaged) use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskPoint {
    pub timestamp: DateTime<Utc>,
    pub use_percent: Option<f64>,
    pub used_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Band>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Band>,
}

/// One mount's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskSeries {
    pub mount: String,
    pub filesystem: String,
    pub points: Vec<DiskPoint>,
}

/// Every mount's history and what one point stands for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskHistory {
    pub tier: Tier,
    pub resolution_secs: i64,
    pub mounts: Vec<DiskSeries>,
}

/// One server's recent CPU: the average of each of `buckets` equal slices of the window,
/// oldest first, `None` where the slice has no sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sparkline {
    pub server_id: Uuid,
    pub cpu: Vec<Option<f64>>,
}

const DISK_FIELDS: [&str; 3] = ["use_percent", "used_bytes", "total_bytes"];

impl Store {
    /// Each mount's use between `since` and `until`, at most `max_points` per mount, mounts in
    /// path order; mounts without a point in the window are left out.
    pub async fn disk_history(
        &self,
        server_id: Uuid,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        max_points: i64,
        keep: Keep,
    ) -> Result<DiskHistory, StoreError> {
        let series = self.series_of(Kind::Mount, Some(&[server_id])).await?;
        let ids: Vec<i64> = series.iter().map(|s| s.id).collect();
        let (plan, mut points) = self
            .points(Kind::Mount, &ids, since, until, max_points, keep)
            .await?;
        let tier = plan.tier;
        let mut mounts = Vec::new();
        for s in series {
            let Some(points) = points.remove(&s.id) else {
                continue;
            };
            let points = points
                .iter()
                .map(|p| {
                    let v = PointView {
                        kind: Kind::Mount,
                        point: p,
                    };
                    let (min, max) = bands(&v, tier, &DISK_FIELDS);
                    DiskPoint {
                        timestamp: v.timestamp(),
                        use_percent: v.f("use_percent"),
                        used_bytes: v.u("used_bytes"),
                        total_bytes: v.u("total_bytes"),
                        min,
                        max,
                    }
                })
                .collect();
            mounts.push(DiskSeries {
                mount: s.name,
                filesystem: s.detail.unwrap_or_default(),
                points,
            });
        }
        mounts.sort_by(|a, b| a.mount.cmp(&b.mount));
        Ok(DiskHistory {
            tier,
            resolution_secs: plan.resolution_secs,
            mounts,
        })
    }

    /// The CPU of the given servers (or of all, `None`) between `since` and `until` in
    /// `buckets` slices each: the overview draws a sparkline per shown row.
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
        let series = self.series_of(Kind::Server, server_ids).await?;
        let ids: Vec<i64> = series.iter().map(|s| s.id).collect();
        let mut rows = self.raw_rows(&ids, a, b).await?;
        let cpu = Kind::Server.field("cpu_busy_percent").unwrap_or(0);
        let mut out = Vec::new();
        for s in series {
            let Some(rows) = rows.remove(&s.id) else {
                continue;
            };
            let rows: Vec<AggRow> = rows.iter().map(AggRow::of_sample).collect();
            let mut line = vec![None; buckets.max(1)];
            // Stamped by their rows: each slice is placed by the time of its samples.
            for p in history::bucket(&rows, Kind::Server, a, width, i64::MAX) {
                let slice = usize::try_from((p.ts - a) / width)
                    .unwrap_or(0)
                    .min(line.len() - 1);
                line[slice] = p.value[cpu];
            }
            out.push(Sparkline {
                server_id: s.server_id,
                cpu: line,
            });
        }
        Ok(out)
    }
}
