//! A blocking echo server over `std::net`, one thread per connection.
//!
//! ```text
//! cargo run -p ws-proto --example echo_server -- 127.0.0.1:9001
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use ws_proto::handshake::server::{Accept, ServerHandshake};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{Config, Connection, Event};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("echo server on ws://{addr}");
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("connection ended with an error: {e}");
            }
        });
    }
    Ok(())
}

fn serve(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 16 << 10];

    // The opening handshake: read until the request head is complete.
    let mut handshake = ServerHandshake::new(HandshakeLimits::default());
    let (request, mut start, mut end) = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        match handshake.receive(&buf[..n]) {
            Ok(Some((request, used))) => break (request, used, n),
            Ok(None) => {}
            Err(e) => return stream.write_all(&e.response()),
        }
    };
    let upgrade = match request.upgrade() {
        Ok(upgrade) => upgrade,
        Err(e) => return stream.write_all(&e.response()),
    };
    // Pick the first subprotocol offered, if any.
    let accept = match upgrade.protocols().first() {
        Some(p) => Accept::new().protocol(p),
        None => Accept::new(),
    };
    stream.write_all(&upgrade.accept(&accept).expect("protocol was offered"))?;
    println!("{} connected to {}", stream.peer_addr()?, request.path());

    // Messages: bytes in, time in, events out, bytes out, until the engine says to close.
    let clock = Instant::now();
    let mut conn = Connection::server(Config::default());
    loop {
        if let Err(violation) = conn.receive(&buf[start..end]) {
            eprintln!("peer broke the protocol: {violation}");
        }
        conn.handle_time(clock.elapsed());
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(message) => {
                    let _ = conn.send(&message); // fails only once closing
                }
                Event::Close(frame) => println!("peer closed: {frame:?}"),
                _ => {}
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
        stream.set_read_timeout(wait)?;
        (start, end) = match stream.read(&mut buf) {
            Ok(0) => {
                conn.receive_eof();
                return Ok(());
            }
            Ok(n) => (0, n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => (0, 0),
            Err(e) => return Err(e),
        };
    }
}
