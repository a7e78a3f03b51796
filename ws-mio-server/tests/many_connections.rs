//! The binary holds 10,000 concurrent connections; the memory each idle connection costs the
//! server is measured from its resident set size in /proc and printed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;

const CONNECTIONS: usize = 10_000;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn open(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(common::WAIT)).unwrap();
    let request = ClientRequest::new("localhost", "/");
    let (mut handshake, bytes) =
        ClientHandshake::with_random_key(&request, HandshakeLimits::default());
    stream.write_all(&bytes).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed during handshake");
        if handshake.receive(&buf[..n]).unwrap().is_some() {
            return stream;
        }
    }
}

#[test]
fn holds_10000_idle_connections_under_1_kib_each() {
    // Each process needs a descriptor per connection and a few more.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= CONNECTIONS as u64 + 100,
        "open-file limit {limit} is too low"
    );
    let server = common::ServerProcess::spawn(
        env!("CARGO_BIN_EXE_ws-mio-server"),
        &["--workers", "2", "--mode", "echo", "--admin-listen", "off"],
        &[],
    );
    let addr = server.addr;
    // Warm up so allocator arenas and worker buffers exist before the baseline.
    let warm: Vec<TcpStream> = (0..100).map(|_| open(addr)).collect();
    drop(warm);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = rss_bytes(server.child.id());
    let clients: Vec<TcpStream> = (0..CONNECTIONS).map(|_| open(addr)).collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = rss_bytes(server.child.id());
    let per_connection = (after.saturating_sub(before)) as f64 / CONNECTIONS as f64;
    println!("server RSS {before} -> {after} bytes for {CONNECTIONS} idle connections: {per_connection:.0} bytes each");
    // Every connection is still served.
    let mut last = clients.into_iter().last().unwrap();
    // A masked text frame "ok" with a zero key.
    last.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'o', b'k'])
        .unwrap();
    let mut echo = [0u8; 4];
    last.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"\x81\x02ok");
    drop(server);
    assert!(
        per_connection < 1024.0,
        "{per_connection:.0} bytes per idle connection"
    );
}
