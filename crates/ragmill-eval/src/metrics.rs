//! The metrics: nDCG@10, recall@100 and MRR@10, as BEIR computes them.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::BeirDataset;

/// Retrieval quality of one run over one dataset, macro-averaged over the dataset's queries.
///
/// Serialised with the conventional names: `{"ndcg@10":…,"recall@100":…,"mrr@10":…,
/// "queries":…,"documents":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// Mean nDCG@10 (linear gain, log2 discount, ideal ranking from the judgements).
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    /// Mean recall@100: relevant documents in the top 100 / all relevant documents.
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    /// Mean reciprocal rank of the first relevant document, 0 if none is in the top 10.
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
    /// Number of queries averaged over (the dataset's queries).
    pub queries: usize,
    /// Number of documents in the corpus.
    pub documents: usize,
}

/// Orders one query's results the way `trec_eval` does: by score, highest first; ties broken by
/// document id in *descending* byte order (`trec_eval`'s `strcmp(docno2, docno1)`). A NaN
/// score ranks as −∞. A document listed twice keeps only its best-ranked entry.
pub fn rank(results: &[(String, f32)]) -> Vec<(&str, f32)> {
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    let mut sorted: Vec<(&str, f32)> = results.iter().map(|(d, s)| (d.as_str(), *s)).collect();
    sorted.sort_by(|a, b| {
        key(b.1).partial_cmp(&key(a.1)).unwrap_or(Ordering::Equal).then_with(|| b.0.cmp(a.0))
    });
    let mut seen = HashSet::new();
    sorted.retain(|(d, _)| seen.insert(*d));
    sorted
}

/// Scores `runs` (query id → retrieved documents with their scores, in any order) against the
/// dataset's judgements.
///
/// Definitions, as BEIR (`EvaluateRetrieval.evaluate`, which calls `pytrec_eval`, i.e.
/// `trec_eval` 9) computes them, for each query:
///
/// - the results are ordered by [`rank`] (score descending, ties by document id descending);
///   results whose document id equals the query id are dropped first, as BEIR does by default
///   (`ignore_identical_ids=True`; it matters for ArguAna and Quora);
/// - a document is *relevant* when its judgement is > 0; unjudged documents count as 0;
/// - **nDCG@10** (`trec_eval`'s `ndcg_cut_10`): DCG = Σ over ranks r = 1..10 of
///   rel(r) / log2(r + 1), with the linear gain rel (not 2^rel − 1); divided by the DCG of the
///   ideal ranking, i.e. the judgements > 0 sorted descending, cut at 10;
/// - **recall@100** (`recall_100`): relevant documents in the top 100 / all relevant documents;
/// - **MRR@10** (BEIR's `mrr@10`): 1 / rank of the first relevant document in the top 10, else 0.
///
/// Each metric is the plain mean over the dataset's queries. A query with no entry in `runs`
/// (or an empty one) scores 0 on every metric and still counts in the mean. (BEIR averages over
/// the queries `pytrec_eval` returns, which are those with at least one result; for a retriever
/// that returns results for every query, as ragmill's does, the two agree.) Runs for queries not
/// in the dataset are ignored. With no queries at all every mean is 0.
pub fn evaluate(dataset: &BeirDataset, runs: &HashMap<String, Vec<(String, f32)>>) -> Metrics {
    let mut sums = [0.0f64; 3];
    let empty = HashMap::new();
    for query in &dataset.queries {
        let judged = dataset.qrels.get(&query.id).unwrap_or(&empty);
        let results: Vec<(&str, f32)> = runs
            .get(&query.id)
            .map(|r| rank(r).into_iter().filter(|(d, _)| *d != query.id).collect())
            .unwrap_or_default();
        let ranked: Vec<i32> =
            results.iter().map(|(d, _)| judged.get(*d).copied().unwrap_or(0)).collect();
        sums[0] += ndcg_at(&ranked, judged, 10);
        sums[1] += recall_at(&ranked, judged, 100);
        sums[2] += mrr_at(&ranked, 10);
    }
    let n = dataset.queries.len();
    let mean = |s: f64| if n == 0 { 0.0 } else { s / n as f64 };
    Metrics {
        ndcg_at_10: mean(sums[0]),
        recall_at_100: mean(sums[1]),
        mrr_at_10: mean(sums[2]),
        queries: n,
        documents: dataset.corpus.len(),
    }
}

/// DCG of a ranked list of relevance grades, cut at `k`; grades ≤ 0 contribute nothing.
fn dcg(grades: impl Iterator<Item = i32>, k: usize) -> f64 {
    grades
        .take(k)
        .enumerate()
        .filter(|&(_, g)| g > 0)
        .map(|(i, g)| f64::from(g) / ((i + 2) as f64).log2())
        .sum()
}

fn ndcg_at(ranked: &[i32], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&g| g > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg = dcg(ideal.into_iter(), k);
    if idcg > 0.0 { dcg(ranked.iter().copied(), k) / idcg } else { 0.0 }
}

fn recall_at(ranked: &[i32], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranked.iter().take(k).filter(|&&g| g > 0).count();
    found as f64 / relevant as f64
}

fn mrr_at(ranked: &[i32], k: usize) -> f64 {
    ranked.iter().take(k).position(|&g| g > 0).map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CorpusDoc, Query};

    const EPS: f64 = 1e-12;

    fn doc(id: &str) -> CorpusDoc {
        CorpusDoc { id: id.into(), title: String::new(), text: format!("text of {id}") }
    }

    /// A dataset with the given corpus ids and, per query, its judgements.
    fn dataset(docs: &[&str], judgements: &[(&str, &[(&str, i32)])]) -> BeirDataset {
        BeirDataset {
            corpus: docs.iter().map(|d| doc(d)).collect(),
            queries: judgements
                .iter()
                .map(|(q, _)| Query { id: (*q).into(), text: format!("query {q}") })
                .collect(),
            qrels: judgements
                .iter()
                .map(|(q, j)| {
                    ((*q).to_string(), j.iter().map(|(d, r)| ((*d).to_string(), *r)).collect())
                })
                .collect(),
        }
    }

    fn run(pairs: &[(&str, f32)]) -> Vec<(String, f32)> {
        pairs.iter().map(|(d, s)| ((*d).to_string(), *s)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn graded_ranking_worked_example() {
        // Judgements: b = 2, c = 1 (a is unjudged, so 0). Ranking: a, b, c → grades [0, 2, 1].
        //   DCG  = 0/log2(2) + 2/log2(3) + 1/log2(4) = 2/1.5849625… + 0.5 = 1.7618595…
        //   IDCG = 2/log2(2) + 1/log2(3)             = 2 + 0.6309297… = 2.6309297…
        //   nDCG@10 = 1.7618595 / 2.6309297 = 0.6696718…
        //   recall@100 = 2 relevant found / 2 relevant = 1
        //   MRR@10 = 1/2 (first relevant, b, at rank 2)
        let ds = dataset(&["a", "b", "c"], &[("q", &[("b", 2), ("c", 1)])]);
        let runs = HashMap::from([("q".to_string(), run(&[("a", 0.9), ("b", 0.8), ("c", 0.7)]))]);
        let m = evaluate(&ds, &runs);
        let expected = (2.0 / 3f64.log2() + 0.5) / (2.0 + 1.0 / 3f64.log2());
        assert!(close(m.ndcg_at_10, expected), "{}", m.ndcg_at_10);
        assert!((m.ndcg_at_10 - 0.669_672).abs() < 1e-6, "{}", m.ndcg_at_10);
        assert!(close(m.recall_at_100, 1.0));
        assert!(close(m.mrr_at_10, 0.5));
        assert_eq!((m.queries, m.documents), (1, 3));
    }

    #[test]
    fn perfect_ranking_scores_one() {
        let ds = dataset(&["a", "b", "c"], &[("q", &[("b", 2), ("c", 1)])]);
        let runs = HashMap::from([("q".to_string(), run(&[("b", 3.0), ("c", 2.0), ("a", 1.0)]))]);
        let m = evaluate(&ds, &runs);
        assert!(close(m.ndcg_at_10, 1.0));
        assert!(close(m.recall_at_100, 1.0));
        assert!(close(m.mrr_at_10, 1.0));
    }

    #[test]
    fn gain_is_linear_not_exponential() {
        // Judgements x = 3, y = 1; ranking y, x → grades [1, 3].
        //   linear:      DCG = 1 + 3/log2(3) = 2.8927893…, IDCG = 3 + 1/log2(3) = 3.6309297…
        //                nDCG = 0.7967076…
        //   exponential (2^g − 1) would give (1 + 7/log2 3) / (7 + 1/log2 3) = 0.7098097… instead.
        let ds = dataset(&["x", "y"], &[("q", &[("x", 3), ("y", 1)])]);
        let runs = HashMap::from([("q".to_string(), run(&[("y", 0.9), ("x", 0.1)]))]);
        let m = evaluate(&ds, &runs);
        let l3 = 3f64.log2();
        assert!(close(m.ndcg_at_10, (1.0 + 3.0 / l3) / (3.0 + 1.0 / l3)));
        assert!((m.ndcg_at_10 - 0.796_708).abs() < 1e-6, "{}", m.ndcg_at_10);
    }

    #[test]
    fn cutoffs_at_10_and_100() {
        // 150 distractors d000..d149 scored above the two relevant documents; relevant r1 is
        // placed at rank 11 and r2 at rank 101.
        //   nDCG@10 = 0 and MRR@10 = 0 (nothing relevant in the top 10);
        //   recall@100 = 1/2 (r1 at rank 11 is inside the top 100, r2 at 101 is not).
        let mut docs: Vec<String> = (0..150).map(|i| format!("d{i:03}")).collect();
        docs.extend(["r1".to_string(), "r2".to_string()]);
        let doc_refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let ds = dataset(&doc_refs, &[("q", &[("r1", 1), ("r2", 1)])]);
        let mut results: Vec<(String, f32)> = Vec::new();
        for i in 0..150 {
            // Rank (1-based) of the i-th distractor is i+1, except that r1 takes rank 11 and r2
            // rank 101: give every entry a distinct, strictly decreasing score.
            let rank = if i < 10 {
                i + 1
            } else if i < 99 {
                i + 2
            } else {
                i + 3
            };
            results.push((format!("d{i:03}"), 1000.0 - rank as f32));
        }
        results.push(("r1".into(), 1000.0 - 11.0));
        results.push(("r2".into(), 1000.0 - 101.0));
        let ranked = rank(&results);
        assert_eq!(ranked[10].0, "r1");
        assert_eq!(ranked[100].0, "r2");
        let m = evaluate(&ds, &HashMap::from([("q".to_string(), results)]));
        assert!(close(m.ndcg_at_10, 0.0));
        assert!(close(m.mrr_at_10, 0.0));
        assert!(close(m.recall_at_100, 0.5));
    }

    #[test]
    fn ideal_is_cut_at_10() {
        // 12 documents all judged 1, all retrieved: DCG@10 = IDCG@10, so nDCG = 1 even though 2
        // relevant documents sit below rank 10 (the ideal list is cut at 10 too).
        let docs: Vec<String> = (0..12).map(|i| format!("d{i:02}")).collect();
        let doc_refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let judged: Vec<(&str, i32)> = doc_refs.iter().map(|d| (*d, 1)).collect();
        let ds = dataset(&doc_refs, &[("q", &judged)]);
        let results: Vec<(String, f32)> = docs.iter().map(|d| (d.clone(), 1.0)).collect();
        let m = evaluate(&ds, &HashMap::from([("q".to_string(), results)]));
        assert!(close(m.ndcg_at_10, 1.0));
        assert!(close(m.recall_at_100, 1.0));
    }

    #[test]
    fn ties_break_by_doc_id_descending() {
        // All three score 0.5: trec_eval order is c, b, a. Only "a" is relevant → rank 3.
        //   MRR@10 = 1/3; nDCG@10 = (1/log2 4) / 1 = 0.5.
        let ds = dataset(&["a", "b", "c"], &[("q", &[("a", 1)])]);
        let results = run(&[("a", 0.5), ("b", 0.5), ("c", 0.5)]);
        let order: Vec<&str> = rank(&results).into_iter().map(|(d, _)| d).collect();
        assert_eq!(order, ["c", "b", "a"]);
        let m = evaluate(&ds, &HashMap::from([("q".to_string(), results)]));
        assert!(close(m.mrr_at_10, 1.0 / 3.0));
        assert!(close(m.ndcg_at_10, 0.5));
    }

    #[test]
    fn input_order_does_not_matter() {
        let ds = dataset(&["a", "b", "c"], &[("q", &[("b", 2), ("c", 1)])]);
        let a = evaluate(
            &ds,
            &HashMap::from([("q".to_string(), run(&[("c", 0.7), ("a", 0.9), ("b", 0.8)]))]),
        );
        let b = evaluate(
            &ds,
            &HashMap::from([("q".to_string(), run(&[("a", 0.9), ("b", 0.8), ("c", 0.7)]))]),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn nan_ranks_last_and_duplicates_keep_best() {
        let results = run(&[("a", f32::NAN), ("b", 0.1), ("b", 0.9), ("c", -1.0)]);
        let order: Vec<(&str, f32)> = rank(&results);
        assert_eq!(order.len(), 3);
        assert_eq!(order[0], ("b", 0.9));
        assert_eq!(order[1], ("c", -1.0));
        assert_eq!(order[2].0, "a");
    }

    #[test]
    fn missing_or_empty_results_score_zero_and_count_in_the_mean() {
        // q1 perfect (1, 1, 1); q2 absent from runs (0, 0, 0); q3 empty list (0, 0, 0).
        //   means = 1/3 each.
        let ds =
            dataset(&["a", "b"], &[("q1", &[("a", 1)]), ("q2", &[("b", 1)]), ("q3", &[("a", 2)])]);
        let runs = HashMap::from([
            ("q1".to_string(), run(&[("a", 1.0)])),
            ("q3".to_string(), Vec::new()),
            ("not-a-query".to_string(), run(&[("b", 1.0)])),
        ]);
        let m = evaluate(&ds, &runs);
        assert_eq!(m.queries, 3);
        assert!(close(m.ndcg_at_10, 1.0 / 3.0));
        assert!(close(m.recall_at_100, 1.0 / 3.0));
        assert!(close(m.mrr_at_10, 1.0 / 3.0));
    }

    #[test]
    fn macro_average_over_queries() {
        // q1: relevant a at rank 1 → MRR 1, nDCG 1, recall 1.
        // q2: relevant b at rank 2 of [a, b] and relevant c not retrieved →
        //   MRR 1/2; recall 1/2; nDCG = (1/log2 3) / (1 + 1/log2 3) = 0.6309298/1.6309298 = 0.386853.
        // Means: MRR 0.75, recall 0.75, nDCG (1 + 0.386853)/2 = 0.693426.
        let ds = dataset(&["a", "b", "c"], &[("q1", &[("a", 1)]), ("q2", &[("b", 1), ("c", 1)])]);
        let runs = HashMap::from([
            ("q1".to_string(), run(&[("a", 0.9)])),
            ("q2".to_string(), run(&[("a", 0.9), ("b", 0.8)])),
        ]);
        let m = evaluate(&ds, &runs);
        let inv = 1.0 / 3f64.log2();
        assert!(close(m.mrr_at_10, 0.75));
        assert!(close(m.recall_at_100, 0.75));
        assert!(close(m.ndcg_at_10, (1.0 + inv / (1.0 + inv)) / 2.0));
        assert!((m.ndcg_at_10 - 0.693_426).abs() < 1e-6, "{}", m.ndcg_at_10);
    }

    #[test]
    fn zero_and_negative_judgements_are_not_relevant() {
        // a judged 0, b judged −1, c judged 1. Ranking a, b, c: first relevant at rank 3.
        //   MRR 1/3; recall 1/1; nDCG = (1/log2 4) / (1/log2 2) = 0.5.
        let ds = dataset(&["a", "b", "c"], &[("q", &[("a", 0), ("b", -1), ("c", 1)])]);
        let runs = HashMap::from([("q".to_string(), run(&[("a", 0.9), ("b", 0.8), ("c", 0.7)]))]);
        let m = evaluate(&ds, &runs);
        assert!(close(m.mrr_at_10, 1.0 / 3.0));
        assert!(close(m.recall_at_100, 1.0));
        assert!(close(m.ndcg_at_10, 0.5));
    }

    #[test]
    fn results_identical_to_the_query_id_are_ignored() {
        // As BEIR's ignore_identical_ids: "q" retrieving itself first does not push "a" down.
        let ds = dataset(&["q", "a"], &[("q", &[("a", 1)])]);
        let runs = HashMap::from([("q".to_string(), run(&[("q", 1.0), ("a", 0.5)]))]);
        let m = evaluate(&ds, &runs);
        assert!(close(m.mrr_at_10, 1.0));
        assert!(close(m.ndcg_at_10, 1.0));
    }

    #[test]
    fn no_queries_gives_zeros_not_nan() {
        let ds = dataset(&["a"], &[]);
        let m = evaluate(&ds, &HashMap::new());
        assert_eq!(
            m,
            Metrics {
                ndcg_at_10: 0.0,
                recall_at_100: 0.0,
                mrr_at_10: 0.0,
                queries: 0,
                documents: 1
            }
        );
    }

    #[test]
    fn serialises_with_conventional_names() {
        let m = Metrics {
            ndcg_at_10: 0.5,
            recall_at_100: 0.25,
            mrr_at_10: 1.0,
            queries: 3,
            documents: 7,
        };
        let v = serde_json::to_value(m).expect("serialisable");
        assert_eq!(
            v,
            serde_json::json!({"ndcg@10": 0.5, "recall@100": 0.25, "mrr@10": 1.0, "queries": 3, "documents": 7})
        );
    }
}
