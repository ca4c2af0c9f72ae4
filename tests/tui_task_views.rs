//! The task views (issue 21): the task-embedding scatter (T) and the task-affinity heatmap (H),
//! driven through the real update loop — keys before any data, empty states, canned engine
//! events drawn at 120×40 and 80×24 (snapshots), and real runs trained by the engine, whose
//! records are opened from the Runs pane.

mod tui_common;

use crossterm::event::KeyCode;
use metalab::algo::affinity::AffinityRecord;
use metalab::algo::pca;
use metalab::engine::EngineEvent;
use metalab::runs::EmbeddingRecord;
use metalab::tasks::Task;
use metalab::tui::app::Screen;
use metalab::tui::dispatch as update;
use metalab::tui::{fixtures, App, Msg};
use tui_common::{code, k, project, screen, status, train_seed, write_snapshot};

const CAVIA: &str = r#"Experiment(
    name: "tiny-cavia",
    seed: 1,
    threads: 1,
    family: Sinusoid(shots: 5, queries: 5),
    model: Mlp(hidden: [8]),
    arms: [Arm(name: "cavia", algorithm: Cavia(context: 2, context_lr: 1.0))],
    train: Train(iterations: 30, meta_batch: 2, log_every: 5),
    eval: Eval(every: 10, tasks: 20, periodic_tasks: 12, inner_steps: 1, tracked_tasks: 1),
)
"#;

const MIXED: &str = r#"Experiment(
    name: "tiny-mixed",
    seed: 1,
    threads: 1,
    family: Mixed(shots: 5, queries: 5, groups: [Sine, Line], tasks_per_group: 2),
    model: Mlp(hidden: [8]),
    arms: [Arm(name: "multitask", algorithm: MultiTask(tasks: 4))],
    train: Train(iterations: 30, meta_batch: 4, log_every: 5,
                 affinity: Affinity(every: 2, lookahead_lr: 0.01)),
    eval: Eval(every: 10, tasks: 20, periodic_tasks: 8, inner_steps: 2, tracked_tasks: 1),
)
"#;

/// 24 sine tasks whose embedding holds `a·cos φ`, `a·sin φ` and a tenth of `a`.
fn sine_record() -> EmbeddingRecord {
    let tasks: Vec<Task> = (0..24)
        .map(|i| Task::Sinusoid {
            amplitude: 0.1 + 0.2 * i as f32,
            phase: 0.13 * i as f32,
        })
        .collect();
    let emb = tasks
        .iter()
        .map(|t| match t {
            Task::Sinusoid { amplitude, phase } => vec![
                amplitude * phase.cos(),
                amplitude * phase.sin(),
                0.1 * amplitude,
            ],
            _ => unreachable!(),
        })
        .collect();
    EmbeddingRecord::new(400, 1, "canned".into(), &tasks, emb, &[])
}

/// Twelve tasks in four groups, interleaved (task i in group i mod 4): affinities high within
/// a group and low across, the lookahead a fiftieth of the cosine.
fn block_affinity() -> AffinityRecord {
    let n = 12;
    let cos: Vec<Vec<Option<f64>>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    (i != j).then(|| {
                        let wobble = 0.05 * (((i * 7 + j * 3) % 5) as f64 - 2.0) / 2.0;
                        if i % 4 == j % 4 {
                            0.7 + wobble
                        } else {
                            -0.1 + wobble
                        }
                    })
                })
                .collect()
        })
        .collect();
    let look = cos
        .iter()
        .map(|r| r.iter().map(|v| v.map(|v| v / 50.0)).collect())
        .collect();
    AffinityRecord {
        iteration: 400,
        groups: (0..n).map(|i| Some(i % 4)).collect(),
        cosine: cos,
        lookahead: look,
        lookahead_lr: 0.01,
    }
}

fn press(app: &mut App, c: char) {
    update(app, k(c));
}

#[test]
fn keys_before_any_data_answer_and_never_crash() {
    let p = project();
    let mut app = App::new(p.path());
    press(&mut app, '2');
    assert_eq!(app.screen, Screen::Runs);
    for c in ['T', 'H'] {
        press(&mut app, c);
        assert_eq!(app.screen, Screen::Runs);
        assert!(status(&app).contains("select one run"), "{}", status(&app));
    }
    // The screens themselves, with no session at all.
    for (s, what) in [
        (Screen::Embedding, "T opens"),
        (Screen::Affinity, "H opens"),
    ] {
        app.screen = s;
        for (w, h) in [(120, 40), (80, 24)] {
            let text = screen(&app, w, h);
            assert!(text.contains("Nothing to show yet"), "{text}");
            assert!(text.replace('\n', "").contains(what) || w == 80, "{text}");
        }
        for c in ['p', 'm', 'h', 'l', 'T', 'H'] {
            press(&mut app, c);
        }
    }

    // A live session whose arms record neither.
    let mut app = fixtures::live_app(p.path(), 40, false);
    press(&mut app, 'T');
    assert_eq!(app.screen, Screen::Embedding);
    press(&mut app, 'p');
    assert!(
        status(&app).contains("no task embeddings"),
        "{}",
        status(&app)
    );
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&app, w, h);
        assert!(text.contains("records no task"), "{w}x{h}\n{text}");
    }
    press(&mut app, 'H');
    assert_eq!(app.screen, Screen::Affinity);
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&app, w, h);
        assert!(text.contains("has no task affinities"), "{w}x{h}\n{text}");
    }
    press(&mut app, 'm');
    assert!(
        status(&app).contains("lookahead affinity"),
        "{}",
        status(&app)
    );
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Monitor);
    press(&mut app, 'c');
    press(&mut app, 'H');
    assert_eq!(app.screen, Screen::Affinity);
    press(&mut app, 'q');
    assert_eq!(app.screen, Screen::Compare);
}

#[test]
fn the_embedding_view_projects_and_colours_canned_embeddings() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 40, false);
    let record = sine_record();
    update(
        &mut app,
        Msg::Engine(EngineEvent::Embeddings {
            arm: 0,
            record: Box::new(record.clone()),
        }),
    );
    press(&mut app, 'T');
    assert_eq!(app.screen, Screen::Embedding);
    let x: Vec<Vec<f64>> = record
        .tasks
        .iter()
        .map(|t| t.embedding.iter().map(|&v| v as f64).collect())
        .collect();
    let pc = pca::project(&x, 2);
    let want = format!(
        "PC1 {:.1} % · PC2 {:.1} % of the variance",
        100.0 * pc.explained[0],
        100.0 * pc.explained[1]
    );
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&app, w, h);
        assert!(text.contains(&want), "{want} missing at {w}x{h}\n{text}");
        assert!(text.contains("amplitude"), "{text}");
        assert!(text.contains('•'), "no points at {w}x{h}\n{text}");
        assert!(text.contains("@400"), "{text}");
        write_snapshot(&format!("tui_embedding_{w}x{h}.txt"), &text);
    }
    assert!(screen(&app, 120, 40).contains("24 validation tasks"));
    // p walks the task's parameters and wraps around.
    let names: Vec<String> = (0..6)
        .map(|_| {
            press(&mut app, 'p');
            status(&app)
        })
        .collect();
    assert_eq!(names[0], "colour: sin_phase");
    assert_eq!(names[3], "colour: cos_coefficient");
    assert_eq!(names[4], "colour: amplitude");
    assert!(screen(&app, 120, 40).contains("sin_phase"));
    // The other arm has none, and says which arm does.
    update(&mut app, code(KeyCode::Right));
    let text = screen(&app, 120, 40);
    assert!(text.contains("records no task embedding"), "{text}");
    assert!(
        text.contains("selects an arm that has them: maml"),
        "{text}"
    );
    update(&mut app, code(KeyCode::Left));
    press(&mut app, 'T');
    assert_eq!(app.screen, Screen::Monitor);
}

#[test]
fn the_affinity_heatmap_orders_canned_blocks_and_switches_measure() {
    let p = project();
    let mut app = fixtures::live_app(p.path(), 40, false);
    update(
        &mut app,
        Msg::Engine(EngineEvent::Affinity {
            arm: 1,
            record: Box::new(block_affinity()),
        }),
    );
    app.live.as_mut().unwrap().arms[1].group_names = ["sine", "negsine", "line", "quadratic"]
        .map(String::from)
        .to_vec();
    update(&mut app, code(KeyCode::Right));
    press(&mut app, 'H');
    assert_eq!(app.screen, Screen::Affinity);
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&app, w, h);
        assert!(text.contains("gradient cosine"), "{text}");
        assert!(
            text.contains("cut at 4 clusters: exactly the 4 task groups"),
            "{w}x{h}\n{text}"
        );
        // Twelve rows, each group's three together.
        let groups: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                l.trim_start_matches('│')
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .get(..2)
                    .map(|v| v.to_vec())
            })
            .filter(|v| v[0].starts_with('t') && v[0][1..].parse::<usize>().is_ok())
            .map(|v| v[1])
            .filter(|g| ["sine", "negsine", "line", "quadratic"].contains(g))
            .collect();
        assert_eq!(groups.len(), 12, "{w}x{h}\n{text}");
        let mut runs = groups.clone();
        runs.dedup();
        assert_eq!(runs.len(), 4, "{groups:?}");
        // Cosines up to 0.75 on a ±0.8 scale, printed ×10.
        assert!(
            text.contains("values ×10 ") && text.contains("+7.0"),
            "{text}"
        );
        write_snapshot(&format!("tui_affinity_{w}x{h}.txt"), &text);
    }
    press(&mut app, 'm');
    let text = screen(&app, 120, 40);
    assert!(text.contains("lookahead affinity"), "{text}");
    assert!(text.contains("values ×100"), "{text}");
    assert!(text.contains("+1.4"), "{text}");
    press(&mut app, 'T');
    assert_eq!(app.screen, Screen::Embedding);
    assert!(screen(&app, 80, 24).contains("records no task embedding"));
    press(&mut app, 'H');
    press(&mut app, 'H');
    assert_eq!(app.screen, Screen::Monitor);
}

/// Select the run in the Runs pane whose folder is `dir`.
fn select_run(app: &mut App, dir: &std::path::Path) {
    let id = metalab::runs::run_id(dir);
    for i in 0..app.run_items.len() {
        app.run_sel = i;
        if app.selected_run().is_some_and(|r| r.id == id) {
            return;
        }
    }
    panic!("{id} not listed");
}

#[test]
fn real_runs_record_embeddings_and_affinities_and_open_from_runs() {
    let p = project();
    let cavia = train_seed(p.path(), CAVIA, 1);
    let mixed = train_seed(p.path(), MIXED, 1);
    let e = metalab::runs::load_embeddings(&cavia).expect("a CAVIA run records embeddings");
    assert_eq!(e.iteration, 30);
    assert_eq!((e.tasks.len(), e.width(), e.steps), (12, 2, 1));
    assert_eq!(e.properties[0].name(), "amplitude");
    assert!(e
        .tasks
        .iter()
        .all(|t| t.embedding.iter().all(|v| v.is_finite())));
    assert!(metalab::runs::load_embeddings(&mixed).is_none());
    let a = metalab::runs::load_affinity(&mixed).expect("affinity recorded");
    assert_eq!(a.groups, [Some(0), Some(0), Some(1), Some(1)]);

    let mut app = App::new(p.path());
    press(&mut app, '2');
    select_run(&mut app, &cavia);
    press(&mut app, 'T');
    assert_eq!(app.screen, Screen::Embedding);
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&app, w, h);
        assert!(text.contains("% of the variance"), "{text}");
        assert!(text.contains("amplitude") && text.contains('•'), "{text}");
    }
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Runs);
    select_run(&mut app, &mixed);
    press(&mut app, 'H');
    assert_eq!(app.screen, Screen::Affinity);
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&app, w, h);
        assert!(
            text.contains("gradient cosine") && text.contains("4 tasks"),
            "{text}"
        );
        assert!(text.contains("sine") && text.contains("line"), "{text}");
        assert!(text.contains("cut at 2 clusters"), "{text}");
    }
    press(&mut app, 'T');
    assert!(screen(&app, 120, 40).contains("records no task embedding"));
}
