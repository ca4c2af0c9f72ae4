//! Omniglot N-way K-shot from the official folder layout. (Being written.)
use super::*;
use crate::experiment::OmniglotSpec;

pub struct Omniglot;

impl Omniglot {
    pub fn load(spec: &OmniglotSpec, _seed: u64) -> Result<Omniglot, FamilyError> {
        Err(FamilyError::MissingRoot {
            path: spec.root.clone(),
        })
    }
}

impl TaskFamily for Omniglot {
    fn shape(&self) -> FamilyShape {
        unreachable!()
    }
    fn sample_task(&self, _split: Split, _rng: &mut Rng) -> Task {
        unreachable!()
    }
    fn sample_episode(&self, _task: &Task, _rng: &mut Rng) -> Episode {
        unreachable!()
    }
    fn describe(&self) -> String {
        unreachable!()
    }
}

/// Placeholder until the loader lands.
pub fn scan(spec: &OmniglotSpec, _seed: u64) -> Result<String, FamilyError> {
    Err(FamilyError::MissingRoot {
        path: spec.root.clone(),
    })
}
