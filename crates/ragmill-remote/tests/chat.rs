//! The streaming chat client against the stand-in servers (`fake`), which speak Ollama's and
//! OpenAI's real streaming wire formats: deltas in order, error statuses, dead and silent
//! servers.

mod fake;

use std::time::Duration;

use fake::{FakeOpenAi, FakeServer, ollama, openai};
use futures::StreamExt;
use ragmill_remote::RemoteError;
use ragmill_remote::chat::{ChatBackend, ChatClient, ChatMessage};
use ragmill_remote::fake::chat_reply;
use serde_json::json;

fn client(backend: ChatBackend, server: &FakeServer) -> ChatClient {
    ChatClient::new(backend, &server.url(), "stand-in-model", None).expect("client")
}

fn messages() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(
            "system",
            "Answer from the passages.\n\n[1] a.md\nfirst passage\n\n[2] b.md, page 3\nsecond",
        ),
        ChatMessage::new("user", "earlier question"),
        ChatMessage::new("assistant", "earlier answer"),
        ChatMessage::new("user", "why is the sky blue?"),
    ]
}

/// Every delta of the stream, or the first error.
async fn collect(
    client: &ChatClient,
    messages: &[ChatMessage],
) -> Result<Vec<String>, RemoteError> {
    let mut stream = client.stream(messages).await?;
    let mut deltas = Vec::new();
    while let Some(delta) = stream.next().await {
        deltas.push(delta?);
    }
    Ok(deltas)
}

#[tokio::test]
async fn chat_streams_the_stand_ins_answer_word_by_word_in_both_formats() {
    for (backend, server) in
        [(ChatBackend::Ollama, ollama(4).await), (ChatBackend::OpenAi, openai(4).await)]
    {
        let deltas = collect(&client(backend, &server), &messages()).await.expect("chat");
        let sent = server.last_chat_request().expect("recorded");
        assert_eq!(sent["model"], "stand-in-model");
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["messages"], serde_json::to_value(messages()).expect("json"));
        let reply = "Stand-in answer to: why is the sky blue?. Sources: [1] [2]";
        assert_eq!(chat_reply(&sent), reply);
        assert_eq!(deltas.concat(), reply, "{backend}");
        assert_eq!(deltas.len(), reply.split(' ').count(), "{backend}: one word per delta");
        assert_eq!((server.chat_requests(), server.requests()), (1, 0));
    }
}

#[tokio::test]
async fn chat_error_statuses_carry_the_servers_message() {
    let server = ollama(4).await;
    server
        .set_canned(404, r#"{"error":"model \"stand-in-model\" not found, try pulling it first"}"#);
    let err = collect(&client(ChatBackend::Ollama, &server), &messages()).await.expect_err("404");
    assert!(
        matches!(&err, RemoteError::Status { status: 404, message, .. } if message.contains("not found")),
        "{err}"
    );

    let server = FakeOpenAi::with_key(4, "sk-right").await.expect("start");
    let wrong = ChatClient::new(ChatBackend::OpenAi, &server.url(), "m", Some("sk-wrong".into()))
        .expect("client");
    let err = collect(&wrong, &messages()).await.expect_err("401");
    assert!(matches!(&err, RemoteError::Status { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("Incorrect API key"), "{err}");
    let right = ChatClient::new(
        ChatBackend::OpenAi,
        &format!("{}/v1", server.url()),
        "m",
        Some("sk-right".into()),
    )
    .expect("client");
    assert!(
        collect(&right, &messages()).await.expect("chat").concat().starts_with("Stand-in answer")
    );
    assert_eq!(
        server.last_chat_request().map(|r| r["messages"][3].clone()),
        Some(json!({"role": "user", "content": "why is the sky blue?"}))
    );
}

#[tokio::test]
async fn chat_against_a_dead_or_silent_server_fails_cleanly() {
    let server = ollama(4).await;
    let chat = client(ChatBackend::Ollama, &server);
    server.kill().await;
    let err = collect(&chat, &messages()).await.expect_err("dead");
    assert!(matches!(&err, RemoteError::Transport { url, .. } if *url == server.url()), "{err}");

    // Killed mid-answer: the deltas so far, then an error.
    server.revive().await.expect("revive");
    server.set_token_delay(Duration::from_millis(100));
    let mut stream = chat.stream(&messages()).await.expect("head");
    let first = stream.next().await.expect("a delta").expect("ok");
    assert_eq!(first, "Stand-in ");
    server.kill().await;
    let rest: Vec<_> = stream.collect().await;
    assert!(matches!(rest.last(), Some(Err(_))), "{rest:?}");

    // Silent between tokens for longer than the idle timeout.
    server.revive().await.expect("revive");
    server.set_token_delay(Duration::from_millis(400));
    let impatient = chat.clone().with_idle_timeout(Duration::from_millis(100));
    let err = collect(&impatient, &messages()).await.expect_err("idle");
    assert!(matches!(err, RemoteError::Timeout { .. }), "{err}");
}
