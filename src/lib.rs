//! fleetpoll: an agentless fleet monitor.
//!
//! Layout, in the order data flows through it:
//! inventory (what to poll) -> scheduler (when, how many at once) -> poll (one host)
//! -> ssh (bytes over russh) -> parse (text -> typed reports) -> model (rows)
//! -> store (SQLite) -> api (JSON over HTTP, dashboard). The activity log is written by the
//! scheduler, the CLI and the API through `activity`, and nowhere else.
#![forbid(unsafe_code)]

/// Typed activity events; the only writer of the activity log.
pub mod activity;
/// axum router, handlers and the HTTP error mapping.
pub mod api;
/// Wiring for `serve`: store, scheduler and API under one shutdown token.
pub mod app;
/// Roles, password hashing, bearer secrets and the failed-login limiter.
pub mod auth;
/// The command line: one subcommand per operator task.
pub mod cli;
/// Settings: TOML file, then `FLEETPOLL_*` environment, then flags; validated once.
pub mod config;
/// `server import`: register servers from a CSV inventory, row by row.
pub mod import;
/// Validated server registrations: host, port, user, key reference.
pub mod inventory;
/// Stored shapes of a poll: server, disk and container samples.
pub mod model;
/// The poller's own counters and histograms, rendered for Prometheus.
pub mod observe;
/// Operator actions (add, edit, remove, trust) shared by the CLI and the API.
pub mod ops;
/// The words for what happened (poll outcomes, section problems, severities): one enum each.
pub mod outcome;
/// Pure parsers for top, free, df, docker stats and docker ps output.
pub mod parse;
/// One host's poll: one SSH exec, split into sections, parsed into a snapshot.
pub mod poll;
/// What a host runs (BusyBox or procps, docker or podman), and the poll script it gets.
pub mod probe;
/// Interval loop, bounded fan-out, status transitions.
pub mod scheduler;
/// A simulated fleet of SSH servers in one process, for the demo, tests and benchmarks.
pub mod sim;
/// russh client wrapper with trust-on-first-use host keys.
pub mod ssh;
/// SQLite through sqlx: the only module with SQL.
pub mod store;
/// tracing subscriber setup; logs always go to stderr.
pub mod telemetry;
/// Private keys at rest, sealed under a master key kept outside the database.
pub mod vault;
