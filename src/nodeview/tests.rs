//! The views against the decoders, the UnixFS field rules, and the file-size checks.

use super::*;
use crate::block::{cid_of, Block, CidVersion, DAG_PB, RAW};
use crate::dagpb::{decode, encode, Link};

/// A protobuf key.
fn key(field: u64, wire: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint::write(&mut out, field << 3 | wire);
    out
}

/// A length-delimited field.
fn bytes_field(field: u64, b: &[u8]) -> Vec<u8> {
    let mut out = key(field, 2);
    varint::write(&mut out, b.len() as u64);
    out.extend_from_slice(b);
    out
}

/// A varint field.
fn varint_field(field: u64, v: u64) -> Vec<u8> {
    let mut out = key(field, 0);
    varint::write(&mut out, v);
    out
}

#[test]
fn views_read_what_the_decoders_read() {
    let leaf = Block::new(CidVersion::V0, DAG_PB, vec![1, 2]);
    let links =
        vec![Link { cid: leaf.cid, name: b"a".to_vec(), tsize: 7 }, Link { cid: leaf.cid, name: Vec::new(), tsize: 0 }];
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
    assert_eq!((d.kind, d.filesize, d.data), (Kind::of(want.kind), want.filesize, want.data.as_deref()));
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
        assert!(fs_data(bad).is_err() && crate::unixfs::decode(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn a_file_node_reads_as_the_importer_writes_it() {
    let leaf = cid_of(CidVersion::V1, RAW, b"abc");
    let links = vec![Link { cid: leaf, name: vec![], tsize: 3 }, Link { cid: leaf, name: vec![], tsize: 3 }];
    let block = encode(&links, Some(&crate::unixfs::file_node_data(6, &[3, 3])));
    let n = unixfs_node(&block).unwrap();
    assert_eq!((n.kind(), n.pb.link_count, n.fs.blocksize_count, n.fs.filesize), (Kind::File, 2, 2, Some(6)));
    assert_eq!(n.fs.blocksizes().collect::<Vec<_>>(), [3, 3]);
    assert_eq!(n.file_size(), Ok(6));
    let mut at = 0;
    assert_eq!(next_link(&block, &mut at).unwrap().unwrap().cid, leaf);
    assert_eq!(next_link(&block, &mut at).unwrap().unwrap().tsize, 3);
    assert!(next_link(&block, &mut at).is_none());
    assert_eq!(n.links().count(), 2);
}

#[test]
fn packed_blocksizes_count_too() {
    // Type=File, filesize 5, blocksizes packed [2, 3].
    let data = [0x08, 0x02, 0x18, 0x05, 0x22, 0x02, 0x02, 0x03];
    let block = encode(&[], Some(&data));
    let n = unixfs_node(&block).unwrap();
    assert_eq!(n.fs.blocksizes().collect::<Vec<_>>(), [2, 3]);
    assert_eq!(n.file_size(), Err(NodeError::Blocksizes { links: 0, blocksizes: 2 }));
    assert!(n.file_size().unwrap_err().to_string().contains("0 links but 2 blocksizes"));
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bad in [&[0x0a, 0x05, 0x01][..], &[0x1a, 0x00], &[0x12, 0x02, 0x0a, 0x09], &[0x0a, 0x00], &[0xff; 11]] {
        assert!(unixfs_node(bad).is_err(), "{bad:?}");
    }
    // A cursor over an unchecked block gives the error once, then stops.
    let mut at = 0;
    assert!(next_link(&[0x12, 0x05, 0x0a], &mut at).unwrap().is_err());
    assert!(next_link(&[0x12, 0x05, 0x0a], &mut at).is_none());
}

/// Fields the UnixFS spec does not define are skipped, whatever their (skippable) wire type,
/// by the view and by `unixfs::decode` alike; the block sizes around them still read in order.
#[test]
fn unknown_unixfs_fields_are_skipped() {
    let mut data = [varint_field(1, 2), varint_field(9, 77), varint_field(4, 3)].concat();
    data.extend(bytes_field(100, b"later version"));
    data.extend([key(10, 1), vec![0; 8]].concat()); // fixed64
    data.extend([key(11, 5), vec![0; 4]].concat()); // fixed32
    data.extend(bytes_field(4, &[4, 5]));
    data.extend(varint_field(3, 12));
    data.extend(varint_field(7, 0o644)); // mode
    data.extend(bytes_field(8, &[0x08, 0x01])); // mtime
    data.extend(varint_field((1 << 29) - 1, 1)); // the largest field number
    let d = fs_data(&data).unwrap();
    assert_eq!((d.kind, d.filesize, d.blocksize_count), (Kind::File, Some(12), 3));
    assert_eq!(d.blocksizes().collect::<Vec<_>>(), [3, 4, 5]);
    let want = crate::unixfs::decode(&data).unwrap();
    assert_eq!((want.kind, want.filesize, want.blocksizes), (2, Some(12), vec![3, 4, 5]));
}

/// A spec field with another wire type than its own, a group, wire types 6 and 7, field number
/// 0 and numbers beyond protobuf's are refused, by the view and by `unixfs::decode` alike.
#[test]
fn unixfs_fields_of_the_wrong_wire_type_are_refused() {
    let ty = varint_field(1, 2);
    let cases: Vec<(Vec<u8>, NodeError)> = vec![
        (bytes_field(1, &[2]), NodeError::WrongWireType { field: 1, wire: 2 }),
        ([ty.clone(), varint_field(2, 5)].concat(), NodeError::WrongWireType { field: 2, wire: 0 }),
        ([ty.clone(), bytes_field(3, &[5])].concat(), NodeError::WrongWireType { field: 3, wire: 2 }),
        ([ty.clone(), key(4, 1), vec![0; 8]].concat(), NodeError::WrongWireType { field: 4, wire: 1 }),
        ([ty.clone(), key(4, 5), vec![0; 4]].concat(), NodeError::WrongWireType { field: 4, wire: 5 }),
        ([ty.clone(), bytes_field(5, &[])].concat(), NodeError::WrongWireType { field: 5, wire: 2 }),
        ([ty.clone(), key(6, 5), vec![0; 4]].concat(), NodeError::WrongWireType { field: 6, wire: 5 }),
        ([ty.clone(), bytes_field(7, &[1])].concat(), NodeError::WrongWireType { field: 7, wire: 2 }),
        ([ty.clone(), varint_field(8, 1)].concat(), NodeError::WrongWireType { field: 8, wire: 0 }),
        ([ty.clone(), key(9, 3), key(9, 4)].concat(), NodeError::Unreadable { field: 9, wire: 3 }),
        ([ty.clone(), key(9, 6)].concat(), NodeError::Unreadable { field: 9, wire: 6 }),
        ([ty.clone(), varint_field(0, 1)].concat(), NodeError::Unreadable { field: 0, wire: 0 }),
        ([ty.clone(), varint_field(1 << 29, 1)].concat(), NodeError::Unreadable { field: 1 << 29, wire: 0 }),
        ([ty.clone(), key(9, 1), vec![0; 7]].concat(), NodeError::FsTruncated),
        (varint_field(3, 1), NodeError::NoType),
    ];
    for (data, want) in cases {
        assert_eq!(fs_data(&data).err(), Some(want.clone()), "{data:02x?}");
        assert!(crate::unixfs::decode(&data).is_none(), "{data:02x?}: {want}");
        let block = encode(&[], Some(&data));
        assert_eq!(unixfs_node(&block).err(), Some(want), "{data:02x?}");
    }
}

/// A field given twice keeps its last value in UnixFS (protobuf's rule, which every reference
/// decoder follows); in dag-pb it is refused (go-codec-dagpb, `@ipld/dag-pb`).
#[test]
fn repeated_fields() {
    let data = [varint_field(1, 1), varint_field(1, 2), bytes_field(2, b"a"), bytes_field(2, b"bc")].concat();
    let d = fs_data(&data).unwrap();
    assert_eq!((d.kind, d.data), (Kind::File, Some(&b"bc"[..])));

    let cid = cid_of(CidVersion::V1, RAW, b"x").to_bytes();
    let dir = crate::unixfs::directory();
    let link = |fields: &[Vec<u8>]| bytes_field(2, &fields.concat());
    let (hash, name, tsize) = (bytes_field(1, &cid), bytes_field(2, b"n"), varint_field(3, 1));
    for (block, what) in [
        ([bytes_field(1, &dir), bytes_field(1, &dir)].concat(), "Data"),
        ([link(&[hash.clone(), hash.clone()]), bytes_field(1, &dir)].concat(), "Hash"),
        ([link(&[hash.clone(), name.clone(), name.clone()]), bytes_field(1, &dir)].concat(), "Name"),
        ([link(&[hash.clone(), tsize.clone(), tsize.clone()]), bytes_field(1, &dir)].concat(), "Tsize"),
    ] {
        assert_eq!(pb_node(&block).err(), Some(NodeError::Repeated(what)), "{what}");
        // The decoder of carload's own blocks keeps the last (documented above).
        assert!(decode(&block).is_ok(), "{what}");
    }
    // Field order is not checked: Data before Links, Tsize before Hash.
    let block = [bytes_field(1, &dir), link(&[tsize, name, hash])].concat();
    assert_eq!(pb_node(&block).unwrap().link_count, 1);
    let mut at = 0;
    assert!(next_link(&block, &mut at).unwrap().is_ok());
    assert_eq!(pb_node(&[link(&[])].concat()).err(), Some(NodeError::NoCid));
    assert_eq!(unixfs_node(&[link(&[bytes_field(1, &cid)])].concat()).err(), Some(NodeError::NoData));
}

#[test]
fn file_sizes_add_up_as_the_exporter_checks_them() {
    let leaf = cid_of(CidVersion::V1, RAW, b"abc");
    let node = |n: usize, data: Vec<u8>| {
        let links: Vec<Link> = (0..n).map(|_| Link { cid: leaf, name: vec![], tsize: 3 }).collect();
        encode(&links, Some(&data))
    };
    let with = |inline: &[u8], filesize: Option<u64>, sizes: &[u64]| {
        let mut d = varint_field(1, 2);
        if !inline.is_empty() {
            d.extend(bytes_field(2, inline));
        }
        if let Some(s) = filesize {
            d.extend(varint_field(3, s));
        }
        for &s in sizes {
            d.extend(varint_field(4, s));
        }
        d
    };
    let size = |block: &[u8]| unixfs_node(block).unwrap().file_size();
    assert_eq!(size(&node(0, with(b"abc", None, &[]))), Ok(3));
    assert_eq!(size(&node(2, with(b"ab", Some(8), &[3, 3]))), Ok(8));
    assert_eq!(
        size(&node(0, with(b"abc", Some(1_000_000), &[]))),
        Err(NodeError::Filesize { filesize: 1_000_000, data: 3, sum: 3 })
    );
    assert_eq!(size(&node(2, with(b"", None, &[3]))), Err(NodeError::Blocksizes { links: 2, blocksizes: 1 }));
    assert_eq!(size(&node(2, with(b"a", None, &[u64::MAX, 0]))), Err(NodeError::Overflow));
    let err = size(&node(0, with(b"abc", Some(9), &[]))).unwrap_err().to_string();
    assert_eq!(err, "filesize 9 but data (3) plus blocksizes make 3");
}

#[test]
fn kinds_are_described_for_messages() {
    assert_eq!(Kind::of(1).describe(), "folder");
    assert_eq!(Kind::of(5).describe(), "HAMT-sharded folder");
    assert_eq!(Kind::of(99).describe(), "UnixFS type 99");
    assert!(Kind::of(0).is_file() && Kind::of(2).is_file() && !Kind::of(4).is_file());
    for code in [0, 1, 2, 3, 4, 5, 6, 99, u64::MAX] {
        assert_eq!(Kind::of(code).code(), code);
    }
}
