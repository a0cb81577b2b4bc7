//! A [`Connection`] over tokio-xmpp's client: STARTTLS with rustls and `ring`, plaintext only to loopback.
//!
//! One driver task owns a tokio-xmpp [`StanzaStream`] (the reconnecting, XEP-0198-aware stream under
//! tokio-xmpp's `Client`); [`XmppClient`] handles are cheap to clone and talk to it through a bounded
//! command queue. (tokio-xmpp 6.0's `Client` is not used: its receiver half polls a shared mutex with
//! `try_lock` and returns `Pending` without a waker when the sender holds it, which can stall incoming
//! stanzas forever; seen here as IQ answers that arrived but were never delivered.) The driver matches IQ answers to requests itself,
//! answers XEP-0199 pings and XEP-0030 `disco#info`, refuses IQ requests nobody registered for with
//! `service-unavailable` (as RFC 6120 requires), and broadcasts the rest on a bounded queue.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use jid::{BareJid, Jid};
use minidom::Element;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_xmpp::connect::{DnsConfig, ServerConnector, StartTlsServerConnector};
use tokio_xmpp::stanzastream::{Event, StanzaStage, StanzaState, StanzaStream, StreamEvent};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::xmlstream::{initiate_stream, PendingFeaturesRecv, StreamHeader};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::connection::{Connection, ConnectionExt, Incoming, IqRequest};
use crate::driver;
use crate::error::{Error, Result};

/// How the client reaches and secures the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// STARTTLS (RFC 6120) with certificate verification against the system roots. `server` overrides
    /// the SRV lookup of the JID's domain (`host:port`).
    StartTls {
        /// `host:port` to connect to instead of the SRV records of the JID's domain.
        server: Option<String>,
    },
    /// No TLS at all. Only accepted when the address is a loopback address: for tests against a local
    /// server. Anything else is refused with [`Error::Refused`].
    PlaintextLoopback {
        /// The loopback address of the server.
        addr: SocketAddr,
    },
}

/// Settings of an [`XmppClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The account's JID; a resource may be given, else the server picks one.
    pub jid: Jid,
    /// The account's password.
    pub password: String,
    /// How to reach the server.
    pub transport: Transport,
    /// How long [`XmppClient::connect`] waits for the session.
    pub connect_timeout: Duration,
    /// Capacity of the incoming stanza queue of each receiver (see [`Incoming`]).
    pub incoming_capacity: usize,
    /// Send an initial `<presence/>` once online (needed to receive pubsub notifications on most servers).
    pub send_presence: bool,
    /// XEP-0030 features announced in `disco#info` answers, besides ping and disco.
    pub features: Vec<String>,
    /// Namespaces of IQ requests forwarded to [`Connection::incoming`]; other requests are refused.
    pub iq_namespaces: Vec<String>,
}

impl ClientConfig {
    /// A configuration with defaults: 30 s connect timeout, a 1024-stanza queue, initial presence sent.
    pub fn new(jid: Jid, password: impl Into<String>, transport: Transport) -> Self {
        ClientConfig {
            jid,
            password: password.into(),
            transport,
            connect_timeout: Duration::from_secs(30),
            incoming_capacity: 1024,
            send_presence: true,
            features: Vec::new(),
            iq_namespaces: Vec::new(),
        }
    }
}

enum Command {
    Send(Box<Stanza>, oneshot::Sender<Result<()>>),
    Close(oneshot::Sender<()>),
}

type Pending = HashMap<String, (Option<Jid>, oneshot::Sender<Iq>)>;

struct Shared {
    jid: Jid,
    commands: mpsc::Sender<Command>,
    pending: Mutex<Pending>,
    incoming: broadcast::Sender<Arc<Stanza>>,
    iq_namespaces: Mutex<HashSet<String>>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A poisoned lock only means another thread panicked while holding it; the map is still valid.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An XMPP client connection implementing [`Connection`]. Clones share the same connection.
#[derive(Clone)]
pub struct XmppClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for XmppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppClient")
            .field("jid", &self.shared.jid)
            .finish_non_exhaustive()
    }
}

async fn check_loopback(addr: &SocketAddr) -> Result<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "plaintext XMPP is only allowed to loopback addresses, not {addr}"
        )))
    }
}

/// Plain TCP to a loopback server (tests, local deployments), with Nagle's algorithm off: tokio-xmpp's
/// own connector leaves it on, and a stanza written in two segments then waits for the peer's delayed
/// ACK, about 40 ms per request/answer round trip.
#[derive(Debug, Clone)]
struct NoDelayTcpConnector(DnsConfig);

impl ServerConnector for NoDelayTcpConnector {
    type Stream = tokio::io::BufStream<tokio::net::TcpStream>;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> std::result::Result<
        (
            PendingFeaturesRecv<Self::Stream>,
            sasl::common::ChannelBinding,
        ),
        tokio_xmpp::Error,
    > {
        let tcp = self.0.resolve().await?;
        tcp.set_nodelay(true)?;
        let header = StreamHeader {
            to: Some(std::borrow::Cow::Borrowed(jid.domain().as_str())),
            from: None,
            id: None,
        };
        let pending = initiate_stream(tokio::io::BufStream::new(tcp), ns, header, timeouts).await?;
        Ok((pending, sasl::common::ChannelBinding::None))
    }
}

impl XmppClient {
    /// Connects, authenticates, binds a resource and (by default) sends initial presence.
    pub async fn connect(config: ClientConfig) -> Result<XmppClient> {
        let timeouts = Timeouts::default();
        let jid = config.jid.clone();
        let password = config.password.clone();
        let mut stream = match &config.transport {
            Transport::StartTls { server } => {
                let dns = match server {
                    Some(s) => DnsConfig::addr(s),
                    None => DnsConfig::srv_default_client(config.jid.domain().as_str()),
                };
                StanzaStream::new_c2s(StartTlsServerConnector(dns), jid, password, timeouts, 64)
            }
            Transport::PlaintextLoopback { addr } => {
                check_loopback(addr).await?;
                let dns = DnsConfig::addr(&addr.to_string());
                StanzaStream::new_c2s(NoDelayTcpConnector(dns), jid, password, timeouts, 64)
            }
        };

        // tokio-xmpp retries failed logins (bad password included) with a backoff and reports nothing,
        // so a login that does not complete within the timeout is reported as such.
        let bound = tokio::time::timeout(config.connect_timeout, async {
            loop {
                match stream.next().await {
                    Some(Event::Stream(StreamEvent::Reset { bound_jid, .. })) => {
                        return Ok(bound_jid)
                    }
                    Some(_) => continue,
                    None => return Err(Error::Connection("stream ended".into())),
                }
            }
        })
        .await
        .map_err(|_| {
            Error::Connection(format!(
                "not logged in within {:?} (wrong credentials, or server unreachable)",
                config.connect_timeout
            ))
        })??;

        let (commands, command_rx) = mpsc::channel(64);
        let (incoming, _) = broadcast::channel(config.incoming_capacity.max(1));
        let shared = Arc::new(Shared {
            jid: bound,
            commands,
            pending: Mutex::new(HashMap::new()),
            incoming,
            iq_namespaces: Mutex::new(config.iq_namespaces.iter().cloned().collect()),
        });
        if config.send_presence {
            stream.send(Box::new(Presence::available().into())).await;
        }
        let driver = Driver {
            stream,
            jid: shared.jid.clone(),
            shared: Arc::downgrade(&shared),
            features: config.features,
            send_presence: config.send_presence,
        };
        tokio::spawn(driver.run(command_rx));
        Ok(XmppClient { shared })
    }

    /// Connects to a local test server without TLS (loopback addresses only).
    pub async fn connect_plaintext_loopback(
        jid: &str,
        password: &str,
        addr: SocketAddr,
    ) -> Result<XmppClient> {
        let jid = Jid::new(jid).map_err(|e| Error::InvalidArgument(format!("JID {jid}: {e}")))?;
        Self::connect(ClientConfig::new(
            jid,
            password,
            Transport::PlaintextLoopback { addr },
        ))
        .await
    }

    /// The account's bare JID.
    pub fn bare_jid(&self) -> BareJid {
        self.shared.jid.to_bare()
    }

    /// Forwards IQ requests with this payload namespace to [`Connection::incoming`] from now on.
    pub fn handle_iq_namespace(&self, ns: &str) {
        self.shared
            .iq_namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ns.to_owned());
    }

    /// Closes the session cleanly: waits until the server processed everything sent so far (a ping
    /// round trip), then ends the stream. Stanzas sent and not flushed could otherwise be lost.
    pub async fn close(self) -> Result<()> {
        let _ = self.ping(None).await;
        let (tx, rx) = oneshot::channel();
        if self.shared.commands.send(Command::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }
}

impl Connection for XmppClient {
    fn jid(&self) -> Jid {
        self.shared.jid.clone()
    }

    async fn send_stanza(&self, stanza: Stanza) -> Result<()> {
        // minidom's writer panics on characters XML forbids, and it would do so inside the stream's
        // worker, taking the connection down: refuse such stanzas here with a typed error.
        let element = match &stanza {
            Stanza::Message(m) => Element::from(m.clone()),
            Stanza::Presence(p) => Element::from(p.clone()),
            Stanza::Iq(i) => Element::from(i.clone()),
        };
        crate::xml::check_serialisable(&element)?;
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Send(Box::new(stanza), tx))
            .await
            .map_err(|_| Error::Connection("connection closed".into()))?;
        rx.await
            .map_err(|_| Error::Connection("connection closed".into()))?
    }

    async fn send_iq(&self, request: IqRequest) -> Result<Option<Element>> {
        let id = driver::iq_id("xs");
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending()
            .insert(id.clone(), (request.to.clone(), tx));
        let timeout = request.timeout;
        let iq = driver::request_iq(request, None, id.clone());
        if let Err(e) = self.send_stanza(iq.into()).await {
            self.shared.pending().remove(&id);
            return Err(e);
        }
        driver::await_answer(rx, timeout, || {
            self.shared.pending().remove(&id);
        })
        .await
    }

    fn incoming(&self) -> Incoming {
        Incoming::new(self.shared.incoming.subscribe())
    }
}

struct Driver {
    stream: StanzaStream,
    jid: Jid,
    shared: std::sync::Weak<Shared>,
    features: Vec<String>,
    send_presence: bool,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        tracing::trace!(jid = %self.jid, "driver started");
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Send(stanza, ack)) => {
                        // Enqueue only: the stream's own worker writes, so the driver keeps reading.
                        let mut token = self.stream.send(stanza).await;
                        tokio::spawn(async move {
                            let r = match token.wait_for(StanzaStage::Sent).await {
                                Some(StanzaState::Sent { .. }) | Some(StanzaState::Acked { .. }) => Ok(()),
                                Some(StanzaState::Failed { error }) => {
                                    Err(Error::Connection(error.into_io_error().to_string()))
                                }
                                _ => Err(Error::Connection("stream closed before the stanza was sent".into())),
                            };
                            let _ = ack.send(r);
                        });
                    }
                    Some(Command::Close(done)) => {
                        self.stream.close().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.stream.close().await;
                        return;
                    }
                },
                event = self.stream.next() => match event {
                    Some(event) => {
                        if !self.handle_event(event).await {
                            return;
                        }
                    }
                    None => return,
                },
            }
        }
    }

    /// Returns false when the handles are all gone.
    async fn handle_event(&mut self, event: Event) -> bool {
        tracing::trace!(jid = %self.jid, "event: {event:?}");
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        match event {
            Event::Stream(StreamEvent::Reset { .. }) => {
                // A new session (state lost): answers to IQs sent on the old one will never come.
                shared.pending().clear();
                if self.send_presence {
                    self.stream
                        .send(Box::new(Presence::available().into()))
                        .await;
                }
            }
            Event::Stream(StreamEvent::Suspended) => {
                tracing::debug!("XMPP stream suspended; tokio-xmpp reconnects");
            }
            Event::Stream(StreamEvent::Resumed) => {}
            Event::Stanza(Stanza::Iq(iq)) => self.handle_iq(&shared, iq).await,
            Event::Stanza(other) => {
                let _ = shared.incoming.send(Arc::new(other));
            }
        }
        true
    }

    async fn handle_iq(&mut self, shared: &Shared, iq: Iq) {
        match iq {
            Iq::Result {
                ref id, ref from, ..
            }
            | Iq::Error {
                ref id, ref from, ..
            } => {
                let mut pending = shared.pending();
                let matches = pending.get(id).is_some_and(|(to, _)| {
                    answer_from_matches(to.as_ref(), from.as_ref(), &shared.jid)
                });
                if matches {
                    if let Some((_, tx)) = pending.remove(id) {
                        let _ = tx.send(iq);
                    }
                } else {
                    tracing::debug!("dropping an IQ answer that matches no request");
                }
            }
            Iq::Get {
                ref from,
                ref id,
                ref payload,
                ..
            }
            | Iq::Set {
                ref from,
                ref id,
                ref payload,
                ..
            } => {
                let is_get = matches!(iq, Iq::Get { .. });
                let answer = if is_get && payload.is("ping", "urn:xmpp:ping") {
                    Some(Iq::Result {
                        from: None,
                        to: from.clone(),
                        id: id.clone(),
                        payload: None,
                    })
                } else if is_get
                    && payload.is("query", "http://jabber.org/protocol/disco#info")
                    && payload.attr("node").is_none()
                {
                    Some(Iq::Result {
                        from: None,
                        to: from.clone(),
                        id: id.clone(),
                        payload: Some(self.disco_info(shared)),
                    })
                } else if shared
                    .iq_namespaces
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(payload.ns().as_str())
                {
                    let _ = shared.incoming.send(Arc::new(Stanza::Iq(iq.clone())));
                    None
                } else {
                    Some(Iq::Error {
                        from: None,
                        to: from.clone(),
                        id: id.clone(),
                        error: StanzaError::new(
                            ErrorType::Cancel,
                            DefinedCondition::ServiceUnavailable,
                            "en",
                            "not handled by this client",
                        ),
                        payload: None,
                    })
                };
                if let Some(answer) = answer {
                    self.stream.send(Box::new(answer.into())).await;
                }
            }
        }
    }

    fn disco_info(&self, shared: &Shared) -> Element {
        let namespaces: Vec<String> = shared
            .iq_namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        driver::disco_info(
            ("client", "bot", "xmpp-social"),
            self.features.iter().cloned().chain(namespaces),
        )
    }
}

/// RFC 6120 §10.1: an answer must come from the entity the request was sent to; a request without `to`
/// is answered by the account's server (no `from`, or the bare or full account JID).
fn answer_from_matches(to: Option<&Jid>, from: Option<&Jid>, own: &Jid) -> bool {
    match (to, from) {
        (Some(to), Some(from)) => to == from || (to.to_bare() == own.to_bare() && from == own),
        (Some(to), None) => to.to_bare() == own.to_bare(),
        (None, None) => true,
        (None, Some(from)) => {
            from.to_bare() == own.to_bare() || from.as_str() == own.domain().as_str()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::new(s).expect("valid test JID")
    }

    #[test]
    fn answers_must_come_from_the_addressee() {
        let own = j("alice@example.org/r");
        assert!(answer_from_matches(
            Some(&j("pubsub.example.org")),
            Some(&j("pubsub.example.org")),
            &own
        ));
        assert!(!answer_from_matches(
            Some(&j("pubsub.example.org")),
            Some(&j("evil.example")),
            &own
        ));
        assert!(answer_from_matches(None, None, &own));
        assert!(answer_from_matches(
            None,
            Some(&j("alice@example.org")),
            &own
        ));
        assert!(!answer_from_matches(
            None,
            Some(&j("bob@example.org")),
            &own
        ));
    }

    #[test]
    fn control_characters_are_refused_before_the_stream() {
        let mut m = xmpp_parsers::message::Message::new(Some(j("bob@example.org")));
        m.bodies.insert(Default::default(), "nul\u{0}byte".into());
        let el = Element::from(m);
        assert!(crate::xml::check_serialisable(&el).is_err());
    }

    #[tokio::test]
    async fn plaintext_refused_off_loopback() {
        let cfg = ClientConfig::new(
            j("alice@example.org"),
            "pw",
            Transport::PlaintextLoopback {
                addr: "192.0.2.1:5222".parse().expect("addr"),
            },
        );
        assert!(matches!(
            XmppClient::connect(cfg).await,
            Err(Error::Refused(_))
        ));
    }
}
