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
    /// Each shipment's output folders (absolute shipment path → absolute folder, or the list of
    /// a drive set's folders), so reopening a shipment with `--shipment` alone finds what it
    /// built.
    pub outs: std::collections::BTreeMap<PathBuf, OutList>,
    /// The export form as last used.
    pub deal: Option<super::app::DealForm>,
}

/// A shipment's remembered output folders: one folder (written as a string, as before drive
/// sets) or a drive set's folders in order (a list). Both forms read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutList(pub Vec<PathBuf>);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum OutListForm {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl Serialize for OutList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0[..] {
            [one] => OutListForm::One(one.clone()).serialize(s),
            many => OutListForm::Many(many.to_vec()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for OutList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match OutListForm::deserialize(d)? {
            OutListForm::One(p) => OutList(vec![p]),
            OutListForm::Many(v) => OutList(v),
        })
    }
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

/// Remembers `shipment` as the most recent one, and `outs` as its output folders when given (a
/// drive set's, or one folder; best effort, atomic).
pub fn remember_shipment_outs(shipment: &Path, outs: &[PathBuf]) {
    let mut s = load_state();
    s.note_shipment_outs(shipment, outs);
    save_state(&s);
}

impl State {
    /// Notes `shipment` as the most recent one and `out` as its output folder (both made
    /// absolute against the working folder); only the [`RECENT`] latest shipments are kept,
    /// with their folders.
    #[cfg(test)]
    pub fn note_shipment(&mut self, shipment: &Path, out: Option<&Path>) {
        let outs: Vec<PathBuf> = out.map(Path::to_path_buf).into_iter().collect();
        self.note_shipment_outs(shipment, &outs)
    }

    /// [`State::note_shipment`] with a list of output folders (a drive set's; empty: none).
    pub fn note_shipment_outs(&mut self, shipment: &Path, outs: &[PathBuf]) {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let ship = abs(shipment);
        self.recent_shipments.retain(|p| p != &ship);
        self.recent_shipments.insert(0, ship.clone());
        self.recent_shipments.truncate(RECENT);
        if !outs.is_empty() {
            self.outs.insert(ship, OutList(outs.iter().map(|o| abs(o)).collect()));
        }
        let recent = &self.recent_shipments;
        self.outs.retain(|k, _| recent.contains(k));
    }

    /// The output folder remembered for `shipment` (an absolute path; a drive set's first).
    #[cfg(test)]
    pub fn out_of(&self, shipment: &Path) -> Option<&PathBuf> {
        self.outs.get(shipment).and_then(|o| o.0.first())
    }

    /// Every output folder remembered for `shipment` (a drive set's, in order).
    pub fn outs_of(&self, shipment: &Path) -> &[PathBuf] {
        self.outs.get(shipment).map_or(&[], |o| &o.0)
    }
}

/// Remembers the output folder (as the last used, and as `shipment`'s when given) and the
/// export form (best effort).
pub fn remember(outs: Vec<PathBuf>, shipment: Option<PathBuf>, deal: Option<super::app::DealForm>) {
    let mut s = load_state();
    if let (Some(ship), false) = (&shipment, outs.is_empty()) {
        s.note_shipment_outs(ship, &outs);
    }
    if let Some(first) = outs.first() {
        s.out = Some(first.clone());
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
