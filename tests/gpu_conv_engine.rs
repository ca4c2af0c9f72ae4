//! The conv net (conv4's blocks: 3×3 conv → batch norm → ReLU → 2×2 max pool, then the linear
//! head) through the GPU engine (`gpu::GpuTasks`), its kernels run on the CPU
//! (`GpuKernels::Host`), held to the CPU path (`model::SerialTasks` on the worker pool), on a
//! small generated image family (`Synthetic`: strokes on a blank background, no files):
//!
//! * one meta-iteration of second-order MAML (finite-difference HVPs with kink replay), FOMAML,
//!   Reptile, ANIL, the multi-task trunk, ProtoNets, Matching and Relation nets: the query loss,
//!   the meta-gradient, the parameters after the step and the evaluation protocol after it;
//! * the contract directly: recorded kink codes equal the CPU path's byte for byte (a noiseless
//!   family too, whose blank background gives exact ties), replaying them at moved parameters
//!   agrees with the CPU path's replay, and `features` with its backward pass;
//! * a 10-iteration FOMAML run through the engine on `device: Cuda(0)` against the CPU run, and
//!   two engine runs bit for bit.
//!
//! Tolerances are tests/gpu_engine.rs's (relative, ‖a − b‖/‖b‖): losses 1e-5, first-order
//! meta-gradients 1e-4, second-order ones 2e-3, parameters after the step 1e-5 (near-zero
//! meta-gradient entries held to Adam's step), evaluation losses 1e-4; the run's loss curve and
//! evaluations 1e-3. Shapes are small (2 blocks × 2 channels on 8×8 images, 3-way 1-shot, 2 tasks
//! per meta-batch): the emulation runs a block's 256 threads as OS threads, and a reduction
//! kernel launches one block per task and channel.

mod gpu_common;

use gpu_common::*;
use metalab::experiment::{Algorithm, DeviceSpec, InnerOptimizer};
use metalab::gpu::{GpuTasks, Host};
use metalab::model::{
    FeatureLoss, KinkPattern, Kinks, LockStepModel, LossOut, SerialTasks, StepJob,
};
use metalab::pool::GpuKernels;
use metalab::tasks::Episode;

const IMAGES: &str =
    "Synthetic(ways: 3, shots: 1, queries: 2, classes: 30, image_size: 8, noise: 0.3)";
const BLANK: &str =
    "Synthetic(ways: 3, shots: 1, queries: 2, classes: 30, image_size: 8, noise: 0.0)";
const CONV: &str = "Conv(blocks: 2, channels: 2)";

fn check(algorithm: Algorithm) {
    let a = agreement(IMAGES, CONV, &algorithm, GpuKernels::Host, 2);
    assert_agrees(&a, grad_tolerance(&algorithm));
}

#[test]
fn maml_second_order_on_the_conv_net_matches_the_cpu_path() {
    check(Algorithm::Maml { hvp_eps: 1e-3 });
}

#[test]
fn first_order_algorithms_on_the_conv_net_match_the_cpu_path() {
    check(Algorithm::Fomaml);
    check(Algorithm::Reptile {
        epsilon: 0.5,
        anneal: false,
        inner_optimizer: InnerOptimizer::Sgd,
    });
}

#[test]
fn anil_and_the_multitask_trunk_on_the_conv_net_match_the_cpu_path() {
    check(Algorithm::Anil { first_order: false });
    check(Algorithm::MultiTask {
        tasks: 4,
        trunks: Default::default(),
    });
}

/// The metric arms go through `features` (the body alone) and its backward pass.
#[test]
fn metric_arms_on_the_conv_net_match_the_cpu_path() {
    check(Algorithm::ProtoNet);
    check(Algorithm::MatchingNet);
    check(Algorithm::RelationNet { hidden: 4 });
}

/// The conv net without batch norm: the bias path of the fused pool.
#[test]
fn a_conv_net_without_batch_norm_matches_the_cpu_path() {
    let model = "Conv(blocks: 2, channels: 2, batch_norm: false)";
    let algorithm = Algorithm::Maml { hvp_eps: 1e-3 };
    let a = agreement(IMAGES, model, &algorithm, GpuKernels::Host, 2);
    assert_agrees(&a, grad_tolerance(&algorithm));
}

/// Gradient jobs on each episode's query set that record their kinks into `recs`.
fn recording<'a, P>(
    params: &[&'a P],
    recs: &'a mut [KinkPattern],
    eps: &'a [Episode],
) -> Vec<StepJob<'a, P>> {
    params
        .iter()
        .zip(recs.iter_mut())
        .zip(eps)
        .map(|((p, r), e)| StepJob {
            kinks: Kinks::Record(r),
            ..StepJob::gradient(*p, &e.query)
        })
        .collect()
}

/// Gradient jobs on each episode's query set that replay the kinks of `recs`.
fn replaying<'a, P>(
    params: &[&'a P],
    recs: &'a [KinkPattern],
    eps: &'a [Episode],
) -> Vec<StepJob<'a, P>> {
    params
        .iter()
        .zip(recs)
        .zip(eps)
        .map(|((p, r), e)| StepJob {
            kinks: Kinks::Replay(r),
            ..StepJob::gradient(*p, &e.query)
        })
        .collect()
}

/// Recorded kink codes equal the CPU path's byte for byte, on noisy images and on blank-background
/// ones (exact ties in the pools); replaying them at moved parameters gives the CPU path's loss
/// and gradient; `features` and its gradient agree.
#[test]
fn kink_codes_replay_and_features_match_the_cpu_path() {
    for family in [IMAGES, BLANK] {
        let (p, eps, values) = episodes_and_inits(family, CONV, 2);
        let moved: Vec<Vec<f32>> = values
            .iter()
            .map(|v| {
                v.iter()
                    .enumerate()
                    .map(|(i, x)| x + 0.01 * ((i % 7) as f32 - 3.0))
                    .collect()
            })
            .collect();

        let mut ev = p.net.evaluator(DeviceSpec::Cpu, 0).unwrap();
        let mut cpu = SerialTasks::new(ev.as_mut());
        let mut gpu = GpuTasks::new(Host, &p.net).unwrap();
        let h: Vec<_> = values.iter().map(|v| gpu.load(v.clone())).collect();
        let hm: Vec<_> = moved.iter().map(|v| gpu.load(v.clone())).collect();

        let mut c_rec = vec![KinkPattern::default(), KinkPattern::default()];
        let mut g_rec = vec![KinkPattern::default(), KinkPattern::default()];
        let c_params: Vec<&Vec<f32>> = values.iter().collect();
        let c_out = cpu.step(&mut recording(&c_params, &mut c_rec, &eps));
        let g_out = gpu.step(&mut recording(
            &h.iter().collect::<Vec<_>>(),
            &mut g_rec,
            &eps,
        ));
        assert_eq!(g_rec, c_rec, "{family}: recorded kink codes");
        assert_eq!(c_rec[0].codes.len(), 2, "one list of codes per block");
        let codes: Vec<u8> = c_rec.iter().flat_map(|r| r.codes.concat()).collect();
        assert!(
            codes.contains(&255) && codes.iter().any(|&c| c < 4),
            "{family}: both clipped and passing windows"
        );
        for (g, c) in g_out.iter().zip(&c_out) {
            assert!(rel(&[g.out.loss], &[c.out.loss]) <= 1e-5, "{family}: loss");
            let e = rel(g.grad.as_ref().unwrap(), c.grad.as_ref().unwrap());
            assert!(e <= 1e-4, "{family}: gradient {e:e}");
        }

        let c_moved: Vec<&Vec<f32>> = moved.iter().collect();
        let c_rep = cpu.step(&mut replaying(&c_moved, &c_rec, &eps));
        let g_rep = gpu.step(&mut replaying(&hm.iter().collect::<Vec<_>>(), &c_rec, &eps));
        for (g, c) in g_rep.iter().zip(&c_rep) {
            assert!(
                rel(&[g.out.loss], &[c.out.loss]) <= 1e-5,
                "{family}: replayed loss"
            );
            let e = rel(g.grad.as_ref().unwrap(), c.grad.as_ref().unwrap());
            assert!(e <= 1e-4, "{family}: replayed gradient {e:e}");
        }

        // `features`: the body on the support images through a loss on the features (their
        // sum of squares), and its gradient, on both paths.
        let body = p.net.layout.head_start;
        let square = |f: &[f32], _d: usize| {
            let loss = f.iter().map(|v| v * v).sum::<f32>();
            (
                LossOut {
                    loss,
                    correct: None,
                },
                f.iter().map(|v| 2.0 * v).collect::<Vec<f32>>(),
            )
        };
        let c_body: Vec<Vec<f32>> = values.iter().map(|v| v[..body].to_vec()).collect();
        let g_body: Vec<_> = c_body.iter().map(|v| gpu.load(v.clone())).collect();
        let mut c_losses: Vec<Box<FeatureLoss>> = vec![Box::new(square), Box::new(square)];
        let mut g_losses: Vec<Box<FeatureLoss>> = vec![Box::new(square), Box::new(square)];
        let c_f = metalab::model::lockstep::embed_all(
            &mut cpu,
            c_body
                .iter()
                .zip(&eps)
                .map(|(b, e)| (b, e.support.n, &e.support.x[..])),
            &mut c_losses,
            true,
        );
        let g_f = metalab::model::lockstep::embed_all(
            &mut gpu,
            g_body
                .iter()
                .zip(&eps)
                .map(|(b, e)| (b, e.support.n, &e.support.x[..])),
            &mut g_losses,
            true,
        );
        for (g, c) in g_f.iter().zip(&c_f) {
            assert!(
                rel(&[g.out.loss], &[c.out.loss]) <= 1e-5,
                "{family}: features"
            );
            let (gg, cg) = (g.grad.as_ref().unwrap(), c.grad.as_ref().unwrap());
            assert_eq!(gg.len(), body);
            let e = rel(gg, cg);
            assert!(e <= 1e-4, "{family}: features' gradient {e:e}");
        }
    }
}

#[test]
fn ten_iterations_through_the_engine_follow_the_cpu_run_and_rerun_bit_for_bit() {
    let root = tempfile::tempdir().unwrap();
    let arms = r#"Arm(name: "fomaml", algorithm: Fomaml)"#;
    let r = engine_runs_on(root.path(), IMAGES, CONV, arms, 10, 2, GpuKernels::Host);
    r.assert_follows_the_cpu_run();
}
