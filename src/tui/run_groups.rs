//! The Runs pane's lines: runs that differ only in seed — the rule Compare merges them by,
//! [`seed_group_key`](super::store::seed_group_key) — listed as one group row (its seeds, the
//! mean ± t-interval over seeds of their final results, their states) that expands to one row
//! per seed, labelled `s1 s2 …`. Pure functions of the listed runs, so the pane, the keys and
//! the tests agree.

use std::collections::{BTreeMap, BTreeSet};

use crate::stats::MeanCi;

use super::runs_view::{rank, RunSort};
use super::store::RunRow;

/// Runs of one configuration over two or more seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedGroup {
    /// Their [`seed_group_key`](super::store::seed_group_key).
    pub key: String,
    /// Indices into the listed runs: by seed, then newest first.
    pub members: Vec<usize>,
    /// Distinct seeds among the members.
    pub seeds: usize,
    /// Over the seeds' final results (the newest run of each seed that has one).
    pub result: Option<GroupResult>,
    pub expanded: bool,
}

/// Mean over seeds with Student's t (n − 1 degrees of freedom), as Compare computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupResult {
    pub summary: MeanCi,
    /// Accuracy (higher is better) rather than a loss.
    pub accuracy: bool,
}

impl GroupResult {
    /// `3 seeds: MSE 0.200 ± 0.248`; `2/3 seeds: …` when a seed has no final result yet.
    pub fn label(&self, seeds: usize) -> String {
        let n = self.summary.n;
        let count = if n == seeds {
            format!("{n} seeds")
        } else {
            format!("{n}/{seeds} seeds")
        };
        let m = &self.summary;
        let value = match (self.accuracy, n >= 2) {
            (true, true) => format!("acc {:.1}% ± {:.1}", 100.0 * m.mean, 100.0 * m.ci95),
            (true, false) => format!("acc {:.1}%", 100.0 * m.mean),
            (false, true) => format!("MSE {:.3} ± {:.3}", m.mean, m.ci95),
            (false, false) => format!("MSE {:.3}", m.mean),
        };
        format!("{count}: {value}")
    }
}

/// One line of the pane.
#[derive(Debug, Clone, PartialEq)]
pub enum RunItem {
    /// A run: on its own, or (`member`) one seed of an expanded group.
    Run {
        row: usize,
        member: Option<Member>,
    },
    Group(SeedGroup),
}

/// A run's place in an expanded group.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// `s2`; `s2 older` for a run a newer run of the same seed supersedes.
    pub label: String,
    /// The group's last row (drawn `└`).
    pub last: bool,
}

/// Which line is selected, by what it shows, so a new listing keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    Run(String),
    Group(String),
}

impl RunItem {
    pub fn selected(&self, runs: &[RunRow]) -> Selected {
        match self {
            RunItem::Run { row, .. } => Selected::Run(runs[*row].id.clone()),
            RunItem::Group(g) => Selected::Group(g.key.clone()),
        }
    }
}

/// The pane's lines for `runs` (already filtered and sorted): each group of seeds where its
/// first run is listed, its members under it when `expanded` holds its key. Sorted by result,
/// a group goes where its mean over seeds ranks.
pub fn items(runs: &[RunRow], sort: RunSort, expanded: &BTreeSet<String>) -> Vec<RunItem> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        if let Some(k) = r.seed_key.as_deref() {
            by_key.entry(k).or_default().push(i);
        }
    }
    // A group needs two seeds: a rerun of one seed is the same seed again, not a spread.
    by_key.retain(|_, m| {
        m.iter()
            .map(|&i| runs[i].seed)
            .collect::<BTreeSet<_>>()
            .len()
            >= 2
    });
    let mut blocks: Vec<((u8, f64), Vec<RunItem>)> = Vec::new();
    let mut placed = BTreeSet::new();
    for (i, r) in runs.iter().enumerate() {
        let Some(members) = r.seed_key.as_deref().and_then(|k| by_key.get(k)) else {
            blocks.push((
                rank(r.extra.score),
                vec![RunItem::Run {
                    row: i,
                    member: None,
                }],
            ));
            continue;
        };
        let key = r.seed_key.clone().unwrap_or_default();
        if !placed.insert(key.clone()) {
            continue;
        }
        let g = group(runs, key, members, expanded);
        let score = g.result.map(|res| crate::runs::Score {
            value: res.summary.mean,
            accuracy: res.accuracy,
        });
        let mut block = vec![];
        if g.expanded {
            block.extend(member_items(runs, &g.members));
        }
        block.insert(0, RunItem::Group(g));
        blocks.push((rank(score), block));
    }
    if sort == RunSort::Result {
        // Stable: equal results keep the date order.
        blocks.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    }
    blocks.into_iter().flat_map(|(_, b)| b).collect()
}

fn group(
    runs: &[RunRow],
    key: String,
    members: &[usize],
    expanded: &BTreeSet<String>,
) -> SeedGroup {
    let mut members = members.to_vec();
    members.sort_by(|&a, &b| {
        let (a, b) = (&runs[a], &runs[b]);
        a.seed
            .cmp(&b.seed)
            .then(b.started_unix.cmp(&a.started_unix))
            .then(b.id.cmp(&a.id))
    });
    let seeds = members
        .iter()
        .map(|&i| runs[i].seed)
        .collect::<BTreeSet<_>>()
        .len();
    // Per seed, the newest run with a final result: a rerun replaces, never adds, a seed.
    let mut per_seed: BTreeMap<Option<u64>, crate::runs::Score> = BTreeMap::new();
    for &i in &members {
        if let Some(s) = runs[i].extra.score.filter(|s| s.value.is_finite()) {
            per_seed.entry(runs[i].seed).or_insert(s);
        }
    }
    let values: Vec<f64> = per_seed.values().map(|s| s.value).collect();
    let result = (!values.is_empty()).then(|| GroupResult {
        summary: MeanCi::of_t(&values),
        accuracy: per_seed.values().any(|s| s.accuracy),
    });
    SeedGroup {
        expanded: expanded.contains(&key),
        key,
        members,
        seeds,
        result,
    }
}

fn member_items(runs: &[RunRow], members: &[usize]) -> Vec<RunItem> {
    let mut seen = BTreeSet::new();
    members
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let seed = runs[i].seed;
            let mut label = seed.map_or("s?".to_string(), |s| format!("s{s}"));
            if !seen.insert(seed) {
                label.push_str(" older");
            }
            RunItem::Run {
                row: i,
                member: Some(Member {
                    label,
                    last: n + 1 == members.len(),
                }),
            }
        })
        .collect()
}

/// The group's states, most common first: `3 finished / 1 stopped`.
pub fn states(runs: &[RunRow], g: &SeedGroup) -> String {
    let mut count: Vec<(&'static str, usize)> = Vec::new();
    for &i in &g.members {
        let label = runs[i].status.label();
        match count.iter_mut().find(|(l, _)| *l == label) {
            Some(c) => c.1 += 1,
            None => count.push((label, 1)),
        }
    }
    count.sort_by_key(|c| std::cmp::Reverse(c.1));
    count
        .iter()
        .map(|(l, n)| format!("{n} {l}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The runs a line stands for: a group's members, or the run.
pub fn rows_of<'a>(runs: &'a [RunRow], item: &RunItem) -> Vec<&'a RunRow> {
    match item {
        RunItem::Run { row, .. } => vec![&runs[*row]],
        RunItem::Group(g) => g.members.iter().map(|&i| &runs[i]).collect(),
    }
}

/// Where `sel` is among `items`; for a run in a group now collapsed, the group's row.
pub fn position(items: &[RunItem], runs: &[RunRow], sel: &Selected) -> Option<usize> {
    items
        .iter()
        .position(|it| &it.selected(runs) == sel)
        .or_else(|| match sel {
            Selected::Run(id) => items.iter().position(|it| match it {
                RunItem::Group(g) => g.members.iter().any(|&i| &runs[i].id == id),
                RunItem::Run { .. } => false,
            }),
            Selected::Group(_) => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::{RunStatus, Score};

    fn run(id: &str, key: Option<&str>, seed: u64, value: Option<f64>) -> RunRow {
        RunRow {
            id: id.into(),
            dir: Default::default(),
            experiment: "e".into(),
            arm: "maml".into(),
            algorithm: "MAML".into(),
            status: if value.is_some() {
                RunStatus::Finished
            } else {
                RunStatus::Stopped
            },
            started_unix: 100 - seed,
            iteration: 0,
            total_iterations: 0,
            headline: None,
            seed: Some(seed),
            variant: None,
            seed_key: key.map(Into::into),
            extra: super::super::store::RunExtra {
                score: value.map(|value| Score {
                    value,
                    accuracy: false,
                }),
                ..Default::default()
            },
        }
    }

    #[test]
    fn seeds_of_one_config_are_one_row_with_a_t_interval() {
        let runs = vec![
            run("a3", Some("k"), 3, Some(0.3)),
            run("other", Some("j"), 1, Some(9.0)),
            run("a1", Some("k"), 1, Some(0.1)),
            run("a2", Some("k"), 2, Some(0.2)),
            run("a4", Some("k"), 4, None),
        ];
        let items = items(&runs, RunSort::Date, &BTreeSet::new());
        assert_eq!(items.len(), 2);
        let RunItem::Group(g) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(g.members, [2, 3, 0, 4]);
        assert_eq!(g.seeds, 4);
        let r = g.result.unwrap();
        assert!((r.summary.mean - 0.2).abs() < 1e-12);
        // t(2) = 4.303, sd 0.1: 4.303 · 0.1 / √3 = 0.248.
        assert!((r.summary.ci95 - 4.303 * 0.1 / 3f64.sqrt()).abs() < 1e-3);
        assert_eq!(r.label(g.seeds), "3/4 seeds: MSE 0.200 ± 0.248");
        assert_eq!(states(&runs, g), "3 finished / 1 stopped");
        let open = items_expanded(&runs, "k");
        let labels: Vec<_> = open
            .iter()
            .filter_map(|it| match it {
                RunItem::Run {
                    member: Some(m), ..
                } => Some(m.label.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(labels, ["s1", "s2", "s3", "s4"]);
    }

    fn items_expanded(runs: &[RunRow], key: &str) -> Vec<RunItem> {
        items(runs, RunSort::Date, &BTreeSet::from([key.to_string()]))
    }

    #[test]
    fn one_seed_twice_is_no_group() {
        let runs = vec![
            run("a", Some("k"), 1, Some(0.1)),
            run("b", Some("k"), 1, Some(0.2)),
        ];
        let items = items(&runs, RunSort::Date, &BTreeSet::new());
        assert!(items.iter().all(|i| matches!(i, RunItem::Run { .. })));
    }
}
