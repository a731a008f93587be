//! The shipment's deals (`carload segment plan`'s deals file beside the shipment) as the
//! workstation shows them: which deal each batch is in, with the deal's fill.

use carload::segment::deals::{self, DealsPlan};
use carload::shipment::status::Watched;
use carload::shipment::Header;
use std::collections::HashMap;
use std::path::Path;

/// One deal as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct DealSeen {
    /// Deal ID.
    pub id: String,
    /// Its batches, in placement order.
    pub batches: Vec<String>,
    /// The piece CID (v1) the deals file records for each batch, in the same order.
    pub pieces: Vec<String>,
    /// Share of the deal its segments take (0 to 1).
    pub fill: f64,
    /// The deal's padded size.
    pub size: u64,
}

/// A deals file as read (checked as `segment build` checks it), or why it cannot be shown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DealsSeen {
    /// The file's name (as shown).
    pub name: String,
    /// The deals.
    pub deals: Vec<DealSeen>,
    /// Deal (position in `deals`) of each batch.
    pub of_batch: HashMap<String, usize>,
    /// Why the file is not shown (unreadable, malformed, of another plan).
    pub error: Option<String>,
}

impl DealsSeen {
    /// The deals of `plan`.
    pub fn of(name: String, plan: &DealsPlan) -> Self {
        let mut seen = DealsSeen { name, ..Default::default() };
        for (n, d) in plan.deals.iter().enumerate() {
            for s in &d.segments {
                seen.of_batch.insert(s.batch.clone(), n);
            }
            let batches = d.segments.iter().map(|s| s.batch.clone()).collect();
            let pieces = d.segments.iter().map(|s| s.piece().cid_v1().to_string()).collect();
            seen.deals.push(DealSeen { id: d.id.clone(), batches, pieces, fill: d.fill(), size: d.piece.padded_size });
        }
        seen
    }

    /// What the details line says of batch `id`: its deal, the deal's batches and fill; or why
    /// the deals file is not shown.
    pub fn line_of(&self, id: &str) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("deals file {}: {e}", self.name));
        }
        let d = &self.deals[*self.of_batch.get(id)?];
        Some(format!("in {} ({} batches, fill {:.1}%)", d.id, d.batches.len(), d.fill * 100.0))
    }
}

/// Reads the deals file at `path` for the shipment of `header` and `batches` (the workstation's
/// plan): `None` when there is none; an error shown when it does not parse or is of another
/// plan (the shipment changed since the deals were planned).
pub fn read(path: &Path, header: &Header, batches: &[Watched]) -> Option<DealsSeen> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(DealsSeen { name, error: Some(e.to_string()), ..Default::default() }),
    };
    let error = |e: String| Some(DealsSeen { name: name.clone(), error: Some(e), ..Default::default() });
    match deals::parse_plan(&bytes) {
        Err(e) => error(e.to_string()),
        Ok(p) if p.header.shipment != carload::shipment::drive::shipment_id(header, batches) => {
            error("of another plan (plan the deals again)".into())
        }
        Ok(p) => Some(DealsSeen::of(name, &p)),
    }
}
