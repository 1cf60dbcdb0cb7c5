//! The in-process embedder: a [`BertEncoder`] on its own OS thread.

use std::sync::mpsc;
use std::thread;

use async_trait::async_trait;
use ragmill_core::{EmbedError, Embedder, ModelInfo};
use tokio::sync::oneshot;

use crate::bert::BertEncoder;
use crate::model_dir::ModelDir;

/// How the local embedder runs.
#[derive(Debug, Clone, Copy)]
pub struct LocalOptions {
    /// Inputs per forward pass (similar lengths are packed together).
    pub max_batch: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self { max_batch: 32 }
    }
}

type Request = (Vec<String>, oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>);

/// The default embedding backend: a sentence-transformers BERT model in this process.
///
/// The model lives on one dedicated thread that takes batches from a channel, one at a time;
/// within a batch candle spreads the matrix work over every core. Dropping the embedder stops
/// the thread once the batch in hand is done.
pub struct LocalEmbedder {
    info: ModelInfo,
    tx: mpsc::Sender<Request>,
}

impl LocalEmbedder {
    /// Loads the model (blocking: a few hundred milliseconds) and starts its thread.
    pub fn load(dir: &ModelDir, options: LocalOptions) -> Result<Self, EmbedError> {
        let encoder = BertEncoder::load(dir, options.max_batch)?;
        let info = encoder.info().clone();
        let (tx, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("ragmill-embed".into())
            .spawn(move || {
                for (texts, reply) in rx {
                    if reply.is_closed() {
                        continue; // the caller has gone away: skip the work
                    }
                    let _ = reply.send(encoder.encode(&texts));
                }
            })
            .map_err(|e| EmbedError::Unavailable(format!("cannot start embedding thread: {e}")))?;
        Ok(Self { info, tx })
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn info(&self) -> &ModelInfo {
        &self.info
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
