// Shared by the tests that check numerics against ground truth: an independent f64 MLP and
// brute-force central differences (a folder module, so it is not a test target of its own).
#![allow(dead_code)]

use metalab::experiment::Activation;
use metalab::model::Network;
use metalab::tasks::{Batch, Targets};

/// The MLP's mean squared error in f64 (same layout as `model::mlp`: weights `[in, out]`, head
/// last) on inputs `[x, φ]`: the first layer's weight is the plain one's rows
/// (`p`'s first tensor) stacked on the context rows (after the plain network's parameters).
pub fn mlp_loss(net: &Network, p: &[f64], phi: &[f64], b: &Batch, act: Activation) -> f64 {
    let ws = &net.layout.tensors;
    let base_len = net.layout.total;
    let Targets::Values(y) = &b.y else {
        unreachable!()
    };
    let inputs = b.x.len() / b.n;
    let mut total = 0.0;
    for (r, &yr) in y.iter().enumerate().take(b.n) {
        let mut h: Vec<f64> = b.x[r * inputs..(r + 1) * inputs]
            .iter()
            .map(|&v| v as f64)
            .chain(phi.iter().copied())
            .collect();
        for l in 0..ws.len() / 2 {
            let (w, bias) = (&ws[2 * l], &ws[2 * l + 1]);
            let (i, o) = (w.shape[0], w.shape[1]);
            let weight = |a: usize, c: usize| {
                if a < i {
                    p[w.offset + a * o + c]
                } else {
                    p[base_len + (a - i) * o + c]
                }
            };
            let mut out: Vec<f64> = p[bias.range()].to_vec();
            for (a, &ha) in h.iter().enumerate() {
                for (c, oc) in out.iter_mut().enumerate() {
                    *oc += ha * weight(a, c);
                }
            }
            if l + 1 < ws.len() / 2 {
                for v in &mut out {
                    *v = match act {
                        Activation::Tanh => v.tanh(),
                        Activation::Relu => v.max(0.0),
                    };
                }
            }
            h = out;
        }
        total += (h[0] - yr as f64).powi(2);
    }
    total / b.n as f64
}

/// Central differences of `f` at `p`, step `h`.
pub fn fd_grad(mut f: impl FnMut(&[f64]) -> f64, p: &[f64], h: f64) -> Vec<f64> {
    let mut q = p.to_vec();
    (0..p.len())
        .map(|i| {
            q[i] = p[i] + h;
            let a = f(&q);
            q[i] = p[i] - h;
            let b = f(&q);
            q[i] = p[i];
            (a - b) / (2.0 * h)
        })
        .collect()
}

/// `‖a − b‖ / ‖b‖`.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

/// A meta-gradient computed both ways against ground truth: second order against brute-force
/// differences of the whole objective (relative error below `tol.0`), first order against its
/// own definition, the query gradient with the adapted parameters held (below `tol.1`), and
/// first order clearly worse than second against brute force, so the check has teeth (the
/// second-order terms matter on this case). `label` names the case in the messages.
pub fn assert_meta_grad_orders(
    label: &str,
    (second, first): (&[f64], &[f64]),
    (brute, held): (&[f64], &[f64]),
    tol: (f64, f64),
) {
    let err2 = rel_err(second, brute);
    let err1 = rel_err(first, brute);
    let err1_def = rel_err(first, held);
    eprintln!("{label}: second order vs brute force {err2:.2e}, first order vs brute force {err1:.2e}, first order vs its definition {err1_def:.2e}");
    assert!(err2 < tol.0, "{label}: second-order relative error {err2}");
    assert!(
        err1_def < tol.1,
        "{label}: first-order relative error {err1_def}"
    );
    assert!(
        err1 > 10.0 * err2,
        "{label}: first order {err1} is not clearly worse than {err2}"
    );
}
