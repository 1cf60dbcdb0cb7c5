//! The native BERT encoder: the model's forward pass written directly on [`ragmill_kernels`].
//!
//! Inputs are tokenised, sorted by length and packed back to back: a batch is one matrix of
//! `tokens x hidden` with no padding, so every dense layer is a single large GEMM over all
//! sequences and attention runs per (sequence, head) on exactly that sequence's tokens.
//! Buffers live across calls; bias, activation and residual + norm are fused passes.

mod layer;
mod weights;

use ragmill_core::{EmbedError, ModelInfo, normalize};
use ragmill_kernels::attention::Span;
use ragmill_kernels::ops::Gelu;
use tokenizers::{Encoding, Tokenizer};

use crate::Precision;
use crate::encoder::{Encode, Pooling, by_length, load_tokenizer, model_info, tokenize};
use crate::model_dir::{ModelDir, read_json};
use layer::{Buffers, Dims, Layer, Norm};
use ragmill_kernels::qgemm::QLinear;
use ragmill_kernels::sgemm::Linear;
use weights::{BertConfig, Checkpoint};

/// Tokens per forward pass at most: bounds the activation memory (about 30 KB per token for
/// MiniLM) while keeping each GEMM large enough to run at full speed.
const MAX_BATCH_TOKENS: usize = 16_384;

/// The transformer layers in the precision they were loaded in.
enum Layers {
    F32(Vec<Layer<Linear>>),
    I8(Vec<Layer<QLinear>>),
}

/// Builds a dense layer of either precision from PyTorch-layout weights.
trait FromTorch: Sized {
    fn from_torch(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Self;
}

impl FromTorch for Linear {
    fn from_torch(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Self {
        Linear::from_torch(weight, bias, outputs, inputs)
    }
}

impl FromTorch for QLinear {
    fn from_torch(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Self {
        QLinear::from_torch(weight, bias, outputs, inputs)
    }
}

struct Embeddings {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    vocab: usize,
    norm: Norm,
}

/// A BERT-family sentence encoder on the native kernels.
pub struct NativeEncoder {
    tokenizer: Tokenizer,
    embeddings: Embeddings,
    layers: Layers,
    dims: Dims,
    act: Gelu,
    pooling: Pooling,
    max_position: usize,
    buffers: Buffers,
    info: ModelInfo,
}

impl NativeEncoder {
    /// Loads `dir` in `precision` (INT8 quantises every dense layer here, once).
    pub fn load(
        dir: &ModelDir,
        max_batch: usize,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        let unavailable = |e: crate::ModelError| EmbedError::Unavailable(e.to_string());
        let config: BertConfig = read_json(&dir.config()).map_err(unavailable)?;
        if config.position_embedding_type != "absolute" {
            return Err(EmbedError::Unavailable(format!(
                "position_embedding_type {:?} is not supported (only absolute)",
                config.position_embedding_type
            )));
        }
        let act = match config.hidden_act.as_str() {
            "gelu" => Gelu::Erf,
            "gelu_new" | "gelu_pytorch_tanh" => Gelu::Tanh,
            other => {
                return Err(EmbedError::Unavailable(format!(
                    "hidden_act {other:?} is not supported"
                )));
            }
        };
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || h % heads != 0 {
            return Err(EmbedError::Unavailable(format!(
                "{heads} heads do not divide hidden size {h}"
            )));
        }
        let tokenizer = load_tokenizer(dir)?;
        let bytes = std::fs::read(dir.weights())
            .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.weights().display())))?;
        let info = model_info(dir, &bytes, h, max_batch, precision);
        let ck = Checkpoint::parse(&bytes)?;
        let norm = |prefix: &str| -> Result<Norm, EmbedError> {
            Ok(Norm {
                gamma: ck.get(&format!("{prefix}.LayerNorm.weight"), &[h])?,
                beta: ck.get(&format!("{prefix}.LayerNorm.bias"), &[h])?,
                eps: config.layer_norm_eps,
            })
        };
        let vocab = ck.rows("embeddings.word_embeddings.weight", h)?;
        let embeddings = Embeddings {
            word: ck.get("embeddings.word_embeddings.weight", &[vocab, h])?,
            position: ck.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type: ck
                .get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?,
            vocab,
            norm: norm("embeddings")?,
        };
        let i = config.intermediate_size;
        let layers = match precision {
            Precision::Fp32 => Layers::F32(load_layers(&ck, &config, &norm)?),
            Precision::Int8 => Layers::I8(load_layers(&ck, &config, &norm)?),
        };
        Ok(Self {
            tokenizer,
            embeddings,
            layers,
            dims: Dims { hidden: h, heads, intermediate: i },
            act,
            pooling: Pooling::of(dir),
            max_position: config.max_position_embeddings,
            buffers: Buffers::default(),
            info,
        })
    }

    /// Runs the packed batch `seqs` and pools one vector per sequence.
    fn forward(&mut self, seqs: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.dims.hidden;
        let mut spans = Vec::with_capacity(seqs.len());
        let mut rows = 0;
        for e in seqs {
            spans.push(Span { start: rows, len: e.len() });
            rows += e.len();
        }
        self.buffers.fit(rows, self.dims);
        let emb = &self.embeddings;
        for (e, span) in seqs.iter().zip(&spans) {
            if e.len() > self.max_position {
                return Err(EmbedError::Tokenizer(format!(
                    "{} tokens exceed the model's {} positions",
                    e.len(),
                    self.max_position
                )));
            }
            for (pos, (&id, &ty)) in e.get_ids().iter().zip(e.get_type_ids()).enumerate() {
                let (id, ty) = (id as usize, ty as usize);
                if id >= emb.vocab || ty * h >= emb.token_type.len() {
                    return Err(EmbedError::Tokenizer(format!(
                        "token id {id} (type {ty}) is outside the model's vocabulary of {}",
                        emb.vocab
                    )));
                }
                let row = &mut self.buffers.x[(span.start + pos) * h..][..h];
                let (w, p, t) = (
                    &emb.word[id * h..][..h],
                    &emb.position[pos * h..][..h],
                    &emb.token_type[ty * h..][..h],
                );
                for (((x, w), p), t) in row.iter_mut().zip(w).zip(p).zip(t) {
                    *x = w + p + t;
                }
            }
        }
        emb.norm.apply(&mut self.buffers.x[..rows * h], None);
        let b = &mut self.buffers;
        match &self.layers {
            Layers::F32(layers) => {
                for layer in layers {
                    layer.forward(b, &spans, rows, self.dims, self.act);
                }
            }
            Layers::I8(layers) => {
                b.x_q.quantize(&b.x, rows, h);
                for layer in layers {
                    layer.forward(b, &spans, rows, self.dims, self.act);
                }
            }
        }
        Ok(spans
            .iter()
            .map(|s| {
                let tokens = &self.buffers.x[s.start * h..(s.start + s.len) * h];
                let mut v = self.pooling.pool(tokens, h);
                normalize(&mut v);
                v
            })
            .collect())
    }
}

/// Reads every transformer layer of the checkpoint into dense layers of type `D`.
fn load_layers<D: FromTorch>(
    ck: &Checkpoint<'_>,
    config: &BertConfig,
    norm: &dyn Fn(&str) -> Result<Norm, EmbedError>,
) -> Result<Vec<Layer<D>>, EmbedError> {
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        let dense =
            |name: &str, out: usize, inp: usize| -> Result<(Vec<f32>, Vec<f32>), EmbedError> {
                Ok((
                    ck.get(&format!("{p}.{name}.weight"), &[out, inp])?,
                    ck.get(&format!("{p}.{name}.bias"), &[out])?,
                ))
            };
        // Q, K and V stacked into one [3h][h] projection: one GEMM instead of three.
        let (mut w, mut b) = dense("attention.self.query", h, h)?;
        for part in ["attention.self.key", "attention.self.value"] {
            let (pw, pb) = dense(part, h, h)?;
            w.extend(pw);
            b.extend(pb);
        }
        let qkv = D::from_torch(&w, &b, 3 * h, h);
        let (w, b) = dense("attention.output.dense", h, h)?;
        let attn_out = D::from_torch(&w, &b, h, h);
        let (w, b) = dense("intermediate.dense", i, h)?;
        let up = D::from_torch(&w, &b, i, h);
        let (w, b) = dense("output.dense", h, i)?;
        let down = D::from_torch(&w, &b, h, i);
        layers.push(Layer {
            qkv,
            attn_out,
            attn_norm: norm(&format!("{p}.attention.output"))?,
            up,
            down,
            out_norm: norm(&format!("{p}.output"))?,
        });
    }
    Ok(layers)
}

impl Encode for NativeEncoder {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = tokenize(&self.tokenizer, texts)?;
        let max_batch = self.info.preferred_batch;
        by_length(&encodings, max_batch, MAX_BATCH_TOKENS, |batch| self.forward(batch))
    }
}
