//! Shipments: plan a large input exactly into piece-sized batches, build them on one machine or
//! many, and export deal commands.
//!
//! * [`plan`]: walk the inputs (metadata only), predict every file's CAR bytes exactly
//!   ([`crate::importer::layout`]) and the aggregate overhead of a batch as a tight upper bound
//!   ([`overhead`]), and pack files into batches ([`pack`]) that fit the target piece.
//! * [`file`]: the shipment file (JSON Lines: a header record, then one record per batch).
//! * [`build`]: build a batch as a Filecoin aggregate with its manifest and result JSON,
//!   checking the sources did not change since planning.
//! * [`lock`]: exclusive per-batch lock files so several builders can share one output folder.
//! * [`drive`]: the manifest on a drive (`carload-drive.json`, `README.txt`), regenerated as
//!   CARs land, and the check of a drive against it.
//! * [`runner`]: one batch built under its lock with a heartbeat, as every builder (the command
//!   line, the workstation) runs it.
//! * [`export`]: deal commands (Lotus legacy, Boost, Curio), CSV or the shipment with its
//!   results, for built batches.
//! * [`receive`]: the provider's side: received CARs verified, joined with the deal list by
//!   piece CID, import commands.

pub mod build;
pub mod check;
pub mod drive;
pub mod drives;
pub mod export;
pub mod file;
pub mod judge;
pub mod lock;
pub mod outputs;
pub mod overhead;
pub mod pack;
pub mod plan;
pub mod receive;
pub mod runner;
pub mod size;
pub mod source;
pub mod status;
pub mod walked;

pub use file::{
    index_shipment, read_batch_at, read_shipment, write_shipment, Batch, BatchAt, BatchResult, FileRef, Header, Part,
    Shipment, ShipmentIndex,
};
pub use plan::{plan, walk_inputs, Pack, PlanOptions, SourceFile};
