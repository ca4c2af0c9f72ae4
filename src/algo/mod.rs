//! Meta-learning algorithms, one file each, each a [`learner::TaskRule`]: what one task of a
//! meta-batch computes and how a new task adapts. The [`learner::Learner`] around every rule owns
//! the meta-parameters, the meta-optimizer, the training tasks, the checkpoint state and the
//! worker pool's use; the engine sees it as a [`MetaAlgorithm`].
//!
//! Algorithms work on flat parameter vectors and run on a [`WorkerPool`]'s evaluators, so they
//! know nothing of devices, layers or the UI.

pub mod adam;
pub mod affinity;
pub mod aggregate;
pub mod anil;
pub mod cavia;
mod contract;
pub mod embedding;
pub mod eval;
pub mod inner;
pub mod learner;
pub mod linkage;
#[cfg(test)]
mod lockstep_tests;
pub mod maml;
pub mod metasgd;
pub mod metric;
pub mod multitask;
pub mod pca;
pub mod reptile;

pub use contract::{
    AdaptMode, AlgoContext, AlgoError, LearnerOptions, MetaAlgorithm, StepStats, TaskScores,
};

use crate::experiment::Algorithm;
use crate::model::metric::MetricKind;
use crate::tasks::TaskFamily;

/// The learner for `algorithm`: the one place an algorithm variant meets its rule.
pub fn build(
    algorithm: &Algorithm,
    ctx: AlgoContext,
    family: &dyn TaskFamily,
) -> Box<dyn MetaAlgorithm> {
    let options = LearnerOptions {
        aggregate: ctx.settings.aggregate,
        affinity: ctx.settings.affinity,
        seed: ctx.seed,
    };
    let mut learner = build_rule(algorithm, ctx, family);
    learner.configure(options);
    learner
}

fn build_rule(
    algorithm: &Algorithm,
    ctx: AlgoContext,
    family: &dyn TaskFamily,
) -> Box<dyn MetaAlgorithm> {
    use maml::{Maml, Order};
    match algorithm {
        Algorithm::Maml { hvp_eps } => {
            Box::new(Maml::learner(ctx, Order::Second { hvp_eps: *hvp_eps }))
        }
        Algorithm::Fomaml => Box::new(Maml::learner(ctx, Order::First)),
        Algorithm::Reptile {
            epsilon,
            anneal,
            inner_optimizer,
        } => Box::new(reptile::Reptile::learner(
            ctx,
            *epsilon,
            *anneal,
            *inner_optimizer,
        )),
        Algorithm::MultiTask { tasks, trunks } => {
            Box::new(multitask::MultiTask::learner(ctx, *tasks, trunks, family))
        }
        Algorithm::ProtoNet => Box::new(metric::MetricArm::learner(ctx, MetricKind::Prototypes)),
        Algorithm::MatchingNet => Box::new(metric::MetricArm::learner(ctx, MetricKind::Matching)),
        Algorithm::RelationNet { hidden } => Box::new(metric::MetricArm::learner(
            ctx,
            MetricKind::Relation { hidden: *hidden },
        )),
        Algorithm::Anil { first_order } => Box::new(anil::Anil::learner(ctx, !*first_order)),
        Algorithm::MetaSgd { hvp_eps } => Box::new(metasgd::MetaSgd::learner(ctx, *hvp_eps)),
        Algorithm::Cavia {
            context,
            context_lr,
            hvp_eps,
            first_order,
            film_block,
        } => {
            let order = if *first_order {
                Order::First
            } else {
                Order::Second { hvp_eps: *hvp_eps }
            };
            Box::new(cavia::Cavia::learner(
                ctx,
                *context,
                *film_block,
                *context_lr,
                order,
            ))
        }
    }
}
