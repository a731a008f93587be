//! Blocks and the CIDs that name them (sha2-256 only, as every supported profile uses).

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec code of dag-pb.
pub const DAG_PB: u64 = 0x70;
/// Multicodec code of raw.
pub const RAW: u64 = 0x55;
/// Multicodec code of dag-cbor.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;
/// Multihash code of identity.
pub const IDENTITY: u64 = 0x00;

/// The CID version a DAG is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CidVersion {
    /// CIDv0: base58btc `Qm…`, dag-pb only.
    V0,
    /// CIDv1: base32 `baf…`.
    V1,
}

/// The sha2-256 multihash of `data`.
pub fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(data);
    Multihash::wrap(SHA2_256, &digest).expect("32-byte digest fits")
}

/// The CID of `data` under `codec`. Version 0 is only possible for dag-pb;
/// any other codec is given CIDv1, as go-cid's builders do.
pub fn cid_of(version: CidVersion, codec: u64, data: &[u8]) -> Cid {
    let mh = sha256_multihash(data);
    cid_from_multihash(version, codec, mh)
}

/// Builds a CID from a multihash, with the same version rule as [`cid_of`].
pub fn cid_from_multihash(version: CidVersion, codec: u64, mh: Multihash<64>) -> Cid {
    if version == CidVersion::V0 && codec == DAG_PB {
        Cid::new_v0(mh).expect("sha2-256 multihash is a valid CIDv0")
    } else {
        Cid::new_v1(codec, mh)
    }
}

/// The CIDv1 form of `cid` (same codec and multihash).
pub fn to_v1(cid: &Cid) -> Cid {
    Cid::new_v1(cid.codec(), *cid.hash())
}

/// Length in bytes of a CID of `version` and `codec` over a sha2-256 digest.
pub fn cid_len(version: CidVersion, codec: u64) -> usize {
    if version == CidVersion::V0 && codec == DAG_PB {
        34
    } else {
        36
    }
}

/// Checks that `data` hashes to `cid`'s multihash (sha2-256 and identity are supported).
pub fn verify(cid: &Cid, data: &[u8]) -> bool {
    let mh = cid.hash();
    match mh.code() {
        SHA2_256 => mh.digest() == Sha256::digest(data).as_slice(),
        IDENTITY => mh.digest() == data,
        _ => false,
    }
}

/// A 16-byte index key for the block a CID names: its codec and multihash, the CID version
/// ignored (a blockstore finds a CIDv0 block under its CIDv1 too). For a sha2-256 CID it is the
/// digest's first 16 bytes with the codec folded in: finding two blocks with one key takes about
/// 2^64 hashes. Other multihashes (which carload cannot check) are hashed first, so their chosen
/// digests cannot be made to collide with real ones.
pub fn key(cid: &Cid) -> [u8; 16] {
    let mh = cid.hash();
    let mut k = [0u8; 16];
    if mh.code() == SHA2_256 && mh.size() == 32 {
        k.copy_from_slice(&mh.digest()[..16]);
    } else {
        k.copy_from_slice(&Sha256::digest(mh.to_bytes())[..16]);
    }
    for (b, c) in k.iter_mut().zip(cid.codec().to_le_bytes()) {
        *b ^= c;
    }
    k
}

/// A block: its CID and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The CID the block is stored under.
    pub cid: Cid,
    /// The block's bytes.
    pub data: Vec<u8>,
}

impl Block {
    /// Hashes `data` and names it with a CID of `version` and `codec`.
    pub fn new(version: CidVersion, codec: u64, data: Vec<u8>) -> Self {
        let cid = cid_of(version, codec, &data);
        Block { cid, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dir_cids() {
        let v0 = cid_of(CidVersion::V0, DAG_PB, &[0x0a, 0x02, 0x08, 0x01]);
        assert_eq!(v0.to_string(), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
        let v1 = cid_of(CidVersion::V1, DAG_PB, &[0x0a, 0x02, 0x08, 0x01]);
        assert_eq!(v1.to_string(), "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354");
        assert_eq!(to_v1(&v0), v1);
        assert_eq!(v0.to_bytes().len(), cid_len(CidVersion::V0, DAG_PB));
        assert_eq!(v1.to_bytes().len(), cid_len(CidVersion::V1, DAG_PB));
    }

    #[test]
    fn raw_is_always_v1() {
        let c = cid_of(CidVersion::V0, RAW, b"");
        assert_eq!(c.to_string(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        assert!(verify(&c, b""));
        assert!(!verify(&c, b"x"));
    }
}
