//! The model thread's waiting room: queries before batches.
//!
//! Requests reach the model thread over one channel; between passes the thread moves everything
//! that has arrived into [`Waiting`] and asks it for the next pass. Queries (someone is waiting
//! on a search) always go before batches (ingestion, which measures throughput, not latency), so
//! a query waits at most for the pass already running, never behind queued batches; every query
//! waiting goes in one pass, since a few more short texts cost a pass little.

use std::collections::VecDeque;

use ragmill_core::EmbedError;
use tokio::sync::oneshot;

use crate::encoder::Encode;

/// Which lane a request waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Latency first: a search query (`Embedder::embed_query`).
    Query,
    /// Throughput first: anything else (`Embedder::embed`).
    Batch,
}

/// Where a request's vectors go.
pub(crate) type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>;

/// Texts to embed and where their vectors go.
pub(crate) struct Request {
    pub lane: Lane,
    pub texts: Vec<String>,
    pub reply: Reply,
}

/// Requests received and not yet run, oldest first in each lane.
#[derive(Default)]
pub(crate) struct Waiting {
    queries: VecDeque<Request>,
    batches: VecDeque<Request>,
}

impl Waiting {
    /// Adds a request behind those of its lane.
    pub(crate) fn push(&mut self, request: Request) {
        match request.lane {
            Lane::Query => self.queries.push_back(request),
            Lane::Batch => self.batches.push_back(request),
        }
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queries.is_empty() && self.batches.is_empty()
    }

    /// The requests of the next pass: the waiting queries, oldest first, up to `max_texts`
    /// texts (at least one request); when none waits, the oldest batch. A request whose caller
    /// has gone away is dropped here unrun. Empty when nothing (alive) waits.
    pub(crate) fn next(&mut self, max_texts: usize) -> Vec<Request> {
        let mut pass: Vec<Request> = Vec::new();
        let mut texts = 0;
        while let Some(query) = self.queries.front() {
            if !pass.is_empty() && texts + query.texts.len() > max_texts {
                break;
            }
            let Some(query) = self.queries.pop_front() else { break };
            if !query.reply.is_closed() {
                texts += query.texts.len();
                pass.push(query);
            }
        }
        while pass.is_empty() {
            match self.batches.pop_front() {
                Some(batch) if !batch.reply.is_closed() => pass.push(batch),
                Some(_) => {} // the caller has gone away: skip the work
                None => break,
            }
        }
        pass
    }
}

impl Extend<Request> for Waiting {
    fn extend<I: IntoIterator<Item = Request>>(&mut self, requests: I) {
        requests.into_iter().for_each(|r| self.push(r));
    }
}

/// Runs one pass of `encoder` over the texts of `pass` and answers each request with its own
/// vectors. Should a pass of several requests fail, each is run again alone, so one text that
/// cannot be embedded fails its own request only, with its own error.
pub(crate) fn run(encoder: &mut dyn Encode, pass: Vec<Request>) {
    if let [_] = pass.as_slice() {
        for r in pass {
            let _ = r.reply.send(encoder.encode(&r.texts));
        }
        return;
    }
    let texts: Vec<String> = pass.iter().flat_map(|r| r.texts.iter().cloned()).collect();
    match encoder.encode(&texts) {
        Ok(vectors) if vectors.len() == texts.len() => {
            let mut vectors = vectors.into_iter();
            for r in pass {
                let _ = r.reply.send(Ok(vectors.by_ref().take(r.texts.len()).collect()));
            }
        }
        _ => {
            for r in pass {
                let _ = r.reply.send(encoder.encode(&r.texts));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer = oneshot::Receiver<Result<Vec<Vec<f32>>, EmbedError>>;

    fn request(lane: Lane, texts: &[&str]) -> (Request, Answer) {
        let (reply, rx) = oneshot::channel();
        (Request { lane, texts: texts.iter().map(|t| (*t).to_owned()).collect(), reply }, rx)
    }

    /// Pushes `requests` in order, then takes passes until none is left; each pass is the
    /// first text of each of its requests. Every caller stays, except those named in `gone`.
    fn check(requests: &[(Lane, &[&str])], gone: &[&str], max_texts: usize, want: &[&[&str]]) {
        let mut waiting = Waiting::default();
        let mut answers = Vec::new();
        for &(lane, texts) in requests {
            let (r, rx) = request(lane, texts);
            if !gone.contains(&texts[0]) {
                answers.push(rx);
            }
            waiting.push(r);
        }
        let mut passes = Vec::new();
        loop {
            let pass = waiting.next(max_texts);
            if pass.is_empty() {
                break;
            }
            passes.push(pass.iter().map(|r| r.texts[0].clone()).collect::<Vec<_>>());
        }
        assert!(waiting.is_empty());
        assert_eq!(passes, want);
    }

    use Lane::{Batch, Query};

    #[test]
    fn queries_go_before_batches_that_waited_longer() {
        check(
            &[(Batch, &["b1", "x"]), (Batch, &["b2"]), (Query, &["q1"]), (Batch, &["b3"])],
            &[],
            32,
            &[&["q1"], &["b1"], &["b2"], &["b3"]],
        );
    }

    #[test]
    fn waiting_queries_share_one_pass_up_to_the_text_limit() {
        let queries = [(Query, &["q1"][..]), (Query, &["q2"]), (Query, &["q3"])];
        check(
            &[(Batch, &["b1"]), queries[0], queries[1], queries[2]],
            &[],
            2,
            &[&["q1", "q2"], &["q3"], &["b1"]],
        );
        // A query of more texts than the limit still runs, alone.
        check(&[(Query, &["q1", "x", "y"]), (Query, &["q2"])], &[], 2, &[&["q1"], &["q2"]]);
    }

    #[test]
    fn requests_whose_caller_went_away_are_skipped() {
        check(
            &[(Batch, &["b1"]), (Batch, &["b2"]), (Query, &["q1"]), (Query, &["q2"])],
            &["b1", "q1"],
            32,
            &[&["q2"], &["b2"]],
        );
        check(&[(Batch, &["b1"]), (Query, &["q1"])], &["b1", "q1"], 32, &[]);
    }

    /// Vectors are `[text length]`; a text `"bad"` fails the whole call.
    struct Lengths(ragmill_core::ModelInfo);

    impl Encode for Lengths {
        fn info(&self) -> &ragmill_core::ModelInfo {
            &self.0
        }
        fn encode(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
            if texts.iter().any(|t| t == "bad") {
                return Err(EmbedError::Tokenizer("bad".into()));
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32]).collect())
        }
    }

    fn lengths() -> Lengths {
        Lengths(ragmill_core::ModelInfo {
            id: "len".into(),
            space: "len".into(),
            dimensions: 1,
            max_tokens: 8,
            preferred_batch: 4,
        })
    }

    #[test]
    fn a_shared_pass_answers_each_request_with_its_own_vectors() {
        let (a, a_rx) = request(Query, &["a", "bbb"]);
        let (b, b_rx) = request(Query, &["cc"]);
        run(&mut lengths(), vec![a, b]);
        assert_eq!(a_rx.blocking_recv().expect("answer").expect("vectors"), [[1.0], [3.0]]);
        assert_eq!(b_rx.blocking_recv().expect("answer").expect("vectors"), [[2.0]]);
    }

    #[test]
    fn a_failed_shared_pass_fails_only_the_request_at_fault() {
        let (a, a_rx) = request(Query, &["a"]);
        let (b, b_rx) = request(Query, &["bad"]);
        run(&mut lengths(), vec![a, b]);
        assert_eq!(a_rx.blocking_recv().expect("answer").expect("vectors"), [[1.0]]);
        let err = b_rx.blocking_recv().expect("answer").expect_err("fails");
        assert!(matches!(err, EmbedError::Tokenizer(_)), "{err}");
    }
}
