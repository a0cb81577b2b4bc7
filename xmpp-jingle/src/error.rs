//! Errors of the `xmpp-jingle` crate.

use crate::jingle::Reason;

/// Errors returned by the `xmpp-jingle` crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An element could not be parsed.
    #[error(transparent)]
    Parse(#[from] xmpp_social::ParseError),
    /// The connection failed, an IQ timed out or was answered with an error.
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::Error),
    /// Reading or writing file data failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A command does not fit the session's state (e.g. accepting a session we initiated).
    #[error("invalid in this state: {0}")]
    InvalidState(String),
    /// No session with this id.
    #[error("unknown session {0:?}")]
    UnknownSession(String),
    /// The session ended before the operation completed.
    #[error("session terminated: {0:?}")]
    Terminated(Option<Reason>),
    /// An in-band bytestream failed.
    #[error("bytestream: {0}")]
    Ibb(#[from] crate::ibb::IbbError),
    /// The received file does not match the hash the sender gave.
    #[error("{algo} hash mismatch")]
    HashMismatch {
        /// The algorithm that mismatched.
        algo: String,
    },
    /// Nothing came in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
