//! Every shipped experiment parses and validates, so the examples never rot.

use std::path::Path;

use metalab::experiment::{load_file, FamilySpec};

#[test]
fn every_shipped_experiment_is_valid() {
    let mut names = vec![];
    for entry in std::fs::read_dir("experiments").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("ron") {
            continue;
        }
        // Sweep files name an experiment and vary it: every variant must validate.
        if metalab::sweep::is_sweep_file(&path) {
            let s = metalab::sweep::load(&path).unwrap_or_else(|err| panic!("{err}"));
            assert!(!s.variants.is_empty(), "{}", path.display());
            continue;
        }
        let e = load_file(&path).unwrap_or_else(|err| panic!("{err}"));
        // Files without data needs must also build their task family.
        if !matches!(e.family, FamilySpec::Omniglot(_)) {
            metalab::tasks::check_family(&e.family, e.seed).unwrap();
        }
        // Round trip: what a run freezes parses back to the same experiment.
        let again = metalab::experiment::parse_str(&e.to_ron(), Path::new("frozen.ron")).unwrap();
        assert_eq!(again, e, "{}", path.display());
        names.push(path.file_name().unwrap().to_string_lossy().to_string());
    }
    names.sort();
    for required in [
        "omniglot-20way-1shot.ron",
        "omniglot-5way-1shot.ron",
        "sinusoid-compare.ron",
        "sinusoid-maml.ron",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "missing {required}: {names:?}"
        );
    }
}

/// RON's messages and type errors, made readable: a space before "in", and a wrong type names
/// the field and the type it takes at the value's line:column, not a bracket hint.
#[test]
fn parse_errors_name_the_field_and_read_as_sentences() {
    let base = std::fs::read_to_string("experiments/sinusoid-maml.ron").unwrap();
    let err = |from: &str, to: &str| {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "{from}");
        metalab::experiment::parse_str(&text, Path::new("x.ron"))
            .unwrap_err()
            .to_string()
    };
    let e = err("meta_batch: 25", "mxeta_batch: 25");
    assert!(e.contains("named `mxeta_batch` in `Train`"), "{e}");
    let e = err("meta_batch: 25", "meta_batch: \"x\"");
    assert!(
        e.contains(
            "the field `train.meta_batch` expects a whole number (an integer), found `\"x\"`"
        ),
        "{e}"
    );
    let line = base
        .lines()
        .position(|l| l.contains("meta_batch: 25"))
        .unwrap()
        + 1;
    assert!(e.starts_with(&format!("x.ron:{line}:")), "{e}");
    assert!(!e.contains("brackets"), "{e}");
    let e = err("shots: 10", "shots: 2.5");
    assert!(e.contains("`family.shots` expects a whole number"), "{e}");
    assert!(e.contains("found `2.5`"), "{e}");
    let e = err("inner_lr: 0.01,", "inner_lr: \"fast\",");
    assert!(e.contains("`train.inner_lr` expects a number"), "{e}");
    let e = err("name: \"maml\"", "name: 3");
    assert!(
        e.contains("`arms[0].name` expects text in double quotes"),
        "{e}"
    );
}

#[test]
fn chance_level_follows_the_evaluation_ways_not_the_training_ways() {
    let e = |path: &str| load_file(Path::new(path)).unwrap_or_else(|err| panic!("{err}"));
    // Trained 60-way, validated and tested 20-way: chance is 1/20.
    assert_eq!(
        e("experiments/omniglot-protonet-60way-augment.ron").eval_ways(),
        Some(20)
    );
    assert_eq!(
        e("experiments/omniglot-5way-1shot.ron").eval_ways(),
        Some(5)
    );
    assert_eq!(e("experiments/sinusoid-maml.ron").eval_ways(), None);
}
