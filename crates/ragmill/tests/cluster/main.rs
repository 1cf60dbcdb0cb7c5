//! The cluster as the origin plan draws it, with real processes: Redis, a main server
//! (`ragmill serve --queue-url … --workers 0`) and three `ragmill worker`s, each in its own
//! network namespace, sharing nothing but the network. Uploads are processed by the workers
//! with the real model, their events reach the user's stream on the main server, users stay
//! isolated, a worker killed with -9 mid-document has its job taken over, and uploads made
//! while Redis is down are processed once it is back (restarted on its AOF).

mod chaos;
mod isolation;
mod net;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use net::{Host, Lab, Proc};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const WORKER_KEY: &str = "rmw_cluster_test_key_0123456789abcdef";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    std::env::var_os("RAGMILL_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/all-MiniLM-L6-v2"))
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ragmill"))
}

fn add_user(data: &Path, name: &str) -> String {
    add(data, &["users", "add", name, "--json"])
}

fn add(data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin()).arg("--data-dir").arg(data).args(args).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["api_key"].as_str().expect("key").to_owned()
}

/// Starts Redis in `host`, its append-only file in `dir`, and waits until it answers.
fn redis(host: &Host, dir: &Path) -> Proc {
    let mut cmd = host.command(Path::new("redis-server"));
    cmd.args(["--bind", &host.ip, "--port", "6379", "--protected-mode", "no", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
        .arg(dir);
    let proc = Proc::spawn(cmd);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect((host.ip.as_str(), 6379)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start (is it installed?)");
        std::thread::sleep(Duration::from_millis(50));
    }
    proc
}

fn queue_url(redis: &Host) -> String {
    format!("redis://{}:6379/0", redis.ip)
}

/// Starts the main server in `host` and waits for its banner.
fn main_server(host: &Host, data: &Path, redis: &Host) -> (Proc, String) {
    let mut cmd = host.command(bin());
    cmd.arg("--data-dir").arg(data).arg("--model-dir").arg(model_dir());
    cmd.args(["serve", "--bind", &format!("{}:8080", host.ip), "--workers", "0"])
        .args(["--queue-url", &queue_url(redis), "--worker-key", WORKER_KEY])
        .args(["--lease-secs", "3", "--reconcile-secs", "1"]);
    let mut proc = Proc::spawn(cmd);
    let stdout = proc.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("banner");
    assert!(line.contains("listening"), "main server did not start: {line:?}");
    (proc, format!("http://{}:8080", host.ip))
}

fn worker(host: &Host, main: &str, redis: &Host, scratch: &Path) -> Proc {
    let mut cmd = host.command(bin());
    cmd.arg("--data-dir").arg(scratch.join(&host.ns)).arg("--model-dir").arg(model_dir());
    cmd.args(["worker", "--server", main, "--workers", "1", "--lease-secs", "3"]).args([
        "--queue-url",
        &queue_url(redis),
        "--worker-key",
        WORKER_KEY,
    ]);
    Proc::spawn(cmd)
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("samples").join(name)).expect("sample")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

async fn upload(base: &str, key: &str, files: &[(&str, Vec<u8>)]) -> Vec<i64> {
    let mut form = Form::new();
    for (name, bytes) in files {
        form = form.part("file", Part::bytes(bytes.clone()).file_name(name.to_string()));
    }
    let r = http()
        .post(format!("{base}/v1/documents"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.expect("json");
    v["documents"].as_array().expect("documents").iter().filter_map(|d| d["id"].as_i64()).collect()
}

async fn document(base: &str, key: &str, id: i64) -> Value {
    let r = http().get(format!("{base}/v1/documents/{id}")).bearer_auth(key).send().await;
    r.expect("get").json().await.expect("json")
}

/// Waits until every one of `ids` is ready; panics on a failed one or after `within`.
async fn all_ready(base: &str, key: &str, ids: &[i64], within: Duration) {
    let deadline = Instant::now() + within;
    for &id in ids {
        loop {
            let doc = document(base, key, id).await;
            match doc["state"].as_str() {
                Some("ready") => break,
                Some("failed") => panic!("document {id} failed: {doc}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "document {id} not ready in time: {doc}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn search(base: &str, key: &str, query: &str) -> Vec<String> {
    let r = http()
        .post(format!("{base}/v1/search"))
        .bearer_auth(key)
        .json(&json!({"query": query, "top_k": 10}))
        .send()
        .await
        .expect("search");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|h| h["document"].as_str().map(str::to_owned))
        .collect()
}

/// A long document of distinct paragraphs (hundreds of chunks).
fn essay(words: usize) -> Vec<u8> {
    let vocab = ["harbour", "lantern", "granite", "meadow", "copper", "thistle", "orbit", "quartz"];
    let mut text = String::from("# Field notes\n\n");
    for i in 0..words {
        text.push_str(vocab[(i * 7 + i / 3) % vocab.len()]);
        text.push_str(if i % 23 == 22 { ".\n\n" } else { " " });
        if i % 97 == 0 {
            text.push_str(&format!("entry {i} "));
        }
    }
    text.into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_in_network_namespaces_processes_uploads_survives_kills_and_redis_restarts() {
    let scratch = tempfile::tempdir().expect("tmp");
    let lab = Lab::new(5);
    let [redis_host, main_host, w1, w2, w3] = &lab.hosts[..] else { unreachable!() };
    let redis_dir = scratch.path().join("redis");
    std::fs::create_dir_all(&redis_dir).expect("dir");
    let mut redis_proc = redis(redis_host, &redis_dir);
    let data = scratch.path().join("main");
    let (alice, bob) = (add_user(&data, "alice"), add_user(&data, "bob"));
    let admin = add(&data, &["users", "add", "root", "--admin", "--json"]);
    let carol = add_user(&data, "carol");
    let (_main, base) = main_server(main_host, &data, redis_host);
    let mut workers: Vec<Proc> =
        [w1, w2, w3].iter().map(|w| worker(w, &base, redis_host, scratch.path())).collect();

    // Alice's stream, on the main server; the workers' events reach it through Redis.
    let sse = http()
        .get(format!("{base}/v1/events"))
        .bearer_auth(&alice)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("sse");
    assert_eq!(sse.status(), 200);
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut body = sse.bytes_stream();
        while let Some(Ok(chunk)) = body.next().await {
            let _ = tx.send(String::from_utf8_lossy(&chunk).into_owned());
        }
    });

    // 1. Uploads are processed by the workers; each user finds only their own.
    let names = ["home-espresso.txt", "sourdough-starter.md", "rust-error-handling.md"];
    let files: Vec<_> = names.iter().map(|n| (*n, sample(n))).collect();
    let alice_docs = upload(&base, &alice, &files).await;
    let more = ["what-causes-tides.html", "printing-press.pdf", "volcans-auvergne.txt"];
    let files: Vec<_> = more.iter().map(|n| (*n, sample(n))).collect();
    let alice_docs = [alice_docs, upload(&base, &alice, &files).await].concat();
    let bob_docs =
        upload(&base, &bob, &[("bob-tides.html", sample("what-causes-tides.html"))]).await;
    all_ready(&base, &alice, &alice_docs, Duration::from_secs(240)).await;
    all_ready(&base, &bob, &bob_docs, Duration::from_secs(60)).await;
    let found = search(&base, &alice, "how do I feed a sourdough starter").await;
    assert_eq!(found.first().map(String::as_str), Some("sourdough-starter.md"), "{found:?}");
    let bobs = search(&base, &bob, "espresso sourdough tides volcano").await;
    assert!(bobs.iter().all(|d| d == "bob-tides.html"), "bob sees only his own: {bobs:?}");

    let mut heard = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alice_docs.iter().any(|id| !heard.contains(&format!("\"id\":{id},\"chunks\""))) {
        assert!(Instant::now() < deadline, "ready events missing from alice's stream: {heard}");
        if let Ok(Some(piece)) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
            heard.push_str(&piece);
        }
    }
    assert!(heard.contains("document.progress"), "progress crossed processes: {heard}");
    assert!(heard.contains("rag.available"), "{heard}");
    assert!(!heard.contains(&format!("\"id\":{}", bob_docs[0])), "bob's events reach only bob");

    isolation::three_users_see_nothing_of_each_other(&base, &[alice.clone(), bob.clone(), carol])
        .await;

    // The dashboard lists the three worker processes (reported through Redis), to an
    // administrator only.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http().get(format!("{base}/v1/stats")).bearer_auth(&admin).send().await;
        let stats: Value = r.expect("stats").json().await.expect("json");
        let processes = stats["processes"].as_array().cloned().unwrap_or_default();
        let done: u64 = processes.iter().filter_map(|p| p["jobs_done"].as_u64()).sum();
        if processes.len() == 3 && done >= 7 {
            assert!(processes.iter().all(|p| p["slots"] == 1), "{processes:?}");
            break;
        }
        assert!(Instant::now() < deadline, "worker processes not listed: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = http().get(format!("{base}/v1/stats")).bearer_auth(&alice).send().await;
    let stats: Value = r.expect("stats").json().await.expect("json");
    assert_eq!(stats["processes"], json!([]), "users do not see the cluster");

    // The worker key is not a user's key, and a user's key opens no internal route.
    let r = http().get(format!("{base}/v1/documents")).bearer_auth(WORKER_KEY).send().await;
    assert_eq!(r.expect("req").status(), 401);
    let r = http()
        .post(format!("{base}/internal/v1/stored"))
        .bearer_auth(&alice)
        .json(&json!({"user": 1, "name": "home-espresso.txt"}))
        .send()
        .await;
    assert_eq!(r.expect("req").status(), 401);

    // 2. A worker killed with -9 mid-document: another takes the job over once its lease
    //    (3 s) runs out.
    workers[1].kill();
    workers[2].kill();
    let big = upload(&base, &alice, &[("field-notes.md", essay(40_000))]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let doc = document(&base, &alice, big[0]).await;
        if doc["stage"] == "embedding" {
            break;
        }
        assert!(doc["state"] != "ready", "finished before it could be interrupted: {doc}");
        assert!(Instant::now() < deadline, "never reached embedding: {doc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers[0].kill();
    let killed = Instant::now();
    workers.push(worker(w2, &base, redis_host, scratch.path()));
    all_ready(&base, &alice, &big, Duration::from_secs(240)).await;
    let doc = document(&base, &alice, big[0]).await;
    eprintln!(
        "cluster: killed worker's document ready {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    assert!(doc["chunks"].as_u64() > Some(100), "{doc}");
    assert!(doc["error"].is_null(), "{doc}");

    // 3. Redis goes away: uploads are still accepted (and search answers); once it is back
    //    on its append-only file, they are processed.
    redis_proc.kill();
    let during = upload(
        &base,
        &alice,
        &[(
            "during-outage.md",
            sample("rust-error-handling.md")
                .into_iter()
                .chain(b"\n\nWritten while Redis was down.\n".iter().copied())
                .collect(),
        )],
    )
    .await;
    assert!(!search(&base, &alice, "espresso").await.is_empty(), "search works without Redis");
    redis_proc = redis(redis_host, &redis_dir);
    all_ready(&base, &alice, &during, Duration::from_secs(120)).await;
    drop(redis_proc);
}
