//! Checkpoints in safetensors: named f32 tensors plus the [`ResumeState`] (iteration, RNG
//! position, the partial metrics window) in the file's string metadata, enough to continue a
//! run exactly.
//!
//! `metalab-checkpoint-2` keeps one checksum over everything a resume reads: the tensors and
//! every metadata entry. A changed iteration or RNG position would otherwise resume, with exit
//! status 0, to a different result. `metalab-checkpoint-1` files (same keys, a checksum over the
//! tensors only) still load: their tensors are checked as before, and their resume state is
//! what it always was, unchecked; nothing claims more for them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::atomic;
use super::error::RunError;
use crate::metrics::TrainWindow;

const FORMAT: &str = "metalab-checkpoint-2";
/// The format before the checksum covered the resume state.
const FORMAT_1: &str = "metalab-checkpoint-1";

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
        if let Some(f) = meta
            .get("format")
            .filter(|f| f.as_str() != FORMAT && f.as_str() != FORMAT_1)
        {
            return Err(RunError::Corrupt(
                path.to_path_buf(),
                format!("checkpoint format `{f}` is not {FORMAT} (or {FORMAT_1}), which this metalab reads"),
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
        let state = self.resume.to_meta();
        let sum = checksum(&self.tensors, Some(&state));
        let mut meta: HashMap<String, String> = state.into_iter().collect();
        meta.insert(CHECKSUM.into(), sum);
        let data = safetensors::serialize(views, &Some(meta))
            .map_err(|e| RunError::Corrupt(path.to_path_buf(), e.to_string()))?;
        atomic::write(path, &data).map_err(|e| RunError::io(path, e))
    }

    pub fn load(path: &Path) -> Result<Checkpoint, RunError> {
        let mut data = vec![];
        super::files::open_regular(path)
            .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut data))
            .map_err(|e| RunError::io(path, e))?;
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
        if meta.get("format").map(String::as_str) == Some(FORMAT) {
            let mut state = meta.clone();
            let Some(stored) = state.remove(CHECKSUM) else {
                return Err(RunError::Corrupt(
                    path.to_path_buf(),
                    format!("a {FORMAT} checkpoint without its `{CHECKSUM}`: the file was damaged or edited after it was written"),
                ));
            };
            let found = checksum(&tensors, Some(&state));
            if stored != found {
                return Err(RunError::Corrupt(
                    path.to_path_buf(),
                    format!("the checkpoint's tensors and resume state (iteration, RNG position, …) do not match its checksum ({found}, stored {stored}): the file was damaged or edited after it was written"),
                ));
            }
        } else if meta.contains_key(CHECKSUM) {
            // Format 2's checksum under another format's name: the format is what changed,
            // and reading the file as format 1 would leave its resume state unchecked.
            return Err(RunError::Corrupt(
                path.to_path_buf(),
                format!("the checkpoint carries a {FORMAT} checksum but says it is another format: the file was damaged or edited after it was written"),
            ));
        } else if let Some(stored) = meta.get(CHECKSUM_1) {
            // metalab-checkpoint-1: the tensors only. Those written before any checksum have
            // none; they still load.
            let found = checksum(&tensors, None);
            if stored != &found {
                return Err(RunError::Corrupt(
                    path.to_path_buf(),
                    format!("the checkpoint's tensors do not match its checksum ({found}, stored {stored}): the file was damaged after it was written"),
                ));
            }
        }
        Ok(Checkpoint {
            tensors,
            resume: ResumeState::from_meta(&meta, path)?,
        })
    }
}

/// Metadata key of the checksum over tensors and resume state (format 2). A damaged JSON header
/// mostly fails to parse, but a changed digit parses, and the tensor bytes after the header
/// would load silently: both are covered.
const CHECKSUM: &str = "fnv1a64";
/// Format 1's key: the tensors only.
const CHECKSUM_1: &str = "tensors_fnv1a64";

/// FNV-1a (64-bit) over every tensor's name and little-endian bytes, in name order, then (format
/// 2) every metadata key and value, in key order: stable across platforms and Rust versions,
/// unlike `std`'s hasher, and fast enough for megabytes. Against damage, not against someone who
/// recomputes it.
fn checksum(
    tensors: &BTreeMap<String, Vec<f32>>,
    state: Option<&BTreeMap<String, String>>,
) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for (name, values) in tensors {
        name.bytes().for_each(&mut eat);
        eat(0);
        for v in values {
            v.to_le_bytes().into_iter().for_each(&mut eat);
        }
    }
    for (k, v) in state.into_iter().flatten() {
        k.bytes().for_each(&mut eat);
        eat(0);
        v.bytes().for_each(&mut eat);
        eat(0);
    }
    format!("{h:016x}")
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
    fn damage_past_the_header_is_caught_by_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut c = Checkpoint {
            tensors: BTreeMap::new(),
            resume: ResumeState::default(),
        };
        c.tensors.insert("params".into(), vec![1.0; 64]);
        c.save(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = Checkpoint::load(&path).unwrap_err();
        assert!(
            matches!(&err, RunError::Corrupt(_, why) if why.contains("checksum")),
            "{err}"
        );
        assert!(err.to_string().contains("fix:"), "{err}");
    }

    #[test]
    fn a_missing_resume_field_is_a_corrupt_checkpoint_named_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        // A format 1 checkpoint (no checksum over the state) with a key missing.
        let mut meta = ResumeState::default().to_meta();
        meta.insert("format".into(), FORMAT_1.into());
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

    fn saved(dir: &Path) -> (std::path::PathBuf, Checkpoint) {
        let path = dir.join("c.safetensors");
        let mut c = Checkpoint {
            tensors: BTreeMap::new(),
            resume: ResumeState {
                iteration: 418,
                rng_word_pos: 123_456,
                ..ResumeState::default()
            },
        };
        c.tensors.insert("params".into(), vec![0.5; 16]);
        c.save(&path).unwrap();
        (path, c)
    }

    /// Replace `from` by `to` (same length) in the file's JSON header.
    fn edit(path: &Path, from: &str, to: &str) {
        let bytes = std::fs::read(path).unwrap();
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap_or_else(|| panic!("{from} not in the header"));
        let mut b = bytes.clone();
        b[at..at + from.len()].copy_from_slice(to.as_bytes());
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn an_edited_iteration_or_rng_position_is_caught_by_the_checksum() {
        for (from, to) in [("\"418\"", "\"408\""), ("\"123456\"", "\"123457\"")] {
            let dir = tempfile::tempdir().unwrap();
            let (path, _) = saved(dir.path());
            edit(&path, from, to);
            let err = Checkpoint::load(&path).unwrap_err();
            assert!(
                matches!(&err, RunError::Corrupt(_, why) if why.contains("resume state")),
                "{from}: {err}"
            );
        }
    }

    #[test]
    fn a_format_1_checkpoint_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut tensors = BTreeMap::new();
        tensors.insert("params".to_string(), vec![2.0f32; 4]);
        let resume = ResumeState {
            iteration: 40,
            ..ResumeState::default()
        };
        let mut meta = resume.to_meta();
        meta.insert("format".into(), FORMAT_1.into());
        meta.insert(CHECKSUM_1.into(), checksum(&tensors, None));
        let bytes: Vec<u8> = tensors["params"]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F32, vec![4], &bytes).unwrap();
        let data =
            safetensors::serialize(vec![("params", view)], &Some(meta.into_iter().collect()))
                .unwrap();
        std::fs::write(&path, data).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.resume.iteration, 40);
        assert_eq!(back.tensors, tensors);
    }
}
