//! Slurm: an `sbatch` array job whose task *i* runs variant *i* into a shared runs folder.
//!
//! Preemption and time limits end in a checkpoint, not lost work:
//! * `--signal=B:USR1@<grace>` warns the batch script before the time limit; it passes SIGTERM
//!   to metalab (which checkpoints and stops, exit 130) and requeues the task itself.
//! * On preemption or `scancel`, Slurm sends SIGTERM; the script passes it on the same way. A
//!   preempted task with `--requeue` is put back in the queue by Slurm.
//! * A requeued task runs the same command, which finds the variant's runs and resumes them
//!   from their checkpoints (or, after a node failure, from the last periodic checkpoint).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use super::Sweep;

#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// `--time`, e.g. `02:00:00`.
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub gpus: Option<usize>,
    /// At most this many tasks at once (`--array=…%N`).
    pub max_parallel: Option<usize>,
    /// Seconds of warning before the time limit, to checkpoint and requeue.
    pub grace_seconds: usize,
}

#[derive(Debug, Error)]
pub enum SlurmError {
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("`sbatch` is not installed or not on PATH ({0})\n  fix: run this on a Slurm login node, or use --dry-run to write the script only")]
    NoSbatch(std::io::Error),
    #[error("sbatch refused the job (exit {code}):\n{stderr}\n  fix: check --partition/--time/--cpus-per-task against `sinfo`; the script is {script}")]
    Refused {
        code: i32,
        stderr: String,
        script: PathBuf,
    },
}

/// Quote for bash: single quotes, with embedded ones closed and escaped.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The array script for the given variant indices.
pub fn script(
    sweep: &Sweep,
    indices: &[usize],
    exe: &Path,
    runs_root: &Path,
    data: Option<&Path>,
    o: &SlurmOptions,
) -> String {
    let folder = sweep.folder(runs_root);
    let logs = folder.join("slurm");
    let mut array = compress(indices);
    if let Some(n) = o.max_parallel {
        array += &format!("%{n}");
    }
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# Written by `metalab sweep --slurm` for sweep {}: task i runs variant i.",
        sweep.spec.name
    );
    let _ = writeln!(s, "#SBATCH --job-name={}", sweep.spec.name);
    let _ = writeln!(s, "#SBATCH --array={array}");
    let _ = writeln!(s, "#SBATCH --output={}/%A_%a.out", logs.display());
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --signal=B:USR1@{}", o.grace_seconds);
    if let Some(p) = &o.partition {
        let _ = writeln!(s, "#SBATCH --partition={p}");
    }
    if let Some(t) = &o.time {
        let _ = writeln!(s, "#SBATCH --time={t}");
    }
    if let Some(c) = o.cpus_per_task {
        let _ = writeln!(s, "#SBATCH --cpus-per-task={c}");
    }
    if let Some(g) = o.gpus {
        let _ = writeln!(s, "#SBATCH --gpus={g}");
    }
    let _ = writeln!(
        s,
        r#"
METALAB={exe}
SWEEP={sweep}
RUNS={runs}
TASK="$SLURM_ARRAY_TASK_ID"
echo "metalab sweep task $TASK on $(hostname) (job ${{SLURM_ARRAY_JOB_ID}}_$TASK, restart ${{SLURM_RESTART_COUNT:-0}})"

requeue=0
# Time limit near (USR1): checkpoint, then put this task back in the queue.
trap 'requeue=1; kill -TERM "$child" 2>/dev/null' USR1
# Preemption or scancel (TERM): checkpoint and stop; a preempted task is requeued by Slurm.
trap 'kill -TERM "$child" 2>/dev/null' TERM

"$METALAB" {data}sweep "$SWEEP" --task "$TASK" --runs "$RUNS" --threads "${{SLURM_CPUS_PER_TASK:-0}}" &
child=$!
# A trapped signal interrupts `wait`; wait again until metalab itself has exited.
while true; do
    wait "$child"; rc=$?
    kill -0 "$child" 2>/dev/null || break
done
if [ "$requeue" = 1 ] && [ "$rc" = 130 ]; then
    echo "checkpointed before the time limit; requeueing"
    scontrol requeue "${{SLURM_ARRAY_JOB_ID}}_$TASK"
fi
exit "$rc""#,
        exe = sh(&exe.display().to_string()),
        sweep = sh(&sweep.path.display().to_string()),
        runs = sh(&runs_root.display().to_string()),
        data = data.map_or(String::new(), |d| format!(
            "--data {} ",
            sh(&d.display().to_string())
        )),
    );
    s
}

/// `0-3,5,7-9`.
pub fn compress(indices: &[usize]) -> String {
    let mut parts = vec![];
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

pub fn script_path(sweep: &Sweep, runs_root: &Path) -> PathBuf {
    sweep.folder(runs_root).join("slurm").join("array.sbatch")
}

pub fn write_script(path: &Path, text: &str) -> Result<(), SlurmError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| SlurmError::Io(dir.to_path_buf(), e))?;
    crate::runs::atomic::write(path, text.as_bytes())
        .map_err(|e| SlurmError::Io(path.to_path_buf(), e))
}

/// `sbatch --parsable SCRIPT`: the job id (`--parsable` prints `id` or `id;cluster`).
pub fn submit(script: &Path) -> Result<String, SlurmError> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(SlurmError::NoSbatch)?;
    if !out.status.success() {
        return Err(SlurmError::Refused {
            code: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            script: script.to_path_buf(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().split(';').next().unwrap_or("").to_string())
}

/// Job ids submitted for this sweep, oldest first (one a line in `slurm/jobs`).
pub fn record_job(sweep: &Sweep, runs_root: &Path, id: &str) -> std::io::Result<()> {
    use std::io::Write;
    let path = sweep.folder(runs_root).join("slurm").join("jobs");
    let mut f = crate::runs::files::open_append(&path, true)?;
    writeln!(f, "{id}")
}

pub fn recorded_jobs(sweep: &Sweep, runs_root: &Path) -> Vec<String> {
    std::fs::read_to_string(sweep.folder(runs_root).join("slurm").join("jobs"))
        .map(|t| {
            t.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// What the scheduler says about a job's array tasks.
#[derive(Debug, Clone, Default)]
pub struct JobStates {
    /// `(array task id, state)`: live ones from `squeue`, ended ones from `sacct`.
    pub tasks: Vec<(String, String)>,
    /// Why `sacct` could not say, e.g. "Slurm accounting storage is disabled".
    pub sacct_note: Option<String>,
}

/// Per-task scheduler state from `squeue` then `sacct`, when they exist. None when neither
/// could be asked.
pub fn task_states(job: &str) -> Option<JobStates> {
    let mut states: Vec<(String, String)> = vec![];
    let mut sacct_note = None;
    let squeue = Command::new("squeue")
        .args(["--noheader", "--array", "--format=%i %T", "--jobs", job])
        .output();
    let mut asked = false;
    if let Ok(o) = &squeue {
        asked |= o.status.success();
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            if let Some((id, st)) = l.trim().split_once(' ') {
                states.push((id.to_string(), st.to_string()));
            }
        }
    }
    if let Ok(o) = Command::new("sacct")
        .args([
            "--noheader",
            "--parsable2",
            "--format=JobID,State",
            "--jobs",
            job,
        ])
        .output()
    {
        asked |= o.status.success();
        if !o.status.success() {
            let e = String::from_utf8_lossy(&o.stderr).trim().to_string();
            sacct_note = Some(if e.is_empty() {
                "sacct failed".into()
            } else {
                e
            });
        }
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let mut f = l.split('|');
            let (Some(id), Some(st)) = (f.next(), f.next()) else {
                continue;
            };
            // Steps (`123_4.batch`) repeat their task's state.
            if id.contains('.') || states.iter().any(|(i, _)| i == id) {
                continue;
            }
            states.push((id.to_string(), st.to_string()));
        }
    }
    (asked || !states.is_empty()).then_some(JobStates {
        tasks: states,
        sacct_note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ranges_are_compressed() {
        assert_eq!(compress(&[0, 1, 2, 3]), "0-3");
        assert_eq!(compress(&[0, 2, 3, 5, 7, 8, 9]), "0,2-3,5,7-9");
        assert_eq!(compress(&[4]), "4");
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(sh("/a b/it's"), "'/a b/it'\\''s'");
    }
}
