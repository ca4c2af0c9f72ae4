//! Why the GPU engine could not run, each with the fix.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GpuError {
    #[error("CUDA device {ordinal}: no NVIDIA driver found (libcuda.so.1 could not be loaded)\n  fix: install the NVIDIA driver (check with `nvidia-smi`), or set device: Cpu")]
    NoDriver { ordinal: usize },
    #[error("CUDA device {ordinal}: NVRTC, CUDA's run-time compiler, was not found (libnvrtc.so.13)\n  fix: install the CUDA 13 toolkit or `pip install nvidia-cuda-nvrtc==13.0.*` and put its lib/ folder on LD_LIBRARY_PATH, or set device: Cpu")]
    NoNvrtc { ordinal: usize },
    #[error("CUDA device {ordinal}: cuBLAS was not found (libcublas.so.13)\n  fix: install the CUDA 13 toolkit or `pip install nvidia-cublas==13.0.*` and put its lib/ folder on LD_LIBRARY_PATH, or set device: Cpu")]
    NoCublas { ordinal: usize },
    #[error("CUDA device {ordinal} does not exist: this machine has {count} CUDA device(s)\n  fix: use device: Cuda(0) … Cuda({last}), or device: Cpu", last = count.saturating_sub(1))]
    NoSuchDevice { ordinal: usize, count: usize },
    #[error("CUDA device {ordinal} could not be opened: {reason}\n  fix: check `nvidia-smi`, or set device: Cpu")]
    Driver { ordinal: usize, reason: String },
    #[error("NVRTC could not compile kernels/{file}: {log}\n  fix: this is a bug in metalab's kernels; report it with the log")]
    Compile { file: String, log: String },
    #[error("kernel {kernel} failed to launch: {reason}")]
    Launch { kernel: String, reason: String },
    #[error("kernel {0} is not in the loaded modules")]
    MissingKernel(String),
    #[error("GPU memory: {0}")]
    Memory(String),
    /// The device ran out of memory in a batched call; `fits` is the estimate
    /// (`gpu::memory`) of the tasks per call that the free memory holds, 0 when not one.
    #[error("GPU out of memory in a batched call of {tasks} tasks × {examples} examples (the engine's estimate: about {needed_mib} MiB; {free_mib} MiB free)\n  fix: {}", oom_fix(*.fits, *.examples))]
    OutOfMemory {
        tasks: usize,
        examples: usize,
        needed_mib: u64,
        free_mib: u64,
        fits: usize,
    },
    #[error("cuBLAS: {0}")]
    Blas(String),
    #[error("GPU op {op}: {detail}")]
    Size { op: &'static str, detail: String },
}

/// What an out-of-memory error asks the user to change.
fn oom_fix(fits: usize, examples: usize) -> String {
    if fits == 0 {
        return format!("not one task of {examples} examples fits in what is free: free the GPU (`nvidia-smi` shows what holds its memory), or use fewer examples per task (shots, queries) or a smaller model, or device: Cpu; the run's last checkpoint resumes with `metalab resume`");
    }
    format!("about {fits} such tasks fit: set train.meta_batch: {fits} or lower (for an evaluation's call: eval.tasks), or free the GPU, or device: Cpu")
}

impl GpuError {
    /// Whether a [`GpuError::Memory`] is the device running out (not another failed transfer).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, GpuError::Memory(reason) if reason.contains("OUT_OF_MEMORY") || reason.contains("out of memory"))
    }

    pub fn launch(kernel: &str, e: impl std::fmt::Debug) -> GpuError {
        GpuError::Launch {
            kernel: kernel.to_string(),
            reason: format!("{e:?}"),
        }
    }
}
