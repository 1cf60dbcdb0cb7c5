use std::sync::Mutex;

use async_trait::async_trait;
use axum::body::Body;
use axum::response::Response;
use ragmill_core::EmbedError;
use serde_json::json;

use super::*;

/// Records every batch; a text's vector is `[len, first byte, 1]`.
struct Fake {
    info: ModelInfo,
    batches: Mutex<Vec<Vec<String>>>,
}

impl Fake {
    fn new() -> Arc<Self> {
        let info = ModelInfo {
            id: "fake-model@0123456789ab+int8".into(),
            space: "fake-model@0123456789ab".into(),
            dimensions: 3,
            max_tokens: 8,
            preferred_batch: 64,
        };
        Arc::new(Self { info, batches: Mutex::new(Vec::new()) })
    }

    fn batches(&self) -> Vec<Vec<String>> {
        self.batches.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Embedder for Fake {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        if let Ok(mut b) = self.batches.lock() {
            b.push(texts.clone());
        }
        Ok(texts
            .iter()
            .map(|t| vec![t.len() as f32, f32::from(t.bytes().next().unwrap_or(0)), 1.0])
            .collect())
    }
}

/// One token per word plus two specials.
fn words() -> CountTokens {
    Arc::new(|t: &str| t.split_whitespace().count() + 2)
}

fn service(fake: &Arc<Fake>, options: EmbedOptions) -> EmbeddingService {
    let config = BatchConfig {
        max_batch: 64,
        max_tokens: 64 * 8,
        concurrency: 1,
        linger: Duration::from_millis(20),
    };
    let batcher = Batcher::start(fake.clone(), config);
    EmbeddingService::new(batcher, fake.info.clone(), words(), options, EmbedApiMetrics::default())
}

fn post(body: &str, key: Option<&str>) -> Request {
    let mut req = axum::http::Request::builder().method("POST").uri("/");
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    req.body(Body::from(body.to_owned())).expect("request")
}

fn get(key: Option<&str>) -> Request {
    let mut req = axum::http::Request::builder().uri("/");
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    req.body(Body::empty()).expect("request")
}

async fn read(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn ollama(s: &EmbeddingService, body: Value) -> (u16, Value) {
    read(ollama::embed(State(s.clone()), post(&body.to_string(), None)).await).await
}

async fn openai(s: &EmbeddingService, body: Value) -> (u16, Value) {
    read(openai::embeddings(State(s.clone()), post(&body.to_string(), None)).await).await
}

use axum::extract::State;

#[test]
fn inputs_are_strings_or_lists_of_strings() {
    use InputStyle::{Ollama, OpenAi};
    let ok = |v: Value, style| inputs(Some(v), style).expect("accepted");
    assert_eq!(ok(json!("a"), OpenAi), ["a"]);
    assert_eq!(ok(json!(["a", "b"]), Ollama), ["a", "b"]);
    assert_eq!(ok(json!([]), OpenAi), Vec::<String>::new());
    assert_eq!(ok(json!(""), Ollama), Vec::<String>::new(), "Ollama: \"\" loads the model only");
    assert_eq!(ok(json!(""), OpenAi), [""]);
    assert_eq!(inputs(None, Ollama).expect("accepted"), Vec::<String>::new());
    assert_eq!(inputs(None, OpenAi).expect_err("required").param, Some("input"));
    for tokens in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
        let e = inputs(Some(tokens), OpenAi).expect_err("token arrays");
        assert!(e.message.contains("token arrays are not accepted"), "{}", e.message);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
    assert!(inputs(Some(json!({"text": "a"})), OpenAi).is_err());
    assert!(inputs(Some(json!(["a", null])), OpenAi).is_err());
}

#[test]
fn names_and_times() {
    assert_eq!(short_name("all-MiniLM-L6-v2@1a2b3c4d5e6f+int8"), "all-MiniLM-L6-v2");
    assert_eq!(short_name("ollama:all-minilm"), "ollama:all-minilm");
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(1_700_000_000)), "2023-11-14T22:13:20Z");
}

#[tokio::test]
async fn model_names_short_full_latest_or_none() {
    let s = service(&Fake::new(), EmbedOptions::default());
    for name in ["fake-model", "fake-model:latest", "fake-model@0123456789ab+int8", "", " "] {
        assert!(s.check_model(Some(name)).is_ok(), "{name}");
    }
    assert!(s.check_model(None).is_ok());
    let e = s.check_model(Some("nomic-embed-text")).expect_err("another model");
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    assert!(e.message.contains("fake-model"), "names the served model: {}", e.message);
}

#[tokio::test]
async fn concurrent_requests_share_batches_and_answers_keep_input_order() {
    let fake = Fake::new();
    let s = service(&fake, EmbedOptions::default());
    let requests = (0..8).map(|i| {
        let texts: Vec<String> =
            (0..4).map(|j| format!("{} t{i}", "x".repeat(i * 4 + j + 1))).collect();
        let s = s.clone();
        async move {
            let answer = if i % 2 == 0 {
                ollama(&s, json!({"model": "fake-model", "input": texts})).await
            } else {
                openai(&s, json!({"input": texts})).await
            };
            (texts, answer)
        }
    });
    for (i, (texts, (status, body))) in
        futures::future::join_all(requests).await.into_iter().enumerate()
    {
        assert_eq!(status, 200, "{body}");
        let vectors: Vec<Value> = if i % 2 == 0 {
            body["embeddings"].as_array().expect("embeddings").clone()
        } else {
            body["data"].as_array().expect("data").iter().map(|d| d["embedding"].clone()).collect()
        };
        let lengths: Vec<f64> = vectors.iter().map(|v| v[0].as_f64().expect("float")).collect();
        let want: Vec<f64> = texts.iter().map(|t| t.len() as f64).collect();
        assert_eq!(lengths, want, "request {i}: vectors in input order");
    }
    let batches = fake.batches();
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 32);
    assert!(batches.len() < 8, "32 texts from 8 clients in {} batches", batches.len());
}

#[tokio::test]
async fn ollama_answers_and_errors() {
    let fake = Fake::new();
    let s = service(&fake, EmbedOptions::default());
    let (status, body) =
        ollama(&s, json!({"model": "fake-model:latest", "input": "one two three"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "fake-model:latest");
    assert_eq!(body["embeddings"], json!([[13.0, 111.0, 1.0]]));
    assert_eq!(body["prompt_eval_count"], 5);
    assert_eq!(body["load_duration"], 0);
    assert!(body["total_duration"].as_u64().expect("ns") > 0);

    // An input past the window (8 tokens) is truncated, or refused with `truncate: false`;
    // each input counts at most the window.
    let long = "w ".repeat(20);
    let (status, body) = ollama(&s, json!({"input": [long, "a"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["prompt_eval_count"], 8 + 3);
    let (status, body) = ollama(&s, json!({"input": [long], "truncate": false})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().expect("error").contains("exceeds maximum context length"));

    // No inputs: an empty answer, nothing embedded.
    let before = fake.batches().len();
    for input in [json!([]), json!("")] {
        let (status, body) = ollama(&s, json!({"model": "fake-model", "input": input})).await;
        assert_eq!((status, &body["embeddings"]), (200, &json!([])));
    }
    assert_eq!(fake.batches().len(), before);

    for (body, status) in [
        (json!({"model": "llama3", "input": "a"}), 404),
        (json!({"input": [[1, 2, 3]]}), 400),
        (json!({"input": 7}), 400),
        (json!({"model": 7}), 400),
        (json!({"input": vec!["a"; 2049]}), 400),
    ] {
        let (got, answer) = ollama(&s, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let r = ollama::embed(State(s.clone()), post("{not json", None)).await;
    let (status, answer) = read(r).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().expect("error").contains("invalid JSON"));

    let (status, tags) = read(ollama::tags(State(s.clone()), get(None)).await).await;
    assert_eq!(status, 200);
    let model = &tags["models"][0];
    assert_eq!(model["name"], "fake-model");
    assert_eq!(model["details"]["quantization_level"], "Q8_0");
    assert_eq!(model["details"]["parameter_size"], "unknown");
    assert_eq!(model["modified_at"], "1970-01-01T00:00:00Z");
    assert_eq!(model["digest"].as_str().expect("digest").len(), 64);
}

#[tokio::test]
async fn openai_answers_and_errors() {
    let s = service(&Fake::new(), EmbedOptions::default());
    let (status, body) =
        openai(&s, json!({"model": "fake-model", "input": ["b", "a b"], "encoding_format": "base64", "dimensions": 3})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["usage"], json!({"prompt_tokens": 7, "total_tokens": 7}));
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(body["data"][1]["object"], "embedding");
    let b64 = body["data"][1]["embedding"].as_str().expect("base64");
    assert_eq!(b64, openai_encode(&[3.0, 97.0, 1.0]));

    let (status, body) = openai(&s, json!({"input": []})).await;
    assert_eq!((status, &body["data"]), (200, &json!([])));

    for (request, status, param, code) in [
        (
            json!({"model": "text-embedding-3-small", "input": "a"}),
            404,
            json!("model"),
            json!("model_not_found"),
        ),
        (json!({"input": [[1, 2]]}), 400, json!("input"), Value::Null),
        (json!({"input": [1, 2]}), 400, json!("input"), Value::Null),
        (json!({"input": "a", "dimensions": 256}), 400, json!("dimensions"), Value::Null),
        (
            json!({"input": "a", "encoding_format": "hex"}),
            400,
            json!("encoding_format"),
            Value::Null,
        ),
        (json!({"model": "fake-model"}), 400, json!("input"), Value::Null),
    ] {
        let (got, answer) = openai(&s, request.clone()).await;
        assert_eq!(got, status, "{request}: {answer}");
        let error = &answer["error"];
        assert_eq!(error["type"], "invalid_request_error", "{answer}");
        assert_eq!((&error["param"], &error["code"]), (&param, &code), "{answer}");
        assert!(error["message"].is_string(), "{answer}");
    }
    let (status, models) = read(openai::models(State(s.clone()), get(None)).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "ragmill"}]})
    );
}

fn openai_encode(v: &[f32]) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_static_key_is_required_before_the_body_is_read() {
    let options = EmbedOptions { auth: EmbedAuth::key("sekret"), ..EmbedOptions::default() };
    let s = service(&Fake::new(), options);
    for key in [None, Some("wrong"), Some("sekret2")] {
        let r = openai::embeddings(State(s.clone()), post("{not json", key)).await;
        let (status, body) = read(r).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        let (status, body) = read(ollama::tags(State(s.clone()), get(key)).await).await;
        assert_eq!(status, 401, "{key:?}");
        assert!(body["error"].is_string(), "{body}");
    }
    let r = openai::embeddings(State(s.clone()), post(r#"{"input":"a"}"#, Some("sekret"))).await;
    assert_eq!(read(r).await.0, 200);
    let r = ollama::embed(State(s.clone()), post(r#"{"input":"a"}"#, Some("sekret"))).await;
    assert_eq!(read(r).await.0, 200);
}

#[tokio::test]
async fn a_one_input_request_does_not_wait_for_company() {
    let fake = Fake::new();
    // The fake takes 30 ms a batch; texts of more than one input wait for company 400 ms.
    let config = BatchConfig { linger: Duration::from_millis(400), ..BatchConfig::default() };
    let batcher = Batcher::start(fake.clone(), config);
    let s = EmbeddingService::new(
        batcher,
        fake.info.clone(),
        words(),
        EmbedOptions::default(),
        EmbedApiMetrics::default(),
    );
    for body in [json!({"input": "a query"}), json!({"input": ["one query"]})] {
        let started = std::time::Instant::now();
        let (status, answer) = ollama(&s, body.clone()).await;
        assert_eq!(status, 200, "{answer}");
        let took = started.elapsed();
        assert!(took < Duration::from_millis(300), "{body} took {took:?}: it lingered");
    }
    let started = std::time::Instant::now();
    let (status, answer) = openai(&s, json!({"input": ["two", "inputs"]})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(400), "a batch of two lingers");
}
