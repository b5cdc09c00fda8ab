//! What a host is: probed once per SSH session (first contact and every reconnect) with a
//! fixed script, read into a [`Platform`], and used to write the poll script that host gets
//! (which `free` flags, docker or podman, with or without `sudo -n`). Pure apart from the
//! script text; the poller runs it.

use serde::{Deserialize, Serialize};

/// The probe. Prints `key=value` lines; every command is guarded so a missing tool only
/// leaves its key empty. `LC_ALL=C` keeps versions and messages in English.
pub const PROBE_SCRIPT: &str = r#"LC_ALL=C; LANG=C; export LC_ALL LANG
kv() { printf '%s=%s\n' "$1" "$2"; }
kv os "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"' | head -n 1)"
kv kernel "$(uname -sr 2>/dev/null)"
kv arch "$(uname -m 2>/dev/null)"
kv cpus "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
kv top "$(top -V 2>&1 | grep -m 1 -E 'procps|BusyBox')"
kv free "$(free -V 2>&1 | grep -m 1 -E 'procps|BusyBox')"
kv df "$(df --version 2>&1 | grep -m 1 -E 'coreutils|BusyBox')"
if command -v docker >/dev/null 2>&1; then
  kv docker_client "$(docker --version 2>&1 | head -n 1)"
  if out=$(docker version --format '{{.Server.Version}}' 2>&1); then
    kv docker_access direct; kv docker_server "$out"
  elif command -v sudo >/dev/null 2>&1 && out2=$(sudo -n docker version --format '{{.Server.Version}}' 2>/dev/null); then
    kv docker_access sudo; kv docker_server "$out2"
  else
    kv docker_access denied; kv docker_error "$(printf '%s' "$out" | head -n 1)"
  fi
fi
if command -v podman >/dev/null 2>&1; then
  kv podman_client "$(podman --version 2>&1 | head -n 1)"
  if podman ps -q >/dev/null 2>&1; then kv podman_access direct
  elif command -v sudo >/dev/null 2>&1 && sudo -n podman ps -q >/dev/null 2>&1; then kv podman_access sudo
  else kv podman_access denied; fi
fi
"#;

/// Which implementation a tool is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "version", rename_all = "snake_case")]
pub enum Tool {
    Procps(String),
    Coreutils(String),
    Busybox(String),
    /// Present but not recognised, or absent (empty).
    Unknown(String),
}

impl Tool {
    fn read(line: &str) -> Self {
        let line = line.trim();
        let version_after = |marker: &str| {
            line.split(marker)
                .nth(1)
                .map(|rest| {
                    rest.split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_end_matches(')')
                        .to_string()
                })
                .unwrap_or_default()
        };
        if line.contains("BusyBox") {
            Self::Busybox(version_after("BusyBox").trim_start_matches('v').to_string())
        } else if line.contains("procps-ng") {
            Self::Procps(format!("procps-ng {}", version_after("procps-ng")))
        } else if line.contains("procps version") {
            Self::Procps(format!("procps {}", version_after("procps version")))
        } else if line.contains("coreutils") {
            Self::Coreutils(version_after("coreutils)"))
        } else {
            Self::Unknown(line.to_string())
        }
    }

    pub fn is_busybox(&self) -> bool {
        matches!(self, Self::Busybox(_))
    }
}

/// The container engine and how this user may reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engine {
    /// `docker` or `podman`.
    pub kind: String,
    pub client: String,
    pub server: Option<String>,
    /// `direct`, `sudo` (via `sudo -n`) or `denied`.
    pub access: String,
    pub error: Option<String>,
}

/// A host's platform, as shown in the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub arch: Option<String>,
    pub cpus: Option<u32>,
    pub top: Tool,
    pub free: Tool,
    pub df: Tool,
    pub engine: Option<Engine>,
}

impl Platform {
    /// Reads the probe's `key=value` lines; unknown keys are ignored, missing ones empty.
    pub fn read(out: &str) -> Self {
        let get = |key: &str| -> Option<String> {
            out.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .map(|v| crate::text::clip(v.trim(), crate::text::MAX_FIELD_TEXT).into_owned())
                .filter(|v| !v.is_empty())
        };
        let engine = |kind: &str| -> Option<Engine> {
            // The access line is printed whenever the binary exists; `--version` may be silent.
            get(&format!("{kind}_access"))?;
            let client = get(&format!("{kind}_client")).unwrap_or_else(|| kind.to_string());
            Some(Engine {
                kind: kind.to_string(),
                client,
                server: get(&format!("{kind}_server")),
                access: get(&format!("{kind}_access")).unwrap_or_else(|| "denied".into()),
                error: get(&format!("{kind}_error")),
            })
        };
        let docker = engine("docker");
        let podman = engine("podman");
        // `docker` may be podman's docker-compatible wrapper; prefer an engine we may use.
        let docker_is_podman = docker
            .as_ref()
            .is_some_and(|d| d.client.to_ascii_lowercase().contains("podman"));
        let usable = |e: &Option<Engine>| e.as_ref().is_some_and(|e| e.access != "denied");
        let engine = match (docker, podman) {
            (Some(_), Some(p)) if docker_is_podman => Some(p),
            (Some(d), Some(p)) => Some(if !usable(&Some(d.clone())) && usable(&Some(p.clone())) {
                p
            } else {
                d
            }),
            (Some(d), None) => Some(Engine {
                kind: if docker_is_podman {
                    "podman".into()
                } else {
                    d.kind.clone()
                },
                ..d
            }),
            (None, p) => p,
        };
        Self {
            os: get("os"),
            kernel: get("kernel"),
            arch: get("arch"),
            cpus: get("cpus").and_then(|c| c.parse().ok()),
            top: Tool::read(&get("top").unwrap_or_default()),
            free: Tool::read(&get("free").unwrap_or_default()),
            df: Tool::read(&get("df").unwrap_or_default()),
            engine,
        }
    }

    /// How plain numbers in this host's `free` output are to be read.
    pub fn free_in_bytes(&self) -> bool {
        // BusyBox builds differ in whether `free -b` exists; its default KiB always does.
        !self.free.is_busybox()
    }
}

/// One line for people: `Debian GNU/Linux 12 (bookworm), procps-ng 4.0.2, coreutils 9.1, docker 28.2.2 (direct)`.
pub fn summary(p: &Platform) -> String {
    let tool = |t: &Tool| match t {
        Tool::Procps(v) => v.clone(),
        Tool::Coreutils(v) => format!("coreutils {v}"),
        Tool::Busybox(v) => format!("BusyBox {v}"),
        Tool::Unknown(v) if v.is_empty() => "unknown".into(),
        Tool::Unknown(v) => v.clone(),
    };
    let engine = p
        .engine
        .as_ref()
        .map_or("no container engine".to_string(), |e| {
            format!("{} ({})", e.client, e.access)
        });
    format!(
        "{}, top: {}, df: {}, {}",
        p.os.as_deref().unwrap_or("unknown OS"),
        tool(&p.top),
        tool(&p.df),
        engine
    )
}

/// The script every poll runs, fed to `sh -s` on standard input so that it works whatever the
/// user's login shell is. Each section is framed by markers on stdout (and its start on
/// stderr too, so error text can be attributed); the end marker carries the exit status.
/// `LC_ALL=C` fixes number formats and labels. top runs two frames one second apart because
/// procps-ng's first frame is the average since boot; process rows are dropped on the host to
/// keep the transfer small; `HOME` points nowhere so that a user's toprc (per-CPU rows, bar
/// graphs, hidden fields) cannot change the format. Without a probe (`None`) it assumes
/// procps and docker.
pub fn poll_script(platform: Option<&Platform>) -> String {
    let mut s = String::from(
        r#"LC_ALL=C; LANG=C; export LC_ALL LANG
begin() { echo "@@fleetpoll-begin $1"; echo "@@fleetpoll-begin $1" >&2; }
end() { echo "@@fleetpoll-end $1 $2"; }
begin top
{ HOME=/nonexistent top -b -n 2 -d 1; echo "@@fleetpoll-end top $?"; } | awk '/^@@fleetpoll-/ { print; next } /^ *PID / { skip = 1; next } /^top - / || /^Mem: / { skip = 0 } !skip { print }'
"#,
    );
    let free = if platform.is_none_or(Platform::free_in_bytes) {
        "free -b"
    } else {
        "free"
    };
    s.push_str(&format!("begin free; {free}; end free $?\n"));
    s.push_str("begin df; df -kP; end df $?\n");
    let engine = platform.and_then(|p| p.engine.as_ref());
    match engine {
        None if platform.is_some() => {
            s.push_str(
                "begin docker_ps; echo \"docker: command not found\" >&2; end docker_ps 127\n",
            );
        }
        None => s.push_str(
            r#"if command -v docker >/dev/null 2>&1; then
  begin docker_ps; docker ps -a --format '{{json .}}'; rc=$?; end docker_ps $rc
  if [ "$rc" -eq 0 ]; then
    begin docker_stats; docker stats --no-stream --all --format '{{json .}}'; end docker_stats $?
  fi
else
  begin docker_ps; echo "docker: command not found" >&2; end docker_ps 127
fi
"#,
        ),
        Some(e) => {
            let sudo = if e.access == "sudo" { "sudo -n " } else { "" };
            let (ps, stats) = if e.kind == "podman" {
                (
                    "ps -a --format json",
                    "stats --no-stream --all --format json",
                )
            } else {
                (
                    "ps -a --format '{{json .}}'",
                    "stats --no-stream --all --format '{{json .}}'",
                )
            };
            let bin = &e.kind;
            s.push_str(&format!(
                "begin docker_ps; {sudo}{bin} {ps}; rc=$?; end docker_ps $rc\nif [ \"$rc\" -eq 0 ]; then\n  begin docker_stats; {sudo}{bin} {stats}; end docker_stats $?\nfi\n"
            ));
        }
    }
    s
}

/// Every script this version of fleetpoll may run on a host: the probe and the poll script
/// for each platform the probe can report. A restricted key allows exactly these.
pub fn all_scripts() -> Vec<String> {
    let mut out = vec![PROBE_SCRIPT.to_string(), poll_script(None)];
    let base = |busybox: bool, engine: Option<Engine>| Platform {
        os: None,
        kernel: None,
        arch: None,
        cpus: None,
        top: Tool::Unknown(String::new()),
        free: if busybox {
            Tool::Busybox(String::new())
        } else {
            Tool::Unknown(String::new())
        },
        df: Tool::Unknown(String::new()),
        engine,
    };
    for busybox in [false, true] {
        out.push(poll_script(Some(&base(busybox, None))));
        for kind in ["docker", "podman"] {
            for access in ["direct", "sudo", "denied"] {
                let engine = Engine {
                    kind: kind.into(),
                    client: String::new(),
                    server: None,
                    access: access.into(),
                    error: None,
                };
                out.push(poll_script(Some(&base(busybox, Some(engine)))));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What fleetpoll asks a host to run; its scripts come on standard input.
pub const REMOTE_COMMAND: &str = "sh -s";

/// The `command=` of a restricted `authorized_keys` line: whatever the client asks for, the
/// server runs this wrapper. Anything but fleetpoll's own `sh -s` is refused before standard
/// input is read (a person typing `ssh -i key host id` gets the refusal, not a hang); then the
/// script is read from standard input and run only when its SHA-256 is one of [`all_scripts`].
/// No quotes inside, so it embeds as is; it needs `mktemp`, `sha256sum` and `cut` (coreutils
/// or BusyBox).
pub fn forced_command() -> String {
    let hashes: Vec<String> = all_scripts()
        .iter()
        .map(|s| crate::auth::secret_hash(s))
        .collect();
    format!(
        "sh -c 'case $SSH_ORIGINAL_COMMAND in sh[[:space:]]-s) ;; *) echo fleetpoll: refused: this key runs only fleetpoll scripts >&2; exit 126;; esac; h=$(mktemp) || exit 1; cat >$h; case $(sha256sum <$h | cut -c1-64) in {}) sh $h; rc=$?;; *) echo fleetpoll: refused: not a fleetpoll script >&2; rc=126;; esac; rm -f $h; exit $rc'",
        hashes.join("|")
    )
}

/// The line to put in the monitored user's `authorized_keys`: no forwarding, no pty, no
/// user rc, and only fleetpoll's own scripts.
pub fn authorized_line(public_key: &str, comment: &str) -> String {
    format!(
        "restrict,command=\"{}\" {public_key} {comment}",
        forced_command()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real output of PROBE_SCRIPT on the Debian 12 dev machine (docker client installed, no
    // daemon running), and a synthetic BusyBox/podman host for the other branches.
    const DEBIAN: &str = "os=Debian GNU/Linux 12 (bookworm)\nkernel=Linux 6.18.44\narch=x86_64\ncpus=2\n\
top=top from procps-ng 4.0.2\nfree=free from procps-ng 4.0.2\ndf=df (GNU coreutils) 9.1\n\
docker_client=Docker version 28.2.2, build e6534b4\ndocker_access=denied\n\
docker_error=Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n";

    #[test]
    fn debian_with_procps_and_an_unreachable_docker() {
        let p = Platform::read(DEBIAN);
        assert_eq!(p.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(p.cpus, Some(2));
        assert_eq!(p.top, Tool::Procps("procps-ng 4.0.2".into()));
        assert_eq!(p.df, Tool::Coreutils("9.1".into()));
        let e = p.engine.clone().expect("engine");
        assert_eq!((e.kind.as_str(), e.access.as_str()), ("docker", "denied"));
        assert!(p.free_in_bytes());
        let script = poll_script(Some(&p));
        assert!(script.contains("free -b;"));
        assert!(script.contains("docker ps -a --format '{{json .}}'"));
    }

    #[test]
    fn busybox_host_with_podman_through_sudo() {
        // synthetic: an Alpine host with BusyBox tools and rootful podman reached by `sudo -n`.
        let out = "os=Alpine Linux v3.20\ntop=BusyBox v1.36.1 (2024-06-10 07:11:47 UTC) multi-call binary.\n\
free=BusyBox v1.36.1 (2024-06-10 07:11:47 UTC) multi-call binary.\ndf=BusyBox v1.36.1 multi-call binary.\n\
podman_client=podman version 5.2.2\npodman_access=sudo\n";
        let p = Platform::read(out);
        assert_eq!(p.top, Tool::Busybox("1.36.1".into()));
        assert!(!p.free_in_bytes());
        let script = poll_script(Some(&p));
        assert!(script.contains("begin free; free; end free"));
        assert!(script.contains("sudo -n podman ps -a --format json"));
        assert!(script.contains("sudo -n podman stats --no-stream --all --format json"));
    }

    #[test]
    fn docker_wrapper_around_podman_is_podman() {
        // synthetic: podman-docker's wrapper answers `docker --version` as podman.
        let out = "docker_client=podman version 4.3.1\ndocker_access=direct\npodman_client=podman version 4.3.1\npodman_access=direct\n";
        assert_eq!(Platform::read(out).engine.expect("engine").kind, "podman");
        // A docker binary whose --version prints nothing is still docker.
        let out = "docker_access=direct\ndocker_server=20.10.24\n";
        assert_eq!(Platform::read(out).engine.expect("engine").kind, "docker");
    }

    #[test]
    fn the_restricted_line_allows_every_script_a_probe_can_lead_to() {
        let line = authorized_line("ssh-ed25519 AAAAC3Nza", "fleetpoll");
        assert!(line.starts_with("restrict,command=\"sh -c '"));
        assert!(
            line.ends_with("'\" ssh-ed25519 AAAAC3Nza fleetpoll"),
            "{line}"
        );
        let inner = line.split('"').nth(1).expect("command");
        assert!(!inner.contains('"'), "no double quote inside the command");
        for p in [
            DEBIAN,
            "top=BusyBox v1.36\nfree=BusyBox v1.36\npodman_access=sudo\n",
            "",
        ] {
            let script = poll_script(Some(&Platform::read(p)));
            assert!(
                inner.contains(&crate::auth::secret_hash(&script)),
                "script for {p:?} not allowed"
            );
        }
        assert!(inner.contains(&crate::auth::secret_hash(PROBE_SCRIPT)));
    }

    #[test]
    fn no_engine_means_no_container_commands() {
        let p = Platform::read("top=top from procps-ng 3.3.17\n");
        let script = poll_script(Some(&p));
        assert!(!script.contains("docker ps"));
        assert!(script.contains("end docker_ps 127"));
    }
}
