//! `ragmill eval`: retrieval quality on a BEIR-format dataset.
//!
//! Each corpus entry (title and text) is ingested as one document into a scratch store through
//! the normal pipeline (extraction, chunking, embedding), each query is searched like a user's
//! search in every mode (vector, keyword, hybrid), and a document's score is its best chunk's
//! rank-wise (documents are ranked by their best chunk). The metrics are BEIR's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ragmill_eval::{BeirDataset, evaluate};
use ragmill_pipeline::{Input, SearchMode, SearchOptions, Source};
use serde_json::json;

use crate::Status;
use crate::app;
use crate::cli::{EvalArgs, Global};
use crate::commands::print_json;

/// Chunks retrieved per query before they are folded into documents.
const CHUNKS_PER_QUERY: usize = 300;

pub async fn run(g: &Global, args: EvalArgs) -> Result<Status> {
    let dataset = BeirDataset::load(&args.beir, &args.split)?;
    let scratch = tempfile::tempdir().context("creating a scratch data directory")?;
    let store = Arc::new(ragmill_store::Store::open(scratch.path())?);
    let user = store.ensure_user("eval")?;
    let pipeline = app::pipeline(g, Arc::clone(&store), args.chunking).await?;
    let pipeline = app::searching(pipeline, &args.retrieval)?;

    let started = Instant::now();
    let inputs: Vec<Input> = dataset
        .corpus
        .iter()
        .map(|d| {
            let text = if d.title.is_empty() {
                d.text.clone()
            } else {
                format!("{}\n\n{}", d.title, d.text)
            };
            Input { name: d.id.clone(), source: Source::Bytes(text.into_bytes()), document: None }
        })
        .collect();
    let outcomes = pipeline.ingest(user, inputs, Arc::new(|_, _| {})).await;
    let failed = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    let ingest_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut by_mode = serde_json::Map::new();
    let mut chosen = None;
    for mode in SearchMode::ALL {
        let mut runs: HashMap<String, Vec<(String, f32)>> = HashMap::new();
        for query in &dataset.queries {
            let options =
                SearchOptions { top_k: CHUNKS_PER_QUERY, mode: Some(mode), documents: None };
            let hits = pipeline.search(user, &query.text, options).await.context("searching")?;
            // Documents in the order of their best chunk; the score only has to keep that order.
            let mut ranked: Vec<(String, f32)> = Vec::new();
            for h in hits {
                if !ranked.iter().any(|(d, _)| *d == h.document) {
                    let score = CHUNKS_PER_QUERY as f32 - ranked.len() as f32;
                    ranked.push((h.document, score));
                }
            }
            runs.insert(query.id.clone(), ranked);
        }
        let metrics = evaluate(&dataset, &runs);
        if mode == args.retrieval.search_mode {
            chosen = Some(metrics);
        }
        by_mode.insert(mode.to_string(), serde_json::to_value(metrics)?);
        if !g.json {
            println!(
                "{mode:<8} nDCG@10 {:.4}  recall@100 {:.4}  MRR@10 {:.4}",
                metrics.ndcg_at_10, metrics.recall_at_100, metrics.mrr_at_10
            );
        }
    }
    let search_seconds = started.elapsed().as_secs_f64();
    let metrics = chosen.context("the chosen mode was evaluated")?;

    if g.json {
        let mut out = serde_json::to_value(metrics)?;
        if let Some(obj) = out.as_object_mut() {
            obj.insert("mode".into(), json!(args.retrieval.search_mode));
            obj.insert("modes".into(), serde_json::Value::Object(by_mode));
            obj.insert("model".into(), json!(pipeline.embedder().info().id));
            obj.insert("failed_documents".into(), json!(failed));
            obj.insert("ingest_seconds".into(), json!(ingest_seconds));
            obj.insert("search_seconds".into(), json!(search_seconds));
        }
        print_json(&out);
    } else {
        println!(
            "({} queries, {} documents, {failed} failed; ingest {ingest_seconds:.1} s, search {search_seconds:.2} s in 3 modes)",
            metrics.queries, metrics.documents
        );
    }
    Ok(if failed == 0 { Status::Ok } else { Status::Partial })
}
