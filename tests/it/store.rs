use chrono::{Duration, Utc};
use fleetpoll::model::{DiskSample, DockerState, ServerSample, Snapshot};
use fleetpoll::store::{ServerUpdate, Store};
use uuid::Uuid;

use crate::common;

async fn server(store: &Store, dir: &std::path::Path) -> Uuid {
    // A registration needs a loadable key; make one with ssh-keygen.
    let key = dir.join("id");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
    let new = fleetpoll::inventory::NewServer {
        name: "s1".into(),
        host: "127.0.0.1".into(),
        port: 22,
        user: "monitor".into(),
        key_path: key.to_string_lossy().into_owned(),
        key_passphrase_env: None,
        tags: vec![],
        enabled: true,
        key_material: None,
        key_stored: false,
    };
    common::add(store, new).await.id
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

#[tokio::test]
async fn retention_deletes_old_rows_only_and_logs_the_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let id = server(&store, dir.path()).await;
    for age_days in [10, 9, 8, 1, 0] {
        store
            .record_poll(
                id,
                Some(&snapshot(Duration::days(age_days), 5.0)),
                &ServerUpdate::default(),
                &[],
            )
            .await
            .expect("write");
    }
    let scheduler =
        fleetpoll::scheduler::Scheduler::new(store.clone(), common::settings(dir.path()));
    scheduler.retention().await.expect("retention");
    assert_eq!(
        common::count(&store, "select count(*) from server_metrics").await,
        2
    );
    assert_eq!(
        common::count(&store, "select count(*) from disk_usage").await,
        2
    );
    let details: String =
        sqlx::query_scalar("select details from activity where type = 'retention_cleanup'")
            .fetch_one(store.pool())
            .await
            .expect("logged");
    let v: serde_json::Value = serde_json::from_str(&details).expect("json");
    assert_eq!(v["server_metrics"], 3);
    assert_eq!(v["disk_usage"], 3);
    assert_eq!(v["retention_days"], 7);
    // Nothing left to delete: no second entry.
    scheduler.retention().await.expect("retention");
    assert_eq!(
        common::count(
            &store,
            "select count(*) from activity where type = 'retention_cleanup'"
        )
        .await,
        1
    );
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
        .metric_history(id, since, until, 1000)
        .await
        .expect("raw");
    assert_eq!(raw.len(), 120);
    let points = store
        .metric_history(id, since, until, 12)
        .await
        .expect("downsampled");
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
