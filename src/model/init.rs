use rand::Rng as _;

use super::Layout;
use crate::tasks::Rng;

/// Weights and biases uniform in ±1/√fan_in (PyTorch's default for Linear and Conv2d);
/// batch-norm scales 1 and shifts 0. Tensor names decide the rule: `*.gamma`, `*.beta`.
pub fn init_params(layout: &Layout, rng: &mut Rng) -> Vec<f32> {
    let mut p = vec![0.0f32; layout.total];
    for (i, t) in layout.tensors.iter().enumerate() {
        let out = &mut p[t.range()];
        if t.name.ends_with(".gamma") {
            out.fill(1.0);
        } else if t.name.ends_with(".beta") {
            out.fill(0.0);
        } else {
            // A bias takes the fan-in of the weight before it.
            let w = if t.name.ends_with(".bias") && i > 0 {
                &layout.tensors[i - 1]
            } else {
                t
            };
            let fan_in = fan_in(&w.name, &w.shape).max(1);
            let bound = 1.0 / (fan_in as f32).sqrt();
            for v in out.iter_mut() {
                *v = rng.gen_range(-bound..bound);
            }
        }
    }
    p
}

/// Linear weights are stored `[in, out]`; conv weights `[out, in, kh, kw]`.
fn fan_in(name: &str, shape: &[usize]) -> usize {
    if name.starts_with("conv") && shape.len() == 4 {
        shape[1] * shape[2] * shape[3]
    } else {
        shape[0]
    }
}
