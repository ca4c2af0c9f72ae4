//! Reliability, round two (issue 22): the mutation tests extended from experiment files to run
//! folders. A stopped run's `run.json`, `metrics.jsonl` and checkpoint (header and all) are
//! mutated at random; every reader and `metalab resume` / `export` must then either refuse
//! with a message or give exactly what the unmutated run gives: never a panic, never a
//! silently different result, never history rewritten away.

#[path = "cli_common/mod.rs"]
mod cli_common;

use std::path::{Path, PathBuf};

use cli_common::*;
use metalab::runs::{self, MetricRecord};
use rand::{Rng, SeedableRng};

const ITERATIONS: usize = 40;

fn launch(root: &Path, stop_at_first_checkpoint: bool) -> PathBuf {
    train_in_process(root, ITERATIONS, stop_at_first_checkpoint)
}

fn records(dir: &Path) -> Vec<MetricRecord> {
    runs::deterministic_metrics(dir).unwrap()
}

/// One random change to `b` within `region`: a flipped bit, another digit, a byte deleted or
/// inserted, the file cut, or (for text) a line deleted, repeated or swapped.
fn mutate(b: &mut Vec<u8>, region: std::ops::Range<usize>, rng: &mut impl Rng) -> String {
    let region = region.start.min(b.len())..region.end.min(b.len());
    if region.is_empty() {
        b.push(b'x');
        return "append".into();
    }
    let at = rng.gen_range(region.clone());
    let lines =
        |b: &[u8]| -> Vec<Vec<u8>> { b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect() };
    match rng.gen_range(0..9) {
        0 => {
            b[at] ^= 1 << rng.gen_range(0..8);
            format!("flip at {at}")
        }
        1 => {
            let digits: Vec<usize> = region.filter(|&i| b[i].is_ascii_digit()).collect();
            if digits.is_empty() {
                return "no digit".into();
            }
            let i = digits[rng.gen_range(0..digits.len())];
            let d = b'0' + rng.gen_range(0..10u8);
            b[i] = d;
            format!("digit at {i}")
        }
        2 => {
            b.remove(at);
            format!("delete at {at}")
        }
        3 => {
            let pieces: [&[u8]; 8] = [b"{", b"\"", b"\n", b"0", b"9", b",", b"\xff", b"}"];
            let piece = pieces[rng.gen_range(0..pieces.len())];
            b.splice(at..at, piece.iter().copied());
            format!("insert at {at}")
        }
        4 => {
            b.truncate(at);
            format!("cut at {at}")
        }
        5..=8 => {
            let mut l = lines(b);
            if l.len() < 3 {
                b.truncate(at);
                return format!("cut at {at}");
            }
            let n = l.len() - 1; // the last piece is what follows the final newline
            let i = rng.gen_range(0..n);
            let what = match rng.gen_range(0..3) {
                0 => {
                    l.remove(i);
                    format!("delete line {i}")
                }
                1 => {
                    let x = l[i].clone();
                    l.insert(i, x);
                    format!("repeat line {i}")
                }
                _ => {
                    let j = rng.gen_range(0..n);
                    l.swap(i, j);
                    format!("swap lines {i} {j}")
                }
            };
            *b = l.join(&b'\n');
            what
        }
        _ => unreachable!(),
    }
}

fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_name() != ".lock" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The readers every command and the workbench use; a panic in any is a failure.
fn read_everything(root: &Path, dir: &Path, what: &str) {
    let r = std::panic::catch_unwind(|| {
        let _ = runs::list_runs(root);
        let _ = runs::load_meta(dir);
        let _ = runs::load_metrics(dir);
        let _ = runs::read_metrics(&dir.join("metrics.jsonl"));
        let _ = runs::checkpoint::Checkpoint::load(&dir.join("checkpoint.safetensors"));
        let _ = runs::load_config(dir);
    });
    assert!(r.is_ok(), "{what}: a reader panicked");
}

#[test]
fn mutated_run_folders_are_refused_or_resume_to_the_same_result() {
    let work = tempfile::tempdir().unwrap();
    let reference = launch(&work.path().join("reference"), false);
    let want_final = runs::load_meta(&reference).unwrap().final_eval;
    assert!(want_final.is_some());
    let want = records(&reference);
    let base = launch(&work.path().join("base"), true);
    let stopped_at = runs::checkpoint::Checkpoint::load(&base.join("checkpoint.safetensors"))
        .unwrap()
        .resume
        .iteration;
    assert!(stopped_at < ITERATIONS);
    let after = |r: &MetricRecord| r.iteration() > stopped_at;
    let want_after: Vec<MetricRecord> = want.iter().filter(|r| after(r)).cloned().collect();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(22);
    let (mut refused, mut resumed) = (0, 0);
    for case in 0..240 {
        let file = ["checkpoint.safetensors", "metrics.jsonl", "run.json"][case % 3];
        let root = work.path().join(format!("case{case}"));
        let dir = root.join(id(&base));
        copy_run(&base, &dir);
        let path = dir.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let region = if file == "checkpoint.safetensors" && rng.gen_bool(0.8) {
            // Mostly the JSON header, where the resume state is.
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            8..8 + n
        } else {
            0..bytes.len()
        };
        let mut how = vec![];
        for _ in 0..rng.gen_range(1..3) {
            how.push(mutate(&mut bytes, region.clone(), &mut rng));
        }
        std::fs::write(&path, &bytes).unwrap();
        let what = format!("case {case}: {file}: {how:?}");
        read_everything(&root, &dir, &what);
        // What the mutated file holds up to the checkpoint, as the run's history now reads.
        let before: Option<Vec<MetricRecord>> = runs::read_metrics(&dir.join("metrics.jsonl"))
            .ok()
            .map(|f| f.lines.into_iter().map(|(_, l)| l.record).collect());

        let out = bin()
            .args(["resume", &id(&dir), "-q", "--runs"])
            .arg(&root)
            .current_dir(work.path())
            .output()
            .unwrap();
        assert_no_panic(&out, &what);
        let t = text(&out);
        if out.status.code() != Some(0) {
            assert!(
                t.contains("fix:") || t.contains("error"),
                "{what}: a refusal without a reason\n{t}"
            );
            refused += 1;
        } else {
            resumed += 1;
            let meta = runs::load_meta(&dir).unwrap();
            assert_eq!(
                meta.final_eval, want_final,
                "{what}: another result, silently\n{t}"
            );
            let got = records(&dir);
            let got_after: Vec<MetricRecord> = got.iter().filter(|r| after(r)).cloned().collect();
            assert_eq!(
                got_after, want_after,
                "{what}: other curves after the checkpoint"
            );
            // Nothing up to the checkpoint was rewritten away.
            let kept: Vec<MetricRecord> = got.into_iter().filter(|r| !after(r)).collect();
            let had: Vec<MetricRecord> = before
                .unwrap_or_default()
                .into_iter()
                .filter(|r| !after(r))
                .collect();
            assert_eq!(kept, had, "{what}: history changed by the resume");
        }
        let out = bin()
            .args(["export", &id(&dir), "--out", "ex", "--runs-root"])
            .arg(&root)
            .current_dir(&root)
            .output()
            .unwrap();
        assert_no_panic(&out, &format!("{what}: export"));
        let _ = std::fs::remove_dir_all(&root);
    }
    eprintln!("{refused} refused, {resumed} resumed to the reference result");
    assert!(
        refused > 0 && resumed > 0,
        "{refused} refused, {resumed} resumed"
    );
}
