//! What each request of a client does: joining and leaving rooms, messages to a room or a
//! user, typing, history, who is in a room.

use crate::auth::valid_name;
use crate::dedup::{Claim, Taken};
use crate::protocol::{ClientMessage, ErrorCode, RoomMessage, ServerMessage};
use crate::{error, presence, publish, send, Chat};
use std::sync::atomic::Ordering;
use ws_mio_server::history::{Epoch, Position};
use ws_mio_server::rooms::Join;
use ws_mio_server::Context;
use ws_proto::Message;

impl Chat {
    /// One message of `who`: the user, and its display name.
    pub(crate) fn handle(
        &self,
        ctx: &mut Context<'_>,
        who: (&str, Option<&str>),
        message: ClientMessage,
    ) {
        let (user, name) = who;
        let id = ctx.id();
        match message {
            ClientMessage::Join {
                room,
                epoch,
                offset,
            } => {
                if !valid_name(&room) {
                    return error(
                        ctx,
                        ErrorCode::InvalidMessage,
                        "room names are 1 to 32 letters, digits, - _ .",
                        None,
                    );
                }
                let since = match (epoch, offset) {
                    (None, None) => None,
                    (Some(epoch), Some(offset)) => match Epoch::parse(&epoch) {
                        Some(epoch) => Some(Position { epoch, offset }),
                        None => {
                            let reason = "an epoch is 1 to 32 letters and digits";
                            return error(ctx, ErrorCode::InvalidMessage, reason, None);
                        }
                    },
                    _ => {
                        let reason = "epoch and offset come together";
                        return error(ctx, ErrorCode::InvalidMessage, reason, None);
                    }
                };
                match ctx.join_with_history(&room, since) {
                    Join::Joined { first_of_user } => {
                        if first_of_user {
                            presence(ctx, &room, who, "joined");
                        }
                    }
                    Join::AlreadyMember => {}
                    Join::TooManyRooms => error(ctx, ErrorCode::Forbidden, "too many rooms", None),
                    Join::RoomFull => error(ctx, ErrorCode::Forbidden, "the room is full", None),
                    Join::TooManyJoined => {
                        error(ctx, ErrorCode::Forbidden, "in too many rooms", None)
                    }
                }
            }
            ClientMessage::Leave { room } => match ctx.leave(&room) {
                None => error(ctx, ErrorCode::NotFound, "not in that room", None),
                Some(left) => {
                    if left.last_of_user {
                        presence(ctx, &room, who, "left");
                    }
                }
            },
            ClientMessage::Send {
                room,
                text,
                id: client_id,
            } => {
                if !ctx.in_room(&room) {
                    return error(
                        ctx,
                        ErrorCode::Forbidden,
                        "join the room before sending to it",
                        client_id.as_deref(),
                    );
                }
                let taken = match self.claim(ctx, user, client_id.as_deref()) {
                    Claim::New(taken) => taken,
                    Claim::Retry(taken) => return self.ack(ctx, client_id.as_deref(), taken),
                };
                let message = RoomMessage {
                    id: taken.msg_id,
                    room,
                    from: user.to_string(),
                    name: name.map(str::to_string),
                    text,
                    ts: taken.ts,
                };
                let json = Message::Text(ServerMessage::Message(&message).to_json().into());
                match client_id.as_deref() {
                    // A retry that reached another instance is dropped there (the window of
                    // this instance's own ids is `dedup`'s).
                    Some(id) => {
                        let key = format!("{user}\u{0}{id}");
                        ctx.publish_recorded_once(&message.room, json, &key);
                    }
                    None => ctx.publish_recorded(&message.room, json),
                }
                self.ack(ctx, client_id.as_deref(), taken);
            }
            ClientMessage::Direct {
                to,
                text,
                id: client_id,
            } => {
                // Across instances a user may be connected elsewhere: only a lone instance
                // knows for sure that nobody is there to receive it.
                let here = self.users.lock(&to).contains_key(to.as_str());
                if !here && !ctx.spans_instances() {
                    return error(
                        ctx,
                        ErrorCode::NotFound,
                        "no such user online",
                        client_id.as_deref(),
                    );
                }
                let taken = match self.claim(ctx, user, client_id.as_deref()) {
                    Claim::New(taken) => taken,
                    Claim::Retry(taken) => return self.ack(ctx, client_id.as_deref(), taken),
                };
                let direct = ServerMessage::Direct {
                    id: taken.msg_id,
                    from: user,
                    name,
                    to: &to,
                    text: &text,
                    ts: taken.ts,
                };
                // Every connection of the user, on every worker and instance, encoded once.
                ctx.send_to_user(&to, Message::Text(direct.to_json().into()));
                self.ack(ctx, client_id.as_deref(), taken);
            }
            ClientMessage::Typing { room } => {
                if !ctx.in_room(&room) {
                    return error(ctx, ErrorCode::Forbidden, "join the room first", None);
                }
                let typing = ServerMessage::Typing {
                    room: &room,
                    user,
                    name,
                };
                publish(ctx, &room, &typing);
            }
            ClientMessage::History { room, limit } => {
                // The answer comes to `on_history`.
                ctx.read_history(&room, limit.unwrap_or(usize::MAX));
            }
            // Taken by `on_message`, which has the connection's state.
            ClientMessage::Refresh { .. } | ClientMessage::Read { .. } => {}
            ClientMessage::Who { room } => {
                let Some(users) = ctx.room_users(&room) else {
                    return error(ctx, ErrorCode::NotFound, "no such room", None);
                };
                let users = users.iter().map(|u| &**u).collect();
                send(ctx, id, &ServerMessage::Members { room: &room, users });
            }
        }
    }

    /// A new message's id and time, or, for a client id this user's message already had
    /// within the window, that message's (a retry).
    fn claim(&self, ctx: &Context<'_>, user: &str, client_id: Option<&str>) -> Claim {
        let take = || Taken {
            msg_id: self.next_message_id.fetch_add(1, Ordering::Relaxed) + 1,
            ts: self.now_ms(),
        };
        match client_id {
            Some(client_id) => self.recent_ids.claim(user, client_id, ctx.now(), take),
            None => Claim::New(take()),
        }
    }

    fn ack(&self, ctx: &mut Context<'_>, client_id: Option<&str>, taken: Taken) {
        let ack = ServerMessage::Ack {
            id: client_id,
            msg_id: taken.msg_id,
            ts: taken.ts,
        };
        send(ctx, ctx.id(), &ack);
    }
}
