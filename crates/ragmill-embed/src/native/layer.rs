//! One transformer layer of the native encoder, and the buffers a forward pass reuses.

use ragmill_kernels::attention::{Span, self_attention};
use ragmill_kernels::ops::{Gelu, add_layer_norm};
use ragmill_kernels::qgemm::{QLinear, QuantRows, RowOp};
use ragmill_kernels::sgemm::Linear;

/// Layer-norm parameters.
pub(super) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl Norm {
    /// `x = LayerNorm(x + residual)`.
    pub(super) fn apply(&self, x: &mut [f32], residual: Option<&[f32]>) {
        add_layer_norm(x, residual, &self.gamma, &self.beta, self.eps);
    }

    /// The fused row operation `y = LayerNorm(y + residual)`.
    fn after<'a>(&'a self, residual: &'a [f32]) -> RowOp<'a> {
        RowOp::AddNorm { residual, gamma: &self.gamma, beta: &self.beta, eps: self.eps }
    }
}

/// Per-layer shapes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
}

/// Activations of one forward pass, kept between passes so memory is not re-faulted.
#[derive(Default)]
pub(super) struct Buffers {
    pub x: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    inter: Vec<f32>,
    /// INT8 only: the layer input, the attention context and the feed-forward activations,
    /// quantised.
    pub x_q: QuantRows,
    ctx_q: QuantRows,
    inter_q: QuantRows,
}

impl Buffers {
    /// Sizes every buffer for `rows` tokens (growing only).
    pub(super) fn fit(&mut self, rows: usize, d: Dims) {
        let grow = |v: &mut Vec<f32>, n: usize| {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        };
        grow(&mut self.x, rows * d.hidden);
        grow(&mut self.qkv, rows * 3 * d.hidden);
        grow(&mut self.ctx, rows * d.hidden);
        grow(&mut self.tmp, rows * d.hidden);
        grow(&mut self.inter, rows * d.intermediate);
    }
}

/// One post-norm BERT layer: fused QKV projection, attention, output projection with residual
/// and norm, feed-forward with GELU, projection with residual and norm. `D` is the dense
/// layer type: [`Linear`] (FP32) or [`QLinear`] (INT8).
pub(super) struct Layer<D> {
    pub qkv: D,
    pub attn_out: D,
    pub attn_norm: Norm,
    pub up: D,
    pub down: D,
    pub out_norm: Norm,
}

impl Layer<Linear> {
    /// Transforms `b.x` (rows of `spans`) in place. Bias, GELU and residual + norm run on
    /// each block of output rows as the GEMM finishes it.
    pub(super) fn forward(&self, b: &mut Buffers, spans: &[Span], rows: usize, d: Dims, act: Gelu) {
        let h = d.hidden;
        let n = rows * h;
        self.qkv.forward(&b.x[..n], &mut b.qkv, rows);
        self_attention(&b.qkv[..rows * 3 * h], &mut b.ctx[..n], spans, d.heads, h / d.heads);
        let op = self.attn_norm.after(&b.x[..n]);
        self.attn_out.forward_with(&b.ctx[..n], &mut b.tmp, rows, op);
        std::mem::swap(&mut b.x, &mut b.tmp);
        self.up.forward_with(&b.x[..n], &mut b.inter, rows, RowOp::Gelu(act));
        let op = self.out_norm.after(&b.x[..n]);
        self.down.forward_with(&b.inter[..rows * d.intermediate], &mut b.tmp, rows, op);
        std::mem::swap(&mut b.x, &mut b.tmp);
    }
}

impl Layer<QLinear> {
    /// Transforms `b.x` in place, reading its quantised copy `b.x_q` and leaving the new
    /// one there for the next layer. Bias, GELU, residual + norm and re-quantisation run on
    /// each block of output rows as the GEMM finishes it.
    pub(super) fn forward(&self, b: &mut Buffers, spans: &[Span], rows: usize, d: Dims, act: Gelu) {
        let h = d.hidden;
        let n = rows * h;
        self.qkv.forward_quantized(&b.x_q, &mut b.qkv, rows, RowOp::None, None);
        self_attention(&b.qkv[..rows * 3 * h], &mut b.ctx[..n], spans, d.heads, h / d.heads);
        b.ctx_q.quantize(&b.ctx, rows, h);
        let op = self.attn_norm.after(&b.x[..n]);
        self.attn_out.forward_quantized(&b.ctx_q, &mut b.tmp, rows, op, Some(&mut b.x_q));
        std::mem::swap(&mut b.x, &mut b.tmp);
        self.up.forward_quantized(
            &b.x_q,
            &mut b.inter,
            rows,
            RowOp::Gelu(act),
            Some(&mut b.inter_q),
        );
        let op = self.out_norm.after(&b.x[..n]);
        self.down.forward_quantized(&b.inter_q, &mut b.tmp, rows, op, Some(&mut b.x_q));
        std::mem::swap(&mut b.x, &mut b.tmp);
    }
}
