//! Negative transfer on the mixed family (issue 21): FOMAML trained jointly on sines and negated
//! sines against FOMAML trained on the sine group alone (task grouping), each sine task scored
//! on the same episodes after one inner step; `transfer::compare` flags the joint model.

use std::sync::Arc;

use metalab::algo::{self, AlgoContext};
use metalab::experiment::{
    Activation, Aggregate, Algorithm, ArmSettings, DeviceSpec, FunctionKind, MetaLrSchedule,
    MixedSpec, MlpSpec, ModelSpec,
};
use metalab::model::Network;
use metalab::pool::WorkerPool;
use metalab::tasks::mixed::Mixed;
use metalab::tasks::{Rng, TaskFamily};
use metalab::transfer::{compare, TransferRow};
use rand::SeedableRng;

const INNER_LR: f32 = 0.01;

fn family(groups: Vec<FunctionKind>) -> Mixed {
    let spec = MixedSpec {
        groups,
        tasks_per_group: 3,
        ..MixedSpec::default()
    };
    Mixed::new(spec, 5)
}

/// FOMAML's meta-parameters after `iterations` on `fam`'s fixed tasks.
fn train(fam: &Mixed, aggregate: Aggregate, iterations: usize) -> (Arc<Network>, Vec<f32>) {
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden: vec![20, 20],
        activation: Activation::Tanh,
    });
    let net = Arc::new(Network::new(&spec, &fam.shape()).unwrap());
    let pool = WorkerPool::new(&net, DeviceSpec::Cpu, 5, 2).unwrap();
    let settings = ArmSettings {
        inner_steps: 1,
        inner_lr: INNER_LR as f64,
        meta_lr: 0.005,
        meta_lr_schedule: MetaLrSchedule::Constant,
        aggregate,
        affinity: None,
    };
    let ctx = AlgoContext {
        net: net.clone(),
        settings,
        total_iterations: iterations,
        seed: 5,
    };
    let mut a = algo::build(&Algorithm::Fomaml, ctx, fam);
    let mut rng = Rng::seed_from_u64(2);
    let batch = fam.fixed_tasks().unwrap().len();
    for it in 0..iterations {
        let eps = a.sample_batch(fam, &mut rng, batch);
        a.step(it, eps, &pool).unwrap();
    }
    (net, a.state()[0].1.clone())
}

/// Query losses of fixed task `t` after one inner step, on 60 episodes drawn from `seed`.
fn scores(fam: &Mixed, net: &Network, params: &[f32], t: usize, seed: u64) -> Vec<f64> {
    let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
    let task = &fam.fixed_tasks().unwrap()[t];
    let mut rng = Rng::seed_from_u64(seed);
    (0..60)
        .map(|_| {
            let ep = fam.sample_episode(task, &mut rng);
            let mut g = vec![0.0f32; params.len()];
            ev.evaluate(params, &ep.support, Some(&mut g));
            let p: Vec<f32> = params
                .iter()
                .zip(&g)
                .map(|(x, g)| x - INNER_LR * g)
                .collect();
            ev.evaluate(&p, &ep.query, None).loss as f64
        })
        .collect()
}

fn rows(joint: &(Arc<Network>, Vec<f32>), single: &(Arc<Network>, Vec<f32>)) -> Vec<TransferRow> {
    let (jf, sf) = (
        family(vec![FunctionKind::Sine, FunctionKind::NegSine]),
        family(vec![FunctionKind::Sine]),
    );
    (0..3)
        .map(|t| {
            let j = scores(&jf, &joint.0, &joint.1, t, 100 + t as u64);
            let s = scores(&sf, &single.0, &single.1, t, 100 + t as u64);
            compare(&j, &s).unwrap()
        })
        .collect()
}

#[test]
fn joint_training_with_negated_sines_shows_negative_transfer_on_the_sines() {
    let joint_fam = family(vec![FunctionKind::Sine, FunctionKind::NegSine]);
    let sine_fam = family(vec![FunctionKind::Sine]);
    // The same three sine tasks head both fixed sets (drawn in group order from one stream),
    // so the same episodes score both models.
    assert_eq!(
        joint_fam.fixed_tasks().unwrap()[..3],
        sine_fam.fixed_tasks().unwrap()[..]
    );
    let single = train(&sine_fam, Aggregate::Mean, 300);
    let joint = train(&joint_fam, Aggregate::Mean, 300);
    let pcgrad = train(&joint_fam, Aggregate::PcGrad, 300);
    let mean_rows = rows(&joint, &single);
    let pc_rows = rows(&pcgrad, &single);
    for (t, (m, p)) in mean_rows.iter().zip(&pc_rows).enumerate() {
        eprintln!(
            "sine task {t}: joint/single {:.3} [{:.3}, {:.3}] negative {}; pcgrad/single {:.3} [{:.3}, {:.3}] negative {}",
            m.ratio, m.lo, m.hi, m.negative, p.ratio, p.lo, p.hi, p.negative
        );
    }
    assert!(mean_rows.iter().all(|r| r.negative), "{mean_rows:?}");
}
