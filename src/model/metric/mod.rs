//! Metric-based losses on body features: an episode's support and query examples are embedded
//! by the body in one pass (support rows first), and the loss compares query embeddings with
//! the support set's. No parameters adapt per task; "adaptation" is computing the prototypes or
//! the attention from the support set.
//!
//! Everything here is f64 with hand-written gradients, checked against finite differences;
//! the body's gradient then comes from dfdx through [`super::Evaluator::features`].

pub mod matching;
pub mod proto;
pub mod relation;
mod shared;

pub use shared::{class_means, ways, MetricOut};

use crate::tasks::Rng;

/// Which comparison an arm learns through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Prototypical Networks: logits −‖q − c_k‖² to class means.
    Prototypes,
    /// Matching Networks: softmax attention over scaled cosine similarities to every support
    /// example; the scale is the module's one parameter.
    Matching,
    /// Relation Networks: a learned module scores each (query, class mean) pair.
    Relation { hidden: usize },
}

impl MetricKind {
    /// Parameters of the comparison module for `d`-wide features.
    pub fn module_len(self, d: usize) -> usize {
        match self {
            MetricKind::Prototypes => 0,
            MetricKind::Matching => 1,
            MetricKind::Relation { hidden } => relation::module_len(d, hidden),
        }
    }

    /// PyTorch-default initialisation of the module (uniform ±1/√fan_in).
    pub fn init_module(self, d: usize, rng: &mut Rng) -> Vec<f32> {
        match self {
            MetricKind::Prototypes => vec![],
            MetricKind::Matching => vec![matching::INIT_SCALE],
            MetricKind::Relation { hidden } => relation::init(d, hidden, rng),
        }
    }

    /// `features` holds `support.len()` support rows then `query.len()` query rows, each `d`
    /// wide; labels are 0-based class indices, every class present in the support set.
    pub fn loss(
        self,
        features: &[f64],
        d: usize,
        support: &[usize],
        query: &[usize],
        module: &[f64],
    ) -> MetricOut {
        match self {
            MetricKind::Prototypes => proto::loss(features, d, support, query),
            MetricKind::Matching => matching::loss(features, d, support, query, module[0]),
            MetricKind::Relation { hidden } => {
                relation::loss(features, d, support, query, module, hidden)
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            MetricKind::Prototypes => "class prototypes (mean support embedding), logits = −squared Euclidean distance".into(),
            MetricKind::Matching => format!("softmax attention over learned-scale cosine similarities (scale starts at {}) to every support embedding, label-weighted sum (no full-context embeddings)", matching::INIT_SCALE),
            MetricKind::Relation { hidden } => format!("relation module (MLP on [query, class mean, |query − class mean|] → {hidden} ReLU → sigmoid score), MSE to one-hot"),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    /// Deterministic values in [-1, 1).
    pub fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// `analytic` against central differences of `f` at `x`, in f64.
    pub fn check_fd(x: &[f64], analytic: &[f64], mut f: impl FnMut(&[f64]) -> f64) {
        assert_eq!(x.len(), analytic.len());
        let h = 1e-6;
        let mut p = x.to_vec();
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for i in 0..x.len() {
            p[i] = x[i] + h;
            let a = f(&p);
            p[i] = x[i] - h;
            let b = f(&p);
            p[i] = x[i];
            let fd = (a - b) / (2.0 * h);
            num += (fd - analytic[i]).powi(2);
            den += fd * fd;
        }
        let err = (num / den.max(1e-300)).sqrt();
        assert!(
            den > 0.0,
            "the gradient is identically zero: the check would be vacuous"
        );
        assert!(err < 1e-6, "relative gradient error {err:.2e}");
    }
}
