//! Compare's results table flags negative transfer (issue 21): a multi-task run whose per-task
//! record is significantly worse than the single-task baseline's on some task reads `⚠ k/T
//! tasks`, the baseline reads `baseline`, a run no worse anywhere reads `none`, and runs
//! without a record leave the column blank (it is not shown when no run pairs).

mod tui_common;

use std::path::Path;

use metalab::experiment::Trunks;
use metalab::transfer::{TaskLosses, TASK_LOSSES};
use metalab::tui::fixtures;
use tui_common::{project, screen, write_snapshot};

/// A record of three tasks whose losses on 40 shared episodes are `scale` times the
/// episodes' difficulties, with a little noise of the run's own.
fn record(trunks: Trunks, scale: [f64; 3], noise: u64) -> TaskLosses {
    let losses = scale
        .iter()
        .enumerate()
        .map(|(t, &k)| {
            (0..40)
                .map(|e| {
                    let difficulty = 0.5 + ((e * 7 + t * 3) % 11) as f64 / 5.0;
                    let wobble =
                        1.0 + 0.05 * (((e as u64 * 13 + noise * 5) % 7) as f64 - 3.0) / 3.0;
                    k * difficulty * wobble
                })
                .collect()
        })
        .collect();
    TaskLosses {
        family: "Mixed regression".into(),
        seed: 1,
        iteration: 100,
        trunks,
        group_names: vec!["sine".into(), "line".into()],
        groups: vec![Some(0), Some(0), Some(1)],
        task_names: vec![],
        scored_on: Default::default(),
        losses,
    }
}

fn write(dir: &Path, r: &TaskLosses) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(TASK_LOSSES), serde_json::to_string(r).unwrap()).unwrap();
}

fn row<'a>(s: &'a str, arm: &str) -> &'a str {
    s.lines()
        .rfind(|l| l.starts_with('│') && l.contains(&format!("● {arm} ")))
        .unwrap_or_else(|| panic!("no row for {arm}:\n{s}"))
}

#[test]
fn a_run_worse_than_the_single_task_baseline_is_flagged_in_the_results_table() {
    let p = project();
    let mut app = fixtures::paused_arms_app(p.path(), true);
    let runs = p.path().join("runs");
    // fomaml stands in for the baseline, multitask for the joint run; maml has no record.
    write(
        &runs.join("single"),
        &record(Trunks::PerTask, [1.0, 1.0, 1.0], 1),
    );
    write(
        &runs.join("joint"),
        &record(Trunks::Shared, [3.0, 1.0, 1.0], 2),
    );
    let s = app.live.as_mut().unwrap();
    s.arms[1].run_dir = Some(runs.join("single"));
    s.arms[2].run_dir = Some(runs.join("joint"));
    let shot = screen(&app, 120, 40);
    write_snapshot("compare_transfer_120x40.txt", &shot);
    assert!(shot.contains("transfer"), "{shot}");
    assert!(row(&shot, "multitask").contains("⚠ 1/3 tasks"), "{shot}");
    assert!(row(&shot, "fomaml").contains("baseline"), "{shot}");
    assert!(!row(&shot, "maml").contains("baseline"), "{shot}");

    // No worse anywhere: no flag.
    write(
        &runs.join("joint"),
        &record(Trunks::Shared, [1.0, 0.9, 1.0], 2),
    );
    let shot = screen(&app, 120, 40);
    assert!(row(&shot, "multitask").contains("none"), "{shot}");
    for arm in ["maml", "fomaml", "multitask"] {
        assert!(!row(&shot, arm).contains('⚠'), "{shot}");
    }

    // Without a baseline among the runs the column is not there.
    write(
        &runs.join("single"),
        &record(Trunks::Shared, [1.0, 1.0, 1.0], 1),
    );
    let shot = screen(&app, 120, 40);
    assert!(
        !shot.contains("baseline") && !shot.contains("transfer"),
        "{shot}"
    );
}
