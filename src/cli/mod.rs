//! The `carload` command line: argument parsing, output streams and exit codes. Everything
//! that touches the terminal lives here; the work is done by the library.

pub mod args;
pub mod commd;
pub mod deals;
pub mod drive;
pub mod extract;
pub mod progress;
pub mod receive;
pub mod report;
pub mod run;
pub mod segment;
pub mod shipment;
pub mod status;
pub mod verify;

pub use run::run;

/// An error that exits with a given status (the message is printed as any error).
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}
