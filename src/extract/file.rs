//! A file DAG's bytes, checked as the reference exporter (js `ipfs-unixfs-exporter`, boxo)
//! checks them: file nodes link only to file or raw nodes, each node holds one blocksize per
//! link, its `filesize` (when set) is its data plus its blocksizes, and each child holds exactly
//! the bytes its blocksize says (a raw leaf's length, a dag-pb child's size). A lie is an error
//! naming the block, found before the bytes it would misplace are written.

use super::{bad_node, CarIndex, ExtractError, MAX_HELD};
use crate::block::{DAG_PB, RAW};
use crate::nodeview::{next_link, unixfs_node};
use cid::Cid;
use std::io::Write;

/// A file node whose children are being written.
struct Frame {
    cid: Cid,
    block: Vec<u8>,
    at: usize,
    sizes: Vec<u64>,
    next: usize,
}

impl Frame {
    fn held(&self) -> usize {
        self.block.len() + 8 * self.sizes.len() + 64
    }
}

impl CarIndex {
    /// Writes the bytes of the file DAG `cid` to `out` (checked, see the module
    /// documentation); `expect` is the size the caller knows (from the shipment's plan, or a
    /// parent's claim): any other size is an error before a byte is written. Returns the bytes
    /// written.
    pub fn write_file(&self, cid: &Cid, expect: Option<u64>, out: &mut dyn Write) -> Result<u64, ExtractError> {
        self.write_file_from(cid, None, expect, out)
    }

    /// [`CarIndex::write_file`] with the root's block when already read (and verified).
    pub(crate) fn write_file_from(
        &self,
        cid: &Cid,
        root: Option<Vec<u8>>,
        expect: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<u64, ExtractError> {
        let mut w = FileWriter { car: self, out, written: 0, held: 0, stack: Vec::new() };
        w.visit(cid, root, expect, None)?;
        while let Some(top) = w.stack.last_mut() {
            let Some(link) = next_link(&top.block, &mut top.at) else {
                let done = w.stack.pop().map_or(0, |f| f.held());
                w.held -= done;
                continue;
            };
            let parent = top.cid;
            let child = link.map_err(bad_node(&parent))?.cid;
            let size = top.sizes.get(top.next).copied();
            top.next += 1;
            w.visit(&child, None, size, Some(&parent))?;
        }
        Ok(w.written)
    }
}

struct FileWriter<'a> {
    car: &'a CarIndex,
    out: &'a mut dyn Write,
    written: u64,
    held: usize,
    stack: Vec<Frame>,
}

impl FileWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), ExtractError> {
        self.out.write_all(bytes).map_err(|source| ExtractError::Io { path: "output".into(), source })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Checks the node `cid` (of `expect` bytes, linked from `parent`), writes its own data and
    /// stacks its children.
    fn visit(
        &mut self,
        cid: &Cid,
        block: Option<Vec<u8>>,
        expect: Option<u64>,
        parent: Option<&Cid>,
    ) -> Result<(), ExtractError> {
        let bad = |reason: String| ExtractError::Block { cid: *cid, reason };
        let says = |e: u64| match parent {
            Some(p) => format!("the blocksize in {p} says {e}"),
            None => format!("{e} are expected"),
        };
        let block = match block {
            Some(b) => b,
            None => self.car.block(cid)?,
        };
        match cid.codec() {
            RAW => {
                if let Some(e) = expect.filter(|&e| e != block.len() as u64) {
                    return Err(bad(format!("a raw leaf of {} bytes where {}", block.len(), says(e))));
                }
                self.write(&block)
            }
            DAG_PB => {
                let node = unixfs_node(&block).map_err(bad_node(cid))?;
                if !node.kind().is_file() {
                    let what = node.kind().describe();
                    return Err(bad(match parent {
                        Some(p) => format!("the file node {p} links to a {what} node"),
                        None => format!("a {what}, not a file"),
                    }));
                }
                let size = node.file_size().map_err(bad_node(cid))?;
                if let Some(e) = expect.filter(|&e| e != size) {
                    return Err(bad(format!("a file node of {size} bytes where {}", says(e))));
                }
                let links = node.pb.link_count;
                let sizes = if links > 0 { node.fs.blocksizes().collect() } else { Vec::new() };
                self.write(node.fs.inline())?;
                if links > 0 {
                    let frame = Frame { cid: *cid, block, at: 0, sizes, next: 0 };
                    self.held += frame.held();
                    if self.held > MAX_HELD {
                        return Err(bad(format!(
                            "file nodes nested below one another hold over {} MiB",
                            MAX_HELD >> 20
                        )));
                    }
                    self.stack.push(frame);
                }
                Ok(())
            }
            c => Err(bad(format!("codec 0x{c:x} in a file (only dag-pb and raw)"))),
        }
    }
}
