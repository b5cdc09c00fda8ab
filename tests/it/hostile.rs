//! Issue #17: what a hostile host or a careless operator could do to the poller, each tried
//! against the real server and shown to fail safely.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{self, TestApp};
use crate::harness::{DockerMode, Sshd};

/// A validation that must come back, refused, well before anything could hang.
async fn validate_key_path(app: &TestApp, key_path: &str) -> Value {
    let body = json!({
        "name": "careless", "host": "127.0.0.1", "port": 22, "user": "ops", "key_path": key_path,
    })
    .to_string();
    let (status, v) = tokio::time::timeout(
        Duration::from_secs(20),
        app.send(Method::POST, "/api/servers/validate", Some(&body)),
    )
    .await
    .unwrap_or_else(|_| panic!("validating key_path {key_path} hung"));
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_a_device_as_key_path_is_refused_without_holding_the_server() {
    let app = TestApp::start().await;
    let fifo = app.dir.path().join("not-a-key");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let fifo = fifo.display().to_string();
    // Twice each: two blocked reads used to take both async workers.
    for path in [fifo.as_str(), fifo.as_str()] {
        let v = validate_key_path(&app, path).await;
        assert_eq!(v["valid"], false, "{v}");
        assert_eq!(v["field"], "key_path", "{v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a regular file")),
            "{v}"
        );
    }
    // Outside the directories the API may name, one answer whatever the file is, and
    // nothing is opened: /dev/zero, the poller's own host key, a directory, nothing at all.
    for path in [
        "/dev/zero",
        "/dev/zero",
        "/etc/ssh/ssh_host_ed25519_key",
        "/etc",
        "/nonexistent/x",
    ] {
        let v = validate_key_path(&app, path).await;
        assert_eq!(v["field"], "key_path", "{v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a usable key file")),
            "{path}: {v}"
        );
    }
    let big = app.dir.path().join("big");
    std::fs::write(&big, vec![b'A'; 1 << 20]).expect("write");
    let v = validate_key_path(&app, &big.display().to_string()).await;
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("larger than 64 KiB")),
        "{v}"
    );

    let (status, _) = tokio::time::timeout(Duration::from_secs(5), app.get("/api/servers"))
        .await
        .expect("the API still answers");
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_printing_a_huge_new_docker_error_at_every_poll_cannot_grow_the_log() {
    let sshd = Sshd::start(DockerMode::Shim {
        stats: common::fixture("docker_stats/docker-28.2-json-all.txt"),
        ps: common::fixture("docker_ps/docker-28.2-json-all.txt"),
    });
    // A docker that looks usable to the probe, then fails every `ps` with 2 MB of new text.
    sshd.put_tool(
        "docker",
        "#!/bin/sh\ncase \"$1\" in\n  version|info) echo 28.2.2 ;;\n  \
         *) printf 'Error: ' >&2; head -c 1500000 /dev/urandom | base64 -w0 >&2; echo >&2; exit 1 ;;\nesac\n",
    );
    let app = TestApp::start().await;
    let server = common::add(&app.store, common::registration("hostile", &sshd)).await;
    let scheduler =
        fleetpoll::scheduler::Scheduler::new(app.store.clone(), common::settings(app.dir.path()));
    for _ in 0..4 {
        let r = scheduler.poll_and_record(server.clone()).await;
        assert!(
            r.outcome.is_ok(),
            "top, free and df still read: {:?}",
            r.outcome.err()
        );
    }

    let entries = common::count(
        &app.store,
        "select count(*) from activity where type = 'docker_unavailable'",
    )
    .await;
    assert_eq!(
        entries, 1,
        "one entry for the condition, the repeats counted"
    );
    let bytes = common::count(
        &app.store,
        "select coalesce(sum(length(message) + length(details)), 0) from activity",
    )
    .await;
    assert!(bytes < 64 * 1024, "the whole log holds {bytes} bytes");
    let stored = app.store.server(server.id).await.expect("server");
    let reason_len = stored.docker_note.as_deref().map_or(0, str::len);
    assert!(reason_len <= 4096 + 64, "docker note of {reason_len} bytes");

    let r = app
        .http
        .get(app.url("/api/activity?limit=50"))
        .send()
        .await
        .expect("activity");
    let body = r.bytes().await.expect("body");
    assert!(
        body.len() < 64 * 1024,
        "/api/activity answered {} bytes",
        body.len()
    );
    let summary = app
        .http
        .get(app.url("/api/dashboard/summary"))
        .send()
        .await
        .expect("summary")
        .bytes()
        .await
        .expect("body");
    assert!(
        summary.len() < 64 * 1024,
        "summary answered {} bytes",
        summary.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_database_and_its_wal_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    // SQLite's own files; PostgreSQL keeps its files to itself.
    if common::on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fleetpoll.db");
    // An existing database from before the rule is narrowed too.
    std::fs::write(&db, b"").expect("create");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = common::store(dir.path()).await;
    common::count(&store, "select count(*) from servers").await;
    for name in ["fleetpoll.db", "fleetpoll.db-wal", "fleetpoll.db-shm"] {
        let path = dir.path().join(name);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is {:o}", mode & 0o777);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_from_a_host_reach_the_terminal_as_text() {
    let sshd = Sshd::start(DockerMode::Shim {
        stats: common::fixture("docker_stats/docker-28.2-json-all.txt"),
        ps: common::fixture("docker_ps/docker-28.2-json-all.txt"),
    });
    // Retitles the terminal, clears it and writes the clipboard (OSC 52), if printed raw.
    sshd.put_tool(
        "docker",
        "#!/bin/sh\ncase \"$1\" in\n  version|info) echo 28.2.2 ;;\n  \
         *) printf 'boom \\033]0;owned\\007\\033[2J\\033]52;c;cm0gLXJmIH4=\\007\\n' >&2; exit 1 ;;\nesac\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = common::add(&store, common::registration("hostile", &sshd)).await;
    let r = common::poll_one(&store, dir.path(), &server).await;
    assert!(r.outcome.is_ok(), "{:?}", r.outcome.err());
    let db = dir.path().join("fleetpoll.db");
    for args in [
        vec!["server", "list"],
        vec!["server", "show", "hostile"],
        vec!["activity"],
    ] {
        let out = common::with_db(&mut common::fleetpoll(), &db)
            .args(&args)
            .output()
            .expect("run fleetpoll");
        common::assert_ok(&out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
            "{args:?} printed raw escapes: {stdout:?}"
        );
        if args[0] == "activity" {
            assert!(
                stdout.contains("\\x1b]0;owned"),
                "{args:?}: the text is still shown: {stdout}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_names_only_passphrase_variables_with_the_configured_prefix() {
    let app = TestApp::start().await;
    let body = |var: &str| {
        json!({ "name": "x", "host": "127.0.0.1", "port": 22, "user": "ops",
                "key_path": app.dir.path().join("id").display().to_string(), "key_passphrase_env": var })
        .to_string()
    };
    // PATH is set on every machine: through the API its existence is not for the asking.
    let (_, v) = app
        .send(Method::POST, "/api/servers/validate", Some(&body("PATH")))
        .await;
    assert_eq!(v["field"], "key_passphrase_env", "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("FLEETPOLL_KEY_")),
        "{v}"
    );
    let (_, v) = app
        .send(
            Method::POST,
            "/api/servers/validate",
            Some(&body("FLEETPOLL_KEY_NEVER_SET_4D2")),
        )
        .await;
    assert_eq!(v["field"], "key_passphrase_env", "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("is not set")),
        "{v}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_thousands_of_containers_is_served_a_page_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One real `docker ps` line, repeated with distinct ids and names: 1,500 containers.
    let line = common::docker_ps_line();
    let many: String = (0..1500)
        .map(|i| {
            line.replace("fafa6c5df89e", &format!("{i:012x}"))
                .replace("\"Names\":\"warming\"", &format!("\"Names\":\"c{i:05}\""))
                + "\n"
        })
        .collect();
    let (docker, _) = common::shim_with_ps(dir.path(), &many);
    let sshd = Sshd::start(docker);
    let app = TestApp::start().await;
    let server = common::add(&app.store, common::registration("crowded", &sshd)).await;
    let scheduler =
        fleetpoll::scheduler::Scheduler::new(app.store.clone(), common::settings(app.dir.path()));
    let r = scheduler.poll_and_record(server.clone()).await;
    assert_eq!(r.outcome.expect("polled").containers.len(), 1500);

    let (status, first) = app
        .get(&format!("/api/servers/{}/containers", server.id))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (
            first["total"].as_u64(),
            first["items"].as_array().map(Vec::len)
        ),
        (Some(1500), Some(500))
    );
    let (_, last) = app
        .get(&format!(
            "/api/servers/{}/containers?offset=1000&limit=1000",
            server.id
        ))
        .await;
    let items = last["items"].as_array().expect("items");
    assert_eq!(items.len(), 500);
    assert_eq!(items[0]["name"], "c01000", "by name, from the offset");
    let (status, v) = app
        .get(&format!(
            "/api/servers/{}/containers?limit=50000",
            server.id
        ))
        .await;
    assert_eq!((status, v["field"].as_str()), (400, Some("limit")), "{v}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_validate_endpoint_cannot_be_called_in_a_loop() {
    let app = TestApp::start().await;
    let body = json!({ "name": "x", "host": "127.0.0.1", "port": 22, "user": "ops",
                       "key_path": "/etc/shadow" })
    .to_string();
    let mut refused = None;
    for i in 0..61 {
        let r = app
            .http
            .post(app.url("/api/servers/validate"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("validate");
        if r.status().as_u16() == 429 {
            refused = Some((i, r.headers().get("retry-after").is_some()));
            break;
        }
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(
        refused,
        Some((60, true)),
        "the 61st call in a minute is refused, with Retry-After"
    );
    app.stop().await;
}
