//! Integration tests, one binary: real OpenSSH sshd on loopback, real top/free/df, a real
//! SQLite file, a real HTTP client against the real router, and a real Docker engine when
//! the machine can run one.

mod harness;

/// Shared setup: settings, stores, servers, a running app.
mod common;

/// Alert rules and the alerts real polls raise.
mod alerts;

/// Issue #17: hostile hosts and careless operators against the real server.
mod hostile;

/// The source's layering: each module uses only modules below it in the pipeline.
mod layout;

/// Polling a real sshd: values against the truth, failures, host keys, CPU load.
mod poll;

/// The HTTP API over a real socket.
mod api;

/// The `fleetpoll` binary: parse, server commands, --json, shutdown.
mod cli;

/// A real Docker engine's containers seen through a poll.
mod docker_real;

/// The store on a real SQLite file: retention and downsampling.
mod store;

/// Issue #12: history in tiers, compaction, rollups, the size cap, the upgrade.
mod history;

/// `fleetpoll parse` run as a process on every fixture.
mod parse_cli;

/// Issue #16: the systemd unit (systemd-analyze verify and security), completions, man page.
mod packaging;

/// A real rootful podman's containers seen through a poll, with CPU from counters.
mod podman_real;

/// The simulated fleet, `server import` and `demo`.
mod sim;

/// Accounts, roles, tokens, sessions: the role matrix, login limits, secrets kept out.
mod auth;

/// The web dashboard in a real headless Chromium against a really polled fleet (issue #7).
mod browser;

/// Issue #17's findings replayed: connection limits and timeouts, login limits, CSRF, redirects.
mod hardening;
/// Notification channels and delivery against a real HTTP receiver and SMTP server (issue #13).
mod notify;

/// Issue #14: several pollers sharing a PostgreSQL database by leases.
mod lease;

/// Issue #15: MCP over stdio and streamable HTTP, against the API's own answers.
mod mcp;
