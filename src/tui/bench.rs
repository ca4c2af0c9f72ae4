//! The workbench's own benchmark: what drawing a long run costs.

use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::fixtures::live_app;
use super::view;

/// Mean time to render a `points`-iteration run (both arms, all panels) at 120×40.
/// For `metalab bench`: series are bounded, so this should not grow with `points`.
pub fn frame_time(points: usize, frames: usize) -> Duration {
    let app = live_app(Path::new("/nonexistent-metalab-bench"), points, false);
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    let frames = frames.max(1);
    let start = Instant::now();
    for _ in 0..frames {
        term.draw(|f| view::render(&app, f)).expect("draw");
    }
    start.elapsed() / frames as u32
}
