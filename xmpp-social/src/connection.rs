//! The one connection abstraction of the SDK.
//!
//! Everything that talks XMPP (pubsub, microblogging, the cache's sync engine, OMEMO device lists, Jingle,
//! the ActivityPub gateway) goes through [`Connection`]: send a stanza, send an IQ and await its result with a
//! timeout, and receive incoming stanzas. [`crate::client::XmppClient`] implements it over tokio-xmpp; a
//! component connection implements it for gateways; tests may implement it for fault injection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jid::Jid;
use minidom::Element;
use tokio::sync::broadcast;
use xmpp_parsers::stanza::Stanza;

use crate::error::{Error, Result};

/// The default time an IQ waits for its answer.
pub const DEFAULT_IQ_TIMEOUT: Duration = Duration::from_secs(30);

/// The type of an IQ request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    /// `type='get'`.
    Get,
    /// `type='set'`.
    Set,
}

/// An IQ request: recipient, type, payload and how long to wait for the answer.
#[derive(Debug, Clone)]
pub struct IqRequest {
    /// The recipient; `None` addresses the account itself (its server, or its PEP service).
    pub to: Option<Jid>,
    /// `get` or `set`.
    pub kind: IqType,
    /// The single child element of the IQ.
    pub payload: Element,
    /// How long to wait for a result or error before [`Error::Timeout`].
    pub timeout: Duration,
}

impl IqRequest {
    /// A `get` request with the default timeout.
    pub fn get(to: Option<Jid>, payload: Element) -> Self {
        IqRequest {
            to,
            kind: IqType::Get,
            payload,
            timeout: DEFAULT_IQ_TIMEOUT,
        }
    }

    /// A `set` request with the default timeout.
    pub fn set(to: Option<Jid>, payload: Element) -> Self {
        IqRequest {
            to,
            kind: IqType::Set,
            payload,
            timeout: DEFAULT_IQ_TIMEOUT,
        }
    }

    /// The same request with another timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Why [`Incoming::recv`] returned no stanza.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// This receiver fell behind and the bounded queue dropped this many stanzas for it. The receiver is
    /// usable again; a consumer that must not miss anything (a cache) should resynchronise.
    #[error("fell behind: {0} stanzas were dropped for this receiver")]
    Lagged(u64),
    /// The connection is closed for good.
    #[error("connection closed")]
    Closed,
}

/// A receiver of incoming stanzas (messages, presences, and IQ requests), each receiver seeing every
/// stanza. IQ results and errors are not delivered here: [`Connection::send_iq`] returns them.
///
/// The queue behind it is bounded: a receiver that does not keep up gets [`RecvError::Lagged`].
#[derive(Debug)]
pub struct Incoming {
    rx: broadcast::Receiver<Arc<Stanza>>,
}

impl Incoming {
    /// Wraps a broadcast receiver (for implementors of [`Connection`]).
    pub fn new(rx: broadcast::Receiver<Arc<Stanza>>) -> Self {
        Incoming { rx }
    }

    /// Waits for the next stanza.
    pub async fn recv(&mut self) -> std::result::Result<Arc<Stanza>, RecvError> {
        self.rx.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }

    /// Returns a stanza if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<std::result::Result<Arc<Stanza>, RecvError>> {
        match self.rx.try_recv() {
            Ok(s) => Some(Ok(s)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        }
    }
}

/// A live XMPP connection: the only way the SDK's crates talk to the network.
pub trait Connection: Send + Sync {
    /// The full JID this connection is bound to (for a component, its domain).
    fn jid(&self) -> Jid;

    /// Sends a stanza. Returns once it was handed to the transport; this says nothing about delivery.
    fn send_stanza(&self, stanza: Stanza) -> impl Future<Output = Result<()>> + Send;

    /// Sends an IQ and waits for its answer: `Ok(payload)` for `type='result'` (the payload is optional in
    /// XMPP), [`Error::Stanza`] for `type='error'`, [`Error::Timeout`] when nothing came in time.
    fn send_iq(&self, request: IqRequest) -> impl Future<Output = Result<Option<Element>>> + Send;

    /// A new receiver of incoming stanzas, seeing those that arrive from now on.
    fn incoming(&self) -> Incoming;
}

/// Typed conveniences on every [`Connection`].
pub trait ConnectionExt: Connection {
    /// Sends an IQ and parses the result payload into `T`; a missing payload is a parse error.
    fn iq_typed<T>(&self, request: IqRequest) -> impl Future<Output = Result<T>> + Send
    where
        T: TryFrom<Element>,
        T::Error: std::fmt::Display,
    {
        let expected = request.payload.name().to_owned();
        async move {
            let payload = self.send_iq(request).await?.ok_or_else(|| {
                Error::Parse(crate::error::ParseError::InvalidValue {
                    element: "iq",
                    reason: format!("empty result where <{expected}/> was expected"),
                })
            })?;
            T::try_from(payload).map_err(|e| {
                Error::Parse(crate::error::ParseError::InvalidValue {
                    element: "iq",
                    reason: e.to_string(),
                })
            })
        }
    }

    /// Sends an IQ whose answer must carry a payload (`<child/>` names it in the error otherwise) and parses
    /// that payload with `parse`.
    fn iq_parsed<T, F>(
        &self,
        request: IqRequest,
        child: &'static str,
        parse: F,
    ) -> impl Future<Output = Result<T>> + Send
    where
        T: Send,
        F: FnOnce(&Element) -> std::result::Result<T, crate::error::ParseError> + Send,
    {
        async move {
            let payload =
                self.send_iq(request)
                    .await?
                    .ok_or(crate::error::ParseError::MissingChild {
                        element: "iq",
                        child,
                    })?;
            Ok(parse(&payload)?)
        }
    }

    /// Sends a XEP-0199 ping to `to` (or to the server) and waits for the answer. Useful to flush: once it
    /// is answered, every stanza sent before it has been processed by the server.
    fn ping(&self, to: Option<Jid>) -> impl Future<Output = Result<()>> + Send {
        let payload = Element::builder("ping", "urn:xmpp:ping").build();
        async move { self.send_iq(IqRequest::get(to, payload)).await.map(|_| ()) }
    }
}

impl<C: Connection + ?Sized> ConnectionExt for C {}
