//! The dispatcher: every second, (a) open intents of one rule, channel and status whose
//! oldest has waited `group_wait` become one notification, and (b) due notifications are
//! attempted, several at once, each under a deadline. A 2xx marks a notification delivered
//! for good; a failure schedules the next attempt with exponential backoff and jitter, capped
//! at `retry_max` apart, until `give_up_after` from its creation, when it is marked failed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::channel;
use super::message::{group_key, Payload};
use super::send::{Attempt, Sender};
use super::NotifyError;
use crate::activity::{self, ActivityEvent, Actor};
use crate::config::Settings;
use crate::observe::Metrics;
use crate::store::notifications::{AttemptRecord, DueNotification, NewNotification};
use crate::store::{Store, StoreError};
use crate::vault::MasterKey;

/// How grouping and retries are timed. Tests shorten these; `serve` takes
/// [`Policy::from_settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long the oldest intent of a group waits for others to join it.
    pub group_wait: Duration,
    /// One attempt's deadline, connect to last byte.
    pub attempt_timeout: Duration,
    /// The wait after the first failed attempt; doubled after each further failure.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// A notification not delivered this long after its creation is given up.
    pub give_up_after: Duration,
    /// Notifications attempted at once per tick.
    pub batch: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            group_wait: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(24 * 3600),
            batch: 32,
        }
    }
}

impl Policy {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            group_wait: Duration::from_secs(s.group_wait_secs),
            ..Self::default()
        }
    }

    /// The wait after the `failures`-th failed attempt in a row: base x 2^(failures-1),
    /// +-20% jitter (so receivers that come back are not hit by every sender at once), at
    /// most `retry_max`, and at least what the receiver asked for in `Retry-After`.
    pub fn backoff(&self, failures: i64, retry_after: Option<Duration>) -> Duration {
        let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let plain = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.retry_max);
        let jitter: f64 = rand::rng().random_range(0.8..=1.2);
        let with_jitter = plain.mul_f64(jitter).min(self.retry_max);
        match retry_after {
            Some(asked) => with_jitter.max(asked.min(self.retry_max)),
            None => with_jitter,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Notifications created from intents.
    pub grouped: usize,
    pub delivered: usize,
    /// Attempts that failed and will be retried.
    pub retried: usize,
    /// Notifications given up.
    pub failed: usize,
}

/// Groups intents and delivers notifications; cheap to clone.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    store: Store,
    policy: Policy,
    sender: Sender,
    metrics: Arc<Metrics>,
}

fn ms(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Dispatcher {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(store: Store, policy: Policy, metrics: Arc<Metrics>) -> Result<Self, NotifyError> {
        Ok(Self {
            store,
            sender: Sender::new(policy.attempt_timeout)?,
            policy,
            metrics,
        })
    }

    /// Ticks every second until `cancel`. An attempt cut short by the stop is not recorded,
    /// so the next start makes it again with the same delivery id.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = every.tick() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.tick(Utc::now()) => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "Notification dispatch failed; retrying at the next tick");
                    }
                }
            }
        }
    }

    /// One round at time `now`: group what is ready, then attempt what is due.
    ///
    /// # Errors
    /// Database failure (the round stops; nothing half-done is left).
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let grouped = self.group(now).await?;
        let mut report = self.deliver_due(now).await?;
        report.grouped = grouped;
        Ok(report)
    }

    /// Turns each ready group of intents into one notification.
    ///
    /// # Errors
    /// Database failure.
    pub async fn group(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = now - ms(self.policy.group_wait);
        let mut made = 0;
        for g in self.store.ready_intent_groups(cutoff).await? {
            let alerts = self.store.intent_group_alerts(&g).await?;
            if alerts.is_empty() {
                continue;
            }
            let key = group_key(&g.rule_id, &g.status);
            let payload = Payload::for_group(&g.status, key.clone(), &alerts, now);
            let body = serde_json::to_string(&payload).unwrap_or_default();
            let n = NewNotification {
                id: Uuid::new_v4(),
                channel_id: g.channel_id.clone(),
                group_key: key,
                body,
                created_at: now,
            };
            let ids: Vec<i64> = alerts.iter().map(|a| a.intent_id).collect();
            if self.store.claim_intents(&n, &ids).await? {
                tracing::info!(notification = %n.id, group = %n.group_key, alerts = payload.alerts.len(), "Notification queued");
                made += 1;
            }
        }
        Ok(made)
    }

    /// Attempts the due notifications (up to `batch`), at once, and records each outcome.
    ///
    /// # Errors
    /// Database failure reading what is due (a failure recording one outcome is logged, and
    /// that notification is attempted again).
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let due = self.store.due_notifications(now, self.policy.batch).await?;
        let mut report = TickReport::default();
        if due.is_empty() {
            return Ok(report);
        }
        let key = MasterKey::existing(self.store.dir());
        let mut tasks = JoinSet::new();
        for n in due {
            let me = self.clone();
            let target = match &key {
                Ok(k) => channel::target(k, &n.channel).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            tasks.spawn(async move {
                let attempt = match target {
                    Ok(t) => {
                        let payload: Payload = match serde_json::from_str(&n.body) {
                            Ok(p) => p,
                            Err(e) => {
                                return me.settle(&n, corrupt(&e), now).await;
                            }
                        };
                        me.sender.send(&t, &n.id, &payload).await
                    }
                    Err(e) => Attempt {
                        delivered: false,
                        http_status: None,
                        answer: String::new(),
                        error: Some(format!("channel unusable: {e}")),
                        retry_after: None,
                    },
                };
                me.settle(&n, attempt, now).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(Outcome::Delivered)) => report.delivered += 1,
                Ok(Ok(Outcome::Retry)) => report.retried += 1,
                Ok(Ok(Outcome::GaveUp)) => report.failed += 1,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "Could not record a notification attempt; it will be made again")
                }
                Err(e) => tracing::error!(error = %e, "Notification attempt task failed"),
            }
        }
        Ok(report)
    }

    /// Records an attempt's outcome (with its activity entry) and counts it.
    async fn settle(
        &self,
        n: &DueNotification,
        a: Attempt,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let attempts = n.attempts + 1;
        let kind = n.channel.kind.clone();
        let http_status = a.http_status.map(i64::from);
        let (record, event, outcome) = if a.delivered {
            (
                AttemptRecord {
                    status: "delivered",
                    http_status,
                    error: None,
                    next_attempt_at: now,
                    delivered_at: Some(now),
                },
                Some(ActivityEvent::NotificationSent {
                    channel: n.channel.name.clone(),
                    kind: kind.clone(),
                    notification_id: n.id.clone(),
                    group_key: n.group_key.clone(),
                    attempts,
                    http_status,
                }),
                Outcome::Delivered,
            )
        } else {
            let error = a.error.clone().unwrap_or_else(|| "failed".into());
            let deadline = n.created_at + ms(self.policy.give_up_after);
            if now >= deadline {
                (
                    AttemptRecord {
                        status: "failed",
                        http_status,
                        error: Some(error.clone()),
                        next_attempt_at: now,
                        delivered_at: None,
                    },
                    Some(ActivityEvent::NotificationFailed {
                        channel: n.channel.name.clone(),
                        kind: kind.clone(),
                        notification_id: n.id.clone(),
                        group_key: n.group_key.clone(),
                        attempts,
                        last_error: error,
                    }),
                    Outcome::GaveUp,
                )
            } else {
                // The last attempt is made at the deadline, not skipped past it.
                let next = (now + ms(self.policy.backoff(attempts, a.retry_after))).min(deadline);
                tracing::warn!(notification = %n.id, channel = %n.channel.name, attempts, error = %error, next = %next, "Notification attempt failed; will retry");
                (
                    AttemptRecord {
                        status: "pending",
                        http_status,
                        error: Some(error),
                        next_attempt_at: next,
                        delivered_at: None,
                    },
                    None,
                    Outcome::Retry,
                )
            }
        };
        let entry = event
            .as_ref()
            .map(|e| activity::entry(e, &Actor::system(), None, now));
        self.store
            .record_attempt(&n.id, &record, entry.as_ref())
            .await?;
        if let Some(e) = entry {
            activity::emit(std::slice::from_ref(&e));
        }
        self.metrics.notification(&kind, outcome.label());
        Ok(outcome)
    }
}

fn corrupt(e: &serde_json::Error) -> Attempt {
    Attempt {
        delivered: false,
        http_status: None,
        answer: String::new(),
        error: Some(format!("stored body is not a notification: {e}")),
        retry_after: None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Retry,
    GaveUp,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retried",
            Self::GaveUp => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let p = Policy {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            ..Policy::default()
        };
        for _ in 0..50 {
            let first = p.backoff(1, None).as_secs_f64();
            assert!((8.0..=12.0).contains(&first), "{first}");
            let third = p.backoff(3, None).as_secs_f64();
            assert!((32.0..=48.0).contains(&third), "{third}");
            assert!(p.backoff(20, None) <= Duration::from_secs(3600));
            assert!(p.backoff(200, None) >= Duration::from_secs(2880));
        }
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(600))),
            Duration::from_secs(600),
            "Retry-After is honoured"
        );
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600),
            "but not beyond the cap"
        );
    }
}
