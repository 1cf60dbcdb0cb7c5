//! The single-endpoint clients against fake servers on loopback: the documented response
//! formats (`tests/data/`), error bodies, base64, `index` order, URL forms, and validation.

mod fake;

use std::time::Duration;

use fake::{FakeOpenAi, all_expected, ollama, openai, texts};
use ragmill_core::{EmbedError, Embedder};
use ragmill_remote::{OllamaClient, OpenAiClient, RemoteError};
use serde_json::{Value, json};

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The float vectors of a documented answer, normalised as the client must.
fn normalised(vectors: &[Vec<f64>]) -> Vec<Vec<f32>> {
    vectors
        .iter()
        .map(|v| {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter().map(|x| (x / norm) as f32).collect()
        })
        .collect()
}

fn assert_close(got: &[Vec<f32>], want: &[Vec<f32>]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len());
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() < 1e-6, "{g:?} != {w:?}");
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn ollama_parses_the_documented_response() {
    let server = ollama(10).await;
    server.set_canned(200, data("ollama_embed.json"));
    let client = OllamaClient::new(&server.url(), "all-minilm", 10).expect("client");
    let input = strings(&["Why is the sky blue?", "Why is the grass green?"]);

    let got = client.embed(input.clone()).await.expect("embed");

    let doc: Value = serde_json::from_str(&data("ollama_embed.json")).expect("json");
    let raw: Vec<Vec<f64>> = serde_json::from_value(doc["embeddings"].clone()).expect("floats");
    assert_close(&got, &normalised(&raw));
    let (body, auth) = server.last_request().expect("a request");
    assert_eq!(body, json!({"model": "all-minilm", "input": input}));
    assert_eq!(auth, None);
    assert_eq!(client.info().id, "ollama:all-minilm");
    assert_eq!(client.info().dimensions, 10);

    // With a key (for a proxy, or a ragmill embed-server --api-key), it goes as a Bearer token.
    let keyed = client.with_api_key(Some("k-1".into()));
    keyed.embed(input.clone()).await.expect("embed with a key");
    assert_eq!(server.last_request().expect("a request").1.as_deref(), Some("Bearer k-1"));
}

#[tokio::test]
async fn ollama_error_body_names_endpoint_status_and_message() {
    let server = ollama(10).await;
    server.set_canned(404, data("ollama_error.json"));
    let client = OllamaClient::new(&server.url(), "all-minilm", 10).expect("client");

    let err = client.request(&strings(&["x"]), None).await.expect_err("404");
    assert_eq!(
        err,
        RemoteError::Status {
            url: server.url(),
            status: 404,
            message: "model \"all-minilm\" not found, try pulling it first".into()
        }
    );
    let EmbedError::Backend(message) = client.embed(strings(&["x"])).await.expect_err("404") else {
        panic!("not a backend error");
    };
    assert!(message.contains(&server.url()) && message.contains("HTTP 404"), "{message}");
    assert!(message.contains("try pulling it first") && !message.contains('\n'), "{message}");
}

#[tokio::test]
async fn ollama_wrong_count_or_dimension_is_a_shape_error() {
    let server = ollama(10).await;
    server.set_canned(200, data("ollama_embed.json")); // two vectors of 10
    let client = OllamaClient::new(&server.url(), "all-minilm", 10).expect("client");
    let err = client.embed(strings(&["a", "b", "c"])).await.expect_err("2 for 3");
    assert!(matches!(err, EmbedError::Shape { got: 2, dim: 10, want: 3, want_dim: 10 }), "{err}");

    let client = OllamaClient::new(&server.url(), "all-minilm", 384).expect("client");
    let err = client.embed(strings(&["a", "b"])).await.expect_err("10 for 384");
    assert!(matches!(err, EmbedError::Shape { got: 2, dim: 10, want: 2, want_dim: 384 }), "{err}");
}

#[tokio::test]
async fn garbage_answers_are_rejected() {
    let server = ollama(4).await;
    let client = OllamaClient::new(&server.url(), "m", 2).expect("client");
    // 1e39 does not fit an f32: it would become infinity.
    server.set_canned(200, r#"{"embeddings": [[1e39, 0.0]]}"#);
    let err = client.request(&strings(&["x"]), None).await.expect_err("inf");
    assert!(err.to_string().contains("non-finite"), "{err}");
    server.set_canned(200, r#"{"embeddings": [[0.0, 0.0]]}"#);
    let err = client.request(&strings(&["x"]), None).await.expect_err("zero");
    assert!(err.to_string().contains("all zeros"), "{err}");
    server.set_canned(200, "<html>oops</html>");
    let err = client.request(&strings(&["x"]), None).await.expect_err("html");
    assert!(matches!(err, RemoteError::InvalidResponse { .. }), "{err}");
    server.set_canned(502, "Bad Gateway");
    let err = client.request(&strings(&["x"]), None).await.expect_err("502");
    assert_eq!(err.to_string(), format!("{}: HTTP 502: Bad Gateway", server.url()));
}

#[tokio::test]
async fn openai_parses_the_documented_response_and_sends_key_and_format() {
    let server = openai(6).await;
    server.set_canned(200, data("openai_embeddings.json"));
    let client =
        OpenAiClient::new(&server.url(), "text-embedding-ada-002", Some("sk-test".into()), 6)
            .expect("client");

    let got = client.embed(strings(&["The food was delicious"])).await.expect("embed");

    let doc: Value = serde_json::from_str(&data("openai_embeddings.json")).expect("json");
    let raw: Vec<f64> =
        serde_json::from_value(doc["data"][0]["embedding"].clone()).expect("floats");
    assert_close(&got, &normalised(&[raw]));
    let (body, auth) = server.last_request().expect("a request");
    assert_eq!(
        body,
        json!({"model": "text-embedding-ada-002", "input": ["The food was delicious"], "encoding_format": "float"})
    );
    assert_eq!(auth.as_deref(), Some("Bearer sk-test"));
    assert_eq!(client.info().space, "openai:text-embedding-ada-002");
}

#[tokio::test]
async fn openai_puts_vectors_in_index_order() {
    let server = openai(3).await;
    server.set_canned(200, data("openai_embeddings_shuffled.json"));
    let client =
        OpenAiClient::new(&server.url(), "text-embedding-3-small", None, 3).expect("client");
    let got = client.embed(strings(&["a", "b", "c"])).await.expect("embed");
    assert_eq!(got, vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]]);
}

#[tokio::test]
async fn openai_accepts_base64_embeddings() {
    let server = openai(4).await;
    server.set_canned(200, data("openai_embeddings_base64.json"));
    let client =
        OpenAiClient::new(&server.url(), "text-embedding-3-small", None, 4).expect("client");
    let got = client.embed(strings(&["a", "b"])).await.expect("embed");
    assert_close(&got, &normalised(&[vec![0.25, -0.5, 1.0, 2.0], vec![3.0, 0.0, -4.0, 0.0]]));
}

#[tokio::test]
async fn openai_error_body_names_endpoint_status_and_message() {
    let server = openai(4).await;
    server.set_canned(401, data("openai_error.json"));
    let client = OpenAiClient::new(&server.url(), "m", Some("sk-test".into()), 4).expect("client");
    let EmbedError::Backend(message) = client.embed(strings(&["x"])).await.expect_err("401") else {
        panic!("not a backend error");
    };
    assert!(
        message.starts_with(&format!("{}: HTTP 401: Incorrect API key provided", server.url())),
        "{message}"
    );
}

#[tokio::test]
async fn openai_url_with_or_without_v1() {
    let server = FakeOpenAi::with_key(8, "k").await.expect("start a fake server");
    let input = texts(3);
    for url in [
        server.url(),
        format!("{}/", server.url()),
        format!("{}/v1", server.url()),
        format!("{}/v1/", server.url()),
    ] {
        let client = OpenAiClient::new(&url, "m", Some("k".into()), 8).expect("client");
        let got = client.embed(input.clone()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(all_expected(&input, &got, 8), "{url}");
    }
    let client = OpenAiClient::new(&server.url(), "m", Some("wrong".into()), 8).expect("client");
    let err = client.embed(input).await.expect_err("bad key");
    assert!(err.to_string().contains("HTTP 401"), "{err}");
}

#[tokio::test]
async fn live_fakes_round_trip_and_normalise() {
    let input = texts(7);
    let ollama = ollama(24).await;
    let client = OllamaClient::connect(&ollama.url(), "m").await.expect("connect");
    assert_eq!(client.info().dimensions, 24);
    let got = client.embed(input.clone()).await.expect("ollama");
    assert!(all_expected(&input, &got, 24));
    assert!(got.iter().all(|v| (v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5));

    let openai = openai(24).await;
    openai.set_shuffle(true);
    openai.set_base64(true);
    let client = OpenAiClient::connect(&openai.url(), "m", None).await.expect("connect");
    assert_eq!(client.info().dimensions, 24);
    let got = client.embed(input.clone()).await.expect("openai");
    assert!(all_expected(&input, &got, 24), "shuffled base64 answers decoded in order");
}

#[tokio::test]
async fn refused_connection_and_timeout_name_the_endpoint() {
    let server = ollama(4).await;
    server.set_latency(Duration::from_secs(30));
    let client = OllamaClient::new(&server.url(), "m", 4)
        .expect("client")
        .with_timeout(Duration::from_millis(200));
    let err = client.request(&strings(&["x"]), None).await.expect_err("slow");
    assert_eq!(
        err,
        RemoteError::Timeout { url: server.url(), timeout: Duration::from_millis(200) }
    );

    server.kill().await;
    let err = client.request(&strings(&["x"]), None).await.expect_err("refused");
    assert!(matches!(&err, RemoteError::Transport { url, .. } if *url == server.url()), "{err}");
    let message = EmbedError::from(err).to_string();
    assert!(message.contains(&server.url()) && !message.contains('\n'), "{message}");
}

#[tokio::test]
async fn plain_http_only_without_the_tls_feature() {
    let result = OllamaClient::new("https://example.invalid", "m", 4);
    if cfg!(feature = "rustls") {
        assert!(result.is_ok());
    } else {
        let err = result.expect_err("https needs the feature");
        assert!(err.to_string().contains("rustls"), "{err}");
    }
}
