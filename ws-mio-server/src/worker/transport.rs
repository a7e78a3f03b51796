//! What carries a connection's bytes: the socket itself (ws://, and the admin listener), or
//! TLS over it (wss://). The event loop reads and writes through this, by enum dispatch, so a
//! plain connection pays one branch and nothing else.

use super::tls_transport::TlsStream;
use mio::net::TcpStream;
use std::io::{self, IoSlice, Read, Write};

pub(crate) enum Transport {
    Plain(TcpStream),
    /// Boxed: rustls's connection state is large, and plain connections should not pay its
    /// size in the socket table.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// Plaintext read (see [`TlsStream::read`]).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.read(buf),
            Transport::Tls(tls) => tls.read(buf),
        }
    }

    /// Plaintext written: `send` for one slice (the kernel's writev path costs more: the
    /// iovec import and the file-position lock a socket does not need), `writev` for several.
    pub(crate) fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) if slices.len() == 1 => socket.write(&slices[0]),
            Transport::Plain(socket) => socket.write_vectored(slices),
            Transport::Tls(tls) => tls.write_vectored(slices),
        }
    }

    /// Bytes the transport itself buffers go to the socket (TLS's ciphertext; nothing on a
    /// plain socket).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(tls) => tls.flush(),
        }
    }

    /// Whether a read shorter than the buffer says the socket is empty. Not through TLS: a
    /// short plaintext read may leave ciphertext in the socket.
    pub(crate) fn short_read_drains(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// Heap bytes the transport holds (see [`TlsStream::held`]).
    pub(crate) fn held(&self) -> usize {
        match self {
            Transport::Plain(_) => 0,
            Transport::Tls(tls) => tls.held(),
        }
    }

    /// The connection ends: TLS says so (close_notify); the socket closes when dropped.
    pub(crate) fn close(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.close();
        }
    }

    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(tls) => tls.socket(),
        }
    }
}
