//! Bounded curves: however long a run, a series holds at most ≈1500 points, so memory and draw
//! time stay flat (recent points in full, older ones averaged into buckets that widen over time).

use std::collections::VecDeque;

/// Points kept at full resolution.
pub const RECENT: usize = 1000;
/// Older points are kept between `OLD_TARGET` and `2 * OLD_TARGET` averaged buckets.
pub const OLD_TARGET: usize = 250;

#[derive(Debug, Clone)]
pub struct Series {
    old: Vec<(f64, f64)>,
    /// Raw points averaged into each `old` entry; doubles whenever `old` is compacted.
    bucket: usize,
    pending: (f64, f64, usize),
    recent: VecDeque<(f64, f64)>,
    total: usize,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            old: Vec::new(),
            bucket: 1,
            pending: (0.0, 0.0, 0),
            recent: VecDeque::new(),
            total: 0,
        }
    }
}

impl Series {
    /// Non-finite values (a diverged loss) are dropped: one NaN would wreck the axis bounds.
    pub fn push(&mut self, x: f64, y: f64) {
        if !(x.is_finite() && y.is_finite()) {
            return;
        }
        self.total += 1;
        self.recent.push_back((x, y));
        if self.recent.len() <= RECENT {
            return;
        }
        let (ox, oy) = self.recent.pop_front().expect("non-empty");
        let p = &mut self.pending;
        p.0 += ox;
        p.1 += oy;
        p.2 += 1;
        if p.2 >= self.bucket {
            let n = p.2 as f64;
            self.old.push((p.0 / n, p.1 / n));
            self.pending = (0.0, 0.0, 0);
        }
        if self.old.len() >= 2 * OLD_TARGET {
            self.old = self
                .old
                .chunks(2)
                .map(|c| {
                    let n = c.len() as f64;
                    (
                        c.iter().map(|p| p.0).sum::<f64>() / n,
                        c.iter().map(|p| p.1).sum::<f64>() / n,
                    )
                })
                .collect();
            self.bucket *= 2;
        }
    }

    /// Points ever pushed (finite ones).
    pub fn total(&self) -> usize {
        self.total
    }

    /// Points held in memory.
    pub fn stored(&self) -> usize {
        self.old.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    pub fn last(&self) -> Option<(f64, f64)> {
        self.recent.back().copied()
    }

    /// Points in x order, ready for a chart dataset.
    pub fn points(&self) -> Vec<(f64, f64)> {
        let mut v = Vec::with_capacity(self.stored());
        v.extend_from_slice(&self.old);
        v.extend(self.recent.iter().copied());
        v
    }
}

/// Min and max of finite values.
pub fn fold_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_ordered() {
        let mut s = Series::default();
        for i in 0..100_000 {
            s.push(i as f64, (i % 7) as f64);
        }
        assert!(s.stored() <= RECENT + 2 * OLD_TARGET, "{}", s.stored());
        assert!(s.stored() >= RECENT + OLD_TARGET);
        let pts = s.points();
        assert!(pts.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(s.last(), Some((99_999.0, (99_999 % 7) as f64)));
        assert_eq!(s.total(), 100_000);
    }

    #[test]
    fn drops_non_finite() {
        let mut s = Series::default();
        s.push(1.0, f64::NAN);
        s.push(2.0, 1.0);
        assert_eq!(s.points(), vec![(2.0, 1.0)]);
    }
}
