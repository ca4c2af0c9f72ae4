//! Fully connected network on any dfdx device.

use dfdx::prelude::*;

use super::top::{finish, Top};
use super::{Evaluator, FeatureLoss, Kinks, Layout, LossOut};
use crate::experiment::{Activation, MlpSpec};
use crate::tasks::{Batch, FamilyShape};

pub fn layout(spec: &MlpSpec, shape: &FamilyShape) -> Layout {
    let mut l = Layout {
        tensors: vec![],
        total: 0,
        head_start: 0,
    };
    let mut width = shape.input_len();
    for (i, &h) in spec.hidden.iter().enumerate() {
        l.push(format!("fc{i}.weight"), vec![width, h]);
        l.push(format!("fc{i}.bias"), vec![h]);
        width = h;
    }
    l.mark_head();
    l.push("head.weight", vec![width, shape.outputs]);
    l.push("head.bias", vec![shape.outputs]);
    l
}

pub struct MlpEval<D: Device<f32>> {
    dev: D,
    /// (in, out) of each layer; the last is the head.
    dims: Vec<(usize, usize)>,
    activation: Activation,
    input_len: usize,
}

impl<D: Device<f32>> MlpEval<D> {
    pub fn new(dev: D, spec: &MlpSpec, shape: &FamilyShape, layout: &Layout) -> Self {
        let dims = layout
            .tensors
            .iter()
            .filter(|t| t.name.ends_with(".weight"))
            .map(|t| (t.shape[0], t.shape[1]))
            .collect();
        MlpEval {
            dev,
            dims,
            activation: spec.activation,
            input_len: shape.input_len(),
        }
    }
}

impl<D: Device<f32>> MlpEval<D> {
    /// The weights and biases of the first `layers` layers, from `values` (exactly their
    /// length). Each is a 1-D untaped tensor; reshaping keeps its id, so the gradients of the
    /// reshaped views land under it.
    fn param_tensors(&self, values: &[f32], layers: usize) -> Vec<Tensor<(usize,), f32, D>> {
        let mut offset = 0;
        let mut tensors = Vec::with_capacity(layers * 2);
        for &(i, o) in &self.dims[..layers] {
            for len in [i * o, o] {
                tensors.push(
                    self.dev
                        .tensor_from_vec(values[offset..offset + len].to_vec(), (len,)),
                );
                offset += len;
            }
        }
        assert_eq!(offset, values.len(), "parameter vector length");
        tensors
    }

    /// The body's forward pass, written once for the loss and for `features`: every layer but
    /// the head, with weights and biases the first of `tensors` (in the layout's order), on `n`
    /// inputs `x`, each ReLU's branch as `kinks` says.
    fn body(
        &self,
        tensors: &[Tensor<(usize,), f32, D>],
        x: &[f32],
        n: usize,
        kinks: &mut Kinks,
    ) -> Tensor<(usize, usize), f32, D, OwnedTape<f32, D>> {
        let dev = &self.dev;
        let mut h = dev
            .tensor_from_vec(x.to_vec(), (n, self.input_len))
            .leaky_trace();
        for (l, &(i, o)) in self.dims[..self.dims.len() - 1].iter().enumerate() {
            let w = tensors[2 * l].clone().reshape_like(&(i, o));
            let b = tensors[2 * l + 1]
                .clone()
                .broadcast_like::<(usize, usize), Axis<0>>(&(n, o));
            h = h.matmul(w) + b;
            h = match (self.activation, &mut *kinks) {
                (Activation::Tanh, _) => h.tanh(),
                (Activation::Relu, Kinks::Free) => h.relu(),
                // relu(x) = x·[x > 0], with the mask held constant.
                (Activation::Relu, Kinks::Record(pattern)) => {
                    let code: Vec<u8> = h.as_vec().iter().map(|&v| (v > 0.0) as u8).collect();
                    let mask = code.iter().map(|&c| c as f32).collect();
                    pattern.codes.push(code);
                    h * dev.tensor_from_vec(mask, (n, o))
                }
                (Activation::Relu, Kinks::Replay(pattern)) => {
                    let mask = pattern.codes[l].iter().map(|&c| c as f32).collect();
                    h * dev.tensor_from_vec(mask, (n, o))
                }
            };
        }
        h
    }
}

impl<D: Device<f32>> MlpEval<D> {
    /// The whole pass, written once for the loss and for `features`: `values` are the first
    /// `layers` layers' parameters (all of them, or the body's), closed by `top`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        values: &[f32],
        layers: usize,
        x: &[f32],
        n: usize,
        kinks: &mut Kinks,
        top: Top,
        grad: Option<&mut [f32]>,
    ) -> LossOut {
        let tensors = self.param_tensors(values, layers);
        let h = self.body(&tensors, x, n, kinks);
        finish(&self.dev, h, &tensors, top, grad)
    }
}

impl<D: Device<f32>> Evaluator for MlpEval<D> {
    fn evaluate_with(
        &mut self,
        params: &[f32],
        batch: &Batch,
        grad: Option<&mut [f32]>,
        mut kinks: Kinks,
    ) -> LossOut {
        let top = Top::Head(&batch.y);
        let layers = self.dims.len();
        self.run(params, layers, &batch.x, batch.n, &mut kinks, top, grad)
    }

    fn features(
        &mut self,
        body: &[f32],
        n: usize,
        x: &[f32],
        grad: Option<&mut [f32]>,
        head: &mut FeatureLoss,
    ) -> LossOut {
        let layers = self.dims.len() - 1;
        let top = Top::Features(head);
        self.run(body, layers, x, n, &mut Kinks::Free, top, grad)
    }
}
