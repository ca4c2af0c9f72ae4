//! Which saved runs the Runs pane lists, and in what order: the `/` filter and the sort key.
//! Pure functions of the listed runs, so the pane, the mouse and the tests agree.

use super::backend::RunRow;

/// The Runs pane's order; `o` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunSort {
    /// Newest first, a sweep's runs kept together (the run store's order).
    #[default]
    Date,
    /// Best final result first: highest accuracy, then lowest loss; runs without one last.
    Result,
}

impl RunSort {
    pub fn next(self) -> RunSort {
        match self {
            RunSort::Date => RunSort::Result,
            RunSort::Result => RunSort::Date,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RunSort::Date => "date",
            RunSort::Result => "result",
        }
    }
}

/// The `/` filter: the text typed so far, and whether keys still go to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub text: String,
    pub editing: bool,
}

impl RunFilter {
    pub fn active(&self) -> bool {
        !self.text.is_empty() || self.editing
    }
}

/// Does `r` match every word of `filter` (case-insensitive, anywhere in its experiment, arm,
/// algorithm, status, tags, note or id)?
pub fn matches(r: &RunRow, filter: &str) -> bool {
    let hay = [
        r.experiment.as_str(),
        r.arm.as_str(),
        r.algorithm.as_str(),
        r.status.label(),
        r.extra.notes.note.as_str(),
        r.id.as_str(),
        r.variant.as_deref().unwrap_or(""),
    ]
    .join(" ")
    .to_lowercase();
    let tags: Vec<String> = r
        .extra
        .notes
        .tags
        .iter()
        .map(|t| t.to_lowercase())
        .collect();
    filter.split_whitespace().all(|w| {
        let w = w.to_lowercase();
        match w.strip_prefix('#') {
            Some(t) if !t.is_empty() => tags.iter().any(|x| x.contains(t)),
            _ => hay.contains(&w) || tags.iter().any(|x| x.contains(&w)),
        }
    })
}

/// The rows the pane lists: `all` (in the run store's order) filtered, then sorted.
pub fn visible(all: &[RunRow], filter: &RunFilter, sort: RunSort) -> Vec<RunRow> {
    let mut rows: Vec<RunRow> = all
        .iter()
        .filter(|r| matches(r, &filter.text))
        .cloned()
        .collect();
    if sort == RunSort::Result {
        // Stable: equal results keep the date order.
        rows.sort_by(|a, b| {
            rank(a)
                .partial_cmp(&rank(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    rows
}

/// Smaller is better: accuracies (descending) before losses (ascending) before no result.
fn rank(r: &RunRow) -> (u8, f64) {
    match r.extra.score {
        Some(s) if s.value.is_finite() && s.accuracy => (0, -s.value),
        Some(s) if s.value.is_finite() => (1, s.value),
        _ => (2, 0.0),
    }
}
