use std::time::{Duration, Instant};

use fleetpoll::inventory::ServerStatus;

use crate::common::{self, add, count, poll, poll_one, registration};
use crate::harness::{closed_port, DockerMode, KeyKind, SilentServer, Sshd};

fn meminfo_total_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let line = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .expect("MemTotal");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .expect("value")
        .parse()
        .expect("number");
    kib * 1024
}

fn root_fs_total_bytes() -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "-P", "/"])
        .output()
        .expect("df");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .nth(1)
        .expect("total")
        .parse()
        .expect("number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_host_is_polled_and_its_values_match_the_truth() {
    let sshd = Sshd::start(common::shim());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("live", &sshd)).await;

    let r = poll_one(&store, dir.path(), &server).await;
    let snap = r.outcome.as_ref().expect("poll succeeds");
    assert_eq!(
        snap.server.mem_total_bytes,
        Some(meminfo_total_bytes()),
        "memory total equals MemTotal"
    );
    let root = snap
        .disks
        .iter()
        .find(|d| d.mount == "/")
        .expect("root filesystem row");
    let truth = root_fs_total_bytes();
    assert!(
        root.total_bytes.expect("total").abs_diff(truth) < 1024,
        "root size {:?} vs df -B1 {truth}",
        root.total_bytes
    );
    assert!(snap.server.uptime_seconds.is_some_and(|u| u > 0));
    assert!(snap.server.load1.is_some());
    assert!(snap
        .server
        .cpu_busy_percent
        .is_some_and(|c| (0.0..=100.0).contains(&c)));
    // The shim prints the captured docker output: every container of the capture is a row.
    assert_eq!(snap.containers.len(), 8);
    let busy = snap
        .containers
        .iter()
        .find(|c| c.name == "busy")
        .expect("busy container");
    assert_eq!(busy.mem_limit_bytes, Some(256 * 1024 * 1024));
    assert!(busy.cpu_percent.is_some_and(|c| c > 40.0));

    let stored = store.server(server.id).await.expect("server");
    assert_eq!(stored.status, ServerStatus::Online);
    let platform = stored.platform.clone().expect("probed on first contact");
    assert!(
        matches!(&platform.top, fleetpoll::probe::Tool::Procps(v) if v.starts_with("procps-ng")),
        "{platform:?}"
    );
    assert!(
        matches!(platform.df, fleetpoll::probe::Tool::Coreutils(_)),
        "{platform:?}"
    );
    let engine = platform.engine.clone().expect("the shim is a docker");
    assert_eq!(
        (engine.kind.as_str(), engine.access.as_str()),
        ("docker", "direct")
    );
    assert_eq!(
        stored.host_key_fingerprint.as_deref(),
        Some(sshd.host_key_fingerprint().as_str()),
        "first connect pins the key"
    );
    let (_, latest) = store
        .latest_server_sample(server.id)
        .await
        .expect("read")
        .expect("stored metrics");
    assert_eq!(latest.mem_total_bytes, Some(meminfo_total_bytes()));
    assert_eq!(crate::common::samples(&store, 2, None).await, 8);
    let kinds: Vec<String> = sqlx::query_scalar("select type from activity order by id")
        .fetch_all(store.pool())
        .await
        .expect("activity");
    assert!(kinds.contains(&"host_key_pinned".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"server_online".to_string()), "{kinds:?}");

    // A second poll writes no second transition entry.
    poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("second poll");
    assert_eq!(
        count(
            &store,
            "select count(*) from activity where type = 'server_online'"
        )
        .await,
        1
    );
    assert_eq!(crate::common::samples(&store, 0, None).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_load_on_the_host_shows_in_the_current_cpu_figure() {
    let sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("loaded", &sshd)).await;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let mut burners: Vec<std::process::Child> = (0..cores)
        .map(|_| {
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("burner")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let r = poll_one(&store, dir.path(), &server).await;
    for b in &mut burners {
        let _ = b.kill();
        let _ = b.wait();
    }
    let cpu = r
        .outcome
        .expect("poll")
        .server
        .cpu_busy_percent
        .expect("cpu");
    // The since-boot average of a mostly idle machine is far below this; the current
    // figure with every core spinning is near 100.
    assert!(cpu > 70.0, "cpu busy {cpu} under full load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_refuses_the_poll_until_trusted() {
    let mut sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("rekeyed", &sshd)).await;
    poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("first poll pins");
    let first = sshd.host_key_fingerprint();

    sshd.rotate_host_key();
    let second = sshd.host_key_fingerprint();
    assert_ne!(first, second);
    let r = poll_one(&store, dir.path(), &server).await;
    let err = r.outcome.expect_err("mismatch refuses");
    assert_eq!(err.reason(), "host_key_changed");
    let s = store.server(server.id).await.expect("server");
    assert_eq!(s.status, ServerStatus::HostKeyChanged);
    assert_eq!(
        s.host_key_fingerprint.as_deref(),
        Some(first.as_str()),
        "pin unchanged"
    );
    assert_eq!(
        s.pending_host_key_fingerprint.as_deref(),
        Some(second.as_str())
    );
    assert_eq!(
        crate::common::samples(&store, 0, None).await,
        1,
        "no metrics stored"
    );
    let critical: i64 = count(
        &store,
        "select count(*) from activity where type = 'host_key_changed' and severity = 'critical'",
    )
    .await;
    assert_eq!(critical, 1);

    // Polling again while changed writes no second entry.
    poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect_err("still refused");
    assert_eq!(
        count(
            &store,
            "select count(*) from activity where type = 'host_key_changed'"
        )
        .await,
        1
    );

    fleetpoll::ops::trust_host_key(
        &store,
        server.id,
        &fleetpoll::activity::Actor {
            name: "cli:tester".into(),
            source: None,
        },
    )
    .await
    .expect("trust");
    let s = store.server(server.id).await.expect("server");
    assert_eq!(s.host_key_fingerprint.as_deref(), Some(second.as_str()));
    let actor: String =
        sqlx::query_scalar("select actor from activity where type = 'host_key_trusted'")
            .fetch_one(store.pool())
            .await
            .expect("audited");
    assert_eq!(actor, "cli:tester");
    poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("polls again after trust");
    assert_eq!(
        store.server(server.id).await.expect("server").status,
        ServerStatus::Online
    );

    // Nothing pending now: a second trust is refused, changes no pin and writes no entry.
    let e = fleetpoll::ops::trust_host_key(&store, server.id, &fleetpoll::activity::Actor::cli())
        .await
        .expect_err("nothing to trust");
    assert!(
        e.to_string().contains("nothing to trust") && e.to_string().contains(&second),
        "{e}"
    );
    let s = store.server(server.id).await.expect("server");
    assert_eq!(s.host_key_fingerprint.as_deref(), Some(second.as_str()));
    assert_eq!(
        count(
            &store,
            "select count(*) from activity where type = 'host_key_trusted'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_key_is_auth_failed() {
    let sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let mut reg = registration("wrongkey", &sshd);
    reg.key_path = sshd
        .new_client_key(KeyKind::Ed25519, None, false)
        .to_string_lossy()
        .into_owned();
    let server = add(&store, reg).await;
    let err = poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect_err("refused");
    assert_eq!(err.reason(), "auth_failed");
    let s = store.server(server.id).await.expect("server");
    assert_eq!(s.status, ServerStatus::Offline);
    assert!(
        s.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("auth_failed")),
        "{:?}",
        s.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_ecdsa_and_encrypted_keys_authenticate() {
    let sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    for (name, kind) in [("rsa", KeyKind::Rsa), ("ecdsa", KeyKind::Ecdsa)] {
        let mut reg = registration(name, &sshd);
        reg.key_path = sshd
            .new_client_key(kind, None, true)
            .to_string_lossy()
            .into_owned();
        let server = add(&store, reg).await;
        poll_one(&store, dir.path(), &server)
            .await
            .outcome
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let mut reg = registration("encrypted", &sshd);
    reg.key_path = sshd
        .new_client_key(KeyKind::Ed25519, Some("correct horse"), true)
        .to_string_lossy()
        .into_owned();
    let err = fleetpoll::ops::add_server(
        &store,
        reg.clone(),
        &fleetpoll::activity::Actor {
            name: "test".into(),
            source: None,
        },
    )
    .await
    .expect_err("needs passphrase");
    assert!(err.to_string().contains("--key-passphrase-env"), "{err}");
    reg.key_passphrase_env = Some("FLEETPOLL_TEST_PASSPHRASE_WRONG".into());
    std::env::set_var("FLEETPOLL_TEST_PASSPHRASE_WRONG", "wrong");
    let err = fleetpoll::ops::add_server(
        &store,
        reg.clone(),
        &fleetpoll::activity::Actor {
            name: "test".into(),
            source: None,
        },
    )
    .await
    .expect_err("wrong passphrase");
    assert!(err.to_string().contains("could not be decrypted"), "{err}");
    reg.key_passphrase_env = Some("FLEETPOLL_TEST_PASSPHRASE".into());
    std::env::set_var("FLEETPOLL_TEST_PASSPHRASE", "correct horse");
    let server = add(&store, reg).await;
    poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("encrypted key polls");
    let log: Vec<String> = sqlx::query_scalar("select message || details from activity")
        .fetch_all(store.pool())
        .await
        .expect("log");
    assert!(
        log.iter().all(|l| !l.contains("correct horse")),
        "passphrase leaked into the activity log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_silent_hosts_do_not_delay_a_live_one() {
    let sshd = Sshd::start(DockerMode::Missing);
    let silent = SilentServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let live = add(&store, registration("live", &sshd)).await;
    let mut reg = registration("closed", &sshd);
    reg.port = closed_port();
    let closed = add(&store, reg).await;
    let mut reg = registration("silent", &sshd);
    reg.port = silent.port;
    let mute = add(&store, reg).await;

    let started = Instant::now();
    let results = poll(
        &store,
        dir.path(),
        vec![mute.clone(), closed.clone(), live.clone()],
    )
    .await;
    let elapsed = started.elapsed();
    let settings = common::settings(dir.path());
    assert!(
        elapsed < settings.poll_deadline() + Duration::from_secs(3),
        "took {elapsed:?}"
    );
    for (s, r) in &results {
        match s.name.as_str() {
            "live" => assert!(r.outcome.is_ok(), "live: {:?}", r.outcome.as_ref().err()),
            "closed" => assert_eq!(
                r.outcome.as_ref().expect_err("closed").reason(),
                "unreachable"
            ),
            "silent" => assert_eq!(r.outcome.as_ref().expect_err("silent").reason(), "timeout"),
            other => panic!("unexpected {other}"),
        }
    }
    // The live host's poll finished long before the silent one's deadline.
    let took = |name: &str| {
        results
            .iter()
            .find(|(s, _)| s.name == name)
            .expect(name)
            .1
            .duration
    };
    assert!(
        took("live") < took("silent"),
        "live {:?} waited for silent {:?}",
        took("live"),
        took("silent")
    );
    assert_eq!(
        store.server(live.id).await.expect("s").status,
        ServerStatus::Online
    );
    assert_eq!(
        store.server(closed.id).await.expect("s").status,
        ServerStatus::Offline
    );
    assert_eq!(
        store.server(mute.id).await.expect("s").status,
        ServerStatus::Offline
    );
    assert_eq!(
        count(
            &store,
            "select count(*) from activity where type = 'server_offline'"
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_forbidden_docker_is_online_without_containers_and_noted_once() {
    for (mode, expect) in [
        (DockerMode::Missing, "not installed"),
        (DockerMode::Denied, "not permitted"),
    ] {
        let sshd = Sshd::start(mode);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = common::store(dir.path()).await;
        let server = add(&store, registration("nodocker", &sshd)).await;
        for _ in 0..2 {
            let snap = poll_one(&store, dir.path(), &server)
                .await
                .outcome
                .expect("online");
            assert!(
                snap.containers.is_empty(),
                "{expect}: {:?} {:?}",
                snap.docker,
                snap.containers.first()
            );
        }
        assert_eq!(
            store.server(server.id).await.expect("s").status,
            ServerStatus::Online
        );
        let notes: Vec<String> =
            sqlx::query_scalar("select message from activity where type = 'docker_unavailable'")
                .fetch_all(store.pool())
                .await
                .expect("notes");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains(expect), "{notes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_hangs_times_out_and_the_session_is_not_reused_broken() {
    let sshd = Sshd::start(common::shim());
    sshd.set_docker_delay(60.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("hangs", &sshd)).await;
    let mut settings = common::settings(dir.path());
    settings.command_timeout_secs = 4;
    let scheduler = fleetpoll::scheduler::Scheduler::new(store.clone(), settings);
    let started = Instant::now();
    let r = scheduler
        .poll_now(vec![server.clone()])
        .await
        .pop()
        .expect("result")
        .1;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.outcome.expect_err("times out").reason(), "timeout");
    sshd.set_docker_delay(0.0);
    let r = scheduler
        .poll_now(vec![store.server(server.id).await.expect("s")])
        .await
        .pop()
        .expect("result")
        .1;
    r.outcome.expect("recovers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busybox_host_is_probed_and_read_in_its_own_units() {
    let sshd = Sshd::start(DockerMode::BusyboxHost);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("alpine-like", &sshd)).await;
    let snap = poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("poll");
    let platform = store
        .server(server.id)
        .await
        .expect("s")
        .platform
        .expect("platform");
    assert!(
        platform.top.is_busybox() && platform.free.is_busybox(),
        "{platform:?}"
    );
    assert!(platform.engine.is_none());
    // BusyBox free prints KiB: read as such, the total equals MemTotal exactly.
    assert_eq!(snap.server.mem_total_bytes, Some(meminfo_total_bytes()));
    assert!(
        snap.server.uptime_seconds.is_none(),
        "BusyBox top prints no uptime: None, not 0"
    );
    assert!(snap.server.load1.is_some() && snap.server.cpu_busy_percent.is_some());
    let root = snap
        .disks
        .iter()
        .find(|d| d.mount == "/")
        .expect("root row");
    assert!(
        root.total_bytes
            .expect("total")
            .abs_diff(root_fs_total_bytes())
            < 1024
    );
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    let kinds: Vec<String> =
        sqlx::query_scalar("select message from activity where type = 'platform_detected'")
            .fetch_all(store.pool())
            .await
            .expect("activity");
    assert_eq!(kinds.len(), 1);
    assert!(kinds[0].contains("BusyBox"), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_that_does_not_parse_is_kept_raw_while_the_others_are_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("stats.txt");
    std::fs::write(
        &garbage,
        "this docker prints something nobody has seen before\n",
    )
    .expect("write");
    let sshd = Sshd::start(DockerMode::Shim {
        stats: garbage.clone(),
        ps: common::fixture("docker_ps/docker-28.2-json-all.txt"),
    });
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("odd", &sshd)).await;
    let snap = poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("partial poll is a poll");
    assert!(snap.server.mem_total_bytes.is_some(), "top/free still read");
    assert!(!snap.disks.is_empty(), "df still read");
    assert_eq!(snap.problems.len(), 1, "{:?}", snap.problems);
    assert_eq!(snap.problems[0].kind(), "parse_failed");
    assert!(
        snap.problems[0].message().contains("line 1"),
        "{:?}",
        snap.problems
    );
    // Containers still come from docker ps, without usage figures.
    assert_eq!(snap.containers.len(), 8);
    assert!(snap.containers.iter().all(|c| c.cpu_percent.is_none()));

    let s = store.server(server.id).await.expect("s");
    assert_eq!(s.status, ServerStatus::Online);
    assert!(
        s.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("parse_failed")),
        "{:?}",
        s.reason
    );
    assert_eq!(crate::common::samples(&store, 0, None).await, 1);
    let raw = store
        .last_failed_output(server.id)
        .await
        .expect("raw output kept");
    assert!(raw.stdout.contains("nobody has seen before"));
    assert!(raw.problems.contains("docker_stats"), "{}", raw.problems);
    assert_eq!(
        count(
            &store,
            "select count(*) from activity where type = 'server_degraded'"
        )
        .await,
        1
    );

    let out = common::with_db(&mut common::fleetpoll(), dir.path().join("fleetpoll.db"))
        .args(["server", "last-output", "odd"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nobody has seen before"));

    // Fixed on the host: the next poll recovers and says so once.
    std::fs::copy(
        common::fixture("docker_stats/docker-28.2-json-all.txt"),
        &garbage,
    )
    .expect("copy");
    let snap = poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("poll");
    assert!(snap.problems.is_empty());
    assert_eq!(store.server(server.id).await.expect("s").reason, None);
    assert_eq!(
        count(
            &store,
            "select count(*) from activity where type = 'server_recovered'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_needs_consecutive_failures_and_each_transition_is_logged_once() {
    let mut sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("flaky", &sshd)).await;
    let mut settings = common::settings(dir.path());
    settings.offline_after_failures = 2;
    let scheduler = fleetpoll::scheduler::Scheduler::new(store.clone(), settings);
    let poll = |s: &std::sync::Arc<fleetpoll::scheduler::Scheduler>| {
        let s = s.clone();
        let store = store.clone();
        let id = server.id;
        async move {
            s.poll_and_record(store.server(id).await.expect("server"))
                .await
        }
    };
    let status = || async { store.server(server.id).await.expect("s").status };
    let entries = |kind: &'static str| {
        let store = store.clone();
        async move {
            count(
                &store,
                &format!("select count(*) from activity where type = '{kind}'"),
            )
            .await
        }
    };

    poll(&scheduler).await.outcome.expect("up");
    assert_eq!(status().await, ServerStatus::Online);
    sshd.stop();
    poll(&scheduler).await.outcome.expect_err("down once");
    assert_eq!(
        status().await,
        ServerStatus::Online,
        "one failure is not an outage"
    );
    assert_eq!(entries("server_offline").await, 0);
    poll(&scheduler).await.outcome.expect_err("down twice");
    assert_eq!(status().await, ServerStatus::Offline);
    poll(&scheduler).await.outcome.expect_err("down thrice");
    assert_eq!(
        entries("server_offline").await,
        1,
        "one entry per transition"
    );
    sshd.restart();
    poll(&scheduler).await.outcome.expect("back");
    assert_eq!(status().await, ServerStatus::Online);
    assert_eq!(
        entries("server_online").await,
        2,
        "first contact and the recovery"
    );
    assert_eq!(
        store
            .server(server.id)
            .await
            .expect("s")
            .consecutive_failures,
        0
    );

    // A server never reached has no status to keep: offline at its first failure.
    let mut reg = registration("never-up", &sshd);
    reg.port = closed_port();
    let never = add(&store, reg).await;
    scheduler
        .poll_and_record(never.clone())
        .await
        .outcome
        .expect_err("closed");
    assert_eq!(
        store.server(never.id).await.expect("s").status,
        ServerStatus::Offline
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_times_out_alone_while_others_finish() {
    let live = Sshd::start(DockerMode::Missing);
    let slow = Sshd::start(common::shim());
    slow.set_docker_delay(60.0);
    let silent = SilentServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let a = add(&store, registration("live", &live)).await;
    let b = add(&store, registration("slow", &slow)).await;
    let mut reg = registration("silent", &live);
    reg.port = silent.port;
    let c = add(&store, reg).await;
    let mut settings = common::settings(dir.path());
    settings.command_timeout_secs = 5;
    let scheduler = fleetpoll::scheduler::Scheduler::new(store.clone(), settings.clone());
    let results = scheduler.poll_now(vec![b, c, a]).await;
    let took = |name: &str| {
        results
            .iter()
            .find(|(s, _)| s.name == name)
            .expect(name)
            .1
            .duration
    };
    let reason = |name: &str| {
        results
            .iter()
            .find(|(s, _)| s.name == name)
            .expect(name)
            .1
            .outcome
            .as_ref()
            .err()
            .map(|e| e.reason().as_str())
    };
    assert_eq!(reason("live"), None);
    assert_eq!(reason("slow"), Some("timeout"));
    assert_eq!(reason("silent"), Some("timeout"));
    assert!(took("live") < took("silent") && took("live") < took("slow"));
    assert!(
        took("slow") <= settings.poll_deadline() + Duration::from_secs(3),
        "slow held past its deadline: {:?}",
        took("slow")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_key_polls_and_can_run_nothing_else() {
    let sshd = Sshd::start(DockerMode::Missing);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("fleet_key");
    let db = dir.path().join("fleetpoll.db");
    let out = common::with_db(&mut common::fleetpoll(), &db)
        .args(["key", "generate", "--out"])
        .arg(&key)
        .output()
        .expect("run");
    crate::common::assert_ok(&out);
    let out = common::with_db(&mut common::fleetpoll(), &db)
        .args(["key", "authorized-line", "--key"])
        .arg(&key)
        .output()
        .expect("run");
    crate::common::assert_ok(&out);
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(line.starts_with("restrict,command=\""), "{line}");
    let mut keys = std::fs::OpenOptions::new()
        .append(true)
        .open(&sshd.authorized_keys)
        .expect("authorized_keys");
    std::io::Write::write_all(&mut keys, format!("{line}\n").as_bytes()).expect("append");

    let store = common::store(dir.path()).await;
    let mut reg = registration("restricted", &sshd);
    reg.key_path = key.to_string_lossy().into_owned();
    let server = add(&store, reg).await;
    let snap = poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("the restricted key polls");
    assert_eq!(snap.server.mem_total_bytes, Some(meminfo_total_bytes()));
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);

    let ssh = |command: &str, stdin: &str| {
        let mut child = std::process::Command::new("ssh")
            .arg("-i")
            .arg(&key)
            .args([
                "-p",
                &sshd.port.to_string(),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
            ])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .arg(format!("{}@127.0.0.1", sshd.user))
            .arg(command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ssh");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stdin.as_bytes())
            .expect("stdin");
        child.wait_with_output().expect("ssh output")
    };
    for (command, stdin) in [("id", ""), ("sh -s", "id\n"), ("cat /etc/passwd", "")] {
        let out = ssh(command, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{command} ran: {stdout}");
        assert!(
            !stdout.contains("uid=") && !stdout.contains("root:"),
            "{command}: {stdout}"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refused"),
            "{command}"
        );
    }
    // At a terminal, standard input stays open: another command is refused without waiting
    // for it to end.
    let mut held = std::process::Command::new("ssh")
        .arg("-i")
        .arg(&key)
        .args(["-p", &sshd.port.to_string(), "-o", "BatchMode=yes"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "LogLevel=ERROR"])
        .arg(format!("{}@127.0.0.1", sshd.user))
        .arg("id")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ssh");
    let open_stdin = held.stdin.take();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = held.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(15) {
            held.kill().ok();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(open_stdin);
    let status = status.expect("refused while its standard input is still open");
    assert_eq!(status.code(), Some(126), "the wrapper's refusal code");
}
