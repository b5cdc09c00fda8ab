//! The one writer: finished polls arrive over a channel and are stored in batches, each
//! batch one transaction with the status transitions and activity entries it causes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::transition::transition;
use super::{Scheduler, BATCH, WRITE_LINGER};
use crate::activity::{self, ActivityEvent, Actor};
use crate::alerts::eval::{evaluate, Change, Notice, PollFacts};
use crate::alerts::outage::{GroupKey, OutageChange};
use crate::alerts::{Alert, AlertRule, Metric, Observed, Silence, Threshold};
use crate::inventory::{Server, ServerStatus};
use crate::model::{thresholds_for, Snapshot, Thresholds};
use crate::notify::message::OutageItem;
use crate::notify::Payload;
use crate::poll::PollError;
use crate::poll::PollResult;
use crate::store::{AlertWrite, NewActivity, PollWrite, ServerUpdate, StoreError};

/// A finished poll on its way to the writer.
/// Poll results kept while the database does not answer, at most this many (about an
/// interval of a large fleet); past it the oldest go, counted in the log.
const KEEP_POLLS: usize = 20_000;

/// Batches the database did not take because it did not answer, oldest first.
#[derive(Default)]
struct Waiting {
    batches: std::collections::VecDeque<Vec<Done>>,
    polls: usize,
    /// Dropped for room since the database last answered.
    dropped: usize,
}

impl Waiting {
    fn keep(&mut self, batch: Vec<Done>, why: &dyn std::fmt::Display) {
        if self.batches.is_empty() {
            tracing::warn!(error = %why, keep = KEEP_POLLS, "Database not answering: keeping poll results until it does");
        }
        self.polls += batch.len();
        self.batches.push_back(batch);
        while self.polls > KEEP_POLLS {
            let Some(old) = self.batches.pop_front() else {
                break;
            };
            self.polls -= old.len();
            self.dropped += old.len();
            tracing::warn!(
                dropped = old.len(),
                dropped_since_outage = self.dropped,
                "Poll results dropped: the database has been away longer than the buffer holds"
            );
        }
    }
}

pub(super) struct Done {
    pub(super) polled: Server,
    pub(super) result: PollResult,
}

impl Scheduler {
    /// Writes finished polls in batches: after the first result, whatever arrives within
    /// the linger (see [`WRITE_LINGER`]; up to [`BATCH`]) goes into the same transaction. The cost of a write
    /// is mostly per statement, not per row, so a batch of a second's polls costs about what
    /// one poll did; polls finish spread over the interval, so without the wait most batches
    /// held a single poll. A second poll of a server already in the batch starts the next
    /// batch (each server's update is computed from its row as stored).
    pub(super) async fn writer(self: Arc<Self>, mut rx: mpsc::Receiver<Done>) {
        let linger = WRITE_LINGER.min(self.settings.poll_interval() / 60);
        let mut next: Option<Done> = None;
        let mut waiting = Waiting::default();
        loop {
            let first = match next.take() {
                Some(d) => d,
                None => match rx.recv().await {
                    Some(d) => d,
                    None => break,
                },
            };
            let deadline = Instant::now() + linger;
            let mut ids = HashSet::from([first.polled.id]);
            let mut batch = vec![first];
            while batch.len() < BATCH {
                // A closed channel (shutdown) ends the wait at once.
                let Ok(Some(d)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
                    break;
                };
                if !ids.insert(d.polled.id) {
                    next = Some(d);
                    break;
                }
                batch.push(d);
            }
            // Results kept while the database was away go first, oldest first.
            if self.flush(&mut waiting).await {
                match self.write(&batch).await {
                    Ok(()) => {}
                    Err(e) if e.is_unavailable() => waiting.keep(batch, &e),
                    Err(e) => {
                        tracing::error!(error = %e, polls = batch.len(), "Cannot store poll results");
                    }
                }
            } else {
                waiting.keep(batch, &"the database is still away");
            }
        }
        // At shutdown, one more try for what waits.
        self.flush(&mut waiting).await;
        if waiting.polls > 0 {
            tracing::error!(
                polls = waiting.polls,
                "Stopped with poll results the database never took; they are lost"
            );
        }
    }

    /// Writes the batches kept while the database was away, oldest first; true when none
    /// is left. A batch the database refuses (rather than not answering) is dropped.
    async fn flush(&self, waiting: &mut Waiting) -> bool {
        let mut written = 0;
        while let Some(old) = waiting.batches.pop_front() {
            match self.write(&old).await {
                Ok(()) => {
                    waiting.polls -= old.len();
                    written += old.len();
                }
                Err(e) if e.is_unavailable() => {
                    waiting.batches.push_front(old);
                    break;
                }
                Err(e) => {
                    waiting.polls -= old.len();
                    tracing::error!(error = %e, polls = old.len(), "Cannot store kept poll results; dropped");
                }
            }
        }
        if written > 0 {
            tracing::info!(
                polls = written,
                dropped = waiting.dropped,
                "Database back: kept poll results written"
            );
            waiting.dropped = 0;
        }
        waiting.batches.is_empty()
    }

    /// Writes polls' outcomes and the status transitions they cause, in one transaction.
    /// Writes a batch; with leases, only the results of hosts still held here (fencing).
    async fn record(&self, batch: &[PollWrite<'_>]) -> Result<(), StoreError> {
        let Some(leases) = &self.leases else {
            return self.store.record_polls(batch).await;
        };
        let refused = self.store.record_polls_leased(leases.me(), batch).await?;
        if refused > 0 {
            tracing::warn!(
                refused,
                "Poll results not written: their hosts' leases are no longer this poller's"
            );
        }
        Ok(())
    }

    pub(super) async fn write(&self, batch: &[Done]) -> Result<(), StoreError> {
        let _one_at_a_time = self.writing.lock().await;
        let now = Utc::now();
        let system = Actor::system();
        let mut prepared = Vec::with_capacity(batch.len());
        // Re-read, in one query for the batch: a server may have been edited, trusted or
        // removed while it was polled.
        let ids: Vec<Uuid> = batch.iter().map(|d| d.polled.id).collect();
        let mut rows: HashMap<Uuid, Server> = self
            .store
            .servers_by_id(&ids)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        // Rules are few and change rarely; reading them with each batch keeps every edit
        // effective at the next write without a cache to invalidate.
        let rules = self.store.alert_rules().await?;
        let overrides = self.store.threshold_overrides().await?;
        let silences: Vec<Silence> = self
            .store
            .silences(false)
            .await?
            .into_iter()
            .filter(|s| s.in_force(now))
            .collect();
        let mut open: HashMap<Uuid, Vec<Alert>> = HashMap::new();
        for a in self.store.open_alerts(&ids).await? {
            open.entry(a.server_id).or_default().push(a);
        }
        // Once a minute, one read of the inventory serves the correlator's groups and the
        // stale sweep below.
        let inventory = self.minutely_inventory(now).await;
        let outages = self.correlate(batch, inventory.as_deref(), now);
        let mut held: Vec<(Uuid, Uuid)> = Vec::new();
        for d in batch {
            let Some(current) = rows.remove(&d.polled.id) else {
                continue;
            };
            // (A pin written by an earlier poll of this server is no such change.)
            let trusted_meanwhile = d.polled.host_key_fingerprint.is_some()
                && current.host_key_fingerprint != d.polled.host_key_fingerprint;
            if trusted_meanwhile || current.host != d.polled.host || current.port != d.polled.port {
                // Polled against an outdated registration; the next poll uses the new one.
                continue;
            }
            let (update, events) = transition(
                &current,
                &d.result,
                current.docker_note.as_deref(),
                self.settings.offline_after_failures,
            );
            let in_outage = self.correlator.lock().is_ok_and(|c| c.holds(current.id));
            let thresholds = thresholds_for(
                &self.settings.thresholds,
                &overrides,
                &current.name,
                &current.tags,
            );
            let restarts = d.result.outcome.as_ref().ok().and_then(|snap| {
                self.restarts
                    .lock()
                    .ok()
                    .map(|mut t| t.observe(current.id, &snap.containers, now))
            });
            let (alert_writes, alert_events) = judge(
                (&rules, &silences, &thresholds, restarts.as_ref()),
                in_outage,
                &current,
                &update,
                d.result.outcome.as_ref().ok(),
                open.get(&current.id).map_or(&[][..], Vec::as_slice),
                now,
            );
            let events: Vec<ActivityEvent> = events.into_iter().chain(alert_events).collect();
            let who = Some((current.id, current.name.as_str()));
            let entries: Vec<NewActivity> = events
                .iter()
                .filter(|e| {
                    // A key change from a trusted key is always written at once; only a host
                    // that keeps presenting new keys while already flagged is folded.
                    let first_change = matches!(e, ActivityEvent::HostKeyChanged { .. })
                        && current.status != ServerStatus::HostKeyChanged;
                    first_change || self.folding.admit((current.id, &current.name), e, now)
                })
                .map(|e| activity::entry(e, &system, who, now))
                .collect();
            held.extend(alert_writes.iter().filter(|w| w.held).filter_map(
                |w| match &w.write.change {
                    Change::Open(a) | Change::Update(a) => Some((current.id, a.id)),
                    Change::Drop(_) => None,
                },
            ));
            let alert_writes: Vec<AlertWrite> = alert_writes.into_iter().map(|w| w.write).collect();
            prepared.push((
                current.id,
                d.result.outcome.as_ref().ok(),
                update,
                entries,
                alert_writes,
            ));
        }
        let writes: Vec<PollWrite<'_>> = prepared
            .iter()
            .map(|(id, snapshot, update, events, alerts)| PollWrite {
                server_id: *id,
                snapshot: *snapshot,
                update,
                events,
                alerts,
            })
            .collect();
        let started = std::time::Instant::now();
        self.record(&writes).await?;
        self.metrics.db_write.observe(started.elapsed());
        for (_, _, _, entries, _) in &prepared {
            activity::emit(entries);
        }
        if let Ok(mut c) = self.correlator.lock() {
            for (server, alert) in held {
                c.hold(server, alert);
            }
        }
        self.tell_outages(&rules, outages, now).await?;
        let mut folded: Vec<NewActivity> = self
            .folding
            .closed(now)
            .iter()
            .map(|(id, name, e)| activity::entry(e, &system, Some((*id, name)), now))
            .collect();
        if let Some(servers) = &inventory {
            self.sweep_stale(servers, (&rules, &silences, &overrides), now)
                .await?;
            // The end of a silence is audited within the minute; whether one is in force
            // is decided from its times at every batch.
            folded.extend(
                self.store
                    .expire_finished_silences(now)
                    .await?
                    .into_iter()
                    .map(|silence| {
                        let e = ActivityEvent::SilenceExpired {
                            silence,
                            early: false,
                        };
                        activity::entry(&e, &system, None, now)
                    }),
            );
        }
        if !folded.is_empty() {
            self.store.append_activity(&folded).await?;
            activity::emit(&folded);
        }
        Ok(())
    }
}

/// Evaluates the alert rules against one stored poll: the decisions to write (with the
/// channels to tell) and the activity entries of alerts that fired or resolved.
fn judge(
    (rules, silences, thresholds, restarts): Judging<'_>,
    in_outage: bool,
    current: &Server,
    update: &ServerUpdate,
    snapshot: Option<&Snapshot>,
    open: &[Alert],
    now: chrono::DateTime<Utc>,
) -> (Vec<Judged>, Vec<ActivityEvent>) {
    let facts = PollFacts {
        server_id: current.id,
        server_name: &current.name,
        tags: &current.tags,
        status: update.status.unwrap_or(current.status),
        snapshot,
        cpus: update
            .platform
            .as_ref()
            .or(current.platform.as_ref())
            .and_then(|p| p.cpus),
        thresholds: Some(thresholds),
        restarts,
    };
    let mut writes = Vec::new();
    let mut events = Vec::new();
    for decision in evaluate(rules, &facts, open, now) {
        let alert = match &decision.change {
            Change::Open(a) | Change::Update(a) => Some(a),
            Change::Drop(_) => None,
        };
        let rule = alert.and_then(|a| rules.iter().find(|r| r.id == a.rule_id));
        if let (Some(a), Some(r), Some(notice)) = (alert, rule, decision.notice) {
            let value = a.value.as_ref().map_or_else(|| "-".to_string(), shown);
            match notice {
                Notice::Fired => events.push(ActivityEvent::AlertFiring {
                    alert_id: a.id,
                    rule: r.name.clone(),
                    severity: r.severity,
                    metric: r.metric.as_str().to_string(),
                    subject: a.subject.clone(),
                    value,
                    threshold: match &r.threshold {
                        Threshold::Number(n) => format!("{} {n}", r.op.as_str()),
                        Threshold::Word(w) => format!("{} {w}", r.op.as_str()),
                    },
                }),
                Notice::Resolved => events.push(ActivityEvent::AlertResolved {
                    alert_id: a.id,
                    rule: r.name.clone(),
                    subject: a.subject.clone(),
                    value,
                }),
                Notice::Repeat => {}
            }
        }
        // A silenced alert still changes state and shows; it tells no one.
        let silenced = rule.is_some_and(|r| {
            silences
                .iter()
                .any(|s| s.matches(&r.name, &current.name, &current.tags))
        });
        // During an outage of its group, a server's own status alerts wait: the outage is
        // told once for all of them, and those still firing are told when it ends.
        let held = in_outage
            && decision.notice.is_some()
            && rule.is_some_and(|r| r.metric == Metric::ServerStatus);
        writes.push(Judged {
            held,
            write: AlertWrite {
                channels: match rule {
                    Some(r) if !silenced && !held => r.channels.clone(),
                    _ => Vec::new(),
                },
                change: decision.change,
                notice: decision.notice,
            },
        });
    }
    (writes, events)
}

/// What a poll is judged with: the rules, the silences in force, the server's thresholds and
/// its containers' recent restarts.
type Judging<'a> = (
    &'a [AlertRule],
    &'a [Silence],
    &'a Thresholds,
    Option<&'a HashMap<String, u32>>,
);

/// A decision with whether its notification was held for an outage.
struct Judged {
    write: AlertWrite,
    held: bool,
}

/// How often the writer reads the inventory for its once-a-minute work: the correlator's
/// groups (who is in which /24 or tag), the stale sweep, silences that ended.
const MINUTELY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Scheduler {
    /// The inventory, read at most once a minute (`None` between reads, or when the read
    /// failed: the minute's work waits for the next batch).
    async fn minutely_inventory(&self, now: chrono::DateTime<Utc>) -> Option<Vec<Server>> {
        let due = self
            .minutely
            .lock()
            .map(|mut at| {
                let due = at.is_none_or(|t| now - t >= MINUTELY);
                if due {
                    *at = Some(now);
                }
                due
            })
            .unwrap_or(false);
        if !due {
            return None;
        }
        match self.store.servers().await {
            Ok(list) => Some(list),
            Err(e) => {
                tracing::error!(error = %e, "Cannot read the inventory for correlation and the stale sweep");
                None
            }
        }
    }

    /// Feeds the batch's outcomes to the correlator (renewing its groups when the inventory
    /// was read) and returns the outages that began or ended.
    fn correlate(
        &self,
        batch: &[Done],
        inventory: Option<&[Server]>,
        now: chrono::DateTime<Utc>,
    ) -> Vec<OutageChange> {
        let Ok(mut c) = self.correlator.lock() else {
            return Vec::new();
        };
        if let Some(list) = inventory {
            c.set_inventory(
                list.iter()
                    .filter(|s| s.enabled)
                    .map(|s| (s.id, s.host.as_str(), s.tags.as_slice())),
            );
        }
        for d in batch {
            let failure = d.result.outcome.as_ref().err().map(PollError::reason);
            c.observe(d.polled.id, failure, now);
        }
        c.changes(now)
    }

    /// Judges the `server_status` rules of servers that went stale (online, but no sample for
    /// three intervals: the poller, not the host, has stopped getting through), at most once a
    /// minute: no poll of theirs arrives to do it.
    async fn sweep_stale(
        &self,
        servers: &[Server],
        (rules, silences, overrides): (
            &[AlertRule],
            &[Silence],
            &[crate::model::ThresholdOverride],
        ),
        now: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !rules
            .iter()
            .any(|r| r.enabled && r.metric == Metric::ServerStatus)
        {
            return Ok(());
        }
        // Pollers sharing the fleet: a host may be stale because no poller holds it, so the
        // sweep is fleet-wide work, done once, by the leader (unfenced writes).
        if self.leases.as_ref().is_some_and(|l| !l.is_leader()) {
            return Ok(());
        }
        let interval = self.settings.poll_interval_secs;
        let stale: Vec<&Server> = servers
            .iter()
            .filter(|s| s.effective_status(now, interval) == ServerStatus::Stale)
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = stale.iter().map(|s| s.id).collect();
        let mut open: HashMap<Uuid, Vec<Alert>> = HashMap::new();
        for a in self.store.open_alerts(&ids).await? {
            open.entry(a.server_id).or_default().push(a);
        }
        let status_rules: Vec<AlertRule> = rules
            .iter()
            .filter(|r| r.metric == Metric::ServerStatus)
            .cloned()
            .collect();
        let system = Actor::system();
        let no_update = ServerUpdate {
            status: Some(ServerStatus::Stale),
            ..Default::default()
        };
        let mut prepared = Vec::new();
        for s in &stale {
            let thresholds = thresholds_for(&self.settings.thresholds, overrides, &s.name, &s.tags);
            let (writes, events) = judge(
                (&status_rules, silences, &thresholds, None),
                false,
                s,
                &no_update,
                None,
                open.get(&s.id).map_or(&[][..], Vec::as_slice),
                now,
            );
            if writes.is_empty() {
                continue;
            }
            let entries: Vec<NewActivity> = events
                .iter()
                .map(|e| activity::entry(e, &system, Some((s.id, s.name.as_str())), now))
                .collect();
            let writes: Vec<AlertWrite> = writes.into_iter().map(|w| w.write).collect();
            prepared.push((s.id, entries, writes));
        }
        // Only the alerts and entries: the stored status stays `online`, as `stale` is derived.
        let untouched = ServerUpdate::default();
        let batch: Vec<PollWrite<'_>> = prepared
            .iter()
            .map(|(id, events, alerts)| PollWrite {
                server_id: *id,
                snapshot: None,
                update: &untouched,
                events,
                alerts,
            })
            .collect();
        if !batch.is_empty() {
            self.store.record_polls(&batch).await?;
            for (_, entries, _) in &prepared {
                activity::emit(entries);
            }
        }
        Ok(())
    }

    /// Writes each outage's start or end: its activity entry, one notification per channel of
    /// the enabled `server_status` rules, and at its end the held alerts still firing.
    async fn tell_outages(
        &self,
        rules: &[AlertRule],
        changes: Vec<OutageChange>,
        now: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut channels: Vec<String> = rules
            .iter()
            .filter(|r| r.enabled && r.metric == Metric::ServerStatus)
            .flat_map(|r| r.channels.iter().cloned())
            .collect();
        channels.sort();
        channels.dedup();
        let system = Actor::system();
        for change in changes {
            let (event, status, item, held) = match change {
                OutageChange::Started {
                    group,
                    reason,
                    failing,
                    total,
                } => {
                    let item = OutageItem {
                        group: group.describe(),
                        reason: reason.as_str().to_string(),
                        failing,
                        total,
                        started_at: now,
                        ended_at: None,
                    };
                    let event = if group == GroupKey::Fleet {
                        ActivityEvent::PollerDegraded {
                            reason: item.reason.clone(),
                            failing,
                            total,
                        }
                    } else {
                        ActivityEvent::OutageStarted {
                            group: item.group.clone(),
                            reason: item.reason.clone(),
                            failing,
                            total,
                        }
                    };
                    (event, "firing", item, Vec::new())
                }
                OutageChange::Holding { failing } => {
                    // Their own notifications, still waiting for `group_wait_secs`, now wait
                    // for the outage instead.
                    let taken = self.store.take_back_status_intents(&failing).await?;
                    if let Ok(mut c) = self.correlator.lock() {
                        for (server, alert) in taken {
                            c.hold(server, alert);
                        }
                    }
                    continue;
                }
                OutageChange::Released { held } => {
                    // Nothing to tell of the group; the alerts it held are due now.
                    self.store
                        .record_outage(&[], &[], "", "", &held, now)
                        .await?;
                    continue;
                }
                OutageChange::Ended { group, since, held } => {
                    let item = OutageItem {
                        group: group.describe(),
                        reason: String::new(),
                        failing: 0,
                        total: 0,
                        started_at: since,
                        ended_at: Some(now),
                    };
                    let event = ActivityEvent::OutageEnded {
                        group: item.group.clone(),
                        since,
                    };
                    (event, "resolved", item, held)
                }
            };
            let entry = activity::entry(&event, &system, None, now);
            let payload = Payload::outage(status, item, now);
            let body = serde_json::to_string(&payload).unwrap_or_default();
            self.store
                .record_outage(
                    std::slice::from_ref(&entry),
                    &channels,
                    &payload.group_key,
                    &body,
                    &held,
                    now,
                )
                .await?;
            activity::emit(std::slice::from_ref(&entry));
        }
        Ok(())
    }
}

/// A value as people read it: numbers to one decimal.
fn shown(v: &Observed) -> String {
    match v {
        Observed::Number(n) => format!("{:.1}", (n * 10.0).round() / 10.0),
        Observed::Word(w) => w.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ServerStatus;
    use crate::poll::PollError;

    fn batch(n: usize) -> Vec<Done> {
        (0..n)
            .map(|_| {
                let polled = super::super::transition::tests::server(ServerStatus::Online, 0);
                let result = super::super::failed(&polled, PollError::ShuttingDown);
                Done { polled, result }
            })
            .collect()
    }

    #[test]
    fn kept_results_are_bounded_and_the_oldest_go_first() {
        let mut w = Waiting::default();
        w.keep(batch(KEEP_POLLS / 2), &"down");
        let first = w.batches[0][0].polled.id;
        w.keep(batch(KEEP_POLLS / 2), &"down");
        assert_eq!(
            (w.polls, w.dropped),
            (KEEP_POLLS, 0),
            "exactly full keeps all"
        );
        w.keep(batch(10), &"down");
        assert_eq!(w.batches.len(), 2, "the oldest batch went");
        assert_eq!((w.polls, w.dropped), (KEEP_POLLS / 2 + 10, KEEP_POLLS / 2));
        assert!(w.batches.iter().flatten().all(|d| d.polled.id != first));
    }
}
