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
use metalab::pool::{GpuKernels, WorkerPool};

const SMALL_MLP: &str = "Mlp(hidden: [8, 8])";

fn check(family: &str, algorithm: Algorithm) {
    let a = agreement(family, SMALL_MLP, &algorithm, GpuKernels::Host, 3);
    assert_agrees(&a, grad_tolerance(&algorithm));
}

#[test]
fn maml_second_order_matches_the_cpu_path() {
    check(SINUSOID, Algorithm::Maml { hvp_eps: 1e-3 });
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
    eprintln!("{r:?}");
    assert_eq!(r.train_points, 50);
    assert!(r.loss_curve <= 1e-3, "loss curve {:e}", r.loss_curve);
    assert!(r.same_evaluation_count);
    assert!(r.evaluations <= 1e-3, "evaluations {:e}", r.evaluations);
    assert!(
        r.gpu_runs_bit_identical,
        "two runs on the GPU engine differ"
    );
}

#[test]
fn the_conv_net_is_refused_by_the_gpu_engine_naming_it() {
    let family = "Synthetic(ways: 3, shots: 2, queries: 2, classes: 30, image_size: 8, noise: 0.3)";
    let arms = r#"Arm(name: "a", algorithm: Fomaml)"#;
    let e = experiment(family, "Conv(blocks: 2, channels: 3)", arms, "Cpu", 1, 2);
    let p = metalab::engine::Prepared::new(e, Default::default()).unwrap();
    let err = WorkerPool::with_kernels(
        &p.net,
        metalab::experiment::DeviceSpec::Cuda(0),
        GpuKernels::Host,
        1,
        1,
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(
        err.contains("conv net") && err.contains("device: Cpu"),
        "{err}"
    );
}
