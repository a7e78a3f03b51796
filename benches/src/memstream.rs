//! An in-memory socket for the codec benchmarks: every implementation reads the same bytes in
//! the same pieces, and what it writes is copied once into a scratch area, as a socket copies
//! into the kernel's buffer, then counted and dropped. So the benchmarks time the codec, and an
//! implementation that hands the socket its payload in place (vectored writes) pays the same one
//! copy it would pay on a real socket.

use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Reads `input` at most `read_size` bytes at a time, as a socket would hand it out. Reading past
/// the end fails (`WouldBlock` for blocking readers, `Pending` for async ones), so a benchmark
/// that expects more messages than the input holds stops loudly instead of measuring nothing.
#[derive(Debug)]
pub struct MemStream<'a> {
    input: &'a [u8],
    pos: usize,
    read_size: usize,
    /// Where written bytes are copied, round and round.
    scratch: Vec<u8>,
    scratch_at: usize,
    /// Bytes written so far.
    pub written: usize,
}

/// The scratch area: the size of a socket send buffer.
const SCRATCH: usize = 256 << 10;

impl<'a> MemStream<'a> {
    /// A stream over `input` handing out `read_size` bytes per read.
    pub fn new(input: &'a [u8], read_size: usize) -> Self {
        MemStream {
            input,
            pos: 0,
            read_size,
            scratch: Vec::new(),
            scratch_at: 0,
            written: 0,
        }
    }

    /// Whether every input byte was read.
    pub fn is_drained(&self) -> bool {
        self.pos == self.input.len()
    }

    fn take(&mut self, room: usize) -> &'a [u8] {
        let n = room.min(self.read_size).min(self.input.len() - self.pos);
        let piece = &self.input[self.pos..self.pos + n];
        self.pos += n;
        piece
    }

    fn sink(&mut self, buf: &[u8]) -> usize {
        if self.scratch.is_empty() {
            self.scratch = vec![0; SCRATCH];
        }
        let mut rest = buf;
        while !rest.is_empty() {
            if self.scratch_at == SCRATCH {
                self.scratch_at = 0;
            }
            let n = rest.len().min(SCRATCH - self.scratch_at);
            self.scratch[self.scratch_at..self.scratch_at + n].copy_from_slice(&rest[..n]);
            self.scratch_at += n;
            rest = &rest[n..];
        }
        std::hint::black_box(&self.scratch);
        self.written += buf.len();
        buf.len()
    }
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let piece = self.take(buf.len());
        if piece.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..piece.len()].copy_from_slice(piece);
        Ok(piece.len())
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.sink(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(bufs.iter().map(|b| self.sink(b)).sum())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for MemStream<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let piece = this.take(buf.remaining());
        if piece.is_empty() && buf.remaining() > 0 {
            return Poll::Pending;
        }
        buf.put_slice(piece);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for MemStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().sink(buf)))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(Ok(bufs.iter().map(|b| this.sink(b)).sum()))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs a future that never waits (one over a [`MemStream`] with enough input) to completion
/// with a single poll: no runtime, so the async codec is timed without a scheduler.
///
/// Panics if the future returns `Pending`.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory stream ran out of input"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn reads_in_pieces_and_counts_writes() {
        let input = [7u8; 10];
        let mut s = MemStream::new(&input, 4);
        let mut buf = [0u8; 8];
        assert_eq!(Read::read(&mut s, &mut buf).unwrap(), 4);
        assert_eq!(block_on(AsyncReadExt::read(&mut s, &mut buf)).unwrap(), 4);
        assert_eq!(Read::read(&mut s, &mut buf).unwrap(), 2);
        assert!(s.is_drained());
        assert_eq!(
            Read::read(&mut s, &mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        block_on(AsyncWriteExt::write_all(&mut s, b"abc")).unwrap();
        Write::write_all(&mut s, b"de").unwrap();
        assert_eq!(s.written, 5);
    }
}
