//! Prototypical Networks (Snell, Swersky & Zemel 2017): each class's prototype is the mean of
//! its support embeddings, and a query's logits are the negative squared Euclidean distances to
//! the prototypes; the loss is the mean cross-entropy over the query set.

use super::shared::{class_means, spread_means, ways, MetricOut};
use crate::model::head::softmax_cross_entropy;

pub fn loss(features: &[f64], d: usize, support: &[usize], query: &[usize]) -> MetricOut {
    let (ns, w) = (support.len(), ways(support));
    let (c, counts) = class_means(features, d, support);
    let q = &features[ns * d..];
    let mut z = vec![0.0f64; query.len() * w];
    for i in 0..query.len() {
        for k in 0..w {
            z[i * w + k] = -(0..d)
                .map(|a| (q[i * d + a] - c[k * d + a]).powi(2))
                .sum::<f64>();
        }
    }
    let mut dz = vec![0.0f64; z.len()];
    let (value, correct) = softmax_cross_entropy(&z, w, query, &mut dz);
    let mut grad = vec![0.0f64; features.len()];
    let mut dc = vec![0.0f64; w * d];
    for i in 0..query.len() {
        for k in 0..w {
            let g = dz[i * w + k];
            for a in 0..d {
                let diff = q[i * d + a] - c[k * d + a];
                grad[(ns + i) * d + a] -= 2.0 * g * diff;
                dc[k * d + a] += 2.0 * g * diff;
            }
        }
    }
    spread_means(&dc, d, support, &counts, &mut grad);
    MetricOut {
        value,
        correct,
        features: grad,
        module: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metric::testing::{check_fd, values};

    #[test]
    fn gradient_matches_finite_differences() {
        let d = 4;
        let support = [0, 1, 2, 0, 1, 2];
        let query = [2, 0, 1, 1];
        let f = values((support.len() + query.len()) * d, 7);
        let out = loss(&f, d, &support, &query);
        check_fd(&f, &out.features, |x| loss(x, d, &support, &query).value);
    }

    #[test]
    fn queries_on_their_prototype_are_classified_and_logits_are_distances() {
        // Two 1-shot classes at (0, 0) and (3, 4); queries at each.
        let f = [0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 3.0, 4.0];
        let out = loss(&f, 2, &[0, 1], &[0, 1]);
        assert_eq!(out.correct, 2);
        // Logits (0, −25) for each query: loss = ln(1 + e^{−25}).
        assert!((out.value - (1.0 + (-25f64).exp()).ln()).abs() < 1e-12);
        let swapped = loss(&f, 2, &[0, 1], &[1, 0]);
        assert_eq!(swapped.correct, 0);
        assert!((swapped.value - 25.0).abs() < 1e-9);
    }
}
