//! The experiment editor: a tui-textarea buffer tied to a file, validated as you type.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::style::{Modifier, Style};
use tui_textarea::{CursorMove, TextArea};

use crate::experiment::parse_str;

/// Validate this long after the last keystroke: parsing on every key would flicker the error.
pub const VALIDATE_AFTER: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    Valid {
        summary: String,
    },
    Invalid {
        message: String,
        position: Option<(usize, usize)>,
    },
}

pub struct Editor {
    pub path: PathBuf,
    pub area: TextArea<'static>,
    /// What the file held when last loaded or saved: "modified" means the buffer differs from it.
    pub disk_text: String,
    pub validation: Option<Validation>,
    /// When the buffer last changed without being validated since.
    pub edited_at: Option<Instant>,
    /// The workbench wrote the file for this edit (`n`, `d`) and the user has not saved it:
    /// leaving without saving removes it.
    pub created: bool,
}

/// Line endings and a trailing newline are not edits.
pub fn normalize(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n")
}

impl Editor {
    pub fn open(path: PathBuf, text: &str) -> Editor {
        let mut e = Editor {
            path,
            area: TextArea::default(),
            disk_text: normalize(text),
            validation: None,
            edited_at: None,
            created: false,
        };
        e.set_buffer(text);
        e.validate();
        e
    }

    fn set_buffer(&mut self, text: &str) {
        let (row, col) = self.area.cursor();
        let mut area = TextArea::new(text.lines().map(String::from).collect());
        area.set_line_number_style(Style::default().add_modifier(Modifier::DIM));
        area.set_cursor_line_style(Style::default());
        area.set_tab_length(4);
        area.move_cursor(CursorMove::Jump(row as u16, col as u16));
        self.area = area;
    }

    pub fn text(&self) -> String {
        self.area.lines().join("\n")
    }

    pub fn modified(&self) -> bool {
        self.text() != self.disk_text
    }

    /// Replace the buffer with what is on disk (the user chose theirs, or had no edits).
    pub fn reload(&mut self, disk: &str) {
        self.disk_text = normalize(disk);
        self.set_buffer(disk);
        self.validate();
    }

    pub fn validate(&mut self) {
        self.edited_at = None;
        let shown = super::catalog::display_path(&self.path);
        self.validation = Some(if super::catalog::is_sweep_file(&self.path) {
            // The sweep's own syntax and fields; its variants are checked against the base
            // experiment when the list reads the saved file (that reads another file).
            match crate::sweep::spec::parse_spec(&self.text(), &shown) {
                Ok(spec) => Validation::Valid {
                    summary: format!(
                        "valid sweep — of {}, {} {}",
                        spec.experiment.display(),
                        spec.axes.len(),
                        if spec.axes.len() == 1 { "axis" } else { "axes" }
                    ),
                },
                Err(e) => Validation::Invalid {
                    message: e.to_string(),
                    position: e.position(),
                },
            }
        } else {
            match parse_str(&self.text(), &shown) {
                Ok(exp) => Validation::Valid {
                    summary: format!(
                        "valid — {}, {}, {}",
                        super::catalog::family_label(&exp.family),
                        super::text::plural(exp.arms.len(), "arm"),
                        super::text::plural(exp.train.iterations, "iteration")
                    ),
                },
                Err(e) => Validation::Invalid {
                    message: e.to_string(),
                    position: e.position(),
                },
            }
        });
    }

    pub fn error_position(&self) -> Option<(usize, usize)> {
        match &self.validation {
            Some(Validation::Invalid { position, .. }) => *position,
            _ => None,
        }
    }

    /// Put the cursor on the error (1-based line/column from the parser).
    pub fn jump_to_error(&mut self) -> bool {
        let Some((line, col)) = self.error_position() else {
            return false;
        };
        let row = line.saturating_sub(1).min(u16::MAX as usize) as u16;
        let col = col.saturating_sub(1).min(u16::MAX as usize) as u16;
        self.area.move_cursor(CursorMove::Jump(row, col));
        true
    }

    pub fn save(&mut self) -> std::io::Result<()> {
        let text = self.text();
        super::catalog::save_atomic(&self.path, &format!("{text}\n"))?;
        self.disk_text = text;
        self.created = false;
        Ok(())
    }

    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
