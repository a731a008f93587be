//! `carload extract`: restore files from a CAR (or a shipment's built batches), every block
//! verified, never writing outside `--out`, never replacing a file without `--force`.

use anyhow::{bail, Context, Result};
use carload::extract::{extract, resolve, CarIndex};
use carload::shipment::build::{find_result, outputs, Found};
use carload::shipment::file::name_to_path;
use carload::shipment::read_shipment;
use clap::Args;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

/// `carload extract`.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// A CAR file, or a shipment file (then --cars names the folder of its built CARs).
    pub source: PathBuf,
    /// Only this entry: its path inside the DAG (names joined by `/`).
    pub path: Option<String>,
    /// Folder to restore into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// With a shipment: the output folder of `carload build`.
    #[arg(long, value_name = "DIR")]
    pub cars: Option<PathBuf>,
    /// Replace files that exist.
    #[arg(long, short)]
    pub force: bool,
}

/// Runs `carload extract`.
pub fn extract_cmd(a: ExtractArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    if let Some(cars) = &a.cars {
        return extract_shipment(&a, cars);
    }
    let car = CarIndex::open(&a.source).with_context(|| a.source.display().to_string())?;
    let [root] = car.roots[..] else {
        bail!("{}: {} roots; extract takes a CAR with one", a.source.display(), car.roots.len())
    };
    let (cid, target) = match &a.path {
        Some(p) => {
            let cid = resolve(&car, &root, p).with_context(|| a.source.display().to_string())?;
            let name = p.rsplit('/').find(|s| !s.is_empty()).unwrap_or(p);
            let name = carload::extract::safe_name(name.as_bytes())?;
            (cid, a.out.join(name))
        }
        None => (root, a.out.clone()),
    };
    // A root that is a file lands in the folder under its CID.
    let target = if a.path.is_none() && !is_folder(&car, &cid) { a.out.join(cid.to_string()) } else { target };
    let n = extract(&car, &cid, &target, a.force).with_context(|| a.source.display().to_string())?;
    println!("Extracted {n} entries of {} into {}", a.source.display(), target.display());
    Ok(())
}

fn is_folder(car: &CarIndex, cid: &cid::Cid) -> bool {
    if cid.codec() != carload::block::DAG_PB {
        return false;
    }
    car.block(cid)
        .ok()
        .and_then(|b| carload::dagpb::decode(&b).ok())
        .and_then(|n| n.data.and_then(|d| carload::unixfs::decode(&d)))
        .is_some_and(|d| d.kind == carload::unixfs::DataType::Directory as u64)
}

/// `name` (a shipment name) as a path inside `out`: absolute names lose their root, and `..`
/// or other non-normal components are refused.
fn inside(out: &Path, name: &str) -> Result<PathBuf> {
    let p = name_to_path(name);
    let mut rel = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => rel.push(x),
            Component::RootDir | Component::CurDir => {}
            _ => bail!("{name:?}: not a safe path to restore (it could write outside {})", out.display()),
        }
    }
    if rel.as_os_str().is_empty() {
        bail!("{name:?}: empty path");
    }
    Ok(out.join(rel))
}

fn extract_shipment(a: &ExtractArgs, cars: &Path) -> Result<()> {
    let f = std::fs::File::open(&a.source).with_context(|| a.source.display().to_string())?;
    let s = read_shipment(BufReader::with_capacity(1 << 20, f)).with_context(|| a.source.display().to_string())?;
    let mut sizes: HashMap<PathBuf, u64> = HashMap::new();
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut missing = Vec::new();
    for b in &s.batches {
        let r = match find_result(cars, &s.header, b) {
            Found::Built(r) => r,
            Found::Missing => {
                missing.push(b.id.clone());
                continue;
            }
            Found::Other(reason) | Found::Corrupt(reason) | Found::Unreadable(reason) => {
                bail!("batch {}: {reason}", b.id)
            }
        };
        let car_path = outputs(cars, &b.id).car;
        let car = CarIndex::open(&car_path).with_context(|| car_path.display().to_string())?;
        let files = carload::shipment::build::read_result_files(cars, &r.batch)
            .with_context(|| format!("batch {}: reading its result's file list", b.id))?;
        if files.len() != b.files.len() {
            bail!("batch {}: its result lists {} files, the shipment {}", b.id, files.len(), b.files.len());
        }
        for (f, rf) in b.files.iter().zip(&files) {
            let target = inside(&a.out, &f.name)?;
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
            }
            let cid: cid::Cid = rf.cid.parse().with_context(|| format!("batch {}: CID {:?}", b.id, rf.cid))?;
            let file = if created.contains(&target) {
                std::fs::OpenOptions::new().write(true).open(&target).with_context(|| target.display().to_string())?
            } else {
                if target.exists() && !a.force {
                    bail!("{}: exists (use --force to replace it)", target.display());
                }
                created.insert(target.clone());
                std::fs::File::create(&target).with_context(|| target.display().to_string())?
            };
            let offset = f.part.map_or(0, |p| p.offset);
            let mut w = OffsetWriter { file: &file, at: offset };
            let n = car.write_file(&cid, &mut w).with_context(|| format!("{}: {}", car_path.display(), f.name))?;
            if n != f.len() {
                bail!("{}: {} bytes in the CAR, {} planned", f.name, n, f.len());
            }
            sizes.insert(target, f.size);
        }
    }
    for (path, size) in &sizes {
        let got = std::fs::metadata(path).with_context(|| path.display().to_string())?.len();
        if got != *size {
            bail!("{}: {got} bytes restored, {size} planned (a part is missing)", path.display());
        }
    }
    println!("Restored {} files into {}", sizes.len(), a.out.display());
    if !missing.is_empty() {
        bail!("{} batches are not built in {}: {}", missing.len(), cars.display(), missing.join(", "));
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
