//! Reliability (issue 11): nothing a user types or a crash leaves behind may abort, hang,
//! mislead or delete the wrong thing. The real binary against malformed experiment files, bad
//! images, copied and running run folders, signals and closed pipes. Every bad image is made
//! here; nothing depends on ../shared.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use metalab::runs::{self, RunError, RunStatus};
use metalab::tui::dispatch as update;
use metalab::tui::{App, Msg};

mod cli_common;

// The binary, its output and the tiny experiment: the same helpers as the other CLI tests.
use cli_common::{assert_exit, bin, metalab, text, tiny};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn k(c: char) -> Msg {
    Msg::Key(KeyEvent::from(KeyCode::Char(c)))
}

/// The workbench's `d`, `y` on the run whose folder is `name`; returns the status line.
fn tui_delete(project: &Path, name: &str) -> String {
    let mut app = App::new(project);
    update(&mut app, k('2'));
    app.run_sel = app
        .runs
        .iter()
        .position(|r| r.dir.file_name().unwrap() == name)
        .unwrap_or_else(|| panic!("{name} not listed"));
    update(&mut app, k('d'));
    update(&mut app, k('y'));
    app.status.map(|(s, _)| s).unwrap_or_default()
}

#[test]
fn a_copied_run_folder_is_its_own_run() {
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("tiny.ron"), tiny(10)).unwrap();
    let out = metalab(p.path(), &["run", "tiny.ron"]);
    assert_exit(&out, 0, "run");
    let root = p.path().join("runs");
    let victim = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let id = victim.file_name().unwrap().to_string_lossy().into_owned();
    let copy = root.join(format!("{id}-backup-copy"));
    copy_dir(&victim, &copy);

    // Listed by folder: the copy under its own name, not the id inside its run.json.
    let list = metalab(p.path(), &["runs"]);
    assert_exit(&list, 0, "runs");
    assert!(
        text(&list).contains(&format!("{id}-backup-copy")),
        "{}",
        text(&list)
    );
    assert_eq!(
        runs::load_meta(&copy).unwrap().id,
        format!("{id}-backup-copy")
    );

    // Deleting the copy in the workbench deletes the copy, and only it.
    let status = tui_delete(p.path(), &format!("{id}-backup-copy"));
    assert!(status.contains("deleted"), "{status}");
    assert!(!copy.exists(), "the copy is still there");
    assert!(
        victim.join("run.json").is_file(),
        "the original was deleted"
    );

    // A copy reruns and exports under its own name too.
    copy_dir(&victim, &copy);
    let export = metalab(
        p.path(),
        &["export", &format!("{id}-backup-copy"), "--out", "x"],
    );
    assert_exit(&export, 0, "export");
    assert!(p.path().join(format!("x/{id}-backup-copy.csv")).is_file());
}

/// Start `metalab run` on a long experiment and wait until its run is training.
fn start_long_run(project: &Path) -> (Child, PathBuf) {
    std::fs::write(
        project.join("long.ron"),
        tiny(50_000_000).replace("every: 10", "every: 200"),
    )
    .unwrap();
    let mut cmd = bin();
    cmd.args(["run", "long.ron"])
        .current_dir(project)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A hang-up must stop this run even when the suite itself runs under nohup, whose ignored
    // SIGHUP the child would inherit (and keep ignoring, as `under_nohup_sighup_stays_ignored`
    // requires).
    // SAFETY: only async-signal-safe signal(2) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the run did not start");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.contains("started") {
                break;
            }
        }
    }
    let dir = std::fs::read_dir(project.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Wait for a periodic checkpoint, so a stop has something to continue from.
    while !dir.join("checkpoint.safetensors").is_file() {
        assert!(Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, dir)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("metalab did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_run_is_not_deleted_and_sigterm_or_sighup_checkpoint_it() {
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let p = tempfile::tempdir().unwrap();
        let (mut child, dir) = start_long_run(p.path());
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();

        let err = runs::delete_run(&p.path().join("runs"), &id).unwrap_err();
        assert!(matches!(err, RunError::StillRunning { .. }), "{err}");
        assert!(err.to_string().contains("fix:"), "{err}");
        let status = tui_delete(p.path(), &id);
        assert!(status.contains("still training"), "{status}");
        assert!(dir.join("run.json").is_file());
        // A second writer is locked out (two `resume`s at once), whatever run.json says.
        let second = runs::RunDir::reopen(&dir, 0)
            .err()
            .expect("reopened a run in use");
        assert!(matches!(second, RunError::StillRunning { .. }), "{second}");
        let resume = metalab(p.path(), &["resume", &id]);
        assert_exit(&resume, 2, "concurrent resume");
        assert!(text(&resume).contains("still running"), "{}", text(&resume));

        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let exit = wait_exit(&mut child);
        assert_eq!(exit.code(), Some(130), "signal {signal}: {exit:?}");
        let meta = runs::load_meta(&dir).unwrap();
        assert_eq!(meta.status, RunStatus::Stopped, "signal {signal}");
        assert!(dir.join("checkpoint.safetensors").is_file());
        // A truncated metrics file would leave a gap: resume refuses and says what to do.
        std::fs::write(dir.join("metrics.jsonl"), "").unwrap();
        let mut resume = bin()
            .args(["resume", &id])
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut resume);
        let out = resume.wait_with_output().unwrap();
        assert_eq!(status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("gap") && text(&out).contains(&format!("metalab rerun {id}")),
            "{}",
            text(&out)
        );
        // Stopped, it can be deleted.
        runs::delete_run(&p.path().join("runs"), &id).unwrap();
        assert!(!dir.exists());
    }
}

#[test]
fn commands_end_quietly_on_a_closed_pipe() {
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("tiny.ron"), tiny(10)).unwrap();
    assert_exit(&metalab(p.path(), &["run", "tiny.ron", "-q"]), 0, "run");
    let id = std::fs::read_dir(p.path().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    for args in [
        vec!["runs"],
        vec!["check", "tiny.ron"],
        vec!["export", &id],
        vec!["--help"],
        vec!["run", "tiny.ron"],
    ] {
        let mut child = bin()
            .args(&args)
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes: its first write meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        // Either the quiet death of `ls | head`, or a normal exit.
        assert!(
            out.status.signal() == Some(libc::SIGPIPE) || out.status.code() == Some(0),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}

/// A fake Omniglot tree: 3 alphabets × 2 characters × 2 drawings of 8×8, enough for 2-way
/// 1-shot 1-query tasks under a thirds alphabet split.
fn omniglot_tree(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for a in 0..3 {
        for c in 0..2 {
            let dir = root.join(format!("images_background/A{a}/c{c}"));
            std::fs::create_dir_all(&dir).unwrap();
            for d in 0..2 {
                let path = dir.join(format!("{d}.png"));
                let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
                let mut enc = png::Encoder::new(f, 8, 8);
                enc.set_color(png::ColorType::Grayscale);
                enc.set_depth(png::BitDepth::Eight);
                let mut w = enc.write_header().unwrap();
                w.write_image_data(&[255u8; 64]).unwrap();
                files.push(path);
            }
        }
    }
    files
}

const OMNIGLOT: &str = r#"Experiment(
    name: "omni",
    threads: 1,
    family: Omniglot(root: "data", ways: 2, shots: 1, queries: 1, image_size: 8,
                     protocol: AlphabetSplit(train: 0.34, validation: 0.33)),
    model: Mlp(hidden: [4]),
    arms: [Arm(name: "fomaml", algorithm: Fomaml)],
    train: Train(iterations: 2, meta_batch: 1),
    eval: Eval(every: 0, tasks: 2, periodic_tasks: 2, inner_steps: 1, tracked_tasks: 1),
)
"#;

/// A 60000×60000 header and nothing else: decoding it must not try to allocate 3.6 GB.
fn huge_header(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(f, 60_000, 60_000);
    enc.set_color(png::ColorType::Grayscale);
    // A header and one data chunk: enough for the decoder to get to the frame.
    let mut w = enc.write_header().unwrap();
    w.write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x03, 0x00])
        .unwrap();
}

#[test]
fn bad_images_are_caught_by_check_with_their_path_and_by_run_with_the_position() {
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("omni.ron"), OMNIGLOT).unwrap();
    let files = omniglot_tree(&p.path().join("data"));
    assert_exit(&metalab(p.path(), &["check", "omni.ron"]), 0, "good tree");
    let victim = &files[5];
    let original = std::fs::read(victim).unwrap();
    let truncated = original[..original.len() - 20].to_vec();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "zero bytes",
            Box::new(|f| std::fs::write(f, b"").unwrap()),
            "not a readable PNG",
        ),
        (
            "not a PNG",
            Box::new(|f| std::fs::write(f, b"GIF89a not a png at all").unwrap()),
            "not a readable PNG",
        ),
        (
            "truncated",
            Box::new(move |f| std::fs::write(f, &truncated).unwrap()),
            "not a readable PNG",
        ),
        (
            "60000x60000 header",
            Box::new(huge_header),
            "60000×60000 pixels",
        ),
    ];
    for (what, damage, words) in cases {
        damage(victim);
        let check = metalab(p.path(), &["check", "omni.ron"]);
        assert_exit(&check, 1, what);
        let msg = text(&check);
        let named = victim.strip_prefix(p.path()).unwrap().display().to_string();
        assert!(msg.contains(&named) && msg.contains(words), "{what}: {msg}");
        assert!(msg.starts_with("omni.ron:4:22: `family`:"), "{what}: {msg}");
        assert!(msg.contains("fix:"), "{what}: {msg}");
        let run = metalab(p.path(), &["run", "omni.ron"]);
        assert_exit(&run, 2, what);
        let first = msg.lines().next().unwrap();
        assert!(
            text(&run).contains(first),
            "{what}: run said\n{}\ncheck said\n{msg}",
            text(&run)
        );
        std::fs::write(victim, &original).unwrap();
    }
}

#[test]
fn the_workbench_does_not_mark_an_omniglot_experiment_without_data_valid() {
    let p = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(p.path().join("experiments")).unwrap();
    let nowhere = p.path().join("no-such-folder");
    let text = OMNIGLOT.replace("\"data\"", &format!("{:?}", nowhere.display().to_string()));
    std::fs::write(p.path().join("experiments/omni.ron"), &text).unwrap();
    let app = App::new(p.path());
    let e = &app.experiments[0];
    assert!(!e.is_valid(), "marked valid without its data");
    let err = e.error.clone().unwrap();
    assert!(
        err.contains("experiments/omni.ron:4:22:")
            && err.contains("no-such-folder")
            && err.contains("fix:"),
        "{err}"
    );
    // With the data in place it is valid.
    omniglot_tree(&nowhere);
    assert!(App::new(p.path()).experiments[0].is_valid());
}

/// (what, file text, the field's line:col, words the message must hold)
fn corpus() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let base = r#"Experiment(
    name: "c",
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [
        Arm(name: "a", algorithm: Maml()),
        Arm(name: "b", algorithm: Fomaml),
    ],
    train: Train(iterations: 10, meta_batch: 2, inner_steps: 1),
    eval: Eval(every: 5, tasks: 4, periodic_tasks: 4, inner_steps: 2, tracked_tasks: 2),
)
"#;
    let r = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replacen(from, to, 1)
    };
    let image = |fam: &str, model: &str| {
        r("Sinusoid(shots: 5, queries: 5)", fam).replace("Mlp(hidden: [8])", model)
    };
    vec![
        ("huge meta_batch", r("meta_batch: 2", "meta_batch: 1000000000000"), "10:34", "memory"),
        ("huge eval.inner_steps", r("inner_steps: 2", "inner_steps: 1000000000"), "11:55", "at most"),
        ("huge train.inner_steps", r("inner_steps: 1)", "inner_steps: 1000000)"), "10:49", "at most"),
        ("huge tracked_tasks", r("tracked_tasks: 2", "tracked_tasks: 100000"), "11:71", "panel"),
        ("huge eval.tasks", r("tasks: 4,", "tasks: 100000000000,"), "11:26", "memory"),
        ("huge hidden width", r("hidden: [8]", "hidden: [100000000, 100000000]"), "5:5", "memory"),
        ("huge queries", r("queries: 5", "queries: 100000000000"), "4:32", "memory"),
        ("huge multi-task tasks", r("Fomaml", "MultiTask(tasks: 1000000000000)"), "8:45", "memory"),
        ("huge iterations", r("iterations: 10", "iterations: 100000000000"), "10:18", "at most"),
        ("huge synthetic classes", image("Synthetic(ways: 5, classes: 1000000000000)", "Mlp(hidden: [8])"), "4:32", "memory"),
        ("6 conv blocks on 4x4", image("Synthetic(ways: 2, classes: 20, image_size: 4)", "Conv(blocks: 6, channels: 4)"), "5:17", "too many"),
        ("unknown field in Maml", r("Maml()", "Maml(order: 2)"), "7:40", "order"),
        ("unknown field in Reptile", r("Fomaml", "Reptile(epsilon: 0.5, foo: 1)"), "8:57", "foo"),
        ("unknown field in a protocol", image("Omniglot(root: \"x\", protocol: AlphabetSplit(train: 0.5, validation: 0.2, test: 0.3))", "Mlp(hidden: [8])"), "4:86", "test"),
        ("duplicate arm names", r("name: \"b\"", "name: \"a\""), "8:13", "used twice"),
        ("empty arm name", r("name: \"b\"", "name: \"\""), "8:13", "empty"),
        ("dot-dot arm name", r("name: \"b\"", "name: \"..\""), "8:13", "'.'"),
        ("slash in arm name", r("name: \"b\"", "name: \"a/b\""), "8:13", "'/'"),
        ("NUL in arm name", r("name: \"b\"", "name: \"a\\0b\""), "8:13", "'\\0'"),
        ("long arm name", r("name: \"b\"", &format!("name: \"{}\"", "x".repeat(100))), "8:13", "100 characters"),
        ("escape in experiment name", r("name: \"c\"", "name: \"c\\u{1b}[31m\""), "2:5", "control character"),
        ("type error", r("threads: 1", "threads: \"one\""), "3:14", "fix:"),
        ("unknown variant", r("Fomaml", "Fomamll"), "8:42", "variant"),
        ("unclosed bracket", base.replacen("],\n    train", "\n    train", 1), "10:10", "fix:"),
    ]
}

#[test]
fn check_refuses_first_what_run_refuses_with_the_same_message_and_position() {
    let p = tempfile::tempdir().unwrap();
    let mut failures = vec![];
    let cases = corpus();
    for (what, body, at, words) in &cases {
        let file = p.path().join("bad.ron");
        std::fs::write(&file, body).unwrap();
        let check = metalab(p.path(), &["check", "bad.ron"]);
        assert_exit(&check, 1, what);
        let msg = text(&check);
        let first = msg.lines().next().unwrap_or_default().to_string();
        let ok = first.starts_with(&format!("bad.ron:{at}:"))
            && msg.contains(words)
            && msg.contains("fix:");
        let run = metalab(p.path(), &["run", "bad.ron"]);
        assert_exit(&run, 2, what);
        if !ok || !text(&run).contains(&first) {
            failures.push(format!("{what}: check said\n{msg}run said\n{}", text(&run)));
        }
    }
    // The command line's override is bounded like the field it replaces.
    std::fs::write(p.path().join("ok.ron"), tiny(10)).unwrap();
    let run = metalab(
        p.path(),
        &["run", "ok.ron", "--iterations", "1000000000000"],
    );
    assert_exit(&run, 2, "--iterations 1e12");
    assert!(text(&run).contains("fix:"), "{}", text(&run));
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    println!(
        "{} malformed experiments: 0 panics, 0 aborts, 0 hangs, 0 misplaced",
        cases.len()
    );
}

#[test]
fn encodings_have_a_position_and_a_fix_and_a_bom_is_accepted() {
    let p = tempfile::tempdir().unwrap();
    let good = tiny(10);
    // A Latin-1 é (0xE9) right after `name: "tiny`.
    let mut latin1 = good.clone().into_bytes();
    latin1.insert(good.find("tiny\"").unwrap() + 4, 0xE9);
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("Latin-1 byte", latin1, "2:16", "UTF-8"),
        (
            "binary",
            b"Experiment(\n  name: \"x\0\0\0\x01\x02".to_vec(),
            "2:11",
            "binary",
        ),
        ("UTF-16", [0xFF, 0xFE, b'E', 0].to_vec(), "1:1", "UTF-16"),
    ];
    for (what, body, pos, words) in cases {
        std::fs::write(p.path().join("enc.ron"), &body).unwrap();
        let out = metalab(p.path(), &["check", "enc.ron"]);
        assert_exit(&out, 1, what);
        let msg = text(&out);
        assert!(msg.starts_with(&format!("enc.ron:{pos}:")), "{what}: {msg}");
        assert!(msg.contains(words) && msg.contains("fix:"), "{what}: {msg}");
    }
    for (what, name) in [("missing file", "nope.ron"), ("a folder", ".")] {
        let out = metalab(p.path(), &["check", name]);
        assert_exit(&out, 1, what);
        assert!(text(&out).contains("fix:"), "{what}: {}", text(&out));
    }
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(good.as_bytes());
    std::fs::write(p.path().join("bom.ron"), &bom).unwrap();
    assert_exit(&metalab(p.path(), &["check", "bom.ron"]), 0, "BOM");
}

/// Valid files mutated at random: whatever comes out, parsing never panics, a refusal always
/// has a position and a fix, and an accepted file's frozen config parses back to itself (what
/// a rerun reads).
#[test]
fn random_mutations_never_panic_and_always_point_somewhere() {
    use rand::{Rng, SeedableRng};
    let seeds: Vec<String> = [
        "sinusoid-compare.ron",
        "synthetic-demo.ron",
        "omniglot-5way-1shot.ron",
    ]
    .iter()
    .map(|f| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("experiments")
                .join(f),
        )
        .unwrap()
    })
    .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let pieces = [
        "1000000000000",
        "0",
        "-1",
        "\"",
        "(",
        ")",
        "[",
        "]",
        ",",
        ":",
        "x: 1",
        "1e308",
        "NaN",
        "\u{0}",
        "é",
        "\u{feff}",
        "Maml(order: 2)",
        "\n",
        "//",
    ];
    let (mut cases, mut accepted, mut refused, mut unplaced) = (0, 0, 0, vec![]);
    let mut through_binary = 0;
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..4000 {
        let mut t: Vec<char> = seeds[rng.gen_range(0..seeds.len())].chars().collect();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..t.len());
            match rng.gen_range(0..4) {
                0 => {
                    t.remove(at);
                }
                1 => {
                    let piece = pieces[rng.gen_range(0..pieces.len())];
                    t.splice(at..at, piece.chars());
                }
                2 if t[at].is_ascii_digit() => {
                    t.splice(at..at, "99999".chars());
                }
                _ => {
                    let end = (at + rng.gen_range(1..40)).min(t.len());
                    t.drain(at..end);
                }
            }
        }
        let text: String = t.into_iter().collect();
        cases += 1;
        // Every 20th goes through the real binary as well: an exit code, never a signal or panic.
        if cases % 20 == 0 {
            std::fs::write(dir.path().join("m.ron"), &text).unwrap();
            let out = metalab(dir.path(), &["check", "m.ron"]);
            let code = out.status.code();
            assert!(
                matches!(code, Some(0 | 1))
                    && !String::from_utf8_lossy(&out.stderr).contains("panicked"),
                "check {:?} on:\n{text}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            through_binary += 1;
        }
        let parsed =
            std::panic::catch_unwind(|| metalab::experiment::parse_str(&text, Path::new("m.ron")));
        let Ok(parsed) = parsed else {
            panic!("parse panicked on:\n{text}");
        };
        match parsed {
            Ok(exp) => {
                accepted += 1;
                let again = metalab::experiment::parse_str(&exp.to_ron(), Path::new("frozen.ron"))
                    .unwrap_or_else(|e| panic!("frozen config does not parse: {e}\n{text}"));
                assert_eq!(again, exp, "frozen config differs:\n{text}");
            }
            Err(e) => {
                refused += 1;
                let msg = e.to_string();
                if e.position().is_none() || !msg.starts_with("m.ron:") || !msg.contains("fix:") {
                    unplaced.push(msg);
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "{} refusals without a position or fix, e.g.\n{}",
        unplaced.len(),
        unplaced[0]
    );
    println!("{cases} mutated files ({through_binary} also through `metalab check`): {accepted} accepted, {refused} refused, 0 panics, 0 signals, 0 without position or fix");
}

/// A private tmux server, killed on drop.
struct Tmux(String);

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("run tmux")
    }
    fn show(&self, format: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["display", "-p", "-t", "w", format]).stdout)
            .trim()
            .to_string()
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "w"]).stdout).into_owned()
    }
    fn wait_for(&self, what: &str, pred: impl Fn(&Tmux) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{}",
                self.screen()
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

/// The pid of the pane's shell's child: the workbench.
fn child_of(pid: &str) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn sigterm_and_sighup_to_the_workbench_restore_the_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipping: tmux is not installed");
        return;
    }
    for (signal, name) in [(libc::SIGTERM, "TERM"), (libc::SIGHUP, "HUP")] {
        let p = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(p.path().join("experiments")).unwrap();
        std::fs::write(p.path().join("experiments/long.ron"), tiny(50_000_000)).unwrap();
        let t = Tmux(format!("metalab-rel-{}-{name}", std::process::id()));
        let shell = format!(
            "{} --project {}; echo \"exited $?\"; sleep 60",
            env!("CARGO_BIN_EXE_metalab"),
            p.path().display()
        );
        let out = t.cmd(&[
            "new-session",
            "-d",
            "-s",
            "w",
            "-x",
            "100",
            "-y",
            "30",
            "sh",
            "-c",
            &shell,
        ]);
        assert!(out.status.success(), "{}", text(&out));
        t.wait_for("the workbench", |t| {
            t.screen().contains("Experiments") && t.show("#{alternate_on}") == "1"
        });
        if signal == libc::SIGTERM {
            // Train, so the signal also has arms to stop with a checkpoint.
            t.cmd(&["send-keys", "-t", "w", "r"]);
            t.wait_for("training", |t| t.screen().contains("running"));
        } else {
            // Edit without saving, so the signal has typed text to keep.
            t.cmd(&["send-keys", "-t", "w", "Enter"]);
            t.wait_for("the editor", |t| t.screen().contains("Experiment("));
            t.cmd(&["send-keys", "-t", "w", "-l", "// typed before the hang-up"]);
            t.wait_for("the typing", |t| t.screen().contains("before the hang-up"));
        }
        assert_eq!(
            t.show("#{mouse_any_flag}"),
            "1",
            "mouse reporting was not on"
        );
        let pane = t.show("#{pane_pid}");
        let app = child_of(&pane).expect("the workbench's pid");
        // SAFETY: signalling the process this test started.
        assert_eq!(unsafe { libc::kill(app, signal) }, 0);
        t.wait_for("the workbench to exit", |t| t.screen().contains("exited"));
        assert_eq!(
            t.show("#{alternate_on}"),
            "0",
            "SIG{name}: still on the alternate screen"
        );
        assert_eq!(
            t.show("#{mouse_any_flag}"),
            "0",
            "SIG{name}: mouse reporting still on"
        );
        assert_eq!(t.show("#{cursor_flag}"), "1", "SIG{name}: cursor hidden");
        // Stopped from outside, it exits as `metalab run` does when stopped.
        assert!(
            t.screen().contains("exited 130"),
            "SIG{name}: {}",
            t.screen()
        );
        if signal == libc::SIGTERM {
            // The arm was stopped with a checkpoint, not left "running".
            let runs = runs::list_runs(&p.path().join("runs"));
            assert_eq!(runs.len(), 1, "SIG{name}");
            assert_eq!(runs[0].status, RunStatus::Stopped, "SIG{name}");
        } else {
            let kept = p.path().join("experiments/.long.ron.unsaved");
            let text = std::fs::read_to_string(&kept).expect("the unsaved edits were lost");
            assert!(text.contains("typed before the hang-up"), "{text}");
            assert!(t.screen().contains(".long.ron.unsaved"), "{}", t.screen());
            // The file itself is as it was.
            assert_eq!(
                std::fs::read_to_string(p.path().join("experiments/long.ron")).unwrap(),
                tiny(50_000_000)
            );
        }
    }
}

#[test]
fn damaged_runs_are_listed_with_the_reason_and_can_still_be_rerun() {
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("tiny.ron"), tiny(10)).unwrap();
    assert_exit(&metalab(p.path(), &["run", "tiny.ron", "-q"]), 0, "run");
    let root = p.path().join("runs");
    let good = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    copy_dir(&good, &root.join("no-meta"));
    std::fs::remove_file(root.join("no-meta/run.json")).unwrap();
    copy_dir(&good, &root.join("bad-meta"));
    std::fs::write(root.join("bad-meta/run.json"), "{ not json").unwrap();
    std::fs::create_dir_all(root.join("unrelated-folder")).unwrap();

    let list = metalab(p.path(), &["runs"]);
    assert_exit(&list, 0, "runs");
    let t = text(&list);
    for (name, why) in [
        ("no-meta", "run.json is missing"),
        ("bad-meta", "does not parse"),
    ] {
        let row = t
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{t}"));
        assert!(row.contains("damaged"), "{row}");
        assert!(
            t.contains(why) && t.contains(&format!("metalab rerun {name}")),
            "{t}"
        );
    }
    assert!(!t.contains("unrelated-folder"), "{t}");

    // What the message suggests works.
    assert_exit(
        &metalab(p.path(), &["rerun", "no-meta", "-q"]),
        0,
        "rerun of a damaged run",
    );
    let resume = metalab(p.path(), &["resume", "bad-meta"]);
    assert_exit(&resume, 2, "resume of a damaged run");
    assert!(text(&resume).contains("fix:"), "{}", text(&resume));
    // The workbench lists them too, as damaged.
    let app = App::new(p.path());
    let row = app
        .runs
        .iter()
        .find(|r| r.id == "no-meta")
        .expect("listed in the workbench");
    assert_eq!(row.status.label(), "damaged");
}

#[test]
fn a_run_that_cannot_be_written_leaves_no_folder_and_no_false_fix() {
    use std::os::unix::process::CommandExt;
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("tiny.ron"), tiny(10)).unwrap();
    let mut cmd = bin();
    cmd.args(["run", "tiny.ron"]).current_dir(p.path());
    // SAFETY: only async-signal-safe calls between fork and exec. A file size limit of 0 makes
    // every write fail with EFBIG, as a full disk makes them fail with ENOSPC.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_exit(&out, 1, "run on a disk that takes no bytes");
    let t = text(&out);
    assert!(
        t.contains("could not be created") && t.contains("fix:"),
        "{t}"
    );
    assert!(
        !t.contains("resume"),
        "suggests resuming a run that does not exist: {t}"
    );
    let left: Vec<_> = std::fs::read_dir(p.path().join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert!(
        left.is_empty(),
        "left behind: {:?}",
        left.iter().map(|e| e.path()).collect::<Vec<_>>()
    );
}

/// Train lines in a run's metrics, in order: a resume must continue them without a gap or a
/// repeat.
fn train_iterations(dir: &Path) -> Vec<usize> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] == "train")
        .map(|v| v["iteration"].as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn one_signal_delivered_twice_still_stops_with_a_final_checkpoint() {
    // GNU `timeout -s INT` signals the child and then its process group: two SIGINTs within
    // microseconds. They must not count as a person's "quit at once".
    let p = tempfile::tempdir().unwrap();
    let (mut child, dir) = start_long_run(p.path());
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(pid, libc::SIGINT);
        libc::kill(pid, libc::SIGINT);
    }
    let exit = wait_exit(&mut child);
    assert_eq!(exit.code(), Some(130), "{exit:?}");
    assert_eq!(runs::load_meta(&dir).unwrap().status, RunStatus::Stopped);
}

#[test]
fn kill_9_and_a_double_sigint_leave_an_interrupted_run_that_resumes_without_a_gap() {
    for how in ["SIGKILL", "SIGINT twice"] {
        let p = tempfile::tempdir().unwrap();
        let (mut child, dir) = start_long_run(p.path());
        let pid = child.id() as i32;
        // SAFETY: signalling our own child.
        unsafe {
            if how == "SIGKILL" {
                libc::kill(pid, libc::SIGKILL);
            } else {
                libc::kill(pid, libc::SIGINT);
                // A person's second Ctrl-C: later than the window in which a repeat counts as
                // the same signal delivered twice.
                std::thread::sleep(Duration::from_millis(700));
                libc::kill(pid, libc::SIGINT);
            }
        }
        let exit = wait_exit(&mut child);
        assert!(
            exit.signal() == Some(libc::SIGKILL) || exit.code() == Some(130),
            "{how}: {exit:?}"
        );
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        let listed = runs::list_runs(&p.path().join("runs"));
        // The second SIGINT may land after the first finished its checkpoint: stopped is fine too.
        assert!(
            matches!(
                listed[0].status,
                RunStatus::Interrupted | RunStatus::Stopped
            ),
            "{how}: {:?}",
            listed[0].status
        );
        let mut resume = bin()
            .args(["resume", &id])
            .current_dir(p.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let it train past the checkpoint it resumed from, then stop it properly.
        let from = train_iterations(&dir).last().copied().unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        while train_iterations(&dir).last().copied().unwrap_or(0) <= from + 20 {
            assert!(
                Instant::now() < deadline,
                "{how}: the resumed run did not train"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        unsafe { libc::kill(resume.id() as i32, libc::SIGTERM) };
        let exit = wait_exit(&mut resume);
        assert_eq!(exit.code(), Some(130), "{how}: resumed run: {exit:?}");
        let its = train_iterations(&dir);
        let expected: Vec<usize> = (1..=its.len()).map(|i| i * 5).collect();
        assert_eq!(its, expected, "{how}: train lines have a gap or a repeat");
        assert_eq!(runs::load_meta(&dir).unwrap().status, RunStatus::Stopped);
    }
}

#[test]
fn under_nohup_sighup_stays_ignored() {
    use std::os::unix::process::CommandExt;
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("long.ron"), tiny(50_000_000)).unwrap();
    let mut cmd = bin();
    cmd.args(["run", "long.ron", "-q"])
        .current_dir(p.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: one async-signal-safe call between fork and exec, as `nohup` makes it.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir = loop {
        assert!(Instant::now() < deadline, "the run did not start");
        if let Some(Ok(e)) = std::fs::read_dir(p.path().join("runs"))
            .ok()
            .and_then(|mut d| d.next())
        {
            if e.path().join("run.json").is_file() {
                break e.path();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let at = train_iterations(&dir).last().copied().unwrap_or(0);
    // Hundreds of iterations after the hang-up it is still training.
    while train_iterations(&dir).last().copied().unwrap_or(0) < at + 500 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "SIGHUP stopped a nohup'd run"
        );
        assert!(Instant::now() < deadline, "the run stalled");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(runs::load_meta(&dir).unwrap().status, RunStatus::Running);
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(&mut child).code(), Some(130));
}

#[test]
fn a_run_recorded_as_running_on_another_host_is_not_deleted_blindly() {
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("tiny.ron"), tiny(10)).unwrap();
    assert_exit(&metalab(p.path(), &["run", "tiny.ron", "-q"]), 0, "run");
    let root = p.path().join("runs");
    let dir = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    meta["status"] = "Running".into();
    meta["host"] = "node-17".into();
    std::fs::write(dir.join("run.json"), meta.to_string()).unwrap();
    meta["experiment"] = "evil\u{1b}]0;pwned\u{7}".into();
    std::fs::write(dir.join("run.json"), meta.to_string()).unwrap();
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    // Text from a run.json reaches the terminal without its escape sequences.
    let listed = runs::list_runs(&root);
    assert_eq!(listed[0].experiment, "evil?]0;pwned?");
    let err = runs::delete_run(&root, &id).unwrap_err();
    assert!(matches!(err, RunError::RunningElsewhere { .. }), "{err}");
    assert!(
        err.to_string().contains("node-17") && err.to_string().contains("fix:"),
        "{err}"
    );
    assert!(dir.is_dir());
}
