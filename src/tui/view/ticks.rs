//! Round axis ticks: steps of 1, 2 or 5 × 10ⁿ on linear axes, 1-2-5 per decade on log axes,
//! so an axis reads `0 0.5 1.0 1.5 2.0` rather than `0.6319 2.5624 4.4929`.

/// Ticks for `[lo, hi]`: at least `min` of them where the range allows, the axis widened to the
/// outermost ticks so curves never sit outside the labelled range. Returns (lo, hi, ticks).
pub fn linear(lo: f64, hi: f64, min: usize) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        // One value: a band around it, so a lone point sits mid-axis on round numbers.
        let d = if lo == 0.0 { 1.0 } else { 0.2 * lo.abs() };
        (lo - d, lo + d)
    };
    let min = min.max(2);
    // The largest round step that still gives `min` ticks.
    let raw = (hi - lo) / (min - 1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    // The usual nice step (the first 1-2-5 multiple at least `raw`), smaller while too few.
    let steps = [10.0, 5.0, 2.0, 1.0, 0.5].map(|m| m * mag);
    let start = steps
        .iter()
        .rposition(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(0);
    let mut step = steps[start];
    for s in &steps[start..] {
        step = *s;
        if count(lo, hi, *s) >= min {
            break;
        }
    }
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let ticks: Vec<f64> = (0..=(last - first) as i64)
        .map(|k| clean((first + k as f64) * step, step))
        .collect();
    (first * step, last * step, ticks)
}

/// Round ticks inside `[lo, hi]` without widening it (an x axis ends where the data does):
/// the largest 1-2-5 step that leaves at least `min` ticks inside, at most `max`.
pub fn within(lo: f64, hi: f64, min: usize, max: usize) -> Vec<f64> {
    if hi <= lo {
        return vec![lo];
    }
    let mag = 10f64.powf((hi - lo).log10().floor());
    let mut best = vec![lo, hi];
    for m in [5.0, 2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01] {
        let step = m * mag;
        let first = (lo / step - 1e-9).ceil();
        let last = (hi / step + 1e-9).floor();
        let t: Vec<f64> = (0..=(last - first).max(-1.0) as i64)
            .map(|k| clean((first + k as f64) * step, step))
            .collect();
        if t.len() > max.max(2) {
            break;
        }
        best = t;
        if best.len() >= min {
            break;
        }
    }
    best
}

fn count(lo: f64, hi: f64, step: f64) -> usize {
    ((hi / step).ceil() - (lo / step).floor()) as usize + 1
}

/// `0.30000000000000004` → `0.3`: keep tick values exact multiples for their labels.
fn clean(v: f64, step: f64) -> f64 {
    let digits = (-step.log10().floor()).max(0.0) as i32 + 1;
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

/// Decimal places that tell ticks of step `step` apart.
pub fn decimals(ticks: &[f64]) -> usize {
    let step = match ticks {
        [a, b, ..] => (b - a).abs(),
        _ => return 0,
    };
    if step <= 0.0 || !step.is_finite() {
        return 0;
    }
    let mut d = 0;
    while d < 6
        && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-6
    {
        d += 1;
    }
    d
}

/// Log-axis ticks for positive `[lo, hi]` in log10 units: whole decades, then 1-2-5 within them
/// when there are too few decades. Returns (lo, hi, ticks) in log10 units.
pub fn log(lo: f64, hi: f64, min: usize) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    for mantissas in [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 5.0, 7.0]] {
        let d0 = lo.floor() as i32;
        let d1 = hi.ceil() as i32;
        let mut all = vec![];
        for d in d0..=d1 {
            for m in mantissas {
                all.push((m * 10f64.powi(d)).log10());
            }
        }
        // Keep the ticks inside the range plus one either side, and fit the axis to them.
        let below = all.iter().rposition(|&t| t <= lo + 1e-9).unwrap_or(0);
        let above = all
            .iter()
            .position(|&t| t >= hi - 1e-9)
            .unwrap_or(all.len() - 1);
        let ticks = all[below..=above].to_vec();
        if ticks.len() >= min {
            return (ticks[0], ticks[ticks.len() - 1], ticks);
        }
    }
    // Less than a decade: round linear values, placed on the log scale.
    let t: Vec<f64> = within(10f64.powf(lo), 10f64.powf(hi), min, 2 * min + 2)
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(f64::log10)
        .collect();
    (lo, hi, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_range() {
        let (lo, hi, t) = linear(0.6319, 4.4929, 5);
        assert!(t.len() >= 5, "{t:?}");
        assert!(lo <= 0.6319 && hi >= 4.4929);
        assert_eq!(t, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(decimals(&t), 0);
        let (_, _, t) = linear(0.31, 0.52, 5);
        assert_eq!(decimals(&t), 2, "{t:?}");
        let (_, _, t) = linear(0.0, 100.0, 5);
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
    }

    #[test]
    fn ticks_within_keep_the_range() {
        assert_eq!(within(0.0, 300.0, 3, 6), vec![0.0, 100.0, 200.0, 300.0]);
        assert_eq!(within(240.0, 300.0, 3, 6), vec![240.0, 260.0, 280.0, 300.0]);
    }

    #[test]
    fn one_value_gets_a_padded_round_axis() {
        let (lo, hi, t) = linear(300.0, 300.0, 5);
        assert!(lo < 300.0 && hi > 300.0);
        assert!(t.len() >= 5);
        assert!(t.contains(&300.0), "{t:?}");
    }

    #[test]
    fn log_ticks_use_decades_then_1_2_5() {
        let (_, _, t) = log(-3.0, 1.0, 5);
        assert_eq!(t.len(), 5);
        let (_, _, t) = log(0.1f64.log10(), 2f64.log10(), 5);
        let vals: Vec<f64> = t
            .iter()
            .map(|v| (10f64.powf(*v) * 100.0).round() / 100.0)
            .collect();
        assert!(vals.len() >= 5, "{vals:?}");
        assert!(vals.contains(&0.2) && vals.contains(&1.0), "{vals:?}");
    }
}
