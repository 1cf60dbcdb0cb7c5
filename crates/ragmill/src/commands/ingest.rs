//! `ragmill ingest`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use ragmill_core::Progress;
use ragmill_pipeline::{Input, Source};
use serde_json::json;

use crate::Status;
use crate::app;
use crate::cli::{Global, IngestArgs};
use crate::commands::ingest_remote::{Outcome, Remote, state, summarise};
use crate::commands::print_json;
use crate::progress::Reporter;

pub async fn run(g: &Global, args: IngestArgs) -> Result<Status> {
    let inputs = collect(&args.paths)?;
    if inputs.is_empty() {
        bail!(
            "no files found under {}",
            args.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(url) = args.server.clone() {
        return remote(g, args, &url, inputs).await;
    }
    let store = app::store(g)?;
    let user = store.ensure_user(&args.user)?;
    let pipeline = app::pipeline(g, store, args.chunking).await?;
    let pipeline = app::with_vectors(pipeline, &args.vectors).await?;

    let started = Instant::now();
    let reporter = Reporter::new(inputs.iter().map(|i| i.name.clone()).collect());
    let progress = reporter.callback();
    let pipeline = &pipeline;
    let outcomes = each(inputs, args.chunking.parallel, &reporter, |i, input| {
        let progress = Arc::clone(&progress);
        async move {
            let report = move |p: Progress| progress(i, &p);
            pipeline
                .ingest_one(user, input, &report)
                .await
                .map(|ok| {
                    json!({"chunks": ok.chunks, "embedded": ok.embedded,
                           "cache_hits": ok.cache_hits, "unchanged": ok.unchanged})
                })
                .map_err(|e| (e.code().to_owned(), e.to_string()))
        }
    })
    .await;
    reporter.finish();
    let extra = json!({"user": args.user, "batches": pipeline.batcher_stats().batches});
    Ok(report(g, &reporter, &outcomes, started.elapsed().as_secs_f64(), extra, ""))
}

/// `--server`: extract and chunk here, embed and store there.
async fn remote(g: &Global, args: IngestArgs, url: &str, inputs: Vec<Input>) -> Result<Status> {
    let key = args.api_key.as_deref().unwrap_or_default();
    let client = Remote::new(g, url, key, args.chunking)?;
    client.check_key(&args.user).await?;
    let started = Instant::now();
    let reporter = Reporter::new(inputs.iter().map(|i| i.name.clone()).collect());
    let progress = reporter.callback();
    let client = &client;
    let outcomes = each(inputs, args.chunking.parallel, &reporter, |i, input| {
        let progress = Arc::clone(&progress);
        async move {
            let report = move |p: Progress| progress(i, &p);
            client.one(input, &report).await
        }
    })
    .await;
    reporter.finish();
    let extra = json!({"user": args.user, "server": url});
    let seconds = started.elapsed().as_secs_f64();
    Ok(report(g, &reporter, &outcomes, seconds, extra, &format!(" sent to {url}")))
}

/// Runs `one` on every input, `parallel` at a time, telling `reporter` how each ended as it
/// ends (ready, unchanged or failed); the outcomes come back in input order.
async fn each<F, Fut>(
    inputs: Vec<Input>,
    parallel: usize,
    reporter: &Reporter,
    one: F,
) -> Vec<(String, Outcome)>
where
    F: Fn(usize, Input) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let jobs = inputs.into_iter().enumerate().map(|(i, input)| {
        let name = input.name.clone();
        let job = one(i, input);
        async move {
            let outcome = job.await;
            reporter.finished(i, state(&outcome));
            (i, name, outcome)
        }
    });
    let mut done: Vec<(usize, String, Outcome)> =
        futures::stream::iter(jobs).buffer_unordered(parallel.max(1)).collect().await;
    done.sort_by_key(|(i, _, _)| *i);
    done.into_iter().map(|(_, name, outcome)| (name, outcome)).collect()
}

/// Prints the run's summary (JSON with `--json`: `extra`'s fields and the counts) and lists
/// failures; `Partial` if any file failed.
fn report(
    g: &Global,
    reporter: &Reporter,
    outcomes: &[(String, Outcome)],
    seconds: f64,
    extra: serde_json::Value,
    where_to: &str,
) -> Status {
    let mut report = summarise(outcomes);
    let chunks = report["chunks"].as_u64().unwrap_or(0);
    let rate = if seconds > 0.0 { chunks as f64 / seconds } else { 0.0 };
    if let (Some(report), Some(extra)) = (report.as_object_mut(), extra.as_object()) {
        report.extend(extra.clone());
        report.insert("seconds".into(), json!(seconds));
        report.insert("chunks_per_s".into(), json!(rate));
    }
    let failed = report["failed"].as_u64().unwrap_or(0);
    if g.json {
        print_json(&report);
    } else {
        for f in report["failures"].as_array().into_iter().flatten() {
            reporter.line(&format!(
                "failed: {}: {} [{}]",
                f["document"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or(""),
                f["code"].as_str().unwrap_or("")
            ));
        }
        println!(
            "{} documents{where_to}: {} ingested, {} unchanged, {failed} failed; {chunks} chunks ({} embedded, {} from cache) in {seconds:.1} s, {rate:.1} chunks/s",
            outcomes.len(),
            report["ingested"],
            report["unchanged"],
            report["embedded"],
            report["cache_hits"],
        );
    }
    if failed == 0 { Status::Ok } else { Status::Partial }
}

/// Files named on the command line, and the files under folders (recursively, skipping hidden
/// entries). A file is stored under its path relative to the folder given, or its file name.
fn collect(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for root in paths {
        let meta =
            std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
        if meta.is_file() {
            let name = root
                .file_name()
                .map_or_else(|| root.display().to_string(), |n| n.to_string_lossy().into_owned());
            inputs.push(Input { name, source: Source::Path(root.clone()), document: None });
            continue;
        }
        let walk = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !is_hidden(e.path()));
        for entry in walk {
            let entry = entry.with_context(|| format!("walking {}", root.display()))?;
            if entry.file_type().is_file() {
                let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
                inputs.push(Input {
                    name: rel.to_string_lossy().into_owned(),
                    source: Source::Path(entry.path().to_owned()),
                    document: None,
                });
            }
        }
    }
    Ok(inputs)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}
