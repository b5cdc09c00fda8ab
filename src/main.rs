//! The `fleetpoll` binary: parse the command line, start logging, run, map errors to an exit
//! status. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fleetpoll::cli::Cli::parse();
    fleetpoll::telemetry::init(cli.verbose);
    match fleetpoll::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", fleetpoll::cli::error_message(&e));
            ExitCode::from(2)
        }
    }
}
