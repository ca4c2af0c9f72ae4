//! An experiment made ready to train: its family loaded, its network built, its arms checked;
//! everything that can fail before training starts fails here, with the launch settings it
//! was given ([`LaunchOptions`]).

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::experiment::{Experiment, FamilySpec};
use crate::model::{ModelError, Network};
use crate::pool::GpuKernels;
use crate::runs::RunError;
use crate::tasks::{build_family_reporting, FamilyError, Progress, TaskFamily};

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Family(#[from] FamilyError),
    /// A data error located in the experiment file (`file:line:col: `), as `check` reports it.
    /// (Not a `#[source]`: the message already holds it, and `{:#}` would print it twice.)
    #[error("{at}`family`: {error}")]
    Data { at: String, error: FamilyError },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no arm named `{name}` in experiment `{experiment}`\n  fix: use one of: {available}")]
    UnknownArm {
        name: String,
        experiment: String,
        available: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Where run directories go (`runs/`).
    pub runs_root: PathBuf,
    /// Train only these arms (by name); all when `None`.
    pub arms: Option<Vec<String>>,
    /// Override `train.iterations` (the override is frozen into the run's config).
    pub iterations: Option<usize>,
    /// Worker threads for the whole experiment; else `experiment.threads`, else all cores.
    pub threads: Option<usize>,
    /// Override the Omniglot data folder.
    pub data: Option<PathBuf>,
    /// The file the experiment came from, recorded in the run.
    pub source: Option<PathBuf>,
    /// Set by `rerun`: the run being reproduced.
    pub rerun_of: Option<String>,
    /// Set by `metalab sweep`: the variant the runs belong to, recorded in their `run.json`.
    pub variant: Option<String>,
    /// Where `device: Cuda(n)` runs its kernels: the GPU, except in tests of the GPU engine.
    pub gpu_kernels: GpuKernels,
}

/// An experiment with its family loaded and network built: everything that can fail before
/// training starts has been checked.
pub struct Prepared {
    pub experiment: Experiment,
    /// Where training episodes come from (distorted when `train.augment` says so).
    pub family: Arc<dyn TaskFamily>,
    /// Where evaluation episodes come from: `family` itself unless `eval` gives them another
    /// shape (the same data and class split, other ways, shots or queries) or training
    /// distorts its images.
    pub eval_family: Arc<dyn TaskFamily>,
    pub net: Arc<Network>,
    pub opts: LaunchOptions,
    /// Continue this run directory from its checkpoint instead of creating a new one.
    pub resume: Option<PathBuf>,
}

impl Prepared {
    pub fn new(exp: Experiment, opts: LaunchOptions) -> Result<Prepared, EngineError> {
        Prepared::new_reporting(exp, opts, &|_, _| {})
    }

    /// [`new`](Self::new), telling `progress` how loading the data goes.
    pub fn new_reporting(
        exp: Experiment,
        opts: LaunchOptions,
        progress: &Progress<'_>,
    ) -> Result<Prepared, EngineError> {
        let file = opts.source.clone();
        Prepared::new_from(exp, opts, file.as_deref(), progress)
    }

    /// `file` is where the experiment's text is, to locate data errors in it.
    fn new_from(
        mut exp: Experiment,
        opts: LaunchOptions,
        file: Option<&std::path::Path>,
        progress: &Progress<'_>,
    ) -> Result<Prepared, EngineError> {
        check_arms(&exp, &opts)?;
        if let Some(names) = &opts.arms {
            exp.arms.retain(|a| names.contains(&a.name));
        }
        if let Some(n) = opts.iterations {
            exp.train.iterations = n.max(1);
        }
        if let (Some(data), FamilySpec::Omniglot(o)) = (&opts.data, &mut exp.family) {
            o.root = data.clone();
        }
        let build = |spec: &FamilySpec| -> Result<Arc<dyn TaskFamily>, EngineError> {
            let family =
                build_family_reporting(spec, exp.seed, progress).map_err(|source| match file {
                    Some(f) => EngineError::Data {
                        at: crate::tasks::data_position(f),
                        error: source,
                    },
                    None => EngineError::Family(source),
                })?;
            Ok(Arc::from(family))
        };
        let family = build(&exp.family)?;
        let eval_spec = exp.eval_family();
        let eval_family = if eval_spec == exp.family {
            Arc::clone(&family)
        } else {
            build(&eval_spec)?
        };
        // Only training episodes are distorted; evaluations see the images as they are.
        let family = crate::tasks::augment::wrap(family, exp.train.augment);
        let net = Arc::new(Network::new(&exp.model, &family.shape())?);
        Ok(Prepared {
            experiment: exp,
            family,
            eval_family,
            net,
            opts,
            resume: None,
        })
    }

    /// Continue a run from its last checkpoint.
    pub fn resume(run_dir: &std::path::Path, opts: LaunchOptions) -> Result<Prepared, EngineError> {
        Prepared::resume_reporting(run_dir, opts, &|_, _| {})
    }

    /// [`resume`](Self::resume), telling `progress` how loading the data goes.
    pub fn resume_reporting(
        run_dir: &std::path::Path,
        mut opts: LaunchOptions,
        progress: &Progress<'_>,
    ) -> Result<Prepared, EngineError> {
        crate::runs::refuse_links(run_dir)?;
        // Killed before its first checkpoint: say so, rather than fail on a missing file.
        if std::fs::symlink_metadata(run_dir.join(crate::runs::CHECKPOINT)).is_err() {
            return Err(crate::runs::RunError::NoCheckpoint {
                id: crate::runs::run_id(run_dir),
            }
            .into());
        }
        let exp = crate::runs::load_config(run_dir)?;
        opts.arms = None;
        opts.iterations = None;
        let config = run_dir.join(crate::runs::CONFIG);
        let mut p = Prepared::new_from(exp, opts, Some(&config), progress)?;
        p.resume = Some(run_dir.to_path_buf());
        Ok(p)
    }

    pub(super) fn threads_per_arm(&self) -> usize {
        let total = self
            .opts
            .threads
            .or((self.experiment.threads > 0).then_some(self.experiment.threads))
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
        (total / self.experiment.arms.len().max(1)).max(1)
    }
}

/// Every arm named in `opts.arms` exists.
pub(super) fn check_arms(exp: &Experiment, opts: &LaunchOptions) -> Result<(), EngineError> {
    let names = opts.arms.iter().flatten();
    match names
        .into_iter()
        .find(|n| !exp.arms.iter().any(|a| &a.name == *n))
    {
        Some(n) => Err(EngineError::UnknownArm {
            name: n.clone(),
            experiment: exp.name.clone(),
            available: exp
                .arms
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        None => Ok(()),
    }
}
