//! The AVX-512 FP32 kernel: a 6-row x 64-column register tile, 24 FMA accumulators over the
//! whole input width, bias added in the store.

use std::arch::x86_64::*;

/// Output columns per packed panel (four 16-lane registers).
pub(super) const GROUP: usize = 64;
/// Rows per register tile.
pub(super) const MR: usize = 6;
/// Inputs per pass over a block's tiles: a 128 x 64 slice of the panel is 32 KiB, so it stays
/// in L1 while every 6-row tile of the block uses it (a whole panel, up to 384 KiB, would be
/// streamed from L2 once per tile).
const KC: usize = 128;

/// Lays out a PyTorch weight `[outputs][inputs]` as `[group][input][64 columns]`, zero-padded
/// to whole groups: one step of the tile loads 64 consecutive floats.
pub(super) fn pack(weight: &[f32], outputs: usize, inputs: usize) -> Vec<f32> {
    let groups = outputs.div_ceil(GROUP);
    let mut out = vec![0.0; groups * inputs * GROUP];
    for (o, row) in weight.chunks_exact(inputs).enumerate() {
        let (g, j) = (o / GROUP, o % GROUP);
        for (i, &w) in row.iter().enumerate() {
            out[(g * inputs + i) * GROUP + j] = w;
        }
    }
    out
}

/// `y[n][outputs] = x[n][k]·W + bias` for one block of rows.
pub(super) fn block(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    outputs: usize,
) {
    block_groups(x, n, k, w, bias, y, outputs, 0..outputs.div_ceil(GROUP));
}

/// The output columns of 64-column `groups` of `x[n][k]·W + bias`, into `y`: row `r`'s first
/// column of the range at `y[r * ldy]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn block_groups(
    x: &[f32],
    n: usize,
    k: usize,
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    ldy: usize,
    groups: std::ops::Range<usize>,
) {
    let outputs = bias.len();
    let first = groups.start * GROUP;
    let cols = (groups.end * GROUP).min(outputs).saturating_sub(first);
    assert!(x.len() >= n * k && w.len() >= groups.end * k * GROUP, "avx512 shapes");
    assert!(cols <= ldy && (n == 0 || y.len() >= (n - 1) * ldy + cols), "avx512 output shapes");
    assert!(crate::cpu::active() >= crate::cpu::Isa::Avx512, "AVX-512 kernel without AVX-512");
    for g in groups {
        let c0 = g * GROUP;
        let width = (outputs - c0).min(GROUP);
        let panel = &w[g * k * GROUP..(g + 1) * k * GROUP];
        let bias = &bias[c0..c0 + width];
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let w = &panel[k0 * GROUP..(k0 + kc) * GROUP];
            let mut r = 0;
            while r < n {
                let m = (n - r).min(MR);
                let a = &x[r * k + k0..(r + m - 1) * k + k0 + kc];
                let dst = &mut y[r * ldy + c0 - first..];
                let t = Tile { a, lda: k, kc, w, bias, first: k0 == 0 };
                // SAFETY: the CPU has AVX-512 F (asserted above); `a` reaches m rows of kc
                // inputs at stride k, `w` holds kc x 64 floats, `bias` `width`, and `dst` rows
                // r..r+m of `y` from this group's column, so each row's `width` columns at
                // stride `ldy` are inside it (asserted above).
                unsafe {
                    match m {
                        6 => tile::<6>(&t, dst, ldy),
                        5 => tile::<5>(&t, dst, ldy),
                        4 => tile::<4>(&t, dst, ldy),
                        3 => tile::<3>(&t, dst, ldy),
                        2 => tile::<2>(&t, dst, ldy),
                        _ => tile::<1>(&t, dst, ldy),
                    }
                }
                r += m;
            }
        }
    }
}

/// One register tile's operands.
struct Tile<'a> {
    /// `R` rows of `kc` inputs at stride `lda` (the last row may end after `kc`).
    a: &'a [f32],
    lda: usize,
    kc: usize,
    /// `kc x 64` packed weights.
    w: &'a [f32],
    /// The tile's columns of the bias (1..=64 of them).
    bias: &'a [f32],
    /// The first pass over the inputs: start from the bias, not from `dst`.
    first: bool,
}

/// `R` rows x `t.bias.len()` columns of `dst` (row stride `ldc`): `dst = (first ? bias : dst)
/// + a·w` over this pass's `kc` inputs.
///
/// # Safety
/// The CPU must have AVX-512 F; the tile's slices must have the lengths its field comments
/// give, and `dst` must hold `R - 1` rows at stride `ldc` plus `t.bias.len()`.
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize>(t: &Tile<'_>, dst: &mut [f32], ldc: usize) {
    debug_assert!(t.a.len() > (R - 1) * t.lda + t.kc - 1 && t.w.len() >= t.kc * GROUP);
    debug_assert!(!t.bias.is_empty() && t.bias.len() <= GROUP);
    debug_assert!(dst.len() >= (R - 1) * ldc + t.bias.len());
    let width = t.bias.len();
    let masks: [__mmask16; 4] = std::array::from_fn(|p| {
        let left = width.saturating_sub(p * 16).min(16);
        ((1u32 << left) - 1) as __mmask16
    });
    let (a, mut w, dst) = (t.a.as_ptr(), t.w.as_ptr(), dst.as_mut_ptr());
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    for i in 0..t.kc {
        // SAFETY: i < kc, so these 64 floats are inside `w` and `a[r * lda + i]` inside `a`.
        unsafe {
            let b = [
                _mm512_loadu_ps(w),
                _mm512_loadu_ps(w.add(16)),
                _mm512_loadu_ps(w.add(32)),
                _mm512_loadu_ps(w.add(48)),
            ];
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(r * t.lda + i));
                for (acc, b) in acc.iter_mut().zip(b) {
                    *acc = _mm512_fmadd_ps(x, b, *acc);
                }
            }
            w = w.add(GROUP);
        }
    }
    // No early exit for narrow groups (a mask of 0 touches nothing): the loop must unroll
    // completely, or the accumulators live on the stack instead of in registers.
    for (r, acc) in acc.iter().enumerate() {
        for ((p, &acc), &mask) in acc.iter().enumerate().zip(&masks) {
            let c = p * 16;
            // SAFETY: masked loads and stores touch only columns below `width` of the bias
            // and of this row of `dst`; pointers of a fully masked-off panel are formed with
            // wrapping arithmetic and never dereferenced.
            unsafe {
                let out = dst.wrapping_add(r * ldc + c);
                let base = if t.first {
                    _mm512_maskz_loadu_ps(mask, t.bias.as_ptr().wrapping_add(c))
                } else {
                    _mm512_maskz_loadu_ps(mask, out)
                };
                _mm512_mask_storeu_ps(out, mask, _mm512_add_ps(acc, base));
            }
        }
    }
}
