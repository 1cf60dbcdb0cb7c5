//! ragmill as an embedding server: `ragmill embed-server` (and `ragmill serve`) as real
//! processes on loopback, driven over Ollama's and OpenAI's wire formats by a real HTTP client,
//! their vectors checked against `ragmill embed --json`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    std::env::var_os("RAGMILL_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/all-MiniLM-L6-v2"))
}

fn ragmill(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragmill"));
    cmd.arg("--data-dir").arg(data).arg("--model-dir").arg(model_dir());
    cmd
}

/// A running server; killed (and reaped) when dropped, so nothing outlives the test.
struct Server {
    child: Child,
    base: String,
    /// The first line it printed.
    line: String,
}

impl Server {
    /// Starts `ragmill ARGS` and waits for its `... listening on http://ADDR ...` line.
    fn start(data: &Path, args: &[&str]) -> Self {
        let mut child = ragmill(data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("address line");
        let line = line.trim_end().to_owned();
        let addr = line
            .split_once("listening on http://")
            .and_then(|(_, rest)| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        assert!(addr.starts_with("127.0.0.1:"), "{line}");
        Self { base: format!("http://{addr}"), child, line }
    }

    /// `ragmill embed-server --bind 127.0.0.1:0 EXTRA`.
    fn embed_server(data: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["embed-server", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Self::start(data, &args)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

/// POSTs `body` (raw) to `path`, optionally with a key; returns the status and JSON answer.
async fn post_raw(server: &Server, path: &str, body: String, key: Option<&str>) -> (u16, Value) {
    let mut req =
        client().post(server.url(path)).header("content-type", "application/json").body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(server: &Server, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    post_raw(server, path, body.to_string(), key).await
}

async fn get(server: &Server, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = client().get(server.url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `ragmill embed --json TEXTS`: the reference vectors.
fn reference(texts: &[String]) -> Vec<Vec<f32>> {
    let data = tempfile::tempdir().expect("tmp");
    let out = ragmill(data.path()).args(["embed", "--json"]).args(texts).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    floats_of_all(&v["embeddings"])
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a vector: {v}"))
        .iter()
        .map(|x| x.as_f64().expect("float") as f32)
        .collect()
}

fn floats_of_all(v: &Value) -> Vec<Vec<f32>> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(floats).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn assert_same(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: one vector per input");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let c = cosine(g, w);
        assert!(c > 0.99999, "{what}: input {i} has cosine {c} to `ragmill embed`");
    }
}

/// Decodes standard, padded base64 (what OpenAI's `encoding_format: base64` sends).
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let digits: Vec<u8> = quad.iter().filter(|&&c| c != b'=').map(|&c| value(c)).collect();
        let n = digits.iter().enumerate().fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..digits.len()]);
    }
    out
}

fn f32_le(bytes: &[u8]) -> Vec<f32> {
    assert_eq!(bytes.len() % 4, 0);
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn texts() -> Vec<String> {
    [
        "The moon's pull raises the sea twice a day.",
        "Feed a sourdough starter flour and water daily.",
        "A punctured inner tube is found by listening for the hiss, or under water.",
        "Les volcans de la Chaîne des Puys sont endormis, pas éteints.",
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_four_routes_answer_in_each_format_with_the_cli_vectors() {
    let data = tempfile::tempdir().expect("tmp");
    let server = Server::embed_server(data.path(), &[]);
    let line = &server.line;
    assert!(line.starts_with("ragmill embed-server listening on http://127.0.0.1:"), "{line}");
    assert!(line.ends_with(')') && line.contains("(model all-MiniLM-L6-v2@"), "{line}");
    let id = line.rsplit_once("(model ").expect("id").1.trim_end_matches(')').to_owned();

    let r = client().get(server.url("/healthz")).send().await.expect("healthz");
    assert_eq!((r.status().as_u16(), r.text().await.expect("text")), (200, "ok".to_owned()));

    let (status, tags) = get(&server, "/api/tags", None).await;
    assert_eq!(status, 200, "{tags}");
    let model = &tags["models"][0];
    assert_eq!(tags["models"].as_array().map(Vec::len), Some(1), "{tags}");
    assert_eq!(
        (&model["name"], &model["model"]),
        (&json!("all-MiniLM-L6-v2"), &json!("all-MiniLM-L6-v2"))
    );
    assert!(model["size"].as_u64().expect("size") > 10 << 20, "{model}");
    assert!(model["modified_at"].as_str().expect("time").ends_with('Z'), "{model}");
    assert_eq!(model["digest"].as_str().expect("digest").len(), 64, "{model}");
    let details = &model["details"];
    assert_eq!((&details["format"], &details["family"]), (&json!("safetensors"), &json!("bert")));
    assert_eq!(details["quantization_level"], "F32");
    assert!(details["parameter_size"].as_str().expect("size").ends_with('M'), "{details}");

    let (status, models) = get(&server, "/v1/models", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": "all-MiniLM-L6-v2", "object": "model", "created": 0, "owned_by": "ragmill"}]})
    );

    // The same vectors as `ragmill embed`, in input order, over both formats and any model name.
    let texts = texts();
    let want = reference(&texts);
    for name in [
        json!("all-MiniLM-L6-v2"),
        json!(id),
        json!("all-MiniLM-L6-v2:latest"),
        json!(""),
        Value::Null,
    ] {
        let (status, body) =
            post(&server, "/api/embed", json!({"model": name, "input": texts}), None).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_same(&floats_of_all(&body["embeddings"]), &want, "/api/embed");
    }
    let (status, body) =
        post(&server, "/api/embed", json!({"model": "all-MiniLM-L6-v2", "input": texts}), None)
            .await;
    assert_eq!(status, 200);
    assert_eq!(body["model"], "all-MiniLM-L6-v2");
    assert_eq!(body["load_duration"], 0);
    assert!(body["total_duration"].as_u64().expect("ns") > 0, "{body}");
    let tokens = body["prompt_eval_count"].as_u64().expect("tokens");
    assert!((40..100).contains(&tokens), "four short sentences with [CLS]/[SEP]: {tokens}");
    // One string is one input.
    let (status, body) = post(&server, "/api/embed", json!({"input": texts[2]}), None).await;
    assert_eq!(status, 200);
    assert_same(&floats_of_all(&body["embeddings"]), &want[2..3], "/api/embed one string");

    let (status, body) =
        post(&server, "/v1/embeddings", json!({"model": "all-MiniLM-L6-v2", "input": texts}), None)
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["object"], &body["model"]), (&json!("list"), &json!("all-MiniLM-L6-v2")));
    assert_eq!(body["usage"], json!({"prompt_tokens": tokens, "total_tokens": tokens}));
    let data = body["data"].as_array().expect("data");
    for (i, d) in data.iter().enumerate() {
        assert_eq!((&d["object"], &d["index"]), (&json!("embedding"), &json!(i)), "{d}");
    }
    let got: Vec<Vec<f32>> = data.iter().map(|d| floats(&d["embedding"])).collect();
    assert_same(&got, &want, "/v1/embeddings float");

    let (status, body) = post(
        &server,
        "/v1/embeddings",
        json!({"input": texts, "encoding_format": "base64", "dimensions": 384, "user": "u1"}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<Vec<f32>> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| f32_le(&base64_decode(d["embedding"].as_str().expect("base64 string"))))
        .collect();
    assert_same(&got, &want, "/v1/embeddings base64");

    // No inputs: an empty answer.
    let (status, body) = post(&server, "/api/embed", json!({"input": []}), None).await;
    assert_eq!((status, &body["embeddings"]), (200, &json!([])));
    let (status, body) = post(&server, "/v1/embeddings", json!({"input": []}), None).await;
    assert_eq!((status, &body["data"]), (200, &json!([])));

    // Errors, each in its format's style.
    let ollama_error = |status: u16, body: &Value, want: u16, has: &str| {
        assert_eq!(status, want, "{body}");
        let message = body["error"].as_str().unwrap_or_else(|| panic!("Ollama error: {body}"));
        assert!(message.contains(has), "{message:?} lacks {has:?}");
    };
    let openai_error = |status: u16, body: &Value, want: u16, has: &str, code: Value| {
        assert_eq!(status, want, "{body}");
        let e = &body["error"];
        let message = e["message"].as_str().unwrap_or_else(|| panic!("OpenAI error: {body}"));
        assert!(message.contains(has), "{message:?} lacks {has:?}");
        let kind = if want >= 500 { "server_error" } else { "invalid_request_error" };
        assert_eq!(e["type"], kind, "{body}");
        assert_eq!(e["code"], code, "{body}");
        assert!(e.as_object().expect("object").contains_key("param"), "{body}");
    };
    let unknown = json!({"model": "nomic-embed-text", "input": "a"});
    let (s, b) = post(&server, "/api/embed", unknown.clone(), None).await;
    ollama_error(s, &b, 404, "all-MiniLM-L6-v2");
    let (s, b) = post(&server, "/v1/embeddings", unknown, None).await;
    openai_error(s, &b, 404, "all-MiniLM-L6-v2", json!("model_not_found"));

    for bad in ["{\"input\": ", "[1, 2]", "{\"input\": 42}", "{\"input\": [\"a\", null]}"] {
        let (s, b) = post_raw(&server, "/api/embed", bad.into(), None).await;
        ollama_error(s, &b, 400, "");
        let (s, b) = post_raw(&server, "/v1/embeddings", bad.into(), None).await;
        openai_error(s, &b, 400, "", Value::Null);
    }
    for tokens in [json!([[101, 7592, 102]]), json!([101, 7592, 102])] {
        let (s, b) = post(&server, "/api/embed", json!({"input": tokens}), None).await;
        ollama_error(s, &b, 400, "token arrays are not accepted");
        let (s, b) = post(&server, "/v1/embeddings", json!({"input": tokens}), None).await;
        openai_error(s, &b, 400, "token arrays are not accepted", Value::Null);
        assert_eq!(b["error"]["param"], "input");
    }
    let (s, b) =
        post(&server, "/v1/embeddings", json!({"input": "a", "dimensions": 256}), None).await;
    openai_error(s, &b, 400, "384", Value::Null);
    assert_eq!(b["error"]["param"], "dimensions");
    let (s, b) =
        post(&server, "/v1/embeddings", json!({"input": "a", "encoding_format": "int8"}), None)
            .await;
    openai_error(s, &b, 400, "encoding_format", Value::Null);
    let many = json!({"input": vec!["a"; 2049]});
    let (s, b) = post(&server, "/api/embed", many.clone(), None).await;
    ollama_error(s, &b, 400, "2048");
    let (s, b) = post(&server, "/v1/embeddings", many, None).await;
    openai_error(s, &b, 400, "2048", Value::Null);
    let long = "word ".repeat(400);
    let (s, b) = post(&server, "/api/embed", json!({"input": long, "truncate": false}), None).await;
    ollama_error(s, &b, 400, "exceeds maximum context length");
    let (s, b) = post(&server, "/api/embed", json!({"input": long}), None).await;
    assert_eq!(s, 200, "truncated by default: {b}");
    assert_eq!(b["prompt_eval_count"], 256, "{b}");
    // A body past 16 MiB is refused from its Content-Length, before any of it is sent.
    for path in ["/v1/embeddings", "/api/embed"] {
        let (s, b) = declare_huge_body(&server, path).await;
        if path == "/api/embed" {
            ollama_error(s, &b, 413, "MiB");
        } else {
            openai_error(s, &b, 413, "MiB", json!("request_too_large"));
        }
    }
}

/// Sends only the head of a request declaring a 17 MiB body and reads the answer. (Sending the
/// body itself would race the server closing the connection on it.)
async fn declare_huge_body(server: &Server, path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        17 << 20
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_api_key_every_route_wants_it() {
    let data = tempfile::tempdir().expect("tmp");
    let server = Server::embed_server(data.path(), &["--api-key", "s3cret-key"]);
    let body = json!({"model": "all-MiniLM-L6-v2", "input": ["a", "b"]});
    for key in [None, Some("wrong-key"), Some("s3cret-ke")] {
        let (s, b) = post(&server, "/api/embed", body.clone(), key).await;
        assert_eq!(s, 401, "{key:?}: {b}");
        assert!(b["error"].is_string(), "Ollama style: {b}");
        let (s, b) = get(&server, "/api/tags", key).await;
        assert_eq!(s, 401, "{key:?}: {b}");
        assert!(b["error"].is_string(), "Ollama style: {b}");
        // A bad body is not even read without the key.
        let (s, b) = post_raw(&server, "/v1/embeddings", "{oops".into(), key).await;
        assert_eq!(s, 401, "{key:?}: {b}");
        assert_eq!(b["error"]["code"], "invalid_api_key", "OpenAI style: {b}");
        assert_eq!(b["error"]["type"], "invalid_request_error", "OpenAI style: {b}");
        let (s, b) = get(&server, "/v1/models", key).await;
        assert_eq!(s, 401, "{key:?}: {b}");
        assert_eq!(b["error"]["code"], "invalid_api_key", "OpenAI style: {b}");
    }
    let key = Some("s3cret-key");
    let (s, b) = post(&server, "/api/embed", body.clone(), key).await;
    assert_eq!((s, b["embeddings"].as_array().map(Vec::len)), (200, Some(2)), "{b}");
    let (s, b) = post(&server, "/v1/embeddings", body, key).await;
    assert_eq!((s, b["data"].as_array().map(Vec::len)), (200, Some(2)), "{b}");
    assert_eq!(get(&server, "/api/tags", key).await.0, 200);
    assert_eq!(get(&server, "/v1/models", key).await.0, 200);
    // The probes stay open.
    let r = client().get(server.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), 200);
}

/// `/metrics` as a map from `name{labels}` to value.
async fn scrape(server: &Server) -> std::collections::HashMap<String, f64> {
    let body = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("value")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_clients_get_their_own_vectors_from_shared_batches() {
    let data = tempfile::tempdir().expect("tmp");
    let server = Server::embed_server(data.path(), &[]);
    // 8 clients with 4 texts each, every text different.
    let subjects =
        ["tides", "bread", "tyres", "volcanoes", "printing", "espresso", "errors", "bees"];
    let per_client: Vec<Vec<String>> = subjects
        .iter()
        .map(|s| {
            (0..4)
                .map(|j| {
                    format!(
                        "Note {j} on {s}: {}",
                        "a longer sentence about the subject ".repeat(j + 2)
                    )
                })
                .collect()
        })
        .collect();
    let all: Vec<String> = per_client.concat();
    let want = reference(&all);
    let before = scrape(&server).await;
    let batches_before = before.get("ragmill_embedding_batch_size_count").copied().unwrap_or(0.0);

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(per_client.len()));
    let tasks: Vec<_> = per_client
        .iter()
        .enumerate()
        .map(|(i, texts)| {
            let (url, texts, barrier) = (server.url(""), texts.clone(), barrier.clone());
            tokio::spawn(async move {
                let c = client();
                barrier.wait().await;
                let (path, body) = if i % 2 == 0 {
                    ("/api/embed", json!({"model": "all-MiniLM-L6-v2", "input": texts}))
                } else {
                    ("/v1/embeddings", json!({"model": "all-MiniLM-L6-v2", "input": texts}))
                };
                let r = c.post(format!("{url}{path}")).json(&body).send().await.expect("post");
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.expect("json");
                if i % 2 == 0 {
                    floats_of_all(&v["embeddings"])
                } else {
                    v["data"]
                        .as_array()
                        .expect("data")
                        .iter()
                        .map(|d| floats(&d["embedding"]))
                        .collect()
                }
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let got = task.await.expect("client");
        assert_same(&got, &want[i * 4..i * 4 + 4], &format!("client {i}"));
    }

    let after = scrape(&server).await;
    let get = |k: &str| after.get(k).copied().unwrap_or_else(|| panic!("no {k} in {after:?}"));
    assert_eq!(get("ragmill_embedding_api_texts_total{route=\"/api/embed\"}"), 16.0);
    assert_eq!(get("ragmill_embedding_api_texts_total{route=\"/v1/embeddings\"}"), 16.0);
    assert_eq!(
        get("ragmill_embedding_api_requests_total{route=\"/api/embed\",status=\"200\"}"),
        4.0
    );
    let batches = get("ragmill_embedding_batch_size_count") - batches_before;
    eprintln!("8 clients x 4 texts: {batches} batches");
    assert!(batches < 8.0, "32 texts from 8 clients at once took {batches} batches: no batching");
}

#[tokio::test(flavor = "multi_thread")]
async fn ragmill_serve_answers_embeddings_for_a_users_key_only() {
    let data = tempfile::tempdir().expect("tmp");
    let out =
        ragmill(data.path()).args(["users", "add", "alice", "--json"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = serde_json::from_slice::<Value>(&out.stdout).expect("json")["api_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let server = Server::start(data.path(), &["serve", "--bind", "127.0.0.1:0", "--workers", "1"]);

    let texts = texts();
    let body = json!({"model": "all-MiniLM-L6-v2", "input": texts});
    let (status, answer) = post(&server, "/v1/embeddings", body.clone(), Some(&key)).await;
    assert_eq!(status, 200, "{answer}");
    let got: Vec<Vec<f32>> =
        answer["data"].as_array().expect("data").iter().map(|d| floats(&d["embedding"])).collect();
    assert_same(&got, &reference(&texts), "ragmill serve /v1/embeddings");
    let (status, answer) = post(&server, "/api/embed", body.clone(), Some(&key)).await;
    assert_eq!((status, answer["embeddings"].as_array().map(Vec::len)), (200, Some(4)));

    for bad in [None, Some("rmk_not-a-key")] {
        let (status, answer) = post(&server, "/v1/embeddings", body.clone(), bad).await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_api_key", "{answer}");
        let (status, answer) = post(&server, "/api/embed", body.clone(), bad).await;
        assert_eq!(status, 401, "{answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(get(&server, "/v1/models", Some(&key)).await.0, 200);
    assert_eq!(get(&server, "/v1/models", None).await.0, 401);
}
