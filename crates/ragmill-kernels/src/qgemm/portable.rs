//! The INT8 kernel for CPUs without AVX-512 VNNI: plain Rust over `[out][k]` weights, which
//! the compiler turns into widening multiply-adds (`pmaddwd` on x86, `smlal` on ARM).

use super::{Columns, QuantRows};
use crate::ops::multiversion;

multiversion! {
    /// Rows `first..first + y.len() / outputs` of the product into `y`.
    fn rows(a: &QuantRows, first: usize, w: &[i8], cols: &Columns, y: &mut [f32], outputs: usize) {
        let stride = a.stride;
        for (i, out) in y.chunks_exact_mut(outputs).enumerate() {
            let r = first + i;
            let arow = &a.data[r * stride..(r + 1) * stride];
            for (c, o) in out.iter_mut().enumerate() {
                let wrow = &w[c * stride..(c + 1) * stride];
                let dot: i32 = arow
                    .iter()
                    .zip(wrow)
                    .map(|(&u, &q)| i32::from(i16::from(u) * i16::from(q)))
                    .sum();
                let v = dot - a.zero[r] * cols.sum[c];
                *o = v as f32 * (a.scale[r] * cols.scale[c]) + cols.bias[c];
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
