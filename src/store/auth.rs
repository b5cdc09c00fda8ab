//! Users, API tokens and login sessions. Only hashes of secrets reach this module.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use super::{from_ms, one_row, to_ms, Missing, Store, StoreError};
use crate::auth::Role;

/// A user as stored, without the password hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API token as stored, without its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn corrupt(table: &'static str, message: String) -> StoreError {
    StoreError::Corrupt { table, message }
}

fn read_user(r: &AnyRow) -> Result<UserRow, StoreError> {
    let id: String = r.try_get("id")?;
    let role: String = r.try_get("role")?;
    Ok(UserRow {
        id: Uuid::parse_str(&id).map_err(|e| corrupt("users", e.to_string()))?,
        name: r.try_get("name")?,
        role: role.parse().map_err(|e| corrupt("users", e))?,
        created_at: from_ms(r.try_get("created_at")?),
        updated_at: from_ms(r.try_get("updated_at")?),
    })
}

fn read_token(r: &AnyRow) -> Result<TokenRow, StoreError> {
    let id: String = r.try_get("id")?;
    let role: String = r.try_get("role")?;
    Ok(TokenRow {
        id: Uuid::parse_str(&id).map_err(|e| corrupt("api_tokens", e.to_string()))?,
        name: r.try_get("name")?,
        role: role.parse().map_err(|e| corrupt("api_tokens", e))?,
        created_by: r.try_get("created_by")?,
        created_at: from_ms(r.try_get("created_at")?),
        expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(from_ms),
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(from_ms),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_ms),
    })
}

fn unique(e: sqlx::Error, field: &'static str, value: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            field,
            value: value.to_string(),
        },
        _ => StoreError::Sqlx(e),
    }
}

const USER_COLUMNS: &str = "id, name, role, created_at, updated_at";
const TOKEN_COLUMNS: &str =
    "id, name, role, created_by, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    /// # Errors
    /// `Conflict` on a taken name.
    pub async fn insert_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<UserRow, StoreError> {
        let id = Uuid::new_v4();
        let now = to_ms(Utc::now());
        sqlx::query("insert into users (id, name, role, password_hash, created_at, updated_at) values ($1, $2, $3, $4, $5, $6)")
            .bind(id.to_string())
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| unique(e, "name", name))?;
        self.user(id).await
    }

    /// # Errors
    /// `NotFound`.
    pub async fn user(&self, id: Uuid) -> Result<UserRow, StoreError> {
        let r = sqlx::query(&format!("select {USER_COLUMNS} from users where id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound(Missing::User))?;
        read_user(&r)
    }

    /// The user and their password hash, for login.
    pub async fn user_for_login(
        &self,
        name: &str,
    ) -> Result<Option<(UserRow, String)>, StoreError> {
        let r = sqlx::query(&format!(
            "select {USER_COLUMNS}, password_hash from users where name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match r {
            Some(r) => Ok(Some((read_user(&r)?, r.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    /// # Errors
    /// `NotFound`.
    pub async fn user_by_name(&self, name: &str) -> Result<UserRow, StoreError> {
        Ok(self
            .user_for_login(name)
            .await?
            .ok_or(StoreError::NotFound(Missing::User))?
            .0)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(&format!("select {USER_COLUMNS} from users order by name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(read_user).collect()
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("select count(*) from users")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Changes role and/or password; a new password ends the user's sessions.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn update_user(
        &self,
        id: Uuid,
        role: Option<Role>,
        password_hash: Option<&str>,
    ) -> Result<UserRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "update users set role = coalesce($1, role), password_hash = coalesce($2, password_hash), updated_at = $3 where id = $4",
        )
        .bind(role.map(Role::as_str))
        .bind(password_hash)
        .bind(to_ms(Utc::now()))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        one_row(&done, Missing::User)?;
        if password_hash.is_some() || role.is_some() {
            // New credentials or powers start with a fresh login.
            sqlx::query("delete from sessions where user_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.user(id).await
    }

    /// Deletes a user and, by cascade, their sessions.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn delete_user(&self, id: Uuid) -> Result<(), StoreError> {
        let done = sqlx::query("delete from users where id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        one_row(&done, Missing::User)
    }

    pub async fn insert_session(
        &self,
        token_hash: &str,
        user: Uuid,
        expires_at: DateTime<Utc>,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("insert into sessions (token_hash, user_id, created_at, expires_at, source) values ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(user.to_string())
            .bind(to_ms(Utc::now()))
            .bind(to_ms(expires_at))
            .bind(source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user of a live session.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRow>, StoreError> {
        let r = sqlx::query(
            "select u.id, u.name, u.role, u.created_at, u.updated_at from sessions s join users u on u.id = s.user_id \
             where s.token_hash = $1 and s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(read_user).transpose()
    }

    /// Deletes sessions past their expiry (they no longer log anyone in); returns how many.
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("delete from sessions where expires_at <= $1")
            .bind(to_ms(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Ends a session; true when there was one.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("delete from sessions where token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// # Errors
    /// `Conflict` on a taken name.
    pub async fn insert_token(
        &self,
        name: &str,
        role: Role,
        token_hash: &str,
        created_by: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<TokenRow, StoreError> {
        let id = Uuid::new_v4();
        sqlx::query(
            "insert into api_tokens (id, name, role, token_hash, created_by, created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash)
        .bind(created_by)
        .bind(to_ms(Utc::now()))
        .bind(expires_at.map(to_ms))
        .execute(&self.pool)
        .await
        .map_err(|e| unique(e, "name", name))?;
        self.token(id).await
    }

    /// # Errors
    /// `NotFound`.
    pub async fn token(&self, id: Uuid) -> Result<TokenRow, StoreError> {
        let r = sqlx::query(&format!(
            "select {TOKEN_COLUMNS} from api_tokens where id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Missing::Token))?;
        read_token(&r)
    }

    /// # Errors
    /// `NotFound`.
    pub async fn token_by_name(&self, name: &str) -> Result<TokenRow, StoreError> {
        let r = sqlx::query(&format!(
            "select {TOKEN_COLUMNS} from api_tokens where name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Missing::Token))?;
        read_token(&r)
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "select {TOKEN_COLUMNS} from api_tokens order by name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_token).collect()
    }

    /// A token that is neither revoked nor expired, by the hash of its secret; records use.
    pub async fn live_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRow>, StoreError> {
        let r = sqlx::query(&format!(
            "select {TOKEN_COLUMNS} from api_tokens where token_hash = $1 and revoked_at is null \
             and (expires_at is null or expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = r else { return Ok(None) };
        let token = read_token(&r)?;
        // One write per minute per token at most: scrapers call every few seconds.
        let stale = token
            .last_used_at
            .is_none_or(|t| now - t > chrono::Duration::minutes(1));
        if stale {
            sqlx::query("update api_tokens set last_used_at = $1 where id = $2")
                .bind(to_ms(now))
                .bind(token.id.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(token))
    }

    /// # Errors
    /// `NotFound`, or `Already` when already revoked.
    pub async fn revoke_token(&self, id: Uuid) -> Result<TokenRow, StoreError> {
        let t = self.token(id).await?;
        if t.revoked_at.is_some() {
            return Err(StoreError::Already {
                what: format!("token '{}'", t.name),
                state: "revoked",
            });
        }
        sqlx::query("update api_tokens set revoked_at = $1 where id = $2")
            .bind(to_ms(Utc::now()))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        self.token(id).await
    }
}

/// Failed logins as rows, counted across API nodes sharing a PostgreSQL database (issue #14).
impl Store {
    /// Failed logins counted against `key` since `since` (every API node's).
    pub async fn login_failures_since(
        &self,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("select count(*) from login_failures where key = $1 and at > $2")
                .bind(key)
                .bind(to_ms(since))
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Records a failed login against each of `keys`, and forgets failures older than
    /// `forget_before`.
    pub async fn record_login_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("delete from login_failures where at < $1")
            .bind(to_ms(forget_before))
            .execute(&mut *tx)
            .await?;
        for key in keys {
            sqlx::query("insert into login_failures (key, at) values ($1, $2)")
                .bind(key)
                .bind(to_ms(at))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
