// Shared by the tui_* tests (a folder module, so it is not a test target of its own).
#![allow(dead_code)]

use std::path::Path;

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use metalab::tui::app::Screen;
use metalab::tui::runtime::Wake;
use metalab::tui::{view, App, Msg};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// The whole screen as text, one line per row.
pub fn screen(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::render(app, f)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// A project folder with one valid and one broken experiment.
pub fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::create_dir_all(dir.path().join("runs")).unwrap();
    std::fs::write(
        exp.join("demo.ron"),
        metalab::tui::catalog::template("demo"),
    )
    .unwrap();
    std::fs::write(exp.join("broken.ron"), "Experiment(\n    name: \"broken\",\n    family: Sinusoid(shots: 10),\n    modle: Mlp(hidden: [40]),\n)\n").unwrap();
    dir
}

/// Compare with the committed screen in tests/snapshots/ (text only, colours aside).
/// `UPDATE_SNAPSHOTS=1 cargo test` rewrites them after an intended change; review the diff.
pub fn write_snapshot(name: &str, text: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let path = dir.join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() || !path.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert!(
        want == text,
        "screen differs from {}; if intended, rerun with UPDATE_SNAPSHOTS=1\n--- want\n{want}\n--- got\n{text}",
        path.display()
    );
}

/// Every `±` on the screen sits between two whole numbers, and the pair is one the session
/// holds (so `0.4798 ± 0.04`, a number cut by the layout, fails). Returns how many there were.
/// Headers such as `MSE ± 95% CI` are not values and are skipped.
pub fn assert_metrics_whole(screen: &str, expected: &std::collections::BTreeSet<String>) -> usize {
    let num = |c: char| c.is_ascii_digit() || matches!(c, '.' | '%' | 'e' | '-');
    let mut found = 0;
    for line in screen.lines() {
        let chars: Vec<char> = line.chars().collect();
        for (i, _) in chars.iter().enumerate().filter(|(_, c)| **c == '±') {
            let after: String = chars[i + 1..].iter().collect();
            if after.trim_start().starts_with("95% CI") {
                continue;
            }
            let mut a = i.saturating_sub(1);
            assert!(
                i >= 2 && chars[a] == ' ',
                "`±` without a number before it:\n{line}\n\n{screen}"
            );
            let end = a;
            while a > 0 && num(chars[a - 1]) {
                a -= 1;
            }
            let left: String = chars[a..end].iter().collect();
            let start = i + 2;
            let mut b = start;
            while b < chars.len() && num(chars[b]) {
                b += 1;
            }
            let right: String = chars[start.min(chars.len())..b].iter().collect();
            let next = chars.get(b).copied().unwrap_or(' ');
            assert!(
                next == ' ' || next == '│' || next == ')',
                "number cut after `{left} ± {right}`:\n{line}\n\n{screen}"
            );
            let pair = format!("{left} ± {right}");
            assert!(
                expected.contains(&pair),
                "`{pair}` is not a whole metric of the session:\n{line}\n\n{screen}"
            );
            found += 1;
        }
    }
    found
}

/// The `value ± ci` strings the session's evaluations format to (every evaluation, as the
/// cursor may read any of them).
pub fn session_metrics(app: &App) -> std::collections::BTreeSet<String> {
    use metalab::tui::view::theme;
    let mut out = std::collections::BTreeSet::new();
    let Some(s) = app.session() else { return out };
    for a in &s.arms {
        let evals = a.final_eval.iter().chain(a.last_eval.iter());
        for e in evals {
            out.insert(theme::mean_ci(&e.loss));
            if let Some(acc) = &e.accuracy {
                out.insert(theme::pct_ci(acc));
            }
        }
        for series in [&a.eval_loss, &a.eval_acc] {
            let (m, lo, hi) = (series.mean.points(), series.lo.points(), series.hi.points());
            for ((m, l), h) in m.iter().zip(&lo).zip(&hi) {
                let ci = metalab::stats::MeanCi {
                    mean: m.1,
                    ci95: 0.5 * (h.1 - l.1),
                    n: 1,
                };
                out.insert(theme::mean_ci(&ci));
                out.insert(theme::pct_ci(&ci));
            }
        }
    }
    out
}

/// A character key, as `update` receives it.
pub fn k(c: char) -> Msg {
    Msg::Key(KeyEvent::from(KeyCode::Char(c)))
}

/// Any key by its code.
pub fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::from(c))
}

pub fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// A key as the input thread hands it to the runtime, stamped now.
pub fn wake_key(code: KeyCode) -> Wake {
    Wake::Input(
        Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)),
        Instant::now(),
    )
}

/// The status line's text, empty when there is none.
pub fn status(app: &App) -> String {
    app.status.as_ref().map(|s| s.0.clone()).unwrap_or_default()
}

/// Open the `demo` experiment of [`project`] in the editor.
pub fn open_demo(app: &mut App) {
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "demo")
        .unwrap();
    metalab::tui::dispatch(app, code(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Editor);
}

/// Turn the real loop until `done` holds; a guard against hanging, not a timing assertion.
pub fn turn_until(
    rt: &mut metalab::tui::runtime::Runtime<TestBackend>,
    what: &str,
    done: impl Fn(&metalab::tui::runtime::Runtime<TestBackend>) -> bool,
) {
    let until = Instant::now() + std::time::Duration::from_secs(60);
    while !done(rt) {
        assert!(
            Instant::now() < until,
            "never: {what}; status {:?}",
            rt.app.status
        );
        rt.turn();
    }
}

/// One key through the input channel, handled in one turn of the real loop.
pub fn press(rt: &mut metalab::tui::runtime::Runtime<TestBackend>, k: KeyCode) {
    rt.waker().send(wake_key(k)).unwrap();
    let before = rt.stats.inputs;
    while rt.stats.inputs == before {
        rt.turn();
    }
}

/// Train `exp_text` with `seed` into `root/runs` by the real engine, on one thread; returns
/// the run's folder.
pub fn train_seed(root: &Path, exp_text: &str, seed: u64) -> std::path::PathBuf {
    use metalab::engine::{self, EngineEvent, LaunchOptions};
    let mut exp = metalab::experiment::parse_str(exp_text, Path::new("tiny.ron")).unwrap();
    exp.seed = seed;
    let h = engine::launch(
        exp,
        LaunchOptions {
            runs_root: root.join("runs"),
            threads: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    let mut dir = None;
    while !h.is_done() {
        assert!(Instant::now() < deadline, "seed {seed} did not finish");
        match h.events.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(EngineEvent::Started { run_dir, .. }) => dir = Some(run_dir),
            Ok(EngineEvent::Failed { reason, .. }) => panic!("{reason}"),
            _ => {}
        }
    }
    while let Ok(ev) = h.events.try_recv() {
        if let EngineEvent::Started { run_dir, .. } = ev {
            dir = Some(run_dir);
        }
    }
    dir.expect("started")
}
