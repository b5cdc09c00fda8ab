//! Issue #13: alert rules through the API, and alerts raised by real polls of a real sshd.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, TestApp};
use crate::harness::{DockerMode, Sshd};

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.send(Method::POST, path, Some(&body.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_validated_field_by_field_created_edited_and_deleted() {
    let app = TestApp::start().await;
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
    let app = TestApp::start().await;
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
    let app = TestApp::start().await;
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
        let out = common::fleetpoll()
            .arg("--db")
            .arg(&db)
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
