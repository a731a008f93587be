//! The operator's defaults, `config.json` in the platform's configuration folder
//! (`directories`: on Linux `$XDG_CONFIG_HOME/carload/config.json`, default
//! `~/.config/carload/config.json`), read by both edges: `plan`, `build`, `export`, `status` and
//! the workstation take their sizes, output folder and provider from it when no flag gives them
//! (flags win), so the same options pack the same batches everywhere. The library reads no
//! configuration: the edges hand it the values.

use super::options::SizeDefaults;
use anyhow::{Context, Result};
use carload::shipment::size::parse_size;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Defaults the operator edits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Config {
    /// Sector size (`32GiB` or `64GiB`).
    pub sector: Option<String>,
    /// Target padded piece size.
    pub piece_size: Option<String>,
    /// Smallest padded piece size.
    pub min_piece_size: Option<String>,
    /// Output folder of builds (the CAR folder, `--out`).
    pub out: Option<PathBuf>,
    /// Storage provider for exported deal commands.
    pub provider: Option<String>,
    /// Capture the mouse (the workstation).
    pub mouse: Option<bool>,
    /// Auto-pack (`p`) in the workstation tops up open batches (not built, not being built)
    /// before opening new ones (default: on).
    pub pack_top_up: Option<bool>,
    /// Key bindings to change (the workstation): action name → keys, e.g. `{"build": ["F5"]}`.
    pub keys: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

impl Config {
    /// The planning sizes it gives (each checked as a size; the sector by the planner).
    pub fn size_defaults(&self) -> Result<SizeDefaults> {
        let at = config_path().map(|p| p.display().to_string()).unwrap_or_else(|| "config".into());
        let size = |v: &Option<String>, what: &str| -> Result<Option<u64>> {
            v.as_deref().map(|s| parse_size(s).with_context(|| format!("{at}: {what} {s:?}"))).transpose()
        };
        Ok(SizeDefaults {
            sector: size(&self.sector, "sector")?,
            piece_size: size(&self.piece_size, "piece_size")?,
            min_piece_size: size(&self.min_piece_size, "min_piece_size")?,
        })
    }

    /// The CAR folder: `flag` if given, else the config's `out`.
    pub fn out_or(&self, flag: Option<&Path>) -> Option<PathBuf> {
        flag.map(Path::to_path_buf).or_else(|| self.out.clone())
    }
}

/// Where the config file lives.
pub fn config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "carload").map(|d| d.config_dir().join("config.json"))
}

/// Reads the config; a missing file is the default, a broken one an error naming it.
pub fn load_config() -> Result<Config> {
    let Some(path) = config_path() else { return Ok(Config::default()) };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

/// A "no output folder" error for `command`, naming both ways to give one.
pub fn no_out(command: &str) -> anyhow::Error {
    let at = config_path().map(|p| p.display().to_string()).unwrap_or_else(|| "config.json".into());
    anyhow::anyhow!("{command} needs the CAR folder: pass --out DIR or set \"out\" in {at}")
}
