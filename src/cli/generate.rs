//! `fleetpoll completions SHELL` and `fleetpoll man [--out-dir DIR]` (issue #16): shell
//! completion scripts and roff man pages generated from the clap definition in `cli/mod.rs`,
//! so they can never list a command or flag the binary does not have. Needs no settings,
//! database or runtime: a package build can run it on a machine with nothing configured.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};

use super::Cli;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write fleetpoll.1 and one page per subcommand (fleetpoll-server-add.1, ...) into
    /// this existing directory instead of printing fleetpoll.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
///
/// # Errors
/// Writing stdout failed (other than the reader going away).
pub(super) fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "fleetpoll", &mut script);
    print_raw(&script)
}

/// Prints the top-level man page on stdout, or writes every page into `args.out_dir`.
///
/// # Errors
/// Writing stdout or a page file failed.
pub(super) fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.out_dir {
        clap_mangen::generate_to(Cli::command(), dir)
            .with_context(|| format!("writing man pages into '{}'", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("rendering the man page")?;
    print_raw(&page)
}

/// Writes `bytes` to stdout. A closed pipe (`fleetpoll man | head`) is not an error: the
/// reader had what it wanted (ripgrep treats it the same way).
fn print_raw(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(ExitCode::SUCCESS),
    }
}
