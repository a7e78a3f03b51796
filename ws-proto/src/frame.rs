//! The frame header codec (RFC 6455 section 5.2).
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! ```
//!
//! [`FrameHeader::decode`] reads a header from however many bytes have arrived and says "need
//! more" with `Ok(None)`; it checks only what the header alone can break. The rules that depend
//! on the role and on negotiated extensions are in [`FrameHeader::check`].

use crate::error::ProtocolViolation;
use crate::role::Role;

/// The longest possible header: 2 bytes, 8 of extended length, 4 of masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (RFC 6455 section 5.2, section 11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: starts a text message.
    Text,
    /// 0x2: starts a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// The opcode for a 4-bit value, or `None` for the reserved values 0x3-0x7 and 0xB-0xF.
    pub fn from_u8(value: u8) -> Option<OpCode> {
        Some(match value {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong are control frames (RFC 6455 section 5.5).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// The three reserved bits, as they sit in the first header byte (RSV1 = 0x40, RSV2 = 0x20,
/// RSV3 = 0x10).
pub type RsvBits = u8;
/// RSV1, the bit permessage-deflate claims.
pub const RSV1: RsvBits = 0x40;
/// RSV2.
pub const RSV2: RsvBits = 0x20;
/// RSV3.
pub const RSV3: RsvBits = 0x10;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of a message.
    pub fin: bool,
    /// The reserved bits, as a mask of [`RSV1`], [`RSV2`] and [`RSV3`].
    pub rsv: RsvBits,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decodes a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a header, and otherwise the header and
    /// how many bytes it took. Fails on a reserved opcode and on a 64-bit length with its most
    /// significant bit set.
    ///
    /// ```
    /// use ws_proto::frame::{FrameHeader, OpCode};
    /// // RFC 6455 section 5.7: a single-frame unmasked text message "Hello".
    /// let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    /// let (header, len) = FrameHeader::decode(&bytes).unwrap().unwrap();
    /// assert_eq!((header.opcode, header.fin, header.payload_len, len), (OpCode::Text, true, 5, 2));
    /// assert_eq!(FrameHeader::decode(&bytes[..1]).unwrap(), None);
    /// ```
    #[inline]
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolViolation> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let opcode =
            OpCode::from_u8(b0 & 0x0f).ok_or(ProtocolViolation::ReservedOpcode(b0 & 0x0f))?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut at) = match b1 & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut len = [0u8; 8];
                len.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(len);
                if len >> 63 != 0 {
                    return Err(ProtocolViolation::LengthHighBitSet);
                }
                (len, 10)
            }
            short => (short as u64, 2),
        };
        let mask = if masked {
            if buf.len() < at + 4 {
                return Ok(None);
            }
            let key = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
            at += 4;
            Some(key)
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: b0 & (RSV1 | RSV2 | RSV3),
                opcode,
                mask,
                payload_len,
            },
            at,
        )))
    }

    /// Checks the rules that depend on who receives the frame: masking by role (section 5.1),
    /// RSV bits not claimed by a negotiated extension (section 5.2), and the control-frame rules
    /// (section 5.5: at most 125 bytes, never fragmented). `allowed_rsv` is the set of bits the
    /// negotiated extensions claim for this frame.
    pub fn check(&self, receiver: Role, allowed_rsv: RsvBits) -> Result<(), ProtocolViolation> {
        match (receiver, self.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolViolation::UnmaskedClientFrame),
            (Role::Client, true) => return Err(ProtocolViolation::MaskedServerFrame),
            _ => {}
        }
        if self.rsv & !allowed_rsv != 0 {
            return Err(ProtocolViolation::ReservedBitsSet(self.rsv & !allowed_rsv));
        }
        if self.opcode.is_control() {
            if self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolViolation::ControlFrameTooLong);
            }
            if !self.fin {
                return Err(ProtocolViolation::FragmentedControlFrame);
            }
        }
        Ok(())
    }

    /// The encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        header_len(self.payload_len, self.mask.is_some())
    }

    /// Encodes the header into `dst`, which must hold at least [`Self::encoded_len`] bytes
    /// ([`MAX_HEADER_LEN`] always suffices), and returns the bytes written. The length uses the
    /// shortest form, as section 5.2 requires.
    ///
    /// ```
    /// use ws_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
    /// // RFC 6455 section 5.7: 256 bytes of binary data in a single unmasked message.
    /// let header = FrameHeader { fin: true, rsv: 0, opcode: OpCode::Binary, mask: None, payload_len: 256 };
    /// let mut buf = [0u8; MAX_HEADER_LEN];
    /// let n = header.encode(&mut buf);
    /// assert_eq!(&buf[..n], &[0x82, 0x7e, 0x01, 0x00]);
    /// ```
    pub fn encode(&self, dst: &mut [u8]) -> usize {
        dst[0] = (self.fin as u8) << 7 | self.rsv & (RSV1 | RSV2 | RSV3) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = if self.payload_len < 126 {
            dst[1] = mask_bit | self.payload_len as u8;
            2
        } else if self.payload_len <= u16::MAX as u64 {
            dst[1] = mask_bit | 126;
            dst[2..4].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
            4
        } else {
            dst[1] = mask_bit | 127;
            dst[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            10
        };
        if let Some(key) = self.mask {
            dst[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

/// The header length for a payload length and masking.
#[inline]
pub fn header_len(payload_len: u64, masked: bool) -> usize {
    let base = if payload_len < 126 {
        2
    } else if payload_len <= u16::MAX as u64 {
        4
    } else {
        10
    };
    base + if masked { 4 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn decode_all(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::decode(bytes).unwrap().unwrap()
    }

    #[test]
    fn rfc6455_5_7_single_frame_unmasked_text() {
        let (h, n) = decode_all(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(n, 2);
        assert!(h.fin);
        assert_eq!((h.opcode, h.mask, h.payload_len), (OpCode::Text, None, 5));
    }

    #[test]
    fn rfc6455_5_7_single_frame_masked_text() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = decode_all(&bytes);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        let mut payload = bytes[6..].to_vec();
        crate::mask::apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn rfc6455_5_7_fragmented_unmasked_text() {
        let (h, _) = decode_all(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert!(!h.fin);
        assert_eq!((h.opcode, h.payload_len), (OpCode::Text, 3));
        let (h, _) = decode_all(&[0x80, 0x02, 0x6c, 0x6f]);
        assert!(h.fin);
        assert_eq!((h.opcode, h.payload_len), (OpCode::Continuation, 2));
    }

    #[test]
    fn rfc6455_5_7_ping_and_pong() {
        let (h, _) = decode_all(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!((h.opcode, h.payload_len), (OpCode::Ping, 5));
        let (h, _) = decode_all(&[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!((h.opcode, h.payload_len), (OpCode::Pong, 5));
    }

    #[test]
    fn rfc6455_5_7_256_bytes_and_64_kib_lengths() {
        let (h, n) = decode_all(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        let (h, n) = decode_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 65536, 10));
    }

    #[test]
    fn partial_headers_need_more_bytes_in_every_length_form() {
        let forms: [&[u8]; 4] = [
            &[0x82, 0x85, 1, 2, 3, 4],
            &[0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4],
            &[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4],
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0],
        ];
        for full in forms {
            for cut in 0..full.len() {
                assert_eq!(
                    FrameHeader::decode(&full[..cut]).unwrap(),
                    None,
                    "{full:02x?} cut {cut}"
                );
            }
            assert_eq!(decode_all(full).1, full.len());
        }
    }

    #[test]
    fn rfc6455_5_2_64_bit_length_with_high_bit_is_rejected() {
        let bytes = [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            FrameHeader::decode(&bytes),
            Err(ProtocolViolation::LengthHighBitSet)
        );
    }

    #[test]
    fn rfc6455_5_2_reserved_opcodes_are_rejected() {
        for op in (0x3..=0x7).chain(0xb..=0xf) {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 0x80, 0, 0, 0, 0]),
                Err(ProtocolViolation::ReservedOpcode(op))
            );
        }
    }

    fn header(opcode: OpCode, fin: bool, rsv: u8, masked: bool, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask: masked.then_some([1, 2, 3, 4]),
            payload_len: len,
        }
    }

    #[test]
    fn rfc6455_5_1_server_rejects_unmasked_and_client_rejects_masked() {
        assert_eq!(
            header(OpCode::Text, true, 0, false, 1).check(Role::Server, 0),
            Err(ProtocolViolation::UnmaskedClientFrame)
        );
        assert_eq!(
            header(OpCode::Text, true, 0, true, 1).check(Role::Client, 0),
            Err(ProtocolViolation::MaskedServerFrame)
        );
        assert!(header(OpCode::Text, true, 0, true, 1)
            .check(Role::Server, 0)
            .is_ok());
        assert!(header(OpCode::Text, true, 0, false, 1)
            .check(Role::Client, 0)
            .is_ok());
    }

    #[test]
    fn rfc6455_5_2_rsv_bits_need_a_negotiated_extension() {
        for rsv in [RSV1, RSV2, RSV3, RSV1 | RSV3] {
            assert_eq!(
                header(OpCode::Binary, true, rsv, true, 1).check(Role::Server, 0),
                Err(ProtocolViolation::ReservedBitsSet(rsv))
            );
        }
        assert!(header(OpCode::Binary, true, RSV1, true, 1)
            .check(Role::Server, RSV1)
            .is_ok());
    }

    #[test]
    fn rfc6455_5_5_control_frames_are_short_and_unfragmented() {
        assert!(header(OpCode::Ping, true, 0, true, 125)
            .check(Role::Server, 0)
            .is_ok());
        assert_eq!(
            header(OpCode::Ping, true, 0, true, 126).check(Role::Server, 0),
            Err(ProtocolViolation::ControlFrameTooLong)
        );
        assert_eq!(
            header(OpCode::Close, false, 0, true, 2).check(Role::Server, 0),
            Err(ProtocolViolation::FragmentedControlFrame)
        );
    }

    #[test]
    fn rfc6455_5_2_encoding_uses_the_minimal_length_form() {
        let mut buf = [0u8; MAX_HEADER_LEN];
        for (len, expected) in [(125u64, 2usize), (126, 4), (65535, 4), (65536, 10)] {
            let n = header(OpCode::Binary, true, 0, false, len).encode(&mut buf);
            assert_eq!(n, expected, "len {len}");
        }
    }

    fn arb_header() -> impl Strategy<Value = FrameHeader> {
        let op = prop_oneof![
            Just(OpCode::Continuation),
            Just(OpCode::Text),
            Just(OpCode::Binary),
            Just(OpCode::Close),
            Just(OpCode::Ping),
            Just(OpCode::Pong)
        ];
        let len = prop_oneof![0u64..130, 120u64..70_000, 0u64..(1 << 63)];
        (any::<bool>(), 0u8..8, op, any::<Option<[u8; 4]>>(), len).prop_map(
            |(fin, rsv, opcode, mask, payload_len)| FrameHeader {
                fin,
                rsv: rsv << 4,
                opcode,
                mask,
                payload_len,
            },
        )
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(h in arb_header()) {
            let mut buf = [0u8; MAX_HEADER_LEN];
            let n = h.encode(&mut buf);
            prop_assert_eq!(n, h.encoded_len());
            prop_assert_eq!(FrameHeader::decode(&buf[..n]).unwrap(), Some((h, n)));
            for cut in 0..n {
                prop_assert_eq!(FrameHeader::decode(&buf[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = FrameHeader::decode(&bytes);
            let _: Vec<u8> = Vec::new();
        }
    }
}
