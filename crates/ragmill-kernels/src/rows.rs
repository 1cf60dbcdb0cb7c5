//! Splitting a GEMM's output into row blocks that are finished while they are in cache.
//!
//! Row blocks keep the fused row operations possible, but each block streams all of a layer's
//! weights: for a short text (a query of a dozen tokens) that traffic is the whole cost, so the
//! FP32 layers split up to 64 rows by column groups instead (`sgemm::Linear::by_columns`), which
//! measured 1.3x faster at 11 tokens on 2 cores.

use crate::ops::{Gelu, gelu_serial, layer_norm_rows};

/// Rows per parallel task: at most 48, so a block of a 1536-wide output stays in L2 while its
/// row operation (and re-quantisation) runs; fewer when there are few rows, so every thread gets
/// about four tasks (a batch of one 256-token text is 256 rows: seven tasks of 36, not five of
/// 48 and one of 16). Always a multiple of the 6-row register tiles.
pub(crate) fn task_rows(rows: usize) -> usize {
    rows.div_ceil(4 * crate::cpu::threads()).next_multiple_of(6).clamp(6, 48)
}

/// What happens to each block of finished output rows while they are still in cache.
#[derive(Debug, Clone, Copy)]
pub enum RowOp<'a> {
    /// Nothing.
    None,
    /// GELU.
    Gelu(Gelu),
    /// `y = LayerNorm(y + residual)`.
    AddNorm {
        /// Rows of the same shape as the output.
        residual: &'a [f32],
        /// Layer-norm scale.
        gamma: &'a [f32],
        /// Layer-norm shift.
        beta: &'a [f32],
        /// Layer-norm epsilon.
        eps: f32,
    },
}

impl RowOp<'_> {
    /// Panics unless the operation fits an output of `rows` rows of `width`.
    pub(crate) fn check(&self, rows: usize, width: usize) {
        if let RowOp::AddNorm { residual, gamma, beta, .. } = self {
            assert!(
                residual.len() >= rows * width && gamma.len() == width && beta.len() == width,
                "norm shapes"
            );
        }
    }

    /// Applies the operation to `y`, the output rows starting at row `first`.
    pub(crate) fn apply(&self, y: &mut [f32], first: usize) {
        match *self {
            RowOp::None => {}
            RowOp::Gelu(kind) => gelu_serial(y, kind),
            RowOp::AddNorm { residual, gamma, beta, eps } => {
                let width = gamma.len();
                let residual = &residual[first * width..first * width + y.len()];
                layer_norm_rows(y, Some(residual), gamma, beta, eps);
            }
        }
    }
}
