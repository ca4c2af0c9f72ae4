//! The model's custom ops with one entry point per device, as candle's `CustomOp` has
//! `cpu_fwd` required and `cuda_fwd` defaulting to an error that names the op.
//!
//! Every device implements [`ModelDevice`]; an op's default body refuses with
//! [`ModelError::Unsupported`], so a GPU kernel has one obvious place to go, and a device
//! without it is refused when its evaluator is built (and by `check`, through
//! [`crate::device::kernels`]), never halfway through training.

use dfdx::prelude::*;

use super::block::{BlockParams, ConvBlock, Shape4};
use crate::device::{CustomOp, DeviceKind};
use crate::model::error::ModelError;

/// What a block does with its max-pool/ReLU branches (see `model::Kinks`).
pub enum Branches<'a> {
    Free,
    /// Choose them, and write them here.
    Record(&'a mut Vec<u8>),
    /// Take them from a recording made on a batch of the same size.
    Replay(&'a [u8]),
}

pub trait ModelDevice: Device<f32> {
    const KIND: DeviceKind;

    /// One conv4 block on `[cin, n, h, w]`, giving `[cout, n, h/2, w/2]`.
    fn conv_block<T: Tape<f32, Self>>(
        block: &ConvBlock,
        x: Tensor<Shape4, f32, Self, T>,
        p: &BlockParams<'_, Self>,
        branches: Branches<'_>,
    ) -> Result<Tensor<Shape4, f32, Self, T>, ModelError> {
        let _ = (block, x, p, branches);
        Err(ModelError::unsupported(CustomOp::ConvBlock, Self::KIND))
    }
}

impl ModelDevice for Cpu {
    const KIND: DeviceKind = DeviceKind::Cpu;

    fn conv_block<T: Tape<f32, Self>>(
        block: &ConvBlock,
        x: Tensor<Shape4, f32, Self, T>,
        p: &BlockParams<'_, Self>,
        branches: Branches<'_>,
    ) -> Result<Tensor<Shape4, f32, Self, T>, ModelError> {
        Ok(match branches {
            Branches::Free => block.forward(x, p),
            Branches::Record(out) => {
                let y = block.forward(x, p);
                *out = block.branches();
                y
            }
            Branches::Replay(fixed) => block.forward_with(x, p, Some(fixed)),
        })
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
                    let out =
                        Cpu::conv_block(&block, x, &p, Branches::Free).expect("the CPU has it");
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
        assert_eq!(
            crate::device::missing(DeviceKind::Cuda, &[CustomOp::ConvBlock]),
            Some(CustomOp::ConvBlock)
        );
    }
}
