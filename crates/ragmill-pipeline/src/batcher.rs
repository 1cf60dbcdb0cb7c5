//! The embedding batcher: one task that owns the queue of texts waiting to be embedded.
//!
//! Every document in flight submits its cache misses here; the task packs them into batches up
//! to a count and a token budget, so ten small documents cost about one large one. A text whose
//! hash is already queued or in flight is not queued again: its caller waits on the same result,
//! so identical content arriving from two documents at once is still embedded once.
//!
//! An idle embedder waits [`BatchConfig::linger`] for company before it takes a small queue,
//! which is worth it for chunks and not for a query that someone waits on: such a text is
//! submitted with [`Batcher::submit_urgent`], never lingers, and goes before the queued texts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ragmill_core::{ContentHash, EmbedError, Embedder};
use tokio::sync::{mpsc, oneshot};

/// How batches are packed.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most texts in one batch.
    pub max_batch: usize,
    /// Most model tokens in one batch.
    pub max_tokens: usize,
    /// Batches in flight at once (1 for the in-process model, which uses every core already).
    pub concurrency: usize,
    /// How long a lone text waits for company before an idle embedder takes it (never for
    /// texts submitted with [`Batcher::submit_urgent`]).
    pub linger: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: 32,
            max_tokens: 32 * 256,
            concurrency: 1,
            linger: Duration::from_millis(3),
        }
    }
}

/// The result one waiter receives.
pub type Embedded = Result<Arc<[f32]>, Arc<EmbedError>>;

struct Item {
    hash: ContentHash,
    text: String,
    tokens: usize,
    urgent: bool,
    reply: oneshot::Sender<Embedded>,
}

/// A text waiting for a batch: its hash, the text, its tokens.
type Entry = (ContentHash, String, usize);

/// Who waits for each text queued or in flight.
type Waiters = HashMap<ContentHash, Vec<oneshot::Sender<Embedded>>>;

/// The task's texts: queued in two lanes, and the waiters of every text queued or in flight.
#[derive(Default)]
struct Queue {
    /// Texts submitted urgently: batched among themselves, before the others, never lingering.
    urgent: VecDeque<Entry>,
    /// Everything else, in order of arrival.
    normal: VecDeque<Entry>,
    waiters: Waiters,
}

impl Queue {
    /// Queues `item`, or joins it to the same text already queued or in flight (moving a
    /// queued text to the urgent lane when an urgent caller joins it). True when it joined.
    fn accept(&mut self, item: Item) -> bool {
        let Some(list) = self.waiters.get_mut(&item.hash) else {
            self.waiters.insert(item.hash, vec![item.reply]);
            let lane = if item.urgent { &mut self.urgent } else { &mut self.normal };
            lane.push_back((item.hash, item.text, item.tokens));
            return false;
        };
        list.push(item.reply);
        if item.urgent
            && let Some(i) = self.normal.iter().position(|(h, _, _)| *h == item.hash)
            && let Some(entry) = self.normal.remove(i)
        {
            self.urgent.push_back(entry);
        }
        true
    }

    fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.normal.is_empty()
    }

    /// The next batch and whether it is urgent: urgent texts when any are queued, else the
    /// others.
    fn take(&mut self, config: BatchConfig) -> (Vec<(ContentHash, String)>, bool) {
        if self.urgent.is_empty() {
            (take_batch(&mut self.normal, &mut self.waiters, config), false)
        } else {
            (take_batch(&mut self.urgent, &mut self.waiters, config), true)
        }
    }
}

/// Figures since start, for reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatcherStats {
    /// Batches sent to the embedder.
    pub batches: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Requests that joined a text already queued or in flight.
    pub joined: u64,
}

/// Told about every batch the embedder finishes (for metrics). Called on the batcher's task:
/// keep it quick and non-blocking.
pub trait BatchObserver: Send + Sync {
    /// A batch of `texts` texts came back after `elapsed`; `ok` is false when the embedder
    /// failed it (or returned the wrong number of vectors).
    fn batch(&self, texts: usize, elapsed: Duration, ok: bool);
}

/// The observer slot, shared by every handle and the task.
type ObserverSlot = Arc<RwLock<Option<Arc<dyn BatchObserver>>>>;

/// A handle to the batching task; cheap to clone. The task ends when every handle is dropped.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<Item>,
    stats: Arc<std::sync::Mutex<BatcherStats>>,
    observer: ObserverSlot,
}

impl Batcher {
    /// Starts the task on the current tokio runtime.
    pub fn start(embedder: Arc<dyn Embedder>, config: BatchConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(std::sync::Mutex::new(BatcherStats::default()));
        let observer: ObserverSlot = Arc::new(RwLock::new(None));
        tokio::spawn(run(embedder, config, rx, Arc::clone(&stats), Arc::clone(&observer)));
        Self { tx, stats, observer }
    }

    /// Reports every finished batch to `observer` from now on (replacing any earlier one);
    /// every clone of this handle shares it.
    pub fn set_observer(&self, observer: Arc<dyn BatchObserver>) {
        if let Ok(mut slot) = self.observer.write() {
            *slot = Some(observer);
        }
    }

    /// Queues `text` (hash, text, tokens) and returns a receiver for its vector.
    pub fn submit(
        &self,
        hash: ContentHash,
        text: String,
        tokens: usize,
    ) -> oneshot::Receiver<Embedded> {
        self.send(hash, text, tokens, false)
    }

    /// Like [`submit`](Self::submit), for a text someone is waiting on now (a query): an idle
    /// embedder takes it at once instead of lingering for company, and it goes before every
    /// text queued by `submit`, in a batch of urgent texts only, so it waits at most for the
    /// batches already running. Alone in its batch, it takes the embedder's latency path
    /// ([`Embedder::embed_query`]).
    pub fn submit_urgent(
        &self,
        hash: ContentHash,
        text: String,
        tokens: usize,
    ) -> oneshot::Receiver<Embedded> {
        self.send(hash, text, tokens, true)
    }

    fn send(
        &self,
        hash: ContentHash,
        text: String,
        tokens: usize,
        urgent: bool,
    ) -> oneshot::Receiver<Embedded> {
        let (reply, rx) = oneshot::channel();
        // If the task has stopped, `reply` is dropped with the item and the receiver errors.
        let _ = self.tx.send(Item { hash, text, tokens, urgent, reply });
        rx
    }

    /// Figures so far.
    pub fn stats(&self) -> BatcherStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }
}

async fn run(
    embedder: Arc<dyn Embedder>,
    config: BatchConfig,
    mut rx: mpsc::UnboundedReceiver<Item>,
    stats: Arc<std::sync::Mutex<BatcherStats>>,
    observer: ObserverSlot,
) {
    let mut queue = Queue::default();
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;

    let accept = |item: Item, queue: &mut Queue| {
        if queue.accept(item)
            && let Ok(mut s) = stats.lock()
        {
            s.joined += 1;
        }
    };

    loop {
        // Start batches while there is room.
        while in_flight.len() < config.concurrency.max(1) && !queue.is_empty() {
            if in_flight.is_empty()
                && queue.urgent.is_empty()
                && queue.normal.len() < config.max_batch
                && open
            {
                // Idle embedder, small queue: give other documents a moment to join, unless
                // someone is waiting on a text now.
                let deadline = tokio::time::sleep(config.linger);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = &mut deadline => break,
                        item = rx.recv() => match item {
                            Some(item) => {
                                accept(item, &mut queue);
                                if !queue.urgent.is_empty()
                                    || queue.normal.len() >= config.max_batch
                                {
                                    break;
                                }
                            }
                            None => { open = false; break; }
                        },
                    }
                }
            }
            let (batch, urgent) = queue.take(config);
            if batch.is_empty() {
                continue;
            }
            if let Ok(mut s) = stats.lock() {
                s.batches += 1;
                s.texts += batch.len() as u64;
            }
            let embedder = Arc::clone(&embedder);
            in_flight.push(async move {
                let (hashes, mut texts): (Vec<ContentHash>, Vec<String>) =
                    batch.into_iter().unzip();
                let started = Instant::now();
                let result = match texts.pop() {
                    Some(text) if urgent && texts.is_empty() => {
                        embedder.embed_query(text).await.map(|v| vec![v])
                    }
                    last => {
                        texts.extend(last);
                        embedder.embed(texts).await
                    }
                };
                (hashes, result, started.elapsed())
            });
        }
        if !open && queue.is_empty() && in_flight.is_empty() {
            return;
        }
        tokio::select! {
            item = rx.recv(), if open => match item {
                Some(item) => accept(item, &mut queue),
                None => open = false,
            },
            Some((hashes, result, elapsed)) = in_flight.next(), if !in_flight.is_empty() => {
                let observer = observer.read().ok().and_then(|o| o.clone());
                if let Some(observer) = observer {
                    let ok = matches!(&result, Ok(v) if v.len() == hashes.len());
                    observer.batch(hashes.len(), elapsed, ok);
                }
                deliver(&mut queue.waiters, hashes, result);
            }
        }
    }
}

/// Takes texts off the front of the queue up to the batch limits, dropping texts whose every
/// waiter has gone away (a cancelled document's), waiters and all: the same text submitted
/// again later is queued afresh, not joined to a text no longer queued.
fn take_batch(
    queue: &mut VecDeque<Entry>,
    waiters: &mut Waiters,
    config: BatchConfig,
) -> Vec<(ContentHash, String)> {
    let mut batch = Vec::new();
    let mut tokens = 0;
    while let Some((hash, _, t)) = queue.front() {
        let abandoned = waiters.get(hash).is_none_or(|w| w.iter().all(|r| r.is_closed()));
        if !batch.is_empty() && (batch.len() >= config.max_batch || tokens + t > config.max_tokens)
        {
            break;
        }
        let Some((hash, text, t)) = queue.pop_front() else { break };
        if abandoned {
            waiters.remove(&hash);
            continue;
        }
        tokens += t;
        batch.push((hash, text));
    }
    batch
}

fn deliver(
    waiters: &mut Waiters,
    hashes: Vec<ContentHash>,
    result: Result<Vec<Vec<f32>>, EmbedError>,
) {
    match result {
        Ok(vectors) if vectors.len() == hashes.len() => {
            for (hash, v) in hashes.into_iter().zip(vectors) {
                let v: Arc<[f32]> = v.into();
                for reply in waiters.remove(&hash).unwrap_or_default() {
                    let _ = reply.send(Ok(Arc::clone(&v)));
                }
            }
        }
        Ok(vectors) => {
            let err = Arc::new(EmbedError::Shape {
                got: vectors.len(),
                dim: 0,
                want: hashes.len(),
                want_dim: 0,
            });
            fail(waiters, hashes, err);
        }
        Err(e) => fail(waiters, hashes, Arc::new(e)),
    }
}

fn fail(waiters: &mut Waiters, hashes: Vec<ContentHash>, err: Arc<EmbedError>) {
    for hash in hashes {
        for reply in waiters.remove(&hash).unwrap_or_default() {
            let _ = reply.send(Err(Arc::clone(&err)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use ragmill_core::ModelInfo;
    use std::sync::Mutex;

    /// Records every batch it is asked for; vectors encode the text length.
    struct Recording {
        info: ModelInfo,
        batches: Mutex<Vec<Vec<String>>>,
        fail: bool,
    }

    impl Recording {
        fn new(fail: bool) -> Arc<Self> {
            let info = ModelInfo {
                id: "rec".into(),
                space: "rec".into(),
                dimensions: 2,
                max_tokens: 256,
                preferred_batch: 4,
            };
            Arc::new(Self { info, batches: Mutex::new(Vec::new()), fail })
        }
        fn batches(&self) -> Vec<Vec<String>> {
            self.batches.lock().map(|b| b.clone()).unwrap_or_default()
        }
    }

    #[async_trait]
    impl Embedder for Recording {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(mut b) = self.batches.lock() {
                b.push(texts.clone());
            }
            if self.fail {
                return Err(EmbedError::Backend("boom".into()));
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
        /// Recorded as a batch of `?text`, to tell the latency path from a batch of one.
        async fn embed_query(&self, text: String) -> Result<Vec<f32>, EmbedError> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Ok(mut b) = self.batches.lock() {
                b.push(vec![format!("?{text}")]);
            }
            Ok(vec![text.len() as f32, 1.0])
        }
    }

    fn submit(b: &Batcher, text: &str, tokens: usize) -> oneshot::Receiver<Embedded> {
        b.submit(ContentHash::of(text.as_bytes()), text.to_owned(), tokens)
    }

    fn urgent(b: &Batcher, text: &str) -> oneshot::Receiver<Embedded> {
        b.submit_urgent(ContentHash::of(text.as_bytes()), text.to_owned(), 1)
    }

    #[tokio::test]
    async fn an_urgent_lone_text_does_not_linger() {
        let rec = Recording::new(false);
        let config = BatchConfig { linger: Duration::from_millis(200), ..BatchConfig::default() };
        let b = Batcher::start(rec.clone(), config);
        let started = Instant::now();
        let lone = submit(&b, "lone", 1);
        let query = urgent(&b, "query");
        assert_eq!(query.await.expect("reply").expect("vector")[0], 5.0);
        let query_took = started.elapsed();
        lone.await.expect("reply").expect("vector");
        let lone_took = started.elapsed();
        assert!(
            query_took < Duration::from_millis(150),
            "the query took {query_took:?}: it waited for the 200 ms linger"
        );
        assert!(lone_took >= Duration::from_millis(200), "the plain text lingers: {lone_took:?}");
        assert_eq!(
            rec.batches(),
            vec![vec!["?query"], vec!["lone"]],
            "the query alone, on the latency path, first"
        );
    }

    #[tokio::test]
    async fn urgent_texts_go_before_queued_ones_and_promote_what_they_join() {
        let rec = Recording::new(false);
        let config = BatchConfig {
            max_batch: 2,
            max_tokens: 1000,
            concurrency: 1,
            linger: Duration::from_millis(30),
        };
        let b = Batcher::start(rec.clone(), config);
        let queued: Vec<_> = ["a", "b", "c", "d"].iter().map(|t| submit(&b, t, 1)).collect();
        let urgent: Vec<_> = ["q", "d"].iter().map(|t| urgent(&b, t)).collect();
        for rx in urgent.into_iter().chain(queued) {
            rx.await.expect("reply").expect("vector");
        }
        assert_eq!(
            rec.batches(),
            vec![vec!["a", "b"], vec!["q", "d"], vec!["c"]],
            "the batch running, then the urgent texts (d moved up), then the rest"
        );
        assert_eq!(b.stats(), BatcherStats { batches: 3, texts: 5, joined: 1 });
    }

    #[tokio::test]
    async fn texts_from_many_callers_share_batches_and_duplicates_are_embedded_once() {
        let rec = Recording::new(false);
        let config = BatchConfig {
            max_batch: 8,
            max_tokens: 10_000,
            concurrency: 1,
            linger: Duration::from_millis(50),
        };
        let b = Batcher::start(rec.clone(), config);
        let rxs: Vec<_> =
            ["a", "bb", "a", "ccc", "bb", "dddd"].iter().map(|t| submit(&b, t, 1)).collect();
        let mut got = Vec::new();
        for rx in rxs {
            got.push(rx.await.expect("reply").expect("vector")[0]);
        }
        assert_eq!(got, vec![1.0, 2.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(
            rec.batches(),
            vec![vec!["a", "bb", "ccc", "dddd"]],
            "one batch, each text once"
        );
        assert_eq!(b.stats(), BatcherStats { batches: 1, texts: 4, joined: 2 });
    }

    #[tokio::test]
    async fn batches_respect_count_and_token_budget() {
        let rec = Recording::new(false);
        let config = BatchConfig {
            max_batch: 3,
            max_tokens: 100,
            concurrency: 1,
            linger: Duration::from_millis(50),
        };
        let b = Batcher::start(rec.clone(), config);
        let texts = ["t1", "t2", "t3", "t4", "t5", "t6", "t7"];
        let tokens = [10, 10, 10, 60, 60, 10, 10];
        let rxs: Vec<_> = texts.iter().zip(tokens).map(|(t, n)| submit(&b, t, n)).collect();
        for rx in rxs {
            rx.await.expect("reply").expect("vector");
        }
        let sizes: Vec<usize> = rec.batches().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 1, 3], "3 by count; 60+60 > 100 tokens; then the rest");
    }

    /// Keeps every (texts, ok) it is told about.
    #[derive(Default)]
    struct Seen(Mutex<Vec<(usize, bool)>>);

    impl BatchObserver for Seen {
        fn batch(&self, texts: usize, elapsed: Duration, ok: bool) {
            assert!(elapsed >= Duration::from_millis(15), "the embedder sleeps 20 ms");
            if let Ok(mut s) = self.0.lock() {
                s.push((texts, ok));
            }
        }
    }

    #[tokio::test]
    async fn the_observer_hears_every_finished_batch() {
        let config = BatchConfig {
            max_batch: 2,
            max_tokens: 1000,
            concurrency: 1,
            linger: Duration::from_millis(30),
        };
        let seen = Arc::new(Seen::default());
        let b = Batcher::start(Recording::new(false), config);
        b.clone().set_observer(seen.clone());
        let rxs: Vec<_> = ["a", "b", "c"].iter().map(|t| submit(&b, t, 1)).collect();
        for rx in rxs {
            rx.await.expect("reply").expect("vector");
        }
        assert_eq!(*seen.0.lock().expect("lock"), vec![(2, true), (1, true)]);

        let seen = Arc::new(Seen::default());
        let b = Batcher::start(Recording::new(true), BatchConfig::default());
        b.set_observer(seen.clone());
        submit(&b, "x", 1).await.expect("reply").expect_err("failed");
        assert_eq!(*seen.0.lock().expect("lock"), vec![(1, false)]);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_waiter() {
        let rec = Recording::new(true);
        let b = Batcher::start(rec.clone(), BatchConfig::default());
        let (x, y) = (submit(&b, "x", 1), submit(&b, "x", 1));
        for rx in [x, y] {
            let err = rx.await.expect("reply").expect_err("failed");
            assert!(err.to_string().contains("boom"));
        }
    }

    #[tokio::test]
    async fn abandoned_texts_are_not_embedded() {
        let rec = Recording::new(false);
        let config = BatchConfig {
            max_batch: 8,
            max_tokens: 1000,
            concurrency: 1,
            linger: Duration::from_millis(30),
        };
        let b = Batcher::start(rec.clone(), config);
        let keep = submit(&b, "keep", 1);
        drop(submit(&b, "gone", 1));
        keep.await.expect("reply").expect("vector");
        assert_eq!(rec.batches(), vec![vec!["keep"]]);
        // The same text again (a cancelled document retried) is embedded, not joined to the
        // abandoned one that is no longer queued.
        let again = submit(&b, "gone", 1);
        let got = tokio::time::timeout(Duration::from_secs(5), again).await;
        got.expect("answered").expect("reply").expect("vector");
        assert_eq!(rec.batches(), vec![vec!["keep"], vec!["gone"]]);
    }
}
