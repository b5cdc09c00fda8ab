//! Parser throughput (bytes of command output per second), for issue #4.
//!
//! Two groups per command:
//! - `fixtures/<command>`: every real capture under `fixtures/<command>/`, each parsed once per
//!   iteration. Small inputs, so per-call overhead counts; refused fixtures (the BusyBox-free
//!   `docker ps` table, top's bar graphs) take their error path.
//! - `1MB/<command>`: one input of about 1 MB built from the captures, where the format allows
//!   it: top frames one after another (the parser reads every line, keeps the last frame),
//!   `df -kP` rows under one header (mount points made unique so none is dropped as a
//!   duplicate), `docker stats`/`docker ps` JSON lines (a host with thousands of containers).
//!   `free` has one `Mem:` row by nature, so it has only the first group.
//!
//! Run: `cargo bench --bench parsers -- --warm-up-time 1 --measurement-time 3`; results and
//! machine in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fleetpoll::parse::{df, docker_ps, docker_stats, free, top};

const TARGET_BYTES: usize = 1 << 20;

/// The captures under `fixtures/<dir>/`, sorted by name.
fn fixtures(dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir);
    let mut paths: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// Repeats `unit` until the text reaches about 1 MB.
fn repeat_to_1mb(unit: &str) -> String {
    let copies = TARGET_BYTES.div_ceil(unit.len().max(1));
    unit.repeat(copies)
}

/// All procps and BusyBox frames that parse, concatenated, then repeated.
fn big_top() -> String {
    let mut unit = String::new();
    for text in fixtures("top") {
        if top::parse(&text).is_ok() {
            unit.push_str(&text);
            if !text.ends_with('\n') {
                unit.push('\n');
            }
        }
    }
    repeat_to_1mb(&unit)
}

/// The `df -kP` header, then the rows of the poller's capture again and again with a unique
/// suffix on each mount point.
fn big_df() -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/df/coreutils-9.1-kP.txt"),
    )
    .expect("df fixture");
    let mut lines = text.lines();
    let mut out = String::new();
    out.push_str(lines.next().expect("header"));
    out.push('\n');
    let rows: Vec<&str> = lines.collect();
    let mut n = 0u64;
    while out.len() < TARGET_BYTES {
        for row in &rows {
            out.push_str(row);
            out.push_str(&format!("/{n}\n"));
            n += 1;
        }
    }
    out
}

/// JSON-lines captures (`{{json .}}`) of a directory, concatenated, then repeated.
fn big_json_lines(dir: &str) -> String {
    let unit: String = fixtures(dir)
        .into_iter()
        .filter(|t| t.trim_start().starts_with('{'))
        .collect();
    repeat_to_1mb(&unit)
}

fn bench_fixtures(c: &mut Criterion) {
    type Parse = fn(&str) -> bool;
    let commands: [(&str, Parse); 5] = [
        ("top", |t| top::parse(t).is_ok()),
        ("free", |t| {
            free::parse_with_unit(t, free::Unit::Kibibytes).is_ok()
        }),
        ("df", |t| df::parse(t).is_ok()),
        ("docker_stats", |t| docker_stats::parse(t).is_ok()),
        ("docker_ps", |t| docker_ps::parse(t).is_ok()),
    ];
    let mut group = c.benchmark_group("fixtures");
    for (dir, parse) in commands {
        let texts = fixtures(dir);
        let bytes: usize = texts.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(dir, |b| {
            b.iter(|| {
                for text in &texts {
                    black_box(parse(black_box(text)));
                }
            })
        });
    }
    group.finish();
}

fn bench_1mb(c: &mut Criterion) {
    let mut group = c.benchmark_group("1MB");
    let top_input = big_top();
    assert!(top::parse(&top_input).is_ok());
    group.throughput(Throughput::Bytes(top_input.len() as u64));
    group.bench_function("top", |b| b.iter(|| top::parse(black_box(&top_input))));

    let df_input = big_df();
    assert!(df::parse(&df_input).is_ok());
    group.throughput(Throughput::Bytes(df_input.len() as u64));
    group.bench_function("df", |b| b.iter(|| df::parse(black_box(&df_input))));

    let stats_input = big_json_lines("docker_stats");
    assert!(docker_stats::parse(&stats_input).is_ok());
    group.throughput(Throughput::Bytes(stats_input.len() as u64));
    group.bench_function("docker_stats", |b| {
        b.iter(|| docker_stats::parse(black_box(&stats_input)))
    });

    let ps_input = big_json_lines("docker_ps");
    assert!(docker_ps::parse(&ps_input).is_ok());
    group.throughput(Throughput::Bytes(ps_input.len() as u64));
    group.bench_function("docker_ps", |b| {
        b.iter(|| docker_ps::parse(black_box(&ps_input)))
    });
    group.finish();
}

criterion_group!(benches, bench_fixtures, bench_1mb);
criterion_main!(benches);
