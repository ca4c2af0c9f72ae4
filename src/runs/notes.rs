//! `notes.json`: what the researcher wrote about a run (a note and tags), kept in the run's
//! folder next to what the engine wrote, so it travels with the run. Written atomically; the
//! engine never reads or writes it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::atomic;
use super::error::RunError;
use super::names::NOTES;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNotes {
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl RunNotes {
    /// Split what the user typed: `#word`s are tags, the rest is the note.
    /// `"lr too high #baseline #redo"` → note `lr too high`, tags `baseline`, `redo`.
    pub fn parse(text: &str) -> RunNotes {
        let mut tags: Vec<String> = vec![];
        let mut words = vec![];
        for w in text.split_whitespace() {
            match w.strip_prefix('#').filter(|t| !t.is_empty()) {
                Some(t) if !tags.iter().any(|x| x == t) => tags.push(t.to_string()),
                Some(_) => {}
                None => words.push(w),
            }
        }
        RunNotes {
            note: words.join(" "),
            tags,
        }
    }

    /// The text [`parse`](Self::parse) reads back to the same notes: what the edit box starts with.
    pub fn to_input(&self) -> String {
        let mut parts: Vec<String> = vec![];
        if !self.note.is_empty() {
            parts.push(self.note.clone());
        }
        parts.extend(self.tags.iter().map(|t| format!("#{t}")));
        parts.join(" ")
    }

    pub fn is_empty(&self) -> bool {
        self.note.is_empty() && self.tags.is_empty()
    }
}

/// The run's notes; none when it has no `notes.json` or the file does not parse (notes are a
/// convenience: a damaged one must not hide the run).
pub fn load_notes(dir: &Path) -> RunNotes {
    super::files::read_text(&dir.join(NOTES))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Replace the run's notes; empty notes remove the file.
pub fn save_notes(dir: &Path, notes: &RunNotes) -> Result<(), RunError> {
    let path = dir.join(NOTES);
    if notes.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RunError::io(&path, e)),
            _ => Ok(()),
        };
    }
    let text = serde_json::to_string_pretty(notes).expect("notes serialize");
    atomic::write(&path, text.as_bytes()).map_err(|e| RunError::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_hash_words_and_round_trip() {
        let n = RunNotes::parse("  lr too high #baseline #redo #baseline # ");
        assert_eq!(n.note, "lr too high #");
        assert_eq!(n.tags, ["baseline", "redo"]);
        assert_eq!(RunNotes::parse(&n.to_input()), n);
    }

    #[test]
    fn saved_notes_load_back_and_empty_removes_the_file() {
        let d = tempfile::tempdir().unwrap();
        let n = RunNotes::parse("check seed #x");
        save_notes(d.path(), &n).unwrap();
        assert_eq!(load_notes(d.path()), n);
        save_notes(d.path(), &RunNotes::default()).unwrap();
        assert!(!d.path().join(NOTES).exists());
        assert_eq!(load_notes(d.path()), RunNotes::default());
    }
}
