//! The f64 arithmetic of Hessian-vector products by central differences of gradients, and of
//! second-order MAML's backward pass through them (`lockstep::hvps`,
//! `LockStepModel::step_back`): `H·v ≈ (g(θ + r·v) − g(θ − r·v)) / 2r` with `r = ε/‖v‖`. The
//! host reference a device backend's kernels are held to, bit for bit.

/// The length of the blocks [`sum_sq`] sums one at a time: a device sums the blocks in parallel,
/// each in index order, and gets the same bits.
pub const SUM_BLOCK: usize = 1024;

/// `Σ vᵢ²` in f64: each block of [`SUM_BLOCK`] values summed in index order, then the blocks'
/// sums added in order ([`add_blocks`], which a device that summed the blocks calls too).
pub fn sum_sq(v: &[f64]) -> f64 {
    let blocks: Vec<f64> = v
        .chunks(SUM_BLOCK)
        .map(|c| c.iter().fold(0.0, |s, x| s + x * x))
        .collect();
    add_blocks(&blocks)
}

/// The blocks' sums of squares of [`sum_sq`] added in block order: its last step.
pub fn add_blocks(sums: &[f64]) -> f64 {
    sums.iter().sum()
}

/// The finite-difference radius `ε/‖v‖` for a vector whose squared norm is `sum_sq`, or `None`
/// for a zero (or not finite) vector, whose HVP is zero and costs nothing.
pub fn radius(sum_sq: f64, eps: f64) -> Option<f64> {
    let norm = sum_sq.sqrt();
    (norm != 0.0 && norm.is_finite()).then(|| eps / norm)
}

/// `(θ + s·v) as f32`, in f64: a shifted point of the HVP (`s = ±r`).
pub fn shifted(theta: &[f32], v: &[f64], s: f64) -> Vec<f32> {
    theta
        .iter()
        .zip(v)
        .map(|(&t, &v)| (t as f64 + s * v) as f32)
        .collect()
}

/// `H·v` from the gradients at θ + r·v and θ − r·v, `two_r` being `2r`.
pub fn central(plus: &[f32], minus: &[f32], two_r: f64) -> Vec<f64> {
    plus.iter()
        .zip(minus)
        .map(|(&a, &b)| (a as f64 - b as f64) / two_r)
        .collect()
}

/// `v ← v − lr·h`: one step back through an inner SGD step of rate `lr`, `h` being `H·v`.
pub fn step_back_host(v: &mut [f64], h: &[f64], lr: f64) {
    for (v, h) in v.iter_mut().zip(h) {
        *v -= lr * h;
    }
}
