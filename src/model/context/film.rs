//! A task context that drives FiLM (Perez et al. 2018) in a conv net, as CAVIA conditions its
//! conv nets (Zintgraf et al. 2019): after block `N`'s batch norm (its conv when there is no
//! batch norm), before its ReLU and pooling, channel `c` becomes `γ_c·h_c + β_c` with
//! `γ = 1 + φ·W_γ` and `β = φ·W_β`, linear in the context φ.
//!
//! The paper's FiLM layer is a linear layer with a bias; here its bias is left out because
//! the block's own per-channel affine already is that bias (a scale and shift of the same
//! channel), and the `1 +` makes the zero context the plain network, as CAVIA's reset wants.
//!
//! A per-channel affine map right after another one is a change of that one's parameters:
//! `γ·(s·x̂ + t) + β = (γs)·x̂ + (γt + β)` with batch norm's scale `s` and shift `t`, and
//! `γ·(W∗x + b) + β = (γW)∗x + (γb + β)` on the conv's filter and bias without it. So, as for
//! the MLP's input context (`super::input`), the conditioned network is the plain network with
//! changed parameters ([`FilmContext::fold`]): every evaluator and backend runs it exactly, and
//! the gradients follow by the chain rule.
//!
//! The shared parameters are the plain network's vector, then `W_γ`, then `W_β` (each
//! `width × channels`, row-major).

use rand::Rng as _;

use crate::experiment::ModelSpec;
use crate::model::{ModelError, Network};
use crate::tasks::Rng;

/// Where a context of `width` values enters a conv net through FiLM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilmContext {
    pub width: usize,
    /// The conditioned block, counted from 1.
    pub block: usize,
    /// The plain network's parameter count; `W_γ` starts here.
    base_len: usize,
    /// The block's output channels.
    channels: usize,
    /// Offset of the per-channel tensor FiLM scales wholly: the conv's filters `[c, in, 3, 3]`
    /// without batch norm, batch norm's scale with it.
    scaled: usize,
    /// Values of the scaled tensor per channel: `in·9` filter taps, or 1.
    per_channel: usize,
    /// Offset of the per-channel shift that FiLM scales and then shifts: the conv's bias, or
    /// batch norm's shift.
    shift: usize,
}

impl FilmContext {
    /// FiLM after `block` (counted from 1) of a conv net.
    pub fn new(net: &Network, width: usize, block: usize) -> Result<FilmContext, ModelError> {
        let ModelSpec::Conv(spec) = &net.spec else {
            return Err(ModelError::FilmNeedsConv);
        };
        if block == 0 || block > spec.blocks {
            return Err(ModelError::FilmBlock {
                block,
                blocks: spec.blocks,
            });
        }
        let i = block - 1;
        let find = |name: String| {
            net.layout
                .tensors
                .iter()
                .find(|t| t.name == name)
                .expect("the conv layout names every block's tensors")
        };
        let weight = find(format!("conv{i}.weight"));
        let (scaled, shift) = if spec.batch_norm {
            (find(format!("bn{i}.gamma")), find(format!("bn{i}.beta")))
        } else {
            (weight, find(format!("conv{i}.bias")))
        };
        let channels = weight.shape[0];
        Ok(FilmContext {
            width,
            block,
            base_len: net.layout.total,
            channels,
            scaled: scaled.offset,
            per_channel: scaled.len() / channels,
            shift: shift.offset,
        })
    }

    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// The shared parameters: the plain network's, `W_γ` and `W_β`.
    pub fn shared_len(&self) -> usize {
        self.base_len + 2 * self.width * self.channels
    }

    /// `W_γ` and `W_β`, drawn as a linear layer's from the context (uniform in ±1/√width), the
    /// paper's FiLM layer.
    pub fn init_rows(&self, rng: &mut Rng) -> Vec<f32> {
        let bound = 1.0 / (self.width.max(1) as f32).sqrt();
        (0..2 * self.width * self.channels)
            .map(|_| rng.gen_range(-bound..bound))
            .collect()
    }

    /// `(v·W_γ, v·W_β)` for a value or direction `v` of the context: the change of γ, and β.
    fn film(&self, shared: &[f32], v: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = self.width * self.channels;
        let rows = |at: usize| {
            let mut out = vec![0.0f64; self.channels];
            for (j, &vj) in v.iter().enumerate() {
                let row = &shared[at + j * self.channels..at + (j + 1) * self.channels];
                for (o, &w) in out.iter_mut().zip(row) {
                    *o += vj * w as f64;
                }
            }
            out
        };
        (rows(self.base_len), rows(self.base_len + n))
    }

    /// Channel `c`'s scaled values' range in the plain network's vector.
    fn span(&self, c: usize) -> std::ops::Range<usize> {
        let at = self.scaled + c * self.per_channel;
        at..at + self.per_channel
    }

    /// The shift's index for channel `c` when it is not inside the scaled span (the conv's
    /// bias beside its filters); with batch norm the shift is a tensor of its own too.
    fn shift_at(&self, c: usize) -> usize {
        self.shift + c
    }

    /// The plain network's parameters that compute the network with context `context`.
    pub fn fold(&self, shared: &[f32], context: &[f32]) -> Vec<f32> {
        let v: Vec<f64> = context.iter().map(|&c| c as f64).collect();
        let (dg, beta) = self.film(shared, &v);
        let mut base = shared[..self.base_len].to_vec();
        for c in 0..self.channels {
            let gamma = 1.0 + dg[c];
            for p in &mut base[self.span(c)] {
                *p = (*p as f64 * gamma) as f32;
            }
            let s = &mut base[self.shift_at(c)];
            *s = (*s as f64 * gamma + beta[c]) as f32;
        }
        base
    }

    /// The direction in the plain network's parameters that moving the context along `v`
    /// takes: each scaled value `p` by `(v·W_γ)_c·p`, each shift also by `(v·W_β)_c`.
    pub fn push(&self, shared: &[f32], v: &[f64]) -> Vec<f64> {
        let (dg, beta) = self.film(shared, v);
        let mut d = vec![0.0f64; self.base_len];
        for c in 0..self.channels {
            for i in self.span(c) {
                d[i] = dg[c] * shared[i] as f64;
            }
            let s = self.shift_at(c);
            d[s] = dg[c] * shared[s] as f64 + beta[c];
        }
        d
    }

    /// `∂L/∂γ_c = Σ g_i·p_i` over channel `c`'s scaled values and its shift (their unscaled
    /// shared values `p`), and `∂L/∂β_c = g_shift`, from the plain network's gradient `g`.
    fn film_grads(&self, shared: &[f32], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
        (0..self.channels)
            .map(|c| {
                let s = self.shift_at(c);
                let dot: f64 = self.span(c).map(|i| g[i] * shared[i] as f64).sum();
                (dot + g[s] * shared[s] as f64, g[s])
            })
            .unzip()
    }

    /// ∂/∂context from the plain network's gradient `g` at `fold(shared, ·)`:
    /// `W_γ·∂L/∂γ + W_β·∂L/∂β`.
    pub fn context_grad(&self, shared: &[f32], g: &[f64]) -> Vec<f64> {
        let (gg, gb) = self.film_grads(shared, g);
        self.context_from(shared, &gg, &gb)
    }

    fn context_from(&self, shared: &[f32], gg: &[f64], gb: &[f64]) -> Vec<f64> {
        let n = self.width * self.channels;
        let dot = |row: &[f32], d: &[f64]| -> f64 {
            row.iter().zip(d).map(|(&w, &x)| w as f64 * x).sum()
        };
        (0..self.width)
            .map(|j| {
                let at = self.base_len + j * self.channels;
                dot(&shared[at..at + self.channels], gg)
                    + dot(&shared[at + n..at + n + self.channels], gb)
            })
            .collect()
    }

    /// ∂/∂shared and ∂/∂context from the plain network's gradient `g` at
    /// `fold(shared, context)`: the scaled values' gradients times their γ, the others' as
    /// they are, `φ ⊗ ∂L/∂γ` for `W_γ` and `φ ⊗ ∂L/∂β` for `W_β`; and
    /// [`context_grad`](Self::context_grad).
    pub fn unfold(&self, shared: &[f32], context: &[f32], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let v: Vec<f64> = context.iter().map(|&c| c as f64).collect();
        let (dg, _) = self.film(shared, &v);
        let (gg, gb) = self.film_grads(shared, g);
        let mut d = Vec::with_capacity(self.shared_len());
        d.extend_from_slice(g);
        for c in 0..self.channels {
            let gamma = 1.0 + dg[c];
            for x in &mut d[self.span(c)] {
                *x *= gamma;
            }
            d[self.shift_at(c)] *= gamma;
        }
        for per in [&gg, &gb] {
            for &phi in &v {
                d.extend(per.iter().map(|&x| phi * x));
            }
        }
        let d_context = self.context_from(shared, &gg, &gb);
        (d, d_context)
    }

    /// The Hessian of the loss in (shared, context) times `(0, v)`, from the plain network's
    /// gradient `g` and Hessian-vector product `hv` along [`push`](Self::push)`(v)`, all at
    /// `fold(shared, context)`: [`unfold`](Self::unfold) of `hv`, plus the derivative of
    /// `unfold`'s own factors along the context moving by `v` at `g` held: the scaled values
    /// gain `(v·W_γ)_c·g`, `W_γ` and `W_β` gain `v ⊗ ∂L/∂γ` and `v ⊗ ∂L/∂β`. (∂/∂context's
    /// factors do not depend on the context: the fold is affine in it.)
    pub fn pull_hvp(
        &self,
        shared: &[f32],
        context: &[f32],
        v: &[f64],
        g: &[f64],
        hv: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut d, d_context) = self.unfold(shared, context, hv);
        let (dg, _) = self.film(shared, v);
        let (gg, gb) = self.film_grads(shared, g);
        for (c, &dgc) in dg.iter().enumerate() {
            for i in self.span(c) {
                d[i] += dgc * g[i];
            }
            let s = self.shift_at(c);
            d[s] += dgc * g[s];
        }
        let n = self.width * self.channels;
        for (k, per) in [&gg, &gb].into_iter().enumerate() {
            for (j, &vj) in v.iter().enumerate() {
                let at = self.base_len + k * n + j * self.channels;
                for (x, &y) in d[at..at + self.channels].iter_mut().zip(per) {
                    *x += vj * y;
                }
            }
        }
        (d, d_context)
    }
}
