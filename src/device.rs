//! What each compute device can run: the vocabulary shared by validation (which refuses an
//! experiment whose model needs an op its device lacks, with a position) and the model (whose
//! per-device op entry points fail loudly for such an op, see `model::ops::device`).

use std::fmt;

/// A kind of device, without its ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Cpu => "CPU",
            DeviceKind::Cuda => "CUDA",
        })
    }
}

/// An op of our own, beyond what dfdx provides on every device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomOp {
    /// 3×3 conv, batch norm, ReLU and 2×2 max pool fused in one op (the conv4 block).
    ConvBlock,
}

impl fmt::Display for CustomOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CustomOp::ConvBlock => "the conv block (3×3 conv, batch norm, ReLU, 2×2 max pool)",
        })
    }
}

/// The custom ops `kind` has kernels for. The CPU's are entry points of
/// `model::ops::device::ModelDevice` (a test checks that every op listed for the CPU runs);
/// CUDA's are the GPU engine's (`gpu::ops`: `conv_forward`, `norm_relu_pool`, which
/// `gpu::GpuTasks` composes, checked against the CPU path in tests/gpu_kernels.rs and
/// tests/gpu_conv_engine.rs).
pub fn kernels(kind: DeviceKind) -> &'static [CustomOp] {
    match kind {
        DeviceKind::Cpu => &[CustomOp::ConvBlock],
        DeviceKind::Cuda => &[CustomOp::ConvBlock],
    }
}

/// The first of `needed` that `kind` lacks.
pub fn missing(kind: DeviceKind, needed: &[CustomOp]) -> Option<CustomOp> {
    needed
        .iter()
        .copied()
        .find(|op| !kernels(kind).contains(op))
}
