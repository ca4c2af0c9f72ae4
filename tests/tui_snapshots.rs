//! Whole-screen snapshots at 120×40 and 80×24, fed with canned engine events.
//! Assertions are on key substrings; the full screens are written to tests/snapshots/ for review.

mod tui_common;

use metalab::tui::app::Screen;
use metalab::tui::fixtures;
// Messages go through `dispatch`, as the runtime sends them: `update`, then the disk work it asks for.
use metalab::tui::dispatch as update;
use metalab::tui::{App, Msg};
use tui_common::{project, screen, write_snapshot};

#[test]
fn experiments_list_shows_valid_and_broken_files() {
    let p = project();
    let app = App::new(p.path());
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("experiments_{w}x{h}.txt"), &s);
        assert!(s.contains("demo"), "{s}");
        assert!(s.contains("broken"), "{s}");
        assert!(s.contains("✗"), "{s}");
        assert!(s.contains("✓"), "{s}");
    }
    // The broken file's error is shown, with its line:column.
    let mut app = App::new(p.path());
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "broken")
        .unwrap();
    let s = screen(&app, 120, 40);
    assert!(s.contains("broken.ron:4:"), "{s}");
}

#[test]
fn monitor_regression_120x40() {
    let p = project();
    let app = fixtures::live_app(p.path(), 400, false);
    let s = screen(&app, 120, 40);
    write_snapshot("monitor_regression_120x40.txt", &s);
    assert!(s.contains("maml"), "{s}");
    assert!(s.contains("reptile"), "{s}");
    assert!(s.contains("400/800"), "{s}");
    assert!(s.contains("it/s"), "{s}");
    assert!(s.contains("ETA"), "{s}");
    assert!(s.contains("meta-train MSE"), "{s}");
    assert!(s.contains("eval MSE"), "{s}");
    assert!(s.contains("95% CI"), "{s}");
    assert!(s.contains("task 0"), "{s}");
    assert!(
        !s.contains("accuracy"),
        "regression must not show accuracy:\n{s}"
    );
    // Braille markers are drawn.
    assert!(
        s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "{s}"
    );
}

#[test]
fn monitor_classification_shows_accuracy() {
    let p = project();
    let app = fixtures::live_app(p.path(), 300, true);
    let s = screen(&app, 120, 40);
    write_snapshot("monitor_classification_120x40.txt", &s);
    assert!(s.contains("accuracy"), "{s}");
    assert!(s.contains("val acc"), "{s}");
    assert!(s.contains('%'), "{s}");
    assert!(!s.contains("MSE"), "classification must not show MSE:\n{s}");
}

#[test]
fn monitor_80x24_still_readable() {
    let p = project();
    let app = fixtures::live_app(p.path(), 200, false);
    let s = screen(&app, 80, 24);
    write_snapshot("monitor_80x24.txt", &s);
    assert!(s.contains("maml"), "{s}");
    assert!(s.contains("reptile"), "{s}");
    assert!(s.contains("meta-train"), "{s}");
}

#[test]
fn compare_overlays_and_table() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 300, false);
    app.screen = Screen::Compare;
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("compare_{w}x{h}.txt"), &s);
        assert!(s.contains("all arms"), "{s}");
        assert!(s.contains("final evaluation"), "{s}");
        assert!(s.contains("±"), "{s}");
    }
    let s = screen(&app, 120, 40);
    // Template arms differ in algorithm and inner steps.
    assert!(s.contains("inner_steps="), "{s}");
}

#[test]
fn help_overlay_lists_keys() {
    let p = project();
    let mut app = App::new(p.path());
    update(&mut app, Msg::Key(key('?')));
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("help_{w}x{h}.txt"), &s);
        assert!(s.contains("keys"), "{s}");
        assert!(s.contains("Ctrl-S"), "{s}");
        assert!(s.contains("pause"), "{s}");
        assert!(s.contains("Mouse"), "the last entry must fit:\n{s}");
    }
}

#[test]
fn editor_marks_the_error_line() {
    let p = project();
    let mut app = App::new(p.path());
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "broken")
        .unwrap();
    update(&mut app, Msg::Key(enter()));
    assert_eq!(app.screen, Screen::Editor);
    let s = screen(&app, 120, 40);
    write_snapshot("editor_error_120x40.txt", &s);
    assert!(s.contains("line 4, column"), "{s}");
    assert!(s.contains("modle"), "{s}");
}

#[test]
fn tiny_and_odd_terminal_sizes_do_not_panic() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 50, true);
    for screen_kind in [
        Screen::Experiments,
        Screen::Runs,
        Screen::Monitor,
        Screen::Compare,
    ] {
        app.screen = screen_kind;
        for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (60, 15), (200, 60)] {
            let _ = screen(&app, w, h);
        }
    }
    app.screen = Screen::Experiments;
    update(&mut app, Msg::Key(enter()));
    update(&mut app, Msg::Key(key('?')));
    for (w, h) in [(1, 1), (10, 3), (30, 8)] {
        let _ = screen(&app, w, h);
    }
}

fn key(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c))
}

fn enter() -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Enter)
}
