//! Channels: the kinds, the fields each takes, their validation into a [`Target`] with errors
//! that name the field (`config.url`), and the split of a config into what may be shown and
//! what is sealed under the master key (tokens, passwords, webhook secrets, and the URLs of
//! Slack, Discord, Teams and webhooks, which often carry a token). Also the operator actions
//! on channels, shared by the API (and a future CLI), each with its activity entry.

use std::fmt;
use std::str::FromStr;

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::NotifyError;
use crate::activity::{self, ActivityEvent, Actor};
use crate::auth::Secret;
use crate::inventory::ValidationError;
use crate::store::notifications::ChannelRow;
use crate::store::Store;
use crate::vault::MasterKey;

/// How a channel is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Discord,
    Teams,
    Telegram,
    Ntfy,
    Gotify,
    Pushover,
    Matrix,
    Email,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 10] = [
        Self::Webhook,
        Self::Slack,
        Self::Discord,
        Self::Teams,
        Self::Telegram,
        Self::Ntfy,
        Self::Gotify,
        Self::Pushover,
        Self::Matrix,
        Self::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Teams => "teams",
            Self::Telegram => "telegram",
            Self::Ntfy => "ntfy",
            Self::Gotify => "gotify",
            Self::Pushover => "pushover",
            Self::Matrix => "matrix",
            Self::Email => "email",
        }
    }

    /// The config fields of this kind: (key, error field, sealed).
    fn fields(self) -> &'static [(&'static str, &'static str, bool)] {
        const URL: (&str, &str, bool) = ("url", "config.url", true);
        const BASE: (&str, &str, bool) = ("base_url", "config.base_url", false);
        match self {
            Self::Webhook => &[URL, ("secret", "config.secret", true)],
            Self::Slack | Self::Discord | Self::Teams => &[URL],
            Self::Telegram => &[
                BASE,
                ("bot_token", "config.bot_token", true),
                ("chat_id", "config.chat_id", false),
            ],
            Self::Ntfy => &[
                BASE,
                ("topic", "config.topic", false),
                ("token", "config.token", true),
            ],
            Self::Gotify => &[BASE, ("token", "config.token", true)],
            Self::Pushover => &[
                BASE,
                ("token", "config.token", true),
                ("user_key", "config.user_key", true),
            ],
            Self::Matrix => &[
                BASE,
                ("room_id", "config.room_id", false),
                ("access_token", "config.access_token", true),
            ],
            Self::Email => &[
                ("host", "config.host", false),
                ("port", "config.port", false),
                ("tls", "config.tls", false),
                ("user", "config.user", false),
                ("password", "config.password", true),
                ("from", "config.from", false),
                ("to", "config.to", false),
            ],
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("'{s}' is not a channel kind: one of {}", all.join(", "))
            })
    }
}

/// How an email channel talks to its SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain SMTP: only for a relay on the same host or a trusted network.
    None,
    /// Plain connect, then STARTTLS (required, not opportunistic).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl Tls {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::Starttls => 587,
            Self::Tls => 465,
        }
    }
}

/// An email channel's server and addresses.
pub struct EmailTarget {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub from: lettre::message::Mailbox,
    pub to: Vec<lettre::message::Mailbox>,
}

/// A channel's validated config, with its secrets in the clear: built for one delivery and
/// dropped after it. `Debug` shows the kind only.
pub enum Target {
    Webhook {
        url: reqwest::Url,
        secret: Option<Secret>,
    },
    Slack {
        url: reqwest::Url,
    },
    Discord {
        url: reqwest::Url,
    },
    Teams {
        url: reqwest::Url,
    },
    Telegram {
        base_url: reqwest::Url,
        bot_token: Secret,
        chat_id: String,
    },
    Ntfy {
        base_url: reqwest::Url,
        topic: String,
        token: Option<Secret>,
    },
    Gotify {
        base_url: reqwest::Url,
        token: Secret,
    },
    Pushover {
        base_url: reqwest::Url,
        token: Secret,
        user_key: Secret,
    },
    Matrix {
        base_url: reqwest::Url,
        room_id: String,
        access_token: Secret,
    },
    Email(Box<EmailTarget>),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.kind())
    }
}

impl Target {
    pub fn kind(&self) -> ChannelKind {
        match self {
            Self::Webhook { .. } => ChannelKind::Webhook,
            Self::Slack { .. } => ChannelKind::Slack,
            Self::Discord { .. } => ChannelKind::Discord,
            Self::Teams { .. } => ChannelKind::Teams,
            Self::Telegram { .. } => ChannelKind::Telegram,
            Self::Ntfy { .. } => ChannelKind::Ntfy,
            Self::Gotify { .. } => ChannelKind::Gotify,
            Self::Pushover { .. } => ChannelKind::Pushover,
            Self::Matrix { .. } => ChannelKind::Matrix,
            Self::Email(_) => ChannelKind::Email,
        }
    }

    /// Validates a whole config of `kind` (every field, secrets in the clear).
    ///
    /// # Errors
    /// The first unknown, missing or invalid field, named `config.<key>`.
    pub fn parse(kind: ChannelKind, config: &Map<String, Value>) -> Result<Self, ValidationError> {
        let fields = kind.fields();
        if let Some(k) = config
            .keys()
            .find(|k| !fields.iter().any(|(f, _, _)| f == k))
        {
            let known: Vec<&str> = fields.iter().map(|(f, _, _)| *f).collect();
            return Err(ValidationError::new(
                "config",
                format!(
                    "unknown key '{k}' for a {kind} channel; expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
        let r = Reader { kind, config };
        Ok(match kind {
            ChannelKind::Webhook => Self::Webhook {
                url: r.url("url", None)?,
                secret: r.opt_text("secret")?.map(Secret::new),
            },
            ChannelKind::Slack => Self::Slack {
                url: r.url("url", None)?,
            },
            ChannelKind::Discord => Self::Discord {
                url: r.url("url", None)?,
            },
            ChannelKind::Teams => Self::Teams {
                url: r.url("url", None)?,
            },
            ChannelKind::Telegram => Self::Telegram {
                base_url: r.url("base_url", Some("https://api.telegram.org"))?,
                bot_token: Secret::new(r.text("bot_token")?),
                chat_id: r.text("chat_id")?,
            },
            ChannelKind::Ntfy => Self::Ntfy {
                base_url: r.url("base_url", Some("https://ntfy.sh"))?,
                topic: r.text("topic")?,
                token: r.opt_text("token")?.map(Secret::new),
            },
            ChannelKind::Gotify => Self::Gotify {
                base_url: r.url("base_url", None)?,
                token: Secret::new(r.text("token")?),
            },
            ChannelKind::Pushover => Self::Pushover {
                base_url: r.url("base_url", Some("https://api.pushover.net"))?,
                token: Secret::new(r.text("token")?),
                user_key: Secret::new(r.text("user_key")?),
            },
            ChannelKind::Matrix => Self::Matrix {
                base_url: r.url("base_url", None)?,
                room_id: r.text("room_id")?,
                access_token: Secret::new(r.text("access_token")?),
            },
            ChannelKind::Email => Self::Email(Box::new(r.email()?)),
        })
    }
}

/// Reads the fields of one config, naming each in its errors.
struct Reader<'a> {
    kind: ChannelKind,
    config: &'a Map<String, Value>,
}

impl Reader<'_> {
    fn field(&self, key: &str) -> &'static str {
        self.kind
            .fields()
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("config", |(_, f, _)| f)
    }

    fn opt_text(&self, key: &str) -> Result<Option<String>, ValidationError> {
        let field = self.field(key);
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.is_empty() {
                    return Ok(None);
                }
                if s.len() > 2048 || s.chars().any(char::is_control) {
                    return Err(ValidationError::new(
                        field,
                        "must be at most 2048 characters, without control characters",
                    ));
                }
                Ok(Some(s.to_string()))
            }
            Some(_) => Err(ValidationError::new(field, "expected a string")),
        }
    }

    fn text(&self, key: &str) -> Result<String, ValidationError> {
        self.opt_text(key)?.ok_or_else(|| {
            ValidationError::new(
                self.field(key),
                format!("is required for a {} channel", self.kind),
            )
        })
    }

    fn url(&self, key: &str, default: Option<&str>) -> Result<reqwest::Url, ValidationError> {
        let field = self.field(key);
        let given = match (self.opt_text(key)?, default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(ValidationError::new(
                    field,
                    format!("is required for a {} channel", self.kind),
                ))
            }
        };
        let url = reqwest::Url::parse(&given)
            .map_err(|e| ValidationError::new(field, format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ValidationError::new(
                field,
                "must be an http:// or https:// URL with a host",
            ));
        }
        // A base URL is shown to every admin: credentials belong in the token field.
        if key == "base_url" && (!url.username().is_empty() || url.password().is_some()) {
            return Err(ValidationError::new(
                field,
                "must not hold a user or password; put credentials in the token field",
            ));
        }
        Ok(url)
    }

    fn email(&self) -> Result<EmailTarget, ValidationError> {
        let host = self.text("host")?;
        if host.contains(['/', ' ', ':']) && !host.starts_with('[') {
            return Err(ValidationError::new(
                "config.host",
                "expected a host name or address, without scheme or port",
            ));
        }
        let tls = match self.opt_text("tls")?.as_deref() {
            None | Some("starttls") => Tls::Starttls,
            Some("none") => Tls::None,
            Some("tls") => Tls::Tls,
            Some(other) => {
                return Err(ValidationError::new(
                    "config.tls",
                    format!("'{other}' is not a TLS mode: none, starttls or tls"),
                ))
            }
        };
        let port = match self.config.get("port") {
            None | Some(Value::Null) => tls.default_port(),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    ValidationError::new("config.port", "must be between 1 and 65535")
                })?,
            Some(_) => {
                return Err(ValidationError::new(
                    "config.port",
                    "expected a number between 1 and 65535",
                ))
            }
        };
        let mailbox = |field: &'static str, v: &str| {
            v.parse::<lettre::message::Mailbox>().map_err(|e| {
                ValidationError::new(field, format!("'{v}' is not an email address: {e}"))
            })
        };
        let from = mailbox("config.from", &self.text("from")?)?;
        let to = match self.config.get("to") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ValidationError::new("config.to", "expected addresses as strings")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ValidationError::new(
                    "config.to",
                    "expected an address or an array of addresses",
                ))
            }
        };
        let to = to
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .map(|a| mailbox("config.to", a))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(ValidationError::new(
                "config.to",
                "is required for an email channel: at least one address",
            ));
        }
        let user = self.opt_text("user")?;
        let password = self.opt_text("password")?.map(Secret::new);
        if password.is_some() && user.is_none() {
            return Err(ValidationError::new(
                "config.user",
                "is required when a password is given",
            ));
        }
        Ok(EmailTarget {
            host,
            port,
            tls,
            user,
            password,
            from,
            to,
        })
    }
}

/// What a sealed value shows in place of itself.
const SEALED: &str = "[sealed]";

/// A URL as shown once sealed: scheme, host and port, the rest elided.
fn shown_url(v: &str) -> String {
    match reqwest::Url::parse(v) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}/…", u.scheme(), u.host_str().unwrap_or(""))
        }
        Err(_) => SEALED.into(),
    }
}

/// A config split into what may be shown (sealed fields replaced by their shown form) and
/// what is sealed.
fn split(
    kind: ChannelKind,
    merged: &Map<String, Value>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut public = Map::new();
    let mut secret = Map::new();
    for (key, value) in merged {
        if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let sealed = kind.fields().iter().any(|(k, _, s)| k == key && *s);
        if sealed {
            let shown = if key == "url" {
                shown_url(value.as_str().unwrap_or(""))
            } else {
                SEALED.into()
            };
            public.insert(key.clone(), Value::String(shown));
            secret.insert(key.clone(), value.clone());
        } else {
            public.insert(key.clone(), value.clone());
        }
    }
    (public, secret)
}

/// The sealed half of a stored channel, in the clear.
fn open_secret(
    key: &MasterKey,
    row: &ChannelRow,
) -> Result<Map<String, Value>, crate::vault::VaultError> {
    match &row.secret_sealed {
        None => Ok(Map::new()),
        Some(sealed) => {
            let plain = key.open(sealed)?;
            Ok(serde_json::from_slice(&plain).unwrap_or_default())
        }
    }
}

/// A stored channel's whole config, secrets in the clear.
fn merged(key: &MasterKey, row: &ChannelRow) -> Result<Map<String, Value>, NotifyError> {
    let mut all = row.config.as_object().cloned().unwrap_or_default();
    all.extend(open_secret(key, row)?);
    Ok(all)
}

/// The target of a stored channel, for a delivery.
///
/// # Errors
/// The master key does not open the secret, or the stored config no longer validates.
pub fn target(key: &MasterKey, row: &ChannelRow) -> Result<Target, NotifyError> {
    let kind: ChannelKind = row
        .kind
        .parse()
        .map_err(|m: String| NotifyError::Invalid(ValidationError::new("kind", m)))?;
    Ok(Target::parse(kind, &merged(key, row)?)?)
}

/// A channel as the API shows it: never a secret, only whether there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelView {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    /// Sealed fields appear as `[sealed]`, sealed URLs as `https://host/…`; sending such a
    /// shown value back in an edit keeps the stored one.
    pub config: Value,
    pub has_secret: bool,
    pub created_at: chrono::DateTime<Utc>,
    pub updated_at: chrono::DateTime<Utc>,
}

impl From<&ChannelRow> for ChannelView {
    fn from(r: &ChannelRow) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            kind: r.kind.clone(),
            enabled: r.enabled,
            config: r.config.clone(),
            has_secret: r.secret_sealed.is_some(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A create or edit request; `None` keeps the current value (or the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelInput {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub enabled: Option<bool>,
    /// On edit, the keys given replace the stored ones; `null` removes an optional key.
    pub config: Option<Map<String, Value>>,
}

fn validate_name(name: &str) -> Result<String, ValidationError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "must be 1 to 64 characters, without control characters",
        ));
    }
    Ok(name.to_string())
}

fn seal(key: &MasterKey, secret: &Map<String, Value>) -> Option<Vec<u8>> {
    (!secret.is_empty()).then(|| key.seal(Value::Object(secret.clone()).to_string().as_bytes()))
}

/// All channels, by name.
///
/// # Errors
/// Database failure.
pub async fn list(store: &Store) -> Result<Vec<ChannelView>, NotifyError> {
    Ok(store
        .channels()
        .await?
        .iter()
        .map(ChannelView::from)
        .collect())
}

/// Adds a channel; its secrets are sealed before they reach the database.
///
/// # Errors
/// An invalid field, a taken name, the master key, the database.
pub async fn create(
    store: &Store,
    input: ChannelInput,
    actor: &Actor,
) -> Result<ChannelView, NotifyError> {
    let name = validate_name(
        input
            .name
            .as_deref()
            .ok_or_else(|| ValidationError::new("name", "is required"))?,
    )?;
    let kind: ChannelKind = input
        .kind
        .as_deref()
        .ok_or_else(|| {
            ValidationError::new("kind", "is required: webhook, slack, ntfy, email, ...")
        })?
        .parse()
        .map_err(|m: String| ValidationError::new("kind", m))?;
    let config = input.config.unwrap_or_default();
    Target::parse(kind, &config)?;
    let (public, secret) = split(kind, &config);
    let key = MasterKey::for_sealing(store.dir(), store.holds_sealed().await?)?;
    let now = Utc::now();
    let row = ChannelRow {
        id: Uuid::new_v4(),
        name,
        kind: kind.as_str().into(),
        config: Value::Object(public),
        secret_sealed: seal(&key, &secret),
        enabled: input.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    store.insert_channel(&row).await?;
    activity::record(
        store,
        ActivityEvent::ChannelCreated {
            name: row.name.clone(),
            kind: row.kind.clone(),
        },
        actor,
        None,
    )
    .await?;
    Ok(ChannelView::from(&row))
}

/// Edits a channel. Its kind cannot change; a sealed field sent back as shown keeps its
/// stored value.
///
/// # Errors
/// No such channel, an invalid field, a taken name, the master key, the database.
pub async fn update(
    store: &Store,
    id: Uuid,
    input: ChannelInput,
    actor: &Actor,
) -> Result<ChannelView, NotifyError> {
    let before = store.channel(id).await?.ok_or(NotifyError::NotFound)?;
    let kind: ChannelKind = before
        .kind
        .parse()
        .map_err(|m: String| ValidationError::new("kind", m))?;
    if let Some(k) = &input.kind {
        if k != kind.as_str() {
            return Err(ValidationError::new(
                "kind",
                format!("a {kind} channel cannot become a {k} channel; create a new channel"),
            )
            .into());
        }
    }
    let key = MasterKey::for_sealing(store.dir(), store.holds_sealed().await?)?;
    let mut config = merged(&key, &before)?;
    let mut changes = Map::new();
    for (k, v) in input.config.unwrap_or_default() {
        let is_sealed = kind.fields().iter().any(|(f, _, s)| *f == k && *s);
        if is_sealed && before.config.get(&k) == Some(&v) {
            // The shown form sent back (a form round trip): keep the stored secret.
            continue;
        }
        if config.get(&k) == Some(&v) {
            continue;
        }
        changes.insert(
            format!("config.{k}"),
            if is_sealed {
                json!("changed")
            } else {
                v.clone()
            },
        );
        if v.is_null() {
            config.remove(&k);
        } else {
            config.insert(k, v);
        }
    }
    Target::parse(kind, &config)?;
    let (public, secret) = split(kind, &config);
    let mut after = before.clone();
    if let Some(name) = &input.name {
        let name = validate_name(name)?;
        if name != before.name {
            changes.insert("name".into(), json!(name));
        }
        after.name = name;
    }
    if let Some(enabled) = input.enabled {
        if enabled != before.enabled {
            changes.insert("enabled".into(), json!(enabled));
        }
        after.enabled = enabled;
    }
    if changes.is_empty() {
        return Ok(ChannelView::from(&before));
    }
    after.config = Value::Object(public);
    after.secret_sealed = if changes.keys().any(|k| {
        k.strip_prefix("config.")
            .is_some_and(|f| kind.fields().iter().any(|(n, _, s)| *n == f && *s))
    }) {
        seal(&key, &secret)
    } else {
        before.secret_sealed.clone()
    };
    after.updated_at = Utc::now();
    store.update_channel(&after, &before.name).await?;
    activity::record(
        store,
        ActivityEvent::ChannelUpdated {
            name: after.name.clone(),
            changes: Value::Object(changes),
        },
        actor,
        None,
    )
    .await?;
    Ok(ChannelView::from(&after))
}

/// Deletes a channel with its pending notifications. Refused while a rule names it: the
/// rule would silently notify nobody.
///
/// # Errors
/// No such channel, a rule names it, the database.
pub async fn delete(store: &Store, id: Uuid, actor: &Actor) -> Result<(), NotifyError> {
    let row = store.channel(id).await?.ok_or(NotifyError::NotFound)?;
    let rules = store.rules_naming_channel(&row.name).await?;
    if !rules.is_empty() {
        return Err(NotifyError::InUse { rules });
    }
    if !store.delete_channel(id).await? {
        return Err(NotifyError::NotFound);
    }
    activity::record(
        store,
        ActivityEvent::ChannelDeleted {
            name: row.name,
            kind: row.kind,
        },
        actor,
        None,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for k in ChannelKind::ALL {
            assert_eq!(k.as_str().parse::<ChannelKind>(), Ok(k));
        }
        assert!("sms".parse::<ChannelKind>().is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let field = |kind, v| {
            Target::parse(kind, &map(v))
                .map(|_| ())
                .expect_err("invalid")
                .field
        };
        assert_eq!(field(ChannelKind::Webhook, json!({})), "config.url");
        assert_eq!(
            field(ChannelKind::Webhook, json!({"url": "ftp://x/y"})),
            "config.url"
        );
        assert_eq!(
            field(ChannelKind::Webhook, json!({"url": "not a url"})),
            "config.url"
        );
        assert_eq!(
            field(
                ChannelKind::Webhook,
                json!({"url": "http://x/", "sekret": "s"})
            ),
            "config"
        );
        assert_eq!(
            field(ChannelKind::Email, json!({"from": "a@b.c", "to": "d@e.f"})),
            "config.host"
        );
        assert_eq!(
            field(
                ChannelKind::Email,
                json!({"host": "h", "from": "a@b.c", "to": "d@e.f", "tls": "ssl"})
            ),
            "config.tls"
        );
        assert_eq!(
            field(
                ChannelKind::Email,
                json!({"host": "h", "from": "a@b.c", "to": ["nope"]})
            ),
            "config.to"
        );
        assert_eq!(field(ChannelKind::Ntfy, json!({})), "config.topic");
        assert_eq!(
            field(
                ChannelKind::Ntfy,
                json!({"topic": "t", "base_url": "https://u:p@ntfy.example"})
            ),
            "config.base_url"
        );
        assert_eq!(
            field(ChannelKind::Telegram, json!({"chat_id": "1"})),
            "config.bot_token"
        );
    }

    #[test]
    fn email_defaults_its_port_by_tls_mode() {
        let t = Target::parse(
            ChannelKind::Email,
            &map(json!({"host": "mail", "tls": "tls", "from": "fp <fp@example.org>", "to": "a@example.org, b@example.org"})),
        )
        .expect("valid");
        let Target::Email(e) = t else { panic!("email") };
        assert_eq!((e.port, e.tls, e.to.len()), (465, Tls::Tls, 2));
    }

    #[test]
    fn sealed_fields_are_shown_without_their_secret() {
        let (public, secret) = split(
            ChannelKind::Webhook,
            &map(
                json!({"url": "https://hooks.example.org:8443/T0/B0/xyzSECRET?k=v", "secret": "s3"}),
            ),
        );
        assert_eq!(public["url"], "https://hooks.example.org:8443/…");
        assert_eq!(public["secret"], "[sealed]");
        assert_eq!(secret["secret"], "s3");
        assert!(!Value::Object(public).to_string().contains("SECRET"));
        let (public, secret) = split(
            ChannelKind::Email,
            &map(
                json!({"host": "mail", "user": "u", "password": "pw", "from": "a@b.c", "to": "d@e.f"}),
            ),
        );
        assert_eq!(public["user"], "u");
        assert_eq!(public["password"], "[sealed]");
        assert_eq!(secret.len(), 1);
    }
}
