//! [`Stream`] and [`Sink`] for [`WebSocketStream`], the traits async code composes with
//! (`StreamExt::next`, `SinkExt::send`, `forward`, `split`).

use crate::error::Error;
use crate::stream::WebSocketStream;
use futures_core::{FusedStream, Stream};
use futures_sink::Sink;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use ws_proto::{CloseCode, Message};

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_drive(cx, false)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> FusedStream for WebSocketStream<S> {
    fn is_terminated(&self) -> bool {
        WebSocketStream::is_terminated(self)
    }
}

/// Sending: `poll_ready` waits while more than [`crate::Config::write_buffer_limit`] bytes are
/// queued, `start_send` queues, `poll_flush` writes, and `poll_close` runs the closing
/// handshake with 1000 (Normal Closure) to its end.
impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready_to_send(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().queue(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_flush_queued(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.connection().can_send() && !this.is_terminated() {
            this.start_close(CloseCode::NORMAL, "")?;
        }
        this.poll_until_closed(cx)
    }
}
