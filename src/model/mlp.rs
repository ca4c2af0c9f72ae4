//! Fully connected network on any dfdx device.

use dfdx::prelude::*;

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

impl<D: Device<f32>> Evaluator for MlpEval<D> {
    fn evaluate_with(
        &mut self,
        params: &[f32],
        batch: &Batch,
        grad: Option<&mut [f32]>,
        mut kinks: Kinks,
    ) -> LossOut {
        let n = batch.n;
        let dev = &self.dev;
        let tensors = self.param_tensors(params, self.dims.len());
        let last = self.dims.len() - 1;
        let h = self.body(&tensors, &batch.x, n, &mut kinks);
        let (i, o) = self.dims[last];
        let w = tensors[2 * last].clone().reshape_like(&(i, o));
        let b = tensors[2 * last + 1]
            .clone()
            .broadcast_like::<(usize, usize), Axis<0>>(&(n, o));
        let h = h.matmul(w) + b;
        let (loss, correct) = super::loss::loss(dev, h, &batch.y);
        let value = loss.as_vec()[0];
        if let Some(out) = grad {
            let g = loss.backward();
            let mut offset = 0;
            for t in &tensors {
                let gv = g.get(t).as_vec();
                out[offset..offset + gv.len()].copy_from_slice(&gv);
                offset += gv.len();
            }
        }
        LossOut {
            loss: value,
            correct,
        }
    }

    fn features(
        &mut self,
        body: &[f32],
        n: usize,
        x: &[f32],
        grad: Option<&mut [f32]>,
        head: &mut FeatureLoss,
    ) -> LossOut {
        let dev = &self.dev;
        let tensors = self.param_tensors(body, self.dims.len() - 1);
        let h = self.body(&tensors, x, n, &mut Kinks::Free);
        let d = h.shape().1;
        let (out, df) = head(&h.as_vec(), d);
        if let Some(out) = grad {
            // A scalar whose gradient with respect to the features is `df`: ⟨h, df⟩.
            let g = (h * dev.tensor_from_vec(df, (n, d)))
                .sum::<(), _>()
                .backward();
            let mut offset = 0;
            for t in &tensors {
                let gv = g.get(t).as_vec();
                out[offset..offset + gv.len()].copy_from_slice(&gv);
                offset += gv.len();
            }
        }
        out
    }
}
