//! HAMT-sharded folders (UnixFS type 5) as boxo (`ipld/unixfs/hamt`) and the js exporter read
//! them, and as they must be for a name to be found where its hash says.
//!
//! A shard node (checked by [`shard`], alone): `hashType` murmur3-x64-64 (0x22); a fanout that is
//! a power of two from 8 to 1024 (boxo: `Logtwo`, `maximumHamtWidth`, and go-bitfield's multiple
//! of 8); a bitfield (the `Data` field, go-bitfield bytes: bit *i* in byte `len-1-i/8`, leading
//! zero bytes trimmed or not) of at most `fanout/8` bytes, setting as many slots as the node has
//! links; each link named by its slot in `width` upper-case hex digits (`%0*X`, `width` the hex
//! digits of `fanout-1`), slots strictly increasing and each set in the bitfield. A link named by
//! its slot alone is a sub-shard; any other is an entry, named by the rest of its name.
//!
//! A shard's place ([`Position`]: the slots from the folder's root shard): the root is at depth 0,
//! a sub-shard one level below its parent, with the parent's fanout, and at most as deep as the
//! 64 bits of a key reach (boxo: "sharded directory too deep"). An entry must be where its key
//! ([`crate::murmur3::hamt_key`], its bits taken most significant first, `log2(fanout)` a level)
//! puts it: every slot from the root on ([`Position::check_entry`]). So a name is in one place
//! only, and a sharded folder that passes holds no name twice.

use super::{next_link, Kind, Node, NodeError, PbLink, PbNode};
use crate::murmur3::hamt_key;
use cid::Cid;

/// Multicodec of the only key hash (`murmur3-x64-64`).
pub const MURMUR3: u64 = 0x22;
/// Largest fanout boxo reads (`maximumHamtWidth`).
pub const MAX_FANOUT: u64 = 1024;

/// A HAMT shard node, checked alone (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Shard<'a> {
    pb: PbNode<'a>,
    /// Bits of a key per level: log2 of the fanout (3 to 10).
    pub bits: u32,
    /// Links that are entries (not sub-shards).
    pub entries: usize,
}

/// One link of a checked [`Shard`].
#[derive(Debug, Clone)]
pub struct ShardLink<'a> {
    /// Its slot.
    pub slot: u32,
    /// The entry's name, or `None` for a sub-shard.
    pub name: Option<&'a [u8]>,
    /// The target.
    pub cid: Cid,
}

/// Hex digits of a slot for `bits` bits a level (those of `fanout - 1`).
pub fn width(bits: u32) -> usize {
    bits.div_ceil(4) as usize
}

/// The slot a link name starts with, if it does (`width` upper-case hex digits below `fanout`).
fn slot_of(name: &[u8], bits: u32) -> Option<u32> {
    let digits = name.get(..width(bits))?;
    let mut slot = 0u32;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'A'..=b'F' => d - b'A' + 10,
            _ => return None,
        };
        slot = slot << 4 | u32::from(v);
    }
    (slot < 1 << bits).then_some(slot)
}

/// Reads a link of a shard whose links were checked by [`shard`] (`bits` its bits a level).
pub fn shard_link(link: PbLink<'_>, bits: u32) -> ShardLink<'_> {
    let w = width(bits);
    let slot = slot_of(link.name, bits).unwrap_or_default();
    let name = (link.name.len() > w).then(|| &link.name[w..]);
    ShardLink { slot, name, cid: link.cid }
}

/// Checks a HAMT shard node alone (see the module documentation; its kind is the caller's to
/// check).
pub fn shard<'a>(node: &Node<'a>) -> Result<Shard<'a>, NodeError> {
    debug_assert_eq!(node.kind(), Kind::HamtShard);
    let fs = &node.fs;
    if fs.hash_type != Some(MURMUR3) {
        return Err(NodeError::HamtHashType(fs.hash_type));
    }
    let fanout = match fs.fanout {
        Some(f) if f.is_power_of_two() && (8..=MAX_FANOUT).contains(&f) => f as u32,
        other => return Err(NodeError::HamtFanout(other)),
    };
    let bits = fanout.trailing_zeros();
    let bitfield = fs.inline();
    if bitfield.len() > fanout as usize / 8 {
        return Err(NodeError::HamtBitfieldLength { len: bitfield.len(), fanout });
    }
    let set: u32 = bitfield.iter().map(|b| b.count_ones()).sum();
    if set as usize != node.pb.link_count {
        return Err(NodeError::HamtPopcount { set, links: node.pb.link_count });
    }
    let is_set = |slot: u32| {
        let byte = (slot / 8) as usize;
        byte < bitfield.len() && bitfield[bitfield.len() - 1 - byte] & 1 << (slot % 8) != 0
    };
    let mut entries = 0;
    let mut last = None;
    for (index, link) in node.pb.links().enumerate() {
        let Some(slot) = slot_of(link.name, bits) else {
            let name = String::from_utf8_lossy(link.name).into_owned();
            return Err(NodeError::HamtLinkName { index, name, width: width(bits), fanout });
        };
        if last.is_some_and(|l| slot <= l) {
            return Err(NodeError::HamtSlotOrder { index, slot });
        }
        if !is_set(slot) {
            return Err(NodeError::HamtSlotUnset { index, slot });
        }
        last = Some(slot);
        entries += usize::from(link.name.len() > width(bits));
    }
    Ok(Shard { pb: node.pb, bits, entries })
}

impl<'a> Shard<'a> {
    /// Slots per shard.
    pub fn fanout(&self) -> u32 {
        1 << self.bits
    }

    /// Its links, in stored (slot) order.
    pub fn links(&self) -> impl Iterator<Item = ShardLink<'a>> + '_ {
        let bits = self.bits;
        self.pb.links().map(move |l| shard_link(l, bits))
    }
}

/// The next link of the checked shard block `bytes` (cursor form, see [`next_link`]).
pub fn next_shard_link<'a>(bytes: &'a [u8], at: &mut usize, bits: u32) -> Option<Result<ShardLink<'a>, NodeError>> {
    next_link(bytes, at).map(|l| l.map(|l| shard_link(l, bits)))
}

/// Where a shard is in its sharded folder: bits a level, depth (0 for the root shard), and the
/// slots above it as the top `depth × bits` bits of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    bits: u32,
    depth: u32,
    prefix: u64,
}

impl Position {
    /// The root shard of a folder with `bits` bits a level.
    pub fn root(bits: u32) -> Position {
        Position { bits, depth: 0, prefix: 0 }
    }

    /// Bits a level.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Depth below the root shard.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Bits of a key the levels above use.
    fn used(&self) -> u32 {
        self.depth * self.bits
    }

    /// The slot `key` takes in this shard.
    fn slot(&self, key: u64) -> u32 {
        ((key << self.used()) >> (64 - self.bits)) as u32
    }

    /// Whether `key` has this shard's slots above it.
    fn holds(&self, key: u64) -> bool {
        self.depth == 0 || (key ^ self.prefix) >> (64 - self.used()) == 0
    }

    /// The slots from the root to `slot` of this shard, `/`-separated (`3E/07`).
    pub fn place(&self, slot: u32) -> String {
        let w = width(self.bits);
        let mut out = String::new();
        for level in 0..self.depth {
            let s = (self.prefix << (level * self.bits)) >> (64 - self.bits);
            out.push_str(&format!("{s:0w$X}/"));
        }
        out.push_str(&format!("{slot:0w$X}"));
        out
    }

    /// This shard's own place: the slots from the root to it (`3E/07`; empty for the root).
    pub fn path(&self) -> String {
        if self.depth == 0 {
            return String::new();
        }
        let up = Position { depth: self.depth - 1, ..*self };
        let slot = ((self.prefix << up.used()) >> (64 - self.bits)) as u32;
        up.place(slot)
    }

    /// This shard's own place in words: "the root shard" or "sub-shard 3E/07".
    pub fn describe(&self) -> String {
        if self.depth == 0 {
            "the root shard".into()
        } else {
            format!("sub-shard {}", self.path())
        }
    }

    /// The sub-shard in `slot` of this shard, if the 64 bits of a key reach its level.
    pub fn child(&self, slot: u32) -> Result<Position, NodeError> {
        if (self.depth + 2) * self.bits > 64 {
            return Err(NodeError::HamtTooDeep { at: self.place(slot) });
        }
        let prefix = self.prefix | u64::from(slot) << (64 - self.used() - self.bits);
        Ok(Position { bits: self.bits, depth: self.depth + 1, prefix })
    }

    /// Checks that the entry `name` in `slot` of this shard is where its key puts it.
    pub fn check_entry(&self, slot: u32, name: &[u8]) -> Result<(), NodeError> {
        let key = hamt_key(name);
        if self.holds(key) && self.slot(key) == slot {
            return Ok(());
        }
        let mut want = Position::root(self.bits);
        for _ in 0..self.depth {
            want = want.child(want.slot(key))?;
        }
        Err(NodeError::HamtMisplaced {
            name: String::from_utf8_lossy(name).into_owned(),
            key,
            at: self.place(slot),
            want: want.place(want.slot(key)),
        })
    }

    /// Checks that a shard with `bits` bits a level can be at this position.
    pub fn check_bits(&self, bits: u32) -> Result<(), NodeError> {
        if bits == self.bits {
            Ok(())
        } else {
            Err(NodeError::HamtFanoutChanged { fanout: 1 << bits, parent: 1 << self.bits })
        }
    }

    /// The position as one non-zero number (for a record of 64 bits): the slots above in the top
    /// bits, then a marker bit, then `bits - 3` in the low 3 bits (at most 60 bits of slots: a
    /// sub-shard leaves a level of bits below it).
    pub fn pack(&self) -> u64 {
        let used = self.used();
        self.prefix | 1 << (63 - used) | u64::from(self.bits - 3)
    }

    /// The position [`Position::pack`] gave `packed`.
    pub fn unpack(packed: u64) -> Position {
        let bits = (packed & 7) as u32 + 3;
        let marker = 63 - (packed & !7).trailing_zeros().min(63);
        let prefix = if marker == 0 { 0 } else { packed >> (64 - marker) << (64 - marker) };
        Position { bits, depth: marker / bits, prefix }
    }
}

#[cfg(test)]
mod tests;
