//! Reliability, round two (issue 22): crafted and damaged run folders. Links planted in a run
//! folder or in the runs folder, an edited checkpoint header, the crash windows around the
//! final test line, garbled metrics, runs killed before their first checkpoint, locks and pids,
//! names that forge rows, a full disk, and random mutations of everything in a run folder.

#[path = "cli_common/mod.rs"]
mod cli_common;

use std::path::{Path, PathBuf};

use cli_common::*;
use metalab::runs;

/// A run of `tiny(iterations)` stopped just after its first checkpoint (iteration 10 or a
/// little later), through the engine as the workbench's stop does: resumable.
fn stopped_run(project: &Path, iterations: usize) -> PathBuf {
    let dir = train_in_process(&project.join("runs"), iterations, true);
    assert_eq!(
        runs::load_meta(&dir).unwrap().status,
        runs::RunStatus::Stopped
    );
    dir
}

/// What a run computed, without wall-clock fields: its metrics lines and final result.
fn outcome(
    dir: &Path,
) -> (
    Vec<runs::MetricRecord>,
    Option<metalab::metrics::EvalResult>,
) {
    (
        runs::deterministic_metrics(dir).unwrap(),
        runs::load_meta(dir).unwrap().final_eval,
    )
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[test]
fn links_planted_in_a_run_folder_are_never_written_through() {
    let p = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = |n: &str| outside.path().join(n);
    let dir = stopped_run(p.path(), 40);
    // The temporaries of 771b3c7's fixed names, planted as links to files outside.
    for t in [
        "run.json.tmp",
        "checkpoint.safetensors.tmp",
        "metrics.jsonl.tmp",
        "fits.json.tmp",
    ] {
        std::fs::write(victim(t), "precious").unwrap();
        symlink(&victim(t), &dir.join(t));
    }
    let out = metalab(p.path(), &["resume", &id(&dir)]);
    assert_exit(&out, 0, "resume with planted temporaries");
    for t in [
        "run.json.tmp",
        "checkpoint.safetensors.tmp",
        "metrics.jsonl.tmp",
        "fits.json.tmp",
    ] {
        assert_eq!(
            std::fs::read_to_string(victim(t)).unwrap(),
            "precious",
            "{t}"
        );
    }
    for f in ["run.json", "metrics.jsonl", "checkpoint.safetensors"] {
        assert!(!runs::files::is_link(&dir.join(f)), "{f} became a link");
    }

    // A run whose own files are links is refused, and nothing outside changes.
    for f in [
        "metrics.jsonl",
        "run.json",
        "checkpoint.safetensors",
        ".lock",
    ] {
        let dir = stopped_run(p.path(), 40);
        let target = victim(&format!("target-{f}"));
        std::fs::rename(dir.join(f), &target).unwrap();
        let before = std::fs::read(&target).unwrap();
        symlink(&target, &dir.join(f));
        let out = metalab(p.path(), &["resume", &id(&dir)]);
        assert_exit(&out, 2, &format!("resume with {f} a link"));
        assert!(text(&out).contains("symbolic link"), "{f}: {}", text(&out));
        assert_eq!(
            std::fs::read(&target).unwrap(),
            before,
            "{f} written through"
        );
    }

    // `metalab eval` appends to evals.jsonl: never through a link.
    let dir = run_tiny(p.path(), 20);
    std::fs::write(victim("evals"), "precious").unwrap();
    symlink(&victim("evals"), &dir.join("evals.jsonl"));
    let out = metalab(p.path(), &["eval", &id(&dir), "--tasks", "2"]);
    assert_exit(&out, 2, "eval with evals.jsonl a link");
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(victim("evals")).unwrap(),
        "precious"
    );
}

/// A sweep of one variant of `tiny(iterations)`.
fn tiny_sweep(project: &Path, iterations: usize) {
    std::fs::write(project.join("tiny.ron"), tiny(iterations)).unwrap();
    std::fs::write(
        project.join("s.sweep.ron"),
        "Sweep(name: \"s\", experiment: \"tiny.ron\", axes: [Axis(path: \"seed\", values: [3])])",
    )
    .unwrap();
}

#[test]
fn a_linked_run_folder_is_refused_by_every_command_sweep_included() {
    let p = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    tiny_sweep(p.path(), 20);
    assert_exit(&metalab(p.path(), &["sweep", "s.sweep.ron"]), 0, "sweep");
    let runs_dir = p.path().join("runs");
    let dir = run_dirs(&runs_dir).pop().unwrap();
    // Move the variant's run outside, make it resumable there, and link it back in.
    let moved = outside.path().join("run");
    std::fs::rename(&dir, &moved).unwrap();
    edit_meta(&moved, |m| m["status"] = "Stopped".into());
    symlink(&moved, &dir);
    let before: Vec<(String, Vec<u8>)> = ["run.json", "metrics.jsonl", "checkpoint.safetensors"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(moved.join(f)).unwrap()))
        .collect();

    let listed = text(&metalab(p.path(), &["runs"]));
    assert!(listed.contains("symbolic link"), "{listed}");
    assert!(
        !listed.contains(&format!("metalab rerun {}", id(&dir))),
        "a hint every command refuses: {listed}"
    );
    let grouped = text(&metalab(p.path(), &["runs", "--group"]));
    assert!(!grouped.contains(&id(&dir)), "{grouped}");
    for cmd in ["resume", "rerun", "export"] {
        let out = metalab(p.path(), &[cmd, &id(&dir)]);
        assert_exit(&out, 2, cmd);
        assert!(
            text(&out).contains("symbolic link"),
            "{cmd}: {}",
            text(&out)
        );
    }
    // The sweep takes the link for no run of its own: it trains the variant afresh here.
    let out = metalab(p.path(), &["sweep", "s.sweep.ron"]);
    assert_exit(&out, 0, "sweep with a linked run");
    for (f, bytes) in &before {
        assert_eq!(&std::fs::read(moved.join(f)).unwrap(), bytes, "{f} changed");
    }
    let real: Vec<PathBuf> = run_dirs(&runs_dir)
        .into_iter()
        .filter(|d| !runs::files::is_link(d))
        .collect();
    assert_eq!(real.len(), 1, "{real:?}");
    assert_eq!(
        runs::load_meta(&real[0]).unwrap().status,
        runs::RunStatus::Finished
    );
    // Deleting the listed link removes the link, never what it points to.
    runs::delete_run(&runs_dir, &id(&dir)).unwrap();
    assert!(moved.join("run.json").exists());
}

#[test]
fn an_edited_iteration_in_a_checkpoint_header_is_refused() {
    let p = tempfile::tempdir().unwrap();
    let dir = stopped_run(p.path(), 40);
    let path = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"\"iteration\":\"")
        .expect("iteration in the header")
        + 13;
    let mut b = bytes.clone();
    // 10 → 00, 11 → 01, …: same length, still a number.
    b[at] = b'0';
    assert_ne!(b, bytes);
    std::fs::write(&path, b).unwrap();
    let out = metalab(p.path(), &["resume", &id(&dir)]);
    assert_exit(&out, 1, "resume of an edited checkpoint");
    assert!(text(&out).contains("checksum"), "{}", text(&out));
}

#[test]
fn killed_between_the_final_test_line_and_run_json_resume_records_the_test_once() {
    let p = tempfile::tempdir().unwrap();
    let dir = run_tiny(p.path(), 20);
    let reference = outcome(&dir);
    assert_eq!(lines_of(&dir, "eval", Some("test")), 1);
    as_killed_before_finishing(&dir);
    assert_exit(&metalab(p.path(), &["resume", &id(&dir)]), 0, "resume");
    assert_eq!(lines_of(&dir, "eval", Some("test")), 1, "test line twice");
    assert_eq!(outcome(&dir), reference);
    let out = metalab(
        p.path(),
        &["export", &id(&dir), "--out", "ex", "--name", "x"],
    );
    assert_exit(&out, 0, "export");
    let csv = std::fs::read_to_string(p.path().join("ex/x.csv")).unwrap();
    let finals = csv
        .lines()
        .filter(|l| l.contains(",eval_loss,test,"))
        .count();
    assert_eq!(finals, 1, "{csv}");
}

#[test]
fn damaged_metrics_are_reported_never_silently_dropped() {
    let p = tempfile::tempdir().unwrap();
    // A garbled evaluation line: resume refuses and leaves the file as it was.
    let dir = stopped_run(p.path(), 40);
    let path = dir.join("metrics.jsonl");
    let text0 = std::fs::read_to_string(&path).unwrap();
    let garbled: Vec<String> = text0
        .lines()
        .map(|l| {
            if l.contains("\"kind\":\"eval\"") {
                l.replacen('{', "{{", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    let garbled = garbled.join("\n") + "\n";
    std::fs::write(&path, &garbled).unwrap();
    let out = metalab(p.path(), &["resume", &id(&dir)]);
    assert_exit(&out, 1, "resume with a garbled line");
    assert!(text(&out).contains("damaged line"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), garbled);
    // Export names it (and says so in its status) instead of omitting it silently.
    let out = metalab(p.path(), &["export", &id(&dir), "--out", "ex"]);
    assert_exit(&out, 1, "export with a garbled line");
    let t = text(&out);
    assert!(t.contains("line 3") && t.contains("left out"), "{t}");

    // A deleted evaluation: the history no longer matches the checkpoint.
    let dir = stopped_run(p.path(), 40);
    let path = dir.join("metrics.jsonl");
    let all = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = all
        .lines()
        .filter(|l| !l.contains("\"kind\":\"eval\""))
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let out = metalab(p.path(), &["resume", &id(&dir)]);
    assert_exit(&out, 1, "resume without its evaluation");
    assert!(text(&out).contains("evaluations"), "{}", text(&out));

    // A half last line of a finished run: its test rows still reach the CSV, from run.json.
    let dir = run_tiny(p.path(), 20);
    let path = dir.join("metrics.jsonl");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
    let out = metalab(
        p.path(),
        &["export", &id(&dir), "--out", "ex", "--name", "half"],
    );
    assert_exit(&out, 1, "export of a cut finished run");
    assert!(text(&out).contains("cut short"), "{}", text(&out));
    let csv = std::fs::read_to_string(p.path().join("ex/half.csv")).unwrap();
    assert!(csv.contains(",test,"), "{csv}");

    // No metrics.jsonl at all: an error, not a header-only CSV.
    std::fs::remove_file(&path).unwrap();
    let out = metalab(
        p.path(),
        &["export", &id(&dir), "--out", "ex", "--name", "none"],
    );
    assert_exit(&out, 2, "export without metrics.jsonl");
    assert!(text(&out).contains("metrics.jsonl"), "{}", text(&out));
    assert!(!p.path().join("ex/none.csv").exists());
}

#[test]
fn an_interrupted_run_without_a_checkpoint_says_rerun() {
    let p = tempfile::tempdir().unwrap();
    let dir = run_tiny(p.path(), 20);
    std::fs::remove_file(dir.join("checkpoint.safetensors")).unwrap();
    as_killed_before_finishing(&dir);
    let listed = text(&metalab(p.path(), &["runs"]));
    assert!(
        listed.contains("interrupted before its first checkpoint")
            && listed.contains(&format!("metalab rerun {}", id(&dir))),
        "{listed}"
    );
    let out = metalab(p.path(), &["resume", &id(&dir)]);
    assert_exit(&out, 2, "resume without a checkpoint");
    let t = text(&out);
    assert!(
        t.contains("interrupted before its first checkpoint")
            && t.contains(&format!("metalab rerun {}", id(&dir))),
        "{t}"
    );
    assert!(!t.contains("No such file"), "{t}");
}

#[test]
fn the_lock_not_the_recorded_pid_says_who_is_running() {
    let p = tempfile::tempdir().unwrap();
    // The recorded pid now belongs to another `metalab` (a pid reused): the run's lock is
    // free, so it is interrupted and resumes.
    let dir = run_tiny(p.path(), 20);
    let fake = p.path().join("metalab");
    symlink(Path::new("/bin/sleep"), &fake);
    let mut other = std::process::Command::new(&fake).arg("60").spawn().unwrap();
    as_killed_before_finishing(&dir);
    edit_meta(&dir, |m| m["pid"] = other.id().into());
    let listed = runs::list_runs(&p.path().join("runs"));
    assert_eq!(listed[0].status, runs::RunStatus::Interrupted);
    let out = metalab(p.path(), &["resume", &id(&dir)]);
    let _ = other.kill();
    let _ = other.wait();
    assert_exit(&out, 0, "resume of a run whose pid was reused");

    // A process holding the lock is named, not the long-dead pid run.json recorded.
    let dir = stopped_run(p.path(), 40);
    let dead = dead_pid();
    edit_meta(&dir, |m| m["pid"] = dead.into());
    let held = runs::try_claim(&dir.join(".lock")).unwrap().expect("free");
    let out = metalab(p.path(), &["resume", &id(&dir)]);
    assert_exit(&out, 2, "resume of a held run");
    let t = text(&out);
    assert!(
        t.contains(&format!("process {}", std::process::id())),
        "{t}"
    );
    assert!(!t.contains(&dead.to_string()), "{t}");
    drop(held);
}

#[test]
fn a_run_folder_named_with_a_newline_forges_no_rows() {
    let p = tempfile::tempdir().unwrap();
    let dir = run_tiny(p.path(), 20);
    let forged = p
        .path()
        .join("runs")
        .join("x\nforged-run                                finished       20 of 20");
    std::fs::create_dir(&forged).unwrap();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), forged.join(e.file_name())).unwrap();
        }
    }
    let out = metalab(p.path(), &["runs"]);
    assert_exit(&out, 0, "runs");
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(t.lines().count(), 3, "header and two rows:\n{t}");
    assert!(!t.lines().any(|l| l.starts_with("forged-run")), "{t}");
}

/// A tmpfs of a given size at a mount point, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, kib: usize) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_loses_no_iterations_and_hints_only_what_works() {
    let p = tempfile::tempdir().unwrap();
    // Many evaluations with regression fits (fits.json is rewritten at each): a small disk
    // fills up part-way, each size at another write.
    let exp = tiny(200).replace("tracked_tasks: 2", "tracked_tasks: 4");
    std::fs::write(p.path().join("t.ron"), &exp).unwrap();
    let reference = {
        let out = metalab(p.path(), &["run", "t.ron", "-q", "--runs", "ref"]);
        assert_exit(&out, 0, "reference run");
        outcome(&run_dirs(&p.path().join("ref"))[0])
    };
    let (mut failures, mut resumed) = (0, 0);
    for kib in [8, 12, 16, 20, 24, 32, 40, 48, 64, 96] {
        let at = p.path().join(format!("disk{kib}"));
        let Some(_disk) = Tmpfs::mount(&at, kib) else {
            eprintln!("skipped: cannot mount a tmpfs here (it needs root or CAP_SYS_ADMIN)");
            return;
        };
        let runs_dir = at.join("runs");
        let out = bin()
            .args(["run", "t.ron", "-q", "--runs"])
            .arg(&runs_dir)
            .current_dir(p.path())
            .output()
            .unwrap();
        assert_no_panic(&out, &format!("{kib} KiB"));
        if out.status.code() == Some(0) {
            continue;
        }
        failures += 1;
        let t = text(&out);
        let dirs = run_dirs(&runs_dir);
        let dir = match dirs.as_slice() {
            [] => {
                assert!(!t.contains("metalab resume"), "{kib} KiB, no folder: {t}");
                continue;
            }
            [d] => d.clone(),
            more => panic!("{kib} KiB: {more:?}"),
        };
        let has_ck = dir.join("checkpoint.safetensors").exists();
        let status = runs::load_meta(&dir).map(|m| runs::status_at(&dir, &m));
        // No folder is left marked running (or, its process gone, interrupted) with nothing
        // to resume: it failed, and says so, or it has a checkpoint.
        assert!(
            has_ck
                || !matches!(
                    status,
                    Ok(runs::RunStatus::Running | runs::RunStatus::Interrupted)
                ),
            "{kib} KiB: {status:?} without a checkpoint\n{t}"
        );
        if t.contains("metalab resume") {
            assert!(has_ck, "{kib} KiB: hints resume without a checkpoint\n{t}");
            // The hint works once there is space: resume a copy on the big disk, to the
            // uninterrupted run's numbers.
            let copy = p.path().join(format!("big{kib}")).join(id(&dir));
            std::fs::create_dir_all(&copy).unwrap();
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                if e.file_name() != ".lock" {
                    std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
                }
            }
            // It failed, so it is resumed as a stopped run would be.
            edit_meta(&copy, |m| m["status"] = "Stopped".into());
            let runs_arg = format!("big{kib}");
            let out = metalab(p.path(), &["resume", &id(&copy), "--runs", &runs_arg, "-q"]);
            assert_exit(&out, 0, &format!("{kib} KiB: resume after freeing space"));
            assert_eq!(outcome(&copy), reference, "{kib} KiB");
            resumed += 1;
        }
    }
    assert!(
        failures > 0,
        "no size filled the disk: the test tests nothing"
    );
    eprintln!("{failures} sizes failed part-way; {resumed} resumed as their hint said");
}
