//! The INT8 kernel for CPUs without AVX-512 VNNI: plain Rust over `[out][k]` weights, which
//! the compiler turns into widening multiply-adds (`pmaddwd` on x86, `smlal` on ARM).

use super::{BLOCK, Columns, QuantRows};
use crate::ops::multiversion;

multiversion! {
    /// Rows `first..first + y.len() / outputs` of the product into `y`.
    fn rows(a: &QuantRows, first: usize, w: &[i8], cols: &Columns, y: &mut [f32], outputs: usize) {
        let stride = a.stride;
        let nb = stride / BLOCK;
        for (i, out) in y.chunks_exact_mut(outputs).enumerate() {
            let r = first + i;
            let arow = &a.data[r * stride..(r + 1) * stride];
            for (c, o) in out.iter_mut().enumerate() {
                let wrow = &w[c * stride..(c + 1) * stride];
                let mut acc = cols.bias[c];
                for (b, (ab, wb)) in arow.chunks_exact(BLOCK).zip(wrow.chunks_exact(BLOCK)).enumerate() {
                    let dot: i32 = ab
                        .iter()
                        .zip(wb)
                        .map(|(&u, &q)| i32::from(i16::from(u) * i16::from(q)))
                        .sum();
                    let v = dot as f32 - a.zero[r * nb + b] * cols.sum[b * outputs + c];
                    acc += v * (a.scale[r * nb + b] * cols.scale[b * outputs + c]);
                }
                *o = acc;
            }
        }
    }
}

/// Rows `first..first + n` of the product into `y` (`n` rows of `outputs`).
pub(super) fn block(
    a: &QuantRows,
    first: usize,
    n: usize,
    w: &[i8],
    cols: &Columns,
    y: &mut [f32],
    outputs: usize,
) {
    rows(a, first, w, cols, &mut y[..n * outputs], outputs);
}
