//! One arm's training loop: sample tasks, step the algorithm, evaluate, checkpoint, report.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use super::messages::{EngineEvent, TaskPoint, TrainPoint};
use super::pool::WorkerPool;
use super::{Control, Prepared};
use crate::algo::eval::{evaluate_tasks, summarize};
use crate::algo::{self, AdaptMode, AlgoContext, MetaAlgorithm};
use crate::experiment::ModelSpec;
use crate::runs::checkpoint::Checkpoint;
use crate::runs::{self, EvalProtocol, MetricRecord, RunDir, RunMeta, RunStatus};
use crate::tasks::{Episode, Rng, Split, TaskFamily};

/// Salts that give the evaluation task sets their own streams: the same tasks at every
/// evaluation and for every arm, and never the training stream's tasks.
const PERIODIC_SALT: u64 = 0x7661_6c69_6461_7465;
const TRACKED_SALT: u64 = 0x7472_6163_6b65_6421;
pub(crate) const TEST_SALT: u64 = 0x7465_7374_7365_7421;

struct Failure {
    iteration: usize,
    reason: String,
}

fn fail(iteration: usize, reason: impl ToString) -> Failure {
    Failure {
        iteration,
        reason: reason.to_string(),
    }
}

/// Train-loss window being averaged into the next metrics line.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    loss: f64,
    acc: f64,
    count: usize,
    has_acc: bool,
}

pub(super) fn run(
    p: &Prepared,
    index: usize,
    threads: usize,
    control: &Control,
    tx: &Sender<EngineEvent>,
) {
    let mut run_dir = None;
    if let Err(f) = train(p, index, threads, control, tx, &mut run_dir) {
        if let Some(dir) = run_dir.as_mut() {
            let dir: &mut RunDir = dir;
            dir.meta.status = RunStatus::Failed(f.reason.clone());
            // The disk may be what failed; the event still reaches the user.
            let _ = dir.write_meta();
        }
        let _ = tx.send(EngineEvent::Failed {
            arm: index,
            iteration: f.iteration,
            reason: f.reason,
        });
    }
}

pub(crate) fn episodes(family: &dyn TaskFamily, split: Split, seed: u64, n: usize) -> Vec<Episode> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let t = family.sample_task(split, &mut rng);
            family.sample_episode(&t, &mut rng)
        })
        .collect()
}

fn train(
    p: &Prepared,
    index: usize,
    threads: usize,
    control: &Control,
    tx: &Sender<EngineEvent>,
    run_dir: &mut Option<RunDir>,
) -> Result<(), Failure> {
    let exp = &p.experiment;
    let arm = &exp.arms[index];
    let settings = exp.arm_settings(arm);
    let total = exp.train.iterations;
    let family = p.family.as_ref();
    let one_arm = exp.with_only_arm(&arm.name).expect("arm exists");

    let pool = WorkerPool::new(&p.net, exp.device, exp.seed, threads).map_err(|e| fail(0, e))?;
    let ctx = AlgoContext {
        net: p.net.clone(),
        settings: settings.clone(),
        total_iterations: total,
        seed: exp.seed,
    };
    let mut algo = algo::build(&arm.algorithm, ctx, family);
    let mut rng = Rng::seed_from_u64(exp.seed);
    let mut window = Window::default();
    let mut start = 0;
    let mut seconds_before = 0.0;

    let dir = if let Some(dir) = &p.resume {
        let ck_path = dir.join(runs::CHECKPOINT);
        let ck = Checkpoint::load(&ck_path).map_err(|e| fail(0, e))?;
        start = ck
            .meta_parse("iteration", &ck_path)
            .map_err(|e| fail(0, e))?;
        let word_pos: u128 = ck
            .meta_parse("rng_word_pos", &ck_path)
            .map_err(|e| fail(start, e))?;
        rng.set_word_pos(word_pos);
        window = Window {
            loss: ck
                .meta_parse("window_loss", &ck_path)
                .map_err(|e| fail(start, e))?,
            acc: ck
                .meta_parse("window_acc", &ck_path)
                .map_err(|e| fail(start, e))?,
            count: ck
                .meta_parse("window_count", &ck_path)
                .map_err(|e| fail(start, e))?,
            has_acc: ck
                .meta_parse("window_has_acc", &ck_path)
                .map_err(|e| fail(start, e))?,
        };
        seconds_before = ck
            .meta_parse("seconds", &ck_path)
            .map_err(|e| fail(start, e))?;
        algo.load_state(&ck.tensors)
            .map_err(|e| fail(start, format!("{}: {e}", ck_path.display())))?;
        let mut d = RunDir::reopen(dir, start).map_err(|e| fail(start, e))?;
        d.meta.status = RunStatus::Running;
        d.meta.pid = std::process::id();
        d
    } else {
        let meta = RunMeta {
            id: String::new(),
            experiment: exp.name.clone(),
            arm: arm.name.clone(),
            algorithm: arm.algorithm.label().into(),
            status: RunStatus::Running,
            started_unix: runs::now_unix(),
            updated_unix: 0,
            iteration: 0,
            total_iterations: total,
            seed: exp.seed,
            threads,
            device: format!("{:?}", exp.device),
            params: p.net.num_params(),
            family: family.describe(),
            class_split: family.split_record(),
            protocol: protocol(p, algo.adapt_start().1),
            final_eval: None,
            headline: None,
            seconds: 0.0,
            pid: std::process::id(),
            metalab_version: env!("CARGO_PKG_VERSION").into(),
            source: p.opts.source.clone(),
            rerun_of: p.opts.rerun_of.clone(),
        };
        RunDir::create(&p.opts.runs_root, &one_arm, meta).map_err(|e| fail(0, e))?
    };
    let dir = run_dir.insert(dir);
    dir.write_meta().map_err(|e| fail(start, e))?;

    let _ = tx.send(EngineEvent::Started {
        arm: index,
        name: arm.name.clone(),
        run_dir: dir.dir.clone(),
        algorithm: arm.algorithm.label().into(),
        total_iterations: total,
        start_iteration: start,
        params: p.net.num_params(),
        family: family.describe(),
        classification: p.family.shape().kind == crate::tasks::TaskKind::Classification,
    });

    let periodic = episodes(
        family,
        Split::Validation,
        exp.seed ^ PERIODIC_SALT,
        exp.eval.periodic_tasks,
    );
    let tracked = episodes(
        family,
        Split::Validation,
        exp.seed ^ TRACKED_SALT,
        exp.eval.tracked_tasks,
    );
    let clock = Instant::now();
    let elapsed = |c: &Instant| seconds_before + c.elapsed().as_secs_f64();
    let mut window_clock = Instant::now();
    let mut window_start = start;

    let mut it = start;
    while it < total {
        if control.paused() && !control.stop_requested() {
            let _ = tx.send(EngineEvent::Paused { arm: index });
            while control.paused() && !control.stop_requested() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = tx.send(EngineEvent::Resumed { arm: index });
            window_clock = Instant::now();
            window_start = it;
        }
        if control.stop_requested() {
            dir.meta.status = RunStatus::Stopped;
            checkpoint(
                algo.as_ref(),
                dir,
                it,
                &rng,
                window,
                elapsed(&clock),
                index,
                tx,
            )
            .map_err(|e| fail(it, e))?;
            let _ = tx.send(EngineEvent::Finished {
                arm: index,
                iteration: it,
                stopped: true,
                final_eval: None,
                seconds: elapsed(&clock),
            });
            return Ok(());
        }

        let batch = algo.sample_batch(family, &mut rng, exp.train.meta_batch);
        let stats = algo.step(it, batch, &pool).map_err(|e| fail(it, e))?;
        if !stats.loss.is_finite() || stats.loss > exp.train.max_loss {
            return Err(fail(
                it,
                format!(
                    "training loss is {} at iteration {} (limit train.max_loss = {}): the arm diverged\n  fix: lower the learning rates (meta_lr {}, inner_lr {}) or the inner steps",
                    stats.loss,
                    it + 1,
                    exp.train.max_loss,
                    settings.meta_lr,
                    settings.inner_lr
                ),
            ));
        }
        window.loss += stats.loss;
        window.count += 1;
        if let Some(a) = stats.accuracy {
            window.acc += a;
            window.has_acc = true;
        }
        it += 1;

        if it % exp.train.log_every == 0 || it == total {
            let point = TrainPoint {
                iteration: it,
                loss: window.loss / window.count as f64,
                accuracy: window.has_acc.then(|| window.acc / window.count as f64),
            };
            let rate = (it - window_start) as f64 / window_clock.elapsed().as_secs_f64().max(1e-9);
            window_clock = Instant::now();
            window_start = it;
            window = Window::default();
            dir.append(MetricRecord::Train(point.clone()), elapsed(&clock))
                .map_err(|e| fail(it, e))?;
            let _ = tx.send(EngineEvent::Train {
                arm: index,
                point,
                iters_per_sec: rate,
            });
        }

        let eval_now = it == total || (exp.eval.every > 0 && it % exp.eval.every == 0);
        if eval_now {
            evaluate(
                p,
                algo.as_ref(),
                &pool,
                index,
                it,
                &periodic,
                &tracked,
                dir,
                tx,
                elapsed(&clock),
            )
            .map_err(|e| fail(it, e))?;
            checkpoint(
                algo.as_ref(),
                dir,
                it,
                &rng,
                window,
                elapsed(&clock),
                index,
                tx,
            )
            .map_err(|e| fail(it, e))?;
        }
    }

    // The final, published number: fresh test tasks, the full protocol.
    let test = episodes(family, Split::Test, exp.seed ^ TEST_SALT, exp.eval.tasks);
    let (start_params, mode) = algo.adapt_start();
    let results = evaluate_tasks(
        &pool,
        start_params,
        mode,
        test,
        exp.eval.inner_steps,
        exp.eval.inner_lr,
    )
    .map_err(|e| fail(it, e))?;
    let (steps, lr) = mode.effective(exp.eval.inner_steps, exp.eval.inner_lr);
    let result = summarize(total, "test", &results, steps, lr);
    dir.append(MetricRecord::Eval(result.clone()), elapsed(&clock))
        .map_err(|e| fail(it, e))?;
    dir.meta.headline = Some(runs::headline(&result));
    dir.meta.final_eval = Some(result.clone());
    dir.meta.status = RunStatus::Finished;
    dir.meta.iteration = total;
    dir.meta.seconds = elapsed(&clock);
    dir.write_meta().map_err(|e| fail(it, e))?;
    let _ = tx.send(EngineEvent::Eval {
        arm: index,
        result: result.clone(),
    });
    let _ = tx.send(EngineEvent::Finished {
        arm: index,
        iteration: total,
        stopped: false,
        final_eval: Some(result),
        seconds: elapsed(&clock),
    });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn evaluate(
    p: &Prepared,
    algo: &dyn MetaAlgorithm,
    pool: &WorkerPool,
    index: usize,
    it: usize,
    periodic: &[Episode],
    tracked: &[Episode],
    dir: &mut RunDir,
    tx: &Sender<EngineEvent>,
    t: f64,
) -> Result<(), String> {
    let e = &p.experiment.eval;
    let (start, mode) = algo.adapt_start();
    let results = evaluate_tasks(
        pool,
        start.clone(),
        mode,
        periodic.to_vec(),
        e.inner_steps,
        e.inner_lr,
    )?;
    let (steps, lr) = mode.effective(e.inner_steps, e.inner_lr);
    let result = summarize(it, "validation", &results, steps, lr);
    dir.append(MetricRecord::Eval(result.clone()), t)
        .map_err(|e| e.to_string())?;
    let _ = tx.send(EngineEvent::Eval { arm: index, result });
    let per_task = evaluate_tasks(
        pool,
        start,
        mode,
        tracked.to_vec(),
        e.inner_steps,
        e.inner_lr,
    )?;
    for (task, r) in per_task.iter().enumerate() {
        let point = TaskPoint {
            iteration: it,
            task,
            loss: r.loss,
            accuracy: r.accuracy,
        };
        dir.append(MetricRecord::Task(point.clone()), t)
            .map_err(|e| e.to_string())?;
        let _ = tx.send(EngineEvent::Task { arm: index, point });
    }
    Ok(())
}

/// Save the checkpoint, then record the iteration in `run.json` (in that order, so `run.json`
/// never claims more than the checkpoint holds), then tell the front end.
#[allow(clippy::too_many_arguments)]
fn checkpoint(
    algo: &dyn MetaAlgorithm,
    dir: &mut RunDir,
    it: usize,
    rng: &Rng,
    window: Window,
    seconds: f64,
    index: usize,
    tx: &Sender<EngineEvent>,
) -> Result<(), runs::RunError> {
    save_checkpoint(algo, dir, it, rng, window, seconds)?;
    dir.meta.iteration = it;
    dir.meta.seconds = seconds;
    dir.write_meta()?;
    let _ = tx.send(EngineEvent::Checkpoint {
        arm: index,
        iteration: it,
        path: dir.checkpoint_path(),
    });
    Ok(())
}

fn save_checkpoint(
    algo: &dyn MetaAlgorithm,
    dir: &RunDir,
    it: usize,
    rng: &Rng,
    w: Window,
    seconds: f64,
) -> Result<(), runs::RunError> {
    let mut meta = BTreeMap::new();
    meta.insert("iteration".into(), it.to_string());
    meta.insert("rng_word_pos".into(), rng.get_word_pos().to_string());
    // Floats as their exact decimal round-trip form, so resume continues bit-for-bit.
    meta.insert("window_loss".into(), format!("{:?}", w.loss));
    meta.insert("window_acc".into(), format!("{:?}", w.acc));
    meta.insert("window_count".into(), w.count.to_string());
    meta.insert("window_has_acc".into(), w.has_acc.to_string());
    meta.insert("seconds".into(), format!("{seconds:?}"));
    meta.insert("format".into(), "metalab-checkpoint-1".into());
    Checkpoint {
        tensors: algo.state().into_iter().collect(),
        meta,
    }
    .save(&dir.checkpoint_path())
}

pub(crate) fn protocol(p: &Prepared, mode: AdaptMode) -> EvalProtocol {
    let e = &p.experiment.eval;
    let bn = match (&p.experiment.model, mode) {
        (ModelSpec::Conv(c), AdaptMode::Metric { .. }) if c.batch_norm => {
            "transductive: batch statistics of each episode's support and query examples together (one pass), no running averages"
        }
        (ModelSpec::Conv(c), _) if c.batch_norm => {
            "transductive: batch statistics of each support/query batch, no running averages"
        }
        _ => "none",
    };
    let (inner_steps, inner_lr) = mode.effective(e.inner_steps, e.inner_lr);
    EvalProtocol {
        test_tasks: e.tasks,
        periodic_tasks: e.periodic_tasks,
        inner_steps,
        inner_lr,
        final_split: "test".into(),
        periodic_split: "validation".into(),
        batch_norm: bn.into(),
        adaptation: mode.describe(inner_steps, inner_lr),
    }
}
