//! A page of a user's documents: filtered by state and name, sorted, counted, so a list of
//! thousands is read a page at a time.

use rusqlite::types::Value;

use crate::documents::{DOC_COLUMNS, document_from_row};
use crate::{DocumentRecord, DocumentState, StoreError, UserStore};

/// How to order a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortBy {
    /// Last change (the default, newest first).
    #[default]
    Updated,
    /// Upload of the first version.
    Created,
    /// Name (case-insensitive).
    Name,
    /// Size in bytes.
    Size,
}

/// Which documents, in which order, which page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentQuery {
    /// Only documents in this state.
    pub state: Option<DocumentState>,
    /// Only documents whose last version failed (failed, or ready with an error).
    pub with_error: bool,
    /// Only documents whose name contains this (case-insensitive).
    pub name_contains: Option<String>,
    /// The order.
    pub sort: SortBy,
    /// Ascending instead of descending.
    pub ascending: bool,
    /// At most this many (all without).
    pub limit: Option<usize>,
    /// Skipping this many.
    pub offset: usize,
}

impl UserStore<'_> {
    /// A page of the user's documents and how many match the query in all.
    pub fn documents_page(
        &self,
        q: &DocumentQuery,
    ) -> Result<(Vec<DocumentRecord>, u64), StoreError> {
        let mut filter = String::from("user_id = ?1");
        let mut args = vec![Value::Integer(self.user.0)];
        if let Some(state) = q.state {
            args.push(Value::Text(state.as_str().to_owned()));
            filter.push_str(&format!(" AND state = ?{}", args.len()));
        }
        if q.with_error {
            filter.push_str(" AND error_code IS NOT NULL");
        }
        if let Some(part) = q.name_contains.as_deref().filter(|p| !p.is_empty()) {
            // instr on lower(): no LIKE wildcards to escape in what the user typed.
            args.push(Value::Text(part.to_lowercase()));
            filter.push_str(&format!(" AND instr(lower(name), ?{}) > 0", args.len()));
        }
        let column = match q.sort {
            SortBy::Updated => "updated_at",
            SortBy::Created => "created_at",
            SortBy::Name => "name COLLATE NOCASE",
            SortBy::Size => "size",
        };
        let direction = if q.ascending { "ASC" } else { "DESC" };
        let conn = self.store.reader()?;
        let total: i64 = conn.query_row(
            &format!("SELECT count(*) FROM documents WHERE {filter}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let limit = q.limit.map_or(-1, |l| l as i64);
        args.push(Value::Integer(limit));
        args.push(Value::Integer(q.offset as i64));
        let (l, o) = (args.len() - 1, args.len());
        let mut stmt = conn.prepare(&format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE {filter}
             ORDER BY {column} {direction}, id {direction} LIMIT ?{l} OFFSET ?{o}"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), document_from_row)?;
        Ok((rows.collect::<Result<_, _>>()?, u64::try_from(total).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewDocument, Store};
    use ragmill_core::ContentHash;

    #[test]
    fn pages_filter_sort_and_count() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(dir.path()).expect("open");
        let user = store.ensure_user("ann").expect("user");
        let other = store.ensure_user("bob").expect("user");
        let u = store.user(user);
        for (i, name) in ["Beta.md", "alpha.md", "gamma_%.md", "delta.md"].iter().enumerate() {
            let doc = NewDocument {
                id: None,
                name,
                content_hash: ContentHash::of(name.as_bytes()),
                kind: None,
                size: 10 * (i as u64 + 1),
                timings: Default::default(),
            };
            let id = u.record_failure(&doc, "no_text", "none").expect("doc");
            if i % 2 == 0 {
                u.cancel_document(id).expect("not in progress: no-op");
            }
        }
        u.accept_upload("queued.md", ContentHash::of(b"q"), 5, None).expect("queued");
        store
            .user(other)
            .accept_upload("alpha-of-bob.md", ContentHash::of(b"b"), 5, None)
            .expect("bob");
        let names = |q: &DocumentQuery| -> (Vec<String>, u64) {
            let (docs, total) = u.documents_page(q).expect("page");
            (docs.into_iter().map(|d| d.name).collect(), total)
        };
        let by_name = DocumentQuery { sort: SortBy::Name, ascending: true, ..Default::default() };
        assert_eq!(
            names(&by_name).0,
            ["alpha.md", "Beta.md", "delta.md", "gamma_%.md", "queued.md"]
        );
        let page = DocumentQuery { limit: Some(2), offset: 2, ..by_name.clone() };
        assert_eq!(names(&page), (vec!["delta.md".to_owned(), "gamma_%.md".to_owned()], 5));
        let failed = DocumentQuery { state: Some(DocumentState::Failed), ..by_name.clone() };
        assert_eq!(names(&failed).1, 4);
        let like = DocumentQuery { name_contains: Some("_%".into()), ..by_name.clone() };
        assert_eq!(names(&like).0, ["gamma_%.md"], "what is typed is text, not a pattern");
        let by_size = DocumentQuery { sort: SortBy::Size, ..Default::default() };
        assert_eq!(names(&by_size).0[0], "delta.md", "largest first");
        let queued = DocumentQuery { state: Some(DocumentState::Queued), ..Default::default() };
        assert_eq!(names(&queued).0, ["queued.md"], "only the user's own");
    }
}
