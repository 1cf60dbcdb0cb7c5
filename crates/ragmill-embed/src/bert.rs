//! The synchronous BERT sentence encoder (candle, CPU).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use ragmill_core::{EmbedError, ModelInfo, normalize};
use tokenizers::{Tokenizer, TruncationParams};

use crate::model_dir::{ModelDir, ModelError, read_json};

/// A loaded sentence-transformers BERT model: tokenizer, weights and pooling.
///
/// Blocking and CPU-bound; [`crate::LocalEmbedder`] puts it on its own thread.
pub struct BertEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    info: ModelInfo,
}

fn backend(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Backend(e.to_string())
}

impl BertEncoder {
    /// Loads the model in `dir`. The tokenizer's own truncation and padding (all-MiniLM-L6-v2
    /// ships fixed padding at 128) are replaced by truncation at the model's `max_seq_length`
    /// and padding to the longest input of each micro-batch, as sentence-transformers does.
    pub fn load(dir: &ModelDir, max_batch: usize) -> Result<Self, EmbedError> {
        let unavailable = |e: ModelError| EmbedError::Unavailable(e.to_string());
        let config: Config = read_json(&dir.config()).map_err(unavailable)?;
        let mut tokenizer = Tokenizer::from_file(dir.tokenizer())
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.tokenizer().display())))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: dir.max_seq_length,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;

        let device = Device::Cpu;
        let weights = std::fs::read(dir.weights())
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.weights().display())))?;
        let fingerprint = blake3_hex12(&weights);
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.weights().display())))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.path.display())))?;
        let name = dir
            .path
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".into());
        let info = ModelInfo {
            id: format!("{name}@{fingerprint}"),
            dimensions: config.hidden_size,
            max_tokens: dir.max_seq_length,
            preferred_batch: max_batch.max(1),
        };
        Ok(Self { model, tokenizer, device, info })
    }

    /// The model's identity and shape. `id` carries a fingerprint of the weights, so the
    /// embedding cache never mixes vectors of two different models under one name.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Embeds `texts`: inputs are sorted by token length and encoded in micro-batches of at
    /// most `preferred_batch`, so padding stays small; results come back in input order.
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());

        let mut out = vec![Vec::new(); encodings.len()];
        for group in order.chunks(self.info.preferred_batch) {
            let batch: Vec<&tokenizers::Encoding> = group.iter().map(|&i| &encodings[i]).collect();
            for (&i, v) in group.iter().zip(self.forward(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn forward(&self, batch: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let len = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * len);
        let mut mask = Vec::with_capacity(batch.len() * len);
        for e in batch {
            ids.extend(e.get_ids().iter().copied());
            mask.extend(e.get_attention_mask().iter().copied());
            ids.resize(ids.len() + len - e.len(), 0);
            mask.resize(mask.len() + len - e.len(), 0);
        }
        let shape = (batch.len(), len);
        let ids = Tensor::from_vec(ids, shape, &self.device).map_err(backend)?;
        let mask = Tensor::from_vec(mask, shape, &self.device).map_err(backend)?;
        let types = ids.zeros_like().map_err(backend)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(backend)?;

        // Mean pooling over the attention mask.
        let mask = mask.to_dtype(DType::F32).map_err(backend)?.unsqueeze(2).map_err(backend)?;
        let summed = hidden.broadcast_mul(&mask).and_then(|t| t.sum(1)).map_err(backend)?;
        let counts = mask.sum(1).and_then(|c| c.clamp(1e-9f32, f32::MAX)).map_err(backend)?;
        let pooled = summed.broadcast_div(&counts).map_err(backend)?;
        let mut rows: Vec<Vec<f32>> = pooled.to_vec2().map_err(backend)?;
        rows.iter_mut().for_each(|v| normalize(v));
        Ok(rows)
    }
}

fn blake3_hex12(bytes: &[u8]) -> String {
    ragmill_core::ContentHash::of(bytes).to_hex()[..12].to_owned()
}
