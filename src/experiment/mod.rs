//! The experiment file: one `.ron` file describes one experiment.
//!
//! Every optional field has a default; unknown fields are rejected so a typo never silently
//! falls back to a default.

mod load;
mod schema;
mod validate;

pub use load::{load_file, parse_str, ExperimentError};
pub use schema::*;
pub use validate::{find_field as field_position, validate, ValidationError};
