//! `carload extract`: restore files from a CAR (or a shipment's built batches), every block
//! verified and every node checked, never writing outside `--to` (no link followed, in the
//! DAG or in `--to`), never leaving a file that looks finished but is not, never replacing a
//! file without `--force`.

use crate::edge::signals::PENDING;
use anyhow::{bail, Context, Result};
use carload::extract::{extract, resolve, CarIndex, Options, OutDir, PendingFile, TempHook};
use carload::shipment::build::{find_result, outputs, read_result_files, Found};
use carload::shipment::drives::Placement;
use carload::shipment::file::{index_shipment, name_to_path, read_batch_at, Part};
use clap::Args;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// `carload extract`.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// A CAR file, or a shipment file (then --cars names the folder of its built CARs).
    pub source: PathBuf,
    /// Only this entry: its path inside the DAG (names joined by `/`).
    pub path: Option<String>,
    /// Folder to restore into (created if missing).
    #[arg(long, value_name = "DIR", required_unless_present = "out")]
    pub to: Option<PathBuf>,
    /// Deprecated spelling of --to (in every other shipment command --out is the CAR folder).
    #[arg(long, value_name = "DIR", hide = true, conflicts_with = "to")]
    pub out: Option<PathBuf>,
    /// With a shipment: the CAR folder of `carload build` (its `--out`); repeat it for the drives
    /// of a build spread over drives.
    #[arg(long, value_name = "DIR")]
    pub cars: Vec<PathBuf>,
    /// Replace files that exist.
    #[arg(long, short)]
    pub force: bool,
    /// Extract a DAG that expands beyond its CAR by reusing nodes (identical files or folders,
    /// zero-filled regions; also how a hostile CAR expands without limit), if it fits in the
    /// free space of --to.
    #[arg(long)]
    pub allow_reuse: bool,
}

/// Temporary files are registered for removal on Ctrl-C/SIGTERM while they exist.
fn register_temps() -> TempHook {
    Arc::new(|path: &Path, created: bool| {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        if created {
            pending.push(path.to_path_buf());
        } else if let Some(i) = pending.iter().rposition(|p| p == path) {
            pending.swap_remove(i);
        }
    })
}

impl ExtractArgs {
    /// The folder to restore into: `--to`, else the deprecated `--out` (clap requires one).
    fn target(&self) -> &Path {
        self.to.as_deref().or(self.out.as_deref()).unwrap_or(Path::new("."))
    }
}

fn open_out(a: &ExtractArgs) -> Result<OutDir> {
    let to = a.target();
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    Ok(OutDir::open(to)?.with_temp_hook(register_temps()))
}

/// The warning `extract --out` prints (the alias goes away in the next release).
pub const OUT_DEPRECATED: &str =
    "warning: `extract --out DIR` is deprecated, use `--to DIR` (in the other shipment commands --out is the CAR folder)";

/// Runs `carload extract`.
pub fn extract_cmd(a: ExtractArgs) -> Result<()> {
    if a.out.is_some() {
        eprintln!("{OUT_DEPRECATED}");
    }
    if !a.cars.is_empty() {
        let folders = crate::cli::shipment::OutFolders::read(&a.cars)?.expect("--cars given");
        return extract_shipment(&a, &folders);
    }
    let car = CarIndex::open(&a.source).with_context(|| a.source.display().to_string())?;
    let [root] = car.roots[..] else {
        bail!("{}: {} roots; extract takes a CAR with one", a.source.display(), car.roots.len())
    };
    let (cid, name) = match &a.path {
        Some(p) => {
            let cid = resolve(&car, &root, p).with_context(|| a.source.display().to_string())?;
            let name = p.rsplit('/').find(|s| !s.is_empty()).unwrap_or(p);
            (cid, Some(carload::extract::safe_name(name.as_bytes())?))
        }
        None => (root, None),
    };
    let out = open_out(&a)?;
    let opts = Options { force: a.force, allow_reuse: a.allow_reuse };
    let s = extract(&car, &cid, &out, name, &opts).with_context(|| a.source.display().to_string())?;
    println!("Extracted {} entries of {} into {}", s.entries, a.source.display(), s.target.display());
    Ok(())
}

/// `name` (a shipment name) as a relative path: absolute names lose their root, and `..` or
/// other non-normal components are refused.
fn relative(name: &str) -> Result<PathBuf> {
    let p = name_to_path(name);
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => rel.push(x),
            Component::RootDir | Component::CurDir => {}
            _ => bail!("{name:?}: not a safe path to restore (it could write outside --to)"),
        }
    }
    if rel.as_os_str().is_empty() {
        bail!("{name:?}: empty path");
    }
    Ok(rel)
}

/// A file split over batches, assembled in a temporary until all its parts are in.
struct Split {
    file: PendingFile,
    size: u64,
    parts: Vec<Part>,
}

impl Split {
    /// Whether the parts cover the file exactly, each byte once.
    fn complete(&mut self) -> bool {
        self.parts.sort_unstable();
        let mut at = 0;
        for p in &self.parts {
            if p.offset != at {
                return false;
            }
            at += p.len;
        }
        at == self.size
    }
}

/// The shipment's folders, opened through `--to` without following links; the last one is
/// kept (a batch lists a folder's files together).
struct Folders {
    out: OutDir,
    last: Option<(PathBuf, OutDir)>,
}

impl Folders {
    fn of<'r>(&mut self, rel: &'r Path) -> Result<(OutDir, &'r OsStr)> {
        let (parent, name) = (rel.parent().unwrap_or(Path::new("")), rel.file_name().unwrap_or_default());
        if let Some((p, d)) = &self.last {
            if p == parent {
                return Ok((d.clone(), name));
            }
        }
        let dir = self.out.dirs(parent)?;
        self.last = Some((parent.to_path_buf(), dir.clone()));
        Ok((dir, name))
    }
}

fn extract_shipment(a: &ExtractArgs, cars: &crate::cli::shipment::OutFolders) -> Result<()> {
    let outs = cars.outs();
    let source = || a.source.display().to_string();
    let file = std::fs::File::open(&a.source).with_context(source)?;
    let index = index_shipment(BufReader::with_capacity(1 << 20, &file)).with_context(source)?;
    let mut folders = Folders { out: open_out(a)?, last: None };
    let mut splits: HashMap<String, Split> = HashMap::new();
    let mut restored = 0u64;
    let mut missing = Vec::new();
    for at in &index.batches {
        let b = read_batch_at(&file, &index.header, at).with_context(source)?;
        let cars = match outs.placement(&b.id) {
            Placement::Dir(d) => d,
            Placement::Unassigned => {
                missing.push(b.id.clone());
                continue;
            }
            Placement::Refused(e) => bail!("batch {}: {e}", b.id),
        };
        match find_result(cars, &index.header, &b) {
            Found::Built(_) => {}
            Found::Missing => {
                missing.push(b.id.clone());
                continue;
            }
            Found::Other(reason) | Found::Corrupt(reason) | Found::Unreadable(reason) => {
                bail!("batch {}: {reason}", b.id)
            }
        }
        let car_path = outputs(cars, &b.id).car;
        let car = CarIndex::open(&car_path).with_context(|| car_path.display().to_string())?;
        let files = read_result_files(cars, &b.id)
            .with_context(|| format!("batch {}: reading its result's file list", b.id))?;
        if files.len() != b.files.len() {
            bail!("batch {}: its result lists {} files, the shipment {}", b.id, files.len(), b.files.len());
        }
        for (f, rf) in b.files.iter().zip(&files) {
            let range = f.part.map(|p| (p.offset, p.len));
            if rf.name != f.name || rf.offset.zip(rf.length) != range {
                bail!("batch {}: its result lists {:?} where the shipment has {:?}", b.id, rf.name, f.name);
            }
            let rel = relative(&f.name)?;
            let (dir, name) = folders.of(&rel)?;
            let cid: cid::Cid = rf.cid.parse().with_context(|| format!("batch {}: CID {:?}", b.id, rf.cid))?;
            let context = || format!("{}: {}", car_path.display(), f.name);
            let Some(part) = f.part else {
                dir.check_free(name, a.force)?;
                let pending = dir.temp_file(name)?;
                let mut w = std::io::BufWriter::with_capacity(1 << 20, pending.file());
                car.write_file(&cid, Some(f.size), &mut w).with_context(context)?;
                w.flush().with_context(|| pending.temp_path().display().to_string())?;
                drop(w);
                pending.commit(a.force)?;
                restored += 1;
                continue;
            };
            let split = match splits.get_mut(&f.name) {
                Some(s) if s.size == f.size => s,
                Some(s) => bail!("{}: parts planned with sizes {} and {}", f.name, s.size, f.size),
                None => {
                    dir.check_free(name, a.force)?;
                    let file = dir.temp_file(name)?;
                    splits.entry(f.name.clone()).or_insert(Split { file, size: f.size, parts: Vec::new() })
                }
            };
            let mut w =
                std::io::BufWriter::with_capacity(1 << 20, OffsetWriter { file: split.file.file(), at: part.offset });
            car.write_file(&cid, Some(part.len), &mut w).with_context(context)?;
            w.flush().with_context(|| split.file.temp_path().display().to_string())?;
            drop(w);
            split.parts.push(part);
            if split.parts.iter().map(|p| p.len).sum::<u64>() == split.size {
                let Some(mut done) = splits.remove(&f.name) else { continue };
                let len =
                    done.file.file().metadata().with_context(|| done.file.temp_path().display().to_string())?.len();
                if !done.complete() || len != done.size {
                    bail!("{}: its parts do not make the planned {} bytes", f.name, done.size);
                }
                done.file.commit(a.force)?;
                restored += 1;
            }
        }
    }
    println!("Restored {restored} files into {}", a.target().display());
    let incomplete = splits.len();
    drop(splits); // temporaries of split files still missing parts are removed
    if !missing.is_empty() {
        let split = if incomplete > 0 { format!(" ({incomplete} split files not restored)") } else { String::new() };
        let wher = cars.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        bail!("{} batches are not built in {wher}{split}: {}", missing.len(), missing.join(", "));
    }
    if incomplete > 0 {
        bail!("{incomplete} split files miss parts in the shipment and were not restored");
    }
    Ok(())
}

/// Writes at increasing offsets of a file (the parts of a split file land in place).
struct OffsetWriter<'a> {
    file: &'a std::fs::File,
    at: u64,
}

impl Write for OffsetWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all_at(buf, self.at)?;
        self.at += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
