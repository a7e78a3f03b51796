//! Incremental UTF-8 validation (RFC 6455 section 8.1).
//!
//! A text message may arrive in many frames, and a frame in many reads; a code point may be
//! split anywhere. [`Utf8Validator`] accepts the pieces in order and fails on the piece that
//! holds the first byte that can no longer be part of valid UTF-8, so an invalid message is
//! refused before it completes (a truncated sequence such as `F4 90` is refused at once, not
//! when the message ends). Whole pieces are checked with simdutf8's SIMD validator; only the
//! at most three bytes of a code point split across pieces are carried over.

mod whole;

pub use whole::text_of;

/// The state of an incremental UTF-8 check: the bytes of an unfinished code point.
///
/// ```
/// use ws_proto::utf8::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// let euro = "€".as_bytes(); // e2 82 ac
/// assert!(v.feed(&euro[..1]).is_ok());
/// assert!(v.feed(&euro[1..]).is_ok());
/// assert!(v.finish().is_ok());
///
/// let mut v = Utf8Validator::new();
/// assert!(v.feed(&[0xf4]).is_ok()); // could still become U+10xxxx
/// assert!(v.feed(&[0x90]).is_err()); // beyond U+10FFFF: fails now
/// ```
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// Invalid UTF-8 was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl core::fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Self {
        Utf8Validator {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Checks the next piece of the text. Fails as soon as the bytes seen so far cannot begin
    /// valid UTF-8; an unfinished code point at the end of `data` is kept for the next piece.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let have = self.pending_len as usize;
            let need = sequence_len(self.pending[0]);
            let take = (need - have).min(data.len());
            self.pending[have..have + take].copy_from_slice(&data[..take]);
            self.pending_len += take as u8;
            data = &data[take..];
            match simdutf8::compat::from_utf8(&self.pending[..self.pending_len as usize]) {
                Ok(_) => self.pending_len = 0,
                // Still unfinished: `data` is used up, wait for more.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(InvalidUtf8),
            }
        }
        if whole::is_valid(data) {
            return Ok(());
        }
        // The slow path finds out whether the failure is a real error or a code point cut off
        // at the end of this piece.
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Ends the text: fails if it stops in the middle of a code point. Resets the validator.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }

    /// How many bytes of an unfinished code point are waiting for the next piece (0 to 3).
    pub fn pending_len(&self) -> usize {
        self.pending_len as usize
    }

    /// Forgets any unfinished code point.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }
}

/// The length of the sequence a lead byte starts. Only called on bytes that simdutf8 already
/// accepted as the start of an unfinished sequence, so the lead byte is a valid one.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn check_split(data: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            v.feed(&data[start..cut])?;
            start = cut;
        }
        v.feed(&data[start..])?;
        v.finish()
    }

    #[test]
    fn rfc6455_8_1_valid_text_split_inside_code_points() {
        let text = "κόσμε €𝄞 hello".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert!(check_split(text, &[i, j]).is_ok(), "cuts {i} {j}");
            }
        }
    }

    #[test]
    fn rfc6455_8_1_fails_at_first_invalid_byte_not_at_end() {
        // Autobahn 6.4.1: a valid prefix then F4 90 80 80 (above U+10FFFF).
        let mut v = Utf8Validator::new();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        assert!(v.feed(&[0xf4]).is_ok());
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
    }

    #[test]
    fn rfc6455_8_1_truncated_text_fails_at_finish() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(&[0xe2, 0x82]).is_ok());
        assert_eq!(v.pending_len(), 2);
        assert_eq!(v.finish(), Err(InvalidUtf8));
        // finish resets.
        assert!(v.feed(b"ok").is_ok());
        assert!(v.finish().is_ok());
    }

    #[test]
    fn surrogates_and_overlongs_are_invalid() {
        for bad in [
            &[0xed, 0xa0, 0x80][..],
            &[0xc0, 0xaf],
            &[0xe0, 0x80, 0xaf],
            &[0xff],
        ] {
            assert!(check_split(bad, &[]).is_err(), "{bad:02x?}");
            for i in 0..bad.len() {
                assert!(check_split(bad, &[i]).is_err(), "{bad:02x?} cut {i}");
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_std_for_any_split(
            data in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(0x80u8), Just(0xe2), Just(0xf0), Just(0x9f)], 0..64),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.sort_unstable();
            let expected = core::str::from_utf8(&data).is_ok();
            prop_assert_eq!(check_split(&data, &points).is_ok(), expected);
        }

        #[test]
        fn valid_strings_pass_for_any_split(
            s in "\\PC{0,40}",
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let data = s.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.sort_unstable();
            prop_assert!(check_split(data, &points).is_ok());
        }
    }
}
