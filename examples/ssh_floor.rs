//! The floor for fleetpoll's per-poll CPU (issue #5, BENCHMARKS.md `## Fleet`): a minimal
//! russh client that keeps one session per host open and, every interval, runs exactly the
//! command fleetpoll runs (`sh -s` with the poll script on stdin) and throws the output away.
//! No probe, no parsing, no database, no HTTP, no retries of failed hosts.
//!
//! ```sh
//! fleetpoll remote-script > script.sh
//! cargo run --release --example ssh_floor -- --hosts-file sim.csv --script script.sh \
//!     --interval 60 --warmup 70 --measure 60
//! ```
//!
//! Hosts are read from a `name,host,port,user,key_path,tags` CSV (what `sim-fleet` writes and
//! `fleetpoll server import` reads; no quoted fields). Host i is first contacted at offset
//! i x interval / N and then polled every interval, like fleetpoll's spread. The process CPU
//! (utime + stime from /proc/self/stat) and the number of finished polls are sampled at the
//! end of the warm-up and again after `--measure` seconds; the result is one line of
//! `key=value` pairs on stdout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use russh::client;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;
use tokio::sync::Semaphore;
use tokio::time::{timeout, Instant, MissedTickBehavior};

struct Accept;

impl client::Handler for Accept {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

struct Host {
    host: String,
    port: u16,
    user: String,
    key: Arc<PrivateKey>,
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    connect_failed: AtomicU64,
    polls_ok: AtomicU64,
    polls_failed: AtomicU64,
    bytes: AtomicU64,
}

struct Args {
    hosts_file: PathBuf,
    script: PathBuf,
    interval: u64,
    warmup: u64,
    measure: u64,
    connect_concurrency: usize,
    timeout: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        hosts_file: PathBuf::new(),
        script: PathBuf::new(),
        interval: 60,
        warmup: 70,
        measure: 60,
        connect_concurrency: 64,
        timeout: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--hosts-file" => a.hosts_file = val()?.into(),
            "--script" => a.script = val()?.into(),
            "--interval" => a.interval = val()?.parse()?,
            "--warmup" => a.warmup = val()?.parse()?,
            "--measure" => a.measure = val()?.parse()?,
            "--connect-concurrency" => a.connect_concurrency = val()?.parse()?,
            "--timeout" => a.timeout = val()?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    if a.hosts_file.as_os_str().is_empty() || a.script.as_os_str().is_empty() {
        bail!("usage: ssh_floor --hosts-file CSV --script FILE [--interval 60] [--warmup 70] [--measure 60] [--connect-concurrency 64] [--timeout 30]");
    }
    Ok(a)
}

fn read_hosts(path: &Path) -> anyhow::Result<Vec<Host>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty hosts file")?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("no column {name}"))
    };
    let (ch, cp, cu, ck) = (col("host")?, col("port")?, col("user")?, col("key_path")?);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut keys: std::collections::HashMap<PathBuf, Arc<PrivateKey>> = Default::default();
    let mut hosts = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let key_path = dir.join(f[ck]);
        let key = match keys.get(&key_path) {
            Some(k) => k.clone(),
            None => {
                let k = Arc::new(
                    russh::keys::load_secret_key(&key_path, None)
                        .with_context(|| format!("loading {}", key_path.display()))?,
                );
                keys.insert(key_path, k.clone());
                k
            }
        };
        hosts.push(Host {
            host: f[ch].to_string(),
            port: f[cp].parse()?,
            user: f[cu].to_string(),
            key,
        });
    }
    Ok(hosts)
}

async fn connect(h: &Host, limit: Duration) -> anyhow::Result<client::Handle<Accept>> {
    // fleetpoll's own settings: the floor measures the same sessions.
    let config = Arc::new(fleetpoll::ssh::client_config());
    let run = async {
        let stream = tokio::net::TcpStream::connect((h.host.as_str(), h.port)).await?;
        let _ = stream.set_nodelay(true);
        let mut handle = client::connect_stream(config, stream, Accept).await?;
        let hash = handle.best_supported_rsa_hash().await?.flatten();
        let auth = handle
            .authenticate_publickey(
                h.user.clone(),
                PrivateKeyWithHashAlg::new(h.key.clone(), hash),
            )
            .await?;
        if !auth.success() {
            bail!("authentication refused");
        }
        Ok(handle)
    };
    timeout(limit, run).await.context("connect timed out")?
}

/// Runs the script once and discards what comes back; returns the bytes received.
async fn run(handle: &client::Handle<Accept>, script: &[u8]) -> anyhow::Result<u64> {
    let mut ch = handle.channel_open_session().await?;
    ch.exec(true, "sh -s").await?;
    ch.data(script).await?;
    ch.eof().await?;
    let mut n = 0u64;
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
                n += data.len() as u64
            }
            _ => {}
        }
    }
    Ok(n)
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based, man 5 proc).
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0 // USER_HZ is 100 on Linux
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let hosts = read_hosts(&args.hosts_file)?;
    let script: Arc<[u8]> = std::fs::read(&args.script)
        .with_context(|| format!("reading {}", args.script.display()))?
        .into();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let n = hosts.len().max(1) as u64;
        let c = Arc::new(Counters::default());
        let gate = Arc::new(Semaphore::new(args.connect_concurrency));
        let interval = Duration::from_secs(args.interval);
        let limit = Duration::from_secs(args.timeout);
        let start = Instant::now();
        for (i, h) in hosts.into_iter().enumerate() {
            let (c, gate, script) = (c.clone(), gate.clone(), script.clone());
            let offset = interval * (i as u32) / (n as u32);
            tokio::spawn(async move {
                tokio::time::sleep_until(start + offset).await;
                let handle = {
                    let _permit = gate.acquire().await;
                    match connect(&h, limit).await {
                        Ok(handle) => handle,
                        Err(_) => {
                            c.connect_failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                };
                c.connected.fetch_add(1, Ordering::Relaxed);
                let mut tick = tokio::time::interval_at(Instant::now(), interval);
                tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    match timeout(limit, run(&handle, &script)).await {
                        Ok(Ok(bytes)) => {
                            c.polls_ok.fetch_add(1, Ordering::Relaxed);
                            c.bytes.fetch_add(bytes, Ordering::Relaxed);
                        }
                        _ => {
                            c.polls_failed.fetch_add(1, Ordering::Relaxed);
                            if handle.is_closed() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        tokio::time::sleep_until(start + Duration::from_secs(args.warmup)).await;
        let (cpu0, ok0, fail0) = (cpu_seconds(), c.polls_ok.load(Ordering::Relaxed), c.polls_failed.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_secs(args.measure)).await;
        let (cpu1, ok1, fail1) = (cpu_seconds(), c.polls_ok.load(Ordering::Relaxed), c.polls_failed.load(Ordering::Relaxed));
        let polls = ok1 - ok0;
        let cpu = cpu1 - cpu0;
        println!(
            "hosts={n} connected={} connect_failed={} window_secs={} polls_ok={polls} polls_failed={} cpu_seconds={cpu:.2} cpu_ms_per_poll={:.3} rss_bytes={} bytes_per_poll={}",
            c.connected.load(Ordering::Relaxed),
            c.connect_failed.load(Ordering::Relaxed),
            args.measure,
            fail1 - fail0,
            if polls > 0 { cpu * 1000.0 / polls as f64 } else { f64::NAN },
            rss_bytes(),
            c.bytes.load(Ordering::Relaxed) / ok1.max(1),
        );
        // Exit without tearing down thousands of sessions one by one.
        std::process::exit(0)
    })
}
