//! The GPU check, for a machine with an NVIDIA GPU (`scripts/gpu-check.sh` runs it; ignored
//! otherwise): every op of `gpu::selfcheck` on the GPU against its host-emulated self on fresh
//! random inputs (kink codes exactly; floats within 1e-4 relative: cuBLAS and the GPU's
//! `expf`/`logf` round differently), two GPU runs bit-identical, cuBLAS fp32 TFLOP/s at the
//! Omniglot conv4 GEMM shapes (meta-batch 32, 5-way 1-shot, 15 queries: 80 images of 28×28), and
//! peak GPU memory. Writes JSON to `$METALAB_GPU_CHECK_OUT` (default `gpu-check.json`). Then the
//! GPU engine as the algorithms' backend against the CPU path (`gpu_engine_agrees_with_the_cpu_path`,
//! the comparison `tests/gpu_engine.rs` makes with the kernels on the CPU), the conv net likewise
//! at Omniglot's shapes (`gpu_conv_engine_agrees_with_the_cpu_path`), and the bench's GPU rows
//! (`gpu_bench_rows`), and an inner step on the GPU bringing back its losses only and stepping
//! as the host would (`gpu_inner_steps_stay_on_the_device`, tests/gpu_transfers.rs's check on
//! `Cuda`). One test runs everywhere: without a driver, `metalab bench --device cuda`
//! is a clear error.

mod gpu_common;

use std::time::Instant;

use metalab::gpu::gemm::{Gemm, RowMajor};
use metalab::gpu::selfcheck::{difference, run, Output};
use metalab::gpu::{Backend, Cuda, Host};

#[test]
#[ignore = "needs an NVIDIA GPU: run scripts/gpu-check.sh"]
fn gpu_agrees_with_its_emulation() {
    let gpu = Cuda::open(0).unwrap_or_else(|e| panic!("{e}"));
    let name = metalab::gpu::probe::check(0).unwrap();
    let ctx = gpu.context().clone();
    let (free0, total) = ctx.mem_get_info().unwrap();
    let mut min_free = free0;
    let mut ops = vec![];
    let mut failures = vec![];
    for seed in [11u64, 12] {
        let on_gpu = run(&gpu, seed, 4).unwrap();
        min_free = min_free.min(ctx.mem_get_info().unwrap().0);
        let again = run(&gpu, seed, 4).unwrap();
        let on_host = run(&Host, seed, 4).unwrap();
        for (((n, g), (_, h)), (_, g2)) in on_gpu.iter().zip(&on_host).zip(&again) {
            let d = difference(g, h);
            let ok = match g {
                Output::U8(_) | Output::F64(_) => d == 0.0,
                Output::F32(_) => d <= 1e-4,
            };
            if !ok {
                failures.push(format!("{n} (seed {seed}): {d:e}"));
            }
            if g != g2 {
                failures.push(format!("{n} (seed {seed}): two GPU runs differ"));
            }
            ops.push(serde_json::json!({"op": n, "seed": seed, "difference": d, "ok": ok, "repeatable": g == g2}));
        }
    }

    // Conv GEMMs per block: (cout, cin·9) × (cin·9, images·h·w) for each of 32 tasks.
    let mut gemms = vec![];
    for (cin, hw) in [(1usize, 28usize), (64, 14), (64, 7), (64, 3)] {
        let (tasks, m, k, n) = (32, 64, cin * 9, 80 * hw * hw);
        let g = Gemm::row_major(tasks, RowMajor::new(m, k), RowMajor::new(k, n), 1.0, 0.0);
        let a = gpu.zeros_f32(tasks * m * k).unwrap();
        let b = gpu.zeros_f32(tasks * k * n).unwrap();
        let mut c = gpu.zeros_f32(tasks * m * n).unwrap();
        gpu.sgemm(&g, &b, &a, &mut c).unwrap();
        gpu.synchronize().unwrap();
        min_free = min_free.min(ctx.mem_get_info().unwrap().0);
        let reps = 20;
        let t0 = Instant::now();
        for _ in 0..reps {
            gpu.sgemm(&g, &b, &a, &mut c).unwrap();
        }
        gpu.synchronize().unwrap();
        let s = t0.elapsed().as_secs_f64() / reps as f64;
        let tflops = 2.0 * (tasks * m * k * n) as f64 / s / 1e12;
        gemms.push(serde_json::json!({"tasks": tasks, "m": m, "k": k, "n": n, "ms": s * 1e3, "tflops": tflops}));
    }
    let report = serde_json::json!({
        "device": name,
        "arch": gpu.arch(),
        "ops": ops,
        "failures": failures,
        "sgemm_conv_shapes": gemms,
        "peak_memory_bytes": free0.saturating_sub(min_free),
        "total_memory_bytes": total,
    });
    let path = std::env::var("METALAB_GPU_CHECK_OUT").unwrap_or_else(|_| "gpu-check.json".into());
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(
        failures.is_empty(),
        "GPU and emulation disagree: {failures:?}"
    );
}

/// The GPU engine on the GPU against the CPU path: one meta-iteration of every MLP algorithm
/// at meta-batch 32 (sinusoid, 40-40 MLP, 2 inner steps), and a 50-iteration run through the
/// engine on `device: Cuda(0)` against the CPU run, twice (bit for bit). Tolerances as
/// tests/gpu_engine.rs states them. Writes JSON to `$METALAB_GPU_ENGINE_OUT` (default
/// `gpu-engine.json`).
#[test]
#[ignore = "needs an NVIDIA GPU: run scripts/gpu-check.sh"]
fn gpu_engine_agrees_with_the_cpu_path() {
    use metalab::pool::GpuKernels;
    let mlp = "Mlp(hidden: [40, 40])";
    let mut steps = vec![];
    for a in gpu_common::mlp_algorithms() {
        let r = gpu_common::agreement(gpu_common::SINUSOID, mlp, &a, GpuKernels::Device, 32);
        steps.push((r, gpu_common::grad_tolerance(&a)));
    }
    let root = tempfile::tempdir().unwrap();
    let arms = r#"Arm(name: "maml", algorithm: Maml())"#;
    let runs = gpu_common::engine_runs(root.path(), mlp, arms, 50, 32, GpuKernels::Device);
    let report = serde_json::json!({
        "meta_iterations": steps.iter().map(|(r, tol)| serde_json::json!({"result": r, "meta_gradient_tolerance": tol})).collect::<Vec<_>>(),
        "engine_runs": runs,
    });
    let path = std::env::var("METALAB_GPU_ENGINE_OUT").unwrap_or_else(|_| "gpu-engine.json".into());
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    for (r, tol) in &steps {
        gpu_common::assert_agrees(r, *tol);
    }
    assert!(
        runs.loss_curve <= 1e-3 && runs.evaluations <= 1e-3,
        "{runs:?}"
    );
    assert!(runs.gpu_runs_bit_identical, "two GPU runs differ");
}

/// The conv net on the GPU engine against the CPU path at Omniglot's shapes (conv4, 64
/// channels, 28×28 generated images, 5-way 1-shot, 15 queries), meta-batch 8 so the CPU side
/// stays short: one meta-iteration of FOMAML and second-order MAML (2 inner steps), tolerances
/// as tests/gpu_conv_engine.rs states them. Writes JSON to `$METALAB_GPU_CONV_OUT` (default
/// `gpu-conv.json`).
#[test]
#[ignore = "needs an NVIDIA GPU: run scripts/gpu-check.sh"]
fn gpu_conv_engine_agrees_with_the_cpu_path() {
    use metalab::experiment::Algorithm;
    use metalab::pool::GpuKernels;
    let family =
        "Synthetic(ways: 5, shots: 1, queries: 15, classes: 100, image_size: 28, noise: 0.3)";
    let conv = "Conv(blocks: 4, channels: 64)";
    let mut steps = vec![];
    for a in [Algorithm::Fomaml, Algorithm::Maml { hvp_eps: 1e-3 }] {
        let r = gpu_common::agreement(family, conv, &a, GpuKernels::Device, 8);
        steps.push((r, gpu_common::grad_tolerance(&a)));
    }
    let report = serde_json::json!({
        "meta_iterations": steps.iter().map(|(r, tol)| serde_json::json!({"result": r, "meta_gradient_tolerance": tol})).collect::<Vec<_>>(),
    });
    let path = std::env::var("METALAB_GPU_CONV_OUT").unwrap_or_else(|_| "gpu-conv.json".into());
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    for (r, tol) in &steps {
        gpu_common::assert_agrees(r, *tol);
    }
}

/// `metalab bench --device cuda`'s rows, in this process: seconds per meta-iteration of conv4
/// 5-way 1-shot, meta-batch 32, 15 queries (FOMAML and second-order MAML, 1 and 5 inner steps)
/// and of sinusoid MAML, through the GPU engine; with the GPU's peak memory over them. Writes
/// JSON to `$METALAB_GPU_BENCH_OUT` (default `gpu-bench.json`).
#[test]
#[ignore = "needs an NVIDIA GPU: run scripts/gpu-check.sh"]
fn gpu_bench_rows() {
    use metalab::bench::{run_workload, BenchDevice};
    let gpu = Cuda::open(0).unwrap_or_else(|e| panic!("{e}"));
    let ctx = gpu.context().clone();
    let free0 = ctx.mem_get_info().unwrap().0;
    let mut rows = vec![];
    for name in [
        "omniglot-fomaml-1step",
        "omniglot-maml2-1step",
        "omniglot-fomaml-5step",
        "omniglot-maml2-5step",
        "sinusoid-maml2",
    ] {
        let r =
            run_workload(name, false, None, BenchDevice::Cuda).unwrap_or_else(|e| panic!("{e}"));
        let used = free0.saturating_sub(ctx.mem_get_info().unwrap().0);
        eprintln!("{name}: {:.2} ms per meta-iteration", r.median_s * 1e3);
        rows.push(serde_json::json!({"result": r, "device_memory_in_use_after_bytes": used}));
    }
    // The memory budget's cost: FOMAML 1 step in calls within the default 1 GiB budget (the
    // estimate's calls of `tasks_per_call`) against whole meta-batches of 32, alternating.
    let mut budget = vec![];
    for round in 0..2 {
        for (label, bytes) in [
            ("default budget", None),
            ("whole meta-batch", Some(u64::MAX)),
        ] {
            let r = metalab::bench::run_workload_within(
                "omniglot-fomaml-1step",
                false,
                None,
                BenchDevice::Cuda,
                bytes,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let used = free0.saturating_sub(ctx.mem_get_info().unwrap().0);
            eprintln!(
                "{label} (round {round}): {:.2} ms per meta-iteration",
                r.median_s * 1e3
            );
            budget.push(serde_json::json!({"round": round, "calls": label, "result": r, "device_memory_in_use_after_bytes": used}));
        }
    }
    let report = serde_json::json!({
        "device": metalab::gpu::probe::check(0).unwrap(),
        "rows": rows,
        "budget_vs_whole": budget,
    });
    let path = std::env::var("METALAB_GPU_BENCH_OUT").unwrap_or_else(|_| "gpu-bench.json".into());
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// tests/gpu_transfers.rs's inner step on the GPU: its losses alone come back, and it steps as
/// the host would on the downloaded gradient, bit for bit.
#[test]
#[ignore = "needs an NVIDIA GPU: run scripts/gpu-check.sh"]
fn gpu_inner_steps_stay_on_the_device() {
    gpu_common::assert_inner_steps_stay_on_the_device(|| {
        Cuda::open(0).unwrap_or_else(|e| panic!("{e}"))
    });
}

/// tests/gpu_transfers.rs's step back on the GPU: second-order MAML's vectors stay there, and
/// each is bit for bit the host path's over the same GPU.
#[test]
#[ignore = "needs an NVIDIA GPU: run scripts/gpu-check.sh"]
fn gpu_steps_back_stay_on_the_device() {
    gpu_common::assert_steps_back_stay_on_the_device(|| {
        Cuda::open(0).unwrap_or_else(|e| panic!("{e}"))
    });
}

/// On a machine without a driver (CI), `metalab bench --device cuda` stops at once with the
/// probe's error and its fix, and no workload runs; never a crash.
#[test]
fn bench_on_cuda_without_a_driver_is_a_clear_error() {
    let (driver, _, _) = metalab::gpu::probe::libraries();
    if driver {
        eprintln!("a driver is present: the GPU check times the rows instead");
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metalab"))
        .args(["bench", "--device", "cuda", "--quick"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bench --device cuda")
            && err.contains("no NVIDIA driver")
            && err.contains("fix:"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("omniglot"),
        "no workload ran"
    );
}
