//! Turning files and folders into UnixFS DAGs.

pub mod input;
pub mod layout;
pub mod memory;
pub mod scan;
pub mod stream;
pub mod trickle;
pub mod written;

pub use scan::{scan, Entry, ImportError};
pub use stream::{write_car, Built};
