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
