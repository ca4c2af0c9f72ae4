//! Batch normalisation with batch statistics (the transductive setting of MAML: every batch,
//! support or query, is normalised by its own mean and variance; there are no running averages).
//!
//! For one channel with values `y` (all images, all positions, `m` of them):
//! `x̂ = (y − mean)·invstd`, `z = γ·x̂ + β`, with the biased variance, as PyTorch uses in training.

use super::reduce;

/// PyTorch's default.
pub const EPS: f32 = 1e-5;

/// Mean and 1/√(variance + EPS) of one channel.
pub fn stats(row: &[f32]) -> (f32, f32) {
    let m = row.len().max(1) as f64;
    let mean = (reduce::sum(row) / m) as f32;
    let var = reduce::sum_sq_dev(row, mean) / m;
    (mean, (1.0 / (var + EPS as f64).sqrt()) as f32)
}

/// Sums over the channel that the backward pass needs, from `dz = ∂L/∂z`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GradSums {
    /// Σ dz, which is also ∂L/∂β.
    pub dz: f64,
    /// Σ dz·x̂, which is also ∂L/∂γ.
    pub dz_xhat: f64,
}

/// The part of `∂L/∂y` that every position of the channel gets, `−γ·invstd·(Σdz + x̂·Σdz·x̂)/m`,
/// as `offset + slope·y`. The rest, `γ·invstd·dz`, lands only where `dz ≠ 0`; after max pooling
/// that is only at the winners, which is why the two parts are kept apart.
pub fn spread_terms(m: usize, mean: f32, invstd: f32, gamma: f32, sums: GradSums) -> (f32, f32) {
    let m = m.max(1) as f64;
    let k = (gamma * invstd) as f64;
    let per_dz = (k * sums.dz / m) as f32;
    let per_xhat = (k * sums.dz_xhat / m) as f32;
    // −per_dz − per_xhat·(y − mean)·invstd
    let slope = -per_xhat * invstd;
    (-per_dz - slope * mean, slope)
}
