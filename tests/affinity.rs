//! Task affinities and PCGrad on the mixed family (issue 21): the recorded affinities against
//! a direct recomputation, the groups recovered from a short training run, and PCGrad's
//! reproducibility.

use std::sync::Arc;

use metalab::algo::affinity::{clusters, cosine, AffinityRecord};
use metalab::algo::multitask::join;
use metalab::algo::{self, AlgoContext, MetaAlgorithm};
use metalab::experiment::{
    Activation, AffinitySpec, Aggregate, Algorithm, ArmSettings, DeviceSpec, MetaLrSchedule,
    MixedSpec, MlpSpec, ModelSpec,
};
use metalab::model::Network;
use metalab::pool::WorkerPool;
use metalab::tasks::mixed::Mixed;
use metalab::tasks::{Rng, TaskFamily};
use rand::SeedableRng;

fn settings(aggregate: Aggregate, affinity: Option<AffinitySpec>) -> ArmSettings {
    ArmSettings {
        inner_steps: 1,
        inner_lr: 0.01,
        meta_lr: 0.005,
        meta_lr_schedule: MetaLrSchedule::Constant,
        aggregate,
        affinity,
    }
}

fn setup(hidden: Vec<usize>) -> (Mixed, Arc<Network>, WorkerPool) {
    let fam = Mixed::new(MixedSpec::default(), 3);
    let spec = ModelSpec::Mlp(MlpSpec {
        hidden,
        activation: Activation::Tanh,
    });
    let net = Arc::new(Network::new(&spec, &fam.shape()).unwrap());
    let pool = WorkerPool::new(&net, DeviceSpec::Cpu, 3, 2).unwrap();
    (fam, net, pool)
}

fn build(
    algorithm: &Algorithm,
    net: &Arc<Network>,
    fam: &Mixed,
    s: ArmSettings,
) -> Box<dyn MetaAlgorithm> {
    let ctx = AlgoContext {
        net: net.clone(),
        settings: s,
        total_iterations: 100,
        seed: 3,
    };
    algo::build(algorithm, ctx, fam)
}

#[test]
fn multitask_affinities_match_a_direct_computation() {
    let (fam, net, pool) = setup(vec![6]);
    let spec = AffinitySpec {
        every: 1,
        lookahead_lr: 0.05,
    };
    let mut a = build(
        &Algorithm::MultiTask {
            tasks: 12,
            trunks: Default::default(),
        },
        &net,
        &fam,
        settings(Aggregate::Mean, Some(spec)),
    );
    let params = a.state()[0].1.clone();
    let mut rng = Rng::seed_from_u64(1);
    let eps = a.sample_batch(&fam, &mut rng, 12);
    a.step(0, eps.clone(), &pool).unwrap();
    let r: AffinityRecord = a.affinity(1).unwrap();
    assert_eq!(r.groups, (0..12).map(|i| Some(i / 3)).collect::<Vec<_>>());

    // Directly: each task's trunk ++ own head, its gradient on all its examples.
    let (hs, hl) = (net.layout.head_start, net.layout.head_len());
    let own = |t: usize| {
        let mut p = params[..hs].to_vec();
        p.extend_from_slice(&params[hs + t * hl..hs + (t + 1) * hl]);
        p
    };
    let mut ev = net.evaluator(DeviceSpec::Cpu, 0).unwrap();
    let mut grads = vec![];
    let mut before = vec![];
    for (t, ep) in eps.iter().enumerate() {
        let mut g = vec![0.0f32; own(t).len()];
        let l = ev.evaluate(&own(t), &join(&ep.support, &ep.query), Some(&mut g));
        grads.push(g.iter().map(|&x| x as f64).collect::<Vec<f64>>());
        before.push(l.loss as f64);
    }
    for i in 0..12 {
        for j in 0..12 {
            if i == j {
                assert_eq!(r.cosine[i][j], None);
                continue;
            }
            let c = cosine(&grads[i][..hs], &grads[j][..hs]);
            assert_eq!(r.cosine[i][j], Some(c), "cosine {i} {j}");
            let mut p = own(j);
            for (x, g) in p[..hs].iter_mut().zip(&grads[i][..hs]) {
                *x = (*x as f64 - 0.05 * g) as f32;
            }
            let after = ev
                .evaluate(&p, &join(&eps[j].support, &eps[j].query), None)
                .loss as f64;
            let z = 1.0 - after / before[j];
            let got = r.lookahead[i][j].unwrap();
            assert!((got - z).abs() < 1e-9, "lookahead {i}→{j}: {got} vs {z}");
        }
    }
}

/// Trains `iterations` steps of FOMAML on the mixed family, affinities on.
fn fomaml_affinity(aggregate: Aggregate, iterations: usize) -> (AffinityRecord, Vec<f32>) {
    let (fam, net, pool) = setup(vec![20, 20]);
    let spec = AffinitySpec {
        every: 5,
        lookahead_lr: 0.01,
    };
    let mut a = build(
        &Algorithm::Fomaml,
        &net,
        &fam,
        settings(aggregate, Some(spec)),
    );
    let mut rng = Rng::seed_from_u64(1);
    for it in 0..iterations {
        let eps = a.sample_batch(&fam, &mut rng, 24);
        a.step(it, eps, &pool).unwrap();
    }
    (a.affinity(iterations).unwrap(), a.state()[0].1.clone())
}

#[test]
fn the_gradient_cosine_recovers_the_mixed_family_s_groups() {
    let (r, _) = fomaml_affinity(Aggregate::Mean, 200);
    let truth: Vec<usize> = r.groups.iter().map(|g| g.unwrap()).collect();
    assert_eq!(clusters(&r.cosine, 4), truth);
    // Every group is closer to itself than to any other group, on average.
    let mean = |gi: usize, gj: usize| {
        let (mut sum, mut n) = (0.0, 0.0);
        for i in gi * 3..gi * 3 + 3 {
            for j in gj * 3..gj * 3 + 3 {
                if let Some(v) = r.cosine[i][j] {
                    (sum, n) = (sum + v, n + 1.0);
                }
            }
        }
        sum / n
    };
    for g in 0..4 {
        for h in (0..4).filter(|&h| h != g) {
            assert!(
                mean(g, g) > mean(g, h),
                "group {g}: {} vs {h}: {}",
                mean(g, g),
                mean(g, h)
            );
        }
    }
}

#[test]
fn pcgrad_is_reproducible_and_changes_a_conflicting_training() {
    let (_, a) = fomaml_affinity(Aggregate::PcGrad, 5);
    let (_, b) = fomaml_affinity(Aggregate::PcGrad, 5);
    let (_, mean) = fomaml_affinity(Aggregate::Mean, 5);
    assert_eq!(a, b);
    assert_ne!(a, mean);
}

#[test]
fn pcgrad_is_refused_where_there_is_no_mean_of_task_updates_and_mean_is_not_written() {
    let base = std::fs::read_to_string("experiments/mixed-affinity.ron").unwrap();
    let text = base.replacen(
        "Arm(name: \"fomaml\", algorithm: Fomaml)",
        "Arm(name: \"anil\", algorithm: Anil(first_order: true), aggregate: PcGrad)",
        1,
    );
    assert_ne!(text, base);
    let e = metalab::experiment::parse_str(&text, std::path::Path::new("x.ron"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("arms[0].aggregate"), "{e}");
    assert!(e.contains("fix: use aggregate: PcGrad with Maml"), "{e}");
    // A frozen config of a Mean arm reads as configs did before `aggregate` existed.
    let exp = metalab::experiment::parse_str(&base, std::path::Path::new("x.ron")).unwrap();
    let one = exp.with_only_arm("fomaml").unwrap().to_ron();
    assert!(!one.contains("aggregate"), "{one}");
    let pc = exp.with_only_arm("fomaml-pcgrad").unwrap().to_ron();
    assert!(pc.contains("aggregate: PcGrad"), "{pc}");
}
