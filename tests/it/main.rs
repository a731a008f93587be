//! carload's integration tests, in one crate (one link of the library instead of one per file).
//!
//! Tests that need something most machines lack are `#[ignore]`d with the reason, and fail
//! (never pass silently) when asked for without it: `cargo test -- --include-ignored` runs them
//! all, as CI does after installing the IPFS test node and Slurm (`.ci/run`).

#![allow(dead_code)]

mod batch;
mod cli;
mod commd;
mod common;
mod commp_vectors;
mod decoders;
mod drive;
mod drives;
mod extract;
mod fixtures;
mod hamt;
mod hamt_read;
mod importer;
mod ipfs_node;
mod ipfs_stub;
mod library_purity;
mod profiles;
mod receive;
mod segment;
mod segment_deals;
mod segment_write;
mod shipment;
mod slurm;
#[cfg(unix)]
mod tui_pty;
