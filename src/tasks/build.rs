//! Building the family an experiment describes, and checking that it can be built: the one place
//! that knows every family, above them all.

use super::{mixed, omniglot, sinusoid, synthetic, FamilyError, Progress, TaskFamily};
use crate::experiment::FamilySpec;

/// Build the family an experiment describes. `seed` fixes any class split.
pub fn build_family(spec: &FamilySpec, seed: u64) -> Result<Box<dyn TaskFamily>, FamilyError> {
    build_family_reporting(spec, seed, &|_, _| {})
}

/// [`build_family`], telling `progress` how loading goes (families held in files only).
pub fn build_family_reporting(
    spec: &FamilySpec,
    seed: u64,
    progress: &Progress<'_>,
) -> Result<Box<dyn TaskFamily>, FamilyError> {
    Ok(match spec {
        FamilySpec::Sinusoid(s) => Box::new(sinusoid::Sinusoid::new(s.clone())),
        FamilySpec::Synthetic(s) => Box::new(synthetic::Synthetic::new(s.clone(), seed)?),
        FamilySpec::Omniglot(o) => Box::new(omniglot::Omniglot::load_reporting(o, seed, progress)?),
        FamilySpec::Mixed(m) => Box::new(mixed::Mixed::new(m.clone(), seed)),
    })
}

/// Check that a family can be built, exactly as a run builds it (every image decoded), so that
/// whatever the run would refuse, `metalab check` refuses first; returns a one-line summary.
pub fn check_family(spec: &FamilySpec, seed: u64) -> Result<String, FamilyError> {
    match spec {
        FamilySpec::Omniglot(o) => {
            let summary = omniglot::scan(o, seed)?;
            omniglot::Omniglot::load(o, seed)?;
            Ok(summary.to_string())
        }
        _ => build_family(spec, seed).map(|f| f.describe()),
    }
}

/// The folder checks alone (no image decoded): fast enough for the workbench's file list.
pub fn check_folders(spec: &FamilySpec, seed: u64) -> Result<(), FamilyError> {
    match spec {
        FamilySpec::Omniglot(o) => omniglot::scan(o, seed).map(drop),
        _ => Ok(()),
    }
}
