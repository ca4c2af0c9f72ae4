//! What the monitor and compare screens show: one or more arms with their bounded curves,
//! filled either live from engine events or from saved runs.

use std::path::PathBuf;

use crate::engine::messages::{
    AffinityRecord, ClassFit, EmbeddingRecord, EngineEvent, EvalResult, TaskFit,
};
use crate::experiment::Experiment;
use crate::runs::RunStatus;
use crate::stats::MeanCi;
use crate::tasks::Split;

use super::series::Series;
use super::store::Metrics;

/// Per-task panels beyond this are ignored: a corrupt task index must not allocate without bound.
pub const MAX_TRACKED: usize = 16;

/// Validation evaluations kept per arm for ranking at a common iteration: far more than any
/// evaluation schedule makes (one per 100 iterations of a 100k run is 1000); past it the oldest go.
pub const MAX_EVALS: usize = 4096;

/// One seed of an arm that stands for several runs differing only in seed: what the paired
/// test across seeds reads.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRun {
    pub seed: u64,
    /// Validation evaluations, `per_step` dropped, in iteration order.
    pub evals: Vec<EvalResult>,
    pub final_eval: Option<EvalResult>,
}

impl SeedRun {
    /// This seed's evaluation on `split` at `iteration`, if it made one.
    pub fn eval_at(&self, split: Split, iteration: usize) -> Option<&EvalResult> {
        eval_at(&self.evals, self.final_eval.as_ref(), split, iteration)
    }
}

/// The evaluation on `split` at `iteration` among `evals` (validation) and `final_eval` (test).
fn eval_at<'a>(
    evals: &'a [EvalResult],
    final_eval: Option<&'a EvalResult>,
    split: Split,
    iteration: usize,
) -> Option<&'a EvalResult> {
    if split == Split::Test {
        return final_eval.filter(|e| e.iteration == iteration);
    }
    let i = evals.partition_point(|e| e.iteration < iteration);
    evals.get(i).filter(|e| e.iteration == iteration)
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArmStatus {
    Waiting,
    /// The family's data is loading: `done` of `total` images decoded.
    Loading {
        done: usize,
        total: usize,
    },
    Running,
    Pausing,
    Paused,
    Stopping,
    Finished,
    Stopped,
    Failed(String),
    /// Loaded from disk, as the run store recorded it.
    Saved(RunStatus),
}

impl ArmStatus {
    /// What the run store would say of an arm in this state.
    pub fn run_status(&self) -> RunStatus {
        match self {
            ArmStatus::Waiting
            | ArmStatus::Loading { .. }
            | ArmStatus::Running
            | ArmStatus::Pausing
            | ArmStatus::Paused
            | ArmStatus::Stopping => RunStatus::Running,
            ArmStatus::Finished => RunStatus::Finished,
            ArmStatus::Stopped => RunStatus::Stopped,
            ArmStatus::Failed(why) => RunStatus::Failed(why.clone()),
            ArmStatus::Saved(s) => s.clone(),
        }
    }

    pub fn label(&self) -> String {
        match self {
            ArmStatus::Waiting => "starting".into(),
            ArmStatus::Loading { .. } => "loading".into(),
            ArmStatus::Running => "running".into(),
            ArmStatus::Pausing => "pausing…".into(),
            ArmStatus::Paused => "paused".into(),
            ArmStatus::Stopping => "stopping…".into(),
            ArmStatus::Finished => "finished".into(),
            ArmStatus::Stopped => "stopped".into(),
            ArmStatus::Failed(r) => format!("failed: {r}"),
            ArmStatus::Saved(s) => s.label().into(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(
            self,
            ArmStatus::Waiting
                | ArmStatus::Loading { .. }
                | ArmStatus::Running
                | ArmStatus::Pausing
                | ArmStatus::Paused
                | ArmStatus::Stopping
        )
    }
}

/// Mean with its 95% band, as three bounded series.
#[derive(Debug, Clone, Default)]
pub struct CiSeries {
    pub mean: Series,
    pub lo: Series,
    pub hi: Series,
}

impl CiSeries {
    pub fn push(&mut self, x: f64, m: &MeanCi) {
        self.mean.push(x, m.mean);
        let ci = if m.ci95.is_finite() { m.ci95 } else { 0.0 };
        self.lo.push(x, m.mean - ci);
        self.hi.push(x, m.mean + ci);
    }
}

#[derive(Debug, Clone, Default)]
pub struct TaskSeries {
    pub loss: Series,
    pub acc: Series,
}

#[derive(Debug, Clone)]
pub struct ArmView {
    pub name: String,
    /// What the arm is, whatever it is called in this view (the experiment's arm name): its
    /// colour follows it, so an arm looks the same live, opened from Runs and exported.
    pub identity: String,
    pub algorithm: String,
    pub run_dir: Option<PathBuf>,
    pub family: String,
    /// How training images are distorted, when they are.
    pub augment: Option<String>,
    pub classification: bool,
    pub total: usize,
    pub start_iteration: usize,
    pub iteration: usize,
    pub iters_per_sec: f64,
    pub status: ArmStatus,
    pub train_loss: Series,
    pub train_acc: Series,
    /// (iteration, training seconds): maps iterations to wall time for the time axis.
    pub clock: Series,
    pub eval_loss: CiSeries,
    pub eval_acc: CiSeries,
    pub tasks: Vec<TaskSeries>,
    pub last_eval: Option<EvalResult>,
    pub final_eval: Option<EvalResult>,
    pub seconds: Option<f64>,
    /// Regression: each tracked task's latest fit, indexed by task (the adaptation view).
    pub fits: Vec<TaskFit>,
    /// Classification: each tracked task's classes and per-step query results, by task.
    pub class_fits: Vec<ClassFit>,
    /// Every validation evaluation (`per_step` dropped), in iteration order: arms are ranked
    /// at an iteration all of them reached, not at each one's latest.
    pub evals: Vec<EvalResult>,
    /// Several runs of one configuration differing only in seed, shown as this one arm (its
    /// curves the mean over seeds, its bands across seeds); empty for a single run.
    pub seeds: Vec<SeedRun>,
    /// A task-embedding arm's validation tasks' embeddings at its latest evaluation.
    pub embeddings: Option<EmbeddingRecord>,
    /// The training tasks' affinities at the latest evaluation (`train.affinity`).
    pub affinity: Option<AffinityRecord>,
    /// The family's task groups' names, by group index (mixed regression), for labels.
    pub group_names: Vec<String>,
}

impl ArmView {
    pub fn new(name: impl Into<String>, algorithm: impl Into<String>) -> ArmView {
        let name = name.into();
        ArmView {
            identity: name.clone(),
            name,
            algorithm: algorithm.into(),
            run_dir: None,
            family: String::new(),
            augment: None,
            classification: false,
            total: 0,
            start_iteration: 0,
            iteration: 0,
            iters_per_sec: 0.0,
            status: ArmStatus::Waiting,
            train_loss: Series::default(),
            train_acc: Series::default(),
            clock: Series::default(),
            eval_loss: CiSeries::default(),
            eval_acc: CiSeries::default(),
            tasks: Vec::new(),
            last_eval: None,
            final_eval: None,
            seconds: None,
            fits: Vec::new(),
            class_fits: Vec::new(),
            evals: Vec::new(),
            seeds: Vec::new(),
            embeddings: None,
            affinity: None,
            group_names: Vec::new(),
        }
    }

    /// The arm's evaluation on `split` at `iteration`, if it made one there.
    pub fn eval_at(&self, split: Split, iteration: usize) -> Option<&EvalResult> {
        eval_at(&self.evals, self.final_eval.as_ref(), split, iteration)
    }

    pub fn progress(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.iteration as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }

    /// Seconds left at the current rate, when there is a rate.
    pub fn eta_secs(&self) -> Option<f64> {
        (self.status == ArmStatus::Running
            && self.iters_per_sec > 0.0
            && self.total >= self.iteration)
            .then(|| (self.total - self.iteration) as f64 / self.iters_per_sec)
    }

    /// Training seconds at iteration `it`, if the arm has a clock (interpolated between points).
    pub fn seconds_at(&self, it: f64) -> Option<f64> {
        super::series::interpolate(&self.clock.points(), it)
    }

    /// The evaluation to report: the final one when there is one.
    pub fn headline_eval(&self) -> Option<&EvalResult> {
        self.final_eval.as_ref().or(self.last_eval.as_ref())
    }

    pub fn add_eval(&mut self, r: &EvalResult) {
        let x = r.iteration as f64;
        self.eval_loss.push(x, &r.loss);
        if let Some(a) = &r.accuracy {
            self.eval_acc.push(x, a);
        }
        self.last_eval = Some(r.clone());
        // Out-of-order evaluations (a resumed run re-evaluating) replace, never duplicate.
        let i = self.evals.partition_point(|e| e.iteration < r.iteration);
        let kept = EvalResult {
            per_step: Vec::new(),
            ..r.clone()
        };
        if self
            .evals
            .get(i)
            .is_some_and(|e| e.iteration == r.iteration)
        {
            self.evals[i] = kept;
        } else {
            self.evals.insert(i, kept);
        }
        if self.evals.len() > MAX_EVALS {
            self.evals.remove(0);
        }
    }

    /// Keep `fit` as its task's latest, in task order.
    fn set_fit(&mut self, fit: &TaskFit) {
        if fit.task >= MAX_TRACKED {
            return;
        }
        match self.fits.iter_mut().find(|f| f.task == fit.task) {
            Some(f) => *f = fit.clone(),
            None => {
                self.fits.push(fit.clone());
                self.fits.sort_by_key(|f| f.task);
            }
        }
    }

    /// Keep `fit` as its task's latest, in task order.
    fn set_class_fit(&mut self, fit: &ClassFit) {
        if fit.task >= MAX_TRACKED {
            return;
        }
        match self.class_fits.iter_mut().find(|f| f.task == fit.task) {
            Some(f) => *f = fit.clone(),
            None => {
                self.class_fits.push(fit.clone());
                self.class_fits.sort_by_key(|f| f.task);
            }
        }
    }

    /// How many tracked tasks have a per-step view: fits (regression) or class fits.
    pub fn tracked_views(&self) -> usize {
        self.fits.len().max(self.class_fits.len())
    }

    /// A live training window: its point on the curves, and the clock it implies.
    fn on_train(&mut self, point: &crate::metrics::TrainPoint, iters_per_sec: f64) {
        let x = point.iteration as f64;
        // Live events carry a rate, not a clock: integrate it (deterministic, so
        // snapshots of the time axis do not depend on the wall clock).
        let (last_it, last_t) = self
            .clock
            .last()
            .unwrap_or((self.start_iteration as f64, 0.0));
        if iters_per_sec > 0.0 && x > last_it {
            self.clock.push(x, last_t + (x - last_it) / iters_per_sec);
        }
        self.train_loss.push(x, point.loss);
        if let Some(acc) = point.accuracy {
            self.train_acc.push(x, acc);
        }
        self.iteration = self.iteration.max(point.iteration);
        self.iters_per_sec = iters_per_sec;
        if matches!(self.status, ArmStatus::Waiting | ArmStatus::Loading { .. }) {
            self.status = ArmStatus::Running;
        }
    }

    fn task(&mut self, i: usize) -> Option<&mut TaskSeries> {
        if i >= MAX_TRACKED {
            return None;
        }
        if self.tasks.len() <= i {
            self.tasks.resize_with(i + 1, TaskSeries::default);
        }
        self.tasks.get_mut(i)
    }

    /// An arm read back from a run directory.
    pub fn from_metrics(name: &str, algorithm: &str, status: &RunStatus, m: &Metrics) -> ArmView {
        let mut a = ArmView::new(name, algorithm);
        a.status = ArmStatus::Saved(status.clone());
        a.load(m, usize::MAX);
        a.total = a.iteration;
        a
    }

    /// Fill the curves from saved metrics up to iteration `upto` (a resumed run continues
    /// from its checkpoint; anything logged after it will be trained again).
    pub fn load(&mut self, m: &Metrics, upto: usize) {
        self.classification |= m.classification;
        for p in m.train.iter().filter(|p| p.iteration <= upto) {
            self.train_loss.push(p.iteration as f64, p.loss);
            if let Some(acc) = p.accuracy {
                self.train_acc.push(p.iteration as f64, acc);
            }
            self.iteration = self.iteration.max(p.iteration);
        }
        for &(it, t) in m.clock.iter().filter(|c| c.0 <= upto) {
            self.clock.push(it as f64, t);
        }
        for e in m.evals.iter().filter(|e| e.iteration <= upto) {
            if e.split == Split::Test {
                self.final_eval = Some(e.clone());
            } else {
                self.add_eval(e);
            }
            self.iteration = self.iteration.max(e.iteration);
        }
        for fit in m.fits.iter().filter(|f| f.iteration <= upto) {
            self.set_fit(fit);
        }
        for fit in m.class_fits.iter().filter(|f| f.iteration <= upto) {
            self.set_class_fit(fit);
        }
        if let Some(r) = m.embeddings.as_ref().filter(|r| r.iteration <= upto) {
            self.embeddings = Some(r.clone());
        }
        if let Some(r) = m.affinity.as_ref().filter(|r| r.iteration <= upto) {
            self.affinity = Some(r.clone());
        }
        for t in m.tasks.iter().filter(|t| t.iteration <= upto) {
            if let Some(ts) = self.task(t.task) {
                ts.loss.push(t.iteration as f64, t.loss);
                if let Some(acc) = t.accuracy {
                    ts.acc.push(t.iteration as f64, acc);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub title: String,
    pub live: bool,
    pub arms: Vec<ArmView>,
    /// Config fields whose values differ between arms: (field, value per arm).
    pub diff: Vec<(String, Vec<String>)>,
}

impl Session {
    /// A live session before any event: arm names come from the experiment so keys and panels
    /// work at once.
    pub fn for_experiment(exp: &Experiment) -> Session {
        let arms = exp
            .arms
            .iter()
            .map(|a| {
                let mut v = ArmView::new(&a.name, a.algorithm.label());
                v.total = exp.train.iterations;
                // Known before the engine says so, so the panels are labelled right from the start.
                v.classification = exp.family.is_classification();
                v.augment = crate::tasks::augment::in_words(exp.train.augment);
                v.group_names = crate::runs::embeddings::group_names(&exp.family);
                v
            })
            .collect();
        let configs: Vec<Experiment> = exp
            .arms
            .iter()
            .filter_map(|a| exp.with_only_arm(&a.name))
            .collect();
        Session {
            title: exp.name.clone(),
            live: true,
            arms,
            diff: super::diff::differing_fields(&configs),
        }
    }

    pub fn any_active(&self) -> bool {
        self.live && self.arms.iter().any(|a| a.status.is_active())
    }

    pub fn classification(&self) -> bool {
        self.arms.iter().any(|a| a.classification)
    }

    fn arm_mut(&mut self, i: usize) -> Option<&mut ArmView> {
        // Arms are few; an index far past them is a bug upstream, not a reason to allocate.
        if i >= self.arms.len() && i < 64 {
            while self.arms.len() <= i {
                let n = self.arms.len();
                self.arms.push(ArmView::new(format!("arm {n}"), "?"));
            }
        }
        self.arms.get_mut(i)
    }

    pub fn apply(&mut self, ev: &EngineEvent) {
        let Some(a) = self.arm_mut(ev.arm()) else {
            return;
        };
        match ev {
            EngineEvent::Started {
                name,
                run_dir,
                algorithm,
                total_iterations,
                start_iteration,
                family,
                classification,
                augment,
                ..
            } => {
                a.name = name.clone();
                a.identity = name.clone();
                a.run_dir = Some(run_dir.clone());
                a.algorithm = algorithm.clone();
                a.total = *total_iterations;
                a.start_iteration = *start_iteration;
                a.iteration = *start_iteration;
                a.family = family.clone();
                a.augment = augment.clone();
                a.classification = *classification;
                a.status = ArmStatus::Running;
            }
            EngineEvent::Train {
                point,
                iters_per_sec,
                ..
            } => a.on_train(point, *iters_per_sec),
            EngineEvent::Eval { result, .. } => {
                if result.split == Split::Test {
                    a.final_eval = Some(result.clone());
                } else {
                    a.add_eval(result);
                }
            }
            EngineEvent::Task { point, .. } => {
                if let Some(t) = a.task(point.task) {
                    t.loss.push(point.iteration as f64, point.loss);
                    if let Some(acc) = point.accuracy {
                        t.acc.push(point.iteration as f64, acc);
                    }
                }
            }
            EngineEvent::Fit { fit, .. } => a.set_fit(fit),
            EngineEvent::ClassFit { fit, .. } => a.set_class_fit(fit),
            EngineEvent::Loading { done, total, .. } => {
                if matches!(a.status, ArmStatus::Waiting | ArmStatus::Loading { .. }) {
                    a.status = ArmStatus::Loading {
                        done: *done,
                        total: *total,
                    };
                }
            }
            EngineEvent::Checkpoint { .. } => {}
            EngineEvent::Affinity { record, .. } => a.affinity = Some((**record).clone()),
            EngineEvent::Embeddings { record, .. } => a.embeddings = Some((**record).clone()),
            EngineEvent::Paused { .. } => a.status = ArmStatus::Paused,
            EngineEvent::Resumed { .. } => a.status = ArmStatus::Running,
            EngineEvent::Finished {
                iteration,
                stopped,
                final_eval,
                seconds,
                ..
            } => {
                a.iteration = *iteration;
                a.status = if *stopped {
                    ArmStatus::Stopped
                } else {
                    ArmStatus::Finished
                };
                if let Some(e) = final_eval {
                    a.final_eval = Some(e.clone());
                }
                a.seconds = Some(*seconds);
            }
            EngineEvent::Failed {
                iteration, reason, ..
            } => {
                a.iteration = *iteration;
                a.status = ArmStatus::Failed(reason.clone());
            }
        }
    }
}
