//! Issue #16, packaging: the systemd unit in `packaging/` checked by systemd's own tools, and
//! the shell completions and man page generated from the CLI.
//!
//! The unit is checked offline (`systemd-analyze verify` and `security --offline=true`): no
//! running systemd is needed, so these run in a container too. Without `systemd-analyze` the
//! tests fail naming the package, never skip: scripts/test.sh installs it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

use crate::common::{assert_ok, fleetpoll};

/// The highest overall exposure `systemd-analyze security --offline=true` may give the unit:
/// 1.1 ("OK") measured with systemd 252 (Debian 12). Its grade is the sum of the gaps in
/// `ACCEPTED_GAPS`, each of which the service needs.
const MAX_EXPOSURE: f64 = 1.1;

/// The checks of `systemd-analyze security` the unit fails on purpose, by name, and why.
const ACCEPTED_GAPS: &[(&str, &str)] = &[
    (
        "PrivateNetwork=",
        "it polls other hosts over SSH, sends mail and webhooks, and listens for the API",
    ),
    (
        "RestrictAddressFamilies=~AF_(INET|INET6)",
        "the same network, over IPv4 and IPv6",
    ),
    (
        "RestrictAddressFamilies=~AF_UNIX",
        "NSS lookups (nscd, systemd-resolved) and PostgreSQL on its local socket",
    ),
    (
        "IPAddressDeny=",
        "the monitored hosts, mail servers and webhook receivers can be anywhere",
    ),
    (
        "ProcSubset=",
        "ProcSubset=pid would hide /proc/sys/kernel/hostname, which names the poller",
    ),
    (
        "RootDirectory=/RootImage=",
        "a chroot would need its own copy of the resolver's and TLS's files",
    ),
    (
        "DeviceAllow=",
        "char-rtc:r is what ProtectClock= itself leaves readable",
    ),
];

/// Lines of `[Service]` that are not hardening: how to run it and where its files are (those
/// are checked by `the_unit_keeps_the_database_and_master_key_in_the_state_directory`).
const NOT_HARDENING: &[&str] = &[
    "Type",
    "ExecStart",
    "Restart",
    "RestartSec",
    "Group",
    "StateDirectory",
    "StateDirectoryMode",
    "ConfigurationDirectory",
    "WorkingDirectory",
    "Environment",
    "LimitNOFILE",
];

/// Hardening lines whose removal `systemd-analyze security` does not grade, and why each is
/// there anyway.
const NOT_GRADED: &[(&str, &str)] = &[
    (
        "SystemCallErrorNumber",
        "a filtered call fails with EPERM instead of killing the process: a clean error in \
         the log rather than SIGSYS",
    ),
    (
        "AmbientCapabilities",
        "says outright that no capability is handed over (also the default)",
    ),
    (
        "DevicePolicy",
        "PrivateDevices= implies it; kept so the unit reads the same without it",
    ),
];

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/fleetpoll.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).expect("read packaging/fleetpoll.service")
}

/// `systemd-analyze`, or a failure naming the package that has it.
fn systemd_analyze() -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("systemd-analyze").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "systemd-analyze is not installed: it is in Debian's `systemd` package \
         (apt-get install systemd; scripts/test.sh installs it)"
    );
    Command::new("systemd-analyze")
}

/// The unit as shipped, with `ExecStart` pointing at the binary under test, written as
/// `fleetpoll.service` (the unit's name comes from the file name) in `dir`.
///
/// Rewritten because `verify` checks that the executable exists and /usr/local/bin/fleetpoll
/// is only there once installed; nothing else in the unit is changed.
fn unit_for_tests(dir: &Path, text: &str) -> PathBuf {
    let shipped = "ExecStart=/usr/local/bin/fleetpoll ";
    assert_eq!(
        text.lines().filter(|l| l.starts_with(shipped)).count(),
        1,
        "the unit starts /usr/local/bin/fleetpoll, once"
    );
    let text = text.replace(
        shipped,
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_fleetpoll")),
    );
    let path = dir.join("fleetpoll.service");
    std::fs::write(&path, text).expect("write unit");
    path
}

/// The checks `systemd-analyze security --offline=true` fails for the unit in `text`, and its
/// overall exposure.
fn security(text: &str) -> (BTreeSet<String>, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_for_tests(dir.path(), text);
    let out = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager", "--json=short"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    assert_ok(&out);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let failed = checks
        .as_array()
        .expect("a list of checks")
        .iter()
        .filter(|c| c["exposure"].as_str().is_some_and(|e| e != "0.0"))
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect();
    // The JSON has no total; the table's last line does:
    // "→ Overall exposure level for fleetpoll.service: 1.1 OK 🙂".
    let out = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    assert_ok(&out);
    let table = String::from_utf8_lossy(&out.stdout);
    let exposure = table
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for fleetpoll.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{table}"));
    (failed, exposure)
}

/// `KEY=value` lines of the unit's `[Service]` section.
fn service_lines(text: &str) -> Vec<(String, String)> {
    let mut in_service = false;
    let mut lines = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with('[') {
            in_service = l == "[Service]";
        } else if in_service && !l.is_empty() && !l.starts_with('#') {
            let (k, v) = l.split_once('=').expect("KEY=value");
            lines.push((k.to_string(), v.to_string()));
        }
    }
    lines
}

#[test]
fn the_service_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_for_tests(dir.path(), &unit_text());
    // --man=no: verify would run `man fleetpoll` for Documentation=man:fleetpoll(1), a page
    // installed by the README's steps, not on a test machine.
    let out = systemd_analyze()
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    // A misspelt or unknown key is only a warning, with exit status 0.
    assert!(stderr.trim().is_empty(), "verify warned:\n{stderr}");
}

#[test]
fn the_service_units_exposure_is_low_and_only_the_accepted_gaps_remain() {
    let (failed, exposure) = security(&unit_text());
    let accepted: BTreeSet<String> = ACCEPTED_GAPS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        failed, accepted,
        "systemd-analyze security --offline=true packaging/fleetpoll.service fails other checks \
         than the accepted ones"
    );
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} is over {MAX_EXPOSURE}"
    );
}

/// Each hardening line is there for a check: taking any one out makes `systemd-analyze
/// security` fail one more (or is one of the few it does not grade, listed with why).
#[test]
fn removing_any_hardening_line_from_the_unit_is_seen() {
    let text = unit_text();
    let (baseline, _) = security(&text);
    let mut unseen = Vec::new();
    let mut keys: Vec<String> = service_lines(&text)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !NOT_HARDENING.contains(&k.as_str()))
        .collect();
    keys.dedup();
    assert!(keys.len() > 25, "hardening lines: {keys:?}");
    for key in &keys {
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{key}=")))
            .map(|l| format!("{l}\n"))
            .collect();
        let (failed, _) = security(&without);
        let graded = !failed.is_subset(&baseline);
        let listed = NOT_GRADED.iter().any(|(k, _)| k == key);
        if graded == listed {
            unseen.push(format!(
                "{key}: {}",
                if graded {
                    "graded, yet listed in NOT_GRADED"
                } else {
                    "removing it changes no check: list it in NOT_GRADED with why, or drop it"
                }
            ));
        }
    }
    assert!(unseen.is_empty(), "{unseen:#?}");
}

/// The service's database and master key land in its StateDirectory, and its config is read
/// from its ConfigurationDirectory, whatever the config file says about paths.
#[test]
fn the_unit_keeps_the_database_and_master_key_in_the_state_directory() {
    let lines = service_lines(&unit_text());
    let one = |key: &str| {
        let v: Vec<&String> = lines
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(v.len(), 1, "{key}= once: {v:?}");
        v[0].clone()
    };
    let state = Path::new("/var/lib").join(one("StateDirectory"));
    let etc = Path::new("/etc").join(one("ConfigurationDirectory"));
    assert_eq!(state, Path::new("/var/lib/fleetpoll"));
    assert_eq!(Path::new(&one("WorkingDirectory")), state);

    // The settings `serve` gets: the shipped config (what README says to copy into /etc),
    // then the unit's environment, exactly as Settings::load applies them.
    let exec: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(String::from)
        .collect();
    let config = etc.join("fleetpoll.toml");
    assert_eq!(
        exec[1..],
        [
            "--config".to_string(),
            config.display().to_string(),
            "serve".to_string()
        ],
        "ExecStart"
    );
    let env: Vec<(String, String)> = lines
        .iter()
        .filter(|(k, _)| k == "Environment")
        .map(|(_, v)| {
            let (k, v) = v.split_once('=').expect("Environment=NAME=value");
            (k.to_string(), v.to_string())
        })
        .collect();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fleetpoll.toml");
    let settings =
        fleetpoll::config::Settings::load(Some(&shipped), env).expect("the unit's settings load");
    assert_eq!(
        settings.database(),
        fleetpoll::store::Location::Sqlite(state.join("fleetpoll.db"))
    );
    assert_eq!(settings.key_dir(), state, "master.key's directory");
    // PostgreSQL in the config moves the database, not the master key.
    let mut pg = settings.clone();
    pg.set_database("postgres://fleetpoll@db.example/fleetpoll");
    assert_eq!(pg.key_dir(), state);
}

/// Subcommand names of the CLI as the library defines it, and as the binary's --help lists
/// them (the same, or the generated files would describe another program).
fn subcommands() -> Vec<String> {
    let names: Vec<String> = fleetpoll::cli::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    let out = fleetpoll().arg("--help").output().expect("run --help");
    assert_ok(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|n| n != "help")
        .collect();
    assert_eq!(names, listed, "library's subcommands vs --help");
    assert!(names.iter().any(|n| n == "completions") && names.iter().any(|n| n == "man"));
    names
}

#[test]
fn bash_completions_name_every_subcommand_and_bash_accepts_them() {
    let out = fleetpoll()
        .args(["completions", "bash"])
        .output()
        .expect("run");
    assert_ok(&out);
    let script = String::from_utf8(out.stdout).expect("UTF-8");
    // clap_complete's bash script has one state per command path, `fleetpoll,NAME)`.
    let missing: Vec<String> = subcommands()
        .into_iter()
        .filter(|n| !script.contains(&format!("fleetpoll,{n})")))
        .collect();
    assert!(missing.is_empty(), "not completed: {missing:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fleetpoll.bash");
    std::fs::write(&file, &script).expect("write");
    let out = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("run bash -n");
    assert_ok(&out);
}

#[test]
fn zsh_and_fish_completions_are_generated_and_an_unknown_shell_is_refused() {
    for (shell, first) in [
        ("zsh", "#compdef fleetpoll"),
        ("fish", "complete -c fleetpoll"),
    ] {
        let out = fleetpoll()
            .args(["completions", shell])
            .output()
            .expect("run");
        assert_ok(&out);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(first), "{shell}: {script:.200}");
        assert!(script.contains("remote-script"), "{shell}");
    }
    let out = fleetpoll()
        .args(["completions", "tcsh"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_man_page_starts_with_th_and_names_every_subcommand() {
    let out = fleetpoll().arg("man").output().expect("run");
    assert_ok(&out);
    let page = String::from_utf8(out.stdout).expect("UTF-8");
    // clap_mangen opens with roff requests (`.ie`/`.el` defining the apostrophe string), which
    // print nothing; the first macro is the title.
    let first_macro = page
        .lines()
        .find(|l| !(l.starts_with(".ie ") || l.starts_with(".el ") || l.starts_with(".\\\"")))
        .expect("a line");
    assert!(first_macro.starts_with(".TH fleetpoll 1 "), "{first_macro}");
    // roff writes a hyphen as `\-`.
    let text = page.replace("\\-", "-");
    let section = text
        .split_once(".SH SUBCOMMANDS")
        .map(|(_, s)| s)
        .expect("a SUBCOMMANDS section");
    let missing: Vec<String> = subcommands()
        .into_iter()
        .filter(|n| !section.contains(&format!("fleetpoll-{n}(1)")))
        .collect();
    assert!(missing.is_empty(), "not in the man page: {missing:?}");

    // Optional: man-db renders it without complaint where it is installed.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fleetpoll.1");
    std::fs::write(&file, &page).expect("write");
    match Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
    {
        Ok(out) => {
            assert_ok(&out);
            let shown = String::from_utf8_lossy(&out.stdout);
            assert!(shown.contains("remote-script"), "{shown:.400}");
        }
        Err(e) => eprintln!("man -l not run ({e}): rendering not checked"),
    }
}

#[test]
fn man_out_dir_writes_a_page_for_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = fleetpoll()
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_ok(&out);
    fn paths(cmd: &clap::Command, prefix: &str, all: &mut BTreeSet<String>) {
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            if sub.get_name() == "help" {
                continue;
            }
            let name = format!("{prefix}-{}", sub.get_name());
            all.insert(format!("{name}.1"));
            paths(sub, &name, all);
        }
    }
    let mut expected = BTreeSet::from(["fleetpoll.1".to_string()]);
    paths(&fleetpoll::cli::Cli::command(), "fleetpoll", &mut expected);
    let written: BTreeSet<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, expected);
    assert!(expected.contains("fleetpoll-server-add.1"));
}
