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
