//! The connection task: connect, run the hook, move messages both ways until the connection
//! ends, wait out the backoff, again, until the client stops.

use super::backoff::Schedule;
use super::events::ClientEvent;
use super::hook::OnConnect;
use super::queue::SendQueue;
use super::Shared;
use crate::connect::{ClientOptions, ClientStream};
use crate::error::{Error, Timeout};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use ws_proto::{CloseCode, Message};

/// Everything the task owns.
pub(crate) struct Task {
    pub(crate) options: ClientOptions,
    pub(crate) schedule: Schedule,
    pub(crate) hook: Arc<dyn OnConnect>,
    pub(crate) hook_timeout: Duration,
    pub(crate) stable_after: Duration,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) incoming: mpsc::Sender<Message>,
    pub(crate) events: broadcast::Sender<ClientEvent>,
    pub(crate) stop: watch::Receiver<bool>,
}

/// How a connection's service ended.
enum End {
    /// The connection closed or failed.
    Lost {
        close: Option<Option<ws_proto::CloseFrame>>,
        error: Option<Error>,
    },
    /// The client is stopping.
    Stop,
}

impl Task {
    pub(crate) async fn run(mut self) {
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let mut stop = self.stop.clone();
            let connected = tokio::select! {
                result = self.connect() => result,
                _ = stopped(&mut stop) => break,
            };
            let delay = match connected {
                Err(error) => {
                    self.emit(ClientEvent::ConnectFailed {
                        attempt,
                        error: Arc::new(error),
                    });
                    if self.max_attempts.is_some_and(|max| attempt >= max) {
                        break;
                    }
                    self.schedule.next_delay()
                }
                Ok(mut ws) => {
                    self.emit(ClientEvent::Connected {
                        attempt,
                        protocol: ws.protocol().map(str::to_string),
                    });
                    attempt = 0;
                    let since = Instant::now();
                    self.shared.connected.store(true, Ordering::Relaxed);
                    let end = self.serve(&mut ws).await;
                    self.shared.connected.store(false, Ordering::Relaxed);
                    match end {
                        End::Stop => {
                            // Stopping: a clean close, bounded by the close timeout.
                            let _ = ws.close(CloseCode::NORMAL, "").await;
                            break;
                        }
                        End::Lost { close, error } => self.emit(ClientEvent::Disconnected {
                            close,
                            error: error.map(Arc::new),
                        }),
                    }
                    // A connection that stayed up a while was a success: start over. One
                    // that is dropped at once (refused after the handshake) backs off.
                    if since.elapsed() >= self.stable_after {
                        self.schedule.reset();
                    }
                    self.schedule.next_delay()
                }
            };
            self.emit(ClientEvent::Reconnecting { delay });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut self.stop) => break,
            }
        }
        self.shared.queue.stop();
        self.shared.queue.clear();
        self.emit(ClientEvent::Stopped);
    }

    /// Connects and runs the hook.
    async fn connect(&self) -> Result<ClientStream, Error> {
        let ws = self.options.connect().await?;
        tokio::time::timeout(self.hook_timeout, self.hook.on_connect(ws))
            .await
            .map_err(|_| Error::Timeout(Timeout::Hook))?
    }

    /// Moves queued messages out and received messages in until the connection ends or the
    /// client stops.
    async fn serve(&mut self, ws: &mut ClientStream) -> End {
        let shared = &self.shared;
        let queue: &SendQueue = &shared.queue;
        loop {
            let step = std::future::poll_fn(|cx| {
                // Out: as much of the queue as the write limit lets through.
                while let Poll::Ready(Ok(())) = ws.poll_ready_to_send(cx) {
                    match queue.poll_pop(cx) {
                        Poll::Ready(Some(message)) => {
                            // A refusal means the connection is closing; the drive says why.
                            let _ = ws.queue(&message);
                        }
                        Poll::Ready(None) => return Poll::Ready(None),
                        Poll::Pending => break,
                    }
                }
                // In, and the writing of what was queued.
                let step = ws.poll_drive(cx, false);
                // Pongs are taken in without ending the poll.
                shared.set_rtt(ws.rtt());
                step.map(Some)
            })
            .await;
            let message = match step {
                None => return End::Stop,
                Some(Some(Ok(message))) => message,
                Some(Some(Err(error))) => {
                    return End::Lost {
                        close: ws.close_frame().map(|f| f.cloned()),
                        error: Some(error),
                    }
                }
                Some(None) => {
                    return End::Lost {
                        close: ws.close_frame().map(|f| f.cloned()),
                        error: None,
                    }
                }
            };
            // The application's inbox is bounded: while it is full, the connection is not
            // read either.
            tokio::select! {
                _ = self.incoming.send(message) => {}
                _ = stopped(&mut self.stop) => return End::Stop,
            }
        }
    }

    fn emit(&self, event: ClientEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }
}

/// Resolves once the client is told to stop (or was dropped).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
