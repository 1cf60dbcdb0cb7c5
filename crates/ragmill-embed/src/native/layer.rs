//! One transformer layer of the native encoder, and the buffers a forward pass reuses.

use ragmill_kernels::attention::{Span, self_attention};
use ragmill_kernels::ops::{Gelu, add_layer_norm, gelu};
use ragmill_kernels::qgemm::{QLinear, QuantRows};
use ragmill_kernels::sgemm::Linear;

use crate::Precision;

/// A dense layer in the precision the encoder was loaded with.
pub(super) enum Dense {
    F32(Linear),
    I8(QLinear),
}

impl Dense {
    pub(super) fn new(
        weight: &[f32],
        bias: &[f32],
        outputs: usize,
        inputs: usize,
        p: Precision,
    ) -> Self {
        match p {
            Precision::Fp32 => Dense::F32(Linear::from_torch(weight, bias, outputs, inputs)),
            Precision::Int8 => Dense::I8(QLinear::from_torch(weight, bias, outputs, inputs)),
        }
    }

    fn forward(&self, x: &[f32], y: &mut [f32], rows: usize, scratch: &mut QuantRows) {
        match self {
            Dense::F32(l) => l.forward(x, y, rows),
            Dense::I8(l) => l.forward(x, y, rows, scratch),
        }
    }
}

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
    quant: QuantRows,
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
/// and norm, feed-forward with GELU, projection with residual and norm.
pub(super) struct Layer {
    pub qkv: Dense,
    pub attn_out: Dense,
    pub attn_norm: Norm,
    pub up: Dense,
    pub down: Dense,
    pub out_norm: Norm,
}

impl Layer {
    /// Transforms `b.x` (rows of `spans`) in place.
    pub(super) fn forward(&self, b: &mut Buffers, spans: &[Span], rows: usize, d: Dims, act: Gelu) {
        let h = d.hidden;
        let n = rows * h;
        self.qkv.forward(&b.x[..n], &mut b.qkv, rows, &mut b.quant);
        self_attention(&b.qkv[..rows * 3 * h], &mut b.ctx[..n], spans, d.heads, h / d.heads);
        self.attn_out.forward(&b.ctx[..n], &mut b.tmp, rows, &mut b.quant);
        self.attn_norm.apply(&mut b.tmp[..n], Some(&b.x[..n]));
        std::mem::swap(&mut b.x, &mut b.tmp);
        self.up.forward(&b.x[..n], &mut b.inter, rows, &mut b.quant);
        gelu(&mut b.inter[..rows * d.intermediate], act);
        self.down.forward(&b.inter[..rows * d.intermediate], &mut b.tmp, rows, &mut b.quant);
        self.out_norm.apply(&mut b.tmp[..n], Some(&b.x[..n]));
        std::mem::swap(&mut b.x, &mut b.tmp);
    }
}
