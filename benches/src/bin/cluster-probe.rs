//! Two latencies of chat instances joined through Redis, measured from outside over real
//! sockets, printed as one JSON line each:
//!
//! - `staleness`: how long after an instance dies (this program kills it with SIGKILL) a
//!   client on another instance is told its user left: the presence lease at work.
//! - `kick`: how long after an admin API call to one instance a user's connection on another
//!   is closed, over several rounds.
//!
//! ```text
//! cluster-probe staleness --victim 127.0.0.1:9001 --pid 1234 --watch 127.0.0.1:9011
//! cluster-probe kick --addr 127.0.0.1:9001 --admin 127.0.0.1:9012 --token T --rounds 20
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{Config, Connection, Event, Message};

/// The longest any wait may take.
const WAIT: Duration = Duration::from_secs(60);

/// A blocking chat client.
struct Client {
    stream: TcpStream,
    conn: Connection,
    buf: Vec<u8>,
}

/// What a read ended with.
enum Next {
    Text(String),
    Closed,
}

impl Client {
    fn connect(addr: SocketAddr, target: &str) -> Client {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let request = ClientRequest::new(&addr.to_string(), target);
        let (mut handshake, bytes) =
            ClientHandshake::with_random_key(&request, HandshakeLimits::default());
        stream.write_all(&bytes).unwrap();
        let mut buf = vec![0; 64 << 10];
        let leftover = loop {
            let n = stream.read(&mut buf).expect("handshake response");
            assert!(n > 0, "closed during the handshake");
            if let Some((_, used)) = handshake.receive(&buf[..n]).expect("a 101") {
                break buf[used..n].to_vec();
            }
        };
        let mut conn = Connection::client(Config::default());
        conn.receive(&leftover).unwrap();
        Client { stream, conn, buf }
    }

    fn send(&mut self, text: &str) {
        self.conn
            .send(&Message::Text(text.to_string().into()))
            .unwrap();
        self.flush();
    }

    fn flush(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit() {
            let _ = self.stream.write_all(&bytes);
        }
    }

    fn next(&mut self) -> Next {
        loop {
            while let Some(event) = self.conn.poll_event() {
                self.flush();
                match event {
                    Event::Message(m) => {
                        return Next::Text(String::from_utf8_lossy(m.as_bytes()).into_owned())
                    }
                    Event::Close(_) => return Next::Closed,
                    _ => {}
                }
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => return Next::Closed,
                Ok(n) => {
                    if self.conn.receive(&self.buf[..n]).is_err() {
                        return Next::Closed;
                    }
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Next::Closed,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Reads until a text containing all of `parts` arrives.
    fn wait_for(&mut self, parts: &[&str]) {
        loop {
            match self.next() {
                Next::Text(t) if parts.iter().all(|p| t.contains(p)) => return,
                Next::Text(_) => {}
                Next::Closed => panic!("closed while waiting for {parts:?}"),
            }
        }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn need(args: &[String], name: &str) -> String {
    arg(args, name).unwrap_or_else(|| panic!("{name} is required"))
}

fn joined(addr: SocketAddr, user: &str, room: &str) -> Client {
    let mut client = Client::connect(addr, &format!("/ws?name={user}"));
    client.wait_for(&["\"welcome\""]);
    client.send(&format!(r#"{{"type":"join","room":"{room}"}}"#));
    client.wait_for(&["\"joined\""]);
    client
}

fn staleness(args: &[String]) {
    let victim: SocketAddr = need(args, "--victim").parse().unwrap();
    let watch: SocketAddr = need(args, "--watch").parse().unwrap();
    let pid = need(args, "--pid");
    let room = arg(args, "--room").unwrap_or_else(|| "staleness".into());
    let mut watcher = joined(watch, "watcher", &room);
    let _doomed = joined(victim, "doomed", &room);
    watcher.wait_for(&["\"presence\"", "\"doomed\"", "\"joined\""]);
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {pid}");
    watcher.wait_for(&["\"presence\"", "\"doomed\"", "\"left\""]);
    let ms = killed.elapsed().as_secs_f64() * 1e3;
    println!(r#"{{"probe":"staleness","ms":{ms:.1}}}"#);
}

fn admin_post(admin: SocketAddr, token: &str, path: &str) {
    let mut stream = TcpStream::connect(admin).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

fn kick(args: &[String]) {
    let addr: SocketAddr = need(args, "--addr").parse().unwrap();
    let admin: SocketAddr = need(args, "--admin").parse().unwrap();
    let token = need(args, "--token");
    let rounds: usize = arg(args, "--rounds").map_or(20, |r| r.parse().unwrap());
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let user = format!("kicked{round}");
        let mut client = joined(addr, &user, "kick");
        // The other instance learns of the user's room once its presence comes back round.
        std::thread::sleep(Duration::from_millis(50));
        let asked = Instant::now();
        admin_post(admin, &token, &format!("/api/users/{user}/disconnect"));
        loop {
            if let Next::Closed = client.next() {
                break;
            }
        }
        latencies.push(asked.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        r#"{{"probe":"kick","rounds":{rounds},"p50_ms":{:.2},"p99_ms":{:.2},"max_ms":{:.2}}}"#,
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("staleness") => staleness(&args),
        Some("kick") => kick(&args),
        _ => {
            eprintln!("usage: cluster-probe staleness|kick ... (see the source's first lines)");
            std::process::exit(2);
        }
    }
}
