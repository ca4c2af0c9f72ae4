//! Process signals: termination requests (SIGINT, SIGTERM, SIGHUP) and closed pipes.
//!
//! Schedulers (Slurm, Kubernetes) send SIGTERM before they kill a job, and closing a terminal
//! sends SIGHUP: both must get the same orderly stop as Ctrl-C — a checkpoint headless, a
//! restored terminal in the workbench. `ctrlc` with its `termination` feature delivers all three
//! to one handler on its own thread (not in signal context), so the handler may lock and print.

/// Signals closer together than this are one notice delivered twice: GNU `timeout`,
/// `kill -TERM -PGID` and Slurm signal a process and its group, so one notice arrives twice
/// within microseconds; only a repeat a person makes counts as a second one.
pub const SAME_SIGNAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Run `handler` on every SIGINT, SIGTERM and SIGHUP. A SIGHUP that was ignored when the
/// process started (`nohup metalab run …`) stays ignored: the user asked to outlive the terminal.
pub fn on_termination(handler: impl FnMut() + Send + 'static) -> Result<(), ctrlc::Error> {
    let hup_ignored = sighup_ignored();
    ctrlc::set_handler(handler)?;
    #[cfg(unix)]
    if hup_ignored {
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn sighup_ignored() -> bool {
    false
}

#[cfg(unix)]
fn sighup_ignored() -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Let a closed pipe end the process quietly, as it does `cat` or `ls`: Rust ignores SIGPIPE,
/// so `metalab runs | head -1` would otherwise panic in `println!` ("Broken pipe"). For
/// commands that only print; training commands keep SIGPIPE ignored and print without
/// panicking, so a closed pipe never kills a run before its checkpoint.
pub fn die_quietly_on_closed_pipe() {
    // SAFETY: restoring a signal's default disposition has no preconditions.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
