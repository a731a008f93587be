//! CARv1 framing: the header `{roots:[root], version:1}` in canonical DAG-CBOR, and sections
//! `varint(len(cid)+len(data)) ‖ cid ‖ data`. Also a small reader used to validate and inspect CARs.

use crate::varint;
use cid::Cid;
use std::io::Read;

/// Errors reading a CAR.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// The header is not a CARv1/v2 header.
    #[error("not a CAR file: {0}")]
    BadHeader(String),
    /// The CAR is a version carload does not produce or hash for deals.
    #[error("CAR version {0} is not supported (deals need CARv1)")]
    Version(u64),
    /// A section is malformed.
    #[error("malformed CAR section at byte {offset}: {reason}")]
    BadSection {
        /// Byte offset of the section.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The encoded CARv1 header (length prefix included) for a single root.
pub fn header(root: &Cid) -> Vec<u8> {
    let cid = root.to_bytes();
    let mut body = Vec::with_capacity(cid.len() + 24);
    body.push(0xa2); // map(2)
    body.push(0x65);
    body.extend_from_slice(b"roots");
    body.push(0x81); // array(1)
    body.extend_from_slice(&[0xd8, 0x2a]); // tag(42)
    let n = cid.len() + 1;
    if n < 24 {
        body.push(0x40 | n as u8);
    } else {
        body.push(0x58);
        body.push(n as u8);
    }
    body.push(0x00);
    body.extend_from_slice(&cid);
    body.push(0x67);
    body.extend_from_slice(b"version");
    body.push(0x01);
    let mut out = Vec::with_capacity(body.len() + 1);
    varint::write(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

/// Length of [`header`] for a root CID of `cid_len` bytes (34 for v0, 36 for v1 sha2-256).
pub fn header_len(cid_len: usize) -> u64 {
    let body = 1 + 6 + 1 + 2 + 2 + 1 + cid_len + 8 + 1;
    (varint::len(body as u64) + body) as u64
}

/// Encodes the section prefix (`varint(len)` and CID bytes) for a block of `data_len` bytes.
pub fn section_prefix(cid: &Cid, data_len: usize) -> Vec<u8> {
    let cid = cid.to_bytes();
    let mut out = Vec::with_capacity(cid.len() + 5);
    varint::write(&mut out, (cid.len() + data_len) as u64);
    out.extend_from_slice(&cid);
    out
}

/// Total bytes of a section holding a block of `data_len` bytes under a CID of `cid_len` bytes.
pub fn section_len(cid_len: usize, data_len: u64) -> u64 {
    let inner = cid_len as u64 + data_len;
    varint::len(inner) as u64 + inner
}

/// A parsed CAR header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// CAR version (1, or 2 for a CARv2 pragma).
    pub version: u64,
    /// Root CIDs (empty for a CARv2 pragma).
    pub roots: Vec<Cid>,
    /// Bytes the header occupies, length prefix included.
    pub len: u64,
}

/// Largest header carload accepts (go-car uses 32 MiB for sections; headers are tiny).
const MAX_HEADER: u64 = 1 << 20;

/// Reads and decodes a CAR header from `r`.
pub fn read_header(r: &mut impl Read) -> Result<Header, CarError> {
    let (len, prefix) = read_varint(r)?.ok_or_else(|| CarError::BadHeader("empty input".into()))?;
    if len == 0 || len > MAX_HEADER {
        return Err(CarError::BadHeader(format!("header length {len} is implausible")));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).map_err(|_| CarError::BadHeader("truncated header".into()))?;
    let (version, roots) = cbor::decode_header(&body).map_err(CarError::BadHeader)?;
    Ok(Header { version, roots, len: prefix as u64 + len })
}

/// Reads a section-length varint; `None` at a clean end of input, an error when truncated or
/// longer than 10 bytes.
pub fn read_varint(r: &mut impl Read) -> Result<Option<(u64, usize)>, CarError> {
    let mut buf = [0u8; 10];
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            return if i == 0 { Ok(None) } else { Err(CarError::BadHeader("truncated varint".into())) };
        }
        buf[i] = b[0];
        if b[0] & 0x80 == 0 {
            // A 10-byte varint beyond 64 bits is an error, not the end of the input.
            return varint::read(&buf[..=i]).map(Some).ok_or_else(|| CarError::BadHeader("varint too long".into()));
        }
    }
    Err(CarError::BadHeader("varint too long".into()))
}

/// Iterates over the blocks of a CARv1 stream after its header.
pub struct BlockReader<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> BlockReader<R> {
    /// Reads the header from `inner` and returns it with a reader over the blocks.
    pub fn new(mut inner: R) -> Result<(Header, Self), CarError> {
        let h = read_header(&mut inner)?;
        if h.version != 1 {
            return Err(CarError::Version(h.version));
        }
        let offset = h.len;
        Ok((h, BlockReader { inner, offset }))
    }

    /// The next block (CID and bytes), `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Vec<u8>)>, CarError> {
        let at = self.offset;
        let bad = |reason: &str| CarError::BadSection { offset: at, reason: reason.to_string() };
        let Some((len, n)) = read_varint(&mut self.inner).map_err(|_| bad("bad length"))? else {
            return Ok(None);
        };
        if len > MAX_SECTION {
            return Err(bad("section larger than 64 MiB"));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner.read_exact(&mut buf).map_err(|_| bad("truncated section"))?;
        let mut cursor = std::io::Cursor::new(&buf[..]);
        let cid = Cid::read_bytes(&mut cursor).map_err(|e| bad(&format!("bad CID: {e}")))?;
        let data = buf[cursor.position() as usize..].to_vec();
        self.offset += n as u64 + len;
        Ok(Some((cid, data)))
    }
}

/// Largest section carload reads (go-car allows 32 MiB blocks; a section adds its CID).
pub const MAX_SECTION: u64 = 64 << 20;

/// A CAR's bytes read by position: a file, or bytes in memory. Positional reads let a reader
/// come back to a block it passed (e.g. a manifest written after its parent, or a block named
/// in a problem) without holding it.
pub trait ReadAt: Sync {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end (0 past it).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;

    /// Number of bytes.
    fn size(&self) -> std::io::Result<u64>;

    /// All the bytes in memory, when they are (then readers borrow them instead of copying).
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }

    /// Says that `offset..offset + len` will not be needed again soon (a map releases its pages).
    fn release(&self, _offset: u64, _len: usize) {}

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof` at the end of the bytes.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let start = offset.min(self.len() as u64) as usize;
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self[..].read_at(buf, offset)
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A CAR file mapped read-only into memory: its bytes borrowed in order without copying, pages
/// released behind the reader; positional reads go to the file (they leave no mapped pages
/// behind). The map is an [`crate::importer::input::Map`], registered for the CLI's SIGBUS
/// handler, so a file that shrinks while it is read ends in a one-line error naming it.
pub struct MappedCar {
    map: crate::importer::input::Map,
    file: std::fs::File,
}

impl MappedCar {
    /// Maps `file` (at `path`); `None` if it cannot be mapped (empty, not a regular file, …).
    pub fn new(file: &std::fs::File, path: &std::path::Path) -> Option<MappedCar> {
        let len = usize::try_from(file.metadata().ok()?.len()).ok().filter(|&n| n > 0)?;
        let map = crate::importer::input::Map::new(file, len, path).ok()?;
        let _ = map.advise(memmap2::Advice::Sequential);
        Some(MappedCar { map, file: file.try_clone().ok()? })
    }
}

impl ReadAt for MappedCar {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn size(&self) -> std::io::Result<u64> {
        Ok(self.map.len() as u64)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(&self.map[..])
    }

    fn release(&self, offset: u64, len: usize) {
        // Whole pages inside the range only (the common page size; a larger one makes madvise
        // refuse the range, harmlessly).
        const PAGE: u64 = 4096;
        let (start, end) = (offset.div_ceil(PAGE) * PAGE, (offset + len as u64) / PAGE * PAGE);
        if end > start {
            // SAFETY: DONTNEED on a read-only file map only drops this process's references to
            // the pages; a later access reads them again from the file.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start as usize,
                    (end - start) as usize,
                )
            };
        }
    }
}

/// Reads the header at the start of `src`.
pub fn read_header_at<S: ReadAt + ?Sized>(src: &S) -> Result<Header, CarError> {
    let mut r = PosReader { src, pos: 0 };
    read_header(&mut r)
}

/// A section read by position: its CID, its block's bytes and where the next section starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionAt {
    /// The section's CID.
    pub cid: Cid,
    /// The block's bytes.
    pub data: Vec<u8>,
    /// Offset of the next section.
    pub next: u64,
}

/// Reads the section starting at `offset` (`None` at the clean end of the CAR).
pub fn read_section_at<S: ReadAt + ?Sized>(src: &S, offset: u64) -> Result<Option<SectionAt>, CarError> {
    let bad = |reason: &str| CarError::BadSection { offset, reason: reason.to_string() };
    // One read for the length, the CID and a small block; a second for the rest of a large one.
    let mut head = [0u8; 4096];
    let mut got = 0;
    while got < head.len() {
        match src.read_at(&mut head[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CarError::Io(e)),
        }
    }
    if got == 0 {
        return Ok(None);
    }
    let (len, n) = varint::read(&head[..got]).ok_or_else(|| bad("bad length"))?;
    if len > MAX_SECTION {
        return Err(bad("section larger than 64 MiB"));
    }
    let mut buf = vec![0u8; len as usize];
    let have = (got - n).min(buf.len());
    buf[..have].copy_from_slice(&head[n..n + have]);
    if have < buf.len() {
        src.read_exact_at(&mut buf[have..], offset + (n + have) as u64).map_err(|_| bad("truncated section"))?;
    }
    let mut cursor = std::io::Cursor::new(&buf[..]);
    let cid = Cid::read_bytes(&mut cursor).map_err(|e| bad(&format!("bad CID: {e}")))?;
    let at = cursor.position() as usize;
    buf.drain(..at);
    Ok(Some(SectionAt { cid, data: buf, next: offset + n as u64 + len }))
}

/// Sequential reads over a [`ReadAt`].
struct PosReader<'a, S: ?Sized> {
    src: &'a S,
    pos: u64,
}

impl<S: ReadAt + ?Sized> Read for PosReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The tiny subset of CBOR a CAR header uses.
mod cbor {
    use cid::Cid;

    struct R<'a>(&'a [u8]);

    impl<'a> R<'a> {
        fn byte(&mut self) -> Result<u8, String> {
            let (&b, rest) = self.0.split_first().ok_or("truncated CBOR")?;
            self.0 = rest;
            Ok(b)
        }
        fn head(&mut self) -> Result<(u8, u64), String> {
            let b = self.byte()?;
            let major = b >> 5;
            let info = b & 0x1f;
            let v = match info {
                0..=23 => info as u64,
                24 => self.byte()? as u64,
                25 => u16::from_be_bytes([self.byte()?, self.byte()?]) as u64,
                26 => u32::from_be_bytes([self.byte()?, self.byte()?, self.byte()?, self.byte()?]) as u64,
                27 => {
                    let mut a = [0u8; 8];
                    for x in &mut a {
                        *x = self.byte()?;
                    }
                    u64::from_be_bytes(a)
                }
                _ => return Err("indefinite-length CBOR is not DAG-CBOR".into()),
            };
            Ok((major, v))
        }
        fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
            if n as usize > self.0.len() {
                return Err("truncated CBOR".into());
            }
            let (a, b) = self.0.split_at(n as usize);
            self.0 = b;
            Ok(a)
        }
        fn cid(&mut self) -> Result<Cid, String> {
            match self.head()? {
                (6, 42) => {}
                _ => return Err("root is not a CID (tag 42)".into()),
            }
            let (major, n) = self.head()?;
            if major != 2 {
                return Err("CID is not a byte string".into());
            }
            let b = self.take(n)?;
            if b.first() != Some(&0) {
                return Err("CID byte string lacks the 0x00 prefix".into());
            }
            Cid::try_from(&b[1..]).map_err(|e| format!("bad root CID: {e}"))
        }
    }

    pub fn decode_header(body: &[u8]) -> Result<(u64, Vec<Cid>), String> {
        let mut r = R(body);
        let (major, entries) = r.head()?;
        if major != 5 {
            return Err("header is not a CBOR map".into());
        }
        let mut version = None;
        let mut roots = Vec::new();
        for _ in 0..entries {
            let (m, n) = r.head()?;
            if m != 3 {
                return Err("header key is not a string".into());
            }
            match r.take(n)? {
                b"version" => match r.head()? {
                    (0, v) => version = Some(v),
                    _ => return Err("version is not an integer".into()),
                },
                b"roots" => {
                    let (m, n) = r.head()?;
                    if m != 4 {
                        return Err("roots is not an array".into());
                    }
                    for _ in 0..n {
                        roots.push(r.cid()?);
                    }
                }
                _ => return Err("unexpected key in CAR header".into()),
            }
        }
        if !r.0.is_empty() {
            return Err("trailing bytes in CAR header".into());
        }
        let version = version.ok_or("CAR header has no version")?;
        if version == 1 && roots.is_empty() {
            return Err("CARv1 header has no roots".into());
        }
        Ok((version, roots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_section_length_is_an_error_not_the_end() {
        let ten = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(read_varint(&mut &ten[..]).is_err());
        assert!(read_varint(&mut &[0x80u8][..]).is_err(), "truncated");
        assert_eq!(read_varint(&mut &[][..]).unwrap(), None, "clean end");
        assert_eq!(read_varint(&mut &[0x96u8, 0x01][..]).unwrap(), Some((150, 2)));
    }

    #[test]
    fn header_sizes() {
        let v0: Cid = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn".parse().unwrap();
        let h = header(&v0);
        assert_eq!(h.len(), 57);
        assert_eq!(h[0], 0x38);
        assert_eq!(header_len(34), 57);
        let v1 = crate::block::to_v1(&v0);
        assert_eq!(header(&v1)[0], 0x3a);
        assert_eq!(header_len(36), 59);
        let parsed = read_header(&mut &h[..]).unwrap();
        assert_eq!(parsed.roots, vec![v0]);
        assert_eq!(parsed.version, 1);
        assert_eq!(parsed.len, 57);
    }

    #[test]
    fn rejects_non_car() {
        assert!(read_header(&mut &b"hello world, not a car"[..]).is_err());
        assert!(read_header(&mut &b""[..]).is_err());
    }

    #[test]
    fn carv2_pragma_parses_as_version_2() {
        let pragma = [0x0a, 0xa1, 0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x02];
        let h = read_header(&mut &pragma[..]).unwrap();
        assert_eq!(h.version, 2);
        assert!(matches!(BlockReader::new(&pragma[..]), Err(CarError::Version(2))));
    }
}
