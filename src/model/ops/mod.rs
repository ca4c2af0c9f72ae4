//! Layers dfdx 0.13 lacks on stable Rust, as custom ops on its tape.
//!
//! The kernels (`conv2d`, `batchnorm`, `maxpool`, `reduce`) work on plain slices in the
//! channels-major layout; `block` strings them into one fused dfdx op per conv4 block. Products go
//! through `gemm` (the `gemm` crate, or `avx512`'s kernel where the CPU has it), and `simd`
//! compiles the element-wise kernels a second time for AVX-512.

mod avx512;
pub mod batchnorm;
pub mod block;
mod buffer;
pub mod conv2d;
pub mod device;
pub mod gemm;
pub mod maxpool;
pub mod reduce;
pub mod simd;

#[cfg(test)]
pub(crate) mod testing;
