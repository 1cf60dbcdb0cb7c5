//! The candle BERT encoder: the reference engine, and the one that runs on a CUDA GPU when the
//! `cuda` feature is built.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use ragmill_core::{EmbedError, ModelInfo, normalize};
use tokenizers::Tokenizer;

use crate::Precision;
use crate::encoder::{Encode, by_length, load_tokenizer, model_info, tokenize};
use crate::model_dir::{ModelDir, ModelError, read_json};

/// A loaded sentence-transformers BERT model on candle: tokenizer, weights and pooling
/// (mean pooling only).
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
    /// Loads the model in `dir` onto `device` (FP32).
    pub fn load(dir: &ModelDir, max_batch: usize, device: Device) -> Result<Self, EmbedError> {
        let unavailable = |e: ModelError| EmbedError::Unavailable(e.to_string());
        let config: Config = read_json(&dir.config()).map_err(unavailable)?;
        let tokenizer = load_tokenizer(dir)?;
        let weights = std::fs::read(dir.weights())
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.weights().display())))?;
        let info = model_info(dir, &weights, config.hidden_size, max_batch, Precision::Fp32);
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.weights().display())))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.path.display())))?;
        Ok(Self { model, tokenizer, device, info })
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

impl Encode for BertEncoder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Inputs are sorted by token length and encoded in padded micro-batches of at most
    /// `preferred_batch`, so padding stays small; results come back in input order.
    fn encode(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = tokenize(&self.tokenizer, texts)?;
        by_length(&encodings, self.info.preferred_batch, usize::MAX, |batch| self.forward(batch))
    }
}
