//! What history costs on disk (issue #12): writes `HOSTS` hosts of the shape the issue names
//! (8 running containers, 3 mounts) polled every 60 s for `HOURS` hours through the store,
//! as the scheduler's writer would, compacts the closed hours, checkpoints, and prints
//! `fleetpoll db stats` for the file, plus the open-hour figure measured before compaction.
//! It also times the writer's batches: over the last hour written (normal), and while the
//! compaction and then a cleanup of all raw history but the last hour run beside it.
//!
//! Values: a random walk per host and figure (CPU, load, memory, disk, container CPU and
//! memory; counters that grow by a random amount), not captured output. Real hosts change
//! less from one minute to the next than this walk, so these bytes per value are on the
//! heavy side.
//!
//! Run: `cargo run --release --example storage -- [HOSTS] [HOURS] [POSTGRES_URL]` (default 100
//! hosts, 3 h, a SQLite file in a temporary directory).

use std::time::Instant;

use chrono::{Duration, Utc};
use fleetpoll::config::Settings;
use fleetpoll::model::{ContainerSample, DiskSample, DockerState, ServerSample, Snapshot};
use fleetpoll::store::{PollWrite, ServerUpdate, Store};

/// A small deterministic generator (xorshift), so runs compare.
struct Walk(u64);

impl Walk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A step in -1..=1 scaled by `by`.
    fn step(&mut self, by: f64) -> f64 {
        ((self.next() % 2001) as f64 / 1000.0 - 1.0) * by
    }
}

struct Host {
    cpu: f64,
    load: f64,
    used: f64,
    disk: [f64; 3],
    containers: [(f64, f64, u64, u64); 8],
}

fn snapshot(h: &mut Host, w: &mut Walk, at: chrono::DateTime<Utc>, uptime: u64) -> Snapshot {
    let round = |v: f64, d: f64| (v * d).round() / d;
    h.cpu = (h.cpu + w.step(4.0)).clamp(0.5, 99.0);
    h.load = (h.load + w.step(0.1)).clamp(0.0, 8.0);
    h.used = (h.used + w.step(8e6)).clamp(1e9, 7e9);
    let total = 8u64 << 30;
    let mounts = ["/", "/boot", "/data"];
    let disks = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            h.disk[i] += w.step(1e5).abs();
            let size = 100u64 << 30;
            let used = h.disk[i] as u64;
            DiskSample {
                filesystem: format!("/dev/vda{}", i + 1),
                mount: (*m).into(),
                total_bytes: Some(size),
                used_bytes: Some(used),
                available_bytes: Some(size - used),
                use_percent: Some(round(used as f64 * 100.0 / size as f64, 1.0)),
            }
        })
        .collect();
    let containers = h
        .containers
        .iter_mut()
        .enumerate()
        .map(|(i, c)| {
            c.0 = (c.0 + w.step(1.0)).clamp(0.0, 50.0);
            c.1 = (c.1 + w.step(2e6)).clamp(5e6, 5e8);
            c.2 += w.next() % 50_000;
            c.3 += w.next() % 20_000;
            ContainerSample {
                container_id: format!("{:012x}", i * 7_777_777),
                name: format!("app-{i}"),
                image: Some("registry.example/app:1.2".into()),
                state: "running".into(),
                status_text: "Up 3 days".into(),
                exit_code: None,
                health: None,
                cpu_percent: Some(round(c.0, 100.0)),
                cpu_time_seconds: None,
                mem_used_bytes: Some(c.1 as u64),
                mem_limit_bytes: Some(1 << 30),
                mem_percent: Some(round(c.1 * 100.0 / f64::from(1 << 30), 100.0)),
                net_rx_bytes: Some(c.2),
                net_tx_bytes: Some(c.3),
                block_read_bytes: Some(c.2 / 3),
                block_write_bytes: Some(c.3 * 2),
                pids: Some(4 + (i as u64 % 3)),
            }
        })
        .collect();
    Snapshot {
        taken_at: at,
        server: ServerSample {
            cpu_busy_percent: Some(round(h.cpu, 10.0)),
            cpu_user_percent: Some(round(h.cpu * 0.7, 10.0)),
            cpu_system_percent: Some(round(h.cpu * 0.25, 10.0)),
            cpu_iowait_percent: Some(round(h.cpu * 0.05, 10.0)),
            cpu_steal_percent: Some(0.0),
            load1: Some(round(h.load, 100.0)),
            load5: Some(round(h.load * 0.9, 100.0)),
            load15: Some(round(h.load * 0.8, 100.0)),
            uptime_seconds: Some(uptime),
            tasks_total: Some(180 + w.next() % 12),
            mem_total_bytes: Some(total),
            mem_used_bytes: Some(h.used as u64),
            mem_free_bytes: Some(total - h.used as u64 - (1 << 30)),
            mem_available_bytes: Some(total - h.used as u64),
            swap_total_bytes: Some(2 << 30),
            swap_used_bytes: Some(0),
        },
        disks,
        containers,
        docker: DockerState::Available,
        problems: vec![],
    }
}

/// One poll of every host at `at`, written as one batch, as the writer would.
async fn write_round(
    store: &Store,
    ids: &[uuid::Uuid],
    state: &mut [Host],
    w: &mut Walk,
    at: chrono::DateTime<Utc>,
    k: i64,
) -> anyhow::Result<()> {
    let update = ServerUpdate::default();
    let snaps: Vec<Snapshot> = state
        .iter_mut()
        .map(|h| snapshot(h, w, at, 86_400 + 60 * k.unsigned_abs()))
        .collect();
    let writes: Vec<PollWrite<'_>> = ids
        .iter()
        .zip(&snaps)
        .map(|(id, s)| PollWrite {
            server_id: *id,
            snapshot: Some(s),
            update: &update,
            events: &[],
            alerts: &[],
        })
        .collect();
    store.record_polls(&writes).await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let hours: i64 = args.next().map_or(Ok(3), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("fleetpoll.db");
    // A third argument, a postgres:// URL of an empty database, measures PostgreSQL instead.
    let url = args.next();
    let location = match &url {
        Some(url) => fleetpoll::store::Location::Postgres(url.clone()),
        None => fleetpoll::store::Location::Sqlite(path.clone()),
    };
    let store = Store::open_at(&location, Some(dir.path())).await?;
    let sqlite = store.backend() == fleetpoll::store::Backend::Sqlite;
    let mut ids = Vec::new();
    // Registered with SQL: nothing dials these hosts.
    for i in 0..hosts {
        let id = uuid::Uuid::new_v4();
        sqlx::query(
            "insert into servers (id, name, host, port, \"user\", key_path, tags, status, created_at, updated_at) \
             values ($1, $2, '127.0.0.1', 22, 'u', '/nonexistent', '[]', 'online', 0, 0)",
        )
        .bind(id.to_string())
        .bind(format!("h{i:05}"))
        .execute(store.pool())
        .await?;
        ids.push(id);
    }
    let mut w = Walk(0x9e37_79b9_7f4a_7c15);
    let mut state: Vec<Host> = (0..hosts)
        .map(|_| Host {
            cpu: 10.0 + w.step(5.0).abs(),
            load: 0.5,
            used: 3e9,
            disk: [30e9, 0.2e9, 55e9],
            containers: [(2.0, 1e8, 1 << 30, 1 << 28); 8],
        })
        .collect();
    // Start at an hour boundary `hours` ago, so `hours - 1` hours close whole.
    let now = Utc::now();
    let start = now - Duration::hours(hours);
    let start = start - Duration::milliseconds(start.timestamp_millis().rem_euclid(3_600_000));
    let polls = hours * 60;
    let t0 = Instant::now();
    let mut open_measured = None;
    // Batch write latencies of the last hour written: the writer's normal.
    let mut normal: Vec<f64> = Vec::new();
    for k in 0..polls {
        let at = start + Duration::seconds(60 * k) + Duration::milliseconds((k * 37) % 400);
        if at > now {
            break;
        }
        let b = Instant::now();
        write_round(&store, &ids, &mut state, &mut w, at, k).await?;
        if k >= polls - 60 {
            normal.push(b.elapsed().as_secs_f64() * 1000.0);
        }
        // The first hour, complete and still open (nothing compacted yet): its bytes per value.
        if k == 59 {
            if sqlite {
                sqlx::query("pragma wal_checkpoint(truncate)")
                    .execute(store.pool())
                    .await?;
            }
            let stats = store.stats().await?;
            open_measured = stats.tiers.into_iter().find(|t| t.tier == "raw_open");
        }
    }
    let write_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    // Compaction, then a cleanup of all raw history but the last hour, while the writer goes
    // on writing a poll of every host each 50 ms (in the future, after the data above).
    let job = {
        let upkeep = fleetpoll::scheduler::Maintenance::new(
            store.clone(),
            std::sync::Arc::new({
                let mut s = Settings {
                    database_path: path.clone(),
                    ..Settings::default()
                };
                if let Some(url) = &url {
                    s.set_database(url);
                }
                s
            }),
        );
        let store = store.clone();
        tokio::spawn(async move {
            let c = upkeep.compact_now().await?;
            let secs = t1.elapsed().as_secs_f64();
            let cut = Utc::now().timestamp_millis() - 3_600_000;
            let r = store
                .apply_retention(fleetpoll::store::Cutoffs {
                    raw: cut,
                    hourly: 0,
                    daily: 0,
                })
                .await?;
            anyhow::Ok((c, secs, r))
        })
    };
    let mut during: Vec<f64> = Vec::new();
    let mut k = polls;
    while !job.is_finished() {
        let at = start + Duration::seconds(60 * k);
        k += 1;
        let b = Instant::now();
        write_round(&store, &ids, &mut state, &mut w, at, k).await?;
        if !job.is_finished() {
            during.push(b.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (c, compact_secs, cleaned) = job.await??;
    store.release_free_pages().await?;
    let stats = store.stats().await?;
    println!("{hosts} hosts x {hours} h at 60 s (8 containers, 3 mounts each)");
    println!(
        "writing: {write_secs:.1} s; compaction of {} hour chunks: {compact_secs:.1} s",
        c.hours
    );
    if let Some(t) = open_measured {
        println!(
            "open hour, before compaction: {} bytes, {} values, {:.2} bytes/value",
            t.bytes,
            t.values,
            t.bytes_per_value.unwrap_or(0.0)
        );
    }
    println!(
        "cleanup during the writes: {} raw chunks and rows, {} bytes freed",
        cleaned.raw, cleaned.bytes_freed
    );
    let pct = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "batch write ms ({hosts} polls per batch): normal p50 {:.1} p99 {:.1} ({} batches); during compaction and cleanup p50 {:.1} p99 {:.1} ({} batches)",
        pct(&mut normal, 0.5),
        pct(&mut normal, 0.99),
        normal.len(),
        pct(&mut during, 0.5),
        pct(&mut during, 0.99),
        during.len()
    );
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
