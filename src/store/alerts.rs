//! Alert rules and alert episodes: CRUD for rules, the open alerts of a batch's servers, the
//! decisions of an evaluation written inside the poll's own transaction (with the
//! notification intents they cause), listing and acknowledgement.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::sql::{Builder, Real};
use uuid::Uuid;

use super::activity::NewActivity;
use super::{from_ms, one_row, to_ms, Missing, Store, StoreError};
use crate::alerts::eval::{Change, Notice};
use crate::alerts::{Alert, AlertRule, AlertState, Observed, Scope, Silence, Threshold};
use crate::model::ThresholdOverride;

/// One decision of an evaluation, with the channels to tell (empty: tell no one).
#[derive(Debug, Clone)]
pub struct AlertWrite {
    pub change: Change,
    pub notice: Option<Notice>,
    pub channels: Vec<String>,
}

/// An alert as listed: the episode with its rule's and server's names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    #[serde(flatten)]
    pub alert: Alert,
    pub rule: String,
    pub severity: String,
    pub metric: String,
    pub server_name: String,
}

/// Filters for listing alerts.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub server_id: Option<Uuid>,
    pub rule_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub limit: u32,
    pub offset: u32,
}

/// Firing alerts by severity, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FiringCounts {
    pub warning: u64,
    pub critical: u64,
}

fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table: "alert_rules",
        message: message.into(),
    }
}

fn uuid(row: &AnyRow, col: &str) -> Result<Uuid, StoreError> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|e| corrupt(format!("{col} '{s}': {e}")))
}

fn read_rule(row: &AnyRow) -> Result<AlertRule, StoreError> {
    let threshold = match (
        row.try_get::<Option<f64>, _>("threshold")?,
        row.try_get::<Option<String>, _>("threshold_text")?,
    ) {
        (_, Some(w)) => Threshold::Word(w),
        (Some(n), None) => Threshold::Number(n),
        (None, None) => return Err(corrupt("a rule without a threshold")),
    };
    let json = |col: &str| -> Result<String, StoreError> { Ok(row.try_get(col)?) };
    Ok(AlertRule {
        id: uuid(row, "id")?,
        name: row.try_get("name")?,
        metric: row
            .try_get::<String, _>("metric")?
            .parse()
            .map_err(corrupt)?,
        op: row.try_get::<String, _>("op")?.parse().map_err(corrupt)?,
        threshold,
        clear_threshold: row.try_get("clear_threshold")?,
        for_secs: u64::try_from(row.try_get::<i64, _>("for_secs")?).unwrap_or(0),
        severity: row
            .try_get::<String, _>("severity")?
            .parse()
            .map_err(corrupt)?,
        scope: serde_json::from_str::<Scope>(&json("scope")?)
            .map_err(|e| corrupt(e.to_string()))?,
        mount: row.try_get("mount_glob")?,
        container: row.try_get("container_glob")?,
        channels: serde_json::from_str(&json("channels")?).map_err(|e| corrupt(e.to_string()))?,
        repeat_secs: u64::try_from(row.try_get::<i64, _>("repeat_secs")?).unwrap_or(0),
        notify_resolved: row.try_get::<i64, _>("notify_resolved")? != 0,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        follows_health: row
            .try_get::<Option<String>, _>("follows_health")?
            .map(|l| l.parse())
            .transpose()
            .map_err(corrupt)?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

fn read_alert(row: &AnyRow) -> Result<Alert, StoreError> {
    let opt_ms = |col: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(col)?.map(from_ms))
    };
    let value = match (
        row.try_get::<Option<f64>, _>("value")?,
        row.try_get::<Option<String>, _>("value_text")?,
    ) {
        (_, Some(w)) => Some(Observed::Word(w)),
        (Some(n), None) => Some(Observed::Number(n)),
        (None, None) => None,
    };
    Ok(Alert {
        id: uuid(row, "id")?,
        rule_id: uuid(row, "rule_id")?,
        server_id: uuid(row, "server_id")?,
        subject: row.try_get("subject")?,
        state: row
            .try_get::<String, _>("state")?
            .parse()
            .map_err(corrupt)?,
        value,
        started_at: from_ms(row.try_get("started_at")?),
        fired_at: opt_ms("fired_at")?,
        resolved_at: opt_ms("resolved_at")?,
        last_notified_at: opt_ms("last_notified_at")?,
        acked_at: opt_ms("acked_at")?,
        acked_by: row.try_get("acked_by")?,
        ack_comment: row.try_get("ack_comment")?,
    })
}

/// An alert with the names `ALERT_ROW_JOIN` adds.
fn read_alert_row(row: &AnyRow) -> Result<AlertRow, StoreError> {
    Ok(AlertRow {
        alert: read_alert(row)?,
        rule: row.try_get("rule_name")?,
        severity: row.try_get("severity")?,
        metric: row.try_get("metric")?,
        server_name: row.try_get("server_name")?,
    })
}

const RULE_COLUMNS: &str = "id, name, metric, op, threshold, threshold_text, clear_threshold, for_secs, severity, \
     scope, mount_glob, container_glob, channels, repeat_secs, notify_resolved, enabled, created_at, updated_at, \
     follows_health";
const ALERT_COLUMNS: &str =
    "a.id, a.rule_id, a.server_id, a.subject, a.state, a.value, a.value_text, a.started_at, \
     a.fired_at, a.resolved_at, a.last_notified_at, a.acked_at, a.acked_by, a.ack_comment";

fn numbers(t: &Threshold) -> (Option<f64>, Option<&str>) {
    match t {
        Threshold::Number(n) => (Some(*n), None),
        Threshold::Word(w) => (None, Some(w.as_str())),
    }
}

fn observed(v: &Option<Observed>) -> (Option<f64>, Option<&str>) {
    match v {
        Some(Observed::Number(n)) => (Some(*n), None),
        Some(Observed::Word(w)) => (None, Some(w.as_str())),
        None => (None, None),
    }
}

fn unique_name(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            field: "name",
            value: name.to_string(),
        },
        _ => e.into(),
    }
}

impl Store {
    /// Every rule, by name.
    pub async fn alert_rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        let rows = sqlx::query(&format!(
            "select {RULE_COLUMNS} from alert_rules order by name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_rule).collect()
    }

    /// # Errors
    /// `NotFound` when no rule has this id.
    pub async fn alert_rule(&self, id: Uuid) -> Result<AlertRule, StoreError> {
        let row = sqlx::query(&format!(
            "select {RULE_COLUMNS} from alert_rules where id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Missing::AlertRule))?;
        read_rule(&row)
    }

    /// Inserts or replaces a rule (by id).
    ///
    /// # Errors
    /// `Conflict` on a taken name.
    pub async fn save_alert_rule(&self, r: &AlertRule) -> Result<(), StoreError> {
        let (threshold, threshold_text) = numbers(&r.threshold);
        sqlx::query(
            "insert into alert_rules (id, name, metric, op, threshold, threshold_text, clear_threshold, for_secs, \
             severity, scope, mount_glob, container_glob, channels, repeat_secs, notify_resolved, enabled, created_at, updated_at, \
             follows_health) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             on conflict (id) do update set name = excluded.name, metric = excluded.metric, op = excluded.op, \
             threshold = excluded.threshold, threshold_text = excluded.threshold_text, \
             clear_threshold = excluded.clear_threshold, for_secs = excluded.for_secs, severity = excluded.severity, \
             scope = excluded.scope, mount_glob = excluded.mount_glob, container_glob = excluded.container_glob, \
             channels = excluded.channels, repeat_secs = excluded.repeat_secs, \
             notify_resolved = excluded.notify_resolved, enabled = excluded.enabled, updated_at = excluded.updated_at, \
             follows_health = excluded.follows_health",
        )
        .bind(r.id.to_string())
        .bind(&r.name)
        .bind(r.metric.as_str())
        .bind(r.op.as_str())
        .bind(Real(threshold))
        .bind(threshold_text)
        .bind(Real(r.clear_threshold))
        .bind(i64::try_from(r.for_secs).unwrap_or(i64::MAX))
        .bind(r.severity.as_str())
        .bind(serde_json::to_string(&r.scope).unwrap_or_else(|_| "{}".into()))
        .bind(&r.mount)
        .bind(&r.container)
        .bind(serde_json::to_string(&r.channels).unwrap_or_else(|_| "[]".into()))
        .bind(i64::try_from(r.repeat_secs).unwrap_or(i64::MAX))
        .bind(i64::from(r.notify_resolved))
        .bind(i64::from(r.enabled))
        .bind(to_ms(r.created_at))
        .bind(to_ms(r.updated_at))
        .bind(r.follows_health.map(|l| l.as_str()))
        .execute(&self.pool)
        .await
        .map_err(|e| unique_name(e, &r.name))?;
        Ok(())
    }

    /// Deletes a rule and, by cascade, its alerts.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn delete_alert_rule(&self, id: Uuid) -> Result<(), StoreError> {
        let done = sqlx::query("delete from alert_rules where id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        one_row(&done, Missing::AlertRule)
    }

    /// The pending and firing alerts of these servers.
    pub async fn open_alerts(&self, servers: &[Uuid]) -> Result<Vec<Alert>, StoreError> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(&servers.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query(&format!(
            "select {ALERT_COLUMNS} from alerts a where a.state != 'resolved' \
             and a.server_id in (select value from json_each($1))"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_alert).collect()
    }

    /// Alerts newest first, with their total.
    pub async fn alerts(&self, f: &AlertFilter) -> Result<(u64, Vec<AlertRow>), StoreError> {
        let filter = |q: &mut Builder<'_>| {
            q.push(" where 1 = 1");
            if let Some(s) = f.state {
                q.push(" and a.state = ").push_bind(s.as_str());
            }
            if let Some(id) = f.server_id {
                q.push(" and a.server_id = ").push_bind(id.to_string());
            }
            if let Some(id) = f.rule_id {
                q.push(" and a.rule_id = ").push_bind(id.to_string());
            }
            if let Some(t) = f.since {
                q.push(" and a.started_at >= ").push_bind(to_ms(t));
            }
        };
        let mut count = Builder::new("select count(*) from alerts a");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = Builder::new(format!(
            "select {ALERT_COLUMNS}, r.name as rule_name, r.severity, r.metric, s.name as server_name \
             from alerts a join alert_rules r on r.id = a.rule_id join servers s on s.id = a.server_id"
        ));
        filter(&mut q);
        q.push(" order by a.started_at desc, a.id limit ")
            .push_bind(i64::from(f.limit))
            .push(" offset ")
            .push_bind(i64::from(f.offset));
        let rows = q.build().fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(read_alert_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((u64::try_from(total).unwrap_or(0), items))
    }

    /// One alert with its rule's and server's names.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn alert(&self, id: Uuid) -> Result<AlertRow, StoreError> {
        let row = sqlx::query(&format!(
            "select {ALERT_COLUMNS}, r.name as rule_name, r.severity, r.metric, s.name as server_name \
             from alerts a join alert_rules r on r.id = a.rule_id join servers s on s.id = a.server_id \
             where a.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Missing::Alert))?;
        read_alert_row(&row)
    }

    /// Those of `names` that are notification channels.
    pub async fn known_channels(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "select name from notification_channels where name in (select value from json_each($1))",
        )
        .bind(serde_json::to_string(names).unwrap_or_else(|_| "[]".into()))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Acknowledges an open alert: no more repeats until it resolves.
    ///
    /// # Errors
    /// `NotFound` when no open alert has this id.
    pub async fn ack_alert(
        &self,
        id: Uuid,
        by: &str,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "update alerts set acked_at = $1, acked_by = $2, ack_comment = $3, updated_at = $4 \
             where id = $5 and state != 'resolved'",
        )
        .bind(to_ms(now))
        .bind(by)
        .bind(comment)
        .bind(to_ms(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        one_row(&done, Missing::Alert)
    }

    /// Open alerts counted by state and severity, for `/metrics`.
    pub async fn open_alert_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "select a.state, r.severity, count(*) as n from alerts a join alert_rules r on r.id = a.rule_id \
             where a.state != 'resolved' group by a.state, r.severity",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("state")?,
                    r.try_get("severity")?,
                    u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Firing alerts by severity, and per server.
    pub async fn firing_counts(
        &self,
    ) -> Result<(FiringCounts, std::collections::HashMap<Uuid, u64>), StoreError> {
        let rows = sqlx::query(
            "select a.server_id, r.severity, count(*) as n from alerts a join alert_rules r on r.id = a.rule_id \
             where a.state = 'firing' group by a.server_id, r.severity",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts = FiringCounts::default();
        let mut per_server = std::collections::HashMap::new();
        for r in &rows {
            let n = u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0);
            match r.try_get::<String, _>("severity")?.as_str() {
                "critical" => counts.critical += n,
                _ => counts.warning += n,
            }
            *per_server.entry(uuid(r, "server_id")?).or_insert(0) += n;
        }
        Ok((counts, per_server))
    }
}

fn read_silence(row: &AnyRow) -> Result<Silence, StoreError> {
    Ok(Silence {
        id: uuid(row, "id")?,
        rule: row.try_get("rule")?,
        server: row.try_get("server")?,
        tag: row.try_get("tag")?,
        starts_at: from_ms(row.try_get("starts_at")?),
        ends_at: from_ms(row.try_get("ends_at")?),
        comment: row.try_get("comment")?,
        created_by: row.try_get("created_by")?,
        created_at: from_ms(row.try_get("created_at")?),
        expired_at: row.try_get::<Option<i64>, _>("expired_at")?.map(from_ms),
    })
}

const SILENCE_COLUMNS: &str =
    "id, rule, server, tag, starts_at, ends_at, comment, created_by, created_at, expired_at";

impl Store {
    pub async fn insert_silence(&self, s: &Silence) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "insert into silences ({SILENCE_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(s.id.to_string())
        .bind(&s.rule)
        .bind(&s.server)
        .bind(&s.tag)
        .bind(to_ms(s.starts_at))
        .bind(to_ms(s.ends_at))
        .bind(&s.comment)
        .bind(&s.created_by)
        .bind(to_ms(s.created_at))
        .bind(s.expired_at.map(to_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Silences not yet over (in force or ahead), or all of them, newest first.
    pub async fn silences(&self, include_over: bool) -> Result<Vec<Silence>, StoreError> {
        let sql = if include_over {
            format!("select {SILENCE_COLUMNS} from silences order by created_at desc limit 1000")
        } else {
            format!(
                "select {SILENCE_COLUMNS} from silences where expired_at is null order by starts_at"
            )
        };
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(read_silence).collect()
    }

    /// Ends a silence now.
    ///
    /// # Errors
    /// `NotFound` when no silence with this id is still running or ahead.
    pub async fn expire_silence(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Silence, StoreError> {
        let row = sqlx::query(&format!(
            "update silences set expired_at = $1 where id = $2 and expired_at is null returning {SILENCE_COLUMNS}"
        ))
        .bind(to_ms(now))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Missing::Silence))?;
        read_silence(&row)
    }

    /// Marks the silences whose end has passed, and returns them (once each).
    pub async fn expire_finished_silences(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Silence>, StoreError> {
        let rows = sqlx::query(&format!(
            "update silences set expired_at = ends_at where expired_at is null and ends_at <= $1 \
             returning {SILENCE_COLUMNS}"
        ))
        .bind(to_ms(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_silence).collect()
    }
}

impl Store {
    /// Deletes the not yet grouped notification intents of these servers' `server_status`
    /// alerts, returning (server, alert) of each alert taken back: an outage tells them.
    pub async fn take_back_status_intents(
        &self,
        servers: &[Uuid],
    ) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(&servers.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        let rows = sqlx::query(
            "delete from notification_intents where notification_id is null and alert_id in \
             (select a.id from alerts a join alert_rules r on r.id = a.rule_id \
              where r.metric = 'server_status' and a.server_id in (select value from json_each($1))) \
             returning alert_id, (select server_id from alerts where alerts.id = alert_id) as server_id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<(Uuid, Uuid)> = rows
            .iter()
            .map(|r| Ok((uuid(r, "server_id")?, uuid(r, "alert_id")?)))
            .collect::<Result<_, StoreError>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Writes an outage's start or end in one transaction: its activity entries, one
    /// notification per enabled channel named (the outbox delivers them), and, at its end, the
    /// intents of held alerts that are still firing (told now).
    pub async fn record_outage(
        &self,
        entries: &[NewActivity],
        channels: &[String],
        group_key: &str,
        body: &str,
        held: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        super::activity::insert_many(&mut tx, entries).await?;
        let names = serde_json::to_string(channels).unwrap_or_else(|_| "[]".into());
        let ids: Vec<String> = sqlx::query_scalar(
            "select id from notification_channels where enabled = 1 \
             and name in (select value from json_each($1))",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
        for channel in ids {
            sqlx::query(
                "insert into notifications (id, channel_id, group_key, status, body, created_at, \
                 next_attempt_at, attempts) values ($1, $2, $3, 'pending', $4, $5, $6, 0)",
            )
            .bind(Uuid::new_v4().to_string())
            .bind(channel)
            .bind(group_key)
            .bind(body)
            .bind(to_ms(now))
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
        }
        if !held.is_empty() {
            let held = serde_json::to_string(&held.iter().map(Uuid::to_string).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "insert into notification_intents (alert_id, channel_id, status, created_at) \
                 select a.id, c.id, 'firing', $1 from alerts a \
                 join alert_rules r on r.id = a.rule_id \
                 join notification_channels c on c.enabled = 1 \
                   and c.name in (select value from json_each(r.channels)) \
                 where a.state = 'firing' and a.id in (select value from json_each($2))",
            )
            .bind(to_ms(now))
            .bind(held)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    pub async fn threshold_overrides(&self) -> Result<Vec<ThresholdOverride>, StoreError> {
        let rows = sqlx::query(
            "select kind, name, thresholds, updated_at from threshold_overrides order by kind, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("thresholds")?;
                Ok(ThresholdOverride {
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    thresholds: serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                        table: "threshold_overrides",
                        message: e.to_string(),
                    })?,
                    updated_at: from_ms(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    pub async fn set_threshold_override(&self, o: &ThresholdOverride) -> Result<(), StoreError> {
        sqlx::query(
            "insert into threshold_overrides (kind, name, thresholds, updated_at) values ($1, $2, $3, $4) \
             on conflict (kind, name) do update set thresholds = excluded.thresholds, updated_at = excluded.updated_at",
        )
        .bind(&o.kind)
        .bind(&o.name)
        .bind(serde_json::Value::Object(o.thresholds.clone()).to_string())
        .bind(to_ms(o.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// # Errors
    /// `NotFound` when there is no such override.
    pub async fn delete_threshold_override(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("delete from threshold_overrides where kind = $1 and name = $2")
            .bind(kind)
            .bind(name)
            .execute(&self.pool)
            .await?;
        one_row(&done, Missing::ThresholdOverride)
    }
}

/// Writes a batch's alert decisions and their notification intents, inside its transaction.
pub(super) async fn write_alerts(
    tx: &mut sqlx::AnyConnection,
    writes: &[&AlertWrite],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for w in writes {
        let alert = match &w.change {
            Change::Drop(id) => {
                sqlx::query("delete from alerts where id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            Change::Open(a) | Change::Update(a) => a,
        };
        let (value, value_text) = observed(&alert.value);
        let opt = |t: Option<DateTime<Utc>>| t.map(to_ms);
        sqlx::query(
            "insert into alerts (id, rule_id, server_id, subject, state, value, value_text, started_at, fired_at, \
             resolved_at, last_notified_at, acked_at, acked_by, ack_comment, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             on conflict (id) do update set state = excluded.state, value = excluded.value, \
             value_text = excluded.value_text, fired_at = excluded.fired_at, resolved_at = excluded.resolved_at, \
             last_notified_at = excluded.last_notified_at, updated_at = excluded.updated_at",
        )
        .bind(alert.id.to_string())
        .bind(alert.rule_id.to_string())
        .bind(alert.server_id.to_string())
        .bind(&alert.subject)
        .bind(alert.state.as_str())
        .bind(Real(value))
        .bind(value_text)
        .bind(to_ms(alert.started_at))
        .bind(opt(alert.fired_at))
        .bind(opt(alert.resolved_at))
        .bind(opt(alert.last_notified_at))
        .bind(opt(alert.acked_at))
        .bind(&alert.acked_by)
        .bind(&alert.ack_comment)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let Some(notice) = w.notice else { continue };
        if w.channels.is_empty() {
            continue;
        }
        let status = match notice {
            Notice::Fired | Notice::Repeat => "firing",
            Notice::Resolved => "resolved",
        };
        sqlx::query(
            "insert into notification_intents (alert_id, channel_id, status, created_at) \
             select $1, c.id, $2, $3 from notification_channels c \
             where c.enabled = 1 and c.name in (select value from json_each($4))",
        )
        .bind(alert.id.to_string())
        .bind(status)
        .bind(to_ms(now))
        .bind(serde_json::to_string(&w.channels).unwrap_or_else(|_| "[]".into()))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
