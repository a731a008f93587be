//! Walking a DAG held by a node in CAR order, with bounded parallel prefetch.

use super::{cbor, ApiAddr, Client, FetchConfig, IpfsError};
use crate::{block, car, dagpb};
use cid::Cid;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

/// The error type an `emit` callback returns (any error; `std::io::Error` converts with `?`).
pub type EmitError = Box<dyn std::error::Error + Send + Sync>;

/// The callback [`Fetcher::walk`] gives each block to: `emit(cid_as_written, bytes)`.
pub type EmitFn<'a> = dyn FnMut(&Cid, &[u8]) -> Result<(), EmitError> + 'a;

/// What a walk produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Blocks emitted (each exact CID once).
    pub blocks: u64,
    /// Bytes of block data emitted (CIDs and section prefixes not counted).
    pub bytes: u64,
}

/// Progress of a walk, reported after each emitted block. Counts are for this walk only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Blocks emitted so far.
    pub blocks: u64,
    /// Bytes of block data emitted so far.
    pub bytes: u64,
    /// Retries the client has made so far (all walks of this fetcher).
    pub retries: u64,
}

type ProgressFn = Box<dyn Fn(&Progress) + Send + Sync>;

/// Fetches DAGs from a node: a [`Client`] plus a progress sink.
pub struct Fetcher {
    client: Client,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("client", &self.client).finish_non_exhaustive()
    }
}

/// The links of a block in walk order: dag-pb links sorted by name bytes with a stable sort (as
/// go-merkledag re-sorts them on decode, so for any canonically encoded node this is the stored
/// order), none for raw, tag-42 CIDs in encoded order for dag-cbor (see [`cbor::cbor_links`]).
/// Other codecs are an error, as Powergate's block decoder knows only these three.
pub fn block_links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, String> {
    match cid.codec() {
        block::RAW => Ok(Vec::new()),
        block::DAG_PB => {
            let mut node = dagpb::decode(data).map_err(|e| e.to_string())?;
            dagpb::sort_links(&mut node.links);
            Ok(node.links.into_iter().map(|l| l.cid).collect())
        }
        block::DAG_CBOR => cbor::cbor_links(data),
        c => Err(format!("unsupported codec 0x{c:x} (dag-pb, raw and dag-cbor are supported)")),
    }
}

impl Fetcher {
    /// A fetcher for the node at `addr`.
    pub fn new(addr: ApiAddr, config: FetchConfig) -> Self {
        Fetcher { client: Client::new(addr, config), progress: None }
    }

    /// Reports [`Progress`] to `f` after each block is emitted (called on the walking thread).
    pub fn with_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Walks the DAG under `root` in CAR order — depth-first pre-order, children in
    /// [`block_links`] order — calling `emit(cid_as_written, bytes)` for each block whose CID is
    /// not yet in `visited`, and adding it there. `visited` is shared so several DAGs can go into
    /// one CAR (aggregates). The root is fetched as `root` but written (and marked visited) as
    /// `write_root_as`, which must have the same multihash (aggregates write entry roots as
    /// CIDv1); pass `root` twice otherwise.
    ///
    /// Blocks are fetched by up to `parallelism` worker threads, up to `prefetch` blocks ahead of
    /// the walk, in the order the walk will need them; output order does not depend on timing.
    /// Every block is verified against its CID. On error, nothing further is emitted.
    pub fn walk(
        &self,
        root: &Cid,
        write_root_as: &Cid,
        visited: &mut HashSet<Cid>,
        emit: &mut EmitFn<'_>,
    ) -> Result<WalkStats, IpfsError> {
        if root.hash() != write_root_as.hash() {
            return Err(IpfsError::BadCid {
                addr: self.client.addr().to_string(),
                cid: write_root_as.to_string(),
                message: format!("cannot write root {root} as {write_root_as}: different multihash"),
            });
        }
        let cfg = self.client.config();
        let workers = cfg.parallelism.max(1);
        let window = cfg.prefetch.max(1);
        let (job_tx, job_rx) = mpsc::channel::<Cid>();
        let (res_tx, res_rx) = mpsc::channel::<(Cid, Result<Vec<u8>, IpfsError>)>();
        let job_rx = Mutex::new(job_rx);
        let cancel = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..workers {
                let res_tx = res_tx.clone();
                let (job_rx, cancel, client) = (&job_rx, &cancel, &self.client);
                s.spawn(move || loop {
                    let next = job_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(cid)) = next else { return };
                    if cancel.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = client.block_get(&cid);
                    if res_tx.send((cid, r)).is_err() {
                        return;
                    }
                });
            }
            drop(res_tx);
            let mut state = WalkState {
                stack: vec![(*root, *write_root_as)],
                inflight: HashSet::new(),
                ready: HashMap::new(),
                window,
                job_tx: &job_tx,
                res_rx: &res_rx,
            };
            let r = self.run(&mut state, visited, emit);
            if r.is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
            drop(job_tx);
            r
        })
    }

    fn run(
        &self,
        st: &mut WalkState<'_>,
        visited: &mut HashSet<Cid>,
        emit: &mut EmitFn<'_>,
    ) -> Result<WalkStats, IpfsError> {
        let mut stats = WalkStats::default();
        loop {
            while st.stack.last().is_some_and(|(_, w)| visited.contains(w)) {
                st.stack.pop();
            }
            let Some(&(fetch, write)) = st.stack.last() else {
                break;
            };
            st.schedule(visited);
            let data = st.wait_for(&fetch)??;
            st.stack.pop();
            let links = block_links(&fetch, &data).map_err(|reason| IpfsError::Decode {
                addr: self.client.addr().to_string(),
                cid: Box::new(fetch),
                reason,
            })?;
            visited.insert(write);
            emit(&write, &data).map_err(|source| IpfsError::Emit { cid: Box::new(write), source })?;
            stats.blocks += 1;
            stats.bytes += data.len() as u64;
            if let Some(p) = &self.progress {
                p(&Progress { blocks: stats.blocks, bytes: stats.bytes, retries: self.client.retries() });
            }
            st.stack.extend(links.into_iter().rev().filter(|c| !visited.contains(c)).map(|c| (c, c)));
        }
        Ok(stats)
    }
}

/// The walker's bookkeeping: a DFS stack of `(CID to fetch, CID to write)`, the top of the stack
/// being the next block to emit; blocks requested from workers; blocks received but not emitted.
struct WalkState<'a> {
    stack: Vec<(Cid, Cid)>,
    inflight: HashSet<Cid>,
    ready: HashMap<Cid, Result<Vec<u8>, IpfsError>>,
    window: usize,
    job_tx: &'a mpsc::Sender<Cid>,
    res_rx: &'a mpsc::Receiver<(Cid, Result<Vec<u8>, IpfsError>)>,
}

impl WalkState<'_> {
    /// Requests the blocks of the top `window` stack entries (the next blocks the walk will
    /// need, as far as it knows), top first. At most `2 × window` blocks are held (requested
    /// and not yet emitted) — entries pushed deeper by a node's children stay held — except
    /// that the top is always requested, so the walk never stalls. Memory is thus bounded by
    /// `2 × window + 1` blocks.
    fn schedule(&mut self, visited: &HashSet<Cid>) {
        for (i, (fetch, write)) in self.stack.iter().rev().take(self.window).enumerate() {
            if i > 0 && self.inflight.len() + self.ready.len() >= 2 * self.window {
                break;
            }
            if visited.contains(write) || self.inflight.contains(fetch) || self.ready.contains_key(fetch) {
                continue;
            }
            if self.job_tx.send(*fetch).is_ok() {
                self.inflight.insert(*fetch);
            }
        }
    }

    /// Waits until `cid` has been received, and takes it.
    fn wait_for(&mut self, cid: &Cid) -> Result<Result<Vec<u8>, IpfsError>, IpfsError> {
        loop {
            if let Some(r) = self.ready.remove(cid) {
                return Ok(r);
            }
            match self.res_rx.recv() {
                Ok((c, r)) => {
                    self.inflight.remove(&c);
                    self.ready.insert(c, r);
                }
                Err(_) => {
                    return Err(IpfsError::Io(std::io::Error::other("all fetch workers stopped")));
                }
            }
        }
    }
}

/// Writes the CARv1 of the DAG under `root` to `out`: the header naming `root`, then every block
/// in CAR order (see [`Fetcher::walk`]). Byte-identical to Powergate's `--ipfs-api` output.
pub fn export_car(fetcher: &Fetcher, root: &Cid, out: &mut impl Write) -> Result<WalkStats, IpfsError> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    w.write_all(&car::header(root))?;
    let mut visited = HashSet::new();
    let stats = fetcher.walk(root, root, &mut visited, &mut |cid, data| {
        w.write_all(&car::section_prefix(cid, data.len()))?;
        w.write_all(data)?;
        Ok(())
    })?;
    w.flush()?;
    Ok(stats)
}
