//! A CUDA GPU as a backend: the kernels compiled by NVRTC for the GPU present, buffers in its
//! memory, SGEMM by cuBLAS in fp32 (TF32 would swamp the finite-difference HVP's ε).

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::cublas::{CudaBlas, Gemm as _, StridedBatchedConfig};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream};
use cudarc::nvrtc::{CompileOptions, Ptx};

use super::backend::{check_copy, Backend};
use super::gemm::Gemm;
use super::table::{KERNELS, SOURCES};
use super::{probe, GpuError};

pub struct Cuda {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    functions: HashMap<&'static str, CudaFunction>,
    arch: String,
}

/// The NVRTC options every kernel is compiled with, for `arch` (e.g. `sm_90`).
pub fn nvrtc_options(arch: &str) -> CompileOptions {
    CompileOptions {
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()],
        ..Default::default()
    }
}

/// NVRTC's PTX for one kernel file of [`SOURCES`].
pub fn compile(file: &str, source: &str, arch: &str) -> Result<Ptx, GpuError> {
    let mut opts = nvrtc_options(arch);
    opts.name = Some(file.to_string());
    cudarc::nvrtc::compile_ptx_with_opts(source, opts).map_err(|e| GpuError::Compile {
        file: file.to_string(),
        log: match e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                log.to_string_lossy().into_owned()
            }
            other => format!("{other:?}"),
        },
    })
}

impl Cuda {
    /// Opens `Cuda(ordinal)` and compiles every kernel for it. A missing driver, NVRTC or
    /// cuBLAS, or an ordinal past the last device, is an error naming the fix.
    pub fn open(ordinal: usize) -> Result<Cuda, GpuError> {
        probe::check(ordinal)?;
        probe::guarded(ordinal, || Cuda::open_checked(ordinal))
    }

    fn open_checked(ordinal: usize) -> Result<Cuda, GpuError> {
        let driver = |e: cudarc::driver::DriverError| GpuError::Driver {
            ordinal,
            reason: e.to_string(),
        };
        let ctx = CudaContext::new(ordinal).map_err(driver)?;
        let (major, minor) = ctx.compute_capability().map_err(driver)?;
        let arch = format!("sm_{major}{minor}");
        let stream = ctx.default_stream();
        let mut functions = HashMap::new();
        for (file, source) in SOURCES {
            let module = ctx
                .load_module(compile(file, source, &arch)?)
                .map_err(driver)?;
            for (name, _) in KERNELS.iter().filter(|(_, f)| f == file) {
                functions.insert(*name, module.load_function(name).map_err(driver)?);
            }
        }
        let blas = CudaBlas::new(stream.clone()).map_err(|e| GpuError::Blas(format!("{e:?}")))?;
        // SAFETY: the handle is live; DEFAULT_MATH keeps SGEMM in full fp32 (no TF32).
        let status = unsafe {
            cudarc::cublas::sys::cublasSetMathMode(
                *blas.handle(),
                cudarc::cublas::sys::cublasMath_t::CUBLAS_DEFAULT_MATH,
            )
        };
        if status != cudarc::cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(GpuError::Blas(format!("setting fp32 math: {status:?}")));
        }
        Ok(Cuda {
            ordinal,
            ctx,
            stream,
            blas,
            functions,
            arch,
        })
    }

    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
    /// The architecture the kernels were compiled for, e.g. `sm_90`.
    pub fn arch(&self) -> &str {
        &self.arch
    }
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }
    pub fn function(&self, name: &str) -> Result<&CudaFunction, GpuError> {
        self.functions
            .get(name)
            .ok_or_else(|| GpuError::MissingKernel(name.to_string()))
    }

    /// `dst[dst_at..dst_at + len] ← src[src_at..src_at + len]` on the device, for any element
    /// type (`Backend::copy_f32`, `copy_u8`).
    fn copy<T: cudarc::driver::DeviceRepr>(
        &self,
        src: &CudaSlice<T>,
        src_at: usize,
        dst: &mut CudaSlice<T>,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        check_copy(src.len(), src_at + len, dst.len(), dst_at + len)?;
        if len == 0 {
            return Ok(());
        }
        self.stream
            .memcpy_dtod(
                &src.slice(src_at..src_at + len),
                &mut dst.slice_mut(dst_at..dst_at + len),
            )
            .map_err(|e| self.mem(e))
    }

    fn mem(&self, e: cudarc::driver::DriverError) -> GpuError {
        GpuError::Memory(format!("device {}: {e}", self.ordinal))
    }
}

impl Backend for Cuda {
    type F32 = CudaSlice<f32>;
    type U8 = CudaSlice<u8>;
    type I32 = CudaSlice<i32>;
    type F64 = CudaSlice<f64>;

    fn max_grid(&self) -> u32 {
        65_535
    }
    fn upload_f32(&self, v: &[f32]) -> Result<CudaSlice<f32>, GpuError> {
        self.stream.clone_htod(v).map_err(|e| self.mem(e))
    }
    fn upload_u8(&self, v: &[u8]) -> Result<CudaSlice<u8>, GpuError> {
        self.stream.clone_htod(v).map_err(|e| self.mem(e))
    }
    fn upload_i32(&self, v: &[i32]) -> Result<CudaSlice<i32>, GpuError> {
        self.stream.clone_htod(v).map_err(|e| self.mem(e))
    }
    fn upload_f64(&self, v: &[f64]) -> Result<CudaSlice<f64>, GpuError> {
        self.stream.clone_htod(v).map_err(|e| self.mem(e))
    }
    fn zeros_f64(&self, n: usize) -> Result<CudaSlice<f64>, GpuError> {
        self.stream.alloc_zeros(n.max(1)).map_err(|e| self.mem(e))
    }
    fn download_f64(&self, b: &CudaSlice<f64>) -> Result<Vec<f64>, GpuError> {
        self.stream.clone_dtoh(b).map_err(|e| self.mem(e))
    }
    fn len_f64(b: &CudaSlice<f64>) -> usize {
        b.len()
    }
    fn zeros_f32(&self, n: usize) -> Result<CudaSlice<f32>, GpuError> {
        self.stream.alloc_zeros(n.max(1)).map_err(|e| self.mem(e))
    }
    fn zeros_u8(&self, n: usize) -> Result<CudaSlice<u8>, GpuError> {
        self.stream.alloc_zeros(n.max(1)).map_err(|e| self.mem(e))
    }
    fn download_f32(&self, b: &CudaSlice<f32>) -> Result<Vec<f32>, GpuError> {
        self.stream.clone_dtoh(b).map_err(|e| self.mem(e))
    }
    fn download_u8(&self, b: &CudaSlice<u8>) -> Result<Vec<u8>, GpuError> {
        self.stream.clone_dtoh(b).map_err(|e| self.mem(e))
    }
    fn copy_f32(
        &self,
        src: &CudaSlice<f32>,
        src_at: usize,
        dst: &mut CudaSlice<f32>,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        self.copy(src, src_at, dst, dst_at, len)
    }
    fn copy_u8(
        &self,
        src: &CudaSlice<u8>,
        src_at: usize,
        dst: &mut CudaSlice<u8>,
        dst_at: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        self.copy(src, src_at, dst, dst_at, len)
    }
    fn len_f32(b: &CudaSlice<f32>) -> usize {
        b.len()
    }
    fn len_u8(b: &CudaSlice<u8>) -> usize {
        b.len()
    }
    fn len_i32(b: &CudaSlice<i32>) -> usize {
        b.len()
    }
    fn sgemm(
        &self,
        g: &Gemm,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        c: &mut CudaSlice<f32>,
    ) -> Result<(), GpuError> {
        g.check(a.len(), b.len(), c.len())?;
        use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
        let op = |t: bool| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let int = |v: usize| v as i32;
        let cfg = StridedBatchedConfig {
            gemm: cudarc::cublas::GemmConfig {
                transa: op(g.trans_a),
                transb: op(g.trans_b),
                m: int(g.m),
                n: int(g.n),
                k: int(g.k),
                alpha: g.alpha,
                lda: int(g.lda.max(1)),
                ldb: int(g.ldb.max(1)),
                beta: g.beta,
                ldc: int(g.ldc.max(1)),
            },
            batch_size: int(g.batch),
            stride_a: g.stride_a as i64,
            stride_b: g.stride_b as i64,
            stride_c: g.stride_c as i64,
        };
        // SAFETY: `g.check` proved every operand long enough for the call.
        unsafe { self.blas.gemm_strided_batched(cfg, a, b, c) }
            .map_err(|e| GpuError::Blas(format!("{e:?}")))
    }
    fn synchronize(&self) -> Result<(), GpuError> {
        self.stream
            .synchronize()
            .map_err(|e| GpuError::launch("synchronize", e))
    }
    fn free_memory(&self) -> Option<u64> {
        self.ctx.mem_get_info().ok().map(|(free, _)| free as u64)
    }
}
