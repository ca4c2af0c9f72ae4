//! CAVIA on a conv net (FiLM in a chosen block) against ground truth: the folded network
//! against an independent f64 conv net that really scales and shifts the block's channels;
//! the context steps and the meta-gradient (first and second order) against brute-force
//! central differences of that network; a run that reruns and resumes bit for bit; the
//! experiment file's checks.

use std::path::Path;

#[path = "omniglot_common/mod.rs"]
mod omniglot_common;
use omniglot_common::fake_omniglot;

use metalab::algo::cavia::{contexts, task_meta_grad};
use metalab::algo::maml::Order;
use metalab::engine::Prepared;
use metalab::experiment::{
    parse_str, ConvSpec, DeviceSpec, Experiment, ExperimentError, ModelSpec, SyntheticSpec,
};
use metalab::model::context::TaskContext;
use metalab::model::Network;
use metalab::runs::embeddings::Colouring;
use metalab::runs::{self, RunStatus};
use metalab::tasks::synthetic::Synthetic;
use metalab::tasks::{Batch, Episode, Rng, Split, Targets, TaskFamily};
use rand::SeedableRng;

#[path = "numeric_common/mod.rs"]
mod numeric_common;
use numeric_common::{assert_meta_grad_orders, fd_grad, rel_err};

#[path = "engine_common/mod.rs"]
mod engine_common;
use engine_common::{assert_reruns_and_resumes, opts, run_until as run};

const WIDTH: usize = 2;
const SIDE: usize = 4;
const EPS_BN: f64 = 1e-5;

/// A same-padded 3×3 conv of `x` (`[cin][n][h·w]`) with `w` (`[cout, cin, 3, 3]`) and `b`.
fn conv(x: &[Vec<f64>], n: usize, hw: (usize, usize), w: &[f64], b: &[f64]) -> Vec<Vec<f64>> {
    let (h, wd) = hw;
    let cin = x.len();
    (0..b.len())
        .map(|co| {
            let mut y = vec![b[co]; n * h * wd];
            for img in 0..n {
                for oy in 0..h {
                    for ox in 0..wd {
                        let mut acc = 0.0;
                        for (ci, xc) in x.iter().enumerate() {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (oy + ky, ox + kx);
                                    if iy >= 1 && ix >= 1 && iy <= h && ix <= wd {
                                        acc += xc[img * h * wd + (iy - 1) * wd + ix - 1]
                                            * w[(co * cin + ci) * 9 + ky * 3 + kx];
                                    }
                                }
                            }
                        }
                        y[img * h * wd + oy * wd + ox] += acc;
                    }
                }
            }
            y
        })
        .collect()
}

/// The conv net's loss in f64, straight from its definition: each block a conv, batch norm
/// on the batch's statistics, then on block `block` (from 1) FiLM `γ_c·h + β_c` with
/// `γ = 1 + φ·W_γ`, `β = φ·W_β` (the rows after the plain network's parameters), ReLU, 2×2
/// max pool; a linear head on the `[channels, h, w]` features, cross-entropy.
fn reference_loss(net: &Network, block: usize, p: &[f64], phi: &[f64], b: &Batch) -> f64 {
    let ModelSpec::Conv(spec) = &net.spec else {
        unreachable!()
    };
    let t = &net.layout.tensors;
    let n = b.n;
    let (mut h, mut w) = (SIDE, SIDE);
    let mut act: Vec<Vec<f64>> = vec![b.x.iter().map(|&v| v as f64).collect()];
    let per = if spec.batch_norm { 4 } else { 2 };
    let c = spec.channels;
    let base = net.layout.total;
    for i in 0..spec.blocks {
        let tw = &t[i * per];
        let tb = &t[i * per + 1];
        let mut y = conv(&act, n, (h, w), &p[tw.range()], &p[tb.range()]);
        if spec.batch_norm {
            let (g, be) = (&t[i * per + 2], &t[i * per + 3]);
            for (co, row) in y.iter_mut().enumerate() {
                let mean = row.iter().sum::<f64>() / row.len() as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / row.len() as f64;
                for v in row.iter_mut() {
                    *v = p[g.offset + co] * (*v - mean) / (var + EPS_BN).sqrt() + p[be.offset + co];
                }
            }
        }
        if i + 1 == block {
            for (co, row) in y.iter_mut().enumerate() {
                let gamma = 1.0
                    + (0..WIDTH)
                        .map(|j| phi[j] * p[base + j * c + co])
                        .sum::<f64>();
                let beta: f64 = (0..WIDTH)
                    .map(|j| phi[j] * p[base + WIDTH * c + j * c + co])
                    .sum();
                for v in row.iter_mut() {
                    *v = gamma * *v + beta;
                }
            }
        }
        let (ph, pw) = (h / 2, w / 2);
        act = y
            .iter()
            .map(|row| {
                let mut out = vec![0.0; n * ph * pw];
                for img in 0..n {
                    for py in 0..ph {
                        for px in 0..pw {
                            let at = |dy: usize, dx: usize| {
                                row[img * h * w + (2 * py + dy) * w + 2 * px + dx]
                            };
                            let m = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                            out[img * ph * pw + py * pw + px] = m.max(0.0);
                        }
                    }
                }
                out
            })
            .collect();
        (h, w) = (ph, pw);
    }
    let (hw_, hb) = (&t[t.len() - 2], &t[t.len() - 1]);
    let (feat, outs) = (hw_.shape[0], hw_.shape[1]);
    let Targets::Classes(labels) = &b.y else {
        unreachable!()
    };
    let mut total = 0.0;
    for (img, &label) in labels.iter().enumerate() {
        let f: Vec<f64> = act
            .iter()
            .flat_map(|ch| ch[img * h * w..(img + 1) * h * w].iter().copied())
            .collect();
        assert_eq!(f.len(), feat);
        let logits: Vec<f64> = (0..outs)
            .map(|o| {
                p[hb.offset + o]
                    + (0..feat)
                        .map(|k| f[k] * p[hw_.offset + k * outs + o])
                        .sum::<f64>()
            })
            .collect();
        let m = logits.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + logits.iter().map(|l| (l - m).exp()).sum::<f64>().ln();
        total += lse - logits[label];
    }
    total / n as f64
}

fn setup(batch_norm: bool, block: usize) -> (Network, TaskContext, Vec<f32>, Episode) {
    let spec = ModelSpec::Conv(ConvSpec {
        blocks: 2,
        channels: 3,
        batch_norm,
    });
    let fam = Synthetic::new(
        SyntheticSpec {
            ways: 3,
            shots: 2,
            queries: 2,
            classes: 30,
            image_size: SIDE,
            noise: 0.3,
        },
        7,
    )
    .unwrap();
    let net = Network::new(&spec, &fam.shape()).unwrap();
    let ctx = TaskContext::new(&net, WIDTH, Some(block)).unwrap();
    let mut rng = Rng::seed_from_u64(42);
    let mut shared = net.init(&mut rng);
    shared.extend(ctx.init_rows(&mut rng));
    // Batch norm's scale and shift start at 1 and 0; move them so every term of the chain
    // rule is exercised.
    for t in net
        .layout
        .tensors
        .iter()
        .filter(|t| t.name.starts_with("bn"))
    {
        for (k, v) in shared[t.range()].iter_mut().enumerate() {
            *v += 0.3 * ((k as f32) * 1.7 + t.offset as f32).sin();
        }
    }
    let task = fam.sample_task(Split::Train, &mut rng);
    let ep = fam.sample_episode(&task, &mut rng);
    (net, ctx, shared, ep)
}

/// Each case: with and without batch norm, FiLM in the first or the last block.
const CASES: [(bool, usize); 3] = [(true, 1), (true, 2), (false, 1)];
const STEPS: usize = 2;
const LR: f64 = 0.5;

fn p64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn the_folded_network_is_the_network_with_film() {
    for (bn, block) in CASES {
        let (net, ctx, shared, ep) = setup(bn, block);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        assert_eq!(
            ctx.fold(&shared, &[0.0; WIDTH]),
            shared[..net.num_params()].to_vec(),
            "the zero context is the plain network"
        );
        let phi = [0.8f32, -0.6];
        let got = ev.evaluate(&ctx.fold(&shared, &phi), &ep.query, None).loss as f64;
        let want = reference_loss(&net, block, &p64(&shared), &p64(&phi), &ep.query);
        let plain = reference_loss(&net, block, &p64(&shared), &[0.0; WIDTH], &ep.query);
        assert!(
            (got - want).abs() < 1e-4 * want.max(1.0),
            "bn {bn}, block {block}: {got} vs {want}"
        );
        assert!((want - plain).abs() > 1e-3, "the context changes the loss");
    }
}

#[test]
fn context_steps_follow_the_context_gradient() {
    for (bn, block) in CASES {
        let (net, ctx, shared, ep) = setup(bn, block);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let path = contexts(ev.as_mut(), &shared, ctx, &ep.support, STEPS, LR);
        assert_eq!(path[0], vec![0.0; WIDTH], "every task starts from zero");
        let p = p64(&shared);
        for k in 0..STEPS {
            let from = p64(&path[k]);
            let g = fd_grad(
                |q| reference_loss(&net, block, &p, q, &ep.support),
                &from,
                1e-6,
            );
            let want: Vec<f64> = g.iter().map(|g| -LR * g).collect();
            let got: Vec<f64> = path[k + 1]
                .iter()
                .zip(&from)
                .map(|(&b, a)| b as f64 - a)
                .collect();
            let err = rel_err(&got, &want);
            assert!(err < 1e-3, "bn {bn}, block {block}, step {k}: {err}");
            assert!(want.iter().any(|v| v.abs() > 1e-4), "the context moves");
        }
    }
}

/// CAVIA's objective in f64: the query loss after `STEPS` context steps from zero, each step
/// by central differences.
fn objective(net: &Network, block: usize, p: &[f64], ep: &Episode) -> f64 {
    let mut phi = vec![0.0; WIDTH];
    for _ in 0..STEPS {
        let g = fd_grad(
            |q| reference_loss(net, block, p, q, &ep.support),
            &phi,
            1e-6,
        );
        phi = phi.iter().zip(&g).map(|(c, g)| c - LR * g).collect();
    }
    reference_loss(net, block, p, &phi, &ep.query)
}

#[test]
fn the_meta_gradient_matches_brute_force_first_and_second_order() {
    for (bn, block) in CASES {
        let (net, ctx, shared, ep) = setup(bn, block);
        let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let order2 = Order::Second { hvp_eps: 1e-3 };
        let (second, q2) = task_meta_grad(ev.as_mut(), &shared, ctx, &ep, STEPS, LR, order2);
        let (first, q1) = task_meta_grad(ev.as_mut(), &shared, ctx, &ep, STEPS, LR, Order::First);
        assert_eq!(q1, q2, "the same adaptation either way");
        assert_eq!(second.len(), ctx.shared_len());
        let p = p64(&shared);
        let brute = fd_grad(|q| objective(&net, block, q, &ep), &p, 1e-5);
        let adapted = p64(&contexts(ev.as_mut(), &shared, ctx, &ep.support, STEPS, LR)[STEPS]);
        let held = fd_grad(
            |q| reference_loss(&net, block, q, &adapted, &ep.query),
            &p,
            1e-6,
        );
        assert_meta_grad_orders(
            &format!("bn {bn}, block {block}"),
            (&second, &first),
            (&brute, &held),
            (1e-4, 1e-5),
        );
        let rows = &second[ctx.base_len()..];
        assert!(rows.iter().any(|g| g.abs() > 1e-4), "{rows:?}");
    }
}

fn exp(iterations: usize, arm: &str) -> Experiment {
    let text = format!(
        r#"Experiment(
            name: "cavfilm", seed: 5,
            family: Synthetic(ways: 3, shots: 2, queries: 2, classes: 30, image_size: 8),
            model: Conv(blocks: 2, channels: 4),
            arms: [{arm}],
            train: Train(iterations: {iterations}, meta_batch: 3, log_every: 5),
            eval: Eval(every: 20, tasks: 12, periodic_tasks: 6, inner_steps: 2, tracked_tasks: 1),
        )"#
    );
    parse_str(&text, Path::new("cavfilm.ron")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_film_run_reruns_and_resumes_bit_for_bit() {
    let arm = r#"Arm(name: "cavia", algorithm: Cavia(context: 3, film_block: 2))"#;
    let root = tempfile::tempdir().unwrap();
    let (straight, _) = run(
        Prepared::new(exp(40, arm), opts(root.path(), 2)).unwrap(),
        None,
    );
    let meta = runs::load_meta(&straight).unwrap();
    assert_eq!(meta.status, RunStatus::Finished);
    let protocol = serde_json::to_string(&meta.protocol).unwrap();
    assert!(protocol.contains("(FiLM) in block 2"), "{protocol}");
    let fresh = Prepared::new(exp(40, arm), opts(root.path(), 2)).unwrap();
    assert_reruns_and_resumes(&straight, fresh, 25, root.path());
}

fn invalid(text: &str) -> Vec<metalab::experiment::ValidationError> {
    match parse_str(text, Path::new("c.ron")) {
        Err(ExperimentError::Invalid { errors, .. }) => errors,
        other => panic!("{other:?}"),
    }
}

#[test]
fn film_blocks_are_checked_at_their_place_with_a_fix() {
    let out_of_range = invalid(
        r#"Experiment(
        name: "c", family: Synthetic(), model: Conv(blocks: 2, channels: 4),
        arms: [Arm(name: "cavia", algorithm: Cavia(film_block: 3))],
    )"#,
    );
    assert_eq!(out_of_range.len(), 1, "{out_of_range:?}");
    let e = &out_of_range[0];
    assert_eq!(
        (e.field.as_str(), e.position),
        ("arms[0].film_block", Some((3, 52)))
    );
    assert!(e.fix.contains("1 to 2"), "{e:?}");

    let on_mlp = invalid(
        r#"Experiment(
        name: "c", family: Sinusoid(), model: Mlp(hidden: [8]),
        arms: [Arm(name: "cavia", algorithm: Cavia(context: 2, film_block: 1))],
    )"#,
    );
    assert_eq!(on_mlp.len(), 1, "{on_mlp:?}");
    let e = &on_mlp[0];
    assert_eq!(
        (e.field.as_str(), e.position),
        ("arms[0].film_block", Some((3, 64)))
    );
    assert!(e.fix.contains("remove film_block"), "{e:?}");

    let on_cuda = invalid(
        r#"Experiment(
        name: "c", family: Synthetic(), model: Conv(blocks: 2, channels: 4), device: Cuda(0),
        arms: [Arm(name: "cavia", algorithm: Cavia(film_block: 2))],
    )"#,
    );
    let film: Vec<_> = on_cuda
        .iter()
        .filter(|e| e.field == "arms[0].film_block")
        .collect();
    assert_eq!(film.len(), 1, "{on_cuda:?}");
    assert!(film[0].fix.contains("device: Cpu"), "{on_cuda:?}");
}

/// Omniglot tasks drawn within one alphabet carry it into the run's embedding record, so the
/// task-embedding view and the export can colour the tasks by alphabet.
#[test]
fn omniglot_task_embeddings_are_grouped_by_alphabet() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("omni");
    fake_omniglot(&data, (10, 3, 2), 12, |a, c, d| a * 5 + c * 3 + d);
    let text = format!(
        r#"Experiment(
            name: "cavomni", seed: 3,
            family: Omniglot(root: {:?}, ways: 3, shots: 1, queries: 1, image_size: 8,
                             rotations: false, protocol: AlphabetSplit(train: 0.6, validation: 0.2),
                             classes: WithinAlphabet),
            model: Conv(blocks: 2, channels: 2),
            arms: [Arm(name: "cavia", algorithm: Cavia(context: 2, film_block: 1))],
            train: Train(iterations: 10, meta_batch: 2, log_every: 5),
            eval: Eval(every: 10, tasks: 4, periodic_tasks: 6, inner_steps: 1, tracked_tasks: 1),
        )"#,
        data.to_string_lossy()
    );
    let e = parse_str(&text, Path::new("cavomni.ron")).unwrap_or_else(|e| panic!("{e}"));
    let (dir, _) = run(Prepared::new(e, opts(root.path(), 2)).unwrap(), None);
    let record = runs::load_embeddings(&dir).expect("an embedding record");
    assert_eq!(record.tasks.len(), 6);
    assert!(record.colourings().contains(&Colouring::Group));
    for t in &record.tasks {
        let g = t
            .group
            .as_deref()
            .expect("every task within one alphabet has it");
        assert!(g.starts_with("Alpha") && !g.contains('/'), "{g}");
    }
    // The validation split holds two of the ten alphabets.
    assert!(record.groups().len() <= 2, "{:?}", record.groups());
}
