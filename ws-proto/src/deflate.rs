//! permessage-deflate (RFC 7692): negotiation for both roles and the per-message codec.
//!
//! A compressed message has RSV1 set on its first frame; its payload is raw DEFLATE ending in
//! an empty stored block whose tail `00 00 ff ff` is removed by the sender and put back by the
//! receiver (section 7.2). Inflated bytes go to the connection's [`PayloadSink`] as they are
//! produced, so the message size limit applies to the inflated size while inflating: a small
//! message that would inflate past the limit fails with 1009 without inflating the rest.
//!
//! Memory: a compressor with a 2^w-byte window holds about 2^(w+2) + 128 KiB, an inflater
//! about 2^w + 7 KiB. A side that keeps its context between messages keeps its own, made on
//! first use. A side with no context takeover borrows one from its thread's pool for each
//! message (the compressor for one call, the inflater while the message arrives), so a
//! connection between messages holds none and a message costs no
//! allocation. A server that does not take over its own context can also share one
//! compressed frame among many connections ([`compress_shared`]).
//!
//! ```
//! use ws_proto::deflate::DeflateConfig;
//! use ws_proto::handshake::ExtensionOffer;
//! // What Chromium offers, answered by a server with the default configuration.
//! let offers = ExtensionOffer::parse_list("permessage-deflate; client_max_window_bits").unwrap();
//! let (params, response) = DeflateConfig::default().negotiate(&offers).unwrap();
//! assert_eq!(response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
//! assert!(params.server_no_context_takeover);
//! ```

use crate::error::{ExtensionError, ProtocolViolation};
use crate::extension::{Extension, PayloadSink};
use crate::frame::{FrameHeader, OpCode, RsvBits, MAX_HEADER_LEN, RSV1};
use crate::handshake::ExtensionOffer;
use crate::message::MessageKind;
use crate::role::Role;
use crate::{CloseCode, EncodedFrame};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

mod pool;

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";

/// The tail every sync-flushed message ends with, removed on the wire (RFC 7692 section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The window sizes this implementation can compress with. zlib refuses a raw window of
/// 2^8, so an agreement that limits our compressor to 8 bits is declined.
const MIN_COMPRESS_BITS: u8 = 9;

/// The parameters both ends agreed on (RFC 7692 section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server starts each message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client starts each message with an empty window.
    pub client_no_context_takeover: bool,
    /// The server's compression window, as a power of two (8 to 15).
    pub server_max_window_bits: u8,
    /// The client's compression window, as a power of two (8 to 15).
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// What one side accepts and prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// As a server, do not keep our compression context between messages: no compressor
    /// memory between messages, and room messages can be compressed once for all members. As
    /// a client, ask the server for the same. Default true.
    pub server_no_context_takeover: bool,
    /// Ask the client not to keep its context (a server then frees its inflater between
    /// messages); as a client, offer it. Default true.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with (9 to 15). Default 15.
    pub server_max_window_bits: u8,
    /// The largest window asked of the client (9 to 15), when the client allows it. Default 15.
    pub client_max_window_bits: u8,
    /// The zlib compression level, 0 (none) to 9 (smallest); lower is faster. Default 6.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (RFC 7692 lets each message choose).
    /// Default 64 bytes.
    pub min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            min_size: 64,
        }
    }
}

/// The parameters of one offer or response, each at most once with a valid value.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (only allowed in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

/// Reads the parameters, refusing unknown or repeated names and invalid values (section 7.1).
fn parse(offer: &ExtensionOffer) -> Option<Parsed> {
    let mut p = Parsed::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &offer.params {
        if seen.contains(&name.as_str()) {
            return None;
        }
        seen.push(name);
        let bits = |v: &Option<String>| -> Option<u8> {
            let v = v.as_deref()?;
            // A decimal 8 to 15 without leading zeros (section 7.1.2.1).
            if v.len() > 2 || v.starts_with('0') {
                return None;
            }
            v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
        };
        match name.as_str() {
            "server_no_context_takeover" if value.is_none() => p.server_no_context_takeover = true,
            "client_no_context_takeover" if value.is_none() => p.client_no_context_takeover = true,
            "server_max_window_bits" => p.server_max_window_bits = Some(bits(value)?),
            "client_max_window_bits" => {
                p.client_max_window_bits = Some(match value {
                    None => None,
                    Some(_) => Some(bits(value)?),
                })
            }
            _ => return None,
        }
    }
    Some(p)
}

impl DeflateConfig {
    /// Server side: picks the first acceptable permessage-deflate offer (section 7.1) and
    /// returns the agreed parameters with the `Sec-WebSocket-Extensions` response value. An
    /// offer with an unknown, repeated or invalid parameter, or asking for a compression
    /// window below 9 bits, is declined; `None` if no offer is acceptable.
    pub fn negotiate(&self, offers: &[ExtensionOffer]) -> Option<(DeflateParams, String)> {
        offers
            .iter()
            .filter(|o| o.name == NAME)
            .find_map(|offer| self.accept(&parse(offer)?))
    }

    fn accept(&self, offer: &Parsed) -> Option<(DeflateParams, String)> {
        let ours = self.server_max_window_bits.clamp(MIN_COMPRESS_BITS, 15);
        let server_bits = match offer.server_max_window_bits {
            Some(asked) if asked < MIN_COMPRESS_BITS => return None,
            Some(asked) => asked.min(ours),
            None => ours,
        };
        let client_bits = match offer.client_max_window_bits {
            // The client did not say it can limit its window: it uses up to 15.
            None => 15,
            Some(limit) => limit
                .unwrap_or(15)
                .min(self.client_max_window_bits.clamp(8, 15)),
        };
        let params = DeflateParams {
            server_no_context_takeover: offer.server_no_context_takeover
                || self.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        let mut response = String::from(NAME);
        if params.server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if offer.server_max_window_bits.is_some() || server_bits < 15 {
            response.push_str(&alloc::format!("; server_max_window_bits={server_bits}"));
        }
        if offer.client_max_window_bits.is_some()
            && (client_bits < 15 || offer.client_max_window_bits != Some(None))
        {
            response.push_str(&alloc::format!("; client_max_window_bits={client_bits}"));
        }
        Some((params, response))
    }

    /// Client side: the `Sec-WebSocket-Extensions` offer for this configuration.
    pub fn offer(&self) -> String {
        let mut offer = String::from(NAME);
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            offer.push_str(&alloc::format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits.clamp(8, 15)
            ));
        }
        // We can compress with any window from 9 bits up.
        offer.push_str("; client_max_window_bits");
        offer
    }

    /// Client side: checks the server's response against what [`Self::offer`] offered
    /// (section 7.1) and returns the agreed parameters; `None` if the response is not
    /// acceptable (the client must then fail the connection).
    pub fn accept_response(&self, response: &ExtensionOffer) -> Option<DeflateParams> {
        if response.name != NAME {
            return None;
        }
        let p = parse(response)?;
        let client_bits = match p.client_max_window_bits {
            Some(None) => return None, // a response must give a value
            Some(Some(bits)) if bits < MIN_COMPRESS_BITS => return None,
            Some(Some(bits)) => bits,
            None => 15,
        };
        let server_bits = p.server_max_window_bits.unwrap_or(15);
        if self.server_max_window_bits < 15 && server_bits > self.server_max_window_bits {
            return None;
        }
        if self.server_no_context_takeover && !p.server_no_context_takeover {
            return None;
        }
        Some(DeflateParams {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        })
    }
}

/// The permessage-deflate codec of one connection; attach it with
/// [`crate::Connection::with_extension`].
pub struct PerMessageDeflate {
    /// Our compressor's window and whether it starts each message empty.
    send_bits: u8,
    send_reset: bool,
    /// The peer's window and whether it starts each message empty.
    recv_bits: u8,
    recv_reset: bool,
    level: u32,
    min_size: usize,
    compressor: Option<Box<Compress>>,
    inflater: Option<Box<Decompress>>,
    /// The current message's DEFLATE stream ended with a final block.
    stream_ended: bool,
    /// The current message has brought compressed octets so far.
    message_has_input: bool,
}

impl core::fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerMessageDeflate")
            .field("send_bits", &self.send_bits)
            .field("recv_bits", &self.recv_bits)
            .field("memory", &self.memory_usage())
            .finish()
    }
}

fn extension_error(what: &'static str) -> ProtocolViolation {
    ProtocolViolation::Extension(ExtensionError {
        close_code: CloseCode::INVALID_PAYLOAD,
        what,
    })
}

impl PerMessageDeflate {
    /// The codec for `role` with the agreed `params` and our `config` (level, threshold).
    pub fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> PerMessageDeflate {
        let (send_bits, send_reset, recv_bits, recv_reset) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
        };
        PerMessageDeflate {
            send_bits: send_bits.clamp(MIN_COMPRESS_BITS, 15),
            send_reset,
            // A larger inflater window reads any stream a smaller one would.
            recv_bits: recv_bits.clamp(9, 15),
            recv_reset,
            level: config.level.min(9),
            min_size: config.min_size,
            compressor: None,
            inflater: None,
            stream_ended: false,
            message_has_input: false,
        }
    }

    /// The message's inflater goes back to the thread's pool (reset there).
    fn give_back_inflater(&mut self) {
        if let Some(inflater) = self.inflater.take() {
            pool::give_inflater(self.recv_bits, inflater);
        }
    }

    /// Inflates `input` into `sink`, stopping at the first error the sink returns.
    fn inflate(
        &mut self,
        mut input: &[u8],
        sink: &mut dyn PayloadSink,
    ) -> Result<(), ProtocolViolation> {
        if self.stream_ended {
            // Section 7.2.3.4: what follows a final block (the sender's padding octet and our
            // appended tail) is not part of the stream.
            return Ok(());
        }
        let bits = self.recv_bits;
        let inflater = self
            .inflater
            .get_or_insert_with(|| pool::take_inflater(bits));
        let mut out = [0u8; 8192];
        loop {
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            let status = inflater
                .decompress(input, &mut out, FlushDecompress::Sync)
                .map_err(|_| extension_error("invalid compressed data (RFC 7692 section 7.2.2)"))?;
            let used = (inflater.total_in() - in_before) as usize;
            let produced = (inflater.total_out() - out_before) as usize;
            input = &input[used..];
            if produced > 0 {
                sink.write(&out[..produced])?;
            }
            if status == Status::StreamEnd {
                // A final block (BFINAL, section 7.2.3.4) ends this message's stream.
                self.stream_ended = true;
                return Ok(());
            }
            if (input.is_empty() && produced < out.len()) || (used == 0 && produced == 0) {
                return Ok(());
            }
        }
    }
}

impl Drop for PerMessageDeflate {
    fn drop(&mut self) {
        // A connection that ends inside a compressed message leaves a usable inflater.
        self.give_back_inflater();
    }
}

impl Extension for PerMessageDeflate {
    fn name(&self) -> &str {
        NAME
    }

    fn rsv_bits(&self) -> RsvBits {
        RSV1
    }

    fn begin_message(&mut self, rsv: RsvBits) -> Result<bool, ProtocolViolation> {
        Ok(rsv & RSV1 != 0)
    }

    fn decode(
        &mut self,
        input: &[u8],
        fin: bool,
        sink: &mut dyn PayloadSink,
    ) -> Result<(), ProtocolViolation> {
        self.message_has_input |= !input.is_empty();
        self.inflate(input, sink)?;
        if fin {
            // An empty payload (which some senders make of an empty message, where section
            // 7.2.3.6 asks for `00`) is read as the empty message: the tail alone would leave
            // the inflater inside a stored block header, garbling every later message.
            let had_input = core::mem::take(&mut self.message_has_input);
            if !self.stream_ended && had_input {
                self.inflate(&TAIL, sink)?;
            }
            // After a final block the next message starts a new stream, window and all.
            if self.recv_reset || core::mem::take(&mut self.stream_ended) {
                self.give_back_inflater();
            }
        }
        Ok(())
    }

    fn encode(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<RsvBits>, ExtensionError> {
        if payload.len() < self.min_size {
            return Ok(None);
        }
        let (bits, level) = (self.send_bits, self.level);
        if self.send_reset {
            pool::with_compressor(bits, level, |c| deflate_sync(c, payload, out))?;
        } else {
            let compressor = self.compressor.get_or_insert_with(|| {
                Box::new(Compress::new_with_window_bits(
                    Compression::new(level),
                    false,
                    bits,
                ))
            });
            deflate_sync(compressor, payload, out)?;
        }
        Ok(Some(RSV1))
    }

    fn memory_usage(&self) -> usize {
        let compressor = self
            .compressor
            .as_ref()
            .map_or(0, |_| (1 << (self.send_bits + 2)) + (128 << 10));
        let inflater = self
            .inflater
            .as_ref()
            .map_or(0, |_| (1 << self.recv_bits) + (7 << 10));
        compressor + inflater
    }

    fn shared_deflate_window_bits(&self) -> Option<u8> {
        // Frames compressed without context are safe to mix in only when our compressor keeps
        // no context of its own.
        self.send_reset.then_some(self.send_bits)
    }
}

/// Compresses `payload` with a sync flush and removes the trailing `00 00 ff ff`.
fn deflate_sync(
    compressor: &mut Compress,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ExtensionError> {
    let failed = ExtensionError {
        close_code: CloseCode::INTERNAL_ERROR,
        what: "compression failed",
    };
    out.reserve(payload.len() / 2 + 64);
    let out_start = out.len();
    let start = compressor.total_in();
    loop {
        let consumed = (compressor.total_in() - start) as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        compressor
            .compress_vec(&payload[consumed..], out, FlushCompress::Sync)
            .map_err(|_| failed)?;
        let done = (compressor.total_in() - start) as usize == payload.len();
        // The flush is complete once the compressor stopped short of filling the output.
        if done && out.len() < out.capacity() {
            break;
        }
    }
    if out[out_start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.len() == out_start {
        // A sync flush straight after another emits nothing, yet section 7.2.3.6 has an empty
        // message compress to one `00` octet: an empty stored block's header bits, which the
        // receiver's appended tail completes.
        out.push(0x00);
    }
    Ok(())
}

/// A server frame compressed once, without context, with a window of 2^`window_bits` bytes
/// (clamped to 9 to 15), for every connection whose
/// [`Connection::shared_deflate_window_bits`](crate::Connection::shared_deflate_window_bits)
/// is that number of bits (a room's fanout). The frame carries its window bits
/// ([`EncodedFrame::deflate_window_bits`]), and [`Connection::send_encoded`] refuses it for any
/// other connection. Should compression fail, the frame is the message uncompressed, which
/// every connection takes.
///
/// [`Connection::send_encoded`]: crate::Connection::send_encoded
///
/// ```
/// use ws_proto::deflate::{compress_shared, DeflateConfig, DeflateParams, PerMessageDeflate};
/// use ws_proto::{Config, Connection, Event, Message, MessageKind, Role};
/// let text = "a room message, a room message, a room message";
/// let frame = compress_shared(MessageKind::Text, text.as_bytes(), 15, 6);
/// assert!(frame.as_bytes().len() < text.len());
/// // A client that negotiated permessage-deflate reads it.
/// let params = DeflateParams { server_no_context_takeover: true, ..DeflateParams::default() };
/// let mut client = Connection::client(Config::default())
///     .with_extension(Box::new(PerMessageDeflate::new(Role::Client, params, &DeflateConfig::default())));
/// client.receive(frame.as_bytes()).unwrap();
/// let Some(Event::Message(Message::Text(got))) = client.poll_event() else { panic!() };
/// assert_eq!(got.as_str(), text);
/// ```
pub fn compress_shared(
    kind: MessageKind,
    payload: &[u8],
    window_bits: u8,
    level: u32,
) -> EncodedFrame {
    let bits = window_bits.clamp(MIN_COMPRESS_BITS, 15);
    let mut body = Vec::new();
    if pool::with_compressor(bits, level.min(9), |c| deflate_sync(c, payload, &mut body)).is_err() {
        return EncodedFrame::new(kind, payload);
    }
    let header = FrameHeader {
        fin: true,
        rsv: RSV1,
        opcode: match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        },
        mask: None,
        payload_len: body.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut bytes = Vec::with_capacity(n + body.len());
    bytes.extend_from_slice(&head[..n]);
    bytes.extend_from_slice(&body);
    EncodedFrame::from_parts(bytes.into(), Some(window_bits.clamp(MIN_COMPRESS_BITS, 15)))
}
