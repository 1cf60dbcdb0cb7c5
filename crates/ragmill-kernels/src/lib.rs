//! Numeric kernels for ragmill's native BERT encoder.
//!
//! Everything here is safe to call and picks its code path at run time from the CPU it runs
//! on ([`cpu::Isa`]): AVX-512 (with VNNI for INT8), AVX2+FMA, or portable Rust that the
//! compiler vectorises for whatever the target has (SSE2, NEON). No path needs a CPU feature
//! the build machine had, so one binary runs on any x86-64 or ARM64 machine.
//!
//! - [`sgemm`]: FP32 matrix products on the `gemm` crate (runtime-dispatched AVX-512/AVX2/NEON
//!   micro-kernels), with bias fused by pre-filling the destination.
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
pub mod sgemm;

pub use cpu::Isa;
