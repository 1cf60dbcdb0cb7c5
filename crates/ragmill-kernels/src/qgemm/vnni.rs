//! The AVX-512 VNNI INT8 kernel: a 6-row x 64-column register tile, `vpdpbusd` into 24
//! accumulators, dequantisation and bias fused into the store.

use std::arch::x86_64::*;

use super::{Columns, QuantRows};

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
    let groups = outputs.div_ceil(GROUP);
    assert!(
        a.data.len() >= (first + n) * a.stride && w.len() >= groups * k4 * GROUP * 4,
        "vnni shapes"
    );
    assert!(cols.scale.len() == outputs && cols.sum.len() == outputs && cols.bias.len() == outputs);
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
                a_scale: &a.scale[row..row + m],
                a_zero: &a.zero[row..row + m],
                w: panel,
                k4,
                scale: &cols.scale[c0..c0 + width],
                sum: &cols.sum[c0..c0 + width],
                bias: &cols.bias[c0..c0 + width],
            };
            let dst = &mut y[r * outputs + c0..];
            // SAFETY: the CPU has AVX-512 VNNI (asserted above); the tile's slices have the
            // lengths `tile_kernel` requires, and `dst` holds rows r..r+m of `y` from column
            // c0, so every row's `width` columns at stride `outputs` are inside it.
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
    a: &'a [u8],
    stride: usize,
    a_scale: &'a [f32],
    a_zero: &'a [i32],
    w: &'a [i8],
    k4: usize,
    scale: &'a [f32],
    sum: &'a [i32],
    bias: &'a [f32],
}

/// `R` rows x up to 64 columns of `dst` (row stride `ldc`).
///
/// # Safety
/// The CPU must have AVX-512 F/BW and VNNI; `t.a` must hold `R` rows of `t.stride` bytes,
/// `t.w` `t.k4 * 256` bytes, the column slices the tile's width (1..=64), and `dst` must be
/// hold `R - 1` rows at stride `ldc` plus the tile's width.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_kernel<const R: usize>(t: &Tile<'_>, dst: &mut [f32], ldc: usize) {
    debug_assert!(t.a.len() >= R * t.stride && t.w.len() >= t.k4 * GROUP * 4);
    debug_assert!(dst.len() >= (R - 1) * ldc + t.scale.len());
    let dst = dst.as_mut_ptr();
    let mut acc = [[_mm512_setzero_si512(); 4]; R];
    let a = t.a.as_ptr();
    let mut w = t.w.as_ptr();
    for k in 0..t.k4 {
        // SAFETY: k < k4, so these 256 bytes are inside `t.w`; the 4-byte reads of each row
        // are inside its `stride` bytes (k*4+4 <= stride).
        unsafe {
            let b = [
                _mm512_loadu_si512(w.cast()),
                _mm512_loadu_si512(w.add(64).cast()),
                _mm512_loadu_si512(w.add(128).cast()),
                _mm512_loadu_si512(w.add(192).cast()),
            ];
            for (r, acc) in acc.iter_mut().enumerate() {
                let u =
                    _mm512_set1_epi32(a.add(r * t.stride + 4 * k).cast::<i32>().read_unaligned());
                for (acc, b) in acc.iter_mut().zip(b) {
                    *acc = _mm512_dpbusd_epi32(*acc, u, b);
                }
            }
            w = w.add(GROUP * 4);
        }
    }
    let width = t.scale.len();
    for (r, acc) in acc.iter().enumerate() {
        let zero = _mm512_set1_epi32(t.a_zero[r]);
        let a_scale = _mm512_set1_ps(t.a_scale[r]);
        for (p, &acc) in acc.iter().enumerate() {
            let c = p * 16;
            if c >= width {
                break;
            }
            let mask: __mmask16 = if width - c >= 16 { 0xffff } else { (1u16 << (width - c)) - 1 };
            // SAFETY: masked loads and stores touch only columns c..width of the column
            // slices and of this row of `dst`.
            unsafe {
                let sum = _mm512_maskz_loadu_epi32(mask, t.sum.as_ptr().add(c));
                let scale = _mm512_maskz_loadu_ps(mask, t.scale.as_ptr().add(c));
                let bias = _mm512_maskz_loadu_ps(mask, t.bias.as_ptr().add(c));
                let v = _mm512_sub_epi32(acc, _mm512_mullo_epi32(zero, sum));
                let y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_mul_ps(scale, a_scale), bias);
                _mm512_mask_storeu_ps(dst.add(r * ldc + c), mask, y);
            }
        }
    }
}
