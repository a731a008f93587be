//! CommD (unsealed sector CID): the vectors of go-commp-utils, Lotus, rust-fil-proofs and
//! Forest (FVM), commP of whole sector images, and the `carload commd` command.

use assert_cmd::Command;
use carload::commp::commd::{aggregate, commd, layout, parse_piece, CommdError, SectorPiece, Slot};
use carload::commp::{commp_of_bytes, unpadded_piece_size, PieceInfo};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn unhex(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    v.try_into().unwrap()
}

/// The node hash, written here from its definition (SHA-256, top two bits of byte 31 cleared),
/// independent of the library's kernels.
fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(l);
    h.update(r);
    let mut d: [u8; 32] = h.finalize().into();
    d[31] &= 0x3f;
    d
}

fn v1(cid: &str, size: u64) -> SectorPiece {
    parse_piece(cid, Some(size)).unwrap()
}

fn cid(p: &SectorPiece) -> String {
    p.cid_v1().to_string()
}

fn sizes(pieces: &[SectorPiece]) -> Vec<(String, u64)> {
    pieces.iter().map(|p| (cid(p), p.padded_size)).collect()
}

/// Lotus's zero piece commitments, `zerocomm.PieceComms` (filecoin-project/lotus
/// `zerocomm/zerocomm.go` @ d244749, later moved to go-commp-utils `zerocomm`): entry `i` is
/// the root of `128·2^i` zero bytes (padded), i.e. of a zero piece of height `i + 2`.
const ZEROCOMM: [&str; 35] = [
    "3731bb99ac689f66eef5973e4a94da188f4ddcae580724fc6f3fd60dfd488333",
    "642a607ef886b004bf2c1978463ae1d4693ac0f410eb2d1b7a47fe205e5e750f",
    "57a2381a28652bf47f6bef7aca679be4aede5871ab5cf3eb2c08114488cb8526",
    "1f7ac9595510e09ea41c460b176430bb322cd6fb412ec57cb17d989a4310372f",
    "fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833",
    "08c47b38ee13bc43f41b915c0eed9911a26086b3ed62401bf9d58b8d19dff624",
    "b2e47bfb11facd941f62af5c750f3ea5cc4df517d5c4f16db2b4d77baec1a32f",
    "f9226160c8f927bfdcc418cdf203493146008eaefb7d02194d5e548189005108",
    "2c1a964bb90b59ebfe0f6da29ad65ae3e417724a8f7c11745a40cac1e5e74011",
    "fee378cef16404b199ede0b13e11b624ff9d784fbbed878d83297e795e024f02",
    "8e9e2403fa884cf6237f60df25f83ee40dca9ed879eb6f6352d15084f5ad0d3f",
    "752d9693fa167524395476e317a98580f00947afb7a30540d625a9291cc12a07",
    "7022f60f7ef6adfa17117a52619e30cea82c68075adf1c667786ec506eef2d19",
    "d99887b973573a96e11393645236c17b1f4c7034d723c7a99f709bb4da61162b",
    "d0b530dbb0b4f25c5d2f2a28dfee808b53412a02931f18c499f5a254086b1326",
    "84c0421ba0685a01bf795a2344064fe424bd52a9d24377b394ff4c4b4568e811",
    "65f29e5d98d246c38b388cfc06db1f6b021303c5a289000bdce832a9c3ec421c",
    "a2247508285850965b7e334b3127b0c042b1d046dc54402137627cd8799ce13a",
    "dafdab6da9364453c26d33726b9fefe343be8f81649ec009aad3faff50617508",
    "d941d5e0d6314a995c33ffbd4fbe69118d73d4e5fd2cd31f0f7c86ebdd14e706",
    "514c435c3d04d349a5365fbd59ffc713629111785991c1a3c53af22079741a2f",
    "ad06853969d37d34ff08e09f56930a4ad19a89def60cbfee7e1d3381c1e71c37",
    "39560e7b13a93b07a243fd2720ffa7cb3e1d2e505ab3629e79f46313512cda06",
    "ccc3c012f5b05e811a2bbfdd0f6833b84275b47bf229c0052a82484f3c1a5b3d",
    "7df29b69773199e8f2b40b77919d048509eed768e2c7297b1f1437034fc3c62c",
    "66ce05a3667552cf45c02bcc4e8392919bdeac35de2ff56271848e9f7b675107",
    "d8610218425ab5e95b1ca6239d29a2e420d706a96f373e2f9c9a91d759d19b01",
    "6d364b1ef846441a5a4a68862314acc0a46f016717e53443e839eedf83c2853c",
    "077e5fde35c50a9303a55009e3498a4ebedff39c42b710b730d8ec7ac7afa63e",
    "e64005a6bfe3777953b8ad6ef93f0fca1049b2041654f2a411f7702799cece02",
    "259d3d6b1f4d876d1185e1123af6f5501af0f67cf15b5216255b7b178d12051d",
    "3f9a4d411da4ef1b36f35ff0a195ae392ab23fee7967b7c41b03d1613fc29239",
    "fe4ef328c61aa39cfdb2484eaa32a151b1fe3dfd1f96dd8c9711fd86d6c58113",
    "f55d68900e2d8381eccb8164cb9976f24b2de0dd61a31b97ce6eb23850d5e819",
    "aaaa8c4cb40aacee1e02dc65424b2a6c8e99f803b72f7929c4101d7fae6bff32",
];

#[test]
fn zero_pieces_are_lotus_zero_commitments() {
    for (i, want) in ZEROCOMM.iter().enumerate() {
        let size = 128u64 << i;
        assert_eq!(SectorPiece::zero(size).root, unhex(want), "zero piece of {size} bytes");
    }
}

/// The empty sector's CommD for 2 KiB, 512 MiB, 32 GiB and 64 GiB sectors: the zero
/// commitments above; the CIDs: 2 KiB from rust-fil-proofs `test_compute_comm_d_empty` (bytes
/// `fc7e…f833`) and Lotus `chain/proofs/proofs_test.go` "zero", 512 MiB from Forest
/// `test_compute_unsealed_sector_cid_umpty_pieces` (ChainSafe/forest
/// `utils/forest_shim/tests/test_sector.rs`, the FVM's `compute_unsealed_sector_cid`), 32/64 GiB
/// the CID v1 of Lotus's zerocomm entries 28 and 29 (encoded with Python's base32, not carload).
#[test]
fn empty_sectors() {
    let cases = [
        (2 * KIB, ZEROCOMM[4], "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy"),
        (512 * MIB, ZEROCOMM[22], "baga6ea4seaqdsvqopmj2soyhujb72jza76t4wpq5fzifvm3ctz47iyytkewnubq"),
        (32 * GIB, ZEROCOMM[28], "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"),
        (64 * GIB, ZEROCOMM[29], "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq"),
    ];
    for (sector, root, want) in cases {
        let d = commd(&[], sector).unwrap();
        assert_eq!(d.root, unhex(root), "{sector}");
        assert_eq!(cid(&d), want, "{sector}");
        assert_eq!(d.padded_size, sector);
    }
    // rust-fil-proofs `test_compute_comm_d_empty`: a 128-byte sector.
    assert_eq!(
        commd(&[], 128).unwrap().root,
        unhex("3731bb99ac689f66eef5973e4a94da188f4ddcae580724fc6f3fd60dfd488333")
    );
}

/// go-commp-utils `commd_test.go` `TestGenerateUnsealedCID` (v2.1.0, also `nonffi/commd_test.go`):
/// live 32 GiB sector f01392893:139074 (`lotus-miner sectors status`), its ten deals in order.
const SECTOR_139074: [(&str, u64); 10] = [
    ("baga6ea4seaqknzm22isnhsxt2s4dnw45kfywmhenngqq3nc7jvecakoca6ksyhy", 256 * MIB),
    ("baga6ea4seaqnq6o5wuewdpviyoafno4rdpqnokz6ghvg2iyeyfbqxgcwdlj2egi", GIB),
    ("baga6ea4seaqpixk4ifbkzato3huzycj6ty6gllqwanhdpsvxikawyl5bg2h44mq", 512 * MIB),
    ("baga6ea4seaqaxwe5dy6nt3ko5tngtmzvpqxqikw5mdwfjqgaxfwtzenc6bgzajq", 512 * MIB),
    ("baga6ea4seaqpy33nbesa4d6ot2ygeuy43y4t7amc4izt52mlotqenwcmn2kyaai", GIB),
    ("baga6ea4seaqphvv4x2s2v7ykgc3ugs2kkltbdeg7icxstklkrgqvv72m2v3i2aa", 256 * MIB),
    ("baga6ea4seaqf5u55znk6jwhdsrhe37emzhmehiyvjxpsww274f6fiy3h4yctady", 512 * MIB),
    ("baga6ea4seaqa3qbabsbmvk5er6rhsjzt74beplzgulthamm22jue4zgqcuszofi", GIB),
    ("baga6ea4seaqiekvf623muj6jpxg6vsqaikyw3r4ob5u7363z7zcaixqvfqsc2ji", 256 * MIB),
    ("baga6ea4seaqhsewv65z2d4m5o4vo65vl5o6z4bcegdvgnusvlt7rao44gro36pi", 512 * MIB),
];
const COMMD_139074: &str = "baga6ea4seaqiw3gbmstmexb7sqwkc5r23o3i7zcyx5kr76pfobpykes3af62kca";

#[test]
fn live_sector_with_gaps() {
    let pieces: Vec<SectorPiece> = SECTOR_139074.iter().map(|&(c, s)| v1(c, s)).collect();
    // The command's way: the pieces alone, filled to the sector.
    assert_eq!(cid(&commd(&pieces, 32 * GIB).unwrap()), COMMD_139074);
    // The test's way: GenerateUnsealedCID with zero pieces of 8 and 16 GiB appended by hand.
    let mut filled = pieces.clone();
    filled.extend([SectorPiece::zero(8 * GIB), SectorPiece::zero(16 * GIB)]);
    let tree = aggregate(&filled).unwrap().unwrap();
    assert_eq!((cid(&tree), tree.padded_size), (COMMD_139074.to_string(), 32 * GIB));
    // Without filling, go-commp-utils' GenerateUnsealedCID returns the smallest tree holding the
    // pieces (value from the shared reference's Python model, data-segments.md §6 V1).
    let tree = aggregate(&pieces).unwrap().unwrap();
    assert_eq!(
        (cid(&tree), tree.padded_size),
        ("baga6ea4seaqez5c7zwfn6rqlhmsjeukdlrhs5ubvh2qlevfjwv3dljnaynifqoi".to_string(), 8 * GIB)
    );
    // The fillers are the sector's on-chain deal list's zeros:
    // [3755444 0 0 3755443 3755442 3755608 3755679 3755680 0 3755754 3755803 3755883 0 3755882 0 0 0].
    let slots = layout(&sizes(&pieces), 32 * GIB).unwrap();
    let pattern: String = slots.iter().map(|s| if matches!(s, Slot::Piece { .. }) { 'P' } else { '0' }).collect();
    assert_eq!(pattern, "P00PPPPP0PPP0P000");
    let zeros: Vec<u64> = slots.iter().filter(|s| matches!(s, Slot::Zero { .. })).map(Slot::size).collect();
    assert_eq!(zeros, [256 * MIB, 512 * MIB, 256 * MIB, 256 * MIB, GIB, 8 * GIB, 16 * GIB]);
}

/// Forest `test_compute_unsealed_sector_cid` (FVM `compute_unsealed_sector_cid`): a 1 KiB piece
/// whose root is the SHA-256 of a test string, in a 512 MiB sector; go-commp-utils `nonffi`
/// (no filling) returns the piece CID itself.
#[test]
fn forest_single_piece() {
    let root: [u8; 32] = Sha256::digest(b"test_compute_unsealed_sector_cid").into();
    let piece = SectorPiece { root, padded_size: 1024 };
    assert_eq!(cid(&piece), "baga6ea4seaqjyk7pl3orbzxailtwmfjmhc43xgqqp22gde4hdyunupettpjqmai");
    assert_eq!(
        cid(&commd(&[piece], 512 * MIB).unwrap()),
        "baga6ea4seaqoebmodxmpe6nrd63rqey67bhby43u4mxyx2v2vpxnfv7zxdr6uaa"
    );
    assert_eq!(aggregate(&[piece]).unwrap(), Some(piece));
}

/// rust-fil-proofs `filecoin-proofs/tests/pieces.rs` `test_verify_padded_pieces`: the expected
/// CommD is built there layer by layer from the padded layout, as here.
#[test]
fn rust_fil_proofs_padded_pieces() {
    let (a, b, c, d) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
    let pieces = [
        SectorPiece { root: a, padded_size: 128 },
        SectorPiece { root: b, padded_size: 512 },
        SectorPiece { root: c, padded_size: 256 },
        SectorPiece { root: d, padded_size: 1024 },
    ];
    let p = unhex(ZEROCOMM[0]);
    let layer1 = [node(&a, &p), node(&p, &p), b, c, node(&p, &p), node(&p, &p), node(&p, &p), d];
    let layer1_tail = [node(&p, &p); 4];
    let layer2 = [node(&layer1[0], &layer1[1]), layer1[2], node(&layer1[3], &layer1[4]), node(&layer1[5], &layer1[6])];
    let layer2_tail = [layer1[7], node(&layer1_tail[0], &layer1_tail[1]), node(&layer1_tail[2], &layer1_tail[3])];
    let layer3 = [
        node(&layer2[0], &layer2[1]),
        node(&layer2[2], &layer2[3]),
        layer2_tail[0],
        node(&layer2_tail[1], &layer2_tail[2]),
    ];
    let want = node(&node(&layer3[0], &layer3[1]), &node(&layer3[2], &layer3[3]));
    let got = commd(&pieces, 32 * 128).unwrap();
    assert_eq!(got.root, want);
    // The same value as data-segments.md §6 V3 records.
    assert_eq!(got.root, unhex("7f433f5ce16e1126a6323b89e086b8b69ee3c181bee87a7be40df7eb11b57d0d"));
    assert_eq!(cid(&got), "baga6ea4seaqh6qz7ltqw4ejguyzdxcpaq24lnhxdyga352d2ppsa357lcg2x2di");
}

/// rust-fil-proofs `test_verify_simple_pieces`: every split of one 512-byte tree gives its root.
#[test]
fn rust_fil_proofs_simple_pieces() {
    let (a, b, c, d) = ([0x11u8; 32], [0x22u8; 32], [0x33u8; 32], [0x04u8; 32]);
    let (e, f) = (node(&a, &b), node(&c, &d));
    let g = node(&e, &f);
    let p = |root, padded_size| SectorPiece { root, padded_size };
    for split in [
        vec![p(a, 128), p(b, 128), p(c, 128), p(d, 128)],
        vec![p(e, 256), p(c, 128), p(d, 128)],
        vec![p(e, 256), p(f, 256)],
        vec![p(a, 128), p(b, 128), p(f, 256)],
        vec![p(g, 512)],
    ] {
        assert_eq!(commd(&split, 512).unwrap().root, g, "{split:?}");
    }
}

/// A piece of `2032 / den` bytes of value `byte` (Lotus's `barr`).
fn barr(byte: u8, den: usize) -> Vec<u8> {
    vec![byte; 2032 / den]
}

/// Pieces' payloads, the sector image's parts, and the expected CID ("" where the reference
/// gives none).
type LotusCase = (Vec<Vec<u8>>, Vec<Vec<u8>>, &'static str);

/// Lotus `chain/proofs/proofs_test.go` `TestGenerateUnsealedCID` (2 KiB sector): CommD of the
/// pieces equals commP of the equivalent 2032-byte sector image; the literal CIDs are from the
/// shared reference (data-segments.md §6 V4, its Python model).
#[test]
fn lotus_two_kib_sectors() {
    let cases: Vec<LotusCase> = vec![
        (vec![], vec![barr(0, 1)], "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy"),
        (vec![barr(1, 1)], vec![barr(1, 1)], "baga6ea4seaqcipv6nf4zjeqvvurex7klupy5latkgrqmarnam5q6djicbbtkalq"),
        (
            vec![barr(1, 2)],
            vec![barr(1, 2), barr(0, 2)],
            "baga6ea4seaqaz33sx34mkapxm77df5vn22xnroqgq752yb2ufaycfxebvqj32hq",
        ),
        (
            vec![barr(1, 4)],
            vec![barr(1, 4), barr(0, 4), barr(0, 2)],
            "baga6ea4seaqonvekwggtxdsbk3fnpqdy2kznqnoml2ntx5pezsg55djlatwtqeq",
        ),
        (
            vec![barr(1, 2), barr(2, 4)],
            vec![barr(1, 2), barr(2, 4), barr(0, 4)],
            "baga6ea4seaqccpu3nhvmqkuu4yaqbl7yumqkijtlmmbswt6dt7hmw5vasfzx2ii",
        ),
        (
            vec![barr(1, 4), barr(2, 2)],
            vec![barr(1, 4), barr(0, 4), barr(2, 2)],
            "baga6ea4seaqgjbonxb76ykpvts63n4jbyrv7tqxpsju74njrrpyeml26gi5uakq",
        ),
        (vec![barr(1, 8), barr(2, 4)], vec![barr(1, 8), barr(0, 8), barr(2, 4), barr(0, 2)], ""),
        (vec![barr(1, 4), barr(2, 8)], vec![barr(1, 4), barr(2, 8), barr(0, 8), barr(0, 2)], ""),
        (
            vec![barr(1, 16), barr(2, 8), barr(3, 16), barr(4, 4), barr(5, 16)],
            vec![
                barr(1, 16),
                barr(0, 16),
                barr(2, 8),
                barr(3, 16),
                barr(0, 16),
                barr(0, 8),
                barr(4, 4),
                barr(5, 16),
                barr(0, 16),
                barr(0, 8),
            ],
            "baga6ea4seaqkqxk5lydedbxl6r6ln4fljandtmmlffzoseohdnong5vzwsk6qna",
        ),
    ];
    for (input, image, literal) in cases {
        let pieces: Vec<SectorPiece> = input.iter().map(|b| SectorPiece::from(&commp_of_bytes(b).unwrap())).collect();
        let image = commp_of_bytes(&image.concat()).unwrap();
        assert_eq!(image.padded_size, 2048);
        let got = commd(&pieces, 2 * KIB).unwrap();
        assert_eq!(got.root, image.root, "{literal}");
        if !literal.is_empty() {
            assert_eq!(cid(&got), literal);
        }
    }
}

/// go-commp-utils `ffiwrapper/ffiwrapper_test.go` `TestZeroPadding`: a 127-byte piece and its
/// zero-padding to 4× (= commP of the data zero-extended to 508 bytes); as the only piece of a
/// 512-byte sector, that is the sector's CommD.
#[test]
fn go_commp_utils_zero_padding() {
    let mut data = vec![0u8; 127];
    let content = b"i am the biggest cat, what do you think about that";
    data[..content.len()].copy_from_slice(content);
    let piece = commp_of_bytes(&data).unwrap();
    assert_eq!(piece.cid_v1().to_string(), "baga6ea4seaqozp3abki6vgdf7ztbipcycmxfyt2o64cpuyvdkczsjxsg7bqmioi");
    let mut data4 = vec![0u8; 508];
    data4[..content.len()].copy_from_slice(content);
    let padded = commp_of_bytes(&data4).unwrap();
    assert_eq!(commd(&[SectorPiece::from(&piece)], 512).unwrap().root, padded.root);
}

/// filecoin-ffi `proofs_test.go` `TestProofsLifecycle` (2 KiB sector): a 127-byte piece then a
/// 1016-byte piece; the unsealed sector is the first piece, 889 zero bytes of alignment, then the
/// second piece, and `GenerateUnsealedCID` of the two pieces equals the sealed sector's CommD.
/// (Its bytes are random there; pseudo-random here.)
#[test]
fn filecoin_ffi_lifecycle_layout() {
    let some_bytes = crate::common::pseudo_random(2032, 42);
    let a = commp_of_bytes(&some_bytes[..127]).unwrap();
    let b = commp_of_bytes(&some_bytes[..1016]).unwrap();
    let slots = layout(&[(String::new(), a.padded_size), (String::new(), b.padded_size)], 2048).unwrap();
    assert_eq!(
        slots[1..],
        [
            Slot::Zero { offset: 128, size: 128 },
            Slot::Zero { offset: 256, size: 256 },
            Slot::Zero { offset: 512, size: 512 },
            Slot::Piece { index: 1, offset: 1024, size: 1024 }
        ]
    );
    let image = [&some_bytes[..127], &[0u8; 889][..], &some_bytes[..1016]].concat();
    let sealed = commp_of_bytes(&image).unwrap();
    assert_eq!(commd(&[SectorPiece::from(&a), SectorPiece::from(&b)], 2048).unwrap().root, sealed.root);
}

#[test]
fn refusals_name_the_value() {
    let p = v1(SECTOR_139074[1].0, GIB);
    // Fits by sum (3 GiB) but not aligned in this order in a 2 GiB... 4 GiB sector: 256M at 0,
    // 1G at 1G, 2G at 2G → ends at 4G; add a 256M → 4.25G.
    let small = v1(SECTOR_139074[0].0, 256 * MIB);
    let two = SectorPiece { root: [9; 32], padded_size: 2 * GIB };
    let e = commd(&[small, p, two, small], 4 * GIB).unwrap_err();
    assert!(matches!(e, CommdError::DoesNotFit { number: 4, excess: 268_435_456, .. }), "{e}");
    assert!(e.to_string().contains("268435456 bytes past the end"), "{e}");
    assert!(matches!(commd(&[p], 512 * MIB), Err(CommdError::PieceLargerThanSector { .. })));
    assert!(matches!(commd(&[], 3 * GIB), Err(CommdError::SectorSize(_))));
    let v1_cid = SECTOR_139074[0].0;
    assert!(parse_piece(v1_cid, None).unwrap_err().to_string().contains(v1_cid));
    let e = parse_piece(v1_cid, Some(1000)).unwrap_err();
    assert!(e.to_string().contains("1000"), "{e}");
    let e = parse_piece("bafybeicydk4fcfvi6sg7yk5quohn263pbqxndjqv2owybmxv2befswus4i", Some(1024)).unwrap_err();
    assert!(e.to_string().contains("is not a piece CID"), "{e}");
}

/// A sector image: `pieces` (payloads) placed at the unpadded offsets of their padded layout,
/// zeros elsewhere; `sector·127/128` bytes.
fn sector_image(pieces: &[(Vec<u8>, PieceInfo)], sector: u64) -> Vec<u8> {
    let named: Vec<(String, u64)> = pieces.iter().map(|(_, p)| (String::new(), p.padded_size)).collect();
    let mut image = vec![0u8; unpadded_piece_size(sector) as usize];
    for s in layout(&named, sector).unwrap() {
        if let Slot::Piece { index, offset, .. } = s {
            let at = unpadded_piece_size(offset) as usize;
            let data = &pieces[index].0;
            image[at..at + data.len()].copy_from_slice(data);
        }
    }
    image
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// CommD equals commP of the sector's bytes built in memory (2–64 KiB sectors; random
    /// pieces of random sizes in random order, zeros between).
    #[test]
    fn commd_is_commp_of_the_sector_image(
        sector_log in 11u32..=16,
        pieces in proptest::collection::vec((0u32..=6, any::<u64>(), 0u8..=255), 0..10),
    ) {
        let sector = 1u64 << sector_log;
        let mut placed: Vec<(Vec<u8>, PieceInfo)> = Vec::new();
        let mut candidate = Vec::new();
        for (log, seed, fill) in pieces {
            // Payload with a padded size of 128·2^log: more than half the unpadded size.
            let u = 127u64 << log;
            let n = if log == 0 { (seed % 128) as usize } else { (u / 2 + 1 + seed % (u / 2)) as usize };
            let data: Vec<u8> = (0..n).map(|i| (seed.rotate_left(i as u32 % 64) as u8) ^ fill ^ (i as u8)).collect();
            let info = commp_of_bytes(&data).unwrap();
            prop_assert_eq!(info.padded_size, 128 << log);
            candidate.push((data, info));
            let named: Vec<(String, u64)> = candidate.iter().map(|(_, p)| (String::new(), p.padded_size)).collect();
            if layout(&named, sector).is_err() {
                candidate.pop(); // keep what fits, in order
            }
        }
        placed.extend(candidate);
        let list: Vec<SectorPiece> = placed.iter().map(|(_, p)| SectorPiece::from(p)).collect();
        let image = commp_of_bytes(&sector_image(&placed, sector)).unwrap();
        prop_assert_eq!(image.padded_size, sector);
        prop_assert_eq!(commd(&list, sector).unwrap().root, image.root);
    }

    /// A single piece filling the sector is its own CommD.
    #[test]
    fn a_piece_filling_the_sector_is_its_commd(log in 0u32..=9, seed in any::<u64>()) {
        let u = 127usize << log;
        let data: Vec<u8> = (0..u).map(|i| (seed >> (i % 57)) as u8).collect();
        let info = commp_of_bytes(&data).unwrap();
        let piece = SectorPiece::from(&info);
        prop_assert_eq!(commd(&[piece], info.padded_size).unwrap(), piece);
        prop_assert_eq!(parse_piece(&info.cid_v2().to_string(), None).unwrap(), piece);
    }
}

// The command line.

fn carload() -> Command {
    let mut c = Command::cargo_bin("carload").unwrap();
    c.env("XDG_CONFIG_HOME", "/nonexistent/carload-tests");
    c
}

fn one_line_error(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error, got: {err}");
    err
}

fn args_139074() -> Vec<String> {
    SECTOR_139074.iter().map(|(c, s)| format!("{c}:{s}")).collect()
}

#[test]
fn cli_prints_commd_and_layout() {
    let out = carload().arg("commd").args(args_139074()).args(["--sector", "32GiB"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("CommD:        {COMMD_139074}\n")), "{text}");
    assert!(text.contains("Pieces:       10, 6174015488 bytes padded (5.8 GiB)\n"), "{text}");
    assert!(text.contains("Zero fill:    28185722880 bytes padded (26 GiB), 7 zero pieces\n"), "{text}");
    // The 16 GiB filler at the end, with its zero commitment.
    assert!(
        text.contains(
            "17179869184     16 GiB  zero       baga6ea4seaqg2nsld34emra2ljfgrbrdcswmbjdpaftrpzjuipudt3w7qpbikpa"
        ),
        "{text}"
    );
}

#[test]
fn cli_json_and_piece_files() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("pieces.txt");
    std::fs::write(&list, format!("# sector 139074\n{}\n", args_139074().join("\n"))).unwrap();
    let out = carload().args(["commd", "--sector", "32GiB", "--json", "--pieces"]).arg(&list).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["commd"], COMMD_139074);
    assert_eq!(v["sector_size"], 32 * GIB);
    assert_eq!(v["pieces"].as_array().unwrap().len(), 10);
    assert_eq!(v["pieces"][1]["offset"], GIB);
    assert_eq!(v["layout"].as_array().unwrap().len(), 17);
    assert_eq!(v["layout"][1]["filler"], true);
    assert_eq!(v["aggregate_piece_cid"], "baga6ea4seaqez5c7zwfn6rqlhmsjeukdlrhs5ubvh2qlevfjwv3dljnaynifqoi");
    assert_eq!(v["aggregate_piece_size"], 8 * GIB);

    // The CSV of `export --format csv` and a v2 CID on the command line agree.
    let a = commp_of_bytes(&[5u8; 1000]).unwrap();
    let csv = dir.path().join("s.csv");
    std::fs::write(
        &csv,
        format!("piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file,batch\n{},1024,1016,1000,x,b0.car,b0\n", a.cid_v1()),
    )
    .unwrap();
    let from_csv = carload().args(["commd", "--sector", "4KiB", "--pieces"]).arg(&csv).output().unwrap();
    let from_arg = carload().args(["commd", "--sector", "4096"]).arg(a.cid_v2().to_string()).output().unwrap();
    assert!(from_csv.status.success(), "{}", String::from_utf8_lossy(&from_csv.stderr));
    assert_eq!(from_csv.stdout, from_arg.stdout);
    let want = cid(&commd(&[SectorPiece::from(&a)], 4096).unwrap());
    assert!(String::from_utf8_lossy(&from_arg.stdout).starts_with(&format!("CommD:        {want}\n")));
}

#[test]
fn cli_reads_a_shipment_from_standard_input() {
    let a = commp_of_bytes(&[6u8; 3000]).unwrap();
    let b = commp_of_bytes(&[7u8; 200]).unwrap();
    let shipment = format!(
        "{{\"format\":\"carload-shipment\",\"version\":2,\"sector_size\":65536}}\n{{\"id\":\"b00000\",\"result\":{{\"piece_cid\":\"{}\",\"piece_size\":{}}}}}\n{{\"id\":\"b00001\",\"result\":{{\"piece_cid\":\"{}\",\"piece_size\":{}}}}}\n",
        a.cid_v1(),
        a.padded_size,
        b.cid_v1(),
        b.padded_size
    );
    let out = carload()
        .args(["commd", "--sector", "64KiB", "--json", "--pieces", "-"])
        .write_stdin(shipment)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = commd(&[SectorPiece::from(&a), SectorPiece::from(&b)], 65536).unwrap();
    assert_eq!(v["commd"], cid(&want));
    assert_eq!(v["pieces"][1]["offset"], a.padded_size);
    let unbuilt = "{\"format\":\"carload-shipment\"}\n{\"id\":\"b00002\",\"files\":[]}\n";
    let e = one_line_error(carload().args(["commd", "--sector", "64KiB", "--pieces", "-"]).write_stdin(unbuilt));
    assert!(e.contains("standard input: line 2:"), "{e}");
    assert!(e.contains("batch b00002 is not built"), "{e}");
}

#[test]
fn cli_refusals_are_one_line_and_name_the_value() {
    let c0 = SECTOR_139074[0].0;
    let e = one_line_error(carload().args(["commd", "--sector", "32GiB", c0]));
    assert!(e.contains(c0) && e.contains("needs its padded size"), "{e}");
    let e = one_line_error(carload().args(["commd", "--sector", "32GiB", &format!("{c0}:1000")]));
    assert!(e.contains("1000") && e.contains("not a power of two"), "{e}");
    let e = one_line_error(carload().args(["commd", "--sector", "32GiB", &format!("{c0}:1040384")]));
    assert!(e.contains("unpadded") && e.contains("1048576"), "{e}");
    let e = one_line_error(carload().args([
        "commd",
        "--sector",
        "32GiB",
        "bafybeicydk4fcfvi6sg7yk5quohn263pbqxndjqv2owybmxv2befswus4i:1024",
    ]));
    assert!(e.contains("bafybeicydk4fcfvi6sg7yk5quohn263pbqxndjqv2owybmxv2befswus4i is not a piece CID"), "{e}");
    let e = one_line_error(carload().args(["commd", "--sector", "1GiB"]).args(args_139074()));
    assert!(e.contains("do not fit") && e.contains("past the end"), "{e}");
    let e = one_line_error(carload().args(["commd", "--sector", "3GiB"]));
    assert!(e.contains("3221225472") && e.contains("power of two"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("p.txt");
    std::fs::write(&list, format!("{c0}:256MiB\n{c0}\n")).unwrap();
    let e = one_line_error(carload().args(["commd", "--sector", "32GiB", "--pieces"]).arg(&list));
    assert!(e.contains("p.txt: line 2:") && e.contains("needs its padded size"), "{e}");
}
