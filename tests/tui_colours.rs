//! An arm's colour is a function of its identity (issue 18 §4): the same run is the same
//! colour live, opened from Runs (where the list order differs) and in an exported figure.

mod tui_common;
use tui_common::k;

use std::path::Path;

use metalab::engine::{self, LaunchOptions};
use metalab::experiment::parse_str;
use metalab::tui::app::Screen;
use metalab::tui::dispatch as update;
use metalab::tui::session::Session;
use metalab::tui::{view, App, Msg};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

// Reptile first: live it is arm 0, in Runs (sorted by arm) it comes second.
const TINY: &str = r#"Experiment(
    name: "tiny-colours",
    seed: 5,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [
        Arm(name: "reptile", algorithm: Reptile(epsilon: 0.5), inner_steps: 2),
        Arm(name: "maml", algorithm: Fomaml),
    ],
    train: Train(iterations: 30, meta_batch: 2, log_every: 5),
    eval: Eval(every: 10, tasks: 8, periodic_tasks: 4, inner_steps: 2, tracked_tasks: 2),
)
"#;

/// The colour of the `●` before `name` in the legend/table (and the text of the screen).
fn dot_colour(app: &App, w: u16, h: u16, name: &str) -> (Color, String) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| view::render(app, f)).unwrap();
    let buf = term.backend().buffer().clone();
    let text = tui_common::screen(app, w, h);
    for y in 0..h {
        let row: Vec<String> = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        for x in 0..w as usize {
            let after: String = row[x..].concat();
            if row[x] == "●" && after.starts_with(&format!("● {name} ")) {
                return (buf[(x as u16, y)].fg, text);
            }
        }
    }
    panic!("no ● {name}:\n{text}");
}

#[test]
fn an_arm_has_one_colour_live_from_runs_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("experiments")).unwrap();
    let exp = parse_str(TINY, Path::new("tiny.ron")).unwrap();
    let mut app = App::new(dir.path());
    app.live = Some(Session::for_experiment(&exp));
    let h = engine::launch(
        exp,
        LaunchOptions {
            runs_root: dir.path().join("runs"),
            threads: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !(h.is_done() && app.live.as_ref().is_some_and(|s| !s.any_active())) {
        assert!(std::time::Instant::now() < deadline, "did not finish");
        if let Ok(ev) = h.events.recv_timeout(std::time::Duration::from_millis(50)) {
            update(&mut app, Msg::Engine(ev));
        }
    }
    app.screen = Screen::Compare;
    let live: Vec<Color> = ["maml", "reptile"]
        .iter()
        .map(|a| dot_colour(&app, 120, 40, a).0)
        .collect();
    assert_ne!(live[0], live[1]);
    assert_eq!(app.live.as_ref().unwrap().arms[0].name, "reptile");

    // The same runs from Runs: listed maml first, and the same colours.
    update(&mut app, k('2'));
    assert_eq!(app.runs[0].arm, "maml");
    update(&mut app, k(' '));
    update(&mut app, k(' '));
    update(&mut app, k('c'));
    assert_eq!(app.screen, Screen::Compare);
    assert_eq!(app.saved.as_ref().unwrap().arms[0].identity, "maml");
    for (w, h) in [(120, 40), (80, 24)] {
        for (i, a) in ["maml", "reptile"].iter().enumerate() {
            let (c, text) = dot_colour(&app, w, h, a);
            assert_eq!(c, live[i], "{a} changed colour at {w}x{h}:\n{text}");
        }
    }
    // And the exported figure draws them in those colours.
    let curves: Vec<metalab::export::ArmCurves> = app
        .runs
        .iter()
        .map(|r| metalab::export::ArmCurves {
            run: r.id.clone(),
            label: r.arm.clone(),
            identity: r.arm.clone(),
            ..Default::default()
        })
        .collect();
    let fig = metalab::export::figure::build(&curves, false);
    for (r, c) in app.runs.iter().zip(&fig.colours) {
        let i = usize::from(r.arm == "reptile");
        assert_eq!(Color::Rgb(c.0, c.1, c.2), live[i], "{}", r.arm);
    }
}
