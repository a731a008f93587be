//! Turning files and folders into UnixFS DAGs.

pub mod memory;
