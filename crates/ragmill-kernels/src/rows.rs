//! Splitting a GEMM's output into row blocks that are finished while they are in cache.

use crate::ops::{Gelu, gelu_serial, layer_norm_rows};

/// Rows per parallel task: at most 48, so a block of a 1536-wide output stays in L2 while its
/// row operation (and re-quantisation) runs; fewer when there are few rows, so every thread gets
/// about four tasks (a batch of one 256-token text is 256 rows: seven tasks of 36, not five of
/// 48 and one of 16). Always a multiple of the 6-row register tiles.
pub(crate) fn task_rows(rows: usize) -> usize {
    rows.div_ceil(4 * crate::cpu::threads()).next_multiple_of(6).clamp(6, 48)
}

/// How a GEMM's output is split over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// Blocks of this many rows, each finished (product and row operation) by one task: best
    /// when there are many rows, since every block reads all the weights.
    Rows(usize),
    /// Column slabs of this many 64-column groups, each over all rows: best with few rows
    /// (one short text), where row blocks would each stream every weight from cache for
    /// little work. The row operation then runs as a second pass.
    Columns(usize),
}

/// Picks the split for `rows` rows and `groups` 64-column groups.
pub(crate) fn split(rows: usize, groups: usize) -> Split {
    let threads = crate::cpu::threads();
    if rows >= 48 * 4 * threads || groups < 2 * threads {
        Split::Rows(task_rows(rows))
    } else {
        Split::Columns(groups.div_ceil(2 * threads))
    }
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

    /// Applies the operation to all `rows` rows of `y` over every core.
    pub(crate) fn apply_all(&self, y: &mut [f32], width: usize) {
        if matches!(self, RowOp::None) {
            return;
        }
        let per = task_rows(y.len() / width);
        use rayon::prelude::*;
        y.par_chunks_mut(per * width).enumerate().for_each(|(i, y)| self.apply(y, i * per));
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
