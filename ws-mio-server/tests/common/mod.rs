//! A blocking test client on ws-proto over a real loopback socket, with timeouts so a failing
//! test ends instead of hanging.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use ws_mio_server::{Handler, Server, ServerHandle};
use ws_proto::deflate::{DeflateConfig, PerMessageDeflate};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;
use ws_proto::{CloseCode, CloseFrame, Config, Connection, Event, Message, Role};

/// How long any wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestClient<S = TcpStream> {
    pub stream: S,
    pub conn: Connection,
    buf: Vec<u8>,
}

/// What a test client talks over: a socket, or TLS over one (in the TLS tests).
pub trait ClientStream: Read + Write {
    /// The socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl ClientStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// What a wait for the next event ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Event(Event),
    /// The server closed the TCP connection.
    Eof,
}

impl TestClient {
    pub fn connect(addr: SocketAddr, target: &str) -> TestClient {
        TestClient::connect_with(addr, target, Config::default())
    }

    pub fn connect_with(addr: SocketAddr, target: &str, config: Config) -> TestClient {
        TestClient::open(addr, target, config, None).0
    }

    /// Connects offering permessage-deflate; the flag tells whether the server accepted.
    pub fn connect_deflate(
        addr: SocketAddr,
        target: &str,
        deflate: DeflateConfig,
    ) -> (TestClient, bool) {
        TestClient::open(addr, target, Config::default(), Some(deflate))
    }

    fn open(
        addr: SocketAddr,
        target: &str,
        config: Config,
        deflate: Option<DeflateConfig>,
    ) -> (TestClient, bool) {
        TestClient::over(tcp_connect(addr), addr, target, config, deflate)
    }
}

/// A loopback connection with the tests' read timeout and no Nagle delay.
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

impl<S: ClientStream> TestClient<S> {
    /// The opening handshake over `stream` (already connected to `addr`).
    pub fn over(
        mut stream: S,
        addr: SocketAddr,
        target: &str,
        config: Config,
        deflate: Option<DeflateConfig>,
    ) -> (TestClient<S>, bool) {
        let mut request = ClientRequest::new(&addr.to_string(), target);
        if let Some(d) = &deflate {
            request = request.extensions(&d.offer());
        }
        let (mut handshake, bytes) =
            ClientHandshake::with_random_key(&request, HandshakeLimits::default());
        stream.write_all(&bytes).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let (response, leftover) = loop {
            let n = stream.read(&mut buf).expect("handshake response");
            assert!(n > 0, "server closed during the handshake");
            let step = handshake
                .receive(&buf[..n])
                .expect("valid handshake response");
            if let Some((response, used)) = step {
                break (response, buf[used..n].to_vec());
            }
        };
        let mut conn = Connection::client(config);
        let mut deflated = false;
        if let (Some(d), Some(accepted)) = (&deflate, response.extensions().first()) {
            let params = d
                .accept_response(accepted)
                .expect("acceptable deflate response");
            conn = conn.with_extension(Box::new(PerMessageDeflate::new(Role::Client, params, d)));
            deflated = true;
        }
        conn.receive(&leftover).unwrap();
        (TestClient { stream, conn, buf }, deflated)
    }

    pub fn send(&mut self, message: &Message) {
        self.conn.send(message).unwrap();
        self.flush();
    }

    pub fn send_text(&mut self, text: &str) {
        self.conn.send_text(text).unwrap();
        self.flush();
    }

    pub fn flush(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit() {
            match self.stream.write_all(&bytes) {
                Ok(()) => {}
                // A server that failed the connection closes TCP right after its close frame.
                Err(e)
                    if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) =>
                {
                    return
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
    }

    /// The next event, reading as needed; pings are answered by the engine and skipped.
    pub fn next(&mut self) -> Received {
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(event) = self.conn.poll_event() {
                if matches!(event, Event::Ping(_)) {
                    continue;
                }
                self.flush();
                return Received::Event(event);
            }
            self.flush();
            assert!(Instant::now() < deadline, "no event within {WAIT:?}");
            match self.stream.read(&mut self.buf) {
                Ok(0) => return Received::Eof,
                Ok(n) => {
                    let _ = self.conn.receive(&self.buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Received::Eof,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    pub fn next_message(&mut self) -> Message {
        match self.next() {
            Received::Event(Event::Message(m)) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    pub fn next_text(&mut self) -> String {
        match self.next_message() {
            Message::Text(t) => t.to_string(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    /// Expects the server's close frame, then the server closing TCP.
    pub fn expect_close(&mut self, code: CloseCode) {
        self.expect_close_reason(code);
    }

    /// Expects the server's close frame with `code`, then the server closing TCP: the reason.
    pub fn expect_close_reason(&mut self, code: CloseCode) -> String {
        let reason = match self.next() {
            Received::Event(Event::Close(Some(CloseFrame { code: got, reason }))) => {
                assert_eq!(got, code);
                reason.to_string()
            }
            other => panic!("expected close {code}, got {other:?}"),
        };
        assert_eq!(self.next(), Received::Eof);
        reason
    }

    pub fn close(&mut self) {
        self.conn
            .close(Duration::ZERO, CloseCode::NORMAL, "")
            .unwrap();
        self.flush();
    }

    /// The messages that arrive until none has for `quiet` (or the server closes).
    pub fn arriving_within(&mut self, quiet: Duration) -> Vec<Message> {
        self.stream.tcp().set_read_timeout(Some(quiet)).unwrap();
        let mut buf = [0; 4096];
        let mut messages = Vec::new();
        loop {
            while let Some(event) = self.conn.poll_event() {
                if let Event::Message(m) = event {
                    messages.push(m);
                }
            }
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.conn.receive(&buf[..n]).unwrap(),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("read failed: {e}"),
            }
        }
        self.stream.tcp().set_read_timeout(Some(WAIT)).unwrap();
        messages
    }
}

/// A raw HTTP exchange: sends `request`, returns everything until the server closes.
pub fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A server binary running for a test, killed when it is dropped (so a failing test leaves no
/// process behind).
pub struct ServerProcess {
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its admin listener, if it has one.
    pub admin: Option<SocketAddr>,
}

impl ServerProcess {
    /// Starts `binary` with `args` and the environment `env` on ports the system picks
    /// (`--listen 127.0.0.1:0` unless `env` sets `WS_LISTEN`) and waits for its "listening"
    /// log line, which says which ports they are; the rest of its log goes to this process's
    /// standard error.
    pub fn spawn(binary: &str, args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(binary);
        if !env.iter().any(|(k, _)| *k == "WS_LISTEN") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(args)
            .env("WS_LOG", "info")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening = lines
            .by_ref()
            .map(Result::unwrap)
            .inspect(|line| eprintln!("{line}"))
            .find(|line| line.contains("listening"))
            .expect("a listening line");
        // Keep passing the log on, so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| eprintln!("{l}")));
        // `... listening local_addr=127.0.0.1:PORT admin=127.0.0.1:PORT workers=N`
        let field = |name: &str| {
            listening
                .split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .map(|a| a.parse::<SocketAddr>().unwrap())
        };
        ServerProcess {
            addr: field("local_addr=").unwrap_or_else(|| panic!("no address in {listening:?}")),
            admin: field("admin="),
            child,
        }
    }

    /// Sends it a signal (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for it to exit: its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` holds, polling; fails after [`WAIT`].
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A server configuration for tests: loopback, ephemeral ports (the admin listener's too), two
/// workers, no drain wait
/// (a test's clients do not answer the server's close frames; the drain is tested on pretend
/// time).
pub fn test_config() -> ws_mio_server::Config {
    ws_mio_server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: ws_mio_server::config::OptionalAddr(Some("127.0.0.1:0".parse().unwrap())),
        workers: 2,
        drain_timeout: Duration::ZERO,
        ..ws_mio_server::Config::default()
    }
}

/// Starts a server in this process.
pub fn start<H: Handler>(
    config: ws_mio_server::Config,
    handler: H,
) -> (SocketAddr, ServerHandle, Server) {
    let server = Server::start(config, handler).unwrap();
    (server.local_addr(), server.handle(), server)
}

/// Shuts a server down and waits for it.
pub fn stop(handle: ServerHandle, server: Server) {
    handle.shutdown();
    server.join().unwrap();
}
