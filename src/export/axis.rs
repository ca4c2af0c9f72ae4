//! Axis ranges and ticks for exported plots: round tick values (1, 2 or 5 × 10ⁿ apart), ranges
//! that never leave the metric's domain (a loss below zero or an accuracy above 100% is not a
//! value any run can have), and a padded range around a lone value instead of a zero-width one.

/// The values a metric can take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Domain {
    /// Losses and MSE: `[0, ∞)`.
    NonNegative,
    /// Accuracy in percent: `[0, 100]`.
    Percent,
    /// Meta-iterations: `[0, ∞)`, and the axis starts at 0 so runs of different lengths line up.
    Iterations,
    /// Any value (a principal-component coordinate).
    Real,
}

impl Domain {
    fn bounds(self) -> (f64, f64) {
        match self {
            Domain::NonNegative | Domain::Iterations => (0.0, f64::INFINITY),
            Domain::Percent => (0.0, 100.0),
            Domain::Real => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }
}

/// One axis: the plotted range and the ticks on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    /// Decimals every tick label is printed with, so `0.5` and `1.0` read alike.
    pub decimals: usize,
}

impl Axis {
    /// A tick label: the value with the axis's decimals.
    pub fn format(&self, v: f64) -> String {
        let s = format!("{v:.*}", self.decimals);
        // `-0.0` from rounding reads as a negative value.
        if s.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            s.trim_start_matches('-').to_string()
        } else {
            s
        }
    }
}

/// A round step near `span / target`: 1, 2 or 5 times a power of ten.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// An axis over `values` (non-finite ones ignored) with about `target` ticks, padded by 5%,
/// kept inside `domain`; iterations always start at 0. `None` when there is no finite value.
pub fn fit(values: impl IntoIterator<Item = f64>, domain: Domain, target: usize) -> Option<Axis> {
    let (min, max) =
        values
            .into_iter()
            .filter(|v| v.is_finite())
            .fold(None, |acc: Option<(f64, f64)>, v| match acc {
                None => Some((v, v)),
                Some((a, b)) => Some((a.min(v), b.max(v))),
            })?;
    let (dlo, dhi) = domain.bounds();
    let (min, max) = (min.clamp(dlo, dhi), max.clamp(dlo, dhi));
    let (mut lo, mut hi) = if domain == Domain::Iterations {
        (0.0, max.max(1.0))
    } else if max > min {
        let pad = (max - min) * 0.05;
        (min - pad, max + pad)
    } else {
        // One value: a window around it wide enough to read it against the ticks.
        let pad = if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        (min - pad, max + pad)
    };
    lo = lo.clamp(dlo, dhi);
    hi = hi.clamp(dlo, dhi);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let step = nice_step(hi - lo, target);
    // Ends snapped outward to the step, then back inside the domain.
    let snap_lo = ((lo / step).floor() * step).max(dlo);
    let snap_hi = if domain == Domain::Iterations {
        hi
    } else {
        ((hi / step).ceil() * step).min(dhi)
    };
    let (lo, hi) = (snap_lo, snap_hi);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last)
        .map(|k| round_to(k as f64 * step, step))
        .collect();
    Some(Axis {
        lo,
        hi,
        ticks,
        decimals: decimals(step),
    })
}

/// Decimals that print every multiple of `step` exactly.
fn decimals(step: f64) -> usize {
    let mut d = 0;
    while d < 12
        && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-6
    {
        d += 1;
    }
    d
}

/// `k × step` without the `0.30000000000000004` of binary floats.
fn round_to(v: f64, step: f64) -> f64 {
    let scale = 10f64.powi(decimals(step) as i32);
    (v * scale).round() / scale
}

/// Is `v` a round tick: a small integer times 1, 2 or 5 × 10ⁿ?
pub fn is_round(v: f64) -> bool {
    if v == 0.0 {
        return true;
    }
    let mag = 10f64.powf(v.abs().log10().floor());
    let f = v.abs() / mag;
    // Two significant digits at most: 0.25, 1.5, 2000 are round; 0.6319 is not.
    ((f * 10.0).round() - f * 10.0).abs() < 1e-6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(4.4929 - 0.6319, 5), 1.0);
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(300.0, 6), 50.0);
        assert_eq!(nice_step(0.03, 5), 0.005);
    }

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        let a = fit([0.6319, 2.5624, 4.4929], Domain::NonNegative, 6).unwrap();
        assert!(a.ticks.iter().all(|t| is_round(*t)), "{a:?}");
        assert!(a.ticks.iter().all(|t| *t >= a.lo && *t <= a.hi), "{a:?}");
        assert!(a.ticks.len() >= 4, "{a:?}");
        assert_eq!(a.format(a.ticks[1]), "1");
        let b = fit([0.1, 0.9], Domain::NonNegative, 5).unwrap();
        assert_eq!(b.format(b.ticks[1]), "0.2");
        assert_eq!(b.format(-0.0001), "0.0");
        assert!(!is_round(0.6319) && is_round(0.25) && is_round(2000.0));
    }

    #[test]
    fn losses_never_go_below_zero_and_accuracy_stays_in_percent() {
        let a = fit([0.01, 0.02, 3.0], Domain::NonNegative, 6).unwrap();
        assert_eq!(a.lo, 0.0);
        let p = fit([40.0, 99.5], Domain::Percent, 6).unwrap();
        assert!(p.lo >= 0.0 && p.hi <= 100.0, "{p:?}");
        let p = fit([-3.0, 130.0], Domain::Percent, 6).unwrap();
        assert_eq!((p.lo, p.hi), (0.0, 100.0));
    }

    #[test]
    fn a_single_value_gets_a_readable_window() {
        let a = fit([0.48], Domain::NonNegative, 5).unwrap();
        assert!(a.lo < 0.48 && a.hi > 0.48 && a.ticks.len() >= 3, "{a:?}");
        let x = fit([300.0], Domain::Iterations, 6).unwrap();
        assert_eq!(x.lo, 0.0);
        assert_eq!(x.ticks, [0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0]);
        let z = fit([0.0], Domain::NonNegative, 5).unwrap();
        assert!(z.hi > 0.0 && z.lo == 0.0);
        assert!(fit([f64::NAN], Domain::NonNegative, 5).is_none());
    }
}
