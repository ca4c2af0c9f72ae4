//! Numerics against ground truth: the dfdx MLP's gradient and MAML's meta-gradient against
//! brute-force central differences of an independent f64 implementation.

use metalab::algo::maml::{task_meta_grad, Order};
use metalab::experiment::{Activation, DeviceSpec, MlpSpec, ModelSpec, SinusoidSpec};
use metalab::model::Network;
use metalab::tasks::sinusoid::Sinusoid;
use metalab::tasks::{Batch, Rng, Split, TaskFamily};
use rand::SeedableRng;

#[path = "numeric_common/mod.rs"]
mod numeric_common;
use numeric_common::{fd_grad, rel_err};

/// The MLP's loss in f64, without a context.
fn reference_loss(net: &Network, p: &[f64], b: &Batch, act: Activation) -> f64 {
    numeric_common::mlp_loss(net, p, &[], b, act)
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

/// The conv net (batch norm, ReLU, max pool): the second-order meta-gradient against central
/// differences of the meta-objective itself, on a spread of coordinates. Max-pool and ReLU
/// branches are frozen inside the Hessian-vector products; the brute force sees the real kinks,
/// so a few coordinates sitting on one are skipped by taking the median relative error.
#[test]
fn second_order_maml_meta_gradient_matches_brute_force_on_a_conv_net() {
    use metalab::experiment::{ConvSpec, SyntheticSpec};
    use metalab::tasks::synthetic::Synthetic;
    let fam = Synthetic::new(
        SyntheticSpec {
            ways: 3,
            shots: 2,
            queries: 3,
            classes: 30,
            image_size: 8,
            noise: 0.3,
        },
        1,
    )
    .unwrap();
    let spec = ModelSpec::Conv(ConvSpec {
        blocks: 2,
        channels: 3,
        batch_norm: true,
    });
    let net = Network::new(&spec, &fam.shape()).unwrap();
    let mut rng = Rng::seed_from_u64(4);
    let params = net.init(&mut rng);
    let task = fam.sample_task(Split::Train, &mut rng);
    let ep = fam.sample_episode(&task, &mut rng);
    let (steps, lr) = (2, 0.3);
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
    let mut objective = |p: &[f64]| -> f64 {
        let mut t: Vec<f32> = p.iter().map(|&x| x as f32).collect();
        for _ in 0..steps {
            let mut g = vec![0.0f32; t.len()];
            ev.evaluate(&t, &ep.support, Some(&mut g));
            for (a, b) in t.iter_mut().zip(&g) {
                *a -= lr as f32 * b;
            }
        }
        ev.evaluate(&t, &ep.query, None).loss as f64
    };
    let p64: Vec<f64> = params.iter().map(|&x| x as f64).collect();
    let (mut e2, mut e1) = (vec![], vec![]);
    // Every 7th parameter: conv weights, batch-norm scales and shifts, and the head.
    for i in (0..p64.len()).step_by(7) {
        // Small enough to cross few kinks, large enough for f32 objectives of order 1.
        let h = 1e-3;
        let mut q = p64.clone();
        q[i] += h;
        let a = objective(&q);
        q[i] -= 2.0 * h;
        let b = objective(&q);
        let brute = (a - b) / (2.0 * h);
        if brute.abs() < 1e-3 {
            continue;
        }
        e2.push(((second[i] - brute) / brute).abs());
        e1.push(((first[i] - brute) / brute).abs());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m2, m1) = (median(&mut e2), median(&mut e1));
    eprintln!("conv: median relative error over {} coordinates: second order {m2:.2e}, first order {m1:.2e}", e2.len());
    assert!(e2.len() >= 20);
    assert!(m2 < 5e-3, "second order median relative error {m2}");
    assert!(m1 > 3.0 * m2, "first order {m1} vs second {m2}");
}

/// ANIL's objective in f64: only the head (from `head_start`) takes the inner SGD steps.
fn anil_objective(
    net: &Network,
    p: &[f64],
    ep: &metalab::tasks::Episode,
    steps: usize,
    lr: f64,
    act: Activation,
) -> f64 {
    let hs = net.layout.head_start;
    let mut theta = p.to_vec();
    for _ in 0..steps {
        let g = fd_grad(|q| reference_loss(net, q, &ep.support, act), &theta, 1e-6);
        for (t, g) in theta[hs..].iter_mut().zip(&g[hs..]) {
            *t -= lr * g;
        }
    }
    reference_loss(net, &theta, &ep.query, act)
}

#[test]
fn anil_meta_gradient_matches_brute_force() {
    use metalab::algo::anil::task_meta_grad;
    for act in [Activation::Tanh, Activation::Relu] {
        let (net, params, ep) = setup(act);
        let (steps, lr, hs) = (3, 0.05, net.layout.head_start);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let (second, _) = task_meta_grad(ev.as_mut(), &params, hs, &ep, steps, lr, true);
        let (first, _) = task_meta_grad(ev.as_mut(), &params, hs, &ep, steps, lr, false);
        let p64: Vec<f64> = params.iter().map(|&x| x as f64).collect();
        let brute = fd_grad(|p| anil_objective(&net, p, &ep, steps, lr, act), &p64, 1e-5);
        let (err2, err1) = (rel_err(&second, &brute), rel_err(&first, &brute));
        // The body's share alone, where second order differs from first order.
        let (body2, body1) = (
            rel_err(&second[..hs], &brute[..hs]),
            rel_err(&first[..hs], &brute[..hs]),
        );
        eprintln!("ANIL {act:?}: relative error second order {err2:.2e} (body {body2:.2e}), first order {err1:.2e} (body {body1:.2e})");
        assert!(err2 < 1e-3, "{act:?}: ANIL second-order error {err2}");
        assert!(body2 < 1e-3, "{act:?}: ANIL body error {body2}");
        assert!(
            err1 > 10.0 * err2,
            "{act:?}: first order {err1} vs second {err2}"
        );
    }
}

/// Meta-SGD's objective in f64: `θ ← θ − α ⊙ ∇L_s(θ)`, with `p = θ ++ α`.
fn metasgd_objective(
    net: &Network,
    p: &[f64],
    ep: &metalab::tasks::Episode,
    steps: usize,
    act: Activation,
) -> f64 {
    let (theta, alpha) = p.split_at(p.len() / 2);
    let mut theta = theta.to_vec();
    for _ in 0..steps {
        let g = fd_grad(|q| reference_loss(net, q, &ep.support, act), &theta, 1e-6);
        for ((t, g), a) in theta.iter_mut().zip(&g).zip(alpha) {
            *t -= a * g;
        }
    }
    reference_loss(net, &theta, &ep.query, act)
}

#[test]
fn meta_sgd_meta_gradient_for_init_and_learning_rates_matches_brute_force() {
    use metalab::algo::metasgd::task_meta_grad;
    for act in [Activation::Tanh, Activation::Relu] {
        let (net, params, ep) = setup(act);
        let steps = 2;
        // Per-parameter rates spread over [0.005, 0.05], as a trained α would be.
        let alpha: Vec<f32> = (0..params.len())
            .map(|i| 0.005 + 0.045 * ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let (gt, ga, _) = task_meta_grad(ev.as_mut(), &params, &alpha, &ep, steps, 1e-3);
        let p64: Vec<f64> = params.iter().chain(&alpha).map(|&x| x as f64).collect();
        let brute = fd_grad(|p| metasgd_objective(&net, p, &ep, steps, act), &p64, 1e-5);
        let n = params.len();
        let (et, ea) = (rel_err(&gt, &brute[..n]), rel_err(&ga, &brute[n..]));
        eprintln!("Meta-SGD {act:?}: relative error θ {et:.2e}, α {ea:.2e}");
        assert!(et < 1e-3, "{act:?}: Meta-SGD θ meta-gradient error {et}");
        assert!(ea < 1e-3, "{act:?}: Meta-SGD α meta-gradient error {ea}");
    }
}
