//! Why a chat client's request was refused before it was sent.

/// A refused request of a [`super::ChatClient`] (or its options).
#[derive(Debug)]
#[non_exhaustive]
pub enum ChatError {
    /// The URL (or another client option) cannot be used.
    Options(ws_tokio::Error),
    /// A room or user name the chat refuses: 1 to 32 letters, digits, `-`, `_`, `.`.
    InvalidName,
    /// Joining one more room would pass the client's maximum.
    TooManyRooms {
        /// The maximum.
        max: usize,
    },
    /// Sending to a room the client has not joined.
    NotJoined,
    /// The send queue is full.
    QueueFull,
    /// The client has stopped.
    Stopped,
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::Options(e) => write!(f, "invalid client options: {e}"),
            ChatError::InvalidName => {
                f.write_str("names are 1 to 32 letters, digits, '-', '_' or '.'")
            }
            ChatError::TooManyRooms { max } => write!(f, "at most {max} rooms"),
            ChatError::NotJoined => f.write_str("join the room first"),
            ChatError::QueueFull => f.write_str("the send queue is full"),
            ChatError::Stopped => f.write_str("the client has stopped"),
        }
    }
}

impl std::error::Error for ChatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChatError::Options(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ws_tokio::reconnect::SendError> for ChatError {
    fn from(error: ws_tokio::reconnect::SendError) -> ChatError {
        match error {
            ws_tokio::reconnect::SendError::Full(_) => ChatError::QueueFull,
            ws_tokio::reconnect::SendError::Stopped(_) => ChatError::Stopped,
        }
    }
}
