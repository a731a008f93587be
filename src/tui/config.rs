//! The workstation's defaults and remembered state, in the platform's standard folders
//! (`directories`): on Linux `$XDG_CONFIG_HOME/carload/config.json` (default
//! `~/.config/carload/config.json`) and `$XDG_DATA_HOME/carload/state.json` (default
//! `~/.local/share/carload/state.json`). The config is read by both edges
//! ([`crate::edge::config`]); command-line flags win over it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use crate::edge::config::{config_path, load_config};

/// What the workstation remembers between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct State {
    /// Shipment files saved or opened, most recent first.
    pub recent_shipments: Vec<PathBuf>,
    /// The output folder last used for builds (the default for a shipment with none of its own).
    pub out: Option<PathBuf>,
    /// Each shipment's output folder (absolute shipment path → absolute folder), so reopening
    /// a shipment with `--shipment` alone finds what it built.
    pub outs: std::collections::BTreeMap<PathBuf, PathBuf>,
    /// The export form as last used.
    pub deal: Option<super::app::DealForm>,
}

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "carload")
}

fn state_path() -> Option<PathBuf> {
    dirs().map(|d| d.data_dir().join("state.json"))
}

/// Reads the remembered state (a missing or broken file is empty).
pub fn load_state() -> State {
    state_path().and_then(|p| std::fs::read(p).ok()).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Shipments remembered at most (the most recent ones).
pub const RECENT: usize = 10;

/// Remembers `shipment` as the most recent one, and `out` as its output folder when given
/// (best effort, atomic).
pub fn remember_shipment(shipment: &Path, out: Option<&Path>) {
    let mut s = load_state();
    s.note_shipment(shipment, out);
    save_state(&s);
}

impl State {
    /// Notes `shipment` as the most recent one and `out` as its output folder (both made
    /// absolute against the working folder); only the [`RECENT`] latest shipments are kept,
    /// with their folders.
    pub fn note_shipment(&mut self, shipment: &Path, out: Option<&Path>) {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let ship = abs(shipment);
        self.recent_shipments.retain(|p| p != &ship);
        self.recent_shipments.insert(0, ship.clone());
        self.recent_shipments.truncate(RECENT);
        if let Some(out) = out {
            self.outs.insert(ship, abs(out));
        }
        let recent = &self.recent_shipments;
        self.outs.retain(|k, _| recent.contains(k));
    }

    /// The output folder remembered for `shipment` (an absolute path).
    pub fn out_of(&self, shipment: &Path) -> Option<&PathBuf> {
        self.outs.get(shipment)
    }
}

/// Remembers the output folder (as the last used, and as `shipment`'s when given) and the
/// export form (best effort).
pub fn remember(out: Option<PathBuf>, shipment: Option<PathBuf>, deal: Option<super::app::DealForm>) {
    let mut s = load_state();
    if let (Some(ship), Some(o)) = (&shipment, &out) {
        s.note_shipment(ship, Some(o));
    }
    if out.is_some() {
        s.out = out;
    }
    if deal.is_some() {
        s.deal = deal;
    }
    save_state(&s);
}

fn save_state(s: &State) {
    let Some(path) = state_path() else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(f) = carload::output::AtomicFile::create(&path, true) {
        use std::io::Write;
        if f.file().write_all(&serde_json::to_vec_pretty(s).unwrap_or_default()).is_ok() {
            let _ = f.commit();
        }
    }
}
