//! `update` without a terminal: keys before any data, floods of events, the editor's file life
//! cycle (validate, save atomically, reload, conflict), and launching/stopping via effects.

mod tui_common;

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyModifiers};
use metalab::engine::messages::Command;
use metalab::tui::app::{Effect, Modal, Screen};
use metalab::tui::editor::Validation;
use metalab::tui::fixtures;
use metalab::tui::series::{OLD_TARGET, RECENT};
// Messages go through `dispatch`, as the runtime sends them: `update`, then the disk work it asks for.
use metalab::tui::dispatch as update;
use metalab::tui::{App, Msg};
use tui_common::{code, ctrl, k, open_demo, project, screen};

#[test]
fn every_key_before_any_data_is_harmless() {
    let empty = tempfile::tempdir().unwrap();
    let mut app = App::new(empty.path());
    let keys = "?qjkhlgGpsSPcmax r1234 \n".chars().map(k).chain(
        [
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::PageDown,
            KeyCode::Delete,
        ]
        .into_iter()
        .map(code),
    );
    for (i, m) in keys.enumerate() {
        // Close any modal so the next key reaches the screen; never quit mid-test.
        app.modal = None;
        app.quit = false;
        for s in [
            Screen::Experiments,
            Screen::Runs,
            Screen::Monitor,
            Screen::Compare,
        ] {
            app.screen = s;
            update(&mut app, m.clone());
            let _ = screen(&app, 80, 24);
        }
        assert!(
            app.effects.is_empty(),
            "key #{i} asked the engine for something with nothing running"
        );
    }
}

#[test]
fn engine_events_before_launch_or_for_unknown_arms_do_not_crash() {
    let p = project();
    let mut app = App::new(p.path());
    for ev in fixtures::training(3, 50, 10, false) {
        update(&mut app, Msg::Engine(ev)); // no live session: dropped
    }
    assert!(app.live.is_none());
    let mut app = fixtures::live_app(p.path(), 10, false);
    for ev in fixtures::training(5, 20, 5, false) {
        update(&mut app, Msg::Engine(ev));
    }
    assert_eq!(app.live.as_ref().unwrap().arms.len(), 6);
    let _ = screen(&app, 120, 40);
}

#[test]
fn a_flood_of_events_stays_bounded() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 1, false);
    for ev in fixtures::training(0, 200_000, 1000, false) {
        update(&mut app, Msg::Engine(ev));
    }
    let arm = &app.live.as_ref().unwrap().arms[0];
    assert!(arm.train_loss.stored() <= RECENT + 2 * OLD_TARGET);
    assert_eq!(arm.iteration, 200_000);
    let s = screen(&app, 120, 40);
    assert!(s.contains("200000"), "{s}");
}

#[test]
fn launch_pause_resume_stop_go_through_effects() {
    let p = project();
    let mut app = App::new(p.path());
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "demo")
        .unwrap();
    update(&mut app, k('r'));
    assert_eq!(app.screen, Screen::Monitor);
    assert!(matches!(app.effects.as_slice(), [Effect::Launch { .. }]));
    app.effects.clear();
    // Keys before the engine has said anything.
    update(&mut app, k('p'));
    assert!(matches!(
        app.effects.as_slice(),
        [Effect::Engine {
            arm: Some(0),
            cmd: Command::Pause
        }]
    ));
    update(
        &mut app,
        Msg::Engine(metalab::engine::messages::EngineEvent::Paused { arm: 0 }),
    );
    update(&mut app, k('p'));
    assert!(matches!(
        app.effects.last(),
        Some(Effect::Engine {
            arm: Some(0),
            cmd: Command::Resume
        })
    ));
    app.effects.clear();
    // Stop asks first; "n" cancels, "y" sends.
    update(&mut app, k('S'));
    assert!(matches!(app.modal, Some(Modal::Confirm { .. })));
    update(&mut app, k('n'));
    assert!(app.modal.is_none() && app.effects.is_empty());
    update(&mut app, k('S'));
    update(&mut app, k('y'));
    assert!(matches!(
        app.effects.as_slice(),
        [Effect::Engine {
            arm: None,
            cmd: Command::Stop
        }]
    ));
    // Launching again while training is refused.
    app.screen = Screen::Experiments;
    app.effects.clear();
    update(&mut app, k('r'));
    assert!(app.effects.is_empty());
}

#[test]
fn quitting_while_training_asks_and_stops() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 5, false);
    app.screen = Screen::Experiments;
    update(&mut app, k('q'));
    assert!(!app.quit);
    update(&mut app, k('y'));
    assert!(app.quit);
    assert!(matches!(
        app.effects.as_slice(),
        [Effect::Engine {
            arm: None,
            cmd: Command::Stop
        }]
    ));
}

#[test]
fn broken_experiment_cannot_launch_and_shows_error() {
    let p = project();
    let mut app = App::new(p.path());
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "broken")
        .unwrap();
    update(&mut app, k('r'));
    assert!(app.effects.is_empty());
    assert!(app.status.as_ref().unwrap().0.contains("broken.ron:4:"));
}

#[test]
fn editor_validates_after_a_pause_and_save_jumps_to_the_error() {
    let p = project();
    let mut app = App::new(p.path());
    open_demo(&mut app);
    assert!(matches!(
        app.editor.as_ref().unwrap().validation,
        Some(Validation::Valid { .. })
    ));
    // Break line 1 by typing junk at the start.
    for c in "@@".chars() {
        update(&mut app, k(c));
    }
    let ed = app.editor.as_ref().unwrap();
    assert!(ed.modified());
    assert!(
        matches!(ed.validation, Some(Validation::Valid { .. })),
        "validation waits for a pause"
    );
    update(&mut app, Msg::Tick(Instant::now() + Duration::from_secs(1)));
    let ed = app.editor.as_ref().unwrap();
    assert!(matches!(ed.validation, Some(Validation::Invalid { .. })));
    // Move away, then save: the file is written and the cursor jumps to the error.
    update(&mut app, code(KeyCode::Down));
    update(&mut app, code(KeyCode::Down));
    update(&mut app, ctrl('s'));
    let ed = app.editor.as_ref().unwrap();
    let (line, col) = ed.error_position().unwrap();
    assert_eq!(ed.area.cursor(), (line - 1, col - 1));
    assert!(!ed.modified());
    let on_disk = std::fs::read_to_string(p.path().join("experiments/demo.ron")).unwrap();
    assert!(on_disk.contains("@@"));
    // No temporary left behind.
    let leftovers: Vec<_> = std::fs::read_dir(p.path().join("experiments"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
    assert!(app
        .experiments
        .iter()
        .any(|e| e.file_name == "demo.ron" && !e.is_valid()));
}

#[test]
fn external_change_reloads_a_clean_buffer() {
    let p = project();
    let mut app = App::new(p.path());
    open_demo(&mut app);
    let path = p.path().join("experiments/demo.ron");
    let changed = metalab::tui::catalog::template("demo").replace("seed: 1", "seed: 7");
    std::fs::write(&path, &changed).unwrap();
    update(&mut app, Msg::FilesChanged(vec![path]));
    let ed = app.editor.as_ref().unwrap();
    assert!(ed.text().contains("seed: 7"));
    assert!(!ed.modified());
    assert!(app.modal.is_none());
}

#[test]
fn external_change_with_unsaved_edits_asks() {
    let p = project();
    let mut app = App::new(p.path());
    open_demo(&mut app);
    update(&mut app, k('X'));
    let path = p.path().join("experiments/demo.ron");
    let theirs = metalab::tui::catalog::template("demo").replace("seed: 1", "seed: 9");
    std::fs::write(&path, &theirs).unwrap();
    update(&mut app, Msg::FilesChanged(vec![path.clone()]));
    assert!(matches!(app.modal, Some(Modal::Conflict { .. })));
    // Neither side was overwritten.
    assert!(app.editor.as_ref().unwrap().text().starts_with('X'));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);
    // Keep mine: the buffer stays, a later save overwrites knowingly.
    update(&mut app, k('k'));
    assert!(app.modal.is_none());
    assert!(app.editor.as_ref().unwrap().text().starts_with('X'));
    // A second outside change asks again; this time take theirs.
    std::fs::write(&path, theirs.replace("seed: 9", "seed: 10")).unwrap();
    update(&mut app, Msg::FilesChanged(vec![path]));
    assert!(matches!(app.modal, Some(Modal::Conflict { .. })));
    update(&mut app, k('r'));
    let ed = app.editor.as_ref().unwrap();
    assert!(ed.text().contains("seed: 10") && !ed.modified());
}

#[test]
fn new_and_duplicate_create_files() {
    let p = project();
    let mut app = App::new(p.path());
    update(&mut app, k('n'));
    assert_eq!(app.screen, Screen::Editor);
    assert!(p.path().join("experiments/new-experiment.ron").exists());
    assert!(matches!(
        app.editor.as_ref().unwrap().validation,
        Some(Validation::Valid { .. })
    ));
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Experiments);
    // Left unsaved, the new file is discarded with the buffer.
    assert!(!p.path().join("experiments/new-experiment.ron").exists());
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "demo")
        .unwrap();
    update(&mut app, k('d'));
    let copy = p.path().join("experiments/demo-copy.ron");
    assert!(copy.exists());
    let text = std::fs::read_to_string(copy).unwrap();
    assert!(text.contains("name: \"demo-copy\""));
    assert_eq!(app.experiments.len(), 3);
}

#[test]
fn leaving_a_modified_editor_asks() {
    let p = project();
    let mut app = App::new(p.path());
    open_demo(&mut app);
    update(&mut app, k('Z'));
    update(&mut app, code(KeyCode::Esc));
    assert!(matches!(app.modal, Some(Modal::Confirm { .. })));
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Editor);
    update(&mut app, code(KeyCode::Esc));
    update(&mut app, k('y'));
    assert_eq!(app.screen, Screen::Experiments);
}

#[test]
fn mouse_click_selects_rows_and_tabs() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let p = project();
    let mut app = App::new(p.path());
    update(&mut app, Msg::Resize(120, 40));
    let click = |col, row| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: col,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    // Second list row (y = tabs 1 + border 1 + 1).
    update(&mut app, click(5, 3));
    assert_eq!(app.exp_sel, 1);
    // "2 Runs" in the tab bar.
    let s = screen(&app, 120, 40);
    let col = s
        .lines()
        .next()
        .unwrap()
        .chars()
        .collect::<Vec<_>>()
        .windows(6)
        .position(|w| w.iter().collect::<String>() == "2 Runs")
        .unwrap();
    update(&mut app, click(col as u16, 0));
    assert_eq!(app.screen, Screen::Runs);
}

#[test]
fn update_itself_touches_no_files_and_asks_for_disk_work_as_effects() {
    use metalab::tui::app::Io;
    let p = tui_common::project();
    let mut app = App::new(p.path());
    let before = std::fs::read_dir(p.path().join("experiments"))
        .unwrap()
        .count();
    metalab::tui::update::update(&mut app, k('n'));
    assert_eq!(
        std::fs::read_dir(p.path().join("experiments"))
            .unwrap()
            .count(),
        before,
        "update wrote a file"
    );
    assert!(matches!(
        app.effects.as_slice(),
        [Effect::Io(Io::NewExperiment { duplicate: false })]
    ));
    metalab::tui::actions::perform_all(&mut app);
    assert_eq!(
        std::fs::read_dir(p.path().join("experiments"))
            .unwrap()
            .count(),
        before + 1
    );
    assert_eq!(app.screen, Screen::Editor);
}
