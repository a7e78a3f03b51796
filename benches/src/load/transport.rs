//! A load connection's transport: the non-blocking socket for ws://, or rustls's client over it
//! for wss://, driven sans-IO on the pool's event loop as the server drives its side. Reads give
//! plaintext (`Ok(0)` at the end of the stream, `WouldBlock` when the socket has nothing);
//! writes take plaintext, encrypted at once and flushed as far as the socket takes it, with the
//! ciphertext left over bounded by rustls's buffer limit (its default, 64 KiB).
//!
//! The HTTP request may be written before the TLS handshake ends: rustls holds it and sends it
//! once the handshake is done.

use mio::net::TcpStream;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::sync::Arc;
pub use ws_tokio::tokio_rustls::rustls::pki_types::ServerName;
use ws_tokio::tokio_rustls::rustls::{ClientConfig, ClientConnection};

/// Where wss connections go: the client configuration and the name the certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    /// Roots and protocol versions.
    pub config: Arc<ClientConfig>,
    /// The server's name (or IP address) as its certificate states it.
    pub name: ServerName<'static>,
}

/// TCP, or TLS over TCP.
pub enum Transport {
    /// ws://.
    Plain(TcpStream),
    /// wss://.
    Tls(Box<(TcpStream, ClientConnection)>),
}

impl Transport {
    /// `socket`, with TLS to `tls` if given.
    pub fn new(socket: TcpStream, tls: Option<&TlsTarget>) -> io::Result<Transport> {
        match tls {
            None => Ok(Transport::Plain(socket)),
            Some(target) => {
                let conn = ClientConnection::new(target.config.clone(), target.name.clone())
                    .map_err(io::Error::other)?;
                Ok(Transport::Tls(Box::new((socket, conn))))
            }
        }
    }

    /// The socket underneath.
    pub fn socket(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(tls) => &mut tls.0,
        }
    }

    /// Whether a read shorter than the buffer says the socket is empty (not through TLS: the
    /// socket may still hold ciphertext).
    pub fn short_read_drains(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// Plaintext into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (socket, tls) = match self {
            Transport::Plain(socket) => return socket.read(buf),
            Transport::Tls(tls) => (&mut tls.0, &mut tls.1),
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if tls.read_tls(socket)? == 0 {
                return Ok(0);
            }
            if let Err(e) = tls.process_new_packets() {
                let _ = flush(socket, tls);
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
            match flush(socket, tls) {
                Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
    }

    /// Plaintext from `slices`: `send` for one slice, `writev` for several, on a plain socket.
    pub fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        let (socket, tls) = match self {
            Transport::Plain(socket) if slices.len() == 1 => return socket.write(&slices[0]),
            Transport::Plain(socket) => return socket.write_vectored(slices),
            Transport::Tls(tls) => (&mut tls.0, &mut tls.1),
        };
        flush(socket, tls)?;
        let n = tls.writer().write_vectored(slices)?;
        match flush(socket, tls) {
            Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if n == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// What TLS buffered goes to the socket, as far as it takes it.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(tls) => match flush(&mut tls.0, &mut tls.1) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
                other => other,
            },
        }
    }
}

fn flush(socket: &mut TcpStream, tls: &mut ClientConnection) -> io::Result<()> {
    while tls.wants_write() {
        if tls.write_tls(socket)? == 0 {
            return Err(ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}
