//! The experiment file: one `.ron` file describes one experiment.
//!
//! Every optional field has a default; unknown fields are rejected so a typo never silently
//! falls back to a default.

pub mod limits;
mod load;
pub mod locate;
mod schema;
mod validate;

pub use load::{load_file, parse_str, read_text, ExperimentError};
pub use locate::find_field as field_position;
pub use locate::locate;
pub use schema::*;
pub use validate::{validate, ValidationError};
