//! `run.json`: what a run is (experiment, arm, seed, device, host, protocol) and where it stands.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::algo::eval::EvalProtocol;
use crate::experiment::{DeviceSpec, Experiment};
use crate::metrics::EvalResult;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    Finished,
    /// Stopped on request (Ctrl-C, the UI's stop): resumable from its last checkpoint.
    Stopped,
    Failed(String),
    /// The process died without saying so (killed, power loss): resumable from its last checkpoint.
    Interrupted,
    /// `run.json` is missing or unreadable: listed so it does not vanish, with the reason and
    /// what can still be done. Never written.
    #[serde(skip)]
    Damaged(String),
}

impl RunStatus {
    pub fn label(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed(_) => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Damaged(_) => "damaged",
        }
    }
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub id: String,
    pub experiment: String,
    pub arm: String,
    pub algorithm: String,
    pub status: RunStatus,
    pub started_unix: u64,
    pub updated_unix: u64,
    pub iteration: usize,
    pub total_iterations: usize,
    pub seed: u64,
    pub threads: usize,
    #[serde(with = "device_name")]
    pub device: DeviceSpec,
    pub params: usize,
    pub family: String,
    pub class_split: serde_json::Value,
    pub protocol: EvalProtocol,
    pub final_eval: Option<EvalResult>,
    pub headline: Option<String>,
    pub seconds: f64,
    pub pid: u32,
    pub metalab_version: String,
    /// The experiment file it was launched from, if any.
    pub source: Option<PathBuf>,
    /// The run this one reproduces, for `metalab rerun`.
    pub rerun_of: Option<String>,
    /// The machine it ran on (hostname), so runs merged from many machines say where they came
    /// from, and a `running` run on another host is not mistaken for a dead local one.
    #[serde(default)]
    pub host: String,
    /// The CPU model (or GPU) it ran on: kernels differ (AVX-512 or portable), and so may the
    /// last digits of the metrics.
    #[serde(default)]
    pub device_detail: String,
    /// The sweep variant this run belongs to (`metalab sweep`), if any.
    #[serde(default)]
    pub variant: Option<String>,
    /// The checkpoint iteration of each resume, oldest first: a resumed run says so.
    #[serde(default)]
    pub resumed_at: Vec<usize>,
}

/// What the engine knows of a new run beyond its one-arm experiment.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub threads: usize,
    pub params: usize,
    /// The family's one-line description.
    pub family: String,
    /// The family's seeded class split.
    pub class_split: serde_json::Value,
    pub protocol: EvalProtocol,
    pub source: Option<PathBuf>,
    pub rerun_of: Option<String>,
    /// The sweep variant the run belongs to, if any.
    pub variant: Option<String>,
}

impl RunMeta {
    /// The record of a run about to start: `exp` holds exactly one arm. The id is given when
    /// the directory is made.
    pub fn new(exp: &Experiment, facts: RunFacts) -> RunMeta {
        let arm = &exp.arms[0];
        RunMeta {
            id: String::new(),
            experiment: exp.name.clone(),
            arm: arm.name.clone(),
            algorithm: arm.algorithm.label().into(),
            status: RunStatus::Running,
            started_unix: now_unix(),
            updated_unix: 0,
            iteration: 0,
            total_iterations: exp.train.iterations,
            seed: exp.seed,
            threads: facts.threads,
            device: exp.device,
            params: facts.params,
            family: facts.family,
            class_split: facts.class_split,
            protocol: facts.protocol,
            final_eval: None,
            headline: None,
            seconds: 0.0,
            pid: std::process::id(),
            metalab_version: env!("CARGO_PKG_VERSION").into(),
            source: facts.source,
            rerun_of: facts.rerun_of,
            host: local_host(),
            device_detail: match exp.device {
                DeviceSpec::Cpu => cpu_model(),
                DeviceSpec::Cuda(i) => format!("CUDA device {i}"),
            },
            variant: facts.variant,
            resumed_at: Vec::new(),
        }
    }
}

/// `run.json` names the device as the experiment file does ("Cpu", "Cuda(0)").
mod device_name {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::experiment::DeviceSpec;

    pub fn serialize<S: Serializer>(d: &DeviceSpec, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{d:?}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DeviceSpec, D::Error> {
        let name = String::deserialize(d)?;
        let cuda = name
            .strip_prefix("Cuda(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|n| n.parse().ok());
        match (name.as_str(), cuda) {
            ("Cpu", _) => Ok(DeviceSpec::Cpu),
            (_, Some(n)) => Ok(DeviceSpec::Cuda(n)),
            _ => Err(D::Error::custom(format!(
                "unknown device `{name}` (expected Cpu or Cuda(N))"
            ))),
        }
    }
}

/// Seconds since the Unix epoch, for the times a run records (0 on a clock set before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This machine's name (the kernel's hostname), or "unknown".
pub fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The CPU model name, for `RunMeta::device_detail`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
