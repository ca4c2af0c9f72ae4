//! Which saved runs the Runs pane lists, and in what order: the `/` filter and the sort key.
//! Pure functions of the listed runs, so the pane, the mouse and the tests agree.

use super::store::RunRow;

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
    // The pane shows a sweep's run as `sweep#3`: what the user reads is what they type.
    let shown = r
        .variant
        .as_deref()
        .and_then(super::store::sweep_of)
        .map(|(sweep, i)| format!("{sweep}#{i}"))
        .unwrap_or_default();
    let seed = r.seed.map(|s| format!("s{s}")).unwrap_or_default();
    let hay = [
        shown.as_str(),
        seed.as_str(),
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
            // `#tag` finds tags, and also a sweep index typed from where it starts (`#0`).
            Some(t) if !t.is_empty() => tags.iter().any(|x| x.contains(t)) || hay.contains(&w),
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
            rank(a.extra.score)
                .partial_cmp(&rank(b.extra.score))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    rows
}

/// Smaller is better: accuracies (descending) before losses (ascending) before no result.
pub fn rank(score: Option<crate::runs::Score>) -> (u8, f64) {
    match score {
        Some(s) if s.value.is_finite() && s.accuracy => (0, -s.value),
        Some(s) if s.value.is_finite() => (1, s.value),
        _ => (2, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(variant: Option<&str>, tags: &[&str]) -> RunRow {
        RunRow {
            id: "2026-12-02-003512-sinusoid-seeds-maml-box3fa2".into(),
            dir: Default::default(),
            experiment: "sinusoid-seeds".into(),
            arm: "maml".into(),
            algorithm: "MAML".into(),
            status: crate::runs::RunStatus::Finished,
            started_unix: 0,
            iteration: 0,
            total_iterations: 0,
            headline: None,
            seed: Some(2),
            variant: variant.map(Into::into),
            seed_key: None,
            extra: super::super::store::RunExtra {
                notes: crate::runs::RunNotes {
                    note: String::new(),
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                },
                ..Default::default()
            },
        }
    }

    /// Issue 18 §3: `…-seeds#0` labels are found by what they show, `#` and all.
    #[test]
    fn sweep_labels_are_found_with_their_hash() {
        let r = row(Some("sinusoid-compare-seeds-000-9090c3"), &[]);
        assert!(matches(&r, "seeds#0"));
        assert!(matches(&r, "sinusoid-compare-seeds#0"));
        assert!(matches(&r, "#0"));
        assert!(!matches(&r, "seeds#1"));
        assert!(matches(&r, "s2"));
        let tagged = row(None, &["baseline"]);
        assert!(matches(&tagged, "#base"));
        assert!(!matches(&tagged, "#0"));
    }
}
