//! Numerics against ground truth: the dfdx MLP's gradient and MAML's meta-gradient against
//! brute-force central differences of an independent f64 implementation.

use metalab::algo::maml::{task_meta_grad, Order};
use metalab::experiment::{Activation, DeviceSpec, MlpSpec, ModelSpec, SinusoidSpec};
use metalab::model::Network;
use metalab::tasks::sinusoid::Sinusoid;
use metalab::tasks::{Batch, Rng, Split, Targets, TaskFamily};
use rand::SeedableRng;

/// Forward pass of the MLP in f64, same layout as `model::mlp` (weights `[in, out]`, head last).
fn reference_loss(net: &Network, p: &[f64], b: &Batch, act: Activation) -> f64 {
    let ws: Vec<_> = net.layout.tensors.iter().collect();
    let Targets::Values(y) = &b.y else {
        unreachable!()
    };
    let mut total = 0.0;
    for (r, &yr) in y.iter().enumerate().take(b.n) {
        let mut h: Vec<f64> = vec![b.x[r] as f64];
        for l in 0..ws.len() / 2 {
            let (w, bias) = (ws[2 * l], ws[2 * l + 1]);
            let (i, o) = (w.shape[0], w.shape[1]);
            let mut out: Vec<f64> = p[bias.range()].to_vec();
            for a in 0..i {
                for c in 0..o {
                    out[c] += h[a] * p[w.offset + a * o + c];
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

fn fd_grad(mut f: impl FnMut(&[f64]) -> f64, p: &[f64], h: f64) -> Vec<f64> {
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

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

fn setup(act: Activation) -> (Network, Vec<f32>, metalab::tasks::Episode) {
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: vec![8, 8],
        activation: act,
    });
    let fam = Sinusoid::new(SinusoidSpec {
        shots: 6,
        queries: 6,
    });
    let net = Network::new(&spec, &fam.shape()).unwrap();
    let mut rng = Rng::seed_from_u64(42);
    let params = net.init(&mut rng);
    let task = fam.sample_task(Split::Train, &mut rng);
    let ep = fam.sample_episode(&task, &mut rng);
    (net, params, ep)
}

#[test]
fn mlp_gradient_matches_finite_differences() {
    for act in [Activation::Tanh, Activation::Relu] {
        let (net, params, ep) = setup(act);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let mut g = vec![0.0f32; params.len()];
        let out = ev.evaluate(&params, &ep.support, Some(&mut g));
        let p64: Vec<f64> = params.iter().map(|&x| x as f64).collect();
        let reference = reference_loss(&net, &p64, &ep.support, act);
        assert!(
            (out.loss as f64 - reference).abs() < 1e-5 * reference.max(1.0),
            "{} vs {reference}",
            out.loss
        );
        let fd = fd_grad(|p| reference_loss(&net, p, &ep.support, act), &p64, 1e-6);
        let g64: Vec<f64> = g.iter().map(|&x| x as f64).collect();
        let err = rel_err(&g64, &fd);
        assert!(err < 1e-4, "{act:?}: relative gradient error {err}");
    }
}

/// The whole MAML objective in f64: query loss after K SGD steps on the support set, with the
/// inner gradients themselves by finite differences. Nothing here shares code with `algo`.
fn meta_objective(
    net: &Network,
    p: &[f64],
    ep: &metalab::tasks::Episode,
    steps: usize,
    lr: f64,
    act: Activation,
) -> f64 {
    let mut theta = p.to_vec();
    for _ in 0..steps {
        let g = fd_grad(|q| reference_loss(net, q, &ep.support, act), &theta, 1e-6);
        for (t, g) in theta.iter_mut().zip(&g) {
            *t -= lr * g;
        }
    }
    reference_loss(net, &theta, &ep.query, act)
}

#[test]
fn second_order_maml_meta_gradient_matches_brute_force() {
    // ReLU needs the kink pattern frozen inside the Hessian-vector products (see `model::Kinks`).
    for act in [Activation::Tanh, Activation::Relu] {
        let (net, params, ep) = setup(act);
        let (steps, lr) = (2, 0.02);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let (second, _) = task_meta_grad(
            ev.as_mut(),
            &params,
            &ep,
            steps,
            lr,
            Order::Second { hvp_eps: 1e-3 },
        );
        let (first, _) = task_meta_grad(ev.as_mut(), &params, &ep, steps, lr, Order::First);
        let p64: Vec<f64> = params.iter().map(|&x| x as f64).collect();
        let brute = fd_grad(|p| meta_objective(&net, p, &ep, steps, lr, act), &p64, 1e-5);
        let err2 = rel_err(&second, &brute);
        let err1 = rel_err(&first, &brute);
        eprintln!("{act:?}: relative error vs brute force: second order {err2:.2e}, first order {err1:.2e}");
        assert!(
            err2 < 1e-3,
            "{act:?}: second-order meta-gradient relative error {err2}"
        );
        // The check has teeth: dropping the second-order terms is visibly wrong here.
        assert!(
            err1 > 10.0 * err2,
            "{act:?}: first-order error {err1} is not clearly worse than {err2}"
        );
    }
}
