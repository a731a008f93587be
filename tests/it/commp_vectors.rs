//! commP and piece CID vectors (see tests/vectors/commp/ and the commp reference).

use carload::commp::{
    check_payload_size, commp_of_bytes, commp_of_reader, padded_piece_size, unpadded_piece_size, CommpError, Kernel,
    PieceHasher, PieceInfo, MAX_PAYLOAD,
};
use sha2::{Digest, Sha512};
use std::path::PathBuf;

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/commp").join(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// commP of `data` with every available kernel; asserts they agree.
fn commp(data: &[u8]) -> PieceInfo {
    let want = commp_of_bytes(data).unwrap();
    for kernel in [Kernel::Portable, Kernel::ShaNi, Kernel::Avx2] {
        let mut h = PieceHasher::with_kernel(kernel);
        h.write_at(0, data).unwrap();
        assert_eq!(h.finish(data.len() as u64).unwrap(), want, "{kernel:?}, {} bytes", data.len());
    }
    want
}

/// (height, root, v1, v2 for a payload of exactly the unpadded size).
const ZERO_PIECES: &[(u8, &str, &str, &str)] = &[
    (
        2,
        "3731bb99ac689f66eef5973e4a94da188f4ddcae580724fc6f3fd60dfd488333",
        "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
        "bafkzcibcaabdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
    ),
    (
        3,
        "642a607ef886b004bf2c1978463ae1d4693ac0f410eb2d1b7a47fe205e5e750f",
        "baga6ea4seaqgiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy",
        "bafkzcibcaabwiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy",
    ),
    (
        4,
        "57a2381a28652bf47f6bef7aca679be4aede5871ab5cf3eb2c08114488cb8526",
        "baga6ea4seaqfpirydiugkk7up5v666wkm6n6jlw6lby2wxht5mwaqekerdfykjq",
        "bafkzcibcaacfpirydiugkk7up5v666wkm6n6jlw6lby2wxht5mwaqekerdfykjq",
    ),
    (
        5,
        "1f7ac9595510e09ea41c460b176430bb322cd6fb412ec57cb17d989a4310372f",
        "baga6ea4seaqb66wjlfkrbye6uqoemcyxmqylwmrm235uclwfpsyx3ge2imidoly",
        "bafkzcibcaacr66wjlfkrbye6uqoemcyxmqylwmrm235uclwfpsyx3ge2imidoly",
    ),
    (
        6,
        "fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833",
        "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy",
        "bafkzcibcaadpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy",
    ),
    (
        7,
        "08c47b38ee13bc43f41b915c0eed9911a26086b3ed62401bf9d58b8d19dff624",
        "baga6ea4seaqarrd3hdxbhpcd6qnzcxao5wmrditaq2z62ysadp45lc4ndhp7mja",
        "bafkzcibcaadqrrd3hdxbhpcd6qnzcxao5wmrditaq2z62ysadp45lc4ndhp7mja",
    ),
    (
        8,
        "b2e47bfb11facd941f62af5c750f3ea5cc4df517d5c4f16db2b4d77baec1a32f",
        "baga6ea4seaqlfzd37mi7vtmud5rk6xdvb47kltcn6ul5lrhrnwzljv33v3a2gly",
        "bafkzcibcaaelfzd37mi7vtmud5rk6xdvb47kltcn6ul5lrhrnwzljv33v3a2gly",
    ),
    (
        9,
        "f9226160c8f927bfdcc418cdf203493146008eaefb7d02194d5e548189005108",
        "baga6ea4seaqpsitbmdepsj573tcbrtpsanetcrqar2xpw7icdfgv4vebreafcca",
        "bafkzcibcaae7sitbmdepsj573tcbrtpsanetcrqar2xpw7icdfgv4vebreafcca",
    ),
    (
        10,
        "2c1a964bb90b59ebfe0f6da29ad65ae3e417724a8f7c11745a40cac1e5e74011",
        "baga6ea4seaqcyguwjo4qwwpl7yhw3iu22znohzaxojfi67arornebswb4xtuaei",
        "bafkzcibcaafcyguwjo4qwwpl7yhw3iu22znohzaxojfi67arornebswb4xtuaei",
    ),
    (
        11,
        "fee378cef16404b199ede0b13e11b624ff9d784fbbed878d83297e795e024f02",
        "baga6ea4seaqp5y3yz3ywibfrthw6bmj6cg3cj745pbh3x3mhrwbss7tzlybe6aq",
        "bafkzcibcaaf75y3yz3ywibfrthw6bmj6cg3cj745pbh3x3mhrwbss7tzlybe6aq",
    ),
    (
        12,
        "8e9e2403fa884cf6237f60df25f83ee40dca9ed879eb6f6352d15084f5ad0d3f",
        "baga6ea4seaqi5hreap5iqthwen7wbxzf7a7oidokt3mht23pmnjncuee6wwq2py",
        "bafkzcibcaagi5hreap5iqthwen7wbxzf7a7oidokt3mht23pmnjncuee6wwq2py",
    ),
    (
        13,
        "752d9693fa167524395476e317a98580f00947afb7a30540d625a9291cc12a07",
        "baga6ea4seaqhklmwsp5bm5jehfkhnyyxvgcyb4aji6x3piyfidlclkjjdtasuby",
        "bafkzcibcaagxklmwsp5bm5jehfkhnyyxvgcyb4aji6x3piyfidlclkjjdtasuby",
    ),
    (
        14,
        "7022f60f7ef6adfa17117a52619e30cea82c68075adf1c667786ec506eef2d19",
        "baga6ea4seaqhaixwb57pnlp2c4ixuutbtyym5kbmnadvvxy4mz3yn3cqn3xs2gi",
        "bafkzcibcaahhaixwb57pnlp2c4ixuutbtyym5kbmnadvvxy4mz3yn3cqn3xs2gi",
    ),
    (
        15,
        "d99887b973573a96e11393645236c17b1f4c7034d723c7a99f709bb4da61162b",
        "baga6ea4seaqntgehxfzvoouw4ejzgzcsg3axwh2moa2noi6hvgpxbg5u3jqrmky",
        "bafkzcibcaah5tgehxfzvoouw4ejzgzcsg3axwh2moa2noi6hvgpxbg5u3jqrmky",
    ),
    (
        16,
        "d0b530dbb0b4f25c5d2f2a28dfee808b53412a02931f18c499f5a254086b1326",
        "baga6ea4seaqnbnjq3oylj4s4luxsukg752aiwu2bfibjghyyysm7lisubbvrgjq",
        "bafkzcibcaainbnjq3oylj4s4luxsukg752aiwu2bfibjghyyysm7lisubbvrgjq",
    ),
    (
        17,
        "84c0421ba0685a01bf795a2344064fe424bd52a9d24377b394ff4c4b4568e811",
        "baga6ea4seaqijqccdoqgqwqbx54vui2eazh6ijf5kku5eq3xwokp6tclivuoqei",
        "bafkzcibcaaiyjqccdoqgqwqbx54vui2eazh6ijf5kku5eq3xwokp6tclivuoqei",
    ),
    (
        18,
        "65f29e5d98d246c38b388cfc06db1f6b021303c5a289000bdce832a9c3ec421c",
        "baga6ea4seaqgl4u6lwmnerwdrm4iz7ag3mpwwaqtapc2fciabpooqmvjypweeha",
        "bafkzcibcaajgl4u6lwmnerwdrm4iz7ag3mpwwaqtapc2fciabpooqmvjypweeha",
    ),
    (
        19,
        "a2247508285850965b7e334b3127b0c042b1d046dc54402137627cd8799ce13a",
        "baga6ea4seaqkejdvbaufquewln7dgszre6ymaqvr2bdnyvcaee3we7gypgoocoq",
        "bafkzcibcaaj2ejdvbaufquewln7dgszre6ymaqvr2bdnyvcaee3we7gypgoocoq",
    ),
    (
        20,
        "dafdab6da9364453c26d33726b9fefe343be8f81649ec009aad3faff50617508",
        "baga6ea4seaqnv7nlnwutmrctyjwtg4tlt7x6gq56r6awjhwabgvnh6x7kbqxkca",
        "bafkzcibcaaknv7nlnwutmrctyjwtg4tlt7x6gq56r6awjhwabgvnh6x7kbqxkca",
    ),
    (
        21,
        "d941d5e0d6314a995c33ffbd4fbe69118d73d4e5fd2cd31f0f7c86ebdd14e706",
        "baga6ea4seaqnsqov4dldcsuzlqz77pkpxzurddlt2ts72lgtd4hxzbxl3ukoobq",
        "bafkzcibcaak5sqov4dldcsuzlqz77pkpxzurddlt2ts72lgtd4hxzbxl3ukoobq",
    ),
    (
        22,
        "514c435c3d04d349a5365fbd59ffc713629111785991c1a3c53af22079741a2f",
        "baga6ea4seaqfctcdlq6qju2juu3f7pkz77drgyurcf4fteobupctv4rapf2buly",
        "bafkzcibcaalfctcdlq6qju2juu3f7pkz77drgyurcf4fteobupctv4rapf2buly",
    ),
    (
        23,
        "ad06853969d37d34ff08e09f56930a4ad19a89def60cbfee7e1d3381c1e71c37",
        "baga6ea4seaqk2bufhfu5g7ju74eobh2wsmfevum2rhppmdf75z7b2m4byhtryny",
        "bafkzcibcaal22bufhfu5g7ju74eobh2wsmfevum2rhppmdf75z7b2m4byhtryny",
    ),
    (
        24,
        "39560e7b13a93b07a243fd2720ffa7cb3e1d2e505ab3629e79f46313512cda06",
        "baga6ea4seaqdsvqopmj2soyhujb72jza76t4wpq5fzifvm3ctz47iyytkewnubq",
        "bafkzcibcaamdsvqopmj2soyhujb72jza76t4wpq5fzifvm3ctz47iyytkewnubq",
    ),
    (
        25,
        "ccc3c012f5b05e811a2bbfdd0f6833b84275b47bf229c0052a82484f3c1a5b3d",
        "baga6ea4seaqmzq6acl23axubdiv37xipnaz3qqtvwr57ekoaauviescphqnfwpi",
        "bafkzcibcaam4zq6acl23axubdiv37xipnaz3qqtvwr57ekoaauviescphqnfwpi",
    ),
    (
        26,
        "7df29b69773199e8f2b40b77919d048509eed768e2c7297b1f1437034fc3c62c",
        "baga6ea4seaqh34u3nf3tdgpi6k2aw54rtucikcpo25uofrzjpmprinydj7b4mla",
        "bafkzcibcaanh34u3nf3tdgpi6k2aw54rtucikcpo25uofrzjpmprinydj7b4mla",
    ),
    (
        27,
        "66ce05a3667552cf45c02bcc4e8392919bdeac35de2ff56271848e9f7b675107",
        "baga6ea4seaqgntqfunthkuwpixacxtcoqojjdg66vq254l7vmjyyjdu7pntvcby",
        "bafkzcibcaanwntqfunthkuwpixacxtcoqojjdg66vq254l7vmjyyjdu7pntvcby",
    ),
    (
        28,
        "d8610218425ab5e95b1ca6239d29a2e420d706a96f373e2f9c9a91d759d19b01",
        "baga6ea4seaqnqyicdbbfvnpjlmokmi45fgroiigxa2uw6nz6f6ojveoxlhizwai",
        "bafkzcibcaaonqyicdbbfvnpjlmokmi45fgroiigxa2uw6nz6f6ojveoxlhizwai",
    ),
    (
        29,
        "6d364b1ef846441a5a4a68862314acc0a46f016717e53443e839eedf83c2853c",
        "baga6ea4seaqg2nsld34emra2ljfgrbrdcswmbjdpaftrpzjuipudt3w7qpbikpa",
        "bafkzcibcaaow2nsld34emra2ljfgrbrdcswmbjdpaftrpzjuipudt3w7qpbikpa",
    ),
    (
        30,
        "077e5fde35c50a9303a55009e3498a4ebedff39c42b710b730d8ec7ac7afa63e",
        "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
        "bafkzcibcaapao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq",
    ),
    (
        31,
        "e64005a6bfe3777953b8ad6ef93f0fca1049b2041654f2a411f7702799cece02",
        "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq",
        "bafkzcibcaap6mqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq",
    ),
    (
        32,
        "259d3d6b1f4d876d1185e1123af6f5501af0f67cf15b5216255b7b178d12051d",
        "baga6ea4seaqclhj5nmpu3b3ncgc6cer2632vagxq6z6pcw2scysvw6yxrujakhi",
        "bafkzcibcaaqclhj5nmpu3b3ncgc6cer2632vagxq6z6pcw2scysvw6yxrujakhi",
    ),
    (
        33,
        "3f9a4d411da4ef1b36f35ff0a195ae392ab23fee7967b7c41b03d1613fc29239",
        "baga6ea4seaqd7gsnieo2j3y3g3zv74fbswxdskvsh7xhsz5xyqnqhulbh7bjeoi",
        "bafkzcibcaaqt7gsnieo2j3y3g3zv74fbswxdskvsh7xhsz5xyqnqhulbh7bjeoi",
    ),
    (
        34,
        "fe4ef328c61aa39cfdb2484eaa32a151b1fe3dfd1f96dd8c9711fd86d6c58113",
        "baga6ea4seaqp4txtfddbvi447wzeqtvkgkqvdmp6hx6r7fw5rslrd7mg23cycey",
        "bafkzcibcaarp4txtfddbvi447wzeqtvkgkqvdmp6hx6r7fw5rslrd7mg23cycey",
    ),
    (
        35,
        "f55d68900e2d8381eccb8164cb9976f24b2de0dd61a31b97ce6eb23850d5e819",
        "baga6ea4seaqpkxlisahc3a4b5tfyczgltf3peszn4dowdiy3s7hg5mrykdk6qgi",
        "bafkzcibcaar7kxlisahc3a4b5tfyczgltf3peszn4dowdiy3s7hg5mrykdk6qgi",
    ),
    (
        36,
        "aaaa8c4cb40aacee1e02dc65424b2a6c8e99f803b72f7929c4101d7fae6bff32",
        "baga6ea4seaqkvkumjs2avlhodybnyzkcjmvgzduz7ab3ol3zfhcbahl7vzv76mq",
        "bafkzcibcaaskvkumjs2avlhodybnyzkcjmvgzduz7ab3ol3zfhcbahl7vzv76mq",
    ),
    (
        37,
        "c91a84c057fd4afcc209c3b482360cf7493b9129fa164cd1fe6b045a683b5322",
        "baga6ea4seaqmsgueybl72sx4yie4hnecgygposj3seu7ufsm2h7gwbc2na5vgiq",
        "bafkzcibcaas4sgueybl72sx4yie4hnecgygposj3seu7ufsm2h7gwbc2na5vgiq",
    ),
    (
        38,
        "64a2c1df312ecb443b431946c02fe701514b5291091b888f03189bee8ea11416",
        "baga6ea4seaqgjiwb34ys5s2ehnbrsrwaf7tqcuklkkiqsg4ir4brrg7or2qrifq",
        "bafkzcibcaatgjiwb34ys5s2ehnbrsrwaf7tqcuklkkiqsg4ir4brrg7or2qrifq",
    ),
    (
        39,
        "739953434ead6e24f1d1bf5b68ca823b2692b3000a7806d08c76640da98c3526",
        "baga6ea4seaqhhgktinhk23re6hi36w3izkbdwjuswmaau6ag2cghmzanvggdkjq",
        "bafkzcibcaatxhgktinhk23re6hi36w3izkbdwjuswmaau6ag2cghmzanvggdkjq",
    ),
    (
        40,
        "771f5b63af6f7d1d515d134084d535f5f4d8ab8529b2c3f581f143f8cc38be2f",
        "baga6ea4seaqhoh23moxw67i5kforgqee2u27l5gyvocstmwd6wa7cq7yzq4l4ly",
        "bafkzcibcaauhoh23moxw67i5kforgqee2u27l5gyvocstmwd6wa7cq7yzq4l4ly",
    ),
];

#[test]
fn zero_piece_table_cids() {
    for &(height, root, v1, v2) in ZERO_PIECES {
        let padded = 32u64 << height;
        let mut r = [0u8; 32];
        for (i, b) in r.iter_mut().enumerate() {
            *b = u8::from_str_radix(&root[2 * i..2 * i + 2], 16).unwrap();
        }
        let info = PieceInfo {
            root: r,
            payload_size: unpadded_piece_size(padded),
            padded_size: padded,
            unpadded_size: unpadded_piece_size(padded),
        };
        assert_eq!(info.height(), height);
        assert_eq!(info.padding(), 0);
        assert_eq!(info.cid_v1().to_string(), v1, "height {height}");
        assert_eq!(info.cid_v2().to_string(), v2, "height {height}");
    }
}

#[test]
fn zero_pieces_hashed() {
    // Heights up to 18 (8 MiB padded): several units, unit boundaries and the zero shortcut.
    let data = vec![0u8; 127 << 16];
    for &(height, root, v1, v2) in ZERO_PIECES.iter().filter(|r| r.0 <= 18) {
        let n = unpadded_piece_size(32 << height);
        let info = commp(&data[..n as usize]);
        assert_eq!(info.height(), height);
        assert_eq!(hex(&info.root), root, "height {height}");
        assert_eq!(info.cid_v1().to_string(), v1);
        assert_eq!(info.cid_v2().to_string(), v2);
    }
}

#[test]
fn frc0069_vectors() {
    let mut quad4 = Vec::new();
    for b in 0..4u8 {
        quad4.extend(std::iter::repeat_n(b, 127));
    }
    let v1_508 = "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi";
    let v1_z2 = "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy";
    let v1_1016 = "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa";
    let ext = |zeros: usize| {
        let mut d = quad4.clone();
        d.resize(508 + zeros, 0);
        d
    };
    let cases: Vec<(Vec<u8>, &str, &str, u8, u64)> = vec![
        (quad4.clone(), v1_508, "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi", 4, 0),
        (vec![], v1_z2, "bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy", 2, 127),
        (vec![0; 127], v1_z2, "bafkzcibcaabdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy", 2, 0),
        (
            vec![0; 128],
            "baga6ea4seaqgiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy",
            "bafkzcibcpybwiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy",
            3,
            126,
        ),
        (ext(508), v1_1016, "bafkzcibcaac542av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa", 5, 0),
        (ext(4), v1_1016, "bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4", 5, 504),
        (ext(5), v1_1016, "bafkzcibd64bqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4", 5, 503),
        (vec![0; 65], v1_z2, "bafkzcibchybdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy", 2, 62),
        (vec![0xcc; 1024], "", "bafkzcibd6adqmnn5u42juoezestr7ty4a5okhrpae3yotqpxzzz54n644jyw4srz", 6, 1008),
    ];
    for (data, v1, v2, height, padding) in cases {
        let info = commp(&data);
        if !v1.is_empty() {
            assert_eq!(info.cid_v1().to_string(), v1, "{} bytes", data.len());
        }
        assert_eq!(info.cid_v2().to_string(), v2, "{} bytes", data.len());
        assert_eq!(info.height(), height);
        assert_eq!(info.padding(), padding);
    }
    // The 508-byte vector's root, from FRC-0069.
    assert_eq!(hex(&commp(&quad4).root), "496dae0cc9e265efe5a006e80626a5dc5c409e5d3155c13984caf6c8d5cfd605");
}

#[test]
fn tiny_payloads_are_height_two() {
    for n in 0..=64usize {
        let info = commp(&vec![0xab; n]);
        assert_eq!((info.height(), info.padding(), info.padded_size), (2, 127 - n as u64, 128));
    }
}

fn hashhash(file: &str, byte: u8) {
    let text = std::fs::read_to_string(vector(file)).unwrap();
    let mut rows = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let (n, padded): (u64, u64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let info = commp(&vec![byte; n as usize]);
        assert_eq!(info.padded_size, padded, "{file} {n}");
        assert_eq!(padded_piece_size(n), padded);
        assert_eq!(info.cid_v1().to_string(), f[2], "{file} {n}");
        rows += 1;
    }
    assert_eq!(rows, 18);
}

#[test]
fn hashhash_zero() {
    hashhash("hashhash-zero.txt", 0);
}

#[test]
fn hashhash_cc() {
    hashhash("hashhash-0xCC.txt", 0xcc);
}

/// data-segment's `deriveBuffer`: SHA-512 chain of 64-byte blocks from SHA-512(""), cut to `n`.
fn derive_buffer(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut block = Sha512::digest(b"");
    while out.len() < n {
        out.extend_from_slice(&block);
        block = Sha512::digest(block);
    }
    out.truncate(n);
    out
}

#[test]
fn data_segment_vectors() {
    let text = std::fs::read_to_string(vector("data-segment-vector.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).filter(|l| !l.is_empty()).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 83);
    let max = rows.iter().map(|r| r[0].parse::<usize>().unwrap()).max().unwrap();
    let data = derive_buffer(max);
    for r in rows {
        let n: usize = r[0].parse().unwrap();
        let (unpadded, padded): (u64, u64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        let info = commp(&data[..n]);
        assert_eq!(info.unpadded_size, unpadded, "{n}");
        assert_eq!(info.padded_size, padded, "{n}");
        assert_eq!(unpadded_piece_size(padded), unpadded);
        assert_eq!(info.cid_v1().to_string(), r[4], "{n}");
    }
}

#[test]
fn real_files() {
    let files = [
        (
            "cat.png.car",
            524288,
            "baga6ea4seaqae5ysjdbsr4b5jhotaz5ooh62jrrdbxwygfpkkfjz44kvywycmgy",
            "bafkzcibezhtaodqco4jerqzi6a6utxjqm6xhd7neyyrq33mdcxvfcu46ofk4lmbgdm",
        ),
        (
            "verifiable-data-aggregation.png.car",
            262144,
            "baga6ea4seaqnrm2n2g4m23t6rs26obxjw2tjtr7tcho24gepj2naqhevytduyoa",
            "bafkzcibe7gyaidoywng5dognnz7iznpha3u3njuzy7zrdxnodchu5gqidsk4jr2mha",
        ),
        (
            "deal.data",
            1048576,
            "baga6ea4seaqnqkeoqevjjjfe46wo2lpfclcbmkyms4wkz5srou3vzmr3w3c72bq",
            "bafkzcibcaah5qkeoqevjjjfe46wo2lpfclcbmkyms4wkz5srou3vzmr3w3c72bq",
        ),
        (
            "index.data",
            512,
            "baga6ea4seaqhcxljs2dth37blnnevcbzvf2bkveytmtpdiq6lwseenadxzzoyei",
            "bafkzcibcaachcxljs2dth37blnnevcbzvf2bkveytmtpdiq6lwseenadxzzoyei",
        ),
    ];
    for (name, padded, v1, v2) in files {
        let data = std::fs::read(vector(name)).unwrap();
        let info = commp(&data);
        assert_eq!(info.padded_size, padded, "{name}");
        assert_eq!(info.cid_v1().to_string(), v1, "{name}");
        assert_eq!(info.cid_v2().to_string(), v2, "{name}");
        let streamed = commp_of_reader(std::fs::File::open(vector(name)).unwrap()).unwrap();
        assert_eq!(streamed, info, "{name} via reader");
        // Sequential small writes through io::Write.
        let mut h = PieceHasher::new();
        for chunk in data.chunks(4093) {
            std::io::Write::write_all(&mut h, chunk).unwrap();
        }
        assert_eq!(h.finish(data.len() as u64).unwrap(), info, "{name} via io::Write");
    }
}

#[test]
fn sizes() {
    assert_eq!(padded_piece_size(0), 128);
    assert_eq!(padded_piece_size(127), 128);
    assert_eq!(padded_piece_size(128), 256);
    assert_eq!(padded_piece_size(509), 1024);
    assert_eq!(padded_piece_size(4065), 8192);
    assert_eq!(padded_piece_size(1 << 30), 1 << 31);
    assert_eq!(padded_piece_size(MAX_PAYLOAD), 1 << 36);
    assert_eq!(unpadded_piece_size(1 << 31), 2130706432);
    // go-fil-commcid TestTreeHeight: payload → (height, padding).
    for (n, height, padding) in [
        (508u64, 4u8, 0u64),
        (512, 5, 504),
        (127, 2, 0),
        (32 << 30, 31, 33822867456),
        ((32 << 30) / 128 * 127, 30, 0),
        ((64 << 30) / 128 * 127, 31, 0),
    ] {
        let padded = padded_piece_size(n);
        let info = PieceInfo {
            root: [0; 32],
            payload_size: n,
            padded_size: padded,
            unpadded_size: unpadded_piece_size(padded),
        };
        assert_eq!((info.height(), info.padding()), (height, padding), "{n}");
    }
}

#[test]
fn too_large() {
    assert!(check_payload_size(MAX_PAYLOAD).is_ok());
    let err = check_payload_size(MAX_PAYLOAD + 1).unwrap_err();
    assert!(matches!(err, CommpError::TooLarge { size, .. } if size == MAX_PAYLOAD + 1));
    assert!(err.to_string().contains("exceeds"), "{err}");
    let mut h = PieceHasher::new();
    h.write_at(MAX_PAYLOAD - 1, &[0]).unwrap();
    let err = h.write_at(MAX_PAYLOAD, &[0]).unwrap_err();
    assert!(matches!(err, CommpError::TooLarge { .. }), "{err}");
    assert!(matches!(h.write_at(u64::MAX, &[0, 0]), Err(CommpError::TooLarge { .. })));
    assert!(matches!(PieceHasher::new().finish(MAX_PAYLOAD + 1), Err(CommpError::TooLarge { .. })));
}
