//! FP32 dense layers and matrix products.
//!
//! [`Linear`] packs its weights once, at load, for the kernel the CPU runs: on AVX-512 a 6x64
//! FMA register tile ([`avx512`]) over `[64-column group][input][64]` panels, so no call ever
//! repacks the weights (the `gemm` crate repacks its right operand on every call, which
//! dominates at small batches); elsewhere `[input][output]` rows for the `gemm` crate. Either
//! way the output is cut into row blocks that finish with their [`RowOp`] while in cache.
//! [`matmul`] is the general product on the `gemm` crate (attention uses it).

#[cfg(target_arch = "x86_64")]
mod avx512;

use gemm::Parallelism;
use rayon::prelude::*;

use crate::cpu::Isa;
use crate::rows::{RowOp, task_rows};

/// Up to this many rows (a short text: a search query), [`Linear::forward_with`] splits the
/// output by columns rather than rows. On 2 cores (AVX-512, all-MiniLM-L6-v2 FP32, one text)
/// it made a forward pass of 11 tokens 1.3x faster, of 27 to 52 tokens 1.4x, of 100 still
/// 1.1x; batches of long chunks keep their row blocks with the row operations fused.
const COLUMN_SPLIT_ROWS: usize = 64;

/// The weights in the layout of the kernel in use.
#[derive(Debug, Clone)]
enum Packed {
    /// `[input][output]`, for the `gemm` crate.
    Rows(Vec<f32>),
    /// `[group of 64 outputs][input][64]`, for the AVX-512 tile.
    #[cfg(target_arch = "x86_64")]
    Panels(Vec<f32>),
}

/// A dense FP32 layer `y = x·Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    weight: Packed,
    bias: Vec<f32>,
}

impl Linear {
    /// Builds the layer from a PyTorch-layout weight `[outputs][inputs]` and a bias, packed
    /// for the best kernel this CPU runs.
    ///
    /// # Panics
    /// If the lengths disagree with the shape (a loader bug, not bad input: loaders check
    /// tensor shapes first).
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
        let weight = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Vnni => Packed::Panels(avx512::pack(weight, outputs, inputs)),
            _ => {
                let mut t = vec![0.0; weight.len()];
                for (o, row) in weight.chunks_exact(inputs).enumerate() {
                    for (i, &w) in row.iter().enumerate() {
                        t[i * outputs + o] = w;
                    }
                }
                Packed::Rows(t)
            }
        };
        Self { inputs, outputs, weight, bias: bias.to_vec() }
    }

    /// `y[rows][outputs] = x[rows][inputs]·Wᵀ + b`.
    ///
    /// # Panics
    /// If `x` or `y` is shorter than `rows` rows.
    pub fn forward(&self, x: &[f32], y: &mut [f32], rows: usize) {
        self.forward_with(x, y, rows, RowOp::None);
    }

    /// `y = op(x·Wᵀ + b)`, each block of rows finished by one task while it is in cache.
    ///
    /// # Panics
    /// If `x`, `y` or the operation's residual is shorter than `rows` rows.
    pub fn forward_with(&self, x: &[f32], y: &mut [f32], rows: usize, op: RowOp<'_>) {
        let (k, out) = (self.inputs, self.outputs);
        assert!(x.len() >= rows * k && y.len() >= rows * out, "linear shapes");
        op.check(rows, out);
        let (x, y) = (&x[..rows * k], &mut y[..rows * out]);
        #[cfg(target_arch = "x86_64")]
        if let Packed::Panels(w) = &self.weight
            && (1..=COLUMN_SPLIT_ROWS).contains(&rows)
        {
            return self.by_columns(w, x, y, rows, op);
        }
        let per = task_rows(rows);
        y.par_chunks_mut(per * out).enumerate().for_each(|(i, y)| {
            let first = i * per;
            let n = y.len() / out;
            self.product(&x[first * k..(first + n) * k], n, y);
            op.apply(y, first);
        });
    }

    /// `forward_with` for few rows: the output's 64-column groups are shared out between the
    /// threads (and, when there are more threads than groups, the rows too), so the weights
    /// are streamed about once in all, where row blocks of six would each stream all of them.
    /// GELU runs on each part as it is finished; a norm, which needs whole rows, after.
    #[cfg(target_arch = "x86_64")]
    fn by_columns(&self, w: &[f32], x: &[f32], y: &mut [f32], rows: usize, op: RowOp<'_>) {
        let (k, out) = (self.inputs, self.outputs);
        let threads = crate::cpu::threads().max(1);
        let groups = out.div_ceil(avx512::GROUP);
        let per_slab = groups.div_ceil(threads.min(groups));
        let slabs = groups.div_ceil(per_slab);
        let per_block = rows.div_ceil(threads.div_ceil(slabs)).next_multiple_of(avx512::MR);
        let blocks = rows.div_ceil(per_block);
        let part_op = if let RowOp::Gelu(_) = op { op } else { RowOp::None };
        let parts: Vec<(usize, usize, usize, Vec<f32>)> = (0..blocks * slabs)
            .into_par_iter()
            .map(|t| {
                let (first, g) = (t / slabs * per_block, t % slabs * per_slab);
                let n = per_block.min(rows - first);
                let g = g..(g + per_slab).min(groups);
                let c0 = g.start * avx512::GROUP;
                let cols = (g.end * avx512::GROUP).min(out) - c0;
                let mut part = vec![0.0; n * cols];
                let x = &x[first * k..(first + n) * k];
                avx512::block_groups(x, n, k, w, &self.bias, &mut part, cols, g);
                part_op.apply(&mut part, 0);
                (first, c0, cols, part)
            })
            .collect();
        for (first, c0, cols, part) in parts {
            for (row, src) in y[first * out..].chunks_exact_mut(out).zip(part.chunks_exact(cols)) {
                row[c0..c0 + cols].copy_from_slice(src);
            }
        }
        if let RowOp::AddNorm { .. } = op {
            let per = task_rows(rows);
            y.par_chunks_mut(per * out).enumerate().for_each(|(i, y)| op.apply(y, i * per));
        }
    }

    /// `y[n][outputs] = x[n][inputs]·Wᵀ + b` on the calling thread.
    fn product(&self, x: &[f32], n: usize, y: &mut [f32]) {
        let (k, out) = (self.inputs, self.outputs);
        match &self.weight {
            Packed::Rows(w) => {
                for row in y.chunks_exact_mut(out) {
                    row.copy_from_slice(&self.bias);
                }
                assert!(x.len() >= n * k && y.len() >= n * out && w.len() >= k * out);
                // SAFETY: `x` is n x k, `w` k x out, `y` n x out, all contiguous and in bounds
                // (asserted); `y` is borrowed mutably.
                unsafe {
                    strided(
                        n,
                        out,
                        k,
                        Strided { ptr: y.as_mut_ptr(), row: out as isize, col: 1 },
                        true,
                        (x.as_ptr(), k as isize, 1),
                        (w.as_ptr(), out as isize, 1),
                        1.0,
                        Parallelism::None,
                    );
                }
            }
            #[cfg(target_arch = "x86_64")]
            Packed::Panels(w) => avx512::block(x, n, k, w, &self.bias, y, out),
        }
    }
}

/// `c[m][n] = (accumulate ? c : 0) + a[m][k]·b[k][n]`, all row-major and contiguous.
///
/// Large products use every core (rayon's pool); small ones stay on the calling thread.
///
/// # Panics
/// If a slice is shorter than its shape says.
pub fn matmul(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul shapes");
    let par = if m * n * k >= 1 << 21 {
        Parallelism::Rayon(crate::cpu::threads())
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above keep every index the strides reach inside the slices, and
    // `c` is borrowed mutably, so nothing else reads or writes it meanwhile.
    unsafe {
        strided(
            m,
            n,
            k,
            Strided { ptr: c.as_mut_ptr(), row: n as isize, col: 1 },
            accumulate,
            (a.as_ptr(), k as isize, 1),
            (b.as_ptr(), n as isize, 1),
            1.0,
            par,
        );
    }
}

/// A destination pointer with its strides.
pub(crate) struct Strided {
    pub ptr: *mut f32,
    pub row: isize,
    pub col: isize,
}

/// `dst = (accumulate ? dst : 0) + scale·lhs·rhs` over raw strided operands.
///
/// # Safety
/// Every element the shapes and strides reach must be inside its allocation, and no other
/// thread may touch the destination elements meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn strided(
    m: usize,
    n: usize,
    k: usize,
    dst: Strided,
    accumulate: bool,
    lhs: (*const f32, isize, isize),
    rhs: (*const f32, isize, isize),
    scale: f32,
    par: Parallelism,
) {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        gemm::gemm(
            m, n, k, dst.ptr, dst.col, dst.row, accumulate, lhs.0, lhs.2, lhs.1, rhs.0, rhs.2,
            rhs.1, 1.0, scale, false, false, false, par,
        );
    }
}

#[cfg(test)]
pub(crate) fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

#[cfg(test)]
pub(crate) fn pseudo_random(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_naive_product_small_and_large() {
        for &(m, k, n) in &[(3, 5, 7), (1, 384, 384), (130, 96, 200)] {
            let a = pseudo_random(m * k, 1);
            let b = pseudo_random(k * n, 2);
            let mut c = vec![0.0; m * n];
            matmul(&mut c, &a, &b, m, k, n, false);
            for (x, y) in c.iter().zip(naive(&a, &b, m, k, n)) {
                assert!((x - y).abs() < 1e-3, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn linear_transposes_torch_weights_and_adds_bias() {
        // W = [[1, 2], [3, 4], [5, 6]] (3 outputs, 2 inputs), b = [10, 20, 30].
        for isa in [Isa::Portable, crate::cpu::active()] {
            let lin = Linear::for_isa(&[1., 2., 3., 4., 5., 6.], &[10., 20., 30.], 3, 2, isa);
            let mut y = vec![0.0; 6];
            lin.forward(&[1., 1., 0., 2.], &mut y, 2);
            assert_eq!(y, vec![13., 27., 41., 14., 28., 42.], "{isa:?}");
        }
    }

    #[test]
    fn few_rows_split_by_columns_finish_with_the_same_row_operations() {
        use crate::ops::{Gelu, add_layer_norm, gelu};
        // 1 to 64 rows go by columns, 65 by rows; 8 threads and 3 column groups split the rows
        // of the 13-row case too.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(8).build().expect("pool");
        for &(m, k, n) in
            &[(1, 64, 384), (11, 384, 1152), (13, 96, 130), (64, 384, 384), (65, 96, 384)]
        {
            let (w, b) = (pseudo_random(n * k, 41), pseudo_random(n, 42));
            let lin = Linear::from_torch(&w, &b, n, k);
            let x = pseudo_random(m * k, 43);
            let mut wt = vec![0.0; k * n];
            for (o, row) in w.chunks_exact(k).enumerate() {
                row.iter().enumerate().for_each(|(i, &v)| wt[i * n + o] = v);
            }
            let product = naive(&x, &wt, m, k, n);
            let residual = pseudo_random(m * n, 44);
            let (gamma, beta) = (pseudo_random(n, 45), pseudo_random(n, 46));
            pool.install(|| {
                let mut plain = vec![0.0; m * n];
                lin.forward(&x, &mut plain, m);
                for (i, (g, w)) in plain.iter().zip(&product).enumerate() {
                    let w = w + b[i % n];
                    assert!(
                        (g - w).abs() < 1e-3 * (k as f32).sqrt(),
                        "{m}x{k}x{n} [{i}] {g} vs {w}"
                    );
                }
                let mut want_gelu = plain.clone();
                gelu(&mut want_gelu, Gelu::Erf);
                let mut want_norm = plain.clone();
                add_layer_norm(&mut want_norm, Some(&residual), &gamma, &beta, 1e-12);
                let norm =
                    RowOp::AddNorm { residual: &residual, gamma: &gamma, beta: &beta, eps: 1e-12 };
                for (op, want) in [(RowOp::Gelu(Gelu::Erf), want_gelu), (norm, want_norm)] {
                    let mut got = vec![f32::NAN; m * n];
                    lin.forward_with(&x, &mut got, m, op);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!((g - w).abs() < 1e-5, "{m}x{k}x{n} {op:?} [{i}] {g} vs {w}");
                    }
                }
            });
        }
    }

    #[test]
    fn every_kernel_matches_the_naive_product() {
        // Shapes with partial register tiles, partial 64-column groups and odd widths.
        for &(m, k, n) in &[(1, 7, 5), (13, 384, 130), (100, 96, 64), (7, 1536, 384)] {
            let w = pseudo_random(n * k, 31);
            let b = pseudo_random(n, 32);
            let x = pseudo_random(m * k, 33);
            let mut wt = vec![0.0; k * n];
            for o in 0..n {
                for i in 0..k {
                    wt[i * n + o] = w[o * k + i];
                }
            }
            let want = naive(&x, &wt, m, k, n);
            for isa in [Isa::Portable, crate::cpu::active()] {
                let mut y = vec![f32::NAN; m * n];
                Linear::for_isa(&w, &b, n, k, isa).forward(&x, &mut y, m);
                for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                    let w = w + b[i % n];
                    assert!((g - w).abs() < 1e-3 * (k as f32).sqrt(), "{isa:?} [{i}] {g} vs {w}");
                }
            }
        }
    }
}
