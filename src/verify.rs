//! Verifying a CAR independently of how it was made: what a storage provider runs on a received
//! drive and a client runs before shipping.
//!
//! One read of the CAR: the bytes go, chunk by chunk, to a piece-commitment thread and to a
//! parser that checks every section's block against its CID, rejects duplicate sections,
//! decodes dag-pb/UnixFS nodes (well-formed, file sizes consistent with their children) and
//! records every link. Afterwards the DAG must be complete from the roots: no linked block
//! missing, no block that nothing reaches. Each problem is one line naming the block.

use crate::block::{self, DAG_PB, IDENTITY, RAW};
use crate::car::{BlockReader, CarError};
use crate::commp::{self, PieceInfo};
use cid::Cid;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Problems listed at most (the count is always exact).
pub const MAX_LISTED: usize = 100;

/// What verifying a CAR found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The header's roots.
    pub roots: Vec<Cid>,
    /// Sections read.
    pub blocks: u64,
    /// CAR bytes.
    pub car_size: u64,
    /// The CAR's piece commitment (natural size; pad it for a larger deal piece).
    pub piece: PieceInfo,
    /// One line per problem (at most [`MAX_LISTED`]).
    pub problems: Vec<String>,
    /// Problems found in all.
    pub problem_count: u64,
}

impl Report {
    fn problem(&mut self, line: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(line);
        }
    }

    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problem_count == 0
    }
}

/// Errors that stop verification (the CAR cannot be read as a CAR at all).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The header or a section cannot be parsed.
    #[error(transparent)]
    Car(#[from] CarError),
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The piece commitment failed.
    #[error("{0}")]
    Piece(String),
}

/// Chunks from a channel as a reader.
struct ChunkReader {
    rx: Receiver<Arc<Vec<u8>>>,
    chunk: Arc<Vec<u8>>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What the parser keeps per block.
struct Seen {
    links: Vec<Cid>,
}

/// Verifies the CAR `r` yields (see the module docs).
pub fn verify_car(r: impl Read + Send) -> Result<Report, VerifyError> {
    verify_car_with(r, &[])
}

/// [`verify_car`], also requiring the blocks `expected` names (e.g. a batch manifest's entries,
/// read beforehand from the CAR's first blocks) to be in the CAR.
pub fn verify_car_with(r: impl Read + Send, expected: &[(String, Cid)]) -> Result<Report, VerifyError> {
    let (tx_p, rx_p) = sync_channel::<Arc<Vec<u8>>>(4);
    let (tx_b, rx_b) = sync_channel::<Arc<Vec<u8>>>(4);
    let mut r = r;
    std::thread::scope(|s| {
        let piece =
            s.spawn(move || commp::commp_of_reader(ChunkReader { rx: rx_p, chunk: Arc::new(Vec::new()), pos: 0 }));
        let parse = s.spawn(move || parse(ChunkReader { rx: rx_b, chunk: Arc::new(Vec::new()), pos: 0 }, expected));
        let mut total = 0u64;
        let read: Result<(), VerifyError> = loop {
            let mut buf = vec![0u8; 8 << 20];
            let filled = commp::read_full(&mut r, &mut buf)?;
            if filled == 0 {
                break Ok(());
            }
            buf.truncate(filled);
            total += filled as u64;
            let chunk = Arc::new(buf);
            // A consumer that stopped (an unreadable CAR) makes its send fail: stop reading.
            if tx_p.send(chunk.clone()).is_err() || tx_b.send(chunk).is_err() {
                break Ok(());
            }
        };
        drop(tx_p);
        drop(tx_b);
        read?;
        let mut report = parse.join().expect("parser thread")?;
        report.car_size = total;
        report.piece = piece.join().expect("commP thread").map_err(|e| VerifyError::Piece(e.to_string()))?;
        Ok(report)
    })
}

fn parse(r: ChunkReader, expected: &[(String, Cid)]) -> Result<Report, VerifyError> {
    let (header, mut blocks) = BlockReader::new(io::BufReader::with_capacity(1 << 20, r))?;
    let mut report = Report {
        roots: header.roots.clone(),
        blocks: 0,
        car_size: 0,
        piece: PieceInfo { root: [0; 32], payload_size: 0, padded_size: 0, unpadded_size: 0 },
        problems: Vec::new(),
        problem_count: 0,
    };
    if header.roots.is_empty() {
        report.problem("CAR header: no root".into());
    }
    let mut seen: HashMap<Cid, Seen> = HashMap::new();
    while let Some((cid, data)) = blocks.next_block()? {
        report.blocks += 1;
        let code = cid.hash().code();
        if code != block::SHA2_256 && code != IDENTITY {
            report.problem(format!("block {cid}: multihash 0x{code:x} cannot be checked (carload checks sha2-256)"));
        } else if !block::verify(&cid, &data) {
            report.problem(format!("block {cid}: its data does not hash to its CID"));
            continue;
        }
        if seen.contains_key(&cid) {
            report.problem(format!("block {cid}: duplicate section"));
            continue;
        }
        let links = match cid.codec() {
            DAG_PB => match crate::dagpb::decode(&data) {
                Ok(node) => {
                    check_unixfs(&cid, &node, &mut report);
                    node.links.into_iter().map(|l| l.cid).collect()
                }
                Err(e) => {
                    report.problem(format!("block {cid}: not a valid dag-pb node ({e})"));
                    Vec::new()
                }
            },
            RAW => Vec::new(),
            other => {
                report.problem(format!("block {cid}: codec 0x{other:x} is not UnixFS (dag-pb or raw)"));
                Vec::new()
            }
        };
        seen.insert(cid, Seen { links });
    }
    // Complete from the roots: nothing missing, nothing unreachable.
    let mut reached: HashSet<Cid> = HashSet::with_capacity(seen.len());
    let mut stack: Vec<(Cid, Option<Cid>)> = header.roots.iter().map(|r| (*r, None)).collect();
    while let Some((cid, parent)) = stack.pop() {
        if cid.hash().code() == IDENTITY || !reached.insert(cid) {
            continue;
        }
        match seen.get(&cid) {
            Some(s) => stack.extend(s.links.iter().map(|l| (*l, Some(cid)))),
            None => match parent {
                Some(p) => report.problem(format!("block {cid} (linked from {p}): missing")),
                None => report.problem(format!("root {cid}: missing")),
            },
        }
    }
    for (what, cid) in expected {
        if !seen.contains_key(cid) {
            report.problem(format!("{what} ({cid}): not in the CAR"));
        }
    }
    let mut extra: Vec<&Cid> = seen.keys().filter(|c| !reached.contains(*c)).collect();
    extra.sort_by_key(|c| c.to_string());
    for c in extra {
        report.problem(format!("block {c}: not reachable from the root (extra block)"));
    }
    Ok(report)
}

/// A dag-pb node must carry UnixFS data; a file node's sizes must add up.
fn check_unixfs(cid: &Cid, node: &crate::dagpb::Node, report: &mut Report) {
    let Some(data) = node.data.as_deref() else {
        report.problem(format!("block {cid}: dag-pb node without UnixFS data"));
        return;
    };
    let Some(d) = crate::unixfs::decode(data) else {
        report.problem(format!("block {cid}: UnixFS data does not decode"));
        return;
    };
    // File (2) and raw (0) nodes: one blocksize per link, and filesize = inline data + blocksizes.
    if matches!(d.kind, 0 | 2) && !node.links.is_empty() {
        if d.blocksizes.len() != node.links.len() {
            report.problem(format!("block {cid}: {} links but {} block sizes", node.links.len(), d.blocksizes.len()));
        }
        let sum = d.blocksizes.iter().try_fold(d.data.as_ref().map_or(0, |x| x.len() as u64), |a, b| a.checked_add(*b));
        if d.filesize.is_some() && sum != d.filesize {
            report.problem(format!("block {cid}: file size {:?} is not the sum of its parts {sum:?}", d.filesize));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::importer::memory::{car_bytes, file_dag};
    use crate::profile::Profile;

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn car_of(data: &[u8]) -> Vec<u8> {
        car_bytes(&file_dag(data, &Profile { chunk_size: 1024, ..Profile::default() }))
    }

    #[test]
    fn a_good_car_passes_and_its_piece_is_the_commp() {
        let data = bytes(10_000, 7);
        let car = car_of(&data);
        let r = verify_car(&car[..]).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.car_size, car.len() as u64);
        assert_eq!(r.piece, crate::commp::commp_of_reader(&car[..]).unwrap());
        assert!(r.blocks > 10);
    }

    #[test]
    fn corrupt_missing_duplicate_and_extra_blocks_are_each_named() {
        let data = bytes(10_000, 13);
        let car = car_of(&data);
        let (h, mut br) = BlockReader::new(&car[..]).unwrap();
        let mut blocks = Vec::new();
        while let Some(b) = br.next_block().unwrap() {
            blocks.push(b);
        }
        let write = |bs: &[(Cid, Vec<u8>)]| {
            let mut out = crate::car::header(&h.roots[0]);
            for (c, d) in bs {
                out.extend(crate::car::section_prefix(c, d.len()));
                out.extend(d);
            }
            out
        };
        // A flipped byte in a leaf.
        let mut bad = blocks.clone();
        let last = bad.len() - 1;
        bad[last].1[0] ^= 1;
        let r = verify_car(&write(&bad)[..]).unwrap();
        assert!(r.problems.iter().any(|p| p.contains("does not hash to its CID")), "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.contains("missing")));
        // A missing leaf, a duplicated one, an extra one.
        let mut v = blocks.clone();
        let gone = v.remove(last);
        v.push(blocks[1].clone());
        let stray = crate::block::Block::new(crate::block::CidVersion::V1, RAW, b"stray".to_vec());
        v.push((stray.cid, stray.data.clone()));
        let r = verify_car(&write(&v)[..]).unwrap();
        let text = r.problems.join("\n");
        assert!(text.contains(&format!("block {} (linked from", gone.0)) && text.contains("missing"), "{text}");
        assert!(text.contains("duplicate section"), "{text}");
        assert!(text.contains(&format!("block {}: not reachable", stray.cid)), "{text}");
        assert_eq!(r.problem_count, 3);
    }
}
