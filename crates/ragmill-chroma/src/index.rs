//! [`ChromaIndex`]: the [`VectorIndex`] seam over Chroma's HTTP API, one collection per user.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use ragmill_core::{
    DocumentId, IndexError, IndexedChunk, IndexedVersion, Retire, UserId, VectorHit, VectorIndex,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::ChromaConfig;
use crate::http::{Api, ApiError};
use crate::wire::{self, CollectionInfo, Embeddings, Page, Query, RecordKey, Upsert};

/// Pauses before a search asks Chroma again after an unavailable answer (see `query`).
const QUERY_RETRIES: [std::time::Duration; 2] =
    [std::time::Duration::from_millis(50), std::time::Duration::from_millis(250)];

/// The most records one upsert carries, whatever the server allows: bounds a request's body
/// (1,000 vectors of 1,024 floats are about 5.5 MB as base64).
const MAX_UPSERT: usize = 1_000;

/// Records per page when listing a collection for [`VectorIndex::inventory`].
const PAGE: usize = 5_000;

/// A user's collection as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Collection {
    /// Chroma's uuid, which the record routes take.
    id: String,
    /// Its vectors' dimension, once known (Chroma fixes it at the first write).
    dimension: Option<usize>,
}

/// ChromaDB as a [`VectorIndex`]: each user's vectors in a collection of their own, named
/// after the user's id ([`ChromaIndex::collection_name`]), created on the first write.
///
/// Cheap to share (`Arc`); every method is one or a few HTTP requests.
pub struct ChromaIndex {
    api: Api,
    /// Path segments up to the collections of the configured tenant and database.
    tenant: String,
    database: String,
    /// The most records per upsert: the server's `max_batch_size`, at most [`MAX_UPSERT`].
    batch: usize,
    /// Whether upserts send vectors as base64 (the server said it supports it).
    base64: bool,
    /// User → collection. A std `Mutex`: it is held only to read or change the map, never
    /// across an `.await`. An entry is dropped when its uuid answers 404 (the collection was
    /// deleted underneath), so a stale one costs one request.
    collections: Mutex<HashMap<UserId, Collection>>,
    /// Upserts go one at a time: Chroma 1.x takes concurrent writes badly (measured with
    /// `ragmill bench vectors`: 133 chunks/s with 4 documents written at once against 1,001
    /// one at a time, on 2 cores), so workers queue here rather than at the server.
    writes: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct PreFlight {
    max_batch_size: usize,
    #[serde(default)]
    supports_base64_encoding: bool,
}

impl ChromaIndex {
    /// Connects to `config`'s server: checks its heartbeat, reads its limits, and creates the
    /// tenant and the database if they do not exist. [`IndexError::Unavailable`] when the
    /// server cannot be reached.
    pub async fn connect(config: ChromaConfig) -> Result<ChromaIndex, IndexError> {
        let api = Api::new(&config)?;
        api.get::<Value>(&["heartbeat"]).await?;
        let limits: PreFlight = api.get(&["pre-flight-checks"]).await?;
        if limits.max_batch_size == 0 {
            return Err(IndexError::Failed("chroma answered a max_batch_size of 0".into()));
        }
        let (tenant, database) = (config.tenant, config.database);
        ensure(&api, &["tenants", &tenant], &["tenants"], &tenant).await?;
        let path = ["tenants", &tenant, "databases"];
        ensure(&api, &["tenants", &tenant, "databases", &database], &path, &database).await?;
        tracing::info!(
            url = %config.url, %tenant, %database, max_batch_size = limits.max_batch_size,
            base64 = limits.supports_base64_encoding, "connected to chroma"
        );
        Ok(ChromaIndex {
            api,
            tenant,
            database,
            batch: limits.max_batch_size.min(MAX_UPSERT),
            base64: limits.supports_base64_encoding,
            collections: Mutex::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// The name of `user`'s collection: `ragmill_user_{id}`, from the user's stable numeric id.
    pub fn collection_name(user: UserId) -> String {
        format!("ragmill_user_{}", user.0)
    }

    /// The most records one upsert request carries.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// `tenants/{t}/databases/{d}/collections` followed by `more`.
    fn path<'a>(&'a self, more: &[&'a str]) -> Vec<&'a str> {
        let mut path = vec!["tenants", &self.tenant, "databases", &self.database, "collections"];
        path.extend_from_slice(more);
        path
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Collection>> {
        // The map is always consistent: a panic elsewhere cannot leave it half-changed.
        self.collections.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, user: UserId, info: CollectionInfo) -> Result<Collection, IndexError> {
        if info.id.is_empty() {
            return Err(IndexError::Failed("chroma answered a collection without an id".into()));
        }
        let collection = Collection { id: info.id, dimension: info.dimension };
        self.cache().insert(user, collection.clone());
        Ok(collection)
    }

    /// Drops `user`'s cached collection if it is still `stale` (its uuid answered 404).
    fn forget(&self, user: UserId, stale: &Collection) {
        let mut cache = self.cache();
        if cache.get(&user).is_some_and(|c| c.id == stale.id) {
            cache.remove(&user);
        }
    }

    /// `user`'s collection, if it exists (reads never create one).
    async fn find(&self, user: UserId) -> Result<Option<Collection>, IndexError> {
        if let Some(c) = self.cache().get(&user) {
            return Ok(Some(c.clone()));
        }
        let name = Self::collection_name(user);
        match self.api.get::<CollectionInfo>(&self.path(&[&name])).await {
            Ok(info) => self.remember(user, info).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `user`'s collection, created (cosine space, HNSW as the store's own index) if need be.
    async fn ensure(&self, user: UserId) -> Result<Collection, IndexError> {
        if let Some(c) = self.cache().get(&user) {
            return Ok(c.clone());
        }
        let body = json!({
            "name": Self::collection_name(user),
            "get_or_create": true,
            "configuration": {"hnsw": {
                "space": "cosine", "max_neighbors": 32, "ef_construction": 128, "ef_search": 128,
            }},
            "metadata": {"ragmill": 1, "user": user.0},
        });
        let info = self.api.post(&self.path(&[]), &body).await?;
        self.remember(user, info)
    }

    /// Runs `op` on `user`'s collection; `none` when there is none. A 404 from a cached uuid
    /// (deleted underneath) looks the collection up again once.
    async fn on_existing<T, F, Fut>(&self, user: UserId, none: T, op: F) -> Result<T, IndexError>
    where
        F: Fn(Collection) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut looked_again = false;
        loop {
            let Some(collection) = self.find(user).await? else { return Ok(none) };
            match op(collection.clone()).await {
                Err(e) if e.is_not_found() && !looked_again => {
                    self.forget(user, &collection);
                    looked_again = true;
                }
                result => return result.map_err(IndexError::from),
            }
        }
    }

    async fn upsert(
        &self,
        c: &Collection,
        keys: &[RecordKey],
        chunks: &[IndexedChunk],
    ) -> Result<(), ApiError> {
        let route = self.path(&[&c.id, "upsert"]);
        let _one_at_a_time = self.writes.lock().await;
        for (keys, chunks) in keys.chunks(self.batch).zip(chunks.chunks(self.batch)) {
            let body = Upsert {
                ids: keys.iter().map(RecordKey::to_string).collect(),
                embeddings: Embeddings::new(
                    chunks.iter().map(|c| &c.vector[..]).collect(),
                    self.base64,
                ),
                metadatas: keys.iter().map(RecordKey::metadata).collect(),
            };
            self.api.post::<_, Value>(&route, &body).await?;
        }
        Ok(())
    }

    async fn delete_where(&self, c: Collection, filter: &Value) -> Result<(), ApiError> {
        let answer: Value =
            self.api.post(&self.path(&[&c.id, "delete"]), &json!({"where": filter})).await?;
        match answer.get("deleted") {
            None | Some(Value::Number(_)) => Ok(()),
            Some(other) => {
                Err(ApiError::Invalid(format!("chroma answered a delete with deleted = {other}")))
            }
        }
    }

    async fn query(
        &self,
        c: Collection,
        query: &Query<'_>,
        documents: Option<&HashSet<i64>>,
    ) -> Result<Vec<VectorHit>, ApiError> {
        let route = self.path(&[&c.id, "query"]);
        // Chroma 1.5 answers some queries on a collection just written with a 500 ("Error
        // creating hnsw segment reader: Nothing found on disk") and the same query a moment
        // later with hits: a search tries again twice, briefly, before it gives up as
        // unavailable. Told apart by kind (5xx, no answer), never by the message.
        let mut pauses = QUERY_RETRIES.iter();
        let answer = loop {
            match self.api.post(&route, query).await {
                Err(ApiError::Unavailable(why)) => match pauses.next() {
                    Some(pause) => {
                        tracing::debug!(collection = %c.id, error = %why, "chroma query retried");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(ApiError::Unavailable(why)),
                },
                other => break other?,
            }
        };
        wire::hits(answer, query.n_results, documents)
            .map_err(|why| ApiError::Invalid(format!("chroma answered a query on {}: {why}", c.id)))
    }

    async fn list(&self, c: Collection) -> Result<Vec<IndexedVersion>, ApiError> {
        let route = self.path(&[&c.id, "get"]);
        let mut keys = Vec::new();
        loop {
            let request = Page { include: ["metadatas"], limit: PAGE, offset: keys.len() };
            let answer = self.api.post(&route, &request).await?;
            let page = wire::page(answer, PAGE).map_err(|why| {
                ApiError::Invalid(format!("chroma answered a get on {}: {why}", c.id))
            })?;
            let last = page.len() < PAGE;
            keys.extend(page);
            if last {
                break;
            }
        }
        Ok(wire::tally(keys))
    }
}

/// Creates the tenant or database at `path` (posting `{"name"}` to `parent`) unless it exists;
/// 409 means someone else just did.
async fn ensure(api: &Api, path: &[&str], parent: &[&str], name: &str) -> Result<(), ApiError> {
    match api.get::<Value>(path).await {
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    tracing::info!(name, "creating chroma {}", parent.last().copied().unwrap_or_default());
    match api.post::<_, Value>(parent, &json!({"name": name})).await {
        Err(e) if e.is_conflict() => Ok(()),
        result => result.map(drop),
    }
}

/// The one dimension of `chunks`' vectors, if they share one, all finite.
fn dimension_of(chunks: &[IndexedChunk]) -> Result<usize, IndexError> {
    let dimension = chunks.first().map_or(0, |c| c.vector.len());
    for c in chunks {
        if c.vector.len() != dimension || dimension == 0 {
            return Err(IndexError::Failed(format!(
                "chunk {} has a vector of {} floats; the first has {dimension}",
                c.chunk,
                c.vector.len()
            )));
        }
        if !c.vector.iter().all(|x| x.is_finite()) {
            return Err(IndexError::Failed(format!("chunk {}'s vector is not finite", c.chunk)));
        }
    }
    Ok(dimension)
}

#[async_trait]
impl VectorIndex for ChromaIndex {
    fn backend(&self) -> &'static str {
        "chroma"
    }

    fn external(&self) -> bool {
        true
    }

    async fn health(&self) -> Result<(), IndexError> {
        self.api.get::<Value>(&["heartbeat"]).await?;
        Ok(())
    }

    async fn write(
        &self,
        user: UserId,
        document: DocumentId,
        generation: u64,
        chunks: Vec<IndexedChunk>,
    ) -> Result<(), IndexError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let dimension = dimension_of(&chunks)?;
        let keys: Vec<RecordKey> = chunks
            .iter()
            .map(|c| RecordKey { document: document.0, generation, chunk: c.chunk })
            .collect();
        let mut recreated = false;
        loop {
            let collection = self.ensure(user).await?;
            match self.upsert(&collection, &keys, &chunks).await {
                Ok(()) => break,
                // Deleted underneath: create it again, once.
                Err(e) if e.is_not_found() && !recreated => {
                    self.forget(user, &collection);
                    recreated = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(c) = self.cache().get_mut(&user) {
            c.dimension = Some(dimension);
        }
        Ok(())
    }

    async fn retire(
        &self,
        user: UserId,
        document: DocumentId,
        which: Retire,
    ) -> Result<(), IndexError> {
        let filter = match which {
            Retire::Through(g) => {
                json!({"$and": [{"document": document.0}, {"generation": {"$lte": g}}]})
            }
            Retire::Generation(g) => json!({"$and": [{"document": document.0}, {"generation": g}]}),
        };
        self.on_existing(user, (), |c| self.delete_where(c, &filter)).await
    }

    async fn remove_user(&self, user: UserId) -> Result<(), IndexError> {
        self.cache().remove(&user);
        let name = Self::collection_name(user);
        match self.api.delete::<Value>(&self.path(&[&name])).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn search(
        &self,
        user: UserId,
        query: Vec<f32>,
        k: usize,
        documents: Option<Vec<DocumentId>>,
    ) -> Result<Vec<VectorHit>, IndexError> {
        if k == 0 || documents.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        if query.is_empty() || !query.iter().all(|x| x.is_finite()) {
            return Err(IndexError::Failed("the query vector is empty or not finite".into()));
        }
        let allowed: Option<HashSet<i64>> = documents.map(|d| d.iter().map(|d| d.0).collect());
        let filter = allowed.as_ref().map(|a| {
            let mut ids: Vec<i64> = a.iter().copied().collect();
            ids.sort_unstable();
            json!({"document": {"$in": ids}})
        });
        let request = Query {
            query_embeddings: [&query],
            n_results: k,
            include: ["distances", "metadatas"],
            filter,
        };
        let (query, request, allowed) = (&query, &request, allowed.as_ref());
        self.on_existing(user, Vec::new(), |c| async move {
            if let Some(want) = c.dimension.filter(|&want| want != query.len()) {
                // Chroma would refuse it too (400); say so in the seam's own terms.
                return Err(ApiError::Dimension { got: query.len(), want });
            }
            self.query(c, request, allowed).await
        })
        .await
    }

    async fn inventory(&self, user: UserId) -> Result<Vec<IndexedVersion>, IndexError> {
        self.on_existing(user, Vec::new(), |c| self.list(c)).await
    }
}

impl std::fmt::Debug for ChromaIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromaIndex")
            .field("url", &self.api.url(&[]).as_str())
            .field("tenant", &self.tenant)
            .field("database", &self.database)
            .field("batch", &self.batch)
            .field("base64", &self.base64)
            .finish_non_exhaustive()
    }
}
