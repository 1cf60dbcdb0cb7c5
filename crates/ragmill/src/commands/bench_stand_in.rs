//! `ragmill bench stand-in`: a stand-in embedding server as a process of its own, for
//! benchmarks that run several processes (`bench/cluster.sh`).
//!
//! It is [`FakeServer`]: no model, hash-seeded vectors, Ollama's or OpenAI's real wire format.
//! Every embedding request is answered after the fixed service time; with `--serial` requests
//! queue and are served one after the other (a GPU server running one batch at a time), so a
//! pool of K such endpoints serves at most K requests per service time, whatever this machine's
//! cores do.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ragmill_remote::fake::{FakeServer, Wire};

use crate::Status;
use crate::cli::{BenchStandInArgs, StandInWire};

pub async fn run(args: BenchStandInArgs) -> Result<Status> {
    if args.dimensions == 0 {
        bail!("--dimensions must be at least 1");
    }
    let wire = match args.wire {
        StandInWire::Ollama => Wire::Ollama,
        StandInWire::Openai => Wire::OpenAi,
    };
    // Listening for SIGTERM before the URL is out, so a reader that stops us at once still
    // gets the counts.
    let stop = Stop::new()?;
    let server = FakeServer::bind(wire, args.dimensions, args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    server.set_serial(args.serial);
    server.set_latency(Duration::from_millis(args.latency_ms));
    say(&format!("{}\n", server.url())).context("writing the URL to stdout")?;
    stop.wait().await;
    // The reader may be gone by now; the counts are a courtesy.
    let _ = say(&format!(
        "stand-in stopped: requests={} texts={}\n",
        server.requests(),
        server.texts()
    ));
    Ok(Status::Ok)
}

/// One write and a flush, so a reader of the first line sees it at once (and a closed pipe is
/// an error, not a panic).
fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}

/// Ctrl-C or SIGTERM, listened for from creation on.
struct Stop {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Stop {
    fn new() -> Result<Stop> {
        Ok(Stop {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?,
        })
    }

    /// Resolves on the first of them.
    async fn wait(self) {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            let mut term = self.term;
            term.recv().await;
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
    }
}
