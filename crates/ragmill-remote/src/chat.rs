//! A streaming chat client: Ollama's `POST {url}/api/chat` or an OpenAI-compatible
//! `POST {url}/v1/chat/completions`, both with `"stream": true`.
//!
//! Both take `{"model": M, "messages": [{"role", "content"}], "stream": true}`. Ollama answers
//! NDJSON, one object per line (`{"message": {"role": "assistant", "content": "tok"},
//! "done": false}`, ending with `"done": true`; an error mid-stream is a `{"error": "..."}`
//! line). OpenAI answers Server-Sent Events: `data: {"choices": [{"delta": {"content": "tok"}}]}`
//! lines, comments and blank lines between them, and `data: [DONE]` at the end.
//!
//! [`ChatClient::offered`] says which models a chat may pick (the configured one, and those the
//! server lists or the configuration names); [`ChatClient::for_model`] answers with another.
//!
//! [`ChatClient::stream`] waits for the answer's head (an error status is an error there), then
//! hands back the content deltas in order as a [`ChatStream`]. Nothing read from the peer is
//! trusted: a line that is not the protocol's ends the stream with
//! [`RemoteError::InvalidResponse`], never a panic; a server silent for longer than the idle
//! timeout ends it with [`RemoteError::Timeout`].

mod models;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{BackendKind, check_url};
use crate::error::{RemoteError, one_line};
use crate::http::{self, status_error, transport_error};

/// Which chat API a server speaks: `ollama` (`POST /api/chat`) or `openai`
/// (`POST /v1/chat/completions`). The same names as the embedding backends.
pub type ChatBackend = BackendKind;

/// The content deltas of one streamed answer, in order. Ends after the last delta, or with
/// one error.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<String, RemoteError>> + Send>>;

/// How long a stream may go without a byte (and how long the answer's head may take) before it
/// fails, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest line accepted from a server (an answer's line holds one token, or an error).
const MAX_LINE: usize = 1 << 20;

/// Most of an error answer's body read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

/// Streams answers from one chat model on one server.
#[derive(Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    backend: ChatBackend,
    /// The base URL as configured, without a trailing `/` (named in every error).
    url: String,
    /// The full URL chats are posted to.
    chat_url: String,
    model: String,
    api_key: Option<String>,
    idle_timeout: Duration,
    /// The models a chat may pick ([`ChatClient::offered`]).
    offer: models::Offer,
}

impl std::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatClient")
            .field("backend", &self.backend)
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
}

impl ChatClient {
    /// A client for `model` on the `backend` server at `url` (Ollama: `http://host:11434`;
    /// OpenAI-compatible: with or without the trailing `/v1`). An API key, if given, is sent as
    /// a Bearer token. Does no I/O; fails on a URL that is not http(s) or an empty model.
    pub fn new(
        backend: ChatBackend,
        url: &str,
        model: &str,
        api_key: Option<String>,
    ) -> Result<Self, RemoteError> {
        let url = url.trim().trim_end_matches('/').to_owned();
        check_url(&url).map_err(RemoteError::Config)?;
        if model.trim().is_empty() {
            return Err(RemoteError::Config("the chat model name is empty".into()));
        }
        let chat_url = match backend {
            BackendKind::Ollama => format!("{url}/api/chat"),
            BackendKind::OpenAi => crate::openai::api_url(&url, "chat/completions"),
        };
        Ok(Self {
            http: http::client()?,
            backend,
            url,
            chat_url,
            model: model.trim().to_owned(),
            api_key: api_key.filter(|k| !k.is_empty()),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            offer: models::Offer::default(),
        })
    }

    /// Sets how long the answer's head, and then each next piece of the stream, may take
    /// (default [`DEFAULT_IDLE_TIMEOUT`]).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The API it speaks.
    pub fn backend(&self) -> ChatBackend {
        self.backend
    }

    /// The model's name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The server's base URL, as configured (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `messages` and waits for the answer's head. An unreachable server, an error status
    /// (with the server's message) or no head within the idle timeout is an error here; after
    /// that, the answer's content deltas arrive through the stream.
    pub async fn stream(&self, messages: &[ChatMessage]) -> Result<ChatStream, RemoteError> {
        let (url, idle) = (self.url.as_str(), self.idle_timeout);
        let timed_out = || RemoteError::Timeout { url: url.to_owned(), timeout: idle };
        let body = Request { model: &self.model, messages, stream: true };
        let mut request = self.http.post(&self.chat_url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = tokio::time::timeout(idle, request.send())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| transport_error(url, idle, &e))?;
        let status = response.status();
        if !status.is_success() {
            let mut body = Vec::new();
            while body.len() < MAX_ERROR_BODY {
                match tokio::time::timeout(idle, response.chunk()).await {
                    Ok(Ok(Some(bytes))) => body.extend_from_slice(&bytes),
                    _ => break,
                }
            }
            return Err(status_error(url, status, &body));
        }
        let reader = Reader {
            response,
            decoder: Decoder::new(self.backend, url),
            pending: VecDeque::new(),
            idle,
        };
        Ok(Box::pin(futures::stream::unfold(reader, |mut r| async move {
            r.next().await.map(|item| (item, r))
        })))
    }
}

/// Reads the body of a streamed answer through a [`Decoder`].
struct Reader {
    response: reqwest::Response,
    decoder: Decoder,
    pending: VecDeque<Result<String, RemoteError>>,
    idle: Duration,
}

impl Reader {
    async fn next(&mut self) -> Option<Result<String, RemoteError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.decoder.finished {
                return None;
            }
            let url = &self.decoder.url;
            let items = match tokio::time::timeout(self.idle, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.decoder.feed(&bytes),
                Ok(Ok(None)) => self.decoder.finish(),
                Ok(Err(e)) => self.decoder.fail(transport_error(url, self.idle, &e)),
                Err(_) => {
                    self.decoder.fail(RemoteError::Timeout { url: url.clone(), timeout: self.idle })
                }
            };
            self.pending.extend(items);
        }
    }
}

/// Turns the bytes of a streamed answer, in pieces cut anywhere, into content deltas. Pure, so
/// the wire formats are tested without a server.
struct Decoder {
    backend: ChatBackend,
    url: String,
    /// Bytes of the line not yet complete.
    buf: Vec<u8>,
    /// The end was seen (done, `[DONE]`, end of body, or an error): nothing more is decoded.
    finished: bool,
}

impl Decoder {
    fn new(backend: ChatBackend, url: &str) -> Self {
        Self { backend, url: url.to_owned(), buf: Vec::new(), finished: false }
    }

    /// The deltas (and at most one error, last) of the lines that `bytes` completes.
    fn feed(&mut self, bytes: &[u8]) -> Vec<Result<String, RemoteError>> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = take_line(&self.buf[start..start + end]);
            start += end + 1;
            self.line(&line, &mut out);
            if self.finished {
                break;
            }
        }
        self.buf.drain(..start);
        if !self.finished && self.buf.len() > MAX_LINE {
            let error = self.invalid(format!("a line longer than {MAX_LINE} bytes"));
            out.extend(self.fail(error));
        }
        out
    }

    /// The end of the body: decodes a last line without its line break.
    fn finish(&mut self) -> Vec<Result<String, RemoteError>> {
        let mut out = Vec::new();
        if !self.finished {
            let line = take_line(&std::mem::take(&mut self.buf));
            self.line(&line, &mut out);
            self.finished = true;
        }
        out
    }

    /// Ends the stream with `error`.
    fn fail(&mut self, error: RemoteError) -> Vec<Result<String, RemoteError>> {
        self.finished = true;
        vec![Err(error)]
    }

    fn line(&mut self, line: &str, out: &mut Vec<Result<String, RemoteError>>) {
        let parsed = match self.backend {
            BackendKind::Ollama => self.ollama(line),
            BackendKind::OpenAi => self.openai(line),
        };
        match parsed {
            Ok((delta, done)) => {
                out.extend(delta.filter(|d| !d.is_empty()).map(Ok));
                self.finished |= done;
            }
            Err(e) => out.extend(self.fail(e)),
        }
    }

    /// One NDJSON line: `(content, done)`.
    fn ollama(&self, line: &str) -> Result<(Option<String>, bool), RemoteError> {
        if line.trim().is_empty() {
            return Ok((None, false));
        }
        let v = self.json(line)?;
        self.check_error(&v)?;
        let content = v.pointer("/message/content").and_then(Value::as_str).map(str::to_owned);
        Ok((content, v.get("done").and_then(Value::as_bool).unwrap_or(false)))
    }

    /// One Server-Sent Events line: `(content, done)`.
    fn openai(&self, line: &str) -> Result<(Option<String>, bool), RemoteError> {
        // Blank lines end events, `:` starts a comment, and `event:`, `id:`, `retry:` carry
        // nothing a chat answer needs.
        let Some(data) = line.strip_prefix("data:") else { return Ok((None, false)) };
        let data = data.strip_prefix(' ').unwrap_or(data);
        if data.trim() == "[DONE]" {
            return Ok((None, true));
        }
        if data.trim().is_empty() {
            return Ok((None, false));
        }
        let v = self.json(data)?;
        self.check_error(&v)?;
        let content = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .and_then(|c| c.pointer("/delta/content"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok((content, false))
    }

    fn json(&self, text: &str) -> Result<Value, RemoteError> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() => Ok(v),
            _ => Err(self.invalid(format!("not a JSON object: {}", one_line(text, 120)))),
        }
    }

    /// An `error` member (a string, or an object with a `message`) is the server's error.
    fn check_error(&self, v: &Value) -> Result<(), RemoteError> {
        let Some(error) = v.get("error").filter(|e| !e.is_null()) else { return Ok(()) };
        let message = error
            .as_str()
            .or_else(|| error.get("message").and_then(Value::as_str))
            .map_or_else(|| error.to_string(), str::to_owned);
        Err(RemoteError::Stream { url: self.url.clone(), message: one_line(&message, 300) })
    }

    fn invalid(&self, message: String) -> RemoteError {
        RemoteError::InvalidResponse { url: self.url.clone(), message }
    }
}

/// A line's text without its `\r`, invalid UTF-8 replaced.
fn take_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` cut into pieces of `size` bytes, then ends it.
    fn decode(backend: ChatBackend, body: &str, size: usize) -> Vec<Result<String, RemoteError>> {
        let mut d = Decoder::new(backend, "http://x");
        let mut out = Vec::new();
        for piece in body.as_bytes().chunks(size.max(1)) {
            out.extend(d.feed(piece));
        }
        out.extend(d.finish());
        out
    }

    fn text(items: &[Result<String, RemoteError>]) -> String {
        items.iter().map(|i| i.as_ref().map_or("<error>", String::as_str)).collect()
    }

    const OLLAMA: &str = concat!(
        r#"{"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}"#,
        "\n",
        r#"{"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"lo, é"},"done":false}"#,
        "\r\n",
        r#"{"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":false}"#,
        "\n",
        r#"{"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":"!"},"done":false}"#,
        "\n",
        r#"{"model":"llama3.2","created_at":"2024-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":1,"eval_count":3}"#,
        "\n",
        r#"{"message":{"role":"assistant","content":"after the end"},"done":false}"#,
        "\n",
    );

    const OPENAI: &str = concat!(
        ": keep-alive comment\n\n",
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
        "\r\n\r\n",
        "event: message\n",
        r#"data:{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"content":"lo, é"},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "\n\n",
        r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt","choices":[],"usage":{"total_tokens":9}}"#,
        "\n\n",
        "data: [DONE]\n\n",
        r#"data: {"choices":[{"index":0,"delta":{"content":"after the end"}}]}"#,
        "\n\n",
    );

    #[test]
    fn both_formats_decode_in_order_however_the_body_is_cut() {
        for (backend, body) in [(BackendKind::Ollama, OLLAMA), (BackendKind::OpenAi, OPENAI)] {
            for size in [1, 2, 3, 7, 64, body.len()] {
                let out = decode(backend, body, size);
                assert!(out.iter().all(Result::is_ok), "{backend} {size}: {out:?}");
                let deltas: Vec<&str> = out.iter().flatten().map(String::as_str).collect();
                assert_eq!(deltas, ["Hel", "lo, é", "!"], "{backend}, pieces of {size}");
            }
        }
    }

    #[test]
    fn a_last_line_without_line_break_counts_and_the_body_end_ends_the_stream() {
        let body = r#"{"message":{"role":"assistant","content":"tail"},"done":false}"#;
        assert_eq!(text(&decode(BackendKind::Ollama, body, 5)), "tail");
        let body = r#"data: {"choices":[{"index":0,"delta":{"content":"tail"}}]}"#;
        assert_eq!(text(&decode(BackendKind::OpenAi, body, 5)), "tail");
        assert!(decode(BackendKind::OpenAi, "", 1).is_empty());
    }

    #[test]
    fn error_lines_end_the_stream_with_the_servers_message() {
        let body = concat!(
            r#"{"message":{"role":"assistant","content":"a"},"done":false}"#,
            "\n",
            r#"{"error":"model runner crashed"}"#,
            "\n",
            r#"{"message":{"role":"assistant","content":"b"},"done":false}"#,
            "\n"
        );
        let out = decode(BackendKind::Ollama, body, 4);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].as_deref().ok(), Some("a"));
        let e = out[1].clone().expect_err("error");
        assert!(
            matches!(&e, RemoteError::Stream { message, .. } if message == "model runner crashed")
        );
        assert_eq!(e.to_string(), "http://x: error in the stream: model runner crashed");

        let body = concat!(
            r#"data: {"error":{"message":"Rate limit reached","type":"requests"}}"#,
            "\n\n"
        );
        let out = decode(BackendKind::OpenAi, body, 9);
        assert!(
            matches!(&out[..], [Err(RemoteError::Stream { message, .. })] if message == "Rate limit reached"),
            "{out:?}"
        );
    }

    #[test]
    fn garbage_is_a_clear_error_not_a_panic() {
        for (backend, body) in [
            (BackendKind::Ollama, "<html>Bad Gateway</html>\n"),
            (BackendKind::Ollama, "[1, 2]\n"),
            (BackendKind::Ollama, "{\"message\": \n"),
            (BackendKind::OpenAi, "data: {not json}\n\n"),
            (BackendKind::OpenAi, "data: 42\n\n"),
        ] {
            let out = decode(backend, body, 3);
            assert!(
                matches!(&out[..], [Err(RemoteError::InvalidResponse { message, .. })] if message.starts_with("not a JSON object")),
                "{backend} {body:?}: {out:?}"
            );
        }
        // Odd but harmless shapes are skipped, not fatal.
        let odd = concat!(
            r#"{"message":{"content":7},"done":"yes"}"#,
            "\n",
            r#"{"message":{"role":"assistant","content":"ok"},"done":true}"#,
            "\n"
        );
        assert_eq!(text(&decode(BackendKind::Ollama, odd, 2)), "ok");
        let odd = "data: {\"choices\":\"none\"}\n\nretry: 10\nnonsense\n\ndata: [DONE]\n";
        assert!(decode(BackendKind::OpenAi, odd, 2).is_empty());
        // Bytes cut inside a UTF-8 character are put back together; invalid ones replaced.
        let bytes = "{\"message\":{\"content\":\"\u{e9}\"},\"done\":true}\n".as_bytes();
        let mut d = Decoder::new(BackendKind::Ollama, "u");
        let out: Vec<_> = bytes.iter().flat_map(|b| d.feed(&[*b])).collect();
        assert_eq!(text(&out), "\u{e9}");
        let mut d = Decoder::new(BackendKind::Ollama, "u");
        assert!(matches!(&d.feed(b"\xff\xfe\n")[..], [Err(RemoteError::InvalidResponse { .. })]));
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut d = Decoder::new(BackendKind::OpenAi, "u");
        let chunk = vec![b'x'; 1 << 16];
        let mut out = Vec::new();
        for _ in 0..=(MAX_LINE >> 16) {
            out.extend(d.feed(&chunk));
        }
        assert!(matches!(&out[..], [Err(RemoteError::InvalidResponse { .. })]), "{out:?}");
        assert!(d.feed(b"\n").is_empty() && d.finish().is_empty());
    }

    #[test]
    fn urls_models_and_keys() {
        let c = ChatClient::new(BackendKind::Ollama, "http://h:11434/", "llama3.2", None)
            .expect("valid");
        assert_eq!((c.url(), c.chat_url.as_str()), ("http://h:11434", "http://h:11434/api/chat"));
        for base in ["http://h:8000", "http://h:8000/v1", "http://h:8000/v1/"] {
            let c = ChatClient::new(BackendKind::OpenAi, base, "gpt", Some("sk-secret".into()))
                .expect("valid");
            assert_eq!(c.chat_url, "http://h:8000/v1/chat/completions", "{base}");
            assert!(!format!("{c:?}").contains("sk-secret"));
        }
        assert!(matches!(
            ChatClient::new(BackendKind::Ollama, "h:11434", "m", None),
            Err(RemoteError::Config(m)) if m.contains("not an http")
        ));
        assert!(matches!(
            ChatClient::new(BackendKind::Ollama, "http://h", " ", None),
            Err(RemoteError::Config(_))
        ));
    }
}
