//! The GPU engine as the algorithms' lock-step backend (`gpu::GpuTasks`), with its kernels run on
//! the CPU (`GpuKernels::Host`: the same `.cu` sources under `kernels/emu/cuda_emu.hpp`), held
//! to the CPU path (`model::SerialTasks` on the worker pool):
//!
//! * one meta-iteration of every algorithm that runs on the MLP (second-order MAML, FOMAML,
//!   Reptile, ANIL, Meta-SGD, multi-task trunk) on the sinusoid, plus MAML and ProtoNets on a
//!   classification MLP: the query loss, the meta-gradient (Adam's first moment after one step
//!   is `(1 − β₁)·g`, so the checkpoint state carries it; Reptile's step is its update), the
//!   parameters after the step, then the evaluation protocol from the stepped parameters;
//! * a 50-iteration run through the engine (`device: Cuda(0)`) against the same run on the
//!   CPU: the training loss curve and the evaluations; and two engine runs, bit for bit.
//!
//! Tolerances (relative, ‖a − b‖/‖b‖): the GPU engine sums in another order than dfdx (per-task
//! GEMMs, per-block reductions), so floats agree to rounding: losses 1e-5, first-order
//! meta-gradients 1e-4, second-order ones 2e-3 (a finite-difference HVP divides rounding by
//! its 2ε), parameters after the step 1e-5 (entries whose meta-gradient is within rounding of
//! zero excepted: Adam's first step turns rounding into a sign there), evaluation losses 1e-4;
//! the 50-iteration loss curve and evaluations 1e-3 (differences compound through Adam).
//! Shapes are small: the emulation runs a block's 256 threads as OS threads.

mod gpu_common;

use gpu_common::*;
use metalab::experiment::Algorithm;
use metalab::pool::GpuKernels;

const SMALL_MLP: &str = "Mlp(hidden: [8, 8])";

fn check(family: &str, algorithm: Algorithm) {
    let a = agreement(family, SMALL_MLP, &algorithm, GpuKernels::Host, 3);
    assert_agrees(&a, grad_tolerance(&algorithm));
}

#[test]
fn maml_second_order_matches_the_cpu_path() {
    check(SINUSOID, Algorithm::Maml { hvp_eps: 1e-3 });
}

/// A tanh network has no kinks: second-order MAML's recordings stay empty on both paths.
#[test]
fn maml_second_order_on_a_tanh_mlp_matches_the_cpu_path() {
    let algorithm = Algorithm::Maml { hvp_eps: 1e-3 };
    let tanh = "Mlp(hidden: [8, 8], activation: Tanh)";
    let a = agreement(SINUSOID, tanh, &algorithm, GpuKernels::Host, 3);
    assert_agrees(&a, grad_tolerance(&algorithm));
}

#[test]
fn every_other_mlp_algorithm_matches_the_cpu_path() {
    for a in mlp_algorithms() {
        if !matches!(a, Algorithm::Maml { .. }) {
            check(SINUSOID, a);
        }
    }
}

/// Classification on the MLP: softmax cross-entropy and accuracy counts, and `features` (the
/// prototypes) through the GPU engine.
#[test]
fn classification_maml_and_protonets_match_the_cpu_path() {
    check(CLASSES, Algorithm::Maml { hvp_eps: 1e-3 });
    check(CLASSES, Algorithm::ProtoNet);
}

#[test]
fn fifty_iterations_through_the_engine_follow_the_cpu_run_and_rerun_bit_for_bit() {
    let root = tempfile::tempdir().unwrap();
    let arms = r#"Arm(name: "fomaml", algorithm: Fomaml)"#;
    let r = engine_runs(
        root.path(),
        "Mlp(hidden: [6])",
        arms,
        50,
        2,
        GpuKernels::Host,
    );
    r.assert_follows_the_cpu_run();
}

/// The contract's promises, on `GpuTasks<Host>` directly: a call mixing kink modes, gradient
/// requests and batch sizes gives each job, bit for bit, what it gives alone; recorded kink codes
/// equal the CPU path's exactly, and replaying them at moved parameters agrees with the CPU
/// path's replay.
#[test]
fn a_mixed_call_equals_its_jobs_alone_and_kink_codes_match_the_cpu_path() {
    use metalab::gpu::{GpuTasks, Host};
    use metalab::model::{KinkPattern, Kinks, LockStepModel, SerialTasks, StepJob, StepOut};

    let (p, eps, values) = episodes_and_inits(SINUSOID, SMALL_MLP, 3);
    let moved: Vec<f32> = values[1].iter().map(|v| v + 0.05).collect();

    // The CPU path: job 0 records, job 1 (moved) replays job 1's recording at its own θ.
    let mut ev = p
        .net
        .evaluator(metalab::experiment::DeviceSpec::Cpu, 0)
        .unwrap();
    let mut cpu = SerialTasks::new(ev.as_mut());
    let (mut rec0, mut rec1) = (KinkPattern::default(), KinkPattern::default());
    let c_out = cpu.step(&mut [
        StepJob {
            kinks: Kinks::Record(&mut rec0),
            ..StepJob::gradient(&values[0], &eps[0].support)
        },
        StepJob {
            kinks: Kinks::Record(&mut rec1),
            ..StepJob::loss(&values[1], &eps[1].support)
        },
    ]);
    let c_replay = cpu.step(&mut [StepJob {
        kinks: Kinks::Replay(&rec1),
        ..StepJob::gradient(&moved, &eps[1].support)
    }]);
    assert!(
        rec0.codes.iter().flatten().any(|&c| c == 0)
            && rec0.codes.iter().flatten().any(|&c| c == 1)
    );

    let mut gpu = GpuTasks::new(Host, &p.net).unwrap();
    let h: Vec<Vec<f32>> = values.clone();
    let h: Vec<_> = h.into_iter().map(|v| gpu.load(v)).collect();
    let hm = gpu.load(moved.clone());
    let (mut g0, mut g1) = (KinkPattern::default(), KinkPattern::default());
    // One call: record with gradient, record without, replay with gradient, a free query-set
    // loss (another batch size would be another group).
    let mixed = gpu.step(&mut [
        StepJob {
            kinks: Kinks::Record(&mut g0),
            ..StepJob::gradient(&h[0], &eps[0].support)
        },
        StepJob {
            kinks: Kinks::Record(&mut g1),
            ..StepJob::loss(&h[1], &eps[1].support)
        },
        StepJob {
            kinks: Kinks::Replay(&rec1),
            ..StepJob::gradient(&hm, &eps[1].support)
        },
        StepJob::gradient(&h[2], &eps[2].query),
    ]);
    assert_eq!(g0, rec0, "recorded kink codes, job 0");
    assert_eq!(g1, rec1, "recorded kink codes, job 1");
    let alone: Vec<StepOut> = vec![
        gpu.step(&mut [StepJob {
            kinks: Kinks::Record(&mut KinkPattern::default()),
            ..StepJob::gradient(&h[0], &eps[0].support)
        }]),
        gpu.step(&mut [StepJob {
            kinks: Kinks::Record(&mut KinkPattern::default()),
            ..StepJob::loss(&h[1], &eps[1].support)
        }]),
        gpu.step(&mut [StepJob {
            kinks: Kinks::Replay(&rec1),
            ..StepJob::gradient(&hm, &eps[1].support)
        }]),
        gpu.step(&mut [StepJob::gradient(&h[2], &eps[2].query)]),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(mixed, alone, "a mixed call against its jobs one at a time");
    assert!(mixed[1].grad.is_none() && mixed[0].grad.is_some());
    let replayed = rel(
        mixed[2].grad.as_ref().unwrap(),
        c_replay[0].grad.as_ref().unwrap(),
    );
    assert!(replayed <= 1e-5, "replayed gradient {replayed:e}");
    let loss = rel(&[mixed[2].out.loss], &[c_replay[0].out.loss]);
    assert!(loss <= 1e-5, "replayed loss {loss:e}");
    let g0 = mixed[0].grad.as_ref().unwrap();
    assert!(rel(g0, c_out[0].grad.as_ref().unwrap()) <= 1e-5);
    assert_eq!(
        gpu.read(&h[2]).as_ref(),
        values[2].as_slice(),
        "read gives back what load took"
    );
}
