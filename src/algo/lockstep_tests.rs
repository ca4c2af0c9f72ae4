//! The lock-step contract as the algorithms use it: a meta-batch in one batched run gives, bit
//! for bit, what each task gives alone, and cutting it over 1 or 3 workers changes nothing.

use rand::SeedableRng;

use super::contract::{AdaptMode, AlgoContext, MetaAlgorithm};
use super::eval::{adapt_and_score, Scoring};
use super::{anil, maml, metasgd, metric};
use crate::experiment::{
    Algorithm, ArmSettings, ConvSpec, DeviceSpec, InnerOptimizer, MetaLrSchedule, ModelSpec,
    SyntheticSpec, Trunks,
};
use crate::model::metric::MetricKind;
use crate::model::{KinkPattern, Kinks, LockStepModel, Network, SerialTasks, StepJob, StepOut};
use crate::pool::WorkerPool;
use crate::tasks::synthetic::Synthetic;
use crate::tasks::{Episode, Rng, Split, TaskFamily};

fn family() -> Synthetic {
    Synthetic::new(
        SyntheticSpec {
            ways: 3,
            shots: 2,
            queries: 2,
            classes: 30,
            image_size: 8,
            noise: 0.3,
        },
        1,
    )
    .unwrap()
}

/// A tiny conv net with batch norm, ReLU and max pool: every kink the contract must carry.
fn network(fam: &Synthetic) -> Network {
    let spec = ModelSpec::Conv(ConvSpec {
        blocks: 2,
        channels: 3,
        batch_norm: true,
    });
    Network::new(&spec, &fam.shape()).unwrap()
}

fn episodes(fam: &Synthetic, count: usize, seed: u64) -> Vec<Episode> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let task = fam.sample_task(Split::Train, &mut rng);
            fam.sample_episode(&task, &mut rng)
        })
        .collect()
}

#[test]
fn a_batched_step_equals_the_jobs_one_by_one_with_recorded_and_replayed_kinks() {
    let fam = family();
    let net = network(&fam);
    let eps = episodes(&fam, 3, 2);
    let mut rng = Rng::seed_from_u64(3);
    let params: Vec<Vec<f32>> = eps.iter().map(|_| net.init(&mut rng)).collect();
    let mut alone = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
    let mut expected = vec![];
    let mut recorded = vec![];
    for (p, ep) in params.iter().zip(&eps) {
        let mut pattern = KinkPattern::default();
        let mut g = vec![0.0; p.len()];
        let out = alone.evaluate_with(p, &ep.support, Some(&mut g), Kinks::Record(&mut pattern));
        expected.push(StepOut { out, grad: Some(g) });
        recorded.push(pattern);
    }
    let mut ev = net.evaluator(DeviceSpec::Cpu, 1).unwrap();
    let mut m = SerialTasks::new(ev.as_mut());
    let mut patterns = vec![KinkPattern::default(); eps.len()];
    let mut jobs: Vec<StepJob<Vec<f32>>> = params
        .iter()
        .zip(&eps)
        .zip(patterns.iter_mut())
        .map(|((p, ep), pattern)| StepJob {
            kinks: Kinks::Record(pattern),
            ..StepJob::gradient(p, &ep.support)
        })
        .collect();
    assert_eq!(m.step(&mut jobs), expected);
    drop(jobs);
    assert_eq!(patterns, recorded);
    // Replaying each task's own pattern at its own point gives the same numbers again.
    let mut replay: Vec<StepJob<Vec<f32>>> = params
        .iter()
        .zip(&eps)
        .zip(&patterns)
        .map(|((p, ep), pattern)| StepJob {
            kinks: Kinks::Replay(pattern),
            ..StepJob::gradient(p, &ep.support)
        })
        .collect();
    assert_eq!(m.step(&mut replay), expected);
}

#[test]
fn meta_gradients_of_a_meta_batch_equal_each_task_alone() {
    let fam = family();
    let net = network(&fam);
    let eps = episodes(&fam, 4, 5);
    let refs: Vec<&Episode> = eps.iter().collect();
    let theta = net.init(&mut Rng::seed_from_u64(6));
    let hs = net.layout.head_start;
    let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
    let order = maml::Order::Second { hvp_eps: 1e-3 };
    let batched = maml::meta_grads(
        &mut SerialTasks::new(ev.as_mut()),
        &theta,
        &refs,
        2,
        0.3,
        order,
    );
    for (ep, b) in eps.iter().zip(&batched) {
        assert_eq!(
            &maml::task_meta_grad(ev.as_mut(), &theta, ep, 2, 0.3, order),
            b
        );
    }
    let batched = anil::meta_grads(
        &mut SerialTasks::new(ev.as_mut()),
        &theta,
        hs,
        &refs,
        2,
        0.3,
        true,
    );
    for (ep, b) in eps.iter().zip(&batched) {
        assert_eq!(
            &anil::task_meta_grad(ev.as_mut(), &theta, hs, ep, 2, 0.3, true),
            b
        );
    }
    let alpha = vec![0.2f32; theta.len()];
    let batched = metasgd::meta_grads(
        &mut SerialTasks::new(ev.as_mut()),
        &theta,
        &alpha,
        &refs,
        2,
        1e-3,
    );
    for (ep, b) in eps.iter().zip(&batched) {
        assert_eq!(
            &metasgd::task_meta_grad(ev.as_mut(), &theta, &alpha, ep, 2, 1e-3),
            b
        );
    }
    let kind = MetricKind::Relation { hidden: 4 };
    let d = net.layout.feature_dim();
    let mut p = theta[..hs].to_vec();
    p.extend(kind.init_module(d, &mut Rng::seed_from_u64(7)));
    let batched = metric::episode_losses(
        &mut SerialTasks::new(ev.as_mut()),
        kind,
        &p,
        hs,
        &refs,
        true,
    );
    for (ep, (out, g)) in eps.iter().zip(batched) {
        let mut alone = vec![0.0; p.len()];
        assert_eq!(
            metric::episode_loss(ev.as_mut(), kind, &p, hs, ep, Some(&mut alone)),
            out
        );
        assert_eq!(Some(alone), g);
    }
}

fn every_algorithm() -> Vec<Algorithm> {
    vec![
        Algorithm::Maml { hvp_eps: 1e-3 },
        Algorithm::Fomaml,
        Algorithm::Reptile {
            epsilon: 0.5,
            anneal: true,
            inner_optimizer: InnerOptimizer::Sgd,
        },
        Algorithm::Reptile {
            epsilon: 0.5,
            anneal: false,
            inner_optimizer: InnerOptimizer::Adam,
        },
        Algorithm::MultiTask {
            tasks: 4,
            trunks: Default::default(),
        },
        Algorithm::MultiTask {
            tasks: 4,
            trunks: Trunks::PerTask,
        },
        Algorithm::MultiTask {
            tasks: 4,
            trunks: Trunks::Groups(vec![vec![0, 2], vec![1, 3]]),
        },
        Algorithm::ProtoNet,
        Algorithm::MatchingNet,
        Algorithm::RelationNet { hidden: 4 },
        Algorithm::Anil { first_order: false },
        Algorithm::Anil { first_order: true },
        Algorithm::MetaSgd { hvp_eps: 1e-3 },
    ]
}

/// Two meta-iterations of `algorithm` on a pool of `threads` workers: the state after them,
/// each iteration's statistics, and the evaluation of the result.
fn train(algorithm: &Algorithm, threads: usize) -> (Vec<(String, Vec<f32>)>, String) {
    let fam = family();
    let net = std::sync::Arc::new(network(&fam));
    let ctx = AlgoContext {
        net: net.clone(),
        settings: ArmSettings {
            inner_steps: 2,
            inner_lr: 0.3,
            meta_lr: 0.01,
            meta_lr_schedule: MetaLrSchedule::Constant,
            aggregate: Default::default(),
            affinity: None,
        },
        total_iterations: 4,
        seed: 9,
    };
    let mut algo: Box<dyn MetaAlgorithm> = super::build(algorithm, ctx, &fam);
    let pool = WorkerPool::new(&net, DeviceSpec::Cpu, 9, threads).unwrap();
    let mut rng = Rng::seed_from_u64(10);
    let mut log = String::new();
    for it in 0..2 {
        let batch = algo.sample_batch(&fam, &mut rng, 5);
        let stats = algo.step(it, batch, &pool).unwrap();
        log += &format!("{stats:?}\n");
    }
    let (start, mode) = algo.adapt_start();
    let test = episodes(&fam, 5, 11);
    let evals = adapt_and_score(&pool, start, mode, test, 2, 0.3, Scoring::EveryStep).unwrap();
    log += &format!("{evals:?}");
    if let AdaptMode::All = mode {
        assert!(evals.iter().all(|e| e.per_step.len() == 3));
    }
    (algo.state(), log)
}

#[test]
fn every_algorithm_trains_and_evaluates_the_same_on_one_worker_and_three() {
    for algorithm in every_algorithm() {
        let (one, log_one) = train(&algorithm, 1);
        let (three, log_three) = train(&algorithm, 3);
        assert_eq!(log_one, log_three, "{algorithm:?}");
        assert!(one == three, "{algorithm:?}: the trained state differs");
    }
}
