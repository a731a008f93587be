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
    /// next bits of their hashes. A pure function of the set of names ([`Hamt`], as a tree).
    pub fn build<'a, I>(names: I, fanout: u32) -> Result<Shard, HamtError>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let hamt = Hamt::build(names, fanout)?;
        Ok(hamt.tree(hamt.root()))
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

/// A folder's HAMT held compactly: its entries' keys in hash order (16 bytes an entry). Every
/// shard is a run of consecutive keys — those sharing its slot path — so the shard tree takes
/// no memory of its own: a shard is a [`Run`], its slots are found by walking the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hamt {
    fanout: u32,
    /// (key, entry index), ascending.
    keyed: Vec<(u64, usize)>,
}

/// A shard of a [`Hamt`]: its depth (0 = the root) and its run of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    level: u32,
    start: usize,
    end: usize,
}

/// What a slot of a [`Run`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A folder entry, by its index in the names given to [`Hamt::build`].
    Value(usize),
    /// A sub-shard.
    Shard(Run),
}

impl Hamt {
    /// The HAMT boxo builds for these names (distinct) with `fanout` slots per shard (see
    /// [`Shard::build`]). Fails like boxo when two names share every hash bit a shard path can
    /// use; the two reported are the first such pair in key order.
    pub fn build<'a, I>(names: I, fanout: u32) -> Result<Hamt, HamtError>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        check_fanout(fanout)?;
        let names = names.into_iter();
        let mut keyed: Vec<(u64, usize)> = names.clone().map(hash).enumerate().map(|(i, h)| (h, i)).collect();
        keyed.sort_unstable();
        // Shards nest while a whole slot's bits remain: names sharing all those bits can never
        // be told apart.
        let bits = fanout.trailing_zeros();
        let used = 64 / bits * bits;
        let same = |a: u64, b: u64| (a ^ b) >> (64 - used) == 0;
        if let Some(w) = keyed.windows(2).find(|w| same(w[0].0, w[1].0)) {
            let text = |i: usize| String::from_utf8_lossy(names.clone().nth(i).unwrap_or_default()).into_owned();
            return Err(HamtError::TooDeep(text(w[0].1), text(w[1].1)));
        }
        Ok(Hamt { fanout, keyed })
    }

    /// Slots per shard.
    pub fn fanout(&self) -> u32 {
        self.fanout
    }

    /// The root shard.
    pub fn root(&self) -> Run {
        Run { level: 0, start: 0, end: self.keyed.len() }
    }

    fn slot_of(&self, key: u64, level: u32) -> u32 {
        let bits = self.fanout.trailing_zeros();
        ((key >> (64 - (level + 1) * bits)) & ((1u64 << bits) - 1)) as u32
    }

    /// A shard's occupied slots in slot order (its links' order): the slot number and what it
    /// holds.
    pub fn slots(&self, run: Run) -> impl Iterator<Item = (u32, Held)> + '_ {
        let mut at = run.start;
        std::iter::from_fn(move || {
            let &(key, entry) = self.keyed[..run.end].get(at)?;
            let index = self.slot_of(key, run.level);
            let start = at;
            at += self.keyed[at..run.end].iter().take_while(|(k, _)| self.slot_of(*k, run.level) == index).count();
            let held = if at - start == 1 {
                Held::Value(entry)
            } else {
                Held::Shard(Run { level: run.level + 1, start, end: at })
            };
            Some((index, held))
        })
    }

    /// A shard as a tree of [`Shard`]s.
    pub fn tree(&self, run: Run) -> Shard {
        let slots = self
            .slots(run)
            .map(|(index, held)| Slot {
                index,
                child: match held {
                    Held::Value(i) => Child::Value(i),
                    Held::Shard(sub) => Child::Shard(self.tree(sub)),
                },
            })
            .collect();
        Shard { slots }
    }

    /// A shard's bitfield ([`Shard::bitfield`]).
    pub fn bitfield(&self, run: Run) -> Vec<u8> {
        let slots = self.slots(run).map(|(index, _)| Slot { index, child: Child::Value(0) }).collect();
        Shard { slots }.bitfield(self.fanout)
    }

    /// Length of a shard's bitfield ([`Shard::bitfield_len`]): that of its last slot.
    pub fn bitfield_len(&self, run: Run) -> usize {
        match self.keyed[run.start..run.end].last() {
            Some(&(key, _)) => self.slot_of(key, run.level) as usize / 8 + 1,
            None => 0,
        }
    }

    /// Bytes held on the heap (allocated capacity).
    pub fn heap_bytes(&self) -> usize {
        self.keyed.capacity() * std::mem::size_of::<(u64, usize)>()
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
