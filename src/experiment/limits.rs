//! Upper bounds: what an experiment will need, estimated from its sizes before anything is
//! allocated, so that `check` refuses what `run` would abort on ("memory allocation of N bytes
//! failed") or never finish.
//!
//! The estimates count the large buffers (parameters and optimizer state, episodes held for
//! evaluation, the meta-batch, activations of the tasks in flight, multi-task heads, the data
//! set) in f64, so absurd sizes cannot overflow. They are deliberately rough (within a small
//! factor); only what clearly cannot fit, or clearly cannot finish, is refused.

use super::schema::*;

/// Refused whatever the machine: no experiment needs more, and more is a typo (`1e9`).
pub const MAX_INNER_STEPS: usize = 10_000;
pub const MAX_ITERATIONS: usize = 100_000_000;
/// One panel each in the monitor.
pub const MAX_TRACKED_TASKS: usize = 64;
/// Estimated compute above this many seconds (a year) is refused.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
/// A deliberately optimistic CPU rate, so the time bound only catches the absurd.
const FLOPS_PER_SECOND: f64 = 1e11;
/// The full Omniglot release; the folder is only counted at `check` time, so assume all of it.
const OMNIGLOT_IMAGES: f64 = 32_460.0;

/// One large buffer: its size, the field that sizes it, and what it is.
#[derive(Debug, Clone)]
pub struct Need {
    pub bytes: f64,
    pub field: String,
    pub what: &'static str,
    /// The field's value, when the buffer grows linearly with it (to suggest a value that fits).
    pub linear_in: Option<f64>,
}

/// What the machine offers: `METALAB_MEMORY_BYTES` if set (clusters, tests), else the smaller of
/// physical memory and the cgroup limit (a Slurm job or container sees less than the machine).
pub fn memory_limit() -> f64 {
    if let Some(v) = std::env::var("METALAB_MEMORY_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return v;
    }
    let mut limit = f64::INFINITY;
    if let Ok(info) = std::fs::read_to_string("/proc/meminfo") {
        if let Some(kb) = info
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
        {
            limit = kb * 1024.0;
        }
    }
    for cg in [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        if let Some(v) = std::fs::read_to_string(cg)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            limit = limit.min(v);
        }
    }
    if limit.is_finite() {
        limit
    } else {
        16.0 * GIB
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

pub fn gib(bytes: f64) -> String {
    if bytes >= 1024.0 * 1024.0 * GIB {
        format!("{:.1e} GiB", bytes / GIB)
    } else if bytes >= 0.1 * GIB {
        format!("{:.1} GiB", bytes / GIB)
    } else {
        format!("{:.0} MiB", bytes / (1024.0 * 1024.0))
    }
}

/// Per-example input length and outputs (classes, or 1 for regression), as the family will
/// report them once built.
fn dims(f: &FamilySpec) -> (f64, f64, usize, bool) {
    match f {
        FamilySpec::Sinusoid(_) | FamilySpec::Mixed(_) => (1.0, 1.0, 0, false),
        FamilySpec::Omniglot(o) => (
            (o.image_size as f64).powi(2),
            o.ways as f64,
            o.image_size,
            true,
        ),
        FamilySpec::Synthetic(s) => (
            (s.image_size as f64).powi(2),
            s.ways as f64,
            s.image_size,
            true,
        ),
    }
}

/// (support, query) examples per task.
fn examples(f: &FamilySpec) -> (f64, f64) {
    match f {
        FamilySpec::Sinusoid(s) => (s.shots as f64, s.queries as f64),
        FamilySpec::Mixed(m) => (m.shots as f64, m.queries as f64),
        FamilySpec::Omniglot(o) => ((o.ways * o.shots) as f64, o.ways as f64 * o.queries as f64),
        FamilySpec::Synthetic(s) => (
            s.ways as f64 * s.shots as f64,
            s.ways as f64 * s.queries as f64,
        ),
    }
}

/// The network's size from the spec alone: (parameters, head parameters, floats of activations
/// per example, forward flops per example).
fn network(m: &ModelSpec, input: f64, outputs: f64, side: usize) -> (f64, f64, f64, f64) {
    match m {
        ModelSpec::Mlp(mlp) => {
            let mut width = input;
            let (mut params, mut acts) = (0.0, input);
            for &h in &mlp.hidden {
                params += width * h as f64 + h as f64;
                acts += h as f64;
                width = h as f64;
            }
            let head = width * outputs + outputs;
            // Forward values, their gradients and the activation masks.
            (
                params + head,
                head,
                3.0 * (acts + outputs),
                2.0 * (params + head),
            )
        }
        ModelSpec::Conv(c) => {
            let ch = c.channels as f64;
            let (mut cin, mut hw) = (1.0, (side * side) as f64);
            let (mut params, mut acts, mut flops) = (0.0, 0.0, 0.0);
            for _ in 0..c.blocks.min(64) {
                params += ch * cin * 9.0 + 3.0 * ch;
                // im2col columns, conv output, normalised, pooled, and gradients of each.
                acts += 2.0 * (cin * 9.0 * hw + 3.0 * ch * hw);
                flops += 2.0 * cin * 9.0 * ch * hw;
                cin = ch;
                hw = (hw / 4.0).floor();
            }
            let head = cin * hw.max(1.0) * outputs + outputs;
            (params + head, head, acts, flops + 2.0 * head)
        }
    }
}

fn threads(e: &Experiment) -> f64 {
    let t = if e.threads > 0 {
        e.threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    t as f64
}

/// The large buffers of one experiment, biggest first.
pub fn needs(e: &Experiment) -> Vec<Need> {
    let (input, outputs, side, images) = dims(&e.family);
    let (support, query) = examples(&e.family);
    let per_task = support + query;
    // Inputs plus one target (a class index or a value) per example.
    let episode = per_task * (input + 1.0) * 4.0;
    let eval_episode = {
        let (s, q) = examples(&e.eval_family());
        (s + q) * (input + 1.0) * 4.0
    };
    let (params, head, acts, _) = network(&e.model, input, outputs, side);
    let threads = threads(e);
    let mut out = vec![
        Need {
            bytes: e.train.meta_batch as f64 * episode,
            field: "train.meta_batch".into(),
            what: "the meta-batch's episodes",
            linear_in: Some(e.train.meta_batch as f64),
        },
        Need {
            bytes: e.eval.tasks as f64 * eval_episode,
            field: "eval.tasks".into(),
            what: "the test episodes",
            linear_in: Some(e.eval.tasks as f64),
        },
        Need {
            bytes: e.eval.periodic_tasks as f64 * eval_episode,
            field: "eval.periodic_tasks".into(),
            what: "the validation episodes",
            linear_in: Some(e.eval.periodic_tasks as f64),
        },
        Need {
            bytes: e.eval.tracked_tasks as f64 * eval_episode,
            field: "eval.tracked_tasks".into(),
            what: "the tracked tasks' episodes",
            linear_in: Some(e.eval.tracked_tasks as f64),
        },
        Need {
            // Every arm's meta-parameters, Adam moments and gradient, plus each worker's copy.
            bytes: e.arms.len().max(1) as f64 * params * 4.0 * (4.0 + 2.0 * threads),
            field: "model".into(),
            what: "the parameters and optimizer state",
            linear_in: None,
        },
        Need {
            // Each worker holds one task's support or query batch.
            bytes: threads * support.max(query) * acts * 4.0,
            field: if query >= support {
                "family.queries".into()
            } else {
                "family.shots".into()
            },
            what: "the activations of the tasks in flight",
            linear_in: None,
        },
    ];
    if images {
        let (count, field) = match &e.family {
            FamilySpec::Synthetic(s) => (s.classes as f64, "family.classes"),
            _ => (OMNIGLOT_IMAGES, "family.image_size"),
        };
        out.push(Need {
            bytes: count * input * 4.0,
            field: field.into(),
            what: "the data set in memory",
            linear_in: matches!(e.family, FamilySpec::Synthetic(_)).then_some(count),
        });
    }
    for (i, arm) in e.arms.iter().enumerate() {
        let steps = e.arm_settings(arm).inner_steps as f64;
        let cost = arm.algorithm.cost();
        if cost.trajectory_vectors > 0.0 {
            out.push(Need {
                bytes: threads * steps * params * 4.0 * cost.trajectory_vectors,
                field: format!("arms[{i}].inner_steps"),
                what: "second-order inner trajectories",
                linear_in: Some(steps),
            });
        }
        if cost.heads > 0 {
            // A head per task, with its Adam moments and gradient.
            let tasks = cost.heads as f64;
            out.push(Need {
                bytes: tasks * head * 4.0 * 4.0,
                field: format!("arms[{i}].tasks"),
                what: "the multi-task heads",
                linear_in: Some(tasks),
            });
        }
        out.extend(trunk_need(cost.trunks, params - head, i));
    }
    out.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
    out
}

/// A multi-task arm's trunks beyond the network's own (a trunk per task or group), each
/// `trunk` parameters with its Adam moments and gradient.
fn trunk_need(trunks: usize, trunk: f64, arm: usize) -> Option<Need> {
    let n = trunks as f64;
    (trunks > 0).then(|| Need {
        bytes: n * trunk * 4.0 * 4.0,
        field: format!("arms[{arm}].trunks"),
        what: "the multi-task trunks",
        linear_in: Some(n),
    })
}

/// Estimated seconds of compute, (training, evaluations: periodic and the final test), at an
/// optimistic rate.
pub fn seconds(e: &Experiment) -> (f64, f64) {
    let (input, outputs, side, _) = dims(&e.family);
    let (support, query) = examples(&e.family);
    let (_, _, _, fwd) = network(&e.model, input, outputs, side);
    // Forward and backward.
    let pass = 3.0 * fwd;
    let mut train = 0.0;
    for arm in &e.arms {
        let steps = e.arm_settings(arm).inner_steps as f64;
        let hvp = arm.algorithm.cost().gradients_per_inner_step;
        train += e.train.iterations as f64
            * e.train.meta_batch as f64
            * (support * steps * hvp + query)
            * pass;
    }
    let evals = e.train.iterations.checked_div(e.eval.every).unwrap_or(0) as f64;
    let (eval_support, eval_query) = examples(&e.eval_family());
    let per_eval_task = (eval_support * e.eval.inner_steps as f64 + eval_query) * pass;
    let eval = e.arms.len() as f64
        * per_eval_task
        * (e.eval.tasks as f64 + evals * (e.eval.periodic_tasks + e.eval.tracked_tasks) as f64);
    (train / FLOPS_PER_SECOND, eval / FLOPS_PER_SECOND)
}

pub fn max_seconds() -> f64 {
    MAX_SECONDS
}

/// A value of `need`'s field that would bring the total under `limit`, if it grows linearly.
pub fn fitting_value(need: &Need, total: f64, limit: f64) -> Option<u64> {
    let value = need.linear_in?;
    let room = limit * 0.8 - (total - need.bytes);
    if room <= 0.0 || need.bytes <= 0.0 {
        return None;
    }
    let v = (value * room / need.bytes).floor();
    (v >= 1.0).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> Experiment {
        let path = format!("{}/experiments/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        ron::Options::default()
            .with_default_extension(
                ron::extensions::Extensions::IMPLICIT_SOME
                    | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
            )
            .from_str(&text)
            .unwrap()
    }

    #[test]
    fn meta_sgd_is_counted_at_least_like_maml() {
        // Both keep inner trajectories and take Hessian-vector products; Meta-SGD also keeps
        // each step's support gradient.
        let e = shipped("sinusoid-anil-metasgd.ron");
        let only = |name: &str| {
            let mut one = e.clone();
            one.arms.retain(|a| a.name == name);
            one
        };
        let (maml, meta_sgd) = (only("maml"), only("metasgd"));
        let bytes = |e: &Experiment| needs(e).iter().map(|n| n.bytes).sum::<f64>();
        assert!(bytes(&meta_sgd) > bytes(&maml));
        assert_eq!(seconds(&meta_sgd), seconds(&maml));
        assert!(seconds(&meta_sgd).0 > seconds(&only("anil")).0);
    }

    #[test]
    fn shipped_experiments_fit_in_a_few_gib_and_a_day() {
        for name in [
            "sinusoid-maml.ron",
            "sinusoid-compare.ron",
            "synthetic-demo.ron",
            "omniglot-5way-1shot.ron",
            "omniglot-20way-1shot.ron",
        ] {
            let mut e = shipped(name);
            // Activations scale with the worker threads; pin them so the bound does not depend on
            // the machine running the test.
            e.threads = 2;
            let total: f64 = needs(&e).iter().map(|n| n.bytes).sum();
            assert!(total < 4.0 * GIB, "{name}: {}", gib(total));
            let (train, eval) = seconds(&e);
            assert!(train + eval < 24.0 * 3600.0, "{name}: {train} + {eval} s");
        }
    }

    #[test]
    fn absurd_sizes_are_estimated_without_overflow() {
        let mut e = shipped("sinusoid-maml.ron");
        e.train.meta_batch = usize::MAX;
        e.eval.inner_steps = usize::MAX;
        let top = &needs(&e)[0];
        assert_eq!(top.field, "train.meta_batch");
        assert!(top.bytes.is_finite() && top.bytes > 1e20);
        assert!(seconds(&e).1 > MAX_SECONDS);
        // 80% of 16 GiB in 160-byte episodes.
        let v = fitting_value(top, top.bytes, 16.0 * GIB).unwrap();
        assert!((85_000_000..86_000_000).contains(&v), "{v}");
    }
}
