//! What a task embedding knows about its task: a linear probe from the adapted embeddings of
//! a set of tasks to each of the tasks' known parameters (for sine regression: the amplitude,
//! and the phase as its sine and cosine, which a linear map can reach without the wrap-around
//! at 2π). The probe's R² says how much of a parameter the embedding holds linearly.
//!
//! Beside it, a degree-2 probe (the embedding's values and their pairwise products) scored on
//! tasks it was not fitted on (two-fold cross-validation), for what the embedding holds
//! smoothly but not linearly: an amplitude stored as the length of a vector, say.
//!
//! A sine task `a·sin(x − φ) = a·cos φ·sin x − a·sin φ·cos x` is also probed for its two
//! coefficients on `sin x` and `cos x`: the targets are linear in them, so an embedding that one
//! gradient step makes from the support targets holds them linearly, and the amplitude only as
//! their norm.

use serde::{Deserialize, Serialize};

use crate::tasks::Task;

/// A task parameter a family draws and a probe can be fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskProperty {
    Amplitude,
    SinPhase,
    CosPhase,
    /// `a·cos φ`, the coefficient of `sin x`.
    SinCoefficient,
    /// `−a·sin φ`, the coefficient of `cos x`.
    CosCoefficient,
}

impl TaskProperty {
    /// The name in records and CSV headers (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            TaskProperty::Amplitude => "amplitude",
            TaskProperty::SinPhase => "sin_phase",
            TaskProperty::CosPhase => "cos_phase",
            TaskProperty::SinCoefficient => "sin_coefficient",
            TaskProperty::CosCoefficient => "cos_coefficient",
        }
    }

    /// The task's known parameters, in a fixed order; none for tasks without them.
    pub fn of(task: &Task) -> Vec<(TaskProperty, f64)> {
        match task {
            Task::Sinusoid { amplitude, phase } => {
                let (a, phase) = (*amplitude as f64, *phase as f64);
                vec![
                    (TaskProperty::Amplitude, a),
                    (TaskProperty::SinPhase, phase.sin()),
                    (TaskProperty::CosPhase, phase.cos()),
                    (TaskProperty::SinCoefficient, a * phase.cos()),
                    (TaskProperty::CosCoefficient, -a * phase.sin()),
                ]
            }
            Task::Classes { .. } | Task::Function { .. } => vec![],
        }
    }
}

/// An ordinary least-squares fit `y ≈ intercept + coefficients · x`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    pub intercept: f64,
    /// One per input dimension. A dimension that adds nothing to the others (constant, or a
    /// combination of them) gets 0.
    pub coefficients: Vec<f64>,
    /// `1 − SS_res / SS_tot` on the fitted points; `None` when `y` is constant.
    pub r2: Option<f64>,
}

/// Pivots below this fraction of the largest diagonal entry of the normal equations count as
/// zero: that dimension is (numerically) a combination of the others.
const RANK_TOLERANCE: f64 = 1e-12;

impl LinearFit {
    /// The least-squares fit of `y` on the rows of `x` (one row of equal length per point), by
    /// the normal equations on centred data, solved by Gaussian elimination with partial
    /// pivoting.
    pub fn fit(x: &[Vec<f64>], y: &[f64]) -> LinearFit {
        let n = y.len();
        let d = x.first().map_or(0, Vec::len);
        let nf = n.max(1) as f64;
        let y_mean = y.iter().sum::<f64>() / nf;
        let x_mean: Vec<f64> = (0..d)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / nf)
            .collect();
        // Centred normal equations: [XᵀX | Xᵀy], d × (d + 1).
        let mut a = vec![vec![0.0f64; d + 1]; d];
        for (r, &yr) in x.iter().zip(y) {
            for i in 0..d {
                let xi = r[i] - x_mean[i];
                for j in 0..d {
                    a[i][j] += xi * (r[j] - x_mean[j]);
                }
                a[i][d] += xi * (yr - y_mean);
            }
        }
        let coefficients = solve(a);
        let intercept = y_mean
            - coefficients
                .iter()
                .zip(&x_mean)
                .map(|(c, m)| c * m)
                .sum::<f64>();
        let (mut ss_res, mut ss_tot) = (0.0, 0.0);
        for (r, &yr) in x.iter().zip(y) {
            let pred = intercept + coefficients.iter().zip(r).map(|(c, v)| c * v).sum::<f64>();
            ss_res += (yr - pred).powi(2);
            ss_tot += (yr - y_mean).powi(2);
        }
        LinearFit {
            intercept,
            coefficients,
            r2: (ss_tot > 0.0).then(|| 1.0 - ss_res / ss_tot),
        }
    }
}

/// The solution of the `d × (d + 1)` augmented system, dependent dimensions set to zero.
fn solve(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let d = a.len();
    let scale = (0..d).map(|i| a[i][i].abs()).fold(0.0, f64::max);
    let mut pivot_of = vec![None; d];
    let mut row = 0;
    for col in 0..d {
        let Some(best) = (row..d).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
        else {
            break;
        };
        if a[best][col].abs() <= RANK_TOLERANCE * scale {
            continue;
        }
        a.swap(row, best);
        let pivot = a[row].clone();
        for (i, r) in a.iter_mut().enumerate() {
            let f = r[col] / pivot[col];
            if i != row && f != 0.0 {
                for (x, p) in r[col..].iter_mut().zip(&pivot[col..]) {
                    *x -= f * p;
                }
            }
        }
        pivot_of[col] = Some(row);
        row += 1;
    }
    pivot_of
        .iter()
        .enumerate()
        .map(|(col, p)| p.map_or(0.0, |r| a[r][d] / a[r][col]))
        .collect()
}

/// The probe of one task parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyFit {
    pub property: TaskProperty,
    #[serde(flatten)]
    pub fit: LinearFit,
    /// R² of the degree-2 probe on held-out tasks (two folds: fitted on one half, scored on
    /// the other, the squared errors of both summed); `None` when `y` is constant or there are
    /// too few tasks for the features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quadratic_r2: Option<f64>,
}

/// The embedding's values followed by every product `eᵢ·eⱼ`, `i ≤ j`.
fn quadratic_features(e: &[f64]) -> Vec<f64> {
    let mut f = e.to_vec();
    for i in 0..e.len() {
        for j in i..e.len() {
            f.push(e[i] * e[j]);
        }
    }
    f
}

/// Two-fold cross-validated R² of a least-squares fit of `y` on `x`'s degree-2 features: the
/// even-indexed tasks fit the model scored on the odd ones and the reverse, the squared errors
/// of both against the total sum of squares around the mean. `None` when either fold has no
/// more points than features, or `y` is constant.
pub fn quadratic_r2(x: &[Vec<f64>], y: &[f64]) -> Option<f64> {
    let feats: Vec<Vec<f64>> = x.iter().map(|r| quadratic_features(r)).collect();
    let width = feats.first().map_or(0, Vec::len);
    let folds: [Vec<usize>; 2] = [
        (0..y.len()).step_by(2).collect(),
        (1..y.len()).step_by(2).collect(),
    ];
    if folds.iter().any(|f| f.len() <= width + 1) {
        return None;
    }
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    if ss_tot <= 0.0 {
        return None;
    }
    let mut ss_res = 0.0;
    for (fit_on, score_on) in [(&folds[0], &folds[1]), (&folds[1], &folds[0])] {
        let fx: Vec<Vec<f64>> = fit_on.iter().map(|&i| feats[i].clone()).collect();
        let fy: Vec<f64> = fit_on.iter().map(|&i| y[i]).collect();
        let fit = LinearFit::fit(&fx, &fy);
        for &i in score_on {
            let pred = fit.intercept
                + fit
                    .coefficients
                    .iter()
                    .zip(&feats[i])
                    .map(|(c, v)| c * v)
                    .sum::<f64>();
            ss_res += (y[i] - pred).powi(2);
        }
    }
    Some(1.0 - ss_res / ss_tot)
}

/// The linear probes from a set of tasks' adapted embeddings to their parameters, as
/// `metalab eval` records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingProbe {
    /// Values in an embedding.
    pub width: usize,
    pub tasks: usize,
    /// Adaptation steps behind each embedding.
    pub steps: usize,
    /// In words: what was fitted on what.
    pub method: String,
    pub fits: Vec<PropertyFit>,
    /// The file in the run folder holding every task's embedding and parameters ([`csv`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
}

/// One row per task: its index, its embedding `e0 … e{w−1}` and its parameters.
pub fn csv(embeddings: &[Vec<f32>], tasks: &[Task]) -> String {
    let width = embeddings.first().map_or(0, Vec::len);
    let props: Vec<Vec<(TaskProperty, f64)>> = tasks.iter().map(TaskProperty::of).collect();
    let mut header: Vec<String> = vec!["task".into()];
    header.extend((0..width).map(|j| format!("e{j}")));
    if let Some(first) = props.first() {
        header.extend(first.iter().map(|(p, _)| p.name().to_string()));
    }
    let mut out = header.join(",");
    out.push('\n');
    for (i, (e, p)) in embeddings.iter().zip(&props).enumerate() {
        let mut row = vec![i.to_string()];
        row.extend(e.iter().map(|v| v.to_string()));
        row.extend(p.iter().map(|(_, v)| v.to_string()));
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// The probes from `embeddings[i]` (task `tasks[i]`'s embedding after `steps` steps) to every
/// parameter the tasks have; `None` when they have none.
pub fn probe(embeddings: &[Vec<f32>], tasks: &[Task], steps: usize) -> Option<EmbeddingProbe> {
    let props: Vec<Vec<(TaskProperty, f64)>> = tasks.iter().map(TaskProperty::of).collect();
    let kinds: Vec<TaskProperty> = props.first()?.iter().map(|(p, _)| *p).collect();
    if kinds.is_empty() || props.iter().any(|p| p.len() != kinds.len()) {
        return None;
    }
    let x: Vec<Vec<f64>> = embeddings
        .iter()
        .map(|e| e.iter().map(|&v| v as f64).collect())
        .collect();
    let fits = kinds
        .iter()
        .enumerate()
        .map(|(k, &property)| {
            let y: Vec<f64> = props.iter().map(|p| p[k].1).collect();
            PropertyFit {
                property,
                fit: LinearFit::fit(&x, &y),
                quadratic_r2: quadratic_r2(&x, &y),
            }
        })
        .collect();
    Some(EmbeddingProbe {
        width: x.first().map_or(0, Vec::len),
        tasks: tasks.len(),
        steps,
        csv: None,
        method: "ordinary least squares with an intercept from the adapted embedding to each task parameter, fitted and scored (R²) on the same test tasks; quadratic_r2: the same on the embedding's values and pairwise products, fitted on half the tasks and scored on the other half, both ways".into(),
        fits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Deterministic values in [−1, 1): the metric losses' test generator.
    use crate::model::metric::testing::values as spread;

    #[test]
    fn an_exact_linear_relation_is_recovered_with_r2_one() {
        let (a, b) = (spread(50, 1), spread(50, 2));
        let x: Vec<Vec<f64>> = a.iter().zip(&b).map(|(&a, &b)| vec![a, b]).collect();
        let y: Vec<f64> = x.iter().map(|r| 0.5 + 2.0 * r[0] - 3.0 * r[1]).collect();
        let f = LinearFit::fit(&x, &y);
        assert!((f.intercept - 0.5).abs() < 1e-10, "{f:?}");
        assert!((f.coefficients[0] - 2.0).abs() < 1e-10, "{f:?}");
        assert!((f.coefficients[1] + 3.0).abs() < 1e-10, "{f:?}");
        assert!((f.r2.unwrap() - 1.0).abs() < 1e-12);
    }

    /// y = x₀ + noise with noise independent of x: R² is var(x₀) / (var(x₀) + var(noise)),
    /// here 1/2 in expectation; and an input that is pure noise is worth nothing.
    #[test]
    fn noise_lowers_r2_by_its_share_of_the_variance() {
        let n = 20_000;
        let (a, noise, junk) = (spread(n, 3), spread(n, 4), spread(n, 5));
        let x: Vec<Vec<f64>> = a.iter().zip(&junk).map(|(&a, &j)| vec![a, j]).collect();
        let y: Vec<f64> = a.iter().zip(&noise).map(|(a, e)| a + e).collect();
        let f = LinearFit::fit(&x, &y);
        let r2 = f.r2.unwrap();
        assert!((r2 - 0.5).abs() < 0.02, "R² {r2}");
        assert!((f.coefficients[0] - 1.0).abs() < 0.03, "{f:?}");
        assert!(f.coefficients[1].abs() < 0.03, "{f:?}");
        let only_junk: Vec<Vec<f64>> = junk.iter().map(|&j| vec![j]).collect();
        assert!(LinearFit::fit(&only_junk, &y).r2.unwrap() < 0.01);
    }

    /// An amplitude stored as the length of a 2-vector: no linear probe reads it, the degree-2
    /// probe does on tasks it never saw (its square is exactly quadratic, the length nearly).
    #[test]
    fn a_length_is_read_by_the_quadratic_probe_and_not_the_linear_one() {
        let n = 600;
        let (u, v) = (spread(n, 7), spread(n, 8));
        let amp: Vec<f64> = u.iter().map(|u| 0.1 + 2.45 * (u + 1.0)).collect();
        let phase: Vec<f64> = v
            .iter()
            .map(|v| std::f64::consts::PI * (v + 1.0) / 2.0)
            .collect();
        let x: Vec<Vec<f64>> = amp
            .iter()
            .zip(&phase)
            .map(|(a, p)| vec![a * p.cos(), a * p.sin()])
            .collect();
        let sq: Vec<f64> = amp.iter().map(|a| a * a).collect();
        assert!((quadratic_r2(&x, &sq).unwrap() - 1.0).abs() < 1e-9);
        let linear = LinearFit::fit(&x, &amp).r2.unwrap();
        let quad = quadratic_r2(&x, &amp).unwrap();
        assert!(linear < 0.6, "linear R² {linear}");
        assert!(quad > 0.95, "quadratic R² {quad}");
        // Noise the features cannot explain is not fitted away on held-out tasks.
        let noise = spread(n, 9);
        assert!(quadratic_r2(&x, &noise).unwrap() < 0.05);
        assert_eq!(quadratic_r2(&x[..10], &amp[..10]), None);
    }

    #[test]
    fn a_repeated_or_constant_dimension_gets_zero_and_the_fit_stands() {
        let a = spread(30, 6);
        let x: Vec<Vec<f64>> = a.iter().map(|&a| vec![a, 2.0 * a, 7.0]).collect();
        let y: Vec<f64> = a.iter().map(|a| 1.0 + 4.0 * a).collect();
        let f = LinearFit::fit(&x, &y);
        assert!((f.r2.unwrap() - 1.0).abs() < 1e-10, "{f:?}");
        assert_eq!(f.coefficients[2], 0.0);
        assert!((f.coefficients[0] + 2.0 * f.coefficients[1] - 4.0).abs() < 1e-9);
        assert_eq!(LinearFit::fit(&x, &[3.0; 30]).r2, None);
    }

    #[test]
    fn sine_tasks_are_probed_for_amplitude_and_phase() {
        let tasks: Vec<Task> = (0..40)
            .map(|i| Task::Sinusoid {
                amplitude: 0.1 + 0.1 * i as f32,
                phase: 0.07 * i as f32,
            })
            .collect();
        // An embedding that holds the amplitude and the phase's sine and cosine, scaled.
        let emb: Vec<Vec<f32>> = tasks
            .iter()
            .map(|t| {
                let p = TaskProperty::of(t);
                vec![
                    (2.0 * p[0].1) as f32,
                    (p[1].1 - p[2].1) as f32,
                    (p[2].1) as f32,
                ]
            })
            .collect();
        let probe = probe(&emb, &tasks, 1).unwrap();
        assert_eq!((probe.width, probe.tasks, probe.steps), (3, 40, 1));
        let names: Vec<TaskProperty> = probe.fits.iter().map(|f| f.property).collect();
        assert_eq!(
            names,
            [
                TaskProperty::Amplitude,
                TaskProperty::SinPhase,
                TaskProperty::CosPhase,
                TaskProperty::SinCoefficient,
                TaskProperty::CosCoefficient,
            ]
        );
        for f in &probe.fits[..3] {
            assert!(f.fit.r2.unwrap() > 1.0 - 1e-9, "{f:?}");
        }
        // The coefficients are the sine's on sin x and cos x.
        let t = Task::Sinusoid {
            amplitude: 2.5,
            phase: 1.1,
        };
        let p = TaskProperty::of(&t);
        for x in [-4.0f64, 0.3, 2.0] {
            let y = 2.5 * (x - 1.1f32 as f64).sin();
            assert!((p[3].1 * x.sin() + p[4].1 * x.cos() - y).abs() < 1e-9);
        }
        assert!((probe.fits[0].fit.coefficients[0] - 0.5).abs() < 1e-5);
        let table = csv(&emb[..2], &tasks[..2]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "task,e0,e1,e2,amplitude,sin_phase,cos_phase,sin_coefficient,cos_coefficient"
        );
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("1,0.4,"), "{}", lines[2]);
        let json = serde_json::to_string(&probe).unwrap();
        assert!(json.contains("\"property\":\"amplitude\""), "{json}");
        let classes = [Task::Classes {
            split: crate::tasks::Split::Test,
            classes: vec![1],
        }];
        assert_eq!(super::probe(&[vec![0.0]], &classes, 1), None);
    }
}
