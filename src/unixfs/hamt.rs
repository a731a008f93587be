//! HAMT-sharded folders as boxo (kubo) writes them (`ipld/unixfs/hamt`, `io/directory.go`): the
//! switch from a basic folder, the murmur3 keys, the shard structure as a pure function of the
//! names, link names, bitfields and the shard's UnixFS `Data`.

use crate::varint;

/// Multicodec of the HAMT hash function written in shard nodes (`murmur3-x64-64`).
pub const HASH_MURMUR3: u64 = 0x22;
/// Default slots per shard (boxo `DefaultShardWidth`).
pub const DEFAULT_FANOUT: u32 = 256;
/// Default size threshold in bytes (kubo `Import.UnixFSHAMTDirectorySizeThreshold`, 256 KiB).
pub const DEFAULT_THRESHOLD: u64 = 262_144;
/// Largest fanout boxo accepts (`maximumHamtWidth`).
pub const MAX_FANOUT: u32 = 1024;

/// How a basic folder's size is estimated for the switch to a HAMT (kubo
/// `Import.UnixFSHAMTDirectorySizeEstimation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimation {
    /// Σ (name length + CID length) over the links (kubo's default, `unixfs-v0-2015`).
    Links,
    /// The serialized basic folder block's length (`unixfs-v1-2025`).
    Block,
    /// Never shard (go-ipfs 0.8, Powergate).
    #[default]
    Disabled,
}

impl Estimation {
    /// Whether sharding is off (serde's `skip_serializing_if`).
    pub fn is_disabled(&self) -> bool {
        *self == Estimation::Disabled
    }

    /// The name kubo gives it (`links`, `block`, `disabled`).
    pub fn name(&self) -> &'static str {
        match self {
            Estimation::Links => "links",
            Estimation::Block => "block",
            Estimation::Disabled => "disabled",
        }
    }
}

/// The default threshold (serde's `default`).
pub fn default_threshold() -> u64 {
    DEFAULT_THRESHOLD
}

/// Whether `t` is the default threshold (serde's `skip_serializing_if`).
pub fn is_default_threshold(t: &u64) -> bool {
    *t == DEFAULT_THRESHOLD
}

/// The default fanout (serde's `default`).
pub fn default_fanout() -> u32 {
    DEFAULT_FANOUT
}

/// Whether `f` is the default fanout (serde's `skip_serializing_if`).
pub fn is_default_fanout(f: &u32) -> bool {
    *f == DEFAULT_FANOUT
}

/// Why a folder cannot be written as a HAMT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HamtError {
    /// The fanout is not a power of two from 8 to 1024.
    #[error("HAMT fanout {0} is not a power of two from 8 to 1024")]
    BadFanout(u32),
    /// Two names share every hash bit a shard path can use (boxo: "sharded directory too deep").
    #[error("HAMT: names {0:?} and {1:?} have the same 64-bit murmur3 hash (sharded directory too deep)")]
    TooDeep(String, String),
}

/// Checks a fanout as boxo does (`validShardWidth`, `maximumHamtWidth`).
pub fn check_fanout(fanout: u32) -> Result<(), HamtError> {
    if fanout.is_power_of_two() && (8..=MAX_FANOUT).contains(&fanout) {
        Ok(())
    } else {
        Err(HamtError::BadFanout(fanout))
    }
}

/// Whether a basic folder with these links (name length, CID length, Tsize) becomes a HAMT:
/// the estimate is strictly greater than `threshold` (boxo ≥ v0.36, kubo 0.40). A threshold of 0
/// disables sharding, and a folder without entries never shards (boxo decides on `AddChild`).
pub fn exceeds(
    estimation: Estimation,
    threshold: u64,
    links: impl IntoIterator<Item = (usize, usize, u64)> + Clone,
) -> bool {
    if threshold == 0 || links.clone().into_iter().next().is_none() {
        return false;
    }
    let estimate = match estimation {
        Estimation::Disabled => return false,
        Estimation::Links => links.into_iter().map(|(name, cid, _)| (name + cid) as u64).sum::<u64>(),
        Estimation::Block => {
            let links = links.into_iter().map(|(name, cid, tsize)| (cid, name, tsize));
            crate::dagpb::encoded_len(links, Some(crate::unixfs::directory().len())) as u64
        }
    };
    estimate > threshold
}

/// The HAMT key of a name: murmur3 x64 128, seed 0, its first 64 bits (h1) big-endian, read
/// MSB-first (spaolacci/murmur3 `New64().Sum(nil)`). As a number, its bits in reading order.
pub fn hash(name: &[u8]) -> u64 {
    crate::murmur3::hamt_key(name)
}

/// Hex digits of a slot prefix: those of `fanout - 1` (2 for 256).
pub fn prefix_len(fanout: u32) -> usize {
    format!("{:X}", fanout - 1).len()
}

/// The name of a shard's link at `slot`: the upper-case hex slot (`%0*X`) followed by the entry's
/// name (a value) or nothing (a sub-shard).
pub fn link_name(slot: u32, fanout: u32, name: &[u8]) -> Vec<u8> {
    let mut out = format!("{:0width$X}", slot, width = prefix_len(fanout)).into_bytes();
    out.extend_from_slice(name);
    out
}

/// A shard: its occupied slots in slot order (which is also its links' byte order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Occupied slots, ascending.
    pub slots: Vec<Slot>,
}

/// One occupied slot of a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The slot number (0..fanout).
    pub index: u32,
    /// What it holds.
    pub child: Child,
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Child {
    /// A folder entry, by its index in the names given to [`Shard::build`].
    Value(usize),
    /// A sub-shard holding the entries that share this slot.
    Shard(Shard),
}

impl Shard {
    /// The HAMT boxo builds for these names (distinct) with `fanout` slots per shard: a slot
    /// holding one entry holds its value, a slot shared by several holds a sub-shard keyed by the
    /// next bits of their hashes. A pure function of the set of names.
    pub fn build<'a>(names: impl IntoIterator<Item = &'a [u8]>, fanout: u32) -> Result<Shard, HamtError> {
        check_fanout(fanout)?;
        let names: Vec<&[u8]> = names.into_iter().collect();
        let mut keyed: Vec<(u64, usize)> = names.iter().enumerate().map(|(i, n)| (hash(n), i)).collect();
        keyed.sort_unstable();
        let bits = fanout.trailing_zeros();
        Shard::partition(&keyed, 0, bits, &names)
    }

    fn partition(keyed: &[(u64, usize)], level: u32, bits: u32, names: &[&[u8]]) -> Result<Shard, HamtError> {
        let slot_of = |h: u64| ((h >> (64 - (level + 1) * bits)) & ((1u64 << bits) - 1)) as u32;
        let mut slots = Vec::new();
        let mut rest = keyed;
        while let Some(&(h, i)) = rest.first() {
            let index = slot_of(h);
            let n = rest.iter().take_while(|(g, _)| slot_of(*g) == index).count();
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let child = if n == 1 {
                Child::Value(i)
            } else if (level + 2) * bits > 64 {
                let text = |k: usize| String::from_utf8_lossy(names[group[k].1]).into_owned();
                return Err(HamtError::TooDeep(text(0), text(1)));
            } else {
                Child::Shard(Shard::partition(group, level + 1, bits, names)?)
            };
            slots.push(Slot { index, child });
        }
        Ok(Shard { slots })
    }

    /// The bitfield as go-bitfield's `Bytes()`: `fanout / 8` bytes, slot *i* in byte
    /// `len - 1 - i / 8` under mask `1 << (i % 8)`, leading zero bytes trimmed.
    pub fn bitfield(&self, fanout: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; fanout as usize / 8];
        let len = bytes.len();
        for s in &self.slots {
            bytes[len - 1 - s.index as usize / 8] |= 1 << (s.index % 8);
        }
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(len);
        bytes.split_off(first)
    }

    /// Length of [`Shard::bitfield`] (from the highest occupied slot).
    pub fn bitfield_len(&self) -> usize {
        self.slots.last().map_or(0, |s| s.index as usize / 8 + 1)
    }
}

/// The UnixFS `Data` of a shard: `Type=HAMTShard, Data=bitfield, hashType=murmur3, fanout`
/// (`08 05 12 <len> <bitfield> 28 22 30 <fanout>`).
pub fn shard_data(bitfield: &[u8], fanout: u32) -> Vec<u8> {
    let mut out = vec![0x08, 0x05];
    if !bitfield.is_empty() {
        out.push(0x12);
        varint::write(&mut out, bitfield.len() as u64);
        out.extend_from_slice(bitfield);
    }
    out.extend_from_slice(&[0x28, HASH_MURMUR3 as u8, 0x30]);
    varint::write(&mut out, fanout as u64);
    out
}

/// Length of [`shard_data`] for a bitfield of `bitfield_len` bytes.
pub fn shard_data_len(bitfield_len: usize, fanout: u32) -> usize {
    let bits = if bitfield_len == 0 { 0 } else { 1 + varint::len(bitfield_len as u64) + bitfield_len };
    2 + bits + 2 + 1 + varint::len(fanout as u64)
}

#[cfg(test)]
mod tests;
