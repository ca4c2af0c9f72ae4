//! The network's linear head on fixed body features, in f64, with its gradients.
//!
//! ANIL adapts only the head, so its inner loop needs the head's loss and gradient on features
//! computed once per task — no pass through the body per step. The loss is the one
//! [`super::loss::loss`] computes on the network's outputs (MSE over every output, mean
//! cross-entropy over rows), so a head adapted here scores the same as through the network.

use super::LossOut;
use crate::tasks::Targets;

/// Loss of the head `(weight [d × o] row-major, then bias [o])` — the layout's `head.weight`,
/// `head.bias` — on `n × d` features.
pub struct HeadGrad {
    pub out: LossOut,
    /// The loss in f64 (`out.loss` rounded to f32).
    pub value: f64,
    /// ∂loss/∂head, same layout as the head.
    pub head: Vec<f64>,
    /// ∂loss/∂features, `n × d`.
    pub features: Vec<f64>,
}

/// Outputs `n × o` of the head on the features.
pub fn outputs(features: &[f64], n: usize, d: usize, head: &[f64], o: usize) -> Vec<f64> {
    let (w, b) = head.split_at(d * o);
    let mut z = vec![0.0f64; n * o];
    for r in 0..n {
        let row = &mut z[r * o..(r + 1) * o];
        row.copy_from_slice(b);
        for (a, &f) in features[r * d..(r + 1) * d].iter().enumerate() {
            for (zc, wc) in row.iter_mut().zip(&w[a * o..(a + 1) * o]) {
                *zc += f * wc;
            }
        }
    }
    z
}

/// Loss and gradients of the head on `n × d` features against `targets`; `o` outputs.
pub fn loss(
    features: &[f64],
    n: usize,
    d: usize,
    head: &[f64],
    o: usize,
    targets: &Targets,
) -> HeadGrad {
    let z = outputs(features, n, d, head, o);
    let mut dz = vec![0.0f64; n * o];
    let (loss, correct) = match targets {
        Targets::Values(y) => {
            let m = (n * o) as f64;
            let mut l = 0.0;
            for (i, (&zi, &yi)) in z.iter().zip(y).enumerate() {
                let e = zi - yi as f64;
                l += e * e;
                dz[i] = 2.0 * e / m;
            }
            (l / m, None)
        }
        Targets::Classes(labels) => {
            let (l, correct) = softmax_cross_entropy(&z, o, labels, &mut dz);
            (l, Some(correct))
        }
    };
    let (w, _) = head.split_at(d * o);
    let mut g_head = vec![0.0f64; head.len()];
    let mut g_feat = vec![0.0f64; n * d];
    for r in 0..n {
        let dzr = &dz[r * o..(r + 1) * o];
        for (gb, &g) in g_head[d * o..].iter_mut().zip(dzr) {
            *gb += g;
        }
        for a in 0..d {
            let f = features[r * d + a];
            let wa = &w[a * o..(a + 1) * o];
            let mut s = 0.0;
            for c in 0..o {
                g_head[a * o + c] += f * dzr[c];
                s += wa[c] * dzr[c];
            }
            g_feat[r * d + a] = s;
        }
    }
    HeadGrad {
        out: LossOut {
            loss: loss as f32,
            correct,
        },
        value: loss,
        head: g_head,
        features: g_feat,
    }
}

/// Mean cross-entropy of logits `z` (`n × classes`) against `labels`; writes ∂loss/∂z into
/// `dz` and returns (loss, rows whose highest logit is the label, ties to the lower class).
pub fn softmax_cross_entropy(
    z: &[f64],
    classes: usize,
    labels: &[usize],
    dz: &mut [f64],
) -> (f64, usize) {
    let n = labels.len();
    let (mut loss, mut correct) = (0.0, 0);
    for (r, &y) in labels.iter().enumerate() {
        let row = &z[r * classes..(r + 1) * classes];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        let log_sum = max + sum.ln();
        loss += log_sum - row[y];
        for c in 0..classes {
            let p = (row[c] - log_sum).exp();
            dz[r * classes + c] = (p - (c == y) as u8 as f64) / n as f64;
        }
        if argmax(row) == y {
            correct += 1;
        }
    }
    (loss / n as f64, correct)
}

/// Index of the largest value; ties go to the lower index (as `loss::count_correct`).
pub fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for c in 1..row.len() {
        if row[c] > row[best] {
            best = c;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metric::testing::{check_fd, values};

    #[test]
    fn head_gradients_match_finite_differences() {
        let (n, d, o) = (5, 4, 3);
        let f = values(n * d, 1);
        let head = values(d * o + o, 2);
        for targets in [
            Targets::Classes(vec![0, 2, 1, 1, 0]),
            Targets::Values(values(n * o, 3).iter().map(|&v| v as f32).collect()),
        ] {
            let g = loss(&f, n, d, &head, o, &targets);
            check_fd(&head, &g.head, |h| loss(&f, n, d, h, o, &targets).value);
            check_fd(&f, &g.features, |x| loss(x, n, d, &head, o, &targets).value);
        }
    }
}
