//! Terminal hygiene: raw mode and the alternate screen are undone on every exit path —
//! normal return, `?` errors (Drop) and panics (hook, which runs before unwinding drops) —
//! and the terminal's input and liveness, watched off the UI thread.

use std::io::{stdout, Stdout};

use std::sync::mpsc::Sender;
use std::time::Instant;

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use super::app::Msg;
use super::runtime::Wake;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
pub struct TerminalGuard {
    _private: (),
}

/// Leave raw mode and the alternate screen, stop mouse reporting, show the cursor.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl TerminalGuard {
    /// Raw mode, the alternate screen and mouse reporting, undone when the guard drops.
    pub fn enter() -> std::io::Result<(TerminalGuard, Term)> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Restore first, or the panic message is lost on the alternate screen.
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        if let Err(e) = execute!(stdout(), EnterAlternateScreen, EnableMouseCapture) {
            restore();
            return Err(e);
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout())).inspect_err(|_| restore())?;
        Ok((TerminalGuard { _private: () }, terminal))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Read the terminal's input on a thread of its own and send it to the loop, stamped with when
/// it was read. A failed read means the terminal is gone. Ends when the loop is gone.
pub fn spawn_input(tx: Sender<Wake>) {
    let _ = std::thread::Builder::new()
        .name("metalab-input".into())
        .spawn(move || loop {
            let wake = match event::read() {
                Ok(ev) => match ev {
                    Event::Key(k) => Wake::Input(Msg::Key(k), Instant::now()),
                    Event::Mouse(m) => Wake::Input(Msg::Mouse(m), Instant::now()),
                    Event::Resize(w, h) => Wake::Input(Msg::Resize(w, h), Instant::now()),
                    _ => continue,
                },
                Err(e) => {
                    let _ = tx.send(Wake::TerminalLost(format!(
                        "reading the terminal failed: {e}"
                    )));
                    return;
                }
            };
            if tx.send(wake).is_err() {
                return;
            }
        });
}

/// Whether the terminal hung up (its other end closed: a killed tmux session, a closed
/// window), asked without blocking. The kernel says so on the descriptor even where no SIGHUP
/// reaches us, and a read on it may never return.
#[cfg(unix)]
pub fn hung_up() -> Option<String> {
    use std::os::fd::AsRawFd;
    let fd = stdout().as_raw_fd();
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    (n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0)
        .then(|| "the terminal hung up".to_string())
}

#[cfg(not(unix))]
pub fn hung_up() -> Option<String> {
    None
}
