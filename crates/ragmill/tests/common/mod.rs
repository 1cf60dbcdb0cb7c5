//! Helpers shared by the binary's end-to-end tests: the real `ragmill` binary, users made with
//! its CLI, a `ragmill serve` on an ephemeral port, and HTTP/WebSocket clients.

#![allow(dead_code)] // each test binary uses its own share of these helpers

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn model_dir() -> PathBuf {
    std::env::var_os("RAGMILL_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/all-MiniLM-L6-v2"))
}

pub fn ragmill(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragmill"));
    cmd.arg("--data-dir").arg(data).arg("--model-dir").arg(model_dir());
    cmd
}

/// Creates a user and returns their API key.
pub fn add_user(data: &Path, name: &str) -> String {
    let out = ragmill(data).args(["users", "add", name, "--json"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["api_key"].as_str().expect("key").to_owned()
}

/// Creates an administrator and returns their API key.
pub fn add_admin(data: &Path, name: &str) -> String {
    let out =
        ragmill(data).args(["users", "add", name, "--admin", "--json"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["admin"], true, "{v}");
    v["api_key"].as_str().expect("key").to_owned()
}

/// A running server; killed when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        let mut cmd = ragmill(data);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        if !extra.contains(&"--workers") {
            cmd.args(["--workers", "2"]);
        }
        let mut child = cmd
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("address line");
        let base = line.trim().rsplit(' ').next().expect("url").to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");
        Self { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("{}/v1/events{query}", self.base.replacen("http", "ws", 1))
    }

    /// Peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

pub async fn upload(server: &Server, key: &str, files: &[(&str, Vec<u8>)]) -> reqwest::Response {
    let mut form = Form::new();
    for (name, bytes) in files {
        form = form.part("file", Part::bytes(bytes.clone()).file_name(name.to_string()));
    }
    client()
        .post(server.url("/v1/documents"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

pub async fn get_json(server: &Server, key: &str, path: &str) -> (u16, Value) {
    let r = client().get(server.url(path)).bearer_auth(key).send().await.expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn search(server: &Server, key: &str, query: &str) -> Value {
    let r = client()
        .post(server.url("/v1/search"))
        .bearer_auth(key)
        .json(&json!({"query": query, "top_k": 3}))
        .send()
        .await
        .expect("search");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect_ws(server: &Server, key: &str) -> Ws {
    let mut req = server.ws_url("").into_client_request().expect("request");
    req.headers_mut().insert("authorization", format!("Bearer {key}").parse().expect("header"));
    tokio_tungstenite::connect_async(req).await.expect("websocket").0
}

pub async fn next_event(ws: &mut Ws, within: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("samples").join(name)).expect("sample")
}

pub fn essay(i: usize) -> Vec<u8> {
    let topics = [
        "harbours",
        "glaciers",
        "orchards",
        "comets",
        "bridges",
        "violins",
        "deserts",
        "beekeeping",
    ];
    let t = topics[i % topics.len()];
    (0..24)
        .map(|p| format!("Note {i}, part {p}: {t} have a long history, and record {i}.{p} describes how people studied {t}, what they measured, and which questions about {t} remain open after many years of careful observation.\n\n"))
        .collect::<String>()
        .into_bytes()
}

pub async fn wait_all_ready(server: &Server, key: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let (_, list) = get_json(server, key, "/v1/documents").await;
        let docs = list["documents"].as_array().cloned().unwrap_or_default();
        if docs.len() == n && docs.iter().all(|d| d["state"] == "ready") {
            return docs;
        }
        assert!(
            Instant::now() < deadline,
            "not all ready in time: {:?}",
            docs.iter().map(|d| (&d["name"], &d["state"], &d["error"])).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks the store in `data`: `documents` documents, each with at least two chunks, every
/// chunk stored exactly once (no duplicate ordinals, counts agree), no job left in the queue,
/// and SQLite's `integrity_check` ok. `context` is added to every failure message.
pub fn assert_stored_exactly_once(data: &Path, documents: usize, context: &str) {
    let db = rusqlite::Connection::open(data.join("ragmill.db")).expect("db");
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(check, "ok", "{context}");
    let rows: Vec<(i64, i64, i64, i64)> = db
        .prepare(
            "SELECT d.id, d.chunk_count, COUNT(c.id), COUNT(DISTINCT c.ordinal)
             FROM documents d LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), documents, "{context}");
    for (id, declared, stored, distinct) in rows {
        assert!(declared >= 2, "{context}: document {id} has {declared} chunks");
        assert_eq!((stored, distinct), (declared, declared), "{context}: document {id}");
    }
    let left: i64 = db.query_row("SELECT COUNT(*) FROM queue_jobs", [], |r| r.get(0)).expect("q");
    assert_eq!(left, 0, "{context}: no job left behind");
}
