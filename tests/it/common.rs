use std::net::SocketAddr;
use std::path::Path;

use fleetpoll::config::Settings;
use fleetpoll::inventory::{NewServer, Server};
use fleetpoll::poll::PollResult;
use fleetpoll::scheduler::Scheduler;
use fleetpoll::store::Store;
use tempfile::TempDir;
use tokio::sync::oneshot;

use crate::harness::{DockerMode, Sshd};

/// The `fleetpoll` binary, without the developer's own `FLEETPOLL_*` settings, stdin closed.
pub fn fleetpoll() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_fleetpoll"));
    for (k, _) in std::env::vars() {
        if k.starts_with("FLEETPOLL_") {
            c.env_remove(k);
        }
    }
    c.stdin(std::process::Stdio::null());
    c
}

/// Fails the test with the command's stderr unless it exited 0.
pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child's stderr, line by line, read on a thread so a test can wait with a deadline.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}

pub fn fixture(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// The docker shim answers with these real captures.
pub fn shim() -> DockerMode {
    DockerMode::Shim {
        stats: fixture("docker_stats/docker-28.2-json-all.txt"),
        ps: fixture("docker_ps/docker-28.2-json-all.txt"),
    }
}

/// The first line of a real `docker ps` capture (container `warming`, id `fafa6c5df89e`,
/// status `Up 1 second (health: starting)`), for tests that shape a host's containers from it.
pub fn docker_ps_line() -> String {
    std::fs::read_to_string(fixture("docker_ps/docker-28.2-json-all.txt"))
        .expect("fixture")
        .lines()
        .next()
        .expect("a line")
        .to_string()
}

/// A docker shim whose `ps` prints `ps` (written to a file in `dir` that the test may
/// rewrite between polls, returned too) and whose `stats` prints nothing.
pub fn shim_with_ps(dir: &Path, ps: &str) -> (DockerMode, std::path::PathBuf) {
    let ps_path = dir.join("ps.txt");
    std::fs::write(&ps_path, ps).expect("write ps");
    let stats = dir.join("stats.txt");
    std::fs::write(&stats, "").expect("write stats");
    (
        DockerMode::Shim {
            stats,
            ps: ps_path.clone(),
        },
        ps_path,
    )
}

/// Short deadlines so failure tests stay quick; the command deadline leaves room for
/// top's one-second second frame and a slow CI machine.
pub fn settings(dir: &Path) -> Settings {
    Settings {
        database_path: dir.join("fleetpoll.db"),
        database_url: postgres_url(dir).unwrap_or_default(),
        state_dir: dir.to_path_buf(),
        connect_timeout_secs: 3,
        auth_timeout_secs: 3,
        command_timeout_secs: 20,
        poll_interval_secs: 3600,
        // Most tests look at one failure's consequences; the threshold has its own test.
        offline_after_failures: 1,
        // The test hosts' client keys live in temporary directories; the API may name them.
        api_key_dirs: std::env::temp_dir().display().to_string(),
        ..Settings::default()
    }
}

/// The store of a test: a SQLite file in `dir`, or, when `FLEETPOLL_TEST_POSTGRES` names a
/// PostgreSQL server (the test command's second pass), a database of its own there.
pub async fn store(dir: &Path) -> Store {
    log_when_asked();
    match postgres_url(dir) {
        None => Store::open(&dir.join("fleetpoll.db"))
            .await
            .expect("open store"),
        Some(url) => {
            create_postgres_database(&url).await;
            Store::open_at(&fleetpoll::store::Location::Postgres(url), Some(dir))
                .await
                .expect("open store on PostgreSQL")
        }
    }
}

/// `FLEETPOLL_TEST_LOG=warn` (an env-filter) prints the program's log on stderr, for a
/// failing test's cause (`cargo test ... -- --nocapture`).
fn log_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if let Ok(filter) = std::env::var("FLEETPOLL_TEST_LOG") {
        ONCE.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        });
    }
}

/// Whether this run's stores are PostgreSQL (tests of SQLite's own file say so and stop).
pub fn on_postgres() -> bool {
    std::env::var_os("FLEETPOLL_TEST_POSTGRES").is_some()
}

/// The URL of the PostgreSQL database that belongs to the test directory `dir`, when the
/// tests run on PostgreSQL.
pub fn postgres_url(dir: &Path) -> Option<String> {
    postgres_url_for(&dir.join("fleetpoll.db"))
}

/// The PostgreSQL stand-in for the SQLite file `db` (one database per test directory and
/// file name), when the tests run on PostgreSQL.
fn postgres_url_for(db: &Path) -> Option<String> {
    let base = std::env::var("FLEETPOLL_TEST_POSTGRES").ok()?;
    let (server, _) = base.rsplit_once('/')?;
    let mut name = db.parent()?.file_name()?.to_string_lossy().into_owned();
    let stem = db.file_stem()?.to_string_lossy();
    if stem != "fleetpoll" {
        name.push('_');
        name.push_str(&stem);
    }
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    Some(format!("{server}/t{name}"))
}

/// `fleetpoll --db DB`: the SQLite file `db`, or on PostgreSQL its stand-in database (made
/// here) with the master key in the file's directory, as the test's own store has it.
pub fn with_db(
    cmd: &mut std::process::Command,
    db: impl AsRef<Path>,
) -> &mut std::process::Command {
    let db = db.as_ref();
    match postgres_url_for(db) {
        None => cmd.arg("--db").arg(db),
        Some(url) => {
            let made = url.clone();
            // A thread of its own: the caller may be inside a runtime already.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(create_postgres_database(&made));
            })
            .join()
            .expect("create database");
            cmd.arg("--db")
                .arg(url)
                .env("FLEETPOLL_STATE_DIR", db.parent().unwrap_or(Path::new(".")))
        }
    }
}

async fn create_postgres_database(url: &str) {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let (server, name) = url.rsplit_once('/').expect("database name");
    let mut admin = sqlx::AnyConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("connect to the test PostgreSQL");
    let exists: Option<i32> = sqlx::query_scalar("select 1 from pg_database where datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await
        .expect("look up database");
    if exists.is_none() {
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
    }
    let _ = admin.close().await;
}

pub fn registration(name: &str, sshd: &Sshd) -> NewServer {
    NewServer {
        name: name.to_string(),
        host: "127.0.0.1".into(),
        port: sshd.port,
        user: sshd.user.clone(),
        key_path: sshd.client_key.to_string_lossy().into_owned(),
        key_passphrase_env: None,
        tags: vec!["test".into()],
        enabled: true,
        key_material: None,
        key_stored: false,
    }
}

pub async fn add(store: &Store, new: NewServer) -> Server {
    fleetpoll::ops::add_server(
        store,
        new,
        &fleetpoll::activity::Actor {
            name: "test".into(),
            source: None,
        },
    )
    .await
    .expect("add server")
}

/// Polls the given servers once through the scheduler (stores results, closes sessions).
pub async fn poll(store: &Store, dir: &Path, servers: Vec<Server>) -> Vec<(Server, PollResult)> {
    let scheduler = Scheduler::new(store.clone(), settings(dir));
    scheduler.poll_now(servers).await
}

pub async fn poll_one(store: &Store, dir: &Path, server: &Server) -> PollResult {
    let fresh = store.server(server.id).await.expect("server");
    poll(store, dir, vec![fresh])
        .await
        .pop()
        .expect("one result")
        .1
}

pub async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

/// Registers a server called `name` with a fresh key (ssh-keygen) that is never dialled.
pub async fn named_server(store: &Store, dir: &std::path::Path, name: &str) -> uuid::Uuid {
    tagged_server(store, dir, name, &[]).await
}

/// [`named_server`] with tags.
pub async fn tagged_server(
    store: &Store,
    dir: &std::path::Path,
    name: &str,
    tags: &[&str],
) -> uuid::Uuid {
    // A registration needs a loadable key; make one with ssh-keygen.
    let key = dir.join(format!("id-{name}"));
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
    let new = fleetpoll::inventory::NewServer {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 22,
        user: "monitor".into(),
        key_path: key.to_string_lossy().into_owned(),
        key_passphrase_env: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        enabled: true,
        key_material: None,
        key_stored: false,
    };
    add(store, new).await.id
}

/// Samples stored of one kind of series (0 servers, 1 mounts, 2 containers), whether still
/// open rows or compacted into hour chunks; of one server only when `server` is given.
pub async fn samples(store: &Store, kind: i64, server: Option<&str>) -> i64 {
    let filter = server.map_or(String::new(), |id| format!(" and s.server_id = '{id}'"));
    count(
        store,
        &format!(
            "select (select count(*) from raw_points r join series s on s.id = r.series \
             where s.kind = {kind}{filter}) + (select cast(coalesce(sum(c.rows), 0) as bigint) from chunks c \
             join series s on s.id = c.series where c.tier = 0 and s.kind = {kind}{filter})"
        ),
    )
    .await
}

/// Records one poll of `server` taken at `ts_ms` with these mounts and no other figure, as
/// the writer would store it.
pub async fn record_disks(
    store: &Store,
    server: uuid::Uuid,
    ts_ms: i64,
    disks: Vec<fleetpoll::model::DiskSample>,
) {
    let snapshot = fleetpoll::model::Snapshot {
        taken_at: chrono::DateTime::from_timestamp_millis(ts_ms).expect("time"),
        server: fleetpoll::model::ServerSample::default(),
        disks,
        containers: vec![],
        docker: fleetpoll::model::DockerState::Available,
        problems: vec![],
    };
    store
        .record_poll(
            server,
            Some(&snapshot),
            &fleetpoll::store::ServerUpdate::default(),
            &[],
        )
        .await
        .expect("record a poll");
}

/// A running `serve` (scheduler + API) on a port-0 listener.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub dir: TempDir,
    pub http: reqwest::Client,
    pub anon: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with_interval(3600).await
    }

    pub async fn start_with_interval(interval_secs: u64) -> TestApp {
        Self::start_with(|cfg| cfg.poll_interval_secs = interval_secs).await
    }

    /// Starts with the test settings as `adjust` leaves them.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let mut cfg = settings(dir.path());
        adjust(&mut cfg);
        let task = tokio::spawn(fleetpoll::app::run(
            cfg,
            store.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        // Every request of `http` carries an admin token; `anon` carries nothing.
        let (_, secret) = fleetpoll::ops::create_token(
            &store,
            "test-admin",
            fleetpoll::auth::Role::Admin,
            None,
            &fleetpoll::activity::Actor::system(),
        )
        .await
        .expect("admin token");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", secret.expose())
                .parse()
                .expect("header"),
        );
        TestApp {
            addr,
            store,
            dir,
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("client"),
            anon: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("app ran cleanly");
        }
    }
}
