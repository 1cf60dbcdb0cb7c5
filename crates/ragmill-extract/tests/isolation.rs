//! The async [`Extractor`]: the parent side of the child protocol against real processes
//! (fake children made with /bin/sh), and real isolated extraction with this test binary as the
//! child (its ignored `child_entry` test calls `child_main`).

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::*;
use ragmill_core::DocumentKind;
use ragmill_extract::{ExtractError, Extractor, Limits, child_main};

/// Not a test: the child process of the isolation tests. It only acts when started with
/// exactly the arguments `self_child` passes.
#[test]
#[ignore = "the child process of the isolation tests, started by them"]
fn child_entry() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--exact") && args.iter().any(|a| a == "child_entry") {
        let code = child_main();
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 2 });
    }
}

fn self_child(limits: Limits) -> Extractor {
    let exe = std::env::current_exe().expect("test binary path");
    let args: Vec<OsString> =
        ["child_entry", "--exact", "--ignored", "--nocapture", "--test-threads=1", "-q"]
            .map(OsString::from)
            .into();
    Extractor::isolated(exe, args, limits)
}

fn sh(script: &str, limits: Limits) -> Extractor {
    Extractor::isolated(PathBuf::from("/bin/sh"), vec!["-c".into(), script.into()], limits)
}

fn tiny_pdf() -> Vec<u8> {
    one_page_pdf(&format!("/Parent 2 0 R /MediaBox [0 0 612 792] {RESOURCES}"), "Tiny")
}

#[tokio::test]
async fn timeout_kills_the_child() {
    let limits = Limits { timeout: Duration::from_secs(1), ..Limits::default() };
    let started = Instant::now();
    let e = sh("exec sleep 30", limits)
        .extract("slow.pdf", tiny_pdf())
        .await
        .expect_err("must time out");
    assert_eq!(e, ExtractError::Timeout { secs: 1 });
    assert_eq!(e.code(), "extract_timeout");
    assert_eq!(e.to_string(), "extraction took longer than 1 s and was stopped");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn signal_death_is_a_crash() {
    let e = sh("kill -SEGV $$", Limits::default())
        .extract("x.pdf", tiny_pdf())
        .await
        .expect_err("crash");
    assert_eq!(e.code(), "extract_crashed");
    assert_eq!(e.to_string(), "the extractor crashed: killed by signal 11 (SIGSEGV)");
    let e = sh(
        "echo 'memory allocation of 4294967296 bytes failed' >&2; kill -ABRT $$",
        Limits::default(),
    )
    .extract("x.docx", data("report.docx"))
    .await
    .expect_err("crash");
    assert_eq!(
        e.to_string(),
        "the extractor crashed: killed by signal 6 (SIGABRT, e.g. a stack overflow or failed allocation): \
         memory allocation of 4294967296 bytes failed"
    );
    // Dying of the CPU rlimit is a timeout.
    let limits = Limits { timeout: Duration::from_secs(5), ..Limits::default() };
    let e = sh("kill -XCPU $$", limits).extract("x.pdf", tiny_pdf()).await.expect_err("cpu");
    assert_eq!(e, ExtractError::Timeout { secs: 5 });
}

#[tokio::test]
async fn garbage_or_missing_output_is_a_crash() {
    let e = sh("echo garbage", Limits::default())
        .extract("x.pdf", tiny_pdf())
        .await
        .expect_err("garbage");
    assert_eq!(
        e.to_string(),
        r#"the extractor crashed: the extractor exited with status 0 without a result (it printed "garbage\n")"#
    );
    let e = sh("cat >/dev/null; echo 'it broke' >&2; exit 3", Limits::default())
        .extract("x.pdf", tiny_pdf())
        .await
        .expect_err("exit 3");
    assert_eq!(
        e.to_string(),
        "the extractor crashed: the extractor exited with status 3 without a result: it broke"
    );
    let e = sh("cat >/dev/null; echo 'ragmill-extract-result-v1 {\"ok\": 42'", Limits::default())
        .extract("x.pdf", tiny_pdf())
        .await
        .expect_err("bad json");
    assert_eq!(e.code(), "extract_crashed");
    assert!(
        e.to_string().starts_with("the extractor crashed: the extractor's result is unreadable ("),
        "{e}"
    );
}

#[tokio::test]
async fn fake_child_replies_are_understood() {
    // Noise before the result line is ignored; the error crosses the boundary intact.
    let script = r#"cat >/dev/null; echo 'some library chatter'; echo 'ragmill-extract-result-v1 {"err":{"kind":"encrypted","detail":"the PDF is password-protected"}}'"#;
    let e = sh(script, Limits::default()).extract("x.pdf", tiny_pdf()).await.expect_err("reply");
    assert_eq!(e, ExtractError::Encrypted { detail: "the PDF is password-protected".into() });
    // A document reply, with the header line checked by the fake child.
    let script = r#"IFS= read -r header; case "$header" in *'"protocol":1,"name":"x.pdf"'*) ;; *) exit 9;; esac; cat >/dev/null; echo 'ragmill-extract-result-v1 {"ok":{"kind":"pdf","text":"hi","markdown":false,"headings":[],"pages":[{"number":1,"start":0,"end":2}]}}'"#;
    let doc = sh(script, Limits::default()).extract("x.pdf", tiny_pdf()).await.expect("reply");
    assert_eq!((doc.kind, doc.text.as_str(), doc.pages.len()), (DocumentKind::Pdf, "hi", 1));
}

#[tokio::test]
async fn missing_program_is_io() {
    let x = Extractor::isolated(PathBuf::from("/nonexistent/ragmill"), vec![], Limits::default());
    let e = x.extract("x.pdf", tiny_pdf()).await.expect_err("io");
    assert_eq!(e.code(), "extract_io");
    assert!(
        e.to_string().starts_with(
            "extractor I/O failed: cannot start the extractor process /nonexistent/ragmill: "
        ),
        "{e}"
    );
}

#[tokio::test]
async fn text_formats_never_reach_the_child() {
    // The "child" would fail everything; text, Markdown and HTML are extracted here.
    let x = sh("exit 1", Limits::default());
    let doc = x.extract("notes.md", data("notes.md")).await.expect("markdown");
    assert_eq!(doc.headings.len(), 3);
    let doc = x.extract("page", data("page.html")).await.expect("html");
    assert_eq!(doc.kind, DocumentKind::Html);
    // Checks that need no parsing happen before any process starts.
    assert_eq!(x.extract("e.pdf", Vec::new()).await, Err(ExtractError::Empty));
    assert_eq!(
        x.extract("lie.pdf", b"plain".to_vec()).await.map_err(|e| e.code()),
        Err("type_mismatch")
    );
}

#[tokio::test]
async fn real_child_extracts_pdf_and_docx() {
    let x = self_child(Limits::default());
    let doc = x.extract("two-pages.pdf", data("two-pages.pdf")).await.expect("pdf in child");
    let here =
        ragmill_extract::extract(&data("two-pages.pdf"), "two-pages.pdf", &Limits::default())
            .expect("pdf");
    assert_eq!(doc, here);
    assert_eq!(doc.pages.iter().map(|p| p.number).collect::<Vec<_>>(), vec![1, 2]);
    let doc = x.extract("report.docx", data("report.docx")).await.expect("docx in child");
    assert_eq!(
        doc.headings.iter().map(|h| h.title.as_str()).collect::<Vec<_>>(),
        vec!["Quarterly Report", "Introduction", "Details"]
    );
    let e =
        x.extract("secret.pdf", data("encrypted-user-password.pdf")).await.expect_err("encrypted");
    assert_eq!(e.code(), "encrypted");
    let e = x.extract("bomb.docx", docx_bomb(300 << 20)).await.expect_err("bomb");
    assert_eq!(e, ExtractError::DecompressionBomb { limit: 256 << 20 });
    let e = x
        .extract("nobox.pdf", one_page_pdf(&format!("/Parent 2 0 R {RESOURCES}"), "x"))
        .await
        .expect_err("panic");
    assert_eq!(
        e.to_string(),
        "the file is damaged or truncated: cannot read the PDF's pages (the PDF parser panicked: MediaBox)"
    );
}

#[tokio::test]
async fn real_child_stack_overflow_fails_one_document() {
    // A self-drawing form XObject: in this process that would abort the test binary.
    let x = self_child(Limits::default());
    let e = x.extract("loop.pdf", xobject_loop_pdf()).await.expect_err("overflow");
    assert_eq!(e.code(), "extract_crashed");
    let message = e.to_string();
    assert!(message.starts_with("the extractor crashed: killed by signal 6 (SIGABRT"), "{message}");
    assert!(message.contains("has overflowed its stack"), "{message}");
    // The next document is fine.
    assert_eq!(x.extract("tiny.pdf", tiny_pdf()).await.map(|d| d.text), Ok("Tiny".into()));
}

#[tokio::test]
async fn real_child_endless_loop_is_killed() {
    // pdf-extract follows a page's /Parent to itself forever; in this process the thread
    // would spin for good.
    let limits = Limits { timeout: Duration::from_secs(2), ..Limits::default() };
    let started = Instant::now();
    let e = self_child(limits).extract("spin.pdf", self_parent_pdf()).await.expect_err("spin");
    assert_eq!(e, ExtractError::Timeout { secs: 2 });
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn real_child_memory_limit() {
    // The budget allows 1 GiB of inflated XML, the address space only 256 MiB: the child's
    // allocation fails (read_to_end reports it rather than aborting).
    let limits =
        Limits { max_decompressed_bytes: 1 << 30, memory_bytes: 256 << 20, ..Limits::default() };
    let e = self_child(limits).extract("big.docx", docx_bomb(600 << 20)).await.expect_err("oom");
    assert_eq!(e.to_string(), "the extractor crashed: out of memory inflating word/document.xml");
}

#[tokio::test]
async fn in_process_extractor() {
    let x = Extractor::in_process(Limits::default());
    let doc = x.extract("two-pages.pdf", data("two-pages.pdf")).await.expect("pdf");
    assert_eq!(doc.pages.len(), 2);
    let e = x
        .extract("nobox.pdf", one_page_pdf(&format!("/Parent 2 0 R {RESOURCES}"), "x"))
        .await
        .expect_err("panic");
    assert_eq!(e.code(), "corrupt_file");
    // A big Markdown file cannot be parsed in a millisecond.
    let big = "# Heading\n\nSome *text* here.\n\n".repeat(400_000);
    let x =
        Extractor::in_process(Limits { timeout: Duration::from_millis(1), ..Limits::default() });
    assert_eq!(x.extract("big.md", big.into_bytes()).await, Err(ExtractError::Timeout { secs: 1 }));
}

#[test]
fn extractor_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Extractor>();
}

#[tokio::test]
async fn text_over_the_in_process_size_goes_to_the_child() {
    // The fake child answers every request with the same error: whoever answers is visible.
    let script = r#"cat >/dev/null; echo 'ragmill-extract-result-v1 {"err":{"kind":"empty"}}'"#;
    let limits = Limits { in_process_bytes: 64, ..Limits::default() };
    let small = sh(script, limits).extract("a.md", b"# Small\n\ntext".to_vec()).await;
    assert_eq!(small.map(|d| d.kind).ok(), Some(DocumentKind::Markdown));
    let big = "# Big\n\nA line of text.\n".repeat(10);
    for name in ["b.md", "b.txt", "b.html"] {
        let e = sh(script, limits).extract(name, big.clone().into_bytes()).await;
        assert_eq!(e.expect_err("child answered"), ExtractError::Empty, "{name}");
    }
    // The real child extracts it, under the text limit it is told.
    let doc = self_child(limits).extract("b.md", big.clone().into_bytes()).await.expect("md");
    assert_eq!((doc.kind, doc.text.len()), (DocumentKind::Markdown, big.len()));
    let tight = Limits { max_text_bytes: 100, ..limits };
    let e = self_child(tight).extract("b.md", big.into_bytes()).await.expect_err("text cap");
    assert_eq!(e, ExtractError::TextTooLarge { size: 230, limit: 100 });
    assert_eq!(e.code(), "text_too_large");
}
