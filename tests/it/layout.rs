//! The crate's layering, checked on the source (as sysinfo's code checkers do): each module
//! has a rank, and may use only modules of a lower rank, so data flows one way
//! (inventory -> scheduler -> poll -> ssh -> parse -> model -> store -> api) and no module
//! reaches back into one that calls it. A new module gets a rank here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Leaves first. A module may name only modules of a strictly lower rank.
const RANKS: &[(&str, u8)] = &[
    // Vocabulary and primitives: import nothing of the crate.
    ("outcome", 0),
    ("parse", 0),
    ("auth", 0),
    ("vault", 0),
    ("telemetry", 0),
    ("text", 0),
    // Typed data and the transport.
    ("model", 1),
    ("probe", 1),
    ("ssh", 1),
    ("inventory", 2),
    // What history keeps and how it is summed up, over model types.
    ("history", 2),
    // Rules and their pure evaluation, over inventory and model types.
    ("alerts", 3),
    ("store", 4),
    ("activity", 5),
    ("observe", 5),
    ("config", 5),
    // One host's poll; operator actions; delivery of notifications.
    ("poll", 6),
    ("ops", 6),
    ("notify", 6),
    ("scheduler", 7),
    ("heartbeat", 7),
    ("import", 7),
    ("api", 8),
    // MCP tools answer through the API's own functions.
    ("mcp", 9),
    ("app", 10),
    ("sim", 11),
    ("cli", 12),
];

/// Pairs that the ranks would allow but the design does not: HTTP handlers read the store
/// and never reach a host themselves.
const FORBIDDEN: &[(&str, &str)] = &[("api", "poll"), ("api", "ssh"), ("api", "scheduler")];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules a file names (`crate::x`, `use crate::{x, y::z}`), outside comments.
fn named_modules(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let head = part.trim().split("::").next().unwrap_or("").trim();
                if !head.is_empty() {
                    out.push(head.to_string());
                }
            }
        } else {
            let head: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(head);
        }
    }
    out
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let own = rank(&module).unwrap_or_else(|| panic!("module '{module}' has no rank in RANKS"));
        let text = std::fs::read_to_string(file).expect("read");
        for used in named_modules(&text) {
            if used == module {
                continue;
            }
            let theirs =
                rank(&used).unwrap_or_else(|| panic!("{}: unknown module '{used}'", rel.display()));
            if theirs >= own || FORBIDDEN.contains(&(module.as_str(), used.as_str())) {
                wrong
                    .entry(rel.display().to_string())
                    .or_default()
                    .push(used);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules reaching up or across the pipeline: {wrong:#?}"
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_paths_but_not_comments() {
    let text = "use crate::{model::Snapshot, store};\nlet x = crate::poll::x();\n// crate::api in a comment\n";
    assert_eq!(named_modules(text), ["model", "store", "poll"]);
}
