use chrono::{Duration, Utc};
use fleetpoll::inventory::ServerStatus;
use fleetpoll::model::{DiskSample, DockerState, ServerSample, Snapshot};
use fleetpoll::store::{PollWrite, ServerUpdate, Store};
use uuid::Uuid;

use crate::common::{self, named_server};

async fn server(store: &Store, dir: &std::path::Path) -> Uuid {
    named_server(store, dir, "s1").await
}

fn snapshot(age: Duration, cpu: f64) -> Snapshot {
    Snapshot {
        taken_at: Utc::now() - age,
        server: ServerSample {
            cpu_busy_percent: Some(cpu),
            mem_total_bytes: Some(1000),
            mem_available_bytes: Some(250),
            ..Default::default()
        },
        disks: vec![DiskSample {
            filesystem: "/dev/vda".into(),
            mount: "/".into(),
            total_bytes: Some(100),
            used_bytes: Some(50),
            available_bytes: Some(50),
            use_percent: Some(50.0),
        }],
        containers: vec![],
        docker: DockerState::Missing,
        problems: vec![],
    }
}

/// One sample of server `id` at each of these ages, then the upkeep `serve` runs, with its
/// compaction done.
async fn record_and_compact(
    store: &Store,
    dir: &std::path::Path,
    id: Uuid,
    ages: &[Duration],
) -> (
    fleetpoll::scheduler::Maintenance,
    fleetpoll::store::CompactCounts,
) {
    for age in ages {
        store
            .record_poll(
                id,
                Some(&snapshot(*age, 5.0)),
                &ServerUpdate::default(),
                &[],
            )
            .await
            .expect("write");
    }
    let upkeep = fleetpoll::scheduler::Maintenance::new(
        store.clone(),
        std::sync::Arc::new(common::settings(dir)),
    );
    let compacted = upkeep.compact_now().await.expect("compact");
    (upkeep, compacted)
}

#[tokio::test]
async fn retention_drops_raw_history_past_its_age_keeps_the_rollups_and_logs_the_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let id = server(&store, dir.path()).await;
    let day = 86_400_000;
    if common::on_postgres() {
        // Partitions for the whole month, so that the old days go as whole partitions.
        let now = Utc::now().timestamp_millis();
        let made = store
            .prepare_partitions(now - 30 * day, now + day)
            .await
            .expect("partitions");
        assert!(made > 20, "{made} partitions made");
    }
    let ages = [10, 9, 8, 1, 0].map(Duration::days);
    let (upkeep, compacted) = record_and_compact(&store, dir.path(), id, &ages).await;
    // Four closed hours (10, 9, 8 and 1 day ago) of two series (the server and its mount).
    assert_eq!(compacted.hours, 8);
    upkeep.retention().await.expect("retention");
    if common::on_postgres() {
        let partition = |age: i64| {
            let k = (Utc::now() - Duration::days(age)).timestamp_millis() / day;
            format!("select cast(to_regclass('chunks_t0_p{k}') as text)")
        };
        let exists = async |age: i64| -> bool {
            sqlx::query_scalar::<_, Option<String>>(&partition(age))
                .fetch_one(store.pool())
                .await
                .expect("lookup")
                .is_some()
        };
        assert!(
            !exists(10).await,
            "the partition of 10 days ago was dropped"
        );
        assert!(!exists(8).await, "the partition of 8 days ago was dropped");
        assert!(exists(1).await, "yesterday's partition stays");
        // Half an hour past midnight, the day that just ended is past the cutoff as a whole:
        // its partition goes (it used to stay until one o'clock, a chunk period later).
        let midnight = (Utc::now() - Duration::days(4)).timestamp_millis() / day * day;
        let ended = format!(
            "select cast(to_regclass('chunks_t0_p{}') as text)",
            midnight / day - 1
        );
        let there = async || {
            sqlx::query_scalar::<_, Option<String>>(&ended)
                .fetch_one(store.pool())
                .await
                .expect("lookup")
                .is_some()
        };
        assert!(there().await, "prepared above");
        store
            .apply_retention(fleetpoll::store::Cutoffs {
                raw: midnight + 30 * 60_000,
                hourly: 0,
                daily: 0,
            })
            .await
            .expect("retention at 00:30");
        assert!(
            !there().await,
            "the day before the cutoff's midnight was dropped"
        );
    }
    let raw_chunks = "select count(*) from chunks where tier = 0";
    assert_eq!(
        common::count(&store, raw_chunks).await,
        2,
        "only yesterday's hour is left raw"
    );
    assert_eq!(
        common::count(&store, "select count(*) from chunks where tier = 1").await,
        8,
        "every day keeps its hourly rollups"
    );
    let details: String =
        sqlx::query_scalar("select details from activity where type = 'retention_cleanup'")
            .fetch_one(store.pool())
            .await
            .expect("logged");
    let v: serde_json::Value = serde_json::from_str(&details).expect("json");
    assert_eq!(v["raw"], 6);
    assert_eq!(v["hourly"], 0);
    assert_eq!(v["reason"], "age");
    assert_eq!(v["retention_days"], 7);
    // The ten-day-old sample is still on a 30-day chart, from the hourly tier.
    let until = Utc::now();
    let month = store
        .metric_history(
            id,
            until - Duration::days(30),
            until,
            500,
            keep(&store, dir.path()),
        )
        .await
        .expect("30 days");
    assert_eq!(month.tier, fleetpoll::history::Tier::Hourly);
    assert_eq!(month.items.len(), 5);
    assert_eq!(month.items.iter().map(|p| p.samples).sum::<i64>(), 5);
    // Nothing left to delete: no second entry.
    upkeep.retention().await.expect("retention");
    assert_eq!(
        common::count(
            &store,
            "select count(*) from activity where type = 'retention_cleanup'"
        )
        .await,
        1
    );
}

fn keep(_store: &Store, dir: &std::path::Path) -> fleetpoll::history::Keep {
    common::settings(dir).keep()
}

#[tokio::test]
async fn history_is_downsampled_to_the_requested_number_of_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let id = server(&store, dir.path()).await;
    // 120 samples one minute apart over the last two hours, cpu alternating 0 and 100.
    for i in 0..120 {
        let cpu = if i % 2 == 0 { 0.0 } else { 100.0 };
        store
            .record_poll(
                id,
                Some(&snapshot(Duration::minutes(i) + Duration::seconds(1), cpu)),
                &ServerUpdate::default(),
                &[],
            )
            .await
            .expect("write");
    }
    let until = Utc::now();
    let since = until - Duration::hours(2);
    let raw = store
        .metric_history(id, since, until, 1000, keep(&store, dir.path()))
        .await
        .expect("raw")
        .items;
    assert_eq!(raw.len(), 120);
    let points = store
        .metric_history(id, since, until, 12, keep(&store, dir.path()))
        .await
        .expect("downsampled")
        .items;
    assert!(
        points.len() <= 13 && points.len() >= 11,
        "{} points",
        points.len()
    );
    assert_eq!(points.iter().map(|p| p.samples).sum::<i64>(), 120);
    // Averaging alternating 0/100 over ten samples gives 50.
    let mid = &points[points.len() / 2];
    assert!(
        (mid.cpu_busy_percent.expect("cpu") - 50.0).abs() < 0.01,
        "{mid:?}"
    );
    assert!(
        (mid.memory_percent.expect("mem") - 75.0).abs() < 0.01,
        "{mid:?}"
    );
    assert!(points.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
}

#[tokio::test]
async fn a_batch_of_polls_updates_each_server_with_only_its_own_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let a = named_server(&store, dir.path(), "a").await;
    let b = named_server(&store, dir.path(), "b").await;
    let c = named_server(&store, dir.path(), "c").await;
    store
        .trust_host_key(c, Some("SHA256:pinned-by-trust"), Utc::now())
        .await
        .expect("trust");
    let first = [
        (a, "SHA256:a", Some("slow disk")),
        (b, "SHA256:b", Some("no docker")),
    ];
    let updates: Vec<ServerUpdate> = first
        .iter()
        .map(|(_, pin, note)| ServerUpdate {
            status: Some(ServerStatus::Online),
            reason: Some(Some("degraded".into())),
            docker_note: Some(note.map(str::to_string)),
            pin: Some((*pin).into()),
            consecutive_failures: Some(0),
            ..Default::default()
        })
        .collect();
    let snap = snapshot(Duration::zero(), 5.0);
    let writes: Vec<PollWrite<'_>> = first
        .iter()
        .zip(&updates)
        .map(|((id, _, _), update)| PollWrite {
            server_id: *id,
            snapshot: Some(&snap),
            update,
            events: &[],
            alerts: &[],
        })
        .collect();
    store.record_polls(&writes).await.expect("first batch");
    let before = store.inventory_version().await.expect("version");

    // Second batch: a clears its reason and fails once; b sets only its poll time; c's
    // pin from `trust` must survive a poll that saw another key first.
    let now = Utc::now();
    let clear = ServerUpdate {
        reason: Some(None),
        consecutive_failures: Some(1),
        ..Default::default()
    };
    let touch = ServerUpdate {
        last_poll_at: Some(now),
        ..Default::default()
    };
    let late_pin = ServerUpdate {
        pin: Some("SHA256:seen-by-poll".into()),
        ..Default::default()
    };
    let writes = [
        PollWrite {
            server_id: a,
            snapshot: None,
            update: &clear,
            events: &[],
            alerts: &[],
        },
        PollWrite {
            server_id: b,
            snapshot: None,
            update: &touch,
            events: &[],
            alerts: &[],
        },
        PollWrite {
            server_id: c,
            snapshot: None,
            update: &late_pin,
            events: &[],
            alerts: &[],
        },
    ];
    store.record_polls(&writes).await.expect("second batch");

    let a = store.server(a).await.expect("a");
    assert_eq!(a.reason, None);
    assert_eq!(a.consecutive_failures, 1);
    assert_eq!(a.status, ServerStatus::Online);
    assert_eq!(a.docker_note.as_deref(), Some("slow disk"));
    assert_eq!(a.host_key_fingerprint.as_deref(), Some("SHA256:a"));
    let b = store.server(b).await.expect("b");
    assert_eq!(b.reason.as_deref(), Some("degraded"));
    assert_eq!(b.docker_note.as_deref(), Some("no docker"));
    assert_eq!(
        b.last_poll_at.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    assert_eq!(
        store
            .server(c)
            .await
            .expect("c")
            .host_key_fingerprint
            .as_deref(),
        Some("SHA256:pinned-by-trust")
    );
    assert_eq!(common::samples(&store, 0, None).await, 2);
    assert_eq!(common::samples(&store, 1, None).await, 2);
    // Status and sample writes are not inventory changes; a pin or an edit is.
    assert_eq!(store.inventory_version().await.expect("version"), before);
    named_server(&store, dir.path(), "d").await;
    assert_ne!(store.inventory_version().await.expect("version"), before);
}

#[tokio::test]
async fn a_first_pin_changes_the_inventory_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let id = server(&store, dir.path()).await;
    let before = store.inventory_version().await.expect("version");
    let pin = ServerUpdate {
        pin: Some("SHA256:first".into()),
        ..Default::default()
    };
    store.record_poll(id, None, &pin, &[]).await.expect("write");
    assert_ne!(store.inventory_version().await.expect("version"), before);
}

/// Issue #18: an edit that changes nothing writes no `server_updated` entry; one that
/// changes something writes one naming the change.
#[tokio::test]
async fn an_edit_that_changes_nothing_is_not_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let id = server(&store, dir.path()).await;
    let actor = fleetpoll::activity::Actor::system();
    let updated = "select count(*) from activity where type = 'server_updated'";
    fleetpoll::ops::update_server(
        &store,
        id,
        fleetpoll::inventory::ServerPatch::default(),
        &actor,
    )
    .await
    .expect("no-op edit");
    let same_port = fleetpoll::inventory::ServerPatch {
        port: Some(22),
        ..Default::default()
    };
    fleetpoll::ops::update_server(&store, id, same_port, &actor)
        .await
        .expect("same value");
    assert_eq!(common::count(&store, updated).await, 0);
    let new_port = fleetpoll::inventory::ServerPatch {
        port: Some(2222),
        ..Default::default()
    };
    fleetpoll::ops::update_server(&store, id, new_port, &actor)
        .await
        .expect("edit");
    assert_eq!(common::count(&store, updated).await, 1);
}

/// `db stats` counts the history tables on both stores (on PostgreSQL a partitioned table is
/// the sum of its partitions).
#[tokio::test]
async fn stats_count_the_history_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let id = server(&store, dir.path()).await;
    // Hours long closed: compaction waits two intervals (here 2 h) after an hour ends.
    record_and_compact(&store, dir.path(), id, &[30, 29, 0].map(Duration::hours)).await;
    let stats = store.stats().await.expect("stats");
    let bytes = |name: &str| {
        stats
            .tables
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, b)| *b)
            .sum::<u64>()
    };
    assert!(bytes("chunks") > 0, "{:?}", stats.tables);
    assert!(bytes("raw_points") > 0, "{:?}", stats.tables);
    assert!(
        !stats.tables.iter().any(|(n, _)| n.starts_with("chunks_t")),
        "partitions are summed into their table: {:?}",
        stats.tables
    );
    let raw = stats
        .tiers
        .iter()
        .find(|t| t.tier == "raw")
        .expect("raw tier");
    // The two closed hours' polls, each a row of the server's series and one of its mount's;
    // the current hour is still open.
    assert!(raw.bytes > 0 && raw.rows == 4, "{raw:?}");
}
