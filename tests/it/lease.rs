//! Issue #14: several `fleetpoll serve --role poller` processes on one PostgreSQL database
//! share a simulated fleet by leases. Runs in the PostgreSQL pass of the test command; on
//! SQLite the roles are refused (config's tests).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fleetpoll::sim::{self, SimOptions};
use fleetpoll::store::Store;

use crate::common;

/// The small tests' poll interval.
const INTERVAL_SECS: i64 = 4;
/// The three-poller test's fleet, the size, at an interval three debug-build pollers
/// keep on two cores beside the other tests.
const HOSTS: usize = 300;
const FLEET_INTERVAL_SECS: i64 = 10;

/// A `serve` process and the address it listens on.
struct Process {
    child: Child,
    addr: String,
}

fn poller(dir: &Path, role: &str) -> Process {
    serve(dir, role, FLEET_INTERVAL_SECS, &[])
}

/// `fleetpoll serve --role ROLE` on the test's database, every `interval` seconds with 3 s
/// leases, with `env` on top.
fn serve(dir: &Path, role: &str, interval: i64, env: &[(&str, &str)]) -> Process {
    let mut child = common::with_db(&mut common::fleetpoll(), dir.join("fleetpoll.db"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            &interval.to_string(),
            "--role",
            role,
        ])
        .env("FLEETPOLL_LEASE_SECS", "3")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let lines = common::stderr_lines(&mut child);
    // "Serving the API and dashboard on http://..." (all, api) or "Serving /healthz and
    // /metrics on http://..." (poller).
    let marker = " on http://";
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("serve says where it listens");
        if let Some(i) = line.find(marker).filter(|_| line.contains("Serving")) {
            let rest = &line[i + marker.len()..];
            break rest[..rest.find('/').expect("address ends")].to_string();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || while lines.recv().is_ok() {});
    Process { child, addr }
}

/// Polls this process has finished, from its `/metrics` (read with a viewer's `token`).
async fn polls_of(p: &Process, token: &str) -> u64 {
    let text = reqwest::Client::new()
        .get(format!("http://{}/metrics", p.addr))
        .bearer_auth(token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    text.lines()
        .filter(|l| l.starts_with("fleetpoll_polls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Each server's sample times (its own series), oldest first.
async fn samples(store: &Store) -> HashMap<String, Vec<DateTime<Utc>>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select s.server_id, r.ts from raw_points r join series s on s.id = r.series \
         where s.kind = 0 order by r.ts",
    )
    .fetch_all(store.pool())
    .await
    .expect("samples");
    let mut out: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for (id, ts) in rows {
        out.entry(id)
            .or_default()
            .push(DateTime::from_timestamp_millis(ts).expect("time"));
    }
    out
}

/// Each leased host's poller.
async fn holders(store: &Store) -> HashMap<String, String> {
    sqlx::query_as("select server_id, poller_id from leases where poller_id <> ''")
        .fetch_all(store.pool())
        .await
        .expect("leases")
        .into_iter()
        .collect()
}

/// Leases held per live poller.
async fn shares(store: &Store) -> Vec<i64> {
    store
        .pollers(Utc::now(), 3000)
        .await
        .expect("pollers")
        .iter()
        .filter(|p| p.live && p.role != "api")
        .map(|p| p.leased_hosts)
        .collect()
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A sim fleet of `hosts` live hosts from `base` on, registered in `store` with a client key
/// made in `dir`.
async fn registered_fleet(
    store: &Store,
    dir: &Path,
    hosts: usize,
    base: Ipv4Addr,
) -> fleetpoll::sim::SimFleet {
    let key_path = dir.join("client_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key_path)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let key = fleetpoll::ssh::keys::load_private_key(&key_path, None).expect("key");
    let mut opts = SimOptions::new(hosts, key.public_key().clone());
    opts.base = base;
    opts.dead = 0;
    opts.silent = 0;
    opts.flapping = 0;
    opts.slow = 0;
    let fleet = sim::start(opts).await.expect("sim fleet");
    let csv = dir.join("hosts.csv");
    sim::write_hosts_csv(&csv, fleet.hosts(), "fleet", &key_path, &[]).expect("csv");
    let report =
        fleetpoll::import::import_file(store, &csv, &fleetpoll::activity::Actor::system(), false)
            .await
            .expect("import");
    assert_eq!(report.added.len(), hosts);
    fleet
}

/// No two samples of one host closer than most of an interval: never polled twice in one.
fn assert_once_per_interval(all: &HashMap<String, Vec<DateTime<Utc>>>, interval_secs: i64) {
    let min_gap = chrono::Duration::milliseconds(interval_secs * 1000 * 3 / 4);
    for (id, times) in all {
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= min_gap,
                "server {id} sampled twice within one interval: {} then {}",
                pair[0],
                pair[1]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pollers_share_the_fleet_once_per_interval_and_take_over_a_killed_ones_hosts() {
    if !common::on_postgres() {
        eprintln!("SKIPPED: several pollers need PostgreSQL (the test command's second pass)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    // 300 addresses from 127.1.80.1 on (the outage test has 127.1.51.x).
    let fleet = registered_fleet(&store, dir.path(), HOSTS, Ipv4Addr::new(127, 1, 80, 1)).await;

    // A token made here is good on every process: tokens are rows of the shared database.
    let (_, token) = fleetpoll::ops::create_token(
        &store,
        "lease-viewer",
        fleetpoll::auth::Role::Viewer,
        None,
        &fleetpoll::activity::Actor::system(),
    )
    .await
    .expect("token");
    let token = token.expose().to_string();
    let mut pollers: Vec<Process> = (0..3).map(|_| poller(dir.path(), "poller")).collect();
    let mut api = poller(dir.path(), "api");

    // Every host polled, and the fleet spread: each of the three holds its share.
    wait_for("every host sampled", Duration::from_secs(60), async || {
        samples(&store).await.len() == HOSTS
    })
    .await;
    wait_for("an even spread", Duration::from_secs(20), async || {
        let s = shares(&store).await;
        s.len() == 3
            && s.iter().sum::<i64>() == HOSTS as i64
            && s.iter().all(|n| *n == HOSTS as i64 / 3)
    })
    .await;
    let roles: Vec<String> = store
        .pollers(Utc::now(), 3000)
        .await
        .expect("pollers")
        .iter()
        .filter(|p| p.live)
        .map(|p| p.role.clone())
        .collect();
    assert_eq!(roles.iter().filter(|r| *r == "api").count(), 1, "{roles:?}");
    // A poller is a worker: its health and figures, not the API; the API node serves that.
    let get = async |p: &Process, path: &str| {
        let r = reqwest::Client::new()
            .get(format!("http://{}{path}", p.addr))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    let (code, body) = get(&pollers[0], "/api/dashboard/summary").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("role poller"), "{body}");
    assert_eq!(get(&pollers[0], "/healthz").await.0, 200);
    assert_eq!(get(&api, "/api/dashboard/summary").await.0, 200);

    // Three more intervals: each host once per interval, by one poller. The polls (not only
    // the samples written) are counted: a poller polling hosts it does not hold would show
    // here even though its results are not written.
    let mut before = 0;
    for p in &pollers {
        before += polls_of(p, &token).await;
    }
    tokio::time::sleep(Duration::from_secs(3 * FLEET_INTERVAL_SECS as u64)).await;
    let mut after = 0;
    for p in &pollers {
        after += polls_of(p, &token).await;
    }
    let polls = after - before;
    assert!(
        (2 * HOSTS as u64..=4 * HOSTS as u64).contains(&polls),
        "{polls} polls of {HOSTS} hosts in three intervals"
    );
    assert_once_per_interval(&samples(&store).await, FLEET_INTERVAL_SECS);

    // kill -9 one poller: its leases stay until they run out, then the others take its hosts.
    pollers[0].child.kill().expect("kill -9");
    pollers[0].child.wait().expect("reap");
    let killed_at = Utc::now();
    tokio::time::sleep(Duration::from_secs(2 * FLEET_INTERVAL_SECS as u64)).await;
    let after = samples(&store).await;
    for (id, times) in &after {
        assert!(
            times.iter().any(|t| *t > killed_at),
            "server {id} not sampled within two intervals of the kill: last {:?}",
            times.last()
        );
    }
    assert_once_per_interval(&after, FLEET_INTERVAL_SECS);
    wait_for(
        "two pollers hold everything",
        Duration::from_secs(10),
        async || {
            let s = shares(&store).await;
            s.len() == 2 && s.iter().sum::<i64>() == HOSTS as i64
        },
    )
    .await;

    // A new poller takes its share back within two intervals.
    pollers[0] = poller(dir.path(), "poller");
    wait_for(
        "the restarted poller's share",
        Duration::from_secs(2 * FLEET_INTERVAL_SECS as u64 + 2),
        async || {
            let s = shares(&store).await;
            s.len() == 3
                && s.iter().sum::<i64>() == HOSTS as i64
                && s.iter().all(|n| *n == HOSTS as i64 / 3)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(FLEET_INTERVAL_SECS as u64)).await;
    assert_once_per_interval(&samples(&store).await, FLEET_INTERVAL_SECS);

    // A clean stop gives the leases back at once.
    for p in pollers.iter_mut().chain(std::iter::once(&mut api)) {
        let _ = Command::new("kill").arg(p.child.id().to_string()).status();
    }
    for p in pollers.iter_mut().chain(std::iter::once(&mut api)) {
        let status = p.child.wait().expect("wait");
        assert!(status.success(), "{status}");
    }
    let left: i64 = sqlx::query_scalar("select count(*) from leases where poller_id <> ''")
        .fetch_one(store.pool())
        .await
        .expect("leases");
    assert_eq!(left, 0, "a clean stop gives every lease back");
    fleet.shutdown().await;
}

fn sample(at: DateTime<Utc>) -> fleetpoll::model::Snapshot {
    fleetpoll::model::Snapshot {
        taken_at: at,
        server: fleetpoll::model::ServerSample {
            cpu_busy_percent: Some(12.5),
            ..Default::default()
        },
        disks: vec![],
        containers: vec![],
        docker: fleetpoll::model::DockerState::Missing,
        problems: vec![],
    }
}

/// The store's half of the sharing, on both stores: shares, claims, hand-back and the
/// refusal of a write for a host whose lease the writer does not hold.
#[tokio::test]
async fn leases_are_shared_out_and_a_write_without_one_is_refused() {
    use fleetpoll::store::{PollWrite, PollerInfo, ServerUpdate};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(common::named_server(&store, dir.path(), &format!("h{i}")).await);
    }
    let now = Utc::now();
    let info = |started_ms: i64| PollerInfo {
        id: uuid::Uuid::new_v4(),
        hostname: "test".into(),
        role: "poller".into(),
        version: "0".into(),
        started_at: now + chrono::Duration::milliseconds(started_ms),
    };
    let (a, b) = (info(-2), info(-1));
    // A process last heard of eight days ago is forgotten by the leader's next round.
    let gone = info(-8 * 86_400_000);
    store.register_poller(&gone).await.expect("gone");
    store.register_poller(&a).await.expect("a");
    let first = store
        .balance_leases(a.id, now, 30_000, None, true)
        .await
        .expect("a alone");
    assert_eq!((first.pollers, first.share, first.held.len()), (1, 5, 5));
    assert!(first.leader);
    let listed = store
        .pollers(now - chrono::Duration::days(9), 30_000)
        .await
        .expect("list");
    assert!(listed.iter().all(|p| p.id != gone.id), "forgotten");
    store.register_poller(&b).await.expect("b");
    // B's share is 3 (5 / 2 rounded up) but A still holds everything: B gets nothing yet.
    let b1 = store
        .balance_leases(b.id, now, 30_000, None, true)
        .await
        .expect("b");
    assert_eq!((b1.pollers, b1.share, b1.held.len()), (2, 3, 0));
    assert!(!b1.leader, "the oldest poller leads");
    // A gives back what is over its share; B takes it once a third of the lease has passed
    // (A's last polls of those hosts are written by then).
    let a2 = store
        .balance_leases(a.id, now, 30_000, None, true)
        .await
        .expect("a gives back");
    assert_eq!((a2.released, a2.held.len()), (2, 3));
    let early = store
        .balance_leases(b.id, now, 30_000, None, true)
        .await
        .expect("b early");
    assert_eq!(early.held.len(), 0, "given back, but not claimable yet");
    let soon = now + chrono::Duration::seconds(11);
    let b2 = store
        .balance_leases(b.id, soon, 30_000, None, true)
        .await
        .expect("b claims");
    assert_eq!((b2.claimed, b2.held.len()), (2, 2));
    assert!(a2.held.is_disjoint(&b2.held));
    // Each claimed host comes with when A gave it back: A may have started a poll of it
    // until then, written or not, so B's first poll waits an interval from that moment.
    let near = |at: Option<DateTime<Utc>>, want: DateTime<Utc>| {
        at.is_some_and(|at| (at - want).num_milliseconds().abs() < 2_000)
    };
    assert_eq!(b2.fresh.keys().copied().collect::<HashSet<_>>(), b2.held);
    assert!(b2.fresh.values().all(|at| near(*at, now)), "{:?}", b2.fresh);

    // A result for a host of A's, written by B, is refused; written by A, it is kept.
    let host = *a2.held.iter().next().expect("a holds one");
    let snap = sample(now);
    let update = ServerUpdate::default();
    let write = [PollWrite {
        server_id: host,
        snapshot: Some(&snap),
        update: &update,
        events: &[],
        alerts: &[],
    }];
    assert_eq!(
        store
            .record_polls_leased(b.id, &write)
            .await
            .expect("b writes"),
        1
    );
    assert_eq!(common::samples(&store, 0, Some(&host.to_string())).await, 0);
    assert_eq!(
        store
            .record_polls_leased(a.id, &write)
            .await
            .expect("a writes"),
        0
    );
    assert_eq!(common::samples(&store, 0, Some(&host.to_string())).await, 1);

    // A stops cleanly: its hosts are free for B at once; an expired lease is free too.
    store.poller_stopped(a.id, now).await.expect("stop");
    let b3_at = Utc::now();
    let b3 = store
        .balance_leases(b.id, now, 30_000, None, true)
        .await
        .expect("b takes all");
    assert_eq!((b3.pollers, b3.held.len()), (1, 5));
    assert_eq!(b3.fresh.len(), 3, "A's three hosts are claimed");
    assert!(
        b3.fresh.values().all(|at| near(*at, now)),
        "freed at the stop"
    );
    let listed = store.pollers(now, 30_000).await.expect("list");
    let row = |id| listed.iter().find(|p| p.id == id).expect("listed");
    assert!(!row(a.id).live && row(a.id).stopped_at.is_some());
    assert_eq!((row(b.id).live, row(b.id).leased_hosts), (true, 5));
    let c = info(0);
    store.register_poller(&c).await.expect("c");
    let later = now + chrono::Duration::seconds(31);
    // B's leases ran out (no renewal for 31 s): C, the only live poller then, takes them.
    let c1 = store
        .balance_leases(c.id, later, 30_000, None, true)
        .await
        .expect("c");
    assert_eq!(c1.held.len(), 5);
    // B's leases ran out rather than being given back: B may have polled until their expiry
    // (30 s after its last renewal) less the fencing margin (5 s).
    let b_expiry = b3_at + chrono::Duration::seconds(30);
    assert!(
        c1.fresh
            .values()
            .all(|at| near(*at, b_expiry - chrono::Duration::seconds(5))),
        "{:?}",
        c1.fresh
    );
    // C's leases run out with nobody claiming them (the database was away for every poller):
    // C's next round resumes them, and it moves no host.
    let much_later = later + chrono::Duration::seconds(60);
    let c2 = store
        .balance_leases(c.id, much_later, 30_000, None, true)
        .await
        .expect("c resumes");
    assert_eq!((c2.held.len(), c2.claimed), (5, 0));
    assert_eq!(c2.held, c1.held);
    // A round without claims (a poller just back from losing the database) takes no free
    // host; the next with claims does.
    store
        .poller_stopped(c.id, much_later)
        .await
        .expect("c stops");
    let d = info(1);
    store.register_poller(&d).await.expect("d");
    let d1 = store
        .balance_leases(d.id, much_later, 30_000, None, false)
        .await
        .expect("d waits");
    assert_eq!((d1.held.len(), d1.claimed), (0, 0));
    let d2 = store
        .balance_leases(d.id, much_later, 30_000, None, true)
        .await
        .expect("d claims");
    assert_eq!(d2.held.len(), 5);
    assert_eq!(ids.len(), 5);
}

/// PostgreSQL stopped for 20 s and started again: the pollers stop polling when they cannot
/// renew (fencing), keep what they polled, and go on when it answers, each host still polled
/// once per interval. A cluster of its own: the shared one serves the other tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_ride_out_a_database_restart_without_polling_a_host_twice() {
    if !common::on_postgres() {
        eprintln!("SKIPPED: several pollers need PostgreSQL (the test command's second pass)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = tempfile::Builder::new()
        .prefix("fleetpoll-pg-outage")
        .tempdir_in("/tmp")
        .expect("pg dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh");
    let cluster = pg.path().to_path_buf();
    let pg_ctl = |cmd: &str| {
        let out = Command::new("bash")
            .arg(script)
            .arg(cmd)
            .arg(&cluster)
            .output()
            .expect("postgres.sh");
        assert!(
            out.status.success(),
            "postgres.sh {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let url = pg_ctl("start");
    let store = Store::open_at(
        &fleetpoll::store::Location::Postgres(url.clone()),
        Some(dir.path()),
    )
    .await
    .expect("store");
    let hosts = 12;
    let fleet = registered_fleet(&store, dir.path(), hosts, Ipv4Addr::new(127, 1, 51, 1)).await;
    let spawn = |n: usize| {
        let mut child = common::fleetpoll()
            .args([
                "--db",
                &url,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--role",
                "poller",
            ])
            .args(["--interval", &INTERVAL_SECS.to_string()])
            .env("FLEETPOLL_LEASE_SECS", "3")
            .env("FLEETPOLL_STATE_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let lines = common::stderr_lines(&mut child);
        // What the outage did, in the test's output (`--nocapture`).
        std::thread::spawn(move || {
            while let Ok(line) = lines.recv() {
                if line.contains("Database")
                    || line.contains("Leases")
                    || line.contains("kept")
                    || line.contains("not written")
                {
                    eprintln!("poller{n}: {line}");
                }
            }
        });
        child
    };
    let mut pollers = [spawn(0), spawn(1)];
    wait_for("every host sampled", Duration::from_secs(30), async || {
        samples(&store).await.len() == hosts
    })
    .await;

    let before = holders(&store).await;
    assert_eq!(before.len(), hosts);
    let sessions = fleet.sessions();
    pg_ctl("stop");
    tokio::time::sleep(Duration::from_secs(20)).await;
    pg_ctl("resume");
    let resumed = Utc::now();
    wait_for(
        "every host sampled again after the restart",
        Duration::from_secs(3 * INTERVAL_SECS as u64 + 5),
        async || {
            let all = samples(&store).await;
            all.len() == hosts && all.values().all(|t| t.iter().any(|t| *t > resumed))
        },
    )
    .await;
    assert_once_per_interval(&samples(&store).await, INTERVAL_SECS);
    wait_for(
        "both pollers back with their shares",
        Duration::from_secs(10),
        async || {
            let s = shares(&store).await;
            s.len() == 2 && s.iter().sum::<i64>() == hosts as i64
        },
    )
    .await;
    // Each poller resumed its own hosts over the SSH sessions it had: none moved, none was
    // connected to again.
    assert_eq!(
        holders(&store).await,
        before,
        "the hosts stayed with their pollers"
    );
    assert_eq!(
        fleet.sessions(),
        sessions,
        "SSH sessions kept through the outage"
    );
    for p in &mut pollers {
        let _ = Command::new("kill").arg(p.id().to_string()).status();
    }
    for p in &mut pollers {
        let status = p.wait().expect("wait");
        assert!(status.success(), "{status}");
    }
    store.close().await;
    pg_ctl("stop");
    fleet.shutdown().await;
}

/// Two API nodes on one database: a session made through one is good on the other, and
/// failed logins count across both (each node alone has seen fewer than the limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_nodes_share_sessions_and_count_failed_logins_together() {
    if !common::on_postgres() {
        eprintln!("SKIPPED: several API nodes need PostgreSQL (the test command's second pass)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    fleetpoll::ops::create_user(
        &store,
        "ann",
        fleetpoll::auth::Role::Viewer,
        "correct horse battery",
        &fleetpoll::activity::Actor::system(),
    )
    .await
    .expect("user");
    let spawn = || {
        serve(
            dir.path(),
            "api",
            INTERVAL_SECS,
            &[("FLEETPOLL_LOGIN_MAX_FAILURES_PER_USER", "3")],
        )
    };
    let mut nodes = [spawn(), spawn()];
    let http = reqwest::Client::new();
    let login = async |node: &Process, pass: &str| {
        http.post(format!("http://{}/api/auth/login", node.addr))
            .json(&serde_json::json!({"username": "ann", "password": pass}))
            .send()
            .await
            .expect("login")
    };
    // A session made through one node is good on the other.
    let ok = login(&nodes[0], "correct horse battery").await;
    assert_eq!(ok.status(), 200);
    let token = ok.json::<serde_json::Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let me = http
        .get(format!("http://{}/api/auth/me", nodes[1].addr))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);
    // Three wrong passwords, split over the nodes (two on one, one on the other)...
    for node in [0, 1, 0] {
        assert_eq!(login(&nodes[node], "wrong").await.status(), 401);
    }
    // ...and the fourth attempt is refused on the node that saw only one, even with the
    // right password.
    assert_eq!(
        login(&nodes[1], "correct horse battery").await.status(),
        429
    );
    // The auditor sees the block begin, once, though no node alone reached the limit.
    let blocked: Vec<(String,)> = sqlx::query_as(
        "select details from activity where type = 'user_login_failed' \
         and details like '%across the API nodes%'",
    )
    .fetch_all(store.pool())
    .await
    .expect("activity");
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert!(blocked[0].0.contains("\"ann\""), "{blocked:?}");
    for n in &mut nodes {
        let _ = Command::new("kill").arg(n.child.id().to_string()).status();
        let status = n.child.wait().expect("wait");
        assert!(status.success(), "{status}");
    }
}
