//! The bounded queue of messages on their way out: filled by the application, emptied by the
//! connection task whenever a connection is up, held while none is.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;
use ws_proto::Message;

/// What `send` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Refuse the new message ([`SendError::Full`]) and count it.
    DropNewest,
    /// Drop the oldest queued message to make room, and count it.
    DropOldest,
    /// Wait until there is room.
    Wait,
}

/// Why a message was not queued. It is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The queue is full ([`QueuePolicy::DropNewest`], or `try_send` with
    /// [`QueuePolicy::Wait`]).
    Full(Message),
    /// The client has stopped.
    Stopped(Message),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SendError::Full(_) => "the send queue is full",
            SendError::Stopped(_) => "the client has stopped",
        })
    }
}

impl std::error::Error for SendError {}

#[derive(Debug)]
struct State {
    items: VecDeque<Message>,
    dropped: u64,
    stopped: bool,
    /// The connection task, waiting for a message.
    consumer: Option<Waker>,
}

#[derive(Debug)]
pub(crate) struct SendQueue {
    capacity: usize,
    policy: QueuePolicy,
    state: Mutex<State>,
    /// Wakes senders waiting for room.
    room: Notify,
}

impl SendQueue {
    pub(crate) fn new(capacity: usize, policy: QueuePolicy) -> SendQueue {
        SendQueue {
            capacity: capacity.max(1),
            policy,
            state: Mutex::new(State {
                items: VecDeque::new(),
                dropped: 0,
                stopped: false,
                consumer: None,
            }),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing here can panic while holding the lock; a poisoned lock's data is intact.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a message without waiting; with [`QueuePolicy::Wait`] a full queue refuses it.
    pub(crate) fn try_push(&self, message: Message) -> Result<(), SendError> {
        let mut state = self.lock();
        if state.stopped {
            return Err(SendError::Stopped(message));
        }
        if state.items.len() >= self.capacity {
            match self.policy {
                QueuePolicy::DropOldest => {
                    state.items.pop_front();
                    state.dropped += 1;
                }
                QueuePolicy::DropNewest => {
                    state.dropped += 1;
                    return Err(SendError::Full(message));
                }
                QueuePolicy::Wait => return Err(SendError::Full(message)),
            }
        }
        state.items.push_back(message);
        if let Some(waker) = state.consumer.take() {
            waker.wake();
        }
        Ok(())
    }

    /// Queues a message, waiting for room under [`QueuePolicy::Wait`].
    pub(crate) async fn push(&self, mut message: Message) -> Result<(), SendError> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before looking, so a pop between the look and the wait is not missed.
            room.as_mut().enable();
            match self.try_push(message) {
                Err(SendError::Full(m)) if self.policy == QueuePolicy::Wait => message = m,
                done => return done,
            }
            room.await;
        }
    }

    /// The next message, for the connection task.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let mut state = self.lock();
        if let Some(message) = state.items.pop_front() {
            drop(state);
            self.room.notify_waiters();
            return Poll::Ready(Some(message));
        }
        if state.stopped {
            return Poll::Ready(None);
        }
        state.consumer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Drops the messages still queued (nothing will send them).
    pub(crate) fn clear(&self) {
        self.lock().items.clear();
    }

    /// Messages dropped by the policy so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Messages waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// No more messages are taken: senders (waiting ones too) are refused from now on, and
    /// the consumer gets `None` once it has taken those already queued.
    pub(crate) fn stop(&self) {
        let mut state = self.lock();
        state.stopped = true;
        if let Some(waker) = state.consumer.take() {
            waker.wake();
        }
        drop(state);
        self.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn text(s: &'static str) -> Message {
        Message::Text(s.into())
    }

    fn drain(queue: &SendQueue) -> Vec<Message> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(m)) = queue.poll_pop(&mut cx) {
            out.push(m);
        }
        out
    }

    #[test]
    fn drop_newest_refuses_and_counts() {
        let queue = SendQueue::new(2, QueuePolicy::DropNewest);
        queue.try_push(text("a")).unwrap();
        queue.try_push(text("b")).unwrap();
        assert_eq!(queue.try_push(text("c")), Err(SendError::Full(text("c"))));
        assert_eq!(queue.dropped(), 1);
        assert_eq!(drain(&queue), [text("a"), text("b")]);
    }

    #[test]
    fn drop_oldest_makes_room_and_counts() {
        let queue = SendQueue::new(2, QueuePolicy::DropOldest);
        for m in ["a", "b", "c", "d"] {
            queue.try_push(text(m)).unwrap();
        }
        assert_eq!(queue.dropped(), 2);
        assert_eq!(drain(&queue), [text("c"), text("d")]);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_blocks_the_sender_until_a_pop_makes_room() {
        let queue = Arc::new(SendQueue::new(1, QueuePolicy::Wait));
        queue.push(text("a")).await.unwrap();
        let sender = tokio::spawn({
            let queue = queue.clone();
            async move { queue.push(text("b")).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !sender.is_finished(),
            "the sender waits while the queue is full"
        );
        assert_eq!(queue.len(), 1);
        assert_eq!(drain(&queue), [text("a")]);
        sender.await.unwrap().unwrap();
        assert_eq!(drain(&queue), [text("b")]);
        assert_eq!(queue.dropped(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_releases_waiting_senders_and_refuses_more() {
        let queue = Arc::new(SendQueue::new(1, QueuePolicy::Wait));
        queue.push(text("a")).await.unwrap();
        let sender = tokio::spawn({
            let queue = queue.clone();
            async move { queue.push(text("b")).await }
        });
        tokio::task::yield_now().await;
        queue.stop();
        assert_eq!(sender.await.unwrap(), Err(SendError::Stopped(text("b"))));
        assert_eq!(
            queue.try_push(text("c")),
            Err(SendError::Stopped(text("c")))
        );
        // What was queued before the stop is still taken, then the end.
        assert_eq!(drain(&queue), [text("a")]);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert_eq!(queue.poll_pop(&mut cx), Poll::Ready(None));
    }
}
