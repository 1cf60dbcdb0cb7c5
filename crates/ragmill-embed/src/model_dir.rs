//! Finding and checking a model directory.

use std::path::{Path, PathBuf};

/// A model directory is missing files or holds unreadable ones.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A required file is absent.
    #[error(
        "model directory {dir} has no {file} (fetch the model with `ragmill models fetch` or scripts/fetch-model.sh)"
    )]
    Missing {
        /// The directory.
        dir: PathBuf,
        /// The missing file.
        file: &'static str,
    },
    /// A file could not be read or parsed.
    #[error("cannot read {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The files of a sentence-transformers model, checked to exist.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The directory.
    pub path: PathBuf,
    /// The longest input in tokens, from `sentence_bert_config.json` (else the position table).
    pub max_seq_length: usize,
}

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(serde::Deserialize)]
struct PositionLimit {
    max_position_embeddings: usize,
}

impl ModelDir {
    /// The files every model directory needs.
    pub const REQUIRED: [&'static str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

    /// Checks that `path` holds a usable model and reads its sequence limit.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        for file in Self::REQUIRED {
            if !path.join(file).is_file() {
                return Err(ModelError::Missing { dir: path.to_owned(), file });
            }
        }
        let config: PositionLimit = read_json(&path.join("config.json"))?;
        let st = path.join("sentence_bert_config.json");
        let max_seq_length = if st.is_file() {
            read_json::<SentenceBertConfig>(&st)?.max_seq_length
        } else {
            config.max_position_embeddings
        }
        .min(config.max_position_embeddings);
        Ok(Self { path: path.to_owned(), max_seq_length })
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// `tokenizer.json`.
    pub fn tokenizer(&self) -> PathBuf {
        self.path.join("tokenizer.json")
    }

    /// `model.safetensors`.
    pub fn weights(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let invalid = |reason: String| ModelError::Invalid { path: path.to_owned(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))
}
