//! Numeric kernels for ragmill's native BERT encoder.
//!
//! Everything here is safe to call and picks its code path at run time from the CPU it runs
//! on ([`cpu::Isa`]): AVX-512 (with VNNI for INT8), AVX2+FMA, or portable Rust that the
//! compiler vectorises for whatever the target has (SSE2, NEON). No path needs a CPU feature
//! the build machine had, so one binary runs on any x86-64 or ARM64 machine.
//!
//! - [`sgemm`]: FP32 dense layers: on AVX-512 a 6x64 FMA register tile over weights packed
//!   once at load, finishing each block of rows (bias, GELU or residual + norm, [`RowOp`])
//!   while it is in cache; elsewhere the `gemm` crate's runtime-dispatched AVX2/NEON kernels.
//! - [`qgemm`]: INT8 products: weights quantised per output channel at load, activations per
//!   row at run time, `u8 x i8 -> i32` with `vpdpbusd` where the CPU has AVX-512 VNNI.
//! - [`ops`]: fused row operations (residual + layer norm, GELU, scaled softmax) with a
//!   vectorisable `exp`.
//! - [`attention`]: multi-head self-attention over packed variable-length sequences, so
//!   padding is never computed.
//!
//! This is the only ragmill crate that allows `unsafe`: intrinsics and the raw-pointer
//! interface of `gemm` need it. Each block states why it is sound.

pub mod attention;
pub mod cpu;
pub mod ops;
pub mod qgemm;
mod rows;
pub mod sgemm;

pub use rows::RowOp;

pub use cpu::Isa;
