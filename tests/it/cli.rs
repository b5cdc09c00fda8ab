use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{fixture, fleetpoll};
use crate::harness::{DockerMode, KeyKind, Sshd};

#[test]
fn parse_prints_json_and_bad_input_exits_1_naming_the_line() {
    let out = fleetpoll()
        .args(["parse", "free"])
        .arg(fixture("free/procps-ng-4.0.2-b.txt"))
        .output()
        .expect("run");
    crate::common::assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert!(v["mem_total_bytes"].as_u64().is_some_and(|t| t > 0), "{v}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.txt");
    std::fs::write(
        &bad,
        "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda lots of space\n",
    )
    .expect("write");
    let out = fleetpoll()
        .args(["parse", "df"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn server_commands_with_json_print_only_json_and_remove_needs_confirmation() {
    let sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cli.db");
    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args([
            "server",
            "add",
            "--name",
            "cli-1",
            "--host",
            "127.0.0.1",
            "--port",
            &sshd.port.to_string(),
            "--user",
            &sshd.user,
            "--key",
        ])
        .arg(&sshd.client_key)
        .args(["--tag", "prod", "--json"])
        .output()
        .expect("run");
    crate::common::assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(v["name"], "cli-1");
    let key_text = std::fs::read_to_string(&sshd.client_key).expect("key");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(key_text.trim()));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(key_text.trim()));

    // Bad port is refused by the CLI with the field named.
    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args([
            "server", "add", "--name", "x", "--host", "h", "--port", "70000", "--user", "u",
            "--key", "/k",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port"));

    let out = fleetpoll()
        .args(["server", "list", "--json", "--db"])
        .arg(&db)
        .output()
        .expect("run");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("global flags after the subcommand");
    assert_eq!(v.as_array().map(Vec::len), Some(1));

    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["poll", "--once", "--json"])
        .output()
        .expect("run");
    crate::common::assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("poll JSON");
    assert_eq!(v[0]["ok"], true, "{v}");
    // Numbers as people read them: percentages to 0.01, durations to the millisecond.
    let hundredths = |x: f64| ((x * 100.0).round() - x * 100.0).abs() < 1e-6;
    for field in ["cpu_percent", "memory_percent", "disk_percent"] {
        let x = v[0][field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field}: {v}"));
        assert!(hundredths(x), "{field} = {x}");
    }
    let secs = v[0]["duration_seconds"].as_f64().expect("duration");
    assert!(
        ((secs * 1000.0).round() - secs * 1000.0).abs() < 1e-6,
        "{secs}"
    );

    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["server", "remove", "cli-1"])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "remove without --yes off a terminal must refuse"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["server", "remove", "cli-1", "--yes"])
        .output()
        .expect("run");
    assert!(out.status.success());

    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["activity", "--json", "--type", "server_removed"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("activity JSON");
    assert_eq!(v["total"], 1);
    assert!(
        v["items"][0]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("cli:")),
        "{v}"
    );
}

#[test]
fn a_bad_setting_is_an_error_naming_the_key() {
    let out = fleetpoll()
        .env("FLEETPOLL_POLL_INTERVAL_SECS", "soon")
        .args(["server", "list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLEETPOLL_POLL_INTERVAL_SECS"));
}

#[test]
fn serve_stops_cleanly_on_sigterm_within_ten_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = fleetpoll()
        .arg("--db")
        .arg(dir.path().join("serve.db"))
        .args(["serve", "--listen", "127.0.0.1:0", "--interval", "5"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let rx = crate::common::stderr_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serve logs its address");
        if line.contains("Serving") {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not start");
    }
    // Issue #18: the first-admin hint names the database serve runs on.
    let db = dir.path().join("serve.db");
    let hint = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("serve hints at the first admin");
        if line.contains("No users yet") {
            break line;
        }
    };
    assert!(
        hint.contains(&format!(
            "fleetpoll --db {} user add NAME --role admin",
            db.display()
        )),
        "{hint}"
    );
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve did not stop within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Issue #12: `db stats` reports each tier, `db backup` makes a copy that opens and refuses
/// to overwrite, `db vacuum` and `db maintain` run, and backup and vacuum are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_stats_backup_vacuum_and_maintain_work_on_a_live_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::common::store(dir.path()).await;
    let id = crate::common::named_server(&store, dir.path(), "db-1").await;
    let now = chrono::Utc::now().timestamp_millis();
    for m in 0..30 {
        let disk = fleetpoll::model::DiskSample {
            filesystem: "/dev/vda1".into(),
            mount: "/".into(),
            total_bytes: Some(1000),
            used_bytes: Some(10 * m),
            available_bytes: Some(1000 - 10 * m),
            use_percent: Some(m as f64),
        };
        crate::common::record_disks(
            &store,
            id,
            now - i64::try_from(m).expect("m") * 60_000,
            vec![disk],
        )
        .await;
    }
    store.close().await;
    let db = dir.path().join("fleetpoll.db");
    let run = |args: &[&str]| {
        let out = fleetpoll()
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .expect("run");
        crate::common::assert_ok(&out);
        out
    };
    let out = run(&["db", "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON");
    let tiers: Vec<&str> = v["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .map(|t| t["tier"].as_str().expect("name"))
        .collect();
    assert_eq!(tiers, ["raw_open", "raw", "hourly", "daily"]);
    // 30 samples of a server (17 fields) and a mount (4), none compacted yet.
    assert_eq!(v["tiers"][0]["values"], 30 * (17 + 4));
    assert!(v["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .any(|t| t[0] == "raw_points"));
    let human = run(&["db", "stats"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("raw_open"));

    let copy = dir.path().join("copy.db");
    run(&["db", "backup", copy.to_str().expect("path")]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&copy).expect("copy").permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the copy is its owner's only");
    let copied = fleetpoll::store::Store::open(&copy)
        .await
        .expect("the copy opens");
    assert_eq!(crate::common::samples(&copied, 1, None).await, 30);
    copied.close().await;
    let again = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["db", "backup", copy.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(
        !again.status.success(),
        "a second backup onto the same file is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));

    run(&["db", "vacuum"]);
    run(&["db", "maintain"]);
    let store = fleetpoll::store::Store::open(&db).await.expect("reopen");
    let kinds: Vec<String> =
        sqlx::query_scalar("select type from activity where type like 'database_%' order by id")
            .fetch_all(store.pool())
            .await
            .expect("activity");
    assert_eq!(kinds, ["database_backed_up", "database_vacuumed"]);
}

/// Issue #18: a file that is not a database is said once (not at each of the pool's
/// retries), and left as it was.
#[test]
fn a_file_that_is_not_a_database_is_refused_once_and_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "not a database\n".repeat(200)).expect("write");
    let out = fleetpoll()
        .env_remove("FLEETPOLL_TEST_POSTGRES")
        .arg("--db")
        .arg(&file)
        .args(["server", "list"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(err.matches("not a database").count(), 1, "{err}");
    assert_eq!(err.matches("notes.txt").count(), 1, "the path once: {err}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "not a database\n".repeat(200),
        "the file is untouched"
    );
}

/// Issue #18: a command that only reads never creates a database (nor its directories)
/// under a mistyped --db; one that writes still does.
#[test]
fn a_reading_command_refuses_a_database_that_does_not_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("no/such/dir/fleetpoll.db");
    for args in [
        &["server", "list"][..],
        &["activity"],
        &["db", "stats"],
        &["alert", "rule", "list"],
    ] {
        let out = fleetpoll()
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("does not exist"), "{args:?}: {err}");
        assert!(
            !dir.path().join("no").exists(),
            "{args:?} made the directories"
        );
    }
    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args([
            "user",
            "add",
            "first",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(b"a long enough password\n")?;
            c.wait_with_output()
        })
        .expect("run");
    crate::common::assert_ok(&out);
    assert!(db.exists(), "a command that writes creates the database");
}

/// Issue #18: a private key others can read is registered, with a warning saying how to fix it.
#[test]
fn server_add_warns_about_a_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fleetpoll.db");
    let key = dir.path().join("id_shared");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let add = |name: &str| {
        fleetpoll()
            .arg("--db")
            .arg(&db)
            .args([
                "server",
                "add",
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--user",
                "u",
                "--key",
            ])
            .arg(&key)
            .output()
            .expect("run")
    };
    let private = add("private");
    crate::common::assert_ok(&private);
    assert!(!String::from_utf8_lossy(&private.stderr).contains("readable by others"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let shared = add("shared");
    crate::common::assert_ok(&shared);
    let err = String::from_utf8_lossy(&shared.stderr);
    assert!(err.contains("readable by others (mode 644)"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}

/// Issue #18: `--json` is honoured by `remote-script` and `key generate|authorized-line`:
/// stdout is one JSON object carrying what the plain form prints.
#[test]
fn remote_script_and_key_commands_speak_json_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("fleetpoll.db");
    let key = dir.path().join("k");
    let run = |args: &[&str]| {
        let out = fleetpoll()
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .expect("run");
        crate::common::assert_ok(&out);
        out
    };
    let plain = run(&["remote-script"]);
    let v: serde_json::Value =
        serde_json::from_slice(&run(&["remote-script", "--json"]).stdout).expect("only JSON");
    assert_eq!(v["for"], "default");
    assert_eq!(
        v["script"].as_str(),
        Some(String::from_utf8_lossy(&plain.stdout).as_ref())
    );
    let keypath = key.to_str().expect("path");
    let v: serde_json::Value =
        serde_json::from_slice(&run(&["key", "generate", "--out", keypath, "--json"]).stdout)
            .expect("only JSON");
    assert_eq!(v["key"], keypath);
    let line = run(&["key", "authorized-line", "--key", keypath]);
    let v: serde_json::Value = serde_json::from_slice(
        &run(&["key", "authorized-line", "--key", keypath, "--json"]).stdout,
    )
    .expect("only JSON");
    assert_eq!(
        v["authorized_line"].as_str().map(str::trim),
        Some(String::from_utf8_lossy(&line.stdout).trim())
    );
}

/// Issue #18: a refused password is reported with its field named once.
#[test]
fn a_short_password_is_refused_naming_the_field_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = fleetpoll()
        .arg("--db")
        .arg(dir.path().join("fleetpoll.db"))
        .args(["user", "add", "ann", "--role", "viewer", "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(b"short\n")?;
            c.wait_with_output()
        })
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("password: must be 8 to 1024 characters"),
        "{err}"
    );
    assert_eq!(err.matches("password:").count(), 1, "{err}");
}

/// Issue #18: a syntax error in the config file keeps TOML's own layout (the quoted line and
/// the caret under the spot), instead of one squashed line.
#[test]
fn a_config_syntax_error_shows_the_line_and_the_spot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("fleetpoll.toml");
    std::fs::write(
        &config,
        "poll_interval_secs = 60\nlisten = \"127.0.0.1:8080\nconcurrency = 4\n",
    )
    .expect("write");
    let out = fleetpoll()
        .arg("--config")
        .arg(&config)
        .args(["server", "list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    let caret = err
        .lines()
        .find(|l| l.trim_start().starts_with('|') && l.contains('^'));
    assert!(caret.is_some(), "no line with the caret: {err}");
}

/// `fleetpoll doctor` against a real sshd: every step of a good target, a refused key, a
/// closed port, and a registered server whose host key changed, each with what to fix.
#[test]
fn doctor_walks_a_target_step_by_step_and_names_the_fix() {
    let mut sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("doctor.db");
    let doctor = |extra: &[&str], key: &std::path::Path, port: u16| {
        let out = fleetpoll()
            .arg("--db")
            .arg(&db)
            .args([
                "doctor",
                "--json",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["--user", &sshd.user, "--key"])
            .arg(key)
            .args(extra)
            .output()
            .expect("run");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        (out.status.code(), v)
    };
    let status = |v: &serde_json::Value, step: &str| -> String {
        v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["step"] == step)
            .map_or("absent".into(), |s| {
                s["status"].as_str().unwrap_or("?").to_string()
            })
    };
    let step = |v: &serde_json::Value, step: &str| -> serde_json::Value {
        v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["step"] == step)
            .cloned()
            .unwrap_or_default()
    };

    // A good, unrestricted key: every step passes but the restriction, which says how.
    let (code, v) = doctor(&[], &sshd.client_key, sshd.port);
    assert_eq!(code, Some(0), "{v}");
    for s in ["reach", "key", "host key", "login", "probe"] {
        assert_eq!(status(&v, s), "ok", "{s}: {v}");
    }
    assert!(
        step(&v, "banner")["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("SSH-2.0-OpenSSH"),
        "{v}"
    );
    assert!(
        step(&v, "host key")["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&sshd.host_key_fingerprint()),
        "{v}"
    );
    assert!(
        step(&v, "probe")["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("procps"),
        "{v}"
    );
    assert_eq!(status(&v, "restricted"), "warn", "{v}");
    assert!(step(&v, "restricted")["fix"]
        .as_str()
        .unwrap_or_default()
        .contains("key authorized-line"));
    assert!(matches!(status(&v, "poll").as_str(), "ok" | "warn"), "{v}");
    assert!(
        step(&v, "poll")["ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{v}"
    );
    assert!(!db.exists(), "a host given by address needs no database");

    // The restricted line of `key authorized-line`: the probe and the poll still run, and
    // the doctor says the key can do nothing else.
    let fleet_key = dir.path().join("fleet_key");
    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["key", "generate", "--out"])
        .arg(&fleet_key)
        .output()
        .expect("run");
    crate::common::assert_ok(&out);
    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["key", "authorized-line", "--key"])
        .arg(&fleet_key)
        .output()
        .expect("run");
    crate::common::assert_ok(&out);
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut keys = std::fs::read_to_string(&sshd.authorized_keys).expect("read");
    keys.push_str(&format!("{line}\n"));
    std::fs::write(&sshd.authorized_keys, keys).expect("write");
    let (code, v) = doctor(&[], &fleet_key, sshd.port);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(status(&v, "restricted"), "ok", "{v}");
    assert_eq!(status(&v, "probe"), "ok", "{v}");
    assert!(matches!(status(&v, "poll").as_str(), "ok" | "warn"), "{v}");

    // A key the host does not know: the login fails, with the fix, and nothing runs after it.
    let stranger = sshd.new_client_key(KeyKind::Ed25519, None, false);
    let (code, v) = doctor(&[], &stranger, sshd.port);
    assert_eq!(code, Some(1));
    assert_eq!(status(&v, "login"), "fail", "{v}");
    assert!(step(&v, "login")["fix"]
        .as_str()
        .unwrap_or_default()
        .contains("authorized_keys"));
    assert_eq!(status(&v, "probe"), "absent");

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (code, v) = doctor(&[], &sshd.client_key, port);
    assert_eq!(code, Some(1));
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(status(&v, "reach"), "fail");

    // A registered server, pinned by a poll, whose host key then changed.
    let run = |args: &[&str]| {
        let out = fleetpoll()
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .expect("run");
        crate::common::assert_ok(&out);
        out
    };
    let port = sshd.port.to_string();
    let key = sshd.client_key.to_string_lossy().into_owned();
    run(&[
        "server",
        "add",
        "--name",
        "doc-1",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--user",
        &sshd.user,
        "--key",
        &key,
    ]);
    run(&["poll", "--once", "--server", "doc-1"]);
    sshd.rotate_host_key();
    let out = fleetpoll()
        .arg("--db")
        .arg(&db)
        .args(["doctor", "doc-1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL host key") && text.contains("fleetpoll server trust doc-1"),
        "{text}"
    );
    assert!(
        !text.contains("login"),
        "nothing is sent to a host whose key changed: {text}"
    );
}
