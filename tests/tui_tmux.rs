//! End to end: the real binary in tmux, in a temporary project with a tiny sinusoid experiment.
//! Launches it, watches the panels update, pauses, stops, browses runs and quits.
//! Skipped (with a message) when tmux is not installed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TINY: &str = r#"Experiment(
    name: "tiny-e2e",
    seed: 5,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [
        Arm(name: "fomaml", algorithm: Fomaml),
        Arm(name: "reptile", algorithm: Reptile(epsilon: 0.5), inner_steps: 2),
    ],
    train: Train(iterations: 400000, meta_batch: 2, log_every: 50),
    eval: Eval(every: 2000, tasks: 4, periodic_tasks: 4, inner_steps: 2, tracked_tasks: 2),
)
"#;

/// A private tmux server (its own socket), killed on drop even if the test fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "e2e", k]);
            // Separate keys so Esc followed by a letter is not read as Alt+letter.
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }
    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "e2e"]).status.success()
    }
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The fomaml arm's iteration count from the arms table ("  1234/400000").
fn iteration(screen: &str) -> Option<usize> {
    let line = screen.lines().find(|l| l.contains("● fomaml"))?;
    let at = line.find("/400000")?;
    line[..at].split_whitespace().last()?.parse().ok()
}

/// The first "done/400000" count on screen (arms table or runs table).
fn first_count(screen: &str) -> Option<usize> {
    screen.lines().find_map(|l| {
        let at = l.find("/400000").or_else(|| l.find("/40000"))?;
        l[..at].split_whitespace().last()?.parse().ok()
    })
}

fn save(name: &str, text: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tmux-screens");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn launch_watch_pause_stop_browse_quit() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipping tui_tmux: tmux is not installed");
        return;
    }
    // The folder lives as long as the test (a TempDir deletes it on drop).
    let (_project, t) = open_tiny("metalab-e2e", |bin, p| {
        format!("{bin} --project {}", p.display())
    });
    let s = t.wait_for("the experiments list", |s| s.contains("experiments/ (1)"));
    save("1-experiments.txt", &s);
    assert!(s.contains("tiny-e2e") && s.contains("2 arms"), "{s}");

    t.keys(&["r"]);
    let first = t.wait_for("training progress", |s| {
        s.contains("tiny-e2e — live") && iteration(s).is_some_and(|i| i > 0)
    });
    let later = t.wait_for("the panels to update", |s| {
        iteration(s) > iteration(&first) && s.contains("val MSE")
    });
    save("2-monitor.txt", &later);
    assert!(
        later.contains("meta-train MSE") && later.contains("it/s") && later.contains("ETA"),
        "{later}"
    );
    assert!(
        later
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "no braille curves:\n{later}"
    );

    // Pause the selected arm: its count stops moving while the other keeps going.
    t.keys(&["p"]);
    let paused = t.wait_for("pause", |s| {
        s.lines()
            .any(|l| l.contains("● fomaml") && l.contains("paused"))
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(iteration(&t.screen()), iteration(&paused));
    t.keys(&["p"]);
    t.wait_for("resume", |s| {
        s.lines()
            .any(|l| l.contains("● fomaml") && l.contains("running"))
    });

    // Compare view, then stop everything (with confirmation).
    t.keys(&["c"]);
    let cmp = t.wait_for("compare", |s| s.contains("(training)"));
    save("3-compare.txt", &cmp);
    t.keys(&["m", "S"]);
    t.wait_for("the stop question", |s| s.contains("Stop all arms?"));
    t.keys(&["y"]);
    let stopped = t.wait_for("both arms stopped", |s| s.matches("stopped").count() >= 2);
    save("4-stopped.txt", &stopped);

    // Runs browser lists both runs as stopped.
    t.keys(&["2"]);
    let runs = t.wait_for("runs listed", |s| {
        s.contains("runs/ · 2 runs") && s.matches("stopped").count() >= 2
    });
    save("5-runs.txt", &runs);
    assert!(runs.contains("tiny-e2e"), "{runs}");

    // Resume the newest run from its checkpoint: the count continues past where it stopped.
    let before = first_count(&runs).expect("a run's progress");
    t.keys(&["R"]);
    let resumed = t.wait_for("the resumed run to move", |s| {
        s.contains("(resumed)") && first_count(s).is_some_and(|i| i > before)
    });
    save("6-resumed.txt", &resumed);

    // Quitting while training asks, then stops the arm cleanly.
    t.keys(&["q", "q"]);
    t.wait_for("the quit question", |s| {
        s.contains("Stop all arms and quit?")
    });
    t.keys(&["y"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!t.alive(), "the workbench did not quit:\n{}", t.screen());
}

/// A project with the tiny experiment, and the workbench opened on it in a private tmux
/// server at 120×40 by `command(binary, project)`; returns once the list shows.
fn open_tiny(socket: &str, command: impl Fn(&str, &Path) -> String) -> (tempfile::TempDir, Tmux) {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("experiments")).unwrap();
    std::fs::write(project.path().join("experiments/tiny.ron"), TINY).unwrap();
    let t = Tmux {
        socket: format!("{socket}-{}", std::process::id()),
    };
    let launch = command(env!("CARGO_BIN_EXE_metalab"), project.path());
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "120",
        "-y",
        "40",
        &launch,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.wait_for("the experiments list", |s| s.contains("experiments/ (1)"));
    (project, t)
}

/// The pid of the process whose command line holds `needle` (the workbench, by its project
/// folder), wherever tmux's shell put it.
fn pid_with(needle: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        (cmd.starts_with(env!("CARGO_BIN_EXE_metalab")) && cmd.contains(needle)).then_some(pid)
    })
}

/// Gone, or a zombie waiting to be reaped.
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Killing the tmux session that holds the workbench (its terminal goes away) ends it within a
/// second, after the same stop as SIGTERM: every arm checkpointed and recorded as stopped. On
/// 771b3c7 it kept training, spinning at 100% of a core, 43 minutes later.
#[test]
fn killing_its_terminal_ends_the_workbench_with_a_checkpoint() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipping tui_tmux: tmux is not installed");
        return;
    }
    let (project, t) = open_tiny("metalab-hup", |bin, p| {
        format!("{bin} --project {}", p.display())
    });
    t.keys(&["r"]);
    let s = t.wait_for("training progress", |s| iteration(s).is_some_and(|i| i > 0));
    save("hup-before.txt", &s);
    let pid = pid_with(&project.path().display().to_string()).expect("the workbench's pid");

    let killed = Instant::now();
    t.cmd(&["kill-session", "-t", "e2e"]);
    while !exited(pid) && killed.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = killed.elapsed();
    assert!(exited(pid), "the workbench outlived its terminal by 10 s");
    println!("the workbench ended {took:?} after its tmux session was killed");
    assert!(took <= Duration::from_secs(1), "it took {took:?}");

    // Both arms stopped as on SIGTERM: checkpointed, recorded as stopped, resumable.
    let runs: Vec<_> = std::fs::read_dir(project.path().join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for dir in runs {
        let meta = metalab::runs::load_meta(&dir).unwrap();
        assert_eq!(
            meta.status,
            metalab::runs::RunStatus::Stopped,
            "{}",
            dir.display()
        );
        assert!(
            dir.join("checkpoint.safetensors").exists(),
            "{}",
            dir.display()
        );
    }
}

/// SIGTERM to the workbench stops its arms with a checkpoint and exits 130, as `metalab run`
/// does when stopped (on 771b3c7 the workbench exited 0).
#[test]
fn sigterm_stops_the_arms_and_exits_as_run_does() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipping tui_tmux: tmux is not installed");
        return;
    }
    let (project, t) = open_tiny("metalab-term", |bin, p| {
        let p = p.display();
        format!("{bin} --project {p}; echo $? > {p}/rc; sleep 30")
    });
    let rc = project.path().join("rc");
    t.keys(&["r"]);
    t.wait_for("training progress", |s| iteration(s).is_some_and(|i| i > 0));
    let pid = pid_with(&project.path().display().to_string()).expect("the workbench's pid");
    // SAFETY: kill(2) on a pid we just found.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rc.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let code = std::fs::read_to_string(&rc).expect("the workbench did not exit on SIGTERM");
    assert_eq!(code.trim(), "130");
    for e in std::fs::read_dir(project.path().join("runs"))
        .unwrap()
        .flatten()
    {
        let meta = metalab::runs::load_meta(&e.path()).unwrap();
        assert_eq!(meta.status, metalab::runs::RunStatus::Stopped);
    }
    // The terminal was given back: the shell's prompt line is not in the alternate screen.
    assert!(!t.screen().contains("experiments/ (1)"), "{}", t.screen());
}
