//! carload: prepare data for Filecoin offline deals.
//!
//! The library turns files and folders into UnixFS DAGs, writes them as CARv1 and computes the
//! piece commitment (commP), byte-compatible with Powergate's `pow offline`. It does no terminal
//! I/O and reads no clock or environment: progress is reported through [`event::Event`]s.
//! See ARCHITECTURE.md for the code map and invariants.

#![warn(missing_docs)]

pub mod aggregate;
pub mod batch;
pub mod block;
pub mod blockwrite;
pub mod car;
pub mod commp;
pub mod dagpb;
pub mod event;
pub mod extract;
pub mod human;
pub mod importer;
pub mod ipfs;
pub mod multibuffer;
pub mod murmur3;
pub mod nodeview;
pub mod output;
pub mod prepare;
pub mod profile;
pub mod segment;
pub mod shipment;
pub mod sink;
pub mod text;
pub mod unixfs;
pub mod varint;
pub mod verify;
pub mod walk;
