//! What a device offers the ops: its own buffers, copies to and from the host, and cuBLAS's
//! strided-batched SGEMM. Implemented by [`super::Host`] and [`super::Cuda`]; `ops` is written
//! once against it.

use super::gemm::Gemm;
use super::GpuError;

/// A copy's ranges checked against both buffers.
pub(crate) fn check_copy(
    src: usize,
    src_end: usize,
    dst: usize,
    dst_end: usize,
) -> Result<(), GpuError> {
    if src_end > src || dst_end > dst {
        return Err(GpuError::Size {
            op: "device copy",
            detail: format!(
                "range ends at {src_end} of {src} (source) and {dst_end} of {dst} (destination)"
            ),
        });
    }
    Ok(())
}

pub trait Backend {
    /// A buffer of f32 in the device's memory.
    type F32;
    type U8;
    type I32;
    /// A buffer of f64: second-order MAML's backward vectors (`model::hvp`).
    type F64;

    /// The most blocks an element-wise launch uses (results do not depend on it).
    fn max_grid(&self) -> u32;

    fn upload_f32(&self, v: &[f32]) -> Result<Self::F32, GpuError>;
    fn upload_u8(&self, v: &[u8]) -> Result<Self::U8, GpuError>;
    fn upload_i32(&self, v: &[i32]) -> Result<Self::I32, GpuError>;
    fn upload_f64(&self, v: &[f64]) -> Result<Self::F64, GpuError>;
    fn zeros_f32(&self, n: usize) -> Result<Self::F32, GpuError>;
    fn zeros_u8(&self, n: usize) -> Result<Self::U8, GpuError>;
    fn zeros_f64(&self, n: usize) -> Result<Self::F64, GpuError>;
    fn download_f32(&self, b: &Self::F32) -> Result<Vec<f32>, GpuError>;
    fn download_u8(&self, b: &Self::U8) -> Result<Vec<u8>, GpuError>;
    fn download_f64(&self, b: &Self::F64) -> Result<Vec<f64>, GpuError>;
    /// `dst[dst_at..dst_at + len] ← src[src_at..src_at + len]`, on the device. Refuses ranges
    /// past either buffer.
    fn copy_f32(
        &self,
        src: &Self::F32,
        src_at: usize,
        dst: &mut Self::F32,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError>;
    /// As [`Backend::copy_f32`], for bytes (kink codes).
    fn copy_u8(
        &self,
        src: &Self::U8,
        src_at: usize,
        dst: &mut Self::U8,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError>;
    fn len_f32(b: &Self::F32) -> usize;
    fn len_u8(b: &Self::U8) -> usize;
    fn len_i32(b: &Self::I32) -> usize;
    fn len_f64(b: &Self::F64) -> usize;

    /// `c ← α·op(a)·op(b) + β·c` for each of `g.batch` matrices, column-major, as cuBLAS's
    /// `cublasSgemmStridedBatched`, in fp32 (never TF32). Refuses buffers too short for `g`.
    fn sgemm(
        &self,
        g: &Gemm,
        a: &Self::F32,
        b: &Self::F32,
        c: &mut Self::F32,
    ) -> Result<(), GpuError>;

    /// Waits for the device's queued work (a no-op on the host).
    fn synchronize(&self) -> Result<(), GpuError>;

    /// Bytes of device memory free now, where the device says (the host does not).
    fn free_memory(&self) -> Option<u64> {
        None
    }

    /// Bytes of this backend's buffers alive now, where it counts them ([`super::Metered`]).
    fn used_memory(&self) -> Option<u64> {
        None
    }
}
