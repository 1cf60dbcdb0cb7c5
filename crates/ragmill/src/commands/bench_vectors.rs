//! `ragmill bench vectors`: the embedded vector index vs a ChromaDB server, side by side in one
//! run, on synthetic clustered unit vectors (no model: nothing is embedded).
//!
//! For each size, one user's collection is stored twice, each time in a fresh scratch data
//! directory (for ChromaDB also in a fresh database), through the path a finished document
//! takes: `LocalCatalog::finish`, `--parallel` documents in flight. Embedded: one SQLite
//! transaction per document. ChromaDB: stage a generation, upsert to Chroma, switch in SQLite,
//! collect. The documents' rows are made first (`accept_upload`, untimed), as an upload does,
//! so both take the staged path. Then, on the same queries (perturbed copies of stored vectors):
//!
//! - search latency of the vector side, top 10, after a cold first search and a warm-up:
//!   `StoreIndex::search` (exact scan below 50,000 chunks, HNSW from there); for ChromaDB
//!   `ChromaIndex::search` plus the store's generation check of the hit documents, which a real
//!   search pays;
//! - recall@10 of each against the exact top 10 (brute force over the generated vectors);
//! - for the largest size, `Vectors::catch_up` copying the embedded store to a fresh ChromaDB
//!   database: what `ragmill vectors migrate --to chroma` runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use ragmill_core::{
    Catalog, CatalogError, Chunk, ContentHash, DocumentId, DocumentKind, DocumentVersion,
    EmbeddedChunk, Finished, UserId, VectorHit, VectorIndex, dot, normalize,
};
use ragmill_pipeline::{LocalCatalog, StoreIndex, Vectors};
use ragmill_store::{Accepted, Store};
use serde_json::{Value, json};

use super::bench_search::{Rng, Vectors as Clustered, text};
use crate::Status;
use crate::app;
use crate::cli::{BenchVectorsArgs, Global};
use crate::commands::print_json;

const MODEL: &str = "bench-synthetic";
/// Hits per search.
const K: usize = 10;
/// Untimed searches before the timed ones.
const WARMUP: usize = 20;
/// Words per synthetic chunk text (stored and indexed for keyword search, as ingestion does).
const WORDS: usize = 40;
/// Norm of the noise added to a stored vector to make a query.
const NOISE: f32 = 0.5;

/// One size's collection (unit vectors, row-major, `per_doc` chunks to a document), its
/// queries and their exact top [`K`].
struct Data {
    dims: usize,
    per_doc: usize,
    seed: u64,
    vectors: Vec<f32>,
    queries: Vec<Vec<f32>>,
    truths: Vec<Vec<usize>>,
}

impl Data {
    fn generate(n: usize, dims: usize, per_doc: usize, seed: u64, queries: usize) -> Self {
        let mut clustered = Clustered::new(dims, 1_000, seed);
        let mut vectors = Vec::with_capacity(n * dims);
        (0..n).for_each(|_| vectors.extend(clustered.next()));
        let mut data = Self { dims, per_doc, seed, vectors, queries: vec![], truths: vec![] };
        data.queries = data.make_queries(queries);
        data.truths = data.exact(&data.queries);
        data
    }

    fn len(&self) -> usize {
        self.vectors.len() / self.dims
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dims..(i + 1) * self.dims]
    }

    fn documents(&self) -> usize {
        self.len().div_ceil(self.per_doc)
    }

    fn hash(&self, d: usize) -> ContentHash {
        ContentHash::of(format!("bench-vectors:{}:{d}", self.seed).as_bytes())
    }

    /// Document `d` (row `id`) as the pipeline hands it to the catalog: every chunk fresh.
    fn finished(&self, d: usize, id: DocumentId) -> Finished {
        let rows = d * self.per_doc..((d + 1) * self.per_doc).min(self.len());
        let chunks = rows
            .enumerate()
            .map(|(ordinal, i)| {
                let mut rng = Rng((self.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9)) | 1);
                let t = text(&mut rng, WORDS);
                EmbeddedChunk {
                    hash: ContentHash::of(t.as_bytes()),
                    chunk: Chunk {
                        ordinal: ordinal as u32,
                        start: 0,
                        end: t.len(),
                        text: t,
                        tokens: WORDS,
                        page: None,
                        heading_path: vec![],
                    },
                    vector: self.row(i).to_vec(),
                    fresh: true,
                }
            })
            .collect();
        let version = DocumentVersion {
            document: Some(id),
            name: format!("doc-{d}"),
            content_hash: self.hash(d),
            kind: Some(DocumentKind::Text),
            size: 0,
            timings: Default::default(),
        };
        Finished {
            version,
            model: MODEL.into(),
            space: MODEL.into(),
            dimensions: self.dims,
            chunks,
        }
    }

    /// `count` queries: stored vectors with noise of norm [`NOISE`] added, normalised.
    fn make_queries(&self, count: usize) -> Vec<Vec<f32>> {
        let mut rng = Rng(self.seed.wrapping_mul(31) | 1);
        (0..count)
            .map(|_| {
                let i = (rng.next() % self.len() as u64) as usize;
                let mut noise: Vec<f32> = (0..self.dims).map(|_| rng.unit()).collect();
                normalize(&mut noise);
                let mut q: Vec<f32> =
                    self.row(i).iter().zip(&noise).map(|(v, e)| v + NOISE * e).collect();
                normalize(&mut q);
                q
            })
            .collect()
    }

    /// The exact top [`K`] of every query (about 10 ms a query at 100,000 × 384).
    fn exact(&self, queries: &[Vec<f32>]) -> Vec<Vec<usize>> {
        queries.iter().map(|q| exact_top(&self.vectors, self.dims, q, K)).collect()
    }
}

/// The `k` rows of `vectors` (row-major, `dims` each) nearest `query` by dot product, best
/// first (ties by row).
fn exact_top(vectors: &[f32], dims: usize, query: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> =
        vectors.chunks_exact(dims).enumerate().map(|(i, v)| (dot(v, query), i)).collect();
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    scored.select_nth_unstable_by(k - 1, order);
    scored.truncate(k);
    scored.sort_unstable_by(order);
    scored.into_iter().map(|(_, i)| i).collect()
}

/// The share of `truth` found in `hits`.
fn recall(hits: &[usize], truth: &[usize]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    truth.iter().filter(|t| hits.contains(t)).count() as f64 / truth.len() as f64
}

/// The `q` quantile of ascending `sorted` (nearest rank); 0 when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round().max(0.0) as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// Runs `f` on the blocking threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.context("blocking task failed")?
}

/// Stores `data` as `user`'s documents through `catalog`; answers their ids, the seconds the
/// `finish` calls took, how many were tried again because the index was unavailable (as the
/// job queue would) and the slowest document's seconds; reports progress every tenth.
async fn ingest(
    store: &Arc<Store>,
    user: UserId,
    catalog: &LocalCatalog,
    data: &Arc<Data>,
    parallel: usize,
    say: &dyn Fn(String),
) -> Result<(Vec<DocumentId>, f64, usize, f64)> {
    let (s, d) = (Arc::clone(store), Arc::clone(data));
    let ids = blocking(move || {
        let u = s.user(user);
        (0..d.documents())
            .map(|i| {
                let kind = Some(DocumentKind::Text);
                match u.accept_upload(&format!("doc-{i}"), d.hash(i), 0, kind)? {
                    Accepted::Queued(id) => Ok(id),
                    Accepted::Unchanged(..) => bail!("doc-{i} is already stored"),
                }
            })
            .collect::<Result<Vec<_>>>()
    })
    .await?;
    let started = Instant::now();
    let mut stored = futures::stream::iter(ids.iter().enumerate().map(|(i, &id)| {
        let (catalog, data) = (catalog.clone(), Arc::clone(data));
        async move {
            let (mut retries, t) = (0, Instant::now());
            loop {
                match catalog.finish(user, data.finished(i, id)).await {
                    Err(CatalogError::IndexUnavailable(_)) if retries < 3 => retries += 1,
                    done => return done.map(|_| (retries, t.elapsed().as_secs_f64())),
                }
            }
        }
    }))
    .buffer_unordered(parallel.max(1));
    let (mut done, mut retries, mut slowest, tenth) = (0, 0, 0f64, ids.len().div_ceil(10));
    while let Some(r) = stored.next().await {
        let (tries, seconds) = r.context("storing a document")?;
        (retries, slowest) = (retries + tries, slowest.max(seconds));
        done += 1;
        if done % tenth == 0 && done < ids.len() {
            let chunks = (done * data.per_doc) as f64;
            let secs = started.elapsed().as_secs_f64();
            say(format!("  {done} documents in {secs:.1} s: {:.0} chunks/s", chunks / secs));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(stored);
    Ok((ids, seconds, retries, slowest))
}

/// The vector side of a search as a real one pays it: the index, then (external index) the
/// store's check that each hit's generation is its document's current one.
async fn search(
    index: &dyn VectorIndex,
    store: &Arc<Store>,
    user: UserId,
    query: Vec<f32>,
) -> Result<(Vec<VectorHit>, Duration)> {
    let hits = index.search(user, query, K, None).await?;
    if !index.external() {
        return Ok((hits, Duration::ZERO));
    }
    let t = Instant::now();
    let mut docs: Vec<DocumentId> = hits.iter().map(|h| h.document).collect();
    docs.sort_unstable_by_key(|d| d.0);
    docs.dedup();
    let s = Arc::clone(store);
    let current = blocking(move || Ok(s.user(user).vector_generations(&docs)?)).await?;
    let hits = hits.into_iter().filter(|h| current.get(&h.document) == h.generation.as_ref());
    Ok((hits.collect(), t.elapsed()))
}

/// Stores `data` through `catalog`, then times searches of `index` and scores their recall.
async fn measure(
    store: &Arc<Store>,
    user: UserId,
    catalog: LocalCatalog,
    index: Arc<dyn VectorIndex>,
    data: &Arc<Data>,
    parallel: usize,
    say: &dyn Fn(String),
) -> Result<Value> {
    let (queries, truths) = (&data.queries, &data.truths);
    let (ids, ingest_seconds, retries, slowest) =
        ingest(store, user, &catalog, data, parallel, say).await?;
    let doc: HashMap<DocumentId, usize> = ids.iter().enumerate().map(|(d, id)| (*id, d)).collect();
    let t = Instant::now();
    if !index.external() {
        // Load the vectors and build the HNSW graph now: a first search would start building
        // it in the background and scan exactly meanwhile.
        let s = Arc::clone(store);
        blocking(move || Ok(s.user(user).prepare_index()?)).await?;
    }
    search(&*index, store, user, queries[0].clone()).await?;
    let first_search_seconds = t.elapsed().as_secs_f64();
    for q in queries.iter().cycle().take(WARMUP) {
        search(&*index, store, user, q.clone()).await?;
    }
    let (mut latency, mut check, mut found) = (Vec::new(), Vec::new(), 0.0);
    for (q, truth) in queries.iter().zip(truths) {
        let t = Instant::now();
        let (hits, checking) = search(&*index, store, user, q.clone()).await?;
        latency.push(t.elapsed().as_secs_f64() * 1e3);
        if index.external() {
            check.push(checking.as_secs_f64() * 1e3);
        }
        let rows: Vec<usize> = hits
            .iter()
            .filter_map(|h| doc.get(&h.document).map(|d| d * data.per_doc + h.chunk as usize))
            .collect();
        found += recall(&rows, truth);
    }
    latency.sort_by(f64::total_cmp);
    check.sort_by(f64::total_cmp);
    let kind = if index.external() {
        "chroma (HNSW)"
    } else if store.user(user).index_stats()?.ann_rows.is_some() {
        "embedded (HNSW)"
    } else {
        "embedded (exact scan)"
    };
    Ok(json!({
        "index": kind,
        "ingest_seconds": ingest_seconds,
        "ingest_chunks_per_s": data.len() as f64 / ingest_seconds,
        "ingest_retries": retries,
        "slowest_document_seconds": slowest,
        "first_search_seconds": first_search_seconds,
        "search": {"p50_ms": percentile(&latency, 0.5), "p99_ms": percentile(&latency, 0.99), "n": latency.len()},
        "generation_check_p50_ms": index.external().then(|| percentile(&check, 0.5)),
        "recall_at_10": found / queries.len() as f64,
    }))
}

/// A fresh scratch store with the user `bench`.
fn scratch() -> Result<(tempfile::TempDir, Arc<Store>, UserId)> {
    let dir = tempfile::tempdir().context("creating a scratch data directory")?;
    let store = Arc::new(Store::open(dir.path())?);
    let user = store.ensure_user("bench")?;
    Ok((dir, store, user))
}

/// The CPU model from /proc/cpuinfo.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map_or_else(|| "unknown CPU".into(), |(_, m)| m.trim().to_owned())
}

/// The Chroma server's version, if it says.
async fn chroma_version(url: &str) -> Option<String> {
    let url = format!("{}/api/v2/version", url.trim().trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
    let body = client.get(url).send().await.ok()?.text().await.ok()?;
    serde_json::from_str::<String>(&body).ok()
}

pub async fn run(g: &Global, args: BenchVectorsArgs) -> Result<Status> {
    let mut sizes = args.sizes.clone();
    sizes.retain(|&n| n > 0);
    ensure!(!sizes.is_empty() && args.dims > 0 && args.queries > 0, "nothing to measure");
    ensure!(args.chunks_per_document > 0, "--chunks-per-document must be at least 1");
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let url = args.vectors.chroma_url.trim().to_owned();
    let connect = |name: String| {
        let mut vectors = args.vectors.clone();
        vectors.chroma_database = format!("ragmill_bench_{stamp}_{name}");
        async move { app::chroma(&vectors).await }
    };
    let mut report = json!({
        "machine": {"cpus": std::thread::available_parallelism().map_or(1, |n| n.get()), "cpu": cpu_model()},
        "chroma": {"url": url, "version": chroma_version(&url).await, "databases": format!("ragmill_bench_{stamp}_*")},
        "vectors": "synthetic clustered unit vectors, no model",
        "dims": args.dims, "chunks_per_document": args.chunks_per_document,
        "parallel_documents": args.parallel, "queries": args.queries, "top_k": K,
    });
    let say = |m: String| {
        if !g.json {
            eprintln!("{m}");
        }
    };
    if !g.json {
        print_header(&report);
    }
    let (mut results, mut migrate) = (Vec::new(), Value::Null);
    for (i, &n) in sizes.iter().enumerate() {
        say(format!("{n} chunks: generating vectors, queries and the exact top {K}"));
        let (per_doc, q) = (args.chunks_per_document, args.queries);
        let data = Arc::new(Data::generate(n, args.dims, per_doc, args.seed, q));

        say(format!("{n} chunks: embedded"));
        let (_dir, store, user) = scratch()?;
        let index = Arc::new(StoreIndex::new(Arc::clone(&store)));
        let catalog = LocalCatalog::new(Arc::clone(&store));
        let e = measure(&store, user, catalog, index, &data, args.parallel, &say).await?;

        say(format!("{n} chunks: chroma"));
        let (_cdir, cstore, cuser) = scratch()?;
        let chroma = connect(format!("{i}_{n}")).await?;
        let sync = Vectors::new(Arc::clone(&cstore), chroma.clone());
        let catalog = LocalCatalog::with_vectors(Arc::clone(&cstore), Some(sync));
        let c = measure(&cstore, cuser, catalog, chroma.clone(), &data, args.parallel, &say).await;
        chroma.remove_user(cuser).await.ok(); // frees the server; the run is measured
        let c = c?;
        let ratio =
            |a: &Value, b: &Value| a.as_f64().unwrap_or(f64::NAN) / b.as_f64().unwrap_or(f64::NAN);
        let over = json!({
            "ingest_chunks_per_s": ratio(&c["ingest_chunks_per_s"], &e["ingest_chunks_per_s"]),
            "first_search": ratio(&c["first_search_seconds"], &e["first_search_seconds"]),
            "p50": ratio(&c["search"]["p50_ms"], &e["search"]["p50_ms"]),
            "p99": ratio(&c["search"]["p99_ms"], &e["search"]["p99_ms"]),
        });
        let size = json!({"chunks": n, "documents": data.documents(), "embedded": e, "chroma": c, "chroma_over_embedded": over});
        if !g.json {
            print_size(&size);
        }
        results.push(size);

        if n == largest && migrate.is_null() {
            say(format!("{n} chunks: migrating the embedded store to a fresh chroma database"));
            let target = connect(format!("{i}_{n}_migrate")).await?;
            let sync = Vectors::new(Arc::clone(&store), target.clone());
            let t = Instant::now();
            let copied = sync.catch_up().await.context("copying to ChromaDB");
            let seconds = t.elapsed().as_secs_f64();
            target.remove_user(user).await.ok();
            let copied = copied?;
            ensure!(copied.chunks == n, "the migration copied {} chunks, not {n}", copied.chunks);
            migrate = json!({
                "chunks": n, "documents": copied.written, "seconds": seconds,
                "chunks_per_s": n as f64 / seconds,
            });
            if !g.json {
                println!(
                    "\nMigrate (`vectors migrate --to chroma`, i.e. Vectors::catch_up, one document at \
                     a time) of the embedded store's {n} chunks in {} documents to a fresh \
                     database: {seconds:.1} s, {:.0} chunks/s",
                    copied.written,
                    n as f64 / seconds
                );
            }
        }
    }
    if g.json {
        report["sizes"] = Value::Array(results);
        report["migrate"] = migrate;
        print_json(&report);
    }
    Ok(Status::Ok)
}

fn print_header(r: &Value) {
    println!(
        "Embedded vector index vs ChromaDB {} at {} (databases {}), one user.\n\
         Synthetic clustered unit vectors (no model: nothing embedded), {} dimensions, {} chunks a \
         document, {} documents in flight; top {K} of {} queries (stored vectors plus noise).\n\
         Machine: {} CPUs, {}; ChromaDB runs on it too.\n\
         Ingest: LocalCatalog::finish per document (chroma: stage, upsert, switch, collect). \
         First search: the cold one (embedded: loads the vectors from SQLite and builds HNSW from \
         50,000 chunks; chroma: whatever its writes left to do). Latency: the vector side only \
         (no query embedding, no chunk texts).\n",
        r["chroma"]["version"].as_str().unwrap_or("(version unknown)"),
        r["chroma"]["url"].as_str().unwrap_or("?"),
        r["chroma"]["databases"].as_str().unwrap_or("?"),
        r["dims"],
        r["chunks_per_document"],
        r["parallel_documents"],
        r["queries"],
        r["machine"]["cpus"],
        r["machine"]["cpu"].as_str().unwrap_or("?"),
    );
    println!(
        "{:>9}  {:<22} {:>15} {:>14} {:>8} {:>8} {:>10}",
        "chunks", "backend", "ingest chunks/s", "first search s", "p50 ms", "p99 ms", "recall@10"
    );
}

/// One size's rows of the table.
fn print_size(size: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let n = size["chunks"].as_u64().unwrap_or(0);
    for m in [&size["embedded"], &size["chroma"]] {
        println!(
            "{n:>9}  {:<22} {:>15.0} {:>14.2} {:>8.2} {:>8.2} {:>10.4}",
            m["index"].as_str().unwrap_or("?"),
            f(&m["ingest_chunks_per_s"]),
            f(&m["first_search_seconds"]),
            f(&m["search"]["p50_ms"]),
            f(&m["search"]["p99_ms"]),
            f(&m["recall_at_10"]),
        );
    }
    let o = &size["chroma_over_embedded"];
    println!(
        "{n:>9}  {:<22} {:>14.2}x {:>13.2}x {:>7.2}x {:>7.2}x",
        "chroma / embedded",
        f(&o["ingest_chunks_per_s"]),
        f(&o["first_search"]),
        f(&o["p50"]),
        f(&o["p99"]),
    );
    println!(
        "{:>9}  (chroma's p50 includes the store's generation check, {:.2} ms; slowest \
         document stored in {:.1} s embedded, {:.1} s chroma, {} retried after a timeout)",
        "",
        f(&size["chroma"]["generation_check_p50_ms"]),
        f(&size["embedded"]["slowest_document_seconds"]),
        f(&size["chroma"]["slowest_document_seconds"]),
        size["chroma"]["ingest_retries"],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_top_ranks_by_dot_product_best_first() {
        let rows = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -1.0, 0.0];
        assert_eq!(exact_top(&rows, 2, &[0.8, 0.6], 3), vec![2, 0, 1]);
        assert_eq!(exact_top(&rows, 2, &[0.0, 1.0], 10), vec![1, 2, 0, 3]);
        assert!(exact_top(&rows, 2, &[1.0, 0.0], 0).is_empty());
    }

    #[test]
    fn recall_counts_the_truth_found() {
        assert_eq!(recall(&[1, 2, 3], &[3, 2, 1]), 1.0);
        assert_eq!(recall(&[1, 9], &[1, 2, 3, 4]), 0.25);
        assert_eq!(recall(&[], &[1]), 0.0);
        assert_eq!(recall(&[1], &[]), 1.0);
    }

    #[test]
    fn percentile_is_the_nearest_rank() {
        let ms: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&ms, 0.5), 51.0);
        assert_eq!(percentile(&ms, 0.99), 99.0);
        assert_eq!(percentile(&ms, 0.0), 1.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn queries_are_near_their_stored_vector_and_exact_finds_it() {
        let data = Data::generate(500, 64, 7, 3, 20);
        assert_eq!(data.documents(), 72);
        assert_eq!(data.truths.len(), 20);
        for (q, top) in data.queries.iter().zip(&data.truths) {
            assert_eq!(top.len(), K);
            assert!((dot(q, q) - 1.0).abs() < 1e-4);
            assert!(dot(q, data.row(top[0])) > 0.7, "the source vector should rank first");
        }
        let last = data.finished(71, DocumentId(1));
        assert_eq!(last.chunks.len(), 500 - 71 * 7);
        assert_eq!(last.chunks[0].vector, data.row(497));
    }
}
