//! The testees Autobahn|Testsuite runs against: a blocking driver that moves bytes between a
//! `TcpStream` (or TLS over one, for wss) and a `ws_proto::Connection`, used by the
//! `autobahn-server` stand-in (an echo server over std::net) and by `autobahn-client`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ws_proto::deflate::{DeflateConfig, PerMessageDeflate};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::server::{Accept, ServerHandshake};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{Config, Connection, Event, Message, Role};
use ws_tokio::tokio_rustls::rustls::pki_types::ServerName;
use ws_tokio::tokio_rustls::rustls::{ClientConfig, ClientConnection, StreamOwned};

/// Limits for conformance runs: Autobahn's largest case (9.1.6/9.2.6) sends 16 MiB messages.
pub fn config() -> Config {
    Config {
        max_frame_size: 32 << 20,
        max_message_size: 32 << 20,
        ..Config::default()
    }
}

/// A client's transport: TCP for ws://, rustls over TCP for wss://.
pub enum Stream {
    /// ws://.
    Plain(TcpStream),
    /// wss://.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            // A peer that closes without close_notify has ended the stream all the same; the
            // WebSocket closing handshake is what says whether it ended cleanly.
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Where a client connects: `host:port`, and the TLS configuration for wss.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub host_port: String,
    /// Set for wss://.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Endpoint {
    /// `ws://host:port` or `wss://host:port` (a trailing `/` allowed); wss trusts the CA
    /// certificates in the PEM file `ca` if given, else the Mozilla roots.
    pub fn parse(url: &str, ca: Option<&str>) -> io::Result<Endpoint> {
        let bad = || io::Error::new(ErrorKind::InvalidInput, "the url must be ws:// or wss://");
        let (secure, rest) = match url.split_once("://").ok_or_else(bad)? {
            ("ws", rest) => (false, rest),
            ("wss", rest) => (true, rest),
            _ => return Err(bad()),
        };
        let tls = match (secure, ca) {
            (false, _) => None,
            (true, Some(ca)) => Some(ws_tokio::tls::client_config_with_ca_file(ca.as_ref())?),
            (true, None) => Some(ws_tokio::tls::webpki_client_config()),
        };
        Ok(Endpoint {
            host_port: rest.trim_end_matches('/').to_string(),
            tls,
        })
    }

    /// A connection to it, TLS handshake done for wss.
    pub fn open(&self) -> io::Result<Stream> {
        let tcp = TcpStream::connect(&self.host_port)?;
        tcp.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let host = match self.host_port.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => &self.host_port,
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(tls.clone(), name)
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// A blocking socket a connection can be driven over.
pub trait Socket: Read + Write {
    /// How long a read may wait (None: for ever).
    fn set_read_timeout(&self, wait: Option<Duration>) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn set_read_timeout(&self, wait: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, wait)
    }
}

impl Socket for Stream {
    fn set_read_timeout(&self, wait: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(wait)
    }
}

/// Reads until a handshake head is complete. Returns the bytes that followed it.
fn read_head<T>(
    stream: &mut impl Read,
    mut step: impl FnMut(&[u8]) -> io::Result<Option<(T, usize)>>,
) -> io::Result<(T, Vec<u8>)> {
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        if let Some((head, used)) = step(&buf[..n])? {
            return Ok((head, buf[used..n].to_vec()));
        }
    }
}

/// Serves one connection: the handshake, then every message echoed back.
pub fn serve_echo(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut handshake = ServerHandshake::new(HandshakeLimits::default());
    let step = |data: &[u8]| {
        handshake
            .receive(data)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))
    };
    let (request, leftover) = read_head(&mut stream, step)?;
    let upgrade = match request.upgrade() {
        Ok(upgrade) => upgrade,
        Err(e) => return stream.write_all(&e.response()),
    };
    let response = upgrade
        .accept(&Accept::new())
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
    stream.write_all(&response)?;
    drive(
        stream,
        Connection::server(config()),
        &leftover,
        |conn, message| {
            let _ = conn.send(&message);
        },
    )
}

/// The client's permessage-deflate offer: it lets the server keep its context (so our
/// inflater is tested with context takeover) and accepts every limit the server may set.
pub fn client_deflate() -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: false,
        ..DeflateConfig::default()
    }
}

/// Opens a client connection to `endpoint` for `target`, offering permessage-deflate.
pub fn connect(endpoint: &Endpoint, target: &str) -> io::Result<(Stream, Connection, Vec<u8>)> {
    let mut stream = endpoint.open()?;
    let deflate = client_deflate();
    let request = ClientRequest::new(&endpoint.host_port, target).extensions(&deflate.offer());
    let (mut handshake, bytes) =
        ClientHandshake::with_random_key(&request, HandshakeLimits::default());
    stream.write_all(&bytes)?;
    let step = |data: &[u8]| {
        handshake
            .receive(data)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))
    };
    let (response, leftover) = read_head(&mut stream, step)?;
    let mut conn = Connection::client(config());
    if let Some(accepted) = response.extensions().first() {
        // The handshake already refused extensions we did not offer; check the parameters.
        let params = deflate.accept_response(accepted).ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidData,
                "unacceptable permessage-deflate response",
            )
        })?;
        conn = conn.with_extension(Box::new(PerMessageDeflate::new(
            Role::Client,
            params,
            &deflate,
        )));
    }
    Ok((stream, conn, leftover))
}

/// Runs a connection until the transport should close: feeds it what the socket reads and the
/// time, hands each message to `on_message`, and writes what it queues.
pub fn drive(
    mut stream: impl Socket,
    mut conn: Connection,
    leftover: &[u8],
    mut on_message: impl FnMut(&mut Connection, Message),
) -> io::Result<()> {
    let start = Instant::now();
    let mut buf = vec![0u8; 64 << 10];
    let mut filled = leftover.len();
    buf[..filled].copy_from_slice(leftover);
    loop {
        // A violation has queued its close frame; the loop sends it and then closes.
        let _ = conn.receive(&buf[..filled]);
        conn.handle_time(start.elapsed());
        while let Some(event) = conn.poll_event() {
            if let Event::Message(message) = event {
                on_message(&mut conn, message);
            }
        }
        while let Some(bytes) = conn.poll_transmit() {
            if let Err(e) = stream.write_all(&bytes) {
                // The peer may already be gone; nothing more to do for it.
                return if e.kind() == ErrorKind::BrokenPipe {
                    Ok(())
                } else {
                    Err(e)
                };
            }
        }
        if conn.should_close_transport() {
            return Ok(());
        }
        let wait = conn.poll_timeout().map(|due| {
            due.saturating_sub(start.elapsed())
                .max(Duration::from_millis(1))
        });
        stream.set_read_timeout(wait)?;
        filled = match stream.read(&mut buf) {
            Ok(0) => {
                conn.receive_eof();
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        };
    }
}
