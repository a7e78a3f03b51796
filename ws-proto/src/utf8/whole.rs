//! Checking a whole text at once, as fast as the texts a WebSocket usually carries allow.
//!
//! simdutf8 checks a text in blocks of 64 bytes and copies the last, partial block into a
//! zero-padded buffer first, and that last block costs several whole ones: on the project's
//! benchmark machine (`cargo bench -p benches --bench utf8`, a mostly-ASCII text) simdutf8 took
//! 3.0 ns for 64 bytes, 5.9 ns for 128 and 15.6 ns for 125. [`is_valid`] avoids the copy where
//! it can (`text_of` took 10.5 ns for those 125 bytes, and 13.6 ns against simdutf8's 18.3 for
//! 200), by covering the text with slices whose lengths are multiples of 64:
//!
//! - the *head*: the text's whole blocks, `len - len % 64` bytes, taken from offset `s` (0 to
//!   3) such that it starts and ends where characters start, the `s` bytes before it checked
//!   on their own;
//! - the *tail*: 64 bytes ending at the end of the text, or up to 3 bytes before it (those
//!   checked on their own), again starting and ending where characters start. It begins
//!   before the head ends, so the two overlap.
//!
//! When no such offsets exist (in texts dense in multi-byte characters they often do not),
//! the text goes to simdutf8 whole; the failed search and the ASCII check before it cost
//! 0.2 to 2 ns there (Cyrillic, 16 B to 1000 B, same benchmark).
//!
//! # Why the cover decides validity
//!
//! "Starts a character" means "is not a continuation byte (`10xxxxxx`)", or is the end of
//! the text. Two facts about UTF-8 do the work: (1) in a valid string every byte that is not a
//! continuation byte begins a character, so cutting a valid string at such a byte leaves two
//! valid strings; (2) two valid strings joined are valid.
//!
//! - If the text is valid, every piece starts and ends at a character boundary, so by (1)
//!   each piece is valid: the check accepts.
//! - If every piece is valid, the text is: the prefix and the head are adjacent, so by (2) the
//!   text up to the head's end is valid. The tail starts at a non-continuation byte inside
//!   that stretch, so by (1) the text before the tail's start is valid, and by (2) so is the
//!   text up to the tail's end; the bytes after the tail are a valid piece starting at a
//!   non-continuation byte, and (2) once more covers the whole.
//!
//! # The unsafe block
//!
//! [`text_of`] returns the `str` it has just checked without checking it a second time, which
//! needs `core::str::from_utf8_unchecked`: a second check would cost as much as the first and
//! undo the point. It is one of the crate's two unsafe statements (the other is
//! `Utf8Bytes::as_str`, over bytes its constructors checked). Its invariant: the bytes passed
//! the ASCII check or [`is_valid`] on the line before. Debug builds (all tests) check again
//! with the standard library; the property tests below and the `utf8_differential` fuzz target
//! compare both functions with the standard library on arbitrary and nearly valid input.

use super::InvalidUtf8;

/// simdutf8's block size.
const BLOCK: usize = 64;

/// How far a piece may be shifted to find a character start: a UTF-8 character has at most
/// three continuation bytes.
const MAX_SHIFT: usize = 3;

/// Whether `b` starts a character: anything but a continuation byte.
#[inline]
fn starts_char(b: u8) -> bool {
    (b as i8) >= -0x40
}

/// simdutf8's verdict on a slice.
#[inline]
fn simd_valid(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// Whether `bytes` is UTF-8 (see the [module docs](self) for how).
#[inline]
pub(crate) fn is_valid(bytes: &[u8]) -> bool {
    by_cover(bytes).unwrap_or_else(|| simd_valid(bytes))
}

/// The verdict from the head and tail cover, or `None` if the text needs none (shorter than a
/// block or a whole number of blocks) or offers none.
fn by_cover(bytes: &[u8]) -> Option<bool> {
    let len = bytes.len();
    let rest = len % BLOCK;
    if len < BLOCK || rest == 0 {
        return None;
    }
    let body = len - rest;
    let starts = |i: usize| i == len || starts_char(bytes[i]);
    let s = (0..=rest.min(MAX_SHIFT)).find(|&s| starts(s) && starts(s + body))?;
    let head_end = s + body;
    let tail_ok = if head_end == len {
        true
    } else {
        let j = (0..=MAX_SHIFT.min(len - BLOCK))
            .find(|&j| starts(len - BLOCK - j) && starts(len - j))?;
        simd_valid(&bytes[len - BLOCK - j..len - j])
            && core::str::from_utf8(&bytes[len - j..]).is_ok()
    };
    Some(tail_ok && core::str::from_utf8(&bytes[..s]).is_ok() && simd_valid(&bytes[s..head_end]))
}

/// Checks a whole text and returns it as a `str`.
///
/// ASCII, the usual content of short texts, is recognised first by the standard library's
/// word-at-a-time check (simdutf8 hands texts under 64 bytes to the standard library's
/// byte-wise check, which was the cost of short texts: 100,000 texts of 16 bytes received in
/// place took 3.3-3.8 ms with it and 1.1 ms with the ASCII check first, codec benchmark).
/// Other text is checked in slices of whole 64-byte blocks where the text allows (this saves
/// simdutf8 the slow copy of a partial last block), else by simdutf8 whole.
///
/// ```
/// use ws_proto::utf8::{text_of, InvalidUtf8};
/// assert_eq!(text_of(b"hello"), Ok("hello"));
/// assert_eq!(text_of("Grüße".as_bytes()), Ok("Grüße"));
/// assert_eq!(text_of(b"\xce\xba\xe0\x80"), Err(InvalidUtf8));
/// ```
pub fn text_of(bytes: &[u8]) -> Result<&str, InvalidUtf8> {
    if !(bytes.is_ascii() || is_valid(bytes)) {
        return Err(InvalidUtf8);
    }
    debug_assert!(core::str::from_utf8(bytes).is_ok(), "{bytes:02x?}");
    #[allow(unsafe_code)]
    // SAFETY: the check above found `bytes` to be UTF-8 (see the module docs).
    let text = unsafe { core::str::from_utf8_unchecked(bytes) };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A text of `len` bytes repeating `pattern`, cut at a character and padded with 'x'.
    fn text(pattern: &str, len: usize) -> Vec<u8> {
        let mut t = String::new();
        while t.len() < len {
            t.push_str(pattern);
        }
        let mut cut = len;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        while t.len() < len {
            t.push('x');
        }
        t.into_bytes()
    }

    const PATTERNS: [&str; 4] = [
        "The quick brown fox jumps over the lazy dog; Grüße, café, naïve. ",
        "Съешь же ещё этих мягких французских булок, да выпей чаю. ",
        "我能吞下玻璃而不伤身体。私はガラスを食べられます。",
        "emoji 😀 and 𝄞 clefs, € signs ",
    ];

    fn agrees_with_std(bytes: &[u8]) {
        let std = core::str::from_utf8(bytes).is_ok();
        assert_eq!(is_valid(bytes), std, "is_valid on {bytes:02x?}");
        assert_eq!(text_of(bytes).is_ok(), std, "text_of on {bytes:02x?}");
        if let Ok(text) = text_of(bytes) {
            assert_eq!(text.as_bytes(), bytes);
        }
    }

    /// The cover is taken where it applies: a mostly-ASCII text of 125 bytes (a character cut
    /// at byte 64, so the head is shifted) and one of 200 bytes.
    #[test]
    fn the_cover_applies_to_mostly_ascii_texts() {
        for len in [125, 200, 300] {
            let t = text(PATTERNS[0], len);
            assert_eq!(by_cover(&t), Some(true), "length {len}");
        }
        // Not needed for whole blocks or short texts.
        assert_eq!(by_cover(&text(PATTERNS[0], 128)), None);
        assert_eq!(by_cover(&text(PATTERNS[0], 63)), None);
    }

    /// Every byte of texts in four scripts and of every length from 0 to 200, changed in
    /// three ways (another ASCII letter, a continuation byte, a lead byte): both functions
    /// agree with the standard library, whichever pieces the change falls in (prefix, head,
    /// overlap, tail, suffix).
    #[test]
    fn rfc6455_8_1_one_changed_byte_anywhere_is_judged_as_the_standard_library_does() {
        for pattern in PATTERNS {
            for len in 0..=200 {
                let t = text(pattern, len);
                agrees_with_std(&t);
                for i in 0..len {
                    for change in [|b: u8| b ^ 0x40, |_| 0x80, |_| 0xe2] {
                        let mut bad = t.clone();
                        bad[i] = change(bad[i]);
                        agrees_with_std(&bad);
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_std_on_any_bytes(
            data in proptest::collection::vec(
                prop_oneof![any::<u8>(), 0x20u8..0x7f, 0x80u8..0xc0],
                0..400,
            ),
        ) {
            agrees_with_std(&data);
        }

        #[test]
        fn agrees_with_std_on_strings_with_a_changed_byte(
            s in "\\PC{0,300}",
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = s.into_bytes();
            agrees_with_std(&bytes);
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
                agrees_with_std(&bytes);
            }
        }
    }
}
