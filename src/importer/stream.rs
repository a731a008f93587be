//! The streaming importer: reads each file once, in order, and writes every CAR section at its
//! final offset. Internal nodes and the header get space reserved (their sizes are predicted by
//! [`layout`](super::layout)) and are filled in when their children are known. Leaves are hashed
//! in parallel batches.

use super::input::Input;
use super::layout::{self, root_cid_len, DirShape, FileShape, Kid};
use super::scan::{Child, Entry, Folder, ImportError};
use super::trickle::{self, TrickleShape};
use super::written::Written;
use crate::block::{cid_from_multihash, cid_of, CidVersion, DAG_PB, RAW};
use crate::car;
use crate::dagpb::{self, Link};
use crate::event::{Event, Observer};
use crate::multibuffer;
use crate::profile::{Layout, Profile};
use crate::sink::Sink;
use crate::unixfs;
use crate::unixfs::hamt::{self, Hamt, Held, Run};
use cid::Cid;
use rayon::prelude::*;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A folder or shard node's CAR section being built: room for the section prefix (known only
/// once the block is hashed), then the block, encoded link by link as its entries complete — so
/// neither a list of links nor a second copy of the block is held.
struct Section {
    bytes: Vec<u8>,
    /// Where the block starts (the prefix's predicted length).
    start: usize,
}

impl Section {
    fn new(slot: (u64, u64), block_len: u64) -> Section {
        let mut bytes = Vec::with_capacity(slot.1 as usize);
        let start = (slot.1 - block_len) as usize;
        bytes.resize(start, 0);
        Section { bytes, start }
    }
}

/// Leaves hashed per parallel batch.
const BATCH_LEAVES: u64 = 32;

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Root CID (the payload CID).
    pub root: Cid,
    /// Cumulative DAG size of the root.
    pub tsize: u64,
    /// Bytes of CAR written (header included).
    pub car_size: u64,
    /// Blocks written.
    pub blocks: u64,
}

/// A DAG's root as a parent link sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Root CID.
    pub cid: Cid,
    /// Cumulative size.
    pub tsize: u64,
    /// File bytes under it.
    pub file_bytes: u64,
}

/// Builds DAGs and writes their CAR sections into a [`Sink`].
pub struct Builder<'a> {
    profile: Profile,
    sink: &'a mut dyn Sink,
    observer: &'a mut dyn Observer,
    cursor: u64,
    visited: Written,
    blocks: u64,
    /// A small HAMT shard's subtree being assembled in memory: its first offset and bytes.
    buffered: Option<(u64, Vec<u8>)>,
}

/// A HAMT shard whose subtree's CAR sections take at most this many bytes is assembled in
/// memory and written as one run (each shard's reservation would otherwise be one more
/// out-of-order write: tens of thousands for a folder of 100,000 entries).
const BUFFERED_SHARD: u64 = 1 << 20;

fn out_err(e: std::io::Error) -> ImportError {
    ImportError::Output(e)
}

impl<'a> Builder<'a> {
    /// A builder writing at offset `start` of `sink`.
    pub fn new(profile: Profile, sink: &'a mut dyn Sink, observer: &'a mut dyn Observer, start: u64) -> Self {
        Builder { profile, sink, observer, cursor: start, visited: Written::default(), blocks: 0, buffered: None }
    }

    /// Current write offset.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Blocks written so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Writes `data` at `offset`: into the shard being assembled in memory, if any, else the sink.
    fn put(&mut self, offset: u64, data: &[u8]) -> Result<(), ImportError> {
        match &mut self.buffered {
            Some((start, buf)) => {
                let at = (offset - *start) as usize;
                if buf.len() < at + data.len() {
                    buf.resize(at + data.len(), 0);
                }
                buf[at..at + data.len()].copy_from_slice(data);
                Ok(())
            }
            None => self.sink.write_at(offset, data).map_err(out_err),
        }
    }

    /// Reserves `offset..offset+len` (see [`Builder::put`]).
    fn put_reserve(&mut self, offset: u64, len: u64) -> Result<(), ImportError> {
        match &mut self.buffered {
            Some((start, buf)) => {
                buf.resize((offset + len - *start) as usize, 0);
                Ok(())
            }
            None => self.sink.reserve(offset, len).map_err(out_err),
        }
    }

    /// Withdraws everything from `offset` on (see [`Builder::put`]).
    fn put_retract(&mut self, offset: u64) -> Result<(), ImportError> {
        match &mut self.buffered {
            Some((start, buf)) => {
                buf.truncate((offset - *start) as usize);
                Ok(())
            }
            None => self.sink.retract(offset).map_err(out_err),
        }
    }

    /// Appends a whole block at the cursor unless its CID was already written.
    pub fn append_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), ImportError> {
        if !self.visited.insert(cid) {
            return Ok(());
        }
        let prefix = car::section_prefix(cid, data.len());
        self.put(self.cursor, &prefix)?;
        self.put(self.cursor + prefix.len() as u64, data)?;
        let n = prefix.len() as u64 + data.len() as u64;
        self.cursor += n;
        self.blocks += 1;
        self.observer.event(Event::CarBytes(n));
        Ok(())
    }

    fn reserve(&mut self, cid_len: usize, block_len: u64) -> Result<(u64, u64), ImportError> {
        let off = self.cursor;
        let len = car::section_len(cid_len, block_len);
        self.put_reserve(off, len)?;
        self.cursor += len;
        Ok((off, len))
    }

    /// Fills the reservation at `slot` with a block's whole CAR section (a reservation is filled
    /// by one write), or withdraws it if the CID was written before.
    fn fill(&mut self, slot: (u64, u64), cid: &Cid, section: Vec<u8>) -> Result<(), ImportError> {
        if self.visited.insert(cid) {
            if section.len() as u64 != slot.1 {
                return Err(ImportError::Prediction { predicted: slot.1, actual: section.len() as u64 });
            }
            match self.buffered {
                Some(_) => self.put(slot.0, &section)?,
                None => self.sink.write_owned(slot.0, section).map_err(out_err)?,
            }
            self.blocks += 1;
            self.observer.event(Event::CarBytes(slot.1));
        } else {
            // Everything under a repeated node repeats too, so nothing was written after the slot.
            debug_assert_eq!(self.cursor, slot.0 + slot.1);
            self.put_retract(slot.0)?;
            self.cursor = slot.0;
        }
        Ok(())
    }

    /// [`Builder::entry`] for an entry of the open folder `dir`: a file (or file range) is
    /// opened by its name relative to `dir` ([`super::input::Input::open_in`]), with the same
    /// checks; other entries are imported by path.
    pub fn entry_in(&mut self, dir: &super::input::Folder, entry: &Entry) -> Result<(Cid, u64), ImportError> {
        let l = match entry {
            Entry::File { path, size, expect } => {
                self.file_part_in(Some(dir), path, 0, *size, true, expect.as_ref())?
            }
            Entry::FileRange { path, offset, len, expect } => {
                self.file_part_in(Some(dir), path, *offset, *len, false, expect.as_ref())?
            }
            _ => return self.entry(entry),
        };
        Ok((l.cid, l.tsize))
    }

    /// Imports an input tree and returns its root CID and Tsize.
    pub fn entry(&mut self, entry: &Entry) -> Result<(Cid, u64), ImportError> {
        match entry {
            Entry::File { path, size, expect } => {
                let l = self.file_part(path, 0, *size, true, expect.as_ref())?;
                Ok((l.cid, l.tsize))
            }
            Entry::FileRange { path, offset, len, expect } => {
                let l = self.file_part(path, *offset, *len, false, expect.as_ref())?;
                Ok((l.cid, l.tsize))
            }
            Entry::Symlink { target, .. } => self.symlink(target),
            Entry::Dir { path, folder } => self.folder(path, folder),
        }
    }

    /// Imports entry `i` of the folder at `dir`.
    fn child(&mut self, dir: &Path, folder: &Folder, i: usize) -> Result<(Cid, u64), ImportError> {
        let path = || dir.join(OsStr::from_bytes(folder.name(i)));
        match folder.child(i) {
            Child::File(size) => {
                let l = self.file_part(&path(), 0, size, true, None)?;
                Ok((l.cid, l.tsize))
            }
            Child::Symlink(target) => self.symlink(target),
            Child::Dir(sub) => self.folder(&path(), sub),
        }
    }

    fn symlink(&mut self, target: &[u8]) -> Result<(Cid, u64), ImportError> {
        let data = dagpb::encode(&[], Some(&unixfs::symlink(target)));
        let cid = cid_of(self.profile.cid_version, DAG_PB, &data);
        self.append_block(&cid, &data)?;
        Ok((cid, data.len() as u64))
    }

    fn folder(&mut self, path: &Path, folder: &Folder) -> Result<(Cid, u64), ImportError> {
        let kids = layout::kids(folder, &self.profile);
        let shape = layout::dir_shape(folder, &kids, &self.profile)
            .map_err(|source| ImportError::Hamt { path: path.to_path_buf(), source })?;
        match shape {
            DirShape::Basic => self.basic_dir(path, folder, &kids),
            DirShape::Hamt(h) => self.shard(path, folder, &h, h.root(), &kids),
        }
    }

    /// Writes a basic folder: its block reserved, its entries, then the block filled. The block
    /// is encoded link by link as entries complete (no list of links is kept).
    fn basic_dir(&mut self, path: &Path, folder: &Folder, kids: &[Kid]) -> Result<(Cid, u64), ImportError> {
        let predicted = layout::basic_dir_size(kids, &self.profile);
        let slot = self.reserve(self.profile.node_cid_len(), predicted.block_len)?;
        let mut section = Section::new(slot, predicted.block_len);
        let mut tsize = 0;
        for i in 0..folder.len() {
            let (cid, t) = self.child(path, folder, i)?;
            dagpb::encode_link(&mut section.bytes, &cid, folder.name(i), t);
            tsize += t;
        }
        dagpb::encode_data(&mut section.bytes, &unixfs::directory());
        self.node(slot, tsize, section)
    }

    /// Writes a HAMT shard: its block reserved, then each slot in order (an entry's DAG or a
    /// sub-shard), then the block filled — `ipfs dag export`'s depth-first pre-order.
    fn shard(
        &mut self,
        path: &Path,
        folder: &Folder,
        h: &Hamt,
        shard: Run,
        kids: &[Kid],
    ) -> Result<(Cid, u64), ImportError> {
        let predicted = layout::shard_size(h, shard, kids, &self.profile);
        if self.buffered.is_some() || predicted.car_bytes > BUFFERED_SHARD {
            return self.shard_in_place(path, folder, h, shard, kids, predicted);
        }
        self.buffered = Some((self.cursor, Vec::with_capacity(predicted.car_bytes as usize)));
        let built = self.shard_in_place(path, folder, h, shard, kids, predicted);
        let (start, bytes) = self.buffered.take().expect("set above");
        let built = built?;
        if !bytes.is_empty() {
            self.sink.write_at(start, &bytes).map_err(out_err)?;
        }
        Ok(built)
    }

    fn shard_in_place(
        &mut self,
        path: &Path,
        folder: &Folder,
        h: &Hamt,
        shard: Run,
        kids: &[Kid],
        predicted: layout::NodeSize,
    ) -> Result<(Cid, u64), ImportError> {
        let fanout = h.fanout();
        let slot = self.reserve(self.profile.node_cid_len(), predicted.block_len)?;
        let mut section = Section::new(slot, predicted.block_len);
        let mut tsize = 0;
        for (index, held) in h.slots(shard) {
            let (cid, t, name) = match held {
                Held::Value(i) => {
                    let (cid, t) = self.child(path, folder, i)?;
                    (cid, t, hamt::link_name(index, fanout, folder.name(i)))
                }
                Held::Shard(sub) => {
                    let (cid, t) = self.shard(path, folder, h, sub, kids)?;
                    (cid, t, hamt::link_name(index, fanout, b""))
                }
            };
            dagpb::encode_link(&mut section.bytes, &cid, &name, t);
            tsize += t;
        }
        dagpb::encode_data(&mut section.bytes, &hamt::shard_data(&h.bitfield(shard), fanout));
        self.node(slot, tsize, section)
    }

    /// Fills a folder or shard's reservation with its block (links totalling `links_tsize`);
    /// returns its CID and Tsize.
    fn node(&mut self, slot: (u64, u64), links_tsize: u64, mut section: Section) -> Result<(Cid, u64), ImportError> {
        let block = &section.bytes[section.start..];
        let cid = cid_of(self.profile.cid_version, DAG_PB, block);
        let prefix = car::section_prefix(&cid, block.len());
        let block_len = block.len() as u64;
        if prefix.len() != section.start {
            let predicted = slot.1 - section.start as u64;
            return Err(ImportError::Prediction { predicted, actual: block_len });
        }
        section.bytes[..prefix.len()].copy_from_slice(&prefix);
        self.fill(slot, &cid, section.bytes)?;
        Ok((cid, block_len + links_tsize))
    }

    /// Imports one file read from `path`, which must hold exactly `size` bytes.
    pub fn file(&mut self, path: &Path, size: u64) -> Result<LinkInfo, ImportError> {
        self.file_part(path, 0, size, true, None)
    }

    /// Imports `len` bytes of `path` from `offset` as a file of their own.
    pub fn file_range(&mut self, path: &Path, offset: u64, len: u64) -> Result<LinkInfo, ImportError> {
        self.file_part(path, offset, len, false, None)
    }

    fn file_part(
        &mut self,
        path: &Path,
        offset: u64,
        size: u64,
        whole: bool,
        expect: Option<&super::input::Expected>,
    ) -> Result<LinkInfo, ImportError> {
        self.file_part_in(None, path, offset, size, whole, expect)
    }

    fn file_part_in(
        &mut self,
        dir: Option<&super::input::Folder>,
        path: &Path,
        offset: u64,
        size: u64,
        whole: bool,
        expect: Option<&super::input::Expected>,
    ) -> Result<LinkInfo, ImportError> {
        let mut input = Input::open_in(dir, path, offset, size, whole, expect)?;
        self.observer.event(Event::FileStarted { path: path.to_path_buf(), size });
        let l = if self.profile.layout == Layout::Trickle {
            let mut shape = TrickleShape::new(size, &self.profile);
            let root = shape.root();
            self.trickle_node(&mut input, &mut shape, root)?
        } else {
            self.balanced(&mut input, size)?
        };
        if whole {
            input.check_end(size)?;
        }
        input.check_unchanged()?;
        Ok(l)
    }

    /// A balanced file: its single leaf, or the root subtree over all leaves.
    fn balanced(&mut self, input: &mut Input, size: u64) -> Result<LinkInfo, ImportError> {
        let mut shape = FileShape::new(size, &self.profile);
        if shape.depth == 0 {
            let leaves = self.leaves(input, size, 0, 1)?;
            Ok(leaves.into_iter().next().expect("one leaf"))
        } else {
            let (depth, leaves) = (shape.depth, shape.leaves);
            self.subtree(input, &mut shape, depth, 0, leaves)
        }
    }

    fn subtree(
        &mut self,
        input: &mut Input,
        shape: &mut FileShape,
        level: u32,
        start: u64,
        count: u64,
    ) -> Result<LinkInfo, ImportError> {
        let predicted = shape.node(level, start, count);
        let slot = self.reserve(self.profile.node_cid_len(), predicted.block_len)?;
        let mut children = Vec::new();
        if level == 1 {
            let mut s = start;
            while s < start + count {
                let n = BATCH_LEAVES.min(start + count - s);
                children.extend(self.leaves(input, shape.size(), s, n)?);
                s += n;
            }
        } else {
            let span = shape.span(level - 1);
            let mut s = start;
            while s < start + count {
                let c = span.min(start + count - s);
                children.push(self.subtree(input, shape, level - 1, s, c)?);
                s += c;
            }
        }
        self.fill_file_node(slot, &children)
    }

    /// A trickle node: reserved, then its own leaves and its subtrees in file order, then filled.
    fn trickle_node(
        &mut self,
        input: &mut Input,
        shape: &mut TrickleShape,
        node: trickle::Node,
    ) -> Result<LinkInfo, ImportError> {
        let predicted = shape.node(node);
        let slot = self.reserve(self.profile.node_cid_len(), predicted.block_len)?;
        let mut children = Vec::new();
        let own = shape.own_leaves(node);
        let mut s = own.start;
        while s < own.end {
            let n = BATCH_LEAVES.min(own.end - s);
            children.extend(self.leaves(input, shape.size(), s, n)?);
            s += n;
        }
        for sub in shape.subtrees(node) {
            children.push(self.trickle_node(input, shape, sub)?);
        }
        self.fill_file_node(slot, &children)
    }

    /// Builds the File node linking `children` and fills its reservation.
    fn fill_file_node(&mut self, slot: (u64, u64), children: &[LinkInfo]) -> Result<LinkInfo, ImportError> {
        let links: Vec<Link> = children.iter().map(|c| Link { cid: c.cid, name: Vec::new(), tsize: c.tsize }).collect();
        let sizes: Vec<u64> = children.iter().map(|c| c.file_bytes).collect();
        let file_bytes = sizes.iter().sum();
        let data = dagpb::encode(&links, Some(&unixfs::file_node_data(file_bytes, &sizes)));
        let cid = cid_of(self.profile.cid_version, DAG_PB, &data);
        let tsize = data.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
        let mut section = car::section_prefix(&cid, data.len());
        section.extend_from_slice(&data);
        self.fill(slot, &cid, section)?;
        Ok(LinkInfo { cid, tsize, file_bytes })
    }

    /// Reads leaves `start..start+count` of a `size`-byte file, hashes them in parallel and
    /// appends them in order.
    fn leaves(&mut self, input: &mut Input, size: u64, start: u64, count: u64) -> Result<Vec<LinkInfo>, ImportError> {
        let chunk = self.profile.chunk_size;
        let leaf_bytes = |i: u64| (size - (i * chunk as u64).min(size)).min(chunk as u64);
        let bytes: u64 = (start..start + count).map(leaf_bytes).sum();
        let buf = input.next(bytes as usize)?;
        self.observer.event(Event::BytesRead(bytes));
        if self.observer.cancelled() {
            return Err(ImportError::Cancelled);
        }
        let profile = self.profile;
        // Hash in parallel; the chunks are then written from the read buffer without copies.
        let cids: Vec<Cid> = if buf.is_empty() {
            leaf_cids(&profile, buf, chunk)
        } else {
            buf.par_chunks(chunk * multibuffer::LANES)
                .flat_map_iter(|group| leaf_cids(&profile, group, chunk))
                .collect()
        };
        let mut out = Vec::with_capacity(cids.len());
        for (i, cid) in cids.into_iter().enumerate() {
            let file_bytes = leaf_bytes(start + i as u64);
            let data = &buf[i * chunk..i * chunk + file_bytes as usize];
            let (mut head, tail) = leaf_wrapper(&profile, data.len());
            let block_len = (head.len() + data.len() + tail.len()) as u64;
            if self.visited.insert(&cid) {
                let mut section = car::section_prefix(&cid, block_len as usize);
                section.append(&mut head);
                let n = section.len() as u64 + data.len() as u64 + tail.len() as u64;
                let at = self.cursor;
                self.put(at, &section)?;
                self.put(at + section.len() as u64, data)?;
                self.put(at + section.len() as u64 + data.len() as u64, &tail)?;
                self.cursor += n;
                self.blocks += 1;
                self.observer.event(Event::CarBytes(n));
            }
            out.push(LinkInfo { cid, tsize: block_len, file_bytes });
        }
        Ok(out)
    }
}

/// The bytes around a chunk of `n` bytes in its leaf block under `profile`: none for raw leaves,
/// a UnixFS File node's (balanced) or Raw node's (trickle) otherwise.
fn leaf_wrapper(profile: &Profile, n: usize) -> (Vec<u8>, Vec<u8>) {
    match (profile.raw_leaves, profile.layout) {
        (true, _) => (Vec::new(), Vec::new()),
        (false, Layout::Balanced) => unixfs::file_leaf_parts(n),
        (false, Layout::Trickle) => trickle::leaf_parts(n),
    }
}

/// The CIDs of the leaves in `group` (consecutive chunks of `chunk` bytes, the last may be
/// shorter; an empty group is one empty leaf), hashed together in multi-buffer lanes without
/// building the blocks.
fn leaf_cids(profile: &Profile, group: &[u8], chunk: usize) -> Vec<Cid> {
    let chunks: Vec<&[u8]> = if group.is_empty() { vec![group] } else { group.chunks(chunk).collect() };
    let wrappers: Vec<(Vec<u8>, Vec<u8>)> =
        if profile.raw_leaves { Vec::new() } else { chunks.iter().map(|c| leaf_wrapper(profile, c.len())).collect() };
    let messages: Vec<[&[u8]; 3]> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| match wrappers.get(i) {
            Some((head, tail)) => [&head[..], c, &tail[..]],
            None => [&[][..], c, &[][..]],
        })
        .collect();
    let (version, codec) = if profile.raw_leaves { (CidVersion::V1, RAW) } else { (profile.cid_version, DAG_PB) };
    multibuffer::digest_all(&messages)
        .into_iter()
        .map(|d| {
            let mh = multihash::Multihash::<64>::wrap(crate::block::SHA2_256, &d).expect("32-byte digest");
            cid_from_multihash(version, codec, mh)
        })
        .collect()
}

/// Writes the CAR of `entry` into `sink`: header reserved at 0, then the DAG; returns the root.
pub fn write_car(
    entry: &Entry,
    profile: &Profile,
    sink: &mut dyn Sink,
    observer: &mut dyn Observer,
) -> Result<Built, ImportError> {
    let header_len = car::header_len(root_cid_len(entry, profile));
    sink.reserve(0, header_len).map_err(out_err)?;
    let mut b = Builder::new(*profile, sink, observer, header_len);
    let (root, tsize) = b.entry(entry)?;
    let (car_size, blocks) = (b.cursor, b.blocks);
    let header = car::header(&root);
    if header.len() as u64 != header_len {
        return Err(ImportError::Prediction { predicted: header_len, actual: header.len() as u64 });
    }
    sink.write_at(0, &header).map_err(out_err)?;
    Ok(Built { root, tsize, car_size, blocks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::scan::Item;
    use crate::profile::Preset;
    use std::mem::size_of;

    /// Bytes a folder of a million entries may hold per entry while it is written (issue 21).
    const BOUND: usize = 200;

    /// What the streaming importer holds for a folder of `n` entries while writing it, counted
    /// by the structures themselves: the folder as scanned, its predicted links, its HAMT, the
    /// CIDs written (one distinct leaf per entry, the worst case) and, for a basic folder, its
    /// block being encoded. (A HAMT's blocks in progress — one per level, each of at most
    /// `fanout` links — and a buffered small shard, at most 1 MiB, do not grow with `n`.)
    fn held_per_entry(folder: &Folder, profile: &Profile) -> usize {
        let n = folder.len();
        let kids = layout::kids(folder, profile);
        let shape = layout::dir_shape(folder, &kids, profile).unwrap();
        let mut written = Written::default();
        for i in 0..n as u64 {
            let leaf = leaf_cids(profile, &i.to_le_bytes(), profile.chunk_size);
            assert!(written.insert(&leaf[0]));
        }
        let shape_bytes = match &shape {
            DirShape::Basic => layout::basic_dir_size(&kids, profile).block_len as usize,
            DirShape::Hamt(h) => h.heap_bytes(),
        };
        let held = folder.heap_bytes() + kids.capacity() * size_of::<Kid>() + written.heap_bytes() + shape_bytes;
        held / n
    }

    #[test]
    fn a_folder_is_held_in_at_most_200_bytes_an_entry() {
        assert_eq!(size_of::<Item>(), 16, "a folder entry");
        assert_eq!(size_of::<Kid>(), 32, "a predicted link");
        let n = 100_000;
        let names: Vec<String> = (0..n).map(|i| format!("file-{i}.txt")).collect();
        let folder = Folder::of_files(names.iter().enumerate().map(|(i, s)| (s.as_bytes(), 8 + i as u64 % 33)));
        for preset in Preset::ALL {
            let held = held_per_entry(&folder, &preset.profile());
            assert!(held <= BOUND, "{}: {held} bytes an entry", preset.name());
        }
    }
}
