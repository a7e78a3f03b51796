//! A bare RESP2 connection to one node, for sharded pub/sub ([`crate::sharded`]): commands
//! written as they are packed, replies and pushed messages read one value at a time, each read
//! waiting as long as its caller says. redis-rs's blocking connection has no sharded pub/sub,
//! and its plain reads count every timed-out read as a reply to skip later, which would
//! swallow the answer to a subscription after a few idle polls; here nothing is skipped. The
//! parser keeps what it read of a value across a timeout, so a poll may end mid-message.

use redis::{Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult, Value};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// One connection.
pub(crate) struct Wire {
    stream: TcpStream,
    parser: redis::Parser,
}

impl Wire {
    /// Connects to the TCP node of `info` (`AUTH` with its user and password, if any).
    pub(crate) fn connect(info: &ConnectionInfo, timeout: Duration) -> RedisResult<Wire> {
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "cluster nodes are reached over plain TCP",
            )));
        };
        let mut last_error = None;
        let mut connected = None;
        for address in (host.as_str(), *port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let stream = match (connected, last_error) {
            (Some(stream), _) => stream,
            (None, Some(error)) => return Err(error.into()),
            (None, None) => return Err(std::io::Error::from(std::io::ErrorKind::NotFound).into()),
        };
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut wire = Wire {
            stream,
            parser: redis::Parser::new(),
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
            wire.send(&auth)?;
            wire.next(timeout)?.extract_error()?;
        }
        Ok(wire)
    }

    /// Writes `cmd`.
    pub(crate) fn send(&mut self, cmd: &Cmd) -> RedisResult<()> {
        self.stream.write_all(&cmd.get_packed_command())?;
        Ok(())
    }

    /// The next value, waiting `wait` at most (a timeout error if none came whole).
    pub(crate) fn next(&mut self, wait: Duration) -> RedisResult<Value> {
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        self.parser.parse_value(&mut self.stream)
    }
}
