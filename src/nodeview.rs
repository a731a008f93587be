//! The one reader of dag-pb nodes and their UnixFS data (`verify`, `extract` and the aggregate
//! manifest reader use it, so they give one verdict on one block): checked once, then read in
//! place, with no copy of the data and no allocation per link or block size — a 256 KiB leaf
//! costs no copy and a hostile node with a million links costs no list of a million links.
//!
//! What is accepted, as the reference exporters (boxo/kubo, js `ipfs-unixfs-exporter`) read it:
//! - **dag-pb**: fields 1 (Data) and 2 (Links) only, each link with a valid CID (field 1) and
//!   optional Name (2) and Tsize (3); a field repeated (two Data fields, a link with two Hash
//!   fields) is refused, as go-codec-dagpb and `@ipld/dag-pb` refuse it. The order of fields is
//!   not checked. ([`crate::dagpb::decode`], the decoder of carload's own blocks, keeps the last
//!   of a repeated field; everything it refuses is refused here too.)
//! - **UnixFS `Data`**: a Type (field 1) is required. The fields the UnixFS spec defines (1 Type,
//!   2 Data, 3 filesize, 4 blocksizes — unpacked or packed —, 5 hashType, 6 fanout, 7 mode,
//!   8 mtime) must have their own wire type: another one is refused (go-unixfs' gogo-generated
//!   decoder refuses it, js' misreads it). Any other field is skipped, whatever its value, when
//!   its wire type is varint, 64-bit, length-delimited or 32-bit, as protobuf decoders skip
//!   unknown fields; groups (wire types 3 and 4, deprecated) and wire types 6 and 7 are refused,
//!   as is field number 0. A field given twice keeps its last value, as protobuf does.
//!   [`crate::unixfs::decode`] is this view, copied.
//! - **HAMT shards** (type 5): [`hamt`] checks a shard alone and the place of each entry.
//!
//! Links are read lazily: [`PbNode::links`] for a borrowed node, [`next_link`] (a byte cursor)
//! for a caller whose stack frame owns the block and resumes its links later.

pub mod hamt;

use crate::varint;
use cid::Cid;
use std::fmt;

/// Why a block is not a dag-pb node, or its data not UnixFS, as the reference exporters read
/// them; or why a file node's sizes do not add up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The block ends in the middle of a field.
    #[error("truncated dag-pb block")]
    Truncated,
    /// A dag-pb field other than those the format has, or of another wire type.
    #[error("unexpected dag-pb field {0} (wire type {1})")]
    UnexpectedField(u64, u64),
    /// A dag-pb field given twice (`Data`, or a link's `Hash`, `Name` or `Tsize`).
    #[error("a dag-pb {0} field given twice")]
    Repeated(&'static str),
    /// A link's Hash is not a CID.
    #[error("invalid CID in dag-pb link")]
    BadCid,
    /// A link without a Hash.
    #[error("a dag-pb link without a CID")]
    NoCid,
    /// A dag-pb node without a Data field (no UnixFS data).
    #[error("a dag-pb node without UnixFS data")]
    NoData,
    /// The UnixFS data ends in the middle of a field.
    #[error("truncated UnixFS data")]
    FsTruncated,
    /// A UnixFS field of the spec with another wire type than its own.
    #[error("UnixFS field {field} with wire type {wire}, not its own")]
    WrongWireType {
        /// The field number.
        field: u64,
        /// The wire type found.
        wire: u64,
    },
    /// A UnixFS field that cannot be skipped: a group, wire type 6 or 7, or field number 0.
    #[error("UnixFS field {field} with wire type {wire} (not readable)")]
    Unreadable {
        /// The field number.
        field: u64,
        /// The wire type found.
        wire: u64,
    },
    /// UnixFS data without a Type field.
    #[error("UnixFS data without a type")]
    NoType,
    /// A file node whose link count is not its blocksize count.
    #[error("{links} links but {blocksizes} blocksizes")]
    Blocksizes {
        /// Links of the node.
        links: usize,
        /// Blocksizes of its data.
        blocksizes: usize,
    },
    /// A file node whose inline data plus blocksizes exceed 2^64 − 1.
    #[error("its blocksizes overflow")]
    Overflow,
    /// A file node whose `filesize` is not its inline data plus its blocksizes.
    #[error("filesize {filesize} but data ({data}) plus blocksizes make {sum}")]
    Filesize {
        /// What the node claims.
        filesize: u64,
        /// Bytes of inline data.
        data: usize,
        /// Inline data plus blocksizes.
        sum: u64,
    },
    /// A HAMT shard whose keys are not murmur3-x64-64 (hashType 0x22), or that names none.
    #[error("a HAMT shard with {}, not murmur3-x64-64 (0x22)", match .0 { Some(h) => format!("hash type 0x{h:x}"), None => "no hash type".into() })]
    HamtHashType(Option<u64>),
    /// A HAMT shard whose fanout is not a power of two from 8 to 1024, or that has none.
    #[error("a HAMT shard with {}, not a power of two from 8 to 1024", match .0 { Some(f) => format!("fanout {f}"), None => "no fanout".into() })]
    HamtFanout(Option<u64>),
    /// A HAMT bitfield longer than its fanout's bits.
    #[error("a HAMT bitfield of {len} bytes, more than fanout {fanout} has bits ({} bytes)", .fanout / 8)]
    HamtBitfieldLength {
        /// Bytes of the bitfield.
        len: usize,
        /// The shard's fanout.
        fanout: u32,
    },
    /// A HAMT shard whose bitfield sets another number of slots than it has links.
    #[error("its HAMT bitfield sets {set} slots but the shard has {links} links")]
    HamtPopcount {
        /// Bits set.
        set: u32,
        /// Links of the node.
        links: usize,
    },
    /// A HAMT link whose name does not start with its slot.
    #[error(
        "HAMT link {index} is named {name:?}: not {width} upper-case hex digit(s) of a slot below {fanout}, then \
         the entry's name"
    )]
    HamtLinkName {
        /// The link's place in the node.
        index: usize,
        /// Its name (lossy UTF-8).
        name: String,
        /// Hex digits of a slot.
        width: usize,
        /// The shard's fanout.
        fanout: u32,
    },
    /// HAMT links not in increasing slot order (or two in one slot).
    #[error("HAMT link {index} is in slot {slot:X}, not after the slot of the link before it")]
    HamtSlotOrder {
        /// The link's place in the node.
        index: usize,
        /// Its slot.
        slot: u32,
    },
    /// A HAMT link in a slot its bitfield does not set.
    #[error("HAMT link {index} is in slot {slot:X}, which the shard's bitfield does not set")]
    HamtSlotUnset {
        /// The link's place in the node.
        index: usize,
        /// Its slot.
        slot: u32,
    },
    /// A HAMT entry in another place than its name's hash gives it (a misplaced or repeated name).
    #[error(
        "HAMT entry {name:?} is at {at}, but the murmur3 hash of its name ({key:016x}) puts it at {want} \
         (a name has one place in a sharded folder: misplaced or repeated)"
    )]
    HamtMisplaced {
        /// The entry's name (lossy UTF-8).
        name: String,
        /// Its key.
        key: u64,
        /// Where it is (slots from the root, `/`-separated).
        at: String,
        /// Where its key puts it.
        want: String,
    },
    /// HAMT shards nested deeper than the 64 bits of a key reach.
    #[error("HAMT sub-shard at {at}: nested deeper than the 64 bits of a murmur3 key reach")]
    HamtTooDeep {
        /// Where (slots from the root).
        at: String,
    },
    /// A HAMT sub-shard with another fanout than its parent.
    #[error("a HAMT sub-shard with fanout {fanout} under a shard with fanout {parent}")]
    HamtFanoutChanged {
        /// Its fanout.
        fanout: u32,
        /// Its parent's.
        parent: u32,
    },
    /// A HAMT sub-shard link (a name of just a slot) to a node that is not a HAMT shard.
    #[error("HAMT sub-shard link {slot} goes to {child}, a {kind}, not a HAMT shard")]
    HamtSubShardKind {
        /// Where (slots from the root).
        slot: String,
        /// The node linked to (its CID).
        child: String,
        /// What it is.
        kind: String,
    },
    /// A HAMT shard reached at two places (a sub-shard linked twice, or a sub-shard that is also
    /// a folder): its entries would be in both.
    #[error("a HAMT shard reached at two places ({first} and {second}); its entries can be at one only")]
    HamtTwoPlaces {
        /// The place it was first reached at.
        first: String,
        /// The other.
        second: String,
    },
}

/// A protobuf field's value.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed 64-bit (wire type 1) or 32-bit (5) value, skipped.
    Fixed(u64),
}

impl Value<'_> {
    fn wire(self) -> u64 {
        match self {
            Value::Varint(_) => 0,
            Value::Bytes(_) => 2,
            Value::Fixed(w) => w,
        }
    }
}

/// A field that cannot be read: the message ends inside it, or (number, wire type) of a wire
/// type that cannot be skipped (3, 4, 6, 7).
enum Bad {
    Truncated,
    Wire(u64, u64),
}

/// The fields of a protobuf message, from where it stands: number and value of each. After
/// an error it is empty, so a caller that goes on gets `None`.
#[derive(Debug, Clone)]
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), Bad>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = self.read();
        if field.is_err() {
            self.0 = &[];
        }
        Some(field)
    }
}

impl<'a> Fields<'a> {
    #[inline]
    fn read(&mut self) -> Result<(u64, Value<'a>), Bad> {
        let (key, n) = varint::read(self.0).ok_or(Bad::Truncated)?;
        let rest = &self.0[n..];
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let (v, n) = varint::read(rest).ok_or(Bad::Truncated)?;
                self.0 = &rest[n..];
                Ok((number, Value::Varint(v)))
            }
            2 => {
                let (len, n) = varint::read(rest).ok_or(Bad::Truncated)?;
                let rest = &rest[n..];
                if len > rest.len() as u64 {
                    return Err(Bad::Truncated);
                }
                let (bytes, rest) = rest.split_at(len as usize);
                self.0 = rest;
                Ok((number, Value::Bytes(bytes)))
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if rest.len() < n {
                    return Err(Bad::Truncated);
                }
                self.0 = &rest[n..];
                Ok((number, Value::Fixed(wire)))
            }
            _ => Err(Bad::Wire(number, wire)),
        }
    }
}

fn pb_error(bad: Bad) -> NodeError {
    match bad {
        Bad::Truncated => NodeError::Truncated,
        Bad::Wire(f, w) => NodeError::UnexpectedField(f, w),
    }
}

/// A dag-pb node, checked: every field well formed, none repeated, every link with a valid CID.
#[derive(Debug, Clone, Copy)]
pub struct PbNode<'a> {
    bytes: &'a [u8],
    /// The Data field, if present.
    pub data: Option<&'a [u8]>,
    /// Number of links.
    pub link_count: usize,
}

/// One link of a dag-pb node.
#[derive(Debug, Clone)]
pub struct PbLink<'a> {
    /// The target.
    pub cid: Cid,
    /// The name (empty when absent).
    pub name: &'a [u8],
    /// The cumulative size (0 when absent).
    pub tsize: u64,
}

/// Checks a dag-pb block and returns a view of it.
pub fn pb_node(bytes: &[u8]) -> Result<PbNode<'_>, NodeError> {
    let mut node = PbNode { bytes, data: None, link_count: 0 };
    for f in Fields(bytes) {
        match f.map_err(pb_error)? {
            (1, Value::Bytes(_)) if node.data.is_some() => return Err(NodeError::Repeated("Data")),
            (1, Value::Bytes(d)) => node.data = Some(d),
            (2, Value::Bytes(link)) => {
                pb_link(link)?;
                node.link_count += 1;
            }
            (f, v) => return Err(NodeError::UnexpectedField(f, v.wire())),
        }
    }
    Ok(node)
}

fn pb_link(bytes: &[u8]) -> Result<PbLink<'_>, NodeError> {
    let (mut cid, mut name, mut tsize) = (None, None, None);
    for f in Fields(bytes) {
        match f.map_err(pb_error)? {
            (1, Value::Bytes(_)) if cid.is_some() => return Err(NodeError::Repeated("Hash")),
            (1, Value::Bytes(c)) => cid = Some(Cid::try_from(c).map_err(|_| NodeError::BadCid)?),
            (2, Value::Bytes(_)) if name.is_some() => return Err(NodeError::Repeated("Name")),
            (2, Value::Bytes(n)) => name = Some(n),
            (3, Value::Varint(_)) if tsize.is_some() => return Err(NodeError::Repeated("Tsize")),
            (3, Value::Varint(t)) => tsize = Some(t),
            (f, v) => return Err(NodeError::UnexpectedField(f, v.wire())),
        }
    }
    Ok(PbLink { cid: cid.ok_or(NodeError::NoCid)?, name: name.unwrap_or_default(), tsize: tsize.unwrap_or(0) })
}

/// The next link of the dag-pb block `bytes` at or after byte `*at` (start at 0), moving `*at`
/// past it; `None` after the last. The cursor form of [`PbNode::links`], for a caller whose
/// stack frame owns the block. The block should have passed [`pb_node`]; if it did not, an
/// error may come instead of a link (and then `None`).
pub fn next_link<'a>(bytes: &'a [u8], at: &mut usize) -> Option<Result<PbLink<'a>, NodeError>> {
    let mut fields = Fields(bytes.get(*at..).unwrap_or_default());
    let link = fields.find_map(|f| match f {
        Ok((2, Value::Bytes(link))) => Some(pb_link(link)),
        Ok(_) => None,
        Err(e) => Some(Err(pb_error(e))),
    });
    *at = bytes.len() - fields.0.len();
    link
}

/// The links of a [`PbNode`], in stored order.
#[derive(Debug, Clone)]
pub struct Links<'a>(Fields<'a>);

impl<'a> Iterator for Links<'a> {
    type Item = PbLink<'a>;

    fn next(&mut self) -> Option<PbLink<'a>> {
        // The node was checked, so no link fails (one that did would be left out).
        self.0.find_map(|f| match f {
            Ok((2, Value::Bytes(link))) => pb_link(link).ok(),
            _ => None,
        })
    }
}

impl<'a> PbNode<'a> {
    /// The links in stored order, read lazily.
    pub fn links(&self) -> Links<'a> {
        Links(Fields(self.bytes))
    }
}

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
    /// The kind of a `Type` code.
    pub fn of(code: u64) -> Kind {
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

    /// Its `Type` code.
    pub fn code(self) -> u64 {
        match self {
            Kind::Raw => 0,
            Kind::Directory => 1,
            Kind::File => 2,
            Kind::Metadata => 3,
            Kind::Symlink => 4,
            Kind::HamtShard => 5,
            Kind::Other(n) => n,
        }
    }

    /// Whether a node of this kind holds file bytes (`File` or `Raw`).
    pub fn is_file(self) -> bool {
        matches!(self, Kind::File | Kind::Raw)
    }

    /// How messages name it ("folder", "UnixFS type 99", …).
    pub fn describe(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Raw => f.write_str("UnixFS raw"),
            Kind::Directory => f.write_str("folder"),
            Kind::File => f.write_str("file"),
            Kind::Metadata => f.write_str("UnixFS metadata"),
            Kind::Symlink => f.write_str("symlink"),
            Kind::HamtShard => f.write_str("HAMT-sharded folder"),
            Kind::Other(n) => write!(f, "UnixFS type {n}"),
        }
    }
}

/// UnixFS `Data`, checked (see the module documentation for what is accepted).
#[derive(Debug, Clone, Copy)]
pub struct FsData<'a> {
    bytes: &'a [u8],
    /// The type.
    pub kind: Kind,
    /// Inline data.
    pub data: Option<&'a [u8]>,
    /// The `filesize` field.
    pub filesize: Option<u64>,
    /// Number of block sizes.
    pub blocksize_count: usize,
    /// The `hashType` field (HAMT shards: the hash of their keys).
    pub hash_type: Option<u64>,
    /// The `fanout` field (HAMT shards: slots per shard).
    pub fanout: Option<u64>,
}

/// The first number beyond protobuf's field numbers (1 to 2^29 − 1).
const FIELD_LIMIT: u64 = 1 << 29;

/// Checks UnixFS `Data` and returns a view of it.
pub fn fs_data(bytes: &[u8]) -> Result<FsData<'_>, NodeError> {
    let mut d = FsData {
        bytes,
        kind: Kind::Raw,
        data: None,
        filesize: None,
        blocksize_count: 0,
        hash_type: None,
        fanout: None,
    };
    let mut kind = None;
    for f in Fields(bytes) {
        let (number, value) = f.map_err(|e| match e {
            Bad::Truncated => NodeError::FsTruncated,
            Bad::Wire(field, wire) => NodeError::Unreadable { field, wire },
        })?;
        match (number, value) {
            (1, Value::Varint(v)) => kind = Some(v),
            (2, Value::Bytes(b)) => d.data = Some(b),
            (3, Value::Varint(v)) => d.filesize = Some(v),
            (4, Value::Varint(_)) => d.blocksize_count += 1,
            (4, Value::Bytes(packed)) => d.blocksize_count += packed_count(packed)?,
            (5, Value::Varint(v)) => d.hash_type = Some(v),
            (6, Value::Varint(v)) => d.fanout = Some(v),
            (7, Value::Varint(_)) | (8, Value::Bytes(_)) => {}
            (field @ 1..=8, v) => return Err(NodeError::WrongWireType { field, wire: v.wire() }),
            (0, v) | (FIELD_LIMIT.., v) => return Err(NodeError::Unreadable { field: number, wire: v.wire() }),
            // A field of a later UnixFS version, or of no version: skipped, as protobuf does.
            _ => {}
        }
    }
    d.kind = Kind::of(kind.ok_or(NodeError::NoType)?);
    Ok(d)
}

fn packed_count(mut packed: &[u8]) -> Result<usize, NodeError> {
    let mut n = 0;
    while !packed.is_empty() {
        let (_, used) = varint::read(packed).ok_or(NodeError::FsTruncated)?;
        packed = &packed[used..];
        n += 1;
    }
    Ok(n)
}

impl<'a> FsData<'a> {
    /// The block sizes in order (unpacked and packed fields alike), read lazily.
    pub fn blocksizes(&self) -> Blocksizes<'a> {
        Blocksizes { fields: Fields(self.bytes), packed: &[] }
    }

    /// Its inline data (empty when absent).
    pub fn inline(&self) -> &'a [u8] {
        self.data.unwrap_or_default()
    }

    /// Inline data plus block sizes: the bytes a file node stands for, whatever its `filesize`
    /// says; `None` on overflow.
    pub fn parts_size(&self) -> Option<u64> {
        self.blocksizes().try_fold(self.inline().len() as u64, u64::checked_add)
    }
}

/// The block sizes of an [`FsData`], in order.
#[derive(Debug, Clone)]
pub struct Blocksizes<'a> {
    fields: Fields<'a>,
    packed: &'a [u8],
}

impl Iterator for Blocksizes<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        loop {
            if let Some((v, n)) = varint::read(self.packed) {
                self.packed = &self.packed[n..];
                return Some(v);
            }
            match self.fields.next()?.ok()? {
                (4, Value::Varint(v)) => return Some(v),
                (4, Value::Bytes(packed)) => self.packed = packed,
                _ => {}
            }
        }
    }
}

/// A dag-pb node holding UnixFS data, both checked.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// The dag-pb node.
    pub pb: PbNode<'a>,
    /// Its UnixFS data.
    pub fs: FsData<'a>,
}

/// Checks a dag-pb block and its UnixFS data (which must be present).
pub fn unixfs_node(bytes: &[u8]) -> Result<Node<'_>, NodeError> {
    let pb = pb_node(bytes)?;
    let fs = fs_data(pb.data.ok_or(NodeError::NoData)?)?;
    Ok(Node { pb, fs })
}

impl<'a> Node<'a> {
    /// Its UnixFS type.
    pub fn kind(&self) -> Kind {
        self.fs.kind
    }

    /// Its links, in stored order.
    pub fn links(&self) -> Links<'a> {
        self.pb.links()
    }

    /// The bytes a file node stands for, checked as the reference exporter checks them: one
    /// blocksize per link, inline data plus blocksizes without overflow, and `filesize` (when
    /// set) equal to that sum. (Its kind is the caller's to check.)
    pub fn file_size(&self) -> Result<u64, NodeError> {
        let (links, blocksizes) = (self.pb.link_count, self.fs.blocksize_count);
        if links != blocksizes {
            return Err(NodeError::Blocksizes { links, blocksizes });
        }
        let sum = self.fs.parts_size().ok_or(NodeError::Overflow)?;
        match self.fs.filesize {
            Some(filesize) if filesize != sum => {
                Err(NodeError::Filesize { filesize, data: self.fs.inline().len(), sum })
            }
            _ => Ok(sum),
        }
    }
}

#[cfg(test)]
mod tests;
