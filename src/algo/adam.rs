//! Adam on flat vectors (dfdx's optimizers need compile-time shapes).

use crate::experiment::{ArmSettings, MetaLrSchedule};

#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub lr: f64,
    /// Scales `lr` by the step count `t`.
    pub schedule: MetaLrSchedule,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub t: u64,
}

impl Adam {
    pub fn new(len: usize, lr: f64) -> Adam {
        Adam::with_betas(len, lr, 0.9, 0.999)
    }

    /// The meta-optimizer of an arm: its `meta_lr` on its schedule.
    pub fn meta(len: usize, settings: &ArmSettings) -> Adam {
        Adam {
            schedule: settings.meta_lr_schedule,
            ..Adam::new(len, settings.meta_lr)
        }
    }

    pub fn with_betas(len: usize, lr: f64, beta1: f64, beta2: f64) -> Adam {
        Adam {
            lr,
            schedule: MetaLrSchedule::Constant,
            beta1,
            beta2,
            eps: 1e-8,
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
        }
    }

    /// Descend: `params -= lr · m̂ / (√v̂ + ε)`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        self.t += 1;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let c1 = 1.0 - self.beta1.powi(self.t as i32);
        let c2 = 1.0 - self.beta2.powi(self.t as i32);
        let step = (self.schedule.lr_at(self.lr, self.t) / c1) as f32;
        let c2 = c2 as f32;
        let eps = self.eps as f32;
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step * *m / ((*v / c2).sqrt() + eps);
        }
    }

    /// Moments and step count as named tensors, for checkpoints.
    pub fn state(&self) -> Vec<(String, Vec<f32>)> {
        vec![
            ("adam.m".into(), self.m.clone()),
            ("adam.v".into(), self.v.clone()),
            // Exact for every step count below 2^24 (16.7M iterations).
            ("adam.t".into(), vec![self.t as f32]),
        ]
    }

    pub fn load_state(
        &mut self,
        state: &std::collections::BTreeMap<String, Vec<f32>>,
    ) -> Result<(), super::contract::AlgoError> {
        let n = self.m.len();
        self.m = super::contract::take_state(state, "adam.m", n)?;
        self.v = super::contract::take_state(state, "adam.v", n)?;
        self.t = super::contract::take_state(state, "adam.t", 1)?[0] as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_lr_against_the_gradient_sign() {
        let mut a = Adam::new(3, 0.1);
        let mut p = vec![1.0, 1.0, 1.0];
        a.step(&mut p, &[2.0, -0.5, 0.0]);
        assert!((p[0] - 0.9).abs() < 1e-6);
        assert!((p[1] - 1.1).abs() < 1e-6);
        assert_eq!(p[2], 1.0);
    }

    #[test]
    fn a_step_schedule_halves_the_update_after_every_steps() {
        // A constant gradient: Adam's normalised step is lr each time, so the moves show the rate.
        let mut a = Adam::new(1, 0.1);
        a.schedule = MetaLrSchedule::Step {
            every: 2,
            factor: 0.5,
        };
        let mut p = vec![0.0f32];
        let mut moves = vec![];
        for _ in 0..5 {
            let before = p[0];
            a.step(&mut p, &[1.0]);
            moves.push(before - p[0]);
        }
        let want = [0.1, 0.1, 0.05, 0.05, 0.025];
        for (m, w) in moves.iter().zip(want) {
            assert!((m - w).abs() < 1e-6, "{moves:?}");
        }
        assert_eq!(MetaLrSchedule::Constant.lr_at(0.1, 10_000), 0.1);
    }

    #[test]
    fn minimises_a_quadratic() {
        let mut a = Adam::new(2, 0.05);
        let mut p = vec![3.0f32, -2.0];
        for _ in 0..2000 {
            let g = vec![2.0 * (p[0] - 1.0), 2.0 * (p[1] + 1.0)];
            a.step(&mut p, &g);
        }
        assert!(
            (p[0] - 1.0).abs() < 1e-3 && (p[1] + 1.0).abs() < 1e-3,
            "{p:?}"
        );
    }
}
