//! Retrieval evaluation: BEIR-format datasets and the standard metrics (nDCG@10, recall@100, MRR@10).
//!
//! ragmill's retrieval quality is measured the way the literature measures it, so that its
//! figures can be compared with the published ones for the same model:
//!
//! - [`BeirDataset::load`] reads a dataset in the [BEIR](https://github.com/beir-cellar/beir)
//!   layout: `corpus.jsonl`, `queries.jsonl` and `qrels/{split}.tsv`.
//! - [`evaluate`] scores a *run* (for each query id, the retrieved documents with their scores)
//!   against the dataset's relevance judgements and returns [`Metrics`], macro-averaged over the
//!   dataset's queries.
//!
//! The metric definitions follow BEIR, which delegates to `pytrec_eval` (that is, `trec_eval`);
//! see [`evaluate`] for the exact definitions and the few places where a choice had to be made
//! (ties, duplicates, queries without results).
//!
//! This crate does no retrieval itself: the caller (the `ragmill eval` command, a test) embeds and
//! searches, then hands the ranked lists over.
//!
//! ```
//! use std::collections::HashMap;
//! use ragmill_eval::{evaluate, BeirDataset, CorpusDoc, Query};
//!
//! let dataset = BeirDataset {
//!     corpus: vec![
//!         CorpusDoc { id: "d1".into(), title: String::new(), text: "Tides follow the moon.".into() },
//!         CorpusDoc { id: "d2".into(), title: String::new(), text: "Sourdough needs flour.".into() },
//!     ],
//!     queries: vec![Query { id: "q1".into(), text: "what causes tides".into() }],
//!     qrels: HashMap::from([("q1".to_string(), HashMap::from([("d1".to_string(), 1)]))]),
//! };
//! // The retriever put the relevant document second.
//! let runs = HashMap::from([(
//!     "q1".to_string(),
//!     vec![("d2".to_string(), 0.9_f32), ("d1".to_string(), 0.7)],
//! )]);
//! let m = evaluate(&dataset, &runs);
//! assert_eq!(m.queries, 1);
//! assert_eq!(m.mrr_at_10, 0.5);
//! assert_eq!(m.recall_at_100, 1.0);
//! assert!((m.ndcg_at_10 - 1.0 / 3f64.log2()).abs() < 1e-12);
//! assert_eq!(
//!     serde_json::to_string(&m).unwrap(),
//!     format!(r#"{{"ndcg@10":{},"recall@100":1.0,"mrr@10":0.5,"queries":1,"documents":2}}"#, m.ndcg_at_10),
//! );
//! ```

mod dataset;
mod metrics;

pub use dataset::{BeirDataset, CorpusDoc, EvalError, Query};
pub use metrics::{Metrics, evaluate, rank};
