//! `Utf8Validator` fed in arbitrary pieces, and `text_of` on the whole, against
//! `std::str::from_utf8` on the whole.
//!
//! The precise property: a piece fails exactly when it holds the first byte at which the text
//! so far stops being a prefix of some valid UTF-8 string; every earlier piece passes, with the
//! bytes of an unfinished code point (0 to 3) held as pending; `finish` fails exactly when the
//! whole text is not valid.

use crate::chunks;
use ws_proto::utf8::{text_of, Utf8Validator};

/// The index of the first byte at which `text[..=i]` is no longer a prefix of valid UTF-8, if
/// there is one.
pub fn first_invalid_byte(text: &[u8]) -> Option<usize> {
    let e = std::str::from_utf8(text).err()?;
    let n = e.error_len()?;
    let start = e.valid_up_to();
    // std reports the longest start of a sequence that could have continued, then fails on the
    // byte after it; a lead byte that can start nothing fails by itself.
    match std::str::from_utf8(&text[start..start + n]) {
        Err(sub) if sub.error_len().is_none() => Some(start + n),
        _ => Some(start),
    }
}

/// The bytes of an unfinished code point at the end of `prefix`, a valid UTF-8 prefix.
pub fn pending_len(prefix: &[u8]) -> usize {
    for back in 1..=3.min(prefix.len()) {
        let b = prefix[prefix.len() - back];
        if b & 0xc0 != 0x80 {
            let len = match b {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            return if len > back { back } else { 0 };
        }
    }
    0
}

/// Input: a chunk spec, then the text.
pub fn run(data: &[u8]) {
    let pieces = chunks::split(data);
    let text = pieces.concat();
    let first_bad = first_invalid_byte(&text);
    let valid = std::str::from_utf8(&text).is_ok();

    // The whole-text check (its cover of 64-byte windows, and the `str` it hands out
    // unchecked) agrees with the standard library.
    match text_of(&text) {
        Ok(s) => assert!(
            valid && s.as_bytes() == text,
            "text_of accepted {text:02x?}"
        ),
        Err(_) => assert!(!valid, "text_of refused {text:02x?}"),
    }

    let mut v = Utf8Validator::new();
    let mut end = 0;
    let mut failed = false;
    for piece in &pieces {
        let start = end;
        end += piece.len();
        let result = v.feed(piece);
        let holds_first_bad = first_bad.is_some_and(|f| start <= f && f < end);
        assert_eq!(
            result.is_err(),
            holds_first_bad,
            "piece {start}..{end} of {text:02x?}, first invalid byte {first_bad:?}"
        );
        if result.is_err() {
            failed = true;
            break;
        }
        assert_eq!(
            v.pending_len(),
            pending_len(&text[..end]),
            "after {end} bytes"
        );
    }
    if failed {
        // After a failure the caller resets; the validator must then work as new.
        v.reset();
        assert_eq!(v.pending_len(), 0);
    } else {
        assert_eq!(v.finish().is_ok(), valid, "finish on {text:02x?}");
    }
    assert_eq!(v.pending_len(), 0, "finish and reset leave nothing pending");
    let again = v.feed(&text).and_then(|()| v.finish());
    assert_eq!(again.is_ok(), valid, "whole text after reuse");
}
