//! The UnixFS `Data` protobuf (proto2, fields in number order, `blocksizes` unpacked),
//! as go-unixfs v0.2.2 writes it.

pub mod hamt;

use crate::varint;

/// A decoded UnixFS `Data` message (the fields carload reads).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data {
    /// The node type code (see [`crate::nodeview::Kind`]).
    pub kind: u64,
    /// Inline data.
    pub data: Option<Vec<u8>>,
    /// Total file bytes below this node.
    pub filesize: Option<u64>,
    /// File bytes under each child link.
    pub blocksizes: Vec<u64>,
}

fn bytes_field(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    varint::write(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// `Data` of a balanced file leaf holding `chunk` (`Type=File, Data, filesize`).
/// An empty chunk gives the empty-file node `08 02 18 00`.
pub fn file_leaf_data(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len() + 16);
    out.extend_from_slice(&[0x08, 0x02]);
    if !chunk.is_empty() {
        bytes_field(&mut out, 0x12, chunk);
    }
    out.push(0x18);
    varint::write(&mut out, chunk.len() as u64);
    out
}

/// A whole dag-pb leaf block for `chunk` (Data field wrapping [`file_leaf_data`]).
pub fn file_leaf(chunk: &[u8]) -> Vec<u8> {
    let data = file_leaf_data(chunk);
    crate::dagpb::encode(&[], Some(&data))
}

/// The bytes around a chunk in its [`file_leaf`] block: `block = head ‖ chunk ‖ tail`, so a
/// leaf can be hashed and written without copying the chunk.
pub fn file_leaf_parts(n: usize) -> (Vec<u8>, Vec<u8>) {
    if n == 0 {
        return (file_leaf(&[]), Vec::new());
    }
    let inner = 2 + 1 + varint::len(n as u64) + n + 1 + varint::len(n as u64);
    let mut head = vec![0x0a];
    varint::write(&mut head, inner as u64);
    head.extend_from_slice(&[0x08, 0x02, 0x12]);
    varint::write(&mut head, n as u64);
    let mut tail = vec![0x18];
    varint::write(&mut tail, n as u64);
    (head, tail)
}

/// Length of [`file_leaf`] for a chunk of `n` bytes, without building it.
pub fn file_leaf_len(n: u64) -> u64 {
    let inner = 2 + if n > 0 { 1 + varint::len(n) as u64 + n } else { 0 } + 1 + varint::len(n) as u64;
    1 + varint::len(inner) as u64 + inner
}

/// `Data` of an internal file node: `Type=File, filesize, blocksizes…`.
pub fn file_node_data(filesize: u64, blocksizes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + blocksizes.len() * 5);
    out.extend_from_slice(&[0x08, 0x02, 0x18]);
    varint::write(&mut out, filesize);
    for &b in blocksizes {
        out.push(0x20);
        varint::write(&mut out, b);
    }
    out
}

/// Length of [`file_node_data`] without building it.
pub fn file_node_data_len(filesize: u64, blocksizes: impl IntoIterator<Item = u64>) -> usize {
    3 + varint::len(filesize) + blocksizes.into_iter().map(|b| 1 + varint::len(b)).sum::<usize>()
}

/// `Data` of a basic directory: `08 01`.
pub fn directory() -> Vec<u8> {
    vec![0x08, 0x01]
}

/// `Data` of a symlink to `target`: `Type=Symlink, Data=target` (no filesize).
pub fn symlink(target: &[u8]) -> Vec<u8> {
    let mut out = vec![0x08, 0x04];
    bytes_field(&mut out, 0x12, target);
    out
}

/// Decodes a UnixFS `Data` message: what [`crate::nodeview::fs_data`] accepts, copied (unknown
/// fields skipped, a spec field with the wrong wire type refused).
pub fn decode(bytes: &[u8]) -> Option<Data> {
    let d = crate::nodeview::fs_data(bytes).ok()?;
    Some(Data {
        kind: d.kind.code(),
        data: d.data.map(<[u8]>::to_vec),
        filesize: d.filesize,
        blocksizes: d.blocksizes().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{cid_of, CidVersion, DAG_PB};

    #[test]
    fn hello_world_leaf() {
        let b = file_leaf(b"hello world\n");
        assert_eq!(cid_of(CidVersion::V0, DAG_PB, &b).to_string(), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
        assert_eq!(b.len() as u64, file_leaf_len(12));
    }

    #[test]
    fn leaf_parts_wrap_the_chunk() {
        for n in [0usize, 1, 127, 128, 300, 262144] {
            let chunk = vec![9u8; n];
            let (head, tail) = file_leaf_parts(n);
            assert_eq!([&head[..], &chunk, &tail].concat(), file_leaf(&chunk), "n={n}");
        }
    }

    #[test]
    fn empty_file() {
        let b = file_leaf(b"");
        assert_eq!(b, [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]);
        assert_eq!(cid_of(CidVersion::V0, DAG_PB, &b).to_string(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH");
        assert_eq!(file_leaf_len(0), 6);
    }

    #[test]
    fn leaf_len_matches_for_many_sizes() {
        for n in [1u64, 100, 127, 128, 16383, 16384, 262144] {
            assert_eq!(file_leaf(&vec![7u8; n as usize]).len() as u64, file_leaf_len(n), "n={n}");
        }
    }

    #[test]
    fn symlink_bytes() {
        let b = crate::dagpb::encode(&[], Some(&symlink(b"foo")));
        assert_eq!(b, [0x0a, 0x07, 0x08, 0x04, 0x12, 0x03, b'f', b'o', b'o']);
        let d = decode(&symlink(b"foo")).unwrap();
        assert_eq!(d.kind, 4);
        assert_eq!(d.data.as_deref(), Some(&b"foo"[..]));
    }

    #[test]
    fn node_data_round_trip() {
        let d = file_node_data(7, &[2, 2, 2, 1]);
        assert_eq!(d, [0x08, 0x02, 0x18, 0x07, 0x20, 0x02, 0x20, 0x02, 0x20, 0x02, 0x20, 0x01]);
        assert_eq!(d.len(), file_node_data_len(7, [2, 2, 2, 1]));
        let back = decode(&d).unwrap();
        assert_eq!(back.blocksizes, vec![2, 2, 2, 1]);
        assert_eq!(back.filesize, Some(7));
    }
}
