//! Decoders of untrusted bytes (CARs given to `commp`/`manifest`, blocks from IPFS nodes,
//! manifests) return errors on garbage and never panic.

use carload::aggregate::{parse_manifest, read_manifest_from_car};
use carload::car::{read_header, BlockReader};
use proptest::prelude::*;

fn all_decoders(bytes: &[u8]) {
    let _ = carload::dagpb::decode(bytes);
    let _ = carload::unixfs::decode(bytes);
    let _ = carload::varint::read(bytes);
    let _ = read_header(&mut &bytes[..]);
    if let Ok((_, mut r)) = BlockReader::new(bytes) {
        while let Ok(Some(_)) = r.next_block() {}
    }
    let _ = parse_manifest(bytes);
    let _ = read_manifest_from_car(bytes);
    let _ = carload::ipfs::cbor_links(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        all_decoders(&bytes);
    }

    #[test]
    fn mutated_real_car_never_panics(pos in 0usize..2694, byte in any::<u8>(), cut in 0usize..2694) {
        // The two-file batch vector, corrupted at one byte and truncated.
        let car = batch_car();
        let mut bad = car.clone();
        bad[pos % car.len()] = byte;
        all_decoders(&bad);
        all_decoders(&car[..cut % car.len()]);
    }
}

fn batch_car() -> Vec<u8> {
    use carload::aggregate::{aggregate, write_car_in_memory, Entry};
    use carload::importer::memory::file_dag;
    use carload::profile::Profile;
    let dags = [file_dag(&[b'A'; 100], &Profile::default()), file_dag(&[b'A'; 1000], &Profile::default())];
    let agg = aggregate(&dags.iter().map(|d| Entry::new(d.root)).collect::<Vec<_>>()).unwrap();
    write_car_in_memory(&agg, &dags).unwrap()
}
