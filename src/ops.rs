//! Operator actions shared by the CLI and the API, so that both validate the same way and
//! both leave the same audit entry: add, edit, remove a server, trust its new host key.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::activity::{self, ActivityEvent};
use crate::inventory::{NewServer, Server, ServerPatch, ValidationError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Validates (including loading the key) and registers a server.
///
/// # Errors
/// Invalid field, taken name, database failure.
pub async fn add_server(store: &Store, new: NewServer, actor: &str) -> Result<Server, OpsError> {
    new.validate()?;
    let server = store.insert_server(&new, Utc::now()).await?;
    activity::record(
        store,
        ActivityEvent::ServerAdded {
            host: server.host.clone(),
            port: server.port,
            user: server.user.clone(),
            key_path: server.key_path.clone(),
            tags: server.tags.clone(),
        },
        actor,
        Some((server.id, &server.name)),
    )
    .await?;
    Ok(server)
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
    actor: &str,
) -> Result<Server, OpsError> {
    let before = store.server(id).await?;
    let after = patch.apply(&before.registration());
    if patch.touches_connection() || after.key_path != before.key_path {
        after.validate()?;
    } else {
        after.validate_syntax()?;
    }
    let reset_pin = after.host != before.host || after.port != before.port;
    let server = store
        .update_server(id, &after, reset_pin, Utc::now())
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
    if reset_pin {
        changes.insert(
            "host_key_fingerprint".into(),
            json!({ "from": before.host_key_fingerprint, "to": null }),
        );
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
pub async fn remove_server(store: &Store, id: Uuid, actor: &str) -> Result<Server, OpsError> {
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

/// Accepts the host key the server presented last (pending), or, when none is pending,
/// clears the pin so the next connect pins whatever key the host presents.
///
/// # Errors
/// Unknown server, database failure.
pub async fn trust_host_key(store: &Store, id: Uuid, actor: &str) -> Result<Server, OpsError> {
    let before = store.server(id).await?;
    let trusted = before.pending_host_key_fingerprint.clone();
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
