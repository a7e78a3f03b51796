//! Messages as the application sees them, and the UTF-8-checked byte buffer that text travels in.

use bytes::Bytes;
use core::fmt;

/// Bytes that are valid UTF-8: a cheaply cloneable string. Text messages arrive as these, so a
/// room can fan one received message out without copying or checking it again, and
/// [`Self::as_str`] costs nothing.
///
/// Every way to make one checks the bytes or takes them from a `str`: `From<String>`,
/// `From<&'static str>`, `TryFrom<Bytes>` (which checks), and the connection, which checks
/// received text as it arrives.
///
/// ```
/// use ws_proto::Utf8Bytes;
/// let text = Utf8Bytes::try_from(bytes::Bytes::from_static(b"hi")).unwrap();
/// assert_eq!(text.as_str(), "hi");
/// assert!(Utf8Bytes::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// The text as a `&str` borrowed from the shared buffer: a view of the same bytes, with no
    /// copy and no second UTF-8 check. It makes the `str` with `from_utf8_unchecked` (one of the
    /// crate's two unsafe statements; debug builds assert the bytes' validity first). That is
    /// sound because every constructor has checked the bytes or took them from a `str` (see
    /// the type's docs), the field is private, and a `Bytes` never changes what it holds.
    ///
    /// ```
    /// use ws_proto::Utf8Bytes;
    /// let text = Utf8Bytes::from(String::from("h\u{e9}llo"));
    /// assert_eq!(text.as_str(), "h\u{e9}llo");
    /// // The same bytes, not a copy of them.
    /// assert_eq!(text.as_str().as_ptr(), text.as_bytes().as_ptr());
    /// ```
    pub fn as_str(&self) -> &str {
        debug_assert!(core::str::from_utf8(&self.0).is_ok());
        #[allow(unsafe_code)]
        // SAFETY: every constructor checks its bytes (`try_from`; `from_validated`, whose
        // callers have checked them) or takes them from a `str`, the field is private, and
        // `Bytes` never changes what it holds.
        let text = unsafe { core::str::from_utf8_unchecked(&self.0) };
        text
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying shared buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Wraps bytes that the caller has already validated (the connection does so while it
    /// receives them).
    pub(crate) fn from_validated(bytes: Bytes) -> Utf8Bytes {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = crate::utf8::InvalidUtf8;
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        match simdutf8::basic::from_utf8(&bytes) {
            Ok(_) => Ok(Utf8Bytes(bytes)),
            Err(_) => Err(crate::utf8::InvalidUtf8),
        }
    }
}

impl From<alloc::string::String> for Utf8Bytes {
    fn from(s: alloc::string::String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&'static str> for Utf8Bytes {
    fn from(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl core::ops::Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two data types of a message (RFC 6455 section 5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl MessageKind {
    pub(crate) fn opcode(self) -> crate::frame::OpCode {
        match self {
            MessageKind::Text => crate::frame::OpCode::Text,
            MessageKind::Binary => crate::frame::OpCode::Binary,
        }
    }
}

/// A whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, already checked to be UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// The data type.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Text(_) => MessageKind::Text,
            Message::Binary(_) => MessageKind::Binary,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload as shared bytes.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Message::Text(t) => t.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// A piece of a message, in streaming mode ([`crate::Config::streaming`]). For text, every
/// chunk holds whole code points and is valid UTF-8 by itself: a code point split across frames
/// is held back until it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageChunk {
    /// The data type of the message this chunk belongs to.
    pub kind: MessageKind,
    /// Payload bytes (after any extension has decoded them). May be empty for an empty message.
    pub data: Bytes,
    /// The first chunk of its message.
    pub first: bool,
    /// The last chunk of its message: the message is complete and valid.
    pub last: bool,
}
