//! A sweep launched from the workbench, as the UI knows it: its variants and how each stands.
//! The queue runs each variant in its own `metalab` process (`sweep::queue`); this is only
//! what its events said.

use std::path::PathBuf;

use crate::sweep::queue::{Outcome, QueueEvent, QueueReport};

/// What the sweep's thread says, in order: the sweep loaded, the queue's events, the end.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepMsg {
    Loaded {
        name: String,
        /// Each variant's overrides, e.g. `seed=2`, in index order.
        labels: Vec<String>,
    },
    Queue(QueueEvent),
    /// The queue returned (or the sweep could not be loaded or started).
    Done(Result<QueueReport, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum VariantState {
    Waiting,
    /// Finished in an earlier invocation.
    AlreadyFinished,
    Running,
    Ended(Outcome),
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariantView {
    pub label: String,
    pub state: VariantState,
    /// (arm, iteration, total), as the variant's process reports them.
    pub arms: Vec<(String, usize, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepView {
    /// The sweep file.
    pub path: PathBuf,
    pub name: String,
    pub variants: Vec<VariantView>,
    /// Set once the queue has returned: its one-line summary.
    pub done: Option<String>,
    /// A stop was asked for: running variants checkpoint and end as stopped.
    pub stopping: bool,
}

impl SweepView {
    pub fn new(path: PathBuf) -> SweepView {
        let name = path
            .file_name()
            .map(|f| {
                f.to_string_lossy()
                    .trim_end_matches(".sweep.ron")
                    .to_string()
            })
            .unwrap_or_default();
        SweepView {
            path,
            name,
            variants: Vec::new(),
            done: None,
            stopping: false,
        }
    }

    pub fn running(&self) -> bool {
        self.done.is_none()
    }

    /// Variants whose process has ended (or that were finished before), of all.
    pub fn progress(&self) -> (usize, usize) {
        let ended = self
            .variants
            .iter()
            .filter(|v| {
                matches!(
                    v.state,
                    VariantState::AlreadyFinished | VariantState::Ended(_)
                )
            })
            .count();
        (ended, self.variants.len())
    }

    /// Apply one message; returns a line for the status bar when something ended.
    pub fn apply(&mut self, msg: SweepMsg) -> Option<String> {
        match msg {
            SweepMsg::Loaded { name, labels } => {
                self.name = name;
                self.variants = labels
                    .into_iter()
                    .map(|label| VariantView {
                        label,
                        state: VariantState::Waiting,
                        arms: Vec::new(),
                    })
                    .collect();
                None
            }
            SweepMsg::Queue(ev) => self.apply_queue(ev),
            SweepMsg::Done(result) => {
                let line = match &result {
                    Ok(r) => format!(
                        "sweep {}: {} finished now, {} already finished, {} stopped, {} failed{}",
                        self.name,
                        r.finished.len(),
                        r.skipped_finished.len(),
                        r.stopped.len(),
                        r.failed.len(),
                        if r.busy.is_empty() {
                            String::new()
                        } else {
                            format!(", {} running elsewhere", r.busy.len())
                        }
                    ),
                    Err(e) => format!("sweep {} could not run: {e}", self.name),
                };
                self.done = Some(line.clone());
                Some(line)
            }
        }
    }

    fn apply_queue(&mut self, ev: QueueEvent) -> Option<String> {
        match ev {
            QueueEvent::Planned { finished, .. } => {
                for i in finished {
                    if let Some(v) = self.variants.get_mut(i) {
                        v.state = VariantState::AlreadyFinished;
                    }
                }
                None
            }
            QueueEvent::Started { index } => {
                if let Some(v) = self.variants.get_mut(index) {
                    v.state = VariantState::Running;
                }
                None
            }
            QueueEvent::Progress {
                index,
                arm,
                it,
                total,
            } => {
                let v = self.variants.get_mut(index)?;
                match v.arms.iter_mut().find(|a| a.0 == arm) {
                    Some(a) => (a.1, a.2) = (it, total),
                    None => v.arms.push((arm, it, total)),
                }
                None
            }
            QueueEvent::Ended { index, outcome } => {
                let v = self.variants.get_mut(index)?;
                let line = format!("sweep {}: {} {outcome}", self.name, v.label);
                v.state = VariantState::Ended(outcome);
                Some(line)
            }
        }
    }
}
