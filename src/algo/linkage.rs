//! Average-linkage hierarchical clustering (UPGMA) of a few tasks, and the order of its
//! dendrogram's leaves: what orders an affinity heatmap's rows and columns so that related
//! tasks sit in blocks along the diagonal.

/// One merge of two clusters at the mean distance between their members.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    /// The merged clusters: `0..n` are the leaves, `n + k` the cluster made by merge `k`.
    pub a: usize,
    pub b: usize,
    pub height: f64,
}

/// The merges, in the order they were made (heights never decrease for average linkage).
#[derive(Debug, Clone, PartialEq)]
pub struct Dendrogram {
    pub leaves: usize,
    pub merges: Vec<Merge>,
}

/// Distances `1 − a` from an affinity matrix (larger is closer): the pair's two directions
/// averaged, an unmeasured pair counted as affinity 0, a task at distance 0 from itself.
pub fn affinity_distances(m: &[Vec<Option<f64>>]) -> Vec<Vec<f64>> {
    let n = m.len();
    let at = |i: usize, j: usize| m[i].get(j).copied().flatten();
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        return 0.0;
                    }
                    let v: Vec<f64> = [at(i, j), at(j, i)].into_iter().flatten().collect();
                    let a = if v.is_empty() {
                        0.0
                    } else {
                        v.iter().sum::<f64>() / v.len() as f64
                    };
                    1.0 - a
                })
                .collect()
        })
        .collect()
}

/// Average linkage on a symmetric distance matrix: repeatedly merge the two clusters whose
/// members are closest on average (ties: the pair met first, smallest ids), until one is left.
pub fn average(dist: &[Vec<f64>]) -> Dendrogram {
    let n = dist.len();
    // Live clusters: (id, members).
    let mut live: Vec<(usize, Vec<usize>)> = (0..n).map(|i| (i, vec![i])).collect();
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    while live.len() > 1 {
        let mut best = (f64::INFINITY, 0, 1);
        for x in 0..live.len() {
            for y in x + 1..live.len() {
                let (ma, mb) = (&live[x].1, &live[y].1);
                let mut s = 0.0;
                for &i in ma {
                    for &j in mb {
                        s += dist[i][j];
                    }
                }
                let d = s / (ma.len() * mb.len()) as f64;
                if d < best.0 {
                    best = (d, x, y);
                }
            }
        }
        let (height, x, y) = best;
        let (idb, mb) = live.remove(y);
        let (ida, mut ma) = std::mem::take(&mut live[x]);
        ma.extend(mb);
        merges.push(Merge {
            a: ida,
            b: idb,
            height: if height.is_finite() { height } else { 0.0 },
        });
        live[x] = (n + merges.len() - 1, ma);
    }
    Dendrogram { leaves: n, merges }
}

impl Dendrogram {
    /// The leaves left to right: each merge's two sides kept together, the side holding the
    /// smaller leaf first, so blocks of related tasks come out contiguous and in a stable order.
    pub fn order(&self) -> Vec<usize> {
        let n = self.leaves;
        let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
        for m in &self.merges {
            let (a, b) = (&members[m.a], &members[m.b]);
            let first_a = a.iter().min() <= b.iter().min();
            let joined = if first_a {
                [a.clone(), b.clone()].concat()
            } else {
                [b.clone(), a.clone()].concat()
            };
            members.push(joined);
        }
        members.pop().unwrap_or_default()
    }

    /// Each leaf's cluster when the tree is cut into `k` clusters (the last `k − 1` merges
    /// undone), numbered by their first leaf in [`order`](Self::order).
    pub fn cut(&self, k: usize) -> Vec<usize> {
        let n = self.leaves;
        let keep = self.merges.len().saturating_sub(k.max(1) - 1);
        // Union-find over the first `keep` merges.
        let mut parent: Vec<usize> = (0..n + self.merges.len()).collect();
        fn root(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                p[i] = p[p[i]];
                i = p[i];
            }
            i
        }
        for (k, m) in self.merges.iter().enumerate().take(keep) {
            let (ra, rb) = (root(&mut parent, m.a), root(&mut parent, m.b));
            parent[ra] = n + k;
            parent[rb] = n + k;
        }
        let mut label = vec![usize::MAX; n];
        let mut by_root: Vec<(usize, usize)> = vec![];
        for leaf in self.order() {
            let r = root(&mut parent, leaf);
            let next = by_root.len();
            let l = match by_root.iter().find(|(root, _)| *root == r) {
                Some(&(_, l)) => l,
                None => {
                    by_root.push((r, next));
                    next
                }
            };
            label[leaf] = l;
        }
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// d(0,1) = 1, d(0,2) = 4, d(1,2) = 6: 0 and 1 merge at 1, then {0,1} and 2 at the mean
    /// of 4 and 6.
    #[test]
    fn three_points_by_hand() {
        let d = vec![
            vec![0.0, 1.0, 4.0],
            vec![1.0, 0.0, 6.0],
            vec![4.0, 6.0, 0.0],
        ];
        let t = average(&d);
        assert_eq!(
            t.merges,
            vec![
                Merge {
                    a: 0,
                    b: 1,
                    height: 1.0
                },
                Merge {
                    a: 3,
                    b: 2,
                    height: 5.0
                }
            ]
        );
        assert_eq!(t.order(), [0, 1, 2]);
        assert_eq!(t.cut(2), [0, 0, 1]);
        assert_eq!(t.cut(1), [0, 0, 0]);
        assert_eq!(t.cut(3), [0, 1, 2]);
    }

    /// Three planted blocks, interleaved, with unequal affinities inside (0.9, 0.6, 0.4) and
    /// negative ones across: the order puts each block together, and the cut at three gives
    /// the blocks back exactly.
    #[test]
    fn a_block_matrix_is_recovered() {
        let block = [0, 1, 2, 0, 1, 2, 0, 1, 2, 2];
        let within = [0.9, 0.6, 0.4];
        let m: Vec<Vec<Option<f64>>> = (0..block.len())
            .map(|i| {
                (0..block.len())
                    .map(|j| {
                        if i == j {
                            None
                        } else if block[i] == block[j] {
                            Some(within[block[i]] - 0.01 * ((i + j) % 3) as f64)
                        } else {
                            Some(-0.3 + 0.02 * ((i * j) % 4) as f64)
                        }
                    })
                    .collect()
            })
            .collect();
        let t = average(&affinity_distances(&m));
        let order = t.order();
        let blocks_in_order: Vec<usize> = order.iter().map(|&i| block[i]).collect();
        let mut runs = blocks_in_order.clone();
        runs.dedup();
        assert_eq!(runs.len(), 3, "blocks split in {blocks_in_order:?}");
        let cut = t.cut(3);
        for i in 0..block.len() {
            for j in 0..block.len() {
                assert_eq!(cut[i] == cut[j], block[i] == block[j], "{cut:?}");
            }
        }
        // Heights never decrease, and the within-block merges come before the across ones.
        assert!(t
            .merges
            .windows(2)
            .all(|w| w[0].height <= w[1].height + 1e-12));
        assert!(t.merges[t.merges.len() - 2].height > 1.0);
    }

    #[test]
    fn unmeasured_pairs_count_as_no_affinity_and_one_direction_suffices() {
        let m = vec![vec![None, Some(0.5)], vec![None, None]];
        assert_eq!(affinity_distances(&m), vec![vec![0.0, 0.5], vec![0.5, 0.0]]);
        let empty = average(&[]);
        assert_eq!(empty.order(), Vec::<usize>::new());
        assert_eq!(average(&[vec![0.0]]).order(), [0]);
    }
}
