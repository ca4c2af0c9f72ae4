//! Every action answers in the status line, Esc never quits, the help overlay scrolls and
//! fits small terminals, a discarded new experiment leaves no file, and error texts agree.

mod tui_common;

use crossterm::event::KeyCode;
use metalab::engine::messages::{Command, EngineEvent};
use metalab::tui::app::{Effect, Modal, Screen};
use metalab::tui::editor::Validation;
use metalab::tui::fixtures;
// Messages go through `dispatch`, as the runtime sends them: `update`, then the disk work it asks for.
use metalab::tui::dispatch as update;
use metalab::tui::{App, Msg};
use tui_common::{code, ctrl, k, open_demo, project, screen, status};

#[test]
fn f5_on_an_invalid_buffer_says_why_it_did_not_launch() {
    let p = project();
    let mut app = App::new(p.path());
    open_demo(&mut app);
    let ed = app.editor.as_mut().unwrap();
    let text = ed.text().replace("seed:", "sxeed:");
    ed.reload(&text); // as if typed
    update(&mut app, code(KeyCode::F(5)));
    assert!(app.effects.is_empty(), "{:?}", app.effects);
    assert_eq!(app.screen, Screen::Editor);
    let msg = status(&app);
    assert!(msg.contains("not launched"), "{msg}");
    // The same words as the validation pane.
    let Some(Validation::Invalid { message, .. }) = &app.editor.as_ref().unwrap().validation else {
        panic!()
    };
    let first = message.lines().next().unwrap();
    assert!(msg.ends_with(first), "{msg}\nvs\n{first}");
    assert!(first.contains("` in `"), "RON's missing space: {first}");
    let s = screen(&app, 120, 40);
    assert!(s.contains("not launched"), "{s}");
}

#[test]
fn an_invalid_file_gives_the_same_error_in_the_status_line_and_the_details() {
    let p = project();
    let mut app = App::new(p.path());
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "broken")
        .unwrap();
    update(&mut app, k('r'));
    assert!(app.effects.is_empty());
    let msg = status(&app);
    let detail = app.experiments[app.exp_sel].error.clone().unwrap();
    assert_eq!(
        msg,
        format!("cannot launch: {}", detail.lines().next().unwrap())
    );
}

#[test]
fn pause_resume_and_stop_say_what_they_did_and_a_paused_arm_shows_paused() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 50, false);
    update(&mut app, k('p'));
    assert!(
        status(&app).contains("pausing arm maml"),
        "{}",
        status(&app)
    );
    update(&mut app, Msg::Engine(EngineEvent::Paused { arm: 0 }));
    let s = screen(&app, 120, 40);
    let row = s.lines().find(|l| l.contains("● maml")).unwrap();
    assert!(!row.contains("it/s"), "a paused arm shows no rate:\n{row}");
    assert!(row.contains("paused"), "{row}");
    update(&mut app, k('p'));
    assert!(
        status(&app).contains("resuming arm maml"),
        "{}",
        status(&app)
    );
    update(&mut app, k('P'));
    assert!(status(&app).contains("all arms"), "{}", status(&app));
    app.effects.clear();
    update(&mut app, k('s'));
    update(&mut app, k('y'));
    assert!(
        status(&app).contains("stopping arm maml"),
        "{}",
        status(&app)
    );
    assert!(matches!(
        app.effects.as_slice(),
        [Effect::Engine {
            cmd: Command::Stop,
            ..
        }]
    ));
}

#[test]
fn a_on_a_regression_run_says_why_it_does_nothing() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 20, false);
    let before = app.task_accuracy;
    update(&mut app, k('a'));
    assert_eq!(app.task_accuracy, before);
    assert!(status(&app).contains("regression"), "{}", status(&app));
    let mut app = fixtures::live_app(p.path(), 20, true);
    update(&mut app, k('a'));
    assert!(status(&app).contains("loss"), "{}", status(&app));
}

#[test]
fn esc_in_a_top_level_pane_never_quits_and_q_still_does() {
    let p = project();
    let mut app = App::new(p.path());
    for pane in ['1', '2'] {
        update(&mut app, k(pane));
        update(&mut app, code(KeyCode::Esc));
        assert!(!app.quit, "Esc quit pane {pane}");
        assert!(status(&app).contains("q quits"));
    }
    update(&mut app, k('q'));
    assert!(app.quit);
}

#[test]
fn help_scrolls_and_fits_80x24_and_40x12() {
    let p = project();
    let mut app = App::new(p.path());
    for (w, h) in [(80u16, 24u16), (40, 12)] {
        update(&mut app, Msg::Resize(w, h));
        update(&mut app, k('?'));
        assert_eq!(app.help_scroll, 0);
        let top = screen(&app, w, h);
        assert!(top.contains("scroll"), "{top}");
        // Every row of the box is inside the screen: the bottom border is drawn.
        assert!(top.lines().any(|l| l.contains('└')), "{top}");
        update(&mut app, code(KeyCode::Down));
        assert_eq!(app.help_scroll, 1);
        assert_eq!(app.modal, Some(Modal::Help), "a scroll key keeps it open");
        update(&mut app, code(KeyCode::End));
        let end = screen(&app, w, h);
        // The last entry (the Runs pane's) is reachable.
        assert!(end.contains("frozen config"), "{end}");
        update(&mut app, code(KeyCode::PageUp));
        update(&mut app, code(KeyCode::PageDown));
        update(&mut app, k('x'));
        assert!(app.modal.is_none(), "another key closes it");
    }
}

#[test]
fn a_new_experiment_discarded_unsaved_leaves_no_file() {
    let p = project();
    let file = p.path().join("experiments/new-experiment.ron");
    let mut app = App::new(p.path());
    // Unmodified, then Esc: gone.
    update(&mut app, k('n'));
    assert!(file.exists());
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Experiments);
    assert!(!file.exists());
    assert!(app.experiments.iter().all(|e| e.name != "new-experiment"));
    // Modified, Esc asks, yes discards: gone.
    update(&mut app, k('n'));
    update(&mut app, k('Z'));
    update(&mut app, code(KeyCode::Esc));
    assert!(matches!(app.modal, Some(Modal::Confirm { .. })));
    update(&mut app, k('y'));
    assert!(!file.exists());
    // Saved once: kept.
    update(&mut app, k('n'));
    update(&mut app, ctrl('s'));
    update(&mut app, code(KeyCode::Esc));
    assert!(file.exists());
}

#[test]
fn a_one_arm_launch_says_1_arm() {
    let p = project();
    let one = metalab::tui::catalog::template("solo")
        .replace("Arm(name: \"reptile\"", "// Arm(name: \"reptile\"");
    std::fs::write(p.path().join("experiments/solo.ron"), &one).unwrap();
    let mut app = App::new(p.path());
    let Some(i) = app.experiments.iter().position(|e| e.name == "solo") else {
        panic!("{one}")
    };
    app.exp_sel = i;
    assert_eq!(app.experiments[i].arms.len(), 1, "{one}");
    update(&mut app, k('r'));
    assert!(status(&app).ends_with("(1 arm)"), "{}", status(&app));
    let s = screen(&app, 120, 40);
    assert!(!s.contains("1 arms"), "{s}");
}

#[test]
fn x_in_the_monitor_exports_the_session_on_screen() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 20, false);
    // A saved session opened as well, whose arms write elsewhere.
    let mut saved = app.live.clone().unwrap();
    saved.live = false;
    saved.title = "saved-one".into();
    for a in &mut saved.arms {
        a.run_dir = Some(p.path().join("runs/saved-run"));
    }
    app.saved = Some(saved);
    // The live run on screen: x exports it (the file is named after the session).
    app.source = metalab::tui::app::Source::Live;
    assert!(screen(&app, 120, 40).contains("— live"));
    update(&mut app, k('x'));
    let msg = status(&app);
    assert!(msg.contains("demo") && !msg.contains("saved-one"), "{msg}");
    // v shows the saved one: x now exports that.
    update(&mut app, k('v'));
    assert!(screen(&app, 120, 40).contains("saved-one"));
    update(&mut app, k('x'));
    assert!(status(&app).contains("saved-one"), "{}", status(&app));
}

/// Issue 18 §4: at 80 columns an error keeps its `fix:` line (the status wraps to up to three
/// rows) instead of showing only its first line.
#[test]
fn an_error_keeps_its_fix_line_at_80_columns() {
    let p = project();
    let mut app = App::new(p.path());
    app.error(
        "launch failed: experiments/broken.ron:4:5: unexpected field `modle`\n  fix: did you mean `model`? Remove or rename the field, then save",
    );
    let s = screen(&app, 80, 24);
    assert!(s.contains("fix: did you mean `model`?"), "{s}");
    assert!(s.contains("launch failed"), "{s}");
    assert!(s.contains("then save"), "{s}");
    // The footer is still there, whole.
    assert!(s.lines().last().unwrap().contains("q quit"), "{s}");
}
