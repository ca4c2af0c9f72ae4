//! The MLP and its losses composed from the GPU engine's kernels and per-task SGEMMs, run on the
//! CPU under `kernels/emu/cuda_emu.hpp` (`gpu::Host`), against the CPU path's own evaluator
//! (`model::mlp::MlpEval` through `Network::evaluator(Cpu)`): several tasks at once, each with
//! its own parameters and batch; regression (MSE) and classification (softmax cross-entropy);
//! ReLU (kinks recorded, then replayed) and tanh.
//!
//! Tolerances: ReLU kink codes compare exactly (the pre-activations differ only in summation
//! order, and this seed's inputs put none within rounding of zero); the loss within 1e-5 and the
//! gradient within 1e-4, relative to the CPU path's (the GEMMs sum in another order).

use metalab::experiment::{Activation, DeviceSpec, MlpSpec, ModelSpec};
use metalab::gpu::ops::{self, Act, DenseGeom, ReluKinks};
use metalab::gpu::{Backend, Host};
use metalab::model::{KinkPattern, Kinks, Network};
use metalab::tasks::{Batch, FamilyShape, Targets, TaskKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    num.sqrt() / den.sqrt().max(1e-12)
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f64) {
    let e = rel(a, b);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

/// What the engine computes for every task at once: per task loss, gradient (layout order) and
/// the ReLU codes of each hidden layer.
struct GpuOut {
    loss: Vec<f32>,
    grads: Vec<Vec<f32>>,
    codes: Vec<Vec<Vec<u8>>>,
}

/// Forward, loss and backward of an MLP with `dims` (in, out) per layer, the last the head, for
/// `tasks` stacked tasks: `params[t]` in the CPU path's layout, `x` and `targets` per task.
#[allow(clippy::too_many_arguments)]
fn gpu_mlp(
    dims: &[(usize, usize)],
    act: Act,
    kinks: ReluKinks,
    replay: Option<&[Vec<Vec<u8>>]>,
    params: &[Vec<f32>],
    rows: usize,
    x: &[Vec<f32>],
    targets: &[Targets],
) -> GpuOut {
    let b = Host;
    let tasks = params.len();
    let stack = |f: &dyn Fn(usize) -> Vec<f32>| -> Vec<f32> { (0..tasks).flat_map(f).collect() };
    // Offsets of each layer's weight and bias in the layout.
    let mut offsets = vec![];
    let mut at = 0;
    for &(i, o) in dims {
        offsets.push((at, at + i * o));
        at += i * o + o;
    }
    let layers = dims.len();
    let mut inputs = vec![b.upload_f32(&stack(&|t| x[t].clone())).unwrap()];
    let (mut ws, mut bs, mut hs, mut codes) = (vec![], vec![], vec![], vec![]);
    for (l, &(i, o)) in dims.iter().enumerate() {
        let g = DenseGeom {
            tasks,
            rows,
            inputs: i,
            outputs: o,
        };
        let (wo, bo) = offsets[l];
        ws.push(
            b.upload_f32(&stack(&|t| params[t][wo..wo + i * o].to_vec()))
                .unwrap(),
        );
        bs.push(
            b.upload_f32(&stack(&|t| params[t][bo..bo + o].to_vec()))
                .unwrap(),
        );
        let mut z = b.zeros_f32(g.out_len()).unwrap();
        let mut h = b.zeros_f32(g.out_len()).unwrap();
        let mut code = match replay {
            Some(r) if l + 1 < layers => b
                .upload_u8(&r.iter().flat_map(|c| c[l].clone()).collect::<Vec<_>>())
                .unwrap(),
            _ => b.zeros_u8(g.out_len()).unwrap(),
        };
        let a = if l + 1 == layers {
            (Act::Identity, ReluKinks::Free)
        } else {
            (act, kinks)
        };
        ops::dense_forward(
            &b,
            &g,
            inputs.last().unwrap(),
            &ws[l],
            &bs[l],
            &mut z,
            &mut h,
            &mut code,
            a,
        )
        .unwrap();
        hs.push(h.clone());
        codes.push(code);
        inputs.push(h);
    }
    let out = inputs.last().unwrap();
    let (_, classes) = dims[layers - 1];
    let mut dh = b.zeros_f32(tasks * rows * classes).unwrap();
    let mut loss = b.zeros_f32(tasks).unwrap();
    match &targets[0] {
        Targets::Values(_) => {
            let y: Vec<f32> = targets
                .iter()
                .flat_map(|t| match t {
                    Targets::Values(v) => v.clone(),
                    Targets::Classes(_) => unreachable!(),
                })
                .collect();
            ops::mse(
                &b,
                tasks,
                rows * classes,
                out,
                &b.upload_f32(&y).unwrap(),
                &mut dh,
                &mut loss,
            )
            .unwrap();
        }
        Targets::Classes(_) => {
            let y: Vec<i32> = targets
                .iter()
                .flat_map(|t| match t {
                    Targets::Classes(c) => c.iter().map(|&c| c as i32).collect::<Vec<_>>(),
                    Targets::Values(_) => unreachable!(),
                })
                .collect();
            let mut correct = b.zeros_f32(tasks).unwrap();
            ops::softmax_xent(
                &b,
                tasks,
                rows,
                classes,
                out,
                &b.upload_i32(&y).unwrap(),
                &mut dh,
                &mut loss,
                &mut correct,
            )
            .unwrap();
        }
    }
    let mut grads = vec![vec![0.0f32; at]; tasks];
    for l in (0..layers).rev() {
        let (i, o) = dims[l];
        let g = DenseGeom {
            tasks,
            rows,
            inputs: i,
            outputs: o,
        };
        let a = if l + 1 == layers {
            (Act::Identity, ReluKinks::Free)
        } else {
            (act, kinks)
        };
        let a = if a.1 == ReluKinks::Record {
            (a.0, ReluKinks::Replay)
        } else {
            a
        };
        let mut dz = b.zeros_f32(g.out_len()).unwrap();
        let mut dw = b.zeros_f32(g.weight_len()).unwrap();
        let mut db = b.zeros_f32(g.bias_len()).unwrap();
        let mut dx = b.zeros_f32(g.in_len()).unwrap();
        ops::dense_backward(
            &b,
            &g,
            &inputs[l],
            &ws[l],
            &hs[l],
            &codes[l],
            &dh,
            a,
            &mut dz,
            &mut dw,
            &mut db,
            Some(&mut dx),
        )
        .unwrap();
        let (dw, db) = (b.download_f32(&dw).unwrap(), b.download_f32(&db).unwrap());
        let (wo, bo) = offsets[l];
        for (t, grad) in grads.iter_mut().enumerate() {
            grad[wo..wo + i * o].copy_from_slice(&dw[t * i * o..(t + 1) * i * o]);
            grad[bo..bo + o].copy_from_slice(&db[t * o..(t + 1) * o]);
        }
        dh = dx;
    }
    let codes = (0..tasks)
        .map(|t| {
            codes[..layers - 1]
                .iter()
                .zip(dims)
                .map(|(c, &(_, o))| {
                    b.download_u8(c).unwrap()[t * rows * o..(t + 1) * rows * o].to_vec()
                })
                .collect()
        })
        .collect();
    GpuOut {
        loss: b.download_f32(&loss).unwrap(),
        grads,
        codes,
    }
}

fn check(kind: TaskKind, activation: Activation, seed: u64) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let (tasks, rows, input, outputs) = (
        3,
        20,
        5,
        if kind == TaskKind::Classification {
            4
        } else {
            2
        },
    );
    let hidden = vec![16, 8];
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: hidden.clone(),
        activation,
    });
    let shape = FamilyShape {
        input: vec![input],
        outputs,
        kind,
    };
    let net = Network::new(&spec, &shape).unwrap();
    let mut dims = vec![];
    let mut width = input;
    for &h in hidden.iter().chain([outputs].iter()) {
        dims.push((width, h));
        width = h;
    }
    let params: Vec<Vec<f32>> = (0..tasks)
        .map(|_| {
            (0..net.num_params())
                .map(|_| r.gen_range(-0.8f32..0.8))
                .collect()
        })
        .collect();
    let x: Vec<Vec<f32>> = (0..tasks)
        .map(|_| {
            (0..rows * input)
                .map(|_| r.gen_range(-2.0f32..2.0))
                .collect()
        })
        .collect();
    let targets: Vec<Targets> = (0..tasks)
        .map(|_| match kind {
            TaskKind::Regression => Targets::Values(
                (0..rows * outputs)
                    .map(|_| r.gen_range(-1.0f32..1.0))
                    .collect(),
            ),
            TaskKind::Classification => {
                Targets::Classes((0..rows).map(|_| r.gen_range(0..outputs)).collect())
            }
        })
        .collect();
    let (act, kinks) = match activation {
        Activation::Relu => (Act::Relu, ReluKinks::Record),
        Activation::Tanh => (Act::Tanh, ReluKinks::Free),
    };
    let gpu = gpu_mlp(&dims, act, kinks, None, &params, rows, &x, &targets);

    let mut cpu = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
    let mut patterns = vec![];
    for t in 0..tasks {
        let batch = Batch {
            n: rows,
            x: x[t].clone(),
            y: targets[t].clone(),
        };
        let mut grad = vec![0.0f32; net.num_params()];
        let mut pattern = KinkPattern::default();
        let out = cpu.evaluate_with(
            &params[t],
            &batch,
            Some(&mut grad),
            Kinks::Record(&mut pattern),
        );
        close(&format!("task {t} loss"), &[gpu.loss[t]], &[out.loss], 1e-5);
        close(&format!("task {t} gradient"), &gpu.grads[t], &grad, 1e-4);
        if activation == Activation::Relu {
            assert_eq!(gpu.codes[t], pattern.codes, "task {t}: ReLU kink codes");
            assert!(
                pattern.codes.iter().flatten().any(|&c| c == 0)
                    && pattern.codes.iter().flatten().any(|&c| c == 1)
            );
        }
        patterns.push(pattern.codes);
    }

    if activation == Activation::Relu {
        // Replay: perturbed parameters with the recorded branches held, as the FD-HVP does.
        let moved: Vec<Vec<f32>> = params
            .iter()
            .map(|p| p.iter().map(|v| v + 0.05).collect())
            .collect();
        let gpu = gpu_mlp(
            &dims,
            act,
            ReluKinks::Replay,
            Some(&patterns),
            &moved,
            rows,
            &x,
            &targets,
        );
        for t in 0..tasks {
            let batch = Batch {
                n: rows,
                x: x[t].clone(),
                y: targets[t].clone(),
            };
            let mut grad = vec![0.0f32; net.num_params()];
            let pattern = KinkPattern {
                codes: patterns[t].clone(),
            };
            let out =
                cpu.evaluate_with(&moved[t], &batch, Some(&mut grad), Kinks::Replay(&pattern));
            close(
                &format!("replayed task {t} loss"),
                &[gpu.loss[t]],
                &[out.loss],
                1e-5,
            );
            close(
                &format!("replayed task {t} gradient"),
                &gpu.grads[t],
                &grad,
                1e-4,
            );
        }
    }
}

#[test]
fn relu_mlp_regression_matches_the_cpu_path_with_kinks_recorded_and_replayed() {
    check(TaskKind::Regression, Activation::Relu, 1);
}

#[test]
fn relu_mlp_classification_matches_the_cpu_path_with_kinks_recorded_and_replayed() {
    check(TaskKind::Classification, Activation::Relu, 2);
}

#[test]
fn tanh_mlp_matches_the_cpu_path() {
    check(TaskKind::Regression, Activation::Tanh, 3);
    check(TaskKind::Classification, Activation::Tanh, 4);
}
