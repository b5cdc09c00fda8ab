//! Issue #12: history in tiers on a real SQLite file. Generated samples are written through
//! the store as polls would be, compacted by the maintenance, and read back per period:
//! each period from the right tier, with min/avg/max equal to those of the raw values.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use fleetpoll::config::Settings;
use fleetpoll::history::{Tier, HOUR_MS};
use fleetpoll::model::{ContainerSample, DiskSample, DockerState, ServerSample, Snapshot};
use fleetpoll::scheduler::Maintenance;
use fleetpoll::store::{PollWrite, ServerUpdate, Store};
use uuid::Uuid;

use crate::common::{self, named_server};

/// CPU of sample `i` of server `s`: hundredths of a percent, so stored exactly.
fn cpu(s: usize, i: i64) -> f64 {
    ((i * 7919 + s as i64 * 104_729) % 10_000) as f64 / 100.0
}

fn snapshot(at: DateTime<Utc>, cpu: f64, containers: usize) -> Snapshot {
    Snapshot {
        taken_at: at,
        server: ServerSample {
            cpu_busy_percent: Some(cpu),
            mem_total_bytes: Some(8 << 30),
            mem_available_bytes: Some(6 << 30),
            load1: Some(0.5),
            uptime_seconds: Some(at.timestamp().unsigned_abs()),
            ..Default::default()
        },
        disks: vec![DiskSample {
            filesystem: "/dev/vda1".into(),
            mount: "/".into(),
            total_bytes: Some(100 << 30),
            used_bytes: Some(40 << 30),
            available_bytes: Some(60 << 30),
            use_percent: Some(40.0),
        }],
        containers: (0..containers)
            .map(|c| ContainerSample {
                container_id: format!("{c:012x}"),
                name: format!("app-{c}"),
                image: Some("busybox:local".into()),
                state: "running".into(),
                status_text: "Up 2 hours".into(),
                exit_code: None,
                health: None,
                cpu_percent: Some(cpu / 4.0),
                cpu_time_seconds: None,
                mem_used_bytes: Some(100 << 20),
                mem_limit_bytes: Some(1 << 30),
                mem_percent: Some(9.77),
                net_rx_bytes: Some(at.timestamp().unsigned_abs() * 10),
                net_tx_bytes: Some(at.timestamp().unsigned_abs() * 3),
                block_read_bytes: Some(4096),
                block_write_bytes: Some(8192),
                pids: Some(3),
            })
            .collect(),
        docker: DockerState::Available,
        problems: vec![],
    }
}

/// Writes `count` polls per server, `step` apart and ending at `end`, in large batches;
/// returns each server's samples as (time, cpu).
async fn fill_until(
    store: &Store,
    servers: &[Uuid],
    count: i64,
    step: Duration,
    containers: usize,
    end: DateTime<Utc>,
) -> Vec<Vec<(i64, f64)>> {
    let update = ServerUpdate::default();
    let mut written = vec![Vec::new(); servers.len()];
    let mut i = 0;
    while i < count {
        let upto = (i + 400).min(count);
        let snaps: Vec<(Uuid, Snapshot)> = (i..upto)
            .flat_map(|k| {
                let at = end - step * i32::try_from(count - 1 - k).expect("small");
                servers
                    .iter()
                    .enumerate()
                    .map(move |(s, id)| (*id, snapshot(at, cpu(s, k), containers)))
            })
            .collect();
        for (n, (_, snap)) in snaps.iter().enumerate() {
            let cpu = snap.server.cpu_busy_percent.expect("cpu");
            written[n % servers.len()].push((snap.taken_at.timestamp_millis(), cpu));
        }
        // Several polls of one server in a batch: their updates are all empty.
        let writes: Vec<PollWrite<'_>> = snaps
            .iter()
            .map(|(id, s)| PollWrite {
                server_id: *id,
                snapshot: Some(s),
                update: &update,
                events: &[],
                alerts: &[],
            })
            .collect();
        store.record_polls(&writes).await.expect("write");
        i = upto;
    }
    written
}

async fn fill(
    store: &Store,
    servers: &[Uuid],
    count: i64,
    step: Duration,
    containers: usize,
) -> Vec<Vec<(i64, f64)>> {
    fill_until(
        store,
        servers,
        count,
        step,
        containers,
        Utc::now() - Duration::seconds(1),
    )
    .await
}

fn upkeep(store: &Store, settings: Settings) -> Maintenance {
    Maintenance::new(store.clone(), Arc::new(settings))
}

/// Settings with a 10-minute interval: samples are compacted 21 minutes after their hour.
fn settings(dir: &std::path::Path) -> Settings {
    Settings {
        poll_interval_secs: 600,
        ..common::settings(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_answer_from_the_right_tier_with_the_raw_values_min_avg_and_max() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let servers = [
        named_server(&store, dir.path(), "a").await,
        named_server(&store, dir.path(), "b").await,
    ];
    // 30 days every 10 minutes.
    let written = fill(&store, &servers, 30 * 144, Duration::minutes(10), 1).await;
    let s = settings(dir.path());
    let keep = s.keep();
    let counts = upkeep(&store, s.clone())
        .compact_now()
        .await
        .expect("compact");
    assert!(counts.hours >= 2 * 3 * 719, "{counts:?}");

    let until = Utc::now();
    let a = servers[0];
    let cases = [
        (Duration::hours(1), Tier::Raw),
        (Duration::hours(24), Tier::Raw),
        (Duration::days(7), Tier::Raw),
        (Duration::days(30), Tier::Hourly),
        (Duration::days(90), Tier::Hourly),
        (Duration::days(365), Tier::Daily),
    ];
    for (period, tier) in cases {
        let since = until - period;
        let h = store
            .metric_history(a, since, until, 500, keep)
            .await
            .expect("history");
        assert_eq!(h.tier, tier, "{period}");
        let (from, to) = (since.timestamp_millis(), until.timestamp_millis());
        let width = (to - from) / 500;
        let samples: Vec<&(i64, f64)> = written[0]
            .iter()
            .filter(|(t, _)| match tier {
                Tier::Raw => *t >= from && *t <= to,
                // A rollup row counts when its period starts in the window.
                Tier::Hourly => *t - t.rem_euclid(HOUR_MS) >= from,
                Tier::Daily => *t - t.rem_euclid(86_400_000) >= from,
            })
            .collect();
        assert_eq!(
            h.items.iter().map(|p| p.samples).sum::<i64>(),
            samples.len() as i64,
            "{period}: every sample counted once"
        );
        assert!(h.items.len() <= 501, "{period}: {} points", h.items.len());
        assert!(h.resolution_secs * 1000 >= width, "{period}");
        if tier == Tier::Hourly {
            // Each point's min, avg and max are those of the raw samples of its hours.
            for p in &h.items {
                let bucket = (p.timestamp.timestamp_millis() - from).div_euclid(width);
                let mine: Vec<f64> = samples
                    .iter()
                    .filter(|(t, _)| (t - t.rem_euclid(HOUR_MS) - from).div_euclid(width) == bucket)
                    .map(|(_, c)| *c)
                    .collect();
                assert_eq!(mine.len() as i64, p.samples, "{p:?}");
                let avg = mine.iter().sum::<f64>() / mine.len() as f64;
                let lo = mine.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = mine.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let got = p.cpu_busy_percent.expect("avg");
                // Shown to 0.01, as the tools print percentages.
                assert!((got - avg).abs() <= 0.005 + 1e-9, "avg {got} != {avg}");
                let band = |b: &Option<serde_json::Map<String, serde_json::Value>>| {
                    b.as_ref()
                        .and_then(|m| m["cpu_busy_percent"].as_f64())
                        .expect("band")
                };
                assert!((band(&p.min) - lo).abs() < 1e-9);
                assert!((band(&p.max) - hi).abs() < 1e-9);
            }
        } else if tier == Tier::Raw {
            assert!(h.items.iter().all(|p| p.min.is_none() && p.max.is_none()));
        }
    }
    // A container's month comes from the hourly tier too, with its counters' max.
    let month = store
        .container_history(a, "app-0", until - Duration::days(30), until, 500, keep)
        .await
        .expect("container");
    assert_eq!(month.tier, Tier::Hourly);
    assert!(!month.items.is_empty());
    let disks = store
        .disk_history(a, until - Duration::days(30), until, 500, keep)
        .await
        .expect("disks");
    assert_eq!(disks.mounts.len(), 1);
    assert_eq!(disks.mounts[0].points[0].use_percent, Some(40.0));
}

/// Every chunk, in key order, with its bytes.
async fn chunks(store: &Store) -> Vec<(i64, i64, i64, i64, Vec<u8>)> {
    sqlx::query_as(
        "select series, tier, start, rows, data from chunks order by series, tier, start",
    )
    .fetch_all(store.pool())
    .await
    .expect("chunks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_rerun_or_resumed_gives_the_same_chunks_and_takes_late_samples() {
    let once = tempfile::tempdir().expect("tempdir");
    let twice = tempfile::tempdir().expect("tempdir");
    let mut results = Vec::new();
    let end = Utc::now() - Duration::seconds(1);
    for (dir, resumed) in [(&once, false), (&twice, true)] {
        let store = common::store(dir.path()).await;
        let id = named_server(&store, dir.path(), "a").await;
        fill_until(&store, &[id], 3 * 24 * 6, Duration::minutes(10), 2, end).await;
        let m = upkeep(&store, settings(dir.path()));
        if resumed {
            // As if the process stopped after the first day: an earlier boundary first.
            let first = m.boundary(Utc::now()) - 2 * 86_400_000;
            store
                .compact(first, std::time::Duration::ZERO)
                .await
                .expect("part");
        }
        m.compact_now().await.expect("compact");
        let before = chunks(&store).await;
        m.compact_now().await.expect("again");
        assert_eq!(chunks(&store).await, before, "a rerun changes nothing");
        results.push((store, id, before));
    }
    let strip = |c: &[(i64, i64, i64, i64, Vec<u8>)]| -> Vec<(i64, i64, i64, Vec<u8>)> {
        c.iter()
            .map(|(_, t, s, r, d)| (*t, *s, *r, d.clone()))
            .collect()
    };
    assert_eq!(
        strip(&results[0].2),
        strip(&results[1].2),
        "resumed equals run at once"
    );

    // A sample that arrives after its hour was compacted joins that hour and its rollups.
    let (store, id, before) = &results[0];
    let old = Utc::now() - Duration::days(1);
    let hour = old.timestamp_millis() - old.timestamp_millis().rem_euclid(HOUR_MS);
    let late = snapshot(
        DateTime::from_timestamp_millis(hour + 1234).expect("t"),
        99.99,
        0,
    );
    store
        .record_poll(*id, Some(&late), &ServerUpdate::default(), &[])
        .await
        .expect("late");
    upkeep(store, settings(once.path()))
        .compact_now()
        .await
        .expect("merge");
    let after = chunks(store).await;
    let rows_of = |c: &[(i64, i64, i64, i64, Vec<u8>)], tier: i64| -> i64 {
        c.iter()
            .filter(|x| x.1 == tier && x.2 == hour)
            .map(|x| x.3)
            .sum()
    };
    // The server's series and its mount's.
    assert_eq!(
        rows_of(&after, 0),
        rows_of(before, 0) + 2,
        "the late sample is in its hour's chunk"
    );
    let h = store
        .metric_history(
            *id,
            DateTime::from_timestamp_millis(hour).expect("t"),
            DateTime::from_timestamp_millis(hour + 2 * HOUR_MS - 1).expect("t"),
            1,
            settings(once.path()).keep(),
        )
        .await
        .expect("two hours");
    assert_eq!(h.tier, Tier::Hourly);
    assert_eq!(h.items.len(), 1);
    assert_eq!(
        h.items[0].samples, 13,
        "two hours of six samples and the late one"
    );
    let max = h.items[0]
        .max
        .as_ref()
        .map(|m| m["cpu_busy_percent"].clone());
    assert_eq!(max, Some(serde_json::json!(99.99)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_size_cap_the_oldest_raw_history_goes_first_and_the_file_shrinks() {
    // The cap is SQLite's (the config refuses it with PostgreSQL: see config's tests).
    if common::on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let mut servers = Vec::new();
    for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        servers.push(named_server(&store, dir.path(), name).await);
    }
    // Four days every minute, 8 containers each: about 2 MB.
    fill(&store, &servers, 4 * 1440, Duration::minutes(1), 8).await;
    let mut s = settings(dir.path());
    s.poll_interval_secs = 60;
    upkeep(&store, s.clone())
        .compact_now()
        .await
        .expect("compact");
    let used = store.used_bytes().await.expect("size");
    let raw_before = common::count(&store, "select count(*) from chunks where tier = 0").await;
    let hourly_before = common::count(&store, "select count(*) from chunks where tier = 1").await;
    // The smallest cap there is; the history written is well over it.
    let cap_mb = 1;
    assert!(
        used > 3 * 1024 * 1024 / 2,
        "the test needs more than 1.5 MB, has {used}"
    );
    s.max_db_size_mb = cap_mb;
    upkeep(&store, s).retention().await.expect("retention");
    let after = store.used_bytes().await.expect("size");
    assert!(after <= cap_mb * 1024 * 1024, "{after} > {cap_mb} MB");
    let raw_after = common::count(&store, "select count(*) from chunks where tier = 0").await;
    assert!(raw_after < raw_before, "raw history went");
    assert_eq!(
        common::count(&store, "select count(*) from chunks where tier = 1").await,
        hourly_before,
        "hourly rollups stay while raw history is left to remove"
    );
    let entries: Vec<String> = sqlx::query_scalar(
        "select details from activity where type = 'retention_cleanup' order by id",
    )
    .fetch_all(store.pool())
    .await
    .expect("entries");
    assert!(!entries.is_empty());
    for e in &entries {
        let v: serde_json::Value = serde_json::from_str(e).expect("json");
        assert_eq!(v["reason"], "size_cap", "{v}");
        assert_eq!(v["tier"], "raw", "{v}");
        assert!(v["rows"].as_u64().expect("rows") > 0, "{v}");
    }
    // The pages went back to the file system, not just to SQLite's free list.
    let file = std::fs::metadata(dir.path().join("fleetpoll.db"))
        .expect("file")
        .len();
    assert!(file <= cap_mb * 1024 * 1024 + 64 * 1024, "file {file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_converts_the_rows_of_the_previous_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleetpoll.db");
    // A database at migration 0008, the schema before issue #12, filled as it would be.
    let old = tempfile::tempdir().expect("tempdir");
    for entry in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).expect("dir")
    {
        let p = entry.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name.ends_with(".sql") && name.as_str() < "0009" {
            std::fs::copy(&p, old.path().join(&name)).expect("copy");
        }
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.expect("pool");
    sqlx::migrate::Migrator::new(old.path())
        .await
        .expect("migrator")
        .run(&pool)
        .await
        .expect("old schema");
    let id = Uuid::new_v4().to_string();
    let now = Utc::now().timestamp_millis();
    sqlx::query(
        "insert into servers (id, name, host, port, user, key_path, created_at, updated_at, status, last_sample_at) \
         values (?, 'old', '127.0.0.1', 22, 'u', '/nonexistent', ?, ?, 'online', ?)",
    )
    .bind(&id)
    .bind(now)
    .bind(now)
    .bind(now - 60_000)
    .execute(&pool)
    .await
    .expect("server");
    // Three hours of samples a minute apart, each with a mount and two containers, one stopped.
    for k in 0..180i64 {
        let ts = now - 60_000 - (179 - k) * 60_000;
        sqlx::query(
            "insert into server_metrics (server_id, ts, cpu_busy_percent, load1, mem_total_bytes, mem_used_bytes, mem_available_bytes) \
             values (?, ?, ?, 0.25, 1000, 400, 500)",
        )
        .bind(&id)
        .bind(ts)
        .bind(k as f64 / 2.0)
        .execute(&pool)
        .await
        .expect("metrics");
        sqlx::query(
            "insert into disk_usage (server_id, ts, filesystem, mount, total_bytes, used_bytes, available_bytes, use_percent) \
             values (?, ?, '/dev/vda1', '/', 100, ?, ?, ?)",
        )
        .bind(&id)
        .bind(ts)
        .bind(k)
        .bind(100 - k)
        .bind(k as f64)
        .execute(&pool)
        .await
        .expect("disk");
        for (name, state, cpu) in [("web", "running", Some(1.5)), ("job", "exited", None)] {
            sqlx::query(
                "insert into container_metrics (server_id, ts, container_id, name, image, state, status_text, exit_code, \
                 category, cpu_percent, net_rx_bytes) values (?, ?, ?, ?, 'img', ?, 'status', ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(ts)
            .bind(format!("id-{name}"))
            .bind(name)
            .bind(state)
            .bind((state == "exited").then_some(0))
            .bind(if state == "running" { "running" } else { "stopped" })
            .bind(cpu)
            .bind(cpu.map(|_| k * 100))
            .execute(&pool)
            .await
            .expect("container");
        }
    }
    pool.close().await;

    let store = Store::open(&path).await.expect("upgrade");
    let legacy = common::count(
        &store,
        "select count(*) from sqlite_master where name like 'legacy_%'",
    )
    .await;
    assert_eq!(legacy, 0, "the old tables are dropped");
    // On a connection of its own: SQLite answers this pragma from what a connection read
    // when it last began a transaction, so one of the pool's may still say 0.
    let mut fresh = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(&path),
    )
    .await
    .expect("connect");
    let auto_vacuum: i64 = sqlx::query_scalar("pragma auto_vacuum")
        .fetch_one(&mut fresh)
        .await
        .expect("pragma");
    assert_eq!(auto_vacuum, 2, "incremental vacuum is on after the upgrade");
    let sid = Uuid::parse_str(&id).expect("uuid");
    let until = Utc::now();
    let h = store
        .metric_history(
            sid,
            until - Duration::hours(4),
            until,
            1000,
            Settings::default().keep(),
        )
        .await
        .expect("history");
    assert_eq!(h.items.len(), 180);
    for (k, p) in h.items.iter().enumerate() {
        assert_eq!(p.cpu_busy_percent, Some(k as f64 / 2.0));
        assert_eq!(p.load1, Some(0.25));
        assert_eq!(p.memory_percent, Some(50.0));
    }
    let latest = store.latest_containers(Some(sid)).await.expect("latest");
    let names: Vec<(&str, &str)> = latest
        .iter()
        .map(|(_, c)| (c.name.as_str(), c.state.as_str()))
        .collect();
    assert_eq!(names, [("job", "exited"), ("web", "running")]);
    assert_eq!(
        store.latest_disks(sid).await.expect("disks")[0].use_percent,
        Some(179.0)
    );
    let web = store
        .container_history(
            sid,
            "id-web",
            until - Duration::hours(4),
            until,
            1000,
            Settings::default().keep(),
        )
        .await
        .expect("by id");
    assert_eq!(web.items.len(), 180);
    assert_eq!(web.items[179].net_rx_bytes, Some(17_900));
    // The stopped container kept no history rows, only its state in the latest sample.
    assert!(store.container_known(sid, "job").await.expect("known"));
    let job = store
        .container_history(
            sid,
            "job",
            until - Duration::hours(4),
            until,
            1000,
            Settings::default().keep(),
        )
        .await
        .expect("job");
    assert!(job.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_deleted_by_another_process_is_named_again_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let id = named_server(&store, dir.path(), "a").await;
    let now = Utc::now();
    let write = |at: DateTime<Utc>| snapshot(at, 12.5, 2);
    store
        .record_poll(
            id,
            Some(&write(now - Duration::minutes(2))),
            &ServerUpdate::default(),
            &[],
        )
        .await
        .expect("first");
    // Another process (`db maintain`, say) drops a container's series this one remembers.
    let other = common::store(dir.path()).await;
    sqlx::query("delete from series where kind = 2 and name = 'app-1'")
        .execute(other.pool())
        .await
        .expect("delete");
    other.close().await;
    store
        .record_poll(
            id,
            Some(&write(now - Duration::minutes(1))),
            &ServerUpdate::default(),
            &[],
        )
        .await
        .expect("the second poll is written all the same");
    let h = store
        .container_history(
            id,
            "app-1",
            now - Duration::hours(1),
            now,
            100,
            settings(dir.path()).keep(),
        )
        .await
        .expect("history");
    assert_eq!(
        h.items.iter().map(|p| p.samples).sum::<i64>(),
        1,
        "the new series has the second poll"
    );
    assert_eq!(
        common::samples(&store, 0, None).await,
        2,
        "the server's own series kept both"
    );
}
