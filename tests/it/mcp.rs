//! Issue #15: MCP. An rmcp client over both transports (the real `fleetpoll mcp` binary on
//! stdio, and `/mcp` of a started app over HTTP) against a real SQLite file holding servers,
//! samples and a firing alert: every tool is listed, each read tool answers what the API
//! answers, the write tool needs a role and `confirm` and is audited, bad callers and foreign
//! origins are refused, and client mistakes are tool errors naming the argument.

use chrono::{Duration, Utc};
use fleetpoll::activity::Actor;
use fleetpoll::alerts::eval::Change;
use fleetpoll::alerts::{Alert, AlertState, Observed};
use fleetpoll::auth::Role;
use fleetpoll::inventory::ServerStatus;
use fleetpoll::model::{ContainerSample, DiskSample, DockerState, ServerSample, Snapshot};
use fleetpoll::store::{AlertWrite, PollWrite, ServerUpdate};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{self, TestApp};

type Client = RunningService<RoleClient, ()>;

const TOOLS: &[&str] = &[
    "get_dashboard_summary",
    "list_servers",
    "get_server_metrics",
    "get_app_metrics",
    "get_activity_logs",
    "get_alerts",
    "explain_server",
    "acknowledge_alert",
];

/// A started app (API only: no scheduler, so nothing changes the figures the test wrote)
/// with two servers, half an hour of samples and two containers on `web-1`, a firing alert
/// there, and a viewer's and an operator's token.
struct Fleet {
    app: TestApp,
    web: Uuid,
    alert: Uuid,
    viewer: String,
    operator: String,
}

async fn server(app: &TestApp, name: &str, tags: &[&str]) -> Uuid {
    common::tagged_server(&app.store, app.dir.path(), name, tags).await
}

fn container(name: &str, state: &str, cpu: f64) -> ContainerSample {
    ContainerSample {
        container_id: format!("{name}0123456789ab"),
        name: name.into(),
        image: Some(format!("example/{name}:1")),
        state: state.into(),
        status_text: "Up 2 hours".into(),
        exit_code: None,
        health: None,
        cpu_percent: Some(cpu),
        cpu_time_seconds: None,
        mem_used_bytes: Some(50_000_000),
        mem_limit_bytes: Some(1_000_000_000),
        mem_percent: Some(5.0),
        net_rx_bytes: Some(1_000),
        net_tx_bytes: Some(2_000),
        block_read_bytes: Some(0),
        block_write_bytes: Some(4_096),
        pids: Some(3),
    }
}

async fn fleet() -> Fleet {
    let app = TestApp::start_with(|c| c.role = "api".into()).await;
    let web = server(&app, "web-1", &["web", "prod"]).await;
    let _db = server(&app, "db-1", &["prod"]).await;
    let now = Utc::now();
    for i in 0..30i64 {
        let ts = now - Duration::minutes(30 - i);
        let snapshot = Snapshot {
            taken_at: ts,
            server: ServerSample {
                cpu_busy_percent: Some(20.0 + i as f64),
                load1: Some(0.5),
                mem_total_bytes: Some(8 << 30),
                mem_used_bytes: Some((2 << 30) + i as u64 * 1_000_000),
                mem_available_bytes: Some(5 << 30),
                swap_total_bytes: Some(1 << 30),
                swap_used_bytes: Some(0),
                uptime_seconds: Some(86_400),
                ..ServerSample::default()
            },
            disks: vec![DiskSample {
                filesystem: "/dev/sda1".into(),
                mount: "/".into(),
                total_bytes: Some(100 << 30),
                used_bytes: Some(40 << 30),
                available_bytes: Some(60 << 30),
                use_percent: Some(40.0),
            }],
            containers: vec![
                container("api", "running", 3.0 + i as f64),
                container("worker", "running", 1.5),
            ],
            docker: DockerState::Available,
            problems: vec![],
        };
        let update = ServerUpdate {
            status: Some(ServerStatus::Online),
            reason: Some(None),
            last_sample_at: Some(ts),
            last_poll_at: Some(ts),
            consecutive_failures: Some(0),
            ..ServerUpdate::default()
        };
        app.store
            .record_poll(web, Some(&snapshot), &update, &[])
            .await
            .expect("record a poll");
    }
    let (status, rule) = app
        .send(
            reqwest::Method::POST,
            "/api/alert-rules",
            Some(
                &json!({ "name": "cpu high", "metric": "cpu_percent", "op": ">",
                         "threshold": 40, "severity": "critical" })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let rule_id: Uuid = rule["id"].as_str().expect("rule id").parse().expect("uuid");
    let alert = Uuid::new_v4();
    let fired = Alert {
        id: alert,
        rule_id,
        server_id: web,
        subject: String::new(),
        state: AlertState::Firing,
        value: Some(Observed::Number(49.0)),
        started_at: now,
        fired_at: Some(now),
        resolved_at: None,
        last_notified_at: None,
        acked_at: None,
        acked_by: None,
        ack_comment: None,
    };
    app.store
        .record_polls(&[PollWrite {
            server_id: web,
            snapshot: None,
            update: &ServerUpdate::default(),
            events: &[],
            alerts: &[AlertWrite {
                change: Change::Open(fired),
                notice: None,
                channels: vec![],
            }],
        }])
        .await
        .expect("store the alert");
    let token = |name: &'static str, role| {
        let store = app.store.clone();
        async move {
            let (_, secret) =
                fleetpoll::ops::create_token(&store, name, role, None, &Actor::system())
                    .await
                    .expect("token");
            secret.expose().to_string()
        }
    };
    let viewer = token("assistant", Role::Viewer).await;
    let operator = token("ops-bot", Role::Operator).await;
    Fleet {
        app,
        web,
        alert,
        viewer,
        operator,
    }
}

/// `fleetpoll --db DB mcp` as a child process, acting as `token`.
fn stdio_command(db: &std::path::Path, token: Option<&str>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetpoll"));
    for (k, _) in std::env::vars() {
        if k.starts_with("FLEETPOLL_") {
            cmd.env_remove(k);
        }
    }
    // The app's own configuration (the summary reports its poll interval).
    common::with_db(cmd.as_std_mut(), db)
        .env("FLEETPOLL_POLL_INTERVAL_SECS", "3600")
        .arg("mcp");
    if let Some(t) = token {
        cmd.env("FLEETPOLL_TOKEN", t);
    }
    cmd
}

async fn stdio_client(f: &Fleet, token: &str) -> Client {
    let cmd = stdio_command(&f.app.dir.path().join("fleetpoll.db"), Some(token));
    ().serve(TokioChildProcess::new(cmd).expect("spawn fleetpoll mcp"))
        .await
        .expect("MCP handshake over stdio")
}

async fn http_client(f: &Fleet, token: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(f.app.url("/mcp")).auth_header(token),
    );
    ().serve(transport).await.expect("MCP handshake over HTTP")
}

/// Calls `tool`; returns the structured answer and whether it is a tool error.
async fn call(client: &Client, tool: &str, args: Value) -> (bool, Value) {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let r: CallToolResult = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: a tool call must never be a protocol error: {e}"));
    let v = r.structured_content.clone().expect("structured content");
    let size = serde_json::to_vec(&v).expect("json").len();
    assert!(size <= 8 * 1024, "{tool}: {size} bytes");
    (r.is_error == Some(true), v)
}

/// Fields that change by themselves between two reads (the clock).
fn steady(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.shift_remove("generated_at");
                m.shift_remove("sample_age_secs");
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn q(t: &Value) -> String {
    t.as_str().expect("time").replace('+', "%2B")
}

/// Every read tool against its API endpoint, and the client errors, on one transport.
async fn read_tools_answer_as_the_api(f: &Fleet, client: &Client) {
    let app = &f.app;
    let listed: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| {
            assert_eq!(
                t.input_schema.get("type"),
                Some(&json!("object")),
                "{}",
                t.name
            );
            t.name.to_string()
        })
        .collect();
    for t in TOOLS {
        assert!(listed.iter().any(|l| l == t), "{t} missing from {listed:?}");
    }

    // The summary: every figure of the API's, without its per-server rows.
    let (err, mcp) = call(client, "get_dashboard_summary", json!({})).await;
    assert!(!err, "{mcp}");
    let (_, api) = app.get("/api/dashboard/summary").await;
    for (k, want) in steady(api.clone()).as_object().expect("summary") {
        if k == "servers" {
            assert!(mcp.get("servers").is_none());
            continue;
        }
        assert_eq!(steady(mcp[k].clone()), *want, "summary field {k}");
    }
    assert_eq!(mcp["total_servers"], 2);
    assert_eq!(mcp["firing_alerts"]["critical"], 1);

    // list_servers: the summary's rows, filtered.
    let (err, mcp) = call(client, "list_servers", json!({ "tag": "web" })).await;
    assert!(!err, "{mcp}");
    let rows: Vec<Value> = api["servers"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["tags"].as_array().expect("tags").contains(&json!("web")))
        .cloned()
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(steady(mcp["items"].clone()), steady(json!(rows)));
    assert_eq!(mcp["items"][0]["health"], "healthy");
    let (_, page) = call(client, "list_servers", json!({ "tag": "prod", "limit": 1 })).await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["next"]["offset"], 1, "{page}");
    let (_, last) = call(
        client,
        "list_servers",
        json!({ "tag": "prod", "limit": 1, "offset": 1 }),
    )
    .await;
    assert_eq!(last["next"], Value::Null);
    assert_ne!(page["items"][0]["id"], last["items"][0]["id"]);

    // A server's history, by name and by id: the API's with the same window and points.
    let (err, mcp) = call(
        client,
        "get_server_metrics",
        json!({ "server": "web-1", "period": "1h" }),
    )
    .await;
    assert!(!err, "{mcp}");
    assert!(mcp["points"].as_u64().expect("points") > 0, "{mcp}");
    let (_, api) = app
        .get(&format!(
            "/api/servers/{}/metrics?since={}&until={}&points={}",
            f.web,
            q(&mcp["since"]),
            q(&mcp["until"]),
            mcp["max_points"]
        ))
        .await;
    for k in ["server_id", "tier", "resolution_secs", "points", "items"] {
        assert_eq!(mcp[k], api[k], "metrics field {k}");
    }
    // 500 points of half an hour of samples do not fit 8 KB: the store is asked for fewer.
    let (err, big) = call(
        client,
        "get_server_metrics",
        json!({ "server": "web-1", "points": 500 }),
    )
    .await;
    assert!(!err, "{big}");
    assert!(
        big["max_points"].as_u64().expect("max_points") < 30,
        "{big}"
    );
    assert!(
        big["note"].as_str().expect("a note").contains("8 KB"),
        "{big}"
    );
    let (_, by_id) = call(
        client,
        "get_server_metrics",
        json!({ "server": f.web.to_string() }),
    )
    .await;
    assert_eq!(by_id["server_id"], json!(f.web));

    // One container's history, then every container's.
    let (err, mcp) = call(
        client,
        "get_app_metrics",
        json!({ "server": "web-1", "app": "api" }),
    )
    .await;
    assert!(!err, "{mcp}");
    let (_, api) = app
        .get(&format!(
            "/api/servers/{}/containers/api/metrics?since={}&until={}&points={}",
            f.web,
            q(&mcp["since"]),
            q(&mcp["until"]),
            mcp["max_points"]
        ))
        .await;
    for k in ["container", "tier", "resolution_secs", "points", "items"] {
        assert_eq!(mcp[k], api[k], "container field {k}");
    }
    let (err, mcp) = call(client, "get_app_metrics", json!({ "server": "web-1" })).await;
    assert!(!err, "{mcp}");
    let (_, api) = app.get(&format!("/api/servers/{}/containers", f.web)).await;
    assert_eq!(mcp["total"], api["total"]);
    let items = mcp["items"].as_array().expect("items");
    assert!(!items.is_empty());
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["container"], api["items"][i], "container {i}");
        let h = &item["history"];
        let name = item["container"]["name"].as_str().expect("name");
        let (_, api_h) = app
            .get(&format!(
                "/api/servers/{}/containers/{name}/metrics?since={}&until={}&points={}",
                f.web,
                q(&h["since"]),
                q(&h["until"]),
                h["max_points"]
            ))
            .await;
        assert_eq!(h["items"], api_h["items"], "history of {name}");
    }

    // The activity log, by server.
    let (err, mcp) = call(
        client,
        "get_activity_logs",
        json!({ "server": "web-1", "limit": 5 }),
    )
    .await;
    assert!(!err, "{mcp}");
    let (_, api) = app
        .get(&format!("/api/activity?server_id={}&limit=5", f.web))
        .await;
    assert_eq!(mcp["total"], api["total"]);
    assert_eq!(mcp["items"], api["items"]);
    assert!(mcp["total"].as_u64().expect("total") >= 1);

    // Alerts.
    let (err, mcp) = call(client, "get_alerts", json!({ "state": "firing" })).await;
    assert!(!err, "{mcp}");
    let (_, api) = app.get("/api/alerts?state=firing").await;
    assert_eq!(mcp["total"], 1);
    assert_eq!(mcp["items"], api["items"]);

    // explain_server: the API's record of the server and its firing alert, in words too.
    let (err, mcp) = call(client, "explain_server", json!({ "server": "web-1" })).await;
    assert!(!err, "{mcp}");
    let (_, api) = app.get(&format!("/api/servers/{}", f.web)).await;
    assert_eq!(steady(mcp["server"].clone()), steady(api));
    assert_eq!(mcp["status"], "online");
    assert_eq!(mcp["firing_alerts"]["items"][0]["id"], json!(f.alert));
    let words = mcp["explanation"].to_string();
    assert!(
        words.contains("web-1 is online") && words.contains("cpu high"),
        "{words}"
    );
    assert!(words.contains("CPU 49%"), "the last sample's CPU: {words}");

    // Client mistakes are tool errors that name the argument.
    for (tool, args, field) in [
        ("get_server_metrics", json!({ "server": "nope" }), "server"),
        (
            "explain_server",
            json!({ "server": Uuid::new_v4().to_string() }),
            "server",
        ),
        (
            "get_server_metrics",
            json!({ "server": "web-1", "period": "2w" }),
            "period",
        ),
        (
            "get_app_metrics",
            json!({ "server": "web-1", "app": "ghost" }),
            "app",
        ),
        ("list_servers", json!({ "limit": "ten" }), "limit"),
        ("list_servers", json!({ "health": "great" }), "health"),
        ("list_servers", json!({ "colour": "blue" }), "colour"),
        (
            "get_activity_logs",
            json!({ "since": "yesterday" }),
            "since",
        ),
        ("get_alerts", json!({ "state": "angry" }), "state"),
        ("explain_server", json!({}), "server"),
    ] {
        let (err, v) = call(client, tool, args.clone()).await;
        assert!(err, "{tool} {args}: {v}");
        assert_eq!(v["field"], field, "{tool} {args}: {v}");
    }
}

fn audit_entries(store: &fleetpoll::store::Store) -> impl std::future::Future<Output = i64> + '_ {
    common::count(
        store,
        "select count(*) from activity where type = 'alert_acknowledged'",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_answers_as_the_api_and_a_viewer_cannot_acknowledge() {
    let f = fleet().await;
    let client = stdio_client(&f, &f.viewer).await;
    read_tools_answer_as_the_api(&f, &client).await;

    let (err, v) = call(
        &client,
        "acknowledge_alert",
        json!({ "alert": f.alert.to_string(), "confirm": true }),
    )
    .await;
    assert!(err, "{v}");
    let msg = v["error"].as_str().expect("error");
    assert!(msg.contains("operator") && msg.contains("viewer"), "{msg}");
    assert_eq!(audit_entries(&f.app.store).await, 0);
    let (_, alerts) = f.app.get("/api/alerts?state=firing").await;
    assert_eq!(alerts["items"][0]["acked_at"], Value::Null);
    client.cancel().await.expect("close");
    f.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_refuses_a_missing_or_dead_token_without_showing_it() {
    let f = fleet().await;
    let db = f.app.dir.path().join("fleetpoll.db");
    let dead = "fpt_0000000000000000000000000000000000000000000000000000000000000000";
    for (token, said) in [
        (None, "FLEETPOLL_TOKEN is not set"),
        (Some(dead), "not a live API token"),
    ] {
        let out = stdio_command(&db, token)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("run fleetpoll mcp");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
        assert!(!stderr.contains(dead), "the token was printed: {stderr}");
        assert!(out.stdout.is_empty(), "stdout is MCP's alone");
    }
    // A revoked token stops working for a running session too.
    let client = stdio_client(&f, &f.viewer).await;
    let (err, _) = call(&client, "get_dashboard_summary", json!({})).await;
    assert!(!err);
    let (_, tokens) = f.app.get("/api/tokens").await;
    let id = tokens
        .as_array()
        .or_else(|| tokens["items"].as_array())
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "assistant")
        .expect("the viewer's token")["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    fleetpoll::ops::revoke_token(&f.app.store, id, &Actor::system())
        .await
        .expect("revoke");
    let (err, v) = call(&client, "get_dashboard_summary", json!({})).await;
    assert!(err, "{v}");
    assert!(
        v["error"].as_str().expect("error").contains("unauthorized"),
        "{v}"
    );
    client.cancel().await.expect("close");
    f.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_as_the_api_and_an_operator_acknowledges_with_confirm_and_audit() {
    let f = fleet().await;
    let client = http_client(&f, &f.operator).await;
    read_tools_answer_as_the_api(&f, &client).await;

    // Without confirm: refused, nothing written.
    for args in [
        json!({ "alert": f.alert.to_string() }),
        json!({ "alert": f.alert.to_string(), "confirm": false }),
    ] {
        let (err, v) = call(&client, "acknowledge_alert", args).await;
        assert!(err, "{v}");
        assert_eq!(v["field"], "confirm", "{v}");
    }
    assert_eq!(audit_entries(&f.app.store).await, 0);
    let (err, v) = call(
        &client,
        "acknowledge_alert",
        json!({ "alert": Uuid::new_v4().to_string(), "confirm": true }),
    )
    .await;
    assert!(err && v["field"] == "alert", "{v}");

    let (err, v) = call(
        &client,
        "acknowledge_alert",
        json!({ "alert": f.alert.to_string(), "comment": "looking into it", "confirm": true }),
    )
    .await;
    assert!(!err, "{v}");
    assert_eq!(v["acked_by"], "token:ops-bot");
    let (_, alerts) = f.app.get("/api/alerts?state=firing").await;
    assert_eq!(alerts["items"][0]["acked_by"], "token:ops-bot");
    assert_eq!(alerts["items"][0]["ack_comment"], "looking into it");
    let (_, log) = f.app.get("/api/activity?type=alert_acknowledged").await;
    assert_eq!(log["total"], 1, "{log}");
    let entry = &log["items"][0];
    assert_eq!(entry["actor"], "token:ops-bot");
    assert_eq!(entry["details"]["via"], "mcp", "{entry}");
    assert_eq!(entry["details"]["alert_id"], json!(f.alert));
    assert_eq!(entry["details"]["source"], "127.0.0.1");
    // No token ever reaches an answer or the log.
    let all = f.app.get("/api/activity?limit=1000").await.1.to_string();
    assert!(!all.contains(&f.operator) && !all.contains(&f.viewer));
    client.cancel().await.expect("close");
    f.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_bad_tokens_and_foreign_origins() {
    let f = fleet().await;
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": { "name": "test", "version": "1" } } })
    .to_string();
    let post = |token: Option<&str>, origin: Option<&str>| {
        let mut r = f
            .app
            .anon
            .post(f.app.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init.clone());
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        async move {
            let r = r.send().await.expect("POST /mcp");
            let status = r.status().as_u16();
            let body = r.text().await.expect("body");
            assert!(!body.contains("fpt_"), "a token in an answer: {body}");
            status
        }
    };
    assert_eq!(post(None, None).await, 401);
    assert_eq!(post(Some("fpt_not-a-token"), None).await, 401);
    assert_eq!(
        post(Some(&f.viewer), Some("http://evil.example:8080")).await,
        403
    );
    assert_eq!(post(Some(&f.viewer), Some("null")).await, 403);
    assert_eq!(post(Some(&f.viewer), None).await, 200);
    let own = format!("http://{}", f.app.addr);
    assert_eq!(post(Some(&f.viewer), Some(&own)).await, 200);
    assert_eq!(
        post(Some(&f.viewer), Some("http://localhost:3000")).await,
        200
    );
    f.app.stop().await;
}
