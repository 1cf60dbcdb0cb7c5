//! FP32 matrix products on the `gemm` crate, behind a bounds-checked safe interface.

use gemm::Parallelism;

/// A dense FP32 layer `y = x·W + b` with `W` stored `[in][out]` (transposed from PyTorch's
/// `[out][in]` once, at load).
#[derive(Debug, Clone)]
pub struct Linear {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Linear {
    /// Builds the layer from a PyTorch-layout weight `[outputs][inputs]` and a bias.
    ///
    /// # Panics
    /// If the lengths disagree with the shape (a loader bug, not bad input: loaders check
    /// tensor shapes first).
    pub fn from_torch(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Self {
        assert_eq!(weight.len(), outputs * inputs, "weight shape");
        assert_eq!(bias.len(), outputs, "bias shape");
        let mut t = vec![0.0; weight.len()];
        for (o, row) in weight.chunks_exact(inputs).enumerate() {
            for (i, &w) in row.iter().enumerate() {
                t[i * outputs + o] = w;
            }
        }
        Self { inputs, outputs, weight: t, bias: bias.to_vec() }
    }

    /// `y[rows][outputs] = x[rows][inputs]·W + b`.
    ///
    /// # Panics
    /// If `x` or `y` is shorter than `rows` rows.
    pub fn forward(&self, x: &[f32], y: &mut [f32], rows: usize) {
        let y = &mut y[..rows * self.outputs];
        for row in y.chunks_exact_mut(self.outputs) {
            row.copy_from_slice(&self.bias);
        }
        matmul(y, &x[..rows * self.inputs], &self.weight, rows, self.inputs, self.outputs, true);
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
        let lin = Linear::from_torch(&[1., 2., 3., 4., 5., 6.], &[10., 20., 30.], 3, 2);
        let mut y = vec![0.0; 6];
        lin.forward(&[1., 1., 0., 2.], &mut y, 2);
        assert_eq!(y, vec![13., 27., 41., 14., 28., 42.]);
    }
}
