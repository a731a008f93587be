//! A CAR opened for random access: one sequential pass over the section headers builds a
//! compact index, a sorted vector of 28-byte entries (the first 16 bytes of the block's
//! SHA-256 digest, where its data starts, its length). Blocks are found by their digest, so a
//! CIDv0 and its CIDv1 (or a raw and a dag-pb CID of the same bytes) find the same block, and
//! every block read is verified against the full CID that asked for it. Identity CIDs are
//! inline blocks, never looked up.
//!
//! 16 bytes of digest, not 8: a 64-bit prefix can be birthday-collided in about 2^32 hashes, and
//! a collision would hide one of the two blocks (never return wrong bytes: the full CID is
//! checked). The data is never held: memory is the index, 28 bytes a block.

use super::ExtractError;
use crate::block::{self, IDENTITY, SHA2_256};
use crate::car::{self, CarError};
use cid::Cid;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Largest section accepted (as `car::BlockReader`).
const MAX_SECTION: u64 = 64 << 20;
/// Longest CID read from a section (version, codec, hash code, length, a 64-byte digest).
const MAX_CID: usize = 96;

/// One indexed section: digest prefix, data offset (as two halves, so the entry packs in 28
/// bytes) and data length.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: [u8; 16],
    at: [u32; 2],
    len: u32,
}

impl Entry {
    fn at(&self) -> u64 {
        (self.at[1] as u64) << 32 | self.at[0] as u64
    }
}

/// Where a block is: its place in the index (a stable number for per-block tables), or inline
/// in its CID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The `n`th indexed block.
    Indexed(usize),
    /// An identity CID: the bytes are the digest.
    Inline,
}

/// A CAR opened for random access (see the module documentation).
pub struct CarIndex {
    file: File,
    path: PathBuf,
    /// Root CIDs from the header.
    pub roots: Vec<Cid>,
    entries: Vec<Entry>,
    car_len: u64,
}

/// The index key of a SHA-256 CID with a full 32-byte digest.
fn key_of(cid: &Cid) -> Option<[u8; 16]> {
    let mh = cid.hash();
    (mh.code() == SHA2_256 && mh.digest().len() == 32).then(|| mh.digest()[..16].try_into().expect("16 bytes"))
}

impl CarIndex {
    /// Indexes the CARv1 at `path` (one sequential pass over the section headers; data skipped).
    pub fn open(path: &Path) -> Result<Self, ExtractError> {
        let io_err = |source| ExtractError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io_err)?;
        let car_len = file.metadata().map_err(io_err)?.len();
        let mut r = io::BufReader::with_capacity(1 << 20, file.try_clone().map_err(io_err)?);
        let header = car::read_header(&mut r)?;
        if header.version != 1 {
            return Err(CarError::Version(header.version).into());
        }
        let mut offset = header.len;
        let mut entries = Vec::new();
        loop {
            let bad = |reason: &str| CarError::BadSection { offset, reason: reason.into() };
            let Some((len, n)) = car::read_varint(&mut r).map_err(|e| bad(&e.to_string()))? else {
                break;
            };
            if len > MAX_SECTION {
                return Err(bad("section larger than 64 MiB").into());
            }
            let mut head = [0u8; MAX_CID];
            let head = &mut head[..(len as usize).min(MAX_CID)];
            r.read_exact(head).map_err(|_| bad("truncated section"))?;
            let mut cur = io::Cursor::new(&head[..]);
            let cid = Cid::read_bytes(&mut cur).map_err(|e| bad(&format!("bad CID: {e}")))?;
            let cid_len = cur.position();
            r.seek_relative((len - head.len() as u64) as i64).map_err(|e| bad(&e.to_string()))?;
            let data_at = offset + n as u64 + cid_len;
            if let Some(key) = key_of(&cid) {
                let at = [data_at as u32, (data_at >> 32) as u32];
                entries.push(Entry { key, at, len: (len - cid_len) as u32 });
            }
            offset += n as u64 + len;
        }
        if offset != car_len {
            // The last section's data was skipped past the end of the file.
            let reason = "truncated section".into();
            return Err(CarError::BadSection { offset: offset.min(car_len), reason }.into());
        }
        // The first of repeated blocks is kept (they hold the same bytes, or the read fails).
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(a.at().cmp(&b.at())));
        entries.dedup_by_key(|e| e.key);
        entries.shrink_to_fit();
        Ok(CarIndex { file, path: path.to_path_buf(), roots: header.roots, entries, car_len })
    }

    /// Number of distinct blocks indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the CAR holds no indexed block.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Size of the CAR file in bytes.
    pub fn car_len(&self) -> u64 {
        self.car_len
    }

    /// Where the block `cid` is.
    pub fn place(&self, cid: &Cid) -> Result<Place, ExtractError> {
        let missing = |reason: String| ExtractError::Block { cid: *cid, reason };
        if cid.hash().code() == IDENTITY {
            return Ok(Place::Inline);
        }
        let Some(key) = key_of(cid) else {
            return Err(missing(format!(
                "its hash (multihash 0x{:x}, {} bytes) is not one carload can verify",
                cid.hash().code(),
                cid.hash().digest().len()
            )));
        };
        self.entries
            .binary_search_by(|e| e.key.cmp(&key))
            .map(Place::Indexed)
            .map_err(|_| missing("missing from the CAR".into()))
    }

    /// The length of the block `cid` without reading it.
    pub fn size_of(&self, cid: &Cid) -> Result<u64, ExtractError> {
        Ok(match self.place(cid)? {
            Place::Indexed(i) => self.entries[i].len as u64,
            Place::Inline => cid.hash().digest().len() as u64,
        })
    }

    /// The block `cid` names, verified, and where it is.
    pub fn read(&self, cid: &Cid) -> Result<(Place, Vec<u8>), ExtractError> {
        let place = self.place(cid)?;
        let data = match place {
            Place::Inline => cid.hash().digest().to_vec(),
            Place::Indexed(i) => {
                let e = self.entries[i];
                let mut data = vec![0u8; e.len as usize];
                self.file
                    .read_exact_at(&mut data, e.at())
                    .map_err(|source| ExtractError::Io { path: self.path.clone(), source })?;
                if !block::verify(cid, &data) {
                    return Err(ExtractError::Block { cid: *cid, reason: "its data does not hash to its CID".into() });
                }
                data
            }
        };
        Ok((place, data))
    }

    /// The block `cid` names, verified.
    pub fn block(&self, cid: &Cid) -> Result<Vec<u8>, ExtractError> {
        self.read(cid).map(|(_, data)| data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, CidVersion, DAG_PB, RAW};

    fn car_file(root: &Cid, blocks: &[&Block]) -> tempfile::NamedTempFile {
        let mut car = car::header(root);
        for b in blocks {
            car.extend(car::section_prefix(&b.cid, b.data.len()));
            car.extend(&b.data);
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), car).unwrap();
        f
    }

    #[test]
    fn entries_are_28_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 28);
    }

    #[test]
    fn blocks_are_found_by_digest_and_verified() {
        let leaf = Block::new(CidVersion::V0, DAG_PB, crate::unixfs::file_leaf(b"hi"));
        let raw = Block::new(CidVersion::V1, RAW, b"raw".to_vec());
        let f = car_file(&leaf.cid, &[&leaf, &raw, &leaf]);
        let car = CarIndex::open(f.path()).unwrap();
        assert_eq!(car.len(), 2, "a repeated block is indexed once");
        assert_eq!(car.block(&block::to_v1(&leaf.cid)).unwrap(), leaf.data);
        assert_eq!(car.block(&raw.cid).unwrap(), b"raw");
        assert_eq!(car.size_of(&raw.cid).unwrap(), 3);
        let other = Block::new(CidVersion::V1, RAW, b"not here".to_vec());
        assert!(car.block(&other.cid).unwrap_err().to_string().contains("missing"));
    }

    #[test]
    fn truncated_and_corrupt_cars_are_errors() {
        let raw = Block::new(CidVersion::V1, RAW, b"raw bytes".to_vec());
        let f = car_file(&raw.cid, &[&raw]);
        let bytes = std::fs::read(f.path()).unwrap();
        std::fs::write(f.path(), &bytes[..bytes.len() - 1]).unwrap();
        assert!(CarIndex::open(f.path()).err().unwrap().to_string().contains("truncated"));
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        std::fs::write(f.path(), &bad).unwrap();
        let car = CarIndex::open(f.path()).unwrap();
        assert!(car.block(&raw.cid).unwrap_err().to_string().contains("does not hash"));
    }
}
