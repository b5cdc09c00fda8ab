//! Cost of evaluating alert rules as each poll is stored (issue #13): 100 rules against one
//! poll of a host with 3 mounts and 8 containers: a quiet host (nothing fires, nothing open,
//! the usual case) and a busy one whose 81 alerts are already open. The goal is under 5% of the poller's CPU per poll (0.74 ms at 10,000
//! hosts in BENCHMARKS.md, perf5): under 37 us per poll.
//!
//! Run: `cargo bench --bench alerts -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use fleetpoll::alerts::eval::{evaluate, Change, PollFacts};
use fleetpoll::alerts::{AlertRule, RuleInput};
use fleetpoll::inventory::ServerStatus;
use fleetpoll::model::{ContainerSample, DiskSample, DockerState, ServerSample, Snapshot};
use uuid::Uuid;

fn rule(i: usize) -> AlertRule {
    let (metric, op, threshold, mount, container) = match i % 10 {
        0..=2 => (
            ["cpu_percent", "memory_percent", "swap_percent"][i % 3],
            ">=",
            serde_json::json!(50 + i % 40),
            None,
            None,
        ),
        3..=5 => (
            "disk_percent",
            ">",
            serde_json::json!(40 + i % 50),
            Some(["*", "/", "/srv/*"][i % 3]),
            None,
        ),
        6..=8 => (
            [
                "container_cpu_percent",
                "container_memory_percent",
                "container_state",
            ][i % 3],
            if i % 3 == 2 { "!=" } else { ">" },
            if i % 3 == 2 {
                serde_json::json!("running")
            } else {
                serde_json::json!(10 + i % 60)
            },
            None,
            Some(["*", "web-*", "db-?"][i % 3]),
        ),
        _ => (
            "server_status",
            "==",
            serde_json::json!("offline"),
            None,
            None,
        ),
    };
    RuleInput {
        name: Some(format!("rule {i}")),
        metric: Some(metric.into()),
        op: Some(op.into()),
        threshold: Some(threshold),
        mount: mount.map(str::to_string),
        container: container.map(str::to_string),
        for_secs: Some(if i.is_multiple_of(2) { 0 } else { 300 }),
        ..Default::default()
    }
    .create(Uuid::new_v4(), Utc::now())
    .expect("valid rule")
}

fn snapshot(load: f64) -> Snapshot {
    let disk = |mount: &str, pct: f64| DiskSample {
        filesystem: "/dev/vda1".into(),
        mount: mount.into(),
        total_bytes: Some(100 << 30),
        used_bytes: Some((pct as u64) << 30),
        available_bytes: Some((100 - pct as u64) << 30),
        use_percent: Some(pct),
    };
    let container = |name: &str, cpu: f64| ContainerSample {
        container_id: format!("{name:0>12}"),
        name: name.into(),
        image: Some("nginx:1.27".into()),
        state: "running".into(),
        status_text: "Up 3 hours".into(),
        exit_code: None,
        health: None,
        cpu_percent: Some(cpu),
        cpu_time_seconds: None,
        mem_used_bytes: Some(200 << 20),
        mem_limit_bytes: Some(1 << 30),
        mem_percent: Some(19.5 * load),
        net_rx_bytes: Some(1 << 20),
        net_tx_bytes: Some(1 << 20),
        block_read_bytes: None,
        block_write_bytes: None,
        pids: Some(12),
    };
    Snapshot {
        taken_at: Utc::now(),
        server: ServerSample {
            cpu_busy_percent: Some(63.0 * load),
            mem_total_bytes: Some(16 << 30),
            mem_available_bytes: Some(((16.0 - 11.0 * load) * (1u64 << 30) as f64) as u64),
            swap_total_bytes: Some(2 << 30),
            swap_used_bytes: Some(1 << 28),
            load1: Some(2.5),
            uptime_seconds: Some(86_400),
            ..Default::default()
        },
        disks: vec![
            disk("/", 71.0 * load),
            disk("/srv/data", 88.0 * load),
            disk("/boot", 35.0 * load),
        ],
        containers: [
            "web-1", "web-2", "web-3", "db-1", "db-2", "cache", "queue", "proxy",
        ]
        .iter()
        .enumerate()
        .map(|(i, n)| container(n, i as f64 * 9.0 * load))
        .collect(),
        docker: DockerState::Available,
        problems: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let rules: Vec<AlertRule> = (0..100).map(rule).collect();
    let tags = vec!["prod".to_string(), "web".to_string()];
    let thresholds = fleetpoll::model::Thresholds::default();
    let now = Utc::now();
    let mut g = c.benchmark_group("alerts");
    // The usual poll: values well under every threshold, nothing open.
    let quiet = snapshot(0.1);
    let facts = |snap: &'static Snapshot| PollFacts {
        server_id: Uuid::nil(),
        server_name: "web-1",
        tags: Box::leak(Box::new(tags.clone())),
        status: ServerStatus::Online,
        snapshot: Some(snap),
        cpus: Some(8),
        thresholds: Some(Box::leak(Box::new(thresholds.clone()))),
        restarts: None,
    };
    let quiet_facts = facts(Box::leak(Box::new(quiet)));
    let fired = evaluate(&rules, &quiet_facts, &[], now);
    assert!(fired.is_empty(), "nothing fires: {fired:?}");
    g.bench_function("100 rules, nothing firing", |b| {
        b.iter(|| black_box(evaluate(black_box(&rules), &quiet_facts, &[], now)))
    });
    // A busy host whose alerts are already open: each poll moves them on.
    let busy_facts = facts(Box::leak(Box::new(snapshot(1.0))));
    let open: Vec<_> = evaluate(&rules, &busy_facts, &[], now)
        .into_iter()
        .filter_map(|d| match d.change {
            Change::Open(a) => Some(a),
            _ => None,
        })
        .collect();
    g.bench_function(format!("100 rules, {} alerts open", open.len()), |b| {
        b.iter(|| black_box(evaluate(black_box(&rules), &busy_facts, &open, now)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
