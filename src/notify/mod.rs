//! Telling people (issue #13, "Delivery"): notification channels, and the dispatcher that
//! turns the intents the scheduler's writer leaves in the database into grouped
//! notifications (the outbox) and delivers them with retries.
//!
//! Everything that must survive a restart lives in the tables: an intent is written in the
//! same transaction as the alert's change, a notification in the same transaction that marks
//! its intents, an attempt's outcome after the attempt. A process stopped or killed at any
//! point loses nothing; at worst an attempt whose answer was not yet recorded is made again,
//! with the same delivery id, which receivers de-duplicate on.
//!
//! Uses the store, the vault (sealed channel secrets), activity and the alert vocabulary;
//! never the poller, the scheduler or the API.

pub mod channel;
mod dispatch;
pub mod message;
mod send;

pub use channel::{ChannelInput, ChannelKind, ChannelView, Target};
pub use dispatch::{Dispatcher, Policy, TickReport};
pub use message::Payload;
pub use send::{Attempt, Sender};

use crate::inventory::ValidationError;
use crate::store::{Store, StoreError};
use crate::vault::VaultError;

/// What a channel action or a delivery can run into.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A field of a channel is missing or wrong; names it.
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(#[from] ValidationError),
    /// No channel with that id.
    #[error("no such notification channel")]
    NotFound,
    /// Deleting a channel that rules still name.
    #[error("the channel is named by alert rules: {}", rules.join(", "))]
    InUse { rules: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The master key is missing or does not open a channel's secret.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The HTTP client could not be built (TLS backend).
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Sends a test message to a channel now, outside the outbox, and says what the receiver
/// answered.
///
/// # Errors
/// No such channel, its secret cannot be opened, or the client cannot be built. A receiver
/// that fails is not an error: the attempt says so.
pub async fn test_channel(
    store: &Store,
    id: uuid::Uuid,
    timeout: std::time::Duration,
) -> Result<Attempt, NotifyError> {
    let row = store.channel(id).await?.ok_or(NotifyError::NotFound)?;
    let key = crate::vault::MasterKey::existing(store.dir())?;
    let target = channel::target(&key, &row)?;
    let sender = Sender::new(timeout)?;
    let delivery = uuid::Uuid::new_v4().to_string();
    Ok(sender
        .send(&target, &delivery, &Payload::test(chrono::Utc::now()))
        .await)
}
