//! Episode assembly shared by the classification families (Omniglot, synthetic, Lake folders):
//! which classes a task takes, and how its support and query sets are laid out.

use super::{Batch, Episode, FamilyShape, Rng, Targets, TaskKind};

/// What a model sees of a family of `ways`-way tasks on `size × size` grey images.
pub fn image_classes_shape(size: usize, ways: usize) -> FamilyShape {
    FamilyShape {
        input: vec![1, size, size],
        outputs: ways,
        kind: TaskKind::Classification,
    }
}

/// `ways` distinct classes from `pool`, in random order.
pub fn choose_classes(pool: &[usize], ways: usize, rng: &mut Rng) -> Vec<usize> {
    assert!(
        pool.len() >= ways,
        "split has {} classes, cannot draw a {ways}-way task (a split fraction of 0 leaves it empty)",
        pool.len()
    );
    rand::seq::index::sample(rng, pool.len(), ways)
        .into_iter()
        .map(|i| pool[i])
        .collect()
}

/// Assemble an episode class-major. `draw(i, rng, buf)` fills `buf` with `shots + queries`
/// drawings of the task's `i`-th class, the first `shots` for support.
pub fn class_major_episode(
    ways: usize,
    shots: usize,
    queries: usize,
    input_len: usize,
    rng: &mut Rng,
    mut draw: impl FnMut(usize, &mut Rng, &mut [f32]),
) -> Episode {
    let mut sx = Vec::with_capacity(ways * shots * input_len);
    let mut qx = Vec::with_capacity(ways * queries * input_len);
    let mut buf = vec![0f32; (shots + queries) * input_len];
    for i in 0..ways {
        draw(i, rng, &mut buf);
        let (s, q) = buf.split_at(shots * input_len);
        sx.extend_from_slice(s);
        qx.extend_from_slice(q);
    }
    let labels = |k: usize| (0..ways).flat_map(|i| std::iter::repeat_n(i, k)).collect();
    Episode {
        support: Batch {
            n: ways * shots,
            x: sx,
            y: Targets::Classes(labels(shots)),
        },
        query: Batch {
            n: ways * queries,
            x: qx,
            y: Targets::Classes(labels(queries)),
        },
    }
}
