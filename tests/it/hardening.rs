//! Issue #17: each finding of the adversarial probe, replayed against the real router on a real
//! socket, and shown to fail safely. Deadlines are generous upper bounds for a loaded 2-core
//! machine; nothing asserts that anything is fast.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestApp;

/// Upper bound for anything the server should do "soon"; only a hang reaches it.
const DEADLINE: Duration = Duration::from_secs(60);

/// Reads (and discards) until the server closes the connection; false if it is still open
/// after `wait`.
async fn closed_by_server(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Reads one HTTP/1.1 response with a Content-Length body: (status, body).
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.expect("read response");
        assert!(n > 0, "closed before a whole response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status code");
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            return (status, body);
        }
    }
}

// ---- Finding 1: idle and slow connections ----

/// A client that opens a connection and says nothing, one that sends half a request head, and
/// a kept-alive one gone quiet after its response are all closed by the server (header timeout
/// 1 s here). Before the fix all three stayed open for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_sent_and_idle_kept_alive_connections_are_closed() {
    let app = TestApp::start_with(|s| s.http_header_timeout_secs = 1).await;
    let mut silent = TcpStream::connect(app.addr).await.expect("connect");
    let mut half = TcpStream::connect(app.addr).await.expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut kept = TcpStream::connect(app.addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (status, body) = read_response(&mut kept).await;
    assert_eq!((status, body.as_str()), (200, "ok"), "keep-alive request");
    let (a, b, c) = tokio::join!(
        closed_by_server(&mut silent, DEADLINE),
        closed_by_server(&mut half, DEADLINE),
        closed_by_server(&mut kept, DEADLINE),
    );
    assert!(a, "a connection that never sent a byte is still open");
    assert!(b, "a connection with half a request head is still open");
    assert!(c, "an idle kept-alive connection is still open");
    app.stop().await;
}

/// With room for 4 connections, 4 idle clients hold every slot: a fifth is not served (it waits
/// in the kernel's backlog, costing the process no descriptor) until one of them goes. Before
/// the fix the fifth was served at once, and 1,100 idle clients took every descriptor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_until_a_slot_frees() {
    let app = TestApp::start_with(|s| {
        s.http_max_connections = 4;
        // Long enough that no idle client is timed out during the test.
        s.http_header_timeout_secs = 600;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    // Connections are accepted in the order they were made, so these four took the slots.
    let mut fifth = TcpStream::connect(app.addr).await.expect("connect");
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let early = tokio::time::timeout(Duration::from_secs(2), read_response(&mut fifth)).await;
    assert!(
        early.is_err(),
        "a fifth connection was served while four held every slot: {early:?}"
    );
    drop(idle.pop());
    let (status, body) = tokio::time::timeout(DEADLINE, read_response(&mut fifth))
        .await
        .expect("the fifth connection is served once a slot frees");
    assert_eq!((status, body.as_str()), (200, "ok"));
    drop(idle);
    app.stop().await;
}

/// A login body that is trickled never arrives whole: 408 with a JSON message naming the body
/// (body timeout 1 s here), where before the client held its connection and buffer for the 30 s
/// request deadline and then got an empty 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gets_a_json_408() {
    let app = TestApp::start_with(|s| s.http_body_timeout_secs = 1).await;
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    s.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"username\":",
    )
    .await
    .expect("write");
    let (status, body) = tokio::time::timeout(DEADLINE, read_response(&mut s))
        .await
        .expect("an answer before the deadline");
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!((status, v["field"].as_str()), (408, Some("body")), "{body}");
    app.stop().await;
}

/// Login takes at most 4 KiB, and user and token requests 16 KiB: larger bodies get 413 and
/// nothing happens (no login attempt logged, no user created). Before, 2 MB was accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_login_and_account_bodies_get_413_and_change_nothing() {
    let app = TestApp::start().await;
    let login = json!({ "username": "alice", "password": "x".repeat(5000) }).to_string();
    let r = app
        .anon
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(login)
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 413);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["field"], "body", "{v}");
    let user = json!({ "name": "bigbody", "role": "viewer", "password": "y".repeat(20_000) });
    let (s, e) = app
        .send(Method::POST, "/api/users", Some(&user.to_string()))
        .await;
    assert_eq!((s, e["field"].as_str()), (413, Some("body")), "{e}");
    // A normal-sized request on the same routes still works.
    let (s, e) = app
        .send(
            Method::POST,
            "/api/users",
            Some(r#"{"name":"smallbody","role":"viewer","password":"long enough"}"#),
        )
        .await;
    assert_eq!(s, 201, "{e}");
    let (_, users) = app.get("/api/users").await;
    assert!(!users.to_string().contains("bigbody"), "{users}");
    let (_, log) = app.get("/api/activity?type=user_login_failed").await;
    assert_eq!(log["total"], 0, "{log}");
    app.stop().await;
}

// ---- Findings 2 and 5: the login limiter ----

/// Logs in as `user` from a client bound to `from` (any 127.0.0.0/8 address reaches the
/// server); returns the status.
async fn login_from(client: &reqwest::Client, app: &TestApp, user: &str, password: &str) -> u16 {
    client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

fn client_from(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, last_octet]))
        .build()
        .expect("client")
}

async fn failed_logins(app: &TestApp) -> Vec<serde_json::Value> {
    let (_, log) = app
        .get("/api/activity?type=user_login_failed&limit=1000")
        .await;
    log["items"].as_array().expect("items").clone()
}

/// 150 wrong passwords for one user from 10 addresses at once: only the limit (10) reach the
/// password check, because each attempt is counted before it. Before the fix, 32 did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_guesses_gets_only_the_limit_of_password_checks() {
    let app = TestApp::start().await;
    fleetpoll::ops::create_user(
        &app.store,
        "alice",
        fleetpoll::auth::Role::Viewer,
        "correct horse battery",
        &fleetpoll::activity::Actor::system(),
    )
    .await
    .expect("user");
    let clients: Vec<reqwest::Client> = (1..=10).map(client_from).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..150 {
        let client = clients[i % 10].clone();
        let url = app.url("/api/auth/login");
        tasks.spawn(async move {
            client
                .post(url)
                .json(&json!({ "username": "alice", "password": format!("guess {i}") }))
                .send()
                .await
                .expect("login")
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.expect("task"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (10, 140), "{statuses:?}");
    let wrong = failed_logins(&app)
        .await
        .iter()
        .filter(|e| e["details"]["reason"] == "wrong user name or password")
        .count();
    assert_eq!(wrong, 10, "password checks that failed, by the log");
    app.stop().await;
}

/// Once an address is blocked, its further attempts are refused without one log entry each:
/// the first refusal is logged, the rest are counted and logged as one entry when the block is
/// over. Before the fix every refusal wrote a row (25,428 in 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_address_writes_one_entry_per_block_and_then_the_count() {
    const WINDOW_SECS: u64 = 10;
    let app = TestApp::start_with(|s| {
        s.login_max_failures_per_source = 3;
        s.login_window_secs = WINDOW_SECS;
    })
    .await;
    fleetpoll::ops::create_user(
        &app.store,
        "bob",
        fleetpoll::auth::Role::Viewer,
        "correct horse battery",
        &fleetpoll::activity::Actor::system(),
    )
    .await
    .expect("user");
    let attacker = client_from(1);
    let mut statuses = Vec::new();
    for i in 0..43 {
        statuses.push(login_from(&attacker, &app, &format!("user{i}"), "wrong password").await);
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(refused >= 30, "the address was not blocked: {statuses:?}");
    let during = failed_logins(&app).await.len();
    assert!(
        during <= 3 + 2,
        "{during} entries for {} attempts while blocked",
        statuses.len()
    );

    // After the window, the next login (anyone's) writes the count of the silent refusals.
    tokio::time::sleep(Duration::from_secs(WINDOW_SECS + 1)).await;
    assert_eq!(
        login_from(&client_from(2), &app, "bob", "correct horse battery").await,
        200
    );
    let entries = failed_logins(&app).await;
    let reasons: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["details"]["reason"].as_str())
        .collect();
    let logged_refusals = reasons
        .iter()
        .filter(|r| r.starts_with("too many failed logins;"))
        .count();
    let counted: usize = reasons
        .iter()
        .filter_map(|r| r.strip_prefix("too many failed logins: "))
        .map(|r| {
            r.split_whitespace()
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .expect("a count")
        })
        .sum();
    assert!(counted > 0, "no entry with the count: {reasons:#?}");
    assert_eq!(
        logged_refusals + counted,
        refused,
        "every refusal is in the log, one by one or counted: {reasons:#?}"
    );
    assert!(entries.len() < 10, "{reasons:#?}");
    app.stop().await;
}

/// A user name longer than any real one (256 bytes) is refused before it reaches the limiter,
/// whose keys it would otherwise inflate (#17: 725 MB from long names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_user_name_is_refused_before_the_limiter() {
    let app = TestApp::start().await;
    let r = app
        .anon
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": "n".repeat(257), "password": "whatever12" }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["field"], "username", "{v}");
    assert!(failed_logins(&app).await.is_empty(), "it counted as a try");
    assert_eq!(
        login_from(&app.anon, &app, &"n".repeat(256), "whatever12").await,
        401,
        "256 bytes is still an ordinary wrong login"
    );
    app.stop().await;
}

// ---- Finding 6: a password typed into the user-name field ----

/// Someone types their password into the user-name field of a running `fleetpoll serve`: the
/// activity log and stderr say "(unknown user)" and the text appears in neither. A name that
/// could be a user's is still kept. Before the fix both kept the text as typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_typed_as_the_user_name_reaches_neither_the_log_nor_stderr() {
    use std::io::Write;
    use std::process::Stdio;
    const TYPED: &str = "Tr0ub4dor&3 horse";
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("f.db");
    let mut add = crate::common::with_db(&mut crate::common::fleetpoll(), &db)
        .args([
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse battery\n")
        .expect("write");
    crate::common::assert_ok(&add.wait_with_output().expect("wait"));
    let mut serve = Reaped(
        crate::common::with_db(&mut crate::common::fleetpoll(), &db)
            .args(["serve", "--listen", "127.0.0.1:0", "--interval", "3600"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve"),
    );
    let lines = crate::common::stderr_lines(&mut serve.0);
    let mut stderr = Vec::new();
    let base = loop {
        let line = lines
            .recv_timeout(DEADLINE)
            .expect("serve logs its address");
        stderr.push(line.clone());
        // "... Serving the API and dashboard on http://127.0.0.1:PORT/ addr=..."
        if let (true, Some(rest)) = (line.contains("Serving"), line.split("http://").nth(1)) {
            let addr = rest.split('/').next().expect("address");
            break format!("http://{addr}");
        }
    };
    let http = reqwest::Client::new();
    let login = |user: &'static str, password: &'static str| {
        let http = http.clone();
        let url = format!("{base}/api/auth/login");
        async move {
            http.post(url)
                .json(&json!({ "username": user, "password": password }))
                .send()
                .await
                .expect("login")
        }
    };
    assert_eq!(login(TYPED, "alice").await.status().as_u16(), 401);
    assert_eq!(login("nosuchuser", "x").await.status().as_u16(), 401);
    let ok = login("alice", "correct horse battery").await;
    assert_eq!(ok.status().as_u16(), 200);
    let token = ok.json::<serde_json::Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let log: serde_json::Value = http
        .get(format!("{base}/api/activity?type=user_login_failed"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("activity")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["details"]["attempted_user"].as_str())
        .collect();
    assert_eq!(names, ["nosuchuser", "(unknown user)"], "{log}");
    let summary = http
        .get(format!("{base}/api/dashboard/summary"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("summary")
        .text()
        .await
        .expect("text");
    assert!(!summary.contains("Tr0ub4dor"), "{summary}");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // The reader ends when serve closes stderr, at exit.
    while let Ok(line) = lines.recv_timeout(DEADLINE) {
        stderr.push(line);
    }
    let status = serve.0.wait().expect("wait");
    assert!(status.success(), "serve exited with {status}");
    let stderr = stderr.join("\n");
    assert!(
        stderr.contains("(unknown user)"),
        "the failed login was not logged on stderr at all:\n{stderr}"
    );
    assert!(!stderr.contains("Tr0ub4dor"), "{stderr}");
}

/// A child process killed if the test ends early, so a failing test leaves no server behind.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

// ---- Finding 8: the last admin ----

/// An admin cannot demote or delete the last admin, over the API (409 naming the field) or
/// the command line (exit 2, the same message); with a second admin both work. Before the fix
/// both succeeded and left nobody able to manage users over the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_can_be_neither_demoted_nor_deleted() {
    let app = TestApp::start().await;
    let (s, first) = app
        .send(
            Method::POST,
            "/api/users",
            Some(r#"{"name":"root1","role":"admin","password":"long enough"}"#),
        )
        .await;
    assert_eq!(s, 201, "{first}");
    let first = format!("/api/users/{}", first["id"].as_str().expect("id"));
    let (s, e) = app
        .send(Method::PATCH, &first, Some(r#"{"role":"viewer"}"#))
        .await;
    assert_eq!((s, e["field"].as_str()), (409, Some("role")), "{e}");
    assert!(
        e["error"].as_str().unwrap_or("").contains("last admin"),
        "{e}"
    );
    let (s, e) = app.send(Method::DELETE, &first, None).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("id")), "{e}");
    let (_, users) = app.get("/api/users").await;
    assert_eq!(users["items"][0]["role"], "admin", "{users}");
    // A password change of the last admin is still fine.
    let (s, _) = app
        .send(
            Method::PATCH,
            &first,
            Some(r#"{"password":"another long one"}"#),
        )
        .await;
    assert_eq!(s, 200);

    let (s, second) = app
        .send(
            Method::POST,
            "/api/users",
            Some(r#"{"name":"root2","role":"admin","password":"long enough"}"#),
        )
        .await;
    assert_eq!(s, 201, "{second}");
    let (s, e) = app
        .send(Method::PATCH, &first, Some(r#"{"role":"viewer"}"#))
        .await;
    assert_eq!(s, 200, "{e}");
    let (s, _) = app.send(Method::DELETE, &first, None).await;
    assert_eq!(s, 204);
    let second = format!("/api/users/{}", second["id"].as_str().expect("id"));
    let (s, _) = app.send(Method::DELETE, &second, None).await;
    assert_eq!(s, 409, "root2 is now the last admin");
    app.stop().await;

    // The command line goes through the same check.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("c.db");
    let mut add = crate::common::with_db(&mut crate::common::fleetpoll(), &db)
        .args(["user", "add", "solo", "--role", "admin", "--password-stdin"])
        .stdout(std::process::Stdio::null())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        add.stdin
            .take()
            .expect("stdin")
            .write_all(b"long enough pw\n")
            .expect("write");
    }
    crate::common::assert_ok(&add.wait_with_output().expect("wait"));
    let out = crate::common::with_db(&mut crate::common::fleetpoll(), &db)
        .args(["user", "set-role", "solo", "--role", "operator"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("solo is the last admin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- Finding 3: requests forged from another origin of the same site ----

/// Logs `name` (an admin, created here) in and returns the `fleetpoll_session=...` pair.
async fn session_cookie(app: &TestApp, name: &str) -> String {
    fleetpoll::ops::create_user(
        &app.store,
        name,
        fleetpoll::auth::Role::Admin,
        "correct horse battery",
        &fleetpoll::activity::Actor::system(),
    )
    .await
    .expect("user");
    let r = app
        .anon
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": name, "password": "correct horse battery" }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 200);
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string()
}

/// A cookie-carrying write as a browser on another port of the same host would send it: JSON
/// as `text/plain` (no preflight needed) gets 415, a foreign `Origin` or a `same-site`
/// `Sec-Fetch-Site` gets 403, each naming the header, and no user is created. The same
/// request from this server's own origin, or with a bearer token, still works. Before the fix
/// all of them created the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_writes_need_json_and_this_servers_origin() {
    let app = TestApp::start().await;
    let cookie = session_cookie(&app, "adam").await;
    let ours = format!("http://{}", app.addr);
    let other_port = format!("http://127.0.0.1:{}", app.addr.port() ^ 1);
    let post = |name: &str, content_type: &str, headers: &[(&str, &str)], with_cookie: bool| {
        let mut req = app
            .anon
            .post(app.url("/api/users"))
            .header("content-type", content_type)
            .body(
                json!({ "name": name, "role": "admin", "password": "pwned-password" }).to_string(),
            );
        if with_cookie {
            req = req.header("cookie", cookie.clone());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move {
            let r = req.send().await.expect("post");
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let refused = [
        (
            post("evil1", "text/plain", &[], true).await,
            415,
            "content-type",
        ),
        (
            post(
                "evil2",
                "application/json",
                &[("origin", &other_port)],
                true,
            )
            .await,
            403,
            "origin",
        ),
        (
            post(
                "evil3",
                "text/plain;charset=UTF-8",
                &[("origin", &other_port)],
                true,
            )
            .await,
            403,
            "origin",
        ),
        (
            post("evil4", "application/json", &[("origin", "null")], true).await,
            403,
            "origin",
        ),
        (
            post(
                "evil5",
                "application/json",
                &[("sec-fetch-site", "same-site")],
                true,
            )
            .await,
            403,
            "sec-fetch-site",
        ),
    ];
    for ((status, body), want, field) in &refused {
        assert_eq!(
            (*status, body["field"].as_str()),
            (*want, Some(*field)),
            "{body}"
        );
    }
    let (_, users) = app.get("/api/users").await;
    assert!(!users.to_string().contains("evil"), "{users}");

    let (status, body) = post(
        "fromhere",
        "application/json",
        &[("origin", &ours), ("sec-fetch-site", "same-origin")],
        true,
    )
    .await;
    assert_eq!(status, 201, "the dashboard's own write: {body}");
    let (status, body) = app
        .send(
            Method::POST,
            "/api/users",
            Some(r#"{"name":"bytoken","role":"viewer","password":"long enough"}"#),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let r = app
        .http
        .post(app.url("/api/users"))
        .header("content-type", "application/json")
        .header("origin", &other_port)
        .body(r#"{"name":"bytoken2","role":"viewer","password":"long enough"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201, "a bearer caller is not a browser");
    // Logging in from another origin is refused too (it would log the browser in as the
    // attacker's account).
    let r = app
        .anon
        .post(app.url("/api/auth/login"))
        .header("origin", &other_port)
        .json(&json!({ "username": "adam", "password": "correct horse battery" }))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 403);
    app.stop().await;
}
