//! The run's lock: an advisory `flock` on `.lock` in its folder, so two processes never write
//! one run and a listing can tell a live run from a dead one.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::error::RunError;
use super::files;
use super::names::{run_id, LOCK};

/// Take the run's lock, or say which process holds it.
pub(super) fn lock(dir: &Path) -> Result<File, RunError> {
    let path = dir.join(LOCK);
    try_claim(&path)
        .map_err(|e| RunError::io(&path, e))?
        .ok_or_else(|| RunError::StillRunning {
            id: run_id(dir),
            pid: holder(&path),
        })
}

/// Take an exclusive advisory lock on `path` (created if missing, never through a link) and
/// hold it as long as the returned file lives; `None` when another process holds it. The
/// holder writes its pid into the file, so a refusal can name who holds the lock.
pub fn try_claim(path: &Path) -> std::io::Result<Option<File>> {
    let mut file = files::open_lock(path)?;
    if !try_lock(&file) {
        return Ok(None);
    }
    // Only the holder writes, and only after taking the lock; a failure to record the pid
    // (a full disk) costs only the name in a refusal.
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(Some(file))
}

/// The pid the holder of the lock at `path` wrote, if it did.
pub fn holder(path: &Path) -> Option<u32> {
    let mut text = String::new();
    files::open_regular(path)
        .ok()?
        .take(32)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; it only takes an advisory lock.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> bool {
    true
}

/// Is some process (this one included) holding the run's lock?
pub(super) fn locked(dir: &Path) -> bool {
    let Ok(file) = files::open_regular(&dir.join(LOCK)) else {
        return false;
    };
    // A second open file description conflicts with our own lock too.
    !try_lock(&file)
}
