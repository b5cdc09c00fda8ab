//! Notification channels, the intents the scheduler's writer leaves, and the outbox
//! (`notifications`) that `notify` groups them into and delivers from (issue #13; schema in
//! `migrations/0006_alerts.sql`). What a channel's config means and how a body looks is
//! `notify`'s business: here they are opaque JSON and bytes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::sql::Builder;
use uuid::Uuid;

use super::{from_ms, to_ms, NewActivity, Store, StoreError};

/// A stored channel. `secret_sealed` is ciphertext under the master key; it is never
/// serialized (there is no `Serialize`: the API shapes its own view).
#[derive(Clone, PartialEq)]
pub struct ChannelRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    /// What may be shown: URLs without credentials, addresses, topics.
    pub config: serde_json::Value,
    pub secret_sealed: Option<Vec<u8>>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for ChannelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("config", &self.config)
            .field("has_secret", &self.secret_sealed.is_some())
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// Open intents of one rule, channel and status, old enough to be sent together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentGroup {
    pub rule_id: String,
    pub channel_id: String,
    /// `firing` or `resolved`.
    pub status: String,
}

/// One alert of an intent group, with what a message about it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedAlert {
    pub intent_id: i64,
    pub alert_id: String,
    pub rule_name: String,
    pub metric: String,
    pub op: String,
    pub severity: String,
    pub threshold: Option<f64>,
    pub threshold_text: Option<String>,
    pub server_id: String,
    pub server_name: String,
    pub subject: String,
    pub state: String,
    pub value: Option<f64>,
    pub value_text: Option<String>,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A notification to write, built by `notify` from a group.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub id: Uuid,
    pub channel_id: String,
    pub group_key: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A pending notification whose next attempt is due, with its channel.
#[derive(Debug, Clone)]
pub struct DueNotification {
    pub id: String,
    pub group_key: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i64,
    pub channel: ChannelRow,
}

/// What one attempt leaves on its notification.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// `pending` (retry at `next_attempt_at`), `delivered` or `failed`.
    pub status: &'static str,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A notification as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationRow {
    pub id: String,
    pub channel_id: String,
    pub channel_name: String,
    pub channel_kind: String,
    pub group_key: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub last_http_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub body: serde_json::Value,
}

/// Filters for listing notifications.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub channel_id: Option<Uuid>,
    pub status: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

const CHANNEL_COLUMNS: &str =
    "c.id, c.name, c.kind, c.config, c.secret_sealed, c.enabled, c.created_at, c.updated_at";

fn read_channel(row: &AnyRow) -> Result<ChannelRow, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "notification_channels",
        message,
    };
    let id: String = row.try_get("id")?;
    let config: String = row.try_get("config")?;
    Ok(ChannelRow {
        id: Uuid::parse_str(&id).map_err(|e| corrupt(format!("id '{id}': {e}")))?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        config: serde_json::from_str(&config).map_err(|e| corrupt(format!("config: {e}")))?,
        secret_sealed: row.try_get("secret_sealed")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
    })
}

/// A UNIQUE violation on the channel's name becomes a conflict naming it.
fn name_conflict(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            field: "name",
            value: name.to_string(),
        },
        _ => e.into(),
    }
}

impl Store {
    /// Adds a channel.
    ///
    /// # Errors
    /// `Conflict` on a taken name; database failure.
    pub async fn insert_channel(&self, c: &ChannelRow) -> Result<(), StoreError> {
        sqlx::query(
            "insert into notification_channels \
             (id, name, kind, config, secret_sealed, enabled, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(c.id.to_string())
        .bind(&c.name)
        .bind(&c.kind)
        .bind(c.config.to_string())
        .bind(c.secret_sealed.as_deref())
        .bind(i64::from(c.enabled))
        .bind(to_ms(c.created_at))
        .bind(to_ms(c.updated_at))
        .execute(&self.pool)
        .await
        .map_err(|e| name_conflict(e, &c.name))?;
        Ok(())
    }

    /// Every channel, by name.
    pub async fn channels(&self) -> Result<Vec<ChannelRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "select {CHANNEL_COLUMNS} from notification_channels c order by c.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_channel).collect()
    }

    /// One channel, `None` when there is no such id.
    pub async fn channel(&self, id: Uuid) -> Result<Option<ChannelRow>, StoreError> {
        let row = sqlx::query(&format!(
            "select {CHANNEL_COLUMNS} from notification_channels c where c.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(read_channel).transpose()
    }

    /// Saves an edited channel. A new name is written into every rule that named the old
    /// one, in the same transaction: rules refer to channels by name, and a rename must not
    /// silently leave them notifying nobody.
    ///
    /// # Errors
    /// `Conflict` on a taken name; database failure.
    pub async fn update_channel(&self, c: &ChannelRow, old_name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "update notification_channels set name = $1, config = $2, secret_sealed = $3, \
             enabled = $4, updated_at = $5 where id = $6",
        )
        .bind(&c.name)
        .bind(c.config.to_string())
        .bind(c.secret_sealed.as_deref())
        .bind(i64::from(c.enabled))
        .bind(to_ms(c.updated_at))
        .bind(c.id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| name_conflict(e, &c.name))?;
        if c.name != old_name {
            let rules: Vec<(String, String)> = sqlx::query_as(
                "select id, channels from alert_rules \
                 where exists (select 1 from json_each(alert_rules.channels) where value = $1)",
            )
            .bind(old_name)
            .fetch_all(&mut *tx)
            .await?;
            for (id, channels) in rules {
                let mut names: Vec<String> =
                    serde_json::from_str(&channels).map_err(|e| StoreError::Corrupt {
                        table: "alert_rules",
                        message: format!("channels of rule {id}: {e}"),
                    })?;
                for n in &mut names {
                    if n == old_name {
                        n.clone_from(&c.name);
                    }
                }
                sqlx::query("update alert_rules set channels = $1 where id = $2")
                    .bind(serde_json::to_string(&names).unwrap_or_else(|_| "[]".into()))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Names of the rules whose `channels` name this channel.
    pub async fn rules_naming_channel(&self, name: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select r.name from alert_rules r \
             where exists (select 1 from json_each(r.channels) where value = $1) order by r.name",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes a channel with its intents and notifications (cascade); false when absent.
    pub async fn delete_channel(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("delete from notification_channels where id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Groups of open intents (same rule, channel and status) whose oldest intent was
    /// created at or before `cutoff`: the ones to send now.
    pub async fn ready_intent_groups(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<IntentGroup>, StoreError> {
        let rows = sqlx::query(
            "select a.rule_id, i.channel_id, i.status, min(i.created_at) as oldest \
             from notification_intents i join alerts a on a.id = i.alert_id \
             where i.notification_id is null \
             group by a.rule_id, i.channel_id, i.status \
             having min(i.created_at) <= $1 order by oldest",
        )
        .bind(to_ms(cutoff))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IntentGroup {
                    rule_id: r.try_get("rule_id")?,
                    channel_id: r.try_get("channel_id")?,
                    status: r.try_get("status")?,
                })
            })
            .collect()
    }

    /// The open intents of a group with their alerts, rules and servers, by server name and
    /// subject.
    pub async fn intent_group_alerts(
        &self,
        g: &IntentGroup,
    ) -> Result<Vec<GroupedAlert>, StoreError> {
        let rows = sqlx::query(
            "select i.id as intent_id, a.id as alert_id, r.name as rule_name, r.metric, r.op, \
                    r.severity, r.threshold, r.threshold_text, s.id as server_id, \
                    s.name as server_name, a.subject, a.state, a.value, a.value_text, \
                    a.started_at, a.resolved_at \
             from notification_intents i \
             join alerts a on a.id = i.alert_id \
             join alert_rules r on r.id = a.rule_id \
             join servers s on s.id = a.server_id \
             where i.notification_id is null and a.rule_id = $1 and i.channel_id = $2 \
               and i.status = $3 \
             order by s.name, a.subject, i.id",
        )
        .bind(&g.rule_id)
        .bind(&g.channel_id)
        .bind(&g.status)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GroupedAlert {
                    intent_id: r.try_get("intent_id")?,
                    alert_id: r.try_get("alert_id")?,
                    rule_name: r.try_get("rule_name")?,
                    metric: r.try_get("metric")?,
                    op: r.try_get("op")?,
                    severity: r.try_get("severity")?,
                    threshold: r.try_get("threshold")?,
                    threshold_text: r.try_get("threshold_text")?,
                    server_id: r.try_get("server_id")?,
                    server_name: r.try_get("server_name")?,
                    subject: r.try_get("subject")?,
                    state: r.try_get("state")?,
                    value: r.try_get("value")?,
                    value_text: r.try_get("value_text")?,
                    started_at: from_ms(r.try_get("started_at")?),
                    resolved_at: r.try_get::<Option<i64>, _>("resolved_at")?.map(from_ms),
                })
            })
            .collect()
    }

    /// Writes the notification and marks the intents as grouped into it, in one
    /// transaction. False (and nothing written) when any of the intents was grouped or
    /// deleted meanwhile: the caller reads the group again at its next tick.
    ///
    /// # Errors
    /// Database failure; nothing is written then.
    pub async fn claim_intents(
        &self,
        n: &NewNotification,
        intent_ids: &[i64],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "insert into notifications (id, channel_id, group_key, status, body, created_at, \
             next_attempt_at, attempts) values ($1, $2, $3, 'pending', $4, $5, $6, 0)",
        )
        .bind(n.id.to_string())
        .bind(&n.channel_id)
        .bind(&n.group_key)
        .bind(&n.body)
        .bind(to_ms(n.created_at))
        .bind(to_ms(n.created_at))
        .execute(&mut *tx)
        .await?;
        let mut claimed = 0;
        for chunk in intent_ids.chunks(super::servers::ROWS_PER_STATEMENT) {
            let mut q = Builder::new("update notification_intents set notification_id = ");
            q.push_bind(n.id.to_string())
                .push(" where notification_id is null and id in (");
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            q.push(")");
            claimed += q.build().execute(&mut *tx).await?.rows_affected();
        }
        if claimed != intent_ids.len() as u64 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Pending notifications of enabled channels whose next attempt is due, oldest first.
    pub async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueNotification>, StoreError> {
        let rows = sqlx::query(&format!(
            "select n.id as n_id, n.group_key, n.body, n.created_at as n_created_at, n.attempts, \
                    {CHANNEL_COLUMNS} \
             from notifications n join notification_channels c on c.id = n.channel_id \
             where n.status = 'pending' and n.next_attempt_at <= $1 and c.enabled = 1 \
             order by n.next_attempt_at, n.created_at limit $2"
        ))
        .bind(to_ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueNotification {
                    id: r.try_get("n_id")?,
                    group_key: r.try_get("group_key")?,
                    body: r.try_get("body")?,
                    created_at: from_ms(r.try_get("n_created_at")?),
                    attempts: r.try_get("attempts")?,
                    channel: read_channel(r)?,
                })
            })
            .collect()
    }

    /// Stores an attempt's outcome, and the activity entry it causes (sent, given up) in the
    /// same transaction. Only a pending notification changes: a delivered one stays
    /// delivered whatever a late attempt says.
    ///
    /// # Errors
    /// Database failure; nothing is written then.
    pub async fn record_attempt(
        &self,
        id: &str,
        a: &AttemptRecord,
        entry: Option<&NewActivity>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "update notifications set status = $1, attempts = attempts + 1, \
             last_http_status = $2, last_error = $3, next_attempt_at = $4, delivered_at = $5 \
             where id = $6 and status = 'pending'",
        )
        .bind(a.status)
        .bind(a.http_status)
        .bind(a.error.as_deref())
        .bind(to_ms(a.next_attempt_at))
        .bind(a.delivered_at.map(to_ms))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(e) = entry {
            super::activity::insert_many(&mut tx, std::slice::from_ref(e)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Notifications, newest first, with the total matching the filter.
    pub async fn notifications(
        &self,
        f: &NotificationFilter,
    ) -> Result<(i64, Vec<NotificationRow>), StoreError> {
        fn filters<'a>(q: &mut Builder<'a>, f: &'a NotificationFilter) {
            q.push(" where 1 = 1");
            if let Some(c) = f.channel_id {
                q.push(" and n.channel_id = ").push_bind(c.to_string());
            }
            if let Some(s) = &f.status {
                q.push(" and n.status = ").push_bind(s.as_str());
            }
        }
        let mut count = Builder::new("select count(*) from notifications n");
        filters(&mut count, f);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = Builder::new(
            "select n.id, n.channel_id, c.name as channel_name, c.kind as channel_kind, \
             n.group_key, n.status, n.created_at, n.next_attempt_at, n.attempts, \
             n.last_http_status, n.last_error, n.delivered_at, n.body \
             from notifications n join notification_channels c on c.id = n.channel_id",
        );
        filters(&mut q, f);
        q.push(" order by n.created_at desc, n.id limit ")
            .push_bind(i64::from(f.limit))
            .push(" offset ")
            .push_bind(i64::from(f.offset));
        let rows = q.build().fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let body: String = r.try_get("body")?;
                Ok(NotificationRow {
                    id: r.try_get("id")?,
                    channel_id: r.try_get("channel_id")?,
                    channel_name: r.try_get("channel_name")?,
                    channel_kind: r.try_get("channel_kind")?,
                    group_key: r.try_get("group_key")?,
                    next_attempt_at: (status == "pending")
                        .then(|| r.try_get("next_attempt_at").map(from_ms))
                        .transpose()?,
                    status,
                    created_at: from_ms(r.try_get("created_at")?),
                    attempts: r.try_get("attempts")?,
                    last_http_status: r.try_get("last_http_status")?,
                    last_error: r.try_get("last_error")?,
                    delivered_at: r.try_get::<Option<i64>, _>("delivered_at")?.map(from_ms),
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((total, items))
    }
}
