//! One attempt to tell one channel: the HTTP request each kind documents (or an SMTP
//! transaction), under a deadline, and what came back. Never retries (the dispatcher does)
//! and never puts a URL in an error: Slack, Discord, Teams and Telegram URLs are credentials.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::channel::{EmailTarget, Target, Tls};
use super::message::{signature, Payload};
use crate::text;

/// The most of a receiver's answer kept and shown.
const MAX_ANSWER: usize = 1024;

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// A 2xx answer, or the SMTP server accepted the message.
    pub delivered: bool,
    /// The HTTP status, when an answer came.
    pub http_status: Option<u16>,
    /// The start of the answer's body (or the SMTP reply), clipped.
    pub answer: String,
    /// Why it did not work: transport error, deadline, or the status line.
    pub error: Option<String>,
    /// A `Retry-After` in seconds the receiver asked for (429, 503).
    pub retry_after: Option<Duration>,
}

impl Attempt {
    fn failed(error: String) -> Self {
        Self {
            delivered: false,
            http_status: None,
            answer: String::new(),
            error: Some(text::clip_owned(error, MAX_ANSWER)),
            retry_after: None,
        }
    }
}

/// An error and its causes on one line: `error sending request: client error (Connect): ...`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

/// Sends notifications; cheap to clone (one connection pool).
#[derive(Clone, Debug)]
pub struct Sender {
    http: reqwest::Client,
    timeout: Duration,
}

impl Sender {
    /// A sender whose every attempt gives up after `timeout`.
    ///
    /// # Errors
    /// The TLS backend cannot be set up.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect could carry a token-bearing request elsewhere: a 3xx is a failure
            // the operator sees, not something followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fleetpoll/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, timeout })
    }

    /// One attempt of `payload` to `target`, with `delivery_id` as the receiver's
    /// de-duplication key.
    pub async fn send(&self, target: &Target, delivery_id: &str, payload: &Payload) -> Attempt {
        let mut payload = payload.clone();
        payload.sent_at = Utc::now();
        match tokio::time::timeout(self.timeout, self.send_inner(target, delivery_id, &payload))
            .await
        {
            Ok(a) => a,
            Err(_) => Attempt::failed(format!("no answer within {} s", self.timeout.as_secs_f64())),
        }
    }

    async fn send_inner(&self, target: &Target, delivery_id: &str, p: &Payload) -> Attempt {
        let text = |max| p.text(max);
        let req = match target {
            Target::Webhook { url, secret } => {
                let body = match serde_json::to_vec(p) {
                    Ok(b) => b,
                    Err(e) => return Attempt::failed(format!("cannot encode the body: {e}")),
                };
                let mut r = self
                    .http
                    .post(url.clone())
                    .header("content-type", "application/json");
                if let Some(s) = secret {
                    r = r.header(
                        "x-fleetpoll-signature",
                        signature(s.expose().as_bytes(), &body),
                    );
                }
                r.body(body)
            }
            // Slack's incoming webhooks; Mattermost and Rocket.Chat take the same shape.
            Target::Slack { url } => self.http.post(url.clone()).json(&json!({ "text": text(3000) })),
            // Discord caps `content` at 2000 characters.
            Target::Discord { url } => self
                .http
                .post(url.clone())
                .json(&json!({ "content": text(1900) })),
            // A Teams workflow ("Post to a channel when a webhook request is received")
            // takes a message with an Adaptive Card attachment.
            Target::Teams { url } => self.http.post(url.clone()).json(&json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            { "type": "TextBlock", "text": p.title(), "weight": "Bolder", "wrap": true },
                            { "type": "TextBlock", "text": text(20_000), "wrap": true }
                        ]
                    }
                }]
            })),
            // Bot API sendMessage; the token is part of the path.
            Target::Telegram {
                base_url,
                bot_token,
                chat_id,
            } => {
                let url = format!(
                    "{}/bot{}/sendMessage",
                    base_url.as_str().trim_end_matches('/'),
                    bot_token.expose()
                );
                self.http
                    .post(url)
                    .json(&json!({ "chat_id": chat_id, "text": text(4000) }))
            }
            // ntfy's JSON publishing: POST to the root URL with the topic in the body.
            Target::Ntfy {
                base_url,
                topic,
                token,
            } => {
                let priority = match (p.status.as_str(), p.severity()) {
                    ("firing", "critical") => 5,
                    ("firing", _) => 4,
                    _ => 3,
                };
                let mut r = self.http.post(base_url.clone()).json(&json!({
                    "topic": topic,
                    "title": p.title(),
                    "message": text(4000),
                    "priority": priority,
                    "tags": [if p.status == "resolved" { "white_check_mark" } else { "warning" }],
                }));
                if let Some(t) = token {
                    r = r.bearer_auth(t.expose());
                }
                r
            }
            Target::Gotify { base_url, token } => {
                let url = format!("{}/message", base_url.as_str().trim_end_matches('/'));
                let priority = match (p.status.as_str(), p.severity()) {
                    ("firing", "critical") => 8,
                    ("firing", _) => 5,
                    _ => 2,
                };
                self.http
                    .post(url)
                    .header("x-gotify-key", token.expose())
                    .json(&json!({ "title": p.title(), "message": text(4000), "priority": priority }))
            }
            // Pushover's documented form encoding; messages are capped at 1024 characters.
            Target::Pushover {
                base_url,
                token,
                user_key,
            } => {
                let url = format!("{}/1/messages.json", base_url.as_str().trim_end_matches('/'));
                let priority = if p.status == "firing" && p.severity() == "critical" {
                    "1"
                } else {
                    "0"
                };
                self.http.post(url).form(&[
                    ("token", token.expose()),
                    ("user", user_key.expose()),
                    ("title", &p.title()),
                    ("message", &text(1000)),
                    ("priority", priority),
                ])
            }
            // The client-server API's send: the delivery id is the transaction id, so a
            // retry of the same notification is de-duplicated by the homeserver itself.
            Target::Matrix {
                base_url,
                room_id,
                access_token,
            } => {
                let mut url = base_url.clone();
                match url.path_segments_mut() {
                    Ok(mut s) => {
                        s.pop_if_empty().extend([
                            "_matrix",
                            "client",
                            "v3",
                            "rooms",
                            room_id.as_str(),
                            "send",
                            "m.room.message",
                            delivery_id,
                        ]);
                    }
                    Err(()) => return Attempt::failed("base_url cannot take a path".into()),
                }
                self.http
                    .put(url)
                    .bearer_auth(access_token.expose())
                    .json(&json!({ "msgtype": "m.text", "body": text(20_000) }))
            }
            Target::Email(e) => return self.email(e, delivery_id, p).await,
        };
        let req = req.header("x-fleetpoll-delivery", delivery_id);
        match req.send().await {
            Ok(resp) => answer(resp).await,
            Err(e) => Attempt::failed(chain(&e.without_url())),
        }
    }

    async fn email(&self, e: &EmailTarget, delivery_id: &str, p: &Payload) -> Attempt {
        use lettre::message::header::{ContentType, HeaderName, HeaderValue};
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

        let mut builder = Message::builder()
            .from(e.from.clone())
            .subject(p.title())
            // Retries carry the same Message-ID, so mail clients show one message.
            .message_id(Some(format!("<{delivery_id}@fleetpoll>")))
            .header(ContentType::TEXT_PLAIN);
        for to in &e.to {
            builder = builder.to(to.clone());
        }
        let mut message = match builder.body(format!(
            "{}\n\nDelivery id: {delivery_id}\n",
            p.text(100_000)
        )) {
            Ok(m) => m,
            Err(err) => return Attempt::failed(format!("cannot build the message: {err}")),
        };
        message.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Fleetpoll-Delivery"),
            delivery_id.to_string(),
        ));
        let transport = match e.tls {
            Tls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &e.host,
            )),
            Tls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host),
            Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host),
        };
        let mut transport = match transport {
            Ok(t) => t.port(e.port).timeout(Some(self.timeout)),
            Err(err) => return Attempt::failed(chain(&err)),
        };
        if let (Some(user), Some(pw)) = (&e.user, &e.password) {
            transport =
                transport.credentials(Credentials::new(user.clone(), pw.expose().to_string()));
        }
        match transport.build().send(message).await {
            Ok(resp) => Attempt {
                delivered: true,
                http_status: None,
                answer: text::clip_owned(
                    format!(
                        "{} {}",
                        resp.code(),
                        resp.message().collect::<Vec<_>>().join(" ")
                    ),
                    MAX_ANSWER,
                ),
                error: None,
                retry_after: None,
            },
            Err(err) => Attempt::failed(chain(&err)),
        }
    }
}

/// The status and the start of the body of an answer.
async fn answer(mut resp: reqwest::Response) -> Attempt {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    // Read no more than we keep: a receiver answering with megabytes costs nothing.
    while body.len() <= MAX_ANSWER {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            Ok(None) | Err(_) => break,
        }
    }
    let shown = text::clip(&String::from_utf8_lossy(&body), MAX_ANSWER).into_owned();
    let delivered = status.is_success();
    Attempt {
        delivered,
        http_status: Some(status.as_u16()),
        answer: shown,
        error: (!delivered).then(|| format!("HTTP {status}")),
        retry_after,
    }
}
