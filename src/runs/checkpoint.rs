//! Checkpoints in safetensors: named f32 tensors plus string metadata (iteration, RNG position,
//! the partial metrics window), enough to continue a run exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{atomic, RunError};

#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, Vec<f32>>,
    pub meta: BTreeMap<String, String>,
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
        let meta: HashMap<String, String> = self.meta.clone().into_iter().collect();
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
        let meta = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Checkpoint { tensors, meta })
    }

    pub fn meta_parse<T: std::str::FromStr>(&self, key: &str, path: &Path) -> Result<T, RunError> {
        self.meta
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                RunError::Corrupt(
                    path.to_path_buf(),
                    format!("checkpoint metadata has no valid `{key}`"),
                )
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
            meta: BTreeMap::new(),
        };
        c.tensors
            .insert("params".into(), vec![1.5, -0.0, f32::MIN_POSITIVE, 3.0e7]);
        c.tensors.insert("adam.t".into(), vec![12.0]);
        c.meta.insert("iteration".into(), "40".into());
        c.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.meta_parse::<usize>("iteration", &path).unwrap(), 40);
    }
}
