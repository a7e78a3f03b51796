//! One wss connection's TLS, driven sans-IO in the worker's event loop: rustls's
//! [`ServerConnection`] reads ciphertext from the non-blocking socket (`read_tls`), decrypts it
//! (`process_new_packets`) and hands the plaintext out (`reader`); plaintext from the worker's
//! queue goes in (`writer`) and its ciphertext out to the socket (`write_tls`). It looks to the
//! event loop like the socket itself: reads give plaintext, `Ok(0)` at the end of the stream,
//! `WouldBlock` when the socket has nothing; writes take plaintext, `WouldBlock` while
//! ciphertext waits for the socket.
//!
//! Ciphertext waiting for the socket is bounded ([`CIPHERTEXT_LIMIT`]): the writer takes no
//! more plaintext while it is there, so a peer that does not read leaves the bytes in the
//! worker's queue, where backpressure sees them, as on a plain connection.

use rustls::ServerConnection;
use std::io::{self, ErrorKind, IoSlice, Read, Write};

/// Ciphertext buffered for the socket past which the writer takes no more plaintext (rustls
/// may go past it by one record).
pub(crate) const CIPHERTEXT_LIMIT: usize = 64 << 10;

/// What rustls holds for a connection besides buffered ciphertext, counted in its memory: its
/// state, the record being assembled (up to a record, 16 KiB and its overhead) and decrypted
/// input not yet read (up to a record; it is always read before more ciphertext is taken).
pub(crate) const TLS_STATE: usize = 40 << 10;

/// A TLS connection over the stream `S` (a mio socket in the server).
pub(crate) struct TlsStream<S> {
    socket: S,
    tls: ServerConnection,
    /// The socket reached its end: no more ciphertext will come.
    socket_eof: bool,
}

impl<S: Read + Write> TlsStream<S> {
    pub(crate) fn new(socket: S, mut tls: ServerConnection) -> TlsStream<S> {
        tls.set_buffer_limit(Some(CIPHERTEXT_LIMIT));
        TlsStream {
            socket,
            tls,
            socket_eof: false,
        }
    }

    pub(crate) fn socket(&mut self) -> &mut S {
        &mut self.socket
    }

    /// Plaintext into `buf`: what rustls has decrypted, else what the socket has, taken until
    /// there is some. `Ok(0)` when the peer has ended the stream (close_notify, or the socket's
    /// end: a truncation the WebSocket close handshake notices).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.socket_eof {
                return Ok(0);
            }
            match self.tls.read_tls(&mut self.socket) {
                Ok(0) => self.socket_eof = true,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // The alert rustls queued goes out if the socket takes it now.
                let _ = self.flush();
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
            // Handshake messages, key updates: out now, or on the next writable event.
            match self.flush() {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Plaintext from `slices`, encrypted, as much as the ciphertext bound allows once what
    /// was buffered has gone to the socket. `WouldBlock` while earlier ciphertext still waits.
    pub(crate) fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush()?;
        let n = self.tls.writer().write_vectored(slices)?;
        match self.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if n == 0 {
            // Only before the handshake ends: rustls holds the plaintext for it; the rest waits.
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Buffered ciphertext to the socket until it is all gone (`Ok`) or the socket would block.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.socket)? == 0 {
                return Err(ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Heap bytes this connection's TLS holds, for the memory budget: its state, and the
    /// ciphertext bound while ciphertext waits (counted at the bound, not measured: rustls
    /// does not say how much it buffers).
    pub(crate) fn held(&self) -> usize {
        TLS_STATE
            + if self.tls.wants_write() {
                CIPHERTEXT_LIMIT
            } else {
                0
            }
    }

    /// The end of the connection: close_notify, sent if the socket takes it now.
    pub(crate) fn close(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush();
    }
}
