//! `fleetpoll doctor`: checks one target step by step, the way a poll reaches it, and says at
//! each step what it found and, when something is wrong, what to do about it. The steps stop
//! at the first one that leaves nothing to try next (no TCP, no SSH, no login).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use super::{find, print_json};
use crate::config::Settings;
use crate::poll::{assemble, server_key};
use crate::probe::{poll_script, summary, Platform, PROBE_SCRIPT, REMOTE_COMMAND};
use crate::ssh::host_key::HostKeyCheck;
use crate::ssh::keys::{resolve, KeySource};
use crate::ssh::{ConnectParams, Session, SshError};
use crate::store::Store;
use crate::text::for_terminal;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A registered server: its address, user, key and pinned host key.
    #[arg(
        value_name = "NAME",
        required_unless_present = "host",
        conflicts_with = "host"
    )]
    pub name: Option<String>,
    /// A host that is not registered (needs --user and --key).
    #[arg(long, requires_all = ["user", "key"])]
    pub host: Option<String>,
    /// SSH port of --host.
    #[arg(long, default_value_t = 22, requires = "host")]
    pub port: u16,
    /// Login user on --host.
    #[arg(long, requires = "host")]
    pub user: Option<String>,
    /// Private key file for --host.
    #[arg(long, value_name = "FILE", requires = "host")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One step's finding.
#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ms: Option<f64>,
}

/// What is checked, however it was named.
struct Target {
    name: Option<String>,
    host: String,
    port: u16,
    user: String,
    key: Result<russh::keys::PrivateKey, String>,
    pinned: Option<String>,
}

pub(super) async fn run(
    store: Option<&Store>,
    settings: &Settings,
    args: DoctorArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let target = match (&args.name, store) {
        (Some(name), Some(store)) => {
            let s = find(store, name).await?;
            Target {
                name: Some(s.name.clone()),
                key: server_key(&s, &settings.key_dir()).map_err(|e| e.to_string()),
                host: s.host,
                port: s.port,
                user: s.user,
                pinned: s.host_key_fingerprint,
            }
        }
        _ => {
            let (Some(host), Some(user), Some(key)) = (args.host, args.user, args.key) else {
                anyhow::bail!("name a registered server, or give --host, --user and --key");
            };
            Target {
                name: None,
                key: resolve(KeySource::File(&key), None).map_err(|e| e.to_string()),
                host,
                port: args.port,
                user,
                pinned: None,
            }
        }
    };
    let steps = check(&target, settings).await;
    let failed = steps.iter().any(|s| s.status == Status::Fail);
    let shown = format!("{}@{}:{}", target.user, target.host, target.port);
    if json {
        print_json(&serde_json::json!({
            "target": shown,
            "server": target.name,
            "ok": !failed,
            "steps": steps,
        }));
    } else {
        println!("fleetpoll doctor: {}", for_terminal(&shown));
        for s in &steps {
            let mark = match s.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
            };
            let ms =
                s.ms.map(|m| {
                    if m < 10.0 {
                        format!(" ({m:.1} ms)")
                    } else {
                        format!(" ({m:.0} ms)")
                    }
                })
                .unwrap_or_default();
            println!("  {mark} {:<11} {}{ms}", s.step, for_terminal(&s.detail));
            if let Some(fix) = &s.fix {
                println!("       {:<11} fix: {}", "", for_terminal(fix));
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn ok(step: &'static str, detail: String, ms: Option<f64>) -> Step {
    Step {
        step,
        status: Status::Ok,
        detail,
        fix: None,
        ms,
    }
}

fn bad(step: &'static str, status: Status, detail: String, fix: impl Into<String>) -> Step {
    Step {
        step,
        status,
        detail,
        fix: Some(fix.into()),
        ms: None,
    }
}

fn ms_since(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

async fn check(t: &Target, settings: &Settings) -> Vec<Step> {
    let mut steps = Vec::new();
    let connect_timeout = Duration::from_secs(settings.connect_timeout_secs);
    let command_timeout = Duration::from_secs(settings.command_timeout_secs);
    let addr = format!("{}:{}", t.host, t.port);

    // 1. TCP, and 2. the server's identification line, on a connection of their own.
    let started = Instant::now();
    let stream = tokio::time::timeout(
        connect_timeout,
        tokio::net::TcpStream::connect((t.host.as_str(), t.port)),
    )
    .await;
    let mut stream = match stream {
        Ok(Ok(s)) => {
            steps.push(ok(
                "reach",
                format!("TCP to {addr}"),
                Some(ms_since(started)),
            ));
            s
        }
        Ok(Err(e)) => {
            steps.push(bad("reach", Status::Fail, format!("cannot reach {addr}: {e}"),
                format!("check the address and port, that sshd runs there, and that a firewall lets this machine through (`nc -vz {} {}`)", t.host, t.port)));
            return steps;
        }
        Err(_) => {
            steps.push(bad("reach", Status::Fail, format!("no answer from {addr} within {}s", connect_timeout.as_secs()),
                "a firewall that drops packets, or a wrong address; raise connect_timeout_secs only for a slow link"));
            return steps;
        }
    };
    let mut first = Vec::with_capacity(256);
    let banner = tokio::time::timeout(connect_timeout, async {
        let mut buf = [0u8; 256];
        while !first.contains(&b'\n') && first.len() < 255 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => first.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    drop(stream);
    let line = String::from_utf8_lossy(&first)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if banner.is_ok() && line.starts_with("SSH-2.0-") {
        steps.push(ok("banner", line, None));
    } else {
        let said = if line.is_empty() {
            "nothing".to_string()
        } else {
            format!("'{line}'")
        };
        steps.push(bad(
            "banner",
            Status::Fail,
            format!("not an SSH server: it said {said}"),
            "check the port: something other than sshd answers there",
        ));
        return steps;
    }

    // 3. The key fleetpoll would log in with.
    let key = match &t.key {
        Ok(k) => {
            let fp = k.public_key().fingerprint(russh::keys::HashAlg::Sha256);
            steps.push(ok(
                "key",
                format!("{} key {fp}", k.algorithm().as_str()),
                None,
            ));
            k.clone()
        }
        Err(e) => {
            steps.push(bad("key", Status::Fail, format!("cannot load the private key: {e}"),
                "check the key's path and permissions (readable by the poller's user), and the passphrase variable if it has one"));
            return steps;
        }
    };

    // 4. SSH: the host key against the pin, then the login.
    let params = ConnectParams {
        host: t.host.clone(),
        port: t.port,
        user: t.user.clone(),
        key: Arc::new(key),
        pinned: t.pinned.clone(),
        connect_timeout,
        auth_timeout: Duration::from_secs(settings.auth_timeout_secs),
    };
    let started = Instant::now();
    let session = match Session::connect(&params).await {
        Ok(s) => s,
        Err(SshError::HostKeyChanged { pinned, presented }) => {
            let trust = t
                .name
                .as_deref()
                .map_or("fleetpoll server trust NAME".to_string(), |n| {
                    format!("fleetpoll server trust {n}")
                });
            steps.push(bad("host key", Status::Fail, format!("changed: pinned {pinned}, presented {presented}; nothing was sent"),
                format!("if the host was reinstalled or its key rotated on purpose, check the new key on the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then `{trust}`; otherwise someone may be in the middle")));
            return steps;
        }
        Err(SshError::AuthFailed { user }) => {
            steps.push(ok("host key", "accepted".into(), None));
            steps.push(bad("login", Status::Fail, format!("'{user}' refused this key"),
                format!("on the host, add the line `fleetpoll key authorized-line` prints to ~{user}/.ssh/authorized_keys (mode 600, the directory 700, owned by {user})")));
            return steps;
        }
        Err(e) => {
            steps.push(bad("ssh", Status::Fail, e.to_string(),
                "sshd may limit this client (MaxStartups, AllowUsers) or offer no algorithm in common; its log (journalctl -u ssh) says which"));
            return steps;
        }
    };
    let login_ms = ms_since(started);
    steps.push(match &session.host_key {
        HostKeyCheck::Match(fp) => ok("host key", format!("matches the pinned {fp}"), None),
        HostKeyCheck::FirstSeen(fp) if t.name.is_some() => bad("host key", Status::Warn,
            format!("not pinned yet; the next poll pins {fp}"),
            "compare it with the host's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there) before the first poll"),
        HostKeyCheck::FirstSeen(fp) => ok("host key", format!("presented {fp} (registering the server pins it at the first poll)"), None),
        // `Session::connect` returns a changed key as an error (above), never as a session.
        HostKeyCheck::Changed { presented, .. } => bad("host key", Status::Fail,
            format!("changed: presented {presented}"), "fleetpoll server trust NAME"),
    });
    steps.push(ok("login", format!("as '{}'", t.user), Some(login_ms)));

    // 5. The probe: what the host has, as a poll will see it.
    let started = Instant::now();
    let platform = match session
        .exec(REMOTE_COMMAND, PROBE_SCRIPT.as_bytes(), command_timeout)
        .await
    {
        Ok(out) if out.exit_status == Some(0) => {
            let p = Platform::read(&String::from_utf8_lossy(&out.stdout));
            steps.push(ok("probe", summary(&p), Some(ms_since(started))));
            Some(p)
        }
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            steps.push(bad("probe", Status::Fail, format!("the probe exited {:?}: {err}", out.exit_status),
                "a restricted key line from an older fleetpoll refuses this version's scripts: replace it with `fleetpoll key authorized-line`"));
            None
        }
        Err(e) => {
            steps.push(bad(
                "probe",
                Status::Fail,
                e.to_string(),
                "the host's `sh` did not run the probe; check the account's shell",
            ));
            None
        }
    };

    // 6. Whether the key can do more than fleetpoll needs.
    match session
        .exec("echo fleetpoll-doctor", b"", command_timeout)
        .await
    {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("fleetpoll-doctor") => {
            steps.push(bad("restricted", Status::Warn, "this key runs any command on the host".into(),
                format!("restrict it: replace its line in ~{}/.ssh/authorized_keys with the one `fleetpoll key authorized-line` prints (only fleetpoll's scripts, no forwarding, no pty)", t.user)));
        }
        Ok(_) => steps.push(ok(
            "restricted",
            "the key runs only fleetpoll's scripts".into(),
            None,
        )),
        Err(e) => steps.push(bad(
            "restricted",
            Status::Warn,
            format!("could not tell: {e}"),
            "run `ssh -i KEY USER@HOST id`: a restricted key is refused",
        )),
    }

    // 7. One poll, timed as the host serves it.
    if let Some(p) = &platform {
        let started = Instant::now();
        let script = poll_script(Some(p));
        match session
            .exec(REMOTE_COMMAND, script.as_bytes(), command_timeout)
            .await
        {
            Ok(out) => {
                let ms = ms_since(started);
                match assemble(&out, p.free_in_bytes()) {
                    Ok(snap) if snap.problems.is_empty() => steps.push(ok("poll",
                        format!("every section read ({} mounts, {} containers); one poll's wall time on the host", snap.disks.len(), snap.containers.len()), Some(ms))),
                    Ok(snap) => {
                        let problems: Vec<String> = snap.problems.iter().map(|p| format!("{} {}: {}", p.section, p.kind().as_str(), p.message())).collect();
                        let mut step = bad("poll", Status::Warn, problems.join("; "),
                            "`fleetpoll server last-output NAME` shows the raw text after a poll; a section a tool cannot serve stays empty while the others are stored");
                        step.ms = Some(ms);
                        steps.push(step);
                    }
                    Err(e) => steps.push(bad("poll", Status::Fail, e.to_string(),
                        "none of top, free and df gave readable output: `fleetpoll remote-script` prints the script to try by hand")),
                }
            }
            Err(e) => steps.push(bad(
                "poll",
                Status::Fail,
                e.to_string(),
                "raise command_timeout_secs if the host is merely slow",
            )),
        }
    }
    session.close().await;
    steps
}
