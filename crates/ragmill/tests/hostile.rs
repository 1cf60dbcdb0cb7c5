//! The hostile corpus (`scripts/make-hostile-corpus.py --small`) through `POST /v1/documents`
//! of a real `ragmill serve`: every file is refused at upload or ends `failed` with a stable
//! code, or `ready` with chunks that fit the model, within a time limit; the server's peak RSS
//! stays under [`PEAK_RSS_LIMIT`]; a normal document afterwards is found by search. A table
//! (file, answer, time, peak RSS) goes to stderr.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

mod common;
use common::*;

/// The server's peak resident memory over the whole run (VmHWM). It holds the model (~90 MB),
/// the tokenizer, the blobs being uploaded and hashed, and at most two documents' text and
/// chunks at a time; the parsers of large and binary files run in child processes under their
/// own 2 GiB address-space limit, which this does not count.
const PEAK_RSS_LIMIT: u64 = 1536 << 20;
/// Every document settles within this time after its upload. The looping PDFs run into the
/// extractor's 60 s timeout.
const SETTLE: Duration = Duration::from_secs(150);
/// The largest chunk in bytes (`ChunkerConfig::default().max_tokens` × `MAX_BYTES_PER_TOKEN`).
const MAX_CHUNK_BYTES: usize = 256 * ragmill_chunk::MAX_BYTES_PER_TOKEN;

/// Codes that say the content is at fault, which a hostile file may earn.
const CONTENT_CODES: &[&str] = &[
    "empty_file",
    "file_too_large",
    "unsupported_type",
    "type_mismatch",
    "invalid_file_name",
    "encrypted",
    "corrupt_file",
    "no_text",
    "decompression_bomb",
    "text_too_large",
    "too_complex",
    "extract_timeout",
    "extract_crashed",
    "chunking_failed",
    "too_many_chunks",
    "chunk_timeout",
];

async fn upload_one(server: &Server, key: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
    let r = client()
        .post(server.url("/v1/documents"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn search_in(server: &Server, key: &str, query: &str, document: Option<i64>) -> Vec<Value> {
    let mut body = json!({"query": query, "top_k": 20});
    if let Some(id) = document {
        body["documents"] = json!([id]);
    }
    let r = client()
        .post(server.url("/v1/search"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("search");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["results"].as_array().cloned().unwrap_or_default()
}

/// One row of the table.
struct Row {
    file: String,
    size: usize,
    answer: String,
    /// Upload to settled, queueing behind other documents included.
    secs: f64,
    /// The document's own stages (the document's `timings`).
    work: f64,
    peak: u64,
}

fn mib(n: u64) -> String {
    format!("{:.0} MiB", n as f64 / f64::from(1 << 20))
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_corpus_fails_cleanly_or_is_ready_with_sane_chunks() {
    let started = Instant::now();
    let corpus = tempfile::tempdir().expect("tmp");
    let made = Command::new("python3")
        .arg(repo().join("scripts/make-hostile-corpus.py"))
        .arg("--small")
        .arg(corpus.path())
        .output()
        .expect("python3 runs scripts/make-hostile-corpus.py");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let manifest = std::fs::read_to_string(corpus.path().join("manifest.tsv")).expect("manifest");

    let data = tempfile::tempdir().expect("tmp");
    let key = add_user(data.path(), "mallory");
    let server = Server::start(data.path(), &[]);

    // Upload every file, one request each (a refused file refuses its whole request).
    let mut rows: Vec<Row> = Vec::new();
    let mut pending: HashMap<i64, (usize, Instant)> = HashMap::new();
    for line in manifest.lines() {
        let mut cols = line.split('\t');
        let (Some(file), Some(name)) = (cols.next(), cols.next()) else { continue };
        let bytes = std::fs::read(corpus.path().join(file)).expect("corpus file");
        let size = bytes.len();
        let sent = Instant::now();
        let (status, body) = upload_one(&server, &key, name, bytes).await;
        let mut row = Row {
            file: file.to_owned(),
            size,
            answer: String::new(),
            secs: 0.0,
            work: 0.0,
            peak: 0,
        };
        if status == 202 {
            let id = body["documents"][0]["id"].as_i64().expect("id");
            pending.insert(id, (rows.len(), sent));
        } else {
            let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
            assert!(CONTENT_CODES.contains(&code.as_str()), "{file}: {status} {body}");
            row.answer = format!("{status} {code}");
            row.secs = sent.elapsed().as_secs_f64();
            row.peak = server.peak_rss();
        }
        rows.push(row);
    }

    // Wait for every accepted document to settle.
    let mut ready: Vec<(i64, usize)> = Vec::new();
    let deadline = Instant::now() + SETTLE;
    while !pending.is_empty() {
        let ids: Vec<i64> = pending.keys().copied().collect();
        for id in ids {
            let doc = get_json(&server, &key, &format!("/v1/documents/{id}")).await.1;
            let state = doc["state"].as_str().unwrap_or("");
            if !matches!(state, "ready" | "failed") {
                continue;
            }
            let Some((i, sent)) = pending.remove(&id) else { continue };
            let row = &mut rows[i];
            row.secs = sent.elapsed().as_secs_f64();
            row.peak = server.peak_rss();
            row.work = doc["timings"]
                .as_object()
                .map_or(0.0, |t| t.values().filter_map(Value::as_f64).sum());
            if state == "ready" {
                let chunks = doc["chunks"].as_u64().unwrap_or(0);
                assert!(chunks >= 1, "{}: ready without chunks: {doc}", row.file);
                row.answer = format!("ready, {chunks} chunks");
                ready.push((id, i));
            } else {
                let code = doc["error"]["code"].as_str().unwrap_or("").to_owned();
                assert!(CONTENT_CODES.contains(&code.as_str()), "{}: {doc}", row.file);
                row.answer = format!("failed {code}");
            }
        }
        if Instant::now() > deadline {
            let stuck: Vec<&str> = pending.values().map(|(i, _)| rows[*i].file.as_str()).collect();
            print_table(&rows, server.peak_rss());
            panic!("not settled within {SETTLE:?}: {stuck:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Ready documents have chunks the model reads: none over the byte bound.
    for (id, i) in &ready {
        let hits = search_in(&server, &key, "text item page", Some(*id)).await;
        assert!(!hits.is_empty(), "{}: no chunk found", rows[*i].file);
        for hit in hits {
            let len = hit["text"].as_str().map_or(0, str::len);
            assert!(
                (1..=MAX_CHUNK_BYTES).contains(&len),
                "{}: a chunk of {len} bytes",
                rows[*i].file
            );
        }
    }

    // A normal document afterwards is processed and found.
    let normal = b"# Lighthouse keeping\n\nThe keeper trims the wick of the lamp every evening \
        and logs passing ships in a leather-bound book."
        .to_vec();
    let sent = Instant::now();
    let (status, body) = upload_one(&server, &key, "lighthouse.md", normal).await;
    assert_eq!(status, 202, "{body}");
    let id = body["documents"][0]["id"].as_i64().expect("id");
    loop {
        let doc = get_json(&server, &key, &format!("/v1/documents/{id}")).await.1;
        if doc["state"] == "ready" {
            break;
        }
        assert!(sent.elapsed() < Duration::from_secs(30), "normal document: {doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hits = search_in(&server, &key, "who trims the lamp wick in the lighthouse", None).await;
    assert_eq!(hits.first().map(|h| h["document_id"].clone()), Some(json!(id)));
    rows.push(Row {
        file: "lighthouse.md (after)".into(),
        size: 0,
        answer: "ready, found by search".into(),
        secs: sent.elapsed().as_secs_f64(),
        work: 0.0,
        peak: server.peak_rss(),
    });

    let peak = server.peak_rss();
    print_table(&rows, peak);
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
    // Expected answers where one answer is right.
    let answer = |file: &str| {
        rows.iter().find(|r| r.file == file).map(|r| r.answer.clone()).unwrap_or_default()
    };
    assert_eq!(answer("zip-bomb.docx"), "failed decompression_bomb");
    assert_eq!(answer("exe.pdf"), "415 type_mismatch");
    assert_eq!(answer("nuls.txt"), "415 unsupported_type");
    assert_eq!(answer("whitespace.txt"), "400 empty_file");
    assert_eq!(answer("deep.html"), "failed too_complex");
    assert_eq!(answer("flat.html"), "failed too_complex");
    for file in
        ["long-line.txt", "nested-list.md", "utf16-nobom.txt", "latin1.txt", "rtl-emoji.txt"]
    {
        assert!(answer(file).starts_with("ready"), "{file}: {}", answer(file));
    }
    // The 4 MB line is cut into many chunks, not kept as one.
    let line_chunks: u64 = answer("long-line.txt")
        .trim_start_matches("ready, ")
        .trim_end_matches(" chunks")
        .parse()
        .unwrap_or(0);
    assert!(line_chunks > 1000, "long-line.txt: {line_chunks} chunks");
    assert!(peak < PEAK_RSS_LIMIT, "peak RSS {} over {}", mib(peak), mib(PEAK_RSS_LIMIT));
}

fn print_table(rows: &[Row], peak: u64) {
    eprintln!(
        "\n{:<24} {:>10}  {:<36} {:>8}  {:>9}",
        "file", "bytes", "answer", "time", "peak RSS"
    );
    for r in rows {
        eprintln!(
            "{:<24} {:>10}  {:<36} {:>7.2}s  {:>9}",
            r.file,
            r.size,
            r.answer,
            r.secs,
            mib(r.peak)
        );
    }
    eprintln!("server peak RSS (VmHWM): {} (bound {})", mib(peak), mib(PEAK_RSS_LIMIT));
}
