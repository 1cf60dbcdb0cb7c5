//! `ragmill documents list|cancel|pause|resume|retry`: a running server's document operations
//! from the command line, over its HTTP API (the same requests the web UI sends), as the user
//! whose API key is given.
//!
//! Documents are named by id or by name; a name is looked up with the list's name search and
//! must match exactly. Without a server these operations mean nothing: a document is cancelled
//! or paused in the server's queue, not in the data directory.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::Status;
use crate::cli::{DocumentsCommand, Global, ServerArgs, Targets};
use crate::commands::print_json;

/// The server, reached with one user's key.
struct Client {
    url: String,
    key: String,
    http: reqwest::Client,
}

impl Client {
    fn new(args: &ServerArgs) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("setting up the HTTP client")?;
        let url = args.server.trim_end_matches('/').to_owned();
        Ok(Self { url, key: args.api_key.clone(), http })
    }

    /// Sends `request` and reads its JSON answer (`Null` for 204); a refusal is one line
    /// saying why, with the server's error code.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.url))?;
        let status = response.status();
        let body: Value = if status == reqwest::StatusCode::NO_CONTENT {
            Value::Null
        } else {
            response.json().await.unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(body);
        }
        let code = body["error"]["code"].as_str().unwrap_or("unknown");
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        if matches!(status.as_u16(), 401 | 403) {
            bail!(
                "the server at {} refused the API key (HTTP {status}): check --api-key",
                self.url
            );
        }
        bail!("the server answered HTTP {status}: {message} ({code})")
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.url), query)
            .with_context(|| format!("{} is not a URL", self.url))?;
        self.send(self.http.get(url)).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body)).await
    }

    /// The id of each of `names` (an id as it is; a name must match a document's exactly).
    async fn ids(&self, names: &[String]) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            if let Ok(id) = name.parse::<i64>() {
                ids.push(id);
                continue;
            }
            let page =
                self.get("/v1/documents", &[("q", name.clone()), ("limit", "1000".into())]).await?;
            let found = page["documents"]
                .as_array()
                .and_then(|docs| docs.iter().find(|d| d["name"] == name.as_str()))
                .and_then(|d| d["id"].as_i64());
            ids.push(found.ok_or_else(|| anyhow!("no document called {name:?}"))?);
        }
        Ok(ids)
    }
}

pub async fn run(g: &Global, cmd: DocumentsCommand) -> Result<Status> {
    let (server, op, targets) = match cmd {
        DocumentsCommand::List { server, state, name, limit } => {
            return list(g, &Client::new(&server)?, state, name, limit).await;
        }
        DocumentsCommand::Cancel { server, targets } => (server, "cancel", targets),
        DocumentsCommand::Pause { server, targets } => (server, "pause", targets),
        DocumentsCommand::Resume { server, targets } => (server, "resume", targets),
        DocumentsCommand::Retry { server, targets } => (server, "retry", targets),
    };
    act(g, &Client::new(&server)?, op, targets).await
}

async fn list(
    g: &Global,
    client: &Client,
    state: Option<String>,
    name: Option<String>,
    limit: u32,
) -> Result<Status> {
    let mut query = vec![("limit", limit.to_string())];
    query.extend(state.map(|s| ("state", s)));
    query.extend(name.map(|n| ("q", n)));
    let page = client.get("/v1/documents", &query).await?;
    if g.json {
        print_json(&page);
        return Ok(Status::Ok);
    }
    let docs = page["documents"].as_array().cloned().unwrap_or_default();
    if docs.is_empty() {
        println!("No documents match.");
        return Ok(Status::Ok);
    }
    for d in &docs {
        let error = d["error"]["code"].as_str().map(|c| format!("  ({c})")).unwrap_or_default();
        println!(
            "{:>7}  {:10}  {:>6} chunks  {}{error}",
            d["id"].as_i64().unwrap_or_default(),
            d["state"].as_str().unwrap_or("?"),
            d["chunks"].as_u64().unwrap_or_default(),
            d["name"].as_str().unwrap_or("?"),
        );
    }
    let total = page["total"].as_u64().unwrap_or(docs.len() as u64);
    if total > docs.len() as u64 {
        println!("{} of {total} shown (--limit, --state, --name narrow it)", docs.len());
    }
    Ok(Status::Ok)
}

async fn act(g: &Global, client: &Client, op: &str, targets: Targets) -> Result<Status> {
    let body = if targets.all {
        json!({"all": true})
    } else {
        json!({"ids": client.ids(&targets.documents).await?})
    };
    let result = client.post(&format!("/v1/documents/{op}"), &body).await?;
    let done = result["done"].as_u64().unwrap_or_default();
    let skipped = result["skipped"].as_u64().unwrap_or_default();
    if g.json {
        print_json(&result);
    } else {
        let past = match op {
            "cancel" => "cancelled",
            "pause" => "paused",
            "resume" => "resumed",
            _ => "queued again",
        };
        let why = match op {
            "cancel" => "not waiting, processing or paused",
            "pause" => "not waiting or processing",
            "resume" => "not paused",
            _ => "not failed",
        };
        println!("{past} {done} document(s)");
        if skipped > 0 {
            println!("{skipped} skipped: {why}, or not yours");
        }
    }
    Ok(if skipped > 0 { Status::Partial } else { Status::Ok })
}
