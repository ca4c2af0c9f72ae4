//! The workbench never freezes: its real event loop (on ratatui's TestBackend), with an
//! Omniglot-shaped folder of 20,000 PNGs configured, answers every key within one frame while
//! another thread reads every experiment file in a loop, and rescans the folder no more often
//! than files are really written.
//!
//! On 771b3c7 the reads fed the watcher, the watcher fed rescans on the UI thread, and each
//! rescan listed the 20,000 images again: keys took 25–35 s.

mod tui_common;
use tui_common::wake_key;

use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use metalab::engine::LaunchOptions;
use metalab::tui::runtime::{Runtime, FRAME};
use metalab::tui::scanner::ScanStats;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// What a key may wait at most: one frame, as the issue states it. The loop wakes as soon as
/// a key arrives, so in practice a key waits for the work in progress only.
const BOUND: Duration = FRAME;

/// A 4×4 grey PNG, written once and copied: the folder check lists files, it decodes none.
fn tiny_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(BufWriter::new(&mut out), 4, 4);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[255u8; 16]).unwrap();
    }
    out
}

/// `alphabets × chars × drawings` PNGs in the release's layout under `root/images_background`.
fn omniglot_tree(root: &Path, alphabets: usize, chars: usize, drawings: usize) -> usize {
    let png = tiny_png();
    let mut n = 0;
    for a in 0..alphabets {
        for c in 0..chars {
            let dir = root
                .join("images_background")
                .join(format!("Alphabet_{a:02}"))
                .join(format!("character{:02}", c + 1));
            std::fs::create_dir_all(&dir).unwrap();
            for d in 0..drawings {
                let id = a * chars + c + 1;
                std::fs::write(dir.join(format!("{id:04}_{:02}.png", d + 1)), &png).unwrap();
                n += 1;
            }
        }
    }
    n
}

fn omniglot_experiment(root: &Path) -> String {
    format!(
        r#"Experiment(
    name: "omni",
    family: Omniglot(root: "{}", ways: 5, shots: 1, queries: 5, image_size: 28,
                     protocol: AlphabetSplit(train: 0.7, validation: 0.1)),
    model: Conv(blocks: 4, channels: 64, batch_norm: true),
    arms: [Arm(name: "proto", algorithm: ProtoNet)],
)
"#,
        root.display()
    )
}

#[test]
fn keys_are_answered_within_a_frame_while_files_are_read_in_a_loop() {
    let project = tui_common::project();
    let data = tempfile::tempdir().unwrap();
    let images = omniglot_tree(data.path(), 50, 20, 20);
    assert!(images >= 20_000);
    let exp = project.path().join("experiments");
    std::fs::write(exp.join("omni.ron"), omniglot_experiment(data.path())).unwrap();
    for i in 0..5 {
        std::fs::write(
            exp.join(format!("sine-{i}.ron")),
            metalab::tui::catalog::template(&format!("sine-{i}")),
        )
        .unwrap();
    }

    let term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut rt = Runtime::new(project.path(), &LaunchOptions::default(), term);
    let stats: Arc<ScanStats> = Arc::clone(&rt.app.scanner.as_ref().unwrap().stats);

    // The first listing and its data check, before the clock starts.
    let until = Instant::now() + Duration::from_secs(60);
    while !(rt.app.catalog_loaded && rt.app.experiments.iter().all(|e| !e.checking_data)) {
        assert!(Instant::now() < until, "the first listing never finished");
        rt.turn();
    }
    let omni = rt
        .app
        .experiments
        .iter()
        .find(|e| e.file_name == "omni.ron")
        .expect("listed");
    assert!(omni.is_valid(), "{:?}", omni.error);
    let rescans_before = ScanStats::get(&stats.rescans);
    let checks_before = ScanStats::get(&stats.data_checks);

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, exp) = (Arc::clone(&stop), Arc::clone(&reads), exp.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for e in std::fs::read_dir(&exp).unwrap().flatten() {
                    let _ = std::fs::read(e.path());
                    reads.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    let keys_sent = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(AtomicUsize::new(0));
    let typist = {
        let (stop, sent, writes, exp) = (
            Arc::clone(&stop),
            Arc::clone(&keys_sent),
            Arc::clone(&writes),
            exp.clone(),
        );
        let tx = rt.waker();
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let k = if i.is_multiple_of(2) {
                    KeyCode::Down
                } else {
                    KeyCode::Up
                };
                tx.send(wake_key(k)).unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
                // Two real writes, a second apart, among the reads.
                if i == 40 || i == 90 {
                    std::fs::write(
                        exp.join("sine-0.ron"),
                        metalab::tui::catalog::template(&format!("sine-0-{i}")),
                    )
                    .unwrap();
                    writes.fetch_add(1, Ordering::SeqCst);
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let start = Instant::now();
    // Both writes happen however slowly a loaded machine runs the typist.
    while start.elapsed() < Duration::from_secs(3) || writes.load(Ordering::SeqCst) < 2 {
        rt.turn();
    }
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    typist.join().unwrap();
    // Whatever the last write asked for arrives within the watcher's quiet time.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(800) {
        rt.turn();
    }

    let sent = keys_sent.load(Ordering::SeqCst);
    let writes = writes.load(Ordering::SeqCst);
    let rescans = ScanStats::get(&stats.rescans) - rescans_before;
    eprintln!(
        "{} reads, {sent} keys, {writes} writes, {rescans} rescans, {} data checks; \
         longest key wait {:?}, longest turn {:?}",
        reads.load(Ordering::SeqCst),
        ScanStats::get(&stats.data_checks) - checks_before,
        rt.stats.max_input_latency,
        rt.stats.max_busy
    );
    assert!(reads.load(Ordering::SeqCst) > 100, "the reader did not run");
    assert_eq!(rt.stats.inputs, sent, "every key was handled");
    assert!(
        rt.stats.max_input_latency <= BOUND,
        "a key waited {:?}",
        rt.stats.max_input_latency
    );
    assert!(
        rt.stats.max_busy <= BOUND,
        "a turn of the loop took {:?}",
        rt.stats.max_busy
    );
    assert!(
        (1..=writes).contains(&rescans),
        "{rescans} rescans for {writes} writes"
    );
    // The data folder was checked once, at the start: the writes touched another file.
    assert_eq!(ScanStats::get(&stats.data_checks), checks_before);
    // The second write is what the list shows.
    assert!(
        rt.app.experiments.iter().any(|e| e.name == "sine-0-90"),
        "{:?}",
        rt.app
            .experiments
            .iter()
            .map(|e| &e.name)
            .collect::<Vec<_>>()
    );
}

/// Omniglot start-up says how loading goes: the engine reports images decoded, in order, up to
/// the whole count, before any arm starts; the monitor shows it in the arm's row.
#[test]
fn omniglot_start_up_shows_its_loading_progress() {
    let data = tempfile::tempdir().unwrap();
    let images = omniglot_tree(data.path(), 10, 6, 6);
    let runs = tempfile::tempdir().unwrap();
    let text = omniglot_experiment(data.path())
        .replace("image_size: 28", "image_size: 8")
        .replace("blocks: 4, channels: 64", "blocks: 1, channels: 4")
        .replace("queries: 5", "queries: 2")
        .replace(
            "arms: [Arm(name: \"proto\", algorithm: ProtoNet)],",
            "arms: [Arm(name: \"proto\", algorithm: ProtoNet), Arm(name: \"proto2\", algorithm: ProtoNet)],\n    train: Train(iterations: 2, meta_batch: 1),\n    eval: Eval(every: 2, tasks: 2, periodic_tasks: 2, tracked_tasks: 1),",
        );
    let exp = metalab::experiment::parse_str(&text, Path::new("omni.ron")).unwrap();
    let mut session = metalab::tui::session::Session::for_experiment(&exp);
    let opts = LaunchOptions {
        runs_root: runs.path().to_path_buf(),
        threads: Some(1),
        ..LaunchOptions::default()
    };
    let handle = metalab::engine::launch(exp, opts).unwrap();
    let mut loading = vec![Vec::new(); 2];
    let mut seen_row = false;
    for ev in handle.events.iter() {
        use metalab::engine::EngineEvent;
        match &ev {
            EngineEvent::Loading { arm, done, total } => {
                assert_eq!(*total, images);
                loading[*arm].push(*done);
            }
            EngineEvent::Started { arm, .. } => {
                assert_eq!(
                    loading[*arm].last(),
                    Some(&images),
                    "started before loading ended"
                )
            }
            EngineEvent::Failed { reason, .. } => panic!("{reason}"),
            _ => {}
        }
        session.apply(&ev);
        if let (EngineEvent::Loading { arm: 0, done, .. }, false) = (&ev, seen_row) {
            let mut app = metalab::tui::App::new(tempfile::tempdir().unwrap().path());
            app.live = Some(session.clone());
            app.screen = metalab::tui::app::Screen::Monitor;
            let screen = tui_common::screen(&app, 120, 40);
            assert!(
                screen.contains(&format!("loading images {done}/{images}")),
                "{screen}"
            );
            seen_row = true;
        }
        if matches!(ev, EngineEvent::Finished { .. }) && handle.is_done() {
            break;
        }
    }
    for arm in &loading {
        assert!(arm.windows(2).all(|w| w[0] < w[1]), "{arm:?}");
        assert_eq!(arm.last(), Some(&images));
    }
    assert!(seen_row);
}

/// A FIFO among the experiments (on 771b3c7 it froze the workbench in `open()`, deaf to q,
/// Ctrl-C and the first SIGTERM) is listed as an error and never opened; Enter on it says why.
#[test]
fn a_fifo_among_the_experiments_is_listed_not_opened() {
    let project = tui_common::project();
    let fifo = project.path().join("experiments/a-fifo.ron");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut rt = Runtime::new(project.path(), &LaunchOptions::default(), term);
    let until = Instant::now() + Duration::from_secs(10);
    while !rt.app.catalog_loaded {
        assert!(
            Instant::now() < until,
            "the listing never came: blocked on the FIFO?"
        );
        rt.turn();
    }
    let e = &rt.app.experiments[0];
    assert_eq!(e.file_name, "a-fifo.ron");
    let err = e.error.as_deref().unwrap_or_default();
    assert!(
        err.contains("not a regular file") && err.contains("fix:"),
        "{err}"
    );
    // Enter would open the editor on it: refused with the reason, the UI still answers.
    rt.waker().send(wake_key(KeyCode::Enter)).unwrap();
    rt.turn();
    let (status, _) = rt.app.status.clone().expect("a status line");
    assert!(status.contains("not a regular file"), "{status}");
    rt.waker().send(wake_key(KeyCode::Char('q'))).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while rt.turn() {
        assert!(Instant::now() < until, "q did not quit");
    }
}

/// Before the first listing arrives the list says it is reading; while an Omniglot folder is
/// checked, its row is marked `…` (neither ✓ nor ✗) and its details say so, at 80 columns too.
#[test]
fn the_list_says_what_it_is_still_reading() {
    let project = tui_common::project();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("experiments/omni.ron"),
        omniglot_experiment(data.path()),
    )
    .unwrap();
    let term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let rt = Runtime::new(project.path(), &LaunchOptions::default(), term);
    let mut app = rt.app;
    app.experiments.clear();
    app.catalog_loaded = false;
    let s = tui_common::screen(&app, 80, 24);
    assert!(s.contains("Reading experiments/"), "{s}");

    let (mut e, check) =
        metalab::tui::catalog::read_file(&project.path().join("experiments/omni.ron"), None);
    assert!(check.is_some() && e.checking_data && e.is_valid());
    app.experiments = vec![e.clone()];
    app.catalog_loaded = true;
    for (w, h) in [(80, 24), (120, 40)] {
        let s = tui_common::screen(&app, w, h);
        let row = s.lines().find(|l| l.contains("omni ")).unwrap();
        assert!(row.starts_with("│ … omni"), "{w}×{h}:\n{s}");
        assert!(s.contains("checking the data folder…"), "{w}×{h}:\n{s}");
    }
    // The check's verdict (the folder is empty) replaces it, located at the data folder's line.
    metalab::tui::catalog::finish_data_check(
        &mut e,
        metalab::tui::catalog::run_data_check(&check.unwrap()),
    );
    let err = e.error.clone().unwrap_or_default();
    assert!(
        !e.checking_data && err.starts_with("experiments/omni.ron:3:22: `family`"),
        "{err}"
    );
}
