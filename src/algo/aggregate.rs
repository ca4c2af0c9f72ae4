//! PCGrad (Yu et al., NeurIPS 2020), "gradient surgery": before the tasks' updates are combined,
//! each task's update is projected onto the normal plane of every other task's update it
//! conflicts with (negative dot product), the others visited in a random order. The paper
//! projects against the other tasks' original gradients, not their projected ones; so does this.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::tasks::Rng;

/// Salt for PCGrad's order stream, so it is a function of the seed and iteration alone.
const ORDER_SALT: u64 = 0x7063_6772_6164_2121;

/// The random order stream of iteration `iteration` under the experiment's `seed`.
pub fn order_rng(seed: u64, iteration: usize) -> Rng {
    let mut rng = Rng::seed_from_u64(seed ^ ORDER_SALT);
    rng.set_stream(iteration as u64);
    rng
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// PCGrad on the first `shared` entries of every task's update, in place; entries past
/// `shared` (a multi-task arm's per-task head) are each task's own and stay as they are.
pub fn pcgrad(updates: &mut [&mut Vec<f64>], shared: usize, rng: &mut Rng) {
    let original: Vec<Vec<f64>> = updates.iter().map(|u| u[..shared].to_vec()).collect();
    let norms: Vec<f64> = original.iter().map(|g| dot(g, g)).collect();
    for (i, u) in updates.iter_mut().enumerate() {
        let mut others: Vec<usize> = (0..original.len()).filter(|&j| j != i).collect();
        others.shuffle(rng);
        let g = &mut u[..shared];
        for j in others {
            let d = dot(g, &original[j]);
            if d < 0.0 && norms[j] > 0.0 {
                let k = d / norms[j];
                for (x, o) in g.iter_mut().zip(&original[j]) {
                    *x -= k * o;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mut gs: Vec<Vec<f64>>, shared: usize, seed: u64, it: usize) -> Vec<Vec<f64>> {
        let mut refs: Vec<&mut Vec<f64>> = gs.iter_mut().collect();
        pcgrad(&mut refs, shared, &mut order_rng(seed, it));
        gs
    }

    #[test]
    fn two_conflicting_gradients_end_up_orthogonal_to_each_other_s_original() {
        let g1 = vec![1.0, 0.0];
        let g2 = vec![-1.0, 1.0];
        let out = run(vec![g1.clone(), g2.clone()], 2, 1, 0);
        // The definition: g1 − (g1·g2 / |g2|²) g2 = (1, 0) + ½(−1, 1) = (½, ½); and
        // g2 − (g2·g1 / |g1|²) g1 = (0, 1).
        assert_eq!(out[0], [0.5, 0.5]);
        assert_eq!(out[1], [0.0, 1.0]);
        // No conflict remains in the paper's sense: each projected gradient has a non-negative
        // dot product with the other task's gradient.
        assert!(dot(&out[0], &g2) >= -1e-12);
        assert!(dot(&out[1], &g1) >= -1e-12);
    }

    #[test]
    fn agreeing_gradients_pass_unchanged_so_mean_and_pcgrad_agree() {
        let gs = vec![
            vec![1.0, 2.0, 0.5],
            vec![0.5, 1.0, -0.1],
            vec![2.0, 0.0, 0.0],
        ];
        assert_eq!(run(gs.clone(), 3, 7, 3), gs);
    }

    #[test]
    fn three_tasks_follow_the_definition_in_the_seeded_order() {
        let gs = vec![
            vec![1.0, 0.0, 0.0],
            vec![-1.0, 1.0, 0.0],
            vec![-0.5, -1.0, 1.0],
        ];
        for (seed, it) in [(1, 0), (2, 5), (3, 9)] {
            let out = run(gs.clone(), 3, seed, it);
            // Replay the same order draws and apply the definition by hand.
            let mut rng = order_rng(seed, it);
            for (i, got) in out.iter().enumerate() {
                let mut others: Vec<usize> = (0..3).filter(|&j| j != i).collect();
                others.shuffle(&mut rng);
                let mut g = gs[i].clone();
                for j in others {
                    let d = dot(&g, &gs[j]);
                    if d < 0.0 {
                        let k = d / dot(&gs[j], &gs[j]);
                        g = g.iter().zip(&gs[j]).map(|(x, o)| x - k * o).collect();
                    }
                }
                assert_eq!(got, &g);
            }
            // Reproducible: the same seed and iteration, the same result.
            assert_eq!(run(gs.clone(), 3, seed, it), out);
        }
        // The order matters with three conflicting tasks, and the seed decides it.
        let outs: Vec<_> = (0..20).map(|s| run(gs.clone(), 3, s, 0)).collect();
        assert!(outs.iter().any(|o| o != &outs[0]));
    }

    #[test]
    fn only_the_shared_prefix_is_projected() {
        let out = run(vec![vec![1.0, 0.0, 9.0], vec![-1.0, 1.0, -9.0]], 2, 1, 0);
        assert_eq!(out[0], [0.5, 0.5, 9.0]);
        assert_eq!(out[1], [0.0, 1.0, -9.0]);
    }

    #[test]
    fn after_projection_no_pair_conflicts_for_two_tasks_on_random_gradients() {
        let mut rng = Rng::seed_from_u64(4);
        use rand::Rng as _;
        for _ in 0..200 {
            let a: Vec<f64> = (0..6).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let b: Vec<f64> = (0..6).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let out = run(vec![a.clone(), b.clone()], 6, 1, 0);
            assert!(dot(&out[0], &b) >= -1e-12 && dot(&out[1], &a) >= -1e-12);
            // A projected gradient also stays no larger than the original.
            assert!(dot(&out[0], &out[0]) <= dot(&a, &a) + 1e-12);
        }
    }
}
