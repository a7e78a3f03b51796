//! Close codes and close frames (RFC 6455 sections 5.5.1 and 7.4).
//!
//! A close frame's payload is empty, or a 2-byte big-endian status code followed by a UTF-8
//! reason; the whole payload is at most 125 bytes, so a reason is at most 123 bytes.

use crate::error::{ProtocolViolation, UsageError};
use crate::message::Utf8Bytes;
use bytes::Bytes;

/// The longest close reason that fits a control frame beside its 2-byte code.
pub const MAX_REASON_LEN: usize = 123;

/// A close status code (RFC 6455 section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: a protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway got an invalid response (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: the TLS handshake failed. Never sent on the wire.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether the code may appear in a close frame (section 7.4.1 and 7.4.2): the defined
    /// codes 1000-1003 and 1007-1011, the IANA-registered 1012-1014, and the ranges 3000-3999
    /// (registered) and 4000-4999 (private use). 1004 is reserved; 1005, 1006 and 1015 are for
    /// reporting only; everything below 1000 and from 5000 up is invalid.
    ///
    /// ```
    /// use ws_proto::CloseCode;
    /// assert!(CloseCode::NORMAL.is_valid_on_wire());
    /// assert!(CloseCode(4000).is_valid_on_wire());
    /// assert!(!CloseCode::NO_STATUS.is_valid_on_wire());
    /// assert!(!CloseCode(999).is_valid_on_wire());
    /// ```
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl core::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The content of a close frame with a status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, UTF-8, at most [`MAX_REASON_LEN`] bytes; often empty.
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// Parses a received close payload: empty (no status), or a valid code and a UTF-8 reason.
    ///
    /// ```
    /// use ws_proto::{close::CloseFrame, CloseCode};
    /// let frame = CloseFrame::parse(b"\x03\xe8bye").unwrap().unwrap();
    /// assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::NORMAL, "bye"));
    /// assert!(CloseFrame::parse(b"").unwrap().is_none());
    /// assert!(CloseFrame::parse(b"\x03").is_err()); // a 1-byte payload is malformed
    /// ```
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolViolation> {
        match payload.len() {
            0 => Ok(None),
            1 => Err(ProtocolViolation::CloseFrameTooShort),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolViolation::InvalidCloseCode(code.0));
                }
                let reason = core::str::from_utf8(&payload[2..])
                    .map_err(|_| ProtocolViolation::InvalidCloseReason)?;
                Ok(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from(alloc::string::String::from(reason)),
                }))
            }
        }
    }

    /// A close frame to send; fails on a code that may not be sent or a reason too long.
    pub fn new(code: CloseCode, reason: &str) -> Result<CloseFrame, UsageError> {
        if !code.is_valid_on_wire() {
            return Err(UsageError::InvalidCloseCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(UsageError::CloseReasonTooLong(reason.len()));
        }
        Ok(CloseFrame {
            code,
            reason: Utf8Bytes::from(alloc::string::String::from(reason)),
        })
    }

    /// Writes the payload: the code, big-endian, then the reason. Returns the length.
    pub(crate) fn write_payload(&self, dst: &mut [u8; 125]) -> usize {
        dst[..2].copy_from_slice(&self.code.0.to_be_bytes());
        let reason = self.reason.as_bytes();
        dst[2..2 + reason.len()].copy_from_slice(reason);
        2 + reason.len()
    }
}

impl From<CloseFrame> for Bytes {
    fn from(frame: CloseFrame) -> Bytes {
        let mut buf = [0u8; 125];
        let n = frame.write_payload(&mut buf);
        Bytes::copy_from_slice(&buf[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_7_4_valid_codes() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(
                CloseFrame::parse(&u16::to_be_bytes(code))
                    .unwrap()
                    .is_some(),
                "{code}"
            );
        }
    }

    #[test]
    fn rfc6455_7_4_invalid_codes_are_protocol_errors() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                CloseFrame::parse(&u16::to_be_bytes(code)),
                Err(ProtocolViolation::InvalidCloseCode(code)),
                "{code}"
            );
        }
    }

    #[test]
    fn rfc6455_5_5_1_one_byte_payload_is_an_error() {
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(ProtocolViolation::CloseFrameTooShort)
        );
    }

    #[test]
    fn rfc6455_5_5_1_reason_must_be_utf8() {
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd]),
            Err(ProtocolViolation::InvalidCloseReason)
        );
    }

    #[test]
    fn sending_checks_code_and_reason_length() {
        assert_eq!(
            CloseFrame::new(CloseCode::ABNORMAL, "").unwrap_err(),
            UsageError::InvalidCloseCode(1006)
        );
        let long = "x".repeat(124);
        assert_eq!(
            CloseFrame::new(CloseCode::NORMAL, &long).unwrap_err(),
            UsageError::CloseReasonTooLong(124)
        );
        let max = "x".repeat(123);
        let frame = CloseFrame::new(CloseCode::NORMAL, &max).unwrap();
        let mut buf = [0u8; 125];
        assert_eq!(frame.write_payload(&mut buf), 125);
    }
}
