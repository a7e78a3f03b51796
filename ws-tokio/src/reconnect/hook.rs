//! The hook run on every (re)connection, before queued messages flow: where an application
//! subscribes again, authenticates, or resends its state.

use crate::connect::ClientStream;
use crate::error::Error;
use std::future::Future;
use std::pin::Pin;

/// The future an [`OnConnect`] hook returns: the stream handed back, or why the connection
/// is no good.
pub type HookFuture = Pin<Box<dyn Future<Output = Result<ClientStream, Error>> + Send>>;

/// Runs on every new connection, owning the stream until it hands it back: what it sends
/// goes out before any queued message, and what it reads (an acknowledgement, say) is not
/// passed on. An error drops the connection and counts as a failed attempt. Any
/// `Fn(ClientStream) -> impl Future<Output = Result<ClientStream, Error>>` is one.
///
/// ```
/// use ws_tokio::reconnect::OnConnect;
/// use ws_tokio::{ClientStream, Error, Message};
///
/// async fn resubscribe(mut ws: ClientStream) -> Result<ClientStream, Error> {
///     ws.send(Message::Text(r#"{"subscribe":"prices"}"#.into())).await?;
///     Ok(ws)
/// }
/// fn takes_hook(_: impl OnConnect) {}
/// takes_hook(resubscribe);
/// takes_hook(|ws: ClientStream| async move { Ok(ws) });
/// ```
pub trait OnConnect: Send + Sync + 'static {
    /// Runs on the new connection.
    fn on_connect(&self, ws: ClientStream) -> HookFuture;
}

impl<F, Fut> OnConnect for F
where
    F: Fn(ClientStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ClientStream, Error>> + Send + 'static,
{
    fn on_connect(&self, ws: ClientStream) -> HookFuture {
        Box::pin(self(ws))
    }
}

/// The hook that does nothing.
pub(crate) struct NoHook;

impl OnConnect for NoHook {
    fn on_connect(&self, ws: ClientStream) -> HookFuture {
        Box::pin(std::future::ready(Ok(ws)))
    }
}
