//! Summary statistics reported with every evaluation.

use serde::{Deserialize, Serialize};

/// Mean with a 95% confidence interval half-width (normal approximation, 1.96·s/√n).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    pub mean: f64,
    pub ci95: f64,
    pub n: usize,
}

impl MeanCi {
    pub fn of(values: &[f64]) -> MeanCi {
        let n = values.len();
        if n == 0 {
            return MeanCi {
                mean: f64::NAN,
                ci95: f64::NAN,
                n,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let ci95 = if n < 2 {
            f64::NAN
        } else {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            1.96 * (var / n as f64).sqrt()
        };
        MeanCi { mean, ci95, n }
    }
}

/// Two-sided 95% critical values of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// t₀.₉₇₅ with `df` degrees of freedom; beyond 30, the Cornish–Fisher expansion around 1.96
/// (within 0.001 of the exact value there).
pub fn t975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T975[df - 1],
        _ => {
            let z: f64 = 1.959_964;
            let d = df as f64;
            z + (z.powi(3) + z) / (4.0 * d)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
        }
    }
}

impl MeanCi {
    /// Mean with a 95% interval from Student's t: for few samples, such as results over seeds,
    /// where 1.96 would claim too much (with 5 seeds the factor is 2.776).
    pub fn of_t(values: &[f64]) -> MeanCi {
        let m = MeanCi::of(values);
        MeanCi {
            ci95: m.ci95 / 1.96 * t975(values.len().saturating_sub(1)),
            ..m
        }
    }
}

impl std::fmt::Display for MeanCi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} ± {:.4}", self.mean, self.ci95)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_ci_of_known_values() {
        let m = MeanCi::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        // sample sd = 1.29099; 1.96 * 1.29099 / 2
        assert!((m.ci95 - 1.265_17).abs() < 1e-4);
    }

    #[test]
    fn t_interval_over_few_seeds() {
        let m = MeanCi::of_t(&[1.0, 2.0, 3.0, 4.0]);
        // t(0.975, 3) = 3.182; sd 1.29099 / √4
        assert!((m.ci95 - 3.182 * 1.290_994 / 2.0).abs() < 1e-4);
        assert!(MeanCi::of_t(&[1.0]).ci95.is_nan());
        // The expansion meets the table and tends to the normal value.
        assert!((t975(31) - 2.040).abs() < 2e-3);
        assert!((t975(120) - 1.980).abs() < 1e-3);
    }
}
