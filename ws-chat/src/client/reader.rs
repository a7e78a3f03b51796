//! The server's messages read into events: parsed, then judged against the rooms' positions
//! (a duplicate dropped, a gap reported before the message after it). A pure function of the
//! messages that come in and the rooms' table, with no connection in it.

use super::events::{position_of, ChatEvent, ChatMessage, Incoming};
use super::rooms::{JoinedVerdict, Rooms, Verdict};
use std::sync::Arc;

/// Reads one connection's messages after another's, for one client.
#[derive(Debug)]
pub(crate) struct Reader {
    rooms: Arc<Rooms>,
    duplicates: u64,
    /// The message that follows a gap reported first.
    after_gap: Option<ChatMessage>,
}

impl Reader {
    pub(crate) fn new(rooms: Arc<Rooms>) -> Reader {
        Reader {
            rooms,
            duplicates: 0,
            after_gap: None,
        }
    }

    /// The event held back by the last [`Self::read`], if any: take it before reading more.
    pub(crate) fn pending(&mut self) -> Option<ChatEvent> {
        self.after_gap.take().map(ChatEvent::Message)
    }

    /// Room messages dropped so far as delivered before.
    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// A server message as an event, or `None` when it is dropped (a duplicate, a room
    /// left).
    pub(crate) fn read(&mut self, text: &str) -> Option<ChatEvent> {
        let Some(incoming) = Incoming::parse(text) else {
            return Some(ChatEvent::Unrecognized(text.to_string()));
        };
        Some(match incoming {
            Incoming::Message(message) => {
                match self
                    .rooms
                    .on_message(&message.room, message.position.as_ref())
                {
                    Verdict::Deliver => ChatEvent::Message(message),
                    // The gap first; the message with the next call.
                    Verdict::DeliverAfterGap(gap) => {
                        self.after_gap = Some(message);
                        ChatEvent::Gap(gap)
                    }
                    Verdict::Duplicate => {
                        self.duplicates += 1;
                        return None;
                    }
                    Verdict::NotJoined => return None,
                }
            }
            Incoming::Joined {
                room,
                epoch,
                offset,
                recovered,
                missed,
                read,
            } => {
                let now = position_of(epoch.as_deref(), offset);
                match self.rooms.on_joined(&room, now, recovered) {
                    JoinedVerdict::Entered(position) => ChatEvent::Joined {
                        room,
                        position,
                        read,
                    },
                    JoinedVerdict::Recovered => ChatEvent::Recovered { room, missed },
                    JoinedVerdict::Gap(gap) => ChatEvent::Gap(gap),
                    JoinedVerdict::NotJoined => return None,
                }
            }
            Incoming::Welcome { user, guest, name } => ChatEvent::Welcome { user, guest, name },
            Incoming::Read { room, user, offset } => ChatEvent::Read { room, user, offset },
            Incoming::Direct(direct) => ChatEvent::Direct(direct),
            Incoming::Ack { id, msg_id, ts } => ChatEvent::Ack { id, msg_id, ts },
            Incoming::Presence {
                room,
                user,
                name,
                event,
            } => ChatEvent::Presence {
                room,
                user,
                name,
                joined: event == "joined",
            },
            Incoming::Typing { room, user, name } => ChatEvent::Typing { room, user, name },
            Incoming::History { room, messages } => ChatEvent::History { room, messages },
            Incoming::Members { room, users } => ChatEvent::Members { room, users },
            Incoming::Error { code, message, id } => ChatEvent::Error { code, message, id },
        })
    }
}
