//! The `ws-mio-server` binary as users run it.

mod common;

use common::TestClient;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use ws_proto::CloseCode;

/// Starts the binary on a free port, its admin listener on another, and waits for its
/// "listening" line: the child, its address and that line.
fn spawn(args: &[&str]) -> (std::process::Child, SocketAddr, String) {
    let addr = common::free_loopback_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ws-mio-server"))
        .args([
            "--listen",
            &addr.to_string(),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("WS_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.contains("listening"))
        .expect("a listening line");
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr, listening)
}

#[test]
fn the_admin_listener_answers_on_its_own_port() {
    let (mut child, addr, listening) = spawn(&["--workers", "2"]);
    // The log line names it: `... admin=127.0.0.1:PORT ...`.
    let admin: SocketAddr = listening
        .split_whitespace()
        .find_map(|field| field.strip_prefix("admin="))
        .unwrap_or_else(|| panic!("no admin address in {listening:?}"))
        .parse()
        .unwrap();
    assert_ne!(admin, addr);
    let ready = common::http(admin, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ready.starts_with("HTTP/1.1 200 "), "{ready}");
    let public = common::http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(public.starts_with("HTTP/1.1 404 "), "{public}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sigterm_closes_every_client_with_1001_and_exits_0() {
    let (mut child, addr, _) = spawn(&["--workers", "2", "--mode", "echo"]);
    let mut clients: Vec<TestClient> = (0..5).map(|_| TestClient::connect(addr, "/")).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send_text(&format!("hi {i}"));
        assert_eq!(client.next_text(), format!("hi {i}"));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for client in &mut clients {
        client.expect_close(CloseCode::GOING_AWAY);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn environment_variables_configure_the_binary() {
    let addr = common::free_loopback_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ws-mio-server"))
        .env("WS_LISTEN", addr.to_string())
        .env("WS_ADMIN_LISTEN", "off")
        .env("WS_MAX_MESSAGE_SIZE", "10")
        .env("WS_MODE", "echo")
        .env("WS_LOG", "warn")
        .spawn()
        .unwrap();
    common::wait_until("the server to listen", || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    let mut client = TestClient::connect(addr, "/");
    client.send_text("more than ten bytes");
    client.expect_close(CloseCode::MESSAGE_TOO_BIG);
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn bad_configuration_exits_2_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_ws-mio-server"))
        .args(["--workers", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value for workers"));
}
