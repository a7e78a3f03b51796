//! What the peer servers share: their command line, the runtime, and the fanout hub.

use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

/// The behaviour of a peer server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Send every data frame back to its sender.
    Echo,
    /// Send every data frame to every connected client, the sender included.
    Fanout,
}

/// The peers' command line.
#[derive(Debug, clap::Parser)]
pub struct PeerArgs {
    /// What to do with data frames.
    #[arg(long, value_enum, default_value_t = Mode::Echo)]
    pub mode: Mode,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9002")]
    pub listen: SocketAddr,
    /// Runtime worker threads; 1 runs tokio's single-threaded scheduler, the fit for a server
    /// pinned to one core.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// The tokio runtime for `threads` workers, with I/O and timers (ws-tokio keeps its deadlines
/// on tokio's clock; the other tokio peers run on the same runtime).
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .enable_time()
            .build()
    }
}

/// Every connected client's outgoing queue, for fanout.
pub struct Hub<T> {
    members: Mutex<Members<T>>,
}

struct Members<T> {
    next_id: u64,
    queues: Vec<(u64, UnboundedSender<T>)>,
}

impl<T: Clone> Default for Hub<T> {
    fn default() -> Self {
        Hub {
            members: Mutex::new(Members {
                next_id: 0,
                queues: Vec::new(),
            }),
        }
    }
}

impl<T: Clone> Hub<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Members<T>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a client's queue; the id removes it.
    pub fn join(&self, queue: UnboundedSender<T>) -> u64 {
        let mut members = self.lock();
        members.next_id += 1;
        let id = members.next_id;
        members.queues.push((id, queue));
        id
    }

    /// Removes a client.
    pub fn leave(&self, id: u64) {
        let mut members = self.lock();
        if let Some(i) = members.queues.iter().position(|(m, _)| *m == id) {
            members.queues.swap_remove(i);
        }
    }

    /// Queues `item` for everyone.
    pub fn broadcast(&self, item: &T) {
        for (_, queue) in &self.lock().queues {
            let _ = queue.send(item.clone());
        }
    }
}
