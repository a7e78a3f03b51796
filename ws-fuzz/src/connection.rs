//! A whole `Connection`, either role, fed arbitrary bytes in arbitrary pieces between
//! arbitrary calls of its API, checked against the reference receiver in [`crate::model`] and
//! against a log of what the application asked it to send.
//!
//! Invariants:
//! - no panic;
//! - taking input in place (`receive_in_place`) changes nothing of the below;
//! - every `receive` returns `Ok(len)` until the call holding the byte that reveals the
//!   reference's first violation, which returns that violation; later calls return `Ok`;
//! - the events are exactly the reference's (for streaming, the chunks reassemble into them),
//!   nothing follows a `Close` event, a text message is valid UTF-8, sizes respect the limits;
//! - the bytes sent parse as frames of this role (masked only by a client, shortest length
//!   form, no RSV bits) and are exactly the frames the application sent, the pongs for the
//!   pings received before this side closed, and one close frame (the application's, the echo
//!   of the peer's code, or the violation's code), after which nothing is sent;
//! - each `UsageError` is the one the API documents for the state the call was made in;
//! - `memory_usage()` stays within a bound linear in the bytes fed and sent, and drops to 0
//!   after `shrink_buffers` on an idle open connection;
//! - the closing state, timer and `should_close_transport` follow section 7;
//! - every message received, sent back through a peer of the other role, arrives unchanged.

use crate::model::{self, message_of, Outcome};
use crate::utf8::{first_invalid_byte, pending_len};
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use core::time::Duration;
use ws_proto::close::MAX_REASON_LEN;
use ws_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use ws_proto::mask::{apply_mask, MaskKeySource};
use ws_proto::{
    CloseCode, Config, Connection, ConnectionState, EncodedFrame, Event, InPlaceEvent, Message,
    MessageKind, ProtocolViolation, Role, UsageError,
};

/// The frame size limits an input may pick (index 0 is the usual one).
const FRAME_LIMITS: [u64; 8] = [64 << 10, 16 << 20, 0, 1, 125, 126, 65535, 65536];
/// The message size limits an input may pick.
const MESSAGE_LIMITS: [u64; 8] = [64 << 10, 0, 1, 125, 126, 1000, 65535, 65536];

/// The connection under test and what it is driven with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Client role (else server).
    pub client: bool,
    /// `Config::auto_pong`.
    pub auto_pong: bool,
    /// `Config::streaming`.
    pub streaming: bool,
    /// Take input with `receive_in_place`, polling every event of a read as it is taken (else
    /// `receive`).
    pub in_place: bool,
    /// Index into the frame size limits.
    pub frame_limit: u8,
    /// Index into the message size limits.
    pub message_limit: u8,
    /// `Config::close_timeout`, in units of 10 ms.
    pub close_timeout: u8,
    /// Seed of the client's masking keys (0: all-zero keys).
    pub key_seed: u8,
    /// What happens, in order.
    pub ops: Vec<Op>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `receive` these bytes.
    Feed(Vec<u8>),
    /// `receive` a frame built from these fields, in one or two calls.
    Frame {
        /// The first header byte (FIN, RSV, opcode) as sent.
        b0: u8,
        /// Bit 0: mask the wrong way for the role; bits 1-2: length form (0 shortest, 1 16-bit,
        /// 2 64-bit, 3 declare one byte more than sent); bits 4-7: where to cut it in two.
        flags: u8,
        /// Masking key seed.
        key: u8,
        /// The payload.
        payload: Payload,
    },
    /// `send_text` (bytes made UTF-8 lossily).
    SendText(Vec<u8>),
    /// `send_binary`.
    SendBinary(Vec<u8>),
    /// `send_fragment`.
    SendFragment {
        /// Text (else binary).
        text: bool,
        /// Last fragment.
        fin: bool,
        /// Data, not necessarily UTF-8.
        data: Vec<u8>,
    },
    /// `send_ping`.
    Ping(Vec<u8>),
    /// `send_pong`.
    Pong(Vec<u8>),
    /// `close` (reason made UTF-8 lossily).
    Close {
        /// Status code.
        code: u16,
        /// Reason.
        reason: Vec<u8>,
    },
    /// Advance the clock by this many milliseconds and call `handle_time`.
    Time(u16),
    /// One `poll_event`.
    PollEvent,
    /// `poll_event` until `None`.
    PollEvents,
    /// One `poll_transmit`.
    PollTransmit,
    /// `transmit_slices` into this many slots (1 to 4), then `advance_transmit` by at most `n`.
    PartialWrite {
        /// Slots.
        slots: u8,
        /// Bytes the transport takes.
        n: u16,
    },
    /// `receive_eof`.
    Eof,
    /// `shrink_buffers`.
    Shrink,
    /// `send_encoded` of an `EncodedFrame`.
    SendEncoded {
        /// Text (else binary).
        text: bool,
        /// Payload (made UTF-8 lossily for text).
        data: Vec<u8>,
    },
    /// `send` the last message received back.
    Echo,
    /// `send_text`/`send_binary` of `len` copies of a byte (ASCII for text).
    SendFill {
        /// Text (else binary).
        text: bool,
        /// The byte.
        byte: u8,
        /// How many.
        len: u16,
    },
}

/// A frame payload: given bytes, or a run of one byte (to reach the size limits cheaply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// These bytes.
    Bytes(Vec<u8>),
    /// `len` copies of a byte.
    Fill(u8, u16),
}

impl Payload {
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        match self {
            Payload::Bytes(b) => b.clone(),
            Payload::Fill(b, n) => vec![*b; *n as usize],
        }
    }
}

// The byte format: four header bytes (role and config, message limit, close timeout, key
// seed), then ops until the input ends, each a tag byte and its fields. Lengths are one byte
// below 0xf0, else 12 bits from that byte and the next, plus 0xf0. It is read through
// `arbitrary::Unstructured` (a missing byte reads as 0) and written by `Input::encode`, which
// the seed corpus uses.

fn read_len(u: &mut Unstructured) -> arbitrary::Result<usize> {
    let first: u8 = u.arbitrary()?;
    if first < 0xf0 {
        return Ok(first as usize);
    }
    let second: u8 = u.arbitrary()?;
    Ok((((first & 0x0f) as usize) << 8 | second as usize) + 0xf0)
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    assert!(len < 0xf0 + 0x1000, "length {len} does not fit the format");
    if len < 0xf0 {
        out.push(len as u8);
    } else {
        let l = len - 0xf0;
        out.extend_from_slice(&[0xf0 | (l >> 8) as u8, l as u8]);
    }
}

pub(crate) fn read_bytes(u: &mut Unstructured) -> arbitrary::Result<Vec<u8>> {
    let len = read_len(u)?;
    Ok(u.bytes(len.min(u.len()))?.to_vec())
}

pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

pub(crate) fn read_u16(u: &mut Unstructured) -> arbitrary::Result<u16> {
    let hi: u8 = u.arbitrary()?;
    let lo: u8 = u.arbitrary()?;
    Ok(u16::from_be_bytes([hi, lo]))
}

const OP_COUNT: u8 = 18;

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let tag: u8 = u.arbitrary()?;
        Ok(match tag % OP_COUNT {
            0 => Op::Feed(read_bytes(u)?),
            1 => {
                let b0 = u.arbitrary()?;
                let flags: u8 = u.arbitrary()?;
                let key = u.arbitrary()?;
                let payload = if flags & 8 != 0 {
                    Payload::Fill(u.arbitrary()?, read_u16(u)?)
                } else {
                    Payload::Bytes(read_bytes(u)?)
                };
                Op::Frame {
                    b0,
                    flags,
                    key,
                    payload,
                }
            }
            2 => Op::SendText(read_bytes(u)?),
            3 => Op::SendBinary(read_bytes(u)?),
            4 => {
                let flags: u8 = u.arbitrary()?;
                Op::SendFragment {
                    text: flags & 1 != 0,
                    fin: flags & 2 != 0,
                    data: read_bytes(u)?,
                }
            }
            5 => Op::Ping(read_bytes(u)?),
            6 => Op::Pong(read_bytes(u)?),
            7 => Op::Close {
                code: read_u16(u)?,
                reason: read_bytes(u)?,
            },
            8 => Op::Time(read_u16(u)?),
            9 => Op::PollEvent,
            10 => Op::PollEvents,
            11 => Op::PollTransmit,
            12 => Op::PartialWrite {
                slots: u.arbitrary()?,
                n: read_u16(u)?,
            },
            13 => Op::Eof,
            14 => Op::Shrink,
            15 => {
                let flags: u8 = u.arbitrary()?;
                Op::SendEncoded {
                    text: flags & 1 != 0,
                    data: read_bytes(u)?,
                }
            }
            16 => Op::Echo,
            _ => {
                let flags: u8 = u.arbitrary()?;
                Op::SendFill {
                    text: flags & 1 != 0,
                    byte: u.arbitrary()?,
                    len: read_u16(u)?,
                }
            }
        })
    }
}

impl Op {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Feed(b) => {
                out.push(0);
                write_bytes(out, b);
            }
            Op::Frame {
                b0,
                flags,
                key,
                payload,
            } => {
                let fill = matches!(payload, Payload::Fill(..));
                out.extend_from_slice(&[1, *b0, flags & !8 | if fill { 8 } else { 0 }, *key]);
                match payload {
                    Payload::Fill(b, n) => {
                        out.push(*b);
                        out.extend_from_slice(&n.to_be_bytes());
                    }
                    Payload::Bytes(b) => write_bytes(out, b),
                }
            }
            Op::SendText(b) => {
                out.push(2);
                write_bytes(out, b);
            }
            Op::SendBinary(b) => {
                out.push(3);
                write_bytes(out, b);
            }
            Op::SendFragment { text, fin, data } => {
                out.extend_from_slice(&[4, *text as u8 | (*fin as u8) << 1]);
                write_bytes(out, data);
            }
            Op::Ping(b) => {
                out.push(5);
                write_bytes(out, b);
            }
            Op::Pong(b) => {
                out.push(6);
                write_bytes(out, b);
            }
            Op::Close { code, reason } => {
                out.push(7);
                out.extend_from_slice(&code.to_be_bytes());
                write_bytes(out, reason);
            }
            Op::Time(ms) => {
                out.push(8);
                out.extend_from_slice(&ms.to_be_bytes());
            }
            Op::PollEvent => out.push(9),
            Op::PollEvents => out.push(10),
            Op::PollTransmit => out.push(11),
            Op::PartialWrite { slots, n } => {
                out.extend_from_slice(&[12, *slots]);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Op::Eof => out.push(13),
            Op::Shrink => out.push(14),
            Op::SendEncoded { text, data } => {
                out.extend_from_slice(&[15, *text as u8]);
                write_bytes(out, data);
            }
            Op::Echo => out.push(16),
            Op::SendFill { text, byte, len } => {
                out.extend_from_slice(&[17, *text as u8, *byte]);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
    }
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let flags: u8 = u.arbitrary()?;
        let limits: u8 = u.arbitrary()?;
        let close_timeout = u.arbitrary()?;
        let key_seed = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() {
            ops.push(Op::arbitrary(u)?);
        }
        Ok(Input {
            client: flags & 1 != 0,
            auto_pong: flags & 2 == 0,
            streaming: flags & 4 != 0,
            frame_limit: flags >> 3 & 7,
            in_place: flags & 0x40 != 0,
            message_limit: limits & 7,
            close_timeout,
            key_seed,
            ops,
        })
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary(&mut u)
    }
}

impl Input {
    /// A server with the usual config (64 KiB limits, auto-pong) running `ops`.
    pub fn server(ops: Vec<Op>) -> Input {
        Input {
            client: false,
            auto_pong: true,
            streaming: false,
            in_place: false,
            frame_limit: 0,
            message_limit: 0,
            close_timeout: 100,
            key_seed: 1,
            ops,
        }
    }

    /// A client with the usual config running `ops`.
    pub fn client(ops: Vec<Op>) -> Input {
        Input {
            client: true,
            ..Input::server(ops)
        }
    }

    /// The bytes that read back as this input.
    pub fn encode(&self) -> Vec<u8> {
        let flags = self.client as u8
            | (!self.auto_pong as u8) << 1
            | (self.streaming as u8) << 2
            | (self.frame_limit & 7) << 3
            | (self.in_place as u8) << 6;
        let mut out = vec![
            flags,
            self.message_limit & 7,
            self.close_timeout,
            self.key_seed,
        ];
        for op in &self.ops {
            op.encode(&mut out);
        }
        out
    }

    /// Reads an input from fuzzer bytes.
    pub fn decode(data: &[u8]) -> Input {
        Input::arbitrary_take_rest(Unstructured::new(data)).expect("every byte string reads")
    }

    fn config(&self) -> Config {
        Config {
            max_frame_size: FRAME_LIMITS[self.frame_limit as usize & 7],
            max_message_size: MESSAGE_LIMITS[self.message_limit as usize & 7],
            auto_pong: self.auto_pong,
            close_timeout: Duration::from_millis(self.close_timeout as u64 * 10),
            streaming: self.streaming,
            // The model answers every ping; coalescing, which depends on what the transport
            // took, has its own tests in ws-proto.
            coalesce_pongs_above: usize::MAX,
        }
    }
}

/// Deterministic masking keys, so a failing input replays exactly.
#[derive(Debug)]
pub struct TestKeys(pub u32);

impl MaskKeySource for TestKeys {
    fn next_key(&mut self) -> [u8; 4] {
        if self.0 == 0 {
            return [0; 4];
        }
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.0.to_le_bytes()
    }
}

/// A connection of `role` with deterministic keys.
pub fn connection(role: Role, config: Config, key_seed: u32) -> Connection {
    match role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client_with_keys(config, Box::new(TestKeys(key_seed))),
    }
}

/// The masking key a `Frame` op's key byte stands for.
pub fn frame_key(seed: u8) -> [u8; 4] {
    if seed == 0 {
        [0; 4]
    } else {
        [
            seed,
            seed.wrapping_add(0x3d),
            seed ^ 0xa5,
            seed.rotate_left(3),
        ]
    }
}

/// The bytes of a `Frame` op sent to a receiver of `role`.
pub fn build_frame(role: Role, b0: u8, flags: u8, key: u8, payload: &[u8]) -> Vec<u8> {
    // Correct masking: a server receives masked frames, a client unmasked ones.
    let masked = (role == Role::Server) != (flags & 1 != 0);
    let form = flags >> 1 & 3;
    let declared = payload.len() as u64 + (form == 3) as u64;
    let m = if masked { 0x80 } else { 0 };
    let mut out = vec![b0];
    if form == 2 || declared > u16::MAX as u64 {
        out.push(m | 127);
        out.extend_from_slice(&declared.to_be_bytes());
    } else if form == 1 || declared >= 126 {
        out.push(m | 126);
        out.extend_from_slice(&(declared as u16).to_be_bytes());
    } else {
        out.push(m | declared as u8);
    }
    let start = out.len() + if masked { 4 } else { 0 };
    if masked {
        out.extend_from_slice(&frame_key(key));
    }
    out.extend_from_slice(payload);
    if masked {
        apply_mask(&mut out[start..], frame_key(key), 0);
    }
    out
}

/// A frame this side sent, as the peer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SentFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Expected {
    Expected::Frame(SentFrame {
        fin,
        opcode: opcode.as_u8(),
        payload: payload.to_vec(),
    })
}

/// What should appear in the output, in order; the engine's own frames depend on what the
/// reference receiver finds, so they are resolved at the end.
#[derive(Debug)]
enum Expected {
    Frame(SentFrame),
    /// The pongs for the pings completed by this `receive` call, if auto-pong applied.
    Pongs(usize),
    /// The engine's close frame: the echo of the peer's code or the violation's code.
    EngineClose,
}

/// One `receive` call.
#[derive(Debug)]
struct Call {
    start: usize,
    end: usize,
    result: Result<(), ProtocolViolation>,
    auto_pong: bool,
}

struct Run {
    role: Role,
    config: Config,
    conn: Connection,
    in_place: bool,
    /// Every byte given to `receive` before EOF.
    fed: Vec<u8>,
    eof: bool,
    calls: Vec<Call>,
    /// Events polled, with chunks reassembled into messages (streaming mode).
    events: Vec<Event>,
    /// The streamed message being reassembled.
    open: Option<(MessageKind, Vec<u8>)>,
    close_polled: bool,
    last_message: Option<Message>,
    /// Bytes taken from the engine.
    out: Vec<u8>,
    expected: Vec<Expected>,
    /// A close frame is in the output log (this side may send no more).
    close_logged: bool,
    app_closed: bool,
    /// The fragmented message being sent: its kind and an unfinished code point of its text.
    sending: Option<(MessageKind, Vec<u8>)>,
    sent_bytes: usize,
    now: Duration,
    deadline: Option<Duration>,
    /// A `handle_time` at or after the deadline has fired the close timer.
    timed_out: bool,
    ops_done: usize,
    key_seed: u32,
}

/// Runs the connection target on fuzzer bytes.
pub fn run(data: &[u8]) {
    run_input(&Input::decode(data));
}

/// Runs the connection target on a structured input.
pub fn run_input(input: &Input) {
    let role = if input.client {
        Role::Client
    } else {
        Role::Server
    };
    let config = input.config();
    let mut run = Run {
        role,
        conn: connection(role, config.clone(), input.key_seed as u32),
        config,
        in_place: input.in_place,
        fed: Vec::new(),
        eof: false,
        calls: Vec::new(),
        events: Vec::new(),
        open: None,
        close_polled: false,
        last_message: None,
        out: Vec::new(),
        expected: Vec::new(),
        close_logged: false,
        app_closed: false,
        sending: None,
        sent_bytes: 0,
        now: Duration::ZERO,
        deadline: None,
        timed_out: false,
        ops_done: 0,
        key_seed: input.key_seed as u32,
    };
    for op in &input.ops {
        run.step(op);
    }
    run.finish();
}

impl Run {
    fn step(&mut self, op: &Op) {
        assert_eq!(
            self.conn.can_send(),
            !self.close_logged,
            "can_send before {op:?}"
        );
        let state_before = self.conn.state();
        let mut app_close = false;
        match op {
            Op::Feed(bytes) => self.receive(bytes),
            Op::Frame {
                b0,
                flags,
                key,
                payload,
            } => {
                let bytes = build_frame(self.role, *b0, *flags, *key, &payload.to_vec());
                let cut = bytes.len() * (*flags >> 4) as usize / 16;
                self.receive(&bytes[..cut]);
                self.receive(&bytes[cut..]);
            }
            Op::SendText(b) => {
                let text = String::from_utf8_lossy(b);
                let r = self.conn.send_text(&text);
                self.check_send(r, MessageKind::Text, text.as_bytes());
            }
            Op::SendBinary(b) => {
                let r = self.conn.send_binary(b);
                self.check_send(r, MessageKind::Binary, b);
            }
            Op::SendFill { text, byte, len } => {
                let (kind, data) = if *text {
                    (MessageKind::Text, vec![byte & 0x7f; *len as usize])
                } else {
                    (MessageKind::Binary, vec![*byte; *len as usize])
                };
                let r = match kind {
                    MessageKind::Text => self.conn.send_text(std::str::from_utf8(&data).unwrap()),
                    MessageKind::Binary => self.conn.send_binary(&data),
                };
                self.check_send(r, kind, &data);
            }
            Op::Echo => {
                if let Some(message) = self.last_message.clone() {
                    let r = self.conn.send(&message);
                    self.check_send(r, message.kind(), message.as_bytes());
                }
            }
            Op::SendEncoded { text, data } => {
                let (kind, data) = if *text {
                    let s = String::from_utf8_lossy(data).into_owned();
                    (MessageKind::Text, s.into_bytes())
                } else {
                    (MessageKind::Binary, data.clone())
                };
                let encoded = EncodedFrame::new(kind, &data);
                let r = self.conn.send_encoded(&encoded);
                if self.role == Role::Client {
                    assert_eq!(r, Err(UsageError::NotServer));
                } else {
                    self.check_send(r, kind, &data);
                }
            }
            Op::SendFragment { text, fin, data } => self.send_fragment(*text, *fin, data),
            Op::Ping(b) | Op::Pong(b) => {
                let opcode = if matches!(op, Op::Ping(_)) {
                    OpCode::Ping
                } else {
                    OpCode::Pong
                };
                let r = match opcode {
                    OpCode::Ping => self.conn.send_ping(b),
                    _ => self.conn.send_pong(b),
                };
                let expected = if self.close_logged {
                    Err(UsageError::Closing)
                } else if b.len() > 125 {
                    Err(UsageError::ControlPayloadTooLong(b.len()))
                } else {
                    Ok(())
                };
                assert_eq!(r, expected, "{op:?}");
                if r.is_ok() {
                    self.expected.push(frame(true, opcode, b));
                    self.sent_bytes += b.len() + MAX_HEADER_LEN;
                }
            }
            Op::Close { code, reason } => {
                let reason = String::from_utf8_lossy(reason);
                let r = self.conn.close(self.now, CloseCode(*code), &reason);
                let expected = if !CloseCode(*code).is_valid_on_wire() {
                    Err(UsageError::InvalidCloseCode(*code))
                } else if reason.len() > MAX_REASON_LEN {
                    Err(UsageError::CloseReasonTooLong(reason.len()))
                } else {
                    Ok(())
                };
                assert_eq!(r, expected, "{op:?}");
                // A close that is accepted (whoever sent the close frame) arms the timer at
                // once, if it is not armed yet.
                if r.is_ok() && self.deadline.is_none() {
                    self.deadline = Some(self.now + self.config.close_timeout);
                }
                if r.is_ok() && !self.close_logged {
                    let mut payload = code.to_be_bytes().to_vec();
                    payload.extend_from_slice(reason.as_bytes());
                    self.expected.push(frame(true, OpCode::Close, &payload));
                    self.close_logged = true;
                    self.app_closed = true;
                    app_close = true;
                    let expected_state = match state_before {
                        ConnectionState::Open => ConnectionState::Closing,
                        other => other,
                    };
                    assert_eq!(self.conn.state(), expected_state);
                }
            }
            Op::Time(ms) => {
                self.now += Duration::from_millis(*ms as u64);
                self.conn.handle_time(self.now);
                if self.close_logged && self.deadline.is_none() {
                    self.deadline = Some(self.now + self.config.close_timeout);
                }
                // The timer fires at a `handle_time` at or after its deadline, never before.
                if self.deadline.is_some_and(|d| self.now >= d) {
                    self.timed_out = true;
                }
                let expected = self.deadline.filter(|_| !self.timed_out);
                assert_eq!(
                    self.conn.poll_timeout(),
                    expected,
                    "poll_timeout at {:?}",
                    self.now
                );
            }
            Op::PollEvent => {
                let event = self.conn.poll_event();
                self.take_event(event);
            }
            Op::PollEvents => self.poll_events(),
            Op::PollTransmit => self.poll_transmit_once(),
            Op::PartialWrite { slots, n } => self.partial_write(*slots, *n),
            Op::Eof => {
                self.conn.receive_eof();
                self.eof = true;
                assert_eq!(self.conn.state(), ConnectionState::Closed);
                assert!(self.conn.should_close_transport());
            }
            Op::Shrink => self.conn.shrink_buffers(),
        }
        if !self.conn.can_send() && !self.close_logged {
            assert!(!app_close);
            self.expected.push(Expected::EngineClose);
            self.close_logged = true;
        }
        self.ops_done += 1;
        self.check_memory();
        // An armed timer is reported until it fires, even when it is already due.
        let armed = self.deadline.filter(|_| !self.timed_out);
        assert_eq!(self.conn.poll_timeout(), armed, "poll_timeout after {op:?}");
        assert_eq!(
            self.conn.has_pending_transmit(),
            self.conn.pending_transmit_len() > 0
        );
    }

    fn receive(&mut self, bytes: &[u8]) {
        let auto_pong = self.config.auto_pong && self.conn.can_send();
        let result = if self.in_place {
            self.receive_in_place(bytes)
        } else {
            self.conn.receive(bytes)
        };
        if self.eof {
            assert_eq!(result, Ok(()), "bytes after EOF are ignored");
            return;
        }
        let start = self.fed.len();
        self.fed.extend_from_slice(bytes);
        self.calls.push(Call {
            start,
            end: self.fed.len(),
            result,
            auto_pong,
        });
        self.expected.push(Expected::Pongs(self.calls.len() - 1));
    }

    /// `receive_in_place` of a copy of `bytes`, taking every event (owned or borrowed) as it
    /// comes; the result is what `receive` would return.
    fn receive_in_place(&mut self, bytes: &[u8]) -> Result<(), ProtocolViolation> {
        let mut read = bytes.to_vec();
        let mut events = Vec::new();
        let mut input = self.conn.receive_in_place(&mut read);
        let result = loop {
            match input.next_event() {
                Ok(Some(InPlaceEvent::Text(t))) => events.push(Event::Message(Message::Text(
                    Bytes::copy_from_slice(t.as_bytes())
                        .try_into()
                        .expect("text is UTF-8"),
                ))),
                Ok(Some(InPlaceEvent::Binary(b))) => {
                    events.push(Event::Message(Message::Binary(Bytes::copy_from_slice(b))))
                }
                Ok(Some(InPlaceEvent::Other(event))) => events.push(event),
                Ok(None) => break Ok(()),
                Err(violation) => {
                    assert_eq!(input.next_event(), Ok(None), "an event after {violation:?}");
                    break Err(violation);
                }
            }
        };
        drop(input);
        for event in events {
            self.take_event(Some(event));
        }
        result
    }

    /// Checks a `send_text`/`send_binary`/`send`/`send_encoded` result and logs the frame.
    fn check_send(&mut self, r: Result<(), UsageError>, kind: MessageKind, payload: &[u8]) {
        let expected = if self.close_logged {
            Err(UsageError::Closing)
        } else if self.sending.is_some() {
            Err(UsageError::MessageInProgress)
        } else {
            Ok(())
        };
        assert_eq!(
            r,
            expected,
            "sending a {kind:?} message of {} bytes",
            payload.len()
        );
        if r.is_ok() {
            let opcode = match kind {
                MessageKind::Text => OpCode::Text,
                MessageKind::Binary => OpCode::Binary,
            };
            self.expected.push(frame(true, opcode, payload));
            self.sent_bytes += payload.len() + MAX_HEADER_LEN;
        }
    }

    fn send_fragment(&mut self, text: bool, fin: bool, data: &[u8]) {
        let kind = if text {
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        let r = self.conn.send_fragment(kind, data, fin);
        let mut tail = Vec::new();
        let expected = if self.close_logged {
            Err(UsageError::Closing)
        } else if self.sending.as_ref().is_some_and(|(k, _)| *k != kind) {
            Err(UsageError::FragmentKindMismatch)
        } else if text {
            let mut so_far = self.sending.as_ref().map_or(Vec::new(), |(_, t)| t.clone());
            so_far.extend_from_slice(data);
            let ok = first_invalid_byte(&so_far).is_none() && !(fin && pending_len(&so_far) > 0);
            tail = so_far[so_far.len() - pending_len(&so_far).min(so_far.len())..].to_vec();
            if ok {
                Ok(())
            } else {
                Err(UsageError::InvalidUtf8)
            }
        } else {
            Ok(())
        };
        assert_eq!(r, expected, "send_fragment({kind:?}, {data:02x?}, {fin})");
        if r.is_ok() {
            let opcode = match (&self.sending, kind) {
                (Some(_), _) => OpCode::Continuation,
                (None, MessageKind::Text) => OpCode::Text,
                (None, MessageKind::Binary) => OpCode::Binary,
            };
            self.expected.push(frame(fin, opcode, data));
            self.sent_bytes += data.len() + MAX_HEADER_LEN;
            self.sending = (!fin).then_some((kind, tail));
        }
    }

    fn take_event(&mut self, event: Option<Event>) {
        let Some(event) = event else {
            return;
        };
        assert!(!self.close_polled, "{event:?} after the Close event");
        let max = self.config.max_message_size;
        match &event {
            Event::Message(m) => {
                assert!(!self.config.streaming, "a whole message in streaming mode");
                if let Message::Text(t) = m {
                    assert!(
                        std::str::from_utf8(t.as_bytes()).is_ok(),
                        "text is not UTF-8"
                    );
                }
                assert!(m.as_bytes().len() as u64 <= max, "message over the limit");
                self.last_message = Some(m.clone());
            }
            Event::Chunk(chunk) => {
                assert!(self.config.streaming, "a chunk outside streaming mode");
                if chunk.kind == MessageKind::Text {
                    assert!(
                        std::str::from_utf8(&chunk.data).is_ok(),
                        "a text chunk is not UTF-8 by itself: {:02x?}",
                        chunk.data
                    );
                }
                match (&mut self.open, chunk.first) {
                    (None, true) => self.open = Some((chunk.kind, chunk.data.to_vec())),
                    (Some((kind, data)), false) => {
                        assert_eq!(*kind, chunk.kind, "chunk kind changed");
                        data.extend_from_slice(&chunk.data);
                    }
                    (open, first) => panic!(
                        "chunk with first={first} while a message is {}open",
                        if open.is_some() { "" } else { "not " }
                    ),
                }
                let (kind, data) = self.open.as_ref().unwrap();
                assert!(data.len() as u64 <= max, "streamed message over the limit");
                if chunk.last {
                    let (kind, data) = (*kind, data.clone());
                    self.open = None;
                    let message = message_of(kind, data);
                    self.last_message = Some(message.clone());
                    self.events.push(Event::Message(message));
                }
                return;
            }
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::Close(frame) => {
                self.close_polled = true;
                if let Some(f) = frame {
                    assert!(f.code.is_valid_on_wire());
                    assert!(f.reason.len() <= MAX_REASON_LEN);
                }
            }
        }
        self.events.push(event);
    }

    fn poll_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.take_event(Some(event));
        }
        assert!(self.close_polled || self.conn.poll_event().is_none());
    }

    fn poll_transmit_once(&mut self) {
        if let Some(chunk) = self.conn.poll_transmit() {
            assert!(!chunk.is_empty(), "an empty chunk to send");
            self.out.extend_from_slice(&chunk);
        }
    }

    fn partial_write(&mut self, slots: u8, n: u16) {
        let slots = 1 + (slots % 4) as usize;
        let pending = self.conn.pending_transmit_len();
        let mut dst = [&[][..]; 4];
        let filled = self.conn.transmit_slices(&mut dst[..slots]);
        assert!(filled <= slots);
        let flat: Vec<u8> = dst[..filled].concat();
        let mut io = [std::io::IoSlice::new(&[]); 4];
        let io_filled = self.conn.transmit_io_slices(&mut io[..slots]);
        let io_flat: Vec<u8> = io[..io_filled]
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        assert_eq!(
            (io_filled, &io_flat),
            (filled, &flat),
            "io slices differ from slices"
        );
        assert!(
            dst[..filled].iter().all(|s| !s.is_empty()),
            "an empty slice"
        );
        if filled < slots {
            assert_eq!(flat.len(), pending, "free slots left but bytes not offered");
        }
        let take = (n as usize).min(flat.len());
        self.out.extend_from_slice(&flat[..take]);
        self.conn.advance_transmit(take);
        assert_eq!(self.conn.pending_transmit_len(), pending - take);
    }

    fn check_memory(&self) {
        let usage = self.conn.memory_usage();
        let event = core::mem::size_of::<Event>();
        // Buffers may double, and BytesMut keeps up to 64 KiB of a previous allocation.
        let bound = 8 * (self.fed.len() + self.sent_bytes)
            + 2 * (self.fed.len() / 2 + self.ops_done + 8) * (event + 32)
            + 2 * self.config.max_message_size.min(self.fed.len() as u64) as usize
            + (256 << 10);
        assert!(
            usage <= bound,
            "memory_usage {usage} over {bound} after {} bytes fed, {} sent",
            self.fed.len(),
            self.sent_bytes
        );
    }

    fn finish(&mut self) {
        // Drain like an event loop would, then check the whole story.
        self.poll_events();
        while let Some(chunk) = self.conn.poll_transmit() {
            assert!(!chunk.is_empty());
            self.out.extend_from_slice(&chunk);
        }
        if !self.conn.can_send() && !self.close_logged {
            self.expected.push(Expected::EngineClose);
            self.close_logged = true;
        }
        assert!(!self.conn.has_pending_transmit());
        let outcome = model::receive(self.role, &self.config, &self.fed);
        self.check_receive_results(&outcome);
        self.check_events(&outcome);
        self.check_output(&outcome);
        self.check_closing(&outcome);
        self.conn.shrink_buffers();
        if self.conn.state() != ConnectionState::Closed && outcome.partial.is_none() {
            assert_eq!(
                self.conn.memory_usage(),
                0,
                "an idle connection after shrink_buffers"
            );
        }
        self.check_round_trip();
    }

    fn check_receive_results(&self, outcome: &Outcome) {
        let mut failed = false;
        for call in &self.calls {
            let expected = match outcome.violation {
                Some((v, at)) if call.start <= at && at < call.end => Err(v),
                _ => Ok(()),
            };
            if failed {
                assert!(call.result.is_ok(), "a second error: {:?}", call.result);
                continue;
            }
            assert_eq!(
                call.result, expected,
                "receive of bytes {}..{} (violation {:?})",
                call.start, call.end, outcome.violation
            );
            failed = call.result.is_err();
        }
    }

    fn check_events(&self, outcome: &Outcome) {
        let expected: Vec<&Event> = outcome.events.iter().map(|(e, _)| e).collect();
        let got: Vec<&Event> = self.events.iter().collect();
        assert_eq!(got, expected, "events");
        match (&self.open, &outcome.partial) {
            (None, _) => {}
            (Some((kind, data)), Some((k, d))) => {
                assert_eq!(kind, k);
                assert!(
                    d.starts_with(data),
                    "streamed chunks are not a prefix of the message"
                );
                let cut_short = outcome.violation.is_some() || outcome.close_received;
                if !cut_short {
                    let held = if *k == MessageKind::Text {
                        pending_len(d)
                    } else {
                        0
                    };
                    assert_eq!(data.len(), d.len() - held, "data received but not streamed");
                }
            }
            (Some(_), None) => panic!("chunks of a message the reference does not have"),
        }
    }

    fn check_output(&self, outcome: &Outcome) {
        let mut frames = Vec::new();
        let mut rest = &self.out[..];
        // A client masks each frame with the next key of its source (section 5.3).
        let mut keys = TestKeys(self.key_seed);
        while !rest.is_empty() {
            let (header, len) = match FrameHeader::decode(rest) {
                Ok(Some(h)) => h,
                other => panic!("output does not parse as frames: {other:?} at {rest:02x?}"),
            };
            assert_eq!(
                header.mask.is_some(),
                self.role == Role::Client,
                "masking by role"
            );
            if let Some(key) = header.mask {
                assert_eq!(
                    key,
                    keys.next_key(),
                    "frame {} not masked with a fresh key",
                    frames.len()
                );
            }
            assert_eq!(header.rsv, 0);
            assert_eq!(len, header.encoded_len(), "length not in the shortest form");
            let end = len + header.payload_len as usize;
            assert!(end <= rest.len(), "output ends inside a frame");
            let mut payload = rest[len..end].to_vec();
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            if let Some(SentFrame { opcode: 0x8, .. }) = frames.last() {
                panic!("{:?} frame sent after the close frame", header.opcode);
            }
            frames.push(SentFrame {
                fin: header.fin,
                opcode: header.opcode.as_u8(),
                payload,
            });
            rest = &rest[end..];
        }
        let mut expected = Vec::new();
        for e in &self.expected {
            match e {
                Expected::Frame(f) => expected.push(f.clone()),
                Expected::Pongs(i) => {
                    let call = &self.calls[*i];
                    if !call.auto_pong {
                        continue;
                    }
                    for (event, at) in &outcome.events {
                        if let (Event::Ping(p), true) = (event, (call.start..call.end).contains(at))
                        {
                            expected.push(SentFrame {
                                fin: true,
                                opcode: 0xa,
                                payload: p.to_vec(),
                            });
                        }
                    }
                }
                Expected::EngineClose => {
                    let payload = match (&outcome.violation, outcome.events.last()) {
                        (Some((v, _)), _) => v.close_code().0.to_be_bytes().to_vec(),
                        (None, Some((Event::Close(Some(f)), _))) => f.code.0.to_be_bytes().to_vec(),
                        (None, Some((Event::Close(None), _))) => Vec::new(),
                        _ => panic!("the engine sent a close frame without a cause"),
                    };
                    expected.push(SentFrame {
                        fin: true,
                        opcode: 0x8,
                        payload,
                    });
                }
            }
        }
        assert_eq!(
            frames.len(),
            expected.len(),
            "frames sent: {frames:?}\nexpected: {expected:?}"
        );
        for (i, (got, want)) in frames.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "frame {i} sent");
        }
    }

    fn check_closing(&self, outcome: &Outcome) {
        let timed_out = self.timed_out;
        let failed = outcome.violation.is_some();
        let state = self.conn.state();
        let should_close = self.conn.should_close_transport();
        if self.eof || failed || outcome.close_received {
            assert_eq!(state, ConnectionState::Closed);
        } else if self.app_closed {
            assert_eq!(state, ConnectionState::Closing);
        } else {
            assert_eq!(state, ConnectionState::Open);
        }
        // A failure or a completed close always ends with our close frame sent.
        if failed || outcome.close_received {
            assert!(self.close_logged, "no close frame sent");
        }
        let expected = self.eof
            || timed_out
            || failed
            || (outcome.close_received && self.role == Role::Server);
        assert_eq!(should_close, expected, "should_close_transport");
    }

    fn check_round_trip(&self) {
        let messages: Vec<Message> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        if messages.is_empty() {
            return;
        }
        let peer_role = match self.role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let mut peer = connection(peer_role, Config::default(), 7);
        for m in &messages {
            peer.send(m).expect("a fresh peer sends");
        }
        let mut wire = Vec::new();
        while let Some(chunk) = peer.poll_transmit() {
            wire.extend_from_slice(&chunk);
        }
        let mut again = connection(self.role, Config::default(), 9);
        again.receive(&wire).expect("the peer's frames are valid");
        let received: Vec<Event> = std::iter::from_fn(|| again.poll_event()).collect();
        let sent: Vec<Event> = messages.into_iter().map(Event::Message).collect();
        assert_eq!(received, sent, "messages sent back through a peer");
    }
}
