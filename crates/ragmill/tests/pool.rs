//! A pool of real `ragmill embed-server` processes behind `ragmill ingest`: one is killed
//! with SIGKILL in the middle of the run, every document still completes, and the stored
//! vectors equal those of a run on the local model alone.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn model_dir() -> PathBuf {
    std::env::var_os("RAGMILL_MODEL_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
    })
}

fn ragmill(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragmill"));
    cmd.arg("--data-dir").arg(data).arg("--model-dir").arg(model_dir());
    cmd
}

/// An embed-server child, killed and reaped on drop.
struct EmbedServer {
    child: Child,
    url: String,
}

impl EmbedServer {
    fn start(scratch: &Path) -> Self {
        let mut child = ragmill(scratch)
            .args(["embed-server", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("embed-server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("listening line");
        let addr = line
            .split_once("listening on ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Self { child, url: addr }
    }

    /// SIGKILL: the process dies with requests in flight, like a crashed machine.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EmbedServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Thirty documents of several chunks each, every paragraph distinct.
fn documents(dir: &Path) {
    let topics = ["tides", "sourdough", "bicycles", "printing", "volcanoes", "espresso"];
    for d in 0..30 {
        let mut text = format!("# Notes {d}\n\n");
        for p in 0..24 {
            let topic = topics[(d + p) % topics.len()];
            text.push_str(&format!(
                "Paragraph {p} of document {d} is about {topic}. It records observation {} made on \
                 day {} with care, and compares it with the previous entry on {topic} so that \
                 the series stays consistent across the whole notebook.\n\n",
                d * 100 + p,
                p * 7 + d
            ));
        }
        std::fs::write(dir.join(format!("doc-{d:02}.md")), text).expect("write document");
    }
}

/// (document name, ordinal) -> vector, from a data directory's SQLite file.
fn vectors(data: &Path) -> HashMap<(String, i64), Vec<f32>> {
    let db = rusqlite::Connection::open(data.join("ragmill.db")).expect("open db");
    let mut stmt = db
        .prepare(
            "SELECT d.name, c.ordinal, c.vector FROM chunks c JOIN documents d ON d.id = c.document_id",
        )
        .expect("query");
    stmt.query_map([], |r| {
        let blob: Vec<u8> = r.get(2)?;
        let v =
            blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(((r.get::<_, String>(0)?, r.get::<_, i64>(1)?), v))
    })
    .expect("rows")
    .map(|r| r.expect("row"))
    .collect()
}

fn ingest_json(out: std::process::Output) -> Value {
    assert!(out.status.success(), "ingest failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("json summary")
}

#[test]
fn killing_a_pool_member_mid_ingest_loses_nothing() {
    let docs = tempfile::tempdir().expect("tempdir");
    documents(docs.path());
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut servers: Vec<EmbedServer> =
        (0..3).map(|_| EmbedServer::start(scratch.path())).collect();

    let pooled = tempfile::tempdir().expect("tempdir");
    let mut cmd = ragmill(pooled.path());
    cmd.args(["--json", "--embed-backend", "openai", "--embed-model", "all-MiniLM-L6-v2"]);
    for s in &servers {
        cmd.args(["--embed-endpoint", &s.url]);
    }
    // Small batches, so the run is many requests long and the kill lands in its middle.
    cmd.args(["ingest", "--user", "alice", "--batch", "8"]).arg(docs.path());
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("ingest starts");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let killed_mid_run = {
        let victim = &mut servers[1];
        victim.kill();
        started.elapsed()
    };
    let summary = ingest_json(child.wait_with_output().expect("ingest ends"));
    let took = started.elapsed();
    assert!(
        killed_mid_run < took,
        "the kill at {killed_mid_run:?} came after the run ended ({took:?}): nothing was tested"
    );
    assert_eq!(summary["ingested"], 30, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");

    let local = tempfile::tempdir().expect("tempdir");
    let out = ragmill(local.path())
        .args(["--json", "ingest", "--user", "alice"])
        .arg(docs.path())
        .output()
        .expect("local ingest");
    assert_eq!(ingest_json(out)["ingested"], 30);

    let (got, want) = (vectors(pooled.path()), vectors(local.path()));
    assert_eq!(got.len(), want.len(), "same chunks");
    assert!(got.len() >= 60, "several chunks per document: {}", got.len());
    for (key, w) in &want {
        let g = got.get(key).unwrap_or_else(|| panic!("chunk {key:?} missing from the pooled run"));
        let cos: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        assert!(cos > 0.99999, "chunk {key:?}: cosine {cos}");
    }
}

/// `ragmill eval` on the hand-built BEIR set through each remote client against one real
/// embed-server: the same scores as the local model, under the remote model's id.
#[test]
fn both_wire_formats_against_a_real_embed_server_score_like_the_local_model() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let server = EmbedServer::start(scratch.path());
    let beir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/beir-mini");
    let eval = |backend: &[&str]| -> Value {
        let data = tempfile::tempdir().expect("tempdir");
        let out = ragmill(data.path())
            .args(["--json"])
            .args(backend)
            .args(["eval", "--beir"])
            .arg(&beir)
            .output()
            .expect("eval runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("json")
    };
    let local = eval(&[]);
    for kind in ["ollama", "openai"] {
        let remote = eval(&[
            "--embed-backend",
            kind,
            "--embed-endpoint",
            &server.url,
            "--embed-model",
            "all-MiniLM-L6-v2",
        ]);
        assert_eq!(remote["model"], format!("{kind}:all-MiniLM-L6-v2"), "{remote}");
        for metric in ["ndcg@10", "mrr@10", "recall@100"] {
            let (r, l) = (remote[metric].as_f64(), local[metric].as_f64());
            assert!(
                r.zip(l).is_some_and(|(r, l)| (r - l).abs() < 1e-4),
                "{kind} {metric}: {r:?} vs local {l:?}"
            );
        }
    }
}
