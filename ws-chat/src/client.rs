//! A chat client on tokio that stays connected and loses no message it can get back: built on
//! ws-tokio's reconnecting client, it speaks `chat.v1`, keeps per room the position (epoch
//! and offset) of the last message it delivered, and on every new connection joins each room
//! again from there, so that the server sends what was missed before the live messages.
//! Messages delivered already (replayed again) are dropped; what the server can no longer
//! send (its history trimmed or lost, a new epoch) is reported as a [`Gap`], never skipped
//! silently.
//!
//! The modules: `rooms` (the positions, and the judgement of each message against them),
//! `reader` (the server's text to events, through `rooms`), `events` (what the application
//! receives), `error` (refused requests); this file is the client.
//!
//! ```no_run
//! use ws_chat::client::{ChatClient, ChatEvent, ChatOptions};
//!
//! # async fn run() -> Result<(), ws_chat::client::ChatError> {
//! let options = ChatOptions::new("ws://127.0.0.1:9001/ws?name=ann")?;
//! let mut client = ChatClient::connect(options);
//! client.join("lobby").await?;
//! client.say("lobby", "hello").await?;
//! while let Some(event) = client.recv().await {
//!     match event {
//!         ChatEvent::Message(m) => println!("{} {}: {}", m.room, m.from, m.text),
//!         ChatEvent::Gap(gap) => println!("{}: some messages are missing", gap.room),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod error;
mod events;
mod reader;
mod rooms;
#[cfg(test)]
mod tests;

pub use error::ChatError;
pub use events::{ChatEvent, ChatMessage, DirectMessage};
pub use rooms::{Gap, GapReason};
pub use ws_mio_server::history::{Epoch, Position};
/// The connection's events ([`ChatEvent::Connection`]) and the retries' delays
/// ([`ChatOptions::backoff`]), from ws-tokio.
pub use ws_tokio::reconnect::{Backoff, ClientEvent};

use crate::auth::valid_name;
use crate::protocol::{ClientMessage, SUBPROTOCOL};
use reader::Reader;
use rooms::{to_json, Rooms};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use ws_tokio::reconnect::{QueuePolicy, ReconnectOptions, ReconnectingClient};
use ws_tokio::{ClientOptions, ClientStream, Config, Message};

/// How a [`ChatClient`] connects.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    client: ClientOptions,
    max_rooms: usize,
    backoff: Backoff,
    queue: usize,
}

impl ChatOptions {
    /// Connects to the chat's WebSocket URL (`ws://host:port/ws`, or `wss://`), offering
    /// `chat.v1`. Defaults: at most 64 rooms (the server's default per connection), ws-tokio's
    /// backoff (0.5 s doubling to 30 s, with jitter), a send queue of 1024 messages that
    /// makes senders wait when full, and a heartbeat ping every 15 s.
    pub fn new(url: &str) -> Result<ChatOptions, ChatError> {
        let config = Config {
            ping_interval: Some(Duration::from_secs(15)),
            ..Config::default()
        };
        let client = ClientOptions::new(url)
            .map_err(ChatError::Options)?
            .protocols(&[SUBPROTOCOL])
            .config(config);
        Ok(ChatOptions {
            client,
            max_rooms: 64,
            backoff: Backoff::default(),
            queue: 1024,
        })
    }

    /// Sends a token (an HS256 JWT, for a chat run with `--jwt-secret`) in an `Authorization:
    /// Bearer` header on every connection.
    pub fn token(mut self, token: &str) -> ChatOptions {
        self.client = self
            .client
            .header("Authorization", &format!("Bearer {token}"));
        self
    }

    /// The most rooms the client may be in at once.
    pub fn max_rooms(mut self, max: usize) -> ChatOptions {
        self.max_rooms = max.max(1);
        self
    }

    /// The delays between connection attempts.
    pub fn backoff(mut self, backoff: Backoff) -> ChatOptions {
        self.backoff = backoff;
        self
    }

    /// The send queue's size in messages (what is held while disconnected).
    pub fn queue(mut self, capacity: usize) -> ChatOptions {
        self.queue = capacity.max(1);
        self
    }

    /// The stream's configuration: limits, heartbeat, handshake timeout.
    pub fn config(mut self, config: Config) -> ChatOptions {
        self.client = self.client.config(config);
        self
    }
}

/// A chat client that reconnects by itself and joins its rooms again from where it was; see
/// the [module docs](self). Its task runs on the tokio runtime it was made on; dropping the
/// client stops it.
#[derive(Debug)]
pub struct ChatClient {
    inner: ReconnectingClient,
    events: broadcast::Receiver<ClientEvent>,
    rooms: Arc<Rooms>,
    /// A random prefix for the client's message ids: the server takes a user's id once
    /// within a window, over all the user's connections, so two clients must not share ids.
    id_prefix: u64,
    next_id: AtomicU64,
    reader: Reader,
}

impl ChatClient {
    /// Starts connecting, on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn connect(options: ChatOptions) -> ChatClient {
        let rooms = Arc::new(Rooms::new(options.max_rooms));
        let hook_rooms = rooms.clone();
        let (inner, events) = ReconnectOptions::new(options.client)
            .backoff(options.backoff)
            .queue(options.queue, QueuePolicy::Wait)
            .on_connect(move |ws: ClientStream| rejoin(ws, hook_rooms.joins()))
            .spawn();
        ChatClient {
            inner,
            events,
            rooms: rooms.clone(),
            id_prefix: std::collections::hash_map::RandomState::new().hash_one(0u8),
            next_id: AtomicU64::new(0),
            reader: Reader::new(rooms.clone()),
        }
    }

    async fn send(&self, message: &ClientMessage) -> Result<(), ChatError> {
        let text = to_json(message);
        Ok(self.inner.send(Message::Text(text.into())).await?)
    }

    /// Joins a room (on every later connection too, from the last message delivered). The
    /// server answers with [`ChatEvent::Joined`]; joining a room the client is in does
    /// nothing.
    pub async fn join(&self, room: &str) -> Result<(), ChatError> {
        if !valid_name(room) {
            return Err(ChatError::InvalidName);
        }
        if !self.rooms.add(room)? {
            return Ok(());
        }
        let join = ClientMessage::Join {
            room: room.to_string(),
            epoch: None,
            offset: None,
        };
        self.send(&join).await
    }

    /// Leaves a room: its messages still on their way are dropped.
    pub async fn leave(&self, room: &str) -> Result<(), ChatError> {
        if !self.rooms.remove(room) {
            return Err(ChatError::NotJoined);
        }
        let room = room.to_string();
        self.send(&ClientMessage::Leave { room }).await
    }

    /// Says something in a room the client joined: the message's id, which its
    /// [`ChatEvent::Ack`] carries. A message taken for a connection that is then lost may be
    /// lost with it (ws-tokio's queue delivers at most once); the ack tells.
    pub async fn say(&self, room: &str, text: &str) -> Result<String, ChatError> {
        if !self.rooms.contains(room) {
            return Err(ChatError::NotJoined);
        }
        let id = self.new_id();
        let send = ClientMessage::Send {
            room: room.to_string(),
            text: text.to_string(),
            id: Some(id.clone()),
        };
        self.send(&send).await?;
        Ok(id)
    }

    /// Says something to one user: the message's id, as for [`Self::say`].
    pub async fn direct(&self, to: &str, text: &str) -> Result<String, ChatError> {
        if !valid_name(to) {
            return Err(ChatError::InvalidName);
        }
        let id = self.new_id();
        let direct = ClientMessage::Direct {
            to: to.to_string(),
            text: text.to_string(),
            id: Some(id.clone()),
        };
        self.send(&direct).await?;
        Ok(id)
    }

    /// Asks who is in a room: answered with [`ChatEvent::Members`].
    pub async fn who(&self, room: &str) -> Result<(), ChatError> {
        let room = room.to_string();
        self.send(&ClientMessage::Who { room }).await
    }

    /// Asks for a room's last `limit` messages: answered with [`ChatEvent::History`].
    pub async fn history(&self, room: &str, limit: usize) -> Result<(), ChatError> {
        let room = room.to_string();
        let limit = Some(limit);
        self.send(&ClientMessage::History { room, limit }).await
    }

    /// Tells a room the client's user is typing.
    pub async fn typing(&self, room: &str) -> Result<(), ChatError> {
        let room = room.to_string();
        self.send(&ClientMessage::Typing { room }).await
    }

    fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{:016x}-{n}", self.id_prefix)
    }

    /// The next event; `None` once the client has stopped and everything was taken. Room
    /// messages come once each, in offset order within an epoch. Cancel-safe: an event is
    /// not lost when the future is dropped before it is ready.
    ///
    /// The client's connection is only read while this is called: an application that
    /// stops calling it holds the connection back (within the inbox's bound).
    pub async fn recv(&mut self) -> Option<ChatEvent> {
        if let Some(event) = self.reader.pending() {
            return Some(event);
        }
        loop {
            // Messages first: those of a lost connection come before the news of its loss.
            tokio::select! {
                biased;
                message = self.inner.recv() => match message {
                    Some(Message::Text(text)) => match self.reader.read(&text) {
                        Some(event) => return Some(event),
                        None => continue,
                    },
                    // The chat sends text only.
                    Some(Message::Binary(_)) => continue,
                    // Stopped: the events left, then the end.
                    None => match self.events.try_recv() {
                        Ok(event) => return Some(ChatEvent::Connection(event)),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                        Err(_) => return None,
                    },
                },
                event = self.events.recv() => match event {
                    Ok(event) => return Some(ChatEvent::Connection(event)),
                    // Older connection events were dropped for a slow reader; go on.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The position of the last message of `room` delivered, if the client is in it and one
    /// was (or the room's position when it was entered).
    pub fn position(&self, room: &str) -> Option<Position> {
        self.rooms.position(room)
    }

    /// The rooms the client is in, in no particular order.
    pub fn rooms(&self) -> Vec<String> {
        self.rooms.names()
    }

    /// Room messages dropped so far as delivered before (replays after a reconnection).
    pub fn duplicates(&self) -> u64 {
        self.reader.duplicates()
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// Stops: what is queued is sent if a connection is up, which is then closed with 1000.
    pub async fn close(self) {
        self.inner.close().await
    }
}

/// On a new connection, before anything queued: every room joined again, from its position.
async fn rejoin(mut ws: ClientStream, joins: Vec<String>) -> Result<ClientStream, ws_tokio::Error> {
    for join in joins {
        ws.send(Message::Text(join.into())).await?;
    }
    Ok(ws)
}
