//! A client that stays connected: it reconnects after every loss with exponential backoff
//! and jitter, runs an application hook on every new connection (to subscribe again), tells
//! the application about its connection through [`ClientEvent`]s, measures the round-trip
//! time with its heartbeat, and holds what is sent while it is disconnected in a bounded
//! queue. It knows nothing of the application's protocol.
//!
//! Delivery is at most once: a message taken from the queue when the connection drops may
//! be lost with it.
//!
//! ```no_run
//! use std::time::Duration;
//! use ws_tokio::reconnect::{ClientEvent, QueuePolicy, ReconnectOptions};
//! use ws_tokio::{ClientOptions, ClientStream, Config, Message};
//!
//! # async fn run() -> Result<(), ws_tokio::Error> {
//! let mut config = Config::default();
//! config.ping_interval = Some(Duration::from_secs(15));
//! let options = ClientOptions::new("wss://example.com/feed")?.config(config);
//! let (mut client, mut events) = ReconnectOptions::new(options)
//!     .queue(1000, QueuePolicy::DropOldest)
//!     .on_connect(|mut ws: ClientStream| async move {
//!         ws.send(Message::Text(r#"{"subscribe":"prices"}"#.into())).await?;
//!         Ok(ws)
//!     })
//!     .spawn();
//! tokio::spawn(async move {
//!     while let Ok(event) = events.recv().await {
//!         if let ClientEvent::Connected { attempt, .. } = event {
//!             println!("connected after {attempt} attempts");
//!         }
//!     }
//! });
//! client.send(Message::Text("hello".into())).await.ok(); // queued until connected
//! while let Some(message) = client.recv().await {
//!     println!("{message:?}, round trip {:?}", client.rtt());
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod events;
mod hook;
mod queue;
mod task;

pub use backoff::Backoff;
pub use events::ClientEvent;
pub use hook::{HookFuture, OnConnect};
pub use queue::{QueuePolicy, SendError};

use crate::connect::ClientOptions;
use queue::SendQueue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use ws_proto::Message;

/// How a [`ReconnectingClient`] connects and behaves.
pub struct ReconnectOptions {
    options: ClientOptions,
    backoff: Backoff,
    seed: Option<u64>,
    queue_capacity: usize,
    queue_policy: QueuePolicy,
    inbox_capacity: usize,
    events_capacity: usize,
    hook: Arc<dyn OnConnect>,
    hook_timeout: Duration,
    stable_after: Duration,
    max_attempts: Option<u32>,
}

impl std::fmt::Debug for ReconnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectOptions")
            .field("options", &self.options)
            .field("backoff", &self.backoff)
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_policy", &self.queue_policy)
            .finish_non_exhaustive()
    }
}

impl ReconnectOptions {
    /// Reconnects with these client options (URL, TLS, connect timeout, and the stream's
    /// [`crate::Config`]: heartbeat, handshake timeout, limits). Defaults: [`Backoff`]'s,
    /// a queue of 1024 messages that makes senders wait when full, an inbox of 256 messages,
    /// 64 events kept for a slow listener, a 10-second hook timeout, the backoff starting over
    /// after a connection that lasted 10 s, and no limit on attempts.
    pub fn new(options: ClientOptions) -> ReconnectOptions {
        ReconnectOptions {
            options,
            backoff: Backoff::default(),
            seed: None,
            queue_capacity: 1024,
            queue_policy: QueuePolicy::Wait,
            inbox_capacity: 256,
            events_capacity: 64,
            hook: Arc::new(hook::NoHook),
            hook_timeout: Duration::from_secs(10),
            stable_after: Duration::from_secs(10),
            max_attempts: None,
        }
    }

    /// The delays between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> ReconnectOptions {
        self.backoff = backoff;
        self
    }

    /// Seeds the backoff's jitter (tests; by default the OS's random source does).
    pub fn jitter_seed(mut self, seed: u64) -> ReconnectOptions {
        self.seed = Some(seed);
        self
    }

    /// The send queue's size in messages and what a full queue does.
    pub fn queue(mut self, capacity: usize, policy: QueuePolicy) -> ReconnectOptions {
        self.queue_capacity = capacity;
        self.queue_policy = policy;
        self
    }

    /// Received messages held for [`ReconnectingClient::recv`]; when full, the connection is
    /// not read until the application takes some.
    pub fn inbox(mut self, capacity: usize) -> ReconnectOptions {
        self.inbox_capacity = capacity.max(1);
        self
    }

    /// Events kept for a listener that falls behind (it then loses the oldest).
    pub fn events_capacity(mut self, capacity: usize) -> ReconnectOptions {
        self.events_capacity = capacity.max(1);
        self
    }

    /// The hook run on every new connection before queued messages flow.
    pub fn on_connect(mut self, hook: impl OnConnect) -> ReconnectOptions {
        self.hook = Arc::new(hook);
        self
    }

    /// How long the hook may take before the attempt counts as failed.
    pub fn hook_timeout(mut self, timeout: Duration) -> ReconnectOptions {
        self.hook_timeout = timeout;
        self
    }

    /// How long a connection must last for the backoff to start over after it.
    pub fn stable_after(mut self, duration: Duration) -> ReconnectOptions {
        self.stable_after = duration;
        self
    }

    /// Gives up after this many failed attempts in a row (default: never).
    pub fn max_attempts(mut self, attempts: u32) -> ReconnectOptions {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// Starts the client's task on the current tokio runtime. Returns the client and its
    /// events from the very first attempt on.
    pub fn spawn(self) -> (ReconnectingClient, broadcast::Receiver<ClientEvent>) {
        let shared = Arc::new(Shared {
            queue: SendQueue::new(self.queue_capacity, self.queue_policy),
            connected: AtomicBool::new(false),
            rtt_nanos: AtomicU64::new(0),
        });
        let (incoming_tx, incoming) = mpsc::channel(self.inbox_capacity);
        let (events, first_listener) = broadcast::channel(self.events_capacity);
        let (stop_tx, stop) = watch::channel(false);
        let seed = self.seed.unwrap_or_else(backoff::os_seed);
        let task = task::Task {
            options: self.options,
            schedule: backoff::Schedule::new(self.backoff, seed),
            hook: self.hook,
            hook_timeout: self.hook_timeout,
            stable_after: self.stable_after,
            max_attempts: self.max_attempts,
            shared: shared.clone(),
            incoming: incoming_tx,
            events: events.clone(),
            stop,
        };
        let handle = tokio::spawn(task.run());
        let client = ReconnectingClient {
            shared,
            incoming,
            events,
            stop: stop_tx,
            task: Some(handle),
        };
        (client, first_listener)
    }
}

/// What the client and its task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) queue: SendQueue,
    pub(crate) connected: AtomicBool,
    /// The latest round-trip time in nanoseconds, 0 for none yet.
    rtt_nanos: AtomicU64,
}

impl Shared {
    pub(crate) fn set_rtt(&self, rtt: Option<Duration>) {
        if let Some(rtt) = rtt {
            let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1);
            self.rtt_nanos.store(nanos, Ordering::Relaxed);
        }
    }
}

/// A client that reconnects by itself; see the [module docs](self). Dropping it stops its
/// task (a connection that is up is closed with 1000).
#[derive(Debug)]
pub struct ReconnectingClient {
    shared: Arc<Shared>,
    incoming: mpsc::Receiver<Message>,
    events: broadcast::Sender<ClientEvent>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ReconnectingClient {
    /// Queues a message, sent as soon as a connection is up (after the hook's), waiting for
    /// room under [`QueuePolicy::Wait`].
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.shared.queue.push(message).await
    }

    /// Queues a message without waiting.
    pub fn try_send(&self, message: Message) -> Result<(), SendError> {
        self.shared.queue.try_push(message)
    }

    /// The next message received; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.incoming.recv().await
    }

    /// Another listener for the client's events, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.events.subscribe()
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// The round-trip time of the latest answered heartbeat ping, on this connection or an
    /// earlier one ([`crate::Config::ping_interval`] turns the heartbeat on).
    pub fn rtt(&self) -> Option<Duration> {
        match self.shared.rtt_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Messages the queue's policy has dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.queue.dropped()
    }

    /// Messages waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.queue.len()
    }

    /// Stops: no more messages are taken; if connected, those already queued are sent and
    /// the connection is closed with 1000 (within the close timeout); then the task ends.
    pub async fn close(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            // The task's own panics are its bug, not the caller's concern here.
            let _ = task.await;
        }
    }

    fn signal_stop(&self) {
        self.shared.queue.stop();
        let _ = self.stop.send(true);
    }
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
