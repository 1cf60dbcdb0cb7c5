//! Running extraction from async code: in this process, or in a child process.
//!
//! # Child protocol (version 1)
//!
//! The parent starts `program args…` with piped stdin, stdout and stderr, and writes to stdin:
//!
//! 1. one line of JSON, the [`Header`]: `{"protocol":1,"name":…,"size":N,"max_input_bytes":…,
//!    "max_decompressed_bytes":…,"timeout_ms":…,"memory_bytes":…}` then `\n`;
//! 2. exactly `N` raw bytes: the document.
//!
//! The child reads the header, sets its rlimits (address space = `memory_bytes`, CPU seconds =
//! timeout + 1, no core files, no file writes), reads the document, extracts it, and writes to
//! stdout one line `ragmill-extract-result-v1 ` followed by the JSON [`Reply`]
//! (`{"ok":ExtractedDocument}` or `{"err":ExtractError}`), then exits 0. Anything else a library
//! prints to stdout is ignored: the parent takes the last line with that prefix. A child that
//! breaks the protocol exits 2 with a message on stderr.
//!
//! The parent enforces the wall-clock timeout (kill, then [`ExtractError::Timeout`]), maps death
//! by a signal to [`ExtractError::Crashed`] (SIGXCPU, the CPU limit, to `Timeout`), and treats a
//! missing or unreadable result as `Crashed`, quoting the tail of the child's stderr.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ragmill_core::{DocumentKind, ExtractedDocument};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::detect::{self, Sniffed};
use crate::error::one_line;
use crate::{ExtractError, Limits};

mod child;

pub use child::child_main;

const PROTOCOL: u32 = 1;
const RESULT_PREFIX: &str = "ragmill-extract-result-v1 ";
const STDERR_TAIL: usize = 16 * 1024;

/// The first line the parent writes to the child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) protocol: u32,
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) max_input_bytes: u64,
    pub(crate) max_decompressed_bytes: u64,
    pub(crate) timeout_ms: u64,
    pub(crate) memory_bytes: u64,
    /// Absent from a parent built before it: the default then applies.
    #[serde(default = "default_max_text_bytes")]
    pub(crate) max_text_bytes: u64,
}

fn default_max_text_bytes() -> u64 {
    Limits::default().max_text_bytes
}

impl Header {
    fn new(name: &str, size: u64, limits: &Limits) -> Self {
        Header {
            protocol: PROTOCOL,
            name: name.to_owned(),
            size,
            max_input_bytes: limits.max_input_bytes,
            max_decompressed_bytes: limits.max_decompressed_bytes,
            timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
            memory_bytes: limits.memory_bytes,
            max_text_bytes: limits.max_text_bytes,
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_input_bytes: self.max_input_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            timeout: Duration::from_millis(self.timeout_ms),
            memory_bytes: self.memory_bytes,
            max_text_bytes: self.max_text_bytes,
            ..Limits::default()
        }
    }
}

/// What the child writes back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reply {
    Ok(ExtractedDocument),
    Err(ExtractError),
}

impl From<Result<ExtractedDocument, ExtractError>> for Reply {
    fn from(r: Result<ExtractedDocument, ExtractError>) -> Self {
        match r {
            Ok(d) => Reply::Ok(d),
            Err(e) => Reply::Err(e),
        }
    }
}

#[derive(Debug)]
enum Mode {
    InProcess,
    Isolated { program: PathBuf, args: Vec<OsString> },
}

/// Extracts documents from async code under [`Limits`].
#[derive(Debug, Clone)]
pub struct Extractor {
    mode: Arc<Mode>,
    limits: Limits,
}

impl Extractor {
    /// Everything in this process, on tokio's blocking pool, panics caught.
    ///
    /// On timeout the caller gets [`ExtractError::Timeout`] at once, but the parsing thread
    /// cannot be stopped and runs on; a stack overflow or memory exhaustion takes the process
    /// down. Fine for trusted input and tests; use [`Extractor::isolated`] for uploads.
    pub fn in_process(limits: Limits) -> Self {
        Extractor { mode: Arc::new(Mode::InProcess), limits }
    }

    /// Small text, Markdown and HTML (up to [`Limits::in_process_bytes`]) in this process;
    /// larger ones, and every PDF and DOCX, in a child process started as
    /// `program args…`, which must call [`child_main`]. The `ragmill` binary does this as
    /// `ragmill __extract`: `Extractor::isolated(current_exe()?, vec!["__extract".into()], limits)`.
    pub fn isolated(program: PathBuf, args: Vec<OsString>, limits: Limits) -> Self {
        Extractor { mode: Arc::new(Mode::Isolated { program, args }), limits }
    }

    /// The limits this extractor applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Extracts one document.
    pub async fn extract(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<ExtractedDocument, ExtractError> {
        crate::check_size(&bytes, &self.limits)?;
        let limits = self.limits;
        let name_owned = name.to_owned();
        match &*self.mode {
            Mode::InProcess => {
                blocking(limits.timeout, move || crate::extract(&bytes, &name_owned, &limits)).await
            }
            Mode::Isolated { program, args } => {
                // Large inputs of any kind go to the child unread: detecting a big text means
                // decoding it, and that is part of the work under the sandbox's limits.
                if bytes.len() as u64 > limits.in_process_bytes {
                    tracing::debug!(name, size = bytes.len(), "extracting in a child process");
                    return run_child(program, args, name, &bytes, &limits).await;
                }
                // Small text, Markdown and HTML stay here; PDF and DOCX go to the child.
                let step = blocking(limits.timeout, move || {
                    Ok(match detect::sniff(&bytes, &name_owned)? {
                        Sniffed::Text(kind, text) => {
                            Step::Done(crate::extract_text(kind, text, &limits))
                        }
                        Sniffed::Pdf => Step::Child(bytes, DocumentKind::Pdf),
                        Sniffed::Docx => Step::Child(bytes, DocumentKind::Docx),
                    })
                })
                .await?;
                match step {
                    Step::Done(result) => result,
                    Step::Child(bytes, kind) => {
                        tracing::debug!(
                            name,
                            kind = kind.as_str(),
                            size = bytes.len(),
                            "extracting in a child process"
                        );
                        run_child(program, args, name, &bytes, &limits).await
                    }
                }
            }
        }
    }
}

enum Step {
    Done(Result<ExtractedDocument, ExtractError>),
    Child(Vec<u8>, DocumentKind),
}

/// Runs `f` on the blocking pool under a wall-clock limit.
async fn blocking<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> Result<T, ExtractError> + Send + 'static,
) -> Result<T, ExtractError> {
    let task = tokio::task::spawn_blocking(move || crate::guarded("document", f));
    match tokio::time::timeout(timeout, task).await {
        Err(_) => Err(ExtractError::timeout(timeout)),
        Ok(Err(join)) => Err(ExtractError::crashed(format!("the extraction task failed: {join}"))),
        Ok(Ok(result)) => result,
    }
}

/// The parent side of the child protocol.
pub(crate) async fn run_child(
    program: &PathBuf,
    args: &[OsString],
    name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<ExtractedDocument, ExtractError> {
    let header = Header::new(name, bytes.len() as u64, limits);
    let mut header_line =
        serde_json::to_vec(&header).map_err(|e| ExtractError::Io { detail: e.to_string() })?;
    header_line.push(b'\n');

    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ExtractError::Io {
            detail: format!("cannot start the extractor process {}: {e}", program.display()),
        })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    // JSON escapes a control character in six bytes; page spans and headings are small.
    let stdout_cap = limits.max_text_bytes.saturating_mul(6).saturating_add(16 << 20);

    let conversation = async {
        let write = async {
            if let Some(mut stdin) = stdin {
                // A child that dies early closes the pipe: its exit status tells the story.
                if stdin.write_all(&header_line).await.is_ok()
                    && stdin.write_all(bytes).await.is_ok()
                {
                    let _ = stdin.shutdown().await;
                }
            }
        };
        let (_, out, err) =
            tokio::join!(write, read_head(stdout, stdout_cap), read_tail(stderr, STDERR_TAIL));
        let status = child.wait().await;
        (out, err, status)
    };
    let outcome = tokio::time::timeout(limits.timeout, conversation).await;
    let Ok((out, err, status)) = outcome else {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(ExtractError::timeout(limits.timeout));
    };
    let status = status.map_err(|e| ExtractError::Io {
        detail: format!("waiting for the extractor process: {e}"),
    })?;
    let (out, truncated) = out;
    let stderr_hint = stderr_summary(&err);

    if let Some(signal) = exit_signal(&status) {
        if signal == SIGXCPU {
            return Err(ExtractError::timeout(limits.timeout));
        }
        let mut detail = format!("killed by signal {signal} ({})", signal_name(signal));
        if !stderr_hint.is_empty() {
            detail.push_str(": ");
            detail.push_str(&stderr_hint);
        }
        return Err(ExtractError::crashed(detail));
    }
    if truncated {
        return Err(ExtractError::crashed(format!(
            "the extractor's output exceeded {} bytes",
            stdout_cap
        )));
    }
    match parse_reply(&out) {
        Some(Ok(Reply::Ok(doc))) => Ok(doc),
        Some(Ok(Reply::Err(e))) => Err(e),
        Some(Err(e)) => {
            Err(ExtractError::crashed(format!("the extractor's result is unreadable ({e})")))
        }
        None => {
            let code = status.code().map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            let mut detail = format!("the extractor exited with status {code} without a result");
            if !stderr_hint.is_empty() {
                detail.push_str(": ");
                detail.push_str(&stderr_hint);
            } else if !out.is_empty() {
                detail.push_str(&format!(
                    " (it printed {:?})",
                    String::from_utf8_lossy(&out[..out.len().min(80)])
                ));
            }
            Err(ExtractError::crashed(detail))
        }
    }
}

/// The last result line on stdout, parsed.
fn parse_reply(out: &[u8]) -> Option<Result<Reply, serde_json::Error>> {
    out.split(|&b| b == b'\n')
        .rev()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX.as_bytes()))
        .map(serde_json::from_slice::<Reply>)
}

/// Reads everything, keeping the first `cap` bytes; true if more came.
async fn read_head(reader: Option<impl AsyncRead + Unpin>, cap: u64) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let Some(mut reader) = reader else { return (kept, truncated) };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room =
                    usize::try_from(cap.saturating_sub(kept.len() as u64)).unwrap_or(usize::MAX);
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

/// Reads everything, keeping the last `cap` bytes.
async fn read_tail(reader: Option<impl AsyncRead + Unpin>, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut reader) = reader else { return kept };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > cap {
                    kept.drain(..kept.len() - cap);
                }
            }
        }
    }
    kept
}

/// The last two non-empty lines of stderr, on one line.
fn stderr_summary(err: &[u8]) -> String {
    let text = String::from_utf8_lossy(err);
    let mut lines: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty()).rev().take(2).collect();
    lines.reverse();
    one_line(&lines.join("; "), 300)
}

const SIGXCPU: i32 = 24;

#[cfg(unix)]
fn exit_signal(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn exit_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        4 => "SIGILL",
        6 => "SIGABRT, e.g. a stack overflow or failed allocation",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL, e.g. out of memory",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_summary_keeps_last_lines() {
        let err =
            b"\nthread 'extract' has overflowed its stack\nfatal runtime error: stack overflow\n\n";
        assert_eq!(
            stderr_summary(err),
            "thread 'extract' has overflowed its stack; fatal runtime error: stack overflow"
        );
    }
}
