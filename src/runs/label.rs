//! Names for curves that tell runs apart. A rerun and its original are both
//! `sinusoid-maml/maml`; merged into one legend, table or CSV they become one series. Every view
//! and export names its runs through [`unique`], so a run has the same name in the legend, the
//! panel titles, the results table, the CSV's `label` column and the plot files.

/// What one curve is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub experiment: String,
    pub arm: String,
    /// The run folder's name (its id); `None` for an arm not yet on disk.
    pub run: Option<String>,
    /// The experiment's seed, where known: runs of one arm that differ in seed are named by
    /// it (`maml s2`), which says what tells them apart, instead of by random hex.
    pub seed: Option<u64>,
}

impl Subject {
    pub fn new(experiment: &str, arm: &str, run: Option<&str>) -> Subject {
        Subject {
            experiment: experiment.into(),
            arm: arm.into(),
            run: run.map(Into::into),
            seed: None,
        }
    }

    pub fn with_seed(mut self, seed: Option<u64>) -> Subject {
        self.seed = seed;
        self
    }
}

/// A short, stable handle for a run id: the random hex of `<stamp>-<exp>-<arm>-<host><hex4>`
/// (and the `-N` a same-second clash adds), as `#3fa2` or `#3fa2-2`. A folder named some other
/// way (copied, renamed) is its own handle.
pub fn short_id(id: &str) -> String {
    let (body, n) = match id.rsplit_once('-') {
        Some((b, n)) if !n.is_empty() && n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit()) => {
            (b, Some(n))
        }
        _ => (id, None),
    };
    let last = body.rsplit('-').next().unwrap_or(body);
    let is_generated = body.len() > 18
        && body.as_bytes()[..18]
            .iter()
            .enumerate()
            .all(|(i, c)| match i {
                4 | 7 | 10 | 17 => *c == b'-',
                _ => c.is_ascii_digit(),
            });
    if !is_generated || last.len() < 4 || !last.is_char_boundary(last.len() - 4) {
        return id.to_string();
    }
    let hex = &last[last.len() - 4..];
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return id.to_string();
    }
    match n {
        Some(n) => format!("#{hex}-{n}"),
        None => format!("#{hex}"),
    }
}

/// One label per subject, all different where the subjects differ: `arm` when every subject
/// is of one experiment (the view's title names it), `experiment/arm` otherwise, and the run's
/// short id appended wherever two would read the same (the full id if even those collide).
pub fn unique(subjects: &[Subject]) -> Vec<String> {
    let one_experiment = subjects
        .windows(2)
        .all(|w| w[0].experiment == w[1].experiment);
    let base: Vec<String> = subjects
        .iter()
        .map(|s| {
            if one_experiment {
                s.arm.clone()
            } else {
                format!("{}/{}", s.experiment, s.arm)
            }
        })
        .collect();
    let mut out = base.clone();
    for (i, s) in subjects.iter().enumerate() {
        let clashing: Vec<&Subject> = subjects
            .iter()
            .zip(&base)
            .filter(|(_, b)| **b == base[i])
            .map(|(s, _)| s)
            .collect();
        if clashing.len() < 2 {
            continue;
        }
        // Told apart by seed when every clashing run has its own.
        let mut seeds: Vec<Option<u64>> = clashing.iter().map(|s| s.seed).collect();
        seeds.sort();
        seeds.dedup();
        if let (true, Some(seed)) = (
            seeds.len() == clashing.len() && seeds.iter().all(Option::is_some),
            s.seed,
        ) {
            out[i] = format!("{} s{seed}", base[i]);
        } else if let Some(run) = &s.run {
            out[i] = format!("{} {}", base[i], short_id(run));
        }
    }
    // Two runs with the same short id (or a run and a live arm of one name): the full id.
    let snapshot = out.clone();
    for (i, s) in subjects.iter().enumerate() {
        let clashes = snapshot.iter().filter(|l| **l == snapshot[i]).count() > 1;
        if let (true, Some(run)) = (clashes, &s.run) {
            out[i] = format!("{} {run}", base[i]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "2026-12-02-003512-sinusoid-maml-maml-box3fa2";
    const B: &str = "2026-12-02-004001-sinusoid-maml-maml-box91c0";

    #[test]
    fn short_ids_come_from_the_random_tag() {
        assert_eq!(short_id(A), "#3fa2");
        assert_eq!(short_id(&format!("{A}-2")), "#3fa2-2");
        assert_eq!(short_id("victim-backup"), "victim-backup");
        assert_eq!(
            short_id("2026-12-02-003512-x-y-zzzz"),
            "2026-12-02-003512-x-y-zzzz"
        );
    }

    #[test]
    fn seeds_of_one_arm_are_named_by_their_seed() {
        let s = [
            Subject::new("sinusoid-seeds", "maml", Some(A)).with_seed(Some(1)),
            Subject::new("sinusoid-seeds", "maml", Some(B)).with_seed(Some(2)),
            Subject::new("sinusoid-seeds", "fomaml", Some(B)).with_seed(Some(1)),
        ];
        assert_eq!(unique(&s), ["maml s1", "maml s2", "fomaml"]);
        // A rerun of the same seed is told apart by its id, not its (shared) seed.
        let s = [
            Subject::new("sinusoid-seeds", "maml", Some(A)).with_seed(Some(1)),
            Subject::new("sinusoid-seeds", "maml", Some(B)).with_seed(Some(1)),
        ];
        assert_eq!(unique(&s), ["maml #3fa2", "maml #91c0"]);
    }

    #[test]
    fn a_rerun_and_its_original_get_different_labels() {
        let s = [
            Subject::new("sinusoid-maml", "maml", Some(A)),
            Subject::new("sinusoid-maml", "maml", Some(B)),
            Subject::new("sinusoid-maml", "fomaml", Some(B)),
        ];
        assert_eq!(unique(&s), ["maml #3fa2", "maml #91c0", "fomaml"]);
    }

    #[test]
    fn experiments_are_named_when_they_differ() {
        let s = [
            Subject::new("sine", "maml", Some(A)),
            Subject::new("omniglot", "maml", Some(B)),
        ];
        assert_eq!(unique(&s), ["sine/maml", "omniglot/maml"]);
    }

    #[test]
    fn same_short_id_falls_back_to_the_full_id() {
        let other = "2026-12-03-101010-sinusoid-maml-maml-cpu3fa2";
        let s = [
            Subject::new("e", "maml", Some(A)),
            Subject::new("e", "maml", Some(other)),
        ];
        let l = unique(&s);
        assert_eq!(l, [format!("maml {A}"), format!("maml {other}")]);
    }
}
