use fleetpoll::model::ContainerHealth;

use crate::common::{self, add, registration};
use crate::harness::docker::{engine, Container};
use crate::harness::{DockerMode, Sshd};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_of_a_real_docker_engine_are_stored_as_started() {
    if let Err(why) = engine() {
        // Said out loud, never a silent pass: the test output shows the reason.
        eprintln!("SKIPPED containers_of_a_real_docker_engine_are_stored_as_started: no Docker engine here: {why}");
        return;
    }
    let tag = std::process::id();
    let idle = Container::run(
        &format!("fp-idle-{tag}"),
        &["-m", "256m"],
        &["sleep", "100000"],
    )
    .expect("idle");
    let busy = Container::run(
        &format!("fp-busy-{tag}"),
        &["-m", "128m", "--cpus", "0.5"],
        &["sh", "-c", "while :; do :; done"],
    )
    .expect("busy");
    let gone =
        Container::run(&format!("fp-gone-{tag}"), &[], &["sh", "-c", "exit 3"]).expect("gone");
    assert_eq!(gone.wait().expect("wait"), 3);

    let sshd = Sshd::start(DockerMode::Real);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::store(dir.path()).await;
    let server = add(&store, registration("dockerhost", &sshd)).await;
    let snap = common::poll_one(&store, dir.path(), &server)
        .await
        .outcome
        .expect("poll");

    let row = |c: &Container| {
        snap.containers
            .iter()
            .find(|r| r.name == c.name)
            .unwrap_or_else(|| panic!("{} missing", c.name))
            .clone()
    };
    let i = row(&idle);
    assert_eq!(i.container_id, idle.short_id());
    assert_eq!(i.state, "running");
    assert_eq!(i.mem_limit_bytes, Some(256 * 1024 * 1024));
    assert!(i
        .mem_used_bytes
        .is_some_and(|m| m > 0 && m < 256 * 1024 * 1024));
    let b = row(&busy);
    assert_eq!(b.mem_limit_bytes, Some(128 * 1024 * 1024));
    assert!(
        b.cpu_percent.is_some_and(|c| c > 10.0 && c < 80.0),
        "busy cpu {:?} with --cpus 0.5",
        b.cpu_percent
    );
    let g = row(&gone);
    assert_eq!(g.state, "exited");
    assert_eq!(g.exit_code, Some(3));
    assert_eq!(g.category(), ContainerHealth::Error);
    let stored = store.latest_containers(None).await.expect("stored rows");
    let (_, stored) = stored
        .iter()
        .find(|(_, c)| c.name == idle.name)
        .expect("stored row");
    assert_eq!(stored.mem_limit_bytes, Some(256 * 1024 * 1024));
}
