//! Byte sizes as users type them: `32GiB`, `1MiB`, `512KiB`, `4GB` or plain bytes.

/// A size string that could not be parsed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid size {0:?}: use plain bytes or a unit such as 1MiB, 32GiB, 4GB")]
pub struct SizeError(pub String);

/// Parses `s` as a byte count. Binary units (`KiB`, `MiB`, `GiB`, `TiB`; also `K`, `M`, `G`, `T`)
/// and decimal units (`kB`/`KB`, `MB`, `GB`, `TB`) are accepted, case-insensitively; `_` is
/// ignored.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let err = || SizeError(s.to_string());
    let t: String = s.trim().chars().filter(|c| *c != '_').collect();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("32GiB").unwrap(), 34_359_738_368);
        assert_eq!(parse_size("64gib").unwrap(), 68_719_476_736);
        assert_eq!(parse_size("1MiB").unwrap(), 1_048_576);
        assert_eq!(parse_size("1048576").unwrap(), 1_048_576);
        assert_eq!(parse_size("4GB").unwrap(), 4_000_000_000);
        assert_eq!(parse_size("1_000").unwrap(), 1000);
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("1XB").is_err());
    }
}
