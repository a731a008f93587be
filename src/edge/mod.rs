//! What the two edges of the binary — the command line (`cli`) and the workstation (`tui`) —
//! share and the library must not hold: process-wide signal cleanup ([`signals`]), this
//! machine's identity and the clocks handed to the library ([`host`]), the command-line
//! options both take ([`options`]) and the operator's defaults they both read ([`config`]). The edges import the library and this module, never each
//! other (the command router aside: `cli::run` starts `tui::run`); this module imports neither.

pub mod config;
pub mod host;
pub mod options;
pub mod signals;

/// An error that exits with status 2 (usage), such as running the workstation off a terminal.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
