//! permessage-deflate through the server: negotiation, echo both ways, fanout of one
//! compressed frame, and the decompression bomb.

mod common;

use common::{start, stop, test_config as config, TestClient};
use std::io::Read;
use ws_mio_server::{Context, Echo, Handler, OpenDecision, OpenRequest};
use ws_proto::deflate::{compress_shared, DeflateConfig};
use ws_proto::frame::FrameHeader;
use ws_proto::{CloseCode, Message, MessageKind};

#[test]
fn negotiated_compression_echoes_both_ways_and_can_be_turned_off() {
    let (addr, handle, server) = start(config(), Echo);
    let (mut client, deflated) = TestClient::connect_deflate(addr, "/", DeflateConfig::default());
    assert!(deflated);
    let text = "compress me please ".repeat(200);
    client.send_text(&text);
    // Read the raw reply to see that it arrives compressed (RSV1 set, shorter than the text).
    let mut head = [0u8; 4];
    client.stream.read_exact(&mut head).unwrap();
    let (header, _) = FrameHeader::decode(&head).unwrap().unwrap();
    assert_eq!(header.rsv & ws_proto::frame::RSV1, ws_proto::frame::RSV1);
    assert!(header.payload_len < text.len() as u64 / 10);
    let _ = client.conn.receive(&head);
    assert_eq!(client.next_text(), text);
    assert_eq!(handle.metrics().snapshot().deflate_handshakes_total, 1);
    stop(handle, server);

    let mut off = config();
    off.compression = false;
    let (addr, handle, server) = start(off, Echo);
    let (mut client, deflated) = TestClient::connect_deflate(addr, "/", DeflateConfig::default());
    assert!(!deflated, "compression off: the offer is declined");
    client.send_text(&text);
    assert_eq!(client.next_text(), text);
    assert_eq!(handle.metrics().snapshot().deflate_handshakes_total, 0);
    stop(handle, server);
}

struct Room;
impl Handler for Room {
    type Conn = ();
    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }
    fn on_connect(&self, ctx: &mut Context<'_>, _: &mut ()) {
        ctx.join("r");
    }
    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        ctx.publish("r", message);
    }
}

#[test]
fn fanout_sends_compressed_and_plain_members_what_each_negotiated() {
    let (addr, handle, server) = start(config(), Room);
    let (mut a, deflated) = TestClient::connect_deflate(addr, "/", DeflateConfig::default());
    assert!(deflated);
    let (mut b, _) = TestClient::connect_deflate(addr, "/", DeflateConfig::default());
    let mut plain = TestClient::connect(addr, "/");
    let text = "room news, room news, room news, room news ".repeat(20);
    plain.send_text(&text);
    for member in [&mut a, &mut b, &mut plain] {
        assert_eq!(member.next_text(), text);
    }
    // What the compressed members get is the shared frame compressed once.
    let shared = compress_shared(MessageKind::Text, text.as_bytes(), 15, 6);
    assert!(shared.as_bytes().len() < text.len() / 5);
    stop(handle, server);
}

#[test]
fn small_compressed_message_inflating_past_the_limit_gets_1009() {
    let mut cfg = config();
    cfg.max_message_size = 1 << 20;
    let (addr, handle, server) = start(cfg, Echo);
    let (mut client, deflated) = TestClient::connect_deflate(addr, "/", DeflateConfig::default());
    assert!(deflated);
    // 64 MiB of zeros in about 64 KiB, masked as a client must.
    let zeros = vec![0u8; 64 << 20];
    let frame = compress_shared(MessageKind::Binary, &zeros, 15, 9);
    drop(zeros);
    let bytes = frame.as_bytes();
    let (header, header_len) = FrameHeader::decode(bytes).unwrap().unwrap();
    let mut masked = vec![bytes[0], 0x80 | bytes[1]];
    masked.extend_from_slice(&bytes[2..header_len]);
    masked.extend_from_slice(&[0, 0, 0, 0]); // zero key: payload unchanged
    masked.extend_from_slice(&bytes[header_len..]);
    assert!(header.payload_len < 1 << 20);
    use std::io::Write;
    let _ = client.stream.write_all(&masked);
    client.expect_close(CloseCode::MESSAGE_TOO_BIG);
    // The server inflated no further than the limit and dropped the buffer with the connection.
    common::wait_until("the connection to be gone", || {
        handle.metrics().snapshot().connections_open == 0
    });
    assert_eq!(handle.metrics().snapshot().queued_bytes, 0);
    stop(handle, server);
}
