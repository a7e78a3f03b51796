//! Reading an opening handshake's HTTP head off a transport, for either role.

use crate::error::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use ws_proto::HandshakeError;

/// Reads into `buf` until `step` (a ws-proto handshake's `receive`) has a complete head.
/// Returns what `step` made of it and the range of `buf` holding the bytes that followed it
/// in the same read (the first WebSocket frames).
pub(crate) async fn read_head<S, T>(
    io: &mut S,
    buf: &mut [u8],
    mut step: impl FnMut(&[u8]) -> Result<Option<(T, usize)>, HandshakeError>,
) -> Result<(T, std::ops::Range<usize>), Error>
where
    S: AsyncRead + Unpin,
{
    loop {
        let n = io.read(buf).await?;
        if n == 0 {
            return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if let Some((head, used)) = step(&buf[..n])? {
            return Ok((head, used..n));
        }
    }
}
