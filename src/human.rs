//! Numbers for people, one way each, as the command line and the workstation print them: sizes
//! ([`ibytes`]), durations ([`secs`]), throughput ([`rate`]) and file times ([`utc_ns`]).

/// Sizes in IEC units as go-humanize `IBytes` prints them (`256 B`, `2.0 KiB`, `16 KiB`).
pub fn ibytes(n: u64) -> String {
    if n < 10 {
        return format!("{n} B");
    }
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let e = ((n as f64).ln() / 1024f64.ln()).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let val = ((n as f64) / 1024f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", UNITS[e])
    } else {
        format!("{val:.0} {}", UNITS[e])
    }
}

/// A duration in seconds for people: `45 s`, `12 min 5 s`, `3 h 20 min`.
pub fn secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, s / 60 % 60)
    }
}

/// Throughput in bytes per second for people: `812 MB/s` from 10 MB/s up, `4.2 MB/s` from
/// 1 MB/s, `350 kB/s` below (decimal units, as disks and networks are rated).
pub fn rate(bytes_per_sec: f64) -> String {
    match bytes_per_sec {
        r if r >= 1e7 => format!("{:.0} MB/s", r / 1e6),
        r if r >= 1e6 => format!("{:.1} MB/s", r / 1e6),
        r => format!("{:.0} kB/s", r / 1e3),
    }
}

/// The word for `n` things: `plural(1, "file", "files")` is `file`, any other count `files`.
pub fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A file time in nanoseconds since the Unix epoch as a UTC date and time, the nanoseconds kept
/// (two times that differ by 1 ns read differently): `2026-12-05 06:40:01.123456789 UTC`. A pure
/// function of its argument (no clock, no time zone).
pub fn utc_ns(ns: i64) -> String {
    let (secs, nanos) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{nanos:09} UTC", sod / 3600, sod / 60 % 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_agree_with_their_numbers() {
        assert_eq!(plural(1, "file", "files"), "file");
        assert_eq!(plural(0, "file", "files"), "files");
        assert_eq!(plural(2, "batch", "batches"), "batches");
    }

    #[test]
    fn file_times_read_as_utc_dates() {
        assert_eq!(utc_ns(0), "1970-01-01 00:00:00.000000000 UTC");
        assert_eq!(utc_ns(1_764_650_000_123_456_789), "2025-12-02 04:33:20.123456789 UTC");
        assert_eq!(utc_ns(951_782_400_000_000_001), "2000-02-29 00:00:00.000000001 UTC");
        assert_eq!(utc_ns(-1), "1969-12-31 23:59:59.999999999 UTC");
    }

    #[test]
    fn ibytes_matches_go_humanize() {
        assert_eq!(ibytes(5), "5 B");
        assert_eq!(ibytes(128), "128 B");
        assert_eq!(ibytes(1024), "1.0 KiB");
        assert_eq!(ibytes(2048), "2.0 KiB");
        assert_eq!(ibytes(16384), "16 KiB");
        assert_eq!(ibytes(34_359_738_368), "32 GiB");
        assert_eq!(ibytes(34_091_302_912), "32 GiB");
        assert_eq!(ibytes(1_065_353_216), "1016 MiB");
    }

    #[test]
    fn durations_and_rates() {
        assert_eq!(secs(45.4), "45 s");
        assert_eq!(secs(725.0), "12 min 5 s");
        assert_eq!(secs(3725.0), "1 h 2 min");
        assert_eq!(secs(-3.0), "0 s");
        assert_eq!(rate(812e6), "812 MB/s");
        assert_eq!(rate(4.24e6), "4.2 MB/s");
        assert_eq!(rate(350e3), "350 kB/s");
    }
}
