//! A dag-pb block read as UnixFS without copying: its type, inline data and sizes, its links
//! and blocksizes read lazily from the block's own bytes (a hostile node of 64 MiB never
//! becomes a vector of links), and the checks the reference exporter makes of each kind.

use crate::varint;
use cid::Cid;

/// UnixFS node types, as the `Type` field codes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Raw` (0): file bytes, as old trickle leaves hold them; read as a file.
    Raw,
    /// `Directory` (1).
    Directory,
    /// `File` (2).
    File,
    /// `Metadata` (3).
    Metadata,
    /// `Symlink` (4).
    Symlink,
    /// `HAMTShard` (5): a sharded folder.
    HamtShard,
    /// Any other code.
    Other(u64),
}

impl Kind {
    fn of(code: u64) -> Kind {
        match code {
            0 => Kind::Raw,
            1 => Kind::Directory,
            2 => Kind::File,
            3 => Kind::Metadata,
            4 => Kind::Symlink,
            5 => Kind::HamtShard,
            n => Kind::Other(n),
        }
    }

    /// Whether a node of this kind holds file bytes.
    pub fn is_file(self) -> bool {
        matches!(self, Kind::File | Kind::Raw)
    }

    /// How messages name it.
    pub fn describe(self) -> String {
        match self {
            Kind::Raw => "UnixFS raw".into(),
            Kind::Directory => "folder".into(),
            Kind::File => "file".into(),
            Kind::Metadata => "UnixFS metadata".into(),
            Kind::Symlink => "symlink".into(),
            Kind::HamtShard => "HAMT-sharded folder".into(),
            Kind::Other(n) => format!("UnixFS type {n}"),
        }
    }
}

/// One protobuf field value (dag-pb and UnixFS use varints and length-delimited bytes; fixed
/// 32- and 64-bit values are read only to skip unknown UnixFS fields).
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The field at `*at` in `buf`, moving `*at` past it; `None` at the end.
fn next_field<'a>(buf: &'a [u8], at: &mut usize) -> Option<Result<(u64, Value<'a>), String>> {
    if *at >= buf.len() {
        return None;
    }
    let mut step = || -> Result<(u64, Value<'a>), String> {
        let (key, n) = varint::read(&buf[*at..]).ok_or("truncated field key")?;
        *at += n;
        match key & 7 {
            0 => {
                let (v, n) = varint::read(&buf[*at..]).ok_or("truncated varint")?;
                *at += n;
                Ok((key >> 3, Value::Varint(v)))
            }
            2 => {
                let (len, n) = varint::read(&buf[*at..]).ok_or("truncated length")?;
                *at += n;
                let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l)).filter(|&e| e <= buf.len());
                let end = end.ok_or("field longer than the block")?;
                let bytes = &buf[*at..end];
                *at = end;
                Ok((key >> 3, Value::Bytes(bytes)))
            }
            w @ (1 | 5) => {
                let end = at.checked_add(if w == 1 { 8 } else { 4 }).filter(|&e| e <= buf.len());
                *at = end.ok_or("truncated fixed-size field")?;
                Ok((key >> 3, Value::Fixed))
            }
            w => Err(format!("field {} has wire type {w}", key >> 3)),
        }
    };
    Some(step())
}

/// A link of a dag-pb node.
#[derive(Debug, Clone, Copy)]
pub struct PbLink<'a> {
    /// Its target.
    pub cid: Cid,
    /// Its name (empty when absent).
    pub name: &'a [u8],
}

fn parse_link(bytes: &[u8]) -> Result<PbLink<'_>, String> {
    let (mut cid, mut name, mut at) = (None, &[][..], 0);
    while let Some(f) = next_field(bytes, &mut at) {
        match f? {
            (1, Value::Bytes(b)) => cid = Some(Cid::try_from(b).map_err(|e| format!("link with a bad CID: {e}"))?),
            (2, Value::Bytes(b)) => name = b,
            (3, Value::Varint(_)) => {}
            (f, _) => return Err(format!("unexpected field {f} in a link")),
        }
    }
    Ok(PbLink { cid: cid.ok_or("link without a CID")?, name })
}

/// The next link of the dag-pb `block` at or after byte `*at` (start at 0), moving `*at`
/// past it. The block must have been [`parse`]d.
pub fn next_link<'a>(block: &'a [u8], at: &mut usize) -> Option<Result<PbLink<'a>, String>> {
    loop {
        match next_field(block, at)? {
            Ok((2, Value::Bytes(b))) => return Some(parse_link(b)),
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
    }
}

/// A dag-pb block holding UnixFS data.
#[derive(Debug)]
pub struct Node<'a> {
    /// Its type.
    pub kind: Kind,
    /// Its inline data (empty when absent).
    pub data: &'a [u8],
    /// The `filesize` it claims.
    pub filesize: Option<u64>,
    /// Number of links.
    pub links: usize,
    /// Number of blocksizes.
    pub blocksizes: usize,
    unixfs: &'a [u8],
}

/// Reads the dag-pb `block` and its UnixFS `Data` (every link is decoded once to check it).
pub fn parse(block: &[u8]) -> Result<Node<'_>, String> {
    let (mut data, mut links, mut at) = (None, 0, 0);
    while let Some(f) = next_field(block, &mut at) {
        match f.map_err(|e| format!("not dag-pb: {e}"))? {
            (1, Value::Bytes(b)) if data.is_none() => data = Some(b),
            (2, Value::Bytes(b)) => {
                parse_link(b)?;
                links += 1;
            }
            (f, _) => return Err(format!("not dag-pb: unexpected or repeated field {f}")),
        }
    }
    let unixfs = data.ok_or("a dag-pb node without UnixFS data")?;
    let mut node = Node { kind: Kind::Other(u64::MAX), data: &[], filesize: None, links, blocksizes: 0, unixfs };
    let (mut kind, mut at) = (None, 0);
    while let Some(f) = next_field(unixfs, &mut at) {
        match f.map_err(|e| format!("bad UnixFS data: {e}"))? {
            (1, Value::Varint(k)) => kind = Some(k),
            (2, Value::Bytes(b)) => node.data = b,
            (3, Value::Varint(s)) => node.filesize = Some(s),
            (4, Value::Varint(_)) => node.blocksizes += 1,
            (4, Value::Bytes(packed)) => node.blocksizes += packed_count(packed)?,
            (f @ 1..=4, _) => return Err(format!("bad UnixFS data: field {f} of the wrong type")),
            // hashType, fanout, mode, mtime, and fields of later versions: not needed here.
            _ => {}
        }
    }
    node.kind = Kind::of(kind.ok_or("UnixFS data without a type")?);
    Ok(node)
}

fn packed_count(mut b: &[u8]) -> Result<usize, String> {
    let mut n = 0;
    while !b.is_empty() {
        let (_, used) = varint::read(b).ok_or("bad packed blocksizes")?;
        b = &b[used..];
        n += 1;
    }
    Ok(n)
}

impl Node<'_> {
    /// Its blocksizes, in order (only call after checking their count: 8 bytes each).
    pub fn blocksizes(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.blocksizes);
        let mut at = 0;
        while let Some(Ok((field, value))) = next_field(self.unixfs, &mut at) {
            match (field, value) {
                (4, Value::Varint(v)) => out.push(v),
                (4, Value::Bytes(mut b)) => {
                    while let Some((v, used)) = varint::read(b) {
                        out.push(v);
                        b = &b[used..];
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The bytes a file node stands for, checked as the reference exporter checks them: one
    /// blocksize per link, and `filesize` (when set) equal to its data plus its blocksizes.
    pub fn file_size(&self) -> Result<u64, String> {
        if self.links != self.blocksizes {
            return Err(format!("{} links but {} blocksizes", self.links, self.blocksizes));
        }
        let sum = self
            .blocksizes()
            .into_iter()
            .try_fold(self.data.len() as u64, u64::checked_add)
            .ok_or("its blocksizes overflow")?;
        match self.filesize {
            Some(s) if s != sum => {
                Err(format!("filesize {s} but data ({}) plus blocksizes make {sum}", self.data.len()))
            }
            _ => Ok(sum),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{cid_of, CidVersion, RAW};
    use crate::dagpb::{encode, Link};

    #[test]
    fn a_file_node_reads_as_the_importer_writes_it() {
        let leaf = cid_of(CidVersion::V1, RAW, b"abc");
        let links = vec![Link { cid: leaf, name: vec![], tsize: 3 }, Link { cid: leaf, name: vec![], tsize: 3 }];
        let block = encode(&links, Some(&crate::unixfs::file_node_data(6, &[3, 3])));
        let n = parse(&block).unwrap();
        assert_eq!((n.kind, n.links, n.blocksizes, n.filesize), (Kind::File, 2, 2, Some(6)));
        assert_eq!(n.blocksizes(), [3, 3]);
        assert_eq!(n.file_size(), Ok(6));
        let mut at = 0;
        assert_eq!(next_link(&block, &mut at).unwrap().unwrap().cid, leaf);
        assert!(next_link(&block, &mut at).unwrap().is_ok());
        assert!(next_link(&block, &mut at).is_none());
    }

    #[test]
    fn packed_blocksizes_count_too() {
        // Type=File, filesize 5, blocksizes packed [2, 3].
        let data = [0x08, 0x02, 0x18, 0x05, 0x22, 0x02, 0x02, 0x03];
        let block = encode(&[], Some(&data));
        let n = parse(&block).unwrap();
        assert_eq!(n.blocksizes(), [2, 3]);
        assert!(n.file_size().unwrap_err().contains("0 links but 2 blocksizes"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&[0x0a, 0x05, 0x01][..], &[0x1a, 0x00], &[0x12, 0x02, 0x0a, 0x09], &[0x0a, 0x00], &[0xff; 11]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
