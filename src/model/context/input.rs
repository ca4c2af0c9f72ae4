//! A task context concatenated to an MLP's input, as CAVIA feeds its context parameters to
//! MLPs (Zintgraf et al. 2019).
//!
//! The first layer takes `[x, φ]` with the weight `[W_x; W_φ]` (`[in + width, out]`), so its
//! pre-activation is `x·W_x + φ·W_φ + b`. The context term is the same for every example: the
//! network with a context is the plain network whose first bias is `b + φ·W_φ`
//! ([`InputContext::fold`]). Every evaluator and backend therefore runs it unchanged, exactly,
//! and its gradients follow from the plain network's by the chain rule through that one bias
//! ([`InputContext::unfold`]).
//!
//! The shared parameters are the plain network's vector followed by the context rows `W_φ`
//! (`width × out`, row-major: the last `width` rows of the concatenated first weight).

use rand::Rng as _;

use crate::experiment::ModelSpec;
use crate::model::{ModelError, Network};
use crate::tasks::Rng;

/// Where a context of `width` values enters a network's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputContext {
    pub width: usize,
    /// The plain network's parameter count; the context rows start here.
    base_len: usize,
    /// Offset of the first layer's bias in the plain network's vector.
    bias: usize,
    /// The first layer's outputs: the bias's length, a context row's length.
    outputs: usize,
    /// The first layer's input width without the context.
    inputs: usize,
}

impl InputContext {
    /// A context of `width` values on `net`'s input. Only an MLP takes its context at the input
    /// (a conv net takes it through FiLM: `super::film`).
    pub fn new(net: &Network, width: usize) -> Result<InputContext, ModelError> {
        if !matches!(net.spec, ModelSpec::Mlp(_)) {
            return Err(ModelError::NoFilmBlock);
        }
        // An MLP's layout starts with the first layer's weight `[in, out]`, then its bias.
        let (weight, bias) = (&net.layout.tensors[0], &net.layout.tensors[1]);
        Ok(InputContext {
            width,
            base_len: net.layout.total,
            bias: bias.offset,
            outputs: bias.len(),
            inputs: weight.shape[0],
        })
    }

    /// The plain network's parameter count.
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// The shared parameters: the plain network's and the context rows.
    pub fn shared_len(&self) -> usize {
        self.base_len + self.width * self.outputs
    }

    /// The context rows, drawn as the concatenated first weight's: uniform in ±1/√fan_in with
    /// the context counted in the fan-in.
    pub fn init_rows(&self, rng: &mut Rng) -> Vec<f32> {
        let bound = 1.0 / ((self.inputs + self.width).max(1) as f32).sqrt();
        (0..self.width * self.outputs)
            .map(|_| rng.gen_range(-bound..bound))
            .collect()
    }

    /// The context's shift of the first bias, `φ·W_φ`, for a direction or a value `v` of the
    /// context.
    fn shift(&self, shared: &[f32], v: &[f64]) -> Vec<f64> {
        let rows = &shared[self.base_len..];
        let mut s = vec![0.0f64; self.outputs];
        for (j, &vj) in v.iter().enumerate() {
            for (s, &w) in s
                .iter_mut()
                .zip(&rows[j * self.outputs..(j + 1) * self.outputs])
            {
                *s += vj * w as f64;
            }
        }
        s
    }

    /// The plain network's parameters that compute the network with context `context`.
    pub fn fold(&self, shared: &[f32], context: &[f32]) -> Vec<f32> {
        let mut base = shared[..self.base_len].to_vec();
        let v: Vec<f64> = context.iter().map(|&c| c as f64).collect();
        for (b, s) in base[self.bias..self.bias + self.outputs]
            .iter_mut()
            .zip(self.shift(shared, &v))
        {
            *b = (*b as f64 + s) as f32;
        }
        base
    }

    /// The direction in the plain network's parameters that moving the context along `v`
    /// takes: the first bias moves by `v·W_φ`, nothing else.
    pub fn push(&self, shared: &[f32], v: &[f64]) -> Vec<f64> {
        let mut d = vec![0.0f64; self.base_len];
        d[self.bias..self.bias + self.outputs].copy_from_slice(&self.shift(shared, v));
        d
    }

    /// ∂/∂context from the plain network's gradient `g` at `fold(shared, ·)`: `W_φ·∂b`.
    pub fn context_grad(&self, shared: &[f32], g: &[f64]) -> Vec<f64> {
        let gb = &g[self.bias..self.bias + self.outputs];
        shared[self.base_len..]
            .chunks(self.outputs)
            .map(|row| row.iter().zip(gb).map(|(&w, &b)| w as f64 * b).sum())
            .collect()
    }

    /// ∂/∂shared and ∂/∂context from the plain network's gradient `g` at
    /// `fold(shared, context)`: the plain parameters' own, `φ ⊗ ∂b` for the context rows, and
    /// [`context_grad`](Self::context_grad) for the context.
    pub fn unfold(&self, shared: &[f32], context: &[f32], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let gb = &g[self.bias..self.bias + self.outputs];
        let mut d_shared = Vec::with_capacity(self.shared_len());
        d_shared.extend_from_slice(g);
        for &c in context {
            d_shared.extend(gb.iter().map(|&b| c as f64 * b));
        }
        (d_shared, self.context_grad(shared, g))
    }

    /// The Hessian of the loss in (shared, context) times `(0, v)`, from the plain network's
    /// gradient `g` and Hessian-vector product `hv` along [`push`](Self::push)`(v)`, all at
    /// `fold(shared, context)`: the derivative of [`unfold`](Self::unfold) along the context
    /// moving by `v`, whose context rows also gain `v ⊗ ∂b`.
    pub fn pull_hvp(
        &self,
        shared: &[f32],
        context: &[f32],
        v: &[f64],
        g: &[f64],
        hv: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut d_shared, d_context) = self.unfold(shared, context, hv);
        let gb = &g[self.bias..self.bias + self.outputs];
        for (j, &vj) in v.iter().enumerate() {
            let at = self.base_len + j * self.outputs;
            for (d, &b) in d_shared[at..at + self.outputs].iter_mut().zip(gb) {
                *d += vj * b;
            }
        }
        (d_shared, d_context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{Activation, MlpSpec};
    use crate::tasks::{Batch, FamilyShape, Targets, TaskKind};
    use rand::SeedableRng;

    fn net(inputs: usize) -> Network {
        let spec = ModelSpec::Mlp(MlpSpec {
            hidden: vec![6],
            activation: Activation::Tanh,
        });
        let shape = FamilyShape {
            input: vec![inputs],
            outputs: 2,
            kind: TaskKind::Regression,
        };
        Network::new(&spec, &shape).unwrap()
    }

    /// The folded network against the network that really concatenates: a plain MLP on
    /// `[x, φ]` inputs, its first weight the shared rows stacked, the same values.
    #[test]
    fn folding_the_context_into_the_bias_is_concatenating_it_to_the_input() {
        let (inputs, width, n) = (3, 2, 4);
        let small = net(inputs);
        let wide = net(inputs + width);
        let ctx = InputContext::new(&small, width).unwrap();
        let mut rng = Rng::seed_from_u64(5);
        let mut shared = small.init(&mut rng);
        shared.extend(ctx.init_rows(&mut rng));
        let phi = [0.7f32, -1.3];
        let x: Vec<f32> = (0..n * inputs).map(|i| (i as f32 * 0.37).sin()).collect();
        let y = Targets::Values((0..n * 2).map(|i| i as f32 * 0.1).collect());
        // The wide network's first weight: the plain rows, then the context rows.
        let w0 = inputs * 6;
        let mut wide_params = shared[..w0].to_vec();
        wide_params.extend_from_slice(&shared[ctx.base_len()..]);
        wide_params.extend_from_slice(&shared[w0..ctx.base_len()]);
        let mut xc = vec![];
        for r in 0..n {
            xc.extend_from_slice(&x[r * inputs..(r + 1) * inputs]);
            xc.extend_from_slice(&phi);
        }
        let mut ev_small = small
            .evaluator(crate::experiment::DeviceSpec::Cpu, 0)
            .unwrap();
        let mut ev_wide = wide
            .evaluator(crate::experiment::DeviceSpec::Cpu, 0)
            .unwrap();
        let b = Batch { n, x, y: y.clone() };
        let bc = Batch { n, x: xc, y };
        let mut g = vec![0.0f32; small.num_params()];
        let folded = ev_small.evaluate(&ctx.fold(&shared, &phi), &b, Some(&mut g));
        let mut gw = vec![0.0f32; wide.num_params()];
        let concat = ev_wide.evaluate(&wide_params, &bc, Some(&mut gw));
        assert!((folded.loss - concat.loss).abs() < 1e-6 * concat.loss.max(1.0));
        // The context rows' gradient is the wide weight's last rows'.
        let g64: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        let (d_shared, _) = ctx.unfold(&shared, &phi, &g64);
        for (a, b) in d_shared[ctx.base_len()..]
            .iter()
            .zip(&gw[w0..w0 + width * 6])
        {
            assert!((a - *b as f64).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(d_shared.len(), ctx.shared_len());
    }

    #[test]
    fn a_conv_net_takes_no_input_context() {
        let spec = ModelSpec::Conv(crate::experiment::ConvSpec {
            blocks: 1,
            channels: 2,
            batch_norm: false,
        });
        let shape = FamilyShape {
            input: vec![1, 4, 4],
            outputs: 2,
            kind: TaskKind::Classification,
        };
        let conv = Network::new(&spec, &shape).unwrap();
        assert!(matches!(
            InputContext::new(&conv, 2),
            Err(ModelError::NoFilmBlock)
        ));
    }
}
