//! A run's task-affinity record (issue 21): `affinity.json` (what the workbench and `metalab
//! export` read back) and `affinity.csv` (long format), rewritten at every evaluation.

use std::path::Path;

use super::error::RunError;
use super::names::{AFFINITY, AFFINITY_CSV};
use super::{atomic, files, RunDir};
use crate::algo::affinity::AffinityRecord;

impl RunDir {
    pub fn write_affinity(&self, record: &AffinityRecord) -> Result<(), RunError> {
        let path = self.dir.join(AFFINITY);
        let text = serde_json::to_string(record).expect("affinity serializes");
        atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))?;
        let csv = self.dir.join(AFFINITY_CSV);
        atomic::write(&csv, record.to_csv().as_bytes()).map_err(|e| RunError::io(&csv, e))
    }
}

/// The affinity record of the run in `dir`, if it measured one.
pub fn load_affinity(dir: &Path) -> Option<AffinityRecord> {
    files::read_text(&dir.join(AFFINITY))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}
