//! Reliability, round two (issue 22): what the commands read and print. FIFOs, devices and
//! huge files given as experiments, closed pipes under every command (sweeps included),
//! messages printed twice or echoing half a megabyte, two sweeps started together, and a
//! sweep told to stop twice.

#[path = "cli_common/mod.rs"]
mod cli_common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use cli_common::*;
use metalab::runs;

/// A guard against a hang, far above what any of these commands needs.
const HANG: Duration = Duration::from_secs(60);

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
}

/// Run `metalab args` in `dir`; its output and its peak memory (KiB), from the kernel's
/// accounting of that one child.
fn with_peak_memory(dir: &Path, args: &[&str]) -> (Output, i64) {
    let child = bin()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    wait_or_kill_keep_usage(child, pid)
}

fn wait_or_kill_keep_usage(mut child: std::process::Child, pid: i32) -> (Output, i64) {
    use std::io::Read;
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut e = vec![];
        let _ = se.read_to_end(&mut e);
        e
    });
    let mut o = vec![];
    let _ = so.read_to_end(&mut o);
    let e = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: wait4 on our own child, with valid out-pointers; std's Child is not waited on
    // afterwards.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    std::mem::forget(child);
    (
        Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout: o,
            stderr: e,
        },
        usage.ru_maxrss,
    )
}

#[test]
fn fifos_devices_and_huge_files_are_refused_without_reading_them() {
    let p = tempfile::tempdir().unwrap();
    mkfifo(&p.path().join("fifo.ron"));
    for args in [
        vec!["check", "fifo.ron"],
        vec!["run", "fifo.ron"],
        vec!["check", "/dev/zero"],
        vec!["run", "/dev/zero"],
        vec!["sweep", "fifo.ron"],
        vec!["sweep", "/dev/zero", "--status"],
    ] {
        let child = bin()
            .args(&args)
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_or_kill(child, HANG, &format!("{args:?}"));
        assert_no_panic(&out, &format!("{args:?}"));
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let t = text(&out);
        assert!(t.contains("not a regular file"), "{args:?}: {t}");
    }
    // A gigabyte (sparse: no disk) is refused by its size, before any of it is read.
    let big = std::fs::File::create(p.path().join("big.ron")).unwrap();
    big.set_len(1 << 30).unwrap();
    for cmd in ["check", "run"] {
        let (out, peak_kib) = with_peak_memory(p.path(), &[cmd, "big.ron"]);
        assert_no_panic(&out, cmd);
        assert!(
            text(&out).contains("1073741824 bytes"),
            "{cmd}: {}",
            text(&out)
        );
        assert!(
            peak_kib < 256 * 1024,
            "{cmd}: {peak_kib} KiB at its peak: it read the file"
        );
    }
}

#[test]
fn errors_say_each_thing_once_and_quote_little_of_the_input() {
    let p = tempfile::tempdir().unwrap();
    let out = metalab(p.path(), &["check", "nope.ron"]);
    assert_exit(&out, 1, "check of a missing file");
    let t = text(&out);
    assert_eq!(t.matches("os error 2").count(), 1, "{t}");
    let out = metalab(p.path(), &["resume", "nope"]);
    assert_exit(&out, 2, "resume of a missing run");
    // A deeply nested value where a name goes: the message quotes the start of it.
    let deep = format!(
        "Experiment(name: {}{})",
        "[".repeat(250_000),
        "]".repeat(250_000)
    );
    std::fs::write(p.path().join("deep.ron"), deep).unwrap();
    for args in [["check", "deep.ron"], ["run", "deep.ron"]] {
        let out = metalab(p.path(), &args);
        assert_no_panic(&out, "deep");
        let t = text(&out);
        assert!(t.len() < 4000, "{args:?}: {} bytes of error", t.len());
        assert!(t.contains("deep.ron:1:"), "{t}");
    }
}

/// A sweep of `n` seeds of `tiny(iterations)`.
fn sweep_file(project: &Path, iterations: usize, n: usize) {
    std::fs::write(project.join("tiny.ron"), tiny(iterations)).unwrap();
    let seeds: Vec<String> = (1..=n).map(|s| s.to_string()).collect();
    std::fs::write(
        project.join("s.sweep.ron"),
        format!(
            "Sweep(name: \"s\", experiment: \"tiny.ron\", axes: [Axis(path: \"seed\", values: [{}])])",
            seeds.join(", ")
        ),
    )
    .unwrap();
}

/// Spawn `metalab args` with its stdout a pipe already closed: its first write meets EPIPE.
fn closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let mut child = bin()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    wait_or_kill(child, HANG, &format!("{args:?}"))
}

#[test]
fn sweeps_never_panic_on_a_closed_pipe() {
    let p = tempfile::tempdir().unwrap();
    sweep_file(p.path(), 20, 2);
    // What only prints ends quietly, like `ls | head`.
    for args in [
        vec!["sweep", "s.sweep.ron", "--status"],
        vec!["sweep", "s.sweep.ron", "--slurm", "--dry-run"],
    ] {
        let out = closed_stdout(p.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert!(
            out.status.signal() == Some(libc::SIGPIPE) || out.status.code() == Some(0),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
    // A variant whose parent queue is gone (its progress pipe closed) trains to the end.
    let out = closed_stdout(
        p.path(),
        &["sweep", "s.sweep.ron", "--task", "0", "--progress-lines"],
    );
    assert_exit(&out, 0, "sweep child with its parent gone");
    let dirs = run_dirs(&p.path().join("runs"));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(
        runs::load_meta(&dirs[0]).unwrap().status,
        runs::RunStatus::Finished
    );
    // The queue itself, its summary going nowhere.
    let out = closed_stdout(p.path(), &["sweep", "s.sweep.ron"]);
    assert_exit(&out, 0, "sweep with stdout closed");
}

#[test]
fn two_sweeps_started_together_cooperate() {
    let p = tempfile::tempdir().unwrap();
    sweep_file(p.path(), 20, 4);
    for round in 0..3 {
        let _ = std::fs::remove_dir_all(p.path().join("runs"));
        let spawn = || {
            bin()
                .args(["sweep", "s.sweep.ron", "--jobs", "2"])
                .current_dir(p.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for (i, c) in [a, b].into_iter().enumerate() {
            let out = wait_or_kill(c, HANG, "sweep");
            assert_exit(&out, 0, &format!("round {round}, sweep {i}"));
        }
        // Every variant trained exactly once between them.
        let mut variants: Vec<String> = run_dirs(&p.path().join("runs"))
            .iter()
            .map(|d| runs::load_meta(d).unwrap())
            .inspect(|m| assert_eq!(m.status, runs::RunStatus::Finished))
            .map(|m| m.variant.unwrap())
            .collect();
        variants.sort();
        let n = variants.len();
        variants.dedup();
        assert_eq!((n, variants.len()), (4, 4), "round {round}: {variants:?}");
    }
}

/// The first child process of `pid`'s main thread (the sweep queue's variant).
fn child_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Start `metalab sweep` and wait until its variant has trained past iteration `past` and
/// checkpointed; the sweep and its variant's pid. (The caller waits for the sweep.)
#[allow(clippy::zombie_processes)]
fn sweep_past(project: &Path, past: usize) -> (std::process::Child, i32) {
    let mut child = bin()
        .args(["sweep", "s.sweep.ron"])
        .current_dir(project)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + HANG;
    loop {
        let checkpointed = run_dirs(&project.join("runs"))
            .iter()
            .any(|d| runs::load_meta(d).is_ok_and(|m| m.iteration > past));
        if let (true, Some(variant)) = (checkpointed, child_of(child.id() as i32)) {
            return (child, variant);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the variant never checkpointed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_resumable(project: &Path, out: &Output, what: &str) {
    assert_exit(out, 130, what);
    let t = text(out);
    assert!(!t.contains("FAILED"), "{what}: {t}");
    let status = text(&metalab(project, &["sweep", "s.sweep.ron", "--status"]));
    assert!(status.contains("resumable"), "{what}: {status}");
    assert!(!status.contains("failed"), "{what}: {status}");
}

#[test]
fn a_sweep_told_to_stop_twice_reports_its_variants_resumable_not_failed() {
    let p = tempfile::tempdir().unwrap();
    sweep_file(p.path(), 50_000_000, 1);
    let (child, _) = sweep_past(p.path(), 0);
    // SAFETY: signalling our own child. A scheduler's notice to the sweep and its group, and
    // the user's Ctrl-C on top: two signals at once, one notice.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = wait_or_kill(child, HANG, "sweep after two signals");
    assert_resumable(p.path(), &out, "two signals at once");

    // Stopped, then its variant killed before its checkpoint (what a second interrupt, or the
    // OOM killer, does): the run it leaves resumes from its last checkpoint.
    let before = run_dirs(&p.path().join("runs"));
    let at = runs::load_meta(&before[0]).unwrap().iteration;
    let (child, variant) = sweep_past(p.path(), at);
    // SAFETY: signalling our own child and grandchild.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
        libc::kill(variant, libc::SIGKILL);
    }
    let out = wait_or_kill(child, HANG, "sweep with its variant killed");
    assert_resumable(p.path(), &out, "variant killed");
    assert_eq!(run_dirs(&p.path().join("runs")), before, "one run, resumed");
}
