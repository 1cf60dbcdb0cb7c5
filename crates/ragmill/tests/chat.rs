//! `POST /v1/chat` end to end: a real `ragmill serve` process talking to stand-in chat servers
//! (`ragmill_remote::fake`, in this test's runtime) that speak Ollama's and OpenAI's real
//! streaming wire formats and answer a canned reply built from the request
//! (`fake::chat_reply`), so the test knows every token to expect and can read back the prompt
//! the server sent.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ragmill_remote::fake::{FakeOllama, FakeOpenAi, FakeServer, chat_reply};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const QUESTION: &str = "How often should I feed my sourdough starter?";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ragmill(data: &Path) -> Command {
    let model = std::env::var_os("RAGMILL_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("models/all-MiniLM-L6-v2"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragmill"));
    for var in
        ["RAGMILL_CHAT_BACKEND", "RAGMILL_CHAT_ENDPOINT", "RAGMILL_CHAT_MODEL", "RAGMILL_CONFIG"]
    {
        cmd.env_remove(var);
    }
    cmd.arg("--data-dir").arg(data).arg("--model-dir").arg(model);
    cmd
}

fn api_key(data: &Path, user: &str) -> String {
    let out = ragmill(data).args(["users", "add", user, "--json"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["api_key"].as_str().expect("key").to_owned()
}

/// `ragmill serve` on a free port with `args` and `env`; killed when dropped.
struct Serve {
    child: Child,
    base: String,
    /// The second line it prints: which chat model it uses.
    chat_line: String,
}

impl Serve {
    fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = ragmill(data)
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "1"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("serve starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (mut line, mut chat_line) = (String::new(), String::new());
        stdout.read_line(&mut line).expect("line");
        stdout.read_line(&mut chat_line).expect("line");
        let base = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "no address in {line:?}");
        Self { child, base, chat_line: chat_line.trim().to_owned() }
    }

    /// Starts one whose chat model is the stand-in `fake`, speaking `backend`.
    fn with_chat(data: &Path, backend: &str, fake: &FakeServer) -> Self {
        let url = fake.url();
        Self::start(
            data,
            &["--chat-backend", backend, "--chat-endpoint", &url, "--chat-model", "stand-in"],
            &[],
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

async fn get(server: &Serve, key: &str, path: &str) -> (u16, Value) {
    let r = http().get(server.url(path)).bearer_auth(key).send().await.expect("get");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn chat(server: &Serve, key: &str, body: &Value) -> reqwest::Response {
    http().post(server.url("/v1/chat")).bearer_auth(key).json(body).send().await.expect("chat")
}

/// A refused chat: the status and the error code.
async fn refused(server: &Serve, key: &str, body: &Value) -> (u16, String, String) {
    let r = chat(server, key, body).await;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    let text = |f: &str| v["error"][f].as_str().unwrap_or_default().to_owned();
    (status, text("code"), text("message"))
}

/// Uploads the sourdough sample and waits until the user's collection is searchable.
async fn ready_document(server: &Serve, key: &str) {
    let bytes = std::fs::read(repo().join("samples/sourdough-starter.md")).expect("sample");
    let form = Form::new().part("file", Part::bytes(bytes).file_name("sourdough-starter.md"));
    let r = http()
        .post(server.url("/v1/documents"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(120);
    while get(server, key, "/v1/rag/status").await.1["available"] != true {
        assert!(Instant::now() < deadline, "the document never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads Server-Sent Events off a response as they arrive: `(event name, data as JSON)`.
struct Events {
    response: reqwest::Response,
    buf: String,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(kind, Some("text/event-stream"));
        Self { response, buf: String::new() }
    }

    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data) = (String::from("message"), Vec::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data = serde_json::from_str(&data.join("\n")).expect("event data is JSON");
                return Some((name, data));
            }
            let chunk = self.response.chunk().await.expect("stream reads")?;
            self.buf.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    async fn all(mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

/// The answer of a completed chat: sources, the tokens concatenated, the `done` data; checks
/// the order of the events on the way.
fn answer(events: &[(String, Value)]) -> (Vec<Value>, String, Value) {
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"sources"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert!(names[1..names.len() - 1].iter().all(|n| *n == "token"), "{names:?}");
    let sources = events[0].1["sources"].as_array().cloned().expect("sources");
    let text = events[1..events.len() - 1]
        .iter()
        .map(|(_, d)| d["content"].as_str().expect("content"))
        .collect();
    let done = events[events.len() - 1].1.clone();
    assert_eq!(done["tokens"], events.len() - 2);
    (sources, text, done)
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_with_rag_cites_exactly_the_passages_it_sent_over_both_wire_formats() {
    let data = tempfile::tempdir().expect("tmp");
    let key = api_key(data.path(), "alice");
    let ollama = FakeOllama::start(8).await.expect("stand-in");
    let openai = FakeOpenAi::start(8).await.expect("stand-in");
    let mut uploaded = false;
    for (backend, fake) in [("ollama", &ollama), ("openai", &openai)] {
        // The server lists an embedding model too: it is not offered.
        fake.set_models(&["bigger", "nomic-embed-text", "stand-in"]);
        let server = Serve::with_chat(data.path(), backend, fake);
        if !uploaded {
            ready_document(&server, &key).await;
            uploaded = true;
        }
        let (_, status) = get(&server, &key, "/v1/chat").await;
        assert_eq!(
            status,
            json!({"configured": true, "backend": backend, "model": "stand-in",
                   "models": ["stand-in", "bigger"]})
        );

        // With RAG: the passages go into the prompt, numbered, and come back as the sources.
        fake.set_token_delay(Duration::from_millis(2));
        let history = [
            json!({"role": "user", "content": "Hello"}),
            json!({"role": "assistant", "content": "Hi! Ask me about your documents."}),
            json!({"role": "user", "content": QUESTION}),
        ];
        let body = json!({"messages": history, "rag": true, "top_k": 3});
        let events = Events::new(chat(&server, &key, &body).await).all().await;
        let (sources, text, done) = answer(&events);
        assert_eq!(sources.len(), 3, "{sources:?}");
        let sent = fake.last_chat_request().expect("the stand-in was asked");
        let expected = format!("Stand-in answer to: {QUESTION}. Sources: [1] [2] [3]");
        assert_eq!(chat_reply(&sent), expected);
        assert_eq!(text, expected, "{backend}: every token, in order");
        assert!(events.len() > 10, "{backend}: streamed word by word");
        assert_eq!((done["model"].as_str(), done["elapsed_ms"].is_u64()), (Some("stand-in"), true));

        // The prompt: one system message with exactly these passages, in this order, then the
        // conversation as sent.
        let messages = sent["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 4);
        assert_eq!(&messages[1..], &history[..]);
        assert_eq!(messages[0]["role"], "system");
        let system = messages[0]["content"].as_str().expect("system prompt");
        let mut at = 0;
        for (i, s) in sources.iter().enumerate() {
            assert_eq!(s["n"], i + 1);
            assert_eq!(s["document"], "sourdough-starter.md");
            let header = format!("\n[{}] sourdough-starter.md", i + 1);
            let text = s["text"].as_str().expect("text");
            let found = system[at..].find(&header).expect("passage header in order") + at + 1;
            let body_at = system[found..].find('\n').map(|p| found + p + 1).expect("body");
            assert!(system[body_at..].starts_with(text.trim_end()), "passage {} text", i + 1);
            at = body_at;
        }
        assert!(!system.contains("\n[4] "), "only the sources were sent");

        // The sources are the search results for the question.
        let r = http()
            .post(server.url("/v1/search"))
            .bearer_auth(&key)
            .json(&json!({"query": QUESTION, "top_k": 3}))
            .send()
            .await
            .expect("search");
        let results = r.json::<Value>().await.expect("json")["results"].clone();
        let texts = |v: &[Value]| v.iter().map(|x| x["text"].clone()).collect::<Vec<_>>();
        assert_eq!(texts(&sources), texts(results.as_array().expect("results")));

        // Without RAG: no sources, no passages, the conversation as it is.
        let body = json!({"messages": [{"role": "user", "content": QUESTION}]});
        let events = Events::new(chat(&server, &key, &body).await).all().await;
        let (sources, text, _) = answer(&events);
        assert!(sources.is_empty());
        assert_eq!(text, format!("Stand-in answer to: {QUESTION}."));
        let sent = fake.last_chat_request().expect("asked");
        assert_eq!(sent["messages"], json!([{"role": "user", "content": QUESTION}]));

        // Another model the server offers answers when picked; one it does not is refused.
        let body = json!({"messages": [{"role": "user", "content": QUESTION}], "model": "bigger"});
        let events = Events::new(chat(&server, &key, &body).await).all().await;
        assert_eq!(answer(&events).2["model"], "bigger", "{backend}");
        assert_eq!(fake.last_chat_request().expect("asked")["model"], "bigger");
        for model in ["gpt-9", "nomic-embed-text"] {
            let body = json!({"messages": [{"role": "user", "content": "hi"}], "model": model});
            let (status, code, message) = refused(&server, &key, &body).await;
            assert_eq!((status, code.as_str()), (400, "unknown_model"), "{model}: {message}");
            assert!(message.contains("stand-in, bigger"), "{message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_refusals_come_before_the_stream_and_failures_mid_answer_end_it() {
    let data = tempfile::tempdir().expect("tmp");
    let key = api_key(data.path(), "bob");
    let fake = FakeOllama::start(8).await.expect("stand-in");
    let server = Serve::with_chat(data.path(), "ollama", &fake);
    let ask = |extra: Value| {
        let mut body = json!({"messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };

    // Nothing searchable yet.
    let (status, code, message) = refused(&server, &key, &ask(json!({"rag": true}))).await;
    assert_eq!((status, code.as_str()), (409, "rag_unavailable"), "{message}");
    // Bad requests.
    for bad in [
        json!({"messages": []}),
        json!({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}),
        json!({"messages": [{"role": "wizard", "content": "a"}]}),
        json!({"messages": [{"role": "user", "content": "   "}]}),
    ] {
        let (status, code, _) = refused(&server, &key, &bad).await;
        assert_eq!((status, code.as_str()), (400, "invalid_messages"), "{bad}");
    }
    let (status, code, _) = refused(&server, &key, &ask(json!({"top_k": 0}))).await;
    assert_eq!((status, code.as_str()), (400, "invalid_top_k"));
    let (status, code, _) = refused(&server, &key, &ask(json!({"stream": true}))).await;
    assert_eq!((status, code.as_str()), (400, "invalid_json"));
    let r = http().post(server.url("/v1/chat")).json(&ask(json!({}))).send().await.expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(fake.chat_requests(), 0, "nothing refused reached the chat server");

    // The chat server refuses: 502 with its status and message.
    fake.set_canned(404, r#"{"error":"model \"stand-in\" not found, try pulling it first"}"#);
    let (status, code, message) = refused(&server, &key, &ask(json!({}))).await;
    assert_eq!((status, code.as_str()), (502, "chat_backend_unavailable"));
    assert!(message.contains("HTTP 404") && message.contains("not found"), "{message}");
    assert!(!message.contains(&fake.url()), "the chat server's address is not shown: {message}");

    // The chat server dies mid-answer: the tokens so far, then an error event, no `done`.
    let fake = FakeOllama::start(8).await.expect("stand-in");
    let server = Serve::with_chat(data.path(), "ollama", &fake);
    fake.set_token_delay(Duration::from_millis(150));
    let mut events = Events::new(chat(&server, &key, &ask(json!({}))).await);
    assert_eq!(events.next().await.map(|e| e.0), Some("sources".into()));
    let first = events.next().await.expect("a token");
    assert_eq!(first, ("token".into(), json!({"content": "Stand-in "})));
    fake.kill().await;
    let rest = events.all().await;
    let (last, data) = rest.last().cloned().expect("an error event");
    assert_eq!((last.as_str(), data["code"].as_str()), ("error", Some("chat_backend_failed")));
    assert!(rest.iter().all(|(n, _)| n == "token" || n == "error"), "{rest:?}");

    // And is dead: 502 before any stream.
    let (status, code, message) = refused(&server, &key, &ask(json!({}))).await;
    assert_eq!((status, code.as_str()), (502, "chat_backend_unavailable"));
    assert!(message.starts_with("cannot reach the chat model's server"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_chat_model_chat_says_how_to_configure_one_and_search_still_works() {
    let data = tempfile::tempdir().expect("tmp");
    let key = api_key(data.path(), "carol");
    let server = Serve::start(data.path(), &[], &[]);
    assert!(server.chat_line.starts_with("chat: no chat model configured"), "{}", server.chat_line);
    let (status, body) = get(&server, &key, "/v1/chat").await;
    assert_eq!(
        (status, body),
        (200, json!({"configured": false, "backend": null, "model": null, "models": []}))
    );
    let body = json!({"messages": [{"role": "user", "content": QUESTION}], "rag": true});
    let (status, code, message) = refused(&server, &key, &body).await;
    assert_eq!((status, code.as_str()), (503, "chat_unconfigured"));
    assert!(message.contains("--chat-backend") && message.contains("search still works"));

    ready_document(&server, &key).await;
    let r = http()
        .post(server.url("/v1/search"))
        .bearer_auth(&key)
        .json(&json!({"query": QUESTION, "top_k": 2}))
        .send()
        .await
        .expect("search");
    assert_eq!(r.status(), 200);
    let results = r.json::<Value>().await.expect("json")["results"].clone();
    assert_eq!(results[0]["document"], "sourdough-starter.md");
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_settings_layer_file_env_flags_and_bad_ones_are_one_line_errors() {
    let data = tempfile::tempdir().expect("tmp");
    let key = api_key(data.path(), "dave");
    let fake = FakeOpenAi::start(8).await.expect("stand-in");
    let config = data.path().join("ragmill.toml");
    let toml = format!(
        "[chat]\nbackend = \"openai\"\nendpoint = \"{}/v1\"\nmodel = \"from-file\"\napi_key = \"k\"\nmodels = [\"other\"]\n",
        fake.url()
    );
    std::fs::write(&config, toml).expect("write config");
    let config = config.to_str().expect("utf-8 path");

    let server = Serve::start(data.path(), &["--config", config], &[]);
    let (_, status) = get(&server, &key, "/v1/chat").await;
    assert_eq!(
        status,
        json!({"configured": true, "backend": "openai", "model": "from-file",
               "models": ["from-file", "other"]}),
        "the file's fixed list, not the server's"
    );
    let url = fake.url();
    assert_eq!(server.chat_line, format!("chat: openai model from-file at {url}/v1"));
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let events = Events::new(chat(&server, &key, &body).await).all().await;
    assert_eq!(answer(&events).1, "Stand-in answer to: hi.");
    assert_eq!(fake.last_chat_request().map(|r| r["model"].clone()), Some(json!("from-file")));
    drop(server);

    let env = [("RAGMILL_CHAT_MODEL", "from-env")];
    let server = Serve::start(data.path(), &["--config", config], &env);
    assert_eq!(get(&server, &key, "/v1/chat").await.1["model"], "from-env");
    drop(server);
    let server =
        Serve::start(data.path(), &["--config", config, "--chat-model", "from-flag"], &env);
    assert_eq!(get(&server, &key, "/v1/chat").await.1["model"], "from-flag");
    drop(server);

    for (args, expect) in [
        (&["--chat-backend", "ollama"][..], "--chat-endpoint"),
        (&["--chat-backend", "ollama", "--chat-endpoint", "http://h:1"][..], "--chat-model"),
        (&["--chat-model", "m"][..], "--chat-backend"),
        (
            &["--chat-backend", "openai", "--chat-endpoint", "h:1", "--chat-model", "m"][..],
            "not an http",
        ),
    ] {
        let out = ragmill(data.path())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
        assert!(line.contains(expect), "{args:?}: {err}");
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    }
}

/// `method path` with `key` and a JSON body: the status and the JSON answer.
async fn call(server: &Serve, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let r = http()
        .request(method, server.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn conversations_keep_each_turn_with_its_sources_even_a_stopped_one() {
    let data = tempfile::tempdir().expect("tmp");
    let key = api_key(data.path(), "alice");
    let other = api_key(data.path(), "bob");
    let fake = FakeOllama::start(8).await.expect("stand-in");
    let server = Serve::with_chat(data.path(), "ollama", &fake);
    ready_document(&server, &key).await;

    let (status, created) = call(&server, &key, "POST", "/v1/conversations", json!({})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let path = format!("/v1/conversations/{id}");
    let body = json!({"messages": [{"role": "user", "content": QUESTION}], "rag": true, "top_k": 2, "conversation": id});
    let events = Events::new(chat(&server, &key, &body).await).all().await;
    let (sources, text, _) = answer(&events);

    // The turn is saved once the answer ends: the question, then the answer and its sources.
    let deadline = Instant::now() + Duration::from_secs(10);
    let saved = loop {
        let (_, saved) = get(&server, &key, &path).await;
        if saved["history"].as_array().is_some_and(|h| h.len() == 2) {
            break saved;
        }
        assert!(Instant::now() < deadline, "never saved: {saved}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(saved["title"], QUESTION, "named after its first question");
    let history = saved["history"].as_array().expect("history");
    assert_eq!(
        (history[0]["role"].as_str(), history[0]["content"].as_str()),
        (Some("user"), Some(QUESTION))
    );
    assert_eq!(history[1]["content"].as_str(), Some(text.as_str()));
    assert_eq!(history[1]["sources"], Value::Array(sources));
    assert_eq!(history[1]["stopped"], false);
    assert_eq!(
        (history[0]["model"].clone(), history[1]["model"].as_str()),
        (Value::Null, Some("stand-in"))
    );

    // Stopped mid-answer (the client goes away): what came is kept, marked stopped.
    fake.set_token_delay(Duration::from_millis(100));
    let body =
        json!({"messages": [{"role": "user", "content": "Tell me more"}], "conversation": id});
    let mut events = Events::new(chat(&server, &key, &body).await);
    for _ in 0..3 {
        events.next().await.expect("an event");
    }
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(10);
    let history = loop {
        let (_, saved) = get(&server, &key, &path).await;
        let history = saved["history"].as_array().cloned().unwrap_or_default();
        if history.len() == 4 {
            break history;
        }
        assert!(Instant::now() < deadline, "the stopped turn was never saved: {saved}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(history[3]["stopped"], true, "{history:?}");
    let partial = history[3]["content"].as_str().expect("content");
    assert!(
        !partial.is_empty() && "Stand-in answer to: Tell me more.".starts_with(partial),
        "{partial:?}"
    );

    // Another user's conversation does not exist for them, nor can they chat into it.
    assert_eq!(get(&server, &other, &path).await.0, 404);
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "conversation": id});
    assert_eq!(refused(&server, &other, &body).await.0, 404);

    // Rename, list, delete.
    let (status, renamed) =
        call(&server, &key, "PATCH", &path, json!({"title": "Starter care"})).await;
    assert_eq!(
        (status, renamed["title"].as_str(), renamed["messages"].as_u64()),
        (200, Some("Starter care"), Some(4))
    );
    assert_eq!(call(&server, &key, "PATCH", &path, json!({"title": "  "})).await.0, 400);
    let (_, list) = get(&server, &key, "/v1/conversations").await;
    assert_eq!(list["conversations"][0]["title"], "Starter care");
    assert_eq!(get(&server, &other, "/v1/conversations").await.1["conversations"], json!([]));
    assert_eq!(call(&server, &key, "DELETE", &path, Value::Null).await.0, 204);
    assert_eq!(get(&server, &key, &path).await.0, 404);
}
