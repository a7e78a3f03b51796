//! Receiving in place: whole messages handed out as slices of the caller's own read buffer.
//!
//! [`Connection::receive`] copies every message into a buffer of its own and delivers it as an
//! owned [`Message`](crate::Message), which the caller may keep. A caller that only looks at
//! each message before its next read (an echo or a relay, a parser that builds its own values)
//! can instead lend the engine the buffer it read into: [`Connection::receive_in_place`]
//! unmasks each message that arrived whole, in one frame, where it lies, checks it, and hands it
//! out as a `&[u8]` or `&str` borrowed from that buffer: no copy, no allocation, no reference
//! count.
//!
//! Everything else in the input (fragments, control frames, a message cut off by the end of the
//! read, frames an extension decodes, streaming mode) takes the ordinary path and comes out,
//! in order, as an owned [`Event`]. The rules checked are the same on both paths: what the
//! ordinary path would refuse, this one refuses with the same [`ProtocolViolation`] and close
//! code.

use crate::connection::{Connection, Event};
use crate::error::ProtocolViolation;
use crate::frame::{FrameHeader, OpCode};
use crate::mask::apply_mask;
use crate::utf8::text_of;

/// What [`InPlace::next_event`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InPlaceEvent<'b> {
    /// A whole text message, unmasked and checked as UTF-8 in the caller's buffer.
    Text(&'b str),
    /// A whole binary message, unmasked in the caller's buffer.
    Binary(&'b [u8]),
    /// Any other event, exactly as [`Connection::poll_event`] reports it: messages that
    /// arrived in fragments or across reads, pings, pongs, the peer's close.
    Other(Event),
}

/// One read's input being taken in place; see the [module docs](self).
///
/// Dropping it before [`Self::next_event`] returned `None` hands the rest of the input to
/// [`Connection::receive`]: nothing is lost, the rest comes out of
/// [`Connection::poll_event`] as owned events.
///
/// ```
/// use ws_proto::in_place::InPlaceEvent;
/// use ws_proto::{Config, Connection};
/// let mut server = Connection::server(Config::default());
/// // Two masked text frames from a client, "Hello" twice (RFC 6455 section 5.7), in one read.
/// let frame = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
/// let mut read_buf = [frame, frame].concat();
/// let mut input = server.receive_in_place(&mut read_buf);
/// while let Some(event) = input.next_event().unwrap() {
///     match event {
///         // `text` borrows `read_buf`, not `input`, so the reply can be sent right away.
///         InPlaceEvent::Text(text) => input.connection().send_text(text).unwrap(),
///         other => panic!("unexpected {other:?}"),
///     }
/// }
/// drop(input); // gives the connection back
/// assert_eq!(&server.poll_transmit().unwrap()[..], b"\x81\x05Hello\x81\x05Hello");
/// ```
#[must_use = "the input is taken only as its events are asked for; dropped, it goes to `receive`"]
#[derive(Debug)]
pub struct InPlace<'c, 'b> {
    conn: &'c mut Connection,
    /// The input not taken yet.
    rest: &'b mut [u8],
}

impl Connection {
    /// Takes one read's input (`data`, the bytes just read into the caller's buffer, in any
    /// amount, split anywhere), handing whole single-frame messages out in place; see the
    /// [`in_place`](crate::in_place) module. Ask for the events with [`InPlace::next_event`]
    /// until it returns `None`.
    ///
    /// The buffer is modified: payloads are unmasked where they lie.
    pub fn receive_in_place<'c, 'b>(&'c mut self, data: &'b mut [u8]) -> InPlace<'c, 'b> {
        self.begin_read(data.len());
        InPlace {
            conn: self,
            rest: data,
        }
    }
}

impl<'c, 'b> InPlace<'c, 'b> {
    /// The next event of this input, in the order the frames arrived; `None` once all of it is
    /// taken.
    ///
    /// On a protocol violation the connection fails as with [`Connection::receive`] (a close
    /// frame with the rule's code is queued, the rest of the input is discarded) and the
    /// violation is returned; after it, this returns `None`.
    #[inline]
    pub fn next_event(&mut self) -> Result<Option<InPlaceEvent<'b>>, ProtocolViolation> {
        // The common case first, inlined into the caller's loop: a whole message next.
        if !self.conn.has_pending_events() && self.conn.is_reading() {
            if let Some(message) = self.take_whole_message() {
                return message.map(Some);
            }
        }
        self.next_event_in_order()
    }

    /// [`Self::next_event`] for everything but a whole message found first.
    fn next_event_in_order(&mut self) -> Result<Option<InPlaceEvent<'b>>, ProtocolViolation> {
        loop {
            if self.conn.has_pending_events() {
                if let Some(event) = self.conn.poll_event() {
                    return Ok(Some(InPlaceEvent::Other(event)));
                }
            }
            if !self.conn.is_reading() {
                // After the peer's close frame or a failure, input is discarded (RFC 6455
                // section 5.5.1).
                self.rest = &mut [];
            }
            if self.rest.is_empty() {
                return Ok(None);
            }
            if let Some(message) = self.take_whole_message() {
                return message.map(Some);
            }
            let taken = self
                .conn
                .receive_checked(self.rest, true)
                .inspect_err(|_| {
                    self.rest = &mut [];
                })?;
            self.rest = &mut core::mem::take(&mut self.rest)[taken..];
        }
    }

    /// Stops reading and gives back the input not taken yet, without handing it to
    /// [`Connection::receive`] as dropping the reader would. It must be given to the
    /// connection ([`Connection::receive_in_place`] or [`Connection::receive`]) before any
    /// later input; a caller uses this to act on what it has taken (outside the reader's
    /// borrow) and then go on reading where it stopped.
    pub fn into_rest(mut self) -> &'b mut [u8] {
        core::mem::take(&mut self.rest)
    }

    /// The connection, to send replies while its input is read. The messages handed out
    /// borrow the read buffer, not this reader, so they can be passed to its send methods.
    ///
    /// Input given to the connection directly ([`Connection::receive`]) while this reader
    /// holds more counts as arriving before that rest.
    pub fn connection(&mut self) -> &mut Connection {
        self.conn
    }

    /// Takes the next frame in place if it is a whole plain message, the same kind that
    /// [`Connection::receive`] takes in one step, with the same checks.
    #[inline]
    fn take_whole_message(&mut self) -> Option<Result<InPlaceEvent<'b>, ProtocolViolation>> {
        if !self.conn.at_frame_boundary() {
            return None;
        }
        // A header that fails to decode is left to the ordinary path, which reports it.
        let Ok(Some((header, header_len))) = FrameHeader::decode(self.rest) else {
            return None;
        };
        if header.payload_len > (self.rest.len() - header_len) as u64
            || !self.conn.is_plain_whole_message(&header)
        {
            return None;
        }
        let end = header_len + header.payload_len as usize;
        let (frame, rest) = core::mem::take(&mut self.rest).split_at_mut(end);
        self.rest = rest;
        let payload = &mut frame[header_len..];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        let payload: &'b [u8] = payload;
        if header.opcode != OpCode::Text {
            return Some(Ok(InPlaceEvent::Binary(payload)));
        }
        Some(match text_of(payload) {
            Ok(text) => Ok(InPlaceEvent::Text(text)),
            Err(_) => {
                self.rest = &mut [];
                Err(self.conn.fail_for(ProtocolViolation::InvalidUtf8))
            }
        })
    }
}

impl Drop for InPlace<'_, '_> {
    fn drop(&mut self) {
        if !self.rest.is_empty() {
            // A violation fails the connection, which the caller sees in its state.
            let _ = self.conn.receive(self.rest);
        }
    }
}
