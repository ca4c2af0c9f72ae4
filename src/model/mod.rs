//! Networks with run-time shapes, written as functions over flat parameter vectors.
//!
//! dfdx 0.13's `nn` modules are const-generic, so a shape read from a file cannot use them. Here a
//! model is a [`Layout`] (named tensors inside one flat `Vec<f32>`) plus an [`Evaluator`] that runs
//! the forward and backward pass on a dfdx device. Algorithms only ever see flat vectors, which
//! keeps them device-agnostic and makes checkpointing trivial.

pub mod context;
pub mod conv;
mod error;
pub mod head;
pub mod hvp;
pub mod init;
mod kinks;
pub mod lockstep;
pub mod loss;
pub mod metric;
pub mod mlp;
mod network;
pub mod ops;
mod top;

use crate::tasks::Batch;

pub use error::ModelError;
pub use kinks::{KinkPattern, Kinks};
pub use lockstep::{hvps, EmbedJob, LockStepModel, SerialTasks, StepJob, StepOut};
pub use network::Network;

/// One named tensor inside the flat parameter vector.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl ParamTensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// Where every tensor lives in the flat vector. The head (the final linear layer) comes last,
/// starting at `head_start`, so a multi-task model is `trunk ++ head` without copies of the trunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub tensors: Vec<ParamTensor>,
    pub total: usize,
    pub head_start: usize,
}

impl Layout {
    pub(crate) fn push(&mut self, name: impl Into<String>, shape: Vec<usize>) {
        let t = ParamTensor {
            name: name.into(),
            shape,
            offset: self.total,
        };
        self.total += t.len();
        self.tensors.push(t);
    }

    pub(crate) fn mark_head(&mut self) {
        self.head_start = self.total;
    }

    pub fn head_len(&self) -> usize {
        self.total - self.head_start
    }

    /// Width of the features the head reads: the body's output per example.
    pub fn feature_dim(&self) -> usize {
        self.tensors
            .iter()
            .find(|t| t.offset == self.head_start)
            .map_or(0, |t| t.shape[0])
    }
}

// Recorded with every evaluation's protocol, so it lives with the metric records.
pub use crate::metrics::BatchNormMode;

/// A loss on body features that the caller computes: given the `n × d` features (row-major),
/// it returns the loss and ∂loss/∂features (same layout). Metric-based arms (prototypes,
/// attention, relation module) and ANIL's head on cached features are such losses.
pub type FeatureLoss<'a> = dyn FnMut(&[f32], usize) -> (LossOut, Vec<f32>) + 'a;

/// Loss of one batch: mean squared error (regression) or mean cross-entropy (classification).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOut {
    pub loss: f32,
    /// Correctly classified examples, for classification.
    pub correct: Option<usize>,
}

/// Runs a model on one device. Created inside the worker thread that uses it (a CUDA device is
/// not `Send`), so implementations need not be `Send`.
pub trait Evaluator {
    /// Loss of `params` on `batch`; when `grad` is given, ∂loss/∂params is written into it.
    /// `kinks` says how piecewise-linear units choose their branch; evaluators of smooth
    /// networks may ignore it.
    fn evaluate_with(
        &mut self,
        params: &[f32],
        batch: &Batch,
        grad: Option<&mut [f32]>,
        kinks: Kinks,
    ) -> LossOut;

    /// [`Evaluator::evaluate_with`] with free kinks.
    fn evaluate(&mut self, params: &[f32], batch: &Batch, grad: Option<&mut [f32]>) -> LossOut {
        self.evaluate_with(params, batch, grad, Kinks::Free)
    }

    /// Run the body (every layer but the head) with parameters `body` (the first
    /// `layout.head_start` values) on `x`, `n` examples; give its `n × d` features to `head`,
    /// and backpropagate the ∂loss/∂features it returns into `grad` (length `body.len()`) when
    /// given. The loss is `head`'s. Batch norm sees the `n` examples as one batch.
    fn features(
        &mut self,
        body: &[f32],
        n: usize,
        x: &[f32],
        grad: Option<&mut [f32]>,
        head: &mut FeatureLoss,
    ) -> LossOut;
}
