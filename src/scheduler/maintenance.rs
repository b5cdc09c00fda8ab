//! History upkeep, beside the poll loop rather than in it (a catch-up after days of
//! downtime must not hold up a poll): compaction of each closed hour with its rollups,
//! retention per tier, the size cap, and expired login sessions. The store does the work
//! in short transactions; this decides when, and logs what was removed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::activity::{self, ActivityEvent, Actor, Cleanup};
use crate::config::Settings;
use crate::history::{period_start, Tier, DAY_MS, HOUR_MS};
use crate::store::{Cutoffs, RetentionCounts, Store, StoreError};

/// How often the task wakes to see whether an hour has closed.
const WAKE: Duration = Duration::from_secs(30);
/// Between two compaction steps: room for the writer to take the lock.
const STEP_PAUSE: Duration = Duration::from_millis(5);
/// Size-cap rounds per run: each removes one more day of the oldest tier.
const MAX_CAP_ROUNDS: usize = 1000;

/// The upkeep task.
pub struct Maintenance {
    store: Store,
    settings: Arc<Settings>,
}

impl Maintenance {
    pub fn new(store: Store, settings: Arc<Settings>) -> Self {
        Self { store, settings }
    }

    /// A sample is compacted once its hour ended this long ago: a poll that started before
    /// the hour ended may still be writing.
    fn grace_ms(&self) -> i64 {
        let interval = i64::try_from(self.settings.poll_interval_secs).unwrap_or(86_400);
        (2 * interval + 60) * 1000
    }

    /// The hour before which every sample is compacted at `now`.
    pub fn boundary(&self, now: DateTime<Utc>) -> i64 {
        period_start(now.timestamp_millis() - self.grace_ms(), HOUR_MS)
    }

    /// Compacts every hour closed at `now` (what `run` does whenever an hour closes).
    ///
    /// # Errors
    /// Database failure.
    pub async fn compact_now(&self) -> Result<crate::store::CompactCounts, StoreError> {
        self.store
            .compact(self.boundary(Utc::now()), STEP_PAUSE)
            .await
    }

    /// Until `cancel`: compaction whenever an hour has closed (and at start, which catches
    /// up after downtime), retention and the cap every `retention_check_secs`.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut compacted_to = i64::MIN;
        let mut next_retention = tokio::time::Instant::now();
        loop {
            // PostgreSQL: the coming days' history partitions exist before their rows come.
            let now_ms = Utc::now().timestamp_millis();
            if let Err(e) = self
                .store
                .prepare_partitions(now_ms - DAY_MS, now_ms + 2 * DAY_MS)
                .await
            {
                tracing::error!(error = %e, "Cannot make the next history partitions; rows go to the default ones");
            }
            let boundary = self.boundary(Utc::now());
            if boundary > compacted_to {
                match self.store.compact(boundary, STEP_PAUSE).await {
                    Ok(c) => {
                        compacted_to = boundary;
                        tracing::debug!(
                            hours = c.hours,
                            samples = c.samples,
                            "Compacted closed hours"
                        );
                    }
                    Err(e) => tracing::error!(error = %e, "Compaction failed; retrying later"),
                }
            }
            if tokio::time::Instant::now() >= next_retention {
                next_retention = tokio::time::Instant::now()
                    + Duration::from_secs(self.settings.retention_check_secs);
                if let Err(e) = self.retention().await {
                    tracing::error!(error = %e, "Retention run failed");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(WAKE) => {}
            }
        }
    }

    /// Each tier's cutoff at `now`.
    fn cutoffs(&self, now: DateTime<Utc>) -> Cutoffs {
        let keep = self.settings.keep();
        let t = now.timestamp_millis();
        Cutoffs {
            raw: t - keep.raw_ms,
            hourly: t - keep.hourly_ms,
            daily: t - keep.daily_ms,
        }
    }

    /// Removes history past each tier's age, then enforces the size cap, logging each
    /// cleanup that removed something; drops expired login sessions.
    ///
    /// # Errors
    /// Database failure.
    pub async fn retention(&self) -> Result<(), StoreError> {
        let now = Utc::now();
        let cut = self.cutoffs(now);
        let counts = self.store.apply_retention(cut).await?;
        let s = &self.settings;
        self.log(
            counts,
            Cleanup::Age {
                raw_days: s.retention_days,
                hourly_days: s.rollup_hourly_days,
                daily_days: s.rollup_daily_days,
            },
        )
        .await?;
        self.enforce_cap(now, cut).await?;
        // Expired login sessions hold nothing but a hash; drop them with the samples.
        self.store.delete_expired_sessions(now).await?;
        Ok(())
    }

    /// Over `max_db_size_mb`, removes a day at a time of the oldest raw history (never the
    /// last closed hour), then of the oldest hourly (never the last day).
    async fn enforce_cap(&self, now: DateTime<Utc>, mut cut: Cutoffs) -> Result<(), StoreError> {
        let cap_mb = self.settings.max_db_size_mb;
        if cap_mb == 0 {
            return Ok(());
        }
        let cap = cap_mb.saturating_mul(1024 * 1024);
        let t = now.timestamp_millis();
        for _ in 0..MAX_CAP_ROUNDS {
            if self.store.used_bytes().await? <= cap {
                return Ok(());
            }
            let raw_floor = period_start(t, HOUR_MS) - HOUR_MS;
            let hourly_floor = period_start(t, DAY_MS) - DAY_MS;
            let (tier, before) = match self.store.oldest(Tier::Raw).await? {
                Some(o) if o + HOUR_MS <= raw_floor => {
                    (Tier::Raw, (period_start(o, DAY_MS) + DAY_MS).min(raw_floor))
                }
                _ => match self.store.oldest(Tier::Hourly).await? {
                    Some(o) if o + DAY_MS <= hourly_floor => {
                        (Tier::Hourly, (o + DAY_MS).min(hourly_floor))
                    }
                    _ => {
                        tracing::warn!(
                            max_db_size_mb = cap_mb,
                            "The database is over its size cap with only the last hour of samples \
                             and the last day of hourly rollups left; raise max_db_size_mb"
                        );
                        return Ok(());
                    }
                },
            };
            match tier {
                Tier::Raw => cut.raw = cut.raw.max(before),
                _ => cut.hourly = cut.hourly.max(before),
            }
            let counts = self.store.apply_retention(cut).await?;
            self.log(
                counts,
                Cleanup::SizeCap {
                    max_db_size_mb: cap_mb,
                    tier,
                    before: DateTime::from_timestamp_millis(before).unwrap_or_default(),
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn log(&self, counts: RetentionCounts, why: Cleanup) -> Result<(), StoreError> {
        if counts.total() == 0 {
            return Ok(());
        }
        let e = activity::entry(
            &ActivityEvent::RetentionCleanup { counts, why },
            &Actor::system(),
            None,
            Utc::now(),
        );
        self.store.append_activity(std::slice::from_ref(&e)).await?;
        activity::emit(&[e]);
        Ok(())
    }
}
