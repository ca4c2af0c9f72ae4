//! Canned experiments and engine events: for tests, snapshots and `metalab bench`.

use std::path::{Path, PathBuf};

use crate::engine::messages::{EngineEvent, EvalResult, TaskPoint, TrainPoint};
use crate::experiment::{parse_str, Experiment};
use crate::metrics::StepResult;
use crate::stats::MeanCi;
use crate::tasks::Split;

use super::app::{App, Screen};
use super::session::Session;
use super::update::update;
use super::Msg;

/// A valid two-arm sinusoid experiment (the new-experiment template).
pub fn experiment() -> Experiment {
    parse_str(&super::catalog::template("demo"), Path::new("demo.ron")).expect("template is valid")
}

pub fn started(arm: usize, name: &str, total: usize, classification: bool) -> EngineEvent {
    EngineEvent::Started {
        arm,
        name: name.into(),
        run_dir: PathBuf::from(format!("runs/demo-{name}")),
        algorithm: if arm == 0 {
            "MAML (2nd order)".into()
        } else {
            "Reptile".into()
        },
        total_iterations: total,
        start_iteration: 0,
        params: 1761,
        family: "sinusoid".into(),
        classification,
        augment: None,
    }
}

fn ci(mean: f64, ci95: f64) -> MeanCi {
    MeanCi { mean, ci95, n: 100 }
}

/// Training events for `arm` as a smooth falling loss: `points` Train events, an Eval and
/// per-task points every `eval_every` iterations.
pub fn training(
    arm: usize,
    points: usize,
    eval_every: usize,
    classification: bool,
) -> Vec<EngineEvent> {
    let mut v = Vec::with_capacity(points + points / eval_every.max(1) * 5);
    let k = 1.0 + arm as f64 * 0.5;
    for i in 1..=points {
        let t = i as f64;
        let loss = 0.1 + 3.0 * k / (1.0 + t / 50.0) + 0.05 * (t * 0.7).sin();
        let acc = classification.then(|| 1.0 - 0.8 / (1.0 + t / 80.0));
        v.push(EngineEvent::Train {
            arm,
            point: TrainPoint {
                iteration: i,
                loss,
                accuracy: acc,
            },
            iters_per_sec: 25.0,
        });
        if eval_every > 0 && i % eval_every == 0 {
            v.push(EngineEvent::Eval {
                arm,
                result: EvalResult {
                    iteration: i,
                    split: Split::Validation,
                    loss: ci(loss * 0.9, 0.05 * loss),
                    accuracy: acc.map(|a| ci(a, 0.02)),
                    loss_before: ci(loss * 2.0, 0.1),
                    inner_steps: 10,
                    inner_lr: 0.01,
                    per_step: adaptation_curve(loss * 2.0, loss * 0.9, 10, acc),
                },
            });
            for task in 0..4 {
                let tl = loss * (1.0 + 0.2 * task as f64);
                v.push(EngineEvent::Task {
                    arm,
                    point: TaskPoint {
                        iteration: i,
                        task,
                        loss: tl,
                        accuracy: acc,
                    },
                });
            }
        }
    }
    v
}

/// Query results after 0..=`steps` adaptation steps, the loss falling from `before` to `after`
/// and the accuracy (classification) rising from chance among 5 to `accuracy`.
pub fn adaptation_curve(
    before: f64,
    after: f64,
    steps: usize,
    accuracy: Option<f64>,
) -> Vec<StepResult> {
    (0..=steps)
        .map(|s| {
            // Exactly `before` at step 0 and `after` at the last step, as the engine records.
            let tail = (-(steps as f64) / 2.0).exp();
            let f = ((-(s as f64) / 2.0).exp() - tail) / (1.0 - tail);
            let loss = after + (before - after) * f;
            StepResult {
                step: s,
                loss: ci(loss, 0.05 * loss),
                accuracy: accuracy.map(|a| ci(0.2 + (a - 0.2) * (1.0 - f), 0.02)),
            }
        })
        .collect()
}

/// An app in a temporary-free state (no folders needed) showing a live two-arm run.
pub fn live_app(root: &Path, points: usize, classification: bool) -> App {
    let mut app = App::new(root);
    let exp = experiment();
    app.live = Some(Session::for_experiment(&exp));
    app.screen = Screen::Monitor;
    for (arm, name) in ["maml", "reptile"].iter().enumerate() {
        update(
            &mut app,
            Msg::Engine(started(arm, name, points.max(1) * 2, classification)),
        );
        for ev in training(arm, points, (points / 10).max(1), classification) {
            update(&mut app, Msg::Engine(ev));
        }
    }
    app
}

/// Experiments with long names for the many-runs fixtures (labels must stay whole and unique).
pub const LONG_EXP_A: &str = "sinusoid-compare-with-a-long-experiment-name";
pub const LONG_EXP_B: &str = "sinusoid-anil-metasgd-long";

/// Ten saved runs of two experiments, one a rerun of another (same experiment and arm), with
/// wide intervals on some: (experiment, arm, algorithm, final mean, final CI, run id).
pub fn ten_runs() -> Vec<(&'static str, &'static str, &'static str, f64, f64, String)> {
    let id = |stamp: &str, exp: &str, arm: &str, hex: &str| {
        format!("2026-12-02-{stamp}-{exp}-{arm}-box{hex}")
    };
    vec![
        (
            LONG_EXP_A,
            "maml",
            "MAML (2nd order)",
            0.3481,
            0.0422,
            id("003512", LONG_EXP_A, "maml", "3fa2"),
        ),
        (
            LONG_EXP_A,
            "maml",
            "MAML (2nd order)",
            0.3612,
            0.0450,
            id("004001", LONG_EXP_A, "maml", "91c0"),
        ),
        (
            LONG_EXP_A,
            "fomaml",
            "FOMAML",
            0.4097,
            0.0500,
            id("003512", LONG_EXP_A, "fomaml", "77b1"),
        ),
        (
            LONG_EXP_A,
            "reptile",
            "Reptile",
            0.6120,
            0.0611,
            id("003512", LONG_EXP_A, "reptile", "a0c3"),
        ),
        (
            LONG_EXP_A,
            "multitask",
            "Multi-task (100 tasks)",
            1.7088,
            0.3120,
            id("003512", LONG_EXP_A, "multitask", "5d2e"),
        ),
        (
            LONG_EXP_B,
            "maml",
            "MAML (2nd order)",
            0.4798,
            0.0422,
            id("010203", LONG_EXP_B, "maml", "c4d5"),
        ),
        (
            LONG_EXP_B,
            "anil",
            "ANIL (2nd order)",
            0.9020,
            0.4100,
            id("010203", LONG_EXP_B, "anil", "e6f7"),
        ),
        (
            LONG_EXP_B,
            "metasgd",
            "Meta-SGD",
            0.3900,
            0.2500,
            id("010203", LONG_EXP_B, "metasgd", "0a1b"),
        ),
        (
            LONG_EXP_B,
            "metasgd-five-inner-steps",
            "Meta-SGD",
            0.5550,
            0.0700,
            id("010203", LONG_EXP_B, "metasgd-five-inner-steps", "2c3d"),
        ),
        (
            LONG_EXP_B,
            "fomaml",
            "FOMAML",
            2.1000,
            0.9000,
            id("010203", LONG_EXP_B, "fomaml", "4e5f"),
        ),
    ]
}

/// Saved metrics for a run that falls to `final_mean`: train points every 10 iterations (with
/// a clock), validation evaluations every `eval_every`, and a final test evaluation.
pub fn saved_metrics(
    iterations: usize,
    eval_every: usize,
    final_mean: f64,
    ci95: f64,
    final_eval: bool,
) -> crate::runs::RunMetrics {
    let mut m = crate::runs::RunMetrics::default();
    let curve = |t: f64| final_mean * (1.0 + 4.0 / (1.0 + t / 150.0));
    for i in (10..=iterations).step_by(10) {
        let t = i as f64;
        m.train.push(TrainPoint {
            iteration: i,
            loss: 0.8 * curve(t) + 0.08 * final_mean * (t * 0.37).sin(),
            accuracy: None,
        });
        m.clock.push((i, t / 40.0));
    }
    let eval = |i: usize, split: Split, mean: f64| EvalResult {
        iteration: i,
        split,
        loss: ci(mean, ci95 * mean / final_mean),
        accuracy: None,
        loss_before: ci(mean * 2.0, 0.1),
        inner_steps: 10,
        inner_lr: 0.01,
        per_step: Vec::new(),
    };
    for i in (eval_every..=iterations).step_by(eval_every.max(1)) {
        m.evals.push(eval(
            i,
            Split::Validation,
            curve(i as f64) * 0.9 + 0.1 * final_mean,
        ));
    }
    if final_eval {
        m.evals.push(eval(iterations, Split::Test, final_mean));
    }
    m
}

/// The Compare screen over [`ten_runs`] (the first `n`), opened as the Runs pane opens them:
/// labels from `runs::label::unique`, configs differing in algorithm and inner steps.
pub fn compare_runs_app(root: &Path, n: usize) -> App {
    use crate::runs::label::{unique, Subject};
    use crate::runs::RunStatus;
    let runs: Vec<_> = ten_runs().into_iter().take(n).collect();
    let subjects: Vec<Subject> = runs
        .iter()
        .map(|r| Subject::new(r.0, r.1, Some(&r.5)))
        .collect();
    let labels = unique(&subjects);
    let arms = runs
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(k, (r, label))| {
            let m = saved_metrics(600, 100, r.3, r.4, true);
            let mut a = super::session::ArmView::from_metrics(label, r.2, &RunStatus::Finished, &m);
            a.total = 600;
            a.run_dir = Some(PathBuf::from(format!("runs/{}", r.5)));
            a.seconds = Some(15.0 + k as f64);
            a
        })
        .collect();
    let diff = vec![
        (
            "arm.algorithm".to_string(),
            runs.iter().map(|r| r.2.to_string()).collect(),
        ),
        (
            "train.inner_steps".to_string(),
            runs.iter()
                .map(|r| {
                    if r.1.contains("five") || r.1 == "reptile" {
                        "5"
                    } else {
                        "1"
                    }
                    .to_string()
                })
                .collect(),
        ),
        (
            "arm.algorithm.Reptile.epsilon".to_string(),
            runs.iter()
                .map(|r| if r.1 == "reptile" { "1.0" } else { "–" }.to_string())
                .collect(),
        ),
    ];
    let mut app = App::new(root);
    app.saved = Some(Session {
        title: format!("{n} runs"),
        live: false,
        arms,
        diff,
    });
    app.source = super::app::Source::Saved;
    app.screen = Screen::Compare;
    app
}

/// A live session of `names.len()` arms (long names welcome) halfway through training, with
/// evaluations whose intervals widen with the arm index.
pub fn many_arms_live_app(root: &Path, names: &[&str], points: usize) -> App {
    let mut app = App::new(root);
    let mut s = Session::for_experiment(&experiment());
    s.title = LONG_EXP_A.into();
    s.arms.clear();
    s.diff.clear();
    app.live = Some(s);
    app.screen = Screen::Monitor;
    for (arm, name) in names.iter().enumerate() {
        update(&mut app, Msg::Engine(started(arm, name, points * 2, false)));
        for mut ev in training(arm, points, (points / 6).max(1), false) {
            if let EngineEvent::Eval { result, .. } = &mut ev {
                result.loss.ci95 *= 1.0 + 2.0 * arm as f64;
            }
            update(&mut app, Msg::Engine(ev));
        }
    }
    app
}

/// The paused-arms case: three arms paused at different points because multi-task
/// runs three times faster. `maml_evaluated` gives MAML its first evaluation (at 500).
/// Multi-task's loss is the lowest on screen (at 1500) and the worst where all were evaluated.
pub fn paused_arms_app(root: &Path, maml_evaluated: bool) -> App {
    let mut app = App::new(root);
    let mut s = Session::for_experiment(&experiment());
    s.title = "sinusoid-compare".into();
    s.arms.clear();
    s.diff.clear();
    app.live = Some(s);
    app.screen = Screen::Compare;
    // (name, iteration reached, its evaluations as (iteration, MSE)).
    type Arm<'a> = (&'a str, usize, &'a [(usize, f64)]);
    let arms: [Arm; 3] = [
        (
            "maml",
            if maml_evaluated { 600 } else { 450 },
            &[(500, 0.81)],
        ),
        ("fomaml", 700, &[(500, 0.95)]),
        (
            "multitask",
            1550,
            &[(500, 1.62), (1000, 0.74), (1500, 0.52)],
        ),
    ];
    for (arm, (name, reached, evals)) in arms.iter().enumerate() {
        update(&mut app, Msg::Engine(started(arm, name, 5000, false)));
        for i in (10..=*reached).step_by(10) {
            let t = i as f64;
            update(
                &mut app,
                Msg::Engine(EngineEvent::Train {
                    arm,
                    point: TrainPoint {
                        iteration: i,
                        loss: 0.3 + 2.0 / (1.0 + t / (100.0 * (arm + 1) as f64)),
                        accuracy: None,
                    },
                    iters_per_sec: 10.0 * (1 + 2 * (arm / 2)) as f64,
                }),
            );
            for &(at, loss) in evals.iter().filter(|e| e.0 == i) {
                update(
                    &mut app,
                    Msg::Engine(EngineEvent::Eval {
                        arm,
                        result: EvalResult {
                            iteration: at,
                            split: Split::Validation,
                            loss: ci(loss, 0.05),
                            accuracy: None,
                            loss_before: ci(3.0, 0.2),
                            inner_steps: 5,
                            inner_lr: 0.01,
                            per_step: adaptation_curve(3.0, loss, 5, None),
                        },
                    }),
                );
            }
        }
        update(&mut app, Msg::Engine(EngineEvent::Paused { arm }));
    }
    app
}
