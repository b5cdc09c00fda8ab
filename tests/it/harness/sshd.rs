//! A real OpenSSH server per test (`RECIPES.md` §7): `/usr/sbin/sshd -D` as the current user on
//! 127.0.0.1 and a random port, with its own host key, its own client key, and a session `PATH`
//! that decides what `docker` is.
//!
//! Session environment: `SetEnv PATH=… HOME=…` in `sshd_config`. sshd applies `SetEnv` after its
//! default `PATH`, so the shim directory comes first. `HOME` points at an empty directory on
//! purpose: Debian's bash sources `~/.bashrc` even for `ssh host 'cmd'` (it detects sshd), and
//! root's real `.bashrc` may prepend to `PATH` and cost 200+ ms per command (pyenv, cargo).

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const SSHD: &str = "/usr/sbin/sshd";
const STD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What `docker` means inside SSH sessions.
#[derive(Clone, Debug)]
pub enum DockerMode {
    /// A shell script: `docker stats …` prints `stats`, `docker ps …` prints `ps` (read at each
    /// call, so a test may rewrite them between polls), `docker version`/`info` print plausible
    /// text; all exit 0.
    Shim { stats: PathBuf, ps: PathBuf },
    /// No `docker` anywhere on `PATH` (`command -v docker` exits 1); everything else still works.
    Missing,
    /// `docker` exits 1 with the Docker CLI's "permission denied … docker.sock" message on stderr.
    Denied,
    /// The real Docker client (the one on this process's `PATH`) comes first.
    Real,
    /// Like `Missing`, and `top`, `free`, `df` are BusyBox applets (an Alpine/OpenWrt-like host).
    BusyboxHost,
    /// No `docker`; the real `podman` is on `PATH` (a Fedora/RHEL-like host).
    PodmanHost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    Ecdsa,
    Rsa,
}

/// A running sshd. Dropping it kills the server and all its sessions.
pub struct Sshd {
    pub port: u16,
    /// The login user: whoever runs the tests (`root` in CI).
    pub user: String,
    /// Private ed25519 key (no passphrase) listed in `authorized_keys`; `.pub` next to it.
    pub client_key: PathBuf,
    /// The server's current public host key (same path after `rotate_host_key`).
    pub host_key_pub: PathBuf,
    /// Temporary directory holding config, keys, logs and the shim.
    pub dir: PathBuf,
    /// sshd's log (`-E`), at `LogLevel VERBOSE`.
    pub log: PathBuf,
    pub config: PathBuf,
    /// `authorized_keys` for `user`; append to it freely, sshd rereads it at each login.
    pub authorized_keys: PathBuf,
    host_key: PathBuf,
    shim_dir: PathBuf,
    child: Option<Child>,
    key_seq: AtomicU32,
    _tmp: TempDir,
}

enum Startup {
    Ready,
    PortTaken,
    Failed(String),
}

impl Sshd {
    /// Starts sshd and waits until it answers with an SSH banner. Panics (with sshd's log) if it
    /// cannot start within 10 s.
    pub fn start(docker: DockerMode) -> Sshd {
        Sshd::start_with(docker, "")
    }

    /// Like [`Sshd::start`], with extra `sshd_config` lines appended (e.g. `MaxSessions 1`, or
    /// `ListenAddress 127.1.0.5` to answer on another loopback address with the same port).
    pub fn start_with(docker: DockerMode, extra_config: &str) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: install openssh-server (scripts/test.sh does it when run as root)"
        );
        if super::is_root() {
            // "Missing privilege separation directory: /run/sshd" otherwise.
            fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        }
        let tmp = tempfile::Builder::new()
            .prefix("fleetpoll-sshd-")
            .tempdir()
            .expect("create sshd temp dir");
        let dir = tmp.path().to_path_buf();
        let host_key = dir.join("host_key");
        keygen(&host_key, KeyKind::Ed25519, "");
        let client_key = dir.join("id_ed25519");
        keygen(&client_key, KeyKind::Ed25519, "");
        let authorized_keys = dir.join("authorized_keys");
        fs::copy(pub_path(&client_key), &authorized_keys).expect("write authorized_keys");
        let home = dir.join("home");
        fs::create_dir(&home).expect("mkdir home");
        let shim_dir = dir.join("shim");
        fs::create_dir(&shim_dir).expect("mkdir shim");
        let path = session_path(&docker, &dir, &shim_dir);

        let config = dir.join("sshd_config");
        let text = format!(
            "Port {{PORT}}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {hk}\n\
             AuthorizedKeysFile {ak}\n\
             PidFile {pid}\n\
             UsePAM no\n\
             StrictModes no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             PrintMotd no\n\
             PrintLastLog no\n\
             X11Forwarding no\n\
             MaxStartups 1000\n\
             MaxSessions 64\n\
             AcceptEnv LANG LC_*\n\
             LogLevel VERBOSE\n\
             SetEnv PATH={path} HOME={home}\n\
             {extra_config}\n",
            hk = host_key.display(),
            ak = authorized_keys.display(),
            pid = dir.join("sshd.pid").display(),
            home = home.display(),
        );

        let mut sshd = Sshd {
            port: 0,
            user: current_user(),
            client_key,
            host_key_pub: pub_path(&host_key),
            log: dir.join("sshd.log"),
            config,
            authorized_keys,
            host_key,
            shim_dir,
            dir,
            child: None,
            key_seq: AtomicU32::new(0),
            _tmp: tmp,
        };
        for _attempt in 0..20 {
            let port = free_port();
            fs::write(&sshd.config, text.replace("{PORT}", &port.to_string()))
                .expect("write sshd_config");
            sshd.port = port;
            match sshd.spawn() {
                Startup::Ready => return sshd,
                Startup::PortTaken => continue,
                Startup::Failed(why) => panic!("{why}"),
            }
        }
        panic!("sshd: no free port after 20 tries\n{}", sshd.log_text());
    }

    /// Puts an executable script named `name` first on the session's `PATH` (the shim
    /// directory, in the `Shim` and `Denied` modes), replacing any there: a host whose
    /// command prints whatever a test needs.
    pub fn put_tool(&self, name: &str, script: &str) {
        write_script(&self.shim_dir.join(name), script);
    }

    /// Replaces the host key with a fresh ed25519 key and restarts sshd on the same port, waiting
    /// until it is ready. Sessions already open stay up (like `systemctl restart ssh`).
    pub fn rotate_host_key(&mut self) {
        self.kill_listener();
        let _ = fs::remove_file(&self.host_key);
        let _ = fs::remove_file(&self.host_key_pub);
        keygen(&self.host_key, KeyKind::Ed25519, "");
        self.restart();
    }

    /// Starts a stopped server again on the same port (host key unchanged).
    pub fn restart(&mut self) {
        self.kill_listener();
        // The port was ours a moment ago; give a racing ephemeral client a few chances to let go.
        for _ in 0..20 {
            match self.spawn() {
                Startup::Ready => return,
                Startup::PortTaken => std::thread::sleep(Duration::from_millis(100)),
                Startup::Failed(why) => panic!("{why}"),
            }
        }
        panic!(
            "sshd: port {} stayed taken, cannot restart\n{}",
            self.port,
            self.log_text()
        );
    }

    /// Kills sshd and every session it spawned: clients see the connection drop. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Collect the tree before killing the root: orphans get reparented and vanish from it.
            let mut pids = descendants(child.id());
            pids.retain(|&p| p != child.id());
            let _ = child.kill();
            if !pids.is_empty() {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .args(pids.iter().map(|p| p.to_string()))
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = child.wait();
        }
    }

    /// A new client key pair under `dir`; returns the private key path (`.pub` beside it). With
    /// `authorized`, its public key is appended to `authorized_keys` (effective at once).
    pub fn new_client_key(
        &self,
        kind: KeyKind,
        passphrase: Option<&str>,
        authorized: bool,
    ) -> PathBuf {
        let n = self.key_seq.fetch_add(1, Ordering::SeqCst);
        let name = match kind {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Ecdsa => "ecdsa",
            KeyKind::Rsa => "rsa",
        };
        let key = self.dir.join(format!("client_{n}_{name}"));
        keygen(&key, kind, passphrase.unwrap_or(""));
        if authorized {
            let line = fs::read_to_string(pub_path(&key)).expect("read new public key");
            let mut keys = fs::read_to_string(&self.authorized_keys).expect("read authorized_keys");
            keys.push_str(&line);
            fs::write(&self.authorized_keys, keys).expect("write authorized_keys");
        }
        key
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:…`.
    pub fn host_key_fingerprint(&self) -> String {
        let out = run_ok(
            Command::new("ssh-keygen")
                .arg("-lf")
                .arg(&self.host_key_pub),
        );
        out.split_whitespace()
            .nth(1)
            .expect("ssh-keygen -lf output")
            .to_string()
    }

    /// A `known_hosts` line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`.
    pub fn known_hosts_line(&self) -> String {
        let key = fs::read_to_string(&self.host_key_pub).expect("read host key");
        let mut f = key.split_whitespace();
        let (kind, blob) = (f.next().expect("key type"), f.next().expect("key blob"));
        format!("[127.0.0.1]:{} {kind} {blob}", self.port)
    }

    /// Runs `command` through the OpenSSH client with `client_key` (no host key checking).
    pub fn ssh(&self, command: &str) -> Output {
        Command::new("ssh")
            .arg("-i")
            .arg(&self.client_key)
            .args(["-p", &self.port.to_string()])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .arg(format!("{}@127.0.0.1", self.user))
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh (openssh-client)")
    }

    /// Arguments of every `docker` call the shim has seen, oldest first (Shim and Denied modes).
    pub fn docker_calls(&self) -> Vec<String> {
        fs::read_to_string(self.shim_dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Makes every later shim `docker` call sleep `seconds` first (0 turns it off).
    pub fn set_docker_delay(&self, seconds: f64) {
        fs::write(
            self.shim_dir.join("delay"),
            if seconds > 0.0 {
                format!("{seconds}")
            } else {
                String::new()
            },
        )
        .expect("write shim delay");
    }

    /// sshd's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill_listener(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log from byte `from` on (what the current sshd process wrote; `-E` appends).
    fn log_since(&self, from: usize) -> String {
        let log = self.log_text();
        log.get(from..).unwrap_or(&log).to_string()
    }

    fn spawn(&mut self) -> Startup {
        let from = fs::metadata(&self.log)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let mut child = match Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&self.config)
            .arg("-E")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return Startup::Failed(format!("cannot run {SSHD}: {e}")),
        };
        let listening = format!("Server listening on 127.0.0.1 port {}.", self.port);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.log_since(from);
                if log.contains("Address already in use") || log.contains("Cannot bind any address")
                {
                    return Startup::PortTaken;
                }
                return Startup::Failed(format!(
                    "sshd exited with {status} before it was ready\n--- {} ---\n{log}\n--- {} ---\n{}",
                    self.log.display(),
                    self.config.display(),
                    fs::read_to_string(&self.config).unwrap_or_default()
                ));
            }
            // The log line proves *our* sshd owns the port; the banner proves it serves.
            if self.log_since(from).contains(&listening) && banner(self.port) {
                self.child = Some(child);
                return Startup::Ready;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Startup::Failed(format!(
                    "sshd on port {} not ready after {READY_TIMEOUT:?}\n--- {} ---\n{}",
                    self.port,
                    self.log.display(),
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects and reads the server's identification line (`SSH-2.0-…`).
fn banner(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while !got.contains(&b'\n') && got.len() < 256 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(b"SSH-")
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn pub_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

fn keygen(path: &Path, kind: KeyKind, passphrase: &str) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-N", passphrase, "-C", "fleetpoll-test", "-f"])
        .arg(path);
    match kind {
        KeyKind::Ed25519 => cmd.args(["-t", "ed25519"]),
        KeyKind::Ecdsa => cmd.args(["-t", "ecdsa", "-b", "256"]),
        KeyKind::Rsa => cmd.args(["-t", "rsa", "-b", "3072"]),
    };
    run_ok(cmd.stdin(Stdio::null()));
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install openssh-client)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn current_user() -> String {
    let out = run_ok(Command::new("id").arg("-un"));
    out.trim().to_string()
}

/// Single-quotes `s` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn write_script(path: &Path, body: &str) {
    fs::write(path, body).expect("write shim script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod shim script");
}

/// Builds what the mode needs and returns the session `PATH`.
fn session_path(docker: &DockerMode, dir: &Path, shim_dir: &Path) -> String {
    match docker {
        DockerMode::Shim { stats, ps } => {
            write_script(&shim_dir.join("docker"), &shim_script(shim_dir, stats, ps));
            format!("{}:{STD_PATH}", shim_dir.display())
        }
        DockerMode::Denied => {
            // No other engine either (a podman on this machine would be a usable fallback).
            write_script(&shim_dir.join("docker"), &denied_script(shim_dir));
            let tools = dir.join("tools");
            fs::create_dir(&tools).expect("mkdir tools");
            link_tools_without_docker(&tools);
            format!("{}:{}", shim_dir.display(), tools.display())
        }
        DockerMode::Missing => {
            let tools = dir.join("tools");
            fs::create_dir(&tools).expect("mkdir tools");
            link_tools_without_docker(&tools);
            tools.display().to_string()
        }
        DockerMode::PodmanHost => {
            let tools = dir.join("tools");
            fs::create_dir(&tools).expect("mkdir tools");
            link_tools_without_docker(&tools);
            let podman = ["/usr/bin/podman", "/usr/local/bin/podman"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .expect("PodmanHost: no podman (install podman)");
            std::os::unix::fs::symlink(podman, tools.join("podman")).expect("link podman");
            tools.display().to_string()
        }
        DockerMode::BusyboxHost => {
            let tools = dir.join("tools");
            fs::create_dir(&tools).expect("mkdir tools");
            link_tools_without_docker(&tools);
            let busybox = ["/bin/busybox", "/usr/bin/busybox"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .expect("BusyboxHost: no busybox (install busybox-static)");
            for applet in ["top", "free", "df"] {
                let link = tools.join(applet);
                let _ = fs::remove_file(&link);
                std::os::unix::fs::symlink(busybox, &link).expect("link applet");
            }
            tools.display().to_string()
        }
        DockerMode::Real => {
            let docker = std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|d| Path::new(d).join("docker"))
                .find(|p| p.is_file())
                .expect("DockerMode::Real: no docker client on PATH (install docker.io)");
            format!(
                "{}:{STD_PATH}",
                docker.parent().expect("docker dir").display()
            )
        }
    }
}

const SHIM_PRELUDE: &str = r#"
printf '%s\n' "$*" >>"$SHIM/calls.log"
if [ -s "$SHIM/delay" ]; then sleep "$(cat "$SHIM/delay")"; fi
# Skip global options (--context x, -H x, --debug ...) to find the subcommand.
while [ $# -gt 0 ]; do
  case "$1" in
    -H|--host|-c|--context|--config|-l|--log-level) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
"#;

fn shim_script(shim_dir: &Path, stats: &Path, ps: &Path) -> String {
    format!(
        r#"#!/bin/sh
# fleetpoll test shim for the docker CLI (tests/it/harness/sshd.rs)
SHIM={shim}
{SHIM_PRELUDE}
case "$1" in
  stats) exec cat {stats} ;;
  ps) exec cat {ps} ;;
  version)
    case "$*" in
      *format*) echo '20.10.24+dfsg1' ;;
      *) printf 'Client:\n Version:           28.2.2\n API version:       1.41 (downgraded from 1.50)\n OS/Arch:           linux/amd64\n\nServer:\n Engine:\n  Version:          20.10.24+dfsg1\n  API version:      1.41 (minimum version 1.12)\n' ;;
    esac ;;
  info)
    case "$*" in
      *format*) echo '20.10.24+dfsg1' ;;
      *) printf 'Client:\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: 3\n  Running: 2\n  Paused: 0\n  Stopped: 1\n Images: 1\n Server Version: 20.10.24+dfsg1\n Storage Driver: overlay2\n Cgroup Driver: cgroupfs\n' ;;
    esac ;;
  *) echo "docker: '$1' is not a docker command." >&2; echo "See 'docker --help'" >&2; exit 1 ;;
esac
"#,
        shim = sh_quote(&shim_dir.display().to_string()),
        stats = sh_quote(&stats.display().to_string()),
        ps = sh_quote(&ps.display().to_string()),
    )
}

fn denied_script(shim_dir: &Path) -> String {
    format!(
        r#"#!/bin/sh
# fleetpoll test shim: a user outside the docker group (tests/it/harness/sshd.rs)
SHIM={shim}
{SHIM_PRELUDE}
case "$1" in
  stats|ps|info|version|"")
    # Verbatim from docker CLI 28.2.2 run by a user outside the docker group.
    echo 'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.50/containers/json": dial unix /var/run/docker.sock: connect: permission denied' >&2
    exit 1 ;;
  *) echo "docker: '$1' is not a docker command." >&2; exit 1 ;;
esac
"#,
        shim = sh_quote(&shim_dir.display().to_string()),
    )
}

/// Symlinks every executable of the standard `PATH` into `tools`, except container CLIs, so a
/// session has the usual tools (top, free, df, awk, busybox, …) and no `docker`.
fn link_tools_without_docker(tools: &Path) {
    for d in STD_PATH.split(':') {
        let Ok(entries) = fs::read_dir(d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let n = name.to_string_lossy();
            if n.starts_with("docker") || n.starts_with("podman") || n == "nerdctl" {
                continue;
            }
            let target = e.path();
            let is_exe =
                fs::metadata(&target).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            let link = tools.join(&name);
            if is_exe.unwrap_or(false) && !link.exists() {
                let _ = symlink(&target, &link);
            }
        }
    }
}

/// `pid` and all its descendants, from `/proc/*/stat`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may contain spaces and parens, so cut at the last ')'.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
            {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == cur)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}
