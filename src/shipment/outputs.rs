//! What counts as one of carload's own outputs: the one rule `plan` refuses to ship and the
//! workstation's scan marks as not shippable.
//!
//! The rule looks at the names of the files of one folder only (no contents are read, so a scan
//! stays a metadata walk):
//!
//! * a **temporary** of an atomic write, `.<name>.<random>.partial` ([`crate::output`]), is always
//!   an output;
//! * the outputs of **batch** `X` (`X` a valid batch ID) are `X.car`, `X.car.manifest`, `X.json`,
//!   `X.failed` and `X.lock`. A folder is a build's output folder when, for some `X`, two of
//!   these (or one of them and a temporary of `X`) lie in it; every such name of any batch ID in
//!   that folder is then an output (a lone `notes.json` elsewhere is not);
//! * a **shipment backup** `Y.jsonl.N` (`N` digits) beside `Y.jsonl` is an output;
//! * a **drive manifest** `carload-drive.json` and its lock `.carload-drive.lck` are outputs
//!   wherever they lie, and `README.txt` is one beside `carload-drive.json`
//!   ([`super::drive`]).

use std::collections::{HashMap, HashSet};

/// The outputs a build writes for one batch, by the suffix after its ID.
const BATCH_SUFFIXES: [(&str, &str); 5] = [
    (".car.manifest", "the manifest of batch"),
    (".car", "the CAR of batch"),
    (".json", "the build result of batch"),
    (".failed", "the failure record of batch"),
    (".lock", "the build lock of batch"),
];

/// Whether `id` is a batch ID a shipment may use (letters, digits, `_`, `-`; at most 64).
fn is_batch_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 64 && id.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

/// `(batch ID, what)` when `name` is named as an output of a batch.
fn batch_output(name: &[u8]) -> Option<(&[u8], &'static str)> {
    BATCH_SUFFIXES.iter().find_map(|&(suffix, what)| {
        let id = name.strip_suffix(suffix.as_bytes())?;
        is_batch_id(id).then_some((id, what))
    })
}

/// Whether `name` is a temporary of an atomic write: `.<name>.<random>.partial`. Returns the
/// name it stands for.
fn temporary_of(name: &[u8]) -> Option<&[u8]> {
    let inner = name.strip_prefix(b".")?.strip_suffix(b".partial")?;
    let dot = inner.iter().rposition(|&c| c == b'.')?;
    (dot > 0 && dot + 1 < inner.len()).then(|| &inner[..dot])
}

/// Why each of `names` (the files of one folder) is one of carload's own outputs, if it is: the
/// reason, in words, at the same index (see the module documentation for the rule).
pub fn carload_outputs(names: &[&[u8]]) -> Vec<Option<String>> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // Evidence per batch ID: how many of its outputs (temporaries included) lie here.
    let mut evidence: HashMap<&[u8], usize> = HashMap::new();
    for &n in names {
        let id = match temporary_of(n) {
            Some(target) => batch_output(target).map(|(id, _)| id),
            None => batch_output(n).map(|(id, _)| id),
        };
        if let Some(id) = id {
            *evidence.entry(id).or_default() += 1;
        }
    }
    let output_folder = evidence.values().any(|&n| n >= 2);
    let present: HashSet<&[u8]> = names.iter().copied().collect();
    names
        .iter()
        .map(|&n| {
            if let Some(target) = temporary_of(n) {
                return Some(format!("a temporary of carload writing {}", text(target)));
            }
            if n == super::drive::MANIFEST.as_bytes() {
                return Some("the manifest of a carload drive".into());
            }
            if n == super::drives::LOG.as_bytes() {
                return Some("the assignment log of a carload drive set".into());
            }
            if n == super::drive::LOCK.as_bytes() {
                return Some("the lock of a carload drive's manifest".into());
            }
            if n == super::drive::README.as_bytes() && present.contains(super::drive::MANIFEST.as_bytes()) {
                return Some("the description of a carload drive".into());
            }
            if output_folder {
                if let Some((id, what)) = batch_output(n) {
                    return Some(format!("{what} {}", text(id)));
                }
            }
            let (stem, number) = n.split_at(n.iter().rposition(|&c| c == b'.')?);
            let number = &number[1..];
            (stem.ends_with(b".jsonl")
                && !number.is_empty()
                && number.iter().all(u8::is_ascii_digit)
                && present.contains(stem))
            .then(|| format!("a backup of the shipment {}", text(stem)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(names: &[&str]) -> Vec<Option<String>> {
        let b: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        carload_outputs(&b)
    }

    #[test]
    fn an_output_folder_is_recognised_by_its_batches() {
        let r = reasons(&[
            "b00000.car",
            "b00000.car.manifest",
            "b00000.json",
            "b00001.failed",
            "b00002.lock",
            ".b00002.car.a1B2c3.partial",
            "notes.txt",
            "my photo.json",
        ]);
        assert_eq!(r[0].as_deref(), Some("the CAR of batch b00000"));
        assert_eq!(r[1].as_deref(), Some("the manifest of batch b00000"));
        assert_eq!(r[2].as_deref(), Some("the build result of batch b00000"));
        assert_eq!(r[3].as_deref(), Some("the failure record of batch b00001"));
        assert_eq!(r[4].as_deref(), Some("the build lock of batch b00002"));
        assert_eq!(r[5].as_deref(), Some("a temporary of carload writing b00002.car"));
        assert_eq!(r[6], None);
        // Not a batch ID (a space): never an output.
        assert_eq!(r[7], None);
    }

    #[test]
    fn lone_names_that_merely_look_like_outputs_are_data() {
        // One `.json` or one `.car` alone is somebody's data, not a build's output folder.
        assert_eq!(reasons(&["config.json", "video.car", "x.lock"]), vec![None, None, None]);
        // A build in progress: its lock and its temporary.
        let r = reasons(&["b7.lock", ".b7.car.XyZ123.partial"]);
        assert!(r.iter().all(Option::is_some), "{r:?}");
    }

    #[test]
    fn shipment_backups_and_temporaries() {
        let r = reasons(&["s.jsonl", "s.jsonl.1", "s.jsonl.12", "t.jsonl.1", "s.jsonl.x", ".s.jsonl.k2LmN0.partial"]);
        assert_eq!(r[0], None);
        assert_eq!(r[1].as_deref(), Some("a backup of the shipment s.jsonl"));
        assert!(r[2].is_some());
        assert_eq!(r[3], None, "no t.jsonl beside it");
        assert_eq!(r[4], None);
        assert_eq!(r[5].as_deref(), Some("a temporary of carload writing s.jsonl"));
        // Hidden files that are not temporaries.
        assert_eq!(reasons(&[".partial", "..partial", ".x.partial"]), vec![None, None, None]);
    }

    #[test]
    fn drive_manifests_and_their_readme() {
        let r = reasons(&[
            "carload-drive.json",
            "README.txt",
            ".carload-drive.lck",
            ".carload-drive.json.Ab12Cd.partial",
            "carload-drives.jsonl",
        ]);
        assert_eq!(r[4].as_deref(), Some("the assignment log of a carload drive set"));
        assert_eq!(r[0].as_deref(), Some("the manifest of a carload drive"));
        assert_eq!(r[1].as_deref(), Some("the description of a carload drive"));
        assert_eq!(r[2].as_deref(), Some("the lock of a carload drive's manifest"));
        assert!(r[3].is_some());
        // A README elsewhere is somebody's data.
        assert_eq!(reasons(&["README.txt", "notes.json"]), vec![None, None]);
    }
}
