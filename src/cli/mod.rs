//! The `carload` command line: argument parsing, output streams and exit codes. Everything
//! that touches the terminal lives here; the work is done by the library.

pub mod args;
pub mod progress;
pub mod report;
pub mod run;
pub mod shipment;
pub mod signals;

pub use run::run;
