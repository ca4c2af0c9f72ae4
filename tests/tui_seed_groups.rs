//! Issue 18 §3: runs of one experiment that differ only in seed are one group row in Runs —
//! n seeds, mean ± t-CI over seeds, their states — collapsed by default; Enter/→ shows the
//! seeds as `s1 s2 s3`, ← folds them; `c` compares them as one arm; `d` names every seed and
//! deletes them only on `y`. A run that differs in more than its seed stays a row of its own.
//! Driven through the real loop (`Runtime` on a `TestBackend`) with runs the engine trained.

mod tui_common;

use std::path::PathBuf;

use crossterm::event::KeyCode;
use metalab::engine::LaunchOptions;
use metalab::tui::app::{Modal, Screen};
use metalab::tui::run_groups::RunItem;
use metalab::tui::runtime::Runtime;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tui_common::{press, screen, status, train_seed, turn_until};

const TINY: &str = r#"Experiment(
    name: "tiny-seeds",
    seed: 1,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [Arm(name: "maml", algorithm: Fomaml)],
    train: Train(iterations: 30, meta_batch: 2, log_every: 5),
    eval: Eval(every: 10, tasks: 20, periodic_tasks: 8, inner_steps: 2, tracked_tasks: 1),
)
"#;

/// The final test MSE a run wrote to its run.json.
fn final_mse(dir: &std::path::Path) -> f64 {
    let meta = metalab::runs::load_meta(dir).unwrap();
    meta.final_eval.unwrap().loss.mean
}

fn group_rows(rt: &Runtime<TestBackend>) -> usize {
    rt.app
        .run_items
        .iter()
        .filter(|i| matches!(i, RunItem::Group(_)))
        .count()
}

#[test]
fn seeds_are_one_group_row_that_opens_compares_and_deletes_as_one() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join("experiments")).unwrap();
    let seeds: Vec<PathBuf> = [1, 2, 3]
        .iter()
        .map(|&s| train_seed(project.path(), TINY, s))
        .collect();
    // Seed 4 with another inner learning rate: more than the seed differs.
    let other = train_seed(
        project.path(),
        &TINY.replace(
            "Arm(name: \"maml\", algorithm: Fomaml)",
            "Arm(name: \"maml\", algorithm: Fomaml, inner_lr: 0.02)",
        ),
        4,
    );

    let term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut rt = Runtime::new(project.path(), &LaunchOptions::default(), term);
    press(&mut rt, KeyCode::Char('2'));
    turn_until(&mut rt, "four runs listed", |rt| rt.app.runs.len() == 4);

    // Grouping: the three seeds are one collapsed row; the fourth run is a row of its own.
    assert_eq!(rt.app.run_items.len(), 2, "{:?}", rt.app.run_items);
    assert_eq!(group_rows(&rt), 1);
    let RunItem::Group(g) = rt
        .app
        .run_items
        .iter()
        .find(|i| matches!(i, RunItem::Group(_)))
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(g.seeds, 3);
    assert!(!g.expanded, "collapsed by default");
    let members: Vec<&str> = g
        .members
        .iter()
        .map(|&i| rt.app.runs[i].id.as_str())
        .collect();
    for d in &seeds {
        assert!(members.contains(&metalab::runs::run_id(d).as_str()));
    }
    assert!(!members.contains(&metalab::runs::run_id(&other).as_str()));

    // The CI by hand: mean and sample sd of the three seeds' test MSE, t(0.975, 2) = 4.303.
    let x: Vec<f64> = seeds.iter().map(|d| final_mse(d)).collect();
    let mean = x.iter().sum::<f64>() / 3.0;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let ci = 4.303 * sd / 3f64.sqrt();
    let r = g.result.unwrap();
    assert_eq!(r.summary.n, 3);
    assert!((r.summary.mean - mean).abs() < 1e-12, "{r:?} vs {mean}");
    assert!((r.summary.ci95 - ci).abs() < 1e-9, "{r:?} vs {ci}");
    let shown = format!("3 seeds: MSE {mean:.3} ± {ci:.3}");
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&rt.app, w, h);
        assert!(s.contains(&shown), "{w}x{h}: no `{shown}`\n{s}");
        assert!(s.contains("▸ tiny-seeds"), "{s}");
        assert!(!s.contains("├ s1"), "collapsed shows no seed rows\n{s}");
    }
    let s = screen(&rt.app, 120, 40);
    assert!(s.contains("3 finished"), "{s}");

    // Expand with Enter, fold with ←, expand with →: seeds labelled s1 s2 s3, never hex.
    let group_at = rt
        .app
        .run_items
        .iter()
        .position(|i| matches!(i, RunItem::Group(_)))
        .unwrap();
    rt.app.run_sel = group_at;
    press(&mut rt, KeyCode::Enter);
    assert_eq!(rt.app.run_items.len(), 5);
    assert_eq!(rt.app.run_sel, group_at, "the group's row stays selected");
    for (w, h) in [(120, 40), (80, 24)] {
        let s = screen(&rt.app, w, h);
        for label in ["▾ tiny-seeds", "├ s1", "├ s2", "└ s3"] {
            assert!(s.contains(label), "{w}x{h}: no `{label}`\n{s}");
        }
    }
    press(&mut rt, KeyCode::Down);
    assert!(matches!(
        rt.app.run_items[rt.app.run_sel],
        RunItem::Run {
            member: Some(_),
            ..
        }
    ));
    press(&mut rt, KeyCode::Left);
    assert_eq!(rt.app.run_items.len(), 2, "← on a seed folds its group");
    assert_eq!(rt.app.run_sel, group_at);
    press(&mut rt, KeyCode::Right);
    assert_eq!(rt.app.run_items.len(), 5);
    press(&mut rt, KeyCode::Left);
    assert_eq!(rt.app.run_items.len(), 2);

    // Filter and sort keep working: `s2` leaves one seed (no group); `o` keeps the group.
    press(&mut rt, KeyCode::Char('/'));
    for c in "s2".chars() {
        press(&mut rt, KeyCode::Char(c));
    }
    press(&mut rt, KeyCode::Enter);
    assert_eq!(rt.app.runs.len(), 1);
    assert_eq!(group_rows(&rt), 0);
    press(&mut rt, KeyCode::Esc);
    press(&mut rt, KeyCode::Char('o'));
    assert_eq!(group_rows(&rt), 1);
    press(&mut rt, KeyCode::Char('o'));
    let group_at = rt
        .app
        .run_items
        .iter()
        .position(|i| matches!(i, RunItem::Group(_)))
        .unwrap();
    rt.app.run_sel = group_at;

    // `c` on the group: Compare with the seeds as one arm.
    press(&mut rt, KeyCode::Char('c'));
    turn_until(&mut rt, "compare opened", |rt| {
        rt.app.screen == Screen::Compare
    });
    let sess = rt.app.session().unwrap();
    assert_eq!(sess.arms.len(), 1, "three seeds, one arm");
    assert_eq!(sess.arms[0].seeds.len(), 3);
    press(&mut rt, KeyCode::Char('2'));
    turn_until(&mut rt, "back in Runs", |rt| rt.app.screen == Screen::Runs);
    let group_at = rt
        .app
        .run_items
        .iter()
        .position(|i| matches!(i, RunItem::Group(_)))
        .unwrap();
    rt.app.run_sel = group_at;

    // `d` on the group names every seed's run; Enter is not yes, `n` cancels, `y` deletes all three.
    press(&mut rt, KeyCode::Char('d'));
    let Some(Modal::Confirm { prompt, .. }) = rt.app.modal.clone() else {
        panic!("no dialog: {:?}", rt.app.modal)
    };
    for d in &seeds {
        assert!(prompt.contains(&metalab::runs::run_id(d)), "{prompt}");
    }
    assert!(!prompt.contains(&metalab::runs::run_id(&other)), "{prompt}");
    let s = screen(&rt.app, 120, 40);
    for d in &seeds {
        assert!(
            s.contains(&metalab::runs::run_id(d)),
            "dialog names it\n{s}"
        );
    }
    press(&mut rt, KeyCode::Enter);
    assert!(rt.app.modal.is_some(), "Enter answers nothing");
    press(&mut rt, KeyCode::Char('n'));
    assert!(rt.app.modal.is_none());
    assert!(seeds.iter().all(|d| d.exists()), "nothing deleted");
    press(&mut rt, KeyCode::Char('d'));
    press(&mut rt, KeyCode::Char('y'));
    turn_until(&mut rt, "deleted", |rt| rt.app.jobs == 0);
    assert!(seeds.iter().all(|d| !d.exists()), "{}", status(&rt.app));
    assert!(other.exists(), "the run outside the group is kept");
    turn_until(&mut rt, "listed again", |rt| rt.app.runs.len() == 1);
    assert_eq!(group_rows(&rt), 0);
    press(&mut rt, KeyCode::Char('q'));
    rt.turn();
}
