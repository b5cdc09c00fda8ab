//! What the dashboard's reads cost at the sizes issue #5 and #7 name: a 10,000-server fleet
//! overview (summary every 15 s, sparklines) and one server's charts over 30 days of
//! one-minute samples. Requests go over HTTP to the real router on a real SQLite file, filled
//! with SQL (no polling: the poller is not what is measured here).
//!
//! Data: `SERVERS` servers, each with an hour of one-minute samples and three mounts; one of
//! them (`big`) also has 30 days of one-minute samples (43,200 metric rows, 129,600 disk rows).
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
use fleetpoll::store::Store;

const SERVERS: i64 = 10_000;
const MINUTE_MS: i64 = 60_000;

struct Bench {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    big: String,
    _dir: tempfile::TempDir,
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
    .bind(SERVERS)
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await
    .expect("servers");
    // One hour of one-minute samples for everyone: what the overview's sparklines read.
    sqlx::query(
        "with recursive m(j) as (select 0 union all select j + 1 from m where j + 1 < 60) \
         insert into server_metrics (server_id, ts, cpu_busy_percent, load1, load5, load15, uptime_seconds, tasks_total, \
         mem_total_bytes, mem_used_bytes, mem_free_bytes, mem_available_bytes, swap_total_bytes, swap_used_bytes) \
         select s.id, ? - m.j * ?, (abs(random()) % 1000) / 10.0, 0.5, 0.4, 0.3, 86400, 200, \
         8589934592, 4294967296, 1073741824, 4294967296, 1073741824, 0 from servers s, m",
    )
    .bind(now)
    .bind(MINUTE_MS)
    .execute(pool)
    .await
    .expect("metrics");
    sqlx::query(
        "insert into disk_usage (server_id, ts, filesystem, mount, total_bytes, used_bytes, available_bytes, use_percent) \
         select s.id, ?, d.fs, d.mount, 100000000000, 40000000000, 60000000000, 40.0 from servers s, \
         (select '/dev/sda1' as fs, '/' as mount union all select '/dev/sda2', '/boot' union all select '/dev/sdb1', '/data') d",
    )
    .bind(now)
    .execute(pool)
    .await
    .expect("disks");
    // 30 days of one-minute samples for one server, before the hour above.
    let big = "00000000-0000-4000-8000-000000000000".to_string();
    sqlx::query(
        "with recursive m(j) as (select 60 union all select j + 1 from m where j + 1 < 43200) \
         insert into server_metrics (server_id, ts, cpu_busy_percent, load1, load5, load15, uptime_seconds, tasks_total, \
         mem_total_bytes, mem_used_bytes, mem_free_bytes, mem_available_bytes, swap_total_bytes, swap_used_bytes) \
         select ?, ? - m.j * ?, (abs(random()) % 1000) / 10.0, 0.5, 0.4, 0.3, 86400, 200, \
         8589934592, 4294967296, 1073741824, 4294967296, 1073741824, 0 from m",
    )
    .bind(&big)
    .bind(now)
    .bind(MINUTE_MS)
    .execute(pool)
    .await
    .expect("30 days");
    sqlx::query(
        "with recursive m(j) as (select 1 union all select j + 1 from m where j + 1 < 43200) \
         insert into disk_usage (server_id, ts, filesystem, mount, total_bytes, used_bytes, available_bytes, use_percent) \
         select ?, ? - m.j * ?, d.fs, d.mount, 100000000000, 40000000000, 60000000000, 40.0 from m, \
         (select '/dev/sda1' as fs, '/' as mount union all select '/dev/sda2', '/boot' union all select '/dev/sdb1', '/data') d",
    )
    .bind(&big)
    .bind(now)
    .bind(MINUTE_MS)
    .execute(pool)
    .await
    .expect("30 days of disks");
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
