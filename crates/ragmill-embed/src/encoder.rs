//! What every local encoder shares: the [`Encode`] interface, tokenizer set-up, the model's
//! identity and sentence-transformers pooling.

use ragmill_core::{EmbedError, ModelInfo};
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::Precision;
use crate::model_dir::{ModelDir, read_json};

/// A synchronous sentence encoder; [`crate::LocalEmbedder`] runs one on its own thread.
pub trait Encode: Send {
    /// The model's identity and shape.
    fn info(&self) -> &ModelInfo;
    /// One L2-normalised vector per text, in input order.
    fn encode(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The model's tokenizer with its own truncation and padding (all-MiniLM-L6-v2 ships fixed
/// padding at 128) replaced by truncation at the model's `max_seq_length` and no padding, as
/// sentence-transformers does.
pub(crate) fn load_tokenizer(dir: &ModelDir) -> Result<Tokenizer, EmbedError> {
    let mut tokenizer = Tokenizer::from_file(dir.tokenizer())
        .map_err(|e| EmbedError::Unavailable(format!("{}: {e}", dir.tokenizer().display())))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: dir.max_seq_length,
            ..Default::default()
        }))
        .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
    Ok(tokenizer)
}

/// Tokenises `texts` with `tokenizer` (special tokens added).
pub(crate) fn tokenize(
    tokenizer: &Tokenizer,
    texts: &[String],
) -> Result<Vec<Encoding>, EmbedError> {
    tokenizer
        .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
        .map_err(|e| EmbedError::Tokenizer(e.to_string()))
}

/// Runs `forward` over passes of inputs of similar length (sorted by token count, at most
/// `max_batch` inputs and, beyond the first, `max_tokens` tokens per pass) and returns the
/// vectors in input order.
pub(crate) fn by_length(
    encodings: &[Encoding],
    max_batch: usize,
    max_tokens: usize,
    mut forward: impl FnMut(&[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError>,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| encodings[i].len());
    let mut out = vec![Vec::new(); encodings.len()];
    let mut start = 0;
    while start < order.len() {
        let (mut end, mut tokens) = (start, 0);
        while end < order.len()
            && end - start < max_batch.max(1)
            && (end == start || tokens + encodings[order[end]].len() <= max_tokens)
        {
            tokens += encodings[order[end]].len();
            end += 1;
        }
        let group = &order[start..end];
        let batch: Vec<&Encoding> = group.iter().map(|&i| &encodings[i]).collect();
        for (&i, v) in group.iter().zip(forward(&batch)?) {
            out[i] = v;
        }
        start = end;
    }
    Ok(out)
}

/// The model's identity: `<directory name>@<12 hex digits of the weights' hash>`, with
/// `+int8` for the quantised encoder, so the embedding cache never mixes vectors of two
/// models, or of two precisions of one model, under one name. Both precisions share the
/// space (the id without the suffix): a collection built in FP32 can be searched in INT8.
pub(crate) fn model_info(
    dir: &ModelDir,
    weights: &[u8],
    dimensions: usize,
    max_batch: usize,
    precision: Precision,
) -> ModelInfo {
    let name = dir
        .path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    let fingerprint = &ragmill_core::ContentHash::of(weights).to_hex()[..12];
    let suffix = match precision {
        Precision::Fp32 => "",
        Precision::Int8 => "+int8",
    };
    let space = format!("{name}@{fingerprint}");
    ModelInfo {
        id: format!("{space}{suffix}"),
        space,
        dimensions,
        max_tokens: dir.max_seq_length,
        preferred_batch: max_batch.max(1),
    }
}

/// How token vectors become one sentence vector (`1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pooling {
    /// The mean over all tokens (MiniLM, E5, GTE).
    Mean,
    /// The first token's vector (BGE).
    Cls,
}

#[derive(serde::Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

impl Pooling {
    /// The directory's pooling; mean when it does not say.
    pub(crate) fn of(dir: &ModelDir) -> Self {
        let path = dir.path.join("1_Pooling/config.json");
        match read_json::<PoolingConfig>(&path) {
            Ok(c) if c.pooling_mode_cls_token && !c.pooling_mode_mean_tokens => Pooling::Cls,
            _ => Pooling::Mean,
        }
    }

    /// Pools `tokens` (rows of `width`).
    pub(crate) fn pool(self, tokens: &[f32], width: usize) -> Vec<f32> {
        match self {
            Pooling::Cls => tokens[..width].to_vec(),
            Pooling::Mean => {
                let mut sum = vec![0.0; width];
                let n = tokens.len() / width;
                for row in tokens.chunks_exact(width) {
                    for (s, v) in sum.iter_mut().zip(row) {
                        *s += v;
                    }
                }
                sum.iter_mut().for_each(|s| *s /= n.max(1) as f32);
                sum
            }
        }
    }
}
