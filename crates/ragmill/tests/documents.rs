//! `ragmill documents list|pause|resume|cancel|retry` against a real `ragmill serve` (one
//! worker, the real model): documents named by id and by name, the whole batch with `--all`,
//! exit codes and one-line errors.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{Server, add_user, essay, get_json, ragmill, upload, wait_all_ready};
use serde_json::Value;

/// Runs `ragmill --json documents ARGS` against `server` with `key`.
fn documents(data: &std::path::Path, server: &Server, key: &str, args: &[&str]) -> Output {
    ragmill(data)
        .args(["--json", "documents"])
        .args(args)
        .args(["--server", &server.base, "--api-key", key])
        .output()
        .expect("ragmill runs")
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON answer")
}

/// A document long enough to keep the one worker busy for seconds.
fn long_document() -> Vec<u8> {
    (0..40).flat_map(essay).collect()
}

async fn states(server: &Server, key: &str) -> Vec<(String, String)> {
    let (_, list) = get_json(server, key, "/v1/documents?sort=name&order=asc").await;
    let docs = list["documents"].as_array().cloned().unwrap_or_default();
    docs.iter()
        .map(|d| {
            (d["name"].as_str().unwrap_or("").to_owned(), d["state"].as_str().unwrap_or("").into())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_are_paused_resumed_cancelled_and_retried_from_the_command_line() {
    let data = tempfile::tempdir().expect("tempdir");
    let key = add_user(data.path(), "erin");
    let server = Server::start(data.path(), &["--workers", "1"]);
    let client = tempfile::tempdir().expect("tempdir");
    let cli = |args: &[&str]| documents(client.path(), &server, &key, args);

    // The long one first: the one worker is on it while the small ones wait.
    let r = upload(&server, &key, &[("long.md", long_document())]).await;
    assert_eq!(r.status(), 202);
    let small: Vec<(&str, Vec<u8>)> =
        vec![("a.md", essay(1)), ("b.md", essay(2)), ("c.md", essay(3))];
    let r = upload(&server, &key, &small).await;
    assert_eq!(r.status(), 202);
    let listed = json_of(&cli(&["list", "--name", "b.md"]));
    let b = listed["documents"][0]["id"].as_i64().expect("b.md listed");

    // By name and by id; then the rest with --all (the long one stops mid-processing).
    let paused = json_of(&cli(&["pause", "a.md", &b.to_string()]));
    assert_eq!((paused["done"].as_u64(), paused["skipped"].as_u64()), (Some(2), Some(0)));
    let rest = json_of(&cli(&["pause", "--all"]));
    assert_eq!(rest["done"].as_u64(), Some(2), "c.md and long.md: {rest}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = states(&server, &key).await;
        if now.iter().all(|(_, s)| s == "paused") {
            break;
        }
        assert!(Instant::now() < deadline, "not all paused: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = json_of(&cli(&["list", "--state", "paused"]));
    assert_eq!(list["total"].as_u64(), Some(4), "{list}");

    // Human output: a line a document, then resume everything and let it finish.
    let human = |args: &[&str]| {
        ragmill(client.path())
            .arg("documents")
            .args(args)
            .args(["--server", &server.base, "--api-key", &key])
            .output()
            .expect("runs")
    };
    let out = human(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().filter(|l| l.contains("  paused  ")).count(), 4, "{text}");
    let out = human(&["resume", "--all"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().next(), Some("resumed 4 document(s)"));
    wait_all_ready(&server, &key, 4, Duration::from_secs(300)).await;

    // Nothing left to cancel: skipped, exit 1; retry finds nothing failed.
    let out = cli(&["cancel", "a.md"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_of(&out)["skipped"].as_u64(), Some(1));
    assert_eq!(json_of(&cli(&["retry", "--all"]))["done"].as_u64(), Some(0));

    // Bad input: one line on stderr, exit 2.
    for (args, says) in [
        (vec!["pause", "nothing-called-this.md"], "no document called \"nothing-called-this.md\""),
        (vec!["list", "--state", "sleeping"], "invalid_query"),
    ] {
        let out = cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = documents(client.path(), &server, "rmk_nope_nope", &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the API key"));
    let out = ragmill(client.path()).args(["documents", "pause"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "neither documents nor --all");
}
