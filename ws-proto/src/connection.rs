//! The connection state machine: framing, message assembly, the close and ping/pong rules.
//!
//! A [`Connection`] starts after the opening handshake and never performs I/O. The caller
//! drives it in this order, every time its socket or timer wakes it up:
//!
//! 1. **bytes in**: [`Connection::receive`] with whatever was read (any size, split anywhere),
//!    or [`Connection::receive_eof`] when the peer closed the transport;
//! 2. **time in**: [`Connection::handle_time`] with the current time;
//! 3. **events out**: [`Connection::poll_event`] until `None` (messages, pings, pongs, close),
//!    sending replies with the `send_*` methods as it goes;
//! 4. **bytes out**: [`Connection::poll_transmit`] (owned chunks) or
//!    [`Connection::transmit_slices`] + [`Connection::advance_transmit`] (write in place, keep
//!    what the socket would not take) until nothing is pending;
//! 5. **next wake-up**: [`Connection::poll_timeout`], and [`Connection::should_close_transport`]
//!    to learn when to close the socket.
//!
//! Control frames the engine writes on its own (pong replies, the close reply) sit in the same
//! outgoing queue as the caller's frames, in order, until the caller takes them: nothing is
//! lost when a socket would block.
//!
//! Time is a [`Duration`] since any fixed origin the caller picks (for example the `Instant` at
//! which its program started); the engine never reads a clock.

use crate::close::{CloseCode, CloseFrame};
use crate::error::{ProtocolViolation, UsageError};
use crate::extension::{Extension, PayloadSink};
use crate::frame::{FrameHeader, OpCode, RsvBits, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::mask::{apply_mask, MaskKeySource};
use crate::message::{Message, MessageChunk, MessageKind, Utf8Bytes};
use crate::role::Role;
use crate::utf8::{text_of, Utf8Validator};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::{Buf, Bytes, BytesMut};
use core::time::Duration;

/// Pre-encoded frames up to this size are copied into the output rather than queued as shared
/// chunks (see [`Connection::send_encoded`]): a chunk costs a 32-byte handle and a queue slot,
/// so a peer that does not read could otherwise hold many times the bytes it is owed.
pub const COPY_FRAMES_UP_TO: usize = 256;

/// Limits and behaviour of a connection. Every limit has a default that protects a server
/// exposed to the internet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest frame payload accepted, in bytes; a larger declared length fails the
    /// connection with 1009 as soon as the header arrives. Default 16 MiB.
    pub max_frame_size: u64,
    /// The largest message accepted, in bytes (after decoding by an extension); checked against
    /// each frame's declared length and the running sum of fragments, and while an extension
    /// decodes. Default 64 MiB.
    pub max_message_size: u64,
    /// Answer every ping with a pong carrying the same payload (RFC 6455 section 5.5.2).
    /// Default true. Pings are reported as events either way.
    pub auto_pong: bool,
    /// How long to wait, once a close frame was sent, for the peer's close frame; and, for a
    /// client, for the server to close the transport after the close handshake (section 7.1.1).
    /// Counted from the `now` given to [`Connection::close`] for a close this side starts, and
    /// from the next [`Connection::handle_time`] for a close frame the engine sends on its own.
    /// Default 5 s.
    pub close_timeout: Duration,
    /// Deliver data as [`Event::Chunk`]s while it arrives instead of whole [`Event::Message`]s,
    /// so a message of any size never has to be buffered. Default false.
    pub streaming: bool,
    /// Outgoing bytes past which automatic pongs coalesce: while more than this waits to be
    /// sent (a peer that pings and does not read), a ping's pong is held instead of queued,
    /// replacing any pong held before, and goes out once the queue is back within the limit
    /// (RFC 6455 section 5.5.3 lets an endpoint answer only the most recent ping). Within it,
    /// every ping gets its own pong. Default 64 KiB.
    pub coalesce_pongs_above: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            auto_pong: true,
            close_timeout: Duration::from_secs(5),
            streaming: false,
            coalesce_pongs_above: 64 << 10,
        }
    }
}

/// What the connection reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete message (not in streaming mode).
    Message(Message),
    /// A piece of a message (streaming mode).
    Chunk(MessageChunk),
    /// A ping arrived (answered already when [`Config::auto_pong`] is set).
    Ping(Bytes),
    /// A pong arrived, solicited or not.
    Pong(Bytes),
    /// The peer's close frame arrived (`None`: it carried no status code). The reply was queued
    /// if this side had not sent a close frame yet.
    Close(Option<CloseFrame>),
}

/// Where the closing handshake stands (RFC 6455 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Data flows both ways.
    Open,
    /// This side sent a close frame and waits for the peer's; incoming data is still delivered.
    Closing,
    /// The closing handshake is complete, or the connection failed or lost its transport.
    Closed,
}

/// The frame being received: its header and how much payload is still to come.
#[derive(Debug, Clone, Copy)]
struct IncomingFrame {
    opcode: OpCode,
    fin: bool,
    mask: Option<[u8; 4]>,
    len: u64,
    remaining: u64,
}

/// The data message being received.
#[derive(Debug, Clone, Copy)]
struct IncomingMessage {
    kind: MessageKind,
    /// An extension decodes this message's payload.
    decoded: bool,
    /// Payload bytes so far (after decoding).
    size: u64,
    /// No chunk of it was delivered yet (streaming mode).
    first_chunk_pending: bool,
}

/// How this side masks what it sends: a server never does, a client always does.
enum Masking {
    Server,
    Client(Box<dyn MaskKeySource>),
}

/// One WebSocket connection, after the opening handshake. See the [module docs](self) for the
/// order in which to drive it.
///
/// ```
/// use ws_proto::{Config, Connection, Event, Message};
/// let mut server = Connection::server(Config::default());
/// // A client's masked text frame "Hello" (RFC 6455 section 5.7), arriving in two reads.
/// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// server.receive(&wire[..3]).unwrap();
/// server.receive(&wire[3..]).unwrap();
/// let Some(Event::Message(Message::Text(text))) = server.poll_event() else { panic!() };
/// assert_eq!(text.as_str(), "Hello");
/// server.send_text("Hello").unwrap();
/// assert_eq!(&server.poll_transmit().unwrap()[..], b"\x81\x05Hello");
/// ```
pub struct Connection {
    masking: Masking,
    config: Config,
    state: ConnectionState,
    extension: Option<Box<dyn Extension>>,

    // Receiving.
    header_stash: [u8; MAX_HEADER_LEN],
    header_stash_len: u8,
    frame: Option<IncomingFrame>,
    message: Option<IncomingMessage>,
    message_buf: BytesMut,
    /// The length of the input `receive` was last given: the message buffer grows by up to
    /// this much at once, so that it never holds more than was really received.
    read_len: usize,
    utf8: Utf8Validator,
    control_buf: [u8; MAX_CONTROL_PAYLOAD],
    control_len: u8,
    /// Unmasked payload on its way into an extension's decoder.
    decode_scratch: Vec<u8>,
    /// Payload bytes extensions have produced so far (see [`Connection::decoded_total`]).
    decoded_total: u32,
    /// Input after the peer's close frame, a failure or EOF is discarded (section 5.5.1).
    read_closed: bool,
    events: VecDeque<Event>,

    // Sending.
    out_chunks: VecDeque<Bytes>,
    /// Bytes in `out_chunks`, kept so that backpressure checks cost nothing.
    out_chunks_len: usize,
    out_staging: BytesMut,
    encode_scratch: Vec<u8>,
    sending: Option<MessageKind>,
    send_utf8: Utf8Validator,
    close_sent: bool,
    /// The engine's own close frame (a reply or a failure), held until the application has
    /// taken the events received before it, so it can still answer them: a message followed
    /// by a bad frame in one read gets its reply before the close.
    deferred_close: Option<([u8; 2], u8)>,
    /// The pong for the latest ping, held while the outgoing queue is over
    /// [`Config::coalesce_pongs_above`] (boxed: rare, and the connection stays small).
    held_pong: Option<Box<Bytes>>,

    // Ending.
    failed: bool,
    eof: bool,
    close_deadline: Option<Duration>,
    timed_out: bool,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role())
            .field("state", &self.state)
            .field("pending_events", &self.events.len())
            .field("pending_transmit", &self.pending_transmit_len())
            .finish_non_exhaustive()
    }
}

/// Getters.
impl Connection {
    /// The side this connection is.
    #[inline]
    pub fn role(&self) -> Role {
        match self.masking {
            Masking::Server => Role::Server,
            Masking::Client(_) => Role::Client,
        }
    }

    /// Where the closing handshake stands.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The deflate window bits of the pre-compressed frames this connection can take, or `None`
    /// if it takes only uncompressed [`EncodedFrame`]s: the negotiated extension's
    /// [`Extension::shared_deflate_window_bits`]. With permessage-deflate it is this side's
    /// compression window bits when this side keeps no context between messages, else `None`.
    /// A server sending one message to many connections compresses it once for each distinct
    /// value (with permessage-deflate's `compress_shared`) and sends the plain frame to the
    /// rest.
    pub fn shared_deflate_window_bits(&self) -> Option<u8> {
        self.extension
            .as_ref()
            .and_then(|e| e.shared_deflate_window_bits())
    }

    /// Whether data may still be sent (no close frame was sent).
    pub fn can_send(&self) -> bool {
        !self.close_sent
    }

    /// Bytes queued for sending and not yet taken.
    pub fn pending_transmit_len(&self) -> usize {
        self.out_chunks_len + self.out_staging.len()
    }

    /// Whether bytes are waiting to be sent.
    pub fn has_pending_transmit(&self) -> bool {
        !self.out_chunks.is_empty() || !self.out_staging.is_empty()
    }

    /// Bytes of heap memory the connection holds (buffers' capacity, the shared chunks it has
    /// queued, and the extension's state), for reporting and budgets.
    pub fn memory_usage(&self) -> usize {
        self.out_chunks_len
            + self.message_buf.capacity()
            + self.out_staging.capacity()
            + self.decode_scratch.capacity()
            + self.encode_scratch.capacity()
            + self.out_chunks.capacity() * core::mem::size_of::<Bytes>()
            + self.events.capacity() * core::mem::size_of::<Event>()
            + self.extension.as_ref().map_or(0, |e| e.memory_usage())
    }

    /// The negotiated extension's name (`permessage-deflate`), if one was given with
    /// [`Self::with_extension`].
    ///
    /// ```
    /// use ws_proto::{Config, Connection};
    ///
    /// assert_eq!(Connection::server(Config::default()).extension_name(), None);
    /// ```
    pub fn extension_name(&self) -> Option<&str> {
        self.extension.as_deref().map(|e| e.name())
    }

    /// Payload bytes that extensions have produced from the input so far: for
    /// permessage-deflate, the inflated size of every compressed message received. Input
    /// costs its own length plus this to take in, and a few kilobytes of compressed input
    /// may inflate to megabytes (RFC 7692 section 8 asks receivers to limit what they
    /// inflate), so a caller that shares its time among connections counts both. The count
    /// wraps around at 2^32 (it keeps the connection small): take differences with
    /// `wrapping_sub`, between calls that add less than 4 GiB.
    ///
    /// ```
    /// use ws_proto::{Config, Connection};
    ///
    /// let mut ws = Connection::server(Config::default());
    /// ws.receive(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']).unwrap();
    /// // An uncompressed message costs its input alone.
    /// assert_eq!(ws.decoded_total(), 0);
    /// ```
    pub fn decoded_total(&self) -> u32 {
        self.decoded_total
    }

    /// The time at which [`Self::handle_time`] must next be called, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.timed_out {
            None
        } else {
            self.close_deadline
        }
    }

    /// Whether the caller should now close the transport (RFC 6455 section 7.1.1): the server
    /// once the closing handshake is done and the close frame is flushed; either side right
    /// after a failure is flushed (section 7.1.7); a client when the server has not closed the
    /// transport within the close timeout; anyone whose close timeout ran out or whose peer
    /// closed the transport.
    pub fn should_close_transport(&self) -> bool {
        if self.timed_out || self.eof {
            return true;
        }
        if self.state != ConnectionState::Closed
            || self.deferred_close.is_some()
            || self.has_pending_transmit()
        {
            return false;
        }
        self.failed || self.role() == Role::Server
    }
}

/// Construction.
impl Connection {
    /// A server-side connection.
    pub fn server(config: Config) -> Connection {
        Connection::new(Masking::Server, config)
    }

    /// A client-side connection whose masking keys come from the operating system's random
    /// source.
    #[cfg(feature = "std")]
    pub fn client(config: Config) -> Connection {
        Connection::client_with_keys(config, Box::new(crate::mask::OsRandomKeys::new()))
    }

    /// A client-side connection that takes masking keys from `keys` (for `no_std` targets,
    /// which bring their own random source).
    pub fn client_with_keys(config: Config, keys: Box<dyn MaskKeySource>) -> Connection {
        Connection::new(Masking::Client(keys), config)
    }

    /// Adds the extension negotiated at the handshake.
    pub fn with_extension(mut self, extension: Box<dyn Extension>) -> Connection {
        self.extension = Some(extension);
        self
    }

    fn new(masking: Masking, config: Config) -> Connection {
        Connection {
            masking,
            config,
            state: ConnectionState::Open,
            extension: None,
            header_stash: [0; MAX_HEADER_LEN],
            header_stash_len: 0,
            frame: None,
            message: None,
            message_buf: BytesMut::new(),
            read_len: 0,
            utf8: Utf8Validator::new(),
            control_buf: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
            decode_scratch: Vec::new(),
            decoded_total: 0,
            read_closed: false,
            events: VecDeque::new(),
            out_chunks: VecDeque::new(),
            out_chunks_len: 0,
            out_staging: BytesMut::new(),
            encode_scratch: Vec::new(),
            sending: None,
            send_utf8: Utf8Validator::new(),
            close_sent: false,
            deferred_close: None,
            held_pong: None,
            failed: false,
            eof: false,
            close_deadline: None,
            timed_out: false,
        }
    }
}

/// Input: bytes and time.
impl Connection {
    /// Processes received bytes, in any amount. Every byte is consumed (a partial frame header
    /// is kept inside, at most 13 bytes), so there is no count to return; bytes after the
    /// peer's close frame or after a failure are discarded, as RFC 6455 section 5.5.1
    /// prescribes.
    ///
    /// On a protocol violation the connection fails (section 7.1.7): the returned error names
    /// the rule, a close frame with its code is queued, and [`Self::should_close_transport`]
    /// turns true once that frame is taken. Events produced before the violation remain
    /// available from [`Self::poll_event`].
    pub fn receive(&mut self, data: &[u8]) -> Result<(), ProtocolViolation> {
        if self.read_closed {
            return Ok(());
        }
        self.read_len = data.len();
        self.receive_checked(data, false)?;
        Ok(())
    }

    /// Starts taking one read's input in pieces (see [`crate::in_place`]).
    pub(crate) fn begin_read(&mut self, len: usize) {
        self.read_len = len;
    }

    /// [`Self::poll_event`] has something to do: an event to hand out or a close frame to
    /// queue once the events are taken.
    #[inline]
    pub(crate) fn has_pending_events(&self) -> bool {
        !self.events.is_empty() || self.deferred_close.is_some()
    }

    /// Input is still taken: no close frame came, no failure, no end of stream.
    #[inline]
    pub(crate) fn is_reading(&self) -> bool {
        !self.read_closed
    }

    /// Fails the connection for a violation found outside [`Self::receive_frames`].
    pub(crate) fn fail_for(&mut self, violation: ProtocolViolation) -> ProtocolViolation {
        self.fail(violation.close_code());
        violation
    }

    /// [`Self::receive_frames`], failing the connection on a violation.
    pub(crate) fn receive_checked(
        &mut self,
        data: &[u8],
        stop_after_frame: bool,
    ) -> Result<usize, ProtocolViolation> {
        self.receive_frames(data, stop_after_frame)
            .map_err(|violation| self.fail_for(violation))
    }

    /// The peer closed the transport. A message in progress is dropped; if the closing
    /// handshake had not completed, the connection is closed abnormally (code 1006 in
    /// section 7.1.5's terms).
    pub fn receive_eof(&mut self) {
        self.eof = true;
        self.read_closed = true;
        self.state = ConnectionState::Closed;
    }

    /// Hands in the current time: fires the close timer once it is due. A close frame the
    /// engine sent on its own (the reply to the peer's close, or a failure's) has its timer
    /// armed here, at the first call after it was sent; [`Self::close`] arms its own at once.
    pub fn handle_time(&mut self, now: Duration) {
        self.arm_close_timer(now);
        if let Some(deadline) = self.close_deadline {
            if now >= deadline {
                self.timed_out = true;
            }
        }
    }

    /// Arms the close timer for [`Config::close_timeout`] from `now`, if a close frame was sent
    /// and the timer is not armed yet.
    fn arm_close_timer(&mut self, now: Duration) {
        if self.close_sent && self.close_deadline.is_none() {
            self.close_deadline = Some(now.saturating_add(self.config.close_timeout));
        }
    }

    /// Takes frames from `input`, all of it or, with `stop_after_frame`, up to the end of the
    /// first frame that ends in it; returns how much it took.
    fn receive_frames(
        &mut self,
        mut input: &[u8],
        stop_after_frame: bool,
    ) -> Result<usize, ProtocolViolation> {
        let len = input.len();
        while !input.is_empty() && !self.read_closed {
            match self.frame {
                None => {
                    let Some(header) = self.take_header(&mut input)? else {
                        break;
                    };
                    if header.payload_len <= input.len() as u64
                        && self.is_plain_whole_message(&header)
                    {
                        let (payload, rest) = input.split_at(header.payload_len as usize);
                        input = rest;
                        self.whole_message(header, payload)?;
                    } else {
                        self.begin_frame(header)?;
                    }
                }
                Some(frame) => {
                    let n = frame.remaining.min(input.len() as u64) as usize;
                    let (piece, rest) = input.split_at(n);
                    input = rest;
                    self.frame_payload(frame, piece)?;
                }
            }
            if stop_after_frame && self.at_frame_boundary() {
                break;
            }
        }
        if self.config.streaming {
            self.flush_chunk(false);
        }
        // After the peer's close frame the rest is discarded, so it counts as taken.
        Ok(if self.read_closed {
            len
        } else {
            len - input.len()
        })
    }

    /// No frame or frame header is partly received.
    #[inline]
    pub(crate) fn at_frame_boundary(&self) -> bool {
        self.frame.is_none() && self.header_stash_len == 0
    }

    /// Takes a frame header from `input`, keeping a partial one in the stash.
    fn take_header(&mut self, input: &mut &[u8]) -> Result<Option<FrameHeader>, ProtocolViolation> {
        let stashed = self.header_stash_len as usize;
        if stashed == 0 {
            if let Some((header, len)) = FrameHeader::decode(input)? {
                *input = &input[len..];
                return Ok(Some(header));
            }
            // Fewer bytes than a header: MAX_HEADER_LEN bytes always decode.
            let n = input.len().min(MAX_HEADER_LEN);
            self.header_stash[..n].copy_from_slice(&input[..n]);
            self.header_stash_len = n as u8;
            *input = &input[n..];
            return Ok(None);
        }
        let take = (MAX_HEADER_LEN - stashed).min(input.len());
        self.header_stash[stashed..stashed + take].copy_from_slice(&input[..take]);
        match FrameHeader::decode(&self.header_stash[..stashed + take])? {
            Some((header, len)) => {
                self.header_stash_len = 0;
                *input = &input[len - stashed..];
                Ok(Some(header))
            }
            None => {
                self.header_stash_len = (stashed + take) as u8;
                *input = &input[take..];
                Ok(None)
            }
        }
    }

    /// Whether a frame is a whole message that breaks no rule and needs no state kept across
    /// calls: a final text or binary frame outside a message, masked as the role requires, no
    /// RSV bit, within both size limits, with no extension and not streaming. Most small
    /// messages are; [`Self::whole_message`] takes them in one step.
    #[inline]
    pub(crate) fn is_plain_whole_message(&self, header: &FrameHeader) -> bool {
        header.fin
            && matches!(header.opcode, OpCode::Text | OpCode::Binary)
            && header.rsv == 0
            && header.mask.is_some() == (self.role() == Role::Server)
            && header.payload_len <= self.config.max_frame_size
            && header.payload_len <= self.config.max_message_size
            && self.message.is_none()
            && self.extension.is_none()
            && !self.config.streaming
    }

    /// Delivers a frame that [`Self::is_plain_whole_message`] accepted, whose whole payload is
    /// at hand: the same checks and result as the frame-by-frame path, without its
    /// bookkeeping.
    fn whole_message(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ProtocolViolation> {
        // No message is in progress, so the buffer holds nothing: the payload is all of it.
        debug_assert!(self.message_buf.is_empty());
        append_payload(&mut self.message_buf, payload, self.read_len, 0);
        if let Some(key) = header.mask {
            apply_mask(&mut self.message_buf, key, 0);
        }
        let kind = if header.opcode == OpCode::Text {
            text_of(&self.message_buf).map_err(|_| ProtocolViolation::InvalidUtf8)?;
            MessageKind::Text
        } else {
            MessageKind::Binary
        };
        self.deliver(kind);
        Ok(())
    }

    fn begin_frame(&mut self, header: FrameHeader) -> Result<(), ProtocolViolation> {
        let starts_message = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        let allowed_rsv = match (&self.extension, starts_message) {
            (Some(ext), true) => ext.rsv_bits(),
            _ => 0,
        };
        header.check(self.role(), allowed_rsv)?;
        if header.payload_len > self.config.max_frame_size {
            return Err(ProtocolViolation::FrameTooLarge(header.payload_len));
        }
        match header.opcode {
            OpCode::Continuation if self.message.is_none() => {
                return Err(ProtocolViolation::UnexpectedContinuation)
            }
            OpCode::Text | OpCode::Binary if self.message.is_some() => {
                return Err(ProtocolViolation::ExpectedContinuation)
            }
            OpCode::Text | OpCode::Binary => {
                let decoded = match &mut self.extension {
                    Some(ext) => ext.begin_message(header.rsv)?,
                    None => false,
                };
                self.message = Some(IncomingMessage {
                    kind: if header.opcode == OpCode::Text {
                        MessageKind::Text
                    } else {
                        MessageKind::Binary
                    },
                    decoded,
                    size: 0,
                    first_chunk_pending: true,
                });
                self.utf8.reset();
            }
            _ => {}
        }
        if let Some(message) = &self.message {
            // An extension's output is checked as it is decoded; undecoded payload can be
            // refused from the declared length alone.
            if !header.opcode.is_control()
                && !message.decoded
                && message.size + header.payload_len > self.config.max_message_size
            {
                return Err(ProtocolViolation::MessageTooLarge);
            }
        }
        self.control_len = 0;
        let frame = IncomingFrame {
            opcode: header.opcode,
            fin: header.fin,
            mask: header.mask,
            len: header.payload_len,
            remaining: header.payload_len,
        };
        self.frame = Some(frame);
        if frame.remaining == 0 {
            self.end_frame(frame)?;
        }
        Ok(())
    }

    fn frame_payload(
        &mut self,
        mut frame: IncomingFrame,
        piece: &[u8],
    ) -> Result<(), ProtocolViolation> {
        let phase = (frame.len - frame.remaining) as usize;
        frame.remaining -= piece.len() as u64;
        self.frame = Some(frame);
        if frame.opcode.is_control() {
            let start = self.control_len as usize;
            let dst = &mut self.control_buf[start..start + piece.len()];
            dst.copy_from_slice(piece);
            if let Some(key) = frame.mask {
                apply_mask(dst, key, phase);
            }
            self.control_len += piece.len() as u8;
        } else {
            self.data_payload(frame, phase, piece)?;
        }
        if frame.remaining == 0 {
            self.end_frame(frame)?;
        }
        Ok(())
    }

    /// Takes a piece of a data frame's payload; `frame.remaining` already excludes it.
    fn data_payload(
        &mut self,
        frame: IncomingFrame,
        phase: usize,
        piece: &[u8],
    ) -> Result<(), ProtocolViolation> {
        let mask = frame.mask;
        let Some(message) = &mut self.message else {
            return Ok(());
        };
        if message.decoded {
            self.decode_scratch.clear();
            self.decode_scratch.extend_from_slice(piece);
            if let Some(key) = mask {
                apply_mask(&mut self.decode_scratch, key, phase);
            }
            let mut sink = MessageSink {
                buf: &mut self.message_buf,
                utf8: &mut self.utf8,
                message,
                limit: self.config.max_message_size,
                decoded_total: &mut self.decoded_total,
            };
            if let Some(ext) = &mut self.extension {
                ext.decode(&self.decode_scratch, false, &mut sink)?;
            }
            // Scratch memory follows the largest piece; give back what a burst grew.
            if self.decode_scratch.capacity() > 64 << 10 {
                self.decode_scratch = Vec::new();
            }
            return Ok(());
        }
        let start = self.message_buf.len();
        append_payload(&mut self.message_buf, piece, self.read_len, frame.remaining);
        let appended = &mut self.message_buf[start..];
        if let Some(key) = mask {
            apply_mask(appended, key, phase);
        }
        if message.kind == MessageKind::Text {
            self.utf8
                .feed(appended)
                .map_err(|_| ProtocolViolation::InvalidUtf8)?;
        }
        message.size += piece.len() as u64;
        Ok(())
    }

    fn end_frame(&mut self, frame: IncomingFrame) -> Result<(), ProtocolViolation> {
        self.frame = None;
        match frame.opcode {
            OpCode::Ping => {
                let payload =
                    Bytes::copy_from_slice(&self.control_buf[..self.control_len as usize]);
                if self.config.auto_pong && !self.close_sent {
                    if self.pending_transmit_len() > self.config.coalesce_pongs_above {
                        self.held_pong = Some(Box::new(payload.clone()));
                    } else {
                        self.write_frame(true, 0, OpCode::Pong, &payload);
                    }
                }
                self.events.push_back(Event::Ping(payload));
            }
            OpCode::Pong => {
                let payload =
                    Bytes::copy_from_slice(&self.control_buf[..self.control_len as usize]);
                self.events.push_back(Event::Pong(payload));
            }
            OpCode::Close => {
                let frame = CloseFrame::parse(&self.control_buf[..self.control_len as usize])?;
                self.close_received(frame);
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                if frame.fin {
                    self.end_message()?;
                }
            }
        }
        Ok(())
    }

    fn end_message(&mut self) -> Result<(), ProtocolViolation> {
        let Some(mut message) = self.message else {
            return Ok(());
        };
        if message.decoded {
            let mut sink = MessageSink {
                buf: &mut self.message_buf,
                utf8: &mut self.utf8,
                message: &mut message,
                limit: self.config.max_message_size,
                decoded_total: &mut self.decoded_total,
            };
            if let Some(ext) = &mut self.extension {
                ext.decode(&[], true, &mut sink)?;
            }
            self.message = Some(message);
        }
        if message.kind == MessageKind::Text {
            self.utf8
                .finish()
                .map_err(|_| ProtocolViolation::InvalidUtf8)?;
        }
        if self.config.streaming {
            self.flush_chunk(true);
        } else {
            self.deliver(message.kind);
        }
        self.message = None;
        Ok(())
    }

    /// Hands the whole message in the buffer (checked UTF-8 for text) to the caller.
    fn deliver(&mut self, kind: MessageKind) {
        let payload = self.message_buf.split().freeze();
        self.events.push_back(Event::Message(match kind {
            MessageKind::Text => Message::Text(Utf8Bytes::from_validated(payload)),
            MessageKind::Binary => Message::Binary(payload),
        }));
    }

    /// Streaming mode: hands what arrived of the current message to the caller, holding back an
    /// unfinished code point.
    fn flush_chunk(&mut self, last: bool) {
        let Some(message) = &mut self.message else {
            return;
        };
        let held_back = if last { 0 } else { self.utf8.pending_len() };
        let ready = self.message_buf.len() - held_back;
        if ready == 0 && !last {
            return;
        }
        let data = self.message_buf.split_to(ready).freeze();
        self.events.push_back(Event::Chunk(MessageChunk {
            kind: message.kind,
            data,
            first: core::mem::replace(&mut message.first_chunk_pending, false),
            last,
        }));
    }

    fn close_received(&mut self, frame: Option<CloseFrame>) {
        self.read_closed = true;
        self.message = None;
        self.state = ConnectionState::Closed;
        // Section 5.5.1: reply with a close frame, echoing the status code. The reply goes out
        // when the application has taken this event and those before it.
        let reply = match &frame {
            Some(f) => (f.code.0.to_be_bytes(), 2),
            None => ([0; 2], 0),
        };
        self.events.push_back(Event::Close(frame));
        self.close_when_drained(reply);
    }

    /// Fails the connection (section 7.1.7): a close frame with `code` if none was sent, and no
    /// more reading.
    fn fail(&mut self, code: CloseCode) {
        self.read_closed = true;
        self.failed = true;
        self.message = None;
        self.state = ConnectionState::Closed;
        self.close_when_drained((code.0.to_be_bytes(), 2));
    }

    /// Queues the engine's close frame now if no event is waiting; else it is queued when the
    /// peer's close event is taken, when [`Self::poll_event`] finds no more events, or at the
    /// next [`Self::poll_transmit`], whichever comes first.
    fn close_when_drained(&mut self, payload: ([u8; 2], u8)) {
        if self.close_sent || self.deferred_close.is_some() {
            return;
        }
        if self.events.is_empty() {
            self.send_close_payload(payload);
        } else {
            self.deferred_close = Some(payload);
        }
    }

    fn send_close_payload(&mut self, (payload, len): ([u8; 2], u8)) {
        self.write_close_frame(&payload[..len as usize]);
    }

    /// Queues our close frame, after a held pong (it answers a ping that came before).
    fn write_close_frame(&mut self, payload: &[u8]) {
        if let Some(pong) = self.held_pong.take() {
            self.write_frame(true, 0, OpCode::Pong, &pong);
        }
        self.write_frame(true, 0, OpCode::Close, payload);
        self.close_sent = true;
    }

    /// Queues the held pong once the outgoing queue is back within the limit.
    fn release_held_pong(&mut self) {
        if self.held_pong.is_some()
            && self.pending_transmit_len() <= self.config.coalesce_pongs_above
        {
            let pong = self.held_pong.take().expect("checked");
            if !self.close_sent {
                self.write_frame(true, 0, OpCode::Pong, &pong);
            }
        }
    }
}

/// Writes an extension's decoded output into the message, enforcing the limit and UTF-8.
struct MessageSink<'a> {
    buf: &'a mut BytesMut,
    utf8: &'a mut Utf8Validator,
    message: &'a mut IncomingMessage,
    limit: u64,
    decoded_total: &'a mut u32,
}

/// How much the message buffer grows by at once, at most, beyond the payload at hand: the
/// small messages of one read are then carved one after another out of one allocation (each
/// delivered `Bytes` shares it) instead of costing an allocation each.
const MESSAGE_BUF_GROWTH: usize = 8 << 10;

/// How far the rest of a frame may exceed the bytes that vouch for it and still be reserved
/// whole. Frames of a power-of-two size read in power-of-two pieces need it: the header's
/// bytes in the first read leave the buffer a few bytes short of the frame when it reaches
/// half of it, and growing for those few bytes doubled the buffer and copied the whole message
/// (a 1 MiB frame read 64 KiB at a time ended in a 2 MiB buffer; without that copy it is
/// received 22% faster, text 11%).
const REST_ALLOWANCE: u64 = 8 << 10;

/// From this payload size up, [`Connection::send`] on a server queues the message's shared
/// bytes instead of copying them. Sharing costs a reference count and one more slice in every
/// vectored write, which a small copy undercuts; 8 KiB is a judgment between the sizes the
/// codec benchmarks measure (1 KiB, copied, unchanged; 64 KiB, shared, twice as fast), not a
/// measured crossover.
pub const SHARE_PAYLOAD_FROM: usize = 8 << 10;

/// Appends payload to the message buffer. When it must grow, it grows by the payload or by as
/// much of the read it came in (`read_len`) as [`MESSAGE_BUF_GROWTH`] allows, whichever is
/// more, plus room for the rest of the frame (`frame_rest`, after `data`) as far as the bytes
/// the buffer then holds vouch for it, or for all of the rest when it exceeds them by no more
/// than [`REST_ALLOWANCE`]. So growth follows bytes really received, never a declared
/// length alone (the buffer holds at most about twice what arrived, plus 8 KiB), and a frame
/// whose payload ends just past a read, as a 64 KiB frame read 64 KiB at a time does, is
/// completed in place instead of being copied into a larger buffer for its last bytes.
fn append_payload(buf: &mut BytesMut, data: &[u8], read_len: usize, frame_rest: u64) {
    if buf.capacity() - buf.len() < data.len() {
        let vouched = (buf.len() + data.len()) as u64;
        let rest_room = if frame_rest <= vouched + REST_ALLOWANCE {
            frame_rest
        } else {
            vouched
        } as usize;
        buf.reserve(data.len().max(read_len.min(MESSAGE_BUF_GROWTH)) + rest_room);
    }
    buf.extend_from_slice(data);
}

impl PayloadSink for MessageSink<'_> {
    fn write(&mut self, decoded: &[u8]) -> Result<(), ProtocolViolation> {
        if self.message.size + decoded.len() as u64 > self.limit {
            return Err(ProtocolViolation::MessageTooLarge);
        }
        if self.message.kind == MessageKind::Text {
            self.utf8
                .feed(decoded)
                .map_err(|_| ProtocolViolation::InvalidUtf8)?;
        }
        append_payload(self.buf, decoded, 0, 0);
        self.message.size += decoded.len() as u64;
        *self.decoded_total = self.decoded_total.wrapping_add(decoded.len() as u32);
        Ok(())
    }
}

/// Output: events and bytes.
impl Connection {
    /// The next event, in the order the frames arrived.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if matches!(event, None | Some(Event::Close(_))) {
            self.flush_deferred_close();
        }
        event
    }

    fn flush_deferred_close(&mut self) {
        if let Some(close) = self.deferred_close.take() {
            self.send_close_payload(close);
        }
    }

    /// Takes the next chunk of bytes to send. A chunk that the transport takes only in part is
    /// the caller's to keep.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.flush_deferred_close();
        let chunk = if let Some(chunk) = self.out_chunks.pop_front() {
            self.out_chunks_len -= chunk.len();
            chunk
        } else if self.out_staging.is_empty() {
            return None;
        } else {
            self.out_staging.split().freeze()
        };
        // Taken chunks count as sent: a held pong may follow them.
        self.release_held_pong();
        Some(chunk)
    }

    /// The pending outgoing bytes, in order, as slices (without taking them).
    fn pending_chunks(&self) -> impl Iterator<Item = &[u8]> {
        let staging = (!self.out_staging.is_empty()).then_some(&self.out_staging[..]);
        self.out_chunks.iter().map(|c| &c[..]).chain(staging)
    }

    /// Fills `dst` with the pending outgoing bytes, in order, without taking them; returns how
    /// many slices it filled. Write them (vectored) and report what was written with
    /// [`Self::advance_transmit`]. Drain [`Self::poll_event`] first: a close frame the engine
    /// holds back for the application's replies is queued then.
    pub fn transmit_slices<'a>(&'a self, dst: &mut [&'a [u8]]) -> usize {
        dst.iter_mut()
            .zip(self.pending_chunks())
            .map(|(slot, chunk)| *slot = chunk)
            .count()
    }

    /// Like [`Self::transmit_slices`], as `IoSlice`s for `write_vectored`.
    #[cfg(feature = "std")]
    pub fn transmit_io_slices<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        dst.iter_mut()
            .zip(self.pending_chunks())
            .map(|(slot, chunk)| *slot = std::io::IoSlice::new(chunk))
            .count()
    }

    /// Drops the first `n` pending outgoing bytes, which the transport has taken.
    pub fn advance_transmit(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.out_chunks.front_mut() else {
                let take = n.min(self.out_staging.len());
                self.out_staging.advance(take);
                break;
            };
            if n < front.len() {
                front.advance(n);
                self.out_chunks_len -= n;
                break;
            }
            n -= front.len();
            self.out_chunks_len -= front.len();
            self.out_chunks.pop_front();
        }
        self.release_held_pong();
    }

    /// Gives back buffer memory that is not in use. A server calls it for connections that went
    /// idle, so an idle connection holds (almost) nothing.
    pub fn shrink_buffers(&mut self) {
        if self.message_buf.is_empty() {
            self.message_buf = BytesMut::new();
        }
        if self.out_staging.is_empty() {
            self.out_staging = BytesMut::new();
        }
        if self.out_chunks.is_empty() {
            self.out_chunks = VecDeque::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        self.decode_scratch = Vec::new();
        self.encode_scratch = Vec::new();
    }
}

/// Sending.
impl Connection {
    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), UsageError> {
        self.send_message(MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), UsageError> {
        self.send_message(MessageKind::Binary, data)
    }

    /// Queues a message. A server sending a payload of [`SHARE_PAYLOAD_FROM`] bytes or more
    /// with no extension in the way queues the message's own bytes behind the frame header
    /// rather than copying them (echoing a received message costs no copy).
    pub fn send(&mut self, message: &Message) -> Result<(), UsageError> {
        let payload = message.as_bytes();
        if payload.len() < SHARE_PAYLOAD_FROM
            || self.extension.is_some()
            || self.role() != Role::Server
        {
            return self.send_message(message.kind(), payload);
        }
        self.check_can_start_message()?;
        self.write_frame_header(true, 0, message.kind().opcode(), payload.len(), None);
        self.push_chunk(message.clone().into_bytes());
        Ok(())
    }

    fn send_message(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), UsageError> {
        self.check_can_start_message()?;
        if let Some(ext) = &mut self.extension {
            let mut encoded = core::mem::take(&mut self.encode_scratch);
            encoded.clear();
            let result = ext.encode(payload, &mut encoded);
            match result {
                Ok(Some(rsv)) => self.write_frame(true, rsv, kind.opcode(), &encoded),
                Ok(None) => self.write_frame(true, 0, kind.opcode(), payload),
                Err(e) => {
                    self.encode_scratch = encoded;
                    return Err(UsageError::Extension(e));
                }
            }
            self.encode_scratch = encoded;
            return Ok(());
        }
        self.write_frame(true, 0, kind.opcode(), payload);
        Ok(())
    }

    /// Queues one fragment of a message sent in pieces (RFC 6455 section 5.4): the first call
    /// starts a message of `kind`, later calls continue it (with the same `kind`), and the call
    /// with `fin` ends it. Text fragments are checked as UTF-8 across fragment boundaries.
    /// Control frames and pre-encoded frames may be sent between fragments. Fragments are not
    /// passed through extensions.
    ///
    /// ```
    /// use ws_proto::{Config, Connection, MessageKind};
    /// let mut server = Connection::server(Config::default());
    /// server.send_fragment(MessageKind::Text, b"Hel", false).unwrap();
    /// server.send_fragment(MessageKind::Text, b"lo", true).unwrap();
    /// // RFC 6455 section 5.7: the fragmented unmasked text message.
    /// assert_eq!(&server.poll_transmit().unwrap()[..], b"\x01\x03Hel\x80\x02lo");
    /// ```
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), UsageError> {
        self.check_can_send_data()?;
        let opcode = match self.sending {
            None => kind.opcode(),
            Some(current) if current == kind => OpCode::Continuation,
            Some(_) => return Err(UsageError::FragmentKindMismatch),
        };
        if kind == MessageKind::Text {
            let mut check = self.send_utf8.clone();
            check.feed(data).map_err(|_| UsageError::InvalidUtf8)?;
            if fin {
                check.finish().map_err(|_| UsageError::InvalidUtf8)?;
            }
            self.send_utf8 = check;
        }
        self.write_frame(fin, 0, opcode, data);
        self.sending = if fin { None } else { Some(kind) };
        Ok(())
    }

    /// Queues a ping (section 5.5.2); the peer's pong will come as [`Event::Pong`].
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Queues an unsolicited pong (section 5.5.3), for example as a unidirectional heartbeat.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), UsageError> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), UsageError> {
        if self.close_sent {
            return Err(UsageError::Closing);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooLong(payload.len()));
        }
        self.write_frame(true, 0, opcode, payload);
        Ok(())
    }

    /// Starts the closing handshake (section 7.1.2) with a status code and a reason of at most
    /// 123 bytes, at time `now` (the same clock as [`Self::handle_time`]). After it, no data
    /// may be sent; incoming data is still delivered until the peer's close frame arrives.
    ///
    /// The close timer is armed at once: [`Self::poll_timeout`] returns `now +`
    /// [`Config::close_timeout`], the time by which the peer must have answered (and, for a
    /// client, the server must have closed the transport); a [`Self::handle_time`] at or after
    /// it makes [`Self::should_close_transport`] true. Calling `close` again once a close frame
    /// was sent sends nothing and leaves an armed timer as it is.
    ///
    /// ```
    /// use core::time::Duration;
    /// use ws_proto::{CloseCode, Config, Connection};
    /// let mut server = Connection::server(Config::default()); // close_timeout: 5 s
    /// server.close(Duration::from_secs(60), CloseCode::GOING_AWAY, "restarting").unwrap();
    /// assert_eq!(server.poll_timeout(), Some(Duration::from_secs(65)));
    /// ```
    pub fn close(
        &mut self,
        now: Duration,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), UsageError> {
        let frame = CloseFrame::new(code, reason)?;
        if self.close_sent {
            self.arm_close_timer(now);
            return Ok(());
        }
        // The application's own close replaces a reply the engine was holding back.
        self.deferred_close = None;
        let mut payload = [0u8; 125];
        let len = frame.write_payload(&mut payload);
        self.write_close_frame(&payload[..len]);
        self.arm_close_timer(now);
        if self.state == ConnectionState::Open {
            self.state = ConnectionState::Closing;
        }
        Ok(())
    }

    /// Queues a frame encoded once for many connections (a room's fanout): the same shared
    /// bytes go to every member without copying, except a frame of at most
    /// [`COPY_FRAMES_UP_TO`] bytes, which is cheaper copied than kept as a shared chunk (a
    /// handle and a queue slot of its own each). Only a server sends unmasked frames; a
    /// pre-compressed frame goes only to connections whose [`Self::shared_deflate_window_bits`]
    /// are its [`EncodedFrame::deflate_window_bits`] (else [`UsageError::ExtensionMismatch`]).
    pub fn send_encoded(&mut self, frame: &EncodedFrame) -> Result<(), UsageError> {
        if self.role() != Role::Server {
            return Err(UsageError::NotServer);
        }
        if frame.deflate_window_bits.is_some()
            && frame.deflate_window_bits != self.shared_deflate_window_bits()
        {
            return Err(UsageError::ExtensionMismatch);
        }
        self.check_can_start_message()?;
        if frame.bytes.len() <= COPY_FRAMES_UP_TO {
            self.out_staging.extend_from_slice(&frame.bytes);
        } else {
            self.push_chunk(frame.bytes.clone());
        }
        Ok(())
    }

    /// Queues shared bytes for the transport after everything staged so far.
    fn push_chunk(&mut self, chunk: Bytes) {
        if !self.out_staging.is_empty() {
            let staged = self.out_staging.split().freeze();
            self.out_chunks_len += staged.len();
            self.out_chunks.push_back(staged);
        }
        self.out_chunks_len += chunk.len();
        self.out_chunks.push_back(chunk);
    }

    /// A whole message may be sent: no close sent, no fragmented message in progress.
    fn check_can_start_message(&self) -> Result<(), UsageError> {
        self.check_can_send_data()?;
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress);
        }
        Ok(())
    }

    fn check_can_send_data(&self) -> Result<(), UsageError> {
        if self.close_sent {
            Err(UsageError::Closing)
        } else {
            Ok(())
        }
    }

    fn write_frame(&mut self, fin: bool, rsv: RsvBits, opcode: OpCode, payload: &[u8]) {
        let mask = match &mut self.masking {
            Masking::Server => None,
            Masking::Client(keys) => Some(keys.next_key()),
        };
        self.out_staging.reserve(MAX_HEADER_LEN + payload.len());
        self.write_frame_header(fin, rsv, opcode, payload.len(), mask);
        let start = self.out_staging.len();
        self.out_staging.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.out_staging[start..], key, 0);
        }
    }

    /// Stages a frame header; the payload follows, staged or as a chunk of its own.
    fn write_frame_header(
        &mut self,
        fin: bool,
        rsv: RsvBits,
        opcode: OpCode,
        payload_len: usize,
        mask: Option<[u8; 4]>,
    ) {
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: payload_len as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        self.out_staging.extend_from_slice(&head[..head_len]);
    }
}

/// A complete unmasked data frame, encoded once and shareable between server connections:
/// uncompressed ([`Self::new`]), which every server connection takes, or compressed without
/// context by permessage-deflate's `compress_shared` and tagged with its deflate window bits
/// ([`Self::deflate_window_bits`]), which only the connections whose
/// [`Connection::shared_deflate_window_bits`] match take.
///
/// ```
/// use ws_proto::{Config, Connection, EncodedFrame, MessageKind};
/// let frame = EncodedFrame::new(MessageKind::Text, b"to everyone");
/// let mut a = Connection::server(Config::default());
/// let mut b = Connection::server(Config::default());
/// a.send_encoded(&frame).unwrap();
/// b.send_encoded(&frame).unwrap();
/// assert_eq!(a.poll_transmit(), b.poll_transmit());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    bytes: Bytes,
    /// For a pre-compressed frame, the deflate window bits it was compressed with: the
    /// connections whose `shared_deflate_window_bits` are these take it.
    deflate_window_bits: Option<u8>,
}

impl EncodedFrame {
    /// Encodes a message as one unmasked frame.
    pub fn new(kind: MessageKind, payload: &[u8]) -> EncodedFrame {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: kind.opcode(),
            mask: None,
            payload_len: payload.len() as u64,
        };
        let mut buf = BytesMut::with_capacity(header.encoded_len() + payload.len());
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        buf.extend_from_slice(&head[..n]);
        buf.extend_from_slice(payload);
        EncodedFrame::from_parts(buf.freeze(), None)
    }

    /// A whole encoded frame: `deflate_window_bits` is `None` for an uncompressed frame, which
    /// every server connection takes, or the window bits a compressed frame was made with
    /// (without context, like permessage-deflate's `compress_shared`), for the connections whose
    /// [`Connection::shared_deflate_window_bits`] are the same.
    pub fn from_parts(bytes: Bytes, deflate_window_bits: Option<u8>) -> EncodedFrame {
        EncodedFrame {
            bytes,
            deflate_window_bits,
        }
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The deflate window bits the frame was compressed with, `None` for an uncompressed frame.
    pub fn deflate_window_bits(&self) -> Option<u8> {
        self.deflate_window_bits
    }
}
