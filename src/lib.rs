//! fleetpoll: an agentless fleet monitor.
//!
//! Layout, in the order data flows through it:
//! inventory (what to poll) -> scheduler (when, how many at once) -> poll (one host)
//! -> ssh (bytes over russh) -> parse (text -> typed reports) -> model (rows)
//! -> store (SQLite) -> api (JSON over HTTP, dashboard). The activity log is written by the
//! scheduler, the CLI and the API through `activity`, and nowhere else.
//!
//! Modules are declared below in that order, then the ones around it. A stage calls the
//! stages after it and uses the shared types (`inventory`'s servers, `model`'s rows,
//! `outcome`'s words), never a module that calls it: `store` knows nothing of `poll`, `api`
//! never reaches a host. `tests/it/layout.rs` ranks every module and checks this on the
//! source.
#![forbid(unsafe_code)]

// The pipeline.

/// Alert rules, their alerts, and the pure evaluation of a poll against them.
pub mod alerts;
/// axum router, handlers and the HTTP error mapping.
pub mod api;
/// What the history keeps: series kinds, fixed-point fields, tiers and rollups, and the
/// chunk codec; no SQL.
pub mod history;
/// Validated server registrations: host, port, user, key reference.
pub mod inventory;
/// MCP for assistants (issue #15): the API's answers as tools, over stdio and `/mcp`.
pub mod mcp;
/// Stored shapes of a poll: server, disk and container samples, section problems.
pub mod model;
/// Notification channels and the dispatcher that groups alert intents into notifications
/// and delivers them with retries (issue #13).
pub mod notify;
/// Pure parsers for top, free, df, docker stats and docker ps output.
pub mod parse;
/// One host's poll: its SSH session, one exec of the script, and the pure assembly of the
/// output into a snapshot.
pub mod poll;
/// What a host runs (BusyBox or procps, docker or podman), and the poll script it gets.
pub mod probe;
/// Interval loop, bounded fan-out, the writer and the status state machine.
pub mod scheduler;
/// russh client wrapper with trust-on-first-use host keys; the one resolver of private keys.
pub mod ssh;
/// SQLite through sqlx: the only module with SQL.
pub mod store;

// Beside the pipeline.

/// Typed activity events; the only writer of the activity log.
pub mod activity;
/// Roles, password hashing, bearer secrets and the failed-login limiter.
pub mod auth;
/// The outbound heartbeat: a POST every interval, for a dead man's switch outside.
pub mod heartbeat;
/// `server import`: register servers from a CSV inventory, row by row; owns the CSV format.
pub mod import;
/// The poller's own counters and histograms, rendered for Prometheus.
pub mod observe;
/// Operator actions (add, edit, remove, trust) shared by the CLI and the API.
pub mod ops;
/// The words for what happened (poll outcomes, section problems, severities): one enum each.
pub mod outcome;
/// Host text made safe to keep and show: clipped with the cut said, terminal escapes shown.
pub mod text;
/// Private keys at rest, sealed under a master key kept outside the database.
pub mod vault;

// Around it: settings, wiring, the command line.

/// Wiring for `serve`: store, scheduler and API under one shutdown token.
pub mod app;
/// The command line: one subcommand per operator task, a file per command family.
pub mod cli;
/// Settings: TOML file, then `FLEETPOLL_*` environment, then flags; validated once.
pub mod config;
/// A simulated fleet of SSH servers in one process, for the demo, tests and benchmarks.
pub mod sim;
/// tracing subscriber setup; logs always go to stderr.
pub mod telemetry;
