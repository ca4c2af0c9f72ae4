//! Whole-screen snapshots at 120×40 and 80×24, fed with canned engine events.
//! Assertions are on key substrings; the full screens are written to tests/snapshots/ for review.

mod tui_common;

use metalab::tui::app::Screen;
use metalab::tui::fixtures;
// Messages go through `dispatch`, as the runtime sends them: `update`, then the disk work it asks for.
use metalab::tui::dispatch as update;
use metalab::tui::{App, Msg};
use tui_common::{assert_metrics_whole, project, screen, session_metrics, write_snapshot};

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
    assert!(s.contains("val MSE"), "{s}");
    assert!(s.contains("band: 95% CI"), "{s}");
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
    // Evaluations exist, yet the rate and ETA stay (issue 18 §4).
    assert!(s.contains("25/s 8s"), "{s}");
    // All four tracked tasks, in one panel when four do not fit side by side.
    assert!(s.contains("tracked tasks 0–3"), "{s}");
}

#[test]
fn compare_overlays_and_table() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 300, false);
    app.screen = Screen::Compare;
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("compare_{w}x{h}.txt"), &s);
        assert!(s.contains("meta-train MSE"), "{s}");
        // Still training: the table must not call its numbers final, and it says where the
        // arms are compared.
        assert!(s.contains("validation @300, 100 tasks (training)"), "{s}");
        assert!(!s.contains("final evaluation"), "{s}");
        assert!(assert_metrics_whole(&s, &session_metrics(&app)) >= 2, "{s}");
    }
    let s = screen(&app, 120, 40);
    // Template arms differ in algorithm and inner steps: the diff shows both side by side.
    assert!(s.contains("config diff"), "{s}");
    assert!(s.contains("train.inner_steps"), "{s}");
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

/// The ranked rows' metrics, in table order.
fn ranked_metrics(app: &App) -> Vec<String> {
    let s = app.session().unwrap();
    let r = metalab::tui::results::rank(s, app.task_accuracy);
    r.rows
        .iter()
        .map(|row| metalab::tui::view::theme::mean_ci(row.value.as_ref().unwrap()))
        .collect()
}

#[test]
fn compare_ten_runs_with_a_rerun_and_wide_intervals() {
    let p = project();
    let mut app = fixtures::compare_runs_app(p.path(), 10);
    let want = session_metrics(&app);
    let ranked = ranked_metrics(&app);
    let s = screen(&app, 120, 40);
    write_snapshot("compare_ten_runs_120x40.txt", &s);
    assert!(assert_metrics_whole(&s, &want) >= 10, "{s}");
    // All ten rows, sorted: best first, the overlapping ones flagged.
    let mut at = 0;
    for m in &ranked {
        let i = s[at..]
            .find(m.as_str())
            .unwrap_or_else(|| panic!("{m} missing or out of order:\n{s}"));
        at += i;
    }
    assert!(s.contains("test @600, 100 tasks"), "{s}");
    assert!(s.contains("★ best") && s.contains("≈ best"), "{s}");
    assert!(
        s.contains("test @600"),
        "the evaluation's iteration is stated:\n{s}"
    );
    // The rerun and its original are told apart, in the table and the legend.
    for id in ["#3fa2", "#91c0"] {
        assert!(
            s.matches(id).count() >= 2,
            "{id} should be in legend and table:\n{s}"
        );
    }
    // The train overlay mixes algorithms: it says its losses are not comparable.
    assert!(s.contains("⚠"), "{s}");
    assert!(s.contains("config diff"), "{s}");

    let s = screen(&app, 80, 24);
    write_snapshot("compare_ten_runs_80x24.txt", &s);
    assert!(assert_metrics_whole(&s, &want) >= 3, "{s}");
    assert!(s.contains("of 10"), "the table says it scrolls:\n{s}");
    assert!(s.contains("#3fa2") && s.contains("#91c0"), "{s}");
    // Scroll to the end of the ranking: the worst run's row comes into view.
    update(&mut app, Msg::Key(key('G')));
    let s = screen(&app, 80, 24);
    write_snapshot("compare_ten_runs_80x24_end.txt", &s);
    assert!(s.contains(ranked.last().unwrap().as_str()), "{s}");
    assert_metrics_whole(&s, &want);

    // The config diff, full view, side by side.
    update(&mut app, Msg::Key(key('D')));
    let s = screen(&app, 80, 24);
    write_snapshot("compare_ten_runs_diff_80x24.txt", &s);
    assert!(
        s.contains("train.inner_steps") && s.contains("Reptile.epsilon"),
        "{s}"
    );

    for (w, h) in [(40, 12), (60, 15)] {
        let s = screen(&app, w, h);
        assert_metrics_whole(&s, &want);
    }
}

#[test]
fn monitor_ten_long_named_arms() {
    let p = project();
    let names = [
        "maml-second-order-long-name",
        "fomaml-first-order-long-name",
        "reptile",
        "multitask",
        "anil",
        "metasgd",
        "maml-inner-five",
        "fomaml-inner-five",
        "reptile-adam",
        "metasgd-lr-small",
    ];
    let mut app = fixtures::many_arms_live_app(p.path(), &names, 300);
    let want = session_metrics(&app);
    for (w, h) in [(120, 40), (80, 24), (40, 12)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("monitor_ten_arms_{w}x{h}.txt"), &s);
        let n = assert_metrics_whole(&s, &want);
        assert!(n >= 3, "{s}");
    }
    let s = screen(&app, 120, 40);
    assert!(s.contains("maml-second-order-long-name"), "{s}");
    // Scroll the arms table to the last arm.
    update(&mut app, Msg::Key(key('G')));
    let s = screen(&app, 80, 24);
    assert!(s.contains("metasgd-lr-small"), "{s}");
    assert_metrics_whole(&s, &want);
    app.screen = Screen::Compare;
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("compare_ten_arms_{w}x{h}.txt"), &s);
        assert!(s.contains("validation @300"), "{s}");
        assert_metrics_whole(&s, &want);
    }
}

#[test]
fn a_single_evaluation_is_a_marker_with_whiskers_on_a_round_axis() {
    let p = project();
    let mut app = App::new(p.path());
    app.live = Some(metalab::tui::session::Session::for_experiment(
        &fixtures::experiment(),
    ));
    app.screen = Screen::Monitor;
    update(
        &mut app,
        Msg::Engine(fixtures::started(0, "maml", 600, false)),
    );
    for ev in fixtures::training(0, 300, 300, false) {
        update(&mut app, Msg::Engine(ev));
    }
    let s = screen(&app, 120, 40);
    write_snapshot("monitor_single_eval_120x40.txt", &s);
    assert!(!s.contains("299") && !s.contains("301"), "{s}");
    assert!(
        s.contains('●') && (s.contains('┬') || s.contains('┴')),
        "{s}"
    );
    assert_metrics_whole(&s, &session_metrics(&app));
}

#[test]
fn chart_options_smoothing_log_cursor_time() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 400, false);
    for k in ['e', 'e', 'y', '.', '<', '<'] {
        update(&mut app, Msg::Key(key(k)));
    }
    let s = screen(&app, 120, 40);
    write_snapshot("monitor_options_120x40.txt", &s);
    assert!(s.contains("EMA 0.8") && s.contains("log y"), "{s}");
    assert!(
        s.contains("at ") && s.contains('┊'),
        "cursor and its readout:\n{s}"
    );
    assert_metrics_whole(&s, &session_metrics(&app));
    update(&mut app, Msg::Key(key('t')));
    update(&mut app, Msg::Key(key('f')));
    let s = screen(&app, 120, 40);
    write_snapshot("monitor_options_time_recent_120x40.txt", &s);
    assert!(s.contains("x: time") && s.contains("recent"), "{s}");
    app.screen = Screen::Compare;
    let s = screen(&app, 120, 40);
    write_snapshot("compare_options_120x40.txt", &s);
    // At 80 columns the titles keep the smoothing and log flags (issue 18 §4).
    let narrow = screen(&app, 80, 24);
    assert!(narrow.contains("EMA .8 log"), "{narrow}");
    assert_metrics_whole(&s, &session_metrics(&app));
}

#[test]
fn loss_axes_stay_at_or_above_zero_with_round_ticks() {
    let p = project();
    let app = fixtures::compare_runs_app(p.path(), 10);
    let mut app = app;
    app.screen = Screen::Monitor;
    // The widest interval (fomaml of B, 2.1 ± 0.9 scaled) would take a plain axis below zero.
    app.arm_sel = 9;
    let s = screen(&app, 120, 40);
    write_snapshot("monitor_wide_ci_120x40.txt", &s);
    for line in s.lines() {
        for (i, _) in line.match_indices('┤') {
            let label = line[..i].rsplit(['│', ' ']).next().unwrap_or("");
            assert!(!label.starts_with('-'), "negative tick `{label}`:\n{s}");
        }
    }
    // At least five labelled ticks on the evaluation panel (right half).
    let ticks = s
        .lines()
        .filter(|l| l.chars().skip(60).collect::<String>().contains('┤'))
        .count();
    assert!(ticks >= 5, "{ticks} ticks:\n{s}");
}

fn key(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c))
}

fn enter() -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Enter)
}
