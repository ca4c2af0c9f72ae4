//! Shared helpers for the ops' tests.

/// Deterministic values in [-1, 1), different for each `seed`.
pub fn lcg_values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// An analytic gradient against a finite-difference estimate, with room for f32 rounding.
pub fn assert_close(analytic: f32, numeric: f64, what: &str) {
    let err = (analytic as f64 - numeric).abs();
    assert!(
        err <= 2e-3 + 1e-2 * numeric.abs(),
        "{what}: analytic {analytic} vs finite differences {numeric}"
    );
}
