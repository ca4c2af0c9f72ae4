//! What the three comparisons share: the loss's output, the support set's classes and their
//! means, and the uniform initialisation of a module's parameters.

use rand::Rng as _;

use crate::tasks::Rng;

/// Loss of one episode, with gradients for the features and the module's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOut {
    pub value: f64,
    /// Query examples classified correctly.
    pub correct: usize,
    /// ∂loss/∂features, `(ns + nq) × d`, support rows first.
    pub features: Vec<f64>,
    /// ∂loss/∂module parameters (empty for parameter-free comparisons).
    pub module: Vec<f64>,
}

/// Classes in an episode: one more than the largest support label.
pub fn ways(support: &[usize]) -> usize {
    support.iter().max().map_or(0, |m| m + 1)
}

/// Class means of the support rows (`ways × d`) and each class's count.
pub fn class_means(features: &[f64], d: usize, support: &[usize]) -> (Vec<f64>, Vec<usize>) {
    let w = ways(support);
    let mut c = vec![0.0f64; w * d];
    let mut counts = vec![0usize; w];
    for (j, &y) in support.iter().enumerate() {
        counts[y] += 1;
        for a in 0..d {
            c[y * d + a] += features[j * d + a];
        }
    }
    for k in 0..w {
        let inv = 1.0 / counts[k].max(1) as f64;
        for v in &mut c[k * d..(k + 1) * d] {
            *v *= inv;
        }
    }
    (c, counts)
}

/// Spread the gradient of the class means back onto the support rows.
pub(super) fn spread_means(
    dc: &[f64],
    d: usize,
    support: &[usize],
    counts: &[usize],
    out: &mut [f64],
) {
    for (j, &y) in support.iter().enumerate() {
        let inv = 1.0 / counts[y] as f64;
        for a in 0..d {
            out[j * d + a] += dc[y * d + a] * inv;
        }
    }
}

/// Uniform ±1/√fan_in.
pub(super) fn uniform(len: usize, fan_in: usize, rng: &mut Rng) -> Vec<f32> {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    (0..len).map(|_| rng.gen_range(-bound..bound)).collect()
}
