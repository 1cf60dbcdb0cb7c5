//! `ragmill documents …`'s arguments: a running server's document operations.

use clap::{Args, Subcommand};

/// Where `ragmill documents` finds the server, and whose documents it acts on.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Server")]
pub struct ServerArgs {
    /// The ragmill server's URL.
    #[arg(long, env = "RAGMILL_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An API key of the user whose documents these are (from `ragmill users add`).
    #[arg(long, env = "RAGMILL_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// Which documents a `ragmill documents` action applies to.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Documents")]
pub struct Targets {
    /// Documents by id or by name (as listed by `ragmill documents list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub documents: Vec<String>,
    /// Every document the action applies to.
    #[arg(long)]
    pub all: bool,
}

/// `ragmill documents …`: the server's document operations, as in the web UI and the API.
#[derive(Debug, Subcommand)]
pub enum DocumentsCommand {
    /// List the user's documents, newest first.
    List {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Only documents in this state: queued, processing, paused, ready, failed, or error
        /// (any whose last version failed).
        #[arg(long)]
        state: Option<String>,
        /// Only documents whose name contains this.
        #[arg(long)]
        name: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Stop documents waiting for, in processing or paused (an older version stays searchable).
    Cancel {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
    /// Hold documents waiting for or in processing; `resume` queues them again.
    Pause {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
    /// Queue paused documents again.
    Resume {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
    /// Queue documents whose last version failed (cancelled ones included) again.
    Retry {
        /// Where the server is.
        #[command(flatten)]
        server: ServerArgs,
        /// Which documents.
        #[command(flatten)]
        targets: Targets,
    },
}
