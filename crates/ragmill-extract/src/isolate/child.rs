//! The child side of the protocol (see the parent module's docs): read the header and the
//! document from stdin, limit this process, extract, write the reply to stdout.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

use super::{Header, PROTOCOL, RESULT_PREFIX, Reply};
use crate::{ExtractError, Limits};

const MAX_HEADER: u64 = 64 * 1024;
/// Stack for the child's parsing thread: deep but legitimate documents recurse.
const CHILD_STACK: usize = 64 << 20;

/// Entry point of the child process (see the module docs for the protocol).
///
/// Call it before starting any async runtime or threads: the address-space limit counts every
/// thread's stack reservation. The `ragmill` binary runs it as the hidden `ragmill __extract`.
pub fn child_main() -> ExitCode {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let code = serve(&mut stdin.lock(), &mut stdout.lock(), true);
    ExitCode::from(code)
}

/// The child side of the protocol, on any streams. `apply_limits` sets this process's rlimits.
pub(crate) fn serve(input: &mut impl BufRead, output: &mut impl Write, apply_limits: bool) -> u8 {
    let header = match read_header(input) {
        Ok(h) => h,
        Err(message) => {
            eprintln!("ragmill extract child: {message}");
            return 2;
        }
    };
    let limits = header.limits();
    if apply_limits {
        set_rlimits(&limits);
    }
    if header.size > limits.max_input_bytes {
        eprintln!(
            "ragmill extract child: document of {} bytes is over the input limit",
            header.size
        );
        return 2;
    }
    let mut bytes = Vec::new();
    let size = usize::try_from(header.size).unwrap_or(usize::MAX);
    if let Err(e) = input.take(header.size).read_to_end(&mut bytes) {
        eprintln!("ragmill extract child: cannot read the document: {e}");
        return 2;
    }
    if bytes.len() != size {
        eprintln!(
            "ragmill extract child: expected {} document bytes, got {}",
            header.size,
            bytes.len()
        );
        return 2;
    }

    let bytes = Arc::new(bytes);
    let (thread_bytes, name) = (Arc::clone(&bytes), header.name.clone());
    let work = move || crate::extract(&thread_bytes, &name, &limits);
    // A big stack for the parsers; fall back to this thread if it cannot be had.
    let result = match std::thread::Builder::new()
        .name("extract".into())
        .stack_size(CHILD_STACK)
        .spawn(work)
    {
        Ok(handle) => handle
            .join()
            .unwrap_or_else(|_| Err(ExtractError::crashed("the extraction thread panicked"))),
        Err(e) => {
            eprintln!("ragmill extract child: no thread ({e}); extracting on the main thread");
            crate::extract(&bytes, &header.name, &limits)
        }
    };
    let reply = Reply::from(result);
    let json = match serde_json::to_string(&reply) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("ragmill extract child: cannot encode the result: {e}");
            return 2;
        }
    };
    let written = output
        .write_all(b"\n")
        .and_then(|()| output.write_all(RESULT_PREFIX.as_bytes()))
        .and_then(|()| output.write_all(json.as_bytes()))
        .and_then(|()| output.write_all(b"\n"))
        .and_then(|()| output.flush());
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ragmill extract child: cannot write the result: {e}");
            2
        }
    }
}

fn read_header(input: &mut impl BufRead) -> Result<Header, String> {
    let mut line = Vec::new();
    input
        .take(MAX_HEADER)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    if line.last() != Some(&b'\n') {
        return Err("no header line on stdin (is this the extractor protocol?)".into());
    }
    let header: Header = serde_json::from_slice(&line).map_err(|e| format!("bad header: {e}"))?;
    if header.protocol != PROTOCOL {
        return Err(format!(
            "protocol {} not understood (this build speaks {PROTOCOL})",
            header.protocol
        ));
    }
    Ok(header)
}

/// Limits this process: address space, CPU seconds, no core dumps, no file writes.
#[cfg(unix)]
fn set_rlimits(limits: &Limits) {
    use rlimit::Resource;
    let cpu = limits.timeout.as_secs().saturating_add(2);
    let wanted = [
        (Resource::AS, limits.memory_bytes, limits.memory_bytes),
        (Resource::CPU, cpu, cpu.saturating_add(1)),
        (Resource::CORE, 0, 0),
        (Resource::FSIZE, 0, 0),
    ];
    for (resource, soft, hard) in wanted {
        let (soft, hard) = match rlimit::getrlimit(resource) {
            Ok((_, current_hard)) => (soft.min(current_hard), hard.min(current_hard)),
            Err(_) => (soft, hard),
        };
        if let Err(e) = rlimit::setrlimit(resource, soft, hard) {
            eprintln!("ragmill extract child: cannot set {resource:?} to {soft}: {e}");
        }
    }
}

#[cfg(not(unix))]
fn set_rlimits(_limits: &Limits) {}

#[cfg(test)]
mod tests {
    use ragmill_core::DocumentKind;

    use super::super::parse_reply;
    use super::*;

    fn request(name: &str, body: &[u8]) -> Vec<u8> {
        let mut input =
            serde_json::to_vec(&Header::new(name, body.len() as u64, &Limits::default()))
                .unwrap_or_default();
        input.push(b'\n');
        input.extend_from_slice(body);
        input
    }

    #[test]
    fn serve_round_trip() {
        let input = request("notes.md", b"# Hi\n\ntext");
        let mut out = b"noise from a library\n".to_vec();
        assert_eq!(serve(&mut input.as_slice(), &mut out, false), 0);
        let reply = parse_reply(&out).and_then(Result::ok);
        let Some(Reply::Ok(doc)) = reply else {
            panic!("no document in {:?}", String::from_utf8_lossy(&out))
        };
        assert_eq!(
            (doc.kind, doc.text.as_str(), doc.headings.len()),
            (DocumentKind::Markdown, "# Hi\n\ntext", 1)
        );

        let input = request("x.pdf", b"not a pdf");
        let mut out = Vec::new();
        assert_eq!(serve(&mut input.as_slice(), &mut out, false), 0);
        let reply = parse_reply(&out).and_then(Result::ok);
        assert_eq!(
            reply,
            Some(Reply::Err(ExtractError::TypeMismatch {
                named: "PDF".into(),
                detected: "plain text".into()
            }))
        );
    }

    #[test]
    fn serve_rejects_protocol_errors() {
        let mut out = Vec::new();
        assert_eq!(serve(&mut &b"no newline"[..], &mut out, false), 2);
        assert_eq!(serve(&mut &b"{\"protocol\":7}\n"[..], &mut out, false), 2);
        let mut short = request("a.txt", b"hello");
        short.truncate(short.len() - 2);
        assert_eq!(serve(&mut short.as_slice(), &mut out, false), 2);
        assert!(out.is_empty());
    }
}
