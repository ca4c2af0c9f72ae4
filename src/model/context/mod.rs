//! Where a task context (CAVIA's context parameters, Zintgraf et al. 2019) enters a network:
//! concatenated to an MLP's input ([`InputContext`]), or through FiLM after a conv block
//! ([`FilmContext`]). Either way the network with a context is the plain network with changed
//! parameters (`fold`), so every evaluator runs it unchanged, and the context's and the shared
//! parameters' gradients and Hessian-vector products follow from the plain network's by the
//! chain rule through that change.

mod film;
mod input;

pub use film::FilmContext;
pub use input::InputContext;

use super::{ModelError, Network};
use crate::experiment::ModelSpec;
use crate::tasks::Rng;

/// A task context on a network, as the experiment's model takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskContext {
    Input(InputContext),
    Film(FilmContext),
}

/// Calls the same method on either kind of context.
macro_rules! each {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            TaskContext::Input($c) => $e,
            TaskContext::Film($c) => $e,
        }
    };
}

impl TaskContext {
    /// A context of `width` values: at an MLP's input, or through FiLM after `film_block`
    /// (counted from 1) of a conv net; each model refuses the other's.
    pub fn new(
        net: &Network,
        width: usize,
        film_block: Option<usize>,
    ) -> Result<TaskContext, ModelError> {
        match (&net.spec, film_block) {
            (ModelSpec::Mlp(_), None) => Ok(TaskContext::Input(InputContext::new(net, width)?)),
            (ModelSpec::Mlp(_), Some(_)) => Err(ModelError::FilmNeedsConv),
            (ModelSpec::Conv(_), Some(block)) => {
                Ok(TaskContext::Film(FilmContext::new(net, width, block)?))
            }
            (ModelSpec::Conv(_), None) => Err(ModelError::NoFilmBlock),
        }
    }

    /// The context's size.
    pub fn width(&self) -> usize {
        each!(self, c => c.width)
    }

    /// The plain network's parameter count; the context's own shared parameters follow it.
    pub fn base_len(&self) -> usize {
        each!(self, c => c.base_len())
    }

    /// The shared parameters: the plain network's and the context's rows.
    pub fn shared_len(&self) -> usize {
        each!(self, c => c.shared_len())
    }

    /// The context's rows, drawn after the plain network's parameters.
    pub fn init_rows(&self, rng: &mut Rng) -> Vec<f32> {
        each!(self, c => c.init_rows(rng))
    }

    /// The plain network's parameters that compute the network with context `context`.
    pub fn fold(&self, shared: &[f32], context: &[f32]) -> Vec<f32> {
        each!(self, c => c.fold(shared, context))
    }

    /// The direction in the plain network's parameters that moving the context along `v`
    /// takes (the fold is affine in the context, so it holds at every context).
    pub fn push(&self, shared: &[f32], v: &[f64]) -> Vec<f64> {
        each!(self, c => c.push(shared, v))
    }

    /// ∂/∂context from the plain network's gradient `g` at `fold(shared, ·)`.
    pub fn context_grad(&self, shared: &[f32], g: &[f64]) -> Vec<f64> {
        each!(self, c => c.context_grad(shared, g))
    }

    /// ∂/∂shared and ∂/∂context from the plain network's gradient `g` at
    /// `fold(shared, context)`.
    pub fn unfold(&self, shared: &[f32], context: &[f32], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
        each!(self, c => c.unfold(shared, context, g))
    }

    /// The Hessian of the loss in (shared, context) times `(0, v)`, from the plain network's
    /// gradient `g` and Hessian-vector product `hv` along [`push`](Self::push)`(v)`, all at
    /// `fold(shared, context)`.
    pub fn pull_hvp(
        &self,
        shared: &[f32],
        context: &[f32],
        v: &[f64],
        g: &[f64],
        hv: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        each!(self, c => c.pull_hvp(shared, context, v, g, hv))
    }

    /// Where the context enters, in words, for the run's protocol.
    pub fn describe(&self) -> String {
        match self {
            TaskContext::Input(c) => format!(
                "the {} context parameters concatenated to the input",
                c.width
            ),
            TaskContext::Film(c) => format!(
                "the {} context parameters driving a per-channel scale and shift (FiLM) in block {}, before its ReLU",
                c.width, c.block
            ),
        }
    }
}
