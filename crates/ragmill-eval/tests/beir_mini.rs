//! The hand-written test set `crates/ragmill/tests/data/beir-mini` loads, is consistent, and
//! scores as expected under simple runs.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use ragmill_eval::{BeirDataset, evaluate};

fn mini() -> BeirDataset {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ragmill/tests/data/beir-mini");
    BeirDataset::load(&dir, "test").expect("beir-mini loads")
}

#[test]
fn beir_mini_is_consistent() {
    let ds = mini();
    assert_eq!(ds.corpus.len(), 40);
    assert_eq!(ds.queries.len(), 17);
    let ids: HashSet<&str> = ds.corpus.iter().map(|d| d.id.as_str()).collect();
    for doc in &ds.corpus {
        assert!(!doc.title.is_empty() && !doc.text.is_empty(), "{}", doc.id);
    }
    for q in &ds.queries {
        let judged = &ds.qrels[&q.id];
        assert!((1..=3).contains(&judged.len()), "{}: {} judgements", q.id, judged.len());
        assert!(judged.values().any(|&g| g == 2), "{} has no grade-2 answer", q.id);
        for (d, g) in judged {
            assert!(ids.contains(d.as_str()), "{} judges unknown document {d}", q.id);
            assert!((1..=2).contains(g), "{} → {d}: grade {g}", q.id);
        }
    }
}

/// A run that returns exactly the judged documents by grade scores 1 on every metric; one that
/// returns them in reverse grade order loses only on nDCG.
#[test]
fn beir_mini_oracle_runs() {
    let ds = mini();
    let oracle: HashMap<String, Vec<(String, f32)>> = ds
        .qrels
        .iter()
        .map(|(q, judged)| {
            (q.clone(), judged.iter().map(|(d, g)| (d.clone(), *g as f32)).collect())
        })
        .collect();
    let m = evaluate(&ds, &oracle);
    assert_eq!((m.ndcg_at_10, m.recall_at_100, m.mrr_at_10), (1.0, 1.0, 1.0));
    assert_eq!((m.queries, m.documents), (17, 40));

    let reversed: HashMap<String, Vec<(String, f32)>> = oracle
        .iter()
        .map(|(q, run)| (q.clone(), run.iter().map(|(d, s)| (d.clone(), -s)).collect()))
        .collect();
    let r = evaluate(&ds, &reversed);
    assert_eq!((r.recall_at_100, r.mrr_at_10), (1.0, 1.0));
    // 5 queries (q02, q05, q10, q14, q16) have a grade-1 document, now ranked first: each scores
    // (1 + 2/log2 3) / (2 + 1/log2 3) = 0.8597…; the other 12 still score 1.
    let l3 = 3f64.log2();
    let expected = (12.0 + 5.0 * (1.0 + 2.0 / l3) / (2.0 + 1.0 / l3)) / 17.0;
    assert!((r.ndcg_at_10 - expected).abs() < 1e-12, "{} vs {expected}", r.ndcg_at_10);
}
