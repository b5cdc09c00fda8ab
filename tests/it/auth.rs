use fleetpoll::activity::Actor;
use fleetpoll::auth::Role;
use reqwest::Method;

use crate::common::TestApp;

fn system() -> Actor {
    Actor::system()
}

async fn token(
    app: &TestApp,
    name: &str,
    role: Role,
    lifetime: Option<std::time::Duration>,
) -> String {
    let (_, secret) = fleetpoll::ops::create_token(&app.store, name, role, lifetime, &system())
        .await
        .expect("token");
    secret.expose().to_string()
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> u16 {
    let mut req = app.anon.request(method, app.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    req.send().await.expect("request").status().as_u16()
}

/// Every route with the least role it needs. Bodies are deliberately invalid or ids unknown:
/// an allowed caller gets past the guard to a 4xx of the handler, never 401/403.
const ROUTES: &[(&str, &str, Role)] = &[
    ("GET", "/api/dashboard/summary", Role::Viewer),
    ("GET", "/api/servers", Role::Viewer),
    (
        "GET",
        "/api/servers/00000000-0000-4000-8000-000000000000",
        Role::Viewer,
    ),
    (
        "GET",
        "/api/servers/00000000-0000-4000-8000-000000000000/metrics",
        Role::Viewer,
    ),
    (
        "GET",
        "/api/servers/00000000-0000-4000-8000-000000000000/disks",
        Role::Viewer,
    ),
    (
        "GET",
        "/api/servers/00000000-0000-4000-8000-000000000000/containers",
        Role::Viewer,
    ),
    (
        "GET",
        "/api/servers/00000000-0000-4000-8000-000000000000/containers/x/metrics",
        Role::Viewer,
    ),
    (
        "GET",
        "/api/servers/00000000-0000-4000-8000-000000000000/disks/history",
        Role::Viewer,
    ),
    ("GET", "/api/dashboard/sparklines", Role::Viewer),
    ("GET", "/api/activity", Role::Viewer),
    ("GET", "/api/activity/types", Role::Viewer),
    ("GET", "/api/alert-rules", Role::Viewer),
    (
        "GET",
        "/api/alert-rules/00000000-0000-4000-8000-000000000001",
        Role::Viewer,
    ),
    ("GET", "/api/alerts", Role::Viewer),
    ("GET", "/api/silences", Role::Viewer),
    ("GET", "/api/threshold-overrides", Role::Viewer),
    ("PUT", "/api/threshold-overrides/tag/db", Role::Operator),
    (
        "DELETE",
        "/api/threshold-overrides/tag/nothing",
        Role::Operator,
    ),
    ("POST", "/api/silences", Role::Operator),
    (
        "DELETE",
        "/api/silences/00000000-0000-4000-8000-000000000000",
        Role::Operator,
    ),
    ("POST", "/api/alert-rules", Role::Operator),
    (
        "PATCH",
        "/api/alert-rules/00000000-0000-4000-8000-000000000001",
        Role::Operator,
    ),
    (
        "DELETE",
        "/api/alert-rules/00000000-0000-4000-8000-0000000000ff",
        Role::Operator,
    ),
    (
        "POST",
        "/api/alerts/00000000-0000-4000-8000-000000000000/ack",
        Role::Operator,
    ),
    ("GET", "/api/auth/me", Role::Viewer),
    ("GET", "/metrics", Role::Viewer),
    ("POST", "/api/servers/validate", Role::Operator),
    (
        "POST",
        "/api/servers/00000000-0000-4000-8000-000000000000/validate",
        Role::Operator,
    ),
    ("POST", "/api/servers", Role::Operator),
    (
        "PATCH",
        "/api/servers/00000000-0000-4000-8000-000000000000",
        Role::Operator,
    ),
    (
        "DELETE",
        "/api/servers/00000000-0000-4000-8000-000000000000",
        Role::Operator,
    ),
    (
        "POST",
        "/api/servers/00000000-0000-4000-8000-000000000000/trust",
        Role::Operator,
    ),
    (
        "GET",
        "/api/servers/00000000-0000-4000-8000-000000000000/last-output",
        Role::Admin,
    ),
    ("GET", "/api/users", Role::Admin),
    ("POST", "/api/users", Role::Admin),
    (
        "PATCH",
        "/api/users/00000000-0000-4000-8000-000000000000",
        Role::Admin,
    ),
    (
        "DELETE",
        "/api/users/00000000-0000-4000-8000-000000000000",
        Role::Admin,
    ),
    ("GET", "/api/tokens", Role::Admin),
    ("GET", "/api/pollers", Role::Admin),
    ("POST", "/api/tokens", Role::Admin),
    (
        "DELETE",
        "/api/tokens/00000000-0000-4000-8000-000000000000",
        Role::Admin,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_enforces_its_role_for_every_kind_of_caller() {
    let app = TestApp::start().await;
    let viewer = token(&app, "m-viewer", Role::Viewer, None).await;
    let operator = token(&app, "m-operator", Role::Operator, None).await;
    let admin = token(&app, "m-admin", Role::Admin, None).await;
    let expired = token(
        &app,
        "m-expired",
        Role::Admin,
        Some(std::time::Duration::from_secs(1)),
    )
    .await;
    let (revoked_row, revoked) =
        fleetpoll::ops::create_token(&app.store, "m-revoked", Role::Admin, None, &system())
            .await
            .expect("token");
    fleetpoll::ops::revoke_token(&app.store, revoked_row.id, &system())
        .await
        .expect("revoke");
    // Issue #18: a second revoke says what is the matter, not "already taken".
    let again = fleetpoll::ops::revoke_token(&app.store, revoked_row.id, &system())
        .await
        .expect_err("revoked twice");
    assert_eq!(again.to_string(), "token 'm-revoked' is already revoked");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let callers: [(&str, Option<&str>, Option<Role>); 6] = [
        ("none", None, None),
        ("viewer", Some(&viewer), Some(Role::Viewer)),
        ("operator", Some(&operator), Some(Role::Operator)),
        ("admin", Some(&admin), Some(Role::Admin)),
        ("expired", Some(&expired), None),
        ("revoked", Some(revoked.expose()), None),
    ];
    let mut failures = Vec::new();
    for (method, path, needs) in ROUTES {
        let m: Method = method.parse().expect("method");
        let body = (*method != "GET" && *method != "DELETE").then_some("{\"bogus\": 1}");
        for (who, bearer, role) in &callers {
            let status = call(&app, m.clone(), path, *bearer, body).await;
            let want_denied = match role {
                None => Some(401),
                Some(r) if r < needs => Some(403),
                Some(_) => None,
            };
            let ok = match want_denied {
                Some(code) => status == code,
                None => status != 401 && status != 403 && status < 500,
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {who}: {status} (want {want_denied:?})"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Public.
    assert_eq!(call(&app, Method::GET, "/healthz", None, None).await, 200);
    assert_eq!(call(&app, Method::GET, "/login", None, None).await, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_cookie_logout_ends_it_and_failures_are_limited() {
    let app = TestApp::start().await;
    fleetpoll::ops::create_user(
        &app.store,
        "alice",
        Role::Operator,
        "correct horse battery",
        &system(),
    )
    .await
    .expect("user");
    let login = |password: &'static str| {
        let anon = app.anon.clone();
        let url = app.url("/api/auth/login");
        async move {
            anon.post(url)
                .json(&serde_json::json!({ "username": "alice", "password": password }))
                .send()
                .await
                .expect("login")
        }
    };
    let r = login("correct horse battery").await;
    assert_eq!(r.status().as_u16(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie")
        .to_string();
    assert!(
        cookie.starts_with("fleetpoll_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["user"]["name"], "alice");
    assert_eq!(v["user"]["role"], "operator");
    let session = cookie.split(';').next().expect("pair").to_string();
    let with_cookie = |method: Method, path: &str| {
        let req = app
            .anon
            .request(method, app.url(path))
            .header("cookie", session.clone());
        async move { req.send().await.expect("request").status().as_u16() }
    };
    assert_eq!(
        with_cookie(Method::GET, "/api/dashboard/summary").await,
        200
    );
    assert_eq!(with_cookie(Method::GET, "/api/users").await, 403);
    assert_eq!(with_cookie(Method::POST, "/api/auth/logout").await, 200);
    assert_eq!(
        with_cookie(Method::GET, "/api/dashboard/summary").await,
        401
    );

    for _ in 0..10 {
        assert_eq!(login("wrong password!").await.status().as_u16(), 401);
    }
    let r = login("correct horse battery").await;
    assert_eq!(
        r.status().as_u16(),
        429,
        "the right password is refused too while limited"
    );
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0 && retry <= 900);

    let (_, log) = app.get("/api/activity?limit=100").await;
    let items = log["items"].as_array().expect("items");
    let count = |t: &str| items.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("user_login"), 1);
    assert_eq!(count("user_logout"), 1);
    assert_eq!(count("user_login_failed"), 11);
    let failed = items
        .iter()
        .find(|e| e["type"] == "user_login_failed")
        .expect("failed");
    assert_eq!(failed["details"]["attempted_user"], "alice");
    assert_eq!(failed["details"]["source"], "127.0.0.1");
    let text = log.to_string();
    assert!(
        !text.contains("wrong password!") && !text.contains("correct horse battery"),
        "a password reached the log"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_over_the_api_are_audited_and_no_secret_is_stored_or_returned() {
    let app = TestApp::start().await;
    let (s, user) = app
        .send(
            Method::POST,
            "/api/users",
            Some(r#"{"name":"bob","role":"viewer","password":"s3cret-Passw0rd"}"#),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    assert!(!user.to_string().contains("s3cret") && user.get("password_hash").is_none());
    let id = user["id"].as_str().expect("id").to_string();
    let (s, _) = app
        .send(
            Method::PATCH,
            &format!("/api/users/{id}"),
            Some(r#"{"role":"operator"}"#),
        )
        .await;
    assert_eq!(s, 200);
    let (s, err) = app
        .send(
            Method::POST,
            "/api/users",
            Some(r#"{"name":"bad name","role":"viewer","password":"long enough"}"#),
        )
        .await;
    assert_eq!((s, err["field"].as_str()), (400, Some("name")));
    let (s, err) = app
        .send(
            Method::POST,
            "/api/users",
            Some(r#"{"name":"carol","role":"root","password":"long enough"}"#),
        )
        .await;
    assert_eq!((s, err["field"].as_str()), (400, Some("role")));
    let (s, created) = app
        .send(
            Method::POST,
            "/api/tokens",
            Some(r#"{"name":"ci","role":"viewer","expires":"90d"}"#),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["token"].as_str().expect("secret").to_string();
    let token_id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        call(&app, Method::GET, "/api/servers", Some(&secret), None).await,
        200
    );
    let (_, list) = app.get("/api/tokens").await;
    assert!(
        !list.to_string().contains(&secret),
        "token list shows a secret"
    );
    let (s, _) = app
        .send(Method::DELETE, &format!("/api/tokens/{token_id}"), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        call(&app, Method::GET, "/api/servers", Some(&secret), None).await,
        401
    );
    let (s, _) = app
        .send(Method::DELETE, &format!("/api/users/{id}"), None)
        .await;
    assert_eq!(s, 204);

    let (_, log) = app.get("/api/activity?limit=200").await;
    let items = log["items"].as_array().expect("items");
    for kind in [
        "user_created",
        "user_updated",
        "user_deleted",
        "token_created",
        "token_revoked",
    ] {
        let hits: Vec<_> = items
            .iter()
            .filter(|e| e["type"] == kind && e["actor"] == "token:test-admin")
            .collect();
        assert_eq!(hits.len(), 1, "{kind}: {hits:?}");
        assert_eq!(hits[0]["details"]["source"], "127.0.0.1");
    }

    // Neither the password nor the token secret is anywhere in the database files.
    app.store.pool().close().await;
    for entry in std::fs::read_dir(app.dir.path()).expect("dir").flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains("s3cret-Passw0rd"),
            "password in {:?}",
            entry.path()
        );
        assert!(!hay.contains(&secret), "token secret in {:?}", entry.path());
    }
}

#[test]
fn token_create_prints_the_secret_alone_and_user_add_reads_stdin() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("a.db");
    let mut child = crate::common::with_db(&mut crate::common::fleetpoll(), &db)
        .args([
            "user",
            "add",
            "admin1",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"a long password\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    crate::common::assert_ok(&out);
    let out = crate::common::with_db(&mut crate::common::fleetpoll(), &db)
        .args([
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "viewer",
            "--expires",
            "90d",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1);
    let secret = stdout.trim();
    assert!(secret.starts_with("fpt_") && secret.len() == 68, "{stdout}");
    let out = crate::common::with_db(&mut crate::common::fleetpoll(), &db)
        .args(["token", "list"])
        .output()
        .expect("run");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("ci") && !listed.contains(secret),
        "{listed}"
    );
    let out = crate::common::with_db(&mut crate::common::fleetpoll(), &db)
        .args(["activity", "--json", "--type", "user_created"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["total"], 1);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("a long password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_or_kept_verbatim_and_the_log_exports() {
    let app = TestApp::start().await;
    let key = app.dir.path().join("k");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
    let base = serde_json::json!({ "name": "ok", "host": "127.0.0.1", "port": 22, "user": "u", "key_path": key });
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        b.to_string()
    };
    let long = "a".repeat(10_000);
    for (body, field) in [
        (with("name", "x'; drop table servers; --".into()), "name"),
        (with("name", long.clone().into()), "name"),
        (with("host", "127.0.0.1\u{0}".into()), "host"),
        (with("host", long.clone().into()), "host"),
        (with("user", "root\u{7}".into()), "user"),
        (with("tags", serde_json::json!(["a\nb"])), "tags"),
        (with("key_path", "/tmp/\u{1}nothing".into()), "key_path"),
    ] {
        let (s, e) = app.send(Method::POST, "/api/servers", Some(&body)).await;
        assert_eq!((s, e["field"].as_str()), (400, Some(field)), "{body}: {e}");
    }
    let r = app
        .http
        .post(app.url("/api/servers"))
        .header("content-type", "application/json")
        .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400, "invalid UTF-8");
    let (s, servers) = app.get("/api/servers").await;
    assert_eq!(
        (s, servers["total"].as_u64()),
        (200, Some(0)),
        "the table is still there and empty"
    );

    // A login attempt with a formula and SQL in the name: no user could have that name, so
    // the log says "(unknown user)" rather than keep what may be a mistyped password (#17).
    let nasty = "=cmd|' /C calc'!A0 ' OR 1=1 --";
    let r = app
        .anon
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "username": nasty, "password": "whatever12" }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 401);
    let (s, found) = app.get("/api/activity?actor=%27%20OR%201%3D1%20--").await;
    assert_eq!((s, found["total"].as_i64()), (200, Some(0)));

    let r = app
        .http
        .get(app.url("/api/activity?format=csv"))
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/csv"));
    let csv = r.text().await.expect("text");
    let (_, all) = app.get("/api/activity?limit=1000").await;
    let total = all["total"].as_u64().expect("total") as usize;
    assert!(csv
        .starts_with("id,timestamp,type,severity,actor,server_id,server_name,message,details\r\n"));
    assert_eq!(csv.matches("\r\n").count(), total + 1, "{csv}");
    // Times as the JSON writes them: the second cell of each row is the entry's timestamp.
    let first = &all["items"][0];
    let row = csv
        .lines()
        .find(|l| l.starts_with(&format!("{},", first["id"])))
        .expect("the newest entry's row");
    assert_eq!(
        row.split(',').nth(1),
        first["timestamp"].as_str(),
        "CSV and JSON times differ"
    );
    assert!(
        !csv.contains("=cmd|") && csv.contains("(unknown user)"),
        "the attempted name is not in the export: {csv}"
    );
    // No cell starts a formula (cells starting with =, +, -, @ get a leading quote).
    for line in csv.lines() {
        assert!(
            !line.contains(",=") && !line.contains(",\"=") && !line.starts_with('='),
            "{line}"
        );
    }
    let jsonl = app
        .http
        .get(app.url("/api/activity?format=jsonl"))
        .send()
        .await
        .expect("jsonl")
        .text()
        .await
        .expect("text");
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), total);
    assert!(lines
        .iter()
        .any(|e| e["details"]["attempted_user"] == "(unknown user)"));
    let (s, e) = app.get("/api/activity?format=xml").await;
    assert_eq!((s, e["field"].as_str()), (400, Some("format")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_uploaded_through_the_api_is_stored_sealed_and_polls() {
    use crate::harness::{DockerMode, Sshd};
    let sshd = Sshd::start(DockerMode::Missing);
    let app = TestApp::start().await;
    let key_text = std::fs::read_to_string(&sshd.client_key).expect("key");
    // The base64 body of the key: what must never appear in clear anywhere.
    let body_line = key_text.lines().nth(1).expect("key body").to_string();
    let base = serde_json::json!({ "name": "sealed", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user });
    let mut bad = base.clone();
    bad["key"] =
        "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n"
            .into();
    let (s, e) = app
        .send(Method::POST, "/api/servers", Some(&bad.to_string()))
        .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("key")), "{e}");
    let mut both = base.clone();
    both["key"] = key_text.clone().into();
    both["key_path"] = sshd.client_key.to_string_lossy().into_owned().into();
    let (s, e) = app
        .send(Method::POST, "/api/servers", Some(&both.to_string()))
        .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("key")), "{e}");

    let mut good = base.clone();
    good["key"] = key_text.clone().into();
    let (s, created) = app
        .send(Method::POST, "/api/servers", Some(&good.to_string()))
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["key_stored"], true);
    assert!(created["key_path"].is_null());
    assert!(created["key_fingerprint"]
        .as_str()
        .is_some_and(|f| f.starts_with("SHA256:")));
    assert!(!created.to_string().contains(&body_line));

    let servers = app.store.servers().await.expect("servers");
    let results = crate::common::poll(&app.store, app.dir.path(), servers).await;
    assert!(
        results[0].1.outcome.is_ok(),
        "{:?}",
        results[0].1.outcome.as_ref().err()
    );

    let (_, log) = app.get("/api/activity?limit=100").await;
    assert!(!log.to_string().contains(&body_line));
    let (_, shown) = app
        .get(&format!(
            "/api/servers/{}",
            created["id"].as_str().expect("id")
        ))
        .await;
    assert!(!shown.to_string().contains(&body_line));
    let master = app.dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&master)
            .expect("master key beside the database")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The master key lost (a copied database, another poller's directory): a second stored
    // key is refused rather than sealed under a new master key, and the poll says why.
    let away = app.dir.path().join("master.key.away");
    std::fs::rename(&master, &away).expect("move the master key away");
    let mut second = good.clone();
    second["name"] = "sealed-2".into();
    let (s, e) = app
        .send(Method::POST, "/api/servers", Some(&second.to_string()))
        .await;
    assert_eq!(s, 500, "{e}");
    assert!(!master.exists(), "no new master key beside the sealed one");
    let servers = app.store.servers().await.expect("servers");
    assert_eq!(servers.len(), 1, "the refused server was not added");
    let results = crate::common::poll(&app.store, app.dir.path(), servers).await;
    let why = format!("{:?}", results[0].1.outcome.as_ref().err());
    assert!(why.contains("master.key"), "names the missing file: {why}");
    assert!(!master.exists());
    std::fs::rename(&away, &master).expect("restore the master key");
    app.store.pool().close().await;
    for entry in std::fs::read_dir(app.dir.path()).expect("dir").flatten() {
        let hay =
            String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap_or_default()).into_owned();
        assert!(
            !hay.contains(&body_line),
            "the key in clear in {:?}",
            entry.path()
        );
    }
}

#[tokio::test]
async fn expired_sessions_log_no_one_in_and_retention_removes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::common::store(dir.path()).await;
    let user =
        fleetpoll::ops::create_user(&store, "eve", Role::Viewer, "long enough pw", &system())
            .await
            .expect("user");
    let now = chrono::Utc::now();
    store
        .insert_session(
            "h-old",
            user.id,
            now - chrono::Duration::seconds(1),
            "127.0.0.1",
        )
        .await
        .expect("old");
    store
        .insert_session(
            "h-new",
            user.id,
            now + chrono::Duration::hours(1),
            "127.0.0.1",
        )
        .await
        .expect("new");
    assert!(store.session_user("h-old", now).await.expect("q").is_none());
    assert!(store.session_user("h-new", now).await.expect("q").is_some());
    let upkeep = fleetpoll::scheduler::Maintenance::new(
        store.clone(),
        std::sync::Arc::new(crate::common::settings(dir.path())),
    );
    upkeep.retention().await.expect("retention");
    assert_eq!(
        crate::common::count(&store, "select count(*) from sessions").await,
        1
    );
}
