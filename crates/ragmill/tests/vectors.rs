//! The binary with a real ChromaDB server: `vectors migrate` both ways without re-embedding
//! (the migrations run with no model at all), `vectors sync` rebuilding a lost collection,
//! `ingest`, `search` and `serve` with `--vectors chroma`, and the `[vectors]` file section.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{get_json, ragmill, search, upload, wait_all_ready};
use ragmill_chroma::testing::ChromaProcess;
use ragmill_chroma::{ChromaConfig, ChromaIndex};
use ragmill_core::{UserId, VectorIndex};
use serde_json::Value;

const TIDES: &str = "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans.\n\n\
    Spring tides happen at new and full moon; neap tides at the quarter moons.";
const BREAD: &str = "A sourdough starter is a culture of wild yeast and lactic acid bacteria.\n\n\
    Feed it flour and water every day to keep it alive.";
const BIKES: &str = "To fix a flat bicycle tyre, remove the wheel and patch the inner tube.\n\n\
    Inflate it to the pressure written on the tyre wall.";
const COMETS: &str = "Comets are icy bodies whose tails point away from the Sun.\n\n\
    Halley's comet returns every seventy-six years.";

/// Runs `ragmill ARGS --json` on `data` and answers its JSON line; panics with stderr if it fails.
fn json(data: &Path, args: &[&str]) -> Value {
    let out = ragmill(data).arg("--json").args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "ragmill {args:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rfind(|l| l.starts_with('{')).unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The document names of a `ragmill search --json` answer, best first.
fn found(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .map(|r| r.iter().filter_map(|h| h["document"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn migrate_both_ways_and_sync_without_re_embedding() {
    let chroma = ChromaProcess::shared();
    let url = chroma.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).expect("docs");
    for (name, body) in [("tides.md", TIDES), ("bread.md", BREAD), ("bikes.md", BIKES)] {
        std::fs::write(docs.join(name), body).expect("write");
    }
    let database = format!("db_{}", std::process::id());
    let on_chroma =
        ["--vectors", "chroma", "--chroma-url", url.as_str(), "--chroma-database", &database];
    let docs_arg = docs.to_str().expect("utf-8");
    json(&data, &["ingest", "--user", "ann", docs_arg]);

    // Migrating needs no model: run it with none.
    let no_model = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ragmill"))
            .arg("--data-dir")
            .arg(&data)
            .args(["--model-dir", "/nonexistent", "--json"])
            .args(args)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).expect("json")
    };
    let mut args = vec!["vectors", "migrate", "--to", "chroma"];
    args.extend(&on_chroma[2..]);
    let moved = no_model(&args);
    assert_eq!(moved["written"], 3, "{moved}");
    let chunks = moved["chunks"].as_u64().expect("chunks");
    assert!(chunks >= 3, "{moved}");
    let again = no_model(&args);
    assert_eq!(
        (again["written"].as_u64(), again["retired"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );

    let search = |query: &str, extra: &[&str]| {
        let mut args = vec!["search", "--user", "ann", "--search-mode", "vector"];
        args.extend(extra);
        args.push(query);
        found(&json(&data, &args))
    };
    assert_eq!(search("why does the moon pull the oceans", &on_chroma)[0], "tides.md");

    // Ingesting with --vectors chroma writes there.
    std::fs::write(docs.join("comets.md"), COMETS).expect("write");
    let mut args = vec!["ingest", "--user", "ann"];
    args.extend(on_chroma);
    args.push(docs_arg);
    json(&data, &args);
    assert_eq!(search("icy bodies with tails", &on_chroma)[0], "comets.md");

    // A lost collection comes back from the data directory.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut config = ChromaConfig::new(url.as_str());
        config.database = database.clone();
        let index = ChromaIndex::connect(config).await.expect("connect");
        index.remove_user(UserId(1)).await.expect("drop the collection");
    });
    assert!(search("icy bodies with tails", &on_chroma).is_empty(), "the collection is gone");
    let mut args = vec!["vectors", "sync", "--user", "ann"];
    args.extend(&on_chroma[2..]);
    let synced = no_model(&args);
    assert_eq!(synced["written"], 4, "{synced}");
    assert_eq!(search("icy bodies with tails", &on_chroma)[0], "comets.md");

    // Back to the embedded index: nothing to copy, everything there.
    let back = no_model(&["vectors", "migrate", "--to", "embedded"]);
    assert_eq!(back["documents"], 4, "{back}");
    assert_eq!(search("icy bodies with tails", &[])[0], "comets.md");
    assert_eq!(search("sourdough yeast culture", &[])[0], "bread.md");
}

#[test]
fn serve_keeps_vectors_in_chroma_as_its_configuration_file_says() {
    let chroma = ChromaProcess::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("ragmill.toml");
    let database = format!("serve_{}", std::process::id());
    std::fs::write(
        &config,
        format!(
            "[vectors]\nbackend = \"chroma\"\nurl = \"{}\"\ndatabase = \"{database}\"\n",
            chroma.url()
        ),
    )
    .expect("config");
    let key = common::add_admin(&data, "bob");
    let server = common::Server::start(&data, &["--config", config.to_str().expect("utf-8")]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (status, ready) = get_json(&server, &key, "/readyz").await;
        assert_eq!((status, ready["vectors"].as_str()), (200, Some("chroma")), "{ready}");
        let (status, settings) = get_json(&server, &key, "/v1/admin/settings").await;
        assert_eq!(status, 200, "{settings}");
        assert_eq!(settings["vectors_store"]["backend"], "chroma", "{settings}");
        assert_eq!(settings["vectors_store"]["database"], database.as_str(), "{settings}");
        assert_eq!(settings["embedding"]["backend"], "local", "{settings}");
        let files =
            vec![("tides.md", TIDES.as_bytes().to_vec()), ("bikes.md", BIKES.as_bytes().to_vec())];
        assert_eq!(upload(&server, &key, &files).await.status(), 202);
        wait_all_ready(&server, &key, 2, Duration::from_secs(60)).await;
        let answer = search(&server, &key, "moon and oceans").await;
        assert_eq!(answer["results"][0]["document"], "tides.md", "{answer}");
        let mut config = ChromaConfig::new(chroma.url());
        config.database = database.clone();
        let index = ChromaIndex::connect(config).await.expect("connect");
        let held = index.inventory(UserId(1)).await.expect("inventory");
        assert_eq!(held.len(), 2, "both documents are in Chroma: {held:?}");
    });
}
