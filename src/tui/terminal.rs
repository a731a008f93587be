//! Terminal hygiene: raw mode and the alternate screen are entered by [`Guard::enter`] and
//! always restored — when the guard drops (quit, error, failed start), from the panic hook, and
//! from the SIGINT/SIGTERM/SIGHUP handler (`main` hands [`restore`] to `edge::signals::install`).

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the terminal is in the workstation's mode (raw, alternate screen).
pub static ACTIVE: AtomicBool = AtomicBool::new(false);
static MOUSE: AtomicBool = AtomicBool::new(false);

/// Restores the terminal if the workstation changed it; safe to call more than once.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        if MOUSE.swap(false, Ordering::SeqCst) {
            let _ = execute!(out, DisableMouseCapture);
        }
        let _ = execute!(out, LeaveAlternateScreen, cursor::Show);
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

/// Holds the terminal in the workstation's mode until dropped.
pub struct Guard;

impl Guard {
    /// Enters raw mode and the alternate screen (and mouse capture if asked), installing the
    /// panic hook first; anything that fails restores what was done.
    pub fn enter(mouse: bool) -> io::Result<Guard> {
        install_panic_hook();
        ACTIVE.store(true, Ordering::SeqCst);
        let guard = Guard;
        enable_raw_mode()?;
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        if mouse {
            MOUSE.store(true, Ordering::SeqCst);
            execute!(io::stdout(), EnableMouseCapture)?;
        }
        Ok(guard)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
    });
}
