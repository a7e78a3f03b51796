//! Payload masking (RFC 6455 section 5.3).
//!
//! Octet `i` of a masked payload is XORed with octet `i mod 4` of the masking key. The
//! functions here take a *phase*: how many payload octets precede the slice, so a payload
//! that arrives in pieces can be unmasked piece by piece and give the same result as
//! unmasking it whole.
//!
//! The implementation is safe code that processes eight bytes at a time; the compiler turns the
//! loop over fixed-size chunks into vector instructions.

/// XORs `buf` in place with the masking `key`, where `phase` payload octets came before `buf`.
///
/// Applying it twice with the same arguments restores the input.
///
/// ```
/// use ws_proto::mask::apply_mask;
/// // RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
/// let mut payload = *b"Hello";
/// apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// // Unmasking in two pieces carries the key phase over.
/// let (a, b) = payload.split_at_mut(2);
/// apply_mask(a, [0x37, 0xfa, 0x21, 0x3d], 0);
/// apply_mask(b, [0x37, 0xfa, 0x21, 0x3d], 2);
/// assert_eq!(&payload, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    let key = rotate_key(key, phase);
    if buf.len() < 8 {
        apply_mask_bytewise(buf, key, 0);
        return;
    }
    // Both halves of the word hold the same four key bytes in memory order, so the word
    // pattern is right on either endianness.
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut wide = buf.chunks_exact_mut(32);
    for block in &mut wide {
        for lane in block.chunks_exact_mut(8) {
            xor_word(lane, word);
        }
    }
    let rest = wide.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for lane in &mut words {
        xor_word(lane, word);
    }
    // Every chunk above was a multiple of four bytes long, so the tail starts at phase 0.
    apply_mask_bytewise(words.into_remainder(), key, 0);
}

#[inline(always)]
fn xor_word(lane: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(lane);
    let value = u64::from_ne_bytes(bytes) ^ word;
    lane.copy_from_slice(&value.to_ne_bytes());
}

/// The byte-at-a-time reference: obviously correct, used for short slices and in tests.
///
/// ```
/// use ws_proto::mask::{apply_mask, apply_mask_bytewise};
/// let mut fast = vec![7u8; 1000];
/// let mut slow = fast.clone();
/// apply_mask(&mut fast[3..], [1, 2, 3, 4], 1);
/// apply_mask_bytewise(&mut slow[3..], [1, 2, 3, 4], 1);
/// assert_eq!(fast, slow);
/// ```
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], phase: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(phase + i) & 3];
    }
}

/// The key as seen from a payload offset of `phase`.
#[inline]
fn rotate_key(key: [u8; 4], phase: usize) -> [u8; 4] {
    let mut rotated = key;
    rotated.rotate_left(phase & 3);
    rotated
}

/// Where a client gets its masking keys. RFC 6455 section 5.3 asks for keys that the
/// application sending the data cannot predict, "derived from a strong source of entropy".
pub trait MaskKeySource: Send {
    /// The key for the next frame.
    fn next_key(&mut self) -> [u8; 4];
}

/// Masking keys from the operating system's random source, fetched 64 bytes (16 keys) at a
/// time so a frame does not cost a system call.
///
/// ```
/// use ws_proto::mask::{MaskKeySource, OsRandomKeys};
/// let mut keys = OsRandomKeys::new();
/// let a = keys.next_key();
/// let b = keys.next_key();
/// # let _ = (a, b);
/// ```
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct OsRandomKeys {
    pool: [u8; 64],
    used: usize,
}

#[cfg(feature = "std")]
impl OsRandomKeys {
    /// A source with an empty pool; the first key fills it.
    pub fn new() -> Self {
        OsRandomKeys {
            pool: [0; 64],
            used: 64,
        }
    }

    fn refill(&mut self) {
        if getrandom::fill(&mut self.pool).is_err() {
            // The OS source failing is exceptional (it does not happen on Linux after boot);
            // fall back to std's randomly seeded SipHash keyed per process, still unpredictable
            // to the peer.
            use std::hash::{BuildHasher, Hasher};
            let state = std::collections::hash_map::RandomState::new();
            for (i, chunk) in self.pool.chunks_mut(8).enumerate() {
                let mut h = state.build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_ne_bytes());
            }
        }
        self.used = 0;
    }
}

#[cfg(feature = "std")]
impl Default for OsRandomKeys {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl MaskKeySource for OsRandomKeys {
    fn next_key(&mut self) -> [u8; 4] {
        if self.used + 4 > self.pool.len() {
            self.refill();
        }
        let key = [
            self.pool[self.used],
            self.pool[self.used + 1],
            self.pool[self.used + 2],
            self.pool[self.used + 3],
        ];
        self.used += 4;
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    #[test]
    fn rfc6455_5_7_masked_hello() {
        let mut payload = *b"Hello";
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn every_alignment_and_length_matches_reference() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let backing: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..16 {
            for len in 0..(backing.len() - start) {
                for phase in 0..4 {
                    let mut fast = backing.clone();
                    let mut slow = backing.clone();
                    apply_mask(&mut fast[start..start + len], key, phase);
                    apply_mask_bytewise(&mut slow[start..start + len], key, phase);
                    assert_eq!(fast, slow, "start {start} len {len} phase {phase}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn unmasking_in_any_split_equals_unmasking_whole(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            key in any::<[u8; 4]>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 0);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.push(0);
            points.push(data.len());
            points.sort_unstable();
            let mut pieces = data.clone();
            for pair in points.windows(2) {
                apply_mask(&mut pieces[pair[0]..pair[1]], key, pair[0]);
            }
            prop_assert_eq!(whole, pieces);
        }
    }
}
