//! The kernel table build.rs generates from `kernels/signatures.txt`: `SOURCES`, the kernel
//! files NVRTC compiles (each with `common.cuh` in front), and `KERNELS`, which file holds each
//! kernel. Apart from the launchers (`kernels`), which `gpu::cuda` implements, so `cuda` can
//! read it without a cycle.

include!(concat!(env!("OUT_DIR"), "/kernel_table.rs"));
