//! Curves to CSV and SVG, and the bench hook.

use metalab::export::{to_csv, to_svg, ArmCurves};
use metalab::metrics::{EvalResult, TaskPoint, TrainPoint};
use metalab::stats::MeanCi;
use metalab::tasks::Split;

fn arm(label: &str, classification: bool) -> ArmCurves {
    let ci = |m| MeanCi {
        mean: m,
        ci95: 0.1,
        n: 10,
    };
    ArmCurves {
        label: label.into(),
        train: (1..=5)
            .map(|i| TrainPoint {
                iteration: i,
                loss: 1.0 / i as f64,
                accuracy: classification.then_some(0.5),
            })
            .collect(),
        evals: vec![EvalResult {
            iteration: 5,
            split: Split::Validation,
            loss: ci(0.3),
            accuracy: classification.then(|| ci(0.8)),
            loss_before: ci(0.9),
            inner_steps: 5,
            inner_lr: 0.01,
            per_step: vec![],
        }],
        tasks: vec![TaskPoint {
            iteration: 5,
            task: 0,
            loss: 0.2,
            accuracy: None,
        }],
    }
}

#[test]
fn csv_is_long_format_with_every_series() {
    let csv = to_csv(&[arm("a,1", false), arm("b", true)]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "arm,series,split,task,iteration,value,ci95,n");
    assert!(lines
        .iter()
        .all(|l| l.matches(',').count() >= 7 || l.starts_with("\"a,1\"")));
    assert!(csv.contains("\"a,1\",train_loss,train,,1,1,,"));
    assert!(csv.contains("b,eval_accuracy,validation,,5,0.8,0.1,10"));
    assert!(csv.contains("b,train_accuracy"));
    assert!(!csv.contains("\"a,1\",train_accuracy"));
    assert!(csv.contains("task_loss,validation,0,5,0.2"));
}

#[test]
fn svg_has_a_line_and_legend_per_arm() {
    let svg = to_svg(&[arm("maml", false), arm("reptile<2>", false)], false);
    assert!(svg.starts_with("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 4); // train + eval per arm
    assert_eq!(svg.matches("<polygon").count(), 2); // CI bands
    assert!(svg.contains(">maml<") && svg.contains("reptile&lt;2&gt;"));
    assert!(svg.contains("eval MSE"));
    let acc = to_svg(&[arm("x", true)], true);
    assert!(acc.contains("eval accuracy"));
    let empty = to_svg(&[], false);
    assert!(empty.contains("no data"));
}

#[test]
fn bench_frame_time_runs_on_a_long_run() {
    // No timing assertion (machines differ): only that it renders a 100k-point run.
    let small = metalab::tui::bench::frame_time(1_000, 5);
    let t = metalab::tui::bench::frame_time(100_000, 5);
    println!("mean frame time at 120x40: 1k points {small:?}, 100k points {t:?}");
    assert!(t > std::time::Duration::ZERO);
}
