//! Conv net (conv4-style) on the CPU. (Being written.)
use super::{Evaluator, Layout, LossOut, ModelError};
use crate::experiment::ConvSpec;
use crate::tasks::{Batch, FamilyShape};

pub fn layout(_spec: &ConvSpec, _shape: &FamilyShape) -> Result<Layout, ModelError> {
    Err(ModelError::Shape("conv nets are not built yet".into()))
}

pub struct ConvEval;

impl ConvEval {
    pub fn new(
        _spec: &ConvSpec,
        _shape: &FamilyShape,
        _layout: &Layout,
    ) -> Result<Self, ModelError> {
        Err(ModelError::Shape("conv nets are not built yet".into()))
    }
}

impl Evaluator for ConvEval {
    fn evaluate(&mut self, _params: &[f32], _batch: &Batch, _grad: Option<&mut [f32]>) -> LossOut {
        unreachable!("ConvEval cannot be constructed yet")
    }
}
