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

type Request = (Vec<String>, oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>);

/// The default embedding backend: a sentence-transformers BERT model in this process.
///
/// The model lives on one dedicated thread that takes batches from a channel, one at a time;
/// within a batch the kernels spread the work over every core. Dropping the embedder stops
/// the thread once the batch in hand is done.
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
        let mut encoder = pool.install(|| encoder(dir, options))?;
        let info = encoder.info().clone();
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("ragmill-embed".into())
            .spawn(move || {
                for (texts, reply) in rx {
                    if reply.is_closed() {
                        continue; // the caller has gone away: skip the work
                    }
                    let _ = reply.send(pool.install(|| encoder.encode(&texts)));
                }
            })
            .map_err(|e| EmbedError::Unavailable(format!("cannot start embedding thread: {e}")))?;
        Ok(Self { info, options, tx })
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
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let want = texts.len();
        let (reply, rx) = oneshot::channel();
        self.tx.send((texts, reply)).map_err(|_| EmbedError::Stopped)?;
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
