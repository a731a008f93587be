//! dag-pb encoding and decoding, byte-compatible with go-merkledag / go-codec-dagpb.
//!
//! Encoding rules (see ARCHITECTURE.md): links first (field 2), then Data (field 1) only when
//! present; each link writes Hash, Name (always, even empty) and Tsize (always). Links are
//! sorted by name bytes with a stable sort.

use crate::varint;
use cid::Cid;

/// One link of a dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Target CID.
    pub cid: Cid,
    /// Link name (raw bytes; UnixFS directory entry names may be any bytes).
    pub name: Vec<u8>,
    /// Cumulative size of the target DAG.
    pub tsize: u64,
}

/// A decoded dag-pb node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// Links in stored order.
    pub links: Vec<Link>,
    /// The Data field, if present.
    pub data: Option<Vec<u8>>,
}

/// Errors decoding a dag-pb block.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The block ended in the middle of a field.
    #[error("truncated dag-pb block")]
    Truncated,
    /// A field had an unexpected number or wire type.
    #[error("unexpected dag-pb field {0} (wire type {1})")]
    UnexpectedField(u64, u64),
    /// A link held bytes that are not a CID.
    #[error("invalid CID in dag-pb link")]
    BadCid,
}

fn encoded_link_len(cid_len: usize, name_len: usize, tsize: u64) -> usize {
    1 + varint::len(cid_len as u64) + cid_len + 1 + varint::len(name_len as u64) + name_len + 1 + varint::len(tsize)
}

/// Length of the encoded node with links of the given (cid length, name length, tsize) and data.
/// Lets the importer predict block sizes without hashing.
pub fn encoded_len(links: impl IntoIterator<Item = (usize, usize, u64)>, data_len: Option<usize>) -> usize {
    let mut n = 0;
    for (c, name, t) in links {
        let inner = encoded_link_len(c, name, t);
        n += 1 + varint::len(inner as u64) + inner;
    }
    if let Some(d) = data_len {
        n += 1 + varint::len(d as u64) + d;
    }
    n
}

/// Encodes a node. `links` must already be in the order to store (use [`sort_links`] for
/// directories); file nodes keep insertion order.
pub fn encode(links: &[Link], data: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(
        links.iter().map(|l| (l.cid.encoded_len(), l.name.len(), l.tsize)),
        data.map(<[u8]>::len),
    ));
    for l in links {
        encode_link(&mut out, &l.cid, &l.name, l.tsize);
    }
    if let Some(d) = data {
        encode_data(&mut out, d);
    }
    out
}

/// Appends one link to a node being encoded link by link (what [`encode`] does for each).
pub fn encode_link(out: &mut Vec<u8>, cid: &Cid, name: &[u8], tsize: u64) {
    let cid_len = cid.encoded_len();
    let inner = encoded_link_len(cid_len, name.len(), tsize);
    out.push(0x12);
    varint::write(out, inner as u64);
    out.push(0x0a);
    varint::write(out, cid_len as u64);
    cid.write_bytes(&mut *out).expect("writing to a Vec does not fail");
    out.push(0x12);
    varint::write(out, name.len() as u64);
    out.extend_from_slice(name);
    out.push(0x18);
    varint::write(out, tsize);
}

/// Appends the Data field, after the links, ending a node encoded link by link.
pub fn encode_data(out: &mut Vec<u8>, data: &[u8]) {
    out.push(0x0a);
    varint::write(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Sorts links by name bytes, stable, as go-merkledag does before encoding.
pub fn sort_links(links: &mut [Link]) {
    links.sort_by(|a, b| a.name.cmp(&b.name));
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let (v, n) = varint::read(self.buf).ok_or(DecodeError::Truncated)?;
        self.buf = &self.buf[n..];
        Ok(v)
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()? as usize;
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
}

/// Decodes a dag-pb block. Accepts fields in any order, as the dag-pb spec's decoders do.
pub fn decode(block: &[u8]) -> Result<Node, DecodeError> {
    let mut r = Reader { buf: block };
    let mut node = Node::default();
    while !r.buf.is_empty() {
        let key = r.varint()?;
        match (key >> 3, key & 7) {
            (1, 2) => node.data = Some(r.bytes()?.to_vec()),
            (2, 2) => node.links.push(decode_link(r.bytes()?)?),
            (f, w) => return Err(DecodeError::UnexpectedField(f, w)),
        }
    }
    Ok(node)
}

fn decode_link(bytes: &[u8]) -> Result<Link, DecodeError> {
    let mut r = Reader { buf: bytes };
    let mut cid = None;
    let mut name = Vec::new();
    let mut tsize = 0;
    while !r.buf.is_empty() {
        let key = r.varint()?;
        match (key >> 3, key & 7) {
            (1, 2) => cid = Some(Cid::try_from(r.bytes()?).map_err(|_| DecodeError::BadCid)?),
            (2, 2) => name = r.bytes()?.to_vec(),
            (3, 0) => tsize = r.varint()?,
            (f, w) => return Err(DecodeError::UnexpectedField(f, w)),
        }
    }
    Ok(Link { cid: cid.ok_or(DecodeError::BadCid)?, name, tsize })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{cid_of, CidVersion, DAG_PB};

    #[test]
    fn empty_dir_bytes() {
        assert_eq!(encode(&[], Some(&[0x08, 0x01])), [0x0a, 0x02, 0x08, 0x01]);
    }

    #[test]
    fn planets_dir_matches_kubo() {
        // t0040: mars.txt "Hello Mars!\n", venus.txt "Hello Venus!\n" -> QmWSgS32...
        let leaf = |s: &str| crate::unixfs::file_leaf(s.as_bytes());
        let mars = leaf("Hello Mars!\n");
        let venus = leaf("Hello Venus!\n");
        let mut links = vec![
            Link {
                cid: cid_of(CidVersion::V0, DAG_PB, &venus),
                name: b"venus.txt".to_vec(),
                tsize: venus.len() as u64,
            },
            Link { cid: cid_of(CidVersion::V0, DAG_PB, &mars), name: b"mars.txt".to_vec(), tsize: mars.len() as u64 },
        ];
        sort_links(&mut links);
        let dir = encode(&links, Some(&crate::unixfs::directory()));
        assert_eq!(cid_of(CidVersion::V0, DAG_PB, &dir).to_string(), "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY");
        let node = decode(&dir).unwrap();
        assert_eq!(node.links, links);
        assert_eq!(node.data.as_deref(), Some(&[0x08, 0x01][..]));
        assert_eq!(dir.len(), encoded_len(links.iter().map(|l| (34, l.name.len(), l.tsize)), Some(2)));
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(decode(&[0x0a, 0x05, 0x01]).is_err());
        assert!(decode(&[0x1a, 0x00]).is_err());
    }
}
