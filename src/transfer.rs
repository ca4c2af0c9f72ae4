//! Negative transfer (issue 21): per task, how the jointly trained model's loss compares with a
//! model trained on that task alone. The ratio of mean losses `joint / single` with a 95%
//! interval; a task is flagged where the whole interval lies above 1 (joint training is
//! significantly worse on it).
//!
//! The interval is the delta method on the log ratio. When both models are scored on the same
//! evaluation episodes (equal lengths, the i-th losses from the same episode) the pairing
//! enters through the covariance, which narrows the interval as the two losses move together.

use serde::{Deserialize, Serialize};

/// Two-sided 95% normal critical value.
const Z975: f64 = 1.959_964;

/// One task's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransferRow {
    /// Mean joint loss over mean single-task loss.
    pub ratio: f64,
    /// The 95% interval of the ratio.
    pub lo: f64,
    pub hi: f64,
    /// The whole interval lies above 1.
    pub negative: bool,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample covariance (n − 1) of two equally long series.
fn cov(a: &[f64], b: &[f64]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let s: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    s / (a.len() - 1) as f64
}

/// The comparison of one task's `joint` and `single` losses (paired when equally long);
/// `None` with fewer than two losses on either side or a mean that is not positive.
pub fn compare(joint: &[f64], single: &[f64]) -> Option<TransferRow> {
    if joint.len() < 2 || single.len() < 2 {
        return None;
    }
    let (mj, ms) = (mean(joint), mean(single));
    if mj <= 0.0 || ms <= 0.0 {
        return None;
    }
    let (nj, ns) = (joint.len() as f64, single.len() as f64);
    let mut var = cov(joint, joint) / (nj * mj * mj) + cov(single, single) / (ns * ms * ms);
    if joint.len() == single.len() {
        var -= 2.0 * cov(joint, single) / (nj * mj * ms);
    }
    let ratio = mj / ms;
    let half = Z975 * var.max(0.0).sqrt();
    let (lo, hi) = (ratio * (-half).exp(), ratio * half.exp());
    Some(TransferRow {
        ratio,
        lo,
        hi,
        negative: lo > 1.0,
    })
}

/// `task,ratio,lo,hi,negative` for every task with a comparison, in task order.
pub fn to_csv(rows: &[Option<TransferRow>]) -> String {
    let mut out = String::from("task,ratio,lo,hi,negative\n");
    for (t, r) in rows.iter().enumerate() {
        if let Some(r) = r {
            out += &format!("{t},{},{},{},{}\n", r.ratio, r.lo, r.hi, r.negative);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};
    use rand_distr::{Distribution, Exp};

    #[test]
    fn identical_losses_give_one_with_no_width_and_no_flag() {
        let l = [0.5, 1.0, 2.0, 0.25];
        let r = compare(&l, &l).unwrap();
        assert_eq!(r.ratio, 1.0);
        assert!((r.lo - 1.0).abs() < 1e-12 && (r.hi - 1.0).abs() < 1e-12);
        assert!(!r.negative);
    }

    #[test]
    fn a_joint_model_twice_as_bad_on_every_episode_is_flagged() {
        let s = [0.5, 1.0, 2.0, 0.25];
        let j: Vec<f64> = s.iter().map(|x| 2.0 * x).collect();
        let r = compare(&j, &s).unwrap();
        // Perfectly correlated: the delta-method variance is exactly zero.
        assert_eq!(r.ratio, 2.0);
        assert!((r.lo - 2.0).abs() < 1e-9 && (r.hi - 2.0).abs() < 1e-9);
        assert!(r.negative);
        assert!(compare(&s, &j).is_some_and(|r| !r.negative));
    }

    #[test]
    fn the_unpaired_interval_matches_the_delta_method_by_hand() {
        let j = [1.0, 2.0, 3.0];
        let s = [1.0, 1.0, 2.0, 2.0];
        let r = compare(&j, &s).unwrap();
        // mj = 2, var_j = 1; ms = 1.5, var_s = 1/3.
        let var: f64 = 1.0 / (3.0 * 4.0) + (1.0 / 3.0) / (4.0 * 2.25);
        let half = 1.959_964 * var.sqrt();
        assert!((r.ratio - 2.0 / 1.5).abs() < 1e-12);
        assert!((r.lo - 2.0 / 1.5 * (-half).exp()).abs() < 1e-12);
        assert!((r.hi - 2.0 / 1.5 * half.exp()).abs() < 1e-12);
        assert!(!r.negative);
    }

    /// Coverage against the truth: losses drawn with a known ratio of means, paired through a
    /// shared episode difficulty; the interval must hold the true ratio about 95% of the time.
    #[test]
    fn the_paired_interval_covers_the_true_ratio_about_95_percent_of_the_time() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        let exp = Exp::new(1.0).unwrap();
        let truth = 1.3;
        let (trials, mut covered) = (2000, 0);
        for _ in 0..trials {
            let mut j = vec![];
            let mut s = vec![];
            for _ in 0..200 {
                let difficulty: f64 = exp.sample(&mut rng);
                s.push(difficulty * rng.gen_range(0.5..1.5));
                j.push(truth * difficulty * rng.gen_range(0.5..1.5));
            }
            let r = compare(&j, &s).unwrap();
            covered += (r.lo <= truth && truth <= r.hi) as usize;
        }
        let rate = covered as f64 / trials as f64;
        assert!((0.93..=0.97).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn too_few_losses_or_a_zero_mean_give_no_comparison() {
        assert_eq!(compare(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(compare(&[0.0, 0.0], &[1.0, 2.0]), None);
        let csv = to_csv(&[None, compare(&[2.0, 2.0], &[1.0, 1.0])]);
        assert_eq!(csv, "task,ratio,lo,hi,negative\n1,2,2,2,true\n");
    }
}
