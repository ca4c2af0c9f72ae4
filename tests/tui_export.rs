//! Exports: the CSV read back with the csv crate, the SVG's text, the PNG's pixels, the axes'
//! numbers, the file names; and the bench hook.

use metalab::export::csv::{parse, Row, Series, HEADER};
use metalab::export::figure::{self, Figure};
use metalab::export::{axis, plot, to_csv, to_png, to_svg, write, ArmCurves};
use metalab::metrics::{EvalResult, TaskPoint, TrainPoint};
use metalab::palette;
use metalab::runs::label::{unique, Subject};
use metalab::stats::MeanCi;
use metalab::tasks::Split;

const ORIGINAL: &str = "2026-12-02-003512-sinusoid-maml-maml-box3fa2";
const RERUN: &str = "2026-12-02-004001-sinusoid-maml-maml-box91c0";

fn ci(mean: f64, ci95: f64) -> MeanCi {
    MeanCi { mean, ci95, n: 10 }
}

fn eval(iteration: usize, split: Split, loss: MeanCi, acc: Option<MeanCi>) -> EvalResult {
    EvalResult {
        iteration,
        split,
        loss,
        accuracy: acc,
        loss_before: ci(0.9, 0.1),
        inner_steps: 5,
        inner_lr: 0.01,
        per_step: (0..=2)
            .map(|step| metalab::metrics::StepResult {
                step,
                loss: ci(1.0 / (step + 1) as f64, 0.1),
                accuracy: acc.map(|a| ci(a.mean, 0.05)),
            })
            .collect(),
    }
}

/// A run of `iters` iterations with evaluations every 100 and a final test.
fn arm(run: &str, label: &str, classification: bool, offset: f64) -> ArmCurves {
    let iters = 500;
    ArmCurves {
        run: run.into(),
        label: label.into(),
        identity: String::new(),
        train: (1..=iters / 10)
            .map(|k| TrainPoint {
                iteration: k * 10,
                loss: offset + 2.0 / k as f64,
                accuracy: classification.then_some(0.5),
            })
            .collect(),
        evals: (1..=iters / 100)
            .map(|k| {
                let l = offset + 1.0 / k as f64;
                let a = classification.then(|| ci(0.5 + 0.08 * k as f64, 0.05));
                eval(k * 100, Split::Validation, ci(l, 0.1), a)
            })
            .chain([eval(
                iters,
                Split::Test,
                ci(offset + 0.2, 0.05),
                classification.then(|| ci(0.9, 0.02)),
            )])
            .collect(),
        tasks: vec![TaskPoint {
            iteration: 100,
            task: 0,
            loss: 0.2,
            accuracy: None,
        }],
        clock: (1..=iters / 10).map(|k| (k * 10, k as f64 * 0.5)).collect(),
        algorithm: String::new(),
        stopped_at: None,
        ways: classification.then_some(5),
    }
}

/// A run and its rerun (same experiment and arm), labelled as every view labels them.
fn rerun_pair() -> Vec<ArmCurves> {
    let subjects = [
        Subject::new("sinusoid-maml", "maml", Some(ORIGINAL)),
        Subject::new("sinusoid-maml", "maml", Some(RERUN)),
    ];
    let labels = unique(&subjects);
    vec![
        arm(ORIGINAL, &labels[0], false, 0.0),
        arm(RERUN, &labels[1], false, 0.1),
    ]
}

#[test]
fn csv_round_trips_and_a_rerun_never_merges_with_its_original() {
    let arms = rerun_pair();
    let text = to_csv(&arms).unwrap();
    assert_eq!(text.lines().next().unwrap(), HEADER.join(","));
    // Read back with the csv crate's own reader, not our parser.
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<Row> = reader.deserialize().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows, parse(&text).unwrap());
    assert_eq!(rows, metalab::export::csv::rows(&arms));
    let runs: std::collections::BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.run.as_str(), r.label.as_str()))
        .collect();
    assert_eq!(
        runs.into_iter().collect::<Vec<_>>(),
        [(ORIGINAL, "maml #3fa2"), (RERUN, "maml #91c0")]
    );
    // Every point of each run is there, under its own run id.
    for a in &arms {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.run == a.run).collect();
        let train = mine
            .iter()
            .filter(|r| r.series == Series::TrainLoss)
            .count();
        assert_eq!(train, a.train.len());
        let evals = mine.iter().filter(|r| r.series == Series::EvalLoss).count();
        assert_eq!(evals, a.evals.len());
        let test = mine
            .iter()
            .find(|r| r.series == Series::EvalLoss && r.split == Split::Test)
            .unwrap();
        assert_eq!((test.ci95, test.n), (Some(0.05), Some(10)));
        // Loss against adaptation steps: one row per step of every evaluation.
        let steps: Vec<Option<usize>> = mine
            .iter()
            .filter(|r| r.series == Series::EvalLossStep && r.iteration == 100)
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, [Some(0), Some(1), Some(2)]);
        let task = mine.iter().find(|r| r.series == Series::TaskLoss).unwrap();
        assert_eq!((task.task, task.ci95), (Some(0), None));
    }
}

#[test]
fn csv_quotes_what_needs_quoting_and_keeps_accuracy_rows() {
    let arms = [
        arm("r1", "odd, \"label\"", false, 0.0),
        arm("r2", "acc", true, 0.0),
    ];
    let rows = parse(&to_csv(&arms).unwrap()).unwrap();
    assert!(rows.iter().any(|r| r.label == "odd, \"label\""));
    assert!(rows.iter().any(|r| r.run == "r2"
        && r.series == Series::EvalAccuracy
        && r.split == Split::Validation));
    assert!(!rows
        .iter()
        .any(|r| r.run == "r1" && r.series == Series::TrainAccuracy));
    // No rows still gives a file with its header.
    assert_eq!(to_csv(&[]).unwrap().trim_end(), HEADER.join(","));
}

#[test]
fn svg_names_its_axes_and_every_run() {
    let mut arms = rerun_pair();
    arms.push(arm("r3", "reptile<2>", false, 0.2));
    let svg = to_svg(&arms, false).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for title in [
        "meta-iteration",
        "meta-train loss (MSE)",
        "validation / test MSE",
    ] {
        assert!(
            svg.lines().any(|l| l.trim() == title),
            "no axis title {title}"
        );
    }
    // plotters writes each text element's content on a line of its own.
    let texts: Vec<&str> = svg.lines().map(str::trim).collect();
    for label in ["maml #3fa2", "maml #91c0", "reptile&lt;2&gt;"] {
        assert!(texts.contains(&label), "no label {label}");
    }
    // The TUI's colours: one per arm, from its identity (here its label).
    let colours = figure::build(&arms, false).colours;
    for (i, c) in colours.iter().enumerate() {
        let stroke = format!("stroke=\"{}\"", c.hex().to_uppercase());
        assert!(svg.contains(&stroke), "arm {i}: no {stroke}");
    }
    let acc = to_svg(&[arm("r", "x", true, 0.0)], true).unwrap();
    assert!(acc.contains("validation / test accuracy (%)"));
    assert!(to_svg(&[], false).unwrap().contains("no data"));
}

fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut reader = png::Decoder::new(bytes).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn png_decodes_at_its_size_with_curves_in_the_arm_colours() {
    let arms: Vec<ArmCurves> = (0..3)
        .map(|i| arm(&format!("r{i}"), &format!("arm{i}"), false, 0.3 * i as f64))
        .collect();
    let (w, h, rgb) = decode(&to_png(&arms, false).unwrap());
    assert_eq!((w, h), plot::size(&figure::build(&arms, false)));
    assert_eq!(w, plot::WIDTH);
    let pixels: Vec<[u8; 3]> = rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let ink = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(ink > pixels.len() / 50, "{ink} non-white pixels");
    // Each arm in the colour its identity gets on screen (`palette::assign`).
    let colours = palette::assign(&["arm0", "arm1", "arm2"]);
    for (i, palette::Rgb(r, g, b)) in colours.iter().copied().enumerate() {
        let n = pixels.iter().filter(|p| **p == [r, g, b]).count();
        assert!(n > 200, "arm {i}: {n} pixels in its colour");
    }
    // Colours of no drawn arm do not appear.
    for palette::Rgb(r, g, b) in palette::ARMS
        .iter()
        .filter(|c| !colours.contains(c))
        .take(1)
    {
        assert_eq!(pixels.iter().filter(|p| **p == [*r, *g, *b]).count(), 0);
    }
}

fn axes(p: &figure::Panel) -> &(axis::Axis, axis::Axis) {
    p.axes.as_ref().expect("a panel with data has axes")
}

#[test]
fn ticks_are_round_numbers() {
    let arms = rerun_pair();
    let fig = figure::build(&arms, false);
    for p in [&fig.train, &fig.eval] {
        let (x, y) = axes(p);
        for a in [x, y] {
            assert!(a.ticks.len() >= 3, "{a:?}");
            assert!(a.ticks.iter().all(|t| axis::is_round(*t)), "{a:?}");
        }
        assert_eq!(x.ticks[0], 0.0);
    }
}

#[test]
fn accuracy_axis_stays_within_percent_and_losses_stay_above_zero() {
    // Accuracy near 100% with a wide CI, and a loss near 0 with a CI wider than it.
    let mut a = arm("r", "x", true, 0.0);
    for e in &mut a.evals {
        e.accuracy = Some(ci(0.97, 0.1));
        e.loss = ci(0.05, 0.3);
    }
    let fig = figure::build(std::slice::from_ref(&a), true);
    let (_, y) = axes(&fig.eval);
    assert!(y.lo >= 0.0 && y.hi <= 100.0, "{y:?}");
    assert!(y.hi > 90.0, "accuracy is in percent: {y:?}");
    let c = &fig.eval.curves[0];
    assert!(c.band.iter().all(|b| b.2 <= 100.0));
    let fig = figure::build(&[a], false);
    let (_, y) = axes(&fig.eval);
    assert_eq!(y.lo, 0.0, "{y:?}");
    assert!(fig.eval.curves[0].band.iter().all(|b| b.1 >= 0.0));
    let (_, ty) = axes(&fig.train);
    assert!(ty.lo >= 0.0);
}

#[test]
fn a_single_evaluation_is_a_whisker_on_an_axis_from_zero() {
    let mut a = arm("r", "x", false, 0.0);
    a.train.clear();
    a.evals = vec![eval(300, Split::Test, ci(0.48, 0.05), None)];
    let fig: Figure = figure::build(&[a], false);
    let (x, y) = axes(&fig.eval);
    assert_eq!(x.lo, 0.0);
    assert!(x.ticks.len() >= 4 && x.ticks.contains(&300.0), "{x:?}");
    assert!(x.hi > 300.0);
    assert!(y.lo < 0.43 && y.hi > 0.53, "{y:?}");
    let c = &fig.eval.curves[0];
    assert_eq!(c.whiskers.len(), 1);
    assert!(c.whiskers[0].x > 300.0 && c.whiskers[0].x < x.hi);
    assert!(fig.train.axes.is_none());
}

#[test]
fn ten_long_labels_fit_the_legend_with_their_run_ids() {
    let arms: Vec<ArmCurves> = (0..10)
        .map(|i| {
            let label = format!("omniglot-metric-vs-gradient-20way/protonet-{i} #{i:04x}");
            arm(&format!("r{i}"), &label, false, 0.1 * i as f64)
        })
        .collect();
    let fig = figure::build(&arms, false);
    assert_eq!(fig.legend.len(), 10);
    for (i, l) in fig.legend.iter().enumerate() {
        assert!(l.chars().count() <= figure::LABEL_CHARS, "{l}");
        assert!(l.ends_with(&format!(" #{i:04x}")), "{l}");
    }
    let distinct: std::collections::BTreeSet<_> = fig.legend.iter().collect();
    assert_eq!(distinct.len(), 10);
    let svg = to_svg(&arms, false).unwrap();
    let texts: Vec<&str> = svg.lines().map(str::trim).collect();
    assert!(fig.legend.iter().all(|l| texts.contains(&l.as_str())));
    // The legend's rows come below the panels: the figure grows rather than overlapping them.
    let (_, h10) = plot::size(&fig);
    let (_, h1) = plot::size(&figure::build(&arms[..1], false));
    assert!(h10 > h1);
}

#[test]
fn write_makes_three_files_and_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    let arms = rerun_pair();
    let first = write(d.path(), "sinusoid-maml-2026-12-02-0135", &arms, false).unwrap();
    let second = write(d.path(), "sinusoid-maml-2026-12-02-0135", &arms, false).unwrap();
    assert_eq!(first.stem, "sinusoid-maml-2026-12-02-0135");
    assert_eq!(second.stem, "sinusoid-maml-2026-12-02-0135-2");
    for p in first.paths().iter().chain(&second.paths()) {
        assert!(p.is_file(), "{}", p.display());
    }
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 6);
    let s = first.summary();
    let expected = d.path().join("sinusoid-maml-2026-12-02-0135");
    assert_eq!(
        s,
        format!("exported {}.{{csv,svg,png}}", expected.display())
    );
}

#[test]
fn bench_frame_time_runs_on_a_long_run() {
    // No timing assertion (machines differ): only that it renders a 100k-point run.
    let small = metalab::tui::bench::frame_time(1_000, 5);
    let t = metalab::tui::bench::frame_time(100_000, 5);
    println!("mean frame time at 120x40: 1k points {small:?}, 100k points {t:?}");
    assert!(t > std::time::Duration::ZERO);
}

/// Issue 18 §4: the CSV has a wall-clock column; the figure states its smoothing, carries the
/// caveat on training losses across algorithms, and marks a stopped run in the legend.
#[test]
fn exports_carry_wall_clock_smoothing_caveat_and_stopped_runs() {
    let mut arms: Vec<ArmCurves> = (0..2)
        .map(|i| arm(&format!("r{i}"), &format!("arm{i}"), false, 0.3 * i as f64))
        .collect();
    arms[0].algorithm = "MAML (2nd order)".into();
    arms[1].algorithm = "Multi-task (100 tasks)".into();
    arms[1].stopped_at = Some(300);
    let csv = to_csv(&arms).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with(",seconds"), "{header}");
    // Train row at iteration 100: 5 seconds by the clock; an eval at 250 interpolates.
    assert!(
        csv.lines()
            .any(|l| l.starts_with("r0,arm0,train_loss,train,,,100,") && l.ends_with(",5.0")),
        "{csv}"
    );
    let fig = figure::build(&arms, false);
    assert!(
        fig.train.title.contains("EMA over ~2 points"),
        "{}",
        fig.train.title
    );
    assert!(
        fig.train.title.contains("not comparable across algorithms"),
        "{}",
        fig.train.title
    );
    assert_eq!(fig.legend[1], "arm1 (stopped @300)");
    arms[1].algorithm = arms[0].algorithm.clone();
    assert!(!figure::build(&arms, false)
        .train
        .title
        .contains("not comparable"));
}
