//! Saved chat conversations, per user: a title and the messages in order, each answer with the
//! sources it was given (as the JSON the API sent) and whether it was stopped before its end.
//! Every statement names the user; another user's conversation reads as none.

use rusqlite::{OptionalExtension, params};

use crate::codec::now_ms;
use crate::{StoreError, UserStore};

/// A conversation without its messages, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    /// Its id.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Messages in it.
    pub messages: u64,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// The last message's time (or the rename's).
    pub updated_at: i64,
}

/// One saved message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// Its text.
    pub content: String,
    /// For an answer: the sources it was given, as JSON.
    pub sources: Option<String>,
    /// For an answer: it was stopped before its end (what came is kept).
    pub stopped: bool,
    /// For an answer: the chat model that gave it (none for answers saved before schema v8).
    pub model: Option<String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A message to save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMessage<'a> {
    /// `user` or `assistant`.
    pub role: &'a str,
    /// Its text.
    pub content: &'a str,
    /// For an answer: its sources, as JSON.
    pub sources: Option<&'a str>,
    /// For an answer: stopped before its end.
    pub stopped: bool,
    /// For an answer: the chat model that gave it.
    pub model: Option<&'a str>,
}

/// The longest title kept, in characters.
const MAX_TITLE: usize = 200;

/// `title` trimmed to one line of at most [`MAX_TITLE`] characters.
pub fn clean_title(title: &str) -> String {
    let line = title.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(MAX_TITLE).collect()
}

impl UserStore<'_> {
    /// The user's conversations, the latest first.
    pub fn conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        let conn = self.store.reader()?;
        let mut stmt = conn.prepare(
            "SELECT c.id, c.title, c.created_at, c.updated_at,
                    (SELECT count(*) FROM conversation_messages m WHERE m.conversation_id = c.id)
             FROM conversations c WHERE c.user_id = ?1 ORDER BY c.updated_at DESC, c.id DESC",
        )?;
        let rows = stmt.query_map([self.user.0], |r| {
            Ok(ConversationSummary {
                id: r.get(0)?,
                title: r.get(1)?,
                created_at: r.get(2)?,
                updated_at: r.get(3)?,
                messages: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A new, empty conversation called `title`.
    pub fn create_conversation(&self, title: &str) -> Result<ConversationSummary, StoreError> {
        let now = now_ms();
        let title = clean_title(title);
        let id = self.store.conn()?.query_row(
            "INSERT INTO conversations (user_id, title, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?3) RETURNING id",
            params![self.user.0, title, now],
            |r| r.get(0),
        )?;
        Ok(ConversationSummary { id, title, messages: 0, created_at: now, updated_at: now })
    }

    /// The user's conversation `id` with its messages in order, if they have one.
    pub fn conversation(
        &self,
        id: i64,
    ) -> Result<Option<(ConversationSummary, Vec<SavedMessage>)>, StoreError> {
        let conn = self.store.reader()?;
        let tx = conn.unchecked_transaction()?; // one snapshot for the row and its messages
        let head: Option<(String, i64, i64)> = tx
            .query_row(
                "SELECT title, created_at, updated_at FROM conversations WHERE id = ?1 AND user_id = ?2",
                params![id, self.user.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((title, created_at, updated_at)) = head else { return Ok(None) };
        let mut stmt = tx.prepare(
            "SELECT role, content, sources, stopped, created_at, model FROM conversation_messages
             WHERE conversation_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(SavedMessage {
                role: r.get(0)?,
                content: r.get(1)?,
                sources: r.get(2)?,
                stopped: r.get::<_, i64>(3)? != 0,
                created_at: r.get(4)?,
                model: r.get(5)?,
            })
        })?;
        let messages: Vec<SavedMessage> = rows.collect::<Result<_, _>>()?;
        let messages_n = messages.len() as u64;
        let summary =
            ConversationSummary { id, title, messages: messages_n, created_at, updated_at };
        Ok(Some((summary, messages)))
    }

    /// Whether the user has a conversation `id` (without reading its messages).
    pub fn has_conversation(&self, id: i64) -> Result<bool, StoreError> {
        let conn = self.store.reader()?;
        Ok(conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1 AND user_id = ?2)",
            params![id, self.user.0],
            |r| r.get(0),
        )?)
    }

    /// Renames the user's conversation `id`; false if they have none.
    pub fn rename_conversation(&self, id: i64, title: &str) -> Result<bool, StoreError> {
        let n = self.store.conn()?.execute(
            "UPDATE conversations SET title = ?1, updated_at = ?2 WHERE id = ?3 AND user_id = ?4",
            params![clean_title(title), now_ms(), id, self.user.0],
        )?;
        Ok(n > 0)
    }

    /// Deletes the user's conversation `id` and its messages; false if they have none.
    pub fn delete_conversation(&self, id: i64) -> Result<bool, StoreError> {
        let n = self.store.conn()?.execute(
            "DELETE FROM conversations WHERE id = ?1 AND user_id = ?2",
            params![id, self.user.0],
        )?;
        Ok(n > 0)
    }

    /// Appends `messages` to the user's conversation `id` in one transaction, naming it after
    /// its first question if it has no title yet; false if they have no such conversation
    /// (deleted meanwhile).
    pub fn append_messages(
        &self,
        id: i64,
        messages: &[NewMessage<'_>],
    ) -> Result<bool, StoreError> {
        let mut conn = self.store.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = now_ms();
        let n = tx.execute(
            "UPDATE conversations SET updated_at = ?1 WHERE id = ?2 AND user_id = ?3",
            params![now, id, self.user.0],
        )?;
        if n == 0 {
            return Ok(false);
        }
        if let Some(first) = messages.iter().find(|m| m.role == "user") {
            tx.execute(
                "UPDATE conversations SET title = ?1 WHERE id = ?2 AND title = ''",
                params![clean_title(first.content), id],
            )?;
        }
        let mut insert = tx.prepare_cached(
            "INSERT INTO conversation_messages (conversation_id, role, content, sources, stopped, created_at, model)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for m in messages {
            let stopped = i64::from(m.stopped);
            insert.execute(params![id, m.role, m.content, m.sources, stopped, now, m.model])?;
        }
        drop(insert);
        tx.commit()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn conversations_are_kept_per_user_in_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        let (ann, bob) =
            (store.ensure_user("ann").expect("a"), store.ensure_user("bob").expect("b"));
        let a = store.user(ann);
        let c = a.create_conversation("").expect("create");
        let question = NewMessage {
            role: "user",
            content: "Why do  tides\\nhappen?",
            sources: None,
            stopped: false,
            model: None,
        };
        let answer = NewMessage {
            role: "assistant",
            content: "The Moon [1].",
            sources: Some("[{\"n\":1}]"),
            stopped: true,
            model: Some("llama3.2"),
        };
        assert!(a.append_messages(c.id, &[question, answer]).expect("append"));
        let (summary, messages) = a.conversation(c.id).expect("read").expect("mine");
        assert_eq!(
            summary.title, "Why do tides\\nhappen?",
            "named after its first question, on one line"
        );
        assert_eq!(messages.len(), 2);
        assert_eq!(
            (messages[1].sources.as_deref(), messages[1].stopped, messages[1].model.as_deref()),
            (Some("[{\"n\":1}]"), true, Some("llama3.2"))
        );
        assert_eq!(messages[0].model, None);
        // Another user sees nothing of it and can change nothing.
        let b = store.user(bob);
        assert!(b.conversation(c.id).expect("read").is_none());
        assert!(!b.rename_conversation(c.id, "mine now").expect("rename"));
        assert!(!b.append_messages(c.id, &[question]).expect("append"));
        assert!(!b.delete_conversation(c.id).expect("delete"));
        assert!(b.conversations().expect("list").is_empty());
        assert!(a.rename_conversation(c.id, "Tides").expect("rename"));
        assert_eq!(a.conversations().expect("list")[0].title, "Tides");
        assert!(a.delete_conversation(c.id).expect("delete"));
        assert!(a.conversation(c.id).expect("read").is_none());
    }
}
