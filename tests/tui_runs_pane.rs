//! The Runs pane with hand-made run folders (no engine): results and their CIs never cut at
//! 80×24 and 120×40, long names elided in the middle, the time of day shown, the `/` filter,
//! sorting by result, notes and tags, "rerun of"/"resumed from", bulk delete, the frozen
//! config view, and the launch queue.

mod tui_common;

use std::path::Path;

use crossterm::event::KeyCode;
use metalab::engine::messages::EngineEvent;
use metalab::tui::app::{Effect, Modal, Pending, Screen};
use metalab::tui::fixtures;
// Messages go through `dispatch`, as the runtime sends them: `update`, then the disk work it asks for.
use metalab::tui::dispatch as update;
use metalab::tui::{App, Msg};
use serde_json::json;
use tui_common::{code, k, project, screen, write_snapshot};

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        update(app, k(c));
    }
}

/// (mean, ci95, accuracy?) of a final result.
type Outcome = (f64, f64, bool);

/// What a hand-made run records.
struct Fake<'a> {
    id: &'a str,
    experiment: &'a str,
    arm: &'a str,
    result: Option<Outcome>,
    status: &'a str,
    started: u64,
    rerun_of: Option<&'a str>,
    resumed_at: &'a [usize],
}

impl Default for Fake<'_> {
    fn default() -> Self {
        Fake {
            id: "r",
            experiment: "sinusoid-maml",
            arm: "maml",
            result: Some((0.5, 0.05, false)),
            status: "Finished",
            // 2026-12-02 00:37:00 UTC
            started: 1_796_172_220,
            rerun_of: None,
            resumed_at: &[],
        }
    }
}

/// Write `runs/<id>/` with a run.json and a config.ron, as the engine would.
fn write_run(root: &Path, f: &Fake) {
    let dir = root.join("runs").join(f.id);
    std::fs::create_dir_all(&dir).unwrap();
    let mci = |m: f64, c: f64| json!({"mean": m, "ci95": c, "n": 600});
    let (final_eval, headline) = match f.result {
        Some((m, c, acc)) => (
            json!({
                "iteration": 200, "split": "test",
                "loss": mci(if acc { 0.3 } else { m }, c),
                "accuracy": if acc { mci(m, c) } else { serde_json::Value::Null },
                "loss_before": mci(3.0, 0.2), "inner_steps": 10, "inner_lr": 0.01
            }),
            json!(if acc {
                format!("acc {:.1}% ± {:.1}", 100.0 * m, 100.0 * c)
            } else {
                format!("MSE {m:.3} ± {c:.3}")
            }),
        ),
        None => (serde_json::Value::Null, serde_json::Value::Null),
    };
    let (status, pid) = if f.status == "Running" {
        // Our own pid: a run this very process is training, so it must not be deleted.
        ("Running", std::process::id())
    } else {
        (f.status, 1)
    };
    let meta = json!({
        "id": f.id, "experiment": f.experiment, "arm": f.arm, "algorithm": "MAML (2nd order)",
        "status": status, "started_unix": f.started, "updated_unix": f.started + 60,
        "iteration": 200, "total_iterations": 200, "seed": 1, "threads": 1, "device": "Cpu",
        "params": 1761, "family": "Sinusoid regression", "class_split": null,
        "protocol": {
            "test_tasks": 600, "periodic_tasks": 100, "inner_steps": 10, "inner_lr": 0.01,
            "final_split": "test", "periodic_split": "validation", "batch_norm": "none",
            "adaptation": "sgd", "description": "10 SGD steps"
        },
        "final_eval": final_eval, "headline": headline, "seconds": 1.0, "pid": pid,
        "metalab_version": "0.1.0", "source": null, "rerun_of": f.rerun_of,
        "host": metalab::runs::local_host(), "device_detail": "test", "variant": null,
        "resumed_at": f.resumed_at,
    });
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_string_pretty(&meta).unwrap(),
    )
    .unwrap();
    let exp = fixtures::experiment();
    let one = exp.with_only_arm(&exp.arms[0].name).unwrap();
    std::fs::write(dir.join("config.ron"), one.to_ron()).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), "").unwrap();
}

const LONG: &str = "omniglot-metric-vs-gradient-20way-heldout-alphabets";

/// Twelve runs: long names, a rerun, a resumed run, wide CIs, accuracies and losses.
fn many_runs(root: &Path) -> Vec<String> {
    let mut headlines = vec![];
    let specs: Vec<(String, &str, &str, Option<Outcome>)> = (0..12)
        .map(|i| {
            let (exp, arm) = match i % 4 {
                0 => (LONG, "protonet-with-a-long-arm-name"),
                1 => ("sinusoid-compare", "fomaml"),
                2 => ("sinusoid-compare", "maml"),
                _ => (LONG, "matching"),
            };
            let result = match i % 3 {
                0 => Some((1234.567 + i as f64, 987.654, false)),
                1 => Some((0.931 - i as f64 * 0.01, 0.106, true)),
                _ => Some((0.3481 + i as f64 * 0.01, 0.0422, false)),
            };
            (format!("run-{i:02}"), exp, arm, result)
        })
        .collect();
    for (i, (id, exp, arm, result)) in specs.iter().enumerate() {
        let f = Fake {
            id,
            experiment: exp,
            arm,
            result: *result,
            started: Fake::default().started + 3600 * i as u64,
            rerun_of: (i == 5).then_some("run-01"),
            resumed_at: if i == 7 { &[300] } else { &[] },
            ..Default::default()
        };
        write_run(root, &f);
        let (m, c, acc) = result.unwrap();
        headlines.push(if acc {
            format!("acc {:.1}% ± {:.1}", 100.0 * m, 100.0 * c)
        } else {
            format!("MSE {m:.3} ± {c:.3}")
        });
    }
    headlines
}

fn runs_app(root: &Path) -> App {
    let mut app = App::new(root);
    update(&mut app, k('2'));
    assert_eq!(app.screen, Screen::Runs);
    app
}

#[test]
fn every_result_appears_whole_with_its_ci_at_80x24_and_120x40() {
    let p = project();
    let headlines = many_runs(p.path());
    let mut app = runs_app(p.path());
    assert_eq!(app.runs.len(), 12);
    for (w, h) in [(80, 24), (120, 40)] {
        for sel in [0, 11] {
            app.run_sel = sel;
            let s = screen(&app, w, h);
            if sel == 0 {
                write_snapshot(&format!("runs_{w}x{h}.txt"), &s);
            }
            // Every run's row (found by its time of day) carries its whole result and CI.
            for r in &app.runs {
                let want = &headlines[r.id[4..].parse::<usize>().unwrap()];
                let row = s
                    .lines()
                    .find(|l| l.contains(&time_of_day(r.started_unix)))
                    .unwrap_or_else(|| panic!("{w}x{h}: no row for {}\n{s}", r.id));
                assert!(
                    row.contains(want.as_str()),
                    "{w}x{h}: `{want}` cut in\n{row}\n{s}"
                );
            }
            // Long names are elided in the middle (start and end kept), never cut at the end.
            assert!(s.contains('…'), "{s}");
            assert!(s.contains("alphabets") || w < 100, "{s}");
        }
    }
}

/// "HH:MM" of a unix time, as the pane writes it.
fn time_of_day(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

#[test]
fn rerun_and_resume_origins_are_in_the_details() {
    let p = project();
    many_runs(p.path());
    let mut app = runs_app(p.path());
    app.run_sel = app.runs.iter().position(|r| r.id == "run-05").unwrap();
    let s = screen(&app, 120, 40);
    assert!(s.contains("rerun of run-01"), "{s}");
    app.run_sel = app.runs.iter().position(|r| r.id == "run-07").unwrap();
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("resumed from the checkpoint at iteration 300"),
        "{s}"
    );
}

#[test]
fn slash_filters_incrementally_and_esc_clears_without_quitting() {
    let p = project();
    many_runs(p.path());
    let mut app = runs_app(p.path());
    update(&mut app, k('/'));
    typed(&mut app, "fomaml");
    assert_eq!(app.runs.len(), 3, "{:?}", app.run_filter);
    assert!(app.runs.iter().all(|r| r.arm == "fomaml"));
    let s = screen(&app, 80, 24);
    assert!(s.contains("3 of 12"), "{s}");
    assert!(s.contains("/ fomaml"), "{s}");
    // Backspace widens it again, a word of the experiment narrows it.
    for _ in 0.."fomaml".len() {
        update(&mut app, code(KeyCode::Backspace));
    }
    assert_eq!(app.runs.len(), 12);
    typed(&mut app, "sinusoid maml");
    assert!(app.runs.iter().all(|r| r.experiment == "sinusoid-compare"));
    assert_eq!(app.runs.len(), 6);
    // Enter keeps the filter; keys act on the list again; Esc clears it and never quits.
    update(&mut app, code(KeyCode::Enter));
    assert!(!app.run_filter.editing);
    let sel = app.run_sel;
    update(&mut app, k('j'));
    assert_eq!(app.run_sel, sel + 1);
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.runs.len(), 12);
    assert!(!app.quit);
    update(&mut app, code(KeyCode::Esc));
    assert!(!app.quit && app.modal.is_none());
    assert!(app.status.as_ref().unwrap().0.contains("q quits"));
    // Status words filter too.
    update(&mut app, k('/'));
    typed(&mut app, "finished");
    assert_eq!(app.runs.len(), 12);
    update(&mut app, code(KeyCode::Esc));
}

#[test]
fn o_sorts_by_result_then_back_by_date() {
    let p = project();
    many_runs(p.path());
    let mut app = runs_app(p.path());
    let by_date: Vec<String> = app.runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(by_date[0], "run-11", "newest first");
    update(&mut app, k('o'));
    let scores: Vec<_> = app.runs.iter().map(|r| r.extra.score.unwrap()).collect();
    // Accuracies first, best first; then losses, lowest first.
    let acc: Vec<f64> = scores
        .iter()
        .filter(|s| s.accuracy)
        .map(|s| s.value)
        .collect();
    let loss: Vec<f64> = scores
        .iter()
        .filter(|s| !s.accuracy)
        .map(|s| s.value)
        .collect();
    assert!(scores[..acc.len()].iter().all(|s| s.accuracy));
    assert!(acc.windows(2).all(|w| w[0] >= w[1]), "{acc:?}");
    assert!(loss.windows(2).all(|w| w[0] <= w[1]), "{loss:?}");
    assert!(screen(&app, 80, 24).contains("by result"));
    update(&mut app, k('o'));
    let again: Vec<String> = app.runs.iter().map(|r| r.id.clone()).collect();
    assert_eq!(again, by_date);
}

#[test]
fn a_note_with_tags_is_saved_in_the_run_folder_shown_and_filterable() {
    let p = project();
    many_runs(p.path());
    let mut app = runs_app(p.path());
    let id = app.runs[app.run_sel].id.clone();
    update(&mut app, k('t'));
    assert!(matches!(app.modal, Some(Modal::Input { .. })));
    typed(&mut app, "lr too high #baseline");
    update(&mut app, code(KeyCode::Enter));
    assert!(app.modal.is_none());
    let file = p.path().join("runs").join(&id).join("notes.json");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["note"], "lr too high");
    assert_eq!(saved["tags"], json!(["baseline"]));
    let s = screen(&app, 120, 40);
    assert!(s.contains("#baseline"), "{s}");
    assert!(s.contains("lr too high"), "{s}");
    // Editing starts from what is there; Esc leaves it unchanged.
    update(&mut app, k('t'));
    match &app.modal {
        Some(Modal::Input { text, .. }) => assert_eq!(text, "lr too high #baseline"),
        m => panic!("{m:?}"),
    }
    update(&mut app, code(KeyCode::Esc));
    assert!(file.exists());
    update(&mut app, k('/'));
    typed(&mut app, "#base");
    assert_eq!(app.runs.len(), 1);
    assert_eq!(app.runs[0].id, id);
}

#[test]
fn d_with_marks_deletes_them_after_one_question_and_keeps_running_ones() {
    let p = project();
    many_runs(p.path());
    write_run(
        p.path(),
        &Fake {
            id: "run-live",
            status: "Running",
            started: Fake::default().started + 100_000,
            ..Default::default()
        },
    );
    let mut app = runs_app(p.path());
    assert_eq!(app.runs[0].id, "run-live");
    // Mark the running one and two more.
    for _ in 0..3 {
        update(&mut app, k(' '));
    }
    assert_eq!(app.marked.len(), 3);
    // Back onto a marked run: d then means the marked ones, and the dialog names each.
    update(&mut app, k('k'));
    update(&mut app, k('d'));
    match &app.modal {
        Some(Modal::Confirm { prompt, .. }) => {
            assert!(prompt.contains("3 marked runs"), "{prompt}");
            for id in &app.marked {
                assert!(prompt.contains(id.as_str()), "{prompt}");
            }
        }
        m => panic!("{m:?}"),
    }
    // Enter is not yes.
    update(&mut app, code(KeyCode::Enter));
    assert!(matches!(app.modal, Some(Modal::Confirm { .. })));
    assert_eq!(app.all_runs.len(), 13);
    update(&mut app, k('y'));
    assert_eq!(app.all_runs.len(), 11, "two deleted, the running one kept");
    assert!(app.runs.iter().any(|r| r.id == "run-live"));
    let (msg, _) = app.status.clone().unwrap();
    assert!(msg.contains("deleted 2 runs"), "{msg}");
    assert!(msg.contains("still training"), "{msg}");
    assert_eq!(app.marked.len(), 1, "the refused one stays marked");
}

#[test]
fn v_shows_the_frozen_config_read_only_and_scrolls() {
    let p = project();
    many_runs(p.path());
    let mut app = runs_app(p.path());
    update(&mut app, k('v'));
    let Some(Modal::Text { text, .. }) = &app.modal else {
        panic!("{:?} {:?}", app.modal, app.status)
    };
    assert!(text.contains("Experiment("));
    let s = screen(&app, 80, 24);
    assert!(s.contains("frozen config.ron of"), "{s}");
    assert!(s.contains("read-only"), "{s}");
    assert!(s.contains("lines 1-"), "{s}");
    update(&mut app, code(KeyCode::PageDown));
    let Some(Modal::Text { scroll, .. }) = &app.modal else {
        panic!()
    };
    assert!(*scroll > 0);
    let _ = screen(&app, 40, 12);
    update(&mut app, code(KeyCode::Esc));
    assert!(app.modal.is_none());
    assert_eq!(app.screen, Screen::Runs);
}

#[test]
fn launching_while_training_queues_and_the_next_starts_when_it_finishes() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 20, false);
    app.screen = Screen::Experiments;
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "demo")
        .unwrap();
    assert!(app.training());
    update(&mut app, k('r'));
    assert_eq!(app.queue.len(), 1);
    assert!(app.effects.is_empty(), "{:?}", app.effects);
    assert!(
        app.status.as_ref().unwrap().0.starts_with("queued (2nd)"),
        "{:?}",
        app.status
    );
    update(&mut app, k('r'));
    assert!(app.status.as_ref().unwrap().0.starts_with("queued (3rd)"));
    // The queue is visible.
    let s = screen(&app, 80, 24);
    assert!(s.contains("2 queued"), "{s}");
    // The current experiment ends: the first queued one starts.
    for arm in 0..2 {
        update(
            &mut app,
            Msg::Engine(EngineEvent::Finished {
                arm,
                iteration: 40,
                stopped: false,
                final_eval: None,
                seconds: 1.0,
            }),
        );
    }
    assert!(
        matches!(app.effects.as_slice(), [Effect::Launch { .. }]),
        "{:?}",
        app.effects
    );
    assert_eq!(app.queue.len(), 1);
    assert!(app.training(), "the new session is live");
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .0
        .contains("started queued demo"));
}

#[test]
fn a_failed_launch_does_not_stall_the_queue() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 20, false);
    app.screen = Screen::Experiments;
    app.exp_sel = app
        .experiments
        .iter()
        .position(|e| e.name == "demo")
        .unwrap();
    update(&mut app, k('r'));
    assert_eq!(app.queue.len(), 1);
    update(&mut app, Msg::LaunchFailed("no such device".into()));
    assert!(app.queue.is_empty());
    assert!(app.training());
    let msg = &app.status.as_ref().unwrap().0;
    assert!(
        msg.contains("no such device") && msg.contains("started queued demo"),
        "{msg}"
    );
}

/// Issue 18 §4: marks are cleared once used and by `u`; `d` on an unmarked run deletes that
/// run only (the dialog names it); a cancelled delete says so instead of a stale "done".
#[test]
fn marks_are_used_once_and_d_acts_on_what_its_dialog_names() {
    let p = project();
    many_runs(p.path());
    let mut app = runs_app(p.path());
    let total = app.all_runs.len();
    for _ in 0..4 {
        update(&mut app, k(' '));
    }
    assert_eq!(app.marked.len(), 4);
    let under = app.runs[app.run_sel].id.clone();
    assert!(!app.marked.contains(&under));
    update(&mut app, k('d'));
    match &app.modal {
        Some(Modal::Confirm { prompt, then }) => {
            assert!(prompt.contains(&under), "{prompt}");
            assert!(prompt.contains("4 marked runs elsewhere stay"), "{prompt}");
            assert_eq!(*then, Pending::DeleteRun(under.clone()));
        }
        m => panic!("{m:?}"),
    }
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.all_runs.len(), total);
    let (msg, _) = app.status.clone().unwrap();
    assert!(msg.contains("nothing deleted"), "{msg}");
    update(&mut app, k('d'));
    update(&mut app, k('y'));
    assert_eq!(app.all_runs.len(), total - 1);
    assert_eq!(app.marked.len(), 4, "the marked runs are untouched");
    // u clears the marks; c uses them and clears them too.
    update(&mut app, k('u'));
    assert!(app.marked.is_empty());
    update(&mut app, k('g'));
    update(&mut app, k(' '));
    update(&mut app, k(' '));
    update(&mut app, k('c'));
    assert_eq!(app.screen, Screen::Compare);
    assert!(app.marked.is_empty(), "used by c");
}

/// Issue 18 §4: a stopped run shows its last validation (labelled as such), and the details
/// say where and how a run ran.
#[test]
fn a_stopped_run_shows_its_last_validation_and_details_say_where_it_ran() {
    let p = project();
    write_run(
        p.path(),
        &Fake {
            id: "stopped-run",
            status: "Stopped",
            result: None,
            ..Default::default()
        },
    );
    let eval = |it: usize, m: f64| {
        json!({"kind": "eval", "t": 1.0, "iteration": it, "split": "validation",
            "loss": {"mean": m, "ci95": 0.031, "n": 100}, "accuracy": null,
            "loss_before": {"mean": 3.0, "ci95": 0.2, "n": 100},
            "inner_steps": 10, "inner_lr": 0.01})
        .to_string()
    };
    std::fs::write(
        p.path().join("runs/stopped-run/metrics.jsonl"),
        format!("{}\n{}\n", eval(100, 0.9), eval(200, 0.412)),
    )
    .unwrap();
    let app = runs_app(p.path());
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&app, w, h);
        write_snapshot(&format!("runs_stopped_{w}x{h}.txt"), &s);
        assert!(s.contains("val MSE 0.412 ± 0.031 @200"), "{s}");
        if w >= 120 {
            assert!(
                s.contains("last validation: stopped before its test"),
                "{s}"
            );
            assert!(
                s.contains("seed 1 · cpu (test) · 1 thread · on this machine"),
                "{s}"
            );
            assert!(s.contains("1s of training"), "{s}");
        }
    }
}
