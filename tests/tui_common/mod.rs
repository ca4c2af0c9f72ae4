// Shared by the tui_* tests (a folder module, so it is not a test target of its own).
#![allow(dead_code)]

use std::path::Path;

use metalab::tui::{view, App};
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
