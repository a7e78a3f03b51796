//! What a [`TestServer`]'s clients received, and what the server holds for them.

use super::{ClientId, Peer, TestServer};
use crate::handler::Handler;
use ws_proto::{CloseCode, CloseFrame, Event, Message};

impl<H: Handler> TestServer<H> {
    /// The next event the client received, if any (pings are answered and skipped).
    pub fn next_event(&mut self, client: ClientId) -> Option<Event> {
        self.drive();
        let events = &mut self.clients[client.0].events;
        while let Some(event) = events.pop_front() {
            if !matches!(event, Event::Ping(_)) {
                return Some(event);
            }
        }
        None
    }

    /// The messages the client received so far, without moving anything (for tests that
    /// move a [`Self::round`] at a time).
    pub fn arrived(&mut self, client: ClientId) -> Vec<Message> {
        let events = std::mem::take(&mut self.clients[client.0].events);
        events
            .into_iter()
            .filter_map(|event| match event {
                Event::Message(message) => Some(message),
                _ => None,
            })
            .collect()
    }

    /// The next message the client received, skipping other events.
    pub fn next_message(&mut self, client: ClientId) -> Option<Message> {
        while let Some(event) = self.next_event(client) {
            if let Event::Message(message) = event {
                return Some(message);
            }
        }
        None
    }

    /// Every message the client received and has not taken, in order.
    pub fn messages(&mut self, client: ClientId) -> Vec<Message> {
        std::iter::from_fn(|| self.next_message(client)).collect()
    }

    /// The close frame's code the client received, if one came.
    pub fn close_code(&mut self, client: ClientId) -> Option<CloseCode> {
        while let Some(event) = self.next_event(client) {
            if let Event::Close(frame) = event {
                return Some(frame.map_or(CloseCode::NO_STATUS, |f| f.code));
            }
        }
        None
    }

    /// The close frame the client received, if one came (code and reason).
    pub fn close_frame(&mut self, client: ClientId) -> Option<Option<CloseFrame>> {
        while let Some(event) = self.next_event(client) {
            if let Event::Close(frame) = event {
                return Some(frame);
            }
        }
        None
    }

    /// The client's WebSocket connection is open (handshake done, no close frame sent).
    pub fn is_open(&self, client: ClientId) -> bool {
        let c = &self.clients[client.0];
        !c.server_closed && matches!(&c.role, Peer::Open(conn) if conn.can_send())
    }

    /// The server closed the client's socket (whether or not the client read all before it).
    pub fn server_closed(&self, client: ClientId) -> bool {
        self.clients[client.0].server_closed
    }

    /// The server closed the client's socket, and the client has read everything before it.
    pub fn transport_closed(&self, client: ClientId) -> bool {
        let c = &self.clients[client.0];
        c.server_closed && c.to_client.is_empty()
    }

    /// Bytes the server wrote that the client has not read.
    pub fn unread(&self, client: ClientId) -> usize {
        self.clients[client.0].to_client.len()
    }

    /// The heap bytes the server holds for the client's connection: its queue, the engine's
    /// buffers (a partial message, input waiting for the queue to drain), the compression
    /// state; 0 once it is gone.
    pub fn held(&self, client: ClientId) -> usize {
        let c = &self.clients[client.0];
        c.key.map_or(0, |key| self.workers[c.worker].held(key))
    }

    /// Bytes the client wrote that the server has not read.
    pub fn unsent(&self, client: ClientId) -> usize {
        self.clients[client.0].to_server.len()
    }
}
