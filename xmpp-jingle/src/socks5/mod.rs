//! SOCKS5 bytestreams (XEP-0065 1.8) and the Jingle SOCKS5 transport (XEP-0260 1.0.3).
//!
//! - [`proto`]: the SOCKS5 (RFC 1928) subset XEP-0065 uses, as sans-IO client and server handshakes,
//!   and the DST.ADDR hash.
//! - [`net`]: thin tokio helpers: connect to a streamhost/candidate with a timeout, accept on a local
//!   listener and match the expected DST.ADDR.
//! - [`bytestreams`]: the XEP-0065 `<query/>` element, proxy discovery, activation, and the requester
//!   and target flows over any [`xmpp_social::Connection`].
//! - [`transport`]: the XEP-0260 `<transport/>` element and candidate priorities.
//! - [`negotiation`]: the sans-IO XEP-0260 candidate negotiation (which pair is nominated, proxy
//!   activation, or failure so the session can replace the transport with IBB).

pub mod bytestreams;
pub mod negotiation;
pub mod net;
pub mod proto;
pub mod transport;

use std::time::Duration;

pub use proto::{dst_addr, HandshakeError};

/// Errors of SOCKS5 bytestreams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Socks5Error {
    /// The SOCKS5 handshake failed (malformed or hostile bytes, refusal).
    #[error("SOCKS5 handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A socket operation failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing happened in time.
    #[error("timed out after {0:?}: {1}")]
    Timeout(Duration, &'static str),
    /// An element could not be parsed.
    #[error(transparent)]
    Parse(#[from] xmpp_social::ParseError),
    /// The XMPP side failed (IQ error, timeout, connection).
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::Error),
    /// No streamhost or candidate could be used.
    #[error("no usable streamhost: {0}")]
    NoStreamhost(String),
    /// The peer said something that does not fit the exchange.
    #[error("protocol: {0}")]
    Protocol(String),
}
