//! Actions shared by the CLI and the API, so that both validate the same way and both leave
//! the same audit entry: add, edit, remove a server, trust its new host key; create, change
//! and delete users; create and revoke API tokens.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::activity::{self, ActivityEvent, Actor};
use crate::alerts::{AlertRule, RuleInput, RulePatch, Silence, SilenceInput};
use crate::auth::{self, Role, Secret};
use crate::inventory::{NewServer, Server, ServerPatch, ValidationError};
use crate::store::{AlertRow, TokenRow, UserRow};
use crate::store::{Store, StoreError, StoredKey};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The master key for stored SSH keys is unusable.
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates (including loading the key) and registers a server.
///
/// # Errors
/// Invalid field, taken name, database failure.
pub async fn add_server(store: &Store, new: NewServer, actor: &Actor) -> Result<Server, OpsError> {
    validated(&new).await?;
    let key = seal_key(store, &new).await?;
    let server = store.insert_server(&new, &key, Utc::now()).await?;
    activity::record(
        store,
        ActivityEvent::ServerAdded {
            host: server.host.clone(),
            port: server.port,
            user: server.user.clone(),
            key_path: if server.key_path.is_empty() {
                format!(
                    "(stored key {})",
                    server.key_fingerprint.as_deref().unwrap_or("?")
                )
            } else {
                server.key_path.clone()
            },
            tags: server.tags.clone(),
        },
        actor,
        Some((server.id, &server.name)),
    )
    .await?;
    Ok(server)
}

/// What `add_server` would refuse, without saving anything: the form's check before it saves.
///
/// # Errors
/// The first invalid field, or the name being taken; a database failure.
pub async fn check_new_server(store: &Store, new: &NewServer) -> Result<(), OpsError> {
    validated(new).await?;
    name_free(store, &new.name, None).await
}

/// What `update_server` would refuse for this patch, without saving anything.
///
/// # Errors
/// No such server, the first invalid field, the name being taken; a database failure.
pub async fn check_server_update(
    store: &Store,
    id: Uuid,
    patch: &ServerPatch,
) -> Result<(), OpsError> {
    let (_, after) = patched(store, id, patch).await?;
    name_free(store, &after.name, Some(id)).await
}

/// The server as it is and as the patch would leave it, validated: the key is loaded again
/// only when the connection or the key changes.
async fn patched(
    store: &Store,
    id: Uuid,
    patch: &ServerPatch,
) -> Result<(Server, NewServer), OpsError> {
    let before = store.server(id).await?;
    let after = patch.apply(&before.registration());
    if patch.touches_connection() || after.key_path != before.key_path {
        validated(&after).await?;
    } else {
        after.validate_syntax()?;
    }
    Ok((before, after))
}

/// What the API and the dashboard may name as a server's key: a key file under
/// `api_key_dirs`, a passphrase variable starting with `api_passphrase_env_prefix`. Anything
/// else gets one answer, whether it exists or not, so the API cannot be used to learn which
/// files or variables the poller has (its own SSH host key is no client key). The CLI does
/// not ask: whoever runs it is already the poller's user.
///
/// # Errors
/// `key_path` or `key_passphrase_env` outside the policy.
pub async fn check_api_key_reference(
    settings: &crate::config::Settings,
    key_path: Option<&str>,
    passphrase_env: Option<&str>,
) -> Result<(), OpsError> {
    let prefix = settings.api_passphrase_env_prefix.as_str();
    if let Some(var) = passphrase_env.filter(|v| !v.starts_with(prefix)) {
        return Err(ValidationError::new(
            "key_passphrase_env",
            format!("'{var}' is not one of the variables this API may read: their names start with {prefix} (api_passphrase_env_prefix)"),
        )
        .into());
    }
    let Some(path) = key_path.filter(|p| !p.trim().is_empty()) else {
        return Ok(());
    };
    let dirs = settings.api_key_dirs();
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let owned = std::path::PathBuf::from(path);
    let allowed = crate::ssh::keys::off_async(move || crate::ssh::keys::under_dirs(&owned, &dirs))
        .await
        .unwrap_or(false);
    if allowed {
        return Ok(());
    }
    Err(ValidationError::new(
        "key_path",
        format!(
            "not a usable key file: through the API, key files must be under {} (api_key_dirs)",
            shown.join(", ")
        ),
    )
    .into())
}

/// Full validation, run off the async workers with a deadline: it reads the key file an
/// operator named, which may be anything (a FIFO, a device, a file on a hung mount).
async fn validated(new: &NewServer) -> Result<(), OpsError> {
    let field = if new.key_material.is_some() {
        "key"
    } else {
        "key_path"
    };
    let owned = new.clone();
    crate::ssh::keys::off_async(move || owned.validate())
        .await
        .unwrap_or_else(|| {
            Err(ValidationError::key(
                field,
                &crate::ssh::keys::KeyError::TimedOut,
            ))
        })?;
    Ok(())
}

async fn name_free(store: &Store, name: &str, except: Option<Uuid>) -> Result<(), OpsError> {
    match store.server_by_name(name).await {
        Ok(other) if Some(other.id) != except => Err(StoreError::Conflict {
            field: "name",
            value: name.to_string(),
        }
        .into()),
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Seals a key given as text under the master key (beside the database), with the
/// fingerprint of its public half; `Keep` when no key text was given.
async fn seal_key(store: &Store, new: &NewServer) -> Result<StoredKey, OpsError> {
    let Some(material) = &new.key_material else {
        return Ok(if new.key_stored && new.key_path.is_empty() {
            StoredKey::Keep
        } else {
            StoredKey::Clear
        });
    };
    let key = crate::ssh::keys::resolve(
        crate::ssh::keys::KeySource::Text(material.expose()),
        new.key_passphrase_env.as_deref(),
    )
    .map_err(|e| ValidationError::key("key", &e))?;
    let fingerprint = key
        .public_key()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string();
    let master = crate::vault::MasterKey::for_sealing(store.dir(), store.holds_sealed().await?)?;
    Ok(StoredKey::Set {
        sealed: master.seal(material.expose().as_bytes()),
        fingerprint,
    })
}

/// Applies a partial edit. A new host or port is a different machine as far as host keys go,
/// so its pin is cleared and the next connect pins afresh (and says so in the log).
///
/// # Errors
/// Unknown server, invalid field, taken name, database failure.
pub async fn update_server(
    store: &Store,
    id: Uuid,
    patch: ServerPatch,
    actor: &Actor,
) -> Result<Server, OpsError> {
    let (before, after) = patched(store, id, &patch).await?;
    let reset_pin = after.host != before.host || after.port != before.port;
    let key = seal_key(store, &after).await?;
    let server = store
        .update_server(id, &after, &key, reset_pin, Utc::now())
        .await?;
    let old = serde_json::to_value(before.registration()).unwrap_or_default();
    let new = serde_json::to_value(server.registration()).unwrap_or_default();
    let mut changes = serde_json::Map::new();
    if let (Some(o), Some(n)) = (old.as_object(), new.as_object()) {
        for (k, v) in n {
            if o.get(k) != Some(v) {
                changes.insert(k.clone(), json!({ "from": o.get(k), "to": v }));
            }
        }
    }
    if before.key_fingerprint != server.key_fingerprint {
        // The fingerprint, never the key.
        changes.insert(
            "key_fingerprint".into(),
            json!({ "from": before.key_fingerprint, "to": server.key_fingerprint }),
        );
    }
    if reset_pin {
        changes.insert(
            "host_key_fingerprint".into(),
            json!({ "from": before.host_key_fingerprint, "to": null }),
        );
    }
    // An edit that changed nothing is not an event an auditor needs (issue #18).
    if changes.is_empty() {
        return Ok(server);
    }
    activity::record(
        store,
        ActivityEvent::ServerUpdated {
            changes: changes.into(),
        },
        actor,
        Some((server.id, &server.name)),
    )
    .await?;
    Ok(server)
}

/// Removes a server and its samples; the activity log keeps its history.
///
/// # Errors
/// Unknown server, database failure.
pub async fn remove_server(store: &Store, id: Uuid, actor: &Actor) -> Result<Server, OpsError> {
    let server = store.server(id).await?;
    store.delete_server(id).await?;
    activity::record(
        store,
        ActivityEvent::ServerRemoved,
        actor,
        Some((server.id, &server.name)),
    )
    .await?;
    Ok(server)
}

/// Accepts the host key the server presented last (pending). With none pending there is
/// nothing to accept: refused, and nothing is written or audited (clearing the pin instead
/// would let the next connect pin whatever key answers).
///
/// # Errors
/// Nothing pending, unknown server, database failure.
pub async fn trust_host_key(store: &Store, id: Uuid, actor: &Actor) -> Result<Server, OpsError> {
    let before = store.server(id).await?;
    let Some(pending) = before.pending_host_key_fingerprint.clone() else {
        let pinned = before.host_key_fingerprint.as_deref().map_or_else(
            || "no key is pinned yet".to_string(),
            |fp| format!("its pinned key is {fp}"),
        );
        return Err(ValidationError::new(
            "host_key",
            format!(
                "nothing to trust: {} has presented no new host key ({pinned})",
                before.name
            ),
        )
        .into());
    };
    let trusted = Some(pending);
    let server = store
        .trust_host_key(id, trusted.as_deref(), Utc::now())
        .await?;
    activity::record(
        store,
        ActivityEvent::HostKeyTrusted {
            previous: before.host_key_fingerprint.clone(),
            trusted,
        },
        actor,
        Some((server.id, &server.name)),
    )
    .await?;
    Ok(server)
}

/// Why a user or token action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Demoting or deleting this user would leave no admin, and with it no way to manage
    /// users over the API.
    #[error("{field}: {name} is the last admin; give another user the admin role first")]
    LastAdmin { field: &'static str, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Refuses to take the admin role from `user` (`field` names what would do it) when no other
/// user has it. Two admins demoting each other at the same instant can still both pass: that
/// needs the check inside the store's transaction.
async fn keep_an_admin(
    store: &Store,
    user: &UserRow,
    field: &'static str,
) -> Result<(), AccountError> {
    if user.role != Role::Admin {
        return Ok(());
    }
    let admins = store
        .users()
        .await?
        .iter()
        .filter(|u| u.role == Role::Admin)
        .count();
    if admins <= 1 {
        return Err(AccountError::LastAdmin {
            field,
            name: user.name.clone(),
        });
    }
    Ok(())
}

fn invalid(field: &'static str, message: impl Into<String>) -> AccountError {
    AccountError::Invalid {
        field,
        message: message.into(),
    }
}

/// Creates a user with an argon2id-hashed password.
///
/// # Errors
/// Bad name or password, taken name, database failure.
pub async fn create_user(
    store: &Store,
    name: &str,
    role: Role,
    password: &str,
    actor: &Actor,
) -> Result<UserRow, AccountError> {
    auth::validate_user_name(name).map_err(|m| invalid("name", m))?;
    let hash = auth::hash_password(password).map_err(|e| invalid("password", e.to_string()))?;
    let user = store.insert_user(name, role, &hash).await?;
    activity::record(
        store,
        ActivityEvent::UserCreated {
            name: user.name.clone(),
            role: role.to_string(),
        },
        actor,
        None,
    )
    .await?;
    Ok(user)
}

/// Changes a user's role and/or password (ending their sessions).
///
/// # Errors
/// Bad password, unknown user, demoting the last admin, database failure.
pub async fn update_user(
    store: &Store,
    id: Uuid,
    role: Option<Role>,
    password: Option<&str>,
    actor: &Actor,
) -> Result<UserRow, AccountError> {
    let before = store.user(id).await?;
    if role.is_some_and(|r| r != Role::Admin) {
        keep_an_admin(store, &before, "role").await?;
    }
    let hash = password
        .map(auth::hash_password)
        .transpose()
        .map_err(|e| invalid("password", e.to_string()))?;
    let after = store.update_user(id, role, hash.as_deref()).await?;
    let mut changes = serde_json::Map::new();
    if before.role != after.role {
        changes.insert(
            "role".into(),
            json!({ "from": before.role, "to": after.role }),
        );
    }
    if password.is_some() {
        // That it changed, never what to.
        changes.insert("password".into(), json!("changed"));
    }
    activity::record(
        store,
        ActivityEvent::UserUpdated {
            name: after.name.clone(),
            changes: changes.into(),
        },
        actor,
        None,
    )
    .await?;
    Ok(after)
}

/// # Errors
/// Unknown user, the last admin, database failure.
pub async fn delete_user(store: &Store, id: Uuid, actor: &Actor) -> Result<UserRow, AccountError> {
    let user = store.user(id).await?;
    keep_an_admin(store, &user, "id").await?;
    store.delete_user(id).await?;
    activity::record(
        store,
        ActivityEvent::UserDeleted {
            name: user.name.clone(),
        },
        actor,
        None,
    )
    .await?;
    Ok(user)
}

/// Creates an API token; the secret is returned once and only its hash is stored.
///
/// # Errors
/// Bad name or lifetime, taken name, database failure.
pub async fn create_token(
    store: &Store,
    name: &str,
    role: Role,
    lifetime: Option<std::time::Duration>,
    actor: &Actor,
) -> Result<(TokenRow, Secret), AccountError> {
    auth::validate_user_name(name).map_err(|m| invalid("name", m))?;
    let expires_at = match lifetime {
        Some(d) => Some(
            Utc::now()
                + chrono::Duration::from_std(d)
                    .ok()
                    .filter(|d| *d <= chrono::Duration::days(3650))
                    .ok_or_else(|| invalid("expires", "at most 3650 days"))?,
        ),
        None => None,
    };
    let secret = auth::new_secret("fpt");
    let token = store
        .insert_token(
            name,
            role,
            &auth::secret_hash(secret.expose()),
            &actor.name,
            expires_at,
        )
        .await?;
    activity::record(
        store,
        ActivityEvent::TokenCreated {
            name: token.name.clone(),
            role: role.to_string(),
            expires_at: token.expires_at.as_ref().map(crate::text::timestamp),
        },
        actor,
        None,
    )
    .await?;
    Ok((token, secret))
}

/// # Errors
/// Unknown or already revoked token, database failure.
pub async fn revoke_token(
    store: &Store,
    id: Uuid,
    actor: &Actor,
) -> Result<TokenRow, AccountError> {
    let token = store.revoke_token(id).await?;
    activity::record(
        store,
        ActivityEvent::TokenRevoked {
            name: token.name.clone(),
        },
        actor,
        None,
    )
    .await?;
    Ok(token)
}

// Alert rules and alerts.

/// Checks that every channel a rule names exists.
async fn channels_exist(store: &Store, names: &[String]) -> Result<(), OpsError> {
    let known = store.known_channels(names).await?;
    match names.iter().find(|n| !known.contains(n)) {
        Some(n) => Err(ValidationError::new(
            "channels",
            format!("no notification channel named '{n}' (see /api/notification-channels)"),
        )
        .into()),
        None => Ok(()),
    }
}

/// Validates and stores a new rule.
///
/// # Errors
/// Invalid field, unknown channel, taken name, database failure.
pub async fn create_alert_rule(
    store: &Store,
    input: &RuleInput,
    actor: &Actor,
) -> Result<AlertRule, OpsError> {
    let rule = input.create(Uuid::new_v4(), Utc::now())?;
    channels_exist(store, &rule.channels).await?;
    store.save_alert_rule(&rule).await?;
    activity::record(
        store,
        ActivityEvent::AlertRuleCreated {
            name: rule.name.clone(),
            rule: json!(rule),
        },
        actor,
        None,
    )
    .await?;
    Ok(rule)
}

/// Applies a partial edit to a rule; its open alerts are judged by the new rule at their
/// servers' next polls.
///
/// # Errors
/// Unknown rule, invalid field, unknown channel, taken name, database failure.
pub async fn update_alert_rule(
    store: &Store,
    id: Uuid,
    patch: &RulePatch,
    actor: &Actor,
) -> Result<AlertRule, OpsError> {
    let before = store.alert_rule(id).await?;
    let after = patch.apply(&before, Utc::now())?;
    channels_exist(store, &after.channels).await?;
    store.save_alert_rule(&after).await?;
    let (old, new) = (json!(before), json!(after));
    let changes: serde_json::Map<String, serde_json::Value> = new
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| k.as_str() != "updated_at" && old.get(k.as_str()) != Some(*v))
        .map(|(k, v)| (k.clone(), json!({ "from": old.get(k.as_str()), "to": v })))
        .collect();
    activity::record(
        store,
        ActivityEvent::AlertRuleUpdated {
            name: after.name.clone(),
            changes: serde_json::Value::Object(changes),
        },
        actor,
        None,
    )
    .await?;
    Ok(after)
}

/// Deletes a rule with its alerts.
///
/// # Errors
/// Unknown rule, database failure.
pub async fn delete_alert_rule(
    store: &Store,
    id: Uuid,
    actor: &Actor,
) -> Result<AlertRule, OpsError> {
    let rule = store.alert_rule(id).await?;
    store.delete_alert_rule(id).await?;
    activity::record(
        store,
        ActivityEvent::AlertRuleDeleted {
            name: rule.name.clone(),
        },
        actor,
        None,
    )
    .await?;
    Ok(rule)
}

/// Acknowledges an open alert, with an optional comment: no repeats until it resolves.
///
/// # Errors
/// No such open alert, a comment over 1,000 characters, database failure.
pub async fn ack_alert(
    store: &Store,
    id: Uuid,
    comment: Option<&str>,
    actor: &Actor,
) -> Result<AlertRow, OpsError> {
    ack_alert_via(store, id, comment, actor, None).await
}

/// [`ack_alert`], saying in the audit entry which channel the caller used (`mcp`), when it
/// was not the CLI, the API or the dashboard.
///
/// # Errors
/// As [`ack_alert`].
pub async fn ack_alert_via(
    store: &Store,
    id: Uuid,
    comment: Option<&str>,
    actor: &Actor,
    via: Option<&'static str>,
) -> Result<AlertRow, OpsError> {
    if comment.is_some_and(|c| c.chars().count() > 1000 || c.chars().any(char::is_control)) {
        return Err(ValidationError::new("comment", "at most 1,000 printable characters").into());
    }
    store
        .ack_alert(id, &actor.name, comment, Utc::now())
        .await?;
    let row = store.alert(id).await?;
    activity::record(
        store,
        ActivityEvent::AlertAcknowledged {
            alert_id: id,
            rule: row.rule.clone(),
            subject: row.alert.subject.clone(),
            comment: comment.map(str::to_string),
            via,
        },
        actor,
        Some((row.alert.server_id, &row.server_name)),
    )
    .await?;
    Ok(row)
}

/// Validates and stores a silence.
///
/// # Errors
/// Invalid field, database failure.
pub async fn create_silence(
    store: &Store,
    input: &SilenceInput,
    actor: &Actor,
) -> Result<Silence, OpsError> {
    let silence = input.create(&actor.name, Utc::now())?;
    store.insert_silence(&silence).await?;
    activity::record(
        store,
        ActivityEvent::SilenceCreated {
            silence: silence.clone(),
        },
        actor,
        None,
    )
    .await?;
    Ok(silence)
}

/// Ends a silence now.
///
/// # Errors
/// No such silence still running or ahead, database failure.
pub async fn expire_silence(store: &Store, id: Uuid, actor: &Actor) -> Result<Silence, OpsError> {
    let silence = store.expire_silence(id, Utc::now()).await?;
    activity::record(
        store,
        ActivityEvent::SilenceExpired {
            silence: silence.clone(),
            early: true,
        },
        actor,
        None,
    )
    .await?;
    Ok(silence)
}

/// Sets the health thresholds of a tag or a server (the keys given; the others keep the
/// configured or the tag's value).
///
/// # Errors
/// A bad kind, name or key, a warning not below its critical, database failure.
pub async fn set_threshold_override(
    store: &Store,
    base: &crate::model::Thresholds,
    kind: &str,
    name: &str,
    thresholds: serde_json::Map<String, serde_json::Value>,
    actor: &Actor,
) -> Result<crate::model::ThresholdOverride, OpsError> {
    if kind != "tag" && kind != "server" {
        return Err(
            ValidationError::new("kind", format!("'{kind}' is neither tag nor server")).into(),
        );
    }
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(ValidationError::new("name", "1-64 printable characters").into());
    }
    if thresholds.is_empty() {
        return Err(ValidationError::new(
            "body",
            "give at least one threshold, e.g. disk_warning_percent",
        )
        .into());
    }
    let t = base
        .with(&thresholds)
        .map_err(|m| ValidationError::new("thresholds", m))?;
    for m in ["cpu", "memory", "disk"] {
        if t.get(m, false) >= t.get(m, true) {
            return Err(ValidationError::new(
                "thresholds",
                format!("{m}: the warning threshold must be below the critical one"),
            )
            .into());
        }
    }
    let o = crate::model::ThresholdOverride {
        kind: kind.to_string(),
        name: name.to_string(),
        thresholds,
        updated_at: Utc::now(),
    };
    store.set_threshold_override(&o).await?;
    activity::record(
        store,
        ActivityEvent::ThresholdsOverridden {
            kind: o.kind.clone(),
            name: o.name.clone(),
            thresholds: serde_json::Value::Object(o.thresholds.clone()),
        },
        actor,
        None,
    )
    .await?;
    Ok(o)
}

/// # Errors
/// No such override, database failure.
pub async fn remove_threshold_override(
    store: &Store,
    kind: &str,
    name: &str,
    actor: &Actor,
) -> Result<(), OpsError> {
    store.delete_threshold_override(kind, name).await?;
    activity::record(
        store,
        ActivityEvent::ThresholdOverrideRemoved {
            kind: kind.to_string(),
            name: name.to_string(),
        },
        actor,
        None,
    )
    .await?;
    Ok(())
}
