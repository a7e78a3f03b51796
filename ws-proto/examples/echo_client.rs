//! A blocking client over `std::net`: sends each line of standard input as a text message and
//! prints what comes back; end of input closes the connection with 1000. `wss://` connects
//! over TLS (rustls, sans-IO like ws-proto itself, driven here by its blocking stream),
//! trusting the Mozilla roots, or only the CA certificates of a PEM file given with `--ca`.
//!
//! ```text
//! cargo run -p ws-proto --example echo_server &
//! printf 'hello\nworld\n' | cargo run -p ws-proto --example echo_client -- 127.0.0.1:9001 /
//! printf 'hello\n' | cargo run -p ws-proto --example echo_client -- --ca ca.pem wss://localhost:9001 /
//! ```

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{CloseCode, Config, Connection, Event, Message};

/// TCP for `ws://` (or a bare address), TLS over it for `wss://`.
enum Stream {
    Plain(TcpStream),
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
            Stream::Tls(s) => s.read(buf),
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

/// The roots a wss connection trusts: the CA file's certificates, or the Mozilla roots.
fn roots(ca: Option<&str>) -> io::Result<RootCertStore> {
    let Some(ca) = ca else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(ErrorKind::InvalidData, format!("{ca}: {e}"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| invalid(&e))? {
        roots
            .add(cert.map_err(|e| invalid(&e))?)
            .map_err(|e| invalid(&e))?;
    }
    Ok(roots)
}

/// Connects to `url` (`host:port`, `ws://host:port` or `wss://host:port`): the stream, and the
/// `host:port` for the Host header.
fn open(url: &str, ca: Option<&str>) -> io::Result<(Stream, String)> {
    let (secure, addr) = match url.split_once("://") {
        Some(("wss", rest)) => (true, rest),
        Some(("ws", rest)) => (false, rest),
        Some(_) => {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "ws:// or wss:// only",
            ))
        }
        None => (false, url),
    };
    let addr = addr.trim_end_matches('/').to_string();
    let tcp = TcpStream::connect(&addr)?;
    tcp.set_nodelay(true)?;
    if !secure {
        return Ok((Stream::Plain(tcp), addr));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots(ca)?)
        .with_no_client_auth();
    let host = addr
        .rsplit_once(':')
        .map_or(addr.as_str(), |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
    let conn = ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    Ok((Stream::Tls(Box::new(StreamOwned::new(conn, tcp))), addr))
}

fn main() -> io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let ca = match args.iter().position(|a| a == "--ca") {
        Some(i) if i + 1 < args.len() => Some(args.drain(i..i + 2).nth(1).unwrap_or_default()),
        Some(_) => return Err(io::Error::new(ErrorKind::InvalidInput, "--ca needs a file")),
        None => None,
    };
    let mut args = args.into_iter();
    let url = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    let target = args.next().unwrap_or_else(|| "/".into());
    let (mut stream, addr) = open(&url, ca.as_deref())?;

    let request = ClientRequest::new(&addr, &target);
    let (mut handshake, bytes) =
        ClientHandshake::with_random_key(&request, HandshakeLimits::default());
    stream.write_all(&bytes)?;
    let mut buf = vec![0u8; 16 << 10];
    let (mut start, mut end) = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        match handshake.receive(&buf[..n]) {
            Ok(Some((_response, used))) => break (used, n),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(ErrorKind::InvalidData, e)),
        }
    };

    let clock = Instant::now();
    let mut conn = Connection::client(Config::default());
    let mut lines = io::stdin().lock().lines();
    let mut awaiting_reply = false;
    loop {
        if let Err(violation) = conn.receive(&buf[start..end]) {
            eprintln!("server broke the protocol: {violation}");
        }
        conn.handle_time(clock.elapsed());
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(Message::Text(text)) => {
                    println!("< {text}");
                    awaiting_reply = false;
                }
                Event::Message(Message::Binary(data)) => {
                    println!("< {} bytes", data.len());
                    awaiting_reply = false;
                }
                Event::Close(frame) => println!("server closed: {frame:?}"),
                _ => {}
            }
        }
        // One line at a time, each after the previous reply, so output stays in order.
        if !awaiting_reply && conn.can_send() {
            match lines.next() {
                Some(line) => {
                    conn.send_text(&line?).expect("connection is open");
                    awaiting_reply = true;
                }
                None => conn
                    .close(clock.elapsed(), CloseCode::NORMAL, "done")
                    .expect("valid close"),
            }
        }
        while let Some(bytes) = conn.poll_transmit() {
            stream.write_all(&bytes)?;
        }
        if conn.should_close_transport() {
            return Ok(());
        }
        let wait = conn.poll_timeout().map(|due| {
            due.saturating_sub(clock.elapsed())
                .max(Duration::from_millis(1))
        });
        stream.tcp().set_read_timeout(wait)?;
        (start, end) = match stream.read(&mut buf) {
            Ok(0) => {
                conn.receive_eof();
                return Ok(());
            }
            Ok(n) => (0, n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => (0, 0),
            // A TLS peer that closed without close_notify: the stream has ended all the same.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                conn.receive_eof();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
    }
}
