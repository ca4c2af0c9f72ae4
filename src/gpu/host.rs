//! The CPU as a backend: buffers are vectors, kernels run under `kernels/emu/cuda_emu.hpp`
//! (a block's threads as OS threads), SGEMM is [`super::gemm::reference`]. Slow by design: it
//! exists to check the kernels, not to train.

use super::backend::{check_copy, Backend};
use super::gemm::{self, Gemm};
use super::GpuError;

#[derive(Debug, Default, Clone, Copy)]
pub struct Host;

/// `dst[dst_at..dst_at + len] ← src[src_at..src_at + len]`, refusing ranges past either.
fn copy<T: Copy>(
    src: &[T],
    src_at: usize,
    dst: &mut [T],
    dst_at: usize,
    len: usize,
) -> Result<(), GpuError> {
    check_copy(src.len(), src_at + len, dst.len(), dst_at + len)?;
    dst[dst_at..dst_at + len].copy_from_slice(&src[src_at..src_at + len]);
    Ok(())
}

impl Backend for Host {
    type F32 = Vec<f32>;
    type U8 = Vec<u8>;
    type I32 = Vec<i32>;
    type F64 = Vec<f64>;

    /// Every block starts 256 OS threads, so element-wise launches use few blocks.
    fn max_grid(&self) -> u32 {
        4
    }
    fn upload_f32(&self, v: &[f32]) -> Result<Vec<f32>, GpuError> {
        Ok(v.to_vec())
    }
    fn upload_u8(&self, v: &[u8]) -> Result<Vec<u8>, GpuError> {
        Ok(v.to_vec())
    }
    fn upload_i32(&self, v: &[i32]) -> Result<Vec<i32>, GpuError> {
        Ok(v.to_vec())
    }
    fn upload_f64(&self, v: &[f64]) -> Result<Vec<f64>, GpuError> {
        Ok(v.to_vec())
    }
    fn zeros_f64(&self, n: usize) -> Result<Vec<f64>, GpuError> {
        Ok(vec![0.0; n])
    }
    fn download_f64(&self, b: &Vec<f64>) -> Result<Vec<f64>, GpuError> {
        Ok(b.clone())
    }
    fn len_f64(b: &Vec<f64>) -> usize {
        b.len()
    }
    fn zeros_f32(&self, n: usize) -> Result<Vec<f32>, GpuError> {
        Ok(vec![0.0; n])
    }
    fn zeros_u8(&self, n: usize) -> Result<Vec<u8>, GpuError> {
        Ok(vec![0; n])
    }
    fn download_f32(&self, b: &Vec<f32>) -> Result<Vec<f32>, GpuError> {
        Ok(b.clone())
    }
    fn download_u8(&self, b: &Vec<u8>) -> Result<Vec<u8>, GpuError> {
        Ok(b.clone())
    }
    fn copy_f32(
        &self,
        src: &Vec<f32>,
        src_at: usize,
        dst: &mut Vec<f32>,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        copy(src, src_at, dst, dst_at, len)
    }
    fn copy_u8(
        &self,
        src: &Vec<u8>,
        src_at: usize,
        dst: &mut Vec<u8>,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        copy(src, src_at, dst, dst_at, len)
    }
    fn len_f32(b: &Vec<f32>) -> usize {
        b.len()
    }
    fn len_u8(b: &Vec<u8>) -> usize {
        b.len()
    }
    fn len_i32(b: &Vec<i32>) -> usize {
        b.len()
    }
    fn sgemm(
        &self,
        g: &Gemm,
        a: &Vec<f32>,
        b: &Vec<f32>,
        c: &mut Vec<f32>,
    ) -> Result<(), GpuError> {
        gemm::reference(g, a, b, c)
    }
    fn synchronize(&self) -> Result<(), GpuError> {
        Ok(())
    }
}
