//! Clients that try to make the server hold memory for them, on pretend time: each test checks
//! that what the server holds for the attacker stays within its budget (its queue up to twice
//! the high-water mark plus one message or reply, one read's worth of input kept undecoded, a
//! partial message up to the message limit) and that a bystander is still served.

use std::time::Duration;
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::{Broadcast, Config, Context, Echo, Handler, OpenDecision, OpenRequest};
use ws_proto::deflate::{compress_shared, DeflateConfig};
use ws_proto::frame::{FrameHeader, OpCode, RSV1};
use ws_proto::handshake::client::ClientRequest;
use ws_proto::mask::apply_mask;
use ws_proto::{CloseCode, Message, MessageKind};

const HIGH_WATER: usize = 256 << 10;
/// What one read takes from a socket (the worker's read buffer).
const READ: usize = 64 << 10;

fn config() -> Config {
    Config {
        workers: 2,
        high_water_mark: HIGH_WATER,
        max_message_size: 64 << 10,
        ..Config::default()
    }
}

fn text(s: &str) -> Message {
    Message::Text(s.to_string().into())
}

/// The budget of a connection whose largest outgoing message or reply is `largest` bytes: its
/// queue up to the high-water mark plus that message (in a buffer that may have doubled as it
/// grew), one read waiting in the engine and one being taken, and some change.
fn budget(largest: usize) -> usize {
    2 * (HIGH_WATER + largest) + 2 * READ + (16 << 10)
}

/// Checks that a bystander on the same server still gets its echo.
fn bystander_is_served<H: Handler>(server: &mut TestServer<H>, bystander: ClientId) {
    server.send(bystander, text("still there?"));
    assert_eq!(server.next_message(bystander), Some(text("still there?")));
}

/// Answers every message with a 100 KiB reply sent as a command (not straight into the
/// queue), the way a chat answers a request for its history; echoes "echo:" messages.
struct History;

impl Handler for History {
    type Conn = ();
    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }
    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        match message.as_bytes().strip_prefix(b"echo:") {
            Some(_) => ctx.reply(message),
            None => ctx.send(ctx.id(), Message::Binary(vec![7u8; 100 << 10].into())),
        }
    }
}

#[test]
fn a_flooder_that_never_reads_is_held_to_its_budget_then_closed_as_a_slow_consumer() {
    let mut cfg = config();
    cfg.slow_consumer_grace = Duration::from_secs(10);
    let mut server = TestServer::new(cfg, Echo);
    let bystander = server.connect("/");
    let flooder = server.connect("/");
    server.set_reading(flooder, false);
    // 4 MB in one burst: each read the server takes holds dozens of messages.
    server.send_raw(flooder, &frames(4000, OpCode::Binary, &[1u8; 1000]));
    let held = server.held(flooder);
    assert!(held <= budget(1000), "held {held} for the flooder");
    // The rest of its 4 MB waits on its side: the server stopped reading it.
    let read = server.snapshot().bytes_in_total;
    assert!(read < 1 << 20, "the server read {read} bytes");
    bystander_is_served(&mut server, bystander);
    // Past the grace it is closed with 1008; it never reads the close frame, so the close
    // timeout ends it.
    server.advance(Duration::from_secs(11));
    assert_eq!(server.snapshot().backpressure_closes_total, 1);
    server.advance(Duration::from_secs(6));
    assert!(server.server_closed(flooder));
    assert_eq!(server.held(flooder), 0);
    bystander_is_served(&mut server, bystander);
}

#[test]
fn a_ping_flood_without_reading_coalesces_its_pongs() {
    let mut server = TestServer::new(config(), Echo);
    let bystander = server.connect("/");
    let flooder = server.connect("/");
    server.set_reading(flooder, false);
    // Fill its queue past the high-water mark first, then ping hard: 100,000 pings of 125
    // bytes would queue 12.7 MB of pongs.
    server.send_raw(flooder, &frames(300, OpCode::Binary, &[1u8; 1000]));
    server.send_raw(flooder, &frames(100_000, OpCode::Ping, &[9u8; 125]));
    let held = server.held(flooder);
    assert!(held <= budget(1000), "held {held} for the ping flooder");
    bystander_is_served(&mut server, bystander);
}

#[test]
fn requests_for_large_replies_wait_while_the_replies_are_not_read() {
    let mut server = TestServer::new(config(), History);
    let bystander = server.connect("/");
    let greedy = server.connect("/");
    server.set_reading(greedy, false);
    // Each 5-byte request asks for 100 KiB: 2,000 of them, arriving in one or two reads,
    // would be 200 MB.
    server.send_raw(greedy, &frames(2000, OpCode::Text, b"more!"));
    let held = server.held(greedy);
    assert!(
        held <= budget(100 << 10),
        "held {held} for the greedy client"
    );
    server.send(bystander, text("echo: hi"));
    assert_eq!(server.next_message(bystander), Some(text("echo: hi")));
    // Once it reads, the waiting requests are answered, each and in order.
    server.set_reading(greedy, true);
    let replies = server.messages(greedy);
    assert_eq!(replies.len(), 2000);
}

/// A masked client frame.
fn client_frame(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv,
        opcode,
        mask: Some([1, 2, 3, 4]),
        payload_len: payload.len() as u64,
    };
    let mut out = vec![0u8; 14];
    let n = header.encode(&mut out);
    out.truncate(n);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], [1, 2, 3, 4], 0);
    out
}

/// `n` copies of a whole masked client frame.
fn frames(n: usize, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    client_frame(true, 0, opcode, payload).repeat(n)
}

#[test]
fn a_compressed_fragment_that_inflates_past_the_limit_is_stopped_while_it_inflates() {
    let mut server = TestServer::new(config(), Echo);
    let bystander = server.connect("/");
    let deflate = DeflateConfig::default();
    let bomb = server.connect_with(ClientRequest::new("test", "/"), Some(deflate));
    assert!(server.is_open(bomb));
    // 16 MiB of zeros compress to about 16 KiB; sent as a first, non-final fragment.
    let shared = compress_shared(MessageKind::Binary, &vec![0u8; 16 << 20], 15, 6);
    let frame = shared.as_bytes();
    let (_, header_len) = FrameHeader::decode(frame).unwrap().unwrap();
    let compressed = &frame[header_len..];
    assert!(compressed.len() < 32 << 10, "{}", compressed.len());
    server.send_raw(bomb, &client_frame(false, RSV1, OpCode::Binary, compressed));
    assert_eq!(server.close_code(bomb), Some(CloseCode::MESSAGE_TOO_BIG));
    let held = server.held(bomb);
    assert!(held <= budget(0) + (64 << 10), "held {held} for the bomb");
    bystander_is_served(&mut server, bystander);
}

#[test]
fn a_deflate_bomb_inflates_a_turn_budget_at_a_time_while_others_are_served() {
    // The echo server's limit (16 MiB): a bomb of 32 MiB of zeros is about 32 KiB on the
    // wire, read whole in one turn, and would cost 16 MiB of inflating in it.
    let mut server = TestServer::new(
        Config {
            max_message_size: 16 << 20,
            ..config()
        },
        Echo,
    );
    let bomb = server.connect_with(
        ClientRequest::new("test", "/"),
        Some(DeflateConfig::default()),
    );
    let bystander = server.connect("/");
    let shared = compress_shared(MessageKind::Binary, &vec![0u8; 32 << 20], 15, 9);
    let frame = shared.as_bytes();
    let (_, header_len) = FrameHeader::decode(frame).unwrap().unwrap();
    let compressed = &frame[header_len..];
    assert!(compressed.len() < READ, "{}", compressed.len());
    server.queue_raw(bomb, &client_frame(false, RSV1, OpCode::Binary, compressed));
    server.queue(bystander, text("first"));
    // One round: the bomber's turn came first and inflated about a budget (256 KiB, plus
    // one 256-byte piece's worth), then the bystander's message was taken and answered.
    server.round();
    assert_eq!(server.arrived(bystander), vec![text("first")]);
    assert!(!server.server_closed(bomb));
    // It holds what it inflated in its turn: a partial message, neither 16 MiB nor over.
    let held = server.held(bomb);
    assert!(
        held > 256 << 10 && held < 2 << 20,
        "held {held} after one turn"
    );
    // Every later round the same, until the limit ends it with 1009: 16 MiB at about
    // 512 KiB a turn takes tens of rounds, and the bystander is answered in each.
    let mut rounds = 1;
    while !server.server_closed(bomb) {
        server.queue(bystander, text("again"));
        server.round();
        assert_eq!(server.arrived(bystander), vec![text("again")]);
        rounds += 1;
        assert!(rounds < 1000, "the bomb was never stopped");
    }
    assert!(rounds >= 32, "{rounds} rounds");
    server.drive();
    assert_eq!(server.close_code(bomb), Some(CloseCode::MESSAGE_TOO_BIG));
}

#[test]
fn slow_members_of_a_busy_room_do_not_hold_more_than_their_budget() {
    let mut server = TestServer::new(config(), Broadcast);
    let reader = server.connect("/");
    let slow: Vec<ClientId> = (0..20).map(|_| server.connect("/")).collect();
    for &c in &slow {
        server.set_reading(c, false);
    }
    let publisher = server.connect("/");
    let message = Message::Binary(vec![3u8; 4000].into());
    for _ in 0..500 {
        server.send(publisher, message.clone());
        // The reading member gets every message.
        assert_eq!(server.next_message(reader), Some(message.clone()));
    }
    for &c in &slow {
        let held = server.held(c);
        assert!(held <= budget(4000), "held {held} for a slow member");
    }
    assert!(server.snapshot().backpressure_drops_total > 0);
}

#[test]
fn a_message_trickled_one_byte_per_frame_is_held_to_the_message_limit() {
    let mut server = TestServer::new(config(), Echo);
    let bystander = server.connect("/");
    let trickler = server.connect("/");
    // A binary message opened, then 70,000 one-byte continuation frames (7 bytes each on the
    // wire): past the 64 KiB limit, it is closed with 1009.
    let mut wire = client_frame(false, 0, OpCode::Binary, b"x");
    for _ in 0..70_000 {
        wire.extend_from_slice(&client_frame(false, 0, OpCode::Continuation, b"x"));
    }
    server.send_raw(trickler, &wire);
    assert_eq!(
        server.close_code(trickler),
        Some(CloseCode::MESSAGE_TOO_BIG)
    );
    assert_eq!(server.held(trickler), 0);
    bystander_is_served(&mut server, bystander);
}

#[test]
fn past_the_memory_budget_the_heaviest_are_dropped_and_newcomers_refused() {
    let mut cfg = config();
    // Room for about four full queues.
    cfg.memory_budget = 4 * HIGH_WATER as u64;
    let mut server = TestServer::new(cfg, Echo);
    let bystander = server.connect("/");
    let flooders: Vec<ClientId> = (0..8).map(|_| server.connect("/")).collect();
    for &f in &flooders {
        server.set_reading(f, false);
        server.send_raw(f, &frames(1000, OpCode::Binary, &[1u8; 1000]));
    }
    let held: usize = flooders.iter().map(|&f| server.held(f)).sum();
    let budget = 4 * HIGH_WATER + budget(1000);
    assert!(held <= budget, "{held} held by the flooders");
    let dropped = flooders
        .iter()
        .filter(|&&f| server.server_closed(f))
        .count();
    assert!(dropped >= 3, "{dropped} flooders dropped");
    assert_eq!(server.snapshot().memory_sheds_total, dropped as u64);
    // The light connection was never a candidate.
    bystander_is_served(&mut server, bystander);
    // Once under the budget again, newcomers are welcome.
    assert!(server.metrics().held_bytes() <= 4 * HIGH_WATER as i64);
    let newcomer = server.connect("/");
    assert!(server.is_open(newcomer));
}
