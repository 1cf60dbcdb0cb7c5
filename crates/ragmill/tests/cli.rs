//! The `ragmill` binary end to end: real files, the real model, a real SQLite data directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    std::env::var_os("RAGMILL_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/all-MiniLM-L6-v2"))
}

/// Runs `ragmill` with `args` against `data`.
fn ragmill(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragmill"))
        .arg("--data-dir")
        .arg(data)
        .arg("--model-dir")
        .arg(model_dir())
        .args(args)
        .output()
        .expect("ragmill runs")
}

fn json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    })
}

fn search(data: &Path, user: &str, query: &str) -> Vec<Value> {
    let out = ragmill(data, &["search", "--user", user, "--json", "--top-k", "3", query]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json(&out)["results"].as_array().cloned().unwrap_or_default()
}

#[test]
fn ingest_the_samples_then_search_each_format() {
    let data = tempfile::tempdir().expect("tmp");
    let out = ragmill(data.path(), &["ingest", "--user", "demo", "--json"]).status;
    assert!(!out.success(), "ingest without paths is a usage error");

    let samples = repo().join("samples");
    let out = ragmill(
        data.path(),
        &["ingest", "--user", "demo", "--json", samples.to_str().expect("utf8")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&out);
    let lines = String::from_utf8_lossy(&out.stderr);
    assert!(lines.contains("home-espresso.txt: ready"), "one line per file: {lines}");
    assert_eq!(summary["documents"], 7);
    assert_eq!(summary["ingested"], 7);
    assert_eq!(summary["failed"], 0);
    let chunks = summary["chunks"].as_u64().expect("chunks");
    assert!(chunks >= 14, "seven 600-word documents make more than two chunks each: {chunks}");

    // One query per format; the right document must come first.
    let cases = [
        ("how do I keep a sourdough starter alive", "sourdough-starter.md"),
        ("what causes spring and neap tides", "what-causes-tides.html"),
        ("how do I patch a punctured inner tube", "bicycle-tyre-repair.docx"),
        ("who invented movable type printing in Europe", "printing-press.pdf"),
        ("what dose and ratio should I use for espresso", "home-espresso.txt"),
        ("volcans de la Chaîne des Puys", "volcans-auvergne.txt"),
        ("how does the question mark operator propagate errors", "rust-error-handling.md"),
    ];
    for (query, want) in cases {
        let results = search(data.path(), "demo", query);
        assert_eq!(results[0]["document"], want, "query {query:?} gave {results:#?}");
        let score = results[0]["score"].as_f64().expect("score");
        assert!(score > 0.2 && score <= 1.0001, "{score}");
        assert!(results[0]["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
    // The PDF keeps page numbers; the HTML page lost its script and navigation.
    let results = search(data.path(), "demo", "printing press history Gutenberg");
    let page =
        results.iter().find(|r| r["document"] == "printing-press.pdf").expect("pdf hit")["page"]
            .as_u64();
    assert!(matches!(page, Some(1 | 2)), "{page:?}");
    let html = search(data.path(), "demo", "cookie consent analytics tracking script");
    assert!(
        html.iter()
            .filter(|r| r["document"] == "what-causes-tides.html")
            .all(|r| !r["text"].as_str().unwrap_or("").contains("gtag")),
        "script text leaked into chunks: {html:#?}"
    );

    // Again, unchanged: nothing embedded.
    let out = ragmill(
        data.path(),
        &["ingest", "--user", "demo", "--json", samples.to_str().expect("utf8")],
    );
    let again = json(&out);
    assert_eq!(
        (again["unchanged"].as_u64(), again["embedded"].as_u64()),
        (Some(7), Some(0)),
        "{again}"
    );
    // Each file's line says so too, as the summary does.
    let lines = String::from_utf8_lossy(&out.stderr);
    assert_eq!(lines.matches(": unchanged").count(), 7, "{lines}");
    assert!(!lines.contains(": ready"), "{lines}");

    // Another user sees none of it.
    let out = ragmill(
        data.path(),
        &[
            "ingest",
            "--user",
            "eve",
            "--json",
            samples.join("home-espresso.txt").to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success());
    for r in search(data.path(), "eve", "sourdough starter feeding") {
        assert_eq!(r["document"], "home-espresso.txt");
    }
    let out = ragmill(data.path(), &["search", "--user", "nobody", "anything"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named"), "one clear line");
}

/// A folder of hostile files beside good ones: every bad file fails with its reason, every good
/// file is ingested, and the exit code is 1.
#[test]
fn hostile_files_fail_alone() {
    let dir = tempfile::tempdir().expect("tmp");
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).expect("mkdir");
    let write = |name: &str, bytes: &[u8]| std::fs::write(docs.join(name), bytes).expect("write");
    write(
        "good.md",
        b"# Lighthouses\n\nA lighthouse guides ships at night with a rotating beam of light.",
    );
    write("empty.txt", b"");
    write("fake.pdf", b"This is plain text pretending to be a PDF document.");
    let junk: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    write("junk.bin", &junk);
    // A well-formed PDF whose page dictionary nests 200,000 arrays deep: a recursive parser
    // overflows its stack on this, which only a separate process survives.
    let nested = deeply_nested_pdf(200_000);
    write("nested.pdf", &nested);
    write("bomb.docx", &zip_bomb());
    let truncated = std::fs::read(repo().join("samples/printing-press.pdf")).expect("sample pdf");
    write("truncated.pdf", &truncated[..truncated.len() * 2 / 5]);

    let data = dir.path().join("data");
    let out = ragmill(&data, &["ingest", "--user", "u", "--json", docs.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&out);
    assert_eq!(summary["ingested"], 1, "{summary:#}");
    let failures = summary["failures"].as_array().expect("failures");
    let code = |doc: &str| {
        failures
            .iter()
            .find(|f| f["document"] == doc)
            .map(|f| f["code"].as_str().unwrap_or("").to_owned())
            .unwrap_or_else(|| panic!("{doc} not failed: {summary:#}"))
    };
    assert_eq!(code("empty.txt"), "empty_file");
    assert_eq!(code("fake.pdf"), "type_mismatch");
    assert_eq!(code("junk.bin"), "unsupported_type");
    assert_eq!(code("bomb.docx"), "decompression_bomb");
    assert!(
        ["corrupt_file", "extract_crashed", "no_text"].contains(&code("nested.pdf").as_str()),
        "{}",
        code("nested.pdf")
    );
    assert!(
        ["corrupt_file", "no_text", "extract_crashed"].contains(&code("truncated.pdf").as_str()),
        "{}",
        code("truncated.pdf")
    );
    for f in failures {
        let message = f["message"].as_str().unwrap_or("");
        assert!(!message.is_empty() && !message.contains('\n'), "one-line message: {message:?}");
    }
    assert_eq!(search(&data, "u", "ships at night")[0]["document"], "good.md");
}

/// A PDF with a valid cross-reference table and one page whose dictionary nests `depth` arrays.
fn deeply_nested_pdf(depth: usize) -> Vec<u8> {
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Deep {deep} >>"),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .bytes(),
    );
    out
}

/// A DOCX whose document.xml inflates to 300 MiB from a few hundred KiB.
fn zip_bomb() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("[Content_Types].xml", opts).expect("entry");
        zip.write_all(b"<?xml version=\"1.0\"?><Types/>").expect("write");
        zip.start_file("word/document.xml", opts).expect("entry");
        zip.write_all(b"<w:document><w:body><w:p><w:r><w:t>").expect("write");
        let block = vec![b'a'; 1 << 20];
        for _ in 0..300 {
            zip.write_all(&block).expect("write");
        }
        zip.write_all(b"</w:t></w:r></w:p></w:body></w:document>").expect("write");
        zip.finish().expect("finish");
    }
    buf.into_inner()
}

#[test]
fn embed_prints_reference_quality_vectors() {
    let data = tempfile::tempdir().expect("tmp");
    let out =
        ragmill(data.path(), &["embed", "--json", "What is retrieval-augmented generation?", ""]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["dimensions"], 384);
    let embeddings = v["embeddings"].as_array().expect("embeddings");
    assert_eq!(embeddings.len(), 2);
    // The first reference vector of the fixtures starts with these values.
    let first: Vec<f64> = embeddings[0]
        .as_array()
        .expect("vector")
        .iter()
        .take(3)
        .filter_map(Value::as_f64)
        .collect();
    let want = [-0.11101916, -0.02631343, -0.05789432];
    for (got, want) in first.iter().zip(want) {
        assert!((got - want).abs() < 2e-3, "{first:?}");
    }
    let out = ragmill(data.path(), &["models", "verify", "--json"]);
    assert!(out.status.success());
    assert_eq!(json(&out)["ok"], true);
}

/// `ragmill embed --json` vectors for `texts`, with `env` set.
fn embeddings(env: &[(&str, &str)], flags: &[&str], texts: &[&str]) -> Vec<Vec<f64>> {
    let data = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_ragmill"))
        .arg("--data-dir")
        .arg(data.path())
        .arg("--model-dir")
        .arg(model_dir())
        .args(["embed", "--json"])
        .args(flags)
        .args(texts)
        .envs(env.iter().copied())
        .output()
        .expect("ragmill runs");
    json(&out)["embeddings"]
        .as_array()
        .expect("embeddings")
        .iter()
        .map(|v| v.as_array().expect("vector").iter().map(|x| x.as_f64().expect("float")).collect())
        .collect()
}

fn cosine64(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt()
        * b.iter().map(|x| x * x).sum::<f64>().sqrt())
}

#[test]
fn every_kernel_level_computes_the_same_vectors() {
    // The CPU's best kernels against each fallback an older CPU would use (RAGMILL_KERNELS can
    // only lower the level), in both precisions. FP32 differs only in float rounding; INT8
    // also in the odd activation that rounding moves to the neighbouring level.
    let texts = ["Tides follow the moon.", "", "Ein längerer Satz über Gezeiten, Mond und Erde."];
    for (precision, floor) in [("fp32", 0.99999), ("int8", 0.999)] {
        let flags = ["--precision", precision];
        let best = embeddings(&[], &flags, &texts);
        for level in ["portable", "avx2"] {
            let other = embeddings(&[("RAGMILL_KERNELS", level)], &flags, &texts);
            for (a, b) in best.iter().zip(&other) {
                let c = cosine64(a, b);
                assert!(c > floor, "{precision} on {level} kernels: cosine {c}");
            }
        }
    }
}

#[test]
fn eval_on_the_hand_built_beir_set() {
    let data = tempfile::tempdir().expect("tmp");
    let beir = repo().join("crates/ragmill/tests/data/beir-mini");
    let out = ragmill(data.path(), &["eval", "--json", "--beir", beir.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = json(&out);
    assert_eq!(m["queries"], 17);
    assert_eq!(m["documents"], 40);
    assert_eq!(m["failed_documents"], 0);
    // sentence-transformers scores nDCG@10 0.997 and MRR@10 1.0 on this set (see its README).
    assert!(m["ndcg@10"].as_f64().expect("ndcg") >= 0.98, "{m}");
    assert!(m["mrr@10"].as_f64().expect("mrr") >= 0.98, "{m}");
    assert_eq!(
        m["recall@100"].as_f64(),
        Some(1.0),
        "every relevant document is in the top 100 of 40"
    );

    let out = ragmill(data.path(), &["eval", "--beir", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "one-line error");
}

#[test]
fn bench_embed_reports_throughput() {
    let data = tempfile::tempdir().expect("tmp");
    let out = ragmill(
        data.path(),
        &["bench", "embed", "--json", "--chunks", "8", "--tokens", "64", "--batch", "4"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&out);
    assert_eq!(r["chunks"], 8);
    assert_eq!(r["tokens"], 8 * 64, "synthetic chunks are exactly 64 tokens with [CLS] and [SEP]");
    assert!(r["chunks_per_s"].as_f64().expect("rate") > 0.0);
}

#[test]
fn users_get_keys_shown_once_and_revocable() {
    let data = tempfile::tempdir().expect("tmp");
    let out = ragmill(data.path(), &["users", "add", "alice", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added = json(&out);
    assert_eq!(added["user"], "alice");
    let key = added["api_key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("rmk_"));
    let db = std::fs::read(data.path().join("ragmill.db")).expect("db");
    let secret = key.rsplit('_').next().expect("secret");
    assert!(!String::from_utf8_lossy(&db).contains(secret), "the key is not stored in clear");

    let list = json(&ragmill(data.path(), &["users", "list", "--json"]));
    assert_eq!(list["users"][0]["name"], "alice");
    assert_eq!(list["users"][0]["active_keys"], 1);

    let out = ragmill(data.path(), &["users", "revoke", "alice", "--json"]);
    assert_eq!(json(&out)["revoked"], 1);
    let list = json(&ragmill(data.path(), &["users", "list", "--json"]));
    assert_eq!(list["users"][0]["active_keys"], 0);
    let out = ragmill(data.path(), &["users", "revoke", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The embedding flags are global (accepted anywhere, one set of variables and one file), but
/// listed only by the commands that embed.
#[test]
fn help_lists_embedding_flags_only_where_they_matter() {
    let data = tempfile::tempdir().expect("tmp");
    let help = |args: &[&str]| {
        let out = ragmill(data.path(), args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in
        [&["users", "add", "--help"][..], &["users", "--help"], &["vectors", "sync", "--help"]]
    {
        let text = help(args);
        assert!(!text.contains("--embed-endpoint"), "{args:?}:\n{text}");
        assert!(!text.contains("--precision"), "{args:?}:\n{text}");
    }
    let text = help(&["bench", "embed", "--help"]);
    assert!(!text.contains("--embed-endpoint") && text.contains("--precision"), "{text}");
    let text = help(&["ingest", "--help"]);
    assert!(text.contains("--embed-endpoint") && text.contains("--model-dir"), "{text}");
    // Still accepted (and ignored) where hidden, before or after the subcommand, and from the
    // environment.
    let out = Command::new(env!("CARGO_BIN_EXE_ragmill"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--embed-backend", "ollama", "users", "add", "dora", "--embed-model", "m", "--json"])
        .env("RAGMILL_EMBED_ENDPOINTS", "http://127.0.0.1:9")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["user"], "dora");
}

/// Chunks made from one sample under the given config file, environment and flags.
fn chunks_with(config: &Path, env: &[(&str, &str)], flags: &[&str]) -> u64 {
    let data = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_ragmill"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data.path())
        .arg("--model-dir")
        .arg(model_dir())
        .args(["ingest", "--user", "u", "--json"])
        .args(flags)
        .arg(repo().join("samples/home-espresso.txt"))
        .env_remove("RAGMILL_CHUNK_TOKENS") // whatever the caller's shell has set
        .envs(env.iter().copied())
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json(&out)["chunks"].as_u64().expect("chunks")
}

#[test]
fn configuration_file_sits_under_environment_and_flags() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("ragmill.toml");
    std::fs::write(&config, "[chunking]\nchunk_tokens = 64\nchunk_overlap = 0\n").expect("write");
    let from_file = chunks_with(&config, &[], &[]);
    let from_env = chunks_with(&config, &[("RAGMILL_CHUNK_TOKENS", "128")], &[]);
    let from_flag =
        chunks_with(&config, &[("RAGMILL_CHUNK_TOKENS", "128")], &["--chunk-tokens", "256"]);
    assert!(
        from_file > from_env && from_env > from_flag,
        "file {from_file}, env {from_env}, flag {from_flag}"
    );

    let users_list = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ragmill"))
            .arg("--config")
            .arg(config)
            .args(["users", "list"])
            .output()
            .expect("runs")
    };
    std::fs::write(&config, "[chunking]\nchunk_tokens = \"big\"\n").expect("write");
    let out = users_list(&config);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ragmill.toml") && err.trim().lines().count() == 1, "{err}");
    std::fs::write(&config, "colour = \"blue\"\n").expect("write");
    let out = users_list(&config);
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"), "unknown keys are named");
}
