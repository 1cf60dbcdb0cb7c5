//! The in-process embedder: an encoder on its own OS thread.

use std::fmt;
use std::str::FromStr;
use std::sync::mpsc;
use std::thread;

use async_trait::async_trait;
use ragmill_core::{EmbedError, Embedder, ModelInfo};
use tokio::sync::oneshot;

use crate::Precision;
use crate::bert::BertEncoder;
use crate::encoder::Encode;
use crate::lanes::{self, Lane, Request, Waiting};
use crate::model_dir::ModelDir;
use crate::native::NativeEncoder;

/// Which implementation runs the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// ragmill's own CPU encoder (FP32 or INT8): the fastest on CPUs.
    #[default]
    Native,
    /// candle's BERT on the CPU: the reference implementation, FP32 only.
    Candle,
    /// candle's BERT on CUDA GPU 0; needs a build with `--features cuda`.
    Cuda,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Native => "native",
            Engine::Candle => "candle",
            Engine::Cuda => "cuda",
        })
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "native" => Ok(Engine::Native),
            "candle" => Ok(Engine::Candle),
            "cuda" => Ok(Engine::Cuda),
            other => Err(format!("unknown engine {other:?} (expected native, candle or cuda)")),
        }
    }
}

/// How the local embedder runs.
#[derive(Debug, Clone, Copy)]
pub struct LocalOptions {
    /// Inputs per forward pass (similar lengths are packed together).
    pub max_batch: usize,
    /// FP32 or INT8 (native engine only).
    pub precision: Precision,
    /// Which implementation runs the model.
    pub engine: Engine,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self { max_batch: 32, precision: Precision::Fp32, engine: Engine::Native }
    }
}

/// The default embedding backend: a sentence-transformers BERT model in this process.
///
/// The model lives on one dedicated thread that takes requests from a channel, one pass at a
/// time; within a pass the kernels spread the work over every core. Queries
/// ([`Embedder::embed_query`]) go before batches ([`Embedder::embed`]) whenever both wait, and
/// the queries waiting share a pass, so a search waits at most for the pass already running.
/// Dropping the embedder stops the thread once the requests already sent are done.
pub struct LocalEmbedder {
    info: ModelInfo,
    options: LocalOptions,
    tx: mpsc::Sender<Request>,
}

fn encoder(dir: &ModelDir, o: LocalOptions) -> Result<Box<dyn Encode>, EmbedError> {
    if o.engine != Engine::Native && o.precision != Precision::Fp32 {
        return Err(EmbedError::Unavailable(format!(
            "precision {} needs the native engine (the {} engine computes in fp32)",
            o.precision, o.engine
        )));
    }
    Ok(match o.engine {
        Engine::Native => Box::new(NativeEncoder::load(dir, o.max_batch, o.precision)?),
        Engine::Candle => Box::new(BertEncoder::load(dir, o.max_batch, candle_core::Device::Cpu)?),
        Engine::Cuda => Box::new(BertEncoder::load(dir, o.max_batch, cuda_device()?)?),
    })
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<candle_core::Device, EmbedError> {
    candle_core::Device::new_cuda(0)
        .map_err(|e| EmbedError::Unavailable(format!("CUDA device 0: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<candle_core::Device, EmbedError> {
    Err(EmbedError::Unavailable(
        "this ragmill was built without CUDA support (rebuild with `--features cuda`)".into(),
    ))
}

impl LocalEmbedder {
    /// Loads the model (blocking: a few hundred milliseconds) and starts its thread.
    pub fn load(dir: &ModelDir, options: LocalOptions) -> Result<Self, EmbedError> {
        // The kernels' own thread pool, one thread per core. Each batch runs *inside* it
        // (`install`), so the many short parallel steps of a forward pass are handed between
        // busy workers instead of waking a pool from outside every time: at batch 1 that
        // wake-up traffic cost a fifth of the time.
        let pool = rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("ragmill-kernels-{i}"))
            .build()
            .map_err(|e| EmbedError::Unavailable(format!("cannot start kernel threads: {e}")))?;
        let encoder = pool.install(|| encoder(dir, options))?;
        Self::start(encoder, pool, options)
    }

    /// Runs `encoder` on its own thread, each pass inside `pool`.
    fn start(
        mut encoder: Box<dyn Encode>,
        pool: rayon::ThreadPool,
        options: LocalOptions,
    ) -> Result<Self, EmbedError> {
        let info = encoder.info().clone();
        let max_texts = options.max_batch.max(1);
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("ragmill-embed".into())
            .spawn(move || {
                let mut waiting = Waiting::default();
                loop {
                    // Block only when nothing waits; then take in everything that has arrived,
                    // so a query sent during the last pass goes before older batches.
                    if waiting.is_empty() {
                        match rx.recv() {
                            Ok(request) => waiting.push(request),
                            Err(_) => return, // the embedder is gone and nothing waits
                        }
                    }
                    waiting.extend(rx.try_iter());
                    let pass = waiting.next(max_texts);
                    if !pass.is_empty() {
                        pool.install(|| lanes::run(encoder.as_mut(), pass));
                    }
                }
            })
            .map_err(|e| EmbedError::Unavailable(format!("cannot start embedding thread: {e}")))?;
        Ok(Self { info, options, tx })
    }

    /// Sends `texts` down `lane` and checks the answer's shape.
    async fn request(&self, lane: Lane, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let want = texts.len();
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request { lane, texts, reply }).map_err(|_| EmbedError::Stopped)?;
        let vectors = rx.await.map_err(|_| EmbedError::Stopped)??;
        let dim = vectors.first().map_or(0, Vec::len);
        if vectors.len() != want || vectors.iter().any(|v| v.len() != self.info.dimensions) {
            return Err(EmbedError::Shape {
                got: vectors.len(),
                dim,
                want,
                want_dim: self.info.dimensions,
            });
        }
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn stats(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "backend": "local",
            "model": self.info.id,
            "dimensions": self.info.dimensions,
            "engine": self.options.engine,
            "precision": self.options.precision,
            "kernels": crate::kernel_isa(),
            "max_batch": self.options.max_batch,
        }))
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.request(Lane::Batch, texts).await
    }

    /// Goes before every batch waiting for the model (see [`LocalEmbedder`]).
    async fn embed_query(&self, text: String) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.request(Lane::Query, vec![text]).await?;
        vectors.pop().ok_or(EmbedError::Shape {
            got: 0,
            dim: 0,
            want: 1,
            want_dim: self.info.dimensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    /// Vectors are `[text length]`; records each pass's texts. The first pass tells `started`
    /// and then holds the model thread until `gate` opens.
    struct Gated {
        info: ModelInfo,
        passes: Arc<Mutex<Vec<Vec<String>>>>,
        started: Option<tokio::sync::oneshot::Sender<()>>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl Encode for Gated {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn encode(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
            if let (Some(started), Some(gate)) = (self.started.take(), self.gate.take()) {
                let _ = started.send(());
                let _ = gate.recv();
            }
            self.passes.lock().expect("lock").push(texts.to_vec());
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
    }

    type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, EmbedError>> + Send + 'a>>;

    /// Polls `f` once, which sends its request to the model thread, and hands it back.
    fn sent<'a, T>(mut f: Pending<'a, T>) -> Pending<'a, T> {
        let poll = f.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(poll, Poll::Pending), "the model thread is held");
        f
    }

    #[tokio::test]
    async fn queries_overtake_waiting_batches_and_share_a_pass() {
        let passes = Arc::new(Mutex::new(Vec::new()));
        let (started, is_running) = tokio::sync::oneshot::channel();
        let (open, gate) = mpsc::channel();
        let info = ModelInfo {
            id: "gated".into(),
            space: "gated".into(),
            dimensions: 1,
            max_tokens: 8,
            preferred_batch: 4,
        };
        let encoder =
            Gated { info, passes: Arc::clone(&passes), started: Some(started), gate: Some(gate) };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
        let embedder =
            LocalEmbedder::start(Box::new(encoder), pool, LocalOptions::default()).expect("starts");

        let running = sent(embedder.embed(vec!["running".into()]));
        is_running.await.expect("the first pass started");
        let b1 = sent(embedder.embed(vec!["b1".into(), "b1b1".into()]));
        let gone = sent(embedder.embed(vec!["gone".into()]));
        let b2 = sent(embedder.embed(vec!["b2".into()]));
        let q1 = sent(embedder.embed_query("q1q1q1".into()));
        let q2 = sent(embedder.embed_query("q2".into()));
        drop(gone);
        open.send(()).expect("model thread waits");

        assert_eq!(q1.await.expect("q1"), [6.0]);
        assert_eq!(q2.await.expect("q2"), [2.0]);
        assert_eq!(b2.await.expect("b2"), [[2.0]]);
        assert_eq!(b1.await.expect("b1"), [[2.0], [4.0]]);
        assert_eq!(running.await.expect("running"), [[7.0]]);
        let passes = passes.lock().expect("lock").clone();
        assert_eq!(
            passes,
            [&["running"][..], &["q1q1q1", "q2"], &["b1", "b1b1"], &["b2"]],
            "the queries go right after the pass running, together; the abandoned batch never runs"
        );
    }
}
