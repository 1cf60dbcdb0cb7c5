//! One module per command.

mod bench;
mod bench_pool;
mod bench_search;
mod bench_stand_in;
mod bench_vectors;
mod documents;
mod embed;
mod embed_server;
mod eval;
mod ingest;
mod ingest_remote;
mod models;
mod search;
mod serve;
mod users;
mod vectors;
mod worker;

use anyhow::Result;

use crate::Status;
use crate::cli::{BenchCommand, Cli, Command};

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<Status> {
    let g = &cli.global;
    match cli.command {
        Command::Serve(args) => serve::run(g, *args).await,
        Command::Worker(args) => worker::run(g, args).await,
        Command::Ingest(args) => ingest::run(g, args).await,
        Command::Search(args) => search::run(g, args).await,
        Command::Embed(args) => embed::run(g, args).await,
        Command::EmbedServer(args) => embed_server::run(g, args).await,
        Command::Eval(args) => eval::run(g, args).await,
        Command::Bench(BenchCommand::Embed(args)) => bench::embed(g, args).await,
        Command::Bench(BenchCommand::Pool(args)) => bench_pool::run(g, args).await,
        Command::Bench(BenchCommand::Search(args)) => bench_search::run(g, args).await,
        Command::Bench(BenchCommand::Vectors(args)) => bench_vectors::run(g, args).await,
        Command::Bench(BenchCommand::StandIn(args)) => bench_stand_in::run(args).await,
        Command::Models(cmd) => models::run(g, cmd).await,
        Command::Users(cmd) => users::run(g, cmd),
        Command::Documents(cmd) => documents::run(g, cmd).await,
        Command::Vectors(cmd) => vectors::run(g, cmd).await,
        Command::Extract => unreachable!("handled before the runtime starts"),
    }
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
