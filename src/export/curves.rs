//! What every export is made from: one run's (or live arm's) curves.

use crate::metrics::{EvalResult, TaskPoint, TrainPoint};

/// One run's (or live arm's) full curves.
#[derive(Debug, Clone, Default)]
pub struct ArmCurves {
    /// The run folder's id: the CSV's `run` column.
    pub run: String,
    /// The run's unique label (`runs::label::unique`): legend and CSV `label` column.
    pub label: String,
    /// What the curve is of (the experiment's arm name): its colour follows it, as on screen
    /// (`palette::assign`). Empty: the label stands for it.
    pub identity: String,
    pub train: Vec<TrainPoint>,
    pub evals: Vec<EvalResult>,
    pub tasks: Vec<TaskPoint>,
    /// (iteration, training seconds) as `metrics.jsonl` logged them: the CSV's wall-clock
    /// column. Empty where unknown.
    pub clock: Vec<(usize, f64)>,
    /// The algorithm's label: a figure mixing several says its training losses are not on one
    /// scale. Empty where unknown.
    pub algorithm: String,
    /// The iteration a run was stopped at before finishing: the legend says so.
    pub stopped_at: Option<usize>,
    /// Classes per evaluation episode (classification; `Experiment::eval_ways`): the figure
    /// draws chance level, 1/ways, on the validation and test panel.
    pub ways: Option<usize>,
}
