//! Omniglot N-way K-shot classification from the official folder layout
//! (`<root>/images_background|images_evaluation/<Alphabet>/<character>/*.png`).
//!
//! Every drawing is decoded once at load, resized and kept in memory as f32; sampling never
//! touches disk. Rotated classes are not stored: a rotation is a pure index permutation, so it is
//! applied while an episode is assembled, which keeps memory at one copy of the data set.
//!
//! One job per file: `layout` lists the folder tree, `split` assigns characters to
//! train/validation/test by the seeded protocol, `survey` checks both without decoding (`scan`),
//! `image` decodes and resizes the drawings, and `family` holds the loaded data set and draws
//! tasks from it.

mod family;
#[cfg(test)]
mod fixtures;
mod image;
mod layout;
mod split;
mod survey;

use std::path::Path;

use super::{FamilyError, Split};
use crate::experiment::OmniglotSpec;

pub use family::Omniglot;
pub use image::{load_image, resize_area, rotate_into};
pub use survey::{scan, ScanSummary, SplitCount};

fn split_index(split: Split) -> usize {
    match split {
        Split::Train => 0,
        Split::Validation => 1,
        Split::Test => 2,
    }
}

fn rotations(spec: &OmniglotSpec) -> usize {
    if spec.rotations {
        4
    } else {
        1
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FamilyError + '_ {
    move |source| FamilyError::Io {
        path: path.to_path_buf(),
        source,
    }
}
