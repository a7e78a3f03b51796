//! The extension seam (RFC 6455 section 9).
//!
//! An extension negotiated at the handshake plugs into a [`crate::Connection`] through the
//! [`Extension`] trait. The seam is shaped for per-message extensions, the only kind in use
//! (permessage-deflate, RFC 7692): the extension claims RSV bits, sees each message's first
//! frame bits to decide whether it transforms that message, decodes the payload as it streams
//! in, and encodes whole outgoing messages.
//!
//! Decoded bytes go to a [`PayloadSink`] that enforces the message size limit and UTF-8 as the
//! bytes come out, so a decompression bomb is stopped at the limit instead of after inflating.

use crate::error::{ExtensionError, ProtocolViolation};
use crate::frame::RsvBits;
use alloc::vec::Vec;

/// Where an extension writes decoded payload. Fails when the limit is passed or the text is
/// invalid; the extension must stop and return that error.
pub trait PayloadSink {
    /// Takes the next decoded bytes of the message.
    fn write(&mut self, decoded: &[u8]) -> Result<(), ProtocolViolation>;
}

/// A per-message extension on one connection.
///
/// ```
/// use ws_proto::extension::{Extension, PayloadSink};
/// use ws_proto::error::{ExtensionError, ProtocolViolation};
/// use ws_proto::frame::RsvBits;
///
/// /// A toy extension that claims nothing and passes every message through.
/// struct Identity;
/// impl Extension for Identity {
///     fn name(&self) -> &str { "identity" }
///     fn rsv_bits(&self) -> RsvBits { 0 }
///     fn begin_message(&mut self, _rsv: RsvBits) -> Result<bool, ProtocolViolation> { Ok(false) }
///     fn decode(&mut self, _: &[u8], _: bool, _: &mut dyn PayloadSink) -> Result<(), ProtocolViolation> {
///         unreachable!("begin_message never selects a message")
///     }
///     fn encode(&mut self, _: &[u8], _: &mut Vec<u8>) -> Result<Option<RsvBits>, ExtensionError> {
///         Ok(None)
///     }
/// }
/// let conn = ws_proto::Connection::server(ws_proto::Config::default())
///     .with_extension(Box::new(Identity));
/// # let _ = conn;
/// ```
pub trait Extension: Send {
    /// The extension's registered name, as negotiated (for example `permessage-deflate`).
    fn name(&self) -> &str;

    /// The RSV bits this extension gives meaning to. Frames may carry them only on the first
    /// frame of a data message; anywhere else they remain a protocol error.
    fn rsv_bits(&self) -> RsvBits;

    /// A data message begins; `rsv` holds the claimed bits of its first frame. Returns whether
    /// the payload of this message must go through [`Self::decode`].
    fn begin_message(&mut self, rsv: RsvBits) -> Result<bool, ProtocolViolation>;

    /// Decodes the next unmasked payload bytes of a selected message into `sink`; `fin` is true
    /// with the last bytes of the message (then `input` may be empty). Must write decoded bytes to
    /// `sink` as they are produced and stop at the first error the sink returns.
    fn decode(
        &mut self,
        input: &[u8],
        fin: bool,
        sink: &mut dyn PayloadSink,
    ) -> Result<(), ProtocolViolation>;

    /// Encodes a whole outgoing message payload into `out` and returns the RSV bits to set on
    /// its first frame, or returns `None` to send this message untransformed.
    fn encode(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<RsvBits>, ExtensionError>;

    /// Bytes of memory the extension holds for this connection (compression windows and the
    /// like), for reporting.
    fn memory_usage(&self) -> usize {
        0
    }

    /// The deflate window bits (9 to 15) of the pre-compressed frames this connection can send
    /// unchanged (see [`crate::EncodedFrame`]), or `None` if it takes only uncompressed
    /// pre-encoded frames. `Some(bits)` promises that a frame compressed on its own, without
    /// context, with a window of 2^`bits` bytes (what permessage-deflate's `compress_shared`
    /// makes) may be queued between this extension's own messages and the peer will inflate
    /// it: permessage-deflate says so when its compressor keeps no context between messages,
    /// with its compressor's window bits. A server compresses a message for many connections
    /// once per distinct value. The default, for an extension that does not compress, is
    /// `None`.
    fn shared_deflate_window_bits(&self) -> Option<u8> {
        None
    }
}
