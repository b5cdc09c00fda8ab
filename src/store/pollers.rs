//! Several pollers on one PostgreSQL database (issue #14): each registers itself and beats
//! a heartbeat; hosts are leased to pollers for `lease_secs` at a time, renewed by their
//! holder, and shared out evenly among the live ones.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::sql::{Builder, Real};
use super::{from_ms, to_ms, Backend, Store, StoreError};

/// Who a process is, as it registers.
#[derive(Debug, Clone)]
pub struct PollerInfo {
    pub id: Uuid,
    pub hostname: String,
    /// `all`, `poller` or `api`.
    pub role: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
}

/// A registered process, for `GET /api/pollers`.
#[derive(Debug, Clone, Serialize)]
pub struct PollerRow {
    pub id: Uuid,
    pub hostname: String,
    pub role: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Set when it stopped cleanly (its leases were given back then).
    pub stopped_at: Option<DateTime<Utc>>,
    /// A heartbeat within the lease time and no clean stop.
    pub live: bool,
    /// Hosts whose lease it holds now.
    pub leased_hosts: i64,
    pub polls_per_minute: Option<f64>,
}

/// What one balancing round left this poller with.
#[derive(Debug, Clone, Default)]
pub struct LeaseRound {
    /// The hosts it holds, each until `now + lease`.
    pub held: HashSet<Uuid>,
    /// Live pollers (this one included) and enabled servers, which make the share.
    pub pollers: u64,
    pub servers: u64,
    /// Its share: servers / pollers, rounded up.
    pub share: u64,
    pub claimed: u64,
    /// The hosts claimed in this round, each with the latest moment its previous holder may
    /// have started a poll of it (None when nobody held it): the first poll here waits one
    /// interval from that, even when that poll's result never reached the database.
    pub fresh: HashMap<Uuid, Option<DateTime<Utc>>>,
    pub released: u64,
    /// Whether this is the oldest live poller, which runs the fleet-wide work (history
    /// upkeep, notification delivery) so that it runs once.
    pub leader: bool,
}

/// A process silent this long is forgotten (its row deleted by the leading poller).
const FORGET_POLLERS_MS: i64 = 7 * 86_400_000;

/// How long before its lease runs out a poller stops polling on a renewal it could not
/// repeat (fencing): a sixth of the lease, at least 2 s, at most half. A lease that ran out
/// was polled on until its expiry less this, at the latest.
pub fn fencing_margin(lease: Duration) -> Duration {
    (lease / 6).max(Duration::from_secs(2)).min(lease / 2)
}

impl Store {
    /// Registers this process (a new id at every start).
    pub async fn register_poller(&self, p: &PollerInfo) -> Result<(), StoreError> {
        sqlx::query(
            "insert into pollers (id, hostname, role, version, started_at, heartbeat_at) \
             values ($1, $2, $3, $4, $5, $5)",
        )
        .bind(p.id.to_string())
        .bind(&p.hostname)
        .bind(&p.role)
        .bind(&p.version)
        .bind(to_ms(p.started_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A process that holds no leases (an API node) says it is alive.
    pub async fn poller_heartbeat(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        polls_per_minute: Option<f64>,
    ) -> Result<(), StoreError> {
        sqlx::query("update pollers set heartbeat_at = $1, polls_per_minute = $2 where id = $3")
            .bind(to_ms(now))
            .bind(Real(polls_per_minute))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A clean stop: gives its leases back, so the others take its hosts at once (each
    /// marked freed now: a poll cut short by the stop may have started until then).
    pub async fn poller_stopped(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "update leases set poller_id = '', expires_at = $1, freed_at = $1 where poller_id = $2",
        )
        .bind(to_ms(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("update pollers set stopped_at = $1 where id = $2")
            .bind(to_ms(now))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Processes seen within the last day, oldest first; `live_ms` is how recent a
    /// heartbeat must be to count as alive.
    pub async fn pollers(
        &self,
        now: DateTime<Utc>,
        live_ms: i64,
    ) -> Result<Vec<PollerRow>, StoreError> {
        let now_ms = to_ms(now);
        let rows = sqlx::query(
            "select p.id, p.hostname, p.role, p.version, p.started_at, p.heartbeat_at, p.stopped_at, \
             p.polls_per_minute, (select count(*) from leases l where l.poller_id = p.id \
             and l.expires_at > $1) as leased \
             from pollers p where p.heartbeat_at > $2 order by p.started_at, p.id",
        )
        .bind(now_ms)
        .bind(now_ms - 86_400_000)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let heartbeat: i64 = r.try_get("heartbeat_at")?;
                let stopped: Option<i64> = r.try_get("stopped_at")?;
                Ok(PollerRow {
                    id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt {
                        table: "pollers",
                        message: format!("id '{id}': {e}"),
                    })?,
                    hostname: r.try_get("hostname")?,
                    role: r.try_get("role")?,
                    version: r.try_get("version")?,
                    started_at: from_ms(r.try_get("started_at")?),
                    last_heartbeat: from_ms(heartbeat),
                    stopped_at: stopped.map(from_ms),
                    live: stopped.is_none() && heartbeat > now_ms - live_ms,
                    leased_hosts: r.try_get("leased")?,
                    polls_per_minute: r.try_get("polls_per_minute")?,
                })
            })
            .collect()
    }

    /// One balancing round of poller `me`, in one transaction: heartbeat, renew what it
    /// holds, give back what is over its share (servers / live pollers, rounded up), and
    /// (with `claim`) claim hosts nobody holds (or whose lease ran out) up to it.
    /// PostgreSQL's row locks (`for update skip locked`) keep two pollers from claiming one
    /// host; a lease renewed meanwhile is never taken (the claim only replaces an expired one).
    pub async fn balance_leases(
        &self,
        me: Uuid,
        now: DateTime<Utc>,
        lease_ms: i64,
        polls_per_minute: Option<f64>,
        claim: bool,
    ) -> Result<LeaseRound, StoreError> {
        let me_s = me.to_string();
        let mut tx = self.begin_write().await?;
        // Never older than the moment the transaction began: waiting for a connection (the
        // database just back) must not write leases that have already run out.
        let now_ms = to_ms(now).max(to_ms(Utc::now()));
        let until = now_ms + lease_ms;
        sqlx::query("update pollers set heartbeat_at = $1, polls_per_minute = $2 where id = $3")
            .bind(now_ms)
            .bind(Real(polls_per_minute))
            .bind(&me_s)
            .execute(&mut *tx)
            .await?;
        let pollers: i64 = sqlx::query_scalar(
            "select count(*) from pollers where role <> 'api' and stopped_at is null \
             and heartbeat_at > $1",
        )
        .bind(now_ms - lease_ms)
        .fetch_one(&mut *tx)
        .await?;
        let servers: i64 = sqlx::query_scalar("select count(*) from servers where enabled = 1")
            .fetch_one(&mut *tx)
            .await?;
        let leader: Option<String> = sqlx::query_scalar(
            "select id from pollers where role <> 'api' and stopped_at is null \
             and heartbeat_at > $1 order by started_at, id limit 1",
        )
        .bind(now_ms - lease_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if leader.as_deref() == Some(me_s.as_str()) {
            // Every start registers a new id; a week after its last heartbeat nobody asks.
            sqlx::query("delete from pollers where heartbeat_at < $1")
                .bind(now_ms - FORGET_POLLERS_MS)
                .execute(&mut *tx)
                .await?;
        }
        let pollers = pollers.max(1);
        let share = (servers + pollers - 1) / pollers;
        // A disabled server is polled by nobody.
        sqlx::query(
            "delete from leases where poller_id = $1 \
             and server_id in (select id from servers where enabled = 0)",
        )
        .bind(&me_s)
        .execute(&mut *tx)
        .await?;
        // Every lease still in its name is renewed, also one that ran out while the database
        // was away: nobody claimed it meanwhile (a claim writes the claimer's name; the row
        // lock orders a claim and this renewal), so nobody polled it, and this poller goes
        // on with its hosts and their SSH sessions instead of reshuffling the fleet.
        sqlx::query("update leases set expires_at = $1 where poller_id = $2")
            .bind(until)
            .bind(&me_s)
            .execute(&mut *tx)
            .await?;
        let mine: i64 = sqlx::query_scalar("select count(*) from leases where poller_id = $1")
            .bind(&me_s)
            .fetch_one(&mut *tx)
            .await?;
        let mut round = LeaseRound {
            pollers: u64::try_from(pollers).unwrap_or(0),
            servers: u64::try_from(servers).unwrap_or(0),
            share: u64::try_from(share).unwrap_or(0),
            leader: leader.as_deref() == Some(me_s.as_str()),
            ..LeaseRound::default()
        };
        if mine > share {
            // A host given back stays unclaimable for a third of the lease: a poll of it that
            // this poller just made is written by then, so the next holder reads its time and
            // waits an interval from it.
            let done = sqlx::query(
                "update leases set poller_id = '', expires_at = $1, freed_at = $2 where server_id in \
                 (select server_id from leases where poller_id = $3 order by server_id desc limit $4)",
            )
            .bind(now_ms + lease_ms / 3)
            .bind(now_ms)
            .bind(&me_s)
            .bind(mine - share)
            .execute(&mut *tx)
            .await?;
            round.released = done.rows_affected();
        } else if mine < share && claim {
            let lock = match self.backend {
                Backend::Postgres => " for update of s skip locked",
                // SQLite: the transaction holds the write lock already.
                Backend::Sqlite => "",
            };
            let rows = sqlx::query(&format!(
                "select s.id, l.expires_at, l.freed_at from servers s \
                 left join leases l on l.server_id = s.id \
                 where s.enabled = 1 and (l.server_id is null or l.expires_at <= $1) \
                 order by s.id limit $2{lock}"
            ))
            .bind(now_ms)
            .bind(share - mine)
            .fetch_all(&mut *tx)
            .await?;
            // Until when each host's previous holder may have polled it: when it was given
            // back, or (a lease that ran out) until its expiry less the fencing margin.
            let margin_ms = i64::try_from(
                fencing_margin(Duration::from_millis(lease_ms.max(0) as u64)).as_millis(),
            )
            .unwrap_or(0);
            let mut free: Vec<String> = Vec::with_capacity(rows.len());
            let mut bound: HashMap<String, Option<i64>> = HashMap::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get("id")?;
                let expires: Option<i64> = r.try_get("expires_at")?;
                let freed: Option<i64> = r.try_get("freed_at")?;
                bound.insert(id.clone(), freed.or(expires.map(|e| e - margin_ms)));
                free.push(id);
            }
            if !free.is_empty() {
                let mut q = Builder::new("insert into leases (server_id, poller_id, expires_at) ");
                q.push_values(&free, |mut b, id| {
                    b.push_bind(id.as_str())
                        .push_bind(me_s.as_str())
                        .push_bind(until);
                });
                q.push(
                    " on conflict (server_id) do update set poller_id = excluded.poller_id, \
                        expires_at = excluded.expires_at, freed_at = null \
                        where leases.expires_at <= ",
                );
                q.push_bind(now_ms);
                q.push(" returning server_id");
                let claimed: Vec<String> = q
                    .build_query_scalar()
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await?;
                round.claimed = claimed.len() as u64;
                round.fresh = claimed
                    .iter()
                    .filter_map(|id| {
                        let at = bound.get(id).copied().flatten().map(from_ms);
                        Uuid::parse_str(id).ok().map(|u| (u, at))
                    })
                    .collect();
            }
        }
        let held: Vec<String> =
            sqlx::query_scalar("select server_id from leases where poller_id = $1")
                .bind(&me_s)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        round.held = held
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect();
        Ok(round)
    }

    /// Of `ids`, the servers whose lease `me` holds now: a poll result for any other is
    /// not written (fencing, issue #14). On PostgreSQL the rows are share-locked until the
    /// caller's transaction ends, so a lease cannot move while the write goes in.
    pub(super) async fn leased_of(
        &self,
        tx: &mut sqlx::AnyConnection,
        me: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<HashSet<Uuid>, StoreError> {
        let mut out = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = Builder::new("select server_id from leases where poller_id = ");
            q.push_bind(me.to_string());
            q.push(" and expires_at > ");
            q.push_bind(to_ms(now));
            q.push(" and server_id in (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            list.push_unseparated(")");
            if self.backend == Backend::Postgres {
                q.push(" for share");
            }
            let rows: Vec<String> = q
                .build_query_scalar()
                .persistent(false)
                .fetch_all(&mut *tx)
                .await?;
            out.extend(rows.iter().filter_map(|s| Uuid::parse_str(s).ok()));
        }
        Ok(out)
    }
}
