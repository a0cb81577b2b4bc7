//! The seam between the file's bytes and the transport's bytes.
//!
//! A transfer is a pipeline. Sending: file reader → hashing (plaintext) → [`Stage::wrap_reader`] →
//! transport. Receiving: transport → [`Stage::wrap_writer`] → hashing (plaintext) → file writer. The
//! default stage is the identity; XEP-0391 (JET) inserts a cipher here, so the transport carries
//! [`Stage::wire_len`] bytes (e.g. the AES-GCM ciphertext and its 16-byte tag) while `<size/>`, ranges
//! and hashes stay about the plaintext file.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

/// A boxed reader of the send path.
pub(crate) type BoxRead<'a> = Box<dyn AsyncRead + Send + Unpin + 'a>;
/// A boxed writer of the receive path.
pub(crate) type BoxWrite<'a> = Box<dyn AsyncWrite + Send + Unpin + 'a>;

/// A transformation between plaintext file bytes and transport bytes (one per transfer).
///
/// Contract for implementors:
/// - `wrap_reader` gets the plaintext (already hashed) and returns the bytes to put on the wire; the
///   transport sends until that reader's end.
/// - `wrap_writer` gets the plaintext writer (which hashes and counts) and returns the writer the
///   transport writes its bytes into. After the last transport byte the driver calls `shutdown` on
///   it: that is where a cipher checks its tag and fails with an `io::Error` (the transfer then fails
///   with `media-error`). The plaintext writer below turns `shutdown` into a flush of the
///   application's writer.
/// - `wire_len(n)` is how many transport bytes carry `n` plaintext bytes; the receiver of a SOCKS5
///   stream reads exactly that many.
pub(crate) trait Stage: Send + Sync {
    /// Transport bytes for `plain` file bytes.
    fn wire_len(&self, plain: u64) -> u64;
    /// Wraps the plaintext reader of the send path.
    fn wrap_reader<'a>(&self, plain: BoxRead<'a>) -> BoxRead<'a>;
    /// Wraps the plaintext writer of the receive path.
    fn wrap_writer<'a>(&self, plain: BoxWrite<'a>) -> BoxWrite<'a>;
}

/// No transformation.
#[derive(Debug, Default)]
pub(crate) struct Identity;

impl Stage for Identity {
    fn wire_len(&self, plain: u64) -> u64 {
        plain
    }
    fn wrap_reader<'a>(&self, plain: BoxRead<'a>) -> BoxRead<'a> {
        plain
    }
    fn wrap_writer<'a>(&self, plain: BoxWrite<'a>) -> BoxWrite<'a> {
        plain
    }
}

/// The stage of a transfer (the identity when none was set).
pub(crate) fn or_identity(stage: &Option<Arc<dyn Stage>>) -> Arc<dyn Stage> {
    stage.clone().unwrap_or_else(|| Arc::new(Identity))
}
