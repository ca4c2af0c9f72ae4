//! One arm's run as an object: open it (fresh or from a checkpoint), then the loop of the
//! paper's algorithm box — sample a meta-batch, take a meta-step, log, now and then evaluate and
//! checkpoint — then the final test on fresh tasks.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;

use super::control::Control;
use super::messages::{ArmIndex, EngineEvent, FailureCause};
use super::prepared::Prepared;
use crate::algo::eval::{adapt_and_fit, adapt_and_score, summarize, EvalProtocol, Scoring};
use crate::algo::{self, AdaptMode, AlgoContext, AlgoError, MetaAlgorithm, StepStats};
use crate::experiment::ArmSettings;
use crate::metrics::{ClassFit, EvalResult, QueryScore, TaskFit, TaskPoint, TrainWindow};
use crate::pool::{PoolError, WorkerPool};
use crate::runs::checkpoint::{Checkpoint, ResumeState};
use crate::runs::embeddings::group_names;
use crate::runs::{self, EmbeddingRecord, MetricRecord, RunDir, RunFacts, RunStatus};
use crate::tasks::streams::{episodes, tasks_and_episodes, EvalStream};
use crate::tasks::{Episode, Rng, Split, Targets, Task, TaskKind};
use crate::transfer::{self, TaskLosses};

/// Why an arm ended early, and when.
pub(super) struct Failure {
    iteration: usize,
    cause: FailureCause,
    reason: String,
}

impl Failure {
    /// A write failed for want of space: what to do next depends on whether the run has a
    /// checkpoint, which only the arm's end knows.
    fn disk_full(&self) -> bool {
        self.cause == FailureCause::Write { disk_full: true }
    }
}

fn fail(iteration: usize, cause: FailureCause, reason: impl ToString) -> Failure {
    Failure {
        iteration,
        cause,
        reason: reason.to_string(),
    }
}

/// What made the workers fail: the GPU's memory (which a resume recovers from), or the worker.
fn pool_cause(e: &PoolError) -> FailureCause {
    match e {
        PoolError::OutOfMemory(_) => FailureCause::OutOfMemory,
        _ => FailureCause::Worker,
    }
}

/// A failed meta-iteration or evaluation: a worker's, or a diverged update.
fn algo_failure(iteration: usize, e: AlgoError) -> Failure {
    let cause = match &e {
        AlgoError::NotFinite { .. } => FailureCause::Diverged,
        AlgoError::Pool(p) => pool_cause(p),
        AlgoError::MissingState(_) | AlgoError::StateLength { .. } => FailureCause::Open,
    };
    fail(iteration, cause, e)
}

/// A failed write to the run folder.
fn fail_io(iteration: usize, e: runs::RunError) -> Failure {
    let disk_full = matches!(&e, runs::RunError::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)));
    fail(iteration, FailureCause::Write { disk_full }, e)
}

/// Train one arm to the end (or until stopped), reporting on `tx`. Failures are reported, and
/// recorded in the run directory when there is one.
pub(super) fn run(
    p: &Prepared,
    index: ArmIndex,
    threads: usize,
    control: &Control,
    tx: &Sender<EngineEvent>,
) {
    let result = ArmRun::open(p, index, threads, tx).and_then(|mut arm| {
        let mut trained = arm.train(control);
        if let Err(f) = &mut trained {
            if f.cause == FailureCause::OutOfMemory {
                arm.checkpoint_after_out_of_memory(f);
            }
            arm.dir.meta.status = RunStatus::Failed(f.reason.clone());
            let recorded = arm.dir.write_meta().is_ok();
            let dir = arm.dir.dir.clone();
            let id = runs::run_id(&dir);
            let checkpoint = runs::checkpoint::Checkpoint::load(&dir.join(runs::CHECKPOINT))
                .ok()
                .map(|c| c.resume.iteration);
            // The disk may be what failed; the event still reaches the user, with only the
            // next step that works from what is on disk.
            match (checkpoint, recorded) {
                (Some(at), _) if f.disk_full() => f.reason += &format!(
                    "; its checkpoint at iteration {at} is intact: after freeing space, `metalab resume {id}` continues from there"
                ),
                (None, false) => {
                    // Not even the failure could be recorded, and there is nothing to resume:
                    // a folder left behind would read as a run still training.
                    drop(arm);
                    let _ = std::fs::remove_dir_all(&dir);
                    f.reason += &format!("\n  the run failed before its first checkpoint and its folder {} was removed: run it again", dir.display());
                }
                (None, true) if f.disk_full() => f.reason += &format!(
                    "; the run failed before its first checkpoint: after freeing space, `metalab rerun {id}` trains it again"
                ),
                _ => {}
            }
        }
        trained
    });
    if let Err(f) = result {
        let _ = tx.send(EngineEvent::Failed {
            arm: index,
            iteration: f.iteration,
            cause: f.cause,
            reason: f.reason,
        });
    }
}

/// The tracked tasks' per-step views at one evaluation: regression fits on a grid, or
/// classification's classes and query results.
struct TrackedFits {
    regression: Vec<TaskFit>,
    classes: Vec<ClassFit>,
}

/// A tracked classification task's view: `None` unless its task names classes and its
/// support set is labelled.
fn class_fit(
    family: &dyn crate::tasks::TaskFamily,
    iteration: usize,
    task: usize,
    r: &algo::eval::TaskEval,
    (t, ep): &(Task, Episode),
) -> Option<ClassFit> {
    let (Task::Classes { classes, .. }, Targets::Classes(labels)) = (t, &ep.support.y) else {
        return None;
    };
    Some(ClassFit {
        iteration,
        task,
        classes: classes
            .iter()
            .map(|&c| {
                family
                    .class_label(c)
                    .unwrap_or_else(|| format!("class {c}"))
            })
            .collect(),
        support_labels: labels.clone(),
        steps: r
            .per_step
            .iter()
            .map(|s| QueryScore {
                loss: s.loss,
                accuracy: s.accuracy,
            })
            .collect(),
    })
}

/// Grid points of a tracked regression task's fit: enough for a smooth curve on a terminal or
/// a plot, few enough that predicting them at every step costs little next to the evaluation.
const FIT_POINTS: usize = 100;

/// Reopen a run directory to continue it: the algorithm's state and the task stream's position
/// come from its checkpoint.
fn reopen(
    dir: &std::path::Path,
    algo: &mut dyn MetaAlgorithm,
    rng: &mut Rng,
) -> Result<(RunDir, ResumeState), Failure> {
    let path = dir.join(runs::CHECKPOINT);
    let ck = Checkpoint::load(&path).map_err(|e| fail(0, FailureCause::Open, e))?;
    let at = ck.resume.iteration;
    rng.set_word_pos(ck.resume.rng_word_pos);
    algo.load_state(&ck.tensors)
        .map_err(|e| fail(at, FailureCause::Open, format!("{}: {e}", path.display())))?;
    let mut d = RunDir::reopen(dir, at).map_err(|e| fail(at, FailureCause::Open, e))?;
    d.meta.status = RunStatus::Running;
    d.meta.pid = std::process::id();
    // A resumed run may continue on another machine (a requeued Slurm task).
    d.meta.host = runs::local_host();
    d.meta.resumed_at.push(at);
    Ok((d, ck.resume))
}

/// A new run directory for arm `index`, with its one-arm config frozen and its record begun.
fn create(
    p: &Prepared,
    index: ArmIndex,
    threads: usize,
    algo: &dyn MetaAlgorithm,
) -> Result<RunDir, Failure> {
    let exp = &p.experiment;
    let arm = &exp.arms[index];
    let one_arm = exp.with_only_arm(&arm.name).expect("arm exists");
    let facts = RunFacts {
        threads,
        params: p.net.num_params(),
        family: p.family.describe(),
        class_split: p.family.split_record(),
        protocol: EvalProtocol {
            eval_family: (!Arc::ptr_eq(&p.family, &p.eval_family))
                .then(|| p.eval_family.describe()),
            ..EvalProtocol::new(&exp.eval, algo.adapt_start().1, p.net.batch_norm())
        },
        source: p.opts.source.clone(),
        rerun_of: p.opts.rerun_of.clone(),
        variant: p.opts.variant.clone(),
    };
    RunDir::create(&p.opts.runs_root, &one_arm, facts).map_err(|e| fail(0, FailureCause::Open, e))
}

/// Training seconds, counting those before a resume.
struct Clock {
    before: f64,
    started: Instant,
}

impl Clock {
    fn seconds(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

/// Meta-iterations per second since the last log line (or since a pause ended).
struct Rate {
    since: Instant,
    from: usize,
}

impl Rate {
    fn restart(&mut self, it: usize) {
        *self = Rate {
            since: Instant::now(),
            from: it,
        };
    }
    fn per_second(&self, it: usize) -> f64 {
        (it - self.from) as f64 / self.since.elapsed().as_secs_f64().max(1e-9)
    }
}

/// One arm of a launched experiment, from its first meta-iteration (or its checkpoint) to its
/// final test.
pub(super) struct ArmRun<'a> {
    p: &'a Prepared,
    index: ArmIndex,
    tx: &'a Sender<EngineEvent>,
    settings: ArmSettings,
    pool: WorkerPool,
    algo: Box<dyn MetaAlgorithm>,
    /// The training task stream; its position is checkpointed.
    rng: Rng,
    /// Completed meta-iterations.
    it: usize,
    window: TrainWindow,
    dir: RunDir,
    clock: Clock,
    rate: Rate,
    /// Fixed validation tasks: the periodic evaluation's and the per-task panels'.
    periodic: Vec<Episode>,
    /// The tasks `periodic`'s episodes come from (what a task embedding is compared with).
    periodic_tasks: Vec<Task>,
    /// The tracked tasks (their true functions are drawn for regression) and their episodes.
    tracked: Vec<(Task, Episode)>,
    /// The task stream's position before the meta-iteration in flight drew its tasks: where a
    /// checkpoint after a failed meta-iteration puts it back.
    rng_before_step: Option<u128>,
}

impl<'a> ArmRun<'a> {
    /// Build the algorithm and its workers, then create the run directory or reopen the one
    /// being resumed (restoring the algorithm, the task stream and the metrics window).
    fn open(
        p: &'a Prepared,
        index: ArmIndex,
        threads: usize,
        tx: &'a Sender<EngineEvent>,
    ) -> Result<ArmRun<'a>, Failure> {
        let exp = &p.experiment;
        let arm = &exp.arms[index];
        let settings = exp.arm_settings(arm);
        let family = p.family.as_ref();
        let kernels = p.opts.gpu_kernels.clone();
        let pool = WorkerPool::with_kernels(&p.net, exp.device, kernels, exp.seed, threads)
            .map_err(|e| fail(0, FailureCause::Start, e))?;
        let ctx = AlgoContext {
            net: p.net.clone(),
            settings: settings.clone(),
            total_iterations: exp.train.iterations,
            seed: exp.seed,
        };
        let mut algo = algo::build(&arm.algorithm, ctx, family);
        let mut rng = Rng::seed_from_u64(exp.seed);
        let (periodic_tasks, periodic): (Vec<Task>, Vec<Episode>) = tasks_and_episodes(
            p.eval_family.as_ref(),
            Split::Validation,
            EvalStream::Periodic.seed(exp.seed),
            exp.eval.periodic_tasks,
        )
        .into_iter()
        .unzip();
        let (dir, resume) = match &p.resume {
            Some(dir) => reopen(dir, algo.as_mut(), &mut rng)?,
            None => (
                create(p, index, threads, algo.as_ref())?,
                ResumeState::default(),
            ),
        };
        let mut run = ArmRun {
            p,
            index,
            tx,
            settings,
            pool,
            algo,
            rng,
            it: resume.iteration,
            window: resume.window,
            dir,
            clock: Clock {
                before: resume.seconds,
                started: Instant::now(),
            },
            rate: Rate {
                since: Instant::now(),
                from: resume.iteration,
            },
            periodic,
            periodic_tasks,
            tracked: tasks_and_episodes(
                p.eval_family.as_ref(),
                Split::Validation,
                EvalStream::Tracked.seed(exp.seed),
                exp.eval.tracked_tasks,
            ),
            rng_before_step: None,
        };
        if let Err(e) = run.dir.write_meta() {
            let mut f = fail_io(run.it, e);
            if p.resume.is_none() {
                // A new run that cannot record itself (a full disk) is not a run: leave no
                // folder that would read as one still training, as `RunDir::create` does.
                let dir = run.dir.dir.clone();
                drop(run);
                let _ = std::fs::remove_dir_all(&dir);
                f.reason += &format!(
                    "\n  the run could not be created; its folder {} was removed: run it again",
                    dir.display()
                );
            }
            return Err(f);
        }
        run.send(EngineEvent::Started {
            arm: index,
            name: arm.name.clone(),
            run_dir: run.dir.dir.clone(),
            algorithm: arm.algorithm.label().into(),
            total_iterations: exp.train.iterations,
            start_iteration: run.it,
            params: p.net.num_params(),
            family: family.describe(),
            classification: family.shape().kind == TaskKind::Classification,
            augment: crate::tasks::augment::in_words(exp.train.augment),
        });
        run.clock.started = Instant::now();
        run.rate.restart(run.it);
        Ok(run)
    }

    /// The meta-training loop.
    fn train(&mut self, control: &Control) -> Result<(), Failure> {
        while self.it < self.total() {
            self.wait_while_paused(control);
            if control.stop_requested() {
                return self.stop();
            }
            let stats = self.step()?;
            self.window.add(stats.loss, stats.accuracy);
            self.it += 1;
            if self.it.is_multiple_of(self.p.experiment.train.log_every) || self.it == self.total()
            {
                self.log()?;
            }
            let every = self.p.experiment.eval.every;
            if self.it == self.total() || (every > 0 && self.it.is_multiple_of(every)) {
                let fits = self.evaluate()?;
                // The checkpoint before the figure: a disk that fills up at an evaluation must
                // lose the figure, not the iterations since the last checkpoint.
                self.checkpoint()?;
                self.write_fits(fits)?;
                if let Some(record) = self.algo.affinity(self.it) {
                    let written = self.dir.write_affinity(&record);
                    written.map_err(|e| fail_io(self.it, e))?;
                    self.send(EngineEvent::Affinity {
                        arm: self.index,
                        record: Box::new(record),
                    });
                }
                if let Some(record) = self.embeddings()? {
                    let written = self.dir.write_embeddings(&record);
                    written.map_err(|e| fail_io(self.it, e))?;
                    self.send(EngineEvent::Embeddings {
                        arm: self.index,
                        record: Box::new(record),
                    });
                }
            }
        }
        self.finish()
    }

    fn total(&self) -> usize {
        self.p.experiment.train.iterations
    }

    fn send(&self, event: EngineEvent) {
        // A front end that has gone away does not stop training.
        let _ = self.tx.send(event);
    }

    fn failure(&self, cause: FailureCause, reason: impl ToString) -> Failure {
        fail(self.it, cause, reason)
    }

    /// The workers' failure in an evaluation.
    fn pool_failure(&self, e: PoolError) -> Failure {
        fail(self.it, pool_cause(&e), e)
    }

    /// Out of GPU memory: a checkpoint of the last complete meta-iteration (the failed one's
    /// draw of tasks undone, so a resumed run is the run that never failed), and the reason
    /// saying how to go on. A checkpoint that cannot be written leaves the last periodic one.
    fn checkpoint_after_out_of_memory(&mut self, f: &mut Failure) {
        if let Some(pos) = self.rng_before_step.take() {
            self.rng.set_word_pos(pos);
        }
        let id = runs::run_id(&self.dir.dir);
        f.reason += &match self.checkpoint() {
            Ok(()) => format!(
                "\n  the run is checkpointed at iteration {}: `metalab resume {id}` continues from there once the memory is free (the engine cuts its calls to what is free when it starts them)",
                self.it
            ),
            Err(e) => format!("\n  its checkpoint could not be written ({}): the last periodic checkpoint resumes with `metalab resume {id}`", e.reason),
        };
    }

    fn wait_while_paused(&mut self, control: &Control) {
        if !control.paused() || control.stop_requested() {
            return;
        }
        self.send(EngineEvent::Paused { arm: self.index });
        while control.paused() && !control.stop_requested() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.send(EngineEvent::Resumed { arm: self.index });
        self.rate.restart(self.it);
    }

    /// One meta-iteration on a fresh meta-batch; a diverged loss ends the arm with a fix.
    fn step(&mut self) -> Result<StepStats, Failure> {
        self.rng_before_step = Some(self.rng.get_word_pos());
        let exp = &self.p.experiment;
        let batch =
            self.algo
                .sample_batch(self.p.family.as_ref(), &mut self.rng, exp.train.meta_batch);
        let stats = self
            .algo
            .step(self.it, batch, &self.pool)
            .map_err(|e| algo_failure(self.it, e))?;
        self.rng_before_step = None;
        if !stats.loss.is_finite() || stats.loss > exp.train.max_loss {
            return Err(self.failure(FailureCause::Diverged, format!(
                "training loss is {} at iteration {} (limit train.max_loss = {}): the arm diverged\n  fix: lower the learning rates (meta_lr {}, inner_lr {}) or the inner steps",
                stats.loss,
                self.it + 1,
                exp.train.max_loss,
                self.settings.meta_lr,
                self.settings.inner_lr
            )));
        }
        Ok(stats)
    }

    /// Write the window's mean training loss as a metrics line.
    fn log(&mut self) -> Result<(), Failure> {
        let point = self.window.take_point(self.it);
        let iters_per_sec = self.rate.per_second(self.it);
        self.rate.restart(self.it);
        self.dir
            .append(MetricRecord::Train(point.clone()), self.clock.seconds())
            .map_err(|e| fail_io(self.it, e))?;
        self.send(EngineEvent::Train {
            arm: self.index,
            point,
            iters_per_sec,
        });
        Ok(())
    }

    /// Adapt to `tasks` from the current meta-parameters with the evaluation's protocol.
    fn adapt_and_score(&self, tasks: &[Episode]) -> Result<Vec<algo::eval::TaskEval>, Failure> {
        let e = &self.p.experiment.eval;
        let (start, mode) = self.algo.adapt_start();
        adapt_and_score(
            &self.pool,
            start,
            mode,
            tasks.to_vec(),
            e.inner_steps,
            e.inner_lr,
            Scoring::EveryStep,
        )
        .map_err(|err| self.pool_failure(err))
    }

    fn summary(&self, split: Split, results: &[algo::eval::TaskEval]) -> EvalResult {
        let e = &self.p.experiment.eval;
        // The steps and rate the arm's rule actually used (none for metric arms).
        let (steps, lr) = self
            .algo
            .adapt_start()
            .1
            .effective(e.inner_steps, e.inner_lr);
        summarize(self.it, split, results, steps, lr)
    }

    /// The periodic validation and the tracked tasks' points, recorded; the tracked tasks' fits,
    /// for [`Self::write_fits`] once the checkpoint is safe.
    fn evaluate(&mut self) -> Result<TrackedFits, Failure> {
        let t = self.clock.seconds();
        let results = self.adapt_and_score(&self.periodic)?;
        let result = self.summary(Split::Validation, &results);
        self.dir
            .append(MetricRecord::Eval(result.clone()), t)
            .map_err(|e| fail_io(self.it, e))?;
        self.send(EngineEvent::Eval {
            arm: self.index,
            result,
        });
        let (per_task, fits) = self.score_tracked()?;
        for (task, r) in per_task.iter().enumerate() {
            let point = TaskPoint {
                iteration: self.it,
                task,
                loss: r.loss,
                accuracy: r.accuracy,
            };
            self.dir
                .append(MetricRecord::Task(point.clone()), t)
                .map_err(|e| fail_io(self.it, e))?;
            self.send(EngineEvent::Task {
                arm: self.index,
                point,
            });
        }
        Ok(fits)
    }

    fn write_fits(&mut self, fits: TrackedFits) -> Result<(), Failure> {
        let TrackedFits {
            regression,
            classes,
        } = fits;
        if !classes.is_empty() {
            self.dir
                .write_class_fits(&classes)
                .map_err(|e| fail_io(self.it, e))?;
            for fit in classes {
                self.send(EngineEvent::ClassFit {
                    arm: self.index,
                    fit,
                });
            }
        }
        let fits = regression;
        if fits.is_empty() {
            return Ok(());
        }
        self.dir
            .write_fits(&fits)
            .map_err(|e| fail_io(self.it, e))?;
        for fit in fits {
            self.send(EngineEvent::Fit {
                arm: self.index,
                fit,
            });
        }
        Ok(())
    }

    /// The tracked tasks adapted as every evaluation adapts, and, for those whose family draws
    /// a true function, the fit on a grid after each step; for classification tasks, their
    /// classes and the query result after each step.
    fn score_tracked(&self) -> Result<(Vec<algo::eval::TaskEval>, TrackedFits), Failure> {
        let e = &self.p.experiment.eval;
        let family = self.p.eval_family.as_ref();
        let curves: Vec<_> = self
            .tracked
            .iter()
            .map(|(t, _)| family.curve(t, FIT_POINTS))
            .collect();
        let items = self
            .tracked
            .iter()
            .zip(&curves)
            .map(|((_, ep), c)| (ep.clone(), c.as_ref().map(|(x, _)| x.clone())))
            .collect();
        let (start, mode) = self.algo.adapt_start();
        let head_start = self.p.net.layout.head_start;
        let scored = adapt_and_fit(
            &self.pool,
            start,
            mode,
            head_start,
            items,
            e.inner_steps,
            e.inner_lr,
        )
        .map_err(|err| self.pool_failure(err))?;
        let mut fits = vec![];
        let mut classes = vec![];
        let mut results = Vec::with_capacity(scored.len());
        for (task, ((r, predictions), (curve, (_, ep)))) in scored
            .into_iter()
            .zip(curves.into_iter().zip(&self.tracked))
            .enumerate()
        {
            if let (Some(predictions), Some((x, truth)), Targets::Values(sy)) =
                (predictions, curve, &ep.support.y)
            {
                fits.push(TaskFit {
                    iteration: self.it,
                    task,
                    x,
                    truth,
                    support_x: ep.support.x.clone(),
                    support_y: sy.clone(),
                    predictions,
                });
            } else if let Some(fit) = class_fit(family, self.it, task, &r, &self.tracked[task]) {
                classes.push(fit);
            }
            results.push(r);
        }
        let fits = TrackedFits {
            regression: fits,
            classes,
        };
        Ok((results, fits))
    }

    /// For an arm that adapts a task embedding (CAVIA's context), the periodic validation
    /// tasks' embeddings after the evaluation's adaptation, with what is known of each task.
    fn embeddings(&self) -> Result<Option<EmbeddingRecord>, Failure> {
        let e = &self.p.experiment.eval;
        let (start, mode) = self.algo.adapt_start();
        let AdaptMode::Context { context, lr } = mode else {
            return Ok(None);
        };
        let (steps, _) = mode.effective(e.inner_steps, e.inner_lr);
        let embeddings =
            algo::cavia::embeddings(&self.pool, start, context, lr, self.periodic.clone(), steps)
                .map_err(|err| self.pool_failure(err))?;
        let mut record = EmbeddingRecord::new(
            self.it,
            steps,
            format!(
                "the {} periodic validation tasks, adapted as the evaluation adapts",
                self.periodic.len()
            ),
            &self.periodic_tasks,
            embeddings,
            &group_names(&self.p.experiment.family),
        );
        record.group_by_class_folder(self.p.family.as_ref(), &self.periodic_tasks);
        Ok(Some(record))
    }

    /// Save the checkpoint, then record the iteration in `run.json` (in that order, so
    /// `run.json` never claims more than the checkpoint holds), then tell the front end.
    fn checkpoint(&mut self) -> Result<(), Failure> {
        let seconds = self.clock.seconds();
        let ck = Checkpoint {
            tensors: self.algo.state().into_iter().collect(),
            resume: ResumeState {
                iteration: self.it,
                rng_word_pos: self.rng.get_word_pos(),
                window: self.window,
                seconds,
            },
        };
        let path = self.dir.checkpoint_path();
        ck.save(&path).map_err(|e| fail_io(self.it, e))?;
        self.dir.meta.iteration = self.it;
        self.dir.meta.seconds = seconds;
        self.dir.write_meta().map_err(|e| fail_io(self.it, e))?;
        self.send(EngineEvent::Checkpoint {
            arm: self.index,
            iteration: self.it,
            path,
        });
        Ok(())
    }

    /// Stopped on request: checkpoint so the run can be resumed.
    fn stop(&mut self) -> Result<(), Failure> {
        self.dir.meta.status = RunStatus::Stopped;
        self.checkpoint()?;
        self.send(EngineEvent::Finished {
            arm: self.index,
            iteration: self.it,
            stopped: true,
            final_eval: None,
            seconds: self.clock.seconds(),
        });
        Ok(())
    }

    /// A multi-task arm's per-task losses on their own evaluation episodes, for the
    /// negative-transfer comparison (`transfer`); other arms record none.
    fn record_task_losses(&self) -> Result<(), Failure> {
        let exp = &self.p.experiment;
        let family = self.p.family.as_ref();
        let seed = transfer::episode_seed(exp.seed);
        let scores = self
            .algo
            .task_losses(family, &self.pool, transfer::EPISODES, seed)
            .map_err(|e| algo_failure(self.it, e))?;
        let Some(scores) = scores else {
            return Ok(());
        };
        let record = TaskLosses::new(exp, self.index, family, self.it, scores);
        let path = self.dir.dir.join(transfer::TASK_LOSSES);
        let json = serde_json::to_string(&record).expect("a task-loss record serializes");
        runs::atomic::write(&path, json.as_bytes())
            .map_err(|e| fail_io(self.it, runs::RunError::io(&path, e)))
    }

    /// The final, published number: fresh test tasks, the full protocol.
    fn finish(&mut self) -> Result<(), Failure> {
        let exp = &self.p.experiment;
        let test = episodes(
            self.p.eval_family.as_ref(),
            Split::Test,
            EvalStream::Test.seed(exp.seed),
            exp.eval.tasks,
        );
        let results = self.adapt_and_score(&test)?;
        let result = self.summary(Split::Test, &results);
        self.record_task_losses()?;
        let seconds = self.clock.seconds();
        // A resume of a run killed between writing this line and run.json's rename: the line
        // is there already (the same numbers: the test tasks are seeded).
        if !self.dir.final_recorded() {
            self.dir
                .append(MetricRecord::Eval(result.clone()), seconds)
                .map_err(|e| fail_io(self.it, e))?;
        }
        let meta = &mut self.dir.meta;
        meta.headline = Some(runs::headline(&result));
        meta.final_eval = Some(result.clone());
        meta.status = RunStatus::Finished;
        meta.iteration = self.it;
        meta.seconds = seconds;
        self.dir.write_meta().map_err(|e| fail_io(self.it, e))?;
        self.send(EngineEvent::Eval {
            arm: self.index,
            result: result.clone(),
        });
        self.send(EngineEvent::Finished {
            arm: self.index,
            iteration: self.it,
            stopped: false,
            final_eval: Some(result),
            seconds: self.clock.seconds(),
        });
        Ok(())
    }
}
