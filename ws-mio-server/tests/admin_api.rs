//! The admin API of a single instance over real sockets: every call, its token, and its
//! refusals.

mod common;

use common::{http, start, stop, wait_until, TestClient};
use std::net::SocketAddr;
use ws_mio_server::api::DISCONNECTED;
use ws_mio_server::history::Position;
use ws_mio_server::{Config, Context, Handler, OpenDecision, OpenRequest};
use ws_proto::{CloseCode, Message};

/// Connections are the user named by `?user=`, in the room named by the path; messages are
/// recorded in it.
struct Rooms;

impl Handler for Rooms {
    type Conn = String;
    fn on_open(&self, open: &OpenRequest<'_>) -> OpenDecision<String> {
        let room = open.request.path().trim_start_matches('/').to_string();
        let user = open.request.query_param("user").unwrap_or_default();
        OpenDecision::accept(room).user(&user)
    }
    fn on_connect(&self, ctx: &mut Context<'_>, room: &mut String) {
        ctx.join(room);
    }
    fn on_message(&self, ctx: &mut Context<'_>, room: &mut String, message: Message) {
        ctx.publish_recorded(room, message);
    }
    fn render(&self, _: &str, at: Option<&Position>, payload: &Message) -> Message {
        let offset = at.map_or(0, |p| p.offset);
        let text = format!("{offset}:{}", String::from_utf8_lossy(payload.as_bytes()));
        Message::Text(text.into())
    }
}

const TOKEN: &str = "s3cret";

fn call(admin: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let reply = http(
        admin,
        &format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n"),
    );
    let status = reply[9..12].parse().unwrap();
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn server(
    token: Option<&str>,
) -> (
    SocketAddr,
    SocketAddr,
    ws_mio_server::ServerHandle,
    ws_mio_server::Server,
) {
    let config = Config {
        admin_token: token.map(str::to_string),
        ..common::test_config()
    };
    let (addr, handle, server) = start(config, Rooms);
    let admin = server.admin_addr().unwrap();
    (addr, admin, handle, server)
}

#[test]
fn every_call_of_a_single_instance() {
    let (addr, admin, handle, server) = server(Some(TOKEN));
    let mut ann = TestClient::connect(addr, "/lobby?user=ann");
    let mut bob = TestClient::connect(addr, "/lobby?user=bob");
    wait_until("both in the room", || {
        handle.rooms().member_count("lobby") == 2
    });
    let token = Some(TOKEN);

    // Publish: recorded (numbered) and delivered to the members.
    let (status, body) = call(
        admin,
        "POST",
        "/api/rooms/lobby/publish?text=hello%20all",
        token,
    );
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"room":"lobby","published":true}"#)
    );
    assert_eq!(ann.next_text(), "1:hello all");
    assert_eq!(bob.next_text(), "1:hello all");

    // Presence, history, cluster figures.
    let (status, body) = call(admin, "GET", "/api/rooms/lobby/presence", token);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"room":"lobby","users":["ann","bob"]}"#)
    );
    let (status, body) = call(admin, "GET", "/api/rooms/nowhere/presence", token);
    assert_eq!(status, 404, "{body}");
    ann.send_text("second");
    assert_eq!(bob.next_text(), "2:second");
    assert_eq!(ann.next_text(), "2:second");
    let (status, body) = call(admin, "GET", "/api/rooms/lobby/history?limit=1", token);
    assert_eq!(status, 200);
    assert!(
        body.ends_with(r#""offset":2,"messages":["2:second"]}"#),
        "{body}"
    );
    let (status, body) = call(admin, "GET", "/api/cluster", token);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"instances":1,"connections":2,"rooms":1}"#)
    );

    // Disconnect: every connection of the user, with 1008 and the reason.
    let (status, body) = call(admin, "POST", "/api/users/ann/disconnect", token);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"user":"ann","connections_here":1}"#)
    );
    assert_eq!(
        ann.expect_close_reason(CloseCode::POLICY_VIOLATION),
        DISCONNECTED
    );
    wait_until("ann gone", || handle.rooms().member_count("lobby") == 1);

    // Refusals.
    let (status, _) = call(admin, "GET", "/api/cluster", None);
    assert_eq!(status, 401);
    let (status, _) = call(admin, "GET", "/api/cluster", Some("s3cres"));
    assert_eq!(status, 401);
    let (status, _) = call(admin, "GET", "/api/rooms/lobby/publish", token);
    assert_eq!(status, 405);
    let (status, _) = call(admin, "POST", "/api/rooms/lobby/publish", token);
    assert_eq!(status, 400, "no text");
    let (status, _) = call(admin, "GET", "/api/rooms/lobby/history?limit=x", token);
    assert_eq!(status, 400);
    let (status, _) = call(admin, "GET", "/api/rooms/%zz/presence", token);
    assert_eq!(status, 400);
    let (status, _) = call(admin, "GET", "/api/nothing", token);
    assert_eq!(status, 404);
    // The public listener serves none of it.
    let (status, _) = call(addr, "GET", "/api/cluster", token);
    assert_ne!(status, 200);
    drop(bob);
    stop(handle, server);
}

#[test]
fn without_a_token_the_api_is_off() {
    let (_, admin, handle, server) = server(None);
    let (status, body) = call(admin, "GET", "/api/cluster", Some("anything"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("--admin-token"));
    stop(handle, server);
}
