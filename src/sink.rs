//! Where CAR bytes go. The streaming importer writes every section once at its final offset;
//! internal nodes (and the header) are reserved first and filled when known, so writes arrive
//! slightly out of order. Sinks turn that into a file written in place, or into a sequential
//! stream on a second pass.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Receives CAR bytes at their final offsets.
pub trait Sink {
    /// Space `offset..offset+len` is reserved for a section that will be written later.
    fn reserve(&mut self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// Writes `data` at `offset`. Every byte is written once; ranges never overlap.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Writes `data` at `offset`, taking the buffer (a sink that keeps buffers keeps a large
    /// one as it is instead of copying it: a folder block of tens of MB).
    fn write_owned(&mut self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        self.write_at(offset, &data)
    }
    /// The reservation at `offset` is withdrawn (its block repeated an earlier one); nothing was
    /// written after it, and the next write reuses its offset.
    fn retract(&mut self, _offset: u64) -> io::Result<()> {
        Ok(())
    }
}

/// A consumer of bytes at offsets, such as the piece hasher.
pub trait OffsetWrite {
    /// Takes `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Takes a shared buffer at `offset`, possibly keeping it while it works on it in the
    /// background; returns the buffers it no longer uses (this one or earlier ones).
    fn write_shared(&mut self, offset: u64, buf: Arc<Vec<u8>>) -> io::Result<Vec<Arc<Vec<u8>>>> {
        self.write_at(offset, &buf)?;
        Ok(vec![buf])
    }
}

const STAGE: usize = 8 << 20;

/// Coalesces contiguous writes into one buffer of up to [`STAGE`] bytes and hands each finished
/// run to an `emit(offset, buffer)` callback, which must leave the buffer empty.
struct Staging {
    buf: Vec<u8>,
    offset: u64,
}

type Emit<'a> = dyn FnMut(u64, &mut Vec<u8>) -> io::Result<()> + 'a;

impl Staging {
    fn new() -> Self {
        Staging { buf: Vec::with_capacity(STAGE), offset: 0 }
    }

    /// Stages `data` at `offset`, emitting the current run first if `data` does not continue it.
    fn push(&mut self, offset: u64, data: &[u8], emit: &mut Emit<'_>) -> io::Result<()> {
        if offset != self.offset + self.buf.len() as u64 {
            self.emit(emit)?;
            self.offset = offset;
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= STAGE {
            self.emit(emit)?;
        }
        Ok(())
    }

    /// Emits what is staged.
    fn emit(&mut self, emit: &mut Emit<'_>) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let len = self.buf.len() as u64;
        emit(self.offset, &mut self.buf)?;
        self.buf.clear();
        self.offset += len;
        Ok(())
    }
}

/// Writes CAR sections in place into a file (positional writes) on the calling thread;
/// contiguous writes are staged into large buffers. (`prepare` uses [`ChannelSink`] to write on
/// another thread and tee into commP.)
pub struct FileSink<'a> {
    file: &'a File,
    stage: Staging,
}

impl<'a> FileSink<'a> {
    /// A sink writing into `file`.
    pub fn new(file: &'a File) -> Self {
        FileSink { file, stage: Staging::new() }
    }

    /// Writes out everything staged.
    pub fn flush(&mut self) -> io::Result<()> {
        let file = self.file;
        self.stage.emit(&mut |offset, buf| file.write_all_at(buf, offset))
    }
}

impl Sink for FileSink<'_> {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let file = self.file;
        self.stage.push(offset, data, &mut |at, buf| file.write_all_at(buf, at))
    }
}

/// First pass of a two-pass sequential write: records the contents of every reservation (the
/// header and internal nodes, a tiny fraction of the data) and discards the rest.
#[derive(Default, Clone)]
pub struct RecordingSink {
    recorded: Vec<Option<Vec<u8>>>,
    open: std::collections::HashMap<u64, usize>,
}

impl Sink for RecordingSink {
    fn reserve(&mut self, offset: u64, _len: u64) -> io::Result<()> {
        self.open.insert(offset, self.recorded.len());
        self.recorded.push(None);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(i) = self.open.remove(&offset) {
            self.recorded[i] = Some(data.to_vec());
        }
        Ok(())
    }
    fn retract(&mut self, offset: u64) -> io::Result<()> {
        self.open.remove(&offset);
        Ok(())
    }
}

/// Second pass of a two-pass sequential write: emits reserved sections from the first pass's
/// record as soon as they are reserved, so the output is written strictly in order.
pub struct ReplaySink<W: Write> {
    out: W,
    written: u64,
    recorded: Vec<Option<Vec<u8>>>,
    next: usize,
    open: std::collections::HashMap<u64, usize>,
}

impl<W: Write> ReplaySink<W> {
    /// Replays `first`'s record into `out`.
    pub fn new(first: RecordingSink, out: W) -> Self {
        ReplaySink { out, written: 0, recorded: first.recorded, next: 0, open: Default::default() }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Returns the inner writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn changed() -> io::Error {
    io::Error::other("input changed between the two passes")
}

impl<W: Write> Sink for ReplaySink<W> {
    fn reserve(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let i = self.next;
        self.next += 1;
        self.open.insert(offset, i);
        if let Some(Some(bytes)) = self.recorded.get(i) {
            if bytes.len() as u64 != len || offset != self.written {
                return Err(changed());
            }
            self.out.write_all(bytes)?;
            self.written += len;
        }
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(i) = self.open.remove(&offset) {
            return match self.recorded.get(i) {
                Some(Some(bytes)) if bytes == data => Ok(()),
                _ => Err(changed()),
            };
        }
        if offset != self.written {
            return Err(changed());
        }
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }
    fn retract(&mut self, offset: u64) -> io::Result<()> {
        match self.open.remove(&offset).map(|i| &self.recorded[i]) {
            Some(None) => Ok(()),
            _ => Err(changed()),
        }
    }
}

/// Collects a CAR in memory (tests and small DAGs).
#[derive(Default)]
pub struct VecSink {
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Sink for VecSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset as usize + data.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
    fn retract(&mut self, offset: u64) -> io::Result<()> {
        self.bytes.truncate(offset as usize);
        Ok(())
    }
}

/// A writer that copies everything to `out`, feeds it to the piece hasher when given, and
/// counts the bytes: the sequential path from CAR bytes to output and commP.
pub struct TeeWriter<'a> {
    out: &'a mut dyn Write,
    hasher: Option<&'a mut crate::commp::PieceHasher>,
    written: u64,
}

impl<'a> TeeWriter<'a> {
    /// Tees into `out` and `hasher`.
    pub fn new(out: &'a mut dyn Write, hasher: Option<&'a mut crate::commp::PieceHasher>) -> Self {
        TeeWriter { out, hasher, written: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

impl Write for TeeWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write_all(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.write_all(buf)?;
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A [`Sink`] that stages contiguous writes into large buffers and hands them to another thread
/// (see [`drain_to`]), so reading and hashing the input overlap with writing and commP.
pub struct ChannelSink {
    tx: std::sync::mpsc::SyncSender<(u64, Vec<u8>)>,
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    stage: Staging,
}

fn writer_gone() -> io::Error {
    io::Error::other("the output writer stopped")
}

impl ChannelSink {
    /// A sink sending staged buffers on `tx`; used buffers come back on `spare`.
    pub fn new(tx: std::sync::mpsc::SyncSender<(u64, Vec<u8>)>, spare: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelSink { tx, spare, stage: Staging::new() }
    }

    /// Sends what is staged and closes the channel.
    pub fn finish(mut self) -> io::Result<()> {
        let (tx, spare) = (&self.tx, &self.spare);
        self.stage.emit(&mut |offset, buf| send(tx, spare, offset, buf))
    }
}

/// Sends the staged buffer, leaving a recycled (or new) empty one in its place.
fn send(
    tx: &std::sync::mpsc::SyncSender<(u64, Vec<u8>)>,
    spare: &std::sync::mpsc::Receiver<Vec<u8>>,
    offset: u64,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let mut next = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(STAGE));
    next.clear();
    let full = std::mem::replace(buf, next);
    tx.send((offset, full)).map_err(|_| writer_gone())
}

impl Sink for ChannelSink {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let (tx, spare) = (&self.tx, &self.spare);
        self.stage.push(offset, data, &mut |at, buf| send(tx, spare, at, buf))
    }

    fn write_owned(&mut self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        if data.len() < STAGE {
            return self.write_at(offset, &data);
        }
        let (tx, spare) = (&self.tx, &self.spare);
        self.stage.emit(&mut |at, buf| send(tx, spare, at, buf))?;
        // Sent as it is; it comes back as a spare buffer like any other.
        tx.send((offset, data)).map_err(|_| writer_gone())
    }
}

/// The other end of a [`ChannelSink`]: writes each buffer into `file` at its offset (with
/// direct I/O when `direct` and the file system gains from it: [`crate::blockwrite`]; the last
/// block padded, so the caller cuts the file to its length) and, on a third thread, hands it to
/// `tee` at the same time, so writing and hashing overlap; buffers go back on `spare`.
pub fn drain_to(
    rx: std::sync::mpsc::Receiver<(u64, Vec<u8>)>,
    spare: std::sync::mpsc::Sender<Vec<u8>>,
    file: &File,
    direct: bool,
    tee: Option<&mut (dyn OffsetWrite + Send)>,
) -> io::Result<()> {
    let mut out = crate::blockwrite::BlockWriter::new(file, direct);
    let Some(tee) = tee else {
        for (offset, buf) in rx {
            out.write_at(offset, &buf)?;
            let _ = spare.send(buf);
        }
        return out.finish();
    };
    std::thread::scope(|s| {
        // Each buffer goes to the hasher before it is written, so hashing a buffer does not wait
        // for its write (the writer still waits when the hasher is two buffers behind);
        // whichever finishes with a buffer last recycles it.
        let (hash_tx, hash_rx) = std::sync::mpsc::sync_channel::<(u64, Arc<Vec<u8>>)>(2);
        let hasher_spare = spare.clone();
        let hasher = s.spawn(move || -> io::Result<()> {
            for (offset, buf) in hash_rx {
                for done in tee.write_shared(offset, buf)? {
                    if let Some(buf) = Arc::into_inner(done) {
                        let _ = hasher_spare.send(buf);
                    }
                }
            }
            Ok(())
        });
        let mut written = Ok(());
        for (offset, buf) in rx {
            let buf = Arc::new(buf);
            if hash_tx.send((offset, Arc::clone(&buf))).is_err() {
                break; // the hasher failed; its error is reported below
            }
            if let Err(e) = out.write_at(offset, &buf) {
                written = Err(e);
                break;
            }
            if let Some(buf) = Arc::into_inner(buf) {
                let _ = spare.send(buf);
            }
        }
        drop(hash_tx);
        let hashed = hasher.join().expect("hasher thread does not panic");
        written.and_then(|()| out.finish()).and(hashed)
    })
}

#[cfg(test)]
mod owned_write_tests {
    use super::*;

    /// A large owned write goes down the channel as it is (no copy), after what was staged.
    #[test]
    fn a_large_owned_write_is_sent_without_a_copy() {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let (_spare_tx, spare_rx) = std::sync::mpsc::channel();
        let mut sink = ChannelSink::new(tx, spare_rx);
        sink.write_at(0, b"head").unwrap();
        let big = vec![7u8; STAGE + 1];
        let at = big.as_ptr();
        sink.write_owned(4, big).unwrap();
        sink.finish().unwrap();
        let sent: Vec<(u64, Vec<u8>)> = rx.into_iter().collect();
        assert_eq!(sent[0], (0, b"head".to_vec()));
        assert_eq!((sent[1].0, sent[1].1.as_ptr(), sent[1].1.len()), (4, at, STAGE + 1));
        assert_eq!(sent.len(), 2);
    }
}
