//! What the dashboard's reads cost at the sizes issue #5 and #7 name: a 10,000-server fleet
//! overview (summary every 15 s, sparklines) and one server's charts over 30 days of
//! one-minute samples. Requests go over HTTP to the real router on a real SQLite file, filled
//! through the store (no polling: the poller is not what is measured here).
//!
//! Data (`sizes`): 10,000 servers, each with an hour of one-minute samples and a mount; one of them
//! (`big`) also has a year of one-minute samples with three mounts, compacted and rolled up
//! and past retention as `serve` keeps them (raw 7 days, hourly 90, daily the rest).
//!
//! Run: `cargo bench --bench dashboard -- --warm-up-time 1 --measurement-time 5`; results and
//! machine in BENCHMARKS.md (`## Dashboard`).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fleetpoll::activity::Actor;
use fleetpoll::api::{serve, AppState};
use fleetpoll::auth::Role;
use fleetpoll::config::Settings;
use fleetpoll::model::{DiskSample, DockerState, ServerSample, Snapshot};
use fleetpoll::store::{PollWrite, ServerUpdate, Store};

/// The fleet and the big server's history: the sizes of the issues under `cargo bench`, small
/// under `cargo test --all-targets` (which runs each bench once, unoptimised, as a check that
/// it still works: a year of samples through the store would take it many minutes).
fn sizes() -> (i64, i64) {
    if std::env::args().any(|a| a == "--bench") {
        (10_000, 365 * 1440)
    } else {
        (50, 3 * 1440)
    }
}
const MINUTE_MS: i64 = 60_000;

struct Bench {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    big: String,
    _dir: tempfile::TempDir,
}

/// A sample with CPU `per_mille` / 10 and `mounts` mounts.
fn sample(ts: i64, per_mille: i64, mounts: usize) -> Snapshot {
    let disks = ["/", "/boot", "/data"][..mounts]
        .iter()
        .map(|m| DiskSample {
            filesystem: format!("/dev/sd{m}"),
            mount: (*m).into(),
            total_bytes: Some(100_000_000_000),
            used_bytes: Some(40_000_000_000),
            available_bytes: Some(60_000_000_000),
            use_percent: Some(40.0),
        })
        .collect();
    Snapshot {
        taken_at: chrono::DateTime::from_timestamp_millis(ts).expect("time"),
        server: ServerSample {
            cpu_busy_percent: Some(per_mille as f64 / 10.0),
            load1: Some(0.5),
            load5: Some(0.4),
            load15: Some(0.3),
            uptime_seconds: Some(86_400),
            tasks_total: Some(200),
            mem_total_bytes: Some(8_589_934_592),
            mem_used_bytes: Some(4_294_967_296),
            mem_free_bytes: Some(1_073_741_824),
            mem_available_bytes: Some(4_294_967_296),
            swap_total_bytes: Some(1_073_741_824),
            swap_used_bytes: Some(0),
            ..Default::default()
        },
        disks,
        containers: vec![],
        docker: DockerState::Available,
        problems: vec![],
    }
}

/// Writes polls 500 at a time, as the scheduler's writer batches them.
async fn write(store: &Store, ids: &[uuid::Uuid], snaps: &[Snapshot], update: &ServerUpdate) {
    let writes: Vec<PollWrite<'_>> = ids
        .iter()
        .zip(snaps)
        .map(|(id, s)| PollWrite {
            server_id: *id,
            snapshot: Some(s),
            update,
            events: &[],
            alerts: &[],
        })
        .collect();
    for batch in writes.chunks(500) {
        store.record_polls(batch).await.expect("write");
    }
}

async fn fill(store: &Store, now: i64) -> String {
    let pool = store.pool();
    // Servers 0..SERVERS, online, last sample now; ids are deterministic UUID-shaped text.
    sqlx::query(
        "with recursive n(i) as (select 0 union all select i + 1 from n where i + 1 < ?) \
         insert into servers (id, name, host, port, user, key_path, tags, status, last_sample_at, last_poll_at, created_at, updated_at) \
         select printf('00000000-0000-4000-8000-%012d', i), printf('srv-%05d', i), printf('10.%d.%d.%d', i / 65536, (i / 256) % 256, i % 256), 22, 'mon', '/k', \
         '[\"bench\"]', 'online', ?, ?, ?, ? from n",
    )
    .bind(sizes().0)
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await
    .expect("servers");
    // One hour of one-minute samples for everyone, written through the store as the writer
    // would: what the overview's sparklines read.
    let (servers, year) = sizes();
    let ids: Vec<uuid::Uuid> = (0..servers)
        .map(|i| uuid::Uuid::parse_str(&format!("00000000-0000-4000-8000-{i:012}")).expect("id"))
        .collect();
    let update = ServerUpdate::default();
    for m in (0..60).rev() {
        let snaps: Vec<Snapshot> = (0..servers)
            .map(|i| sample(now - m * MINUTE_MS, (i * 7 + m * 13) % 1000, 1))
            .collect();
        write(store, &ids, &snaps, &update).await;
    }
    // A year of one-minute samples for one server, before the hour above, compacted into
    // hour chunks and rolled up, then retention as `serve` applies it (raw kept 7 days,
    // hourly 90): the 30-day chart reads hourly rows, the year daily ones.
    let big = "00000000-0000-4000-8000-000000000000".to_string();
    let big_id = ids[0];
    let mut k = 60;
    while k < year {
        let upto = (k + 1440).min(year);
        let snaps: Vec<Snapshot> = (k..upto)
            .map(|j| sample(now - j * MINUTE_MS, (j * 7919) % 1000, 3))
            .collect();
        let same: Vec<uuid::Uuid> = vec![big_id; snaps.len()];
        write(store, &same, &snaps, &update).await;
        k = upto;
    }
    let settings = Settings::default();
    let upkeep = fleetpoll::scheduler::Maintenance::new(store.clone(), Arc::new(settings));
    upkeep.compact_now().await.expect("compact");
    upkeep.retention().await.expect("retention");
    sqlx::query("analyze").execute(pool).await.expect("analyze");
    big
}

fn setup() -> Bench {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (http, base, big) = rt.block_on(async {
        let store = Store::open(&dir.path().join("fleetpoll.db"))
            .await
            .expect("store");
        let big = fill(&store, chrono::Utc::now().timestamp_millis()).await;
        let (_, secret) =
            fleetpoll::ops::create_token(&store, "bench", Role::Viewer, None, &Actor::system())
                .await
                .expect("token");
        let settings = Arc::new(Settings {
            database_path: dir.path().join("fleetpoll.db"),
            ..Settings::default()
        });
        let state = AppState::new(store, settings, Arc::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(serve(listener, state, std::future::pending()));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", secret.expose())
                .parse()
                .expect("header"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client");
        (http, base, big)
    });
    Bench {
        rt,
        http,
        base,
        big,
        _dir: dir,
    }
}

fn get(b: &Bench, path: &str) -> usize {
    b.rt.block_on(async {
        let r = b
            .http
            .get(format!("{}{path}", b.base))
            .send()
            .await
            .expect("GET");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().await.expect("body").len()
    })
}

fn dashboard(c: &mut Criterion) {
    let b = setup();
    let big = b.big.clone();
    let reads = [
        ("summary_10k_servers", "/api/dashboard/summary".to_string()),
        (
            // What the overview asks for: the 300 rows it shows.
            "sparklines_300_of_10k_servers_1h",
            format!(
                "/api/dashboard/sparklines?minutes=60&points=30&ids={}",
                (0..300)
                    .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ),
        (
            "metrics_30d_600_points",
            format!("/api/servers/{big}/metrics?period=30d&points=600"),
        ),
        (
            "disks_30d_600_points",
            format!("/api/servers/{big}/disks/history?period=30d&points=600"),
        ),
        (
            "metrics_90d_600_points",
            format!("/api/servers/{big}/metrics?period=90d&points=600"),
        ),
        (
            "metrics_1y_600_points",
            format!("/api/servers/{big}/metrics?period=1y&points=600"),
        ),
        (
            "metrics_7d_600_points",
            format!("/api/servers/{big}/metrics?period=7d&points=600"),
        ),
        (
            "metrics_1h_600_points",
            format!("/api/servers/{big}/metrics?period=1h&points=600"),
        ),
        ("server_show", format!("/api/servers/{big}")),
    ];
    let mut g = c.benchmark_group("dashboard");
    g.sample_size(10);
    for (name, path) in &reads {
        println!("{name}: {} bytes of JSON", get(&b, path));
        g.bench_function(*name, |bench| bench.iter(|| get(&b, path)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = dashboard
}
criterion_main!(benches);
