//! `FrameHeader::decode` and `check` on arbitrary bytes, against a reference written from the
//! header diagram of RFC 6455 section 5.2.

use ws_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN, RSV1, RSV2, RSV3};
use ws_proto::{ProtocolViolation, Role};

type Decoded = Result<Option<(FrameHeader, usize)>, ProtocolViolation>;

/// The reference decoder: field by field, in the order of the diagram.
pub fn reference_decode(buf: &[u8]) -> Decoded {
    let [b0, b1, rest @ ..] = buf else {
        return Ok(None);
    };
    let opcode = match b0 & 0x0f {
        0x0 => OpCode::Continuation,
        0x1 => OpCode::Text,
        0x2 => OpCode::Binary,
        0x8 => OpCode::Close,
        0x9 => OpCode::Ping,
        0xa => OpCode::Pong,
        reserved => return Err(ProtocolViolation::ReservedOpcode(reserved)),
    };
    let ext_len = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    if rest.len() < ext_len {
        return Ok(None);
    }
    let payload_len = if ext_len == 0 {
        (b1 & 0x7f) as u64
    } else {
        rest[..ext_len]
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | b as u64)
    };
    if ext_len == 8 && payload_len >= 1 << 63 {
        return Err(ProtocolViolation::LengthHighBitSet);
    }
    let mask = if b1 & 0x80 != 0 {
        let Some(key) = rest.get(ext_len..ext_len + 4) else {
            return Ok(None);
        };
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let header = FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: b0 & 0x70,
        opcode,
        mask,
        payload_len,
    };
    Ok(Some((
        header,
        2 + ext_len + if mask.is_some() { 4 } else { 0 },
    )))
}

/// The reference receiver-side rules, in the order `check` documents: masking, RSV bits,
/// then the control-frame limits.
pub fn reference_check(
    h: &FrameHeader,
    receiver: Role,
    allowed_rsv: u8,
) -> Result<(), ProtocolViolation> {
    if receiver == Role::Server && h.mask.is_none() {
        return Err(ProtocolViolation::UnmaskedClientFrame);
    }
    if receiver == Role::Client && h.mask.is_some() {
        return Err(ProtocolViolation::MaskedServerFrame);
    }
    if h.rsv & !allowed_rsv != 0 {
        return Err(ProtocolViolation::ReservedBitsSet(h.rsv & !allowed_rsv));
    }
    let control = matches!(h.opcode, OpCode::Close | OpCode::Ping | OpCode::Pong);
    if control && h.payload_len > 125 {
        return Err(ProtocolViolation::ControlFrameTooLong);
    }
    if control && !h.fin {
        return Err(ProtocolViolation::FragmentedControlFrame);
    }
    Ok(())
}

/// Whether the length field of the header at the start of `buf` uses the shortest form.
fn minimal_length_form(buf: &[u8], payload_len: u64) -> bool {
    match buf[1] & 0x7f {
        126 => payload_len >= 126,
        127 => payload_len > u16::MAX as u64,
        _ => true,
    }
}

/// Checks the decoder on `data` and on each of its first suffixes.
pub fn run(data: &[u8]) {
    for start in 0..data.len().min(MAX_HEADER_LEN + 2) {
        check_one(&data[start..]);
    }
    if data.is_empty() {
        check_one(data);
    }
}

fn check_one(data: &[u8]) {
    let got = FrameHeader::decode(data);
    assert_eq!(got, reference_decode(data), "decode({data:02x?})");
    match got {
        Ok(None) => assert!(
            data.len() < MAX_HEADER_LEN,
            "{MAX_HEADER_LEN} bytes must decode"
        ),
        Err(e) => {
            assert_eq!(e.close_code().0, 1002);
            // More bytes never turn an error into a header.
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0; MAX_HEADER_LEN]);
            assert_eq!(FrameHeader::decode(&longer), Err(e));
        }
        Ok(Some((header, len))) => {
            assert!(len <= data.len() && len <= MAX_HEADER_LEN);
            assert_eq!(header.rsv & !(RSV1 | RSV2 | RSV3), 0);
            for cut in 0..len {
                assert_eq!(FrameHeader::decode(&data[..cut]), Ok(None), "prefix {cut}");
            }
            let mut buf = [0u8; MAX_HEADER_LEN];
            let n = header.encode(&mut buf);
            assert_eq!(n, header.encoded_len());
            assert_eq!(
                n,
                ws_proto::frame::header_len(header.payload_len, header.mask.is_some())
            );
            if minimal_length_form(data, header.payload_len) {
                assert_eq!(&buf[..n], &data[..len], "re-encoding differs");
            } else {
                assert!(n < len, "a non-minimal length must re-encode shorter");
            }
            assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Some((header, n))));
            for receiver in [Role::Client, Role::Server] {
                for allowed in 0..8u8 {
                    let allowed = allowed << 4;
                    assert_eq!(
                        header.check(receiver, allowed),
                        reference_check(&header, receiver, allowed),
                        "check({header:?}, {receiver:?}, {allowed:#x})"
                    );
                }
            }
        }
    }
}
