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
use crate::inventory::{Server, ServerStatus};
use crate::poll::PollResult;
use crate::store::{NewActivity, PollWrite, StoreError};

/// A finished poll on its way to the writer.
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
            if let Err(e) = self.write(&batch).await {
                tracing::error!(error = %e, polls = batch.len(), "Cannot store poll results");
            }
        }
    }

    /// Writes polls' outcomes and the status transitions they cause, in one transaction.
    pub(super) async fn write(&self, batch: &[Done]) -> Result<(), StoreError> {
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
            prepared.push((current.id, d.result.outcome.as_ref().ok(), update, entries));
        }
        let writes: Vec<PollWrite<'_>> = prepared
            .iter()
            .map(|(id, snapshot, update, events)| PollWrite {
                server_id: *id,
                snapshot: *snapshot,
                update,
                events,
            })
            .collect();
        let started = std::time::Instant::now();
        self.store.record_polls(&writes).await?;
        self.metrics.db_write.observe(started.elapsed());
        for (_, _, _, entries) in &prepared {
            activity::emit(entries);
        }
        let folded: Vec<NewActivity> = self
            .folding
            .closed(now)
            .iter()
            .map(|(id, name, e)| activity::entry(e, &system, Some((*id, name)), now))
            .collect();
        if !folded.is_empty() {
            self.store.append_activity(&folded).await?;
            activity::emit(&folded);
        }
        Ok(())
    }
}
