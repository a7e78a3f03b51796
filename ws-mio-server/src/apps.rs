//! The server's own applications: the echo of `--mode echo` and the broadcast of
//! `--mode broadcast`.

use crate::context::{Context, MessageRef};
use crate::handler::{Handler, HttpResponse, OpenDecision, OpenRequest};
use ws_proto::handshake::server::Request;
use ws_proto::Message;

/// Echo every message back: the application of `--mode echo`, which the Autobahn run and the
/// benchmarks test.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Handler for Echo {
    type Conn = ();

    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }

    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        ctx.reply(message);
    }

    fn borrows_messages(&self) -> bool {
        true
    }

    /// Every path is a WebSocket endpoint: a plain request gets 426.
    fn on_http(&self, _: &Request) -> HttpResponse {
        HttpResponse::upgrade_required()
    }

    fn on_message_ref(&self, ctx: &mut Context<'_>, _: &mut (), message: MessageRef<'_>) {
        ctx.reply_ref(message);
    }
}

/// Publish every message to every open connection, the sender included, through one room: the
/// application of `--mode broadcast`, the plain fanout the benchmarks compare with other
/// servers (the chat adds its JSON protocol, history and presence on top of the same path).
#[derive(Debug, Default, Clone, Copy)]
pub struct Broadcast;

impl Broadcast {
    /// The room every connection joins.
    pub const ROOM: &'static str = "broadcast";
}

impl Handler for Broadcast {
    type Conn = ();

    fn on_open(&self, _: &OpenRequest<'_>) -> OpenDecision<()> {
        OpenDecision::accept(())
    }

    fn on_connect(&self, ctx: &mut Context<'_>, _: &mut ()) {
        ctx.join(Self::ROOM);
    }

    fn on_message(&self, ctx: &mut Context<'_>, _: &mut (), message: Message) {
        ctx.publish(Self::ROOM, message);
    }

    /// Every path is a WebSocket endpoint: a plain request gets 426.
    fn on_http(&self, _: &Request) -> HttpResponse {
        HttpResponse::upgrade_required()
    }
}
