//! `GET /metrics`: the poller's own series and the fleet's latest values in the Prometheus
//! text format, so a Prometheus/Grafana user can scrape fleetpoll instead of installing an
//! exporter on every host.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::Utc;

use super::auth::Viewer;
use super::error::ApiError;
use super::AppState;
use crate::inventory::ServerStatus;
use crate::observe::label;

const STATUSES: &[ServerStatus] = &[
    ServerStatus::Unknown,
    ServerStatus::Online,
    ServerStatus::Offline,
    ServerStatus::HostKeyChanged,
    ServerStatus::Stale,
    ServerStatus::Disabled,
];

pub async fn metrics(State(st): State<AppState>, _: Viewer) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::with_capacity(16 * 1024);
    st.metrics.render(&mut out);

    let servers = st.store.servers().await?;
    let now = Utc::now();
    let names: HashMap<_, _> = servers.iter().map(|s| (s.id, s.name.as_str())).collect();
    let _ = writeln!(
        out,
        "# HELP fleetpoll_hosts Registered servers by status.\n# TYPE fleetpoll_hosts gauge"
    );
    for status in STATUSES {
        let n = servers
            .iter()
            .filter(|s| s.effective_status(now, st.settings.poll_interval_secs) == *status)
            .count();
        let _ = writeln!(out, "fleetpoll_hosts{{status=\"{status}\"}} {n}");
    }

    let _ = writeln!(
        out,
        "# HELP fleetpoll_alerts Open alerts by state and severity.\n# TYPE fleetpoll_alerts gauge"
    );
    let open = st.store.open_alert_counts().await?;
    for state in ["pending", "firing"] {
        for severity in ["warning", "critical"] {
            let n: u64 = open
                .iter()
                .filter(|(s, v, _)| s == state && v == severity)
                .map(|(_, _, n)| n)
                .sum();
            let _ = writeln!(
                out,
                "fleetpoll_alerts{{state=\"{state}\",severity=\"{severity}\"}} {n}"
            );
        }
    }

    let latest = st.store.latest_samples(None).await?;
    let series = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    series(
        &mut out,
        "fleetpoll_server_cpu_percent",
        "CPU busy percent of the latest sample.",
    );
    for l in &latest {
        if let (Some(name), Some(v)) = (names.get(&l.server_id), l.cpu_busy_percent) {
            let _ = writeln!(
                out,
                "fleetpoll_server_cpu_percent{{server=\"{}\"}} {v}",
                label(name)
            );
        }
    }
    series(
        &mut out,
        "fleetpoll_server_memory_percent",
        "Memory in use, (total - available) / total, percent.",
    );
    for l in &latest {
        if let (Some(name), Some(v)) = (names.get(&l.server_id), l.memory_percent) {
            let _ = writeln!(
                out,
                "fleetpoll_server_memory_percent{{server=\"{}\"}} {v}",
                label(name)
            );
        }
    }
    series(
        &mut out,
        "fleetpoll_server_load1",
        "One-minute load average of the latest sample.",
    );
    for l in &latest {
        if let (Some(name), Some(v)) = (names.get(&l.server_id), l.load1) {
            let _ = writeln!(
                out,
                "fleetpoll_server_load1{{server=\"{}\"}} {v}",
                label(name)
            );
        }
    }
    let disks = st.store.latest_disks_of(None).await?;
    series(
        &mut out,
        "fleetpoll_disk_used_percent",
        "Use percent of each mount in the latest sample.",
    );
    for (sid, d) in &disks {
        if let (Some(name), Some(v)) = (names.get(sid), d.use_percent) {
            let _ = writeln!(
                out,
                "fleetpoll_disk_used_percent{{server=\"{}\",mount=\"{}\"}} {v}",
                label(name),
                label(&d.mount)
            );
        }
    }
    series(
        &mut out,
        "fleetpoll_disk_size_bytes",
        "Size of each mount in the latest sample.",
    );
    for (sid, d) in &disks {
        if let (Some(name), Some(v)) = (names.get(sid), d.total_bytes) {
            let _ = writeln!(
                out,
                "fleetpoll_disk_size_bytes{{server=\"{}\",mount=\"{}\"}} {v}",
                label(name),
                label(&d.mount)
            );
        }
    }
    let containers = st.store.latest_containers(None).await?;
    series(
        &mut out,
        "fleetpoll_container_cpu_percent",
        "Container CPU, percent of one CPU.",
    );
    for (sid, c) in &containers {
        if let (Some(name), Some(v)) = (names.get(sid), c.cpu_percent) {
            let _ = writeln!(
                out,
                "fleetpoll_container_cpu_percent{{server=\"{}\",container=\"{}\"}} {v}",
                label(name),
                label(&c.name)
            );
        }
    }
    series(
        &mut out,
        "fleetpoll_container_memory_bytes",
        "Container memory in use.",
    );
    for (sid, c) in &containers {
        if let (Some(name), Some(v)) = (names.get(sid), c.mem_used_bytes) {
            let _ = writeln!(
                out,
                "fleetpoll_container_memory_bytes{{server=\"{}\",container=\"{}\"}} {v}",
                label(name),
                label(&c.name)
            );
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}
