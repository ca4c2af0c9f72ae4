//! What the runtime does with every message: `update`, then the disk work it asked for (short of
//! the engine, whose effects stay in `app.effects`). Its own module so the runtime below `tui`
//! can call it without importing the module that owns the runtime.

use super::app::{App, Msg};
use super::{actions, update};

/// `update`, then the disk work it asked for. Tests drive the app through this.
pub fn dispatch(app: &mut App, msg: Msg) {
    update::update(app, msg);
    actions::perform_all(app);
}
