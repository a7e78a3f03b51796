//! Typed errors. A peer's violation of the protocol ([`ProtocolViolation`], [`HandshakeError`])
//! is told apart from misuse by the local caller ([`UsageError`]); each violation names the rule
//! it broke and carries the close code (or HTTP status) to answer it with.

use crate::close_code::CloseCode;
use crate::http::{http_response, StatusCode};
use core::fmt;

/// A rule of RFC 6455 (or of a negotiated extension) that the peer broke. The connection has
/// been failed (section 7.1.7): a close frame with [`Self::close_code`] is queued for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// Section 5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    ReservedOpcode(u8),
    /// Section 5.2: the most significant bit of a 64-bit length must be 0.
    LengthHighBitSet,
    /// Section 5.1: a client must mask every frame it sends.
    UnmaskedClientFrame,
    /// Section 5.1: a server must not mask any frame it sends.
    MaskedServerFrame,
    /// Section 5.2: RSV bits must be 0 unless an extension defines them (the bits set).
    ReservedBitsSet(u8),
    /// Section 5.5: control frames carry at most 125 bytes.
    ControlFrameTooLong,
    /// Section 5.5: control frames must not be fragmented.
    FragmentedControlFrame,
    /// Section 5.4: a continuation frame without a message in progress.
    UnexpectedContinuation,
    /// Section 5.4: a new text or binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// Section 8.1: a text message that is not valid UTF-8.
    InvalidUtf8,
    /// Section 5.5.1: a close payload of one byte.
    CloseFrameTooShort,
    /// Section 7.4: a close code that may not be sent (the code).
    InvalidCloseCode(u16),
    /// Section 5.5.1: a close reason that is not valid UTF-8.
    InvalidCloseReason,
    /// Section 10.4: a frame longer than the configured maximum (its declared length).
    FrameTooLarge(u64),
    /// Section 10.4: a message longer than the configured maximum.
    MessageTooLarge,
    /// A negotiated extension could not process a message (for example corrupt compressed
    /// data).
    Extension(ExtensionError),
}

impl ProtocolViolation {
    /// The close code to send for this violation (section 7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolViolation::InvalidUtf8 | ProtocolViolation::InvalidCloseReason => {
                CloseCode::INVALID_PAYLOAD
            }
            ProtocolViolation::FrameTooLarge(_) | ProtocolViolation::MessageTooLarge => {
                CloseCode::MESSAGE_TOO_BIG
            }
            ProtocolViolation::Extension(e) => e.close_code,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolViolation::ReservedOpcode(op) => {
                write!(f, "reserved opcode {op:#x} (RFC 6455 section 5.2)")
            }
            ProtocolViolation::LengthHighBitSet => {
                f.write_str("64-bit payload length with the high bit set (RFC 6455 section 5.2)")
            }
            ProtocolViolation::UnmaskedClientFrame => {
                f.write_str("unmasked frame from a client (RFC 6455 section 5.1)")
            }
            ProtocolViolation::MaskedServerFrame => {
                f.write_str("masked frame from a server (RFC 6455 section 5.1)")
            }
            ProtocolViolation::ReservedBitsSet(bits) => write!(
                f,
                "RSV bits {bits:#04x} set without an extension that defines them (RFC 6455 section 5.2)"
            ),
            ProtocolViolation::ControlFrameTooLong => {
                f.write_str("control frame longer than 125 bytes (RFC 6455 section 5.5)")
            }
            ProtocolViolation::FragmentedControlFrame => {
                f.write_str("fragmented control frame (RFC 6455 section 5.5)")
            }
            ProtocolViolation::UnexpectedContinuation => {
                f.write_str("continuation frame without a message to continue (RFC 6455 section 5.4)")
            }
            ProtocolViolation::ExpectedContinuation => f.write_str(
                "new data frame inside a fragmented message (RFC 6455 section 5.4)",
            ),
            ProtocolViolation::InvalidUtf8 => {
                f.write_str("text message is not valid UTF-8 (RFC 6455 section 8.1)")
            }
            ProtocolViolation::CloseFrameTooShort => {
                f.write_str("close frame payload of one byte (RFC 6455 section 5.5.1)")
            }
            ProtocolViolation::InvalidCloseCode(code) => {
                write!(f, "close code {code} may not be sent (RFC 6455 section 7.4)")
            }
            ProtocolViolation::InvalidCloseReason => {
                f.write_str("close reason is not valid UTF-8 (RFC 6455 section 5.5.1)")
            }
            ProtocolViolation::FrameTooLarge(len) => {
                write!(f, "frame of {len} bytes exceeds the frame size limit")
            }
            ProtocolViolation::MessageTooLarge => f.write_str("message exceeds the size limit"),
            ProtocolViolation::Extension(e) => write!(f, "extension error: {e}"),
        }
    }
}

/// A negotiated extension refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionError {
    /// The close code to fail the connection with.
    pub close_code: CloseCode,
    /// What went wrong, and the rule that was broken.
    pub what: &'static str,
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

/// The local caller asked for something the protocol or the connection's state forbids. Nothing
/// was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// Section 5.5.1: no data frame may be sent after a close frame.
    Closing,
    /// Section 5.5: a control frame payload over 125 bytes (the length given).
    ControlPayloadTooLong(usize),
    /// Section 7.4: this code may not be sent in a close frame.
    InvalidCloseCode(u16),
    /// Section 5.5.1: the reason does not fit in a close frame (the length given).
    CloseReasonTooLong(usize),
    /// Section 5.4: a whole message was sent while a fragmented one is unfinished.
    MessageInProgress,
    /// Section 5.4: a fragment of the other data type than the message in progress.
    FragmentKindMismatch,
    /// Section 8.1: a text fragment that is not valid UTF-8.
    InvalidUtf8,
    /// Pre-encoded (unmasked) frames can only be sent by a server (section 5.1).
    NotServer,
    /// The subprotocol chosen at the handshake was not offered by the client (section 4.2.2).
    UnofferedProtocol,
    /// A pre-compressed frame whose deflate window bits are not the ones this connection takes
    /// (`Connection::shared_deflate_window_bits`), or that it takes none of.
    ExtensionMismatch,
    /// A negotiated extension failed to encode a message.
    Extension(ExtensionError),
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Closing => f.write_str("cannot send data after a close frame was sent"),
            UsageError::ControlPayloadTooLong(n) => {
                write!(f, "control frame payload of {n} bytes exceeds 125")
            }
            UsageError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            UsageError::CloseReasonTooLong(n) => {
                write!(f, "close reason of {n} bytes exceeds 123")
            }
            UsageError::MessageInProgress => {
                f.write_str("a fragmented message is in progress: finish it first")
            }
            UsageError::FragmentKindMismatch => {
                f.write_str("fragment type differs from the message in progress")
            }
            UsageError::InvalidUtf8 => f.write_str("text fragment is not valid UTF-8"),
            UsageError::NotServer => f.write_str("only a server sends unmasked pre-encoded frames"),
            UsageError::UnofferedProtocol => {
                f.write_str("the chosen subprotocol was not offered by the client")
            }
            UsageError::ExtensionMismatch => f.write_str(
                "the pre-compressed frame's window bits are not ones this connection takes",
            ),
            UsageError::Extension(e) => write!(f, "extension error: {e}"),
        }
    }
}

/// The opening handshake (RFC 6455 section 4) failed. On the server side it carries the HTTP
/// status to answer with ([`Self::status`], [`Self::response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request or response head is longer than the configured limit.
    HeadTooLarge,
    /// More header fields than the configured limit.
    TooManyHeaders,
    /// Not parseable as an HTTP/1.1 message head.
    Malformed,
    /// Section 4.2.1 item 1: the method must be GET.
    MethodNotGet,
    /// Section 4.2.1 item 1: HTTP/1.1 or higher is required.
    HttpVersion,
    /// Section 4.2.1 item 2: a Host header is required.
    MissingHost,
    /// Section 4.2.1 item 3 / 4.1 item 3: the Upgrade header must contain "websocket".
    MissingUpgrade,
    /// Section 4.2.1 item 4 / 4.1 item 4: the Connection header must contain "Upgrade".
    MissingConnectionUpgrade,
    /// Section 4.2.1 item 6: Sec-WebSocket-Version must be 13.
    UnsupportedVersion,
    /// Section 4.2.1 item 5: Sec-WebSocket-Key must be base64 of 16 bytes.
    InvalidKey,
    /// Section 4.2.1: a header the request must carry once (`Host`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version`, `Origin`, `Authorization`) came more than once; which one.
    DuplicateHeader(&'static str),
    /// The opening handshake is a GET with no body (section 4.1); a `Content-Length` other than
    /// 0 or a `Transfer-Encoding` would have its body read as WebSocket frames.
    UnexpectedBody,
    /// Section 4.1 item 1: the server answered with another status than 101 (the status).
    NotSwitchingProtocols(StatusCode),
    /// Section 4.1 item 4: Sec-WebSocket-Accept is missing or does not match the key.
    AcceptMismatch,
    /// Section 4.1 item 6: the server chose a subprotocol the client did not offer.
    UnofferedProtocol,
    /// Section 4.1 item 5: the server chose an extension the client did not offer, or
    /// parameters the client cannot accept.
    UnofferedExtension,
}

/// The headers of a 426 answer: the protocol to upgrade to and its version (RFC 6455 section
/// 4.4, RFC 9110 section 15.5.22).
pub const UPGRADE_REQUIRED_HEADERS: &[(&str, &str)] =
    &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")];

impl HandshakeError {
    /// The HTTP status a server answers this error with, or `None` for errors a client finds
    /// in the server's response.
    ///
    /// ```
    /// use ws_proto::{HandshakeError, StatusCode};
    /// assert_eq!(HandshakeError::UnsupportedVersion.status(), Some(StatusCode::UPGRADE_REQUIRED));
    /// assert_eq!(HandshakeError::AcceptMismatch.status(), None);
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        Some(match self {
            HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            HandshakeError::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::HttpVersion => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            HandshakeError::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            HandshakeError::Malformed
            | HandshakeError::MissingHost
            | HandshakeError::MissingUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::InvalidKey
            | HandshakeError::DuplicateHeader(_)
            | HandshakeError::UnexpectedBody => StatusCode::BAD_REQUEST,
            _ => return None,
        })
    }

    /// The HTTP response a server sends for this error: the status (400 for an error that has
    /// none), `Upgrade: websocket` and `Sec-WebSocket-Version: 13` with 426 (section 4.4; RFC
    /// 9110 section 15.5.22 asks for the Upgrade header), `Allow: GET` with 405, and a short
    /// text body naming the rule.
    pub fn response(&self) -> alloc::vec::Vec<u8> {
        let status = self.status().unwrap_or(StatusCode::BAD_REQUEST);
        let extra: &[(&str, &str)] = match status {
            StatusCode::UPGRADE_REQUIRED => UPGRADE_REQUIRED_HEADERS,
            StatusCode::METHOD_NOT_ALLOWED => &[("Allow", "GET")],
            _ => &[],
        };
        let body = alloc::format!("{self}\n");
        http_response(status, extra, body.as_bytes())
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::HeadTooLarge => f.write_str("HTTP head exceeds the size limit"),
            HandshakeError::TooManyHeaders => f.write_str("too many HTTP header fields"),
            HandshakeError::Malformed => f.write_str("malformed HTTP message head"),
            HandshakeError::MethodNotGet => {
                f.write_str("the opening handshake must be a GET request (RFC 6455 section 4.2.1)")
            }
            HandshakeError::HttpVersion => {
                f.write_str("the opening handshake needs HTTP/1.1 (RFC 6455 section 4.2.1)")
            }
            HandshakeError::MissingHost => {
                f.write_str("missing Host header (RFC 6455 section 4.2.1)")
            }
            HandshakeError::MissingUpgrade => {
                f.write_str("Upgrade header lacks the websocket token (RFC 6455 section 4)")
            }
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("Connection header lacks the Upgrade token (RFC 6455 section 4)")
            }
            HandshakeError::UnsupportedVersion => {
                f.write_str("Sec-WebSocket-Version must be 13 (RFC 6455 section 4.2.1)")
            }
            HandshakeError::InvalidKey => f.write_str(
                "Sec-WebSocket-Key must be the base64 of 16 bytes (RFC 6455 section 4.2.1)",
            ),
            HandshakeError::DuplicateHeader(name) => {
                write!(f, "{name} must appear once (RFC 6455 section 4.2.1)")
            }
            HandshakeError::UnexpectedBody => {
                f.write_str("the opening handshake has no body (RFC 6455 section 4.1)")
            }
            HandshakeError::NotSwitchingProtocols(s) => {
                write!(f, "server answered {s}, not 101 (RFC 6455 section 4.1)")
            }
            HandshakeError::AcceptMismatch => {
                f.write_str("Sec-WebSocket-Accept missing or wrong (RFC 6455 section 4.1)")
            }
            HandshakeError::UnofferedProtocol => f.write_str(
                "server chose a subprotocol that was not offered (RFC 6455 section 4.1)",
            ),
            HandshakeError::UnofferedExtension => {
                f.write_str("server chose an extension that was not offered (RFC 6455 section 4.1)")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolViolation {}
#[cfg(feature = "std")]
impl std::error::Error for UsageError {}
#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}
#[cfg(feature = "std")]
impl std::error::Error for ExtensionError {}
