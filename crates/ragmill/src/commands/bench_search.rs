//! `ragmill bench search`: the live index at scale, on synthetic vectors.
//!
//! One user's collection of `--chunks` chunks (clustered unit vectors, texts of words from a
//! Zipf-like vocabulary) is written to a scratch store through the store's own write path (100
//! documents a transaction), then measured side by side in one run:
//!
//! - cold load (first search) and approximate-index build time, memory of the index;
//! - search latency excluding the query embedding (index search + reading the chunks), p50
//!   and p99, exact scan vs approximate index, quiet and while `--writes` documents of the same
//!   user are processed (with the model present each is embedded by it first, as ingestion
//!   does, then stored: each write swaps a document's block in the live index);
//! - recall@10 of the approximate index against the exact scan, on the same queries;
//! - keyword (BM25) search latency on the same collection;
//! - with the model present, the embedding of a short query: `embed_query` vs the same text
//!   through `embed`, quiet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ragmill_core::{Chunk, ContentHash, DocumentKind, Embedder, normalize};
use ragmill_embed::LocalEmbedder;
use ragmill_store::{DocumentId, IndexSettings, NewChunk, NewDocument, Store, UserId};
use serde_json::{Value, json};

use crate::Status;
use crate::cli::{BenchSearchArgs, Global};
use crate::commands::print_json;

/// Chunks per synthetic document.
const PER_DOCUMENT: usize = 100;
const MODEL: &str = "bench-synthetic";

/// A small deterministic generator (xorshift64*), so runs are comparable.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Unit vectors around `centers` cluster centres, like embeddings of texts on a few topics.
pub(super) struct Vectors {
    dims: usize,
    centers: Vec<Vec<f32>>,
    rng: Rng,
}

impl Vectors {
    pub(super) fn new(dims: usize, centers: usize, seed: u64) -> Self {
        let mut rng = Rng(seed | 1);
        let centers = (0..centers).map(|_| (0..dims).map(|_| rng.unit()).collect()).collect();
        Self { dims, centers, rng }
    }

    pub(super) fn next(&mut self) -> Vec<f32> {
        let c = (self.rng.next() % self.centers.len() as u64) as usize;
        let mut v: Vec<f32> =
            (0..self.dims).map(|i| self.centers[c][i] + 0.6 * self.rng.unit()).collect();
        normalize(&mut v);
        v
    }
}

/// A text of `words` words from a vocabulary where word i is about 1/i as common.
pub(super) fn text(rng: &mut Rng, words: usize) -> String {
    (0..words)
        .map(|_| {
            let r = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            format!("w{}", (10_000f64.powf(r)) as u32)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One synthetic document's chunks and vectors.
struct Synthetic {
    name: String,
    chunks: Vec<Chunk>,
    vectors: Vec<Vec<f32>>,
}

impl Synthetic {
    fn new(name: String, vectors: &mut Vectors, rng: &mut Rng) -> Self {
        let chunks = (0..PER_DOCUMENT)
            .map(|i| {
                let t = text(rng, 40);
                Chunk {
                    ordinal: i as u32,
                    end: t.len(),
                    text: t,
                    start: 0,
                    tokens: 40,
                    page: None,
                    heading_path: vec![],
                }
            })
            .collect();
        let vectors = (0..PER_DOCUMENT).map(|_| vectors.next()).collect();
        Self { name, chunks, vectors }
    }

    fn chunks(&self) -> Vec<NewChunk<'_>> {
        self.chunks
            .iter()
            .zip(&self.vectors)
            .map(|(c, v)| NewChunk {
                chunk: c,
                hash: ContentHash::of(c.text.as_bytes()),
                vector: v,
            })
            .collect()
    }

    fn document(&self) -> NewDocument<'_> {
        NewDocument {
            id: None,
            name: &self.name,
            content_hash: ContentHash::of(self.name.as_bytes()),
            kind: Some(DocumentKind::Text),
            size: 0,
            timings: Default::default(),
        }
    }
}

/// Writes `docs` in one transaction (the bulk load) through the store's own write path.
fn write_all(store: &Store, user: UserId, docs: &[Synthetic], dims: usize) -> Result<()> {
    let chunks: Vec<Vec<NewChunk<'_>>> = docs.iter().map(Synthetic::chunks).collect();
    let batch: Vec<(NewDocument<'_>, &[NewChunk<'_>])> =
        docs.iter().zip(&chunks).map(|(d, c)| (d.document(), c.as_slice())).collect();
    store.user(user).replace_documents(&batch, MODEL, dims)?;
    Ok(())
}

/// Writes one document of `PER_DOCUMENT` chunks named `name`, as ingestion does.
fn write(
    store: &Store,
    user: UserId,
    name: &str,
    vectors: &mut Vectors,
    rng: &mut Rng,
) -> Result<()> {
    write_all(store, user, &[Synthetic::new(name.to_owned(), vectors, rng)], vectors.dims)
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(mut samples: Vec<Duration>) -> Value {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    json!({"p50_ms": at(0.5), "p99_ms": at(0.99), "n": samples.len()})
}

/// Times `search` over `queries`.
fn time(
    queries: &[Vec<f32>],
    mut search: impl FnMut(&[f32]) -> Result<()>,
) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        search(q)?;
        out.push(t.elapsed());
    }
    Ok(out)
}

pub async fn run(g: &Global, args: BenchSearchArgs) -> Result<Status> {
    let scratch = tempfile::tempdir().context("creating a scratch data directory")?;
    let ann =
        IndexSettings { ann_threshold: args.ann_threshold, ann_candidates: args.ann_candidates };
    let store = Arc::new(Store::open_with(scratch.path(), ann)?);
    let user = store.ensure_user("bench")?;
    let mut vectors = Vectors::new(args.dims, 1_000, 7);
    let mut rng = Rng(11);
    let documents = args.chunks.div_ceil(PER_DOCUMENT);
    let started = Instant::now();
    // Bulk: 100 documents a transaction.
    for first in (0..documents).step_by(100) {
        let docs: Vec<Synthetic> = (first..(first + 100).min(documents))
            .map(|d| Synthetic::new(format!("doc-{d}"), &mut vectors, &mut rng))
            .collect();
        write_all(&store, user, &docs, args.dims)?;
        if !g.json && first % 1000 == 900 {
            eprintln!("  written {} chunks", (first + 100) * PER_DOCUMENT);
        }
    }
    let write_seconds = started.elapsed().as_secs_f64();
    let chunks = documents * PER_DOCUMENT;

    // A second store over the same file whose index never goes approximate: the reference.
    let exact_store = Arc::new(Store::open_with(
        scratch.path(),
        IndexSettings { ann_threshold: usize::MAX, ..IndexSettings::default() },
    )?);
    let queries: Vec<Vec<f32>> = (0..args.queries).map(|_| vectors.next()).collect();

    let t = Instant::now();
    exact_store.user(user).nearest(&queries[0], 10, None)?;
    let load_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    store.user(user).prepare_index()?;
    let build_seconds = t.elapsed().as_secs_f64();
    let stats = store.user(user).index_stats()?;
    let exact_stats = exact_store.user(user).index_stats()?;

    let search = |s: &Store, q: &[f32]| -> Result<()> {
        let near = s.user(user).nearest(q, 10, None)?;
        s.user(user).chunks_at(&near)?;
        Ok(())
    };
    let exact_quiet = time(&queries, |q| search(&exact_store, q))?;
    let truths: Vec<Vec<(DocumentId, u32)>> = queries
        .iter()
        .map(|q| {
            let near = exact_store.user(user).nearest(q, 10, None)?;
            Ok(near.iter().map(|n| (n.document, n.chunk)).collect())
        })
        .collect::<Result<_>>()?;
    let recall_of = |s: &Store| -> Result<f64> {
        let mut found = 0;
        for (q, truth) in queries.iter().zip(&truths) {
            let near = s.user(user).nearest(q, 10, None)?;
            found += near.iter().filter(|n| truth.contains(&(n.document, n.chunk))).count();
        }
        Ok(found as f64 / (queries.len() * 10) as f64)
    };
    // Recall and latency as the candidates re-scored grow (the graph explores at least that
    // many); the default is measured again below.
    let mut sweep = Vec::new();
    for candidates in [100, 200, 400, 800] {
        store.set_ann_candidates(candidates);
        let times = time(&queries, |q| search(&store, q))?;
        sweep.push(json!({"candidates": candidates, "recall_at_10": recall_of(&store)?, "latency": percentiles(times)}));
    }
    store.set_ann_candidates(args.ann_candidates);
    let ann_quiet = time(&queries, |q| search(&store, q))?;
    let found = (recall_of(&store)? * (queries.len() * 10) as f64).round() as usize;
    let recall = found as f64 / (queries.len() * 10) as f64;
    let keyword_queries: Vec<String> = (0..args.queries).map(|_| text(&mut rng, 4)).collect();
    let mut keyword = Vec::with_capacity(keyword_queries.len());
    for q in &keyword_queries {
        let t = Instant::now();
        store.user(user).keyword_search(q, 10, None)?;
        keyword.push(t.elapsed());
    }

    // While the same user's documents are written through the same store: another thread
    // replaces `--writes` documents in a loop (each write swaps a block in the live index).
    // With the model present, each write first embeds its document's 100 chunks, as ingestion
    // does: the searches then compete with the embedding for the cores, as in the service.
    let embedder = crate::app::embedder(g, 32).ok();
    let ingesting = embedder.is_some();
    let (exact_busy, exact_written) =
        while_writing(&exact_store, user, &args, &queries, search, embedder.clone())?;
    let (ann_busy, ann_written) = while_writing(&store, user, &args, &queries, search, embedder)?;

    let query_embedding = query_embedding(g).await;
    let report = json!({
        "chunks": chunks,
        "dims": args.dims,
        "queries": args.queries,
        "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "write_seconds": write_seconds,
        "load_seconds": load_seconds,
        "ann_build_seconds": build_seconds,
        "ann_threshold": args.ann_threshold,
        "ann": stats.ann_rows.is_some(),
        "memory_bytes": {"exact": exact_stats.memory_bytes, "with_ann": stats.memory_bytes},
        "memory_mib_per_million_chunks": {
            "exact": exact_stats.memory_bytes as f64 / chunks as f64 * 1e6 / 1048576.0,
            "with_ann": stats.memory_bytes as f64 / chunks as f64 * 1e6 / 1048576.0,
        },
        "recall_at_10": recall,
        "ann_candidates": args.ann_candidates,
        "ann_sweep": sweep,
        "search_quiet": {"exact": percentiles(exact_quiet), "ann": percentiles(ann_quiet)},
        "search_while_writing": {
            "exact": percentiles(exact_busy),
            "ann": percentiles(ann_busy),
            "documents_written": {"exact": exact_written, "ann": ann_written},
            "each_embedded_by_the_model": ingesting,
        },
        "keyword_quiet": percentiles(keyword),
        "query_embedding": query_embedding,
    });
    if g.json {
        print_json(&report);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(Status::Ok)
}

/// Times `search` over `queries` (again and again) on `store` while another thread writes
/// `--writes` documents of `user` through it; returns the times and the documents written.
fn while_writing(
    store: &Arc<Store>,
    user: UserId,
    args: &BenchSearchArgs,
    queries: &[Vec<f32>],
    search: impl Fn(&Store, &[f32]) -> Result<()>,
    embedder: Option<Arc<LocalEmbedder>>,
) -> Result<(Vec<Duration>, usize)> {
    let writing = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (store, writing, written) =
            (Arc::clone(store), Arc::clone(&writing), Arc::clone(&written));
        let mut vectors = Vectors::new(args.dims, 1_000, 99);
        let writes = args.writes.max(1);
        std::thread::spawn(move || -> Result<()> {
            let mut rng = Rng(13);
            let runtime = tokio::runtime::Builder::new_current_thread().build()?;
            while writing.load(Ordering::SeqCst) {
                // As ingestion does: embed the document's chunks with the model (the CPU load
                // of processing an upload), then store it.
                if let Some(e) = &embedder {
                    let texts = (0..PER_DOCUMENT).map(|_| text(&mut rng, 40)).collect();
                    runtime.block_on(e.embed(texts))?;
                }
                let n = written.fetch_add(1, Ordering::SeqCst);
                write(&store, user, &format!("doc-{}", n % writes), &mut vectors, &mut rng)?;
            }
            Ok(())
        })
    };
    // Search until the writer has written `--writes` documents (and at least every query once).
    let mut times = Ok(Vec::new());
    let mut round = 0;
    while round == 0 || written.load(Ordering::SeqCst) < args.writes.max(1) {
        match (&mut times, time(queries, |q| search(store, q))) {
            (Ok(all), Ok(more)) => all.extend(more),
            (_, Err(e)) => times = Err(e),
            (Err(_), _) => break,
        }
        if writer.is_finished() || times.is_err() {
            break;
        }
        round += 1;
    }
    writing.store(false, Ordering::SeqCst);
    writer.join().map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    Ok((times?, written.load(Ordering::SeqCst)))
}

/// `embed_query` of a short query vs the same text through `embed`, 200 calls each,
/// interleaved; `null` without the model.
async fn query_embedding(g: &Global) -> Value {
    let Ok(embedder) = crate::app::embedder(g, 32) else { return Value::Null };
    let text = "how do I feed a sourdough starter";
    let (mut direct, mut query) = (Vec::new(), Vec::new());
    for i in 0..210 {
        let t = Instant::now();
        let ok = embedder.embed(vec![text.to_owned()]).await.is_ok();
        let d = t.elapsed();
        let t = Instant::now();
        let ok = ok && embedder.embed_query(text.to_owned()).await.is_ok();
        if !ok {
            return Value::Null;
        }
        if i >= 10 {
            direct.push(d);
            query.push(t.elapsed());
        }
    }
    json!({"text": text, "embed_query": percentiles(query), "embed": percentiles(direct)})
}
