//! What the task-embedding scatter and the task-affinity heatmap show, as plain data: the
//! workbench draws it in the terminal (`tui::view::embedding`, `tui::view::affinity`) and
//! export draws it with plotters (`task_plots`), so both show the same projection, order and
//! colours.

use crate::algo::affinity::AffinityRecord;
use crate::algo::{linkage, pca};
use crate::palette::{self, Rgb};
use crate::runs::embeddings::{Colouring, EmbeddingRecord};

/// A class of scatter points drawn in one style: its label, its colour and its points.
pub type PointClass = (String, Rgb, Vec<(f64, f64)>);

/// How the points are coloured.
#[derive(Debug, Clone, PartialEq)]
pub enum ColourKey {
    /// A parameter's value on a sequential scale from `lo` to `hi`.
    Scale { lo: f64, hi: f64 },
    /// One colour per group, in order of first appearance.
    Groups(Vec<(String, Rgb)>),
}

/// The embeddings on their first two principal components.
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter {
    pub iteration: usize,
    pub tasks: usize,
    /// Values in each embedding.
    pub width: usize,
    pub steps: usize,
    /// Each task's (PC1, PC2).
    pub points: Vec<(f64, f64)>,
    /// The share of the variance PC1 and PC2 explain.
    pub explained: [f64; 2],
    /// What colours the points, by name.
    pub colour_name: &'static str,
    /// Each point's colouring value: the parameter, or its group's index in the key.
    pub values: Vec<f64>,
    pub key: ColourKey,
}

impl Scatter {
    pub fn build(r: &EmbeddingRecord, colouring: Colouring) -> Scatter {
        let x: Vec<Vec<f64>> = r
            .tasks
            .iter()
            .map(|t| t.embedding.iter().map(|&v| v as f64).collect())
            .collect();
        let p = pca::project(&x, 2);
        let (values, key) = match colouring {
            Colouring::Property(i) => {
                let v: Vec<f64> = r
                    .tasks
                    .iter()
                    .map(|t| t.values.get(i).copied().unwrap_or(f64::NAN))
                    .collect();
                let finite = v.iter().copied().filter(|v| v.is_finite());
                let lo = finite.clone().fold(f64::INFINITY, f64::min);
                let hi = finite.fold(f64::NEG_INFINITY, f64::max);
                (v, ColourKey::Scale { lo, hi })
            }
            Colouring::Group => {
                let groups = r.groups();
                let v = r
                    .tasks
                    .iter()
                    .map(|t| {
                        t.group
                            .as_ref()
                            .and_then(|g| groups.iter().position(|x| x == g))
                            .map_or(f64::NAN, |i| i as f64)
                    })
                    .collect();
                let key = groups
                    .into_iter()
                    .enumerate()
                    .map(|(i, g)| (g, palette::arm(i)))
                    .collect();
                (v, ColourKey::Groups(key))
            }
        };
        Scatter {
            iteration: r.iteration,
            tasks: r.tasks.len(),
            width: r.width(),
            steps: r.steps,
            points: p.points.iter().map(|q| (q[0], q[1])).collect(),
            explained: [p.explained[0], p.explained[1]],
            colour_name: colouring.name(r),
            values,
            key,
        }
    }

    /// A point's colour.
    pub fn colour(&self, i: usize) -> Rgb {
        let v = self.values.get(i).copied().unwrap_or(f64::NAN);
        match &self.key {
            ColourKey::Scale { lo, hi } => {
                palette::sequential(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
            }
            ColourKey::Groups(g) => {
                if v.is_finite() {
                    g.get(v as usize).map_or(Rgb(0x99, 0x99, 0x99), |(_, c)| *c)
                } else {
                    Rgb(0x99, 0x99, 0x99)
                }
            }
        }
    }

    /// The points in classes a terminal can draw one style each: a continuous parameter cut
    /// into `bins` equal ranges (each labelled with its range and drawn in its middle's
    /// colour), or one class per group. Empty classes are left out.
    pub fn classes(&self, bins: usize) -> Vec<PointClass> {
        let mut out: Vec<PointClass> = match &self.key {
            ColourKey::Scale { lo, hi } => {
                let bins = if hi > lo { bins.max(1) } else { 1 };
                let w = (hi - lo) / bins as f64;
                (0..bins)
                    .map(|b| {
                        let (a, z) = (lo + w * b as f64, lo + w * (b + 1) as f64);
                        let label = format!("{}–{}", short(a), short(z));
                        (
                            label,
                            palette::sequential((b as f64 + 0.5) / bins as f64),
                            vec![],
                        )
                    })
                    .collect()
            }
            ColourKey::Groups(g) => g.iter().map(|(n, c)| (n.clone(), *c, vec![])).collect(),
        };
        for (i, &p) in self.points.iter().enumerate() {
            let v = self.values.get(i).copied().unwrap_or(f64::NAN);
            if !v.is_finite() || out.is_empty() {
                continue;
            }
            let k = match &self.key {
                ColourKey::Scale { lo, hi } if hi > lo => {
                    (((v - lo) / (hi - lo) * out.len() as f64) as usize).min(out.len() - 1)
                }
                ColourKey::Scale { .. } => 0,
                ColourKey::Groups(_) => (v as usize).min(out.len() - 1),
            };
            out[k].2.push(p);
        }
        out.retain(|c| !c.2.is_empty());
        out
    }
}

/// A number in three significant digits at most, for legends.
pub fn short(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// Which of the record's two affinity measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Measure {
    /// The running-mean cosine of two tasks' updates.
    #[default]
    Cosine,
    /// Fifty et al.'s lookahead affinity `1 − L_j(θ − η·dᵢ)/L_j(θ)`.
    Lookahead,
}

impl Measure {
    pub const ALL: [Measure; 2] = [Measure::Cosine, Measure::Lookahead];

    pub fn next(self) -> Measure {
        match self {
            Measure::Cosine => Measure::Lookahead,
            Measure::Lookahead => Measure::Cosine,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Measure::Cosine => "gradient cosine",
            Measure::Lookahead => "lookahead affinity",
        }
    }

    /// What a cell `(row i, column j)` is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Measure::Cosine => "running-mean cosine of tasks i and j's updates",
            Measure::Lookahead => "1 − L_j after a step on task i / L_j before (Fifty et al.)",
        }
    }

    pub fn matrix(self, r: &AffinityRecord) -> &[Vec<Option<f64>>] {
        match self {
            Measure::Cosine => &r.cosine,
            Measure::Lookahead => &r.lookahead,
        }
    }
}

/// An affinity matrix with its rows and columns in the leaf order of an average-linkage
/// clustering on `1 − affinity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub measure: Measure,
    pub iteration: usize,
    /// Task ids, in display order.
    pub order: Vec<usize>,
    /// Each displayed task's group name (`None` where the family has no groups).
    pub groups: Vec<Option<String>>,
    /// `values[r][c]`: the affinity of task `order[r]` to task `order[c]`.
    pub values: Vec<Vec<Option<f64>>>,
    /// The colour scale runs from `−scale` to `+scale`: the largest value rounded up to one
    /// significant digit.
    pub scale: f64,
    /// The clustering cut into as many clusters as there are groups, per displayed task.
    pub clusters: Vec<usize>,
    /// Whether that cut is exactly the family's groups (`None` without groups).
    pub matches_groups: Option<bool>,
}

impl Heatmap {
    pub fn build(r: &AffinityRecord, measure: Measure, group_names: &[String]) -> Heatmap {
        let m = measure.matrix(r);
        let n = m.len();
        let tree = linkage::average(&linkage::affinity_distances(m));
        let order = tree.order();
        let group_of = |t: usize| r.groups.get(t).copied().flatten();
        let distinct: Vec<usize> = {
            let mut g: Vec<usize> = (0..n).filter_map(group_of).collect();
            g.sort_unstable();
            g.dedup();
            g
        };
        let cut = tree.cut(distinct.len().max(1));
        let matches_groups =
            (!distinct.is_empty() && (0..n).all(|t| group_of(t).is_some())).then(|| {
                (0..n).all(|i| (0..n).all(|j| (cut[i] == cut[j]) == (group_of(i) == group_of(j))))
            });
        let largest = m.iter().flatten().flatten().fold(0.0f64, |a, v| {
            if v.is_finite() {
                a.max(v.abs())
            } else {
                a
            }
        });
        // On ± the largest value, not the measure's range: trunk cosines of ±0.1 on a ±1 scale
        // are one blank colour.
        let scale = match measure {
            Measure::Cosine => round_up(largest).min(1.0),
            Measure::Lookahead => round_up(largest),
        };
        Heatmap {
            measure,
            iteration: r.iteration,
            groups: order
                .iter()
                .map(|&t| {
                    group_of(t).map(|g| {
                        group_names
                            .get(g)
                            .cloned()
                            .unwrap_or_else(|| format!("group {g}"))
                    })
                })
                .collect(),
            values: order
                .iter()
                .map(|&i| {
                    order
                        .iter()
                        .map(|&j| m[i].get(j).copied().flatten())
                        .collect()
                })
                .collect(),
            clusters: order.iter().map(|&t| cut[t]).collect(),
            order,
            scale,
            matches_groups,
        }
    }

    /// A value's colour on the diverging scale.
    pub fn colour(&self, v: f64) -> Rgb {
        palette::diverging(v / self.scale)
    }

    /// The displayed task at position `k`, as `t3 line` (or `t3`).
    pub fn label(&self, k: usize) -> String {
        match self.groups.get(k).cloned().flatten() {
            Some(g) => format!("t{} {g}", self.order[k]),
            None => format!("t{}", self.order[k]),
        }
    }

    /// The distinct clusters of the cut.
    pub fn cluster_count(&self) -> usize {
        let mut c = self.clusters.clone();
        c.sort_unstable();
        c.dedup();
        c.len()
    }
}

/// `v` rounded up to one significant digit (a colour scale's end); 1 for nothing measured.
fn round_up(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    (v / mag - 1e-9).ceil() * mag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::embedding::TaskProperty;
    use crate::runs::embeddings::TaskEmbedding;

    /// Two groups of tasks interleaved (ids 0, 2, 4 and 1, 3, 5), affinities high within and
    /// negative across: the heatmap shows each group as one block and its cut is the groups.
    #[test]
    fn a_block_affinity_matrix_comes_out_in_blocks() {
        let g = [0, 1, 0, 1, 0, 1];
        let m: Vec<Vec<Option<f64>>> = (0..6)
            .map(|i| {
                (0..6)
                    .map(|j| (i != j).then_some(if g[i] == g[j] { 0.02 } else { -0.013 }))
                    .collect()
            })
            .collect();
        let r = AffinityRecord {
            iteration: 40,
            groups: g.iter().map(|&x| Some(x)).collect(),
            cosine: m.clone(),
            lookahead: m,
            lookahead_lr: 0.01,
        };
        let names = vec!["sine".to_string(), "line".to_string()];
        let h = Heatmap::build(&r, Measure::Lookahead, &names);
        assert_eq!(h.order, [0, 2, 4, 1, 3, 5]);
        assert_eq!(h.matches_groups, Some(true));
        assert_eq!(h.cluster_count(), 2);
        assert_eq!(h.label(1), "t2 sine");
        assert_eq!(h.label(3), "t1 line");
        assert_eq!(h.values[0][1], Some(0.02));
        assert_eq!(h.values[0][0], None);
        assert!((h.scale - 0.02).abs() < 1e-12, "{}", h.scale);
        assert_eq!(h.colour(0.02), palette::diverging(1.0));
        let mut ones = r.clone();
        ones.cosine[0][1] = Some(-1.0);
        assert_eq!(Heatmap::build(&ones, Measure::Cosine, &names).scale, 1.0);
        assert!((round_up(0.013) - 0.02).abs() < 1e-12);
        assert_eq!(round_up(0.0), 1.0);
    }

    #[test]
    fn a_scatter_bins_a_parameter_and_names_groups() {
        let tasks: Vec<TaskEmbedding> = (0..10)
            .map(|i| TaskEmbedding {
                embedding: vec![i as f32, 0.0],
                values: vec![i as f64 / 9.0],
                group: Some(if i < 5 { "a" } else { "b" }.into()),
            })
            .collect();
        let r = EmbeddingRecord {
            iteration: 7,
            steps: 1,
            tasks_from: String::new(),
            properties: vec![TaskProperty::Amplitude],
            tasks,
        };
        let s = Scatter::build(&r, Colouring::Property(0));
        assert_eq!(s.colour_name, "amplitude");
        assert!((s.explained[0] - 1.0).abs() < 1e-12);
        assert_eq!(s.key, ColourKey::Scale { lo: 0.0, hi: 1.0 });
        let c = s.classes(5);
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|(_, _, p)| p.len() == 2), "{c:?}");
        assert_eq!(c[0].0, "0.00–0.20");
        assert_eq!(s.colour(9), palette::sequential(1.0));
        let g = Scatter::build(&r, Colouring::Group);
        let c = g.classes(5);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].0.as_str(), c[0].2.len()), ("a", 5));
        assert_eq!(g.colour(7), palette::arm(1));
    }
}
