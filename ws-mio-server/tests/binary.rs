//! The `ws-mio-server` binary as users run it.

mod common;

use common::{ServerProcess, TestClient};
use std::process::Command;
use ws_proto::CloseCode;

const BINARY: &str = env!("CARGO_BIN_EXE_ws-mio-server");

#[test]
fn the_admin_listener_answers_on_its_own_port() {
    let server = ServerProcess::spawn(
        BINARY,
        &["--workers", "2", "--admin-listen", "127.0.0.1:0"],
        &[],
    );
    let admin = server.admin.expect("the log names the admin listener");
    assert_ne!(admin, server.addr);
    let ready = common::http(admin, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ready.starts_with("HTTP/1.1 200 "), "{ready}");
    let public = common::http(server.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(public.starts_with("HTTP/1.1 426 "), "{public}");
}

#[test]
fn sigterm_closes_every_client_with_1012_and_a_reconnect_hint_and_exits_0() {
    let args = ["--workers", "2", "--mode", "echo", "--admin-listen", "off"];
    let mut server = ServerProcess::spawn(BINARY, &args, &[]);
    let mut clients: Vec<TestClient> = (0..5)
        .map(|_| TestClient::connect(server.addr, "/"))
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send_text(&format!("hi {i}"));
        assert_eq!(client.next_text(), format!("hi {i}"));
    }
    server.signal("TERM");
    for client in &mut clients {
        let reason = client.expect_close_reason(CloseCode::SERVICE_RESTART);
        // The default jitter: within 10 s.
        let after = ws_mio_server::restart::reconnect_after(&reason).expect(&reason);
        assert!(after < std::time::Duration::from_secs(10), "{reason}");
    }
    assert_eq!(server.wait(), Some(0));
}

#[test]
fn a_second_signal_ends_the_drain_at_once() {
    let args = [
        "--mode",
        "echo",
        "--admin-listen",
        "off",
        "--drain-timeout",
        "60",
    ];
    let mut server = ServerProcess::spawn(BINARY, &args, &[]);
    // A client that never reads, so never answers the close frame, keeps the drain waiting
    // (up to the close timeout, 5 s).
    let _deaf = TestClient::connect(server.addr, "/");
    let mut observer = TestClient::connect(server.addr, "/");
    server.signal("TERM");
    // The first signal was taken: the drain has begun.
    observer.expect_close(CloseCode::SERVICE_RESTART);
    server.signal("TERM");
    // 128 + SIGTERM, long before the drain timeout.
    assert_eq!(server.wait(), Some(143));
}

#[test]
fn environment_variables_configure_the_binary() {
    let env = [
        ("WS_LISTEN", "127.0.0.1:0"),
        ("WS_ADMIN_LISTEN", "off"),
        ("WS_MAX_MESSAGE_SIZE", "10"),
        ("WS_MODE", "echo"),
    ];
    let mut server = ServerProcess::spawn(BINARY, &[], &env);
    assert_eq!(server.admin, None);
    let mut client = TestClient::connect(server.addr, "/");
    client.send_text("more than ten bytes");
    client.expect_close(CloseCode::MESSAGE_TOO_BIG);
    server.signal("INT");
    assert_eq!(server.wait(), Some(0));
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
