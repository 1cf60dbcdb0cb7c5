//! What goes over the wire: record ids and metadata, request bodies, and the checks every
//! answer passes before anything in it is believed.

use std::collections::{HashMap, HashSet};
use std::fmt;

use base64::Engine as _;
use ragmill_core::{DocumentId, IndexedVersion, VectorHit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One chunk's record: its id is `"{document}:{generation}:{chunk}"` and its metadata holds the
/// same three numbers, so writing a generation again overwrites it, and an answer whose id and
/// metadata disagree is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RecordKey {
    pub document: i64,
    pub generation: u64,
    pub chunk: u32,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.document, self.generation, self.chunk)
    }
}

impl RecordKey {
    /// Parses an id written by [`Display`](fmt::Display); `None` for anything else.
    pub(crate) fn parse(id: &str) -> Option<RecordKey> {
        let mut parts = id.split(':');
        let key = RecordKey {
            document: parts.next()?.parse().ok()?,
            generation: parts.next()?.parse().ok()?,
            chunk: parts.next()?.parse().ok()?,
        };
        // Exactly three parts, each in its canonical form ("+1" and "01" parse, but are not ours).
        (parts.next().is_none() && key.to_string() == id).then_some(key)
    }

    /// The record's metadata.
    pub(crate) fn metadata(&self) -> Metadata {
        Metadata { document: self.document, generation: self.generation, chunk: self.chunk }
    }

    /// The key a record's metadata names: integer `document`, `generation` and `chunk`.
    fn from_metadata(m: &Map<String, Value>) -> Result<RecordKey, String> {
        let field = |name: &str| {
            m.get(name)
                .ok_or_else(|| format!("metadata without {name:?}: {}", Value::from(m.clone())))
        };
        let wrong = |name: &str| format!("metadata {name:?} is not a fitting integer: {m:?}");
        Ok(RecordKey {
            document: field("document")?.as_i64().ok_or_else(|| wrong("document"))?,
            generation: field("generation")?.as_u64().ok_or_else(|| wrong("generation"))?,
            chunk: field("chunk")?
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| wrong("chunk"))?,
        })
    }
}

/// A record's metadata as written.
#[derive(Debug, Serialize)]
pub(crate) struct Metadata {
    document: i64,
    generation: u64,
    chunk: u32,
}

/// Vectors for an upsert: JSON floats, or (when the server supports it, a quarter of the
/// size to parse) base64 of their little-endian `f32` bytes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Embeddings<'a> {
    Floats(Vec<&'a [f32]>),
    Base64(Vec<String>),
}

impl<'a> Embeddings<'a> {
    pub(crate) fn new(vectors: Vec<&'a [f32]>, base64: bool) -> Self {
        if !base64 {
            return Embeddings::Floats(vectors);
        }
        let encode = |v: &[f32]| {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        Embeddings::Base64(vectors.into_iter().map(encode).collect())
    }
}

/// `POST …/collections/{id}/upsert`.
#[derive(Debug, Serialize)]
pub(crate) struct Upsert<'a> {
    pub ids: Vec<String>,
    pub embeddings: Embeddings<'a>,
    pub metadatas: Vec<Metadata>,
}

/// `POST …/collections/{id}/query`, for one query vector.
#[derive(Debug, Serialize)]
pub(crate) struct Query<'a> {
    pub query_embeddings: [&'a [f32]; 1],
    pub n_results: usize,
    pub include: [&'static str; 2],
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
}

/// `POST …/collections/{id}/get`, one page of every record's metadata.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    pub include: [&'static str; 1],
    pub limit: usize,
    pub offset: usize,
}

/// A collection as Chroma describes it (what of it ragmill reads).
#[derive(Debug, Deserialize)]
pub(crate) struct CollectionInfo {
    pub id: String,
    #[serde(default)]
    pub dimension: Option<usize>,
}

/// A record's metadata as answered: `null`, or a JSON object.
type AnsweredMetadata = Option<Map<String, Value>>;

/// The answer to a [`Query`]: one row (one query) of parallel lists.
#[derive(Debug, Deserialize)]
pub(crate) struct QueryAnswer {
    ids: Vec<Vec<String>>,
    #[serde(default)]
    distances: Option<Vec<Vec<Option<f64>>>>,
    #[serde(default)]
    metadatas: Option<Vec<Vec<AnsweredMetadata>>>,
}

/// The answer to a [`Page`]: parallel lists.
#[derive(Debug, Deserialize)]
pub(crate) struct GetAnswer {
    ids: Vec<String>,
    #[serde(default)]
    metadatas: Option<Vec<AnsweredMetadata>>,
}

/// The one row of a list that must hold exactly one.
fn only_row<T>(rows: Option<Vec<T>>, name: &str) -> Result<T, String> {
    let rows = rows.ok_or_else(|| format!("no {name}"))?;
    let count = rows.len();
    let mut rows = rows.into_iter();
    match (rows.next(), rows.next()) {
        (Some(row), None) => Ok(row),
        _ => Err(format!("{count} rows of {name} for one query")),
    }
}

/// The keys of records `ids` whose `metadatas` are given: as many of each, each metadata
/// naming the record its id names, no id twice.
fn keys(
    ids: Vec<String>,
    metadatas: Option<Vec<AnsweredMetadata>>,
) -> Result<Vec<RecordKey>, String> {
    let metadatas = metadatas.ok_or("no metadatas")?;
    if metadatas.len() != ids.len() {
        return Err(format!("{} ids but {} metadatas", ids.len(), metadatas.len()));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    ids.into_iter()
        .zip(metadatas)
        .map(|(id, metadata)| {
            // Chroma 1.5 answers a record being deleted while the query runs with its id and
            // null metadata (seen under concurrent replacement). Our ids say all the metadata
            // does, so such a record stands on its id; the store's generation check decides
            // whether it counts. A null beside an id that is not ours is garbage.
            let key = match metadata {
                Some(metadata) => {
                    let key = RecordKey::from_metadata(&metadata)?;
                    if RecordKey::parse(&id) != Some(key) {
                        return Err(format!(
                            "record id {id:?} disagrees with its metadata ({key})"
                        ));
                    }
                    key
                }
                None => RecordKey::parse(&id)
                    .ok_or_else(|| format!("record {id:?} without metadata"))?,
            };
            if !seen.insert(key) {
                return Err(format!("record {id:?} twice"));
            }
            Ok(key)
        })
        .collect()
}

/// The hits of a query for `k` (optionally only from `documents`), best first, once the
/// answer passes every check; else what is wrong with it.
pub(crate) fn hits(
    answer: QueryAnswer,
    k: usize,
    documents: Option<&HashSet<i64>>,
) -> Result<Vec<VectorHit>, String> {
    let ids = only_row(Some(answer.ids), "ids")?;
    if ids.len() > k {
        return Err(format!("{} hits for k = {k}", ids.len()));
    }
    let distances = only_row(answer.distances, "distances")?;
    let metadatas = only_row(answer.metadatas, "metadatas")?;
    if distances.len() != ids.len() {
        return Err(format!("{} ids but {} distances", ids.len(), distances.len()));
    }
    let keys = keys(ids, Some(metadatas))?;
    let mut hits = Vec::with_capacity(keys.len());
    for (key, distance) in keys.into_iter().zip(distances) {
        let distance = distance.filter(|d| d.is_finite());
        let distance = distance.ok_or_else(|| format!("record {key} with no finite distance"))?;
        if documents.is_some_and(|d| !d.contains(&key.document)) {
            return Err(format!("record {key} outside the documents asked for"));
        }
        hits.push(VectorHit {
            document: DocumentId(key.document),
            chunk: key.chunk,
            // Cosine distance is 1 - cosine similarity.
            score: (1.0 - distance) as f32,
            generation: Some(key.generation),
        });
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

/// The record keys of one page of at most `limit`, once the answer passes every check.
pub(crate) fn page(answer: GetAnswer, limit: usize) -> Result<Vec<RecordKey>, String> {
    if answer.ids.len() > limit {
        return Err(format!("{} records for a page of {limit}", answer.ids.len()));
    }
    keys(answer.ids, answer.metadatas)
}

/// Chunk counts per (document, generation), sorted. A record listed twice (pages read while
/// the collection changes may overlap) counts once.
pub(crate) fn tally(keys: impl IntoIterator<Item = RecordKey>) -> Vec<IndexedVersion> {
    let mut counts: HashMap<(i64, u64), u32> = HashMap::new();
    for key in keys.into_iter().collect::<HashSet<_>>() {
        *counts.entry((key.document, key.generation)).or_default() += 1;
    }
    let mut out: Vec<_> = counts.into_iter().collect();
    out.sort_unstable();
    out.into_iter()
        .map(|((d, generation), chunks)| IndexedVersion {
            document: DocumentId(d),
            generation,
            chunks,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(body: &str) -> Result<Vec<VectorHit>, String> {
        let answer: QueryAnswer = serde_json::from_str(body).expect("parses");
        hits(answer, 5, Some(&HashSet::from([1, 2])))
    }

    #[test]
    fn ids_round_trip_and_only_ours_parse() {
        let key = RecordKey { document: -3, generation: 7, chunk: 12 };
        assert_eq!(key.to_string(), "-3:7:12");
        assert_eq!(RecordKey::parse("-3:7:12"), Some(key));
        for bad in ["", "1:2", "1:2:3:4", "a:2:3", "1:-2:3", "1:2:4294967296", "01:2:3", "+1:2:3"] {
            assert_eq!(RecordKey::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_good_answer_becomes_hits_best_first() {
        let hits = query(
            r#"{"ids":[["2:5:0","1:4:3"]],"distances":[[0.5,0.25]],"include":["distances","metadatas"],
               "metadatas":[[{"document":2,"generation":5,"chunk":0},{"chunk":3,"document":1,"generation":4}]]}"#,
        )
        .expect("valid");
        let got: Vec<_> =
            hits.iter().map(|h| (h.document.0, h.chunk, h.score, h.generation)).collect();
        assert_eq!(got, vec![(1, 3, 0.75, Some(4)), (2, 0, 0.5, Some(5))]);
        assert_eq!(query(r#"{"ids":[[]],"distances":[[]],"metadatas":[[]]}"#), Ok(vec![]));
        // A record being deleted meanwhile comes with null metadata: its id says the same.
        let hits = query(r#"{"ids":[["2:5:1"]],"distances":[[0.5]],"metadatas":[[null]]}"#)
            .expect("valid");
        assert_eq!((hits[0].document.0, hits[0].chunk, hits[0].generation), (2, 1, Some(5)));
    }

    #[test]
    fn every_kind_of_bad_answer_is_refused() {
        let m =
            |d: i64, g: u64, c: u32| format!(r#"{{"document":{d},"generation":{g},"chunk":{c}}}"#);
        let cases = [
            (format!(r#"{{"ids":[["1:1:0"]],"metadatas":[[{}]]}}"#, m(1, 1, 0)), "no distances"),
            (r#"{"ids":[["1:1:0"]],"distances":[[0.1]]}"#.to_owned(), "no metadatas"),
            (format!(r#"{{"ids":[["1:1:0"],[]],"distances":[[0.1]],"metadatas":[[{}]]}}"#, m(1, 1, 0)), "2 rows"),
            (format!(r#"{{"ids":[["1:1:0","1:1:1"]],"distances":[[0.1]],"metadatas":[[{},{}]]}}"#, m(1, 1, 0), m(1, 1, 1)), "2 ids but 1 distances"),
            (format!(r#"{{"ids":[["1:1:0"]],"distances":[[0.1]],"metadatas":[[{},{}]]}}"#, m(1, 1, 0), m(1, 1, 1)), "1 ids but 2 metadatas"),
            (format!(r#"{{"ids":[["1:1:0"]],"distances":[[0.1]],"metadatas":[[{}]]}}"#, m(1, 2, 0)), "disagrees"),
            (format!(r#"{{"ids":[["1:1:0"]],"distances":[[null]],"metadatas":[[{}]]}}"#, m(1, 1, 0)), "no finite distance"),
            (format!(r#"{{"ids":[["3:1:0"]],"distances":[[0.1]],"metadatas":[[{}]]}}"#, m(3, 1, 0)), "outside the documents"),
            (format!(r#"{{"ids":[["1:1:0","1:1:0"]],"distances":[[0.1,0.1]],"metadatas":[[{},{}]]}}"#, m(1, 1, 0), m(1, 1, 0)), "twice"),
            (r#"{"ids":[["1:1:0"]],"distances":[[0.1]],"metadatas":[[{"document":1,"generation":1,"chunk":"0"}]]}"#.into(), "not a fitting integer"),
            (r#"{"ids":[["1:1:0"]],"distances":[[0.1]],"metadatas":[[{"document":1,"chunk":0}]]}"#.into(), "without \"generation\""),
            (r#"{"ids":[["x"]],"distances":[[0.1]],"metadatas":[[null]]}"#.into(), "without metadata"),
        ];
        for (body, why) in cases {
            let err = query(&body).expect_err(&body);
            assert!(err.contains(why), "{body}: {err}");
        }
        let six = (0..6).map(|c| format!("\"1:1:{c}\"")).collect::<Vec<_>>().join(",");
        let too_many: QueryAnswer =
            serde_json::from_str(&format!(r#"{{"ids":[[{six}]]}}"#)).expect("parses");
        assert!(hits(too_many, 5, None).expect_err("6 > 5").contains("6 hits for k = 5"));
    }

    #[test]
    fn pages_are_checked_and_tallied() {
        let answer: GetAnswer = serde_json::from_str(
            r#"{"ids":["1:2:0","1:2:1","1:3:0"],"metadatas":[{"document":1,"generation":2,"chunk":0},
               {"document":1,"generation":2,"chunk":1},{"document":1,"generation":3,"chunk":0}]}"#,
        )
        .expect("parses");
        let mut keys = page(answer, 3).expect("valid");
        keys.push(keys[0]);
        let v = |generation, chunks| IndexedVersion { document: DocumentId(1), generation, chunks };
        assert_eq!(tally(keys), vec![v(2, 2), v(3, 1)]);
        let short: GetAnswer = serde_json::from_str(r#"{"ids":["1:2:0"]}"#).expect("parses");
        assert!(page(short, 3).is_err());
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let v = [1.0f32, -0.5];
        let Embeddings::Base64(encoded) = Embeddings::new(vec![&v], true) else { panic!("base64") };
        assert_eq!(encoded, vec!["AACAPwAAAL8=".to_owned()]);
    }
}
