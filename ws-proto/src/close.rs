//! Close codes and close frames (RFC 6455 sections 5.5.1 and 7.4).
//!
//! A close frame's payload is empty, or a 2-byte big-endian status code followed by a UTF-8
//! reason; the whole payload is at most 125 bytes, so a reason is at most 123 bytes.

pub use crate::close_code::CloseCode;
use crate::error::{ProtocolViolation, UsageError};
use crate::message::Utf8Bytes;
use bytes::Bytes;

/// The longest close reason that fits a control frame beside its 2-byte code.
pub const MAX_REASON_LEN: usize = 123;

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
