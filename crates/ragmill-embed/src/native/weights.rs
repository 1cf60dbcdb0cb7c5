//! Reading a BERT checkpoint (`config.json` + `model.safetensors`) into FP32 tensors.

use std::collections::HashMap;

use ragmill_core::EmbedError;
use safetensors::{Dtype, SafeTensors};

/// The parts of a Hugging Face BERT `config.json` the encoder uses.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BertConfig {
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// `gelu`, `gelu_new` or `gelu_pytorch_tanh`.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Layer-norm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    /// Rows of the position table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    #[serde(default = "default_types")]
    pub type_vocab_size: usize,
    /// Only `absolute` is supported.
    #[serde(default = "default_position")]
    pub position_embedding_type: String,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_eps() -> f32 {
    1e-12
}
fn default_types() -> usize {
    2
}
fn default_position() -> String {
    "absolute".into()
}

/// A checkpoint's tensors, converted to `f32` on demand.
pub struct Checkpoint<'a> {
    tensors: SafeTensors<'a>,
    prefix: &'static str,
    shapes: HashMap<String, Vec<usize>>,
}

fn unavailable(msg: String) -> EmbedError {
    EmbedError::Unavailable(msg)
}

impl<'a> Checkpoint<'a> {
    /// Parses the safetensors header. Checkpoints saved from `BertModel` name tensors
    /// `embeddings.*`; those saved from a task model prefix them with `bert.`: both load.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EmbedError> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| unavailable(format!("model.safetensors: {e}")))?;
        let shapes: HashMap<String, Vec<usize>> = tensors
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.shape().to_vec()))
            .collect();
        let prefix = if shapes.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        Ok(Self { tensors, prefix, shapes })
    }

    /// Rows of the 2-D tensor `name`, checked to have `cols` columns (the vocabulary size is
    /// whatever the checkpoint holds).
    pub fn rows(&self, name: &str, cols: usize) -> Result<usize, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        match self.shapes.get(&full).map(Vec::as_slice) {
            Some(&[rows, c]) if c == cols => Ok(rows),
            Some(shape) => {
                Err(unavailable(format!("tensor {full} has shape {shape:?}, expected [_, {cols}]")))
            }
            None => Err(unavailable(format!("model.safetensors has no tensor {full}"))),
        }
    }

    /// Tensor `name` (without the `bert.` prefix) as `f32`, checked to have `shape`.
    /// Layer norms saved under the old `gamma`/`beta` names are found too.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let mut full = format!("{}{name}", self.prefix);
        if !self.shapes.contains_key(&full) {
            let legacy = full
                .replace("LayerNorm.weight", "LayerNorm.gamma")
                .replace("LayerNorm.bias", "LayerNorm.beta");
            if self.shapes.contains_key(&legacy) {
                full = legacy;
            }
        }
        let view = self
            .tensors
            .tensor(&full)
            .map_err(|_| unavailable(format!("model.safetensors has no tensor {full}")))?;
        if view.shape() != shape {
            return Err(unavailable(format!(
                "tensor {full} has shape {:?}, config.json implies {shape:?}",
                view.shape()
            )));
        }
        let data = view.data();
        let floats: Vec<f32> = match view.dtype() {
            Dtype::F32 => {
                data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(unavailable(format!("tensor {full} has unsupported dtype {other:?}")));
            }
        };
        Ok(floats)
    }
}
