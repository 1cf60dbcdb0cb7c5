//! INT8 dense layers: weights quantised per output channel at load, activations per row at
//! run time, products in `u8 x i8 -> i32`.
//!
//! Weights are symmetric: `w ≈ scale[c] * q[c][k]`, `q` in -127..=127. Activations are
//! asymmetric per row (token): `x ≈ a_scale[r] * (u[r][k] - zero[r])`, `u` in 0..=255, so a
//! row's full range uses all 256 levels. Then
//! `y[r][c] = a_scale[r] * scale[c] * (Σ u·q - zero[r] * Σ_k q[c][k]) + bias[c]`, with the
//! column sums precomputed. Where the CPU has AVX-512 VNNI, `vpdpbusd` does sixty-four
//! `u8 x i8` multiply-adds per instruction ([`vnni`]); elsewhere a portable kernel computes
//! the same integers ([`portable`]), so results agree bit for bit across machines up to the
//! final float rounding.

mod portable;
#[cfg(target_arch = "x86_64")]
mod vnni;

use rayon::prelude::*;

use crate::cpu::Isa;
use crate::ops::multiversion;

/// Activations quantised to `u8`, one scale and zero point per row.
#[derive(Debug, Default)]
pub struct QuantRows {
    /// `rows x stride` bytes; columns past the input width are zero.
    pub data: Vec<u8>,
    /// Bytes per row (the input width rounded up to a multiple of 4).
    pub stride: usize,
    /// Per-row scale.
    pub scale: Vec<f32>,
    /// Per-row zero point.
    pub zero: Vec<i32>,
}

multiversion! {
    fn quantize_chunk(x: &[f32], width: usize, data: &mut [u8], stride: usize, scale: &mut [f32], zero: &mut [i32]) {
        for (r, row) in x.chunks_exact(width).enumerate() {
            let (mut lo, mut hi) = ([0.0f32; 16], [0.0f32; 16]);
            let chunks = row.chunks_exact(16);
            let (mut tlo, mut thi) = (0.0f32, 0.0f32);
            for &v in chunks.remainder() {
                tlo = tlo.min(v);
                thi = thi.max(v);
            }
            for c in chunks {
                for i in 0..16 {
                    lo[i] = lo[i].min(c[i]);
                    hi[i] = hi[i].max(c[i]);
                }
            }
            let lo = lo.iter().fold(tlo, |m, &v| m.min(v));
            let hi = hi.iter().fold(thi, |m, &v| m.max(v));
            let s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
            let z = (-lo / s).round().clamp(0.0, 255.0);
            scale[r] = s;
            zero[r] = z as i32;
            let inv = 1.0 / s;
            let out = &mut data[r * stride..r * stride + width];
            for (q, &v) in out.iter_mut().zip(row) {
                *q = (v * inv + z + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

impl QuantRows {
    /// Quantises `rows` rows of `width` floats, reusing this buffer's memory.
    pub fn quantize(&mut self, x: &[f32], rows: usize, width: usize) {
        let stride = width.next_multiple_of(4);
        self.stride = stride;
        self.data.clear();
        self.data.resize(rows * stride, 0);
        self.scale.resize(rows, 0.0);
        self.zero.resize(rows, 0);
        const ROWS: usize = 64;
        self.data
            .par_chunks_mut(ROWS * stride)
            .zip(self.scale.par_chunks_mut(ROWS))
            .zip(self.zero.par_chunks_mut(ROWS))
            .zip(x[..rows * width].par_chunks(ROWS * width))
            .for_each(|(((d, s), z), x)| quantize_chunk(x, width, d, stride, s, z));
    }
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

/// What the kernels need besides the two operands: the per-column half of the epilogue.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    pub scale: Vec<f32>,
    pub sum: Vec<i32>,
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
        let stride = inputs.next_multiple_of(4);
        let mut q = vec![0i8; outputs * stride];
        let mut scale = Vec::with_capacity(outputs);
        let mut sum = Vec::with_capacity(outputs);
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            let qrow = &mut q[o * stride..o * stride + inputs];
            for (d, &w) in qrow.iter_mut().zip(row) {
                *d = (w / s).round().clamp(-127.0, 127.0) as i8;
            }
            scale.push(s);
            sum.push(qrow.iter().map(|&v| i32::from(v)).sum());
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
        assert!(x.len() >= rows * self.inputs && y.len() >= rows * self.outputs, "qlinear shapes");
        scratch.quantize(x, rows, self.inputs);
        debug_assert_eq!(scratch.stride, self.stride);
        let y = &mut y[..rows * self.outputs];
        match &self.packed {
            Packed::Rows(w) => portable::gemm(scratch, w, &self.columns, y, self.outputs),
            #[cfg(target_arch = "x86_64")]
            Packed::Vnni(w) => vnni::gemm(scratch, w, &self.columns, y, self.outputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn constant_rows_quantise_without_dividing_by_zero() {
        let mut s = QuantRows::default();
        s.quantize(&[0.0; 8], 2, 4);
        assert!(s.scale.iter().all(|v| v.is_finite() && *v > 0.0));
        s.quantize(&[2.0, 2.0, 2.0], 1, 3);
        let back = s.scale[0] * (f32::from(s.data[0]) - s.zero[0] as f32);
        assert!((back - 2.0).abs() < 0.01, "{back}");
    }
}
