//! The AVX-512 VNNI INT8 kernel: a 6-row x 64-column register tile, `vpdpbusd` into 24
//! accumulators per block of 64 inputs, dequantisation and bias fused into the stores.

use std::arch::x86_64::*;

use super::{BLOCK, Columns, QuantRows};

/// Output columns per packed weight group (four 16-lane registers).
const GROUP: usize = 64;
/// Rows per register tile.
const MR: usize = 6;

/// Lays out `q` (`[outputs][stride]`, `stride` a multiple of 4) as
/// `[group][stride/4][64 columns][4 bytes]`: one 64-byte load feeds 16 columns x 4 inputs.
pub(super) fn pack(q: &[i8], outputs: usize, stride: usize) -> Vec<i8> {
    let k4 = stride / 4;
    let groups = outputs.div_ceil(GROUP);
    let mut out = vec![0i8; groups * k4 * GROUP * 4];
    for (o, row) in q.chunks_exact(stride).enumerate() {
        let (g, j) = (o / GROUP, o % GROUP);
        for (k, &v) in row.iter().enumerate() {
            out[((g * k4 + k / 4) * GROUP + j) * 4 + k % 4] = v;
        }
    }
    out
}

/// Rows `first..first + n` of the product into `y` (`n` rows of `outputs`), all column
/// groups: each 64-column weight panel is streamed once per 6-row tile.
pub(super) fn block(
    a: &QuantRows,
    first: usize,
    n: usize,
    w: &[i8],
    cols: &Columns,
    y: &mut [f32],
    outputs: usize,
) {
    let k4 = a.stride / 4;
    let nb = a.stride / BLOCK;
    let groups = outputs.div_ceil(GROUP);
    assert!(
        a.data.len() >= (first + n) * a.stride
            && a.scale.len() >= (first + n) * nb
            && a.zero.len() >= (first + n) * nb
            && w.len() >= groups * k4 * GROUP * 4,
        "vnni shapes"
    );
    assert!(
        cols.scale.len() == nb * outputs
            && cols.sum.len() == nb * outputs
            && cols.bias.len() == outputs,
        "vnni column shapes"
    );
    assert!(y.len() >= n * outputs, "vnni output shape");
    assert!(crate::cpu::active() >= crate::cpu::Isa::Avx512Vnni, "VNNI kernel without VNNI");
    for g in 0..groups {
        let c0 = g * GROUP;
        let width = (outputs - c0).min(GROUP);
        let panel = &w[g * k4 * GROUP * 4..(g + 1) * k4 * GROUP * 4];
        let mut r = 0;
        while r < n {
            let m = (n - r).min(MR);
            let row = first + r;
            let tile = Tile {
                a: &a.data[row * a.stride..(row + m) * a.stride],
                stride: a.stride,
                blocks: nb,
                a_scale: &a.scale[row * nb..(row + m) * nb],
                a_zero: &a.zero[row * nb..(row + m) * nb],
                w: panel,
                w_scale: &cols.scale,
                w_sum: &cols.sum,
                outputs,
                c0,
                width,
                bias: &cols.bias[c0..c0 + width],
            };
            let dst = &mut y[r * outputs + c0..];
            // SAFETY: the CPU has AVX-512 VNNI (asserted above); the tile's slices have the
            // lengths `tile_kernel` requires (checked against the asserted shapes), and `dst`
            // holds rows r..r+m of `y` from column c0, so every row's `width` columns at
            // stride `outputs` are inside it.
            unsafe {
                match m {
                    6 => tile_kernel::<6>(&tile, dst, outputs),
                    5 => tile_kernel::<5>(&tile, dst, outputs),
                    4 => tile_kernel::<4>(&tile, dst, outputs),
                    3 => tile_kernel::<3>(&tile, dst, outputs),
                    2 => tile_kernel::<2>(&tile, dst, outputs),
                    _ => tile_kernel::<1>(&tile, dst, outputs),
                }
            }
            r += m;
        }
    }
}

struct Tile<'a> {
    /// `R` rows of `stride` quantised inputs.
    a: &'a [u8],
    stride: usize,
    /// Quantisation blocks per row (`stride / BLOCK`).
    blocks: usize,
    /// `R x blocks` activation scales and zero points.
    a_scale: &'a [f32],
    a_zero: &'a [f32],
    /// This group's packed weights, `stride / 4 x 256` bytes.
    w: &'a [i8],
    /// `blocks x outputs` weight scales and column sums.
    w_scale: &'a [f32],
    w_sum: &'a [f32],
    outputs: usize,
    /// The group's first column and its width (1..=64).
    c0: usize,
    width: usize,
    bias: &'a [f32],
}

/// `R` rows x `t.width` columns of `dst` (row stride `ldc`): per block of 64 inputs, 16
/// `vpdpbusd` steps into integer accumulators, then dequantised and added to `dst` in FP32
/// (the first block starts from the bias).
///
/// # Safety
/// The CPU must have AVX-512 F/BW and VNNI; the tile's slices must have the lengths its
/// field comments give, `c0 + width <= outputs`, and `dst` must hold `R - 1` rows at stride
/// `ldc` plus `width`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_kernel<const R: usize>(t: &Tile<'_>, dst: &mut [f32], ldc: usize) {
    debug_assert!(t.a.len() >= R * t.stride && t.w.len() >= t.stride / 4 * GROUP * 4);
    debug_assert!(t.a_scale.len() >= R * t.blocks && t.a_zero.len() >= R * t.blocks);
    debug_assert!(t.w_scale.len() >= t.blocks * t.outputs && t.c0 + t.width <= t.outputs);
    debug_assert!(dst.len() >= (R - 1) * ldc + t.width);
    let dst = dst.as_mut_ptr();
    let masks: [__mmask16; 4] = std::array::from_fn(|p| {
        let left = t.width.saturating_sub(p * 16).min(16);
        ((1u32 << left) - 1) as __mmask16
    });
    let a = t.a.as_ptr();
    let mut w = t.w.as_ptr();
    for b in 0..t.blocks {
        let mut acc = [[_mm512_setzero_si512(); 4]; R];
        for k in b * BLOCK / 4..(b + 1) * BLOCK / 4 {
            // SAFETY: k < stride / 4, so these 256 bytes are inside `t.w`; the 4-byte reads
            // of each row are inside its `stride` bytes (k*4+4 <= stride).
            unsafe {
                let bv = [
                    _mm512_loadu_si512(w.cast()),
                    _mm512_loadu_si512(w.add(64).cast()),
                    _mm512_loadu_si512(w.add(128).cast()),
                    _mm512_loadu_si512(w.add(192).cast()),
                ];
                for (r, acc) in acc.iter_mut().enumerate() {
                    let u = _mm512_set1_epi32(
                        a.add(r * t.stride + 4 * k).cast::<i32>().read_unaligned(),
                    );
                    for (acc, bv) in acc.iter_mut().zip(bv) {
                        *acc = _mm512_dpbusd_epi32(*acc, u, bv);
                    }
                }
                w = w.add(GROUP * 4);
            }
        }
        let cols = b * t.outputs + t.c0;
        for (r, acc) in acc.iter().enumerate() {
            let zero = _mm512_set1_ps(t.a_zero[r * t.blocks + b]);
            let a_scale = _mm512_set1_ps(t.a_scale[r * t.blocks + b]);
            // No early exit for narrow groups (a mask of 0 touches nothing): the loop must
            // unroll completely, or the accumulators live on the stack instead of in registers.
            for ((p, &acc), &mask) in acc.iter().enumerate().zip(&masks) {
                let c = p * 16;
                // SAFETY: masked loads and stores touch only columns below `width` of this
                // group in the column arrays, the bias and this row of `dst`; a masked-off
                // lane is never accessed, and the pointers of a fully masked-off panel (past
                // the end) are only formed with wrapping arithmetic, never dereferenced.
                unsafe {
                    let sum = _mm512_maskz_loadu_ps(mask, t.w_sum.as_ptr().wrapping_add(cols + c));
                    let scale =
                        _mm512_maskz_loadu_ps(mask, t.w_scale.as_ptr().wrapping_add(cols + c));
                    let out = dst.wrapping_add(r * ldc + c);
                    let prev = if b == 0 {
                        _mm512_maskz_loadu_ps(mask, t.bias.as_ptr().wrapping_add(c))
                    } else {
                        _mm512_maskz_loadu_ps(mask, out)
                    };
                    let v = _mm512_fnmadd_ps(zero, sum, _mm512_cvtepi32_ps(acc));
                    let y = _mm512_fmadd_ps(v, _mm512_mul_ps(scale, a_scale), prev);
                    _mm512_mask_storeu_ps(out, mask, y);
                }
            }
        }
    }
}
