//! Running the commands.

use super::args::{CarArgs, Cli, Command, CommpArgs, PrepareArgs};
use super::progress::Progress;
use super::report;
use anyhow::{bail, Context, Result};
use carload::commp::{self, PieceHasher};
use carload::importer::{scan, Entry};
use carload::output::{check_not_input, check_target, AtomicFile};
use carload::prepare::{check_fits_piece, prepare_to_file, prepare_to_writer, Prepared};
use carload::profile::Profile;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Temporary output files to remove if the process is interrupted.
pub static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Prepare(a) => prepare(a),
        Command::Car(a) => car(a),
        Command::Commp(a) => commp_cmd(a),
    }
}

fn is_stdout(out: &Option<PathBuf>) -> bool {
    out.as_deref().is_none_or(|p| p == Path::new("-"))
}

fn scan_input(path: &Path, profile: &Profile) -> Result<Entry> {
    Ok(scan(path, profile)?)
}

/// Builds into `out` (a file written atomically, or stdout), returning the result.
fn build(
    entry: &Entry,
    profile: &Profile,
    input: &Path,
    out: &Option<PathBuf>,
    force: bool,
    with_commp: bool,
    progress: &mut Progress,
) -> Result<Prepared> {
    if is_stdout(out) {
        let stdout = io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        let res = prepare_to_writer(entry, profile, &mut w, with_commp, progress);
        progress.finish();
        return Ok(res?);
    }
    let target = out.as_deref().expect("not stdout");
    check_not_input(target, input)?;
    let file = AtomicFile::create(target, force)?;
    PENDING.lock().unwrap().push(file.temp_path().to_path_buf());
    let res = prepare_to_file(entry, profile, file.file(), with_commp, progress);
    progress.finish();
    let prepared = res?;
    let temp = file.temp_path().to_path_buf();
    file.commit()?;
    PENDING.lock().unwrap().retain(|p| p != &temp);
    Ok(prepared)
}

fn prepare(a: PrepareArgs) -> Result<()> {
    let profile = a.profile.profile();
    let start = Instant::now();
    if !is_stdout(&a.out) {
        check_target(a.out.as_deref().unwrap(), a.force)?;
    }
    let entry = scan_input(&a.path, &profile)?;
    check_fits_piece(&entry, &profile)?;
    let (_, bytes) = entry.totals();
    let mut progress = Progress::new(bytes, !a.quiet && !a.json);
    let prepared = build(&entry, &profile, &a.path, &a.out, a.force, true, &mut progress)?;
    let piece = prepared.piece.expect("commP requested");
    let root = prepared.built.root;
    let text = if a.json {
        serde_json::to_string(&report::PrepareJson::new(&root, prepared.built.car_size, &piece))? + "\n"
    } else {
        report::prepare_human(&root, prepared.built.car_size, &piece, bytes, start.elapsed(), &a.deal)
    };
    emit_result(&text, is_stdout(&a.out))
}

/// Results go to stdout, unless the CAR owns stdout, then to stderr.
fn emit_result(text: &str, car_on_stdout: bool) -> Result<()> {
    if car_on_stdout {
        io::stderr().write_all(text.as_bytes())?;
    } else {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

fn car(a: CarArgs) -> Result<()> {
    let profile = a.profile.profile();
    let start = Instant::now();
    if !is_stdout(&a.out) {
        check_target(a.out.as_deref().unwrap(), a.force)?;
    }
    let entry = scan_input(&a.path, &profile)?;
    let (_, bytes) = entry.totals();
    let mut progress = Progress::new(bytes, !a.quiet);
    let prepared = build(&entry, &profile, &a.path, &a.out, a.force, false, &mut progress)?;
    if !a.quiet {
        eprintln!(
            "Wrote CAR of {} bytes, payload CID {} in {:.2} s ({})",
            prepared.built.car_size,
            prepared.built.root,
            start.elapsed().as_secs_f64(),
            report::rate(bytes, start.elapsed())
        );
    }
    Ok(())
}

fn commp_cmd(a: CommpArgs) -> Result<()> {
    let path = a.path.filter(|p| p != Path::new("-"));
    let (piece, label) = match &path {
        None => {
            let mut hasher = PieceHasher::new();
            let mut progress = Progress::new(0, false);
            copy_into(&mut io::stdin().lock(), &mut hasher, &mut progress).context("reading standard input")?;
            (
                {
                    let n = hasher.bytes_written();
                    hasher.finish(n)
                }
                .context("standard input")?,
                "standard input".to_string(),
            )
        }
        Some(p) => {
            let name = p.display().to_string();
            let mut f = File::open(p).with_context(|| name.clone())?;
            let meta = f.metadata().with_context(|| name.clone())?;
            if meta.is_dir() {
                bail!("{name}: is a folder; commp takes a CAR file (use `carload prepare` for folders)");
            }
            commp::check_payload_size(meta.len()).with_context(|| name.clone())?;
            if !a.skip_car_validation {
                validate_car(&mut f, &name)?;
            }
            let mut hasher = PieceHasher::new();
            let mut progress = Progress::new(meta.len(), !a.quiet && !a.json);
            copy_into(&mut f, &mut hasher, &mut progress).with_context(|| name.clone())?;
            progress.finish();
            (
                {
                    let n = hasher.bytes_written();
                    hasher.finish(n)
                }
                .with_context(|| name.clone())?,
                name,
            )
        }
    };
    let _ = label;
    let text = if a.json {
        serde_json::to_string(&report::CommpJson::new(&piece))? + "\n"
    } else {
        format!(
            "Piece size:    {} bytes padded ({}), {} bytes unpadded ({})\nPiece CID:     {}\nPiece CID v2:  {}\n",
            piece.padded_size,
            report::ibytes(piece.padded_size),
            piece.unpadded_size,
            report::ibytes(piece.unpadded_size),
            piece.cid_v1(),
            piece.cid_v2()
        )
    };
    emit_result(&text, false)
}

fn validate_car(f: &mut File, name: &str) -> Result<()> {
    use std::io::Seek;
    let header = carload::car::read_header(&mut BufReader::new(&mut *f))
        .with_context(|| format!("{name}: not a CARv1 file (use --skip-car-validation to hash it anyway)"))?;
    if header.version != 1 {
        bail!("{name}: CAR version {} (deals need CARv1; use --skip-car-validation to hash it anyway)", header.version);
    }
    f.seek(io::SeekFrom::Start(0))?;
    Ok(())
}

fn copy_into(r: &mut dyn Read, hasher: &mut PieceHasher, progress: &mut Progress) -> io::Result<()> {
    let mut buf = vec![0u8; 16 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.write_all(&buf[..n])?;
        progress.inc(n as u64);
    }
}
