//! The server: `ws-mio-server`'s sans-IO workers, run by its `testing::TestServer` (clients in
//! memory, pretend time, no socket or thread), with the `Echo` or `Broadcast` handler and a
//! small configuration from a few presets, driven by an op sequence: WebSocket clients (some
//! offering permessage-deflate), raw TCP clients sending arbitrary bytes or built frames (after
//! a handshake of their own, to reach the open state), clients that stop reading or shut their
//! sending side, admin-listener requests, time moving on, the graceful shutdown.
//!
//! Invariants:
//! - no panic, and every op settles: `TestServer::drive` panics when the workers and clients
//!   keep moving bytes without end (a liveness check);
//! - after every op, what the server holds for each client (`TestServer::held`: its queue, the
//!   engine's buffers, the compression state) is within [`budget`], whatever the client sends
//!   and however little it reads;
//! - after every op, the workers hold exactly the connections whose sockets they have not
//!   closed (`connections()`), count exactly the public ones among them against the limits
//!   (`admitted()`) and in the `connections_open` gauge, and admin connections in neither; the
//!   `queued_bytes` gauge is never negative nor more than the connections hold;
//! - at the end, after `shutdown` and time past the drain, close and handshake timeouts: every
//!   worker has finished, no connection is left and every client's socket is closed, every
//!   reservation is released (`admitted()` 0), both gauges are 0, the broadcast room is empty.

use crate::connection::{build_frame, read_bytes, read_u16, write_bytes, Payload};
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use std::sync::OnceLock;
use std::time::Duration;
use ws_mio_server::testing::{ClientId, TestServer};
use ws_mio_server::{Broadcast, Config, Echo, Handler, SlowConsumerPolicy};
use ws_proto::deflate::{compress_shared, DeflateConfig};
use ws_proto::frame::{FrameHeader, MAX_HEADER_LEN};
use ws_proto::handshake::client::ClientRequest;
use ws_proto::{CloseCode, Message, MessageKind, Role};

/// Clients an input may open (further connects do nothing).
pub const MAX_CLIENTS: usize = 16;
/// Ops run per input (the rest are ignored).
pub const MAX_OPS: usize = 256;
/// What one op may cost at most, in bytes of work (repeated frames are cut to fit; see
/// `Run::cost`).
pub const MAX_OP_COST: usize = 128 << 10;
/// What all the ops of an input may cost (ops past it send nothing).
pub const MAX_TOTAL_COST: usize = 1 << 20;
/// Pretend time the ops may move on in all (the end adds the shutdown's time).
pub const MAX_ELAPSED: Duration = Duration::from_secs(60);
/// What one read takes from a socket: the worker's read buffer (and `TestServer`'s reads).
pub const READ: usize = 64 << 10;

/// The high-water marks an input may pick.
const HIGH_WATER_MARKS: [usize; 2] = [4 << 10, 64 << 10];
/// The message size limits an input may pick.
const MESSAGE_LIMITS: [u64; 2] = [1 << 10, 64 << 10];

/// One preset of the server's timers, in milliseconds (0: off, where the server allows it).
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    ping_interval: u64,
    pong_timeout: u64,
    handshake_timeout: u64,
    idle_timeout: u64,
    close_timeout: u64,
    drain_timeout: u64,
    slow_consumer_grace: u64,
}

/// The timer presets an input may pick.
const TIMEOUTS: [Timeouts; 4] = [
    // The server's defaults.
    Timeouts {
        ping_interval: 30_000,
        pong_timeout: 30_000,
        handshake_timeout: 10_000,
        idle_timeout: 0,
        close_timeout: 5_000,
        drain_timeout: 10_000,
        slow_consumer_grace: 30_000,
    },
    // Lively: pings every second, everything else due within seconds.
    Timeouts {
        ping_interval: 1_000,
        pong_timeout: 500,
        handshake_timeout: 1_000,
        idle_timeout: 0,
        close_timeout: 500,
        drain_timeout: 1_000,
        slow_consumer_grace: 2_000,
    },
    // No heartbeats, an idle timeout, slow consumers never closed for their backlog.
    Timeouts {
        ping_interval: 0,
        pong_timeout: 1_000,
        handshake_timeout: 500,
        idle_timeout: 3_000,
        close_timeout: 1_000,
        drain_timeout: 2_000,
        slow_consumer_grace: 0,
    },
    // Tight: every deadline within a second, the drain shorter than the rest together.
    Timeouts {
        ping_interval: 500,
        pong_timeout: 100,
        handshake_timeout: 100,
        idle_timeout: 1_000,
        close_timeout: 100,
        drain_timeout: 300,
        slow_consumer_grace: 500,
    },
];

/// The paths an `AdminGet` op may ask for.
const ADMIN_PATHS: [&str; 4] = ["/metrics", "/healthz", "/readyz", "/"];

/// The server under test and what it is driven with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The `Broadcast` handler (else `Echo`).
    pub broadcast: bool,
    /// Workers, 1 to 3.
    pub workers: u8,
    /// `high_water_mark` of 64 KiB (else 4 KiB).
    pub large_high_water: bool,
    /// `max_message_size` of 64 KiB (else 1 KiB).
    pub large_messages: bool,
    /// permessage-deflate accepted (`compression`).
    pub compression: bool,
    /// `SlowConsumerPolicy::Close` (else `Drop`).
    pub close_slow: bool,
    /// Pipes that hold 4 KiB each way (else `TestServer`'s default, 256 KiB).
    pub small_pipes: bool,
    /// Index into the timer presets.
    pub timeouts: u8,
    /// `max_connections` of 4 (else the default).
    pub few_connections: bool,
    /// `max_handshake_size` of 256 bytes, the least allowed (else the default).
    pub small_handshake: bool,
    /// `max_frame_size` of 512 bytes (else the default).
    pub small_frames: bool,
    /// What happens, in order.
    pub ops: Vec<Op>,
}

/// One step. `client` picks one of the clients opened so far (modulo their number); an op
/// about a client does nothing while there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `connect_with` a WebSocket client, offering permessage-deflate or not (see
    /// [`deflate_offer`]).
    Connect {
        /// Which offer: 0 none, else one of three configurations.
        deflate: u8,
    },
    /// `connect_raw`: a TCP client that sends only what the ops give it.
    ConnectRaw,
    /// `connect_admin`: a raw client of the admin listener.
    ConnectAdmin,
    /// A well-formed upgrade request as raw bytes (a raw client reaches the open state).
    Handshake {
        /// The client.
        client: u8,
        /// Offer permessage-deflate.
        deflate: bool,
    },
    /// `send_raw` these bytes.
    Raw {
        /// The client.
        client: u8,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// `send_raw` a frame built from these fields, possibly several times.
    Frame {
        /// The client.
        client: u8,
        /// The first header byte (FIN, RSV, opcode) as sent.
        b0: u8,
        /// Bit 0: unmasked (wrong for a client); bits 1-2: length form (0 shortest, 1 16-bit,
        /// 2 64-bit, 3 declare one byte more than sent); bit 4: deflate the payload and set
        /// RSV1; bits 5-7: send it 2^n times in one go.
        flags: u8,
        /// Masking key seed.
        key: u8,
        /// The payload.
        payload: Payload,
    },
    /// `send_raw` `count` copies of a masked frame of `len` bytes of `a`: a flood.
    Flood {
        /// The client.
        client: u8,
        /// The first header byte.
        b0: u8,
        /// Payload length.
        len: u8,
        /// Copies (cut to [`MAX_OP_COST`]).
        count: u16,
    },
    /// `send` a message through a WebSocket client.
    Send {
        /// The client.
        client: u8,
        /// Text (bytes made UTF-8 lossily), else binary.
        text: bool,
        /// The payload.
        payload: Payload,
    },
    /// `ping` from a WebSocket client.
    Ping {
        /// The client.
        client: u8,
        /// The payload (refused by the client's engine past 125 bytes).
        payload: Vec<u8>,
    },
    /// `close` from a WebSocket client.
    Close {
        /// The client.
        client: u8,
        /// The status code (refused by the client's engine when not valid to send).
        code: u16,
    },
    /// `set_reading`.
    SetReading {
        /// The client.
        client: u8,
        /// Read (else stop reading).
        reading: bool,
    },
    /// `shutdown_write`.
    ShutdownWrite {
        /// The client.
        client: u8,
    },
    /// `advance` the pretend time by this many milliseconds (within [`MAX_ELAPSED`] in all).
    Advance(u16),
    /// `shutdown`: the graceful shutdown starts.
    Shutdown,
    /// `messages`: the client takes what it received.
    Take {
        /// The client.
        client: u8,
    },
    /// `send_raw` a well-formed `GET` (for an admin client, one of its paths).
    AdminGet {
        /// The client.
        client: u8,
        /// Index into `/metrics`, `/healthz`, `/readyz`, `/`.
        path: u8,
    },
}

// The byte format: two header bytes (handler and configuration), then ops until the input
// ends, each a tag byte and its fields, read through `arbitrary::Unstructured` (a missing byte
// reads as 0) and written by `Input::encode`, which the seed corpus uses. Lengths are as in
// the `connection` target.

const OP_COUNT: u8 = 16;

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let tag: u8 = u.arbitrary()?;
        Ok(match tag % OP_COUNT {
            0 => Op::Connect {
                deflate: u.arbitrary()?,
            },
            1 => Op::ConnectRaw,
            2 => Op::ConnectAdmin,
            3 => {
                let client = u.arbitrary()?;
                let flags: u8 = u.arbitrary()?;
                Op::Handshake {
                    client,
                    deflate: flags & 1 != 0,
                }
            }
            4 => Op::Raw {
                client: u.arbitrary()?,
                bytes: read_bytes(u)?,
            },
            5 => {
                let client = u.arbitrary()?;
                let b0 = u.arbitrary()?;
                let flags: u8 = u.arbitrary()?;
                let key = u.arbitrary()?;
                let payload = if flags & 8 != 0 {
                    Payload::Fill(u.arbitrary()?, read_u16(u)?)
                } else {
                    Payload::Bytes(read_bytes(u)?)
                };
                Op::Frame {
                    client,
                    b0,
                    flags,
                    key,
                    payload,
                }
            }
            6 => Op::Flood {
                client: u.arbitrary()?,
                b0: u.arbitrary()?,
                len: u.arbitrary()?,
                count: read_u16(u)?,
            },
            7 => {
                let client = u.arbitrary()?;
                let flags: u8 = u.arbitrary()?;
                let payload = if flags & 2 != 0 {
                    Payload::Fill(u.arbitrary()?, read_u16(u)?)
                } else {
                    Payload::Bytes(read_bytes(u)?)
                };
                Op::Send {
                    client,
                    text: flags & 1 != 0,
                    payload,
                }
            }
            8 => Op::Ping {
                client: u.arbitrary()?,
                payload: read_bytes(u)?,
            },
            9 => Op::Close {
                client: u.arbitrary()?,
                code: read_u16(u)?,
            },
            10 => {
                let client = u.arbitrary()?;
                let flags: u8 = u.arbitrary()?;
                Op::SetReading {
                    client,
                    reading: flags & 1 != 0,
                }
            }
            11 => Op::ShutdownWrite {
                client: u.arbitrary()?,
            },
            12 => Op::Advance(read_u16(u)?),
            13 => Op::Shutdown,
            14 => Op::Take {
                client: u.arbitrary()?,
            },
            _ => Op::AdminGet {
                client: u.arbitrary()?,
                path: u.arbitrary()?,
            },
        })
    }
}

fn write_payload(out: &mut Vec<u8>, payload: &Payload) {
    match payload {
        Payload::Fill(b, n) => {
            out.push(*b);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Payload::Bytes(b) => write_bytes(out, b),
    }
}

impl Op {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Connect { deflate } => out.extend_from_slice(&[0, *deflate]),
            Op::ConnectRaw => out.push(1),
            Op::ConnectAdmin => out.push(2),
            Op::Handshake { client, deflate } => {
                out.extend_from_slice(&[3, *client, *deflate as u8])
            }
            Op::Raw { client, bytes } => {
                out.extend_from_slice(&[4, *client]);
                write_bytes(out, bytes);
            }
            Op::Frame {
                client,
                b0,
                flags,
                key,
                payload,
            } => {
                let fill = matches!(payload, Payload::Fill(..));
                let flags = flags & !8 | if fill { 8 } else { 0 };
                out.extend_from_slice(&[5, *client, *b0, flags, *key]);
                write_payload(out, payload);
            }
            Op::Flood {
                client,
                b0,
                len,
                count,
            } => {
                out.extend_from_slice(&[6, *client, *b0, *len]);
                out.extend_from_slice(&count.to_be_bytes());
            }
            Op::Send {
                client,
                text,
                payload,
            } => {
                let fill = matches!(payload, Payload::Fill(..));
                out.extend_from_slice(&[7, *client, *text as u8 | (fill as u8) << 1]);
                write_payload(out, payload);
            }
            Op::Ping { client, payload } => {
                out.extend_from_slice(&[8, *client]);
                write_bytes(out, payload);
            }
            Op::Close { client, code } => {
                out.extend_from_slice(&[9, *client]);
                out.extend_from_slice(&code.to_be_bytes());
            }
            Op::SetReading { client, reading } => {
                out.extend_from_slice(&[10, *client, *reading as u8]);
            }
            Op::ShutdownWrite { client } => out.extend_from_slice(&[11, *client]),
            Op::Advance(ms) => {
                out.push(12);
                out.extend_from_slice(&ms.to_be_bytes());
            }
            Op::Shutdown => out.push(13),
            Op::Take { client } => out.extend_from_slice(&[14, *client]),
            Op::AdminGet { client, path } => out.extend_from_slice(&[15, *client, *path]),
        }
    }
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let a: u8 = u.arbitrary()?;
        let b: u8 = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() {
            ops.push(Op::arbitrary(u)?);
        }
        Ok(Input {
            broadcast: a & 1 != 0,
            compression: a & 2 != 0,
            large_high_water: a & 4 != 0,
            large_messages: a & 8 != 0,
            close_slow: a & 0x10 != 0,
            small_pipes: a & 0x20 != 0,
            workers: 1 + (a >> 6) % 3,
            timeouts: b & 3,
            few_connections: b & 4 != 0,
            small_handshake: b & 8 != 0,
            small_frames: b & 0x10 != 0,
            ops,
        })
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary(&mut u)
    }
}

impl Input {
    /// An `Echo` server with two workers, 64 KiB marks and limits, no compression and the
    /// default timers, running `ops`.
    pub fn echo(ops: Vec<Op>) -> Input {
        Input {
            broadcast: false,
            workers: 2,
            large_high_water: true,
            large_messages: true,
            compression: false,
            close_slow: false,
            small_pipes: false,
            timeouts: 0,
            few_connections: false,
            small_handshake: false,
            small_frames: false,
            ops,
        }
    }

    /// The same with the `Broadcast` handler.
    pub fn broadcast(ops: Vec<Op>) -> Input {
        Input {
            broadcast: true,
            ..Input::echo(ops)
        }
    }

    /// The bytes that read back as this input.
    pub fn encode(&self) -> Vec<u8> {
        let a = self.broadcast as u8
            | (self.compression as u8) << 1
            | (self.large_high_water as u8) << 2
            | (self.large_messages as u8) << 3
            | (self.close_slow as u8) << 4
            | (self.small_pipes as u8) << 5
            | (self.workers.clamp(1, 3) - 1) << 6;
        let b = self.timeouts & 3
            | (self.few_connections as u8) << 2
            | (self.small_handshake as u8) << 3
            | (self.small_frames as u8) << 4;
        let mut out = vec![a, b];
        for op in &self.ops {
            op.encode(&mut out);
        }
        out
    }

    /// Reads an input from fuzzer bytes.
    pub fn decode(data: &[u8]) -> Input {
        Input::arbitrary_take_rest(Unstructured::new(data)).expect("every byte string reads")
    }

    /// The server's configuration.
    pub fn config(&self) -> Config {
        // The defaults come from the command-line declarations: built once.
        static DEFAULT: OnceLock<Config> = OnceLock::new();
        let t = TIMEOUTS[self.timeouts as usize & 3];
        let ms = Duration::from_millis;
        let default = DEFAULT.get_or_init(Config::default);
        Config {
            workers: self.workers.clamp(1, 3) as usize,
            high_water_mark: HIGH_WATER_MARKS[self.large_high_water as usize],
            max_message_size: MESSAGE_LIMITS[self.large_messages as usize],
            max_frame_size: if self.small_frames {
                512
            } else {
                default.max_frame_size
            },
            max_connections: if self.few_connections {
                4
            } else {
                default.max_connections
            },
            max_handshake_size: if self.small_handshake {
                256
            } else {
                default.max_handshake_size
            },
            compression: self.compression,
            slow_consumer: if self.close_slow {
                SlowConsumerPolicy::Close
            } else {
                SlowConsumerPolicy::Drop
            },
            ping_interval: ms(t.ping_interval),
            pong_timeout: ms(t.pong_timeout),
            handshake_timeout: ms(t.handshake_timeout),
            idle_timeout: ms(t.idle_timeout),
            close_timeout: ms(t.close_timeout),
            drain_timeout: ms(t.drain_timeout),
            slow_consumer_grace: ms(t.slow_consumer_grace),
            ..default.clone()
        }
    }
}

/// The permessage-deflate offer of a `Connect` op: none, the default one (no context kept
/// either way), a smaller server window (so a room message is compressed once per window), or
/// a client that would keep its context.
pub fn deflate_offer(which: u8) -> Option<DeflateConfig> {
    let default = DeflateConfig::default();
    match which % 4 {
        0 => None,
        1 => Some(default),
        2 => Some(DeflateConfig {
            server_max_window_bits: 10,
            ..default
        }),
        _ => Some(DeflateConfig {
            client_no_context_takeover: false,
            client_max_window_bits: 12,
            ..default
        }),
    }
}

/// A client's upgrade request (RFC 6455 section 1.2's key), offering permessage-deflate or not.
pub fn upgrade_request(deflate: bool) -> String {
    let extensions = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    format!(
        "GET / HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {extensions}\r\n"
    )
}

/// What the server may hold for one connection of `config`, as `TestServer::held` counts it.
///
/// Reading from a connection (and fanout to it) stops while its queue is at the high-water
/// mark H or past it, so the queue holds less than H plus the largest frame queued in one
/// go: an echo or a room message of up to the message limit M with its header (deflated,
/// plus deflate's worst case on incompressible data); pongs coalesce past H. Its buffers may
/// have doubled as they grew: 2 (H + largest). Input: the rest of one read waits in the engine
/// while the queue is past H, and one more is being taken: 2 reads of 64 KiB. A message
/// arriving in pieces: the engine's message buffer holds at most about twice what arrived
/// plus 8 KiB, 2 M + 8 KiB. With compression: an inflater while a compressed message arrives
/// (a 32 KiB window and 7 KiB of state) and the scratch buffer an echo is compressed into (up
/// to twice the largest frame). Then 16 KiB for the rest: the handshake response, control
/// frames, bookkeeping.
pub fn budget(config: &Config) -> usize {
    let h = config.high_water_mark;
    let m = config.max_message_size as usize;
    let deflate_overhead = if config.compression { m / 1024 + 64 } else { 0 };
    let largest = m + MAX_HEADER_LEN + deflate_overhead;
    let queue = 2 * (h + largest);
    let input = 2 * READ;
    let partial = 2 * m + (8 << 10);
    let deflate = if config.compression {
        (32 << 10) + (7 << 10) + 2 * largest
    } else {
        0
    };
    queue + input + partial + deflate + (16 << 10)
}

/// Runs the server target on fuzzer bytes.
pub fn run(data: &[u8]) {
    run_input(&Input::decode(data));
}

/// Runs the server target on a structured input.
pub fn run_input(input: &Input) {
    if input.broadcast {
        Run::new(input, Broadcast).run(&input.ops);
    } else {
        Run::new(input, Echo).run(&input.ops);
    }
}

/// A client as the harness knows it.
#[derive(Debug, Clone, Copy)]
struct Client {
    id: ClientId,
    /// Connected to the admin listener (counted in no public limit or gauge).
    admin: bool,
    /// May have negotiated permessage-deflate: the server may inflate what it sends.
    inflates: bool,
}

struct Run<H: Handler> {
    server: TestServer<H>,
    config: Config,
    budget: usize,
    /// Every message goes to every client (the `Broadcast` handler).
    fanout: bool,
    clients: Vec<Client>,
    /// What the ops have cost so far (see [`Run::cost`]).
    spent: usize,
    /// Pretend time the ops have moved on.
    elapsed: Duration,
}

/// When the invariants are checked, for the messages.
#[derive(Debug, Clone, Copy)]
enum When<'a> {
    /// After the op at this index.
    Op(usize, &'a Op),
    /// After the final `shutdown`.
    Shutdown,
    /// After the time the shutdown may take.
    Drained,
}

impl std::fmt::Display for When<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            When::Op(i, op) => write!(f, "after op {i}, {op:?}"),
            When::Shutdown => write!(f, "after the final shutdown"),
            When::Drained => write!(f, "once the shutdown's time has passed"),
        }
    }
}

impl<H: Handler> Run<H> {
    fn new(input: &Input, handler: H) -> Run<H> {
        let config = input.config();
        let mut server = TestServer::new(config.clone(), handler);
        if input.small_pipes {
            server.set_pipe_capacity(4 << 10);
        }
        Run {
            server,
            budget: budget(&config),
            config,
            fanout: input.broadcast,
            clients: Vec::new(),
            spent: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn run(mut self, ops: &[Op]) {
        for (i, op) in ops.iter().take(MAX_OPS).enumerate() {
            self.op(op);
            self.check(When::Op(i, op));
        }
        self.finish();
    }

    /// The index of the client an op names, if there is any.
    fn client(&self, index: u8) -> Option<usize> {
        (!self.clients.is_empty()).then(|| index as usize % self.clients.len())
    }

    fn add_client(
        &mut self,
        admin: bool,
        inflates: bool,
        connect: impl FnOnce(&mut TestServer<H>) -> ClientId,
    ) {
        if self.clients.len() < MAX_CLIENTS {
            let id = connect(&mut self.server);
            self.clients.push(Client {
                id,
                admin,
                inflates: inflates && self.config.compression,
            });
        }
    }

    /// What sending `wire` bytes from client `c` costs, `inflated` bytes once the server
    /// inflates them: the work they make, which is what the allowance bounds. Bytes sent to a
    /// connection that may inflate arbitrary frames count 32 times (deflate inflates up to
    /// about 1000 times), and with `Broadcast` every byte goes out to every client.
    fn cost(&self, c: usize, wire: usize, inflated: usize) -> usize {
        let wire = if self.clients[c].inflates {
            wire.saturating_mul(32)
        } else {
            wire
        };
        let fanout = if self.fanout { self.clients.len() } else { 1 };
        wire.max(inflated).saturating_mul(fanout)
    }

    /// Takes `cost` from the input's allowance, if it has that much left.
    fn spend(&mut self, cost: usize) -> bool {
        if self.spent + cost > MAX_TOTAL_COST {
            return false;
        }
        self.spent += cost;
        true
    }

    /// Sends `copies` of `bytes` (fewer when they cost more than an op may), each inflating
    /// to `inflated` bytes, from the client an op names.
    fn send_raw(&mut self, client: u8, bytes: &[u8], copies: usize, inflated: usize) {
        let Some(c) = self.client(client) else {
            return;
        };
        let each = self.cost(c, bytes.len(), inflated).max(1);
        let copies = copies.min(MAX_OP_COST / each).max(1);
        if self.spend(copies * each) {
            self.server
                .send_raw(self.clients[c].id, &bytes.repeat(copies));
        }
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Connect { deflate } => {
                let offer = deflate_offer(*deflate);
                self.add_client(false, offer.is_some(), |s| {
                    s.connect_with(ClientRequest::new("fuzz", "/"), offer)
                })
            }
            Op::ConnectRaw => self.add_client(false, false, TestServer::connect_raw),
            Op::ConnectAdmin => self.add_client(true, false, TestServer::connect_admin),
            Op::Handshake { client, deflate } => {
                if let Some(c) = self.client(*client) {
                    self.clients[c].inflates |= *deflate && self.config.compression;
                }
                self.send_raw(*client, upgrade_request(*deflate).as_bytes(), 1, 0)
            }
            Op::Raw { client, bytes } => self.send_raw(*client, bytes, 1, 0),
            Op::Frame {
                client,
                b0,
                flags,
                key,
                payload,
            } => {
                let mut payload = payload.to_vec();
                let inflated = payload.len();
                let mut b0 = *b0;
                if flags & 0x10 != 0 {
                    // Deflated as a server would, then sent masked with RSV1 set (0x40).
                    let frame = compress_shared(MessageKind::Binary, &payload, 15, 6);
                    let bytes = frame.as_bytes();
                    let (_, header_len) = FrameHeader::decode(bytes)
                        .expect("a frame compress_shared made")
                        .expect("a whole header");
                    payload = bytes[header_len..].to_vec();
                    b0 |= 0x40;
                }
                let frame = build_frame(Role::Server, b0, flags & 7, *key, &payload);
                self.send_raw(*client, &frame, 1 << (flags >> 5), inflated);
            }
            Op::Flood {
                client,
                b0,
                len,
                count,
            } => {
                let frame = build_frame(Role::Server, *b0, 0, *len, &vec![b'a'; *len as usize]);
                self.send_raw(*client, &frame, *count as usize, 0);
            }
            Op::Send {
                client,
                text,
                payload,
            } => {
                let Some(c) = self.client(*client) else {
                    return;
                };
                let data = payload.to_vec();
                // What the client's own engine sends inflates to no more than the message.
                let fanout = if self.fanout { self.clients.len() } else { 1 };
                if !self.spend(data.len() * fanout) {
                    return;
                }
                let message = if *text {
                    Message::Text(String::from_utf8_lossy(&data).into_owned().into())
                } else {
                    Message::Binary(Bytes::from(data))
                };
                self.server.send(self.clients[c].id, message);
            }
            Op::Ping { client, payload } => {
                if let Some(c) = self.client(*client) {
                    self.server.ping(self.clients[c].id, payload);
                }
            }
            Op::Close { client, code } => {
                if let Some(c) = self.client(*client) {
                    self.server.close(self.clients[c].id, CloseCode(*code));
                }
            }
            Op::SetReading { client, reading } => {
                if let Some(c) = self.client(*client) {
                    self.server.set_reading(self.clients[c].id, *reading);
                }
            }
            Op::ShutdownWrite { client } => {
                if let Some(c) = self.client(*client) {
                    self.server.shutdown_write(self.clients[c].id);
                }
            }
            Op::Advance(ms) => {
                let by = Duration::from_millis(*ms as u64).min(MAX_ELAPSED - self.elapsed);
                self.elapsed += by;
                self.server.advance(by);
            }
            Op::Shutdown => self.server.shutdown(),
            Op::Take { client } => {
                if let Some(c) = self.client(*client) {
                    self.server.messages(self.clients[c].id);
                }
            }
            Op::AdminGet { client, path } => {
                let path = ADMIN_PATHS[*path as usize % ADMIN_PATHS.len()];
                let request = format!("GET {path} HTTP/1.1\r\nHost: fuzz\r\n\r\n");
                self.send_raw(*client, request.as_bytes(), 1, 0);
            }
        }
    }

    /// The invariants that hold after every op.
    fn check(&self, when: When) {
        let server = &self.server;
        let mut open = 0;
        let mut public = 0;
        let mut held_total = 0;
        for (i, c) in self.clients.iter().enumerate() {
            let held = server.held(c.id);
            assert!(
                held <= self.budget,
                "the server holds {held} bytes for client {i}, over its budget of {} \
                 (high-water mark {}, message limit {}, compression {}), {when}",
                self.budget,
                self.config.high_water_mark,
                self.config.max_message_size,
                self.config.compression,
            );
            held_total += held;
            if !server.server_closed(c.id) {
                open += 1;
                public += !c.admin as usize;
            }
        }
        assert_eq!(
            server.connections(),
            open,
            "connections held vs. sockets not closed, {when}"
        );
        assert_eq!(
            server.admitted(),
            public,
            "connections admitted vs. public sockets not closed, {when}"
        );
        let metrics = server.snapshot();
        assert_eq!(
            metrics.connections_open, public as i64,
            "the connections_open gauge, {when}"
        );
        assert!(
            metrics.queued_bytes >= 0 && metrics.queued_bytes as usize <= held_total,
            "the queued_bytes gauge is {} with {held_total} bytes held, {when}",
            metrics.queued_bytes
        );
    }

    /// The graceful shutdown, then time past every deadline it may wait for: everything ends
    /// and everything reserved is given back.
    fn finish(mut self) {
        self.server.shutdown();
        self.check(When::Shutdown);
        let c = &self.config;
        let wait = c.drain_timeout + c.close_timeout + c.handshake_timeout + Duration::from_secs(1);
        self.server.advance(wait);
        self.check(When::Drained);
        let server = &self.server;
        assert!(server.is_finished(), "the server did not finish");
        assert_eq!(server.connections(), 0, "connections left");
        assert_eq!(server.admitted(), 0, "reservations left");
        for (i, client) in self.clients.iter().enumerate() {
            assert!(
                server.server_closed(client.id),
                "client {i}'s socket is open"
            );
            assert_eq!(server.held(client.id), 0, "memory held for client {i}");
        }
        let metrics = server.snapshot();
        assert_eq!(metrics.connections_open, 0, "the connections_open gauge");
        assert_eq!(metrics.queued_bytes, 0, "the queued_bytes gauge");
        assert!(
            server.rooms().members(Broadcast::ROOM).is_empty(),
            "members left in the broadcast room"
        );
    }
}
