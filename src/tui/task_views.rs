//! The task views' own state: what the embedding scatter is coloured by, which affinity
//! measure the heatmap shows, and where q/Esc return. The arm is the monitor's `arm_sel`.

use super::screen::Screen;
pub use crate::export::task_figures::Measure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskViews {
    /// Index into the record's colourings (`EmbeddingRecord::colourings`), cycled by `p`;
    /// taken modulo their number, so it survives a switch to an arm with fewer.
    pub colour: usize,
    pub measure: Measure,
    /// The screen they were opened from, where q/Esc return.
    pub from: Screen,
}

impl Default for TaskViews {
    fn default() -> Self {
        TaskViews {
            colour: 0,
            measure: Measure::Cosine,
            from: Screen::Monitor,
        }
    }
}
