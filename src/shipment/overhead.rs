//! Upper bound on the bytes an aggregate batch adds around its entries' DAGs.
//!
//! A batch CAR (see [`crate::batch`] and [`crate::aggregate`]) holds, besides each entry's own
//! DAG sections:
//!
//! * the CAR header for a 36-byte CIDv1 root: `H = car::header_len(36)`;
//! * one **inner bucket** directory per distinct `baf...<last 4 chars>` name, linking its entries
//!   by their full CIDv1 strings (59 characters for a sha2-256 CIDv1) with Tsize 0: every entry
//!   link is exactly `E = 103` bytes and a bucket holding `k` entries is a block of `b = 4 + 103k`
//!   bytes (the `08 01` directory data costs 4);
//! * one **outer bucket** per distinct `baf...<last 2 chars>` name, linking its inner buckets
//!   (10-character names, Tsize = the inner block length);
//! * the **root** directory, linking the outer buckets (8-character names) and
//!   `@AggregateManifest.ndjson`;
//! * the **manifest** file DAG (raw CIDv1 leaves, 256 KiB chunks, 174 links), whose size is a
//!   function of its byte length `M` ([`FileShape`]).
//!
//! An entry whose root is a CIDv0 is written under its 36-byte CIDv1, 2 bytes more than in its
//! own CAR (3 if the section's length varint grows): [`EntryCost`] adds that exactly.
//!
//! # The bound
//!
//! The last base32 character of a 59-character CIDv1 carries only 3 bits, so there are at most
//! `32·8 = 256` outer bucket names and `1024` inner names per outer bucket. With `n` distinct
//! entries (`v` of them dag-pb roots, whose manifest line also carries `DagCidV0`):
//!
//! ```text
//! I = min(n, 262144)   O = min(n, 256)           (bucket counts, upper bounds)
//! inner  = I·(36 + 4) + 103·n + I·(L10 − 1) + Vs + Vt
//! outer  = O·(36 + 4) + O·(L8 − 1) + Σvarint(36 + c_o) + Σvarint(u_o)
//! root   = 36 + 4 + Lm + varint(36 + r)
//! total  = H + inner + outer + root + manifest_car(M)
//! M      = P + (digits(n) − 1) + n·Le + v·(Lv − Le) + n·(digits(O) − 1)
//!          + n·(digits(min(1023, n − 1)) − 1) + Σ_{j≥1} max(0, n − 10^j)
//! ```
//!
//! where `L10`/`L8` are the lengths of a link with a 10/8-character name and Tsize 0, `Lm` the
//! manifest link, `P` the preamble and summary lines, `Le`/`Lv` an entry line without/with
//! `DagCidV0` (one-digit path indexes), `c_o`/`u_o` the block length and Tsize of outer bucket
//! `o`, and `r` the root block length. Sums of varint lengths are bounded by counting how many
//! values can reach each threshold `128^j` given their total (for inner buckets: at most
//! `n / K_j` buckets hold the `K_j` entries needed to reach `128^j`). Every term is an upper
//! bound on its actual counterpart whatever the CIDs are, so
//! `written CAR ≤ Σ entry CAR sections (+ CIDv0 adjustments) + total` always holds;
//! deduplicated DAGs and blocks only make the CAR smaller.
//!
//! # Slack
//!
//! The gap between the bound and the actual CAR comes from
//!
//! * bucket counts: `(I − I_actual)` inner buckets of ≈ 96 bytes and `(O − O_actual)` outer
//!   buckets of ≈ 100 bytes. For the uniformly spread CIDs hashes give, `O_actual ≈ 256` once
//!   `n ≳ 1,500`, and `I − I_actual ≈ n²/524,288` for `n ≪ 262,144` (≈ 1,950 buckets, 190 KB, for
//!   32,000 entries);
//! * manifest path-index digits, bounded for any CID placement: `digits(O)` for the outer index,
//!   `digits(min(1023, n−1))` for the inner index and the in-bucket index term (all entries in one
//!   bucket), i.e. at most `n·(digits(O) + digits(min(1023, n−1)) − 2) + Σ_j max(0, n − 10^j)`
//!   bytes more than with one-digit indexes; with spread CIDs this over-counts ≈ 4–6 bytes per
//!   entry;
//! * varint lengths: at most a few bytes per bucket.
//!
//! [`overhead_slack`] computes this worst case given the actual bucket counts; the property
//! tests check `0 ≤ bound − written ≤ overhead_slack` on real batches. Measured: 9.7 KB
//! (6.4 bytes per entry) for 1,500 entries, a few hundred bytes for tens of entries. For a 32 GiB
//! piece of 32,000 files the slack is ≈ 0.4 MB (0.001 %); in the adversarial worst case (CIDs
//! piling into one bucket, never seen with cryptographic hashes) it is about
//! `96·min(n, 262144) + 6·n` bytes, still < 0.02 % of a 32 GiB piece for 30,000 files.

use crate::car;
use crate::dagpb;
use crate::importer::layout::FileShape;
use crate::profile::Profile;
use crate::varint;
use std::sync::OnceLock;

/// CID length of every aggregate-owned block and of entry roots as written (sha2-256 CIDv1).
pub const CID_V1_LEN: usize = 36;
/// Length of a sha2-256 CIDv1 in base32 (the entry link names).
pub const CID_V1_STR_LEN: usize = 59;
/// Most outer buckets: the last two base32 characters carry 5 + 3 bits.
pub const MAX_OUTER: u64 = 256;
/// Most inner buckets: 1024 per outer bucket.
pub const MAX_INNER: u64 = 256 * 1024;

/// What one entry (a file or a file part) costs in a batch CAR, its own sections only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryCost {
    /// CAR bytes of the entry's sections as written in a batch (root under its CIDv1).
    pub car_bytes: u64,
    /// Whether the root is dag-pb (its manifest line then carries `DagCidV0`).
    pub dag_pb_root: bool,
}

impl EntryCost {
    /// Cost of a file (or chunk-aligned file part) of `size` bytes under `profile`. Exact for the
    /// file's own sections (repeated blocks counted each time).
    pub fn of_file(size: u64, profile: &Profile) -> Self {
        let root = crate::importer::layout::file_root(size, profile);
        let n = root.size;
        let adjust = car::section_len(CID_V1_LEN, n.block_len) - car::section_len(root.cid_len, n.block_len);
        EntryCost { car_bytes: n.car_bytes + adjust, dag_pb_root: root.dag_pb }
    }
}

fn varint_len(v: u64) -> u64 {
    varint::len(v) as u64
}

fn digits(x: u64) -> u64 {
    x.checked_ilog10().unwrap_or(0) as u64 + 1
}

fn link_len(name_len: usize, tsize: u64) -> u64 {
    dagpb::encoded_len([(CID_V1_LEN, name_len, tsize)], None) as u64
}

fn dir_data_len() -> u64 {
    dagpb::encoded_len([], Some(crate::unixfs::directory().len())) as u64
}

/// Upper bound of `Σ varint_len(v_i)` over `count` values whose total is at most `total`.
fn varint_sum_bound(count: u64, total: u64) -> u64 {
    let mut s = count;
    let mut t: u64 = 128;
    while t <= total {
        s += count.min(total / t);
        t = match t.checked_mul(128) {
            Some(t) => t,
            None => break,
        };
    }
    s
}

/// Upper bound of `Σ varint_len(a + b·k_i)` over at most `count` buckets holding `n` entries in
/// all (`k_i ≥ 1`).
fn linear_varint_sum_bound(count: u64, n: u64, a: u64, b: u64) -> u64 {
    let mut s = count;
    let mut t: u64 = 128;
    while t <= a + b * n {
        let k = if t <= a + b { 1 } else { (t - a).div_ceil(b) };
        s += count.min(n / k);
        t = match t.checked_mul(128) {
            Some(t) => t,
            None => break,
        };
    }
    s
}

struct ManifestLens {
    /// Preamble + summary with a one-digit `EntryCount`.
    head: u64,
    /// Entry line without `DagCidV0`, one-digit indexes.
    plain: u64,
    /// Entry line with `DagCidV0`, one-digit indexes.
    with_v0: u64,
}

fn manifest_lens() -> &'static ManifestLens {
    static LENS: OnceLock<ManifestLens> = OnceLock::new();
    LENS.get_or_init(|| {
        use crate::aggregate::{write_manifest, ManifestEntry};
        use crate::block::{cid_of, CidVersion, DAG_PB};
        let v1 = cid_of(CidVersion::V1, DAG_PB, b"carload");
        let v0 = cid::Cid::new_v0(*v1.hash()).expect("sha2-256");
        let s = v1.to_string();
        debug_assert_eq!(s.len(), CID_V1_STR_LEN);
        let entry = |v0: Option<cid::Cid>| ManifestEntry {
            dag_cid_v1: v1,
            dag_cid_v0: v0,
            dag_size: None,
            node_count: None,
            path_prefixes: [format!("{}...{}", &s[..3], &s[57..]), format!("{}...{}", &s[..3], &s[55..])],
            path_indexes: [1, 0, 0],
        };
        let head = write_manifest(&[]).len() as u64;
        ManifestLens {
            head,
            plain: write_manifest(&[entry(None)]).len() as u64 - head,
            with_v0: write_manifest(&[entry(Some(v0))]).len() as u64 - head,
        }
    })
}

/// Upper bound on the manifest's byte length for `n` entries, `dag_pb` of them with a dag-pb root.
pub fn manifest_len_bound(n: u64, dag_pb: u64) -> u64 {
    let l = manifest_lens();
    let outer = MAX_OUTER.min(n);
    let mut in_bucket = 0;
    let mut p: u64 = 10;
    while p < n {
        in_bucket += n - p;
        p = p.saturating_mul(10);
    }
    l.head + digits(n) - 1
        + n * l.plain
        + dag_pb.min(n) * (l.with_v0 - l.plain)
        + n * (digits(outer) - 1)
        + n * (digits(1023.min(n.saturating_sub(1))) - 1)
        + in_bucket
}

/// Upper bound on the CAR bytes of a batch of `n ≥ 1` distinct entries besides the entries' own
/// sections: header, root, buckets and manifest (see the module docs for the formula). `dag_pb`
/// entries have a dag-pb root.
pub fn overhead_bound(n: u64, dag_pb: u64) -> u64 {
    let n = n.max(1);
    let cid = CID_V1_LEN as u64;
    let data = dir_data_len();
    let entry_link = link_len(CID_V1_STR_LEN, 0);
    let l10 = link_len(10, 0) - 1;
    let l8 = link_len(8, 0) - 1;
    let inner = MAX_INNER.min(n);
    let outer = MAX_OUTER.min(n);

    // Inner buckets: section (CID + block + varint) and their link in the outer bucket.
    let vs = linear_varint_sum_bound(inner, n, cid + data, entry_link);
    let vt = linear_varint_sum_bound(inner, n, data, entry_link);
    let inner_total = inner * (cid + data) + entry_link * n + inner * l10 + vs + vt;

    // Outer buckets.
    let c_total = outer * data + inner * l10 + vt;
    let u_total = c_total + inner * data + entry_link * n;
    let vu = varint_sum_bound(outer, u_total);
    let outer_total = outer * (cid + data) + outer * l8 + varint_sum_bound(outer, outer * cid + c_total) + vu;

    // Manifest DAG and the root.
    let mut shape = FileShape::new(manifest_len_bound(n, dag_pb), &crate::aggregate::MANIFEST_PROFILE);
    let manifest = shape.root();
    let lm = link_len(crate::aggregate::MANIFEST_LINK_NAME.len(), manifest.tsize);
    let root_block = data + outer * l8 + vu + lm;
    let root_total = cid + data + lm + varint_len(cid + root_block);

    car::header_len(CID_V1_LEN) + inner_total + outer_total + root_total + manifest.car_bytes
}

/// Upper bound on `bound − written` for a batch of `n` distinct entries that landed in `inner`
/// inner and `outer` outer buckets (read them from the manifest's path prefixes).
pub fn overhead_slack(n: u64, inner: u64, outer: u64) -> u64 {
    let n = n.max(1);
    let per_inner = CID_V1_LEN as u64 + dir_data_len() + link_len(10, 0) + 2 * 5;
    let per_outer = CID_V1_LEN as u64 + dir_data_len() + link_len(8, 0) + 2 * 5;
    let max_inner = MAX_INNER.min(n);
    let max_outer = MAX_OUTER.min(n);
    // Manifest digits: outer and inner index digits, the in-bucket index term, and the DAG
    // nodes those bytes may add (one 36-byte leaf CID + link per 256 KiB, generously).
    let mut in_bucket = 0;
    let mut p: u64 = 10;
    while p < n {
        in_bucket += n - p;
        p = p.saturating_mul(10);
    }
    let digit_bytes = n * (digits(max_outer) - 1) + n * (digits(1023.min(n - 1)) - 1) + in_bucket + digits(n);
    let manifest_dag = (digit_bytes / (256 * 1024) + 2) * 200;
    (max_inner - inner.min(max_inner)) * per_inner
        + (max_outer - outer.min(max_outer)) * per_outer
        + 5 * (max_inner + max_outer)
        + digit_bytes
        + manifest_dag
        + 64
}

/// Upper bound on the whole batch CAR for entries of the given costs.
pub fn batch_bound(entries: &[EntryCost]) -> u64 {
    let own: u64 = entries.iter().map(|e| e.car_bytes).sum();
    let dag_pb = entries.iter().filter(|e| e.dag_pb_root).count() as u64;
    own + overhead_bound(entries.len() as u64, dag_pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_line_lengths() {
        let l = manifest_lens();
        // `,"DagCidV0":"Qm…"` adds 14 + 46 bytes.
        assert_eq!(l.with_v0 - l.plain, 60);
        assert_eq!(link_len(CID_V1_STR_LEN, 0), 103);
        assert_eq!(dir_data_len(), 4);
    }

    #[test]
    fn varint_bounds() {
        assert_eq!(varint_sum_bound(3, 100), 3);
        assert_eq!(varint_sum_bound(3, 300), 5);
        // 2 buckets, 200 entries: at most one bucket reaches 16384 (needs 159 entries).
        assert_eq!(linear_varint_sum_bound(2, 200, 40, 103), 2 + 2 + 1);
    }

    #[test]
    fn monotone_in_n() {
        let mut prev = 0;
        for n in (1..3000).chain([10_000, 100_000, 262_144, 300_000, 1_000_000]) {
            let b = overhead_bound(n, n);
            assert!(b > prev, "n={n}");
            assert!(overhead_bound(n, 0) <= b);
            prev = b;
        }
    }
}
