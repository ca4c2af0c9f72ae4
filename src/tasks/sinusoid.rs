//! Sine regression, the standard MAML benchmark (Finn et al. 2017).

use rand::Rng as _;

use super::*;
use crate::experiment::SinusoidSpec;

pub struct Sinusoid {
    spec: SinusoidSpec,
}

impl Sinusoid {
    pub fn new(spec: SinusoidSpec) -> Self {
        Sinusoid { spec }
    }

    fn points(&self, amplitude: f32, phase: f32, n: usize, rng: &mut Rng) -> Batch {
        let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-5.0f32..5.0)).collect();
        let y = x.iter().map(|&x| amplitude * (x - phase).sin()).collect();
        Batch {
            n,
            x,
            y: Targets::Values(y),
        }
    }
}

impl TaskFamily for Sinusoid {
    fn shape(&self) -> FamilyShape {
        FamilyShape {
            input: vec![1],
            outputs: 1,
            kind: TaskKind::Regression,
        }
    }

    /// Sine tasks are a continuum; the split only names which stream a draw belongs to.
    fn sample_task(&self, _split: Split, rng: &mut Rng) -> Task {
        Task::Sinusoid {
            amplitude: rng.gen_range(0.1f32..5.0),
            phase: rng.gen_range(0.0f32..std::f32::consts::PI),
        }
    }

    fn sample_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let Task::Sinusoid { amplitude, phase } = *task else {
            panic!("sinusoid family given a {task:?}")
        };
        Episode {
            support: self.points(amplitude, phase, self.spec.shots, rng),
            query: self.points(amplitude, phase, self.spec.queries, rng),
        }
    }

    fn curve(&self, task: &Task, n: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        let Task::Sinusoid { amplitude, phase } = *task else {
            return None;
        };
        let step = 10.0 / n.saturating_sub(1).max(1) as f32;
        let x: Vec<f32> = (0..n).map(|i| -5.0 + step * i as f32).collect();
        let y = x.iter().map(|&x| amplitude * (x - phase).sin()).collect();
        Some((x, y))
    }

    fn describe(&self) -> String {
        format!(
            "Sinusoid regression, K={} support / {} query",
            self.spec.shots, self.spec.queries
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_match_the_standard_ranges_and_are_seeded() {
        let fam = Sinusoid::new(SinusoidSpec::default());
        let mut rng = Rng::seed_from_u64(3);
        for _ in 0..200 {
            let t = fam.sample_task(Split::Train, &mut rng);
            let Task::Sinusoid { amplitude, phase } = t else {
                unreachable!()
            };
            assert!((0.1..5.0).contains(&amplitude));
            assert!((0.0..std::f32::consts::PI).contains(&phase));
            let ep = fam.sample_episode(&t, &mut rng);
            assert_eq!(ep.support.n, 10);
            let Targets::Values(y) = &ep.query.y else {
                unreachable!()
            };
            for (x, y) in ep.query.x.iter().zip(y) {
                assert!((-5.0..5.0).contains(x));
                assert!((y - amplitude * (x - phase).sin()).abs() < 1e-6);
            }
        }
        let (x, y) = fam
            .curve(
                &Task::Sinusoid {
                    amplitude: 2.0,
                    phase: 0.5,
                },
                101,
            )
            .unwrap();
        assert_eq!((x[0], x[100], x.len()), (-5.0, 5.0, 101));
        assert!((y[55] - 2.0 * (x[55] - 0.5).sin()).abs() < 1e-6);
        let a = fam.sample_task(Split::Train, &mut Rng::seed_from_u64(9));
        let b = fam.sample_task(Split::Train, &mut Rng::seed_from_u64(9));
        assert_eq!(a, b);
    }
}
