//! The error type of the test kit.

use std::time::Duration;

use crate::ServerKind;

/// Everything that can go wrong while installing, starting or driving a test server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The server's binaries are missing (see [`crate::ensure_installed`]).
    #[error("{kind} is not installed: {hint}")]
    NotInstalled {
        /// Which server.
        kind: ServerKind,
        /// What to do about it.
        hint: String,
    },
    /// Installing the server's Debian packages failed or was not possible.
    #[error("installing {kind} failed: {message}")]
    Install {
        /// Which server.
        kind: ServerKind,
        /// What went wrong, with the installer's output when there was one.
        message: String,
    },
    /// A file system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the kit was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper command (chown, ejabberdctl, prosodyctl, ...) failed.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line, for humans.
        command: String,
        /// Its exit status, or why it has none.
        status: String,
        /// The tail of what it printed.
        output: String,
    },
    /// The server did not accept connections within the startup deadline.
    #[error("{kind} was not ready after {waited:?}; log tail:\n{log_tail}")]
    StartTimeout {
        /// Which server.
        kind: ServerKind,
        /// How long the kit waited.
        waited: Duration,
        /// The last lines of the server's log.
        log_tail: String,
    },
    /// The server process exited while starting.
    #[error("{kind} exited during startup ({status}); log tail:\n{log_tail}")]
    Exited {
        /// Which server.
        kind: ServerKind,
        /// Its exit status.
        status: String,
        /// The last lines of the server's log.
        log_tail: String,
    },
    /// An account name or password the kit cannot pass on safely.
    #[error("invalid account {user:?}: {reason}")]
    InvalidAccount {
        /// The rejected user name.
        user: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The server refused to register an account.
    #[error("registering {jid} on {kind} failed: {output}")]
    Register {
        /// Which server.
        kind: ServerKind,
        /// The account that could not be registered.
        jid: String,
        /// What the server's tool said.
        output: String,
    },
}

impl TestkitError {
    /// Wraps an I/O error with what the kit was doing.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestkitError {
        let context = context.into();
        move |source| TestkitError::Io { context, source }
    }
}
