//! ThreadSanitizer on the kernels: `kernels/emu/tsan_harness.cpp` runs every kernel under the
//! CUDA emulation (a block's threads are OS threads) built with `g++ -fsanitize=thread`. The real
//! kernels must run clean; each variant with one `__syncthreads()` of `kernels/common.cuh`'s
//! block reduction deleted must be reported as a data race — which shows the check can fail.

use std::path::{Path, PathBuf};
use std::process::Command;

const BARRIER: &str = "__syncthreads();";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the harness into `include` (searched before `kernels/`), runs it, and returns its exit
/// status and output.
fn build_and_run(include: &Path, name: &str) -> (Option<i32>, String) {
    let exe = include.join("harness");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    let built = Command::new(&cxx)
        .args([
            "-std=c++20",
            "-O1",
            "-g",
            "-fsanitize=thread",
            "-ffp-contract=off",
        ])
        .arg(format!("-I{}", include.display()))
        .arg(format!("-I{}", root().join("kernels").display()))
        .arg(root().join("kernels/emu/tsan_harness.cpp"))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| {
            panic!("{cxx} could not be started ({e}); install g++ (libtsan comes with it)")
        });
    assert!(
        built.status.success(),
        "{name}: the ThreadSanitizer build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let run = Command::new(&exe)
        // One report is enough to show a race; halt_on_error keeps the output short.
        .env("TSAN_OPTIONS", "halt_on_error=1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    (run.status.code(), text)
}

#[test]
fn kernels_are_race_free_and_a_removed_barrier_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let common = std::fs::read_to_string(root().join("kernels/common.cuh")).unwrap();
    let sum_at = common
        .find("ml_block_sum")
        .expect("common.cuh defines ml_block_sum");
    let barriers: Vec<usize> = common[sum_at..]
        .match_indices(BARRIER)
        .map(|(i, _)| sum_at + i)
        .collect();
    assert!(
        barriers.len() >= 3,
        "ml_block_sum has {} barriers",
        barriers.len()
    );

    // Each variant builds and runs on its own thread: the builds dominate.
    let jobs: Vec<(String, PathBuf)> = std::iter::once(("correct".to_string(), None))
        .chain(
            barriers
                .iter()
                .enumerate()
                .map(|(k, &at)| (format!("without-barrier-{k}"), Some(at))),
        )
        .map(|(name, cut)| {
            let inc = dir.path().join(&name);
            std::fs::create_dir_all(&inc).unwrap();
            if let Some(at) = cut {
                let broken = format!("{}{}", &common[..at], &common[at + BARRIER.len()..]);
                std::fs::write(inc.join("common.cuh"), broken).unwrap();
            }
            (name, inc)
        })
        .collect();
    let results: Vec<(String, Option<i32>, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(name, inc)| {
                s.spawn(|| {
                    let (code, text) = build_and_run(inc, name);
                    (name.clone(), code, text)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    for (name, code, text) in &results {
        let raced = text.contains("WARNING: ThreadSanitizer: data race");
        if name == "correct" {
            assert!(
                !raced && *code == Some(0),
                "the real kernels: exit {code:?}\n{text}"
            );
            assert!(
                text.contains("checksum"),
                "the harness did not finish:\n{text}"
            );
        } else {
            assert!(
                raced,
                "{name}: a deleted __syncthreads went unreported (exit {code:?})\n{text}"
            );
            assert!(
                text.contains("common.cuh"),
                "{name}: the race is not placed in the reduction:\n{text}"
            );
        }
        eprintln!(
            "{name}: {}",
            if raced { "data race reported" } else { "clean" }
        );
    }
}
