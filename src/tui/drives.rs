//! Drive sets in the workstation (`carload tui --out D1 --out D2 …`): builds placed on the drives
//! with the library's [`DriveSet`] exactly as `carload build` places them (the set opened once
//! per build session, each batch assigned before it is built, under one lock), and what the
//! watcher sees of the drives for the drives pane.

use carload::shipment::drive::DriveBook;
use carload::shipment::drives::{need, DriveSet, DriveUsage, PlaceError, Placement, Reserve, SetOptions};
use carload::shipment::status::{BatchStatus, State, Watched};
use carload::shipment::Header;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// What the watcher saw of the drive set at its last poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrivesSeen {
    /// Each drive of the set, by position (given or not).
    pub usage: Vec<DriveUsage>,
    /// Each assigned batch's drive (position).
    pub of_batch: HashMap<String, u32>,
    /// Batches whose drive is not given, with the reason (`assigned to drive 2 (d2), which is
    /// not among the output folders`).
    pub waits: BTreeMap<String, String>,
    /// What the next batch to place (the first neither assigned nor built) needs on a drive.
    pub next_need: Option<u64>,
    /// Folders given that are not there (drives not mounted).
    pub missing: Vec<PathBuf>,
    /// Why the set could not be read, when it could not.
    pub error: Option<String>,
}

impl DrivesSeen {
    /// What the set and the statuses say: usage by drive, batches' drives, the next need.
    pub fn of(set: &DriveSet, watched: &[Watched], seen: &[BatchStatus], missing: Vec<PathBuf>) -> Self {
        let mut d = DrivesSeen { usage: set.usage(watched), missing, ..Default::default() };
        for (w, s) in watched.iter().zip(seen) {
            if let Some(p) = set.drive_of(&w.id) {
                d.of_batch.insert(w.id.clone(), p);
            }
            match set.placement(&w.id) {
                Placement::Refused(e @ PlaceError::Absent { .. }) => {
                    d.waits.insert(w.id.clone(), e.to_string());
                }
                Placement::Unassigned if d.next_need.is_none() && !matches!(s.state, State::Built { .. }) => {
                    // Builds here spool on the drive (no --tmpdir for builds).
                    d.next_need = Some(need(w, true));
                }
                _ => {}
            }
        }
        d
    }

    /// The drive (its figures) batch `id` is assigned to.
    pub fn drive_of(&self, id: &str) -> Option<&DriveUsage> {
        let p = *self.of_batch.get(id)?;
        self.usage.iter().find(|u| u.position == p)
    }

    /// Whether drive `u` is full: given, and its room is below what the next batch needs.
    pub fn full(&self, u: &DriveUsage) -> bool {
        matches!((u.room, self.next_need), (Some(room), Some(need)) if room < need)
    }
}

/// How builds place batches on the drives (`--reserve`, `--drive-capacity`, as `carload build`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DriveOptions {
    /// Kept free on each drive.
    pub reserve: Reserve,
    /// Use at most this many bytes of each drive.
    pub capacity: Option<u64>,
}

/// Why a batch is not placed on a drive now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unplaced {
    /// Its drive is not given: it waits (the reason names the drive).
    Waits(String),
    /// It cannot be placed (no room anywhere, conflicting records, the set unreadable).
    Failed(String),
}

/// The drive set of the workstation's builds, shared by the build slots. A build session
/// ([`Session::begin`]: one `b`/`B`) opens the set once, at its first assignment, with the
/// shipment's book; adding a drive ([`Session::add`]) opens it again with the drive, so the
/// next assignment can use it.
#[derive(Debug, Default)]
pub struct Session {
    dirs: Vec<PathBuf>,
    header: Option<Header>,
    book: Option<Arc<DriveBook>>,
    set: Option<DriveSet>,
    /// How batches are placed.
    pub options: DriveOptions,
}

impl Session {
    /// Starts a build session on drive folders `dirs` for the shipment `book` (planned with
    /// `header`): the set is opened again at the next assignment when either changed. Within one
    /// session (the same book) folders are only ever added: a build slot that starts with the
    /// folders its batch was queued with keeps a drive added since ([`Session::add`]).
    pub fn begin(&mut self, dirs: &[PathBuf], header: &Header, book: &Arc<DriveBook>) {
        if self.book.as_ref().is_some_and(|b| Arc::ptr_eq(b, book)) {
            for d in dirs {
                self.add(d.clone());
            }
            return;
        }
        self.dirs = dirs.to_vec();
        self.header = Some(header.clone());
        self.book = Some(book.clone());
        self.set = None;
    }

    /// Adds drive folder `dir` to the set (opened again, with it, at the next assignment).
    pub fn add(&mut self, dir: PathBuf) {
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
            self.set = None;
        }
    }

    /// Assigns batch `id` to a drive, opening the set first when needed (folders not there are
    /// left out, as drives not mounted); what opening noticed is pushed to `notices`. Returns
    /// its drive's folder.
    pub fn assign(&mut self, id: &str, new_set_id: &str, notices: &mut Vec<String>) -> Result<PathBuf, Unplaced> {
        let (Some(header), Some(book)) = (&self.header, &self.book) else {
            return Err(Unplaced::Failed("no build session on the drives".into()));
        };
        if self.set.is_none() {
            let present: Vec<PathBuf> = self
                .dirs
                .iter()
                .filter(|d| {
                    let ok = d.is_dir();
                    if !ok {
                        notices.push(format!(
                            "{}: no such folder (drive not mounted?); batches assigned to it wait",
                            d.display()
                        ));
                    }
                    ok
                })
                .cloned()
                .collect();
            if present.is_empty() {
                return Err(Unplaced::Failed("none of the output drives is there: nothing to build on".into()));
            }
            let opts = SetOptions {
                reserve: self.options.reserve,
                capacity: self.options.capacity,
                spool_on_drive: true,
                new_set_id: new_set_id.to_string(),
            };
            let set = DriveSet::open(&present, header, book, opts).map_err(|e| Unplaced::Failed(e.to_string()))?;
            notices.extend(set.warnings.iter().map(|w| format!("warning: {w}")));
            self.set = Some(set);
        }
        let set = self.set.as_mut().expect("opened");
        let Some(w) = book.batches.iter().find(|w| w.id == id) else {
            return Err(Unplaced::Failed(format!("{id} is not in the saved shipment")));
        };
        set.assign(w, &book.batches).map_err(|e| match e {
            e @ PlaceError::Absent { .. } => Unplaced::Waits(e.to_string()),
            e => Unplaced::Failed(e.to_string()),
        })
    }
}

/// A fresh drive set's ID: 32 hex digits of SHA-256 over this host, process and the time (as
/// `carload build` draws it).
pub fn new_set_id() -> String {
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{} {} {}", crate::edge::host::host_name(), std::process::id(), now.as_nanos());
    sha2::Sha256::digest(seed.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        serde_json::from_str(r#"{"format":"carload-shipment","version":2,"profile":{"cid_version":"V0","raw_leaves":false,"chunk_size":262144,"max_links":174,"hidden":false},"sector_size":34359738368,"piece_size":34359738368,"min_piece_size":1048576,"margin":0,"base":"/data","pack":"best-fit","inputs":["d"],"batches":0,"files":0,"bytes":0,"car_bytes_bound":0}"#).unwrap()
    }

    /// A drive added to a running build stays in the set when the next build slot of the same
    /// session begins with the folders its batch was queued with; another shipment starts over.
    #[test]
    fn a_drive_added_mid_build_survives_the_next_slot() {
        let h = header();
        let book = Arc::new(DriveBook::new("ship", &h, Vec::new()));
        let mut s = Session::default();
        let queued = [PathBuf::from("/mnt/d1")];
        s.begin(&queued, &h, &book);
        s.add(PathBuf::from("/mnt/d2"));
        s.begin(&queued, &h, &book);
        assert_eq!(s.dirs, [PathBuf::from("/mnt/d1"), PathBuf::from("/mnt/d2")]);
        let other = Arc::new(DriveBook::new("other", &h, Vec::new()));
        s.begin(&queued, &h, &other);
        assert_eq!(s.dirs, queued);
    }
}
