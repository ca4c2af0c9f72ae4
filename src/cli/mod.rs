//! Command-line interface: argument parsing and one function per subcommand.

/// Every command prints through these, never `println!`: a write to a closed pipe or a
/// terminal that went away is dropped, not a panic (which would end a training run between
/// checkpoints, or a sweep child with its progress). Commands that only print also end quietly
/// on a closed pipe, like `ls | head` (see [`dispatch`]).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
/// [`out!`] without the newline.
macro_rules! outp {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
/// [`out!`] for stderr.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod headless;
mod sweep;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use metalab::bench::BenchDevice;
use metalab::engine::LaunchOptions;
use metalab::experiment;
use metalab::runs::label::{unique, Subject};

#[derive(Parser, Debug)]
#[command(
    name = "metalab",
    version,
    about = "A terminal workbench for meta-learning research (MAML, FOMAML, Reptile, multi-task on dfdx)"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Project folder holding experiments/ and runs/ (for the workbench).
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// Worker threads for experiments launched from the workbench (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Omniglot folder for experiments launched from the workbench, overriding their `root`.
    #[arg(long, env = "METALAB_OMNIGLOT")]
    data: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct RunOpts {
    /// Folder for run directories.
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Worker threads for the whole experiment (default: the experiment's `threads`, else all cores).
    /// Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Omniglot folder (holding images_background/ and/or images_evaluation/), overriding the file.
    #[arg(long, env = "METALAB_OMNIGLOT")]
    data: Option<PathBuf>,
    /// Print only the final summary.
    #[arg(long, short)]
    quiet: bool,
}

use clap::Args;

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Train every arm of an experiment headless, writing runs/<id>/ per arm.
    Run {
        file: PathBuf,
        /// Train only this arm (repeatable).
        #[arg(long = "arm")]
        arms: Vec<String>,
        /// Override train.iterations (frozen into the run's config).
        #[arg(long)]
        iterations: Option<usize>,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Validate experiment files (syntax, fields, data folders) without training.
    Check {
        files: Vec<PathBuf>,
        /// Omniglot folder, overriding the files' `root`.
        #[arg(long, env = "METALAB_OMNIGLOT")]
        data: Option<PathBuf>,
    },
    /// List saved runs.
    Runs {
        #[arg(long, default_value = "runs")]
        runs: PathBuf,
        /// Group finished runs that differ only in their seed: mean ± 95% CI over seeds (t).
        #[arg(long)]
        group: bool,
    },
    /// Run a sweep file's variants: a local queue, or a Slurm array job (--slurm); --status
    /// reports them and their results over seeds.
    Sweep(sweep::SweepArgs),
    /// Train a saved run again from its frozen config, into a new run directory.
    Rerun {
        run: String,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Write saved runs' curves as CSV (long format) and a plot (SVG and PNG), overlaid in one figure.
    Export(ExportArgs),
    /// Continue a stopped or interrupted run from its last checkpoint.
    Resume {
        run: String,
        #[command(flatten)]
        opts: RunOpts,
    },
    /// Evaluate a saved run's checkpoint under another protocol, or on a Lake-layout one-shot
    /// runs folder; the result is appended to runs/<id>/evals.jsonl.
    Eval(EvalArgs),
    /// Time fixed workloads and print seconds per meta-iteration.
    Bench {
        /// Fewer iterations (a smoke run).
        #[arg(long)]
        quick: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only workloads whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// `cuda`: the GPU rows (conv4 FOMAML/MAML 1 and 5 steps, sinusoid MAML) through the
        /// GPU engine on CUDA device 0.
        #[arg(long, value_enum, default_value_t = BenchDevice::Cpu)]
        device: BenchDevice,
    },
    /// One bench workload in this process, as JSON (what `bench` runs per child process).
    #[command(hide = true)]
    BenchOne {
        name: String,
        #[arg(long)]
        quick: bool,
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long, value_enum, default_value_t = BenchDevice::Cpu)]
        device: BenchDevice,
    },
}

// `metalab export`'s arguments (the variant's doc comment is the command's help).
#[derive(Args, Debug)]
struct ExportArgs {
    /// Runs by id or path (with --group: default every finished run).
    #[arg(required_unless_present = "group")]
    runs: Vec<String>,
    /// Write `aggregate.csv`: runs grouped by config except seed, mean ± 95% CI over seeds.
    #[arg(long)]
    group: bool,
    #[arg(long, default_value = "runs")]
    runs_root: PathBuf,
    /// Folder for the files.
    #[arg(long, default_value = "exports")]
    out: PathBuf,
    /// File name without extension (default: the run's id for one run, else the
    /// experiment's name or `compare-N-runs`, and the minute). An existing file is never
    /// replaced: `-2`, `-3`, … is added.
    #[arg(long)]
    name: Option<String>,
}

// `metalab eval`'s arguments (the variant's doc comment is the command's help).
#[derive(Args, Debug)]
struct EvalArgs {
    run: String,
    #[arg(long)]
    ways: Option<usize>,
    #[arg(long)]
    shots: Option<usize>,
    #[arg(long)]
    queries: Option<usize>,
    /// Test tasks (default: the run's eval.tasks).
    #[arg(long)]
    tasks: Option<usize>,
    /// test, validation or train.
    #[arg(long, default_value = "test")]
    split: String,
    #[arg(long)]
    inner_steps: Option<usize>,
    #[arg(long)]
    inner_lr: Option<f64>,
    /// When the ways change, give a gradient-based arm a fresh zero head to fine-tune instead
    /// of refusing.
    #[arg(long)]
    fresh_head: bool,
    /// Score each task's query set only before and after adaptation, not after every step:
    /// the same result, without the per-step curve, in 2 of the k + 1 query passes.
    #[arg(long)]
    no_per_step: bool,
    /// Draw all of a task's classes from one alphabet of the split, as Lake et al.'s one-shot
    /// runs do (Omniglot): the harder, more realistic test.
    #[arg(long)]
    within_alphabet: bool,
    /// Test-time support augmentation: add this many randomly distorted copies of every
    /// support image (the run's training distortions, else the defaults; from a seeded stream
    /// of their own, so the tasks and queries are unchanged). Image families only.
    #[arg(long, default_value_t = 0)]
    support_copies: usize,
    /// A folder of Lake et al.'s one-shot runs (runNN/training, runNN/test,
    /// runNN/class_labels.txt): error rate per run and overall.
    #[arg(long)]
    lake: Option<PathBuf>,
    /// Another run of the same experiment (by id or path), e.g. the single-task baseline
    /// (MultiTask with trunks: PerTask): each training task's loss here over its loss there,
    /// on the same episodes, with a 95% interval; tasks significantly worse here are flagged
    /// "negative transfer".
    #[arg(long, conflicts_with = "lake")]
    against: Option<String>,
    #[arg(long, env = "METALAB_OMNIGLOT")]
    data: Option<PathBuf>,
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
}

/// The most of one line of an error that is shown: messages quote the input they refuse, and a
/// crafted input can make that quote half a megabyte.
const MAX_LINE: usize = 600;

/// An error as the user reads it: its message, then each cause the message does not already
/// hold (our errors put their cause's text in their own message; `{:#}` would repeat it), every
/// line cut to [`MAX_LINE`] characters.
pub fn render(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text.lines()
        .map(|l| {
            let n = l.chars().count();
            if n <= MAX_LINE {
                l.to_string()
            } else {
                let head: String = l.chars().take(MAX_LINE).collect();
                format!("{head}… ({} more characters)", n - MAX_LINE)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn launch_options(o: &RunOpts) -> LaunchOptions {
    LaunchOptions {
        runs_root: o.runs.clone(),
        threads: o.threads,
        data: o.data.clone(),
        ..LaunchOptions::default()
    }
}

pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    if !trains(&cli.command) {
        metalab::signals::die_quietly_on_closed_pipe();
    }
    match cli.command {
        None => workbench(
            &cli.project,
            &LaunchOptions {
                threads: cli.threads,
                data: cli.data.clone(),
                ..LaunchOptions::default()
            },
        ),
        Some(Cmd::Run {
            file,
            arms,
            iterations,
            opts,
        }) => run(file, arms, iterations, &opts),
        Some(Cmd::Check { files, data }) => check(&files, data.as_deref()),
        Some(Cmd::Runs { runs, group }) => show_runs(&runs, group),
        Some(Cmd::Sweep(args)) => sweep::sweep(args),
        Some(Cmd::Rerun { run, opts }) => rerun(&run, &opts),
        Some(Cmd::Resume { run, opts }) => resume(&run, &opts),
        Some(Cmd::Export(args)) => export(args),
        Some(Cmd::Eval(args)) => eval(args),
        Some(Cmd::Bench {
            quick,
            json,
            only,
            device,
        }) => bench(quick, json, only.as_deref(), device),
        Some(Cmd::BenchOne {
            name,
            quick,
            threads,
            device,
        }) => {
            let r = metalab::bench::run_workload(&name, quick, threads, device)?;
            out!("{}", serde_json::to_string(&r)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Commands that train keep SIGPIPE ignored (and print without panicking): a closed pipe must
/// not kill a run between checkpoints. The others end quietly on one, like any Unix tool.
fn trains(command: &Option<Cmd>) -> bool {
    match command {
        None | Some(Cmd::Run { .. } | Cmd::Rerun { .. } | Cmd::Resume { .. }) => true,
        // `--status` and `--slurm` only print; the queue and its children train.
        Some(Cmd::Sweep(a)) => a.trains(),
        _ => false,
    }
}

/// `metalab run`: an experiment file's arms, headless.
fn run(
    file: PathBuf,
    arms: Vec<String>,
    iterations: Option<usize>,
    opts: &RunOpts,
) -> Result<ExitCode> {
    let exp = experiment::load_file(&file)?;
    // The override replaces a field the file's validation bounded: bound it the same way.
    let max = experiment::limits::MAX_ITERATIONS;
    if let Some(n) = iterations.filter(|&n| n > max) {
        anyhow::bail!(
            "--iterations {n} is more than the {max} metalab allows\n  fix: use at most {max}"
        );
    }
    let mut lo = launch_options(opts);
    lo.arms = (!arms.is_empty()).then_some(arms);
    lo.iterations = iterations;
    lo.source = Some(file);
    headless::run(metalab::engine::Prepared::new(exp, lo)?, opts.quiet)
}

/// `metalab runs`: the saved runs, or (`--group`) their results over seeds.
fn show_runs(runs: &Path, group: bool) -> Result<ExitCode> {
    if group {
        let g = metalab::sweep::aggregate::group(&metalab::sweep::aggregate::load_finished(runs));
        outp!("{}", metalab::sweep::aggregate::table(&g));
    } else {
        list_runs(runs);
    }
    Ok(ExitCode::SUCCESS)
}

/// `metalab rerun`: a saved run trained again from its frozen config.
fn rerun(run: &str, opts: &RunOpts) -> Result<ExitCode> {
    let dir = metalab::runs::resolve(&opts.runs, run)?;
    let exp = metalab::runs::load_config(&dir)?;
    let mut lo = launch_options(opts);
    lo.rerun_of = Some(metalab::runs::run_id(&dir));
    // A damaged run.json loses only the source file's name; the config is what reruns.
    lo.source = metalab::runs::load_meta(&dir).ok().and_then(|m| m.source);
    headless::run(metalab::engine::Prepared::new(exp, lo)?, opts.quiet)
}

/// `metalab resume`: a stopped or interrupted run, from its last checkpoint.
fn resume(run: &str, opts: &RunOpts) -> Result<ExitCode> {
    let dir = metalab::runs::resolve(&opts.runs, run)?;
    let meta = metalab::runs::load_meta(&dir)?;
    if meta.status == metalab::runs::RunStatus::Finished {
        anyhow::bail!(
            "run {} already finished\n  fix: `metalab rerun {}` trains it again",
            meta.id,
            meta.id
        );
    }
    // The run's lock says whether it is being written, and by whom.
    metalab::runs::ensure_not_running(&dir)?;
    headless::run(
        metalab::engine::Prepared::resume(&dir, launch_options(opts))?,
        opts.quiet,
    )
}

/// `metalab export`: saved runs' curves as CSV and a figure, or (`--group`) `aggregate.csv`.
fn export(a: ExportArgs) -> Result<ExitCode> {
    if a.group {
        return export_group(&a.runs, &a.runs_root, &a.out);
    }
    let loaded = export_curves(&a.runs, &a.runs_root)?;
    let stem = a.name.unwrap_or_else(|| {
        metalab::export::name::stem(&loaded.subjects, std::time::SystemTime::now())
    });
    let done = metalab::export::write(&a.out, &stem, &loaded.curves, loaded.classification)
        .with_context(|| format!("exporting into {}", a.out.display()))?;
    for p in done.paths() {
        out!("{}", p.display());
    }
    let dirs = a
        .runs
        .iter()
        .map(|r| -> Result<(String, PathBuf)> {
            let d = metalab::runs::resolve(&a.runs_root, r)?;
            Ok((metalab::runs::run_id(&d), d))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(p) = metalab::export::transfer::write(&a.out, &done.stem, &dirs)? {
        out!("{}", p.display());
    }
    // The task views of runs that recorded them (task embeddings, task affinities).
    let several = loaded.curves.len() > 1;
    for ((r, (_, dir)), c) in a.runs.iter().zip(&dirs).zip(&loaded.curves) {
        let stem = if several {
            format!("{}-{}", done.stem, c.label)
        } else {
            done.stem.clone()
        };
        let written = metalab::export::write_task_figures(&a.out, &stem, dir, &c.label)
            .with_context(|| format!("exporting {r}'s task views into {}", a.out.display()))?;
        for p in written {
            out!("{}", p.display());
        }
    }
    // Written, and the damage named above: a script sees it in the status too.
    Ok(if loaded.damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The runs an export draws, read from their folders.
struct ExportCurves {
    curves: Vec<metalab::export::ArmCurves>,
    subjects: Vec<Subject>,
    classification: bool,
    /// Some run's metrics had damaged lines (named as a warning when read).
    damaged: bool,
}

/// Each run's curves, labelled so that no two legend entries read the same.
fn export_curves(runs: &[String], runs_root: &Path) -> Result<ExportCurves> {
    let mut out = ExportCurves {
        curves: vec![],
        subjects: vec![],
        classification: false,
        damaged: false,
    };
    for r in runs {
        let dir = metalab::runs::resolve(runs_root, r)?;
        let meta = metalab::runs::load_meta(&dir)?;
        let (m, notes) = export_metrics(&dir, &meta)?;
        for n in &notes {
            say!("warning: {n}");
        }
        out.damaged |= !notes.is_empty();
        out.classification |= m.classification;
        // The folder's name, not the recorded id: a copied run is its own run here.
        let id = metalab::runs::run_id(&dir);
        out.subjects
            .push(Subject::new(&meta.experiment, &meta.arm, Some(&id)).with_seed(Some(meta.seed)));
        out.curves.push(metalab::export::ArmCurves {
            run: id,
            label: String::new(),
            identity: meta.arm.clone(),
            train: m.train,
            evals: m.evals,
            tasks: m.tasks,
            clock: m.clock,
            algorithm: meta.algorithm.clone(),
            stopped_at: matches!(
                meta.status,
                metalab::runs::RunStatus::Stopped | metalab::runs::RunStatus::Interrupted
            )
            .then_some(meta.iteration),
            ways: metalab::runs::load_config(&dir)
                .ok()
                .and_then(|c| c.eval_ways()),
        });
    }
    for (c, l) in out.curves.iter_mut().zip(unique(&out.subjects)) {
        c.label = l;
    }
    Ok(out)
}

/// `metalab eval`: a saved run's checkpoint under another protocol, or on Lake's one-shot runs.
fn eval(a: EvalArgs) -> Result<ExitCode> {
    let dir = metalab::runs::resolve(&a.runs, &a.run)?;
    let req = metalab::saved::EvalRequest {
        ways: a.ways,
        shots: a.shots,
        queries: a.queries,
        tasks: a.tasks,
        split: Some(metalab::saved::parse_split(&a.split)?),
        inner_steps: a.inner_steps,
        inner_lr: a.inner_lr,
        data: a.data,
        fresh_head: a.fresh_head,
        within_alphabet: a.within_alphabet,
        support_copies: a.support_copies,
        threads: a.threads,
        scoring: if a.no_per_step {
            metalab::algo::eval::Scoring::Ends
        } else {
            metalab::algo::eval::Scoring::EveryStep
        },
    };
    let against = match &a.against {
        Some(r) => Some(metalab::runs::resolve(&a.runs, r)?),
        None => None,
    };
    let record = match &a.lake {
        Some(folder) => metalab::saved::evaluate_lake(&dir, folder, &req)?,
        None => metalab::saved::evaluate_run_against(&dir, &req, against.as_deref())?,
    };
    print_saved_eval(&dir, &record);
    Ok(ExitCode::SUCCESS)
}

/// `metalab bench`: the fixed workloads, and the workbench's cost of drawing a long run.
fn bench(quick: bool, json: bool, only: Option<&str>, device: BenchDevice) -> Result<ExitCode> {
    let results = metalab::bench::run(quick, json, only, device)?;
    // The workbench's cost of drawing a long run: one 120×40 frame of a 100,000-point run.
    let frame = (device == BenchDevice::Cpu && only.is_none_or(|o| "frame".contains(o)))
        .then(|| metalab::tui::bench::frame_time(100_000, 50));
    if json {
        let frame_ms = frame.map(|d| d.as_secs_f64() * 1e3);
        let all = serde_json::json!({"workloads": results, "frame_ms_100k_points": frame_ms});
        out!("{}", serde_json::to_string_pretty(&all)?);
    } else if let Some(d) = frame {
        out!(
            "workbench frame, 100,000-point run at 120×40: {:.3} ms (mean of 50 renders)",
            d.as_secs_f64() * 1e3
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn workbench(project: &Path, defaults: &LaunchOptions) -> Result<ExitCode> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        say!(
            "metalab: the workbench needs a terminal, and this is not one.\n  \
             Run an experiment headless instead:  metalab run experiments/sinusoid-maml.ron\n  \
             (`metalab --help` lists every command)"
        );
        return Ok(ExitCode::from(2));
    }
    let ending = metalab::tui::run_with(project, defaults).context("the workbench failed")?;
    // Stopped from outside, it exits as `metalab run` does when stopped.
    Ok(match ending {
        metalab::tui::Ending::Quit => ExitCode::SUCCESS,
        metalab::tui::Ending::Signal | metalab::tui::Ending::TerminalLost(_) => ExitCode::from(130),
    })
}

fn check(files: &[PathBuf], data: Option<&Path>) -> Result<ExitCode> {
    if files.is_empty() {
        anyhow::bail!("no files to check\n  fix: metalab check experiments/*.ron");
    }
    let mut bad = 0;
    for f in files {
        match check_one(f, data) {
            Ok(line) => out!("ok  {}  ({line})", f.display()),
            Err(err) => {
                bad += 1;
                say!("{}", render(&err));
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `metalab export --group`: the named runs (or every finished one) aggregated over seeds.
fn export_group(names: &[String], root: &Path, out: &Path) -> Result<ExitCode> {
    use metalab::sweep::aggregate;
    let mut runs = aggregate::load_finished(root);
    if !names.is_empty() {
        let dirs = names
            .iter()
            .map(|n| metalab::runs::resolve(root, n))
            .collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<String> = dirs
            .iter()
            .filter_map(|d| metalab::runs::load_meta(d).ok().map(|m| m.id))
            .collect();
        runs.retain(|r| ids.contains(&r.meta.id));
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("aggregate.csv");
    let groups = aggregate::group(&runs);
    metalab::runs::atomic::write(&path, aggregate::to_csv(&groups).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    outp!("{}", aggregate::table(&groups));
    out!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn check_one(f: &Path, data: Option<&Path>) -> Result<String> {
    // Read once: what is checked is what was read (and a FIFO is refused, not read twice).
    let text = experiment::read_text(f)?;
    if f.to_string_lossy().ends_with(".sweep.ron") || metalab::sweep::is_sweep_text(&text) {
        return check_sweep(f, &text, data);
    }
    let mut e = experiment::parse_str(&text, f)?;
    if let (Some(d), experiment::FamilySpec::Omniglot(o)) = (data, &mut e.family) {
        o.root = d.to_path_buf();
    }
    let summary = metalab::tasks::check_family(&e.family, e.seed).map_err(|source| {
        metalab::engine::EngineError::Data {
            at: metalab::tasks::data_position(f),
            error: source,
        }
    })?;
    let arms: Vec<&str> = e.arms.iter().map(|a| a.name.as_str()).collect();
    Ok(format!(
        "{}: {} arm{}: {}; {summary}",
        e.name,
        arms.len(),
        if arms.len() == 1 { "" } else { "s" },
        arms.join(", ")
    ))
}

fn print_saved_eval(dir: &Path, r: &metalab::saved::SavedEval) {
    let p = &r.protocol;
    out!("{}", p.family);
    out!(
        "checkpoint iteration {}, {} tasks ({}), adaptation: {}",
        r.checkpoint_iteration,
        p.tasks,
        p.split,
        p.adaptation
    );
    out!("head: {}", p.head);
    if let Some(c) = &p.support_copies {
        out!(
            "support: {} distorted copies of each image added ({})",
            c.copies,
            c.distortions
        );
    }
    if let Some(lake) = &r.lake {
        out!(
            "{:<10} {:>6} {:>7} {:>7}",
            "RUN",
            "ITEMS",
            "ERRORS",
            "ERROR"
        );
        for run in &lake.runs {
            out!(
                "{:<10} {:>6} {:>7} {:>6.1}%",
                run.run,
                run.items,
                run.errors,
                100.0 * run.error_rate
            );
        }
        out!(
            "overall error rate {:.1}% ± {:.1} (mean over {} runs, 95% CI)",
            100.0 * lake.error_rate.mean,
            100.0 * lake.error_rate.ci95,
            lake.runs.len()
        );
    } else {
        out!("result: {}", metalab::runs::headline(&r.result));
    }
    if r.result.per_step.len() > 1 {
        out!("after each step: {}", per_step_line(&r.result.per_step));
    }
    if let Some(probe) = &r.embedding {
        out!(
            "task embedding ({} values, {} tasks): R² of a linear fit {}",
            probe.width,
            probe.tasks,
            probe
                .fits
                .iter()
                .map(|f| format!(
                    "{} {}",
                    f.property.name(),
                    f.fit.r2.map_or("undefined".into(), |r| format!("{r:.3}"))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        out!(
            "  degree-2 fit, on held-out tasks: {}",
            probe
                .fits
                .iter()
                .map(|f| format!(
                    "{} {}",
                    f.property.name(),
                    f.quadratic_r2
                        .map_or("undefined".into(), |r| format!("{r:.3}"))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(csv) = &probe.csv {
            out!(
                "embeddings and task parameters: {}",
                dir.join(csv).display()
            );
        }
    }
    if let Some(t) = &r.transfer {
        print_transfer(t);
    }
    out!("saved to {}", dir.join(metalab::saved::EVALS).display());
}

/// A task's group, its own name, or both (`sine` / `Hebrew` / `sine: task A`).
fn task_column(task: &metalab::transfer::TaskTransfer) -> String {
    match (&task.group, &task.name) {
        (Some(g), Some(n)) => format!("{g}: {n}"),
        (g, n) => g.clone().or_else(|| n.clone()).unwrap_or_default(),
    }
}

/// Each training task's loss ratio against the other run, flagged where significantly above 1.
fn print_transfer(t: &metalab::saved::TransferReport) {
    out!(
        "training tasks against run {} ({:?}), {} {} each: mean loss here / there, 95% CI",
        t.against,
        t.against_trunks,
        t.episodes,
        match t.scored_on {
            metalab::transfer::ScoredOn::FreshEpisodes => "episodes",
            metalab::transfer::ScoredOn::HeldOutParts =>
                "disjoint parts of its held-out drawings (each drawing once)",
        }
    );
    // Alphabet names run long (`Japanese (hiragana)`): the column is as wide as they are.
    let w = t
        .tasks
        .iter()
        .map(|task| task_column(task).chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    out!(
        "{:>5} {:<w$} {:>8} {:>21}",
        "TASK",
        "GROUP/NAME",
        "RATIO",
        "95% CI"
    );
    for task in &t.tasks {
        let group = task_column(task);
        match task.row {
            Some(r) => out!(
                "{:>5} {:<w$} {:>8.3} {:>21} {}",
                task.task,
                group,
                r.ratio,
                format!("[{:.3}, {:.3}]", r.lo, r.hi),
                if r.negative { "negative transfer" } else { "" }
            ),
            None => out!("{:>5} {:<w$} {:>8}", task.task, group, "n/a"),
        }
    }
    out!(
        "negative transfer: {}",
        metalab::transfer::summary(&t.tasks)
    );
}

/// `0: 20.0%  1: 61.3%  …` (accuracy where there is one, else the loss).
fn per_step_line(steps: &[metalab::metrics::StepResult]) -> String {
    steps
        .iter()
        .map(|s| match &s.accuracy {
            Some(a) => format!("{}: {:.1}%", s.step, 100.0 * a.mean),
            None => format!("{}: {:.4}", s.step, s.loss.mean),
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// A sweep checks when every variant validates and its task families build (each distinct
/// family once: most sweeps do not vary it).
fn check_sweep(f: &Path, text: &str, data: Option<&Path>) -> Result<String> {
    let sw = metalab::sweep::expand::expand_str(text, f)?;
    let mut seen: Vec<experiment::FamilySpec> = vec![];
    for v in &sw.variants {
        let mut fam = v.experiment.family.clone();
        if let (Some(d), experiment::FamilySpec::Omniglot(o)) = (data, &mut fam) {
            o.root = d.to_path_buf();
        }
        if seen.contains(&fam) {
            continue;
        }
        metalab::tasks::check_family(&fam, v.experiment.seed).map_err(|err| {
            let at = experiment::field_position(text, "experiment")
                .map(|(l, c)| format!("{l}:{c}:"))
                .unwrap_or_default();
            anyhow::anyhow!(
                "{}:{at} variant {} (`family` of {}): {err}",
                f.display(),
                v.index,
                sw.base_path.display()
            )
        })?;
        seen.push(fam);
    }
    let axes: Vec<&str> = sw.spec.axes.iter().map(|a| a.path.as_str()).collect();
    Ok(format!(
        "sweep {}: {} variant{} of {} over {}",
        sw.spec.name,
        sw.variants.len(),
        if sw.variants.len() == 1 { "" } else { "s" },
        sw.base_path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        axes.join(" × ")
    ))
}

/// A run's metrics for export, and what is wrong with them. A run's metrics file is part of
/// it: a missing one is an error, not an empty export. Damaged lines are named (the export
/// leaves them out); a partial last line of a run that did not finish is only what a killed run
/// leaves. A finished run whose final test line is lost still has it in `run.json`: exported
/// from there, and said.
fn export_metrics(
    dir: &Path,
    meta: &metalab::runs::RunMeta,
) -> Result<(metalab::runs::RunMetrics, Vec<String>)> {
    use metalab::runs::RunStatus;
    let path = dir.join(metalab::runs::METRICS);
    let file = metalab::runs::read_metrics(&path)?;
    let finished = meta.status == RunStatus::Finished;
    let mut notes: Vec<String> = file
        .damage
        .iter()
        .filter(|d| finished || !d.partial)
        .map(|d| {
            format!(
                "{}: {d}: not a metrics record; left out of the export",
                path.display()
            )
        })
        .collect();
    let mut m = metalab::runs::RunMetrics::from_lines(file.lines);
    if let (true, Some(fin)) = (finished, &meta.final_eval) {
        if !m
            .evals
            .iter()
            .any(|e| e.split == metalab::tasks::Split::Test)
        {
            notes.push(format!(
                "{}: the final test line is missing; exported from {} instead",
                path.display(),
                dir.join(metalab::runs::META).display()
            ));
            m.classification |= fin.accuracy.is_some();
            m.evals.push(fin.clone());
        }
    }
    Ok((m, notes))
}

/// A field of `metalab runs` on one line: a folder name or a copied `run.json` may hold a
/// newline, which would otherwise start a row of its own.
fn cell(s: &str) -> String {
    metalab::runs::printable(s).replace('\n', "?")
}

fn list_runs(root: &Path) {
    let runs = metalab::runs::list_runs(root);
    if runs.is_empty() {
        out!("no runs in {}", root.display());
        return;
    }
    out!(
        "{:<62} {:<11} {:>13}  {:<18} RESULT",
        "RUN",
        "STATUS",
        "ITERATIONS",
        "ALGORITHM"
    );
    for r in runs {
        out!(
            "{:<62} {:<11} {:>6}/{:<6}  {:<18} {}",
            cell(&r.id),
            r.status.label(),
            r.iteration,
            r.total_iterations,
            cell(&r.algorithm),
            cell(&r.headline.clone().unwrap_or_default())
        );
        match &r.status {
            metalab::runs::RunStatus::Damaged(why) => {
                // The reason and its fix, each on a line of its own (the fix names the id).
                let lines: Vec<String> = why.split("\n  ").map(cell).collect();
                out!("  damaged: {}", lines.join("\n  "));
            }
            metalab::runs::RunStatus::Interrupted
                if std::fs::symlink_metadata(r.dir.join(metalab::runs::CHECKPOINT)).is_err() =>
            {
                out!(
                    "  interrupted before its first checkpoint: nothing to resume; rerun it (`metalab rerun {}`)",
                    cell(&r.id)
                );
            }
            _ => {}
        }
    }
}
