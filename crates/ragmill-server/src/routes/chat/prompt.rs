//! What a chat request may hold (`validate`), and how retrieved passages become the numbered
//! system prompt (`rag_prompt`) and the sources the answer cites (`numbered`).

use ragmill_store::SearchHit;

use super::{ChatRequest, ChatSource};
use crate::error::ApiError;

/// Most messages in one request.
pub const MAX_MESSAGES: usize = 100;
/// Longest message content, in bytes.
pub const MAX_CONTENT_BYTES: usize = 32 << 10;
/// Most passages put into the prompt.
pub const MAX_TOP_K: usize = 20;
/// Passages put into the prompt when the request does not say.
pub const DEFAULT_TOP_K: usize = 5;

/// The roles a message may have.
const ROLES: [&str; 3] = ["user", "assistant", "system"];

/// Checks the request; returns the `top_k` in effect.
pub fn validate(req: &ChatRequest) -> Result<usize, ApiError> {
    let bad = |message: String| ApiError::bad_request("invalid_messages", message);
    if req.messages.is_empty() {
        return Err(bad("messages must not be empty".into()));
    }
    if req.messages.len() > MAX_MESSAGES {
        return Err(bad(format!("at most {MAX_MESSAGES} messages per request")));
    }
    for (i, m) in req.messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(bad(format!(
                "messages[{i}].role must be user, assistant or system, not {:?}",
                m.role.chars().take(40).collect::<String>()
            )));
        }
        if m.content.trim().is_empty() {
            return Err(bad(format!("messages[{i}].content must not be empty")));
        }
        if m.content.len() > MAX_CONTENT_BYTES {
            return Err(bad(format!(
                "messages[{i}].content is longer than {} KiB",
                MAX_CONTENT_BYTES >> 10
            )));
        }
    }
    if req.messages.last().is_some_and(|m| m.role != "user") {
        return Err(bad("the last message must be the user's (role user)".into()));
    }
    let top_k = req.top_k.unwrap_or(DEFAULT_TOP_K);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(ApiError::bad_request(
            "invalid_top_k",
            format!("top_k must be between 1 and {MAX_TOP_K}"),
        ));
    }
    Ok(top_k)
}

/// The system message of a RAG chat: the instruction, then each passage as
/// `[n] <document>, page P — heading > path` and its text.
pub fn rag_prompt(hits: &[SearchHit]) -> String {
    if hits.is_empty() {
        return "No passage of the user's documents matches this question. Tell the user that \
                their documents do not answer it; do not make up sources."
            .to_owned();
    }
    let mut prompt = String::from(
        "Answer the user's question using only the numbered passages below, which come from \
         the user's own documents. Cite each passage you use by its number in square brackets, \
         like [1]. If the passages do not contain the answer, say so instead of guessing.\n\n\
         Passages:\n",
    );
    for (i, h) in hits.iter().enumerate() {
        prompt.push_str(&format!("\n[{}] {}", i + 1, h.document));
        if let Some(page) = h.page {
            prompt.push_str(&format!(", page {page}"));
        }
        if !h.heading_path.is_empty() {
            prompt.push_str(" — ");
            prompt.push_str(&h.heading_path.join(" > "));
        }
        prompt.push('\n');
        prompt.push_str(h.text.trim_end());
        prompt.push('\n');
    }
    prompt
}

/// The hits as sources, numbered from 1 in order.
pub(super) fn numbered(hits: Vec<SearchHit>) -> Vec<ChatSource> {
    hits.into_iter()
        .enumerate()
        .map(|(i, h)| ChatSource {
            n: i + 1,
            document: h.document,
            document_id: h.document_id,
            chunk: h.chunk,
            page: h.page,
            heading_path: h.heading_path,
            score: h.score,
            text: h.text,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::chat::ChatTurn;
    use ragmill_core::DocumentId;

    fn turn(role: &str, content: &str) -> ChatTurn {
        ChatTurn { role: role.into(), content: content.into() }
    }

    fn request(messages: Vec<ChatTurn>, top_k: Option<usize>) -> ChatRequest {
        ChatRequest {
            messages,
            rag: true,
            top_k,
            documents: None,
            mode: None,
            conversation: None,
            model: None,
        }
    }

    fn code(r: Result<usize, ApiError>) -> &'static str {
        r.err().map_or("ok", |e| e.code())
    }

    fn hit(document: &str, page: Option<u32>, path: &[&str], text: &str) -> SearchHit {
        SearchHit {
            document: document.into(),
            document_id: DocumentId(7),
            chunk: 2,
            score: 0.5,
            scores: ragmill_store::Scores::default(),
            text: text.into(),
            page,
            heading_path: path.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn requests_are_checked_before_anything_is_sent() {
        let ok = vec![turn("system", "be brief"), turn("user", "hi"), turn("assistant", "hello")];
        let mut good = ok.clone();
        good.push(turn("user", "and then?"));
        assert_eq!(validate(&request(good.clone(), None)).ok(), Some(DEFAULT_TOP_K));
        assert_eq!(validate(&request(good.clone(), Some(20))).ok(), Some(20));
        assert_eq!(code(validate(&request(good.clone(), Some(0)))), "invalid_top_k");
        assert_eq!(code(validate(&request(good.clone(), Some(21)))), "invalid_top_k");
        assert_eq!(code(validate(&request(vec![], None))), "invalid_messages");
        assert_eq!(code(validate(&request(ok, None))), "invalid_messages", "last not user");
        let mut odd = good.clone();
        odd[1].role = "tool".into();
        assert_eq!(code(validate(&request(odd, None))), "invalid_messages");
        let mut blank = good.clone();
        blank[3].content = " \n".into();
        assert_eq!(code(validate(&request(blank, None))), "invalid_messages");
        let mut long = good.clone();
        long[3].content = "x".repeat(MAX_CONTENT_BYTES + 1);
        assert_eq!(code(validate(&request(long, None))), "invalid_messages");
        let many = vec![turn("user", "again"); MAX_MESSAGES + 1];
        assert_eq!(code(validate(&request(many, None))), "invalid_messages");
    }

    #[test]
    fn the_rag_prompt_numbers_each_passage_with_its_place() {
        let hits = [
            hit("guide.pdf", Some(3), &["Care", "Feeding"], "Feed it daily.\n"),
            hit("notes.md", None, &[], "Keep it warm."),
        ];
        let prompt = rag_prompt(&hits);
        assert!(prompt.starts_with("Answer the user's question using only the numbered passages"));
        assert!(
            prompt.ends_with(
                "Passages:\n\n[1] guide.pdf, page 3 — Care > Feeding\nFeed it daily.\n\n\
                 [2] notes.md\nKeep it warm.\n"
            ),
            "{prompt}"
        );
        let sources = numbered(hits.to_vec());
        assert_eq!(sources.iter().map(|s| s.n).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(sources[0].text, "Feed it daily.\n");
        assert!(rag_prompt(&[]).starts_with("No passage"));
    }
}
