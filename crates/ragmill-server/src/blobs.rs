//! Originals, kept content-addressed under `<data_dir>/blobs/` so a worker (in this process
//! or another) can always reprocess a document from its exact bytes.

use std::path::{Path, PathBuf};

use ragmill_core::ContentHash;
use tokio::io::AsyncWriteExt;

/// The blob directory.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// A file being received: written to a temporary name while hashed and counted.
pub struct Incoming {
    tmp: PathBuf,
    file: tokio::fs::File,
    hasher: blake3::Hasher,
    size: u64,
}

impl Blobs {
    /// Blobs under `data_dir/blobs`.
    pub fn new(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join("blobs");
        std::fs::create_dir_all(dir.join("tmp"))?;
        Ok(Self { dir })
    }

    /// Where the blob of `hash` lives.
    pub fn path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Starts receiving a file.
    pub async fn incoming(&self) -> std::io::Result<Incoming> {
        let mut buf = [0u8; 12];
        getrandom::fill(&mut buf).map_err(std::io::Error::other)?;
        let name: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = self.dir.join("tmp").join(name);
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(Incoming { tmp, file, hasher: blake3::Hasher::new(), size: 0 })
    }

    /// Moves a fully received (and [`Incoming::finish`]ed) file into place and returns its hash.
    /// Durable on return: the file's bytes were synced by `finish`, and the directory entries
    /// made here (the file's name, and its fan-out directory if new) are synced too, so the
    /// blob of an acknowledged upload survives a power cut, not only a crash of the process.
    pub async fn commit(&self, incoming: Incoming) -> std::io::Result<(ContentHash, u64)> {
        let hash = ContentHash::from_bytes(*incoming.hasher.finalize().as_bytes());
        let dest = self.path(&hash);
        let (dir, root) = (dest.parent().unwrap_or(&self.dir).to_owned(), self.dir.clone());
        let tmp = incoming.tmp.clone();
        tokio::task::spawn_blocking(move || {
            let new_dir = !dir.exists();
            std::fs::create_dir_all(&dir)?;
            if new_dir {
                sync_dir(&root)?;
            }
            std::fs::rename(&tmp, &dest)?;
            sync_dir(&dir)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok((hash, incoming.size))
    }
}

/// Makes the entries of directory `dir` (names created, renamed or removed in it) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Incoming {
    /// Appends a piece of the file.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        self.file.write_all(bytes).await
    }

    /// Flushes and syncs the file: after this its bytes are on disk, readable and durable.
    /// (`tokio::fs::File` buffers writes; reading the path before this may see nothing.)
    pub async fn finish(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.sync_all().await
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temporary file, for a look at the content before committing.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Drops the partial file.
    pub async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}
