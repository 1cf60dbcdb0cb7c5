//! Multi-head self-attention over sequences packed back to back, without padding.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::ops::softmax_rows;
use crate::sgemm::{Strided, strided};

/// One sequence's rows in a packed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First row.
    pub start: usize,
    /// Rows (tokens).
    pub len: usize,
}

struct SharedOut(*mut f32);
// SAFETY: the pointer is only used to write regions that no two tasks share (see below).
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

/// Scaled dot-product attention, every (sequence, head) pair a task over every core.
///
/// `qkv` holds one row per token: the query, key and value projections side by side
/// (`3 * heads * head_dim` columns, head `h` at columns `h*head_dim..`). Writes each token's
/// context vector (`heads * head_dim` columns) to `ctx`. A token attends only to tokens of its
/// own span, so sequences of different lengths share a batch without padding.
///
/// # Panics
/// If a span reaches past the rows of `qkv` or `ctx`.
pub fn self_attention(qkv: &[f32], ctx: &mut [f32], spans: &[Span], heads: usize, head_dim: usize) {
    let hidden = heads * head_dim;
    let rows = spans.iter().map(|s| s.start + s.len).max().unwrap_or(0);
    assert!(qkv.len() >= rows * 3 * hidden && ctx.len() >= rows * hidden, "attention shapes");
    assert!(
        spans.windows(2).all(|w| w[0].start + w[0].len <= w[1].start),
        "spans must be sorted and disjoint"
    );
    let scale = 1.0 / (head_dim as f32).sqrt();
    let out = SharedOut(ctx.as_mut_ptr());
    let out = &out;
    let tasks: Vec<(Span, usize)> = spans
        .iter()
        .flat_map(|&s| (0..heads).map(move |h| (s, h)))
        .filter(|(s, _)| s.len > 0)
        .collect();
    tasks.par_iter().for_each(|&(span, h)| {
        SCORES.with_borrow_mut(|scores| {
            let l = span.len;
            if scores.len() < l * l {
                scores.resize(l * l, 0.0);
            }
            let scores = &mut scores[..l * l];
            let ld = 3 * hidden as isize;
            let q = &qkv[span.start * 3 * hidden + h * head_dim..];
            let k = &q[hidden..];
            let v = &q[2 * hidden..];
            // SAFETY: q/k/v reach rows span.start..span.start+l of `qkv`, columns inside this head
            // (checked above); `scores` has l*l elements. The destination is rows of this span and
            // columns of this head in `ctx`: no other task writes them, and `ctx` is borrowed
            // mutably for the whole call.
            unsafe {
                strided(
                    l,
                    l,
                    head_dim,
                    Strided { ptr: scores.as_mut_ptr(), row: l as isize, col: 1 },
                    false,
                    (q.as_ptr(), ld, 1),
                    (k.as_ptr(), 1, ld),
                    1.0,
                    Parallelism::None,
                );
            }
            softmax_rows(scores, l, scale);
            // SAFETY: as above.
            unsafe {
                strided(
                    l,
                    head_dim,
                    l,
                    Strided {
                        ptr: out.0.add(span.start * hidden + h * head_dim),
                        row: hidden as isize,
                        col: 1,
                    },
                    false,
                    (scores.as_ptr(), l as isize, 1),
                    (v.as_ptr(), ld, 1),
                    1.0,
                    Parallelism::None,
                );
            }
        })
    });
}

thread_local! {
    /// Each worker thread's attention-score scratch, kept between calls.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgemm::pseudo_random;

    fn reference(qkv: &[f32], span: Span, heads: usize, d: usize) -> Vec<f32> {
        let hidden = heads * d;
        let mut out = vec![0.0; span.len * hidden];
        for h in 0..heads {
            for i in 0..span.len {
                let q = &qkv[(span.start + i) * 3 * hidden + h * d..][..d];
                let scores: Vec<f32> = (0..span.len)
                    .map(|j| {
                        let k = &qkv[(span.start + j) * 3 * hidden + hidden + h * d..][..d];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (d as f32).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f32::MIN, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let z: f32 = e.iter().sum();
                for (j, w) in e.iter().enumerate() {
                    let v = &qkv[(span.start + j) * 3 * hidden + 2 * hidden + h * d..][..d];
                    for c in 0..d {
                        out[i * hidden + h * d + c] += w / z * v[c];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn packed_sequences_attend_only_within_themselves() {
        let (heads, d) = (3, 8);
        let hidden = heads * d;
        let spans =
            [Span { start: 0, len: 5 }, Span { start: 5, len: 1 }, Span { start: 6, len: 17 }];
        let rows = 23;
        let qkv = pseudo_random(rows * 3 * hidden, 7);
        let mut ctx = vec![0.0; rows * hidden];
        self_attention(&qkv, &mut ctx, &spans, heads, d);
        for s in spans {
            let want = reference(&qkv, s, heads, d);
            let got = &ctx[s.start * hidden..(s.start + s.len) * hidden];
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }
}
