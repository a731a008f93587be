//! A progress bar on stderr (only when stderr is a terminal).

use carload::event::{Event, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Shows input bytes read as a bar with rate and ETA, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for `total` bytes, shown only if `enabled` and stderr is a terminal.
    pub fn new(total: u64, enabled: bool) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{bytes:>10}/{total_bytes:10} [{bar:30}] {binary_bytes_per_sec:>12} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Progress { bar: Some(bar) }
    }

    /// A spinner counting bytes when the total is unknown, shown only if `enabled` and stderr
    /// is a terminal.
    pub fn spinner(enabled: bool) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {bytes} fetched {binary_bytes_per_sec:>12}")
                .expect("valid template"),
        );
        Progress { bar: Some(bar) }
    }

    /// A handle to the bar for other threads.
    pub fn handle(&self) -> Option<ProgressBar> {
        self.bar.clone()
    }

    /// Advances by `n` bytes.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn event(&mut self, event: Event) {
        match event {
            Event::BytesRead(n) => self.inc(n),
            Event::FileStarted { path, .. } => {
                if let Ok(mut current) = crate::edge::signals::CURRENT_INPUT.lock() {
                    *current = Some(path);
                }
            }
            _ => {}
        }
    }
}
