//! A redis-server of a test's own: on a loopback port the system had free, persisting
//! nothing (or, [`RedisServer::start_durable`], an append-only file in a directory of its
//! own), killed when dropped (so a failing test leaves no process behind). Spoken to in plain
//! RESP over a socket, so any crate's tests can use it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a wait for Redis may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// Where its append-only file is kept, when it keeps one.
    dir: Option<PathBuf>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::launch(port, None)
    }

    /// A server that keeps its data in an append-only file (fsync every write), so a restart
    /// ([`Self::restart`]) finds it again.
    pub fn start_durable() -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ws-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        RedisServer::launch(port, Some(dir))
    }

    fn launch(port: u16, dir: Option<PathBuf>) -> RedisServer {
        let child = spawn(port, dir.as_ref());
        let server = RedisServer { child, port, dir };
        server.wait_for_ping();
        server
    }

    fn wait_for_ping(&self) {
        let deadline = Instant::now() + WAIT;
        while self.command(&["PING"]).as_deref() != Some("+PONG\r\n") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command's reply as it came (one read's worth, enough for short replies); `None`
    /// if Redis cannot be reached.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = vec![0; 4096];
        let n = stream.read(&mut reply).ok()?;
        Some(String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    /// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`).
    pub fn subscribers(&self, channel: &str) -> u64 {
        let reply = self.command(&["PUBSUB", "NUMSUB", channel]).unwrap();
        // `*2\r\n$LEN\r\nCHANNEL\r\n:N\r\n`
        let count = reply.trim_end().rsplit("\r\n").next().unwrap();
        count.strip_prefix(':').unwrap().parse().unwrap()
    }

    /// Kills it (SIGKILL: what was not written to its file is lost).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills it and starts it again on the same port, with the same file if it keeps one.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts it again after [`Self::stop`], on the same port, with the same file if any.
    pub fn start_again(&mut self) {
        self.child = spawn(self.port, self.dir.as_ref());
        self.wait_for_ping();
    }
}

/// redis-server on `port`, keeping an append-only file in `dir` if given.
fn spawn(port: u16, dir: Option<&PathBuf>) -> Child {
    let mut command = Command::new("redis-server");
    command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
    command.args(["--save", "", "--daemonize", "no"]);
    match dir {
        Some(dir) => command
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir),
        None => command.args(["--appendonly", "no"]),
    };
    command
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on the PATH (test.sh installs it: apt-get install redis-server)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
