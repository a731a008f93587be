//! Running the commands.

use super::args::{BatchArgs, CarArgs, Cli, Command, CommpArgs, ManifestArgs, PrepareArgs};
use super::progress::Progress;
use super::report;
use anyhow::{bail, Context, Result};
use carload::commp;
use carload::importer::{scan, Entry};
use carload::output::{check_not_input, check_target, AtomicFile};
use carload::prepare::{check_fits_piece, prepare_to_file, prepare_to_writer, Prepared};
use carload::profile::Profile;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::edge::signals;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            use clap::Parser;
            if let Some(Command::Tui(a)) = Cli::parse_from(["carload", "tui"]).command {
                return crate::tui::run(a);
            }
        }
        return Err(crate::edge::UsageError(
            "no command given (carload --help lists them; on a terminal, carload alone opens the workstation)".into(),
        )
        .into());
    };
    match command {
        Command::Tui(a) => crate::tui::run(a),
        Command::Verify(a) => super::verify::verify(a),
        Command::Drive(a) => super::drive::drive_cmd(a),
        Command::Receive(a) => super::receive::receive_cmd(a),
        Command::Segment(a) => super::segment::segment_cmd(a),
        Command::Extract(a) => super::extract::extract_cmd(a),
        Command::Status(a) => super::status::status_cmd(a),
        Command::Prepare(a) => prepare(a),
        Command::Car(a) => car(a),
        Command::Commp(a) => commp_cmd(a),
        Command::Commd(a) => super::commd::commd_cmd(a),
        Command::Manifest(a) => manifest_cmd(a),
        Command::Plan(a) => super::shipment::plan(a),
        Command::Build(a) => super::shipment::build(a),
        Command::Export(a) => super::shipment::export_cmd(a),
    }
}

fn is_stdout(out: &Option<PathBuf>) -> bool {
    out.as_deref().is_none_or(|p| p == Path::new("-"))
}

fn scan_input(path: &Path, profile: &Profile) -> Result<Entry> {
    Ok(scan(path, profile)?)
}

/// Where a CAR goes: stdout, or a temporary file that becomes the output on success.
enum Dest<'a> {
    Stdout(&'a mut dyn Write),
    File(&'a File),
}

impl Dest<'_> {
    /// Runs `f` on a sequential writer to this destination and flushes it.
    fn sequential<T>(self, f: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
        match self {
            Dest::Stdout(w) => f(w),
            Dest::File(file) => {
                let mut w = BufWriter::with_capacity(1 << 20, file);
                let r = f(&mut w)?;
                w.flush()?;
                Ok(r)
            }
        }
    }
}

/// Runs `work` against `out` (stdout, or a file written atomically and committed only if `work`
/// succeeds; removed on error or interruption).
fn with_output<T>(
    out: &Option<PathBuf>,
    force: bool,
    input: Option<&Path>,
    work: impl FnOnce(Dest<'_>) -> Result<T>,
) -> Result<T> {
    if is_stdout(out) {
        let stdout = io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        let r = work(Dest::Stdout(&mut w))?;
        w.flush()?;
        return Ok(r);
    }
    let target = out.as_deref().expect("not stdout");
    if let Some(input) = input {
        check_not_input(target, input)?;
    }
    // Registered and created under one lock: a signal's cleanup sees it whenever it exists.
    let file = AtomicFile::create_registered(target, force, &mut signals::create_registered)?;
    let temp = file.temp_path().to_path_buf();
    let res = work(Dest::File(file.file())).and_then(|r| {
        file.commit()?;
        Ok(r)
    });
    signals::forget(std::slice::from_ref(&temp));
    res.map_err(|e| if is_output_error(&e) { e.context(target.display().to_string()) } else { e })
}

/// Whether `e` is a failure to write the output (which then gets the output's path as context;
/// input errors already name their input).
fn is_output_error(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<carload::importer::scan::ImportError>(), Some(scan::ImportError::Output(_)))
        || matches!(e.downcast_ref::<carload::batch::BatchError>(), Some(carload::batch::BatchError::Output(_)))
}

/// Writes a batch manifest file atomically.
fn write_manifest_file(path: &Path, force: bool, manifest: &carload::batch::ManifestBytes) -> Result<()> {
    let file = AtomicFile::create(path, force)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file.file());
    manifest.copy_to(&mut w).and_then(|_| w.flush()).with_context(|| path.display().to_string())?;
    drop(w);
    Ok(file.commit()?)
}

/// Builds `entry` into `out`: in place into a file (one read), or two passes to stdout.
fn build(
    entry: &Entry,
    profile: &Profile,
    input: &Path,
    out: &Option<PathBuf>,
    force: bool,
    with_commp: bool,
    progress: &mut Progress,
) -> Result<Prepared> {
    let res = with_output(out, force, Some(input), |dest| {
        Ok(match dest {
            Dest::Stdout(w) => prepare_to_writer(entry, profile, w, with_commp, progress)?,
            Dest::File(f) => prepare_to_file(entry, profile, f, with_commp, progress)?,
        })
    });
    progress.finish();
    res
}

fn prepare(a: PrepareArgs) -> Result<()> {
    if a.batch.ipfs_api.is_some() {
        return prepare_from_node(a);
    }
    if a.batch.aggregate {
        return prepare_batch(a);
    }
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
    if a.batch.ipfs_api.is_some() {
        let r = node_run(&a.path, &a.out, a.force, a.quiet, &a.batch, false, false)?;
        if !a.quiet {
            eprintln!("Wrote CAR of {} bytes, payload CID {} ({} blocks from the node)", r.car_size, r.root, r.blocks);
        }
        return Ok(());
    }
    if a.batch.aggregate {
        let b = run_batch(&a.path, &a.out, a.force, a.quiet, &a.profile.profile(), &a.batch, false, false)?;
        if !a.quiet {
            eprintln!(
                "Wrote batch CAR of {} bytes, payload CID {}: {} files, {} unique",
                b.built.car_size,
                b.built.root,
                b.built.roots.len(),
                b.built.unique
            );
        }
        return Ok(());
    }
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
            let progress = Progress::new(0, false);
            let piece = commp::commp_of_reader(Counted { inner: io::stdin().lock(), progress: &progress })
                .context("standard input")?;
            (piece, "standard input".to_string())
        }
        Some(p) => {
            let name = p.display().to_string();
            let mut f = File::open(p).with_context(|| name.clone())?;
            let meta = f.metadata().with_context(|| name.clone())?;
            if meta.is_dir() {
                bail!("{name}: is a folder; commp takes a CAR file (use `carload prepare` for folders)");
            }
            if !meta.is_file() {
                // A pipe, FIFO, /dev/stdin or <(…): read the stream (its size is unknown until
                // the end; it cannot be mapped or rewound).
                let mut rec = Recording { inner: &mut f, seen: Vec::new() };
                if !a.skip_car_validation {
                    check_car_header(&mut BufReader::new(&mut rec), &name)?;
                }
                let prefix = rec.seen;
                let progress = Progress::new(0, !a.quiet && !a.json);
                let stream = io::Cursor::new(prefix).chain(&mut f);
                let piece = commp::commp_of_reader(Counted { inner: stream, progress: &progress });
                progress.finish();
                let piece = piece.with_context(|| name.clone())?;
                return print_commp(&piece, a.json);
            }
            commp::check_payload_size(meta.len()).with_context(|| name.clone())?;
            if !a.skip_car_validation {
                validate_car(&mut f, &name)?;
            }
            let piece = match commp::commp_of_file(&f, p) {
                Some(piece) => piece,
                None => {
                    let progress = Progress::new(meta.len(), !a.quiet && !a.json);
                    let piece = commp::commp_of_reader(Counted { inner: &mut f, progress: &progress });
                    progress.finish();
                    piece
                }
            };
            (piece.with_context(|| name.clone())?, name)
        }
    };
    let _ = label;
    print_commp(&piece, a.json)
}

fn print_commp(piece: &commp::PieceInfo, json: bool) -> Result<()> {
    let text = if json {
        serde_json::to_string(&report::CommpJson::new(piece))? + "\n"
    } else {
        format!(
            "Piece size:    {} bytes padded ({}), {} bytes unpadded ({})\nPiece CID:     {}\nPiece CID v2:  {}\n",
            piece.padded_size,
            carload::human::ibytes(piece.padded_size),
            piece.unpadded_size,
            carload::human::ibytes(piece.unpadded_size),
            piece.cid_v1(),
            piece.cid_v2()
        )
    };
    emit_result(&text, false)
}

fn validate_car(f: &mut File, name: &str) -> Result<()> {
    use std::io::Seek;
    check_car_header(&mut BufReader::new(&mut *f), name)?;
    f.seek(io::SeekFrom::Start(0)).with_context(|| name.to_string())?;
    Ok(())
}

fn check_car_header(r: &mut impl io::BufRead, name: &str) -> Result<()> {
    let header = carload::car::read_header(r)
        .with_context(|| format!("{name}: not a CARv1 file (use --skip-car-validation to hash it anyway)"))?;
    if header.version != 1 {
        bail!("{name}: CAR version {} (deals need CARv1; use --skip-car-validation to hash it anyway)", header.version);
    }
    Ok(())
}

/// A reader that keeps a copy of what it reads (the start of a stream that cannot be rewound).
struct Recording<R> {
    inner: R,
    seen: Vec<u8>,
}

impl<R: Read> Read for Recording<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// A reader that advances the progress bar.
struct Counted<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

/// A finished batch build and how long it took.
struct BatchRun {
    built: carload::batch::BatchBuilt,
    files: carload::batch::FolderFiles,
    input_bytes: u64,
    elapsed: std::time::Duration,
}

/// The manifest path for a batch: `--manifest`, else `<out.car>.manifest` when `default_manifest`.
fn manifest_path(out: &Option<PathBuf>, batch: &BatchArgs, default_manifest: bool) -> Result<Option<PathBuf>> {
    if let Some(m) = &batch.manifest {
        return Ok(Some(m.clone()));
    }
    if !default_manifest {
        return Ok(None);
    }
    match out {
        Some(p) if !is_stdout(out) => {
            let mut s = p.clone().into_os_string();
            s.push(".manifest");
            Ok(Some(PathBuf::from(s)))
        }
        _ => {
            bail!("the CAR goes to stdout, so the batch manifest needs a path: give --manifest PATH or an output file")
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_batch(
    input: &Path,
    out: &Option<PathBuf>,
    force: bool,
    quiet: bool,
    profile: &Profile,
    batch: &BatchArgs,
    default_manifest: bool,
    with_commp: bool,
) -> Result<BatchRun> {
    let start = Instant::now();
    // Everything that can be refused is refused before any work.
    let manifest = manifest_path(out, batch, default_manifest)?;
    if let Some(m) = &manifest {
        check_target(m, force)?;
        check_not_input(m, input)?;
    }
    if !is_stdout(out) {
        check_target(out.as_deref().unwrap(), force)?;
    }
    use carload::batch::BatchFiles;
    let files = carload::batch::walk_folder(input, profile)?;
    let (input_bytes, predicted) = (0..files.count()).map(|i| files.file(i)).fold((0, 0), |(b, p), f| {
        (b + f.entry.totals().1, p + carload::importer::layout::predict_car_size(&f.entry, profile))
    });
    commp::check_payload_size(predicted).context("the batch is too large for one piece")?;
    let mut progress = Progress::new(input_bytes, !quiet);
    let spool_dir = batch.tmpdir.clone().unwrap_or_else(|| match out {
        Some(p) if !is_stdout(out) => {
            p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
        }
        _ => std::env::temp_dir(),
    });
    let built = with_output(out, force, Some(input), |dest| {
        dest.sequential(|w| match carload::batch::build(&files, profile, &spool_dir, w, with_commp, &mut progress) {
            Err(e @ carload::batch::BatchError::Spool(_)) => {
                Err(anyhow::Error::new(e).context(format!("spool folder {} (see --tmpdir)", spool_dir.display())))
            }
            r => Ok(r?),
        })
    });
    progress.finish();
    let built = built?;
    if let Some(m) = &manifest {
        write_manifest_file(m, force, &built.manifest)?;
    }
    Ok(BatchRun { built, files, input_bytes, elapsed: start.elapsed() })
}

fn prepare_batch(a: PrepareArgs) -> Result<()> {
    let profile = a.profile.profile();
    let run = run_batch(&a.path, &a.out, a.force, a.quiet || a.json, &profile, &a.batch, true, true)?;
    let b = &run.built;
    let piece = b.piece.as_ref().expect("commP requested");
    let text = if a.json {
        let mut j = report::PrepareJson::new(&b.root, b.car_size, piece);
        use carload::batch::BatchFiles;
        let names: Vec<String> = (0..run.files.count()).map(|i| run.files.file(i).into_owned().name).collect();
        j.files = Some(report::FileJson::list(names.iter().map(String::as_str).zip(b.roots.iter())));
        serde_json::to_string(&j)? + "\n"
    } else {
        let dups = b.roots.len() - b.unique;
        format!(
            "Files:         {} ({} unique, {} duplicates)\n{}",
            b.roots.len(),
            b.unique,
            dups,
            report::prepare_human(&b.root, b.car_size, piece, run.input_bytes, run.elapsed, &a.deal)
        )
    };
    emit_result(&text, is_stdout(&a.out))
}

/// Refuses a pipe or socket: `verify` and `manifest` read some blocks again, by position.
pub(super) fn positional(f: &File, name: &str) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = f.metadata().with_context(|| name.to_string())?.file_type();
    if t.is_fifo() || t.is_socket() {
        bail!("{name}: a pipe: this command reads some blocks again, by position, so it needs a file");
    }
    Ok(())
}

fn manifest_cmd(a: ManifestArgs) -> Result<()> {
    use carload::aggregate::{for_each_manifest_record, ManifestRecord};
    let name = a.car.display().to_string();
    let f = File::open(&a.car).with_context(|| name.clone())?;
    positional(&f, &name)?;
    let header = carload::car::read_header_at(&f).with_context(|| name.clone())?;
    let root = header.roots.first().map(|c| c.to_string()).unwrap_or_default();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    // Lines are printed as the manifest is read (in bounded memory); the summary's count is
    // checked against the entries at the end, an error then.
    let mut first = true;
    let summary = for_each_manifest_record(&f, |record| -> Result<()> {
        match (record, a.json) {
            (ManifestRecord::Summary { .. }, true) => write!(out, "{{\"entries\":[")?,
            (ManifestRecord::Summary { entry_count }, false) => {
                writeln!(out, "Batch {root}: {entry_count} entries")?;
                writeln!(out, "{:<62} {:<48} {:<20} PATH", "DAG CID (v1)", "DAG CID (v0)", "INDEXES")?;
            }
            (ManifestRecord::Entry(e), true) => {
                // As a JSON value (keys sorted), as the whole list was printed before.
                let v = serde_json::to_value(&e)?;
                write!(out, "{}{}", if first { "" } else { "," }, serde_json::to_string(&v)?)?;
                first = false;
            }
            (ManifestRecord::Entry(e), false) => {
                let v0 = e.dag_cid_v0.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
                let idx = format!("{:?}", e.path_indexes);
                writeln!(
                    out,
                    "{:<62} {:<48} {:<20} {}/{}/{}",
                    e.dag_cid_v1.to_string(),
                    v0,
                    idx,
                    e.path_prefixes[0],
                    e.path_prefixes[1],
                    e.dag_cid_v1
                )?;
            }
        }
        Ok(())
    });
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            let _ = out.flush();
            return Err(e.context(format!("{name}: manifest")));
        }
    };
    if a.json {
        let root = serde_json::to_string(&summary.info.root.to_string())?;
        writeln!(out, "],\"entry_count\":{},\"payload_cid\":{root}}}", summary.entries)?;
    }
    out.flush()?;
    Ok(())
}

/// Parses the CIDs given for a node source: one CID, a comma-separated list, or a file of CIDs.
fn node_cids(arg: &Path, aggregate: bool) -> Result<Vec<cid::Cid>> {
    let text = arg.to_string_lossy().into_owned();
    let items: Vec<String> = if aggregate && arg.is_file() {
        std::fs::read_to_string(arg)
            .with_context(|| text.clone())?
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    } else if aggregate {
        text.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    } else {
        vec![text.clone()]
    };
    if items.is_empty() {
        bail!("{text}: no CIDs given");
    }
    items.iter().map(|s| s.parse::<cid::Cid>().with_context(|| format!("invalid CID {s:?}"))).collect()
}

/// The result of a node-sourced run.
struct NodeRun {
    root: cid::Cid,
    car_size: u64,
    blocks: u64,
    piece: Option<commp::PieceInfo>,
    manifest: Option<carload::batch::ManifestBytes>,
    files: Option<(Vec<(String, cid::Cid)>, usize)>,
    elapsed: std::time::Duration,
}

fn node_run(
    arg: &Path,
    out: &Option<PathBuf>,
    force: bool,
    quiet: bool,
    batch: &BatchArgs,
    default_manifest: bool,
    with_commp: bool,
) -> Result<NodeRun> {
    let start = Instant::now();
    let addr = carload::ipfs::ApiAddr::parse(batch.ipfs_api.as_deref().unwrap())?;
    let cids = node_cids(arg, batch.aggregate)?;
    let manifest = if batch.aggregate { manifest_path(out, batch, default_manifest)? } else { None };
    if let Some(m) = &manifest {
        check_target(m, force)?;
    }
    if !is_stdout(out) {
        check_target(out.as_deref().unwrap(), force)?;
    }
    let progress = Progress::spinner(!quiet);
    let bar = progress.handle();
    let timeout = std::time::Duration::from_secs(batch.ipfs_timeout.max(1));
    let config = carload::ipfs::FetchConfig {
        node_timeout: timeout,
        request_timeout: timeout + std::time::Duration::from_secs(10),
        ..carload::ipfs::FetchConfig::default()
    };
    let fetcher = carload::ipfs::Fetcher::new(addr, config).with_progress(move |p| {
        if let Some(b) = &bar {
            b.set_position(p.bytes);
        }
    });
    let result = with_output(out, force, None, |dest| {
        dest.sequential(|w| {
            if batch.aggregate {
                let b = carload::batch::build_from_node(&fetcher, &cids, w, with_commp)?;
                Ok(NodeRun {
                    root: b.root,
                    car_size: b.car_size,
                    blocks: 0,
                    piece: b.piece,
                    manifest: Some(b.manifest),
                    files: Some((b.roots.iter().map(|c| (c.to_string(), c)).collect(), b.unique)),
                    elapsed: start.elapsed(),
                })
            } else {
                let r = carload::prepare::prepare_from_node(&fetcher, &cids[0], w, with_commp)?;
                Ok(NodeRun {
                    root: r.root,
                    car_size: r.car_size,
                    blocks: r.blocks,
                    piece: r.piece,
                    manifest: None,
                    files: None,
                    elapsed: start.elapsed(),
                })
            }
        })
    });
    progress.finish();
    let result = result?;
    if let (Some(m), Some(bytes)) = (&manifest, &result.manifest) {
        write_manifest_file(m, force, bytes)?;
    }
    Ok(result)
}

fn prepare_from_node(a: PrepareArgs) -> Result<()> {
    let r = node_run(&a.path, &a.out, a.force, a.quiet || a.json, &a.batch, true, true)?;
    let piece = r.piece.as_ref().expect("commP requested");
    let text = if a.json {
        let mut j = report::PrepareJson::new(&r.root, r.car_size, piece);
        if let Some((files, _)) = &r.files {
            j.files = Some(report::FileJson::list(files.iter().map(|(n, c)| (n.as_str(), *c))));
        }
        serde_json::to_string(&j)? + "\n"
    } else {
        let head = match &r.files {
            Some((files, unique)) => format!(
                "Entries:       {} CIDs ({} unique, {} duplicates)\n",
                files.len(),
                unique,
                files.len() - unique
            ),
            None => format!("Blocks:        {} fetched and verified\n", r.blocks),
        };
        head + &report::prepare_human(&r.root, r.car_size, piece, r.car_size, r.elapsed, &a.deal)
    };
    emit_result(&text, is_stdout(&a.out))
}
