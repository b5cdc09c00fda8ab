use std::process::Command;

use crate::common::{self, add, registration};
use crate::harness::{DockerMode, Sshd};

/// podman as RECIPES.md runs it on these machines: runc (crun refuses hybrid cgroups),
/// cgroupfs, file events, and ulimits root may grant here.
fn podman(args: &[&str]) -> Result<String, String> {
    let out = Command::new("podman")
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
        ])
        .args(args)
        .output()
        .map_err(|e| format!("podman: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "podman {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn available() -> Result<(), String> {
    if !crate::harness::is_root() {
        return Err("not root (rootful podman needed)".into());
    }
    if Command::new("podman").arg("--version").output().is_err() {
        return Err("podman not installed".into());
    }
    if !std::path::Path::new("/bin/busybox").exists() {
        return Err("busybox-static not installed".into());
    }
    Ok(())
}

/// Imports `localhost/busybox:local` from a BusyBox rootfs, as RECIPES.md §2 does.
fn ensure_image() -> Result<(), String> {
    if podman(&["image", "exists", "localhost/busybox:local"]).is_ok() {
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = dir.path().join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).map_err(|e| e.to_string())?;
    let ok = Command::new("chroot")
        .arg(&root)
        .args(["/bin/busybox", "--install", "-s", "/bin"])
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        return Err("busybox --install in the rootfs failed".into());
    }
    let tar = dir.path().join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        return Err("tar failed".into());
    }
    podman(&["import", &tar.to_string_lossy(), "localhost/busybox:local"]).map(|_| ())
}

struct Pod(String);

impl Pod {
    fn run(name: &str, opts: &[&str], cmd: &[&str]) -> Result<Pod, String> {
        let _ = podman(&["rm", "-f", "-t", "0", name]);
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend([
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=4096:4096",
        ]);
        args.extend(opts);
        args.push("localhost/busybox:local");
        args.extend(cmd);
        podman(&args).map(|_| Pod(name.to_string()))
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_containers_are_read_and_cpu_comes_from_counters_between_polls() {
    if let Err(why) = available().and_then(|_| ensure_image()) {
        eprintln!(
            "SKIPPED podman_containers_are_read_and_cpu_comes_from_counters_between_polls: {why}"
        );
        return;
    }
    let tag = std::process::id();
    let idle = Pod::run(
        &format!("fp-pidle-{tag}"),
        &["-m", "256m"],
        &["sleep", "100000"],
    )
    .expect("idle");
    let busy = Pod::run(
        &format!("fp-pbusy-{tag}"),
        &["--cpus", "0.5"],
        &["sh", "-c", "while :; do :; done"],
    )
    .expect("busy");

    let sshd = Sshd::start(DockerMode::PodmanHost);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("podmanhost", &sshd)).await;
    let scheduler =
        fleetpoll::scheduler::Scheduler::new(store.clone(), common::settings(dir.path()));

    let first = scheduler
        .poll_and_record(store.server(server.id).await.expect("s"))
        .await;
    let snap = first.outcome.expect("first poll");
    let platform = store
        .server(server.id)
        .await
        .expect("s")
        .platform
        .expect("platform");
    assert_eq!(
        platform.engine.as_ref().map(|e| e.kind.as_str()),
        Some("podman"),
        "{platform:?}"
    );
    let row = |snap: &fleetpoll::model::Snapshot, name: &str| {
        snap.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    // Podman's own one-shot figure is the average since start; we do not store it.
    assert_eq!(
        row(&snap, &busy.0).cpu_percent,
        None,
        "no current figure before a second sample"
    );
    let limit = row(&snap, &idle.0).mem_limit_bytes.expect("limit");
    // podman prints decimal units with 4 digits (268.4MB): within 0.1% of 256 MiB.
    assert!(limit.abs_diff(256 * 1024 * 1024) < 300_000, "limit {limit}");

    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let second = scheduler
        .poll_and_record(store.server(server.id).await.expect("s"))
        .await;
    let snap = second.outcome.expect("second poll");
    let cpu = row(&snap, &busy.0)
        .cpu_percent
        .expect("current cpu from counters");
    assert!(
        (25.0..=75.0).contains(&cpu),
        "busy container limited to half a CPU read {cpu}%"
    );
    let idle_cpu = row(&snap, &idle.0).cpu_percent.expect("idle cpu");
    assert!(idle_cpu < 5.0, "idle container read {idle_cpu}%");
}
