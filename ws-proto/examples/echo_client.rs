//! A blocking client over `std::net`: sends each line of standard input as a text message and
//! prints what comes back; end of input closes the connection with 1000.
//!
//! ```text
//! cargo run -p ws-proto --example echo_server &
//! printf 'hello\nworld\n' | cargo run -p ws-proto --example echo_client -- 127.0.0.1:9001 /
//! ```

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{CloseCode, Config, Connection, Event, Message};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".into());
    let target = args.next().unwrap_or_else(|| "/".into());
    let mut stream = TcpStream::connect(&addr)?;

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
