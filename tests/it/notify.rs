//! Notification delivery (issue #13) against real receivers: an HTTP server that checks the
//! webhook signature and records every request, and a real SMTP server (aiosmtpd). Intents
//! are written straight into the tables as the scheduler's writer leaves them (an alert of a
//! default rule on a registered server, one intent per channel), so these tests depend on
//! the contract, not on the evaluation. Retry timing is driven by passing `now` to the
//! dispatcher's tick, never by sleeping through a backoff.

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleetpoll::activity::Actor;
use fleetpoll::notify::{ChannelInput, Dispatcher, Policy};
use fleetpoll::observe::Metrics;
use fleetpoll::store::Store;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{self, TestApp};
use crate::harness::receiver::{Mode, Receiver};
use crate::harness::smtp::SmtpServer;

/// The default rule "disk critical" (migration 0006): per mount, >= 90.
const DISK_CRITICAL: &str = "00000000-0000-4000-8000-000000000006";

fn actor() -> Actor {
    Actor {
        name: "test".into(),
        source: None,
    }
}

fn policy() -> Policy {
    Policy {
        group_wait: Duration::from_secs(30),
        attempt_timeout: Duration::from_secs(5),
        retry_base: Duration::from_secs(10),
        ..Policy::default()
    }
}

fn dispatcher(store: &Store) -> (Dispatcher, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let d = Dispatcher::new(store.clone(), policy(), metrics.clone()).expect("dispatcher");
    (d, metrics)
}

async fn channel(store: &Store, name: &str, kind: &str, config: Value) -> Uuid {
    fleetpoll::notify::channel::create(
        store,
        ChannelInput {
            name: Some(name.into()),
            kind: Some(kind.into()),
            enabled: None,
            config: config.as_object().cloned(),
        },
        &actor(),
    )
    .await
    .expect("create channel")
    .id
}

/// Registers disabled servers (never polled) with a fresh key.
async fn servers(store: &Store, dir: &std::path::Path, names: &[&str]) -> Vec<Uuid> {
    let key = dir.join("id_notify");
    if !key.exists() {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen");
        common::assert_ok(&out);
    }
    let mut ids = Vec::new();
    for name in names {
        let s = common::add(
            store,
            fleetpoll::inventory::NewServer {
                name: (*name).into(),
                host: "127.0.0.1".into(),
                port: 22,
                user: "root".into(),
                key_path: key.to_string_lossy().into_owned(),
                key_passphrase_env: None,
                tags: vec![],
                enabled: false,
                key_material: None,
                key_stored: false,
            },
        )
        .await;
        ids.push(s.id);
    }
    ids
}

/// A firing "disk critical" alert on `/var` of each server; returns the alert ids.
async fn firing_alerts(store: &Store, servers: &[Uuid], at: DateTime<Utc>) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let id = Uuid::new_v4().to_string();
        sqlx::query(
            "insert into alerts (id, rule_id, server_id, subject, state, value, started_at, \
             fired_at, updated_at) values ($1, $2, $3, '/var', 'firing', $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(DISK_CRITICAL)
        .bind(s.to_string())
        .bind(93.5 + i as f64)
        .bind(at.timestamp_millis() - 300_000)
        .bind(at.timestamp_millis())
        .bind(at.timestamp_millis())
        .execute(store.pool())
        .await
        .expect("insert alert");
        ids.push(id);
    }
    ids
}

/// One intent per alert for `channel`, as the writer leaves them.
async fn intents(store: &Store, alerts: &[String], channel: Uuid, status: &str, at: DateTime<Utc>) {
    for a in alerts {
        sqlx::query(
            "insert into notification_intents (alert_id, channel_id, status, created_at) \
             values ($1, $2, $3, $4)",
        )
        .bind(a)
        .bind(channel.to_string())
        .bind(status)
        .bind(at.timestamp_millis())
        .execute(store.pool())
        .await
        .expect("insert intent");
    }
}

/// (id, status, attempts, last_http_status, last_error) of every notification.
async fn outbox(store: &Store) -> Vec<(String, String, i64, Option<i64>, Option<String>)> {
    sqlx::query_as(
        "select id, status, attempts, last_http_status, last_error from notifications \
         order by created_at, id",
    )
    .fetch_all(store.pool())
    .await
    .expect("outbox")
}

#[tokio::test]
async fn intents_of_one_rule_become_one_signed_webhook_with_the_documented_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let receiver = Receiver::start(Some("whsec-test-1"));
    let ch = channel(
        &store,
        "ops-hook",
        "webhook",
        json!({"url": receiver.url("/hook?token=abc"), "secret": "whsec-test-1"}),
    )
    .await;
    let ids = servers(&store, dir.path(), &["web-2", "web-1", "web-3"]).await;
    let t0 = Utc::now();
    let alerts = firing_alerts(&store, &ids, t0).await;
    intents(&store, &alerts, ch, "firing", t0).await;
    let (d, metrics) = dispatcher(&store);

    let r = d
        .tick(t0 + chrono::Duration::seconds(29))
        .await
        .expect("tick");
    assert_eq!(r.grouped, 0, "the group waits group_wait for others");
    assert!(receiver.requests().is_empty());

    let r = d
        .tick(t0 + chrono::Duration::seconds(30))
        .await
        .expect("tick");
    assert_eq!((r.grouped, r.delivered), (1, 1), "{r:?}");
    let got = receiver.requests();
    assert_eq!(got.len(), 1, "one notification for three alerts");
    let req = &got[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hook?token=abc");
    assert_eq!(req.signature_ok, Some(true), "signature over the raw body");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let rows = outbox(&store).await;
    assert_eq!(rows.len(), 1);
    let (nid, status, attempts, http, err) = &rows[0];
    assert_eq!(req.header("x-fleetpoll-delivery"), Some(nid.as_str()));
    assert_eq!(
        (status.as_str(), *attempts, *http, err.as_deref()),
        ("delivered", 1, Some(200), None)
    );

    let body = req.json();
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["version", "status", "group_key", "alerts", "sent_at"]
    );
    assert_eq!(body["version"], 1);
    assert_eq!(body["status"], "firing");
    assert_eq!(body["group_key"], format!("rule:{DISK_CRITICAL}:firing"));
    assert!(body["sent_at"]
        .as_str()
        .expect("sent_at")
        .parse::<DateTime<Utc>>()
        .is_ok());
    let items = body["alerts"].as_array().expect("alerts");
    let names: Vec<&str> = items
        .iter()
        .map(|a| a["server_name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["web-1", "web-2", "web-3"], "every server, by name");
    let first = &items[0];
    let keys: Vec<&str> = first
        .as_object()
        .expect("o")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "rule",
            "severity",
            "server_id",
            "server_name",
            "metric",
            "mount",
            "container",
            "value",
            "threshold",
            "state",
            "started_at",
            "resolved_at"
        ]
    );
    assert_eq!(
        first["id"], alerts[1],
        "web-1 is the second server registered"
    );
    assert_eq!(first["server_id"], ids[1].to_string());
    assert_eq!(first["rule"], "disk critical");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["metric"], "disk_percent");
    assert_eq!(first["mount"], "/var");
    assert_eq!(first["container"], Value::Null);
    assert_eq!(first["value"], 94.5);
    assert_eq!(first["threshold"], 90.0);
    assert_eq!(first["state"], "firing");
    assert_eq!(first["resolved_at"], Value::Null);

    let marked = common::count(
        &store,
        &format!("select count(*) from notification_intents where notification_id = '{nid}'"),
    )
    .await;
    assert_eq!(marked, 3, "every intent points at its notification");
    let sent = common::count(
        &store,
        "select count(*) from activity where type = 'notification_sent'",
    )
    .await;
    assert_eq!(sent, 1);

    // Resolving two of them is another group: one more notification, status resolved.
    for a in &alerts[..2] {
        sqlx::query("update alerts set state = 'resolved', resolved_at = $1 where id = $2")
            .bind(t0.timestamp_millis() + 60_000)
            .bind(a)
            .execute(store.pool())
            .await
            .expect("resolve");
    }
    let t1 = t0 + chrono::Duration::seconds(60);
    intents(&store, &alerts[..2], ch, "resolved", t1).await;
    let r = d
        .tick(t1 + chrono::Duration::seconds(30))
        .await
        .expect("tick");
    assert_eq!((r.grouped, r.delivered), (1, 1), "{r:?}");
    let got = receiver.requests();
    assert_eq!(got.len(), 2, "a delivered notification is never sent again");
    let resolved = got[1].json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"].as_array().expect("alerts").len(), 2);
    assert!(resolved["alerts"][0]["resolved_at"].is_string());
    assert_ne!(
        got[1].header("x-fleetpoll-delivery"),
        got[0].header("x-fleetpoll-delivery")
    );

    let mut text = String::new();
    metrics.render(&mut text);
    assert!(
        text.contains(
            "fleetpoll_notifications_total{channel_kind=\"webhook\",outcome=\"delivered\"} 2\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_receiver_down_then_up_gets_the_notification_once_with_one_delivery_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let port = crate::harness::closed_port();
    let ch = channel(
        &store,
        "flaky",
        "webhook",
        json!({"url": format!("http://127.0.0.1:{port}/in"), "secret": "s2"}),
    )
    .await;
    let ids = servers(&store, dir.path(), &["db-1"]).await;
    let t0 = Utc::now();
    let alerts = firing_alerts(&store, &ids, t0).await;
    intents(&store, &alerts, ch, "firing", t0).await;
    let (d, metrics) = dispatcher(&store);
    let at = |mins: i64| t0 + chrono::Duration::minutes(mins);

    // Down: nothing listens.
    let r = d.tick(at(1)).await.expect("tick");
    assert_eq!((r.grouped, r.retried), (1, 1), "{r:?}");
    let rows = outbox(&store).await;
    let (nid, status, attempts, _, err) = rows[0].clone();
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert!(
        err.as_deref().is_some_and(|e| e.contains("onnect")),
        "{err:?}"
    );
    let next: i64 = common::count(&store, "select next_attempt_at from notifications").await;
    let after_first = next - at(1).timestamp_millis();
    assert!(
        (8_000..=12_000).contains(&after_first),
        "first retry ~10 s later: {after_first} ms"
    );
    // Not due yet: no attempt.
    let r = d
        .tick(at(1) + chrono::Duration::seconds(7))
        .await
        .expect("tick");
    assert_eq!(r, fleetpoll::notify::TickReport::default());

    // Up, but failing: the receiver sees the attempts, all with the same delivery id.
    let receiver = Receiver::start_on(port, Some("s2"));
    receiver.set_mode(Mode::Answer(503));
    for m in [60, 120] {
        let r = d.tick(at(m)).await.expect("tick");
        assert_eq!(r.retried, 1, "{r:?}");
    }
    let rows = outbox(&store).await;
    assert_eq!((rows[0].2, rows[0].3), (3, Some(503)));
    receiver.set_mode(Mode::Answer(204));
    let r = d.tick(at(180)).await.expect("tick");
    assert_eq!(r.delivered, 1, "{r:?}");
    for m in [240, 300, 2000] {
        let r = d.tick(at(m)).await.expect("tick");
        assert_eq!(
            r,
            fleetpoll::notify::TickReport::default(),
            "delivered stays delivered"
        );
    }

    let got = receiver.requests();
    assert_eq!(got.len(), 3, "two failures and the delivery");
    for req in &got {
        assert_eq!(req.header("x-fleetpoll-delivery"), Some(nid.as_str()));
        assert_eq!(req.signature_ok, Some(true));
    }
    // The same notification each time: only sent_at moves.
    let strip = |mut v: Value| {
        v["sent_at"] = Value::Null;
        v
    };
    assert_eq!(strip(got[0].json()), strip(got[2].json()));
    let rows = outbox(&store).await;
    assert_eq!(rows.len(), 1, "never two notifications");
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2, rows[0].3, rows[0].4.clone()),
        ("delivered", 4, Some(204), None)
    );
    let mut text = String::new();
    metrics.render(&mut text);
    assert!(
        text.contains(
            "fleetpoll_notifications_total{channel_kind=\"webhook\",outcome=\"retried\"} 3\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "fleetpoll_notifications_total{channel_kind=\"webhook\",outcome=\"delivered\"} 1\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_notification_undelivered_for_24_hours_is_given_up_and_errors_never_show_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let port = crate::harness::closed_port();
    let token = "123456:SECRET-bot-token-xyz";
    let ch = channel(
        &store,
        "tg",
        "telegram",
        json!({"base_url": format!("http://127.0.0.1:{port}"), "bot_token": token, "chat_id": "-100"}),
    )
    .await;
    let ids = servers(&store, dir.path(), &["web-1"]).await;
    let t0 = Utc::now();
    let alerts = firing_alerts(&store, &ids, t0).await;
    intents(&store, &alerts, ch, "firing", t0).await;
    let (d, metrics) = dispatcher(&store);
    let at = |mins: i64| t0 + chrono::Duration::minutes(mins);

    d.tick(at(1)).await.expect("tick");
    let created: i64 = common::count(&store, "select created_at from notifications").await;
    // Near the end, the next attempt is at the deadline, not past it.
    // 5 s before the deadline; the second retry would be ~20 s later.
    let r = d
        .tick(at(1) + chrono::Duration::hours(24) - chrono::Duration::seconds(5))
        .await
        .expect("tick");
    assert_eq!(r.retried, 1);
    let next: i64 = common::count(&store, "select next_attempt_at from notifications").await;
    assert_eq!(next, created + 24 * 3600 * 1000);
    let r = d
        .tick(at(1) + chrono::Duration::hours(24))
        .await
        .expect("tick");
    assert_eq!(r.failed, 1, "{r:?}");
    let rows = outbox(&store).await;
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("failed", 3));
    let r = d
        .tick(at(1) + chrono::Duration::hours(30))
        .await
        .expect("tick");
    assert_eq!(
        r,
        fleetpoll::notify::TickReport::default(),
        "a failed notification is left alone"
    );

    let (details, message): (String, String) =
        sqlx::query_as("select details, message from activity where type = 'notification_failed'")
            .fetch_one(store.pool())
            .await
            .expect("notification_failed entry");
    assert!(
        details.contains(&rows[0].0) && details.contains("\"attempts\":3"),
        "{details}"
    );
    assert!(message.contains("given up"), "{message}");
    let everything = format!("{:?} {details} {message}", rows);
    assert!(
        !everything.contains("SECRET-bot-token"),
        "token leaked: {everything}"
    );
    let mut text = String::new();
    metrics.render(&mut text);
    assert!(
        text.contains(
            "fleetpoll_notifications_total{channel_kind=\"telegram\",outcome=\"failed\"} 1\n"
        ),
        "{text}"
    );
}

/// `fleetpoll serve` on `db`, with notifications sent as soon as they are written.
fn serve(db: &std::path::Path) -> Child {
    let mut child = common::with_db(&mut common::fleetpoll(), db)
        .args(["serve", "--listen", "127.0.0.1:0", "--interval", "3600"])
        .env("FLEETPOLL_GROUP_WAIT_SECS", "0")
        // On PostgreSQL the killed process leads until its heartbeat is a lease old: a
        // short lease keeps the restart's delivery within the test's wait.
        .env("FLEETPOLL_LEASE_SECS", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    // Drain stderr so the child never blocks on a full pipe.
    let _lines = common::stderr_lines(&mut child);
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_or_stopped_mid_delivery_delivers_after_restart_with_the_same_delivery_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fleetpoll.db");
    let store = common::store(dir.path()).await;
    let receiver = Receiver::start(Some("k9"));
    receiver.set_mode(Mode::Hang);
    let ch = channel(
        &store,
        "hook",
        "webhook",
        json!({"url": receiver.url("/x"), "secret": "k9"}),
    )
    .await;
    let ids = servers(&store, dir.path(), &["web-1", "web-2"]).await;
    let t0 = Utc::now();
    let alerts = firing_alerts(&store, &ids, t0).await;
    intents(&store, &alerts, ch, "firing", t0).await;

    // 1. kill -9 while the receiver holds the request.
    let mut first = serve(&db);
    receiver.wait_for(1, Duration::from_secs(30)).await;
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    let rows = outbox(&store).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2),
        ("pending", 0),
        "the cut attempt left no outcome"
    );

    // 2. SIGTERM while the receiver holds the retry: a clean stop, within its budget.
    let mut second = serve(&db);
    receiver.wait_for(2, Duration::from_secs(30)).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let stopping = Instant::now();
    loop {
        if let Some(status) = second.try_wait().expect("wait") {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "serve did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 3. The receiver answers now: delivered by the third process.
    receiver.set_mode(Mode::Answer(200));
    let mut third = serve(&db);
    let got = receiver.wait_for(3, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = outbox(&store).await;
        if rows[0].1 == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "not marked delivered: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    third.kill().expect("kill");
    third.wait().expect("reap");

    let rows = outbox(&store).await;
    assert_eq!(rows.len(), 1, "never two notifications: {rows:?}");
    let nid = rows[0].0.as_str();
    assert_eq!(got.len(), 3, "{got:#?}");
    for req in &got {
        assert_eq!(
            req.header("x-fleetpoll-delivery"),
            Some(nid),
            "one delivery id throughout"
        );
        assert_eq!(req.signature_ok, Some(true));
        assert_eq!(req.json()["alerts"].as_array().expect("alerts").len(), 2);
    }
    let grouped = common::count(
        &store,
        &format!("select count(*) from notification_intents where notification_id = '{nid}'"),
    )
    .await;
    assert_eq!(grouped, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_api_validates_names_the_field_and_never_returns_a_secret() {
    let app = TestApp::start().await;
    let receiver = Receiver::start(Some("sig-secret-777"));
    let post = |body: Value| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/notification-channels",
                Some(&body.to_string()),
            )
            .await
        }
    };
    for (body, field) in [
        (json!({"name": "x", "kind": "sms", "config": {}}), "kind"),
        (
            json!({"kind": "webhook", "config": {"url": "http://h/"}}),
            "name",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {}}),
            "config.url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "gopher://h/"}}),
            "config.url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://h/", "colour": 1}}),
            "config",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"from": "a@b.org", "to": "c@d.org"}}),
            "config.host",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"host": "m", "from": "a@b.org"}}),
            "config.to",
        ),
        (
            json!({"name": "x", "kind": "ntfy", "config": {"topic": "t", "base_url": "ftp://n/"}}),
            "config.base_url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": "http://h/"}),
            "config",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://h/"}, "extra": 1}),
            "extra",
        ),
    ] {
        let (status, err) = post(body.clone()).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (400, Some(field)),
            "{body} -> {err}"
        );
    }

    let hook_url = receiver.url("/T000/B000/url-token-888");
    let (status, created) = post(json!({
        "name": "ops", "kind": "webhook",
        "config": {"url": hook_url, "secret": "sig-secret-777"}
    }))
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["has_secret"], true);
    assert_eq!(created["config"]["secret"], "[sealed]");
    assert_eq!(
        created["config"]["url"],
        format!("http://127.0.0.1:{}/…", receiver.port)
    );
    let (status, dup) =
        post(json!({"name": "ops", "kind": "slack", "config": {"url": "https://h/x"}})).await;
    assert_eq!(
        (status, dup["field"].as_str()),
        (409, Some("name")),
        "{dup}"
    );

    let secrets = ["sig-secret-777", "url-token-888"];
    let (status, list) = app.get("/api/notification-channels").await;
    assert_eq!((status, list["total"].as_i64()), (200, Some(1)));
    for s in secrets {
        assert!(!list.to_string().contains(s), "{s} in {list}");
    }
    let (config, sealed): (String, Vec<u8>) =
        sqlx::query_as("select config, secret_sealed from notification_channels")
            .fetch_one(app.store.pool())
            .await
            .expect("row");
    for s in secrets {
        assert!(!config.contains(s), "{s} stored in the clear");
        assert!(
            !sealed.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s} not sealed"
        );
    }

    // A form sends back what it was shown: the sealed values stay as they were.
    let shown = created["config"].clone();
    let (status, patched) = app
        .send(
            Method::PATCH,
            &format!("/api/notification-channels/{id}"),
            Some(&json!({"name": "ops-renamed", "config": shown}).to_string()),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let (status, bad) = app
        .send(
            Method::PATCH,
            &format!("/api/notification-channels/{id}"),
            Some(r#"{"kind": "slack"}"#),
        )
        .await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (400, Some("kind")),
        "{bad}"
    );

    // The test message goes to the stored URL, signed with the stored secret.
    let (status, tested) = app
        .send(
            Method::POST,
            &format!("/api/notification-channels/{id}/test"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["delivered"], true, "{tested}");
    assert_eq!(tested["status"], 200);
    assert_eq!(tested["answer"], "receiver says 200");
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/T000/B000/url-token-888");
    assert_eq!(got[0].signature_ok, Some(true));
    assert_eq!(got[0].json()["status"], "test");
    receiver.set_mode(Mode::Answer(500));
    let (_, tested) = app
        .send(
            Method::POST,
            &format!("/api/notification-channels/{id}/test"),
            None,
        )
        .await;
    assert_eq!(
        (tested["delivered"].as_bool(), tested["status"].as_i64()),
        (Some(false), Some(500)),
        "{tested}"
    );
    receiver.set_mode(Mode::Answer(200));

    // Only admins.
    let (_, operator) = fleetpoll::ops::create_token(
        &app.store,
        "op",
        fleetpoll::auth::Role::Operator,
        None,
        &Actor::system(),
    )
    .await
    .expect("token");
    let r = app
        .anon
        .get(app.url("/api/notification-channels"))
        .bearer_auth(operator.expose())
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 403);
    let r = app
        .anon
        .get(app.url("/api/notifications"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 401);

    // The app's own dispatcher: intents older than group_wait_secs go out at its next tick.
    let ids = servers(&app.store, app.dir.path(), &["api-1"]).await;
    let long_ago = Utc::now() - chrono::Duration::seconds(120);
    let alerts = firing_alerts(&app.store, &ids, long_ago).await;
    intents(
        &app.store,
        &alerts,
        Uuid::parse_str(&id).expect("uuid"),
        "firing",
        long_ago,
    )
    .await;
    receiver.wait_for(3, Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let (status, listed) = app
            .get("/api/notifications?channel=ops-renamed&status=delivered")
            .await;
        assert_eq!(status, 200, "{listed}");
        if listed["total"] == 1 {
            break listed;
        }
        assert!(Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let item = &listed["items"][0];
    assert_eq!(item["channel_name"], "ops-renamed");
    assert_eq!(item["channel_kind"], "webhook");
    assert_eq!(item["attempts"], 1);
    assert_eq!(item["last_http_status"], 200);
    assert_eq!(item["body"]["alerts"][0]["server_name"], "api-1");
    let (status, none) = app
        .get(&format!("/api/notifications?channel={id}&status=pending"))
        .await;
    assert_eq!((status, none["total"].as_i64()), (200, Some(0)));
    let (status, err) = app.get("/api/notifications?status=lost").await;
    assert_eq!((status, err["field"].as_str()), (400, Some("status")));
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "fleetpoll_notifications_total{channel_kind=\"webhook\",outcome=\"delivered\"} 1\n"
        ),
        "{metrics}"
    );

    // Audited, without secrets; deleting removes the channel.
    let (status, _) = app
        .send(
            Method::DELETE,
            &format!("/api/notification-channels/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, activity) = app.get("/api/activity?limit=200").await;
    let text = activity.to_string();
    for kind in [
        "channel_created",
        "channel_updated",
        "channel_deleted",
        "notification_sent",
    ] {
        assert!(text.contains(kind), "{kind} missing");
    }
    for s in secrets {
        assert!(!text.contains(s), "{s} in the activity log");
    }
    let (status, list) = app.get("/api/notification-channels").await;
    assert_eq!((status, list["total"].as_i64()), (200, Some(0)));
    app.stop().await;
}

#[tokio::test]
async fn a_channel_named_by_a_rule_is_renamed_in_the_rule_and_cannot_be_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let ch = channel(&store, "pager", "ntfy", json!({"topic": "fp"})).await;
    sqlx::query("update alert_rules set channels = '[\"pager\",\"other\"]' where id = $1")
        .bind(DISK_CRITICAL)
        .execute(store.pool())
        .await
        .expect("rule names the channel");
    fleetpoll::notify::channel::update(
        &store,
        ch,
        ChannelInput {
            name: Some("oncall".into()),
            ..ChannelInput::default()
        },
        &actor(),
    )
    .await
    .expect("rename");
    let channels: String = sqlx::query_scalar("select channels from alert_rules where id = $1")
        .bind(DISK_CRITICAL)
        .fetch_one(store.pool())
        .await
        .expect("rule");
    assert_eq!(
        serde_json::from_str::<Value>(&channels).expect("json"),
        json!(["oncall", "other"])
    );
    let err = fleetpoll::notify::channel::delete(&store, ch, &actor())
        .await
        .expect_err("in use");
    assert!(err.to_string().contains("disk critical"), "{err}");
}

#[tokio::test]
async fn each_chat_kind_posts_its_documented_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let rx = Receiver::start(None);
    let base = rx.url("");
    let kinds = [
        ("slack", json!({"url": rx.url("/slack/T/B/tok")})),
        ("discord", json!({"url": rx.url("/discord/1/tok")})),
        ("teams", json!({"url": rx.url("/teams/wf")})),
        (
            "telegram",
            json!({"base_url": base, "bot_token": "42:tg", "chat_id": "-1001"}),
        ),
        (
            "ntfy",
            json!({"base_url": base, "topic": "fleet", "token": "tk_ntfy"}),
        ),
        (
            "gotify",
            json!({"base_url": rx.url("/gotify/"), "token": "gotify-app"}),
        ),
        (
            "pushover",
            json!({"base_url": base, "token": "po-app", "user_key": "po-user"}),
        ),
        (
            "matrix",
            json!({"base_url": base, "room_id": "!room:example.org", "access_token": "mx-tok"}),
        ),
    ];
    let ids = servers(&store, dir.path(), &["web-1"]).await;
    let t0 = Utc::now();
    let alerts = firing_alerts(&store, &ids, t0).await;
    for (kind, config) in &kinds {
        let ch = channel(&store, kind, kind, config.clone()).await;
        intents(&store, &alerts, ch, "firing", t0).await;
    }
    let (d, _) = dispatcher(&store);
    let r = d
        .tick(t0 + chrono::Duration::seconds(30))
        .await
        .expect("tick");
    assert_eq!((r.grouped, r.delivered), (8, 8), "{r:?}");
    let got = rx.requests();
    let by = |prefix: &str| {
        got.iter()
            .find(|r| r.path.starts_with(prefix))
            .unwrap_or_else(|| panic!("no request to {prefix}: {got:#?}"))
    };
    let title = "[FIRING] disk critical: 1 server";
    let line = "web-1 /var: disk_percent 93.5 (threshold 90, critical)";

    let slack = by("/slack/T/B/tok").json();
    assert!(
        slack["text"].as_str().expect("text").starts_with(title),
        "{slack}"
    );
    assert!(
        slack["text"].as_str().expect("text").contains(line),
        "{slack}"
    );
    let discord = by("/discord/1/tok").json();
    assert!(
        discord["content"].as_str().expect("content").contains(line),
        "{discord}"
    );
    let teams = by("/teams/wf").json();
    assert_eq!(teams["type"], "message");
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
    assert_eq!(teams["attachments"][0]["content"]["body"][0]["text"], title);
    let tg = by("/bot42:tg/sendMessage");
    assert_eq!(tg.method, "POST");
    assert_eq!(tg.json()["chat_id"], "-1001");
    assert!(tg.json()["text"].as_str().expect("text").contains(line));
    let ntfy = got
        .iter()
        .find(|r| r.path == "/")
        .expect("ntfy posts to the root");
    assert_eq!(ntfy.header("authorization"), Some("Bearer tk_ntfy"));
    let n = ntfy.json();
    assert_eq!(
        (
            n["topic"].as_str(),
            n["title"].as_str(),
            n["priority"].as_i64()
        ),
        (Some("fleet"), Some(title), Some(5))
    );
    let gotify = by("/gotify/message");
    assert_eq!(gotify.header("x-gotify-key"), Some("gotify-app"));
    assert_eq!(gotify.json()["priority"], 8);
    let po = by("/1/messages.json");
    assert_eq!(
        po.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: std::collections::HashMap<String, String> =
        url_pairs(&String::from_utf8_lossy(&po.body));
    assert_eq!(form["token"], "po-app");
    assert_eq!(form["user"], "po-user");
    assert_eq!(form["title"], title);
    assert_eq!(form["priority"], "1");
    let mx = by("/_matrix/client/v3/rooms/");
    assert_eq!(mx.method, "PUT");
    assert_eq!(mx.header("authorization"), Some("Bearer mx-tok"));
    let delivery = mx.header("x-fleetpoll-delivery").expect("delivery id");
    assert_eq!(
        mx.path,
        format!("/_matrix/client/v3/rooms/!room:example.org/send/m.room.message/{delivery}"),
        "the delivery id is Matrix's transaction id"
    );
    assert_eq!(mx.json()["msgtype"], "m.text");
    assert_eq!(got.len(), 8);
}

/// `a=b&c=d` decoded (the test's own decoder, so the sender's encoding is checked).
fn url_pairs(s: &str) -> std::collections::HashMap<String, String> {
    fn decode(v: &str) -> String {
        let bytes = v.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("utf8")
    }
    s.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

#[tokio::test]
async fn an_email_channel_delivers_through_a_real_smtp_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let smtp = SmtpServer::start();
    let ch = channel(
        &store,
        "mail",
        "email",
        json!({
            "host": "127.0.0.1", "port": smtp.port, "tls": "none",
            "from": "fleetpoll <fleetpoll@example.org>", "to": ["ops@example.org", "dba@example.org"]
        }),
    )
    .await;

    let tested = fleetpoll::notify::test_channel(&store, ch, Duration::from_secs(10))
        .await
        .expect("test");
    assert!(tested.delivered, "{tested:?}");
    assert!(tested.answer.starts_with("250"), "{tested:?}");
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        got[0].contains("Subject: [TEST] fleetpoll test message"),
        "{}",
        got[0]
    );

    let ids = servers(&store, dir.path(), &["db-1", "db-2"]).await;
    let t0 = Utc::now();
    let alerts = firing_alerts(&store, &ids, t0).await;
    intents(&store, &alerts, ch, "firing", t0).await;
    let (d, _) = dispatcher(&store);
    let r = d
        .tick(t0 + chrono::Duration::seconds(30))
        .await
        .expect("tick");
    assert_eq!(r.delivered, 1, "{r:?}");
    let got = smtp.wait_for(2, Duration::from_secs(10)).await;
    let nid = outbox(&store).await[0].0.clone();
    let mail = got
        .iter()
        .find(|m| m.contains(&nid))
        .unwrap_or_else(|| panic!("no message with delivery id {nid}: {got:#?}"));
    assert!(
        mail.contains("Subject: [FIRING] disk critical: 2 servers"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("X-Fleetpoll-Delivery: {nid}")),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("Message-ID: <{nid}@fleetpoll>")),
        "{mail}"
    );
    assert!(
        mail.contains("ops@example.org") && mail.contains("dba@example.org"),
        "{mail}"
    );
    assert!(mail.contains("db-2 /var: disk_percent 94.5"), "{mail}");
}

/// The outbound heartbeat (`heartbeat_url`, issue #16): a POST every interval with this
/// process's identity and counts, going on while the receiver fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_reaches_its_receiver_every_interval_and_outlives_a_failing_one() {
    let receiver = Receiver::start(None);
    receiver.set_mode(Mode::Answer(500));
    let url = receiver.url("/ping/s3cret-token");
    let app = crate::common::TestApp::start_with(|c| {
        c.poll_interval_secs = 1;
        c.heartbeat_url = url.clone();
    })
    .await;
    let wait_for = async |n: usize| {
        let start = Instant::now();
        while receiver.requests().len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{} beats, wanted {n}",
                receiver.requests().len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // Refused twice, and it goes on; answered, and it goes on.
    wait_for(2).await;
    receiver.set_mode(Mode::Answer(200));
    wait_for(4).await;
    app.stop().await;
    let beats = receiver.requests();
    let mut last: Option<DateTime<Utc>> = None;
    for b in &beats {
        assert_eq!(
            (b.method.as_str(), b.path.as_str()),
            ("POST", "/ping/s3cret-token")
        );
        let v = b.json();
        assert_eq!(v["service"], "fleetpoll");
        assert_eq!(v["role"], "all");
        assert_eq!(v["interval_secs"], 1);
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert!(v["id"]
            .as_str()
            .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()));
        assert!(
            v["polls"]["ok"].is_u64() && v["polls"]["unreachable"].is_u64(),
            "{v}"
        );
        // Hosts are leased only with several pollers on PostgreSQL.
        assert_eq!(
            v["leased_hosts"].is_null(),
            !crate::common::on_postgres(),
            "{v}"
        );
        let sent: DateTime<Utc> = v["sent_at"]
            .as_str()
            .expect("sent_at")
            .parse()
            .expect("time");
        assert!(
            last.is_none_or(|l| sent - l >= chrono::Duration::milliseconds(800)),
            "{v}"
        );
        last = Some(sent);
    }
}
