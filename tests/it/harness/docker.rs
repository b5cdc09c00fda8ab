//! The real Docker engine (`RECIPES.md` §1): is it usable, a registry-free `busybox:local` image,
//! and containers that clean up after themselves. `scripts/test.sh` starts dockerd (as root) via
//! `scripts/docker-engine.sh`; tests that need it call [`engine`] first and skip with its reason.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The image every [`Container`] runs, imported from busybox-static's `/bin/busybox`.
pub const IMAGE: &str = "busybox:local";
/// Label on every container the harness creates, so `scripts/docker-engine.sh stop` can sweep them.
pub const LABEL: &str = "fleetpoll.test=1";

/// Runs `docker ARGS`; stdout on success, a readable error otherwise.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "docker {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `Ok` when `docker info` works; otherwise why not (to print when skipping a test).
pub fn engine() -> Result<(), String> {
    let err = match docker(&["info", "--format", "{{.ServerVersion}}"]) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if !Path::new("/usr/sbin/dockerd").exists() && !Path::new("/usr/bin/dockerd").exists() {
        return Err(
            "docker.io not installed (no dockerd; scripts/test.sh installs it as root)".into(),
        );
    }
    if !super::is_root() {
        return Err(format!(
            "not root: scripts/test.sh starts dockerd only as root ({err})"
        ));
    }
    Err(format!(
        "dockerd not running (run `bash scripts/docker-engine.sh start`): {err}"
    ))
}

static IMAGE_LOCK: Mutex<()> = Mutex::new(());

/// Imports `busybox:local` from busybox-static's `/bin/busybox` unless it exists already.
pub fn ensure_busybox_image() -> Result<(), String> {
    let _guard = IMAGE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]).is_ok() {
        return Ok(());
    }
    let installed = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "busybox-static"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
        .unwrap_or(false);
    // The dynamic `busybox` package would give an image without libc: insist on the static one.
    if !installed || !Path::new("/bin/busybox").exists() {
        return Err("busybox-static not installed (needed to build busybox:local)".into());
    }
    let tmp = tempfile::Builder::new()
        .prefix("fleetpoll-rootfs-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let root = tmp.path();
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| format!("mkdir rootfs/{d}: {e}"))?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .map_err(|e| format!("copy busybox: {e}"))?;
    // `busybox --install -s` rather than a loop over `--list`: the list contains `busybox` itself.
    let st = Command::new("chroot")
        .arg(root)
        .args(["/bin/busybox", "--install", "-s", "/bin"])
        .status()
        .map_err(|e| format!("chroot: {e}"))?;
    if !st.success() {
        return Err(format!(
            "chroot {} busybox --install failed: {st}",
            root.display()
        ));
    }
    let out = Command::new("sh")
        .args([
            "-c",
            r#"tar -C "$1" -c . | docker import -c 'CMD ["/bin/sh"]' - "$2""#,
            "sh",
        ])
        .arg(root)
        .arg(IMAGE)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker import: {e}"))?;
    docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .map(|_| ())
        .map_err(|_| {
            format!(
                "docker import {IMAGE} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
}

/// A busybox container, removed (`docker rm -f`) on drop.
#[derive(Debug)]
pub struct Container {
    pub name: String,
    /// Full 64-hex id; `docker stats` shows the first 12.
    pub id: String,
}

impl Container {
    /// `docker run -d --network none --name NAME OPTS busybox:local CMD…`, after removing any
    /// leftover container of that name. E.g. `Container::run("idle", &["-m", "256m"], &["sleep", "100000"])`.
    pub fn run(name: &str, opts: &[&str], cmd: &[&str]) -> Result<Container, String> {
        ensure_busybox_image()?;
        let _ = docker(&["rm", "-f", name]);
        let mut args = vec![
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            LABEL,
            "--name",
            name,
        ];
        args.extend_from_slice(opts);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        let id = docker(&args)?.trim().to_string();
        Ok(Container {
            name: name.to_string(),
            id,
        })
    }

    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    pub fn pause(&self) -> Result<(), String> {
        docker(&["pause", &self.id]).map(|_| ())
    }

    pub fn unpause(&self) -> Result<(), String> {
        docker(&["unpause", &self.id]).map(|_| ())
    }

    /// Waits for the container to exit; returns its exit code.
    pub fn wait(&self) -> Result<i32, String> {
        let out = docker(&["wait", &self.id])?;
        out.trim()
            .parse()
            .map_err(|e| format!("docker wait printed {out:?}: {e}"))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
