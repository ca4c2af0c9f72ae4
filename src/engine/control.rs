//! Per-arm cooperative control (pause, resume, stop), shared by the handle the front end holds
//! and the arm's thread, which checks it once per meta-iteration.

use std::sync::atomic::{AtomicBool, Ordering};

use super::messages::Command;

/// Per-arm cooperative control, checked once per meta-iteration.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    paused: AtomicBool,
}

impl Control {
    pub fn apply(&self, cmd: Command) {
        match cmd {
            Command::Pause => self.paused.store(true, Ordering::SeqCst),
            Command::Resume => self.paused.store(false, Ordering::SeqCst),
            Command::Stop => self.stop.store(true, Ordering::SeqCst),
        }
    }
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }
}
