//! The stand-in's reranking routes: `POST /rerank` in the Hugging Face TEI shape and
//! `POST /v1/rerank` in the Cohere/Jina shape, on every [`FakeServer`].
//!
//! TEI: `{"query": q, "texts": [..]}` → `[{"index": i, "score": s}, ..]`, best first.
//! Cohere/Jina: `{"query": q, "documents": [..], "top_n": n}` (documents as strings or
//! `{"text": ..}`) → `{"results": [{"index": i, "relevance_score": s}, ..]}`, best first, cut to
//! `top_n`. Each score is [`rerank_score`], so a test can predict the order; ties keep input
//! order. The server-wide switches (latency, canned answers, failing, API key, kill) apply too;
//! [`FakeServer::set_rerank_fault`] makes the answer itself wrong.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{FakeServer, State, Wire, misbehaviour, read_request};

/// Bytes of the [`RerankFault::Oversized`] answer: more than any client should read.
const OVERSIZED_BYTES: usize = 5 << 20;

/// A fake reranking server (any [`FakeServer`] reranks; this one is started for nothing else).
#[derive(Debug)]
pub struct FakeReranker;

impl FakeReranker {
    /// Starts one on a free loopback port, without authentication.
    pub async fn start() -> std::io::Result<FakeServer> {
        FakeServer::start(Wire::OpenAi, 1, None).await
    }

    /// Starts one that answers 401 unless sent `Authorization: Bearer <key>`.
    pub async fn with_key(key: &str) -> std::io::Result<FakeServer> {
        FakeServer::start(Wire::OpenAi, 1, Some(key.to_owned())).await
    }
}

/// A way for the reranking routes to answer wrongly, with a success status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RerankFault {
    /// Leaves out the last-ranked result (one score too few).
    MissingOne,
    /// Gives the best result the index one past the last text.
    OutOfRange,
    /// Gives the last-ranked result the best one's index (a duplicate; one text is missing).
    Duplicate,
    /// Gives the best result a score of 1e39, which no `f32` holds.
    NonFinite,
    /// Answers an HTML page.
    NotJson,
    /// Streams a valid answer behind 5 MiB of leading whitespace, without a `Content-Length`.
    Oversized,
}

impl FakeServer {
    /// Makes every reranking answer wrong in this way (`None`: right again).
    pub fn set_rerank_fault(&self, fault: Option<RerankFault>) {
        *self.state.rerank_fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Reranking requests received (answered or not).
    pub fn rerank_requests(&self) -> usize {
        self.state.rerank_requests.load(SeqCst)
    }

    /// The last reranking request's JSON body and `Authorization` header.
    pub fn last_rerank_request(&self) -> Option<(Value, Option<String>)> {
        self.state.last_rerank.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The stand-in's relevance of `text` to `query`: the fraction of the query's distinct words
/// (lower-cased runs of alphanumeric characters) that occur in the text, in [0, 1]; 0 for a
/// query without words.
pub fn rerank_score(query: &str, text: &str) -> f32 {
    let query = words(query);
    if query.is_empty() {
        return 0.0;
    }
    let text = words(text);
    query.intersection(&text).count() as f32 / query.len() as f32
}

fn words(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Tei,
    Cohere,
}

pub(super) async fn handle_tei(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&state, &headers, &body, Shape::Tei).await
}

pub(super) async fn handle_cohere(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&state, &headers, &body, Shape::Cohere).await
}

async fn serve(state: &State, headers: &HeaderMap, body: &[u8], shape: Shape) -> Response {
    state.rerank_requests.fetch_add(1, SeqCst);
    let (auth, request) = match read_request(state, headers, body) {
        Ok(r) => r,
        Err(answer) => return *answer,
    };
    *state.last_rerank.lock().unwrap_or_else(PoisonError::into_inner) =
        Some((request.clone(), auth.clone()));
    if let Some(answer) = misbehaviour(state, auth.as_deref()).await {
        return answer;
    }
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return rejected(shape, "`query` is required");
    };
    let field = match shape {
        Shape::Tei => "texts",
        Shape::Cohere => "documents",
    };
    let texts = request.get(field).and_then(Value::as_array).and_then(|items| {
        items
            .iter()
            .map(|v| v.as_str().or_else(|| v.get("text").and_then(Value::as_str)))
            .collect::<Option<Vec<&str>>>()
    });
    let Some(texts) = texts else {
        return rejected(shape, &format!("`{field}` must be a list of strings"));
    };
    if texts.is_empty() {
        return rejected(shape, &format!("`{field}` cannot be empty"));
    }

    let mut ranked: Vec<(usize, f64)> =
        texts.iter().enumerate().map(|(i, t)| (i, f64::from(rerank_score(query, t)))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if shape == Shape::Cohere
        && let Some(n) = request.get("top_n").and_then(Value::as_u64)
    {
        ranked.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let fault = *state.rerank_fault.lock().unwrap_or_else(PoisonError::into_inner);
    match fault {
        Some(RerankFault::MissingOne) => {
            ranked.pop();
        }
        Some(RerankFault::OutOfRange) => ranked[0].0 = texts.len(),
        Some(RerankFault::Duplicate) => {
            let best = ranked[0].0;
            if let Some(last) = ranked.last_mut().filter(|_| texts.len() > 1) {
                last.0 = best;
            } else {
                ranked.push((best, 0.0));
            }
        }
        Some(RerankFault::NonFinite) => ranked[0].1 = 1e39,
        Some(RerankFault::NotJson) => {
            let page = "<html><body>502 Bad Gateway</body></html>";
            return (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], page).into_response();
        }
        Some(RerankFault::Oversized) | None => {}
    }

    let answer = match shape {
        Shape::Tei => {
            json!(ranked.iter().map(|&(i, s)| json!({"index": i, "score": s})).collect::<Vec<_>>())
        }
        Shape::Cohere => json!({
            "id": "stand-in",
            "results": ranked
                .iter()
                .map(|&(i, s)| json!({"index": i, "relevance_score": s}))
                .collect::<Vec<_>>(),
            "meta": {"billed_units": {"search_units": 1}},
        }),
    };
    let json = [(header::CONTENT_TYPE, "application/json")];
    if fault == Some(RerankFault::Oversized) {
        let padding = std::iter::repeat_n(Bytes::from(vec![b' '; 64 << 10]), OVERSIZED_BYTES >> 16);
        let chunks = padding.chain(std::iter::once(Bytes::from(answer.to_string())));
        let stream = futures::stream::iter(chunks.map(Ok::<_, std::convert::Infallible>));
        return (StatusCode::OK, json, Body::from_stream(stream)).into_response();
    }
    (StatusCode::OK, json, answer.to_string()).into_response()
}

/// A request the real servers would refuse: TEI answers 422 with `{"error", "error_type"}`,
/// Cohere 400 with `{"message"}`.
fn rejected(shape: Shape, message: &str) -> Response {
    match shape {
        Shape::Tei => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"error": message, "error_type": "Validation"})),
        )
            .into_response(),
        Shape::Cohere => {
            (StatusCode::BAD_REQUEST, axum::Json(json!({"message": message}))).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_the_share_of_query_words_in_the_text() {
        assert_eq!(rerank_score("Rust borrow checker", "the BORROW checker, in rust!"), 1.0);
        assert_eq!(rerank_score("rust borrow rust", "borrowed rust"), 0.5);
        assert_eq!(rerank_score("gardening tips", "rust"), 0.0);
        assert_eq!(rerank_score("", "anything"), 0.0);
    }

    #[tokio::test]
    async fn cohere_route_cuts_to_top_n_and_rejects_a_missing_query() {
        let server = FakeReranker::start().await.expect("start");
        let http = reqwest::Client::new();
        let url = format!("{}/v1/rerank", server.url());
        let body = json!({"query": "red fox", "documents": ["a fox", {"text": "red fox"}, "x"],
            "top_n": 2});
        let answer: Value =
            http.post(&url).json(&body).send().await.expect("send").json().await.expect("json");
        let indices: Vec<u64> = answer["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter_map(|r| r["index"].as_u64())
            .collect();
        assert_eq!(indices, vec![1, 0]);

        let status = http.post(&url).json(&json!({"documents": ["a"]})).send().await.expect("send");
        assert_eq!(status.status(), reqwest::StatusCode::BAD_REQUEST);
        assert_eq!(server.rerank_requests(), 2);
    }
}
