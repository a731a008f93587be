//! Update-function tests (messages in, state and effects out, no terminal) and screen snapshots
//! (`TestBackend` + `insta`) of the workstation.

use super::app::{App, Effect, Focus, Hashed, Level, Modal, Msg, PreviewContent, Settings, Shown};
use super::batches::Frozen;
use super::tree::NONE;
use super::{view, worker};
use carload::profile::Profile;
use carload::shipment::plan::{plan, PlanOptions, SECTOR_32GIB};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::{Path, PathBuf};

fn settings(piece: u64) -> Settings {
    let mut plan = PlanOptions::for_sector(SECTOR_32GIB, Profile::default());
    plan.piece_size = piece;
    plan.min_piece_size = (1 << 20).min(piece);
    Settings {
        plan,
        inputs: vec!["data".into()],
        base: Some("/work".into()),
        root_names: Vec::new(),
        shipment: None,
        out: None,
        drives: Vec::new(),
        tmpdir: std::env::temp_dir(),
        color: false,
        stale_after: 300,
        deal: super::app::DealForm::default(),
        keys: super::keys::Keymap::default(),
        config_path: None,
        include_carload_outputs: false,
        pack_top_up: true,
    }
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// Feeds keys; returns every effect.
fn keys(app: &mut App, s: &str) -> Vec<Effect> {
    s.chars().flat_map(|c| app.update(key(c))).collect()
}

thread_local! {
    /// The drive set of this test's builds (as the workers hold it).
    static DRIVES: worker::Drives = Default::default();
}

/// Runs effects synchronously with the workers' own code (`worker::perform`, and a build
/// slot's function), feeding their results back.
fn settle(app: &mut App, effects: Vec<Effect>) {
    let mut queue = effects;
    while let Some(e) = queue.pop() {
        let (tx, rx) = std::sync::mpsc::channel();
        match e {
            Effect::Build { batch, header, out, drive, drives: Some(target) } => {
                let session = DRIVES.with(|d| d.clone());
                worker::build_blocking_on(batch, header, out, drive, session, target, &tx);
            }
            Effect::Build { batch, header, out, drive, drives: None } => {
                let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                worker::build_blocking(batch, header, out, drive, cancel, &tx);
            }
            Effect::AddDrive(dir) => DRIVES.with(|d| d.lock().unwrap().add(dir)),
            Effect::Watch { out, drives, header, batches, stale_after, .. } if !drives.is_empty() => {
                let (seen, d) = worker::poll_drives(&drives, &header, &batches, stale_after);
                let _ = tx.send(Msg::Drives(d));
                let _ = tx.send(Msg::Watched { at: 1.0, seen });
                let _ = out;
            }
            Effect::Watch { out, header, batches, stale_after, deals, .. } => {
                if let Some(path) = deals {
                    let _ = tx.send(Msg::Deals(super::deals::read(&path, &header, &batches)));
                }
                let _ = tx.send(Msg::Watched { at: 1.0, seen: worker::poll(&out, &header, &batches, stale_after) });
            }
            e => {
                let cancel = std::sync::atomic::AtomicBool::new(false);
                worker::perform(e, &tx, &std::env::temp_dir(), &cancel);
            }
        }
        drop(tx);
        for m in rx {
            queue.extend(app.update(m));
        }
    }
}

/// A real tree on disk: `(relative path, size)`; a path ending in `/` is an empty folder.
fn make_tree(root: &Path, files: &[(&str, usize)]) {
    for (p, n) in files {
        let path = root.join(p);
        if p.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..*n).map(|i| (i * 7 + p.len()) as u8).collect();
        std::fs::write(&path, bytes).unwrap();
    }
}

/// Walks `roots` with the library walker and feeds the listings in order, then `ScanDone`. The
/// shipment's base is resolved as `carload tui` resolves it, from the first root's folder.
fn scan(app: &mut App, roots: &[PathBuf]) {
    scan_with(app, roots, false)
}

/// [`scan`], the walk run without the permission bypass root has (see [`without_permission_bypass`]) when
/// `unprivileged`.
fn scan_with(app: &mut App, roots: &[PathBuf], unprivileged: bool) {
    use std::os::unix::ffi::OsStrExt;
    let cwd = roots[0].parent().unwrap();
    let r = carload::shipment::plan::resolve_inputs(cwd, roots).unwrap();
    app.settings.base = Some(carload::shipment::file::path_to_name(&r.base));
    app.settings.root_names = r.names.iter().map(|n| n.as_os_str().as_bytes().to_vec()).collect();
    app.tree.set_root_names(app.settings.root_names.clone());
    let profile = app.settings.plan.profile;
    let outputs = !app.settings.include_carload_outputs;
    let walk = move || {
        let cost = move |s: u64| carload::shipment::overhead::EntryCost::of_file(s, &profile).car_bytes;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let got = std::sync::Mutex::new(Vec::new());
        let o = carload::walk::WalkOptions { threads: 2, cost: &cost, stop: &stop, outputs, readable: true };
        carload::walk::walk(roots, &o, &|l| got.lock().unwrap().push(l));
        got.into_inner().unwrap()
    };
    let listings = if unprivileged { self::without_permission_bypass(walk) } else { walk() };
    for l in listings {
        app.update(Msg::Listing(l));
    }
    let e = app.update(Msg::ScanDone(0.5));
    settle(app, e);
}

include!("../testing/caps.rs");

const FILES: &[(&str, usize)] = &[
    ("data/.hidden", 7),
    ("data/a.txt", 120),
    ("data/b.bin", 3000),
    ("data/empty", 0),
    ("data/photos/p1.jpg", 40_000),
    ("data/photos/p2.jpg", 700_000),
    ("data/photos/raw/r1", 12_345),
    ("data/zzz/", 0),
];

/// An app over a synthetic tree on disk, cwd-independent (absolute roots).
fn app_on_disk(piece: u64) -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), FILES);
    let mut s = settings(piece);
    let root = dir.path().join("data");
    s.inputs = vec![root.display().to_string()];
    let mut app = App::new(s, (120, 40));
    scan(&mut app, &[root]);
    (dir, app)
}

fn row_names(app: &mut App) -> Vec<String> {
    app.refresh_rows();
    app.browser.rows.iter().map(|&id| app.tree.display_name(id).into_owned()).collect()
}

fn select(app: &mut App, name: &str) {
    app.refresh_rows();
    let id = *app.browser.rows.iter().find(|&&id| app.tree.display_name(id) == name).expect("entry shown");
    app.browser.selected = id;
}

#[test]
fn opens_the_single_root_and_lists_it_by_name() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    assert!(app.tree.complete());
    assert_eq!(row_names(&mut app), [".hidden", "a.txt", "b.bin", "empty", "photos", "zzz"]);
    let g = app.tree.grand_totals();
    assert_eq!((g.files, g.bytes), (7, 7 + 120 + 3000 + 40_000 + 700_000 + 12_345));
}

#[test]
fn marks_are_kept_by_entry_across_folders_and_sorts() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    select(&mut app, "a.txt");
    app.update(key(' '));
    let marked = app.tree.find("data/a.txt").unwrap();
    assert!(app.marks.is_marked(&app.tree, marked));
    // Space moved down to the next row.
    assert_eq!(app.tree.display_name(app.browser.selected), "b.bin");
    select(&mut app, "photos");
    app.update(code(KeyCode::Enter));
    assert_eq!(row_names(&mut app), ["p1.jpg", "p2.jpg", "raw"]);
    app.update(code(KeyCode::Backspace));
    assert_eq!(app.tree.display_name(app.browser.selected), "photos", "going up selects the folder left");
    keys(&mut app, "S");
    assert_eq!(row_names(&mut app)[0], "photos", "largest first");
    keys(&mut app, "S");
    assert_eq!(row_names(&mut app).last().unwrap(), "photos", "the sort key again reverses");
    assert!(app.marks.is_marked(&app.tree, marked), "marks follow the entry, not the row");
    assert_eq!(app.marked_totals().files, 1);
}

#[test]
fn mark_all_toggles_and_counts_the_subtree() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    keys(&mut app, "A");
    let t = app.marked_totals();
    assert_eq!(t.files, 7);
    assert_eq!(app.pieces_needed(), 1);
    keys(&mut app, "A");
    assert!(app.marks.is_empty());
}

#[test]
fn filter_and_hidden_toggle_change_rows_only() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    keys(&mut app, "/PHO");
    assert_eq!(row_names(&mut app), ["photos"]);
    app.update(code(KeyCode::Enter));
    assert!(!app.browser.editing_filter);
    app.update(code(KeyCode::Esc));
    assert_eq!(row_names(&mut app).len(), 6);
    keys(&mut app, ".");
    assert!(!row_names(&mut app).contains(&".hidden".to_string()));
    // Marking the folder still takes the dot-file: batches include hidden entries.
    app.update(code(KeyCode::Backspace));
    keys(&mut app, " ");
    assert_eq!(app.marked_totals().files, 7);
}

#[test]
fn auto_pack_gives_the_batches_plan_gives() {
    let piece = 512 << 10; // small pieces: several batches and a split file
    let (_d, mut app) = app_on_disk(piece);
    keys(&mut app, "A");
    let effects = keys(&mut app, "p");
    assert!(matches!(effects[..], [Effect::Pack { .. }]));
    assert!(app.packing);
    settle(&mut app, effects);
    assert!(!app.packing);
    assert!(app.marks.is_empty(), "packed marks are consumed: {:?}", app.message);
    // The CLI planner over the same files, in walk order.
    let root = _d.path().join("data");
    let r = carload::shipment::plan::resolve_inputs(_d.path(), &[root]).unwrap();
    let walked = carload::shipment::plan::walk_tree(&r.paths, &r.names, false).unwrap();
    let files = (0..walked.len()).map(|i| walked.source_file(i)).collect();
    let cli = plan(files, &app.settings.plan, app.settings.inputs.clone(), app.settings.base.clone()).unwrap();
    let ours = app.batches.records(&app.tree, &app.settings.plan);
    assert!(cli.batches.len() > 1);
    assert!(ours.iter().flat_map(|b| &b.files).any(|f| f.part.is_some()), "the 700 KB file is split");
    assert_eq!(ours, cli.batches);
    // Packing again: everything is already in a batch.
    keys(&mut app, "A");
    assert!(keys(&mut app, "p").is_empty());
    assert_eq!(app.message.as_ref().unwrap().0, Level::Error);
}

/// `p` tops up open batches (not built, not being built) before opening new ones, unless the
/// config turns it off; a batch queued for a build is never topped up, and a batch edited while
/// packing runs makes the result be discarded.
#[test]
fn auto_pack_tops_up_open_batches_first() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    let pack = |app: &mut App, name: &str| {
        select(app, name);
        keys(app, " ");
        let e = keys(app, "p");
        settle(app, e);
        app.message.clone().unwrap().1
    };
    let said = pack(&mut app, "a.txt");
    assert!(said.contains("auto-packed 1 file into 1 new batch"), "{said}");
    let said = pack(&mut app, "b.bin");
    assert_eq!(said, "auto-packed 1 file: topped up b00000 with 1 entry");
    assert_eq!(app.batches.list.len(), 1);
    assert_eq!(app.batches.list[0].len(), 2);
    // Queued for a build: not open.
    app.builds.activity.insert("b00000".into(), super::builds::Activity::Queued);
    let said = pack(&mut app, "empty");
    assert!(said.contains("into 1 new batch") && said.contains("b00001"), "{said}");
    assert_eq!(app.batches.list[0].len(), 2);
    app.builds.activity.clear();
    // Off in the config: new batches only.
    app.settings.pack_top_up = false;
    let said = pack(&mut app, ".hidden");
    assert!(said.contains("into 1 new batch"), "{said}");
    assert_eq!(app.batches.list.len(), 3);
    // A batch changed while packing: the result is discarded.
    app.settings.pack_top_up = true;
    select(&mut app, "zzz");
    select(&mut app, "photos");
    keys(&mut app, " ");
    let e = keys(&mut app, "p");
    select(&mut app, "a.txt");
    keys(&mut app, "x");
    settle(&mut app, e);
    let said = app.message.clone().unwrap().1;
    assert!(said.contains("auto-pack discarded") && said.contains("changed meanwhile"), "{said}");
    assert_eq!(app.batches.list.len(), 3);
}

#[test]
fn add_refuses_what_does_not_fit_and_says_by_how_much() {
    let (_d, mut app) = app_on_disk(512 << 10);
    select(&mut app, "photos");
    keys(&mut app, " ");
    keys(&mut app, "a");
    let (level, text) = app.message.clone().unwrap();
    assert_eq!(level, Level::Error);
    assert!(text.contains("would not fit") && text.contains("over the piece"), "{text}");
    assert!(app.batches.list.iter().all(|b| b.is_empty()));
    assert!(!app.marks.is_empty(), "refused marks stay");
}

#[test]
fn add_refuses_files_already_in_another_batch() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    select(&mut app, "a.txt");
    keys(&mut app, " a");
    assert_eq!(app.batches.list[0].len(), 1);
    keys(&mut app, "n");
    select(&mut app, "a.txt");
    keys(&mut app, " ");
    keys(&mut app, "a");
    let (level, text) = app.message.clone().unwrap();
    assert_eq!(level, Level::Error);
    assert!(text.contains("already in batches") && text.contains("b00000"), "{text}");
    assert!(app.batches.list[1].is_empty());
}

#[test]
fn editing_a_saved_batch_gives_it_a_new_id() {
    let (d, mut app) = app_on_disk(SECTOR_32GIB);
    app.settings.shipment = Some(d.path().join("s.jsonl"));
    select(&mut app, "a.txt");
    keys(&mut app, " a");
    assert!(app.dirty);
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    assert!(!app.dirty);
    assert_eq!(app.batches.list[0].id, "b00000");
    select(&mut app, "b.bin");
    app.pane.row = 0;
    keys(&mut app, " a");
    assert_eq!(app.batches.list[0].id, "b00001", "a saved batch's outputs must not be taken for new contents");
    assert!(app.dirty);
}

#[test]
fn removing_frees_files_and_batches_ask_first() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    assert_eq!(app.batches.list.len(), 1);
    select(&mut app, "a.txt");
    keys(&mut app, "x");
    assert_eq!(app.batches.list[0].len(), 6);
    let a = app.browser.selected;
    assert!(app.batches.batch_of(a).is_none());
    app.update(code(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Batches);
    keys(&mut app, "x");
    assert!(matches!(app.modal, Some(Modal::ConfirmRemove(0))));
    keys(&mut app, "n"); // any other key keeps it
    assert_eq!(app.batches.list.len(), 1);
    keys(&mut app, "xy");
    assert!(app.batches.list.is_empty());
    let folder = app.tree.folders[app.browser.folder as usize].node;
    assert_eq!(app.tree.folder_of(folder).unwrap().batched, 0);
}

#[test]
fn quitting_with_unsaved_changes_asks() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    assert!(matches!(keys(&mut app, "q")[..], [Effect::Quit]));
    keys(&mut app, "n");
    assert!(keys(&mut app, "q").is_empty());
    assert!(matches!(app.modal, Some(Modal::ConfirmQuit)));
    app.update(code(KeyCode::Esc));
    assert!(app.modal.is_none());
    // The key that opened the dialog never discards: q q stays, and so does Ctrl-C twice.
    keys(&mut app, "q");
    assert!(keys(&mut app, "q").is_empty(), "q q must not quit without saving");
    assert!(app.modal.is_none() && app.dirty);
    app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
    assert!(matches!(app.modal, Some(Modal::ConfirmQuit)));
    assert!(app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))).is_empty());
    keys(&mut app, "q");
    assert!(keys(&mut app, "n").is_empty(), "n stays");
    assert!(app.modal.is_none());
    keys(&mut app, "q");
    let text = screen(&mut app, 100, 30);
    assert!(text.contains("d  quit and discard the changes") && text.contains("s  save, then quit"), "{text}");
    assert!(matches!(keys(&mut app, "d")[..], [Effect::Quit]), "d discards");
}

#[test]
fn save_asks_for_a_path_then_quits_after_saving() {
    let (d, mut app) = app_on_disk(SECTOR_32GIB);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    keys(&mut app, "q");
    keys(&mut app, "s");
    let Some(Modal::SavePath(default)) = app.modal.clone() else { panic!("asks where to save") };
    assert_eq!(default, "shipment.jsonl");
    for _ in 0..default.len() {
        app.update(code(KeyCode::Backspace));
    }
    let path = d.path().join("out.jsonl");
    // A file is there: the save effect finds it (the update function never looks at the disk)
    // and the workstation asks before replacing it.
    std::fs::write(&path, b"precious").unwrap();
    keys(&mut app, &path.display().to_string());
    let run = |app: &mut App, effects: Vec<Effect>| {
        let mut out = Vec::new();
        for e in effects {
            let (tx, rx) = std::sync::mpsc::channel();
            worker::perform(e, &tx, &std::env::temp_dir(), &std::sync::atomic::AtomicBool::new(false));
            drop(tx);
            for m in rx {
                out.extend(app.update(m));
            }
        }
        out
    };
    let e = app.update(code(KeyCode::Enter));
    assert!(matches!(e[..], [Effect::Save { overwrite: false, .. }]), "{e:?}");
    assert!(run(&mut app, e).is_empty());
    assert!(matches!(app.modal, Some(Modal::ConfirmOverwrite(_))), "{:?}", app.modal);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious", "nothing written before asking");
    let e = keys(&mut app, "y");
    let quit = matches!(run(&mut app, e)[..], [Effect::Quit]);
    assert!(quit, "s in the quit dialog saves (here after asking to replace), then quits");
    let s = carload::shipment::read_shipment(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    assert_eq!(s.header.files, 7);
}

#[test]
fn dry_run_shows_what_build_produces_and_cancel_drops_late_results() {
    let (d, mut app) = app_on_disk(SECTOR_32GIB);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    app.update(code(KeyCode::Tab));
    let e = keys(&mut app, "v");
    assert!(e.is_empty());
    let Some(Modal::Preview(p)) = &app.modal else { panic!("preview open") };
    let PreviewContent::Planned(entries) = &p.content else { panic!("planned first") };
    assert_eq!(entries.len(), 7, "every file, whole, in one 32 GiB batch");
    // Cancel drops a result that arrives late.
    let e = keys(&mut app, "d");
    assert!(matches!(e[..], [Effect::DryRun { .. }]));
    assert!(matches!(keys(&mut app, "c")[..], [Effect::CancelDryRun]));
    app.update(Msg::DryRunDone(Err("late".into())));
    assert!(app.modal.is_none());
    // A real dry run equals a real build.
    keys(&mut app, "v");
    let e = keys(&mut app, "d");
    settle(&mut app, e);
    let Some(Modal::Preview(p)) = &app.modal else { panic!("preview open") };
    let PreviewContent::Hashed { hashed, built: false } = p.content.clone() else { panic!("{:?}", p.content) };
    let rec = app.batches.records(&app.tree, &app.settings.plan).remove(0);
    let header = carload::shipment::plan::header(
        &app.settings.plan,
        vec![],
        app.settings.base.clone(),
        std::slice::from_ref(&rec),
    );
    let out = d.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let places = carload::shipment::build::Places { dir: &out, spool_dir: &out, source_root: None };
    let r = carload::shipment::build::build_batch(
        &header,
        &rec,
        places,
        &mut carload::event::Ignore,
        &|| true,
        &mut carload::output::create_only,
    )
    .unwrap();
    assert_eq!(hashed.payload_cid, r.payload_cid);
    assert_eq!(hashed.piece_cid, r.piece_cid);
    assert_eq!(hashed.piece_size, r.piece_size);
    assert_eq!(hashed.car_size, r.car_size);
    let manifest = std::fs::read_to_string(out.join("b00000.car.manifest")).unwrap();
    assert_eq!(hashed.manifest, manifest.lines().collect::<Vec<_>>());
    // With the output folder known, the batch shows as built and the preview reads its CAR.
    app.update(code(KeyCode::Esc));
    app.settings.out = Some(out.clone());
    let e = app.update(Msg::Tick(1.0)); // any message: the watcher is told the batches
    settle(&mut app, e);
    assert!(app.batches.list[0].result.is_some());
    let e = keys(&mut app, "v");
    settle(&mut app, e);
    let Some(Modal::Preview(p)) = &app.modal else { panic!() };
    let PreviewContent::Hashed { hashed: h2, built: true } = &p.content else { panic!("{:?}", p.content) };
    assert_eq!(h2.payload_cid, r.payload_cid);
    assert_eq!(h2.manifest, hashed.manifest);
}

#[test]
fn a_loaded_shipment_is_matched_after_the_scan_and_changes_freeze_it() {
    let (d, mut app) = app_on_disk(512 << 10);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let records = app.batches.records(&app.tree, &app.settings.plan);
    let n = records.len();
    // Reopen: batches load frozen, resolve after the scan.
    let mut again = App::new(app.settings.clone(), (120, 40));
    again.load_batches(records.clone());
    assert!(again.batches.list.iter().all(|b| b.frozen == Some(Frozen::Resolving)));
    scan(&mut again, &[PathBuf::from(&app.settings.inputs[0])]);
    assert!(again.batches.list.iter().all(|b| b.frozen.is_none()));
    assert_eq!(again.batches.records(&again.tree, &again.settings.plan), records);
    // A file rewritten since planning freezes its batch, which is saved as it was.
    std::fs::write(d.path().join("data/a.txt"), b"changed").unwrap();
    let mut third = App::new(app.settings.clone(), (120, 40));
    third.load_batches(records.clone());
    scan(&mut third, &[PathBuf::from(&app.settings.inputs[0])]);
    let frozen: Vec<_> = third.batches.list.iter().filter(|b| b.frozen.is_some()).collect();
    assert_eq!(frozen.len(), 1);
    assert!(matches!(&frozen[0].frozen, Some(Frozen::Changed { changed: 1, .. })));
    assert_eq!(third.batches.records(&third.tree, &third.settings.plan), records);
    assert_eq!(third.batches.list.len(), n);
    // New batches never reuse a loaded ID.
    keys(&mut third, "n");
    assert_eq!(third.batches.list.last().unwrap().id, format!("b{n:05}"));
}

#[test]
fn unshippable_entries_cannot_be_marked() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("data/f", 5)]);
    std::os::unix::fs::symlink("nowhere", dir.path().join("data/broken")).unwrap();
    let mut app = App::new(settings(SECTOR_32GIB), (120, 40));
    scan(&mut app, &[dir.path().join("data")]);
    select(&mut app, "broken");
    keys(&mut app, " ");
    assert!(app.marks.is_empty());
    assert!(app.message.as_ref().unwrap().1.contains("broken symlink"));
    assert_eq!(app.tree.grand_totals().unshippable, 1);
}

#[test]
fn mouse_clicks_select_and_focus_and_the_wheel_scrolls() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let (_d, mut app) = app_on_disk(512 << 10);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    assert!(app.batches.list.len() >= 2);
    let click = |column, row| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    // Browser row 3 (0-based 2) is b.bin: rows start at screen line 4.
    app.update(click(5, 6));
    assert_eq!(app.focus, Focus::Browser);
    assert_eq!(app.tree.display_name(app.browser.selected), "b.bin");
    // The second batch: its two lines start at screen line 3 + 2.
    app.update(click(100, 5));
    assert_eq!(app.focus, Focus::Batches);
    assert_eq!(app.pane.row, 1);
    let wheel =
        Msg::Mouse(MouseEvent { kind: MouseEventKind::ScrollDown, column: 5, row: 10, modifiers: KeyModifiers::NONE });
    app.update(wheel);
    assert_eq!(app.tree.display_name(app.browser.selected), "zzz", "three rows down");
}

// ---- Screens -------------------------------------------------------------------------------

/// A deterministic app (no disk): listings built by hand.
fn synthetic() -> App {
    use carload::walk::{Kind, ROOTS};
    let profile = Profile::default();
    let cost = |s: u64| carload::shipment::overhead::EntryCost::of_file(s, &profile).car_bytes;
    let listing = |folder: u32, first: u32, kids: &[(&str, Kind, u64)]| {
        super::tree::tests::listing_with(folder, first, kids, &cost)
    };
    let mut app = App::new(settings(SECTOR_32GIB), (80, 24));
    app.update(Msg::Listing(listing(ROOTS, 0, &[("archive", Kind::Folder, 0)])));
    app.update(Msg::Listing(listing(
        0,
        1,
        &[
            (".cache", Kind::Folder, 0),
            ("2019", Kind::Folder, 0),
            ("2020", Kind::Folder, 0),
            ("README.md", Kind::File, 2_345),
            ("pipe", Kind::Other, 0),
            ("scan.tiff", Kind::File, 734_003_200),
        ],
    )));
    app.update(Msg::Listing(listing(
        2,
        7,
        &[("a.mov", Kind::File, 12_884_901_888), ("b.mov", Kind::File, 9_663_676_416)],
    )));
    app.update(Msg::Listing(listing(3, 9, &[("c.mov", Kind::File, 21_474_836_480), ("notes.txt", Kind::File, 512)])));
    app
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    app.update(Msg::Resize(w, h));
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    format!("{}", t.backend())
}

#[test]
fn screens() {
    let mut app = synthetic();
    insta::assert_snapshot!("scanning_80x24", screen(&mut app, 80, 24));
    app.update(Msg::Listing(carload::walk::Listing { folder: 1, first: 11, ..Default::default() }));
    app.update(Msg::ScanDone(1.25));
    insta::assert_snapshot!("scanned_120x40", screen(&mut app, 120, 40));
    // Mark 2019 and 2020, auto-pack: two 32 GiB batches.
    app.browser.selected = 2;
    keys(&mut app, "  ");
    insta::assert_snapshot!("marked_80x24", screen(&mut app, 80, 24));
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    insta::assert_snapshot!("packed_120x40", screen(&mut app, 120, 40));
    app.update(code(KeyCode::Tab));
    insta::assert_snapshot!("batches_focused_80x24", screen(&mut app, 80, 24));
    keys(&mut app, "v");
    insta::assert_snapshot!("preview_planned_80x24", screen(&mut app, 80, 24));
    if let Some(Modal::Preview(p)) = &mut app.modal {
        p.content = PreviewContent::Hashing { done: 3 << 30, total: 12 << 30 };
    }
    insta::assert_snapshot!("preview_hashing_80x24", screen(&mut app, 80, 24));
    if let Some(Modal::Preview(p)) = &mut app.modal {
        p.content = PreviewContent::Hashed {
            hashed: Hashed {
                payload_cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
                car_size: 34_000_000_123,
                piece_size: 34_359_738_368,
                piece_cid: "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq".into(),
                piece_cid_v2: "bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq".into(),
                entries: vec![("archive/2020/c.mov".into(), "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB".into())],
                manifest: vec![
                    r#"{"RecordType":"DagAggregatePreamble","Version":1}"#.into(),
                    r#"{"RecordType":"DagAggregateSummary","EntryCount":1,"EntriesSortedBy":"DagCidV1"}"#.into(),
                ],
            },
            built: false,
        };
    }
    insta::assert_snapshot!("preview_hashed_120x40", screen(&mut app, 120, 40));
    app.update(code(KeyCode::Esc));
    keys(&mut app, "?");
    let mut filters = insta::Settings::clone_current();
    filters.add_filter(r"Config: [^ ]+", "Config: [CONFIG PATH]");
    filters.bind(|| insta::assert_snapshot!("help_120x40", screen(&mut app, 120, 40)));
    app.update(code(KeyCode::Esc));
    insta::assert_snapshot!("too_small_60x20", screen(&mut app, 60, 20));
    assert_ne!(app.browser.selected, NONE);
}

// ---- Building, watching, exporting -----------------------------------------------------------

use super::app::{Done, Report};
use super::builds::Activity;
use carload::shipment::status::{BatchStatus, State};

/// An app on disk, packed into several batches, with a shipment path and an output folder.
fn packed(d_piece: u64) -> (tempfile::TempDir, App) {
    let (d, mut app) = app_on_disk(d_piece);
    app.settings.shipment = Some(d.path().join("ship.jsonl"));
    app.settings.out = Some(d.path().join("out"));
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    (d, app)
}

/// An app over `dir/data` (shipment `dir/ship.jsonl`, CARs in `dir/out`), every file marked and
/// auto-packed into pieces of `piece` bytes.
fn packed_over(dir: &Path, piece: u64) -> App {
    let mut s = settings(piece);
    s.inputs = vec![dir.join("data").display().to_string()];
    s.shipment = Some(dir.join("ship.jsonl"));
    s.out = Some(dir.join("out"));
    let mut app = App::new(s, (120, 40));
    scan(&mut app, &[dir.join("data")]);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    app
}

/// One fill figure (plan's: CAR bound ÷ the batch's own piece's usable bytes) in the gauge and
/// the details; after a build, a batch whose real piece is smaller than planned shows it; built
/// batches sharing a piece CID are flagged with the others' IDs.
#[test]
fn fill_real_piece_and_shared_pieces_are_shown_as_status_shows_them() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("data")).unwrap();
    // A file of zeros split over 1 MiB pieces: its parts build identical CARs.
    std::fs::write(d.path().join("data/z"), vec![0u8; 3 << 20]).unwrap();
    let mut app = packed_over(d.path(), 1 << 20);
    assert_eq!(app.batches.list.len(), 4);
    let fill = carload::shipment::file::fill(app.batches.list[0].bound(), 1 << 20) * 100.0;
    app.update(code(KeyCode::Tab));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains(&format!("{fill:.3}% full")), "gauge: plan's {fill:.3}%\n{text}");
    assert!(text.contains(&format!("fill {fill:.3}% of its 1,040,384 usable bytes")), "details\n{text}");
    assert!(!text.contains("share a piece"), "{text}");
    let e = keys(&mut app, "B");
    settle(&mut app, e);
    assert!(app.batches.list.iter().all(|b| b.result.is_some()), "{:?}", app.builds.log);
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("Batches 4 · 4 built · 4 share a piece!"), "{text}");
    assert!(text.contains("b00000 · 1 file · 1.0 MiB           same piece"), "{text}");
    assert!(text.contains("b00000: SAME PIECE as b00001, b00002, b00003 (baga"), "{text}");

    // Repetitive data: planned as an 8 MiB piece, built as a 1 MiB one.
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("data")).unwrap();
    for i in 0..4 {
        std::fs::write(d.path().join(format!("data/z{i}")), vec![0u8; 1 << 20]).unwrap();
    }
    let mut app = packed_over(d.path(), 8 << 20);
    app.update(code(KeyCode::Tab));
    assert!(screen(&mut app, 120, 40).contains("b00000 · 4 files · 8.0 MiB"));
    let e = keys(&mut app, "B");
    settle(&mut app, e);
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("b00000 · 1.0 MiB (planned 8.0 MiB)"), "{text}");
    assert!(text.contains("piece 1.0 MiB (planned 8.0 MiB)"), "details\n{text}");
}

#[test]
fn build_all_saves_first_then_builds_every_batch_like_the_cli() {
    let (d, mut app) = packed(512 << 10);
    let n = app.batches.list.len();
    assert!(n >= 2);
    assert!(app.dirty);
    let e = keys(&mut app, "B");
    assert!(matches!(e[..], [Effect::Save { .. }]), "unsaved batches are saved before building");
    settle(&mut app, e);
    assert!(!app.dirty);
    assert!(app.batches.list.iter().all(|b| b.result.is_some()), "{:?}", app.builds.log);
    assert_eq!(app.builds.built_here, n);
    assert!(app.builds.activity.is_empty());
    assert!(app.builds.log.iter().any(|l| l.text.contains("b00000 built in")));
    // The CLI builds the saved shipment into another folder: same CARs.
    let s = carload::shipment::read_shipment(std::io::BufReader::new(
        std::fs::File::open(d.path().join("ship.jsonl")).unwrap(),
    ))
    .unwrap();
    let other = d.path().join("cli");
    std::fs::create_dir_all(&other).unwrap();
    for b in &s.batches {
        let places = carload::shipment::build::Places { dir: &other, spool_dir: &other, source_root: None };
        carload::shipment::build::build_batch(
            &s.header,
            b,
            places,
            &mut carload::event::Ignore,
            &|| true,
            &mut carload::output::create_only,
        )
        .unwrap();
        let ours = std::fs::read(d.path().join("out").join(format!("{}.car", b.id))).unwrap();
        let cli = std::fs::read(other.join(format!("{}.car", b.id))).unwrap();
        assert!(ours == cli, "{} differs", b.id);
    }
    // Resume: reopening finds every batch built and builds nothing.
    let mut again = App::new(app.settings.clone(), (120, 40));
    again.load_batches(s.batches.clone());
    scan(&mut again, &[PathBuf::from(&app.settings.inputs[0])]);
    assert!(again.batches.list.iter().all(|b| b.result.is_some()), "the watcher's first poll finds them");
    assert!(keys(&mut again, "B").is_empty());
    let built = again.batches.list.len();
    let screen_text = screen(&mut again, 120, 40);
    assert!(screen_text.contains(&format!("Built {built}/{built}")), "{screen_text}");
}

#[test]
fn a_changed_source_fails_the_build_with_the_reason_and_can_be_retried() {
    let (d, mut app) = packed(512 << 10);
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    std::fs::write(d.path().join("data/a.txt"), b"rewritten").unwrap();
    let i = app
        .batches
        .list
        .iter()
        .position(|b| b.bin.items.iter().any(|it| app.tree.path(it.file as u32).ends_with("/a.txt")));
    let i = i.unwrap();
    app.update(code(KeyCode::Tab));
    app.pane.row = i;
    let e = keys(&mut app, "b");
    settle(&mut app, e);
    let id = app.batches.list[i].id.clone();
    let Some(Activity::Failed(reason)) = app.builds.activity.get(&id) else { panic!("{:?}", app.builds.activity) };
    assert!(reason.contains("a.txt") && reason.contains("changed since planning"), "{reason}");
    assert!(app.builds.log.iter().any(|l| l.error && l.text.contains("FAILED")));
    let out = app.settings.out.clone().unwrap();
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from(format!("{id}.failed"))], "a failed build leaves only its record");
    // r retries (and fails again for the same reason).
    let e = keys(&mut app, "r");
    assert!(matches!(e[..], [Effect::Build { .. }]));
    let e2 = app.update(build_msg(&id, 1.0, Report::Finished(Done::Failed("again".into()))));
    assert!(e2.is_empty());
    // R re-plans it: new sizes from disk, a new ID; then it builds.
    let old_bound = app.batches.list[i].bound();
    let e = keys(&mut app, "R");
    settle(&mut app, e);
    let b = &app.batches.list[i];
    assert_ne!(b.id, id, "a re-planned batch never keeps its ID");
    assert!(b.bound() < old_bound);
    assert!(app.dirty);
    let e = keys(&mut app, "b");
    settle(&mut app, e);
    assert!(app.batches.list[i].result.is_some(), "{:?}", app.builds.log);
}

fn build_msg(id: &str, at: f64, report: Report) -> Msg {
    Msg::Build { id: id.into(), at, report }
}

#[test]
fn progress_cancel_and_other_builders_are_tracked_from_messages() {
    let (_d, mut app) = packed(512 << 10);
    app.dirty = false;
    app.update(code(KeyCode::Tab));
    let e = keys(&mut app, "b");
    assert!(matches!(e[..], [Effect::Build { .. }]));
    let id = app.batches.list[0].id.clone();
    assert_eq!(app.builds.activity.get(&id), Some(&Activity::Queued));
    app.update(build_msg(&id, 100.0, Report::Started));
    app.update(build_msg(&id, 101.0, Report::Phase(carload::event::Phase::Hashing)));
    app.update(build_msg(&id, 102.0, Report::Progress { bytes: 100_000, files: 3, car: 0 }));
    let Some(Activity::Running(p)) = app.builds.activity.get(&id) else { panic!() };
    assert_eq!((p.bytes, p.files), (100_000, 3));
    assert_eq!(p.rate(), 50_000.0);
    // Quitting while it builds asks.
    assert!(keys(&mut app, "q").is_empty());
    assert!(matches!(app.modal, Some(Modal::ConfirmQuit)));
    app.update(code(KeyCode::Esc));
    // Edits of a building batch are refused; c cancels it.
    keys(&mut app, "x");
    assert!(app.message.as_ref().unwrap().1.contains("building"));
    assert!(matches!(keys(&mut app, "c")[..], [Effect::CancelBuild(ref c)] if *c == id));
    app.update(build_msg(&id, 103.0, Report::Finished(Done::Cancelled)));
    assert!(!app.builds.activity.contains_key(&id));
    assert!(app.builds.log.back().unwrap().text.contains("cancelled"));
    // Another builder's lock, then its result, seen in the output folder.
    let other = app.batches.list[1].id.clone();
    let bytes = app.batches.list[1].bytes(&app.tree);
    let seen = |state: State, result: Option<carload::shipment::BatchResult>| Msg::Watched {
        at: 110.0,
        seen: vec![BatchStatus { id: other.clone(), bytes, state, result }],
    };
    let lock = |age, stale| {
        let (host, pid) = ("node7".to_string(), 42);
        if stale {
            State::StaleLock { host, pid, heartbeat_age: age, reason: carload::shipment::lock::Verdict::NotRefreshed }
        } else {
            State::Building { host, pid, heartbeat_age: age, progress: None }
        }
    };
    app.update(seen(lock(5, false), None));
    assert!(matches!(app.builds.activity.get(&other), Some(Activity::Foreign { stale: false, .. })));
    assert!(keys(&mut app, "B").iter().all(|e| !matches!(e, Effect::Build { batch, .. } if batch.id == other)));
    app.update(seen(lock(900, true), None));
    assert!(matches!(app.builds.activity.get(&other), Some(Activity::Foreign { stale: true, .. })));
    // A result built from other contents (another fingerprint) is not taken.
    let rec = super::batches::record(&app.tree, &app.batches.list[1], &app.settings.plan);
    let header = carload::shipment::plan::header(
        &app.settings.plan,
        app.settings.inputs.clone(),
        app.settings.base.clone(),
        std::slice::from_ref(&rec),
    );
    let r = carload::shipment::BatchResult {
        fingerprint: Some(carload::shipment::build::fingerprint(&header, &rec)),
        ..carload::shipment::BatchResult::sample_for_tests(&other)
    };
    let built = |r: &carload::shipment::BatchResult| State::Built {
        payload_cid: r.payload_cid.clone(),
        piece_cid: r.piece_cid.clone(),
        piece_size: r.piece_size,
        car_size: r.car_size,
        sources_changed: None,
    };
    let wrong = carload::shipment::BatchResult { fingerprint: Some("v2-00".into()), ..r.clone() };
    app.update(seen(built(&wrong), Some(wrong)));
    assert!(app.batches.list[1].result.is_none());
    app.update(seen(built(&r), Some(r)));
    assert!(app.batches.list[1].result.is_some());
    assert!(app.builds.log.iter().any(|l| l.text.contains("built by another builder")));
}

#[test]
fn another_builders_progress_in_its_lock_shows_in_the_info_and_the_progress_pane() {
    use carload::shipment::lock::{claim, Claim, Owner, Progress, Rule};
    let (_d, mut app) = packed(512 << 10);
    app.dirty = false;
    let out = app.settings.out.clone().unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // The watcher's inputs, as the update function makes them.
    let records = app.batches.records(&app.tree, &app.settings.plan);
    let header = carload::shipment::plan::header(
        &app.settings.plan,
        app.settings.inputs.clone(),
        app.settings.base.clone(),
        &records,
    );
    let b = &records[1];
    let owner = Owner::named("node7", 42);
    let now = std::time::SystemTime::now();
    let rule = Rule { me: &owner, stale_after: std::time::Duration::from_secs(300), exists: &|_| true };
    let Claim::Claimed { lock, .. } = claim(&out, &b.id, &rule, now).unwrap() else { panic!() };
    let watched: Vec<_> = records.iter().map(|r| carload::shipment::status::Watched::of(&header, r)).collect();
    let poll = || Msg::Watched { at: 200.0, seen: worker::poll(&out, &header, &watched, 300) };
    app.update(poll());
    assert!(matches!(app.builds.activity.get(&b.id), Some(Activity::Foreign { progress: None, stale: false, .. })));
    let p = Progress {
        phase: carload::event::Phase::Hashing,
        bytes_done: b.bytes() / 2,
        bytes_total: b.bytes(),
        files_done: 1,
        files_total: b.files.len() as u64,
        car_bytes: 0,
        car_bound: b.car_size_bound,
        elapsed_ms: 4_000,
    };
    assert!(lock.heartbeat_with(&p).unwrap());
    app.update(poll());
    let Some(Activity::Foreign { progress: Some(got), stale: false, .. }) = app.builds.activity.get(&b.id) else {
        panic!("{:?}", app.builds.activity)
    };
    assert_eq!(*got, p);
    let ib = carload::human::ibytes;
    let lines = app.info_lines(1);
    let state = &lines.iter().find(|(l, _)| l == "State").unwrap().1;
    assert!(state.starts_with("building by host=node7 pid=42 (hashing, "), "{state}");
    assert!(state.contains(&format!("{} of {} read, ", ib(p.bytes_done), ib(p.bytes_total))), "{state}");
    app.left = super::app::Left::Progress;
    let text = screen(&mut app, 120, 40);
    assert!(
        text.contains(&format!("{} on node7: hashing · {} of {} read", b.id, ib(p.bytes_done), ib(p.bytes_total))),
        "{text}"
    );
    assert!(text.contains(&format!("{:.0}%@node7", p.fraction() * 100.0)), "{text}");
    // The builder finishes and releases its lock: the batch is no longer another builder's.
    lock.release().unwrap();
    app.update(poll());
    assert!(!app.builds.activity.contains_key(&b.id));
    // A builder of this host, boot and PID namespace whose process is gone: stale at once, as
    // `build` judges it (it takes such a lock over at once), not "building" for 300 s.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = Owner { pid: child.id(), ..crate::edge::host::owner() };
    child.wait().unwrap();
    let Claim::Claimed { lock, .. } = claim(&out, &b.id, &Rule { me: &dead, ..rule }, now).unwrap() else { panic!() };
    app.update(poll());
    assert!(
        matches!(app.builds.activity.get(&b.id), Some(Activity::Foreign { stale: true, .. })),
        "{:?}",
        app.builds.activity
    );
    lock.release().unwrap();
}

#[test]
fn export_form_previews_the_cli_text_and_asks_before_replacing() {
    let (d, mut app) = packed(SECTOR_32GIB);
    app.update(code(KeyCode::Tab));
    keys(&mut app, "e");
    assert!(app.export_preview.as_ref().unwrap_err().contains("no batch is built"));
    app.update(code(KeyCode::Esc));
    let e = keys(&mut app, "B");
    settle(&mut app, e);
    keys(&mut app, "e");
    keys(&mut app, "f01234");
    let text = app.export_preview.clone().unwrap();
    let s = carload::shipment::read_shipment(std::io::BufReader::new(
        std::fs::File::open(d.path().join("ship.jsonl")).unwrap(),
    ))
    .unwrap();
    let params = carload::shipment::export::DealParams { provider: Some("f01234".into()), ..Default::default() };
    let out = app.settings.out.clone().unwrap();
    let (cli, missing) =
        export::export_text(&s, Some(carload::shipment::drives::Outs::Folder(&out)), export::Format::Boost, &params)
            .unwrap();
    assert!(missing.is_empty());
    assert_eq!(text, cli);
    // Format: → curio.
    app.modal = Some(Modal::Export { field: 0 });
    app.update(code(KeyCode::Right));
    assert!(app.export_preview.as_ref().unwrap().contains("sptool"));
    app.deal.output = d.path().join("deals.sh").display().to_string();
    std::fs::write(d.path().join("deals.sh"), "old").unwrap();
    let e = app.update(code(KeyCode::Enter));
    settle(&mut app, e);
    assert!(matches!(app.modal, Some(Modal::ConfirmExportOverwrite(_))));
    let e = keys(&mut app, "y");
    settle(&mut app, e);
    assert!(std::fs::read_to_string(d.path().join("deals.sh")).unwrap().contains("sptool"));
    // Info lists the labelled CIDs; y copies the selected value.
    app.modal = None;
    keys(&mut app, "i");
    let lines = app.info_lines(0);
    assert!(lines.iter().any(|(l, v)| l == "Piece CID" && v.starts_with("baga")));
    let row = lines.iter().position(|(l, _)| l == "Payload CID").unwrap();
    app.modal = Some(Modal::Info { batch: 0, row });
    assert!(matches!(&keys(&mut app, "y")[..], [Effect::Copy(v)] if v == &lines[row].1));
}

use carload::shipment::export;

#[test]
fn build_screens() {
    let mut app = synthetic();
    app.update(Msg::Listing(carload::walk::Listing { folder: 1, first: 11, ..Default::default() }));
    app.update(Msg::ScanDone(1.25));
    app.settings.out = Some(PathBuf::from("/cars"));
    app.browser.selected = 2;
    keys(&mut app, "  ");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    app.dirty = false;
    let (a, b) = (app.batches.list[0].id.clone(), app.batches.list[1].id.clone());
    let e = keys(&mut app, "B");
    assert_eq!(e.len(), 2);
    let t0 = 1_764_650_000.0;
    app.update(build_msg(&a, t0, Report::Started));
    app.update(build_msg(&a, t0 + 0.2, Report::Phase(carload::event::Phase::Hashing)));
    for k in 1..=8 {
        app.update(Msg::Tick(t0 + k as f64));
        app.update(build_msg(&a, t0 + k as f64, Report::Progress { bytes: k * 900_000_000, files: k / 3, car: 0 }));
    }
    app.update(build_msg(&a, t0 + 8.5, Report::Phase(carload::event::Phase::Writing)));
    insta::assert_snapshot!("building_120x40", screen(&mut app, 120, 40));
    insta::assert_snapshot!("building_80x24", screen(&mut app, 80, 24));
    app.update(build_msg(&b, t0 + 9.0, Report::Started));
    app.update(build_msg(
        &b,
        t0 + 9.5,
        Report::Finished(Done::Failed(
            "archive/2020/c.mov: changed since planning (size 5 bytes, planned 21474836480); re-run `carload plan`"
                .into(),
        )),
    ));
    app.update(code(KeyCode::Tab));
    app.pane.row = 1;
    insta::assert_snapshot!("failed_120x40", screen(&mut app, 120, 40));
    app.update(build_msg(
        &a,
        t0 + 20.0,
        Report::Finished(Done::Built(
            carload::shipment::BatchResult {
                payload_cid: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
                piece_size: 34_359_738_368,
                piece_cid: "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq".into(),
                piece_size_unpadded: 34_091_302_912,
                car_size: 23_622_320_128,
                piece_cid_v2: "bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq".into(),
                files: Vec::new(),
                batch: a.clone(),
                fingerprint: None,
            },
            20.0,
        )),
    ));
    app.pane.row = 0;
    keys(&mut app, "i");
    insta::assert_snapshot!("info_120x40", screen(&mut app, 120, 40));
    app.update(code(KeyCode::Esc));
    keys(&mut app, "e");
    keys(&mut app, "f01234");
    insta::assert_snapshot!("export_120x40", screen(&mut app, 120, 40));
    // Another builder takes the failed batch and reports its progress through its lock.
    app.update(code(KeyCode::Esc));
    let bytes = app.batches.list[1].bytes(&app.tree);
    let progress = carload::shipment::lock::Progress {
        phase: carload::event::Phase::Hashing,
        bytes_done: bytes * 2 / 5,
        bytes_total: bytes,
        files_done: 1,
        files_total: app.batches.list[1].len() as u64,
        car_bytes: 0,
        car_bound: app.batches.list[1].bound(),
        elapsed_ms: 60_000,
    };
    let state = State::Building { host: "node7".into(), pid: 4242, heartbeat_age: 12, progress: Some(progress) };
    app.update(Msg::Watched { at: t0 + 30.0, seen: vec![BatchStatus { id: b.clone(), bytes, state, result: None }] });
    app.left = super::app::Left::Progress;
    app.pane.row = 1;
    insta::assert_snapshot!("foreign_120x40", screen(&mut app, 120, 40));
}

#[test]
fn build_slots_are_freed_by_the_last_report_so_queued_builds_start() {
    let (d, mut app) = packed(512 << 10);
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    let n = app.batches.list.len();
    assert!(n >= 2);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut w = worker::Workers::new(tx, d.path().to_path_buf());
    w.jobs = 1;
    for e in keys(&mut app, "B") {
        w.run(e);
    }
    assert_eq!(w.busy(), n);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while w.busy() > 0 {
        let m = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("builds report");
        let finished = match &m {
            Msg::Build { id, report: Report::Finished(_), .. } => Some(id.clone()),
            _ => None,
        };
        for e in app.update(m) {
            w.run(e);
        }
        if let Some(id) = finished {
            w.finished(&id);
        }
        assert!(std::time::Instant::now() < deadline);
    }
    assert!(app.batches.list.iter().all(|b| b.result.is_some()), "{:?}", app.builds.log);
}

#[test]
fn control_characters_in_names_are_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("data/evil\u{1b}[2Jname", 5), ("data/ok", 1)]);
    let mut app = App::new(settings(SECTOR_32GIB), (120, 40));
    scan(&mut app, &[dir.path().join("data")]);
    let names = row_names(&mut app);
    assert!(names.contains(&"evil\\u{1b}[2Jname".to_string()), "{names:?}");
    let text = screen(&mut app, 120, 40);
    assert!(!text.contains('\u{1b}'), "no raw escape reaches the screen");
    // The shipment keeps the real name.
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let rec = app.batches.records(&app.tree, &app.settings.plan);
    assert!(rec[0].files.iter().any(|f| f.name.ends_with("/evil\u{1b}[2Jname")));
}

/// carload's own outputs in the inputs (a build's output folder) are listed but marked `!` with
/// the reason and never packed; with `--include-carload-outputs` they are files like any other,
/// and the save takes them.
#[test]
fn carload_outputs_are_listed_marked_and_never_packed() {
    let dir = tempfile::tempdir().unwrap();
    let tree = [
        ("data/out/b00000.car", 300),
        ("data/out/b00000.car.manifest", 20),
        ("data/out/b00000.json", 20),
        ("data/out/.b00001.car.Ab12Cd.partial", 9),
        ("data/x", 5),
    ];
    make_tree(dir.path(), &tree);
    let mut app = App::new(settings(SECTOR_32GIB), (120, 40));
    app.settings.inputs = vec![dir.path().join("data").display().to_string()];
    scan(&mut app, &[dir.path().join("data")]);
    assert_eq!(app.tree.grand_totals().files, 1);
    assert_eq!(app.tree.grand_totals().unshippable, 4);
    select(&mut app, "out");
    keys(&mut app, "l");
    assert_eq!(row_names(&mut app).len(), 4, "shown");
    select(&mut app, "b00000.car");
    keys(&mut app, " ");
    assert!(app.marks.is_empty());
    let text = &app.message.as_ref().unwrap().1;
    assert!(text.contains("the CAR of batch b00000: carload's own output, never shipped"), "{text}");
    let s = screen(&mut app, 120, 30);
    assert!(s.contains("! b00000.car.manifest"), "{s}");
    assert!(s.contains("! .b00001.car.Ab12Cd.partial"), "{s}");
    keys(&mut app, "hA");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    assert_eq!(app.batches.list.len(), 1);
    let rec = app.batches.records(&app.tree, &app.settings.plan);
    let names: Vec<&str> = rec[0].files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["data/x"]);
    let path = dir.path().join("ship.jsonl");
    app.settings.shipment = Some(path.clone());
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    assert!(!app.dirty && path.exists(), "{:?}", app.message);

    // Asked for: packed and saved.
    let mut app = App::new(settings(SECTOR_32GIB), (120, 40));
    app.settings.include_carload_outputs = true;
    app.settings.inputs = vec![dir.path().join("data").display().to_string()];
    scan(&mut app, &[dir.path().join("data")]);
    assert_eq!(app.tree.grand_totals().files, 5);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let path = dir.path().join("ship2.jsonl");
    app.settings.shipment = Some(path.clone());
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    assert!(!app.dirty && path.exists(), "{:?}", app.message);
}

/// A file without read permission and an unreadable folder are flagged during the scan (`!` and
/// the reason), never packed, and the folder does not open as `(empty)`. The walk runs without
/// root's permission bypass, so this is what any user meets.
#[test]
fn unreadable_files_and_folders_are_flagged_at_scan_and_never_packed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path(), &[("data/secret", 50), ("data/ok", 5), ("data/locked/inside", 7)]);
    let mode = |p: &str, m: u32| std::fs::set_permissions(dir.path().join(p), std::fs::Permissions::from_mode(m));
    mode("data/secret", 0o000).unwrap();
    mode("data/locked", 0o000).unwrap();
    let mut app = App::new(settings(SECTOR_32GIB), (120, 40));
    scan_with(&mut app, &[dir.path().join("data")], true);
    mode("data/locked", 0o755).unwrap();
    assert_eq!(app.tree.grand_totals().files, 1);
    select(&mut app, "secret");
    keys(&mut app, " ");
    assert!(app.marks.is_empty());
    assert!(app.message.as_ref().unwrap().1.contains("unreadable: no read permission"), "{:?}", app.message);
    let s = screen(&mut app, 120, 30);
    assert!(s.contains("! secret"), "{s}");
    assert!(s.contains("! locked/"), "{s}");
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let rec = app.batches.records(&app.tree, &app.settings.plan);
    assert_eq!(rec.iter().flat_map(|b| &b.files).map(|f| f.name.as_str()).collect::<Vec<_>>(), ["data/ok"]);
    select(&mut app, "locked");
    keys(&mut app, "l");
    let s = screen(&mut app, 120, 30);
    assert!(s.contains("(not read: Permission denied"), "{s}");
    assert!(!s.contains("(empty)"), "{s}");
}

/// A loaded batch naming a file that has become unreadable is frozen at scan time with the
/// reason (before, it showed `not built` and failed at build).
#[test]
fn a_loaded_batch_with_an_unreadable_file_is_flagged_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let (d, mut app) = app_on_disk(SECTOR_32GIB);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let records = app.batches.records(&app.tree, &app.settings.plan);
    let secret = d.path().join("data/a.txt");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut again = App::new(app.settings.clone(), (120, 40));
    again.load_batches(records);
    scan_with(&mut again, &[PathBuf::from(&app.settings.inputs[0])], true);
    let Some(Frozen::Changed { missing: 1, example, .. }) = &again.batches.list[0].frozen else {
        panic!("{:?}", again.batches.list[0].frozen)
    };
    assert_eq!(example, "not shippable: data/a.txt (unreadable: no read permission)");
}

#[test]
fn a_shipment_is_never_saved_inside_an_input_folder() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    let inside = PathBuf::from(&app.settings.inputs[0]).join("ship.jsonl");
    app.settings.shipment = Some(inside.clone());
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    assert!(app.dirty, "not saved");
    let (level, text) = app.message.clone().unwrap();
    assert_eq!(level, Level::Error);
    assert!(text.contains("inside the input folder"), "{text}");
    assert!(!inside.exists());
}

/// After one source is rewritten and one deleted, a reopened workstation says what `status`
/// and `export` say: every batch built (the two with a note: their CARs are what ships), and its
/// export preview lists them all. Corrupt outputs show as such and never as built.
#[test]
fn built_batches_whose_sources_changed_stay_built_as_status_says() {
    let (d, mut app) = app_on_disk(512 << 10);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let records = app.batches.records(&app.tree, &app.settings.plan);
    let header = carload::shipment::plan::header(
        &app.settings.plan,
        app.settings.inputs.clone(),
        app.settings.base.clone(),
        &records,
    );
    let out = d.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    for rec in &records {
        let places = carload::shipment::build::Places { dir: &out, spool_dir: &out, source_root: None };
        carload::shipment::build::build_batch(
            &header,
            rec,
            places,
            &mut carload::event::Ignore,
            &|| true,
            &mut carload::output::create_only,
        )
        .unwrap();
    }
    std::fs::write(d.path().join("data/a.txt"), b"changed").unwrap();
    std::fs::remove_file(d.path().join("data/photos/raw/r1")).unwrap();
    let status = carload::shipment::status::status(
        &out,
        &header,
        &records,
        std::time::SystemTime::now(),
        &carload::shipment::lock::Rule::new(&crate::edge::host::owner(), std::time::Duration::from_secs(300)),
    );
    assert!(status.iter().all(|b| matches!(b.state, State::Built { .. })), "{status:?}");
    let mut s = app.settings.clone();
    s.out = Some(out.clone());
    let mut again = App::new(s, (120, 40));
    again.load_batches(records.clone());
    let root = d.path().join("data");
    scan(&mut again, std::slice::from_ref(&root));
    let e = again.update(Msg::Key(KeyEvent::new(KeyCode::Null, KeyModifiers::NONE)));
    settle(&mut again, e);
    let shown: Vec<Shown> = again.batches.list.iter().map(|b| again.batch_state(b)).collect();
    assert!(shown.iter().all(|s| matches!(s, Shown::Built { .. })), "{shown:?}");
    assert!(shown.iter().any(|s| matches!(s, Shown::Built { sources_changed: Some(_) })), "{shown:?}");
    let preview = again.export_preview.clone().unwrap();
    assert!(preview.contains(&format!("# {} batches", records.len())), "{preview}");
    // Every file those built batches name (a.txt changed, the rest unchanged) is still in its
    // batch: none is free to be packed into a second batch.
    let mut unbatched = Vec::new();
    again.tree.for_each_file(0, &mut |f| {
        if again.batches.batch_of(f).is_none() {
            unbatched.push(f)
        }
    });
    assert!(unbatched.is_empty(), "files of built batches shown as free: {unbatched:?}");
    keys(&mut again, "A");
    let e = keys(&mut again, "p");
    settle(&mut again, e);
    assert_eq!(again.batches.list.len(), records.len(), "p packed files of built batches again");
    // Found built on opening: an earlier build's, not another builder's.
    let log: Vec<&str> = again.builds.log.iter().map(|l| l.text.as_str()).collect();
    assert!(log.iter().all(|l| !l.contains("another builder")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("already built in")), "{log:?}");
    // Re-planning a built batch asks first; anything but y keeps it (and its CAR) as it is.
    let changed = again.batches.list.iter().position(|b| b.frozen.is_some()).unwrap();
    let id = again.batches.list[changed].id.clone();
    again.focus = Focus::Batches;
    again.pane.row = changed;
    assert!(keys(&mut again, "R").is_empty());
    assert!(matches!(again.modal, Some(Modal::ConfirmEdit { .. })), "{:?}", again.modal);
    assert!(keys(&mut again, "n").is_empty());
    assert_eq!(again.batches.list[changed].id, id);
    assert!(matches!(again.batch_state(&again.batches.list[changed]), Shown::Built { sources_changed: Some(_) }));
    // A result that lies about its piece size: corrupt in the workstation as in `status`.
    let id = &records[0].id;
    let json = out.join(format!("{id}.json"));
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    v["piece_size"] = 128.into();
    std::fs::write(&json, serde_json::to_vec(&v).unwrap()).unwrap();
    let mut s = app.settings.clone();
    s.out = Some(out.clone());
    let mut third = App::new(s, (120, 40));
    third.load_batches(records.clone());
    scan(&mut third, &[root]);
    let e = third.update(Msg::Key(KeyEvent::new(KeyCode::Null, KeyModifiers::NONE)));
    settle(&mut third, e);
    let b0 = third.batches.list.iter().find(|b| &b.id == id).unwrap();
    assert!(
        matches!(third.batch_state(b0), Shown::Outputs(ref why) if why.contains("piece_size")),
        "{:?}",
        third.batch_state(b0)
    );
}

/// Keys are data: Ctrl-x never acts as x, a binding changed in the config drives the update
/// function, and the help lists the keys in force.
#[test]
fn keys_come_from_the_binding_table() {
    let (_d, mut app) = app_on_disk(512 << 10);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let batched = |app: &App| app.batches.list.iter().map(|b| b.len()).sum::<usize>();
    let before = batched(&app);
    select(&mut app, "a.txt");
    app.update(Msg::Key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::CONTROL)));
    assert_eq!(batched(&app), before, "Ctrl-x is not x");
    app.update(key('x'));
    assert_eq!(batched(&app), before - 1, "x takes the file out of its batch");
    let changes = [("build".to_string(), vec!["F5".to_string()])].into_iter().collect();
    app.settings.keys = super::keys::Keymap::with_changes(&changes).unwrap();
    app.settings.out = Some(_d.path().join("out"));
    let e = keys(&mut app, "b");
    let built = e.iter().any(|e| matches!(e, Effect::Build { .. } | Effect::Save { .. }));
    assert!(!built && app.modal.is_none(), "b is no longer build: {e:?} {:?}", app.modal);
    // F5 builds: unsaved changes are saved first, which asks for a file name here.
    app.update(code(KeyCode::F(5)));
    assert!(matches!(app.modal, Some(Modal::SavePath(_))), "{:?}", app.modal);
    app.modal = None;
    app.update(key('?'));
    let text = screen(&mut app, 120, 60);
    assert!(text.contains("F5") && text.contains("build the selected batch"), "{text}");
    assert!(text.contains("retry a failed batch") && text.contains("copy the selected value"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Coherence with the command line: overridden flags, exports, text that fits

#[test]
fn flags_the_opened_shipment_overrides_are_said_and_logged() {
    let mut app = App::new(settings(1 << 20), (120, 40));
    app.note_overridden(&[]);
    assert_eq!(app.message, None);
    app.note_overridden(&["--sector 64 GiB (the shipment's: 32 GiB)".into()]);
    let said = "the shipment's options win over --sector 64 GiB (the shipment's: 32 GiB)";
    assert_eq!(app.message, Some((Level::Error, said.into())));
    assert_eq!(app.builds.log.back().map(|l| l.text.as_str()), Some(said));
}

/// The export form names the batches it leaves out (being built, not built) as `carload
/// export` does, writes CAR paths absolute as `carload export` does by default, and defaults
/// its file to one named after the shipment.
#[test]
fn export_names_what_it_leaves_out_and_the_file_after_the_shipment() {
    let (d, mut app) = packed(512 << 10);
    assert_eq!(app.batches.list.len(), 2);
    app.update(code(KeyCode::Tab));
    let e = keys(&mut app, "b");
    settle(&mut app, e);
    assert!(app.batches.list[0].result.is_some());
    // The second batch is queued here (its build not run yet).
    app.pane.row = 1;
    let queued = keys(&mut app, "b");
    assert!(matches!(queued[..], [Effect::Build { .. }]), "{queued:?}");
    app.deal.output = "deals.sh".into();
    keys(&mut app, "e");
    assert_eq!(app.deal.output, d.path().join("ship.boost.sh").display().to_string());
    let ids: Vec<String> = app.batches.list.iter().map(|b| b.id.clone()).collect();
    let left = app.export_left_out().unwrap();
    assert_eq!(left, format!("1 of 2 batches left out: 1 being built ({})", ids[1]));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains(&format!("warning: {left}")), "{text}");
    // Its build failed: not built.
    app.builds.activity.insert(ids[1].clone(), super::builds::Activity::Failed("cancelled".into()));
    assert_eq!(app.export_left_out().unwrap(), format!("1 of 2 batches left out: 1 not built ({})", ids[1]));
    let car = d.path().join("out").join(format!("{}.car", ids[0]));
    assert!(app.export_preview.as_ref().unwrap().contains(&format!("import-data <deal-uuid> {}", car.display())));
    // CSV: named after the shipment too, the batch ID in its last column.
    for _ in 0..3 {
        app.update(code(KeyCode::BackTab));
    }
    app.modal = Some(Modal::Export { field: 0 });
    while !app.deal.output.ends_with(".csv") {
        app.update(code(KeyCode::Right));
    }
    assert_eq!(app.deal.output, d.path().join("ship.csv").display().to_string());
    let csv = app.export_preview.clone().unwrap();
    assert!(csv.starts_with("piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file,batch\n"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().ends_with(&format!("{},{}", car.display(), ids[0])), "{csv}");
    let e = app.update(code(KeyCode::Enter));
    settle(&mut app, e);
    let (level, said) = app.message.clone().unwrap();
    assert_eq!(level, Level::Error);
    assert_eq!(
        said,
        format!(
            "export written to {}; 1 of 2 batches left out: 1 not built ({})",
            d.path().join("ship.csv").display(),
            ids[1]
        )
    );
}

/// Names are measured by display width: a CJK or emoji name fills its column exactly (cut with
/// `…` when too wide), so the SIZE and BATCH columns stay where the header puts them.
#[test]
fn cjk_and_emoji_names_keep_their_columns() {
    use carload::walk::{Kind, ROOTS};
    let profile = Profile::default();
    let cost = |s: u64| carload::shipment::overhead::EntryCost::of_file(s, &profile).car_bytes;
    let mut app = App::new(settings(SECTOR_32GIB), (80, 24));
    app.update(Msg::Listing(super::tree::tests::listing_with(
        ROOTS,
        0,
        &[
            ("写真とビデオのアーカイブ二〇二四年十二月分すべて.tar", Kind::File, 1_048_576),
            ("😀 party.mov", Kind::File, 2_048),
            ("plain.txt", Kind::File, 12),
        ],
        &cost,
    )));
    app.update(Msg::ScanDone(0.1));
    let text = screen(&mut app, 80, 24);
    let rows: Vec<&str> = text.lines().collect();
    let col = |l: &str, what: &str| super::view::width(&l[..l.find(what).unwrap()]);
    let head = rows.iter().find(|l| l.contains("SIZE")).unwrap();
    let size_end = col(head, "SIZE") + 4;
    for (row, size) in [("写真", "1.0 MiB"), ("😀", "2.0 KiB"), ("plain.txt", "12 B")] {
        let line = rows.iter().find(|l| l.contains(row)).unwrap_or_else(|| panic!("{row}: {text}"));
        assert_eq!(col(line, size) + size.len(), size_end, "{row}: {line}");
    }
    let cut = rows.iter().find(|l| l.contains("写真")).unwrap();
    assert!(cut.contains('…'), "{cut}");
    // Cutting never splits a wide character's columns: the fitted name is exactly its column.
    assert_eq!(super::view::width(&super::view::fit("写真とビデオ", 7)), 7);
    assert_eq!(super::view::fit("写真とビデオ", 7), "写真と…");
    assert_eq!(super::view::fit("写真とビデオ", 8), "写真と… ");
    assert_eq!(super::view::fit("😀 party", 10), "😀 party  ");
}

/// At 80 columns the header gives up the CAR bound, the profile and the sector before the
/// shipment's file name (its path shortened from the left); the footer keeps help and quit.
#[test]
fn header_and_footer_fit_80_columns() {
    let mut app = synthetic();
    app.update(Msg::ScanDone(1.25));
    app.settings.shipment =
        Some(PathBuf::from("/srv/filecoin/shipments/2026/december/archive-of-the-photo-department.jsonl"));
    app.dirty = true;
    insta::assert_snapshot!("header_footer_80x24", screen(&mut app, 80, 24));
    let text = screen(&mut app, 80, 24);
    let first = text.lines().next().unwrap();
    assert!(
        first.contains("…") && first.contains("archive-of-the-photo-department.jsonl [modified] · piece 32 GiB"),
        "{first}"
    );
    let footer = text.lines().nth(23).unwrap();
    assert!(footer.contains("? help · q quit"), "{footer}");
    // At 120 columns everything but the CAR bound fits.
    app.settings.shipment = Some(PathBuf::from("/srv/s.jsonl"));
    let wide = screen(&mut app, 120, 40);
    let first = wide.lines().next().unwrap();
    assert!(first.contains("/srv/s.jsonl [modified] · sector 32 GiB · piece 32 GiB · cidv0"), "{first}");
}

/// Status messages expire: after 10 s (errors after 30 s), at the next key, and "building N
/// batches…" as soon as nothing is queued or building here.
#[test]
fn status_lines_expire() {
    let mut app = synthetic();
    app.update(Msg::ScanDone(1.25));
    app.settings.out = Some(PathBuf::from("/cars"));
    app.browser.selected = 2;
    keys(&mut app, "  ");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let t0 = 1_764_650_000.0;
    app.update(Msg::Tick(t0));
    app.dirty = false;
    let a = app.batches.list[0].id.clone();
    app.pane.row = 0;
    app.focus = Focus::Batches;
    let e = keys(&mut app, "b");
    assert_eq!(e.len(), 1);
    assert!(app.message.as_ref().unwrap().1.starts_with("building 1 batch into /cars"), "{:?}", app.message);
    app.update(build_msg(&a, t0 + 1.0, Report::Started));
    app.update(Msg::Tick(t0 + 2.0));
    assert!(app.message.is_some());
    app.update(build_msg(&a, t0 + 3.0, Report::Finished(Done::Cancelled)));
    assert_eq!(app.message, None, "the build is over");
    // An info message lasts 10 s.
    keys(&mut app, "b");
    app.update(Msg::Tick(t0 + 12.0));
    assert!(app.message.is_some());
    app.update(Msg::Tick(t0 + 13.5));
    assert_eq!(app.message, None);
    // An error 30 s.
    app.note_overridden(&["--pack keep-folders (the shipment's: best-fit)".into()]);
    app.update(Msg::Tick(t0 + 40.0));
    assert!(app.message.is_some());
    app.update(Msg::Tick(t0 + 44.0));
    assert_eq!(app.message, None);
}

/// The quit dialog tells running builds from queued ones; plurals agree with their numbers;
/// a failure advises the workstation's own fix and its full reason is in the info screen.
#[test]
fn quit_dialog_plurals_and_failure_advice() {
    let mut app = synthetic();
    app.update(Msg::ScanDone(1.25));
    app.settings.out = Some(PathBuf::from("/cars"));
    app.browser.selected = 2;
    keys(&mut app, "  ");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    app.dirty = false;
    let (a, b) = (app.batches.list[0].id.clone(), app.batches.list[1].id.clone());
    app.focus = Focus::Batches;
    let e = keys(&mut app, "B");
    assert_eq!(e.len(), 2);
    keys(&mut app, "q");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("2 builds are queued here; quitting cancels them."), "{text}");
    app.update(code(KeyCode::Esc));
    let t0 = 1_764_650_000.0;
    app.update(build_msg(&a, t0, Report::Started));
    assert!(app.builds.log.back().unwrap().text.contains(" started: 3 files, "), "{:?}", app.builds.log);
    keys(&mut app, "q");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("1 build runs here and 1 is queued; quitting cancels them."), "{text}");
    app.update(code(KeyCode::Esc));
    app.update(build_msg(&b, t0 + 1.0, Report::Started));
    assert!(app.builds.log.back().unwrap().text.contains(" started: 1 file, "), "{:?}", app.builds.log);
    let reason = "archive/2020/c.mov: changed since planning (modification time 2025-12-02 04:33:20.123456789 UTC, planned 2025-12-01 04:33:20.000000000 UTC); re-run `carload plan`";
    app.update(build_msg(&b, t0 + 2.0, Report::Finished(Done::Failed(reason.into()))));
    let want = reason.replace("re-run `carload plan`", "R re-plans the batch");
    assert_eq!(app.message.as_ref().unwrap().1, format!("{b} failed: {want}"));
    app.pane.row = 1;
    let text = screen(&mut app, 80, 24);
    assert!(text.contains(&format!("{b} FAILED (i full reason, r retries, R re-plans): archive/")), "{text}");
    // The info screen shows the whole reason, wrapped.
    keys(&mut app, "i");
    let text = screen(&mut app, 80, 24);
    let joined: String =
        text.lines().map(|l| l.trim_matches(|c| c == '"' || c == '│' || c == ' ')).collect::<Vec<_>>().join(" ");
    assert!(joined.contains("planned 2025-12-01") && joined.contains("R re-plans the batch"), "{text}");
    app.update(code(KeyCode::Esc));
    keys(&mut app, "q");
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("1 build runs here; quitting cancels them."), "{text}");
}

/// The export file remembered from another session (another shipment's) is not offered again:
/// the form starts from this shipment's name.
#[test]
fn export_file_is_this_shipments_not_the_last_sessions() {
    let mut s = settings(SECTOR_32GIB);
    s.deal.output = "/elsewhere/other.boost.sh".into();
    s.shipment = Some(PathBuf::from("/ship/today.jsonl"));
    let mut app = App::new(s, (120, 40));
    assert_eq!(app.deal.output, "");
    keys(&mut app, "e");
    assert_eq!(app.deal.output, "/ship/today.boost.sh");
}

/// What undo must give back exactly: each batch's ID, entries, loaded record, state and result.
type Shape = Vec<(String, Vec<carload::shipment::pack::Item>, Option<carload::shipment::BatchResult>, Option<Frozen>)>;

fn shape(app: &App) -> Shape {
    app.batches.list.iter().map(|b| (b.id.clone(), b.bin.items.clone(), b.result.clone(), b.frozen.clone())).collect()
}

/// Batch membership as the browser shows it: files batched under the top level.
fn batched_total(app: &App) -> u64 {
    app.tree.folders[0].batched
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn message(app: &App) -> String {
    app.message.as_ref().map(|m| m.1.clone()).unwrap_or_default()
}

/// `x` on the root folder of built batches asks, with numbers; `n` keeps everything; `y` takes
/// the files out; `u` brings the built batches back exactly (IDs and results), `U`/Ctrl-R redo.
/// Saving keeps the previous shipment file beside it.
#[test]
fn unbuilding_asks_with_numbers_and_undo_brings_the_built_batches_back() {
    let (d, mut app) = packed(512 << 10);
    let e = keys(&mut app, "B");
    settle(&mut app, e);
    let n = app.batches.list.len();
    assert!(n >= 2 && app.batches.list.iter().all(|b| b.result.is_some()), "{:?}", app.builds.log);
    assert!(!app.dirty);
    let built = shape(&app);
    let batched = batched_total(&app);
    let ship = d.path().join("ship.jsonl");
    let saved = std::fs::read(&ship).unwrap();
    // Back from the build progress to the browser; h up to the roots, g the first row: the root
    // folder; x takes everything out — asks first.
    keys(&mut app, "w");
    keys(&mut app, "hg");
    assert_eq!(app.tree.display_name(app.browser.selected), app.settings.inputs[0]);
    assert!(keys(&mut app, "x").is_empty());
    let Some(Modal::ConfirmEdit { lines, .. }) = app.modal.clone() else { panic!("asks: {:?}", app.modal) };
    let want = format!("This takes 7 files out of {n} built batches; their CARs stay on disk but leave the shipment.");
    assert_eq!(lines[0], want);
    for (w, h) in [(120, 40), (80, 24)] {
        let text = screen(&mut app, w, h);
        assert!(text.contains("y  take them out") && text.contains("u undoes this"), "{text}");
    }
    // n (any key but y) keeps everything.
    keys(&mut app, "n");
    assert!(app.modal.is_none());
    assert_eq!(shape(&app), built);
    assert!(!app.dirty);
    assert_eq!(app.history.depth(), (1, 0), "nothing done: only the pack to undo");
    // y does it: every batch empty, with new IDs.
    keys(&mut app, "xy");
    assert!(app.batches.list.iter().all(|b| b.is_empty() && b.result.is_none()));
    assert!(app.batches.list.iter().zip(&built).all(|(b, s)| b.id != s.0), "new IDs");
    let ids: Vec<&str> = app.batches.list.iter().map(|b| b.id.as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "new IDs follow the list's order: {ids:?}");
    assert_eq!(batched_total(&app), 0);
    assert!(app.dirty);
    let emptied = shape(&app);
    // u: the built batches are back, exactly, and so is the saved state.
    keys(&mut app, "u");
    assert_eq!(message(&app), format!("undid: take 7 files out of {n} batches"));
    assert_eq!(shape(&app), built);
    assert_eq!(batched_total(&app), batched);
    assert!(!app.dirty, "back at what the shipment file holds");
    assert!(app.batches.list.iter().all(|b| matches!(app.batch_state(b), Shown::Built { .. })));
    // U and Ctrl-R redo; more redo has nothing to do.
    keys(&mut app, "U");
    assert_eq!(message(&app), format!("redid: take 7 files out of {n} batches"));
    assert_eq!(shape(&app), emptied);
    assert!(app.dirty);
    app.update(ctrl('r'));
    assert_eq!(message(&app), "nothing to redo");
    keys(&mut app, "u");
    app.update(ctrl('r'));
    assert_eq!(shape(&app), emptied, "Ctrl-R redoes");
    // Saving the emptied shipment keeps the previous one beside it.
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    assert!(!app.dirty);
    assert_eq!(std::fs::read(d.path().join("ship.jsonl.1")).unwrap(), saved, "the previous version is kept");
    keys(&mut app, "u");
    assert_eq!(shape(&app), built);
    assert!(app.dirty, "the file now holds the emptied batches");
    let e = keys(&mut app, "s");
    settle(&mut app, e);
    let s = carload::shipment::read_shipment(std::io::BufReader::new(std::fs::File::open(&ship).unwrap())).unwrap();
    let ids: Vec<&String> = s.batches.iter().map(|b| &b.id).collect();
    assert_eq!(ids, built.iter().map(|b| &b.0).collect::<Vec<_>>(), "the built batches are in the shipment again");
    assert!(std::fs::read(d.path().join("ship.jsonl.2")).unwrap() == saved);
}

/// Edits of built batches other than `x` ask too (adding to one, removing one, re-planning one);
/// undoing a re-plan restores the batch and the file sizes it read again.
#[test]
fn every_edit_of_a_built_batch_asks_and_a_replan_is_undone_with_its_sizes() {
    let (d, mut app) = packed(512 << 10);
    let e = keys(&mut app, "B");
    settle(&mut app, e);
    let built = shape(&app);
    // Back from the build progress to the browser. x on one split file: every batch holding a
    // part of it is counted.
    keys(&mut app, "w");
    select(&mut app, "photos");
    app.update(code(KeyCode::Enter));
    select(&mut app, "p2.jpg");
    keys(&mut app, "x");
    let Some(Modal::ConfirmEdit { lines, .. }) = app.modal.clone() else { panic!("{:?}", app.modal) };
    assert_eq!(lines[0], "This takes 1 file out of 2 built batches; their CARs stay on disk but leave the shipment.");
    keys(&mut app, "n");
    assert_eq!(shape(&app), built);
    app.update(code(KeyCode::Backspace));
    // a: adding to a built batch (the new batch n makes is not built: it does not ask).
    keys(&mut app, "n");
    assert!(app.modal.is_none());
    keys(&mut app, "u");
    assert_eq!(shape(&app), built, "{}", message(&app));
    select(&mut app, "a.txt");
    keys(&mut app, "x");
    assert!(matches!(app.modal, Some(Modal::ConfirmEdit { .. })), "a.txt is in a built batch");
    keys(&mut app, "y");
    let freed = shape(&app);
    select(&mut app, "a.txt");
    keys(&mut app, " ");
    let t = app.batches.list.iter().position(|b| b.result.is_some()).expect("a batch still built");
    app.pane.row = t;
    keys(&mut app, "a");
    let Some(Modal::ConfirmEdit { lines, .. }) = app.modal.clone() else { panic!("{:?}", app.modal) };
    assert!(lines[0].starts_with(&format!("Adding 1 file to {} un-builds it", built[t].0)), "{lines:?}");
    app.update(code(KeyCode::Esc));
    assert_eq!(shape(&app), freed);
    keys(&mut app, "a");
    keys(&mut app, "y");
    assert!(app.batches.list[t].result.is_none() && app.batches.list[t].id != built[t].0);
    assert!(message(&app).starts_with("added 1 "), "{}", message(&app));
    keys(&mut app, "uu");
    assert_eq!(shape(&app), built);
    // Removing a built batch says so.
    app.update(code(KeyCode::Tab));
    app.pane.row = 1;
    keys(&mut app, "x");
    let Some(Modal::ConfirmEdit { lines, .. }) = app.modal.clone() else { panic!("{:?}", app.modal) };
    assert!(lines[0].starts_with(&format!("Removing {} takes ", built[1].0)), "{lines:?}");
    assert!(lines[0].ends_with("out of 1 built batch; its CAR stays on disk but leaves the shipment."), "{lines:?}");
    keys(&mut app, "y");
    assert_eq!(app.batches.list.len(), built.len() - 1);
    keys(&mut app, "u");
    assert_eq!(shape(&app), built);
    assert_eq!(message(&app), format!("undid: remove batch {}", built[1].0));
    // R on a built batch whose file changed: asks, re-plans with the new size; u restores both.
    let a = app.tree.find("data/a.txt").unwrap();
    let size = app.tree.node(a).size;
    std::fs::write(d.path().join("data/a.txt"), b"rewritten, longer than before").unwrap();
    let i = app.batches.holders(a)[0];
    app.pane.row = i;
    assert!(keys(&mut app, "R").is_empty());
    assert!(matches!(app.modal, Some(Modal::ConfirmEdit { edit: super::app::Pending::Replan(_), .. })));
    let e = keys(&mut app, "y");
    assert!(matches!(e[..], [Effect::Restat { .. }]));
    settle(&mut app, e);
    assert_ne!(app.batches.list[i].id, built[i].0);
    assert_ne!(app.tree.node(a).size, size);
    keys(&mut app, "u");
    assert_eq!(shape(&app), built, "{}", message(&app));
    assert_eq!(app.tree.node(a).size, size, "the tree is as the restored batch records it");
    assert_eq!(
        app.batches.records(&app.tree, &app.settings.plan),
        carload::shipment::read_shipment(std::io::BufReader::new(
            std::fs::File::open(d.path().join("ship.jsonl")).unwrap()
        ))
        .unwrap()
        .batches
        .into_iter()
        .map(|mut b| {
            b.result = None;
            b
        })
        .collect::<Vec<_>>(),
        "undo gives back the records the shipment file holds"
    );
    keys(&mut app, "U");
    assert_ne!(app.tree.node(a).size, size, "redo reads the new size again");
}

/// Undo and redo walk every edit of the batches back and forth exactly, marks included; edits
/// that touch no built batch do not ask.
#[test]
fn undo_and_redo_walk_every_edit_exactly() {
    let (_d, mut app) = app_on_disk(512 << 10);
    let snap = |app: &App| (shape(app), batched_total(app));
    let mut states = vec![snap(&app)];
    keys(&mut app, "A");
    let marked = app.marks.clone();
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    states.push(snap(&app));
    select(&mut app, "a.txt");
    keys(&mut app, "x");
    assert!(app.modal.is_none(), "no built batch: no question");
    states.push(snap(&app));
    keys(&mut app, "n");
    states.push(snap(&app));
    select(&mut app, "a.txt");
    keys(&mut app, " a");
    assert!(app.modal.is_none());
    states.push(snap(&app));
    app.update(code(KeyCode::Tab));
    app.pane.row = 0;
    keys(&mut app, "xy");
    states.push(snap(&app));
    let labels: Vec<String> = (0..5)
        .map(|_| {
            keys(&mut app, "u");
            message(&app)
        })
        .collect();
    assert!(labels[4].starts_with("undid: pack "), "{labels:?}");
    assert!(labels[0].starts_with("undid: remove batch"), "{labels:?}");
    assert_eq!(message(&app), labels[4]);
    assert_eq!(snap(&app), states[0], "back to nothing");
    assert_eq!(app.marks, marked, "with the marks the pack used");
    keys(&mut app, "u");
    assert_eq!(message(&app), "nothing to undo");
    for (k, want) in states.iter().enumerate().skip(1) {
        keys(&mut app, "U");
        assert_eq!(&snap(&app), want, "redo {k}: {}", message(&app));
        if k == 1 {
            assert!(app.marks.is_empty(), "redoing the pack uses the marks again");
        }
    }
    for want in states.iter().rev().skip(1).take(2) {
        keys(&mut app, "u");
        assert_eq!(&snap(&app), want);
    }
    let a = app.tree.find("data/a.txt").unwrap();
    assert!(app.marks.is_marked(&app.tree, a) && app.marked_totals().files == 1, "undoing the add marks a.txt again");
    // A new edit drops what could be redone.
    keys(&mut app, "n");
    keys(&mut app, "U");
    assert_eq!(message(&app), "nothing to redo");
}

/// The history is 100 levels deep: the oldest edit falls off.
#[test]
fn undo_goes_back_100_edits() {
    let (_d, mut app) = app_on_disk(SECTOR_32GIB);
    for _ in 0..101 {
        keys(&mut app, "n");
    }
    assert_eq!(app.batches.list.len(), 101);
    assert_eq!(app.history.depth(), (super::history::LEVELS, 0));
    for _ in 0..super::history::LEVELS {
        keys(&mut app, "u");
    }
    assert_eq!(app.batches.list.len(), 1, "the first new batch is beyond the history");
    assert_eq!(app.batches.list[0].id, "b00000");
    keys(&mut app, "u");
    assert_eq!(message(&app), "nothing to undo");
    assert!(app.dirty, "the first edit is not undone: still unsaved");
    keys(&mut app, "U");
    assert_eq!(message(&app), "redid: new batch b00001");
}

/// The state file remembers each shipment's output folder (absolute), forgets the folders of
/// shipments that fell off the recent list, and the start screen lists the recent shipments
/// with their built counts, then browsing; Enter opens the selection.
#[test]
fn recent_shipments_keep_their_output_folders_and_the_start_screen_offers_them() {
    use super::config::{State, RECENT};
    use super::start::{Choice, Start};
    let mut s = State::default();
    s.note_shipment(Path::new("/ships/one.jsonl"), Some(Path::new("/cars/one")));
    s.note_shipment(Path::new("/ships/two.jsonl"), None);
    assert_eq!(s.recent_shipments, [PathBuf::from("/ships/two.jsonl"), PathBuf::from("/ships/one.jsonl")]);
    assert_eq!(s.out_of(Path::new("/ships/one.jsonl")), Some(&PathBuf::from("/cars/one")));
    assert_eq!(s.out_of(Path::new("/ships/two.jsonl")), None);
    for i in 0..RECENT {
        s.note_shipment(&PathBuf::from(format!("/ships/n{i}.jsonl")), Some(Path::new("/cars/n")));
    }
    assert_eq!(s.recent_shipments.len(), RECENT);
    assert_eq!(s.out_of(Path::new("/ships/one.jsonl")), None, "forgotten with its shipment");

    // The start screen over two recent shipments (read: one built 2 of 3, one unreadable).
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let mut state = State::default();
    state.note_shipment(&b, None);
    state.note_shipment(&a, Some(Path::new("/cars/a")));
    state.note_shipment(&dir.path().join("gone.jsonl"), Some(Path::new("/cars/g")));
    std::fs::write(dir.path().join("gone.jsonl"), "").unwrap();
    std::fs::remove_file(dir.path().join("gone.jsonl")).unwrap();
    let mut start = Start::new(&state, PathBuf::from("/here"));
    assert_eq!(start.recent.len(), 2, "a shipment that no longer exists is not offered");
    start.recent[0].built = Some(Ok((2, 3)));
    let mut term = Terminal::new(TestBackend::new(100, 12)).unwrap();
    term.draw(|f| super::start::draw(f, &start)).unwrap();
    let text: String = term.backend().buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("a.jsonl  ·  Built 2/3 in /cars/a"), "{text}");
    assert!(text.contains("b.jsonl  ·  reading…"), "{text}");
    assert!(text.contains("Browse the current folder (/here)"), "{text}");
    // Read: a shipment without a remembered folder gives its batch count; one that does not
    // read says why (before, it showed "no output folder remembered" and failed when opened).
    let me = crate::edge::host::owner();
    let rule = carload::shipment::lock::Rule::new(&me, std::time::Duration::from_secs(300));
    let unreadable = super::start::built_count(&b, &[], &rule).unwrap_err();
    assert!(unreadable.contains("b.jsonl"), "{unreadable}");
    start.recent[1].built = Some(Err(unreadable));
    term.draw(|f| super::start::draw(f, &start)).unwrap();
    let text: String = term.backend().buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("b.jsonl  ·  unreadable: "), "{text}");
    start.selected = 1;
    assert_eq!(start.key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)), None, "an unreadable one is not opened");
    start.selected = 0;
    start.recent[1].built = Some(Ok((0, 1)));
    term.draw(|f| super::start::draw(f, &start)).unwrap();
    let text: String = term.backend().buffer().content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("b.jsonl  ·  1 batch · no output folder remembered"), "{text}");
    // A wide (CJK) path is cut by display width: the row never overflows the frame.
    start.recent[1].path = PathBuf::from(format!("/{}.jsonl", "東京".repeat(40)));
    let mut narrow = Terminal::new(TestBackend::new(60, 12)).unwrap();
    narrow.draw(|f| super::start::draw(f, &start)).unwrap();
    let buf = narrow.backend().buffer().clone();
    let row: String = (0..60).map(|x| buf[(x, 2)].symbol().to_string()).collect();
    assert!(row.ends_with('│') && row.contains('…'), "{row:?}");
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(start.key(&enter), Some(Choice::Shipment(a.clone())));
    start.key(&KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
    start.key(&KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
    start.key(&KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE));
    assert_eq!(start.key(&enter), Some(Choice::Browse), "the last row browses");
    assert_eq!(start.key(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)), Some(Choice::Quit));
}

/// The workstation's builds keep the drive manifest as `carload build` does: after `B`, the
/// CAR folder's `carload-drive.json` lists every batch, under the shipment's name and the same
/// shipment ID the CLI computes from the saved file (regenerating it from the file changes
/// nothing).
#[test]
fn workstation_builds_keep_the_drive_manifest_as_the_cli_does() {
    let (d, mut app) = packed(512 << 10);
    let e = keys(&mut app, "B");
    settle(&mut app, e);
    let n = app.batches.list.len();
    assert!(n >= 2 && app.batches.list.iter().all(|b| b.result.is_some()), "{:?}", app.builds.log);
    let out = d.path().join("out");
    let m = carload::shipment::drive::read_manifest(&out).unwrap().expect("a drive manifest");
    assert_eq!(m.shipment.name, "ship");
    let ids: Vec<&str> = m.cars.iter().map(|c| c.batch.as_str()).collect();
    let want: Vec<&str> = app.batches.list.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, want);
    let written = std::fs::read(out.join("carload-drive.json")).unwrap();
    // The CLI's book, from the file the workstation saved.
    let ship = d.path().join("ship.jsonl");
    let f = std::fs::File::open(&ship).unwrap();
    let index = carload::shipment::file::index_shipment(std::io::BufReader::new(&f)).unwrap();
    let watched = index
        .batches
        .iter()
        .map(|at| {
            let b = carload::shipment::file::read_batch_at(&f, &index.header, at).unwrap();
            carload::shipment::status::Watched::of(&index.header, &b)
        })
        .collect();
    let book = carload::shipment::drive::DriveBook::new("ship", &index.header, watched);
    carload::shipment::drive::regenerate(&out, &index.header, &book).unwrap();
    assert_eq!(std::fs::read(out.join("carload-drive.json")).unwrap(), written, "the same manifest, the same ID");
}

// ---- Drives (`--out D1 --out D2 …`) -----------------------------------------------------------

/// The batches a drive log records, batch → drive position.
fn drive_log(dir: &Path) -> std::collections::BTreeMap<String, u32> {
    let text = std::fs::read_to_string(dir.join(carload::shipment::drives::LOG)).unwrap();
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((v.get("batch")?.as_str()?.to_string(), v["drive"].as_u64()? as u32))
        })
        .collect()
}

/// An app over `dir/data` (four files of 400,000 bytes: a batch each in 512 KiB pieces, each
/// needing about 870,000 bytes on its drive while it builds — CAR, sidecars and spool bounds —
/// and writing about 400,000) that builds onto the drive folders `dir/d1`, `dir/d2` of
/// 1,600,000 bytes each (two batches fill one), packed and unsaved.
fn on_two_drives(dir: &Path) -> (App, PathBuf, PathBuf) {
    let names = ["data/f0", "data/ff1", "data/fff2", "data/ffff3"];
    let files: Vec<(&str, usize)> = names.iter().map(|n| (*n, 400_000)).collect();
    make_tree(dir, &files);
    let (d1, d2) = (dir.join("d1"), dir.join("d2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let mut s = settings(512 << 10);
    s.inputs = vec![dir.join("data").display().to_string()];
    s.shipment = Some(dir.join("ship.jsonl"));
    s.out = Some(d1.clone());
    s.drives = vec![d1.clone(), d2.clone()];
    DRIVES.with(|d| {
        let mut d = d.lock().unwrap();
        *d = Default::default();
        d.options = super::drives::DriveOptions { reserve: Default::default(), capacity: Some(1_600_000) };
    });
    let mut app = App::new(s, (120, 40));
    scan(&mut app, &[dir.join("data")]);
    keys(&mut app, "A");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    (app, d1, d2)
}

/// Feeds the watcher's reading of the drives now (as its next poll would).
fn poll_drives(app: &mut App) {
    let batches = app.batches.records(&app.tree, &app.settings.plan);
    let header = carload::shipment::plan::header(
        &app.settings.plan,
        app.settings.inputs.clone(),
        app.settings.base.clone(),
        &batches,
    );
    let watched: Vec<_> = batches.iter().map(|b| carload::shipment::status::Watched::of(&header, b)).collect();
    let (seen, d) = worker::poll_drives(&app.settings.drives, &header, &watched, 300);
    app.update(Msg::Drives(d));
    app.update(Msg::Watched { at: 2.0, seen });
}

/// `B` with two drives builds every batch through the library's drive set, as `carload build
/// --out D1 --out D2 --drive-capacity …` does: each CAR lies on exactly one drive, the one both
/// drives' `carload-drives.jsonl` name; the first drive filled, the second took the rest; the
/// watcher judges each batch on its drive, and the workstation names each batch's drive.
#[test]
fn builds_spread_over_two_capacity_limited_drives_each_car_on_the_drive_recorded() {
    let d = tempfile::tempdir().unwrap();
    let (mut app, d1, d2) = on_two_drives(d.path());
    assert_eq!(app.batches.list.len(), 4);
    let e = keys(&mut app, "B");
    assert!(matches!(e[..], [Effect::Save { .. }]), "saved first");
    settle(&mut app, e);
    assert!(app.batches.list.iter().all(|b| b.result.is_some()), "{:?}", app.builds.log);
    let (log1, log2) = (drive_log(&d1), drive_log(&d2));
    assert_eq!(log1, log2, "every drive records every batch");
    for b in &app.batches.list {
        let on: Vec<u32> = [(1, &d1), (2, &d2)]
            .iter()
            .filter(|(_, dir)| dir.join(format!("{}.car", b.id)).exists())
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(on.len(), 1, "{} on {on:?}", b.id);
        assert_eq!(log1.get(&b.id), Some(&on[0]), "{} lies on the drive recorded", b.id);
    }
    let per: Vec<usize> = [1, 2].iter().map(|p| log1.values().filter(|v| *v == p).count()).collect();
    assert!(per[0] >= 1 && per[1] >= 1, "the first drive filled, the second took the rest: {per:?}");
    // Each drive's manifest lists the CARs on it, with its place in the set.
    for (p, dir) in [(1, &d1), (2, &d2)] {
        let m = carload::shipment::drive::read_manifest(dir).unwrap().unwrap();
        assert_eq!((m.drive.position, m.drive.of), (p, 2));
        let mut cars: Vec<&str> = m.cars.iter().map(|c| c.batch.as_str()).collect();
        cars.sort();
        let want: Vec<&str> = log1.iter().filter(|(_, v)| **v == p).map(|(k, _)| k.as_str()).collect();
        assert_eq!(cars, want);
    }
    // The watcher judges each batch on its drive; the details and the info name it.
    poll_drives(&mut app);
    let seen = app.drives_seen.clone().unwrap();
    assert_eq!(seen.usage.len(), 2);
    assert_eq!(seen.usage[0].assigned + seen.usage[1].assigned, 4);
    for b in &app.batches.list {
        assert_eq!(seen.of_batch.get(&b.id), log1.get(&b.id));
        assert_eq!(app.dir_of(&b.id).as_ref(), Some(if log1[&b.id] == 1 { &d1 } else { &d2 }));
    }
    assert!(app.batches.list.iter().all(|b| b.result.is_some()), "built, judged on their drives");
    let last = app.batches.list.len() - 1;
    app.update(code(KeyCode::Tab));
    app.pane.row = last;
    let text = screen(&mut app, 120, 40);
    let id = app.batches.list[last].id.clone();
    let p = log1[&id];
    assert!(text.contains(&format!("{id} on drive {p}/2 (d{p})")), "{text}");
    assert!(app.info_lines(last).contains(&("Drive".into(), format!("drive {p} of 2 (d{p})"))));
    // The export names each CAR on its drive.
    let preview = app.export_preview.clone().unwrap();
    for b in &app.batches.list {
        let dir = if log1[&b.id] == 1 { &d1 } else { &d2 };
        assert!(preview.contains(&format!("{}/{}.car", dir.display(), b.id)), "{preview}");
    }

    // The start screen counts each batch on its drive.
    let me = crate::edge::host::owner();
    let rule = carload::shipment::lock::Rule::new(&me, std::time::Duration::from_secs(300));
    let ship = d.path().join("ship.jsonl");
    assert_eq!(super::start::built_count(&ship, &[d1.clone(), d2.clone()], &rule), Ok((4, 4)));
    assert_eq!(super::start::built_count(&ship, std::slice::from_ref(&d2), &rule), Ok((per[1], 4)));

    // Reopened with the second drive alone: batches of the first wait for it, by name.
    let mut s = app.settings.clone();
    s.out = Some(d2.clone());
    s.drives = vec![d2.clone()];
    let mut again = App::new(s, (120, 40));
    let shipment = carload::shipment::read_shipment(std::io::BufReader::new(
        std::fs::File::open(d.path().join("ship.jsonl")).unwrap(),
    ))
    .unwrap();
    again.load_batches(shipment.batches);
    scan(&mut again, &[d.path().join("data")]);
    let first = again.batches.list.iter().position(|b| log1[&b.id] == 1).unwrap();
    let want = "assigned to drive 1 (d1), which is not among the output folders";
    assert_eq!(again.batch_state(&again.batches.list[first]), Shown::Waits(want.into()));
    assert!(again.batches.list.iter().filter(|b| log1[&b.id] == 2).all(|b| b.result.is_some()));
    // Building it anyway: the drive set says it waits, and the state says for which drive.
    again.update(code(KeyCode::Tab));
    again.pane.row = first;
    again.builds.activity.clear();
    let e = keys(&mut again, "b");
    assert!(matches!(&e[..], [Effect::Build { drives: Some(t), .. }] if t.dirs == [d2.clone()]), "{e:?}");
    settle(&mut again, e);
    assert_eq!(again.batch_state(&again.batches.list[first]), Shown::Waits(want.into()));
    let text = screen(&mut again, 120, 40);
    assert!(text.contains("waits: assigned to drive 1 (d1)"), "{text}");
    assert!(!d2.join(format!("{}.car", again.batches.list[first].id)).exists());
}

/// `+` asks for a folder and adds it to the output folders: the folder in use becomes drive 1
/// of a set, the worker's set gets the drive (the next assignment can use it), the list is
/// remembered for the shipment and the watcher reads the longer set. A folder given twice is
/// refused; a relative one is the shipment base's.
#[test]
fn adding_a_drive_asks_for_its_folder_and_extends_the_set() {
    let mut app = synthetic();
    app.update(Msg::ScanDone(1.0));
    app.settings.shipment = Some(PathBuf::from("/ships/s.jsonl"));
    app.settings.out = Some(PathBuf::from("/mnt/d01"));
    keys(&mut app, "+");
    assert!(matches!(&app.modal, Some(Modal::AddDrive(s)) if s.is_empty()));
    let e = keys(&mut app, "/mnt/d02");
    assert!(e.is_empty());
    let e = app.update(code(KeyCode::Enter));
    let want = vec![PathBuf::from("/mnt/d01"), PathBuf::from("/mnt/d02")];
    assert_eq!(app.settings.drives, want);
    assert!(matches!(&e[0], Effect::AddDrive(d) if d == Path::new("/mnt/d02")), "{e:?}");
    assert!(
        matches!(&e[1], Effect::Remember { outs, shipment: Some(s), .. } if *outs == want && s == Path::new("/ships/s.jsonl")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|e| matches!(e, Effect::Watch { drives, .. } if *drives == want)),
        "the watcher reads the set: {e:?}"
    );
    assert!(message(&app).contains("/mnt/d02 added as drive 2"), "{}", message(&app));
    // Again: refused.
    keys(&mut app, "+");
    keys(&mut app, "/mnt/d02");
    let e = app.update(code(KeyCode::Enter));
    assert!(e.is_empty());
    assert!(message(&app).contains("already an output folder"), "{}", message(&app));
    // Relative: below the base; Esc cancels.
    keys(&mut app, "+");
    keys(&mut app, "d03");
    app.update(code(KeyCode::Enter));
    assert_eq!(app.settings.drives.last().unwrap(), &Path::new("/work").join("d03"));
    keys(&mut app, "+x");
    app.update(code(KeyCode::Esc));
    assert!(app.modal.is_none());
    assert_eq!(app.settings.drives.len(), 3);
}

/// A build that waits for its drive shows it (state, details, `r` retries), and the worker's
/// drive set takes a drive added while it runs.
#[test]
fn a_batch_waiting_for_its_drive_says_which_and_r_tries_again() {
    let mut app = synthetic();
    app.update(Msg::Listing(carload::walk::Listing { folder: 1, first: 11, ..Default::default() }));
    app.update(Msg::ScanDone(1.25));
    app.settings.out = Some(PathBuf::from("/mnt/d01"));
    app.settings.drives = vec![PathBuf::from("/mnt/d01"), PathBuf::from("/mnt/d02")];
    app.settings.shipment = Some(PathBuf::from("/ships/s.jsonl"));
    app.browser.selected = 2;
    keys(&mut app, "  ");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    app.dirty = false;
    let id = app.batches.list[0].id.clone();
    app.update(code(KeyCode::Tab));
    let e = keys(&mut app, "b");
    let [Effect::Build { drives: Some(t), drive: Some(book), .. }] = &e[..] else { panic!("{e:?}") };
    assert_eq!(t.dirs, app.settings.drives, "the set's folders");
    assert_eq!(t.header.batches as usize, app.batches.list.len(), "the whole shipment's header");
    assert_eq!(book.batches.len(), app.batches.list.len());
    let why = "assigned to drive 2 (d02), which is not among the output folders".to_string();
    app.update(build_msg(&id, 5.0, Report::Finished(Done::Waits(why.clone()))));
    assert_eq!(app.batch_state(&app.batches.list[0]), Shown::Waits(why.clone()));
    assert!(app.builds.log.iter().any(|l| l.text == format!("{id} waits: {why}")));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains(&format!("{id} waits: {why} · + adds the drive, r retries")), "{text}");
    assert!(matches!(&keys(&mut app, "r")[..], [Effect::Build { .. }]), "r tries again");
    // The worker's set: a drive added goes into the session's folders.
    let mut session = super::drives::Session::default();
    session.begin(&t.dirs, &t.header, book);
    session.add(PathBuf::from("/mnt/d03"));
    let mut notices = Vec::new();
    // None of the folders exists: nothing is written, the batch is not placed.
    let r = session.assign(&id, &"0".repeat(32), &mut notices);
    assert!(matches!(r, Err(super::drives::Unplaced::Failed(_))), "{r:?}");
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(notices[2].starts_with("/mnt/d03: no such folder"), "{notices:?}");
}

/// The drives pane (`D`): each drive's position, label, fill gauge, built K/N, FULL when its
/// room is below the next batch's need, "not given" for a drive not mounted.
#[test]
fn drives_screens() {
    use carload::shipment::drives::DriveUsage;
    let mut app = synthetic();
    app.update(Msg::Listing(carload::walk::Listing { folder: 1, first: 11, ..Default::default() }));
    app.update(Msg::ScanDone(1.25));
    keys(&mut app, "D");
    insta::assert_snapshot!("drives_one_folder_80x24", screen(&mut app, 80, 24));
    app.settings.out = Some(PathBuf::from("/mnt/d01"));
    app.settings.drives = vec![PathBuf::from("/mnt/d01"), PathBuf::from("/mnt/d02"), PathBuf::from("/mnt/gone")];
    app.browser.selected = 2;
    keys(&mut app, "D");
    keys(&mut app, "  ");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    keys(&mut app, "D");
    let (a, b) = (app.batches.list[0].id.clone(), app.batches.list[1].id.clone());
    const T: u64 = 18_000_000_000_000;
    let usage = |position: u32, label: &str, dir: Option<&str>, assigned, bound, free: Option<u64>, room| DriveUsage {
        position,
        of: 3,
        label: label.into(),
        dir: dir.map(PathBuf::from),
        assigned,
        assigned_bound: bound,
        free,
        size: free.map(|_| T),
        room,
    };
    let seen = super::drives::DrivesSeen {
        usage: vec![
            usage(1, "d01", Some("/mnt/d01"), 1, 17_500_000_000_000, Some(300_000_000_000), Some(20_000_000_000)),
            usage(2, "d02", Some("/mnt/d02"), 0, 0, Some(T - 40_000_000), Some(T - 220_000_000_000)),
            usage(3, "d03", None, 1, 34_000_000_000, None, None),
        ],
        of_batch: [(a.clone(), 1), (b.clone(), 3)].into_iter().collect(),
        waits: [(b.clone(), "assigned to drive 3 (d03), which is not among the output folders".to_string())]
            .into_iter()
            .collect(),
        next_need: Some(34_400_000_000),
        missing: vec![PathBuf::from("/mnt/gone")],
        error: None,
    };
    app.update(Msg::Drives(seen));
    let bytes = app.batches.list[1].bytes(&app.tree);
    let state = State::Problem { reason: "assigned to drive 3 (d03), which is not among the output folders".into() };
    app.update(Msg::Watched { at: 10.0, seen: vec![BatchStatus { id: b.clone(), bytes, state, result: None }] });
    assert!(matches!(app.batch_state(&app.batches.list[1]), Shown::Waits(_)), "not corrupt: waiting");
    app.focus = Focus::Browser;
    insta::assert_snapshot!("drives_120x40", screen(&mut app, 120, 40));
    insta::assert_snapshot!("drives_80x24", screen(&mut app, 80, 24));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("1/3 d01 · built 0/1 · FULL"), "{text}");
    assert!(text.contains("3/3 d03 · built 0/1 · not given"), "{text}");
    keys(&mut app, "D");
    assert_eq!(app.left, super::app::Left::Browser);
}

/// The state file reads a shipment's single folder as before drive sets (a string) and a drive
/// set's folders (a list); one folder is written as a string.
#[test]
fn remembered_output_folders_read_old_and_new_entries() {
    use super::config::State;
    let old = r#"{"recent_shipments":["/s/a.jsonl","/s/b.jsonl"],"outs":{"/s/a.jsonl":"/cars"}}"#;
    let mut s: State = serde_json::from_str(old).unwrap();
    assert_eq!(s.out_of(Path::new("/s/a.jsonl")), Some(&PathBuf::from("/cars")));
    s.note_shipment_outs(Path::new("/s/b.jsonl"), &[PathBuf::from("/mnt/d1"), PathBuf::from("/mnt/d2")]);
    assert_eq!(s.outs_of(Path::new("/s/b.jsonl")), [PathBuf::from("/mnt/d1"), PathBuf::from("/mnt/d2")]);
    assert_eq!(s.out_of(Path::new("/s/b.jsonl")), Some(&PathBuf::from("/mnt/d1")));
    let text = serde_json::to_string(&s).unwrap();
    assert!(text.contains(r#""/s/a.jsonl":"/cars""#), "{text}");
    assert!(text.contains(r#""/s/b.jsonl":["/mnt/d1","/mnt/d2"]"#), "{text}");
    let back: State = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
}

/// The deals file `segment plan` writes beside the shipment is read by the watcher: the details
/// line says which deal a batch is in and the deal's fill; a file of another plan says so.
#[test]
fn a_shipments_deals_file_shows_each_batchs_deal_and_fill() {
    use carload::segment::deals;
    let (d, mut app) = packed(512 << 10);
    let e = keys(&mut app, "B");
    settle(&mut app, e);
    assert!(app.batches.list.iter().all(|b| b.result.is_some()), "{:?}", app.builds.log);
    let ship = d.path().join("ship.jsonl");
    let s = carload::shipment::read_shipment(std::io::BufReader::new(std::fs::File::open(&ship).unwrap())).unwrap();
    // What `carload segment plan ship.jsonl --out out --deal-size 2MiB` writes.
    let watched: Vec<_> = s.batches.iter().map(|b| carload::shipment::status::Watched::of(&s.header, b)).collect();
    let pieces: Vec<_> = app
        .batches
        .list
        .iter()
        .map(|b| {
            let r = b.result.as_ref().unwrap();
            let p = carload::segment::parse_piece_cid(&r.piece_cid).unwrap();
            deals::Piece { batch: b.id.clone(), root: p.root, size: r.piece_size, car_size: r.car_size }
        })
        .collect();
    let planned = deals::plan(&pieces, 2 << 20).unwrap();
    let header = deals::Header {
        format: deals::FORMAT.into(),
        version: deals::VERSION,
        shipment: carload::shipment::drive::shipment_id(&s.header, &watched),
        deal_size: 2 << 20,
        cars: "out".into(),
        deals: planned.len() as u64,
    };
    let plan = deals::DealsPlan { header, deals: planned };
    let mut bytes = Vec::new();
    deals::write_plan(&mut bytes, &plan).unwrap();
    let path = deals::default_path(&ship);
    assert_eq!(path, d.path().join("ship.deals.jsonl"));
    std::fs::write(&path, &bytes).unwrap();
    // Reopened, the watcher's first poll reads it.
    let mut again = App::new(app.settings.clone(), (160, 40));
    again.load_batches(s.batches.clone());
    scan(&mut again, &[PathBuf::from(&app.settings.inputs[0])]);
    let seen = again.deals_seen.clone().expect("the deals file is read");
    assert_eq!(seen.error, None);
    assert_eq!(seen.deals.len(), plan.deals.len());
    let first = &plan.deals[0];
    again.update(code(KeyCode::Tab));
    let text = screen(&mut again, 160, 40);
    let want = format!("in {} ({} batches, fill {:.1}%)", first.id, first.segments.len(), first.fill() * 100.0);
    let b0 = &again.batches.list[0].id;
    assert!(first.segments.iter().any(|s| &s.batch == b0), "b00000 is in the first deal");
    assert!(text.contains(&want), "{want}\n{text}");
    // A deals file of another plan is not taken for this one's.
    let other = String::from_utf8(bytes).unwrap().replacen(&plan.header.shipment, &"0".repeat(64), 1);
    std::fs::write(&path, other).unwrap();
    let seen = super::deals::read(&path, &s.header, &watched).unwrap();
    assert_eq!(seen.error.as_deref(), Some("of another plan (plan the deals again)"));
    assert!(seen.line_of(b0).unwrap().starts_with("deals file ship.deals.jsonl: of another plan"));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(super::deals::read(&path, &s.header, &watched), None);
}

/// The deals pane (`L`): each deal of the deals file with its batches built, its fill, and what
/// it waits for; a batch built with another piece than the file records is flagged.
#[test]
fn the_deals_pane_shows_each_deals_fill_and_what_it_waits_for() {
    use carload::segment::deals;
    let mut app = synthetic();
    app.update(Msg::Listing(carload::walk::Listing { folder: 1, first: 11, ..Default::default() }));
    app.update(Msg::ScanDone(1.25));
    keys(&mut app, "L");
    assert_eq!(app.left, super::app::Left::Deals);
    let text = screen(&mut app, 80, 24);
    assert!(text.contains("No deals file (save the shipment first)."), "{text}");
    app.browser.selected = 2;
    keys(&mut app, "L");
    assert_eq!(app.left, super::app::Left::Browser);
    keys(&mut app, "  ");
    let e = keys(&mut app, "p");
    settle(&mut app, e);
    let ids: Vec<String> = app.batches.list.iter().map(|b| b.id.clone()).collect();
    assert_eq!(ids.len(), 2);
    let piece = |n: u8, id: &str| deals::Piece { batch: id.into(), root: [n; 32], size: 16 << 30, car_size: 15 << 30 };
    let plan = deals::plan(&[piece(1, &ids[0]), piece(2, &ids[1])], 64 << 30).unwrap();
    let file = deals::DealsPlan {
        header: deals::Header {
            format: deals::FORMAT.into(),
            version: deals::VERSION,
            shipment: "ab".repeat(32),
            deal_size: 64 << 30,
            cars: "out".into(),
            deals: 1,
        },
        deals: plan.clone(),
    };
    app.update(Msg::Deals(Some(super::deals::DealsSeen::of("ship.deals.jsonl".into(), &file))));
    let result = |k: usize, piece_cid: String| carload::shipment::BatchResult {
        piece_cid,
        ..carload::shipment::BatchResult::sample_for_tests(&ids[k])
    };
    let planned = |k: usize| plan[0].segments.iter().find(|s| s.batch == ids[k]).unwrap().piece().cid_v1().to_string();
    app.batches.list[0].result = Some(result(0, planned(0)));
    keys(&mut app, "L");
    insta::assert_snapshot!("deals_80x24", screen(&mut app, 80, 24));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("deal-0001 · built 1/2 · 64 GiB"), "{text}");
    assert!(text.contains(&format!("waits for {}", ids[1])), "{text}");
    assert!(text.contains("0 of 1 deals have every batch built."), "{text}");
    assert!(text.contains("L browser · B build all"), "{text}");
    // Built with another piece than the deals file records: flagged, not counted.
    app.batches.list[1].result = Some(result(1, planned(0)));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains(&format!("other piece: {} (plan the deals again)", ids[1])), "{text}");
    assert!(text.contains("deal-0001 · built 1/2"), "{text}");
    // Both as planned: ready.
    app.batches.list[1].result = Some(result(1, planned(1)));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains(&format!("ready: {} {}", plan[0].segments[0].batch, plan[0].segments[1].batch)), "{text}");
    assert!(text.contains("1 of 1 deals have every batch built."), "{text}");
    // A deals file that does not read says why.
    app.update(Msg::Deals(Some(super::deals::DealsSeen {
        name: "ship.deals.jsonl".into(),
        error: Some("of another plan (plan the deals again)".into()),
        ..Default::default()
    })));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("ship.deals.jsonl: of another plan (plan the deals again)"), "{text}");
}
