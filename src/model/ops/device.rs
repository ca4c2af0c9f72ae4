//! The model's custom ops with one entry point per device, as candle's `CustomOp` has
//! `cpu_fwd` required and `cuda_fwd` defaulting to an error that names the op.
//!
//! Every device implements [`ModelDevice`]; an op's default body refuses with
//! [`ModelError::Unsupported`], so a GPU kernel has one obvious place to go, and a device
//! without it is refused when its evaluator is built (and by `check`, through
//! [`crate::device::kernels`]), never halfway through training.

use dfdx::prelude::*;

use super::block::{BlockParams, ConvBlock, CpuBlockState, Shape4};
use crate::device::{CustomOp, DeviceKind};
use crate::model::error::ModelError;
use crate::model::kinks::Kinks;

pub trait ModelDevice: Device<f32> {
    const KIND: DeviceKind;

    /// What this device's conv block kernel keeps for one block between its forward and its
    /// backward pass (scratch buffers, saved activations); one per block, owned by the
    /// evaluator. The descriptor ([`ConvBlock`]) says what the block is; this is where it runs.
    type BlockState: Default;

    /// One conv4 block on `[cin, n, h, w]`, giving `[cout, n, h/2, w/2]`, its max-pool/ReLU
    /// branches as `kinks` says (see `model::Kinks`; one code per output value).
    fn conv_block<T: Tape<f32, Self>>(
        block: ConvBlock,
        state: &Self::BlockState,
        x: Tensor<Shape4, f32, Self, T>,
        p: &BlockParams<'_, Self>,
        kinks: Kinks<'_, Vec<u8>>,
    ) -> Result<Tensor<Shape4, f32, Self, T>, ModelError> {
        let _ = (block, state, x, p, kinks);
        Err(ModelError::unsupported(CustomOp::ConvBlock, Self::KIND))
    }
}

impl ModelDevice for Cpu {
    const KIND: DeviceKind = DeviceKind::Cpu;
    type BlockState = CpuBlockState;

    fn conv_block<T: Tape<f32, Self>>(
        block: ConvBlock,
        state: &CpuBlockState,
        x: Tensor<Shape4, f32, Self, T>,
        p: &BlockParams<'_, Self>,
        kinks: Kinks<'_, Vec<u8>>,
    ) -> Result<Tensor<Shape4, f32, Self, T>, ModelError> {
        Ok(state.forward(block, x, p, kinks))
    }
}

/// Refuse, before any work, a device that lacks one of the ops a model needs.
pub fn require<D: ModelDevice>(needed: &[CustomOp]) -> Result<(), ModelError> {
    match crate::device::missing(D::KIND, needed) {
        Some(op) => Err(ModelError::unsupported(op, D::KIND)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::kernels;
    use crate::model::ops::conv2d::ConvShape;

    /// The CPU's table entry is true: every op it lists runs through its entry point.
    #[test]
    fn every_op_listed_for_the_cpu_runs() {
        let dev = Cpu::default();
        for op in kernels(DeviceKind::Cpu) {
            match op {
                CustomOp::ConvBlock => {
                    let block = ConvBlock::new(ConvShape::same3(1, 2, 4, 4), true, false);
                    let w = dev.tensor_from_vec(vec![0.1; 18], (18,));
                    let b = dev.tensor_from_vec(vec![0.0; 2], (2,));
                    let (g, beta) = (
                        dev.tensor_from_vec(vec![1.0; 2], (2,)),
                        dev.tensor_from_vec(vec![0.0; 2], (2,)),
                    );
                    let p = BlockParams {
                        weight: &w,
                        bias: &b,
                        norm: Some((&g, &beta)),
                    };
                    let x = dev.tensor_from_vec((0..32).map(|i| i as f32).collect(), (1, 2, 4, 4));
                    let state = CpuBlockState::default();
                    let out =
                        Cpu::conv_block(block, &state, x, &p, Kinks::Free).expect("the CPU has it");
                    assert_eq!(*out.shape(), (2, 2, 2, 2));
                }
            }
        }
    }

    #[test]
    fn a_device_without_a_kernel_is_refused_naming_the_op_and_the_device() {
        assert!(require::<Cpu>(&[CustomOp::ConvBlock]).is_ok());
        let err = ModelError::unsupported(CustomOp::ConvBlock, DeviceKind::Cuda).to_string();
        assert!(err.contains("conv block") && err.contains("CUDA"), "{err}");
        // CUDA's conv block is the GPU engine's (`gpu::GpuTasks`), not a `ModelDevice`'s.
        assert_eq!(
            crate::device::missing(DeviceKind::Cuda, &[CustomOp::ConvBlock]),
            None
        );
    }
}
