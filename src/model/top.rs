//! How every architecture's forward pass ends, written once: the body's features go either
//! through the head and the loss on the batch's targets, or to a loss the caller computes on
//! them ([`FeatureLoss`]); then one backward pass writes every parameter's gradient.

use dfdx::prelude::*;

use super::loss::Taped;
use super::{FeatureLoss, LossOut};
use crate::tasks::Targets;

/// A 1-D parameter tensor, in the layout's order.
pub(crate) type Param<D> = Tensor<(usize,), f32, D>;

/// What closes a body's forward pass.
pub(crate) enum Top<'a, 'b> {
    /// The head (the last two of the pass's tensors: weight `[d, outputs]`, bias) and the
    /// loss on these targets.
    Head(&'a Targets),
    /// A loss on the `n × d` features that the caller computes.
    Features(&'a mut FeatureLoss<'b>),
}

/// Ends the pass that gave `feats` (`[n, d]`) from `tensors` by `top`, and with `grad`, writes
/// ∂loss/∂tensors into it, the tensors one after another from offset 0.
pub(crate) fn finish<D: Device<f32>>(
    dev: &D,
    feats: Taped<(usize, usize), D>,
    tensors: &[Param<D>],
    top: Top,
    grad: Option<&mut [f32]>,
) -> LossOut {
    let (n, d) = *feats.shape();
    let (out, traced) = match top {
        Top::Head(targets) => {
            let head = tensors.len() - 2;
            let o = tensors[head + 1].shape().0;
            let w = tensors[head].clone().reshape_like(&(d, o));
            let b = tensors[head + 1]
                .clone()
                .broadcast_like::<(usize, usize), Axis<0>>(&(n, o));
            let (loss, correct) = super::loss::loss(dev, feats.matmul(w) + b, targets);
            let value = loss.as_vec()[0];
            let out = LossOut {
                loss: value,
                correct,
            };
            (out, loss)
        }
        Top::Features(head) => {
            let (out, df) = head(&feats.as_vec(), d);
            if grad.is_none() {
                return out;
            }
            // A scalar whose gradient with respect to the features is `df`: ⟨feats, df⟩.
            let scalar = (feats * dev.tensor_from_vec(df, (n, d))).sum::<(), _>();
            (out, scalar)
        }
    };
    if let Some(dst) = grad {
        let g = traced.backward();
        let mut offset = 0;
        for t in tensors {
            let len = t.shape().0;
            g.get(t).copy_into(&mut dst[offset..offset + len]);
            offset += len;
        }
    }
    out
}
