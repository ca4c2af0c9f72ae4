//! Sweeps: one base experiment, many variants (grids, seeded random samples, seeds), run as a
//! local queue of `metalab` child processes or as a Slurm array job, and aggregated over seeds.
//!
//! The unit of work stays the run directory. A variant's runs carry its name in `run.json`
//! (`variant`), so whoever runs a variant — a local child, a Slurm task on any node, a requeued
//! task after preemption — finds what is already done in the shared runs folder: finished arms
//! are skipped, stopped or interrupted ones resume from their checkpoint.

pub mod aggregate;
pub mod expand;
pub mod queue;
pub mod slurm;
pub mod spec;

use std::path::{Path, PathBuf};

pub use expand::{load, set_path, Sweep, Variant};
pub use spec::{is_sweep_file, is_sweep_text, SweepError, SweepIssue, SweepSpec};

use crate::runs::{self, RunMeta, RunStatus};

/// What to do with one arm of a variant.
#[derive(Debug, Clone, PartialEq)]
pub enum ArmPlan {
    /// No run yet: train it.
    Fresh,
    Finished(PathBuf),
    /// Stopped or interrupted with a checkpoint: continue it.
    Resume(PathBuf),
    /// Died before its first checkpoint: nothing to continue, so it starts over (the partial
    /// directory is removed).
    Restart(PathBuf),
    /// Running now (on this host, or recorded as running on another).
    Running {
        dir: PathBuf,
        host: String,
    },
    Failed {
        dir: PathBuf,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArmState {
    pub arm: String,
    pub plan: ArmPlan,
    /// Last checkpointed (or final) iteration, and the total.
    pub iteration: usize,
    pub total: usize,
}

/// The variant as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantStatus {
    Pending,
    Running,
    /// Some arms have progress, none is running: resumable.
    Partial,
    Finished,
    Failed,
}

impl VariantStatus {
    pub fn label(self) -> &'static str {
        match self {
            VariantStatus::Pending => "pending",
            VariantStatus::Running => "running",
            VariantStatus::Partial => "resumable",
            VariantStatus::Finished => "finished",
            VariantStatus::Failed => "failed",
        }
    }
}

/// The run directories under `root` that belong to variant `name`.
pub fn variant_runs(root: &Path, name: &str) -> Vec<(PathBuf, RunMeta)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return vec![];
    };
    let mut out: Vec<(PathBuf, RunMeta)> = entries
        .flatten()
        // The rule of `runs::resolve`: a link in the runs folder is never a run, or a sweep
        // would resume into (and write to) wherever it points.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let dir = e.path();
            let meta = runs::load_meta(&dir).ok()?;
            (meta.variant.as_deref() == Some(name)).then_some((dir, meta))
        })
        .collect();
    out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    out
}

/// Decide each arm's fate from the runs folder. `owner` says the caller is the only one that
/// may run this variant (a Slurm array task): then a run recorded as running on another host is
/// a leftover of a preempted or failed attempt, not a live one.
pub fn plan(root: &Path, v: &Variant, owner: bool) -> Vec<ArmState> {
    let found = variant_runs(root, &v.name);
    let total = v.experiment.train.iterations;
    v.experiment
        .arms
        .iter()
        .map(|arm| {
            let mine: Vec<&(PathBuf, RunMeta)> =
                found.iter().filter(|(_, m)| m.arm == arm.name).collect();
            let state = |plan, iteration| ArmState {
                arm: arm.name.clone(),
                plan,
                iteration,
                total,
            };
            if let Some((d, m)) = mine.iter().find(|(_, m)| m.status == RunStatus::Finished) {
                return state(ArmPlan::Finished(d.clone()), m.iteration);
            }
            // The most advanced attempt is the one to continue.
            let Some((d, m)) = mine.iter().max_by_key(|(_, m)| m.iteration) else {
                return state(ArmPlan::Fresh, 0);
            };
            let status = runs::status_at(d, m);
            let here = m.host.is_empty() || m.host == runs::local_host();
            let plan = match status {
                RunStatus::Running if !owner || here => ArmPlan::Running {
                    dir: d.clone(),
                    host: m.host.clone(),
                },
                RunStatus::Failed(reason) => ArmPlan::Failed {
                    dir: d.clone(),
                    reason,
                },
                _ if d.join(runs::CHECKPOINT).is_file() => ArmPlan::Resume(d.clone()),
                _ => ArmPlan::Restart(d.clone()),
            };
            state(plan, m.iteration)
        })
        .collect()
}

pub fn status_of(arms: &[ArmState]) -> VariantStatus {
    let any = |f: fn(&ArmPlan) -> bool| arms.iter().any(|a| f(&a.plan));
    if arms.iter().all(|a| matches!(a.plan, ArmPlan::Finished(_))) {
        VariantStatus::Finished
    } else if any(|p| matches!(p, ArmPlan::Running { .. })) {
        VariantStatus::Running
    } else if any(|p| matches!(p, ArmPlan::Failed { .. })) {
        VariantStatus::Failed
    } else if arms.iter().all(|a| a.plan == ArmPlan::Fresh) {
        VariantStatus::Pending
    } else {
        VariantStatus::Partial
    }
}

/// Exit status of `metalab sweep --task N` when another process holds variant N's claim: the
/// work is in hand elsewhere, so neither done nor failed here (EX_TEMPFAIL).
pub const EXIT_CLAIMED: u8 = 75;

/// The lock one process holds while it plans and trains a variant, so two sweeps (or a
/// requeued Slurm task and its still-running original) never start the same variant twice.
pub fn claim_path(sweep: &Sweep, runs_root: &Path, v: &Variant) -> PathBuf {
    sweep
        .folder(runs_root)
        .join("variants")
        .join(format!("{}.lock", v.name))
}

/// Claim a variant at its [`claim_path`] for this process (held until the file is dropped);
/// `None` when another process has it.
pub fn claim(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    runs::try_claim(path)
}

/// Write every variant's resolved experiment and a manifest into the sweep's folder, so what
/// each index means is on disk next to the runs (and in a Slurm job's shared folder).
pub fn write_manifest(sweep: &Sweep, runs_root: &Path) -> std::io::Result<PathBuf> {
    let folder = sweep.folder(runs_root);
    let variants = folder.join("variants");
    std::fs::create_dir_all(&variants)?;
    let mut lines = vec![];
    for v in &sweep.variants {
        let file = variants.join(format!("{}.ron", v.name));
        runs::atomic::write(&file, v.experiment.to_ron().as_bytes())?;
        lines.push(serde_json::json!({
            "index": v.index,
            "name": v.name,
            "overrides": v.overrides.iter().map(|(p, x)| serde_json::json!({"path": p, "value": x})).collect::<Vec<_>>(),
        }));
    }
    let manifest = serde_json::json!({
        "sweep": sweep.spec.name,
        "file": sweep.path,
        "experiment": sweep.base_path,
        "variants": lines,
    });
    let path = folder.join("sweep.json");
    runs::atomic::write(
        &path,
        serde_json::to_string_pretty(&manifest)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(path)
}
