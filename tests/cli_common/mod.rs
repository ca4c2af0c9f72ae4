// Shared by the tests that drive the real binary on crafted run folders and files (a folder
// module, so it is not a test target of its own).
#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_metalab"));
    c.env_remove("METALAB_OMNIGLOT")
        .env_remove("METALAB_MEMORY_BYTES")
        .stdin(Stdio::null());
    c
}

pub fn metalab(dir: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run metalab")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Exited by itself (no abort, no panic, no signal) with `code`.
pub fn assert_exit(o: &Output, code: i32, what: &str) {
    let t = text(o);
    assert!(
        o.status.signal().is_none(),
        "{what}: killed by signal {:?}\n{t}",
        o.status.signal()
    );
    assert!(!t.contains("panicked"), "{what}: panicked\n{t}");
    assert_eq!(o.status.code(), Some(code), "{what}\n{t}");
}

/// Exited by itself, with any status but a panic's.
pub fn assert_no_panic(o: &Output, what: &str) {
    let t = text(o);
    assert!(o.status.signal().is_none(), "{what}: {:?}\n{t}", o.status);
    assert!(!t.contains("panicked"), "{what}: panicked\n{t}");
    assert_ne!(o.status.code(), Some(101), "{what}\n{t}");
}

const TINY: &str = r#"Experiment(
    name: "tiny",
    seed: 3,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [Arm(name: "fomaml", algorithm: Fomaml)],
    train: Train(iterations: ITER, meta_batch: 2, log_every: 5),
    eval: Eval(every: 10, tasks: 4, periodic_tasks: 4, inner_steps: 2, tracked_tasks: 2),
)
"#;

/// A one-arm sinusoid experiment that trains in milliseconds: a train line every 5
/// iterations, an evaluation (and checkpoint) every 10.
pub fn tiny(iterations: usize) -> String {
    TINY.replace("ITER", &iterations.to_string())
}

/// The run folders under `root`, by name.
pub fn run_dirs(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.join("run.json").exists() || p.join("config.ron").exists());
    v.sort();
    v
}

/// `metalab run` of `tiny(iterations)` in `project`; the new run's folder.
pub fn run_tiny(project: &Path, iterations: usize) -> PathBuf {
    std::fs::write(project.join("tiny.ron"), tiny(iterations)).unwrap();
    let before = run_dirs(&project.join("runs"));
    assert_exit(&metalab(project, &["run", "tiny.ron", "-q"]), 0, "run tiny");
    run_dirs(&project.join("runs"))
        .into_iter()
        .find(|d| !before.contains(d))
        .expect("a new run folder")
}

pub fn id(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// Edit `run.json` as JSON.
pub fn edit_meta(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("run.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// A pid no process has: one of a child that has exited and been reaped.
pub fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Make a finished run look as if its process was killed just before it wrote its final
/// `run.json` (a checkpoint at the last iteration, the test line written, run.json still
/// "Running" with a dead pid).
pub fn as_killed_before_finishing(dir: &Path) {
    let pid = dead_pid();
    edit_meta(dir, |m| {
        m["status"] = "Running".into();
        m["final_eval"] = serde_json::Value::Null;
        m["headline"] = serde_json::Value::Null;
        m["pid"] = pid.into();
    });
}

/// Lines of `metrics.jsonl` of one kind (and split, for evaluations).
pub fn lines_of(dir: &Path, kind: &str, split: Option<&str>) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == kind && split.is_none_or(|s| v["split"] == s))
        .count()
}

/// Wait for a child, killing it (and failing) if it outlives `limit`: a guard against a hang,
/// far above what the command needs, never a measure of speed.
pub fn wait_or_kill(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {limit:?} (hung)\n{}",
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until nobody holds `dir`'s run lock. A run trained in this test process releases it
/// when its arm ends, but a child that another test thread forked meanwhile holds a copy of the
/// lock's descriptor until it execs (flock locks belong to the open file, which fork shares):
/// on a loaded machine that can outlast the run, and a `metalab resume` spawned at once would
/// rightly be refused.
pub fn wait_lock_free(dir: &Path) {
    let lock = dir.join(metalab::runs::LOCK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match metalab::runs::try_claim(&lock) {
            Ok(Some(_held)) => return,
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => panic!("{}: the run's lock stayed held: {other:?}", dir.display()),
        }
    }
}

/// Train `tiny(iterations)` in this process into `runs_root`, through the engine as the
/// workbench does; with `stop_at_first_checkpoint`, stopped just after it (iteration 10 or a
/// little later: resumable). Returns the run folder once its lock is free.
pub fn train_in_process(
    runs_root: &Path,
    iterations: usize,
    stop_at_first_checkpoint: bool,
) -> PathBuf {
    use metalab::engine::{Command as EngineCommand, EngineEvent, LaunchOptions, Prepared};
    let exp = metalab::experiment::parse_str(&tiny(iterations), Path::new("tiny.ron")).unwrap();
    let h = Prepared::new(
        exp,
        LaunchOptions {
            runs_root: runs_root.to_path_buf(),
            threads: Some(1),
            ..LaunchOptions::default()
        },
    )
    .unwrap()
    .launch();
    let mut dir = None;
    for ev in h.events.iter() {
        match ev {
            EngineEvent::Started { run_dir, .. } => dir = Some(run_dir),
            EngineEvent::Checkpoint { .. } if stop_at_first_checkpoint => {
                h.send(None, EngineCommand::Stop)
            }
            EngineEvent::Failed { reason, .. } => panic!("{reason}"),
            _ => {}
        }
    }
    h.join();
    let dir = dir.expect("started");
    wait_lock_free(&dir);
    dir
}
