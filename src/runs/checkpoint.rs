//! Checkpoints in safetensors: named f32 tensors plus the [`ResumeState`] (iteration, RNG
//! position, the partial metrics window) in the file's string metadata, enough to continue a
//! run exactly. The metadata keys are those of `metalab-checkpoint-1`, so checkpoints written
//! before the state was typed still resume.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{atomic, RunError};
use crate::metrics::TrainWindow;

const FORMAT: &str = "metalab-checkpoint-1";

/// Where the training loop was when the checkpoint was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResumeState {
    /// Completed meta-iterations.
    pub iteration: usize,
    /// Position of the run's task-stream RNG (ChaCha word position).
    pub rng_word_pos: u128,
    pub window: TrainWindow,
    /// Training seconds so far.
    pub seconds: f64,
}

impl ResumeState {
    fn to_meta(self) -> BTreeMap<String, String> {
        let w = self.window;
        // Floats as their exact decimal round-trip form, so resume continues bit-for-bit.
        [
            ("iteration", self.iteration.to_string()),
            ("rng_word_pos", self.rng_word_pos.to_string()),
            ("window_loss", format!("{:?}", w.loss)),
            ("window_acc", format!("{:?}", w.acc)),
            ("window_count", w.count.to_string()),
            ("window_has_acc", w.has_acc.to_string()),
            ("seconds", format!("{:?}", self.seconds)),
            ("format", FORMAT.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn from_meta(meta: &BTreeMap<String, String>, path: &Path) -> Result<ResumeState, RunError> {
        fn get<T: std::str::FromStr>(
            meta: &BTreeMap<String, String>,
            key: &str,
            path: &Path,
        ) -> Result<T, RunError> {
            meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| {
                RunError::Corrupt(
                    path.to_path_buf(),
                    format!("checkpoint metadata has no valid `{key}`"),
                )
            })
        }
        if let Some(f) = meta.get("format").filter(|f| f.as_str() != FORMAT) {
            return Err(RunError::Corrupt(
                path.to_path_buf(),
                format!("checkpoint format `{f}` is not {FORMAT}, which this metalab reads"),
            ));
        }
        Ok(ResumeState {
            iteration: get(meta, "iteration", path)?,
            rng_word_pos: get(meta, "rng_word_pos", path)?,
            window: TrainWindow {
                loss: get(meta, "window_loss", path)?,
                acc: get(meta, "window_acc", path)?,
                count: get(meta, "window_count", path)?,
                has_acc: get(meta, "window_has_acc", path)?,
            },
            seconds: get(meta, "seconds", path)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The algorithm's state: parameters and optimizer moments, by name.
    pub tensors: BTreeMap<String, Vec<f32>>,
    pub resume: ResumeState,
}

impl Checkpoint {
    pub fn save(&self, path: &Path) -> Result<(), RunError> {
        let bytes: Vec<(String, Vec<u8>, usize)> = self
            .tensors
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    v.len(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(k, b, n)| Ok((k.as_str(), TensorView::new(Dtype::F32, vec![*n], b)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| RunError::Corrupt(path.to_path_buf(), e.to_string()))?;
        let meta: HashMap<String, String> = self.resume.to_meta().into_iter().collect();
        let data = safetensors::serialize(views, &Some(meta))
            .map_err(|e| RunError::Corrupt(path.to_path_buf(), e.to_string()))?;
        atomic::write(path, &data).map_err(|e| RunError::io(path, e))
    }

    pub fn load(path: &Path) -> Result<Checkpoint, RunError> {
        let data = std::fs::read(path).map_err(|e| RunError::io(path, e))?;
        let corrupt =
            |e: safetensors::SafeTensorError| RunError::Corrupt(path.to_path_buf(), e.to_string());
        let (_, header) = SafeTensors::read_metadata(&data).map_err(corrupt)?;
        let st = SafeTensors::deserialize(&data).map_err(corrupt)?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(RunError::Corrupt(
                    path.to_path_buf(),
                    format!("tensor {name} is not f32"),
                ));
            }
            let v = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(name, v);
        }
        let meta: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Checkpoint {
            tensors,
            resume: ResumeState::from_meta(&meta, path)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut c = Checkpoint {
            tensors: BTreeMap::new(),
            resume: ResumeState {
                iteration: 40,
                rng_word_pos: u64::MAX as u128 + 3,
                window: TrainWindow {
                    loss: 0.1 + 0.2,
                    acc: 1.0 / 3.0,
                    count: 7,
                    has_acc: true,
                },
                seconds: 12.345678901234567,
            },
        };
        c.tensors
            .insert("params".into(), vec![1.5, -0.0, f32::MIN_POSITIVE, 3.0e7]);
        c.tensors.insert("adam.t".into(), vec![12.0]);
        c.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn a_missing_resume_field_is_a_corrupt_checkpoint_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut meta = ResumeState::default().to_meta();
        meta.remove("rng_word_pos");
        let data = safetensors::serialize(
            Vec::<(&str, TensorView)>::new(),
            &Some(meta.into_iter().collect()),
        )
        .unwrap();
        std::fs::write(&path, data).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("rng_word_pos"), "{err}");
    }
}
