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

/// Exponential moving average with TensorBoard's debiasing (early points are not pulled toward
/// zero): `alpha` is the weight of the past, 0 leaves the curve as it is.
pub fn ema(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    if alpha <= 0.0 {
        return points.to_vec();
    }
    let mut acc = 0.0;
    let mut weight = 0.0;
    points
        .iter()
        .map(|&(x, y)| {
            acc = alpha * acc + (1.0 - alpha) * y;
            weight = alpha * weight + (1.0 - alpha);
            (x, acc / weight)
        })
        .collect()
}

/// The index of the last point at or before `x` (points in x order): what a cursor at `x`
/// reads, so an evaluation is reported from the iteration it was made, not interpolated.
pub fn index_at(points: &[(f64, f64)], x: f64) -> Option<usize> {
    let i = points.partition_point(|p| p.0 <= x);
    i.checked_sub(1)
}

/// `y` at `x` by linear interpolation, extended flat past the ends; `None` if empty.
pub fn interpolate(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = points.partition_point(|p| p.0 <= x);
    match (i.checked_sub(1).map(|j| points[j]), points.get(i)) {
        (Some(a), Some(b)) if b.0 > a.0 => Some(a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)),
        (Some(a), _) => Some(a.1),
        (None, Some(b)) => Some(b.1),
        (None, None) => None,
    }
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

    #[test]
    fn ema_debiases_and_keeps_x() {
        let p = [(1.0, 10.0), (2.0, 0.0), (3.0, 0.0)];
        let e = ema(&p, 0.5);
        assert_eq!(e[0], (1.0, 10.0));
        assert!(e[1].1 < 10.0 && e[1].1 > 0.0);
        assert_eq!(ema(&p, 0.0), p.to_vec());
    }

    #[test]
    fn cursor_reads_the_point_at_or_before() {
        let p = [(10.0, 1.0), (20.0, 2.0)];
        assert_eq!(index_at(&p, 5.0), None);
        assert_eq!(index_at(&p, 15.0), Some(0));
        assert_eq!(index_at(&p, 20.0), Some(1));
        assert_eq!(interpolate(&p, 15.0), Some(1.5));
        assert_eq!(interpolate(&p, 99.0), Some(2.0));
    }
}
