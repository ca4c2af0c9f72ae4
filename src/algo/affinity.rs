//! Task affinities measured during training (issue 21), over the training tasks' ids (a
//! multi-task arm's task set, or a family's fixed tasks):
//!
//! * **gradient cosine**: the running mean, over the iterations two tasks meet in a meta-batch,
//!   of the cosine between their updates on the shared parameters;
//! * **lookahead affinity** (Fifty et al., NeurIPS 2021, "Efficiently identifying task
//!   groupings"): `Z(i→j) = 1 − L_j(θ − η·dᵢ) / L_j(θ)`, how much one step along task i's
//!   descent direction `dᵢ` (shared parameters only) lowers task j's loss; positive helps.
//!
//! Both are recorded in the run as `affinity.json` and `affinity.csv`. The running means'
//! sums and counts are part of the checkpoint ([`AffinityTracker::state`]), so a resumed run
//! continues them as an uninterrupted one would.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A checkpoint tensor of the running means that is missing or of the wrong length (the
/// learner reports it as its own state error; this module stays below the algorithm contract).
#[derive(Debug, Clone, PartialEq)]
pub enum StateError {
    Missing(String),
    Length {
        name: String,
        found: usize,
        expected: usize,
    },
}

fn take_state(
    state: &BTreeMap<String, Vec<f32>>,
    name: &str,
    len: usize,
) -> Result<Vec<f32>, StateError> {
    let v = state
        .get(name)
        .ok_or_else(|| StateError::Missing(name.into()))?;
    if v.len() != len {
        return Err(StateError::Length {
            name: name.into(),
            found: v.len(),
            expected: len,
        });
    }
    Ok(v.clone())
}

/// The checkpoint holds f32 tensors only: a 64-bit value (an f64 sum's bits, a count) goes in
/// as four 16-bit chunks, each an f32 integer, so it comes back bit for bit.
fn encode(values: impl Iterator<Item = u64>) -> Vec<f32> {
    values
        .flat_map(|v| (0..4).rev().map(move |k| ((v >> (16 * k)) & 0xffff) as f32))
        .collect()
}

fn decode(chunks: &[f32]) -> Vec<u64> {
    chunks
        .chunks(4)
        .map(|c| c.iter().fold(0u64, |v, &x| (v << 16) | (x as u64 & 0xffff)))
        .collect()
}

/// A running mean per ordered task pair, over `n` task ids.
#[derive(Debug, Clone, PartialEq)]
struct Running {
    n: usize,
    sum: Vec<f64>,
    count: Vec<u64>,
}

impl Running {
    fn new(n: usize) -> Running {
        Running {
            n,
            sum: vec![0.0; n * n],
            count: vec![0; n * n],
        }
    }

    fn add(&mut self, i: usize, j: usize, v: f64) {
        if v.is_finite() {
            self.sum[i * self.n + j] += v;
            self.count[i * self.n + j] += 1;
        }
    }

    /// The sums' bits and the counts as checkpoint tensors `{prefix}.sum` and `{prefix}.count`.
    fn state(&self, prefix: &str) -> Vec<(String, Vec<f32>)> {
        vec![
            (
                format!("{prefix}.sum"),
                encode(self.sum.iter().map(|s| s.to_bits())),
            ),
            (
                format!("{prefix}.count"),
                encode(self.count.iter().copied()),
            ),
        ]
    }

    fn from_state(
        state: &BTreeMap<String, Vec<f32>>,
        prefix: &str,
        n: usize,
    ) -> Result<Running, StateError> {
        let sum = take_state(state, &format!("{prefix}.sum"), 4 * n * n)?;
        let count = take_state(state, &format!("{prefix}.count"), 4 * n * n)?;
        Ok(Running {
            n,
            sum: decode(&sum).into_iter().map(f64::from_bits).collect(),
            count: decode(&count),
        })
    }

    fn matrix(&self) -> Vec<Vec<Option<f64>>> {
        (0..self.n)
            .map(|i| {
                (0..self.n)
                    .map(|j| {
                        let k = i * self.n + j;
                        (self.count[k] > 0).then(|| self.sum[k] / self.count[k] as f64)
                    })
                    .collect()
            })
            .collect()
    }
}

/// The affinities measured so far, as a run records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffinityRecord {
    /// The iteration the record was written at.
    pub iteration: usize,
    /// Each task id's group, where the family names groups.
    pub groups: Vec<Option<usize>>,
    /// `cosine[i][j]`: the running-mean cosine of tasks i and j's updates (`None`: never met).
    pub cosine: Vec<Vec<Option<f64>>>,
    /// `lookahead[i][j]`: the mean of `Z(i→j)` over the measurements.
    pub lookahead: Vec<Vec<Option<f64>>>,
    /// The lookahead step size η.
    pub lookahead_lr: f64,
}

impl AffinityRecord {
    /// Long format: `measure,from,to,from_group,to_group,value`, one row per measured pair.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("measure,from,to,from_group,to_group,value\n");
        let group = |i: usize| self.groups[i].map(|g| g.to_string()).unwrap_or_default();
        for (name, m) in [("cosine", &self.cosine), ("lookahead", &self.lookahead)] {
            for (i, row) in m.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    if let Some(v) = v {
                        out += &format!("{name},{i},{j},{},{},{v}\n", group(i), group(j));
                    }
                }
            }
        }
        out
    }
}

/// The checkpoint tensor of the tracked tasks' groups.
const GROUPS: &str = "affinity.groups";

/// The accumulators, owned by the learner.
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityTracker {
    groups: Vec<Option<usize>>,
    cosine: Running,
    lookahead: Running,
    pub every: usize,
    pub lookahead_lr: f64,
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The cosine of `a` and `b` (`NaN` when either is zero, which the running mean skips).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// Fifty et al.'s `1 − L_after / L_before`.
pub fn lookahead_affinity(before: f64, after: f64) -> f64 {
    1.0 - after / before
}

impl AffinityTracker {
    pub fn new(groups: Vec<Option<usize>>, every: usize, lookahead_lr: f64) -> AffinityTracker {
        let n = groups.len();
        AffinityTracker {
            groups,
            cosine: Running::new(n),
            lookahead: Running::new(n),
            every: every.max(1),
            lookahead_lr,
        }
    }

    pub fn tasks(&self) -> usize {
        self.groups.len()
    }

    /// One meta-batch's updates (shared part) by task id: every pair of distinct ids.
    pub fn add_cosines(&mut self, ids: &[usize], shared: &[&[f64]]) {
        for a in 0..ids.len() {
            for b in 0..ids.len() {
                if ids[a] != ids[b] {
                    self.cosine
                        .add(ids[a], ids[b], cosine(shared[a], shared[b]));
                }
            }
        }
    }

    /// One lookahead measurement: `after[a][b]` is task `ids[b]`'s loss after a step on task
    /// `ids[a]`'s direction, `before[b]` its loss before.
    pub fn add_lookahead(&mut self, ids: &[usize], before: &[f64], after: &[Vec<f64>]) {
        for (a, row) in after.iter().enumerate() {
            for (b, &l) in row.iter().enumerate() {
                if ids[a] != ids[b] {
                    self.lookahead
                        .add(ids[a], ids[b], lookahead_affinity(before[b], l));
                }
            }
        }
    }

    /// The running means for the checkpoint: each task's group (−1 for none) and the sums and
    /// counts of both measures.
    pub fn state(&self) -> Vec<(String, Vec<f32>)> {
        let groups = self
            .groups
            .iter()
            .map(|g| g.map_or(-1.0, |g| g as f32))
            .collect();
        let mut s = vec![(GROUPS.to_string(), groups)];
        s.extend(self.cosine.state("affinity.cosine"));
        s.extend(self.lookahead.state("affinity.lookahead"));
        s
    }

    /// The tracker a checkpoint's [`AffinityTracker::state`] left, measuring on at `every` and
    /// `lookahead_lr` (the experiment's); `None` when the checkpoint has none (a run that had
    /// not started measuring, or one from before the means were kept).
    pub fn from_state(
        state: &BTreeMap<String, Vec<f32>>,
        every: usize,
        lookahead_lr: f64,
    ) -> Result<Option<AffinityTracker>, StateError> {
        let Some(groups) = state.get(GROUPS) else {
            return Ok(None);
        };
        let n = groups.len();
        let mut t = AffinityTracker::new(
            groups
                .iter()
                .map(|&g| (g >= 0.0).then_some(g as usize))
                .collect(),
            every,
            lookahead_lr,
        );
        t.cosine = Running::from_state(state, "affinity.cosine", n)?;
        t.lookahead = Running::from_state(state, "affinity.lookahead", n)?;
        Ok(Some(t))
    }

    pub fn record(&self, iteration: usize) -> AffinityRecord {
        AffinityRecord {
            iteration,
            groups: self.groups.clone(),
            cosine: self.cosine.matrix(),
            lookahead: self.lookahead.matrix(),
            lookahead_lr: self.lookahead_lr,
        }
    }
}

/// Average-linkage agglomerative clustering of `m` (an affinity: larger is closer; unmeasured
/// pairs count as 0, the matrix symmetrised) down to `k` clusters; returns each task's
/// cluster, numbered by first appearance. Used to order the heatmap and to group tasks.
pub fn clusters(m: &[Vec<Option<f64>>], k: usize) -> Vec<usize> {
    let n = m.len();
    let sim = |i: usize, j: usize| (m[i][j].unwrap_or(0.0) + m[j][i].unwrap_or(0.0)) / 2.0;
    let mut groups: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    while groups.len() > k.max(1) {
        let mut best = (f64::NEG_INFINITY, 0, 1);
        for a in 0..groups.len() {
            for b in a + 1..groups.len() {
                let mut s = 0.0;
                for &i in &groups[a] {
                    for &j in &groups[b] {
                        s += sim(i, j);
                    }
                }
                s /= (groups[a].len() * groups[b].len()) as f64;
                if s > best.0 {
                    best = (s, a, b);
                }
            }
        }
        let merged = groups.remove(best.2);
        groups[best.1].extend(merged);
    }
    let mut label = vec![usize::MAX; n];
    let mut next = 0;
    for i in 0..n {
        if label[i] == usize::MAX {
            let g = groups
                .iter()
                .find(|g| g.contains(&i))
                .expect("every task clustered");
            for &t in g {
                label[t] = next;
            }
            next += 1;
        }
    }
    label
}

/// The tasks ordered cluster by cluster (for the heatmap), clusters as [`clusters`] numbers them.
pub fn cluster_order(m: &[Vec<Option<f64>>], k: usize) -> Vec<usize> {
    let label = clusters(m, k);
    let mut order: Vec<usize> = (0..m.len()).collect();
    order.sort_by_key(|&i| (label[i], i));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_means_skip_self_pairs_and_undefined_cosines() {
        let mut t = AffinityTracker::new(vec![Some(0), Some(0), Some(1)], 1, 0.1);
        let (a, b, z) = (vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, 0.0]);
        t.add_cosines(&[0, 1, 2], &[&a, &b, &z]);
        t.add_cosines(&[0, 1], &[&a, &a]);
        let r = t.record(3);
        let c = (0.5f64).sqrt();
        assert_eq!(r.cosine[0][1], Some((c + 1.0) / 2.0));
        assert_eq!(r.cosine[0][0], None);
        assert_eq!(r.cosine[0][2], None);
        t.add_lookahead(&[0, 2], &[2.0, 4.0], &[vec![1.0, 3.0], vec![3.0, 2.0]]);
        let r = t.record(4);
        assert_eq!(r.lookahead[0][2], Some(0.25));
        assert_eq!(r.lookahead[2][0], Some(-0.5));
        assert!(r.to_csv().contains("lookahead,2,0,1,0,-0.5\n"));
    }

    #[test]
    fn the_checkpoint_state_gives_back_the_same_tracker_bit_for_bit() {
        let mut t = AffinityTracker::new(vec![Some(0), None, Some(2)], 5, 0.01);
        let (a, b) = (vec![0.3, -1.7, 1e-9], vec![2.5, 0.1, -3.0]);
        t.add_cosines(&[0, 1, 2], &[&a, &b, &a]);
        t.add_cosines(&[2, 1], &[&b, &a]);
        t.add_lookahead(&[0, 2], &[0.7, 1.3], &[vec![0.1, 1.9], vec![0.6999, 1.0]]);
        let state: BTreeMap<String, Vec<f32>> = t.state().into_iter().collect();
        let back = AffinityTracker::from_state(&state, 5, 0.01)
            .unwrap()
            .unwrap();
        assert_eq!(back, t);
        assert_eq!(back.record(7), t.record(7));
        // Values that need all 64 bits: the chunks carry them exactly.
        for v in [u64::MAX, 1, 0x8000_0000_0000_0001, (-0.1f64).to_bits()] {
            assert_eq!(decode(&encode([v].into_iter())), [v]);
        }
        assert_eq!(
            AffinityTracker::from_state(&BTreeMap::new(), 5, 0.01),
            Ok(None)
        );
        let mut short = state.clone();
        short.get_mut("affinity.lookahead.count").unwrap().pop();
        assert!(matches!(
            AffinityTracker::from_state(&short, 5, 0.01),
            Err(StateError::Length { .. })
        ));
    }

    #[test]
    fn clustering_recovers_planted_blocks() {
        // Two blocks {0, 2, 4} and {1, 3}: high affinity within, negative across.
        let block = [0, 1, 0, 1, 0];
        let m: Vec<Vec<Option<f64>>> = (0..5)
            .map(|i| {
                (0..5)
                    .map(|j| Some(if block[i] == block[j] { 0.8 } else { -0.6 }))
                    .collect()
            })
            .collect();
        assert_eq!(clusters(&m, 2), block);
        assert_eq!(cluster_order(&m, 2), [0, 2, 4, 1, 3]);
    }
}
