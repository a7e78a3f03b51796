//! `apply_mask` (eight bytes at a time) against `apply_mask_bytewise` and the definition of
//! RFC 6455 section 5.3, at arbitrary alignments, key phases and splits.

use crate::chunks;
use ws_proto::mask::{apply_mask, apply_mask_bytewise};

/// Input: 4 key bytes, 8 phase bytes, an alignment byte, then a chunk spec and the payload.
pub fn run(data: &[u8]) {
    if data.len() < 13 {
        return;
    }
    let key = [data[0], data[1], data[2], data[3]];
    // A phase counts payload octets before the slice; payloads are shorter than 2^63 bytes.
    let phase = u64::from_le_bytes(data[4..12].try_into().unwrap()) & (u64::MAX >> 1);
    let phase = usize::try_from(phase).unwrap_or(usize::MAX >> 1);
    let align = (data[12] % 32) as usize;
    let pieces = chunks::split(&data[13..]);
    let payload = pieces.concat();
    let span = align..align + payload.len();

    // Guard bytes around the slice catch writes outside it.
    let mut backing = vec![0xa5u8; align + payload.len() + 16];
    backing[span.clone()].copy_from_slice(&payload);
    let mut expected = backing.clone();
    for (i, b) in expected[span.clone()].iter_mut().enumerate() {
        *b ^= key[(phase % 4 + i) % 4];
    }

    let mut fast = backing.clone();
    apply_mask(&mut fast[span.clone()], key, phase);
    assert_eq!(fast, expected, "apply_mask, phase {phase}, align {align}");

    let mut slow = backing.clone();
    apply_mask_bytewise(&mut slow[span.clone()], key, phase);
    assert_eq!(slow, expected, "apply_mask_bytewise, phase {phase}");

    // Piece by piece, each with the phase of its offset, as a payload arriving in reads.
    let mut pieced = backing.clone();
    let mut at = align;
    for piece in &pieces {
        apply_mask(&mut pieced[at..at + piece.len()], key, phase + (at - align));
        at += piece.len();
    }
    assert_eq!(pieced, expected, "in pieces");

    // Masking is an involution.
    apply_mask(&mut fast[span], key, phase);
    assert_eq!(fast, backing, "masking twice");
}
