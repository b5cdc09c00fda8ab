//! tracing subscriber setup. Logs go to stderr so that `--json` output on stdout stays
//! machine-readable.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` filter.
pub fn init(verbose: bool) {
    // rmcp logs every MCP message and the client's whole handshake at info: an assistant's
    // session would fill the log with protocol chatter, so it speaks at warn unless -v.
    let default = if verbose {
        "fleetpoll=debug,info"
    } else {
        "info,rmcp=warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // try_init: tests may install a subscriber more than once in one process.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
