//! Fused row operations, each compiled once per instruction-set level and picked at run time.
//!
//! The bodies are plain Rust written so the compiler vectorises them: reductions keep sixteen
//! independent lanes (floating-point sums are not reassociated otherwise), and `exp`/`erf` are
//! branch-free polynomials instead of libm calls.

use rayon::prelude::*;

/// Defines `pub fn $name(args)` that runs `$body` compiled for the best instruction set the
/// CPU has (AVX-512, AVX2+FMA, or the build target's baseline).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma")]
                fn v4($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) { body($($arg),*) }
                match crate::cpu::active() {
                    // SAFETY: `active()` never reports a level the CPU lacks.
                    $crate::cpu::Isa::Avx512 | $crate::cpu::Isa::Avx512Vnni => {
                        return unsafe { v4($($arg),*) };
                    }
                    // SAFETY: as above.
                    $crate::cpu::Isa::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::cpu::Isa::Portable => {}
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

const LANES: usize = 16;

/// `e^x` to within 2 ulp over the range that matters here, branch-free so it vectorises.
/// Inputs below -87 give ~1e-38 instead of denormals; above 88 clamp to e^88.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((ni + 127) << 23) as u32)
}

/// `erf(x)` (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

#[inline(always)]
fn lanes_sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest value (0 or more lanes; negative infinity for an empty slice).
#[inline(always)]
pub(crate) fn lanes_max(x: &[f32]) -> f32 {
    lanes_fold(x, f32::NEG_INFINITY, |a, b| if b > a { b } else { a })
}

/// The smallest value (positive infinity for an empty slice).
#[inline(always)]
pub(crate) fn lanes_min(x: &[f32]) -> f32 {
    lanes_fold(x, f32::INFINITY, |a, b| if b < a { b } else { a })
}

/// Folds with sixteen independent accumulators. `pick` is a comparison-and-select, which
/// compiles to packed vminps/vmaxps, unlike f32::min/max with their NaN rules.
#[inline(always)]
fn lanes_fold(x: &[f32], init: f32, pick: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut acc = [init; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(init, |m, &v| pick(m, v));
    for c in chunks {
        for i in 0..LANES {
            acc[i] = pick(acc[i], c[i]);
        }
    }
    acc.iter().fold(tail, |m, &v| pick(m, v))
}

#[inline(always)]
fn lanes_sum_sq_dev(x: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
    for c in chunks {
        for i in 0..LANES {
            let d = c[i] - mean;
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

multiversion! {
    pub(crate) fn layer_norm_rows(x: &mut [f32], residual: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        for (r, row) in x.chunks_exact_mut(width).enumerate() {
            if let Some(res) = residual {
                for (v, a) in row.iter_mut().zip(&res[r * width..(r + 1) * width]) {
                    *v += a;
                }
            }
            let mean = lanes_sum(row) / width as f32;
            let inv = 1.0 / (lanes_sum_sq_dev(row, mean) / width as f32 + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

/// `x = LayerNorm(x + residual)` row by row (rows of `gamma.len()`), over every core.
///
/// # Panics
/// If `x`, `residual` and the parameters disagree in shape.
pub fn add_layer_norm(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let width = gamma.len();
    assert!(width > 0 && beta.len() == width && x.len().is_multiple_of(width), "layer norm shapes");
    if let Some(r) = residual {
        assert_eq!(r.len(), x.len(), "residual shape");
    }
    let rows_per_task = (1 << 14) / width + 1;
    x.par_chunks_mut(rows_per_task * width).enumerate().for_each(|(i, chunk)| {
        let res = residual.map(|r| &r[i * rows_per_task * width..][..chunk.len()]);
        layer_norm_rows(chunk, res, gamma, beta, eps);
    });
}

multiversion! {
    fn gelu_erf_chunk(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

multiversion! {
    fn gelu_tanh_chunk(x: &mut [f32]) {
        // tanh(u) = 1 - 2 / (e^{2u} + 1)
        for v in x.iter_mut() {
            let u = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
            *v = 0.5 * *v * (2.0 - 2.0 / (exp(2.0 * u) + 1.0));
        }
    }
}

/// The GELU flavours BERT-family configs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gelu {
    /// `"gelu"`: the exact, erf-based GELU.
    Erf,
    /// `"gelu_new"`, `"gelu_pytorch_tanh"`: the tanh approximation.
    Tanh,
}

/// Applies GELU in place, over every core.
pub fn gelu(x: &mut [f32], kind: Gelu) {
    x.par_chunks_mut(1 << 14).for_each(|c| gelu_serial(c, kind));
}

/// Applies GELU in place on the calling thread.
pub(crate) fn gelu_serial(x: &mut [f32], kind: Gelu) {
    match kind {
        Gelu::Erf => gelu_erf_chunk(x),
        Gelu::Tanh => gelu_tanh_chunk(x),
    }
}

multiversion! {
    /// Row-wise `softmax(scale * x)` in place over rows of `cols`, on the calling thread.
    pub fn softmax_rows(x: &mut [f32], cols: usize, scale: f32) {
        for row in x.chunks_exact_mut(cols) {
            let max = lanes_max(row) * scale;
            for v in row.iter_mut() {
                *v = exp(*v * scale - max);
            }
            let inv = 1.0 / lanes_sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libm_erf(x: f64) -> f64 {
        // erf by its Taylor series; exact enough for |x| <= 3 in f64.
        let mut term = x;
        let mut sum = x;
        for n in 1..120 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_accurate_over_its_range() {
        for i in -870..=880 {
            let x = i as f32 / 10.0;
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            assert!(((got - want) / want).abs() < 3e-7, "exp({x}) = {got}, want {want}");
        }
        assert!(exp(-1000.0) >= 0.0 && exp(-1000.0) < 1e-37);
    }

    #[test]
    fn erf_is_accurate() {
        for i in -300..=300 {
            let x = i as f32 / 100.0;
            let err = (erf(x) as f64 - libm_erf(x as f64)).abs();
            assert!(err < 5e-7, "erf({x}) off by {err}");
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_order() {
        let mut x: Vec<f32> = (0..2 * 37).map(|i| (i % 37) as f32 * 0.3).collect();
        softmax_rows(&mut x, 37, 0.5);
        for row in x.chunks(37) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row.windows(2).all(|w| w[0] < w[1]));
            let want =
                (36.0f32 * 0.3 * 0.5).exp() / (0..37).map(|i| (i as f32 * 0.15).exp()).sum::<f32>();
            assert!((row[36] - want).abs() < 1e-6);
        }
    }

    #[test]
    fn layer_norm_normalises_each_row() {
        let width = 40;
        let mut x: Vec<f32> = (0..3 * width).map(|i| (i * 7 % 11) as f32).collect();
        let res = vec![1.0; x.len()];
        add_layer_norm(&mut x, Some(&res), &vec![2.0; width], &vec![0.5; width], 1e-12);
        for row in x.chunks(width) {
            let mean = row.iter().sum::<f32>() / width as f32;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / width as f32;
            assert!((mean - 0.5).abs() < 1e-4, "mean {mean}");
            assert!((var - 4.0).abs() < 1e-3, "var {var}");
        }
    }

    #[test]
    fn gelu_matches_its_definition() {
        let mut x: Vec<f32> = (-50..=50).map(|i| i as f32 / 10.0).collect();
        let want: Vec<f64> =
            x.iter().map(|&v| 0.5 * v as f64 * (1.0 + libm_erf(v as f64 / 2f64.sqrt()))).collect();
        gelu(&mut x, Gelu::Erf);
        for (g, w) in x.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 2e-6, "{g} vs {w}");
        }
        let mut t = vec![1.0f32];
        gelu(&mut t, Gelu::Tanh);
        assert!((t[0] - 0.841_192).abs() < 1e-5, "{}", t[0]);
    }
}
