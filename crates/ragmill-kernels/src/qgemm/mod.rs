//! INT8 dense layers: weights quantised at load, activations at run time, both in blocks of
//! [`BLOCK`] inputs, products in `u8 x i8 -> i32`.
//!
//! Weights are symmetric per output channel and input block `b`:
//! `w ≈ scale[b][c] * q[c][k]`, `q` in -127..=127. Activations are asymmetric per row (token)
//! and block: `x ≈ a_scale[r][b] * (u[r][k] - zero[r][b])`, `u` in 0..=255, so each block's
//! range uses all 256 levels and one outlier channel (BERT has a few, ten times the rest)
//! costs precision only in its own block. Then
//! `y[r][c] = bias[c] + Σ_b a_scale[r][b] * scale[b][c] * (Σ_{k in b} u·q - zero[r][b] * Σ_{k in b} q[c][k])`,
//! with the block column sums precomputed. Blocks of 64 instead of whole rows bring INT8
//! vectors from cosine 0.9991 to 0.9997 against FP32 (all-MiniLM-L6-v2) for about a fifth of
//! the speed. Where the CPU has AVX-512 VNNI, `vpdpbusd` does sixty-four `u8 x i8`
//! multiply-adds per instruction ([`vnni`]); elsewhere a portable kernel computes the same
//! integers ([`portable`]), so results agree across machines up to float rounding.

mod portable;
#[cfg(target_arch = "x86_64")]
mod vnni;

use rayon::prelude::*;

use crate::cpu::Isa;
use crate::ops::{lanes_max, lanes_min, multiversion};
pub use crate::rows::RowOp;
use crate::rows::task_rows;

/// Inputs per quantisation block.
pub const BLOCK: usize = 64;

/// Activations quantised to `u8`, one scale and zero point per row and block of inputs.
#[derive(Debug, Default)]
pub struct QuantRows {
    /// `rows x stride` bytes; columns past the input width are zero.
    pub data: Vec<u8>,
    /// Bytes per row (the input width rounded up to a multiple of [`BLOCK`]).
    pub stride: usize,
    /// Scale per row and block (`rows x stride / BLOCK`).
    pub scale: Vec<f32>,
    /// Zero point per row and block, as a float (an integer in 0..=255).
    pub zero: Vec<f32>,
}

multiversion! {
    fn quantize_chunk(x: &[f32], width: usize, data: &mut [u8], stride: usize, scale: &mut [f32], zero: &mut [f32]) {
        let blocks = stride / BLOCK;
        for (r, row) in x.chunks_exact(width).enumerate() {
            for (b, part) in row.chunks(BLOCK).enumerate() {
                // The range always includes 0, so the zero point is a level in 0..=255.
                let lo = lanes_min(part).min(0.0);
                let hi = lanes_max(part).max(0.0);
                let s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
                let z = (-lo / s).round().clamp(0.0, 255.0);
                scale[r * blocks + b] = s;
                zero[r * blocks + b] = z;
                let inv = 1.0 / s;
                let out = &mut data[r * stride + b * BLOCK..][..part.len()];
                for (q, &v) in out.iter_mut().zip(part) {
                    // Clamp by comparisons (NaN becomes 0), then round to nearest by adding
                    // 1.5 * 2^23 and read the integer from the low mantissa bits: this
                    // vectorises, where the saturating `as` casts do not.
                    let v = v * inv + z;
                    let v = if v > 0.0 { v } else { 0.0 };
                    let v = if v < 255.0 { v } else { 255.0 };
                    *q = (v + 12_582_912.0).to_bits() as u8;
                }
            }
        }
    }
}

impl QuantRows {
    /// Sizes the buffer for `rows` rows of `width` values.
    fn prepare(&mut self, rows: usize, width: usize) {
        // Grown, never cleared: the padding columns past `width` meet zero weights, so what
        // they hold does not matter, and zeroing megabytes per layer did.
        self.stride = width.next_multiple_of(BLOCK);
        let blocks = self.stride / BLOCK;
        if self.data.len() < rows * self.stride {
            self.data.resize(rows * self.stride, 0);
        }
        self.scale.resize(rows * blocks, 0.0);
        self.zero.resize(rows * blocks, 0.0);
    }

    /// Blocks of inputs per row.
    pub fn blocks_per_row(&self) -> usize {
        self.stride / BLOCK
    }

    /// Quantises `rows` rows of `width` floats, reusing this buffer's memory.
    pub fn quantize(&mut self, x: &[f32], rows: usize, width: usize) {
        self.prepare(rows, width);
        let x = &x[..rows * width];
        self.blocks(rows, task_rows(rows)).into_par_iter().for_each(|b| {
            quantize_chunk(
                &x[b.first * width..][..b.rows * width],
                width,
                b.data,
                b.stride,
                b.scale,
                b.zero,
            )
        });
    }

    /// Mutable views of consecutive blocks of `per` rows.
    fn blocks(&mut self, rows: usize, per: usize) -> Vec<QuantBlock<'_>> {
        let stride = self.stride;
        let nb = stride / BLOCK;
        let mut out = Vec::with_capacity(rows.div_ceil(per));
        let (mut data, mut scale, mut zero) = (
            &mut self.data[..rows * stride],
            &mut self.scale[..rows * nb],
            &mut self.zero[..rows * nb],
        );
        let mut first = 0;
        while first < rows {
            let n = per.min(rows - first);
            let (d, dr) = data.split_at_mut(n * stride);
            let (s, sr) = scale.split_at_mut(n * nb);
            let (z, zr) = zero.split_at_mut(n * nb);
            out.push(QuantBlock { first, rows: n, stride, data: d, scale: s, zero: z });
            (data, scale, zero) = (dr, sr, zr);
            first += n;
        }
        out
    }
}

/// Rows `first..first + rows` of a [`QuantRows`].
struct QuantBlock<'a> {
    first: usize,
    rows: usize,
    stride: usize,
    data: &'a mut [u8],
    scale: &'a mut [f32],
    zero: &'a mut [f32],
}

/// How the quantised weights are laid out for the kernel in use.
#[derive(Debug, Clone)]
enum Packed {
    /// `[out][k]`, for the portable kernel.
    Rows(Vec<i8>),
    /// `[group of 64 outputs][k/4][64][4]`, for `vpdpbusd`.
    #[cfg(target_arch = "x86_64")]
    Vnni(Vec<i8>),
}

/// What the kernels need besides the two operands: the weights' half of the dequantisation.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    /// Scale per input block and output column (`blocks x outputs`).
    pub scale: Vec<f32>,
    /// Sum of the quantised weights per input block and output column, as a float.
    pub sum: Vec<f32>,
    pub bias: Vec<f32>,
}

/// An INT8 dense layer `y = x·Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct QLinear {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    stride: usize,
    packed: Packed,
    columns: Columns,
}

impl QLinear {
    /// Quantises a PyTorch-layout weight `[outputs][inputs]` per output channel and packs it
    /// for the best kernel this CPU runs.
    ///
    /// # Panics
    /// If the lengths disagree with the shape.
    pub fn from_torch(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Self {
        Self::for_isa(weight, bias, outputs, inputs, crate::cpu::active())
    }

    pub(crate) fn for_isa(
        weight: &[f32],
        bias: &[f32],
        outputs: usize,
        inputs: usize,
        isa: Isa,
    ) -> Self {
        assert_eq!(weight.len(), outputs * inputs, "weight shape");
        assert_eq!(bias.len(), outputs, "bias shape");
        let stride = inputs.next_multiple_of(BLOCK);
        let blocks = stride / BLOCK;
        let mut q = vec![0i8; outputs * stride];
        let mut scale = vec![0.0; blocks * outputs];
        let mut sum = vec![0.0; blocks * outputs];
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            for (b, part) in row.chunks(BLOCK).enumerate() {
                let max = part.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let s = if max > 0.0 { max / 127.0 } else { 1.0 };
                let qpart = &mut q[o * stride + b * BLOCK..][..part.len()];
                for (d, &w) in qpart.iter_mut().zip(part) {
                    *d = (w / s).round().clamp(-127.0, 127.0) as i8;
                }
                scale[b * outputs + o] = s;
                sum[b * outputs + o] = qpart.iter().map(|&v| f32::from(v)).sum();
            }
        }
        let packed = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => Packed::Vnni(vnni::pack(&q, outputs, stride)),
            _ => Packed::Rows(q),
        };
        Self {
            inputs,
            outputs,
            stride,
            packed,
            columns: Columns { scale, sum, bias: bias.to_vec() },
        }
    }

    /// `y[rows][outputs] = x[rows][inputs]·Wᵀ + b`, quantising `x` into `scratch`.
    ///
    /// # Panics
    /// If `x` or `y` is shorter than `rows` rows.
    pub fn forward(&self, x: &[f32], y: &mut [f32], rows: usize, scratch: &mut QuantRows) {
        assert!(x.len() >= rows * self.inputs, "qlinear input shape");
        scratch.quantize(x, rows, self.inputs);
        self.forward_quantized(scratch, y, rows, RowOp::None, None);
    }

    /// `y = op(x·Wᵀ + b)` from already-quantised rows, and, if `requant` is given, `y`
    /// quantised again for the next layer: each block of rows is finished (product, `op`,
    /// quantisation) by one task while it is in cache, instead of three passes over memory.
    ///
    /// # Panics
    /// If `x` was quantised from another width, or `y` or the residual is shorter than `rows`
    /// rows.
    pub fn forward_quantized(
        &self,
        x: &QuantRows,
        y: &mut [f32],
        rows: usize,
        op: RowOp<'_>,
        requant: Option<&mut QuantRows>,
    ) {
        let out = self.outputs;
        assert_eq!(x.stride, self.stride, "input quantised at another width");
        assert!(x.scale.len() >= rows && y.len() >= rows * out, "qlinear shapes");
        op.check(rows, out);
        let per = task_rows(rows);
        let mut requant_blocks = match requant {
            Some(q) => {
                q.prepare(rows, out);
                q.blocks(rows, per).into_iter().map(Some).collect()
            }
            None => Vec::new(),
        };
        requant_blocks.resize_with(rows.div_ceil(per), || None);
        let tasks: Vec<_> =
            y[..rows * out].chunks_mut(per * out).zip(requant_blocks).enumerate().collect();
        tasks.into_par_iter().for_each(|(i, (y, requant))| {
            let first = i * per;
            let n = y.len() / out;
            match &self.packed {
                Packed::Rows(w) => portable::block(x, first, n, w, &self.columns, y, out),
                #[cfg(target_arch = "x86_64")]
                Packed::Vnni(w) => vnni::block(x, first, n, w, &self.columns, y, out),
            }
            op.apply(y, first);
            if let Some(q) = requant {
                quantize_chunk(y, out, q.data, q.stride, q.scale, q.zero);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Gelu;
    use crate::sgemm::{Linear, pseudo_random};

    fn check(isa: Isa, rows: usize, inputs: usize, outputs: usize) {
        let w = pseudo_random(outputs * inputs, 3);
        let b = pseudo_random(outputs, 4);
        let x = pseudo_random(rows * inputs, 5);
        let mut want = vec![0.0; rows * outputs];
        Linear::from_torch(&w, &b, outputs, inputs).forward(&x, &mut want, rows);
        let q = QLinear::for_isa(&w, &b, outputs, inputs, isa);
        let mut got = vec![f32::NAN; rows * outputs];
        q.forward(&x, &mut got, rows, &mut QuantRows::default());
        // Quantisation noise: each product term is off by about half a step of each operand.
        let tol = 0.02 * (inputs as f32).sqrt();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < tol, "{isa:?} {rows}x{inputs}x{outputs} [{i}]: {g} vs {w}");
        }
    }

    #[test]
    fn portable_kernel_matches_fp32() {
        for &(r, i, o) in &[(1, 3, 1), (7, 37, 70), (13, 384, 129)] {
            check(Isa::Portable, r, i, o);
        }
    }

    #[test]
    fn vnni_kernel_matches_fp32_and_the_portable_kernel() {
        if crate::cpu::active() < Isa::Avx512Vnni {
            eprintln!("no AVX-512 VNNI on this CPU: only the portable kernel is testable here");
            return;
        }
        for &(r, i, o) in &[(1, 3, 1), (7, 37, 70), (13, 384, 129), (100, 1536, 384)] {
            check(Isa::Avx512Vnni, r, i, o);
            let w = pseudo_random(o * i, 8);
            let x = pseudo_random(r * i, 9);
            let b = vec![0.0; o];
            let (mut a, mut c) = (vec![0.0; r * o], vec![0.0; r * o]);
            let mut s = QuantRows::default();
            QLinear::for_isa(&w, &b, o, i, Isa::Portable).forward(&x, &mut a, r, &mut s);
            QLinear::for_isa(&w, &b, o, i, Isa::Avx512Vnni).forward(&x, &mut c, r, &mut s);
            for (p, v) in a.iter().zip(&c) {
                assert!((p - v).abs() <= 1e-5 * p.abs().max(1.0), "{p} vs {v}");
            }
        }
    }

    #[test]
    fn fused_row_ops_match_separate_passes() {
        let (rows, inputs, outputs) = (100, 64, 96);
        let w = pseudo_random(outputs * inputs, 11);
        let b = pseudo_random(outputs, 12);
        let x = pseudo_random(rows * inputs, 13);
        let residual = pseudo_random(rows * outputs, 14);
        let (gamma, beta) = (vec![1.5; outputs], vec![0.25; outputs]);
        let q = QLinear::from_torch(&w, &b, outputs, inputs);
        let mut xq = QuantRows::default();
        xq.quantize(&x, rows, inputs);

        let mut separate = vec![0.0; rows * outputs];
        q.forward_quantized(&xq, &mut separate, rows, RowOp::None, None);
        crate::ops::add_layer_norm(&mut separate, Some(&residual), &gamma, &beta, 1e-12);
        let mut want_q = QuantRows::default();
        want_q.quantize(&separate, rows, outputs);

        let mut fused = vec![0.0; rows * outputs];
        let mut got_q = QuantRows::default();
        let op = RowOp::AddNorm { residual: &residual, gamma: &gamma, beta: &beta, eps: 1e-12 };
        q.forward_quantized(&xq, &mut fused, rows, op, Some(&mut got_q));
        assert_eq!(fused, separate);
        assert_eq!((got_q.data, got_q.scale, got_q.zero), (want_q.data, want_q.scale, want_q.zero));

        let mut gelu = vec![0.0; rows * outputs];
        q.forward_quantized(&xq, &mut gelu, rows, RowOp::Gelu(Gelu::Erf), None);
        let mut plain = vec![0.0; rows * outputs];
        q.forward_quantized(&xq, &mut plain, rows, RowOp::None, None);
        crate::ops::gelu(&mut plain, Gelu::Erf);
        assert_eq!(gelu, plain);
    }

    #[test]
    fn one_signed_rows_round_trip_within_half_a_step() {
        for row in [[1.0f32, 2.0, 3.0, 250.0], [-0.5, -7.0, -3.25, -0.01]] {
            let mut s = QuantRows::default();
            s.quantize(&row, 1, 4);
            for (k, &x) in row.iter().enumerate() {
                let back = s.scale[0] * (f32::from(s.data[k]) - s.zero[0]);
                assert!((back - x).abs() <= s.scale[0] * 0.5 + 1e-6, "{x} came back as {back}");
            }
        }
    }

    #[test]
    fn constant_rows_quantise_without_dividing_by_zero() {
        let mut s = QuantRows::default();
        s.quantize(&[0.0; 8], 2, 4);
        assert!(s.scale.iter().all(|v| v.is_finite() && *v > 0.0));
        s.quantize(&[2.0, 2.0, 2.0], 1, 3);
        let back = s.scale[0] * (f32::from(s.data[0]) - s.zero[0]);
        assert!((back - 2.0).abs() < 0.01, "{back}");
    }
}
