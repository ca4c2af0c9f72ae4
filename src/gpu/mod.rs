//! The GPU engine's lower layers: CUDA C++ kernels (`kernels/*.cu`), their launch on a GPU
//! through cudarc (NVRTC at run time, cuBLAS for the per-task matrix products), and the same
//! kernels run on the CPU under an emulation of CUDA's execution model, which is how every CI
//! run checks them against the CPU path without a GPU.
//!
//! Layers, bottom up: `launch` (grid shapes), `backend` (device memory and strided-batched
//! SGEMM, implemented by `host` and `cuda`), `kernels` (one method per kernel, generated from
//! `kernels/signatures.txt` by build.rs for both backends), `ops` (size-checked per-task ops
//! on device-resident buffers, written once for both backends), `probe` (can this machine
//! open `Cuda(n)`, and if not, why), `metered` (any backend with its buffers counted and
//! optionally capped: the memory estimate's check and the out-of-memory path), and on top `tasks`: the engine as a backend of the
//! algorithms' lock-step contract, with `conv` the conv net's blocks in it and `grads` where a
//! backward pass puts its gradients (host vectors, or device buffers an inner step applies in
//! place).

pub mod backend;
mod conv;
pub mod cuda;
pub mod error;
pub mod gemm;
mod grads;
pub mod host;
pub mod kernels;
pub mod launch;
pub mod memory;
pub mod metered;
pub mod ops;
pub mod probe;
mod replay;
pub mod selfcheck;
pub mod table;
pub mod tasks;

pub use backend::Backend;
pub use cuda::Cuda;
pub use error::GpuError;
pub use host::Host;
pub use kernels::Kernels;
pub use launch::Launch;
pub use metered::{Meter, Metered, Transfers};
pub use tasks::GpuTasks;
