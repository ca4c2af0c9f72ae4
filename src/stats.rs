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
}
