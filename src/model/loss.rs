//! The loss on a network's outputs, shared by every architecture.

use dfdx::prelude::*;

use crate::tasks::Targets;

pub type Taped<S, D> = Tensor<S, f32, D, OwnedTape<f32, D>>;

/// Mean squared error against values, or mean cross-entropy against classes (with the number
/// of correctly classified rows) for outputs `n × outputs`.
pub fn loss<D: Device<f32>>(
    dev: &D,
    out: Taped<(usize, usize), D>,
    targets: &Targets,
) -> (Taped<(), D>, Option<usize>) {
    let (n, outputs) = *out.shape();
    match targets {
        Targets::Values(y) => {
            let y = dev.tensor_from_vec(y.clone(), (n, outputs));
            (mse_loss(out, y), None)
        }
        Targets::Classes(labels) => {
            let correct = count_correct(&out.as_vec(), labels, outputs);
            let mut onehot = vec![0.0f32; n * outputs];
            for (r, &c) in labels.iter().enumerate() {
                onehot[r * outputs + c] = 1.0;
            }
            let y = dev.tensor_from_vec(onehot, (n, outputs));
            (cross_entropy_with_logits_loss(out, y), Some(correct))
        }
    }
}

/// Examples whose highest logit is the label (ties go to the lower class index).
pub fn count_correct(logits: &[f32], labels: &[usize], classes: usize) -> usize {
    labels
        .iter()
        .enumerate()
        .filter(|&(r, &label)| {
            let row = &logits[r * classes..(r + 1) * classes];
            let mut best = 0;
            for c in 1..classes {
                if row[c] > row[best] {
                    best = c;
                }
            }
            best == label
        })
        .count()
}
