//! The adaptation screen (A in the Monitor): loss/accuracy against adaptation steps for every
//! family, and for regression the tracked task's true curve, support points and predictions
//! before and after adaptation. Whole-screen snapshots at 120×40 and 80×24 from canned events.

mod tui_common;

use crossterm::event::{KeyCode, KeyEvent};
use metalab::engine::{ClassFit, EngineEvent, TaskFit};
use metalab::metrics::QueryScore;
use metalab::tui::app::Screen;
use metalab::tui::dispatch as update;
use metalab::tui::view::theme;
use metalab::tui::{fixtures, App, Msg};
use tui_common::{code, project, screen, write_snapshot};

/// A tracked sine task as the engine reports it: the prediction moves from a flat guess at
/// step 0 to near the true curve at step `k`.
fn fit(task: usize, k: usize, amplitude: f32) -> TaskFit {
    let x: Vec<f32> = (0..100).map(|i| -5.0 + 10.0 * i as f32 / 99.0).collect();
    let phase = 0.7 * task as f32;
    let truth: Vec<f32> = x.iter().map(|&x| amplitude * (x - phase).sin()).collect();
    let support_x: Vec<f32> = (0..10).map(|i| -4.5 + i as f32).collect();
    let support_y = support_x
        .iter()
        .map(|&x| amplitude * (x - phase).sin())
        .collect();
    let predictions = (0..=k)
        .map(|s| {
            let w = 1.0 - (-(s as f32) / 2.0).exp();
            x.iter()
                .zip(&truth)
                .map(|(&x, &t)| (1.0 - w) * 0.3 * x.sin() + w * 0.95 * t)
                .collect()
        })
        .collect();
    TaskFit {
        iteration: 400,
        task,
        x,
        truth,
        support_x,
        support_y,
        predictions,
    }
}

fn regression_app(p: &std::path::Path) -> App {
    let mut app = fixtures::live_app(p, 400, false);
    for arm in 0..2 {
        for task in 0..3 {
            let fit = fit(task, 10, 2.0 + task as f32);
            update(&mut app, Msg::Engine(EngineEvent::Fit { arm, fit }));
        }
    }
    update(&mut app, Msg::Key(KeyEvent::from(KeyCode::Char('A'))));
    app
}

/// Every per-step value of the table's columns appears whole, with its ±.
fn assert_whole_numbers(app: &App, s: &str, accuracy: bool) {
    let sess = app.session().unwrap();
    for a in &sess.arms {
        let e = a.headline_eval().unwrap();
        let last = e.per_step.last().unwrap();
        let text = if accuracy {
            theme::pct_ci(last.accuracy.as_ref().unwrap())
        } else {
            theme::mean_ci(&last.loss)
        };
        assert!(s.contains(&text), "{} missing:\n{s}", text);
        let first = if accuracy {
            theme::pct_ci(e.per_step[0].accuracy.as_ref().unwrap())
        } else {
            theme::mean_ci(&e.per_step[0].loss)
        };
        assert!(s.contains(&first), "{first} missing:\n{s}");
    }
}

#[test]
fn regression_shows_the_maml_figure_and_the_step_curve() {
    let p = project();
    let app = regression_app(p.path());
    assert_eq!(app.screen, Screen::Adaptation);
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("adaptation_regression_{w}x{h}.txt"), &s);
        assert!(s.contains("tracked task 1 of 3"), "{s}");
        assert!(s.contains("step 0") && s.contains("step 10"), "{s}");
        assert!(s.contains("support (10)"), "{s}");
        assert!(s.contains("true"), "{s}");
        assert!(s.contains("MSE vs adaptation steps"), "{s}");
        assert!(s.contains("● maml") && s.contains("● reptile"), "{s}");
        assert!(s.contains('•'), "support markers:\n{s}");
        assert!(
            s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
            "{s}"
        );
        assert!(!s.contains("accuracy"), "{s}");
        assert_whole_numbers(&app, &s, false);
    }
    // What adaptation bought on the task, in words at 120 columns, in short at 80.
    let s = screen(&app, 120, 40);
    assert!(s.contains("MSE to the true curve"), "{s}");
    assert!(s.contains("after 10 steps"), "{s}");
    assert!(screen(&app, 80, 24).contains("(10 steps)"));
}

#[test]
fn keys_select_task_and_arm_and_leave_to_where_it_was_opened() {
    let p = project();
    let mut app = regression_app(p.path());
    update(&mut app, code(KeyCode::Down));
    assert!(screen(&app, 120, 40).contains("tracked task 2 of 3"));
    for _ in 0..5 {
        update(&mut app, code(KeyCode::Down));
    }
    assert!(screen(&app, 120, 40).contains("tracked task 3 of 3"));
    update(&mut app, code(KeyCode::Right));
    assert_eq!(app.arm_sel, 1);
    assert!(screen(&app, 120, 40).contains("▶ ● reptile"));
    update(&mut app, code(KeyCode::Char('q')));
    assert_eq!(app.screen, Screen::Monitor);
    // From Compare, back to Compare.
    update(&mut app, code(KeyCode::Char('c')));
    update(&mut app, code(KeyCode::Char('A')));
    assert_eq!(app.screen, Screen::Adaptation);
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Compare);
}

#[test]
fn classification_shows_accuracy_per_step_and_a_toggles_loss() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 300, true);
    update(&mut app, code(KeyCode::Char('A')));
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("adaptation_classification_{w}x{h}.txt"), &s);
        assert!(s.contains("accuracy vs adaptation steps"), "{s}");
        assert!(
            !s.contains("tracked task"),
            "no class fit has arrived:\n{s}"
        );
        assert!(!s.contains("MSE"), "{s}");
        assert_whole_numbers(&app, &s, true);
    }
    update(&mut app, code(KeyCode::Char('a')));
    let s = screen(&app, 120, 40);
    assert!(s.contains("loss vs adaptation steps"), "{s}");
    assert_whole_numbers(&app, &s, false);
    // Nothing to page through yet: said, not silent.
    update(&mut app, code(KeyCode::Down));
    assert!(tui_common::status(&app).contains("no tracked-task results yet"));
}

#[test]
fn before_any_evaluation_nothing_breaks() {
    let p = project();
    let mut app = App::new(p.path());
    app.live = Some(metalab::tui::session::Session::for_experiment(
        &fixtures::experiment(),
    ));
    app.screen = Screen::Monitor;
    update(&mut app, code(KeyCode::Char('A')));
    update(&mut app, code(KeyCode::Down));
    update(&mut app, code(KeyCode::Left));
    for (w, h) in [(120, 40), (80, 24), (40, 12)] {
        let s = screen(&app, w, h);
        assert!(s.contains("waiting for the first") || h < 20, "{s}");
    }
    assert!(screen(&app, 120, 40).contains("no fit yet"));
}

/// Issue 18 §4: a step-0 loss far above the rest (234) no longer squashes the chart: the axis
/// fits the adapted steps, on round ticks from 0, and says step 0 is above it; `y` answers.
#[test]
fn an_outlying_step_zero_is_put_above_a_round_axis() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 300, true);
    for a in &mut app.live.as_mut().unwrap().arms {
        if let Some(e) = a.last_eval.as_mut() {
            e.per_step[0].loss.mean = 234.0;
        }
    }
    update(&mut app, code(KeyCode::Char('A')));
    update(&mut app, code(KeyCode::Char('a')));
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("adaptation_step0_outlier_{w}x{h}.txt"), &s);
        assert!(s.contains("step 0 above the axis"), "{s}");
        assert!(!s.contains("e-"), "no exponent ticks near 0:\n{s}");
        // The y labels are evenly stepped round numbers starting at 0.
        let labels: Vec<f64> = s
            .lines()
            .filter_map(|l| l.split('│').nth(1)?.trim().parse().ok())
            .collect();
        assert!(labels.len() >= 3, "{labels:?}\n{s}");
        assert!(labels.contains(&0.0), "{labels:?}");
    }
    update(&mut app, code(KeyCode::Char('y')));
    let (msg, _) = app.status.clone().unwrap();
    assert!(msg.contains("log y"), "{msg}");
}

/// A tracked 5-way task as the engine reports it: accuracy climbs from chance over `k` steps.
fn class_fit(task: usize, k: usize) -> ClassFit {
    ClassFit {
        iteration: 300,
        task,
        classes: (0..5)
            .map(|c| format!("images_background/Alphabet_{task:02}/character{:02}", c + 1))
            .collect(),
        support_labels: vec![0, 1, 2, 3, 4],
        steps: (0..=k)
            .map(|s| QueryScore {
                loss: 1.6 - 0.1 * s as f64 - 0.01 * task as f64,
                accuracy: Some(0.2 + 0.07 * s as f64),
            })
            .collect(),
    }
}

/// Issue 18 §4: classification's per-task view — each tracked task's query loss and accuracy
/// after every adaptation step, and which classes its support images show; [ ] page tasks.
#[test]
fn classification_shows_a_tracked_tasks_steps_and_support_classes() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 300, true);
    for arm in 0..2 {
        for task in 0..3 {
            let fit = class_fit(task, 5);
            update(&mut app, Msg::Engine(EngineEvent::ClassFit { arm, fit }));
        }
    }
    update(&mut app, code(KeyCode::Char('A')));
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("adaptation_class_fit_{w}x{h}.txt"), &s);
        assert!(s.contains("tracked task 1 of 3"), "{s}");
        assert!(s.contains("query loss") && s.contains("accuracy"), "{s}");
        // Step 0 at chance and step 5 adapted, both whole.
        assert!(s.contains("20.0%") && s.contains("55.0%"), "{s}");
        assert!(s.contains("1.6") && s.contains("1.1"), "{s}");
        assert!(s.contains("5 classes (chance 20%)"), "{s}");
    }
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("×1 images_background/Alphabet_00/character01"),
        "{s}"
    );
    assert!(
        s.contains("×1 images_background/Alphabet_00/character05"),
        "{s}"
    );
    update(&mut app, code(KeyCode::Down));
    let s = screen(&app, 120, 40);
    assert!(s.contains("tracked task 2 of 3"), "{s}");
    assert!(s.contains("Alphabet_01/character01"), "{s}");
}

/// Issue 18 §4 at 80 columns: Omniglot's long alphabet names are shortened, not cut at the
/// end: the shared `images_background/` goes, the alphabet is abbreviated with `…`, and every
/// class keeps its whole character name.
#[test]
fn class_names_stay_readable_at_80_columns() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 300, true);
    let alphabets = [
        "Ojibwe_(Canadian_Aboriginal_Syllabics)",
        "Japanese_(katakana)",
        "Japanese_(katakana)",
        "Blackfoot_(Canadian_Aboriginal_Syllabics)",
        "Bengali",
    ];
    let mut fit = class_fit(0, 5);
    fit.classes = alphabets
        .iter()
        .enumerate()
        .map(|(i, a)| format!("images_background/{a}/character{:02}", 5 * i + 3))
        .collect();
    for arm in 0..2 {
        let fit = fit.clone();
        update(&mut app, Msg::Engine(EngineEvent::ClassFit { arm, fit }));
    }
    update(&mut app, code(KeyCode::Char('A')));
    let s = screen(&app, 80, 24);
    for (i, a) in alphabets.iter().enumerate() {
        let character = format!("/character{:02}", 5 * i + 3);
        let row = s
            .lines()
            .find(|l| l.contains(&format!("{i:>3} ×1 ")))
            .unwrap_or_else(|| panic!("no row for class {i}\n{s}"));
        assert!(row.contains(&character), "character cut:\n{row}\n{s}");
        assert!(!row.contains("images_background"), "{row}");
        // The alphabet: whole, or its start with `…` right before the character.
        let short = &a[..4];
        assert!(
            row.contains(a) || row.contains(&format!("…{character}")),
            "{row}"
        );
        assert!(row.contains(short), "{row}");
    }
    assert!(s.contains("Bengali/character23"), "{s}");
    assert!(s.contains("Ojibwe_(Canadian_Abo"), "{s}");
}

/// A saved classification run's `class_fits.json` is read back into the view.
#[test]
fn a_saved_runs_class_fits_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let fits = vec![class_fit(0, 3), class_fit(1, 3)];
    std::fs::write(
        dir.path().join(metalab::runs::CLASS_FITS),
        serde_json::to_string(&fits).unwrap(),
    )
    .unwrap();
    assert_eq!(metalab::runs::load_class_fits(dir.path()), fits);
    let m = metalab::runs::load_metrics(dir.path()).unwrap();
    let a = metalab::tui::session::ArmView::from_metrics(
        "a",
        "maml",
        &metalab::runs::RunStatus::Finished,
        &m,
    );
    assert_eq!(a.class_fits, fits);
    assert_eq!(a.tracked_views(), 2);
}
