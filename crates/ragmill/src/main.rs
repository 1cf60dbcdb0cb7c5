//! The `ragmill` command: ingest, search, embed, evaluate and benchmark on embedded defaults.
//!
//! This binary is the only place that knows about the command line, the terminal and
//! `anyhow`; it assembles the library crates (see `ARCHITECTURE.md`) and turns their errors into
//! one-line messages and exit codes: 0 success, 1 some documents failed (or a check did not
//! pass), 2 the command itself could not run.

mod app;
mod cli;
mod commands;
mod config;
mod help;
mod progress;

use std::process::ExitCode;

use clap::FromArgMatches;

use crate::cli::{Cli, Command};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a command reports when it ran to the end.
pub enum Status {
    /// Everything worked.
    Ok,
    /// The command ran but something in it failed (already reported).
    Partial,
}

fn main() -> ExitCode {
    let matches = help::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if matches!(cli.command, Command::Extract) {
        // The sandboxed extraction child: no logging setup, no runtime, nothing on stdout but
        // the protocol.
        return ragmill_extract::child_main();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAGMILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    if let Err(e) = config::apply(&mut cli, &matches) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Partial) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
