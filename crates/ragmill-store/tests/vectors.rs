//! The store's bookkeeping of an external vector index: generations staged and switched,
//! garbage listed in the transaction that makes vectors stale, and user ids never reused.

mod common;

use common::{MODEL, chunk, doc, open, put, unit};
use ragmill_core::ContentHash;
use ragmill_store::{Garbage, NewChunk, NewDocument, StoreError, UserStore, VectorGarbage};

/// Stores `texts` as version `content` of `name` with its vectors under `generation`.
fn put_at(
    u: &UserStore<'_>,
    id: ragmill_store::DocumentId,
    name: &str,
    content: &str,
    generation: u64,
) -> Result<ragmill_store::DocumentId, StoreError> {
    let chunks = [chunk(0, content), chunk(1, "second")];
    let vectors = [unit([1.0, 0.0, 0.0]), unit([0.0, 1.0, 0.0])];
    let new: Vec<NewChunk<'_>> = chunks
        .iter()
        .zip(&vectors)
        .map(|(c, v)| NewChunk { chunk: c, hash: ContentHash::of(c.text.as_bytes()), vector: v })
        .collect();
    let d = NewDocument { id: Some(id), ..doc(name, content) };
    u.replace_document_at(&d, &new, MODEL, 3, generation)
}

fn garbage(store: &ragmill_store::Store) -> Vec<(Option<i64>, Garbage)> {
    store
        .vector_garbage(100)
        .expect("garbage")
        .into_iter()
        .map(|VectorGarbage { document, what, .. }| (document.map(|d| d.0), what))
        .collect()
}

#[test]
fn a_version_switches_generations_and_lists_the_old_one_as_garbage() {
    let (_dir, store) = open();
    let id = put(&store, "ann", "a.md", &["one", "two"], &vec![unit([1.0, 0.0, 0.0]); 2]);
    let user = store.find_user("ann").expect("find").expect("ann");
    let u = store.user(user);
    assert_eq!(u.vector_generations(&[id]).expect("gens").get(&id), None, "embedded: none");
    assert!(garbage(&store).is_empty());

    let v1 = ContentHash::of(b"v1");
    let g1 = u.stage_vectors(id, v1).expect("stage");
    assert_eq!(u.stage_vectors(id, v1).expect("again"), g1, "a retry stages the same generation");
    put_at(&u, id, "a.md", "v1", g1).expect("switch to g1");
    assert_eq!(u.vector_generations(&[id]).expect("gens").get(&id), Some(&g1));
    assert!(garbage(&store).is_empty(), "nothing was current before");

    let g2 = u.stage_vectors(id, ContentHash::of(b"v2")).expect("stage v2");
    assert!(g2 > g1, "generations only grow");
    put_at(&u, id, "a.md", "v2", g2).expect("switch to g2");
    assert_eq!(u.vector_generations(&[id]).expect("gens").get(&id), Some(&g2));
    assert_eq!(
        garbage(&store),
        vec![(Some(id.0), Garbage::Generation(g1))],
        "the old generation is garbage"
    );
    let rows: Vec<i64> = store.vector_garbage(10).expect("rows").iter().map(|g| g.id).collect();
    store.clear_vector_garbage(&rows).expect("clear");
    assert!(garbage(&store).is_empty());

    // A generation that is no longer the staged one cannot be switched to.
    let g3 = u.stage_vectors(id, ContentHash::of(b"v3")).expect("stage v3");
    let g4 = u.stage_vectors(id, ContentHash::of(b"v4")).expect("stage v4 over v3");
    assert_eq!(
        garbage(&store),
        vec![(Some(id.0), Garbage::Generation(g3))],
        "the abandoned staging"
    );
    let e = put_at(&u, id, "a.md", "v3", g3).expect_err("superseded");
    assert!(matches!(e, StoreError::VectorsSuperseded(d) if d == id), "{e}");
    put_at(&u, id, "a.md", "v4", g4).expect("the staged one goes through");

    // An embedded write (no generation) makes the external copy stale.
    put(&store, "ann", "a.md", &["plain"], &[unit([0.0, 0.0, 1.0])]);
    assert_eq!(u.vector_generations(&[id]).expect("gens").get(&id), None);
    assert!(garbage(&store).contains(&(Some(id.0), Garbage::Generation(g4))));
    assert_eq!(store.unindexed(10).expect("unindexed"), vec![(user, id)]);
}

#[test]
fn deletions_and_failures_leave_garbage_for_the_index() {
    let (_dir, store) = open();
    let id = put(&store, "bob", "b.md", &["one"], &[unit([1.0, 0.0, 0.0])]);
    let user = store.find_user("bob").expect("find").expect("bob");
    let u = store.user(user);
    let g = u.stage_vectors(id, ContentHash::of(b"v1")).expect("stage");
    u.mark_failed(id, "embedding_failed", "boom").expect("fail");
    assert_eq!(
        garbage(&store),
        vec![(Some(id.0), Garbage::Generation(g))],
        "a failed version's staging"
    );

    let g = u.stage_vectors(id, ContentHash::of(b"v2")).expect("stage");
    put_at(&u, id, "b.md", "v2", g).expect("switch");
    assert!(u.delete_document(id).expect("delete"));
    assert!(
        garbage(&store).contains(&(Some(id.0), Garbage::Through(g))),
        "every generation of the document handed out so far"
    );

    // A deleted user's whole collection goes, superseding their finer rows.
    let id = put(&store, "bob", "c.md", &["one"], &[unit([1.0, 0.0, 0.0])]);
    let g = u.stage_vectors(id, ContentHash::of(b"v1")).expect("stage");
    put_at(&u, id, "c.md", "v1", g).expect("switch");
    assert!(store.delete_user(user).expect("delete user"));
    assert_eq!(garbage(&store), vec![(None, Garbage::Collection)]);

    // A user the index never saw leaves nothing.
    put(&store, "cid", "d.md", &["one"], &[unit([1.0, 0.0, 0.0])]);
    let cid = store.find_user("cid").expect("find").expect("cid");
    store.delete_user(cid).expect("delete");
    assert_eq!(garbage(&store), vec![(None, Garbage::Collection)]);
}

#[test]
fn copying_a_stored_version_yields_to_a_newer_one() {
    let (_dir, store) = open();
    let id = put(&store, "dee", "d.md", &["one", "two"], &vec![unit([1.0, 0.0, 0.0]); 2]);
    let user = store.find_user("dee").expect("find").expect("dee");
    let u = store.user(user);
    let g = u.stage_stored_vectors(id).expect("stage").expect("a generation");
    let vectors = u.stored_vectors(id).expect("read").expect("chunks");
    assert_eq!(vectors.iter().map(|c| c.chunk).collect::<Vec<_>>(), vec![0, 1]);
    assert!(u.adopt_vectors(id, g).expect("adopt"));
    assert_eq!(u.vector_generations(&[id]).expect("gens").get(&id), Some(&g));
    assert!(store.unindexed(10).expect("unindexed").is_empty());

    // A job's staging is never taken over by a copy; a copy is taken over by a job's.
    let job = u.stage_vectors(id, ContentHash::of(b"v2")).expect("job stages");
    assert_eq!(u.stage_stored_vectors(id).expect("copy"), None, "the job writes it");
    put_at(&u, id, "d.md", "v2", job).expect("job switches");
    put(&store, "dee", "d.md", &["plain"], &[unit([0.0, 0.0, 1.0])]);
    let copy = u.stage_stored_vectors(id).expect("copy").expect("a generation");
    let job = u.stage_vectors(id, ContentHash::of(b"v3")).expect("job takes over");
    assert!(!u.adopt_vectors(id, copy).expect("adopt"), "the copy lost");
    assert!(garbage(&store).contains(&(Some(id.0), Garbage::Generation(copy))));
    put_at(&u, id, "d.md", "v3", job).expect("the job's goes through");
}

#[test]
fn user_ids_are_never_reused() {
    let (dir, store) = open();
    let a = store.ensure_user("a").expect("a");
    let b = store.ensure_user("b").expect("b");
    assert_eq!(store.ensure_user("b").expect("b again"), b);
    store.delete_user(b).expect("delete b");
    let c = store.ensure_user("c").expect("c");
    assert!(c.0 > b.0 && b.0 > a.0, "{a:?} {b:?} {c:?}");
    drop(store);
    let store = ragmill_store::Store::open(dir.path()).expect("reopen");
    store.delete_user(c).expect("delete c");
    assert!(store.ensure_user("d").expect("d").0 > c.0, "not even after a restart");
}

#[test]
fn the_check_before_moving_to_the_embedded_index_counts_everything() {
    let (_dir, store) = open();
    put(&store, "eve", "e.md", &["one", "two"], &vec![unit([1.0, 0.0, 0.0]); 2]);
    put(&store, "fay", "f.md", &["three"], &[unit([0.0, 1.0, 0.0])]);
    assert_eq!(store.check_vectors().expect("check"), (2, 3));
}
