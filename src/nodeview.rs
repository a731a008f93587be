//! Borrowed views of dag-pb nodes and their UnixFS data: checked once, then read in place, with no
//! copy of the data and no allocation per link or block size. `verify` reads every block of a CAR
//! through them, so a 256 KiB leaf costs no copy and a hostile node with a million links costs no
//! list of a million links.
//!
//! They accept exactly what [`crate::dagpb::decode`] and [`crate::unixfs::decode`] accept.

use crate::dagpb::DecodeError;
use crate::varint;
use cid::Cid;

/// A protobuf field: its number and its value (a varint, or the bytes of a length-delimited one).
#[derive(Clone, Copy)]
enum Field<'a> {
    Varint(u64, u64),
    Bytes(u64, &'a [u8]),
}

/// The fields of a protobuf message, in order; `Err` on a wire type other than varint and
/// length-delimited, or on a truncated field.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, (u64, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let truncated = Some(Err((0, 0)));
        let Some((key, n)) = varint::read(self.0) else { return truncated };
        self.0 = &self.0[n..];
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let Some((v, n)) = varint::read(self.0) else { return truncated };
                self.0 = &self.0[n..];
                Some(Ok(Field::Varint(number, v)))
            }
            2 => {
                let Some((len, n)) = varint::read(self.0) else { return truncated };
                let rest = &self.0[n..];
                if len > rest.len() as u64 {
                    return truncated;
                }
                let (bytes, rest) = rest.split_at(len as usize);
                self.0 = rest;
                Some(Ok(Field::Bytes(number, bytes)))
            }
            _ => {
                self.0 = &[];
                Some(Err((number, wire)))
            }
        }
    }
}

/// A dag-pb node, checked: every field well formed, every link with a valid CID.
#[derive(Debug, Clone, Copy)]
pub struct PbNode<'a> {
    bytes: &'a [u8],
    /// The Data field, if present (the last one, as the decoder keeps).
    pub data: Option<&'a [u8]>,
    /// Number of links.
    pub link_count: usize,
}

/// One link of a [`PbNode`].
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
pub fn pb_node(bytes: &[u8]) -> Result<PbNode<'_>, DecodeError> {
    let mut node = PbNode { bytes, data: None, link_count: 0 };
    for field in Fields(bytes) {
        match field {
            Ok(Field::Bytes(1, d)) => node.data = Some(d),
            Ok(Field::Bytes(2, link)) => {
                pb_link(link)?;
                node.link_count += 1;
            }
            Ok(Field::Varint(f, _)) => return Err(DecodeError::UnexpectedField(f, 0)),
            Ok(Field::Bytes(f, _)) => return Err(DecodeError::UnexpectedField(f, 2)),
            Err((0, 0)) => return Err(DecodeError::Truncated),
            Err((f, w)) => return Err(DecodeError::UnexpectedField(f, w)),
        }
    }
    Ok(node)
}

fn pb_link(bytes: &[u8]) -> Result<PbLink<'_>, DecodeError> {
    let (mut cid, mut name, mut tsize) = (None, &[][..], 0);
    for field in Fields(bytes) {
        match field {
            Ok(Field::Bytes(1, c)) => cid = Some(Cid::try_from(c).map_err(|_| DecodeError::BadCid)?),
            Ok(Field::Bytes(2, n)) => name = n,
            Ok(Field::Varint(3, t)) => tsize = t,
            Ok(Field::Varint(f, _)) => return Err(DecodeError::UnexpectedField(f, 0)),
            Ok(Field::Bytes(f, _)) => return Err(DecodeError::UnexpectedField(f, 2)),
            Err((0, 0)) => return Err(DecodeError::Truncated),
            Err((f, w)) => return Err(DecodeError::UnexpectedField(f, w)),
        }
    }
    Ok(PbLink { cid: cid.ok_or(DecodeError::BadCid)?, name, tsize })
}

impl<'a> PbNode<'a> {
    /// The links in stored order.
    pub fn links(&self) -> impl Iterator<Item = PbLink<'a>> + 'a {
        Fields(self.bytes).filter_map(|f| match f {
            Ok(Field::Bytes(2, link)) => pb_link(link).ok(),
            _ => None,
        })
    }
}

/// UnixFS `Data`, checked: the fields [`crate::unixfs::decode`] accepts, a type present.
#[derive(Debug, Clone, Copy)]
pub struct FsData<'a> {
    bytes: &'a [u8],
    /// The type code (0 Raw, 1 Directory, 2 File, 3 Metadata, 4 Symlink, 5 HAMTShard).
    pub kind: u64,
    /// Inline data.
    pub data: Option<&'a [u8]>,
    /// The `filesize` field.
    pub filesize: Option<u64>,
    /// Number of block sizes.
    pub blocksize_count: usize,
}

/// Checks UnixFS `Data` and returns a view of it (`None` where `unixfs::decode` fails).
pub fn fs_data(bytes: &[u8]) -> Option<FsData<'_>> {
    let mut d = FsData { bytes, kind: 0, data: None, filesize: None, blocksize_count: 0 };
    let mut have_type = false;
    for field in Fields(bytes) {
        match field.ok()? {
            Field::Varint(1, v) => {
                d.kind = v;
                have_type = true;
            }
            Field::Varint(3, v) => d.filesize = Some(v),
            Field::Varint(4, _) => d.blocksize_count += 1,
            Field::Varint(5..=7, _) => {}
            Field::Bytes(2, b) => d.data = Some(b),
            Field::Bytes(4, packed) => d.blocksize_count += packed_count(packed)?,
            Field::Bytes(8, _) => {}
            _ => return None,
        }
    }
    have_type.then_some(d)
}

fn packed_count(mut packed: &[u8]) -> Option<usize> {
    let mut n = 0;
    while !packed.is_empty() {
        let (_, used) = varint::read(packed)?;
        packed = &packed[used..];
        n += 1;
    }
    Some(n)
}

impl FsData<'_> {
    /// The block sizes in order (unpacked and packed fields alike).
    pub fn blocksizes(&self) -> impl Iterator<Item = u64> + '_ {
        Fields(self.bytes).flat_map(|f| {
            let (single, packed) = match f {
                Ok(Field::Varint(4, v)) => (Some(v), &[][..]),
                Ok(Field::Bytes(4, p)) => (None, p),
                _ => (None, &[][..]),
            };
            single.into_iter().chain(Packed(packed))
        })
    }
}

struct Packed<'a>(&'a [u8]);

impl Iterator for Packed<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let (v, n) = varint::read(self.0)?;
        self.0 = &self.0[n..];
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dagpb::{decode, encode, Link};

    #[test]
    fn views_read_what_the_decoders_read() {
        let leaf = crate::block::Block::new(crate::block::CidVersion::V0, crate::block::DAG_PB, vec![1, 2]);
        let links = vec![
            Link { cid: leaf.cid, name: b"a".to_vec(), tsize: 7 },
            Link { cid: leaf.cid, name: Vec::new(), tsize: 0 },
        ];
        let fs = crate::unixfs::file_node_data(10, &[3, 7]);
        let bytes = encode(&links, Some(&fs));
        let view = pb_node(&bytes).unwrap();
        let node = decode(&bytes).unwrap();
        assert_eq!(view.link_count, 2);
        assert_eq!(view.data, node.data.as_deref());
        let got: Vec<Link> = view.links().map(|l| Link { cid: l.cid, name: l.name.to_vec(), tsize: l.tsize }).collect();
        assert_eq!(got, node.links);
        let d = fs_data(view.data.unwrap()).unwrap();
        let want = crate::unixfs::decode(view.data.unwrap()).unwrap();
        assert_eq!((d.kind, d.filesize, d.data), (want.kind, want.filesize, want.data.as_deref()));
        assert_eq!(d.blocksizes().collect::<Vec<_>>(), want.blocksizes);
        assert_eq!(d.blocksize_count, 2);
        // Packed block sizes, as some writers emit them.
        let packed = [0x08, 0x02, 0x18, 0x0a, 0x22, 0x02, 0x03, 0x07];
        let d = fs_data(&packed).unwrap();
        assert_eq!(d.blocksizes().collect::<Vec<_>>(), vec![3, 7]);
        assert_eq!(d.blocksize_count, 2);
        assert_eq!(crate::unixfs::decode(&packed).unwrap().blocksizes, vec![3, 7]);
    }

    #[test]
    fn views_refuse_what_the_decoders_refuse() {
        for bad in [&[0x0a, 0x05, 0x01][..], &[0x1a, 0x00], &[0x12, 0x02, 0x0a, 0x00], &[0x12, 0x00], &[0x0d]] {
            assert_eq!(pb_node(bad).is_err(), decode(bad).is_err(), "{bad:?}");
            assert!(pb_node(bad).is_err(), "{bad:?}");
        }
        for bad in [&[0x10, 0x01][..], &[0x12, 0x01], &[], &[0x08], &[0x22, 0x01, 0x80]] {
            assert!(fs_data(bad).is_none() && crate::unixfs::decode(bad).is_none(), "{bad:?}");
        }
    }
}
