//! The binary holds 10,000 concurrent connections; the memory each idle connection costs the
//! server is measured from its resident set size in /proc and printed. And the memory a burst
//! took comes back once the burst is over.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use ws_proto::handshake::client::{ClientHandshake, ClientRequest};
use ws_proto::handshake::HandshakeLimits;

const CONNECTIONS: usize = 10_000;

/// The two tests take turns: each loads the machine (ten thousand handshakes, a burst of
/// 800 MB), and each waits, with a deadline, for what the other's load would slow down.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The binary in echo mode with two workers, as both tests run it.
fn echo_server() -> common::ServerProcess {
    common::ServerProcess::spawn(
        env!("CARGO_BIN_EXE_ws-mio-server"),
        // One client opens every connection, faster than the handshake rate lets a client.
        &[
            "--workers",
            "2",
            "--mode",
            "echo",
            "--admin-listen",
            "off",
            "--handshake-rate",
            "0",
        ],
        &[],
    )
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
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // Each process needs a descriptor per connection and a few more.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= CONNECTIONS as u64 + 100,
        "open-file limit {limit} is too low"
    );
    let server = echo_server();
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

#[test]
fn memory_a_burst_took_comes_back_once_it_is_over() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let server = echo_server();
    let pid = server.child.id();
    let warm: Vec<TcpStream> = (0..20).map(|_| open(server.addr)).collect();
    drop(warm);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let idle = rss_bytes(pid);
    // 100 clients that send up to 8 MiB of 64 KiB messages each and read nothing: the server
    // queues their echoes up to the high-water mark (1 MiB) each, past what the kernel holds.
    let frame = {
        let mut f = vec![0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        f.extend_from_slice(&[7u8; 64 << 10]);
        f
    };
    // Each client writes from a thread of its own until the server stops reading it.
    let writers: Vec<_> = (0..100)
        .map(|_| {
            let mut client = open(server.addr);
            let frame = frame.clone();
            std::thread::spawn(move || {
                client
                    .set_write_timeout(Some(std::time::Duration::from_millis(500)))
                    .unwrap();
                for _ in 0..128 {
                    if client.write_all(&frame).is_err() {
                        break;
                    }
                }
                client
            })
        })
        .collect();
    common::wait_until("the burst to be queued", || {
        rss_bytes(pid) > idle + (64 << 20)
    });
    let peak = rss_bytes(pid);
    let clients: Vec<TcpStream> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    drop(clients);
    // Within a few seconds of the burst, at least three quarters of what it took are back.
    let near_idle = idle + (peak - idle) / 4;
    common::wait_until("the memory to come back", || rss_bytes(pid) < near_idle);
    println!(
        "server RSS: idle {idle}, burst {peak}, after {} bytes",
        rss_bytes(pid)
    );
}
