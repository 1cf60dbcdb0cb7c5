//! The INT8 kernel for CPUs without AVX-512 VNNI: plain Rust over `[out][k]` weights, which
//! the compiler turns into widening multiply-adds (`pmaddwd` on x86, `smlal` on ARM).

use rayon::prelude::*;

use super::{Columns, QuantRows};
use crate::ops::multiversion;

multiversion! {
    fn rows(a: &[u8], stride: usize, a_scale: &[f32], a_zero: &[i32], w: &[i8], cols: &Columns, y: &mut [f32], outputs: usize) {
        for (r, out) in y.chunks_exact_mut(outputs).enumerate() {
            let arow = &a[r * stride..(r + 1) * stride];
            for (c, o) in out.iter_mut().enumerate() {
                let wrow = &w[c * stride..(c + 1) * stride];
                let dot: i32 = arow.iter().zip(wrow).map(|(&u, &q)| i32::from(i16::from(u) * i16::from(q))).sum();
                let v = dot - a_zero[r] * cols.sum[c];
                *o = v as f32 * (a_scale[r] * cols.scale[c]) + cols.bias[c];
            }
        }
    }
}

pub(super) fn gemm(a: &QuantRows, w: &[i8], cols: &Columns, y: &mut [f32], outputs: usize) {
    const ROWS: usize = 8;
    let stride = a.stride;
    y.par_chunks_mut(ROWS * outputs).enumerate().for_each(|(i, yc)| {
        let r0 = i * ROWS;
        let n = yc.len() / outputs;
        rows(
            &a.data[r0 * stride..(r0 + n) * stride],
            stride,
            &a.scale[r0..r0 + n],
            &a.zero[r0..r0 + n],
            w,
            cols,
            yc,
            outputs,
        );
    });
}
