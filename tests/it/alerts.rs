//! Issue #13: alert rules through the API, and alerts raised by real polls of a real sshd.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, TestApp};
use crate::harness::{DockerMode, Sshd};

/// The app with a scheduler that will not poll these tests' servers on its own (its
/// interval is ten years): each test polls through its own scheduler and counts what that
/// wrote, which a poll of the app's own would add to.
async fn quiet_app() -> TestApp {
    TestApp::start_with_interval(10 * 365 * 86_400).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.send(Method::POST, path, Some(&body.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_validated_field_by_field_created_edited_and_deleted() {
    let app = quiet_app().await;
    let (status, v) = app.get("/api/alert-rules").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"disk critical") && names.contains(&"server offline"),
        "{names:?}"
    );

    let base = json!({ "name": "load", "metric": "load1_per_core", "op": ">", "threshold": 2 });
    for (field, patch) in [
        ("metric", json!({ "metric": "load" })),
        ("op", json!({ "op": "=>" })),
        ("threshold", json!({ "threshold": "high" })),
        ("mount", json!({ "mount": "/var/*" })),
        ("channels", json!({ "channels": ["pager"] })),
        ("clear_threshold", json!({ "clear_threshold": 3 })),
        ("bogus", json!({ "bogus": 1 })),
    ] {
        let mut body = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, v) = post(&app, "/api/alert-rules", body).await;
        assert_eq!((status, v["field"].as_str()), (400, Some(field)), "{v}");
    }
    let (status, rule) = post(&app, "/api/alert-rules", base.clone()).await;
    assert_eq!(status, 201, "{rule}");
    let (status, v) = post(&app, "/api/alert-rules", base).await;
    assert_eq!((status, v["field"].as_str()), (409, Some("name")), "{v}");
    let id = rule["id"].as_str().expect("id");
    let (status, v) = app
        .send(
            Method::PATCH,
            &format!("/api/alert-rules/{id}"),
            Some(&json!({ "threshold": 3, "for_secs": 120 }).to_string()),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["threshold"].as_f64(), v["for_secs"].as_u64()),
        (Some(3.0), Some(120))
    );
    let (status, _) = app
        .send(Method::DELETE, &format!("/api/alert-rules/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get(&format!("/api/alert-rules/{id}")).await;
    assert_eq!(status, 404);
    let types = common::count(
        &app.store,
        "select count(distinct type) from activity where type like 'alert_rule_%'",
    )
    .await;
    assert_eq!(types, 3, "created, updated and deleted are audited");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_fire_acknowledge_and_resolve_alerts_and_an_unreachable_host_keeps_its_metric_alerts()
{
    let mut sshd = Sshd::start(DockerMode::Missing);
    let app = quiet_app().await;
    // Every real disk is more than 0% full: this fires at the first poll, per mount.
    let (status, rule) = post(
        &app,
        "/api/alert-rules",
        json!({ "name": "root disk used", "metric": "disk_percent", "op": ">", "threshold": 0,
                "mount": "/", "severity": "critical" }),
    )
    .await;
    assert_eq!(status, 201, "{rule}");
    let server = common::add(&app.store, common::registration("web-1", &sshd)).await;
    let scheduler =
        fleetpoll::scheduler::Scheduler::new(app.store.clone(), common::settings(app.dir.path()));
    let polled = scheduler.poll_and_record(server.clone()).await;
    assert!(polled.outcome.is_ok(), "{:?}", polled.outcome.err());

    let (_, firing) = app.get("/api/alerts?state=firing").await;
    let items = firing["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{firing}");
    assert_eq!(items[0]["rule"], "root disk used");
    assert_eq!(items[0]["subject"], "/");
    assert_eq!(items[0]["server_name"], "web-1");
    let alert_id = items[0]["id"].as_str().expect("id").to_string();
    let (_, summary) = app.get("/api/dashboard/summary").await;
    assert_eq!(
        summary["firing_alerts"]["critical"], 1,
        "{}",
        summary["firing_alerts"]
    );
    assert_eq!(summary["servers"][0]["alerts_firing"], 1);
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
        metrics.contains("fleetpoll_alerts{state=\"firing\",severity=\"critical\"} 1\n"),
        "{metrics}"
    );

    let (status, acked) = post(
        &app,
        &format!("/api/alerts/{alert_id}/ack"),
        json!({ "comment": "known, cleaning up" }),
    )
    .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["ack_comment"], "known, cleaning up");
    assert!(
        acked["acked_by"]
            .as_str()
            .is_some_and(|a| a.starts_with("token:")),
        "{acked}"
    );

    // The host goes away: the default offline rule fires, the disk alert is not resolved
    // by a poll that measured nothing.
    sshd.stop();
    let fresh = app.store.server(server.id).await.expect("server");
    let failed = scheduler.poll_and_record(fresh).await;
    assert!(failed.outcome.is_err());
    let (_, firing) = app.get("/api/alerts?state=firing").await;
    let mut rules: Vec<&str> = firing["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["rule"].as_str())
        .collect();
    rules.sort_unstable();
    assert_eq!(rules, ["root disk used", "server offline"], "{firing}");

    sshd.restart();
    let fresh = app.store.server(server.id).await.expect("server");
    assert!(scheduler.poll_and_record(fresh).await.outcome.is_ok());
    let (_, resolved) = app.get("/api/alerts?state=resolved").await;
    assert_eq!(resolved["items"][0]["rule"], "server offline", "{resolved}");
    assert!(resolved["items"][0]["resolved_at"].is_string());
    let entries = common::count(
        &app.store,
        "select count(*) from activity where type in ('alert_firing', 'alert_resolved', 'alert_acknowledged')",
    )
    .await;
    assert_eq!(entries, 4, "two fired, one acknowledged, one resolved");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_alert_fires_and_shows_but_tells_no_one() {
    let sshd = Sshd::start(DockerMode::Missing);
    let app = quiet_app().await;
    // A channel row as the channels API stores it; only its name matters here.
    sqlx::query(
        "insert into notification_channels (id, name, kind, config, enabled, created_at, updated_at) \
         values ('00000000-0000-4000-8000-0000000000c1', 'pager', 'webhook', '{}', 1, 0, 0)",
    )
    .execute(app.store.pool())
    .await
    .expect("channel");
    let (status, rule) = post(
        &app,
        "/api/alert-rules",
        json!({ "name": "root used", "metric": "disk_percent", "op": ">", "threshold": 0,
                "mount": "/", "channels": ["pager"] }),
    )
    .await;
    assert_eq!(status, 201, "{rule}");
    let (status, v) = post(
        &app,
        "/api/silences",
        json!({ "server": "web-1", "ends_at": "2999-01-01T00:00:00Z", "comment": "too long" }),
    )
    .await;
    assert_eq!((status, v["field"].as_str()), (400, Some("ends_at")), "{v}");
    let ends = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (status, silence) = post(
        &app,
        "/api/silences",
        json!({ "server": "web-1", "ends_at": ends, "comment": "kernel upgrade" }),
    )
    .await;
    assert_eq!(status, 201, "{silence}");

    let scheduler =
        fleetpoll::scheduler::Scheduler::new(app.store.clone(), common::settings(app.dir.path()));
    let quiet = common::add(&app.store, common::registration("web-1", &sshd)).await;
    let loud = common::add(&app.store, common::registration("web-2", &sshd)).await;
    assert!(scheduler.poll_and_record(quiet).await.outcome.is_ok());
    let (_, firing) = app.get("/api/alerts?state=firing").await;
    assert_eq!(
        firing["total"], 1,
        "the silenced alert still fires: {firing}"
    );
    let intents = "select count(*) from notification_intents";
    assert_eq!(
        common::count(&app.store, intents).await,
        0,
        "and tells no one"
    );

    assert!(scheduler.poll_and_record(loud).await.outcome.is_ok());
    assert_eq!(
        common::count(&app.store, intents).await,
        1,
        "web-2 is not silenced"
    );

    let id = silence["id"].as_str().expect("id");
    let (status, ended) = app
        .send(Method::DELETE, &format!("/api/silences/{id}"), None)
        .await;
    assert_eq!(status, 200, "{ended}");
    let (_, listed) = app.get("/api/silences").await;
    assert_eq!(listed["total"], 0, "{listed}");
    let audited = common::count(
        &app.store,
        "select count(*) from activity where type in ('silence_created', 'silence_expired')",
    )
    .await;
    assert_eq!(audited, 2);
    app.stop().await;
}

#[test]
fn the_cli_adds_edits_lists_and_removes_rules_and_silences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cli.db");
    let run = |args: &[&str]| {
        let out = common::with_db(&mut common::fleetpoll(), &db)
            .args(args)
            .output()
            .expect("run fleetpoll");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&[
        "alert",
        "rule",
        "add",
        "--name",
        "load",
        "--metric",
        "load1_per_core",
        "--op",
        ">",
        "--threshold",
        "2",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&[
        "alert",
        "rule",
        "edit",
        "load",
        "--threshold",
        "3",
        "--tag",
        "prod",
        "--for-secs",
        "120",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&[
        "alert",
        "rule",
        "add",
        "--name",
        "bad",
        "--metric",
        "cpu_percent",
        "--op",
        ">",
        "--threshold",
        "1",
        "--mount",
        "/",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("mount:"), "{err}");
    let (_, out, _) = run(&["--json", "alert", "rule", "list"]);
    let rules: Value = serde_json::from_str(&out).expect("json");
    let load = rules
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["name"] == "load")
        .expect("the new rule");
    assert_eq!(
        (load["threshold"].as_f64(), load["for_secs"].as_u64()),
        (Some(3.0), Some(120))
    );
    assert_eq!(load["scope"]["tags"], json!(["prod"]));

    let (code, out, err) = run(&[
        "--json",
        "silence",
        "add",
        "--tag",
        "prod",
        "--for",
        "2h",
        "--comment",
        "patching",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let id = serde_json::from_str::<Value>(&out).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, out, _) = run(&["silence", "list"]);
    assert!(out.contains(&id) && out.contains("patching"), "{out}");
    let (code, _, err) = run(&["silence", "expire", &id]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run(&["--json", "silence", "list"]);
    assert_eq!(out.trim(), "[]");
    let (code, _, err) = run(&["alert", "rule", "remove", "load"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run(&["--json", "alert", "list"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json")["total"],
        0
    );
}

/// Issue #13: forty hosts of one /24 going dead at once are one outage notification and one on
/// recovery, not forty offline alerts; hosts elsewhere keep the fleet under the poller's own
/// degradation threshold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_hosts_of_one_subnet_dying_at_once_are_one_outage_notification_and_one_recovery() {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use crate::harness::receiver::Receiver;

    let receiver = Receiver::start(None);
    // The app's own scheduler must not poll these hosts meanwhile: its writer, with a
    // correlator of its own, would see a lone failure and tell it.
    let app = quiet_app().await;
    let (status, v) = post(
        &app,
        "/api/notification-channels",
        json!({ "name": "pager", "kind": "webhook", "config": { "url": receiver.url("/hook") } }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = app
        .send(
            Method::PATCH,
            "/api/alert-rules/00000000-0000-4000-8000-000000000007",
            Some(&json!({ "channels": ["pager"] }).to_string()),
        )
        .await;
    assert_eq!(status, 200, "the default offline rule tells the pager: {v}");

    let key_path = app.dir.path().join("client_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key_path)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let key = fleetpoll::ssh::keys::load_private_key(&key_path, None).expect("key");
    let options = |hosts: usize, base: Ipv4Addr, flapping: usize| {
        let mut o = fleetpoll::sim::SimOptions::new(hosts, key.public_key().clone());
        o.base = base;
        o.delay = Duration::from_millis(10);
        o.flapping = flapping;
        o.flap_period = Duration::from_secs(6);
        o
    };
    // 127.1.43.0/24: 4 steady hosts and 40 that are up 6 s, down 6 s, up again.
    let started = Instant::now();
    let rack = fleetpoll::sim::start(options(44, Ipv4Addr::new(127, 1, 43, 1), 40))
        .await
        .expect("rack");
    let elsewhere = fleetpoll::sim::start(options(100, Ipv4Addr::new(127, 1, 44, 1), 0))
        .await
        .expect("elsewhere");
    for (fleet, name) in [(&rack, "rack.csv"), (&elsewhere, "elsewhere.csv")] {
        let csv = app.dir.path().join(name);
        fleetpoll::sim::write_hosts_csv(&csv, fleet.hosts(), "fleet", &key_path, &[]).expect("csv");
        fleetpoll::import::import_file(&app.store, &csv, &fleetpoll::activity::Actor::cli(), false)
            .await
            .expect("import");
    }
    let mut settings = common::settings(app.dir.path());
    settings.poll_interval_secs = 5;
    // An outage is told once it has lasted this long, so the whole cycle's failures are in.
    settings.group_wait_secs = 2;
    let scheduler = fleetpoll::scheduler::Scheduler::new(app.store.clone(), settings);
    let poll_all = || async {
        let servers = app.store.servers().await.expect("servers");
        scheduler.poll_now(servers).await
    };
    let at =
        |secs: u64| tokio::time::sleep(Duration::from_secs(secs).saturating_sub(started.elapsed()));

    let up = poll_all().await;
    assert!(up.iter().all(|(_, r)| r.outcome.is_ok()), "all up at first");
    at(7).await;
    let down = poll_all().await;
    assert_eq!(down.iter().filter(|(_, r)| r.outcome.is_err()).count(), 40);
    // Polls of the hosts elsewhere go on, as they do in a real fleet; the outage is told at
    // the first write after it settled.
    at(10).await;
    let steady: Vec<_> = app
        .store
        .servers()
        .await
        .expect("servers")
        .into_iter()
        .filter(|s| s.host.starts_with("127.1.44."))
        .collect();
    scheduler.poll_now(steady).await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    let body = got[0].json();
    assert_eq!(body["status"], "firing", "{body}");
    assert_eq!(body["outage"]["group"], "subnet 127.1.43.0/24", "{body}");
    assert_eq!(
        (
            body["outage"]["failing"].as_u64(),
            body["outage"]["total"].as_u64()
        ),
        (Some(40), Some(44))
    );
    let (_, firing) = app
        .get("/api/alerts?state=firing&limit=100&rule=00000000-0000-4000-8000-000000000007")
        .await;
    assert_eq!(
        firing["total"], 40,
        "each host's own offline alert still fires and shows"
    );
    let intents = common::count(&app.store, "select count(*) from notification_intents").await;
    assert_eq!(
        intents, 0,
        "and waits: no per-host notification during the outage"
    );

    at(13).await;
    let back = poll_all().await;
    assert!(back.iter().all(|(_, r)| r.outcome.is_ok()), "all back");
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let body = got[1].json();
    assert_eq!(body["status"], "resolved", "{body}");
    assert_eq!(body["outage"]["group"], "subnet 127.1.43.0/24");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.requests().len(),
        2,
        "one outage, one recovery, nothing per host"
    );
    let entries = common::count(
        &app.store,
        "select count(*) from activity where type in ('outage_started', 'outage_ended', 'poller_degraded')",
    )
    .await;
    assert_eq!(entries, 2);
    rack.shutdown().await;
    elsewhere.shutdown().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_tests_lists_and_removes_a_channel_without_printing_its_secret() {
    use std::io::Write;

    use crate::harness::receiver::Receiver;

    let receiver = Receiver::start(Some("s3cret-hmac"));
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cli.db");
    let url = receiver.url("/hook?token=abc123");
    let run = |args: &[&str], stdin: Option<String>| {
        let mut child = common::with_db(&mut common::fleetpoll(), &db)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run fleetpoll");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let config = json!({ "url": url, "secret": "s3cret-hmac" }).to_string();
    let (code, _, err) = run(
        &[
            "channel",
            "add",
            "--name",
            "pager",
            "--kind",
            "webhook",
            "--settings",
            "-",
        ],
        Some(config),
    );
    assert_eq!(code, Some(0), "{err}");
    let (_, out, err) = run(&["channel", "list"], None);
    assert!(out.contains("pager") && out.contains("sealed"), "{out}");
    for secret in ["abc123", "s3cret-hmac"] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} printed: {out}{err}"
        );
    }
    let (code, out, err) = run(&["channel", "test", "pager"], None);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Delivered"), "{out}");
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].signature_ok,
        Some(true),
        "signed with the sealed secret"
    );
    let (code, _, err) = run(
        &[
            "alert",
            "rule",
            "add",
            "--name",
            "r",
            "--metric",
            "cpu_percent",
            "--op",
            ">",
            "--threshold",
            "99",
            "--channel",
            "pager",
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["channel", "remove", "pager"], None);
    assert_eq!(code, Some(2), "refused while a rule names it");
    assert!(err.contains('r'), "{err}");
    let (code, _, err) = run(&["alert", "rule", "remove", "r"], None);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["channel", "remove", "pager"], None);
    assert_eq!(code, Some(0), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_override_changes_the_health_badge_and_the_default_rules_follow_it() {
    let sshd = Sshd::start(DockerMode::Missing);
    let app = quiet_app().await;
    let put = |path: &str, body: Value| {
        let app = &app;
        let path = path.to_string();
        async move { app.send(Method::PUT, &path, Some(&body.to_string())).await }
    };
    for (path, body, field) in [
        (
            "/api/threshold-overrides/rack/a",
            json!({ "disk_warning_percent": 1 }),
            "kind",
        ),
        (
            "/api/threshold-overrides/tag/test",
            json!({ "disk": 1 }),
            "thresholds",
        ),
        (
            "/api/threshold-overrides/tag/test",
            json!({ "disk_warning_percent": 95 }),
            "thresholds",
        ),
    ] {
        let (status, v) = put(path, body).await;
        assert_eq!((status, v["field"].as_str()), (400, Some(field)), "{v}");
    }
    // Every real disk is more than 1% full: the tag's servers turn at least `warning`.
    let (status, v) = put(
        "/api/threshold-overrides/tag/test",
        json!({ "disk_warning_percent": 1 }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let server = common::add(&app.store, common::registration("web-1", &sshd)).await;
    let scheduler =
        fleetpoll::scheduler::Scheduler::new(app.store.clone(), common::settings(app.dir.path()));
    assert!(scheduler
        .poll_and_record(server.clone())
        .await
        .outcome
        .is_ok());
    let (_, summary) = app.get("/api/dashboard/summary").await;
    let health = summary["servers"][0]["health"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(health == "warning" || health == "critical", "{summary}");
    let (_, pending) = app.get("/api/alerts?state=pending").await;
    assert!(
        pending["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|a| a["rule"] == "disk warning"),
        "the default disk rule follows the tag's 1%: {pending}"
    );
    let (status, _) = app
        .send(Method::DELETE, "/api/threshold-overrides/tag/test", None)
        .await;
    assert_eq!(status, 204);
    let (_, listed) = app.get("/api/threshold-overrides").await;
    assert_eq!(listed["total"], 0, "{listed}");
    let audited = common::count(
        &app.store,
        "select count(*) from activity where type in ('thresholds_overridden', 'threshold_override_removed')",
    )
    .await;
    assert_eq!(audited, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_restarted_between_two_polls_fires_a_restart_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = common::docker_ps_line();
    let status = |s: &str| {
        line.replace(
            "\"Status\":\"Up 1 second (health: starting)\"",
            &format!("\"Status\":\"{s}\""),
        ) + "\n"
    };
    assert_ne!(
        status("Up 3 hours"),
        line.clone() + "\n",
        "the capture's status is the one replaced"
    );
    let (docker, ps) = common::shim_with_ps(dir.path(), &status("Up 3 hours"));
    let sshd = Sshd::start(docker);
    let app = quiet_app().await;
    let (status_code, v) = post(
        &app,
        "/api/alert-rules",
        json!({ "name": "restart loop", "metric": "container_restarts", "op": ">", "threshold": 0,
                "container": "warm*" }),
    )
    .await;
    assert_eq!(status_code, 201, "{v}");
    let server = common::add(&app.store, common::registration("busy", &sshd)).await;
    let scheduler =
        fleetpoll::scheduler::Scheduler::new(app.store.clone(), common::settings(app.dir.path()));
    assert!(scheduler
        .poll_and_record(server.clone())
        .await
        .outcome
        .is_ok());
    let (_, firing) = app.get("/api/alerts?state=firing").await;
    assert!(
        !firing.to_string().contains("restart loop"),
        "no restart yet: {firing}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // Up for less than a second, three seconds after we saw it running: it restarted.
    std::fs::write(&ps, status("Up Less than a second")).expect("write");
    assert!(scheduler.poll_and_record(server).await.outcome.is_ok());
    let (_, firing) = app.get("/api/alerts?state=firing").await;
    let hit = firing["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["rule"] == "restart loop")
        .cloned()
        .unwrap_or_else(|| panic!("the restart fires: {firing}"));
    assert_eq!(
        (hit["subject"].as_str(), hit["value"].as_f64()),
        (Some("warming"), Some(1.0))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gone_stale_fires_its_status_rule_without_a_poll_of_its_own() {
    let sshd = Sshd::start(DockerMode::Missing);
    let app = quiet_app().await;
    let (status, v) = post(
        &app,
        "/api/alert-rules",
        json!({ "name": "gone quiet", "metric": "server_status", "op": "==", "threshold": "stale" }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let quiet = common::add(&app.store, common::registration("quiet", &sshd)).await;
    let other = common::add(&app.store, common::registration("other", &sshd)).await;
    let settings = common::settings(app.dir.path());
    let scheduler = fleetpoll::scheduler::Scheduler::new(app.store.clone(), settings.clone());
    assert!(scheduler
        .poll_and_record(quiet.clone())
        .await
        .outcome
        .is_ok());
    // Its last sample is four intervals old: online, but stale.
    let old =
        chrono::Utc::now() - chrono::Duration::seconds(4 * settings.poll_interval_secs as i64);
    sqlx::query("update servers set last_sample_at = $1 where id = $2")
        .bind(old.timestamp_millis())
        .bind(quiet.id.to_string())
        .execute(app.store.pool())
        .await
        .expect("age the sample");
    // Another server's poll is the writer's occasion to look (a new scheduler: the sweep runs
    // at most once a minute).
    let later = fleetpoll::scheduler::Scheduler::new(app.store.clone(), settings);
    assert!(later.poll_and_record(other).await.outcome.is_ok());
    let (_, firing) = app.get("/api/alerts?state=firing").await;
    let items = firing["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|a| a["rule"] == "gone quiet" && a["server_name"] == "quiet"),
        "{firing}"
    );
    assert!(
        !items.iter().any(|a| a["server_name"] == "other"),
        "{firing}"
    );
    let stored = app.store.server(quiet.id).await.expect("server");
    assert_eq!(
        stored.status.as_str(),
        "online",
        "stale stays derived, never stored"
    );
    app.stop().await;
}
