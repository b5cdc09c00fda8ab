//! Sharing the fleet between pollers (issue #14, PostgreSQL): this process registers itself,
//! and a balancing round every third of `lease_secs` renews the hosts it holds, gives back
//! what is over its share and claims what nobody holds. The scheduler polls only the hosts
//! held here, and only while the last renewal is recent enough: a poller that loses the
//! database stops polling before its leases run out, so a host that moves is never polled by
//! two pollers at once (fencing). Clocks of the pollers and the database are assumed to agree
//! within a few seconds (NTP); the margin below absorbs that.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::observe::Metrics;
use crate::outcome::Outcome;
use crate::store::{fencing_margin, LeaseRound, Store};

/// This poller's leases as the last balancing round left them.
#[derive(Debug)]
pub struct Leases {
    me: Uuid,
    lease: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    held: HashSet<Uuid>,
    /// Hosts claimed since the scheduler last read them, each with the latest moment its
    /// previous holder may have polled it (see [`LeaseRound::fresh`]).
    fresh: HashMap<Uuid, Option<DateTime<Utc>>>,
    /// Until when polling the held hosts is safe: the start of the last successful round
    /// plus the lease, less a margin. None before the first round.
    valid_until: Option<Instant>,
    /// Bumped whenever the held set changes or hosts are claimed, so the scheduler re-reads
    /// its inventory.
    generation: u64,
    /// The loss of the database was said (once per episode).
    fenced: bool,
    /// Polls counted at the last round, for polls per minute.
    polls_seen: Option<(Instant, u64)>,
    /// The oldest live poller runs the fleet-wide work.
    leader: bool,
    /// After a loss of the database, no claims until then: the other pollers lost it too
    /// and resume their own hosts in their next rounds, which a claim of their run-out
    /// leases would have taken (moving hosts and their SSH sessions for nothing).
    claim_after: Option<Instant>,
}

impl Leases {
    pub fn new(me: Uuid, lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            me,
            lease,
            state: Mutex::new(State::default()),
        })
    }

    pub fn me(&self) -> Uuid {
        self.me
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Safety margin: a renewal is trusted for the lease less this.
    fn margin(&self) -> Duration {
        fencing_margin(self.lease)
    }

    /// Whether `id` may be polled now.
    pub fn holds(&self, id: Uuid) -> bool {
        let s = self.state();
        s.valid_until.is_some_and(|t| Instant::now() < t) && s.held.contains(&id)
    }

    /// The hosts the last successful round left here, whether or not polling them is safe
    /// now: the scheduler keeps them (and their SSH sessions) through a loss of the database,
    /// and [`Self::holds`] decides each poll.
    pub fn assigned(&self) -> HashSet<Uuid> {
        self.state().held.clone()
    }

    /// Takes the hosts claimed since the last call (see [`LeaseRound::fresh`]).
    pub fn take_fresh(&self) -> HashMap<Uuid, Option<DateTime<Utc>>> {
        std::mem::take(&mut self.state().fresh)
    }

    /// Puts back what [`Self::take_fresh`] gave when it could not be used (the inventory
    /// could not be read); a newer round's entries win.
    pub fn restore_fresh(&self, fresh: HashMap<Uuid, Option<DateTime<Utc>>>) {
        let mut s = self.state();
        for (id, at) in fresh {
            s.fresh.entry(id).or_insert(at);
        }
    }

    /// Whether this poller runs the fleet-wide work now (history upkeep, notification
    /// delivery): the oldest live poller, while its renewals are recent.
    pub fn is_leader(&self) -> bool {
        let s = self.state();
        s.leader && s.valid_until.is_some_and(|t| Instant::now() < t)
    }

    /// Changes whenever a round changed the hosts held here or claimed some.
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Balancing rounds until `cancel`, then the leases are given back (a clean stop hands
    /// the hosts to the others at once; a killed poller's run out after `lease_secs`).
    pub async fn run(
        self: Arc<Self>,
        store: Store,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) {
        let every = (self.lease / 3).max(Duration::from_millis(500));
        loop {
            self.round(&store, &metrics).await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        if let Err(e) = store.poller_stopped(self.me, Utc::now()).await {
            tracing::warn!(error = %e, "Could not give the leases back; they run out by themselves");
        }
    }

    /// One round now (also called by tests).
    pub async fn round(&self, store: &Store, metrics: &Metrics) {
        let started = Instant::now();
        let per_minute = self.polls_per_minute(metrics, started);
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        // No claims while this poller cannot tell whether the others lost the database too:
        // from a loss of its own renewals until a lease time after it got them back.
        let claim = {
            let s = self.state();
            !s.fenced
                && s.valid_until.is_none_or(|t| started < t)
                && s.claim_after.is_none_or(|t| started >= t)
        };
        match store
            .balance_leases(self.me, Utc::now(), lease_ms, per_minute, claim)
            .await
        {
            Ok(round) => self.apply(round, started, metrics),
            Err(e) => {
                let mut s = self.state();
                let lost = s.valid_until.is_some_and(|t| Instant::now() >= t);
                if lost && !s.fenced {
                    s.fenced = true;
                    s.generation += 1;
                    tracing::error!(error = %e, hosts = s.held.len(), "Leases not renewed in time: stopped polling this poller's hosts until the database answers");
                } else {
                    tracing::warn!(error = %e, "Could not renew leases; retrying");
                }
            }
        }
    }

    fn apply(&self, mut round: LeaseRound, started: Instant, metrics: &Metrics) {
        let mut s = self.state();
        if s.fenced {
            tracing::info!(
                lease_secs = self.lease.as_secs(),
                "Database back: polling again; claiming no other poller's hosts for a lease time, so that they resume theirs"
            );
            s.fenced = false;
            s.generation += 1;
            s.claim_after = Some(Instant::now() + self.lease);
        }
        if round.held != s.held || !round.fresh.is_empty() {
            s.generation += 1;
        }
        // A host claimed again before the scheduler read the last claim keeps the earlier
        // bound only if it is later (never earlier than any poll it may have had).
        for (id, at) in round.fresh.drain() {
            let entry = s.fresh.entry(id).or_insert(at);
            *entry = (*entry).max(at);
        }
        let held = &round.held;
        s.fresh.retain(|id, _| held.contains(id));
        if round.claimed > 0 || round.released > 0 {
            tracing::info!(
                held = round.held.len(),
                claimed = round.claimed,
                released = round.released,
                share = round.share,
                pollers = round.pollers,
                servers = round.servers,
                "Leases rebalanced"
            );
        }
        metrics
            .leased_hosts
            .store(round.held.len() as u64, Ordering::Relaxed);
        if round.leader != s.leader {
            tracing::info!(
                leader = round.leader,
                "Fleet-wide work (history upkeep, notifications) {}",
                if round.leader {
                    "runs here now"
                } else {
                    "runs on another poller"
                }
            );
        }
        s.leader = round.leader;
        s.held = round.held;
        s.valid_until = Some(started + self.lease.saturating_sub(self.margin()));
    }

    fn polls_per_minute(&self, metrics: &Metrics, now: Instant) -> Option<f64> {
        let total: u64 = Outcome::ALL.iter().map(|o| metrics.polls(*o)).sum();
        let mut s = self.state();
        let rate = s.polls_seen.and_then(|(at, seen)| {
            let secs = now.duration_since(at).as_secs_f64();
            (secs > 0.0).then(|| total.saturating_sub(seen) as f64 * 60.0 / secs)
        });
        s.polls_seen = Some((now, total));
        rate.map(|r| (r * 10.0).round() / 10.0)
    }
}
