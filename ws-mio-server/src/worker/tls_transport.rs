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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig};
    use std::collections::VecDeque;
    use std::sync::Arc;

    /// A socket in memory: reads what the test put in `inbox` (then `WouldBlock`, or `Ok(0)`
    /// once `closed`), takes writes into `outbox` until it holds `room` bytes.
    #[derive(Default)]
    struct Pipe {
        inbox: VecDeque<u8>,
        closed: bool,
        outbox: Vec<u8>,
        room: usize,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.inbox.is_empty() {
                return if self.closed {
                    Ok(0)
                } else {
                    Err(ErrorKind::WouldBlock.into())
                };
            }
            self.inbox.read(buf)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room.saturating_sub(self.outbox.len()));
            if n == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            self.outbox.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A server over a pipe and a client, their handshake done.
    fn pair() -> (TlsStream<Pipe>, ClientConnection) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(cert.der().to_vec()))
            .unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(Arc::new(client), name).unwrap();
        let pipe = Pipe {
            room: usize::MAX,
            ..Pipe::default()
        };
        let mut server = TlsStream::new(pipe, ServerConnection::new(Arc::new(server)).unwrap());
        let mut buf = [0u8; 1024];
        while client.is_handshaking() {
            to_server(&mut client, &mut server);
            // Handshake only: no plaintext yet.
            assert_eq!(
                server.read(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            to_client(&mut server, &mut client);
        }
        // The client's Finished (and the server's tickets back).
        to_server(&mut client, &mut server);
        assert_eq!(
            server.read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(!server.tls.is_handshaking());
        to_client(&mut server, &mut client);
        (server, client)
    }

    fn to_server(client: &mut ClientConnection, server: &mut TlsStream<Pipe>) {
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        server.socket().inbox.extend(wire);
    }

    fn to_client(server: &mut TlsStream<Pipe>, client: &mut ClientConnection) {
        let wire = std::mem::take(&mut server.socket().outbox);
        let mut wire = &wire[..];
        while !wire.is_empty() {
            client.read_tls(&mut wire).unwrap();
            client.process_new_packets().unwrap();
        }
    }

    #[test]
    fn plaintext_both_ways_and_close_notify_ends_the_stream() {
        let (mut server, mut client) = pair();
        client.writer().write_all(b"from the client").unwrap();
        to_server(&mut client, &mut server);
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"from the client");
        assert_eq!(
            server.read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );

        let n = server
            .write_vectored(&[IoSlice::new(b"from "), IoSlice::new(b"the server")])
            .unwrap();
        assert_eq!(n, 15);
        to_client(&mut server, &mut client);
        let mut got = [0u8; 64];
        let n = client.reader().read(&mut got).unwrap();
        assert_eq!(&got[..n], b"from the server");

        client.send_close_notify();
        to_server(&mut client, &mut server);
        assert_eq!(server.read(&mut buf).unwrap(), 0);
        server.close();
        to_client(&mut server, &mut client);
        assert_eq!(client.reader().read(&mut got).unwrap(), 0, "close_notify");
    }

    #[test]
    fn ciphertext_for_a_socket_that_takes_nothing_stays_bounded() {
        let (mut server, _client) = pair();
        assert_eq!(server.held(), TLS_STATE);
        server.socket().room = 0;
        let chunk = vec![7u8; 1 << 20];
        let taken = server.write_vectored(&[IoSlice::new(&chunk)]).unwrap();
        // rustls takes up to the bound (and may pass it by one record), no more.
        assert!(taken <= CIPHERTEXT_LIMIT + (16 << 10), "took {taken}");
        assert!(taken >= CIPHERTEXT_LIMIT / 2, "took {taken}");
        assert_eq!(server.held(), TLS_STATE + CIPHERTEXT_LIMIT);
        for _ in 0..10 {
            let e = server.write_vectored(&[IoSlice::new(&chunk)]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::WouldBlock);
        }
        // The socket takes it all again: the ciphertext goes, the writer takes more.
        server.socket().room = usize::MAX;
        server.flush().unwrap();
        assert_eq!(server.held(), TLS_STATE);
        assert!(server.write_vectored(&[IoSlice::new(&chunk)]).unwrap() > 0);
    }

    #[test]
    fn garbage_is_a_tls_error_and_the_socket_end_is_the_stream_end() {
        let (mut server, _client) = pair();
        server.socket().inbox.extend(b"GET / HTTP/1.1\r\n\r\n");
        let mut buf = [0u8; 64];
        assert_eq!(
            server.read(&mut buf).unwrap_err().kind(),
            ErrorKind::InvalidData
        );

        let (mut server, _client) = pair();
        server.socket().closed = true;
        assert_eq!(server.read(&mut buf).unwrap(), 0);
    }
}
