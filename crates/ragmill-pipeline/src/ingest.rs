//! Ingesting documents.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ragmill_core::{
    Chunk, ContentHash, DocumentVersion, EmbeddedChunk, FailedVersion, Finished, Progress, Stage,
};
use ragmill_store::{DocumentId, Timings, UserId};

use crate::{IngestError, Pipeline, ProgressFn, blocking};

/// Fresh vectors of a version in progress are cached every this many (while a quarter of that
/// is still to come), so a version stopped midway loses at most this much embedding.
const REMEMBER_EVERY: usize = 256;

/// Where a document's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, read when its turn comes.
    Path(PathBuf),
    /// Bytes already in memory.
    Bytes(Vec<u8>),
}

/// A document to ingest: the name it will be stored under, and its bytes.
#[derive(Debug, Clone)]
pub struct Input {
    /// Unique per user; ingesting the same name again makes a new version.
    pub name: String,
    /// The bytes.
    pub source: Source,
    /// The stored document this input is a version of, when the caller created its row first
    /// (the server does, at upload). Storing then fails with `document_deleted` if the row
    /// has gone, rather than recreating a document the user deleted.
    pub document: Option<DocumentId>,
}

/// A document that was processed, or found unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Its id.
    pub id: DocumentId,
    /// Chunks stored.
    pub chunks: usize,
    /// Chunks whose vector came from the cache (or from another chunk of the same text).
    pub cache_hits: usize,
    /// Distinct chunk texts that missed the cache and went to the batcher (a text that another
    /// document in flight was already embedding is counted here but embedded only once).
    pub embedded: usize,
    /// True when the bytes matched the stored version and nothing was done.
    pub unchanged: bool,
    /// Seconds per stage.
    pub timings: Timings,
}

/// What happened to one input.
pub type Outcome = Result<Ingested, IngestError>;

impl Pipeline {
    /// Ingests `inputs` for `user`, several at once, reporting progress by input index.
    /// Returns one outcome per input, in input order.
    pub async fn ingest(
        &self,
        user: UserId,
        inputs: Vec<Input>,
        progress: ProgressFn,
    ) -> Vec<(String, Outcome)> {
        let mut pending = inputs.into_iter().enumerate();
        let mut running = FuturesUnordered::new();
        let mut outcomes: Vec<Option<(String, Outcome)>> = Vec::new();
        loop {
            while running.len() < self.config.parallel_documents.max(1) {
                let Some((i, input)) = pending.next() else { break };
                outcomes.push(None);
                let (this, progress) = (self.clone(), Arc::clone(&progress));
                running.push(async move {
                    let report = |p: Progress| progress(i, &p);
                    let name = input.name.clone();
                    let outcome = this.ingest_one(user, input, &report).await;
                    let last = match &outcome {
                        Ok(ok) => {
                            Progress { stage: Stage::Ready, done: ok.chunks, total: ok.chunks }
                        }
                        Err(_) => Progress { stage: Stage::Failed, done: 0, total: 0 },
                    };
                    report(last);
                    (i, name, outcome)
                });
            }
            match running.next().await {
                Some((i, name, outcome)) => outcomes[i] = Some((name, outcome)),
                None => break,
            }
        }
        outcomes.into_iter().flatten().collect()
    }

    /// Ingests one document; on failure records it in the store (keeping any older version).
    pub async fn ingest_one(
        &self,
        user: UserId,
        input: Input,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Outcome {
        let started = Instant::now();
        let bytes = read(input.source, self.extractor.limits().max_input_bytes).await?;
        let meta = Meta {
            name: input.name,
            document: input.document,
            hash: ContentHash::of(&bytes),
            size: bytes.len() as u64,
        };
        let result = self.process(user, &meta, bytes, progress).await;
        match result {
            Ok(mut ok) => {
                ok.timings.insert("total".into(), started.elapsed().as_secs_f64());
                Ok(ok)
            }
            // Nothing to record: the document is gone, or it waits for the vector index (the
            // version it had stays as it was; a worker tries again, uncounted).
            Err((err, _, _))
                if matches!(
                    err,
                    IngestError::DocumentDeleted | IngestError::IndexUnavailable(_)
                ) =>
            {
                Err(err)
            }
            Err((err, kind, timings)) => {
                let version = FailedVersion {
                    version: meta.version(kind, timings),
                    code: err.code().to_owned(),
                    message: err.to_string(),
                };
                if let Err(e) = self.catalog.fail(user, version).await {
                    tracing::warn!(error = %e, "could not record a document's failure");
                }
                Err(err)
            }
        }
    }

    async fn process(
        &self,
        user: UserId,
        meta: &Meta,
        bytes: Vec<u8>,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Ingested, (IngestError, Option<ragmill_core::DocumentKind>, Timings)> {
        let mut timings = Timings::new();
        let mut clock = Instant::now();
        let mut lap = |timings: &mut Timings, stage: Stage| {
            timings.insert(stage.as_str().into(), clock.elapsed().as_secs_f64());
            clock = Instant::now();
        };
        let fail = |e: IngestError, kind, timings: &Timings| (e, kind, timings.clone());

        // Unchanged bytes under the same model: nothing to do.
        if let Some(done) = self.unchanged(user, meta).await.map_err(|e| fail(e, None, &timings))? {
            return Ok(done);
        }

        progress(Progress { stage: Stage::Extracting, done: 0, total: 1 });
        let doc = self
            .extractor
            .extract(&meta.name, bytes)
            .await
            .map_err(|e| fail(IngestError::Extract(e), None, &timings))?;
        lap(&mut timings, Stage::Extracting);
        let kind = Some(doc.kind);

        progress(Progress { stage: Stage::Chunking, done: 0, total: 1 });
        let chunker = Arc::clone(&self.chunker);
        let chunks: Vec<Chunk> = blocking(move || chunker.chunk(&doc))
            .await
            .map_err(internal)
            .and_then(|r| r.map_err(IngestError::from))
            .map_err(|e| fail(e, kind, &timings))?;
        if chunks.is_empty() {
            return Err(fail(IngestError::NoText, kind, &timings));
        }
        lap(&mut timings, Stage::Chunking);
        self.embed_and_store(user, meta, kind, chunks, timings, progress).await
    }

    /// Looks up, embeds and stores the chunks of one document (after extraction and chunking,
    /// here or on a client).
    async fn embed_and_store(
        &self,
        user: UserId,
        meta: &Meta,
        kind: Option<ragmill_core::DocumentKind>,
        chunks: Vec<Chunk>,
        mut timings: Timings,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Ingested, (IngestError, Option<ragmill_core::DocumentKind>, Timings)> {
        let info = self.embedder.info().clone();
        let mut clock = Instant::now();
        let mut lap = |timings: &mut Timings, stage: Stage| {
            timings.insert(stage.as_str().into(), clock.elapsed().as_secs_f64());
            clock = Instant::now();
        };
        let fail = |e: IngestError, kind, timings: &Timings| (e, kind, timings.clone());

        // Cache lookup, then embed each distinct missing text once.
        let total = chunks.len();
        progress(Progress { stage: Stage::Embedding, done: 0, total });
        let hashes: Vec<ContentHash> =
            chunks.iter().map(|c| ContentHash::of(c.text.as_bytes())).collect();
        let mut vectors: HashMap<ContentHash, Arc<[f32]>> = self
            .catalog
            .cached(user, &info.id, hashes.clone())
            .await
            .map_err(|e| fail(e.into(), kind, &timings))?
            .into_iter()
            .map(|(h, v)| (h, v.into()))
            .collect();
        let cached = vectors.len();
        let mut waiting = FuturesUnordered::new();
        let mut submitted = std::collections::HashSet::new();
        for (chunk, hash) in chunks.iter().zip(&hashes) {
            if !vectors.contains_key(hash) && submitted.insert(*hash) {
                let rx =
                    self.batcher.submit(join_key(user, hash), chunk.text.clone(), chunk.tokens);
                let hash = *hash;
                waiting.push(async move { (hash, rx.await) });
            }
        }
        let embedded = submitted.len();
        let count_for = |hs: &HashMap<ContentHash, Arc<[f32]>>| {
            hashes.iter().filter(|h| hs.contains_key(h)).count()
        };
        let mut fresh = std::collections::HashSet::with_capacity(embedded);
        // Fresh vectors go to the cache every REMEMBER_EVERY, not only with the finished
        // version: a version stopped midway keeps what it embedded for its next run.
        let mut unsaved: Vec<ContentHash> = Vec::new();
        progress(Progress { stage: Stage::Embedding, done: count_for(&vectors), total });
        while let Some((hash, result)) = waiting.next().await {
            let v = match result {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    return Err(fail(IngestError::Embedding(e.to_string()), kind, &timings));
                }
                Err(_) => {
                    return Err(fail(
                        IngestError::Embedding("the embedder stopped".into()),
                        kind,
                        &timings,
                    ));
                }
            };
            fresh.insert(hash);
            unsaved.push(hash);
            vectors.insert(hash, v);
            if unsaved.len() >= REMEMBER_EVERY && waiting.len() >= REMEMBER_EVERY / 4 {
                let batch = std::mem::take(&mut unsaved)
                    .into_iter()
                    .filter_map(|h| vectors.get(&h).map(|v| (h, v.to_vec())))
                    .collect();
                if let Err(e) = self.catalog.remember(user, &info.id, batch).await {
                    tracing::warn!(document = %meta.name, error = %e, "embedded vectors not cached yet");
                }
            }
            progress(Progress { stage: Stage::Embedding, done: count_for(&vectors), total });
        }
        lap(&mut timings, Stage::Embedding);

        progress(Progress { stage: Stage::Storing, done: 0, total: 1 });
        let mut seen = std::collections::HashSet::new();
        let chunks = chunks
            .into_iter()
            .zip(&hashes)
            .map(|(chunk, hash)| EmbeddedChunk {
                chunk,
                hash: *hash,
                vector: vectors.get(hash).map_or_else(Vec::new, |v| v.to_vec()),
                // Cache each fresh text once, with its first chunk.
                fresh: fresh.contains(hash) && seen.insert(*hash),
            })
            .collect();
        let version = Finished {
            version: meta.version(kind, timings.clone()),
            model: info.id.clone(),
            space: info.space.clone(),
            dimensions: info.dimensions,
            chunks,
        };
        let id =
            self.catalog.finish(user, version).await.map_err(|e| fail(e.into(), kind, &timings))?;
        lap(&mut timings, Stage::Storing);

        Ok(Ingested {
            id,
            chunks: total,
            cache_hits: total - embedded,
            embedded,
            unchanged: false,
            timings,
        })
        .inspect(|_| tracing::debug!(document = %meta.name, cached, embedded, "ingested"))
    }
}

impl Pipeline {
    /// The stored document, if `meta` names one with the same bytes, ready, in this space.
    async fn unchanged(&self, user: UserId, meta: &Meta) -> Result<Option<Ingested>, IngestError> {
        let space = self.embedder.info().space.clone();
        let existing = self.catalog.stored(user, &meta.name).await?;
        Ok(existing
            .filter(|d| {
                d.content_hash == meta.hash && d.ready && d.space.as_deref() == Some(space.as_str())
            })
            .map(|doc| Ingested {
                id: doc.id,
                chunks: doc.chunks as usize,
                cache_hits: 0,
                embedded: 0,
                unchanged: true,
                timings: doc.timings,
            }))
    }

    /// Ingests a document extracted and chunked elsewhere (`ragmill ingest --server` does it
    /// on the client): checks every chunk against the model's window with this side's
    /// tokenizer, then looks up, embeds and stores as [`Pipeline::ingest_one`] does.
    pub async fn ingest_prechunked(
        &self,
        user: UserId,
        doc: Prechunked,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Outcome {
        let started = Instant::now();
        let hash = ContentHash::from_hex(&doc.content_hash)
            .map_err(|e| IngestError::InvalidRequest(format!("content_hash: {e}")))?;
        if doc.chunks.is_empty() {
            return Err(IngestError::NoText);
        }
        let window = self.embedder.info().max_tokens;
        let mut chunks = doc.chunks;
        for (i, c) in chunks.iter_mut().enumerate() {
            let tokens = self.chunker.count_tokens(&c.text).map_err(IngestError::from)?;
            if tokens > window {
                return Err(IngestError::ChunkTooLong { index: i, tokens, window });
            }
            c.ordinal = i as u32;
            c.tokens = tokens;
        }
        let meta = Meta { name: doc.name, document: None, hash, size: doc.size };
        if let Some(done) = self.unchanged(user, &meta).await? {
            return Ok(done);
        }
        let mut result = self
            .embed_and_store(user, &meta, Some(doc.kind), chunks, Timings::new(), progress)
            .await
            .map_err(|(e, _, _)| e)?;
        result.timings.insert("total".into(), started.elapsed().as_secs_f64());
        Ok(result)
    }
}

/// A document extracted and chunked by a client, as `POST /v1/documents/chunked` takes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Prechunked {
    /// The name it is stored under (unique per user).
    pub name: String,
    /// blake3 of the original file's bytes, in hex: an unchanged file is not re-processed.
    pub content_hash: String,
    /// The original file's size in bytes.
    pub size: u64,
    /// What the client extracted it as.
    pub kind: ragmill_core::DocumentKind,
    /// The chunks, in order (ordinals and token counts are recomputed here).
    pub chunks: Vec<Chunk>,
}

struct Meta {
    name: String,
    document: Option<DocumentId>,
    hash: ContentHash,
    size: u64,
}

impl Meta {
    /// This input as the version a catalog records, with what processing learnt of it.
    fn version(
        &self,
        kind: Option<ragmill_core::DocumentKind>,
        timings: Timings,
    ) -> DocumentVersion {
        DocumentVersion {
            document: self.document,
            name: self.name.clone(),
            content_hash: self.hash,
            kind,
            size: self.size,
            timings,
        }
    }
}

/// The document's bytes, refusing anything over `limit` before reading it.
async fn read(source: Source, limit: u64) -> Result<Vec<u8>, IngestError> {
    let too_large = |size: u64| IngestError::TooLarge { size, limit };
    let unreadable = |e: std::io::Error| IngestError::Unreadable(e.to_string());
    match source {
        Source::Bytes(b) if b.len() as u64 > limit => Err(too_large(b.len() as u64)),
        Source::Bytes(b) => Ok(b),
        Source::Path(p) => {
            let size = tokio::fs::metadata(&p).await.map_err(unreadable)?.len();
            if size > limit {
                return Err(too_large(size));
            }
            tokio::fs::read(&p).await.map_err(unreadable)
        }
    }
}

fn internal(e: crate::SearchError) -> IngestError {
    IngestError::Internal(e.to_string())
}

/// The batcher's key for `user`'s text `hash`: a text already in flight for the same user is
/// joined, never one in flight for another user (whose timing would tell that they are
/// embedding it), just as each user's cache is their own.
fn join_key(user: UserId, hash: &ContentHash) -> ContentHash {
    let mut key = [0u8; 40];
    key[..8].copy_from_slice(&user.0.to_le_bytes());
    key[8..].copy_from_slice(hash.as_bytes());
    ContentHash::of(&key)
}
