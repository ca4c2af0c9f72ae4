//! Procedurally generated image classes. (Being written.)
use super::*;
use crate::experiment::SyntheticSpec;

pub struct Synthetic;

impl Synthetic {
    pub fn new(_spec: SyntheticSpec, _seed: u64) -> Result<Synthetic, FamilyError> {
        Err(FamilyError::Other("synthetic family not built yet".into()))
    }
}

impl TaskFamily for Synthetic {
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
