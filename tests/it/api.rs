use reqwest::Method;
use serde_json::Value;

use crate::common::{self, TestApp};
use crate::harness::{DockerMode, Sshd};

fn body(sshd: &Sshd, name: &str) -> String {
    serde_json::json!({
        "name": name, "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "key_path": sshd.client_key, "tags": ["prod", "web"],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_registered_edited_and_removed_over_http() {
    let sshd = Sshd::start(DockerMode::Missing);
    let app = TestApp::start().await;
    let key_text = std::fs::read_to_string(&sshd.client_key).expect("key");

    let (status, created) = app
        .send(Method::POST, "/api/servers", Some(&body(&sshd, "web-1")))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["status"], "unknown");
    assert_eq!(created["tags"], serde_json::json!(["prod", "web"]));
    assert!(
        !created.to_string().contains(key_text.trim()),
        "private key leaked"
    );

    let (status, list) = app.get("/api/servers").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);

    let (status, dup) = app
        .send(Method::POST, "/api/servers", Some(&body(&sshd, "web-1")))
        .await;
    assert_eq!(status, 409, "{dup}");
    assert_eq!(dup["field"], "name");

    let (status, patched) = app
        .send(
            Method::PATCH,
            &format!("/api/servers/{id}"),
            Some(r#"{"tags":["db"],"enabled":false}"#),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["status"], "disabled");
    assert_eq!(patched["tags"], serde_json::json!(["db"]));

    let (status, _) = app
        .send(Method::DELETE, &format!("/api/servers/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, gone) = app.get(&format!("/api/servers/{id}")).await;
    assert_eq!(status, 404, "{gone}");

    let (_, log) = app.get("/api/activity?limit=100").await;
    let kinds: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for k in [
        "system_started",
        "server_added",
        "server_updated",
        "server_removed",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let added = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["type"] == "server_added")
        .expect("added");
    assert_eq!(added["actor"], "token:test-admin");
    assert_eq!(added["details"]["source"], "127.0.0.1");
    assert!(
        !log.to_string().contains(key_text.trim()),
        "private key leaked into the activity log"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_naming_the_field() {
    let sshd = Sshd::start(DockerMode::Missing);
    let app = TestApp::start().await;
    let good: Value = serde_json::from_str(&body(&sshd, "ok-1")).expect("json");
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b.to_string()
    };
    let cases = [
        (with("port", 70000.into()), "port"),
        (with("port", 0.into()), "port"),
        (with("port", "22".into()), "port"),
        (with("host", "not a host".into()), "host"),
        (with("user", "-root".into()), "user"),
        (with("name", "".into()), "name"),
        (
            with("key_path", "/nonexistent/id_ed25519".into()),
            "key_path",
        ),
        (with("tags", "prod".into()), "tags"),
        (with("colour", "red".into()), "colour"),
        ("{not json".to_string(), "body"),
        ("[1,2]".to_string(), "body"),
    ];
    for (payload, field) in cases {
        let (status, err) = app.send(Method::POST, "/api/servers", Some(&payload)).await;
        assert_eq!(status, 400, "{payload} -> {err}");
        assert_eq!(err["field"], field, "{payload} -> {err}");
        assert!(err["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let pub_key = format!("{}.pub", sshd.client_key.display());
    let (status, err) = app
        .send(
            Method::POST,
            "/api/servers",
            Some(&with("key_path", pub_key.into())),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap_or("").contains("public key"),
        "{err}"
    );

    let (status, err) = app.get("/api/servers/not-a-uuid").await;
    assert_eq!((status, err["field"].as_str()), (400, Some("id")));
    let (status, _) = app
        .get("/api/servers/8f0c1a52-1111-4c1e-9a57-111111111111")
        .await;
    assert_eq!(status, 404);
    let (status, created) = app
        .send(Method::POST, "/api/servers", Some(&good.to_string()))
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id");
    for (path, field) in [
        (format!("/api/servers/{id}/metrics?period=2h"), "period"),
        (
            format!("/api/servers/{id}/metrics?since=yesterday"),
            "since",
        ),
        (format!("/api/servers/{id}/metrics?points=0"), "points"),
        (format!("/api/servers/{id}/metrics?colour=red"), "colour"),
        ("/api/activity?limit=0".to_string(), "limit"),
        ("/api/activity?limit=5000".to_string(), "limit"),
        ("/api/activity?severity=loud".to_string(), "severity"),
        ("/api/activity?server_id=42".to_string(), "server_id"),
        ("/api/activity?until=tomorrow".to_string(), "until"),
    ] {
        let (status, err) = app.get(&path).await;
        assert_eq!(status, 400, "{path} -> {err}");
        assert_eq!(err["field"], field, "{path} -> {err}");
    }
    let (status, err) = app
        .send(
            Method::PATCH,
            &format!("/api/servers/{id}"),
            Some(r#"{"port": 70000}"#),
        )
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("port")),
        "{err}"
    );
    let (status, _) = app
        .get(&format!("/api/servers/{id}/containers/nosuch/metrics"))
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_history_and_activity_reflect_a_real_poll() {
    let live = Sshd::start(common::shim());
    let app = TestApp::start().await;
    let (status, created) = app
        .send(Method::POST, "/api/servers", Some(&body(&live, "live")))
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_string();
    let mut dead_body: Value = serde_json::from_str(&body(&live, "dead")).expect("json");
    dead_body["port"] = crate::harness::closed_port().into();
    let (status, _) = app
        .send(Method::POST, "/api/servers", Some(&dead_body.to_string()))
        .await;
    assert_eq!(status, 201);
    let servers = app.store.servers().await.expect("servers");
    common::poll(&app.store, app.dir.path(), servers).await;

    let (status, s) = app.get("/api/dashboard/summary").await;
    assert_eq!(status, 200);
    assert_eq!(s["total_servers"], 2);
    assert_eq!(s["online_servers"], 1);
    assert_eq!(s["offline_servers"], 1);
    // The shim prints a real capture of 8 containers: unhealthy "sick" and "gone" (exit 3) are errors.
    assert_eq!(s["total_containers"], 8);
    let sum = s["running_containers"].as_u64().unwrap_or(0)
        + s["stopped_containers"].as_u64().unwrap_or(0)
        + s["error_containers"].as_u64().unwrap_or(0);
    assert_eq!(sum, 8);
    assert!(s["error_containers"].as_u64().unwrap_or(0) >= 2, "{s}");
    assert!(
        s["avg_memory_percent"]
            .as_f64()
            .is_some_and(|m| m > 0.0 && m < 100.0),
        "{s}"
    );
    let rows = s["servers"].as_array().expect("servers");
    let live_row = rows.iter().find(|r| r["name"] == "live").expect("live row");
    assert!(
        matches!(
            live_row["health"].as_str(),
            Some("healthy" | "warning" | "critical")
        ),
        "{live_row}"
    );
    let (_, shown) = app.get(&format!("/api/servers/{id}")).await;
    assert_eq!(
        shown["health"], live_row["health"],
        "one server's page shows its summary badge"
    );
    let dead_row = rows.iter().find(|r| r["name"] == "dead").expect("dead row");
    assert_eq!(dead_row["health"], "offline");
    assert!(
        dead_row["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("unreachable")),
        "{dead_row}"
    );
    assert!(s["recent_activities"]
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.len() <= 10));

    let (status, m) = app
        .get(&format!("/api/servers/{id}/metrics?period=1h"))
        .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["points"], 1);
    assert!(m["items"][0]["mem_total_bytes"]
        .as_u64()
        .is_some_and(|v| v > 0));
    let (_, d) = app.get(&format!("/api/servers/{id}/disks")).await;
    assert!(
        d["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["mount"] == "/")),
        "{d}"
    );
    let (_, c) = app.get(&format!("/api/servers/{id}/containers")).await;
    assert_eq!(c["items"].as_array().map(Vec::len), Some(8));
    let (status, h) = app
        .get(&format!(
            "/api/servers/{id}/containers/busy/metrics?period=24h"
        ))
        .await;
    assert_eq!(status, 200, "{h}");
    assert!(
        h["items"][0]["cpu_percent"]
            .as_f64()
            .is_some_and(|v| v > 40.0),
        "{h}"
    );

    let (_, a) = app
        .get(&format!("/api/activity?server_id={id}&type=server_online"))
        .await;
    assert_eq!(a["total"], 1, "{a}");
    let (_, a) = app.get("/api/activity?severity=warning").await;
    assert!(a["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|e| e["severity"] == "warning"));
    assert!(
        a["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["type"] == "server_offline"),
        "{a}"
    );
    let (_, page) = app.get("/api/activity?limit=1&offset=1").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert!(page["total"].as_i64().unwrap_or(0) > 1);

    // The dashboard's own series: each mount over time, every server's CPU sparkline.
    let (status, dh) = app
        .get(&format!("/api/servers/{id}/disks/history?period=1h"))
        .await;
    assert_eq!(status, 200, "{dh}");
    let root = dh["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["mount"] == "/")
        .unwrap_or_else(|| panic!("no / in {dh}"));
    let root_now = d["items"]
        .as_array()
        .expect("disks")
        .iter()
        .find(|r| r["mount"] == "/")
        .expect("/");
    assert_eq!(root["points"].as_array().map(Vec::len), Some(1), "{root}");
    assert_eq!(root["points"][0]["use_percent"], root_now["use_percent"]);
    assert_eq!(root["points"][0]["total_bytes"], root_now["total_bytes"]);
    let (status, sp) = app
        .get("/api/dashboard/sparklines?minutes=60&points=30")
        .await;
    assert_eq!(status, 200, "{sp}");
    let items = sp["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "only the live server has samples: {sp}");
    assert_eq!(items[0]["server_id"].as_str(), Some(id.as_str()));
    let cpu = items[0]["cpu"].as_array().expect("cpu");
    assert_eq!(cpu.len(), 30);
    let filled: Vec<&Value> = cpu.iter().filter(|v| !v.is_null()).collect();
    assert_eq!(
        filled,
        [&m["items"][0]["cpu_busy_percent"]],
        "one poll, one slice: {sp}"
    );
    assert!(
        cpu[29].is_number(),
        "the poll just made is in the newest slice: {sp}"
    );
    let dead_id = dead_row["id"].as_str().expect("id");
    let (_, only_dead) = app
        .get(&format!("/api/dashboard/sparklines?ids={dead_id}"))
        .await;
    assert_eq!(
        only_dead["items"],
        serde_json::json!([]),
        "ids limits the answer"
    );
    let (_, only_live) = app
        .get(&format!("/api/dashboard/sparklines?ids={dead_id},{id}"))
        .await;
    assert_eq!(only_live["items"].as_array().map(Vec::len), Some(1));
    for bad in ["minutes=0", "ids=nope"] {
        let (status, v) = app.get(&format!("/api/dashboard/sparklines?{bad}")).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (400, bad.split('=').next()),
            "{v}"
        );
    }
    let (_, types) = app.get("/api/activity/types").await;
    let types: Vec<&str> = types["items"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        types.contains(&"server_added") && types.contains(&"server_offline"),
        "{types:?}"
    );
    assert!(
        !types.contains(&"user_login"),
        "no login happened: {types:?}"
    );

    app.stop().await;
}

/// Issue #18: a summary row's health and reason come from the same poll. Below
/// `offline_after_failures` a host whose latest poll failed stays online, with only the sample
/// of an earlier poll: its health is "unknown" beside the failure's reason, not a verdict on that
/// older sample, and `sample_age_secs` says how old the values shown are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_whose_latest_poll_failed_is_unknown_with_its_reason_until_a_poll_succeeds() {
    let mut sshd = Sshd::start(DockerMode::Missing);
    // Interval 3600: the app's own scheduler leaves the server to the polls below.
    let app = TestApp::start().await;
    let server = common::add(&app.store, common::registration("flapping", &sshd)).await;
    let mut settings = common::settings(app.dir.path());
    settings.offline_after_failures = 2;
    let scheduler = fleetpoll::scheduler::Scheduler::new(app.store.clone(), settings);
    let poll = || async {
        let fresh = app.store.server(server.id).await.expect("server");
        scheduler.poll_and_record(fresh).await
    };
    let row = || async {
        let (status, s) = app.get("/api/dashboard/summary").await;
        assert_eq!(status, 200, "{s}");
        assert_eq!(s["poll_interval_secs"], 3600, "{s}");
        s["servers"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == "flapping").cloned())
            .unwrap_or_else(|| panic!("no row for flapping in {s}"))
    };
    let judged = |r: &Value| {
        matches!(
            r["health"].as_str(),
            Some("healthy" | "warning" | "critical")
        )
    };

    let (_, before) = app.get("/api/dashboard/summary").await;
    let never = before["servers"][0].clone();
    assert_eq!(
        (&never["health"], &never["sample_age_secs"]),
        (&Value::from("unknown"), &Value::Null),
        "no sample yet: {never}"
    );

    poll().await.outcome.expect("the first poll");
    let up = row().await;
    assert_eq!(up["status"], "online", "{up}");
    assert!(
        judged(&up),
        "a host just polled is judged on its sample: {up}"
    );
    assert!(
        up["sample_age_secs"]
            .as_i64()
            .is_some_and(|a| (0..=10).contains(&a)),
        "the sample was taken a moment ago: {up}"
    );

    sshd.stop();
    poll().await.outcome.expect_err("sshd is gone");
    let flapping = row().await;
    assert_eq!(
        flapping["status"], "online",
        "one failure of two: {flapping}"
    );
    assert_eq!(flapping["health"], "unknown", "{flapping}");
    let (_, page) = app
        .get(&format!(
            "/api/servers/{}",
            flapping["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(
        page["health"], "unknown",
        "the server's page agrees: {page}"
    );
    assert!(
        flapping["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("unreachable")),
        "{flapping}"
    );
    // The older sample's values stay, with their age, for the dashboard to show as old.
    assert!(flapping["cpu_percent"].is_number(), "{flapping}");
    assert!(flapping["sample_age_secs"].is_i64(), "{flapping}");

    sshd.restart();
    poll().await.outcome.expect("sshd is back");
    let back = row().await;
    assert!(judged(&back), "judged again once a poll succeeds: {back}");
    assert_eq!(back["status"], "online", "{back}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_form_is_checked_without_saving_and_with_the_api_s_own_messages() {
    let sshd = Sshd::start(DockerMode::Missing);
    let app = TestApp::start().await;
    let check = |body: String| {
        let app = &app;
        async move {
            let (status, v) = app
                .send(Method::POST, "/api/servers/validate", Some(&body))
                .await;
            assert_eq!(status, 200, "a check answers 200 either way: {v}");
            v
        }
    };
    let mut bad_port: Value = serde_json::from_str(&body(&sshd, "web-1")).expect("json");
    bad_port["port"] = 70000.into();
    let v = check(bad_port.to_string()).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["field"], "port");
    let (status, created) = app
        .send(Method::POST, "/api/servers", Some(&bad_port.to_string()))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], created["error"], "the same message as create");

    let v = check(body(&sshd, "web-1")).await;
    assert_eq!(v, serde_json::json!({ "valid": true }));
    assert_eq!(
        app.get("/api/servers").await.1["total"],
        0,
        "a check saves nothing"
    );

    let (status, created) = app
        .send(Method::POST, "/api/servers", Some(&body(&sshd, "web-1")))
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id");
    let v = check(body(&sshd, "web-1")).await;
    assert_eq!(
        (v["valid"].as_bool(), v["field"].as_str()),
        (Some(false), Some("name"))
    );

    // An edit is checked as the edit would be: its own name is not a conflict, a bad host is.
    let (status, v) = app
        .send(
            Method::POST,
            &format!("/api/servers/{id}/validate"),
            Some(r#"{"name":"web-1","host":"bad host!"}"#),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["field"], "host", "{v}");
    let before = common::count(&app.store, "select count(*) from activity").await;
    let (_, v) = app
        .send(
            Method::POST,
            &format!("/api/servers/{id}/validate"),
            Some(r#"{"tags":["db"]}"#),
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        common::count(&app.store, "select count(*) from activity").await,
        before,
        "a check is not an action: nothing in the activity log"
    );
    assert_eq!(
        app.get(&format!("/api/servers/{id}")).await.1["tags"],
        serde_json::json!(["prod", "web"])
    );

    // A viewer may not check (it would tell which key files exist on the poller).
    let (_, secret) = fleetpoll::ops::create_token(
        &app.store,
        "a-viewer",
        fleetpoll::auth::Role::Viewer,
        None,
        &fleetpoll::activity::Actor::system(),
    )
    .await
    .expect("token");
    let r = app
        .anon
        .post(app.url("/api/servers/validate"))
        .bearer_auth(secret.expose())
        .header("content-type", "application/json")
        .body(body(&sshd, "web-2"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 403);
    let me: Value = app
        .anon
        .get(app.url("/api/auth/me"))
        .bearer_auth(secret.expose())
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        me,
        serde_json::json!({ "name": "a-viewer", "kind": "token", "role": "viewer" })
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_assets_are_embedded_and_cached_by_version() {
    let app = TestApp::start().await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (path, next) in [
        ("/", "/"),
        (
            "/activity?type=server_added",
            "/activity%3Ftype%3Dserver_added",
        ),
        (
            "/servers/00000000-0000-0000-0000-000000000000",
            "/servers/00000000-0000-0000-0000-000000000000",
        ),
    ] {
        let r = no_redirect.get(app.url(path)).send().await.expect("GET");
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(
            r.headers()["location"].to_str().ok(),
            Some(format!("/login?next={next}").as_str())
        );
    }
    let login = no_redirect
        .get(app.url("/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 200);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = login.text().await.expect("html");
    let js_path = html
        .split('"')
        .find(|s| s.starts_with("/assets/app.js?v="))
        .expect("the login page links the script by version")
        .to_string();

    let page = app
        .http
        .get(app.url("/activity"))
        .send()
        .await
        .expect("page");
    assert_eq!(
        page.status().as_u16(),
        200,
        "a session (here a bearer token) gets the page"
    );
    assert!(page.text().await.expect("html").contains(&js_path));

    let js = app.anon.get(app.url(&js_path)).send().await.expect("js");
    assert_eq!(js.status().as_u16(), 200);
    assert_eq!(
        js.headers()["cache-control"].to_str().ok(),
        Some("public, max-age=31536000, immutable")
    );
    assert!(js.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/javascript"));
    let etag = js.headers()["etag"].to_str().expect("etag").to_string();
    assert!(js
        .text()
        .await
        .expect("js")
        .contains("/api/dashboard/summary"));
    let stale = app
        .anon
        .get(app.url("/assets/app.js?v=old"))
        .send()
        .await
        .expect("js");
    assert_eq!(
        stale.headers()["cache-control"].to_str().ok(),
        Some("no-cache")
    );
    let again = app
        .anon
        .get(app.url("/assets/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("js");
    assert_eq!(again.status().as_u16(), 304);
    let missing = app
        .anon
        .get(app.url("/assets/nope.js"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status().as_u16(), 404);
    let icon = no_redirect
        .get(app.url("/favicon.ico"))
        .send()
        .await
        .expect("icon");
    assert_eq!(icon.status().as_u16(), 308);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_polls_on_its_interval_over_one_reused_ssh_connection() {
    let sshd = Sshd::start(DockerMode::Missing);
    let app = TestApp::start_with_interval(2).await;
    let (status, created) = app
        .send(Method::POST, "/api/servers", Some(&body(&sshd, "looped")))
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_string();
    // Registered after the first tick: picked up by a later one, then polled again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n = common::samples(&app.store, 0, None).await;
        if n >= 3 {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let (_, server) = app.get(&format!("/api/servers/{id}")).await;
            panic!(
                "only {n} polls stored; server {server}; sshd log:\n{}",
                sshd.log_text()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, server) = app.get(&format!("/api/servers/{id}")).await;
    assert_eq!(server["status"], "online");
    let logins = sshd.log_text().matches("Accepted publickey").count();
    assert_eq!(
        logins, 1,
        "every poll should reuse the first SSH connection"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_is_reestablished_and_metrics_move() {
    let mut sshd = Sshd::start(DockerMode::Missing);
    let app = TestApp::start_with_interval(2).await;
    let (status, _) = app
        .send(Method::POST, "/api/servers", Some(&body(&sshd, "rekilled")))
        .await;
    assert_eq!(status, 201);
    let wait_for = |n: i64| {
        let store = app.store.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while common::samples(&store, 0, None).await < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "fewer than {n} polls stored"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(1).await;
    // Kill sshd and every session it had, then bring it back on the same port.
    sshd.stop();
    sshd.restart();
    let before = common::samples(&app.store, 0, None).await;
    wait_for(before + 2).await;
    assert!(sshd.log_text().matches("Accepted publickey").count() >= 1);
    assert_eq!(
        common::count(
            &app.store,
            "select count(*) from activity where type = 'server_offline'"
        )
        .await,
        0
    );

    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
    };
    assert!(value("fleetpoll_polls_total{outcome=\"ok\"}") >= 3.0);
    assert!(
        value("fleetpoll_ssh_handshakes_total") >= 2.0,
        "a new session after the kill"
    );
    assert_eq!(value("fleetpoll_hosts{status=\"online\"}"), 1.0);
    assert!(value("fleetpoll_server_memory_percent{server=\"rekilled\"}") > 0.0);
    assert!(value("fleetpoll_disk_used_percent{server=\"rekilled\",mount=\"/\"}") > 0.0);
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("fleetpoll_cycle_lag_seconds_count") >= 3.0);
    app.stop().await;
}
