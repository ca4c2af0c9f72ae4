//! Layers dfdx 0.13 lacks on stable Rust, as custom ops on its tape.
//!
//! The kernels (`conv2d`, `batchnorm`, `maxpool`) work on plain slices in the channels-major
//! layout; `block` strings them into one fused dfdx op per conv4 block.

mod avx512;
pub mod batchnorm;
pub mod block;
pub mod conv2d;
pub mod gemm;
pub mod maxpool;
pub mod reduce;
pub mod simd;

#[cfg(test)]
pub(crate) mod testing;
