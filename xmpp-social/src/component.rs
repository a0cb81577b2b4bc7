//! `ComponentConnection`: an XMPP component (XEP-0114, `jabber:component:accept`) implementing
//! [`Connection`], for gateways and services that own a whole domain.
//!
//! Written directly on rxml's incremental parser and minidom's tree builder rather than tokio-xmpp's
//! `Component`: xmpp-parsers' `component` feature (which switches the default namespace of the whole
//! build) is never enabled, and tokio-xmpp 6.0's stream layer refuses the `version`-less stream header
//! that XEP-0114 servers (Prosody, ejabberd) send. The stream namespace is rewritten to `jabber:client`
//! on receipt and back on sending, so every xmpp-parsers type works unchanged. The connection reconnects
//! (bounded exponential backoff), a stanza that does not parse (bad JID, unknown type) is answered or
//! dropped without ending the stream, and stanzas larger than [`MAX_STANZA_BYTES`] end the stream
//! instead of growing memory.
//!
//! Every stanza a component sends must carry `from`: [`Connection::send_stanza`] fills in the
//! component's JID when it is missing, and [`ComponentConnection::send_iq_from`] sends requests from any
//! JID of the component's domain (the virtual JIDs of a gateway).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jid::{BareJid, Jid};
use minidom::rxml::error::EndOrError;
use minidom::rxml::{Parse, RawEvent, RawParser};
use minidom::tree_builder::TreeBuilder;
use minidom::{Element, Node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use xmpp_parsers::component::Handshake;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::connection::{Connection, Incoming, IqRequest};
use crate::driver;
use crate::error::{Error, Result};
use crate::xml::BuilderExt;

/// The stream namespace of XEP-0114.
pub const NS_COMPONENT: &str = "jabber:component:accept";
const NS_CLIENT: &str = "jabber:client";

/// Settings of a [`ComponentConnection`].
#[derive(Clone)]
pub struct ComponentConfig {
    /// The component's domain (e.g. `ap.example.org`).
    pub jid: BareJid,
    /// The server's component port.
    pub server: SocketAddr,
    /// The shared secret. Never logged.
    pub secret: String,
    /// Capacity of the incoming broadcast (slow receivers get `Lagged`).
    pub incoming_capacity: usize,
    /// Namespaces of IQ requests delivered to [`Connection::incoming`]; others are answered
    /// `service-unavailable` (ping and `disco#info` without node are answered by the connection).
    pub iq_namespaces: Vec<String>,
    /// `disco#info` identity (category, type, name) of the component.
    pub identity: (String, String, String),
    /// Features announced in `disco#info` besides ping and the IQ namespaces.
    pub features: Vec<String>,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// Attempts before giving up after a disconnection (the first connection is attempted once).
    pub max_reconnects: u32,
}

impl std::fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("jid", &self.jid)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl ComponentConfig {
    /// Defaults: a 1024-stanza incoming queue, a `gateway`/`generic` identity, up to 20
    /// reconnection attempts at most 30 s apart.
    pub fn new(jid: BareJid, server: SocketAddr, secret: impl Into<String>) -> Self {
        ComponentConfig {
            jid,
            server,
            secret: secret.into(),
            incoming_capacity: 1024,
            iq_namespaces: Vec::new(),
            identity: (
                "gateway".into(),
                "generic".into(),
                "xmpp-social component".into(),
            ),
            features: Vec::new(),
            max_backoff: Duration::from_secs(30),
            max_reconnects: 20,
        }
    }
}

type Pending = HashMap<String, (Jid, oneshot::Sender<Iq>)>;

struct Shared {
    jid: Jid,
    commands: mpsc::Sender<Element>,
    pending: Mutex<Pending>,
    incoming: broadcast::Sender<Arc<Stanza>>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An XEP-0114 component connection; clones share it.
#[derive(Clone)]
pub struct ComponentConnection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ComponentConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConnection")
            .field("jid", &self.shared.jid)
            .finish_non_exhaustive()
    }
}

/// Copies `el` with every element in namespace `from` moved to `to` (the stream's default namespace
/// changes between the component wire and xmpp-parsers' types).
pub fn rename_namespace(el: &Element, from: &str, to: &str) -> Element {
    let ns = el.ns();
    let mut out = Element::builder(el.name(), if ns == from { to } else { ns.as_str() }).build();
    *out.attrs_mut() = el.attrs().clone();
    for node in el.nodes() {
        match node {
            Node::Element(child) => {
                out.append_node(Node::Element(rename_namespace(child, from, to)))
            }
            Node::Text(text) => out.append_node(Node::Text(text.clone())),
        }
    }
    out
}

/// The largest stanza accepted from the server (Prosody's default component limit is 10 MiB).
pub const MAX_STANZA_BYTES: usize = 16 * 1024 * 1024;

/// One side of an XML stream: the incremental parser, the tree under construction and the stream id.
struct XmlReader {
    io: OwnedReadHalf,
    parser: RawParser,
    tree: TreeBuilder,
    buf: Vec<u8>,
    /// Bytes received since the current top-level stanza began.
    stanza_bytes: usize,
    header_id: Option<String>,
    header_done: bool,
}

/// What the reader produced.
enum Read {
    Header,
    Stanza(Element),
    Closed,
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl XmlReader {
    fn new(io: OwnedReadHalf) -> Self {
        XmlReader {
            io,
            parser: RawParser::default(),
            tree: TreeBuilder::new(),
            buf: Vec::new(),
            stanza_bytes: 0,
            header_id: None,
            header_done: false,
        }
    }

    /// The next stream header, stanza or end of stream. Cancellation-safe: the only await is a read
    /// whose bytes are kept in `self`.
    async fn next(&mut self) -> std::io::Result<Read> {
        loop {
            let mut slice: &[u8] = &self.buf;
            let before = slice.len();
            let result = loop {
                match self.parser.parse(&mut slice, false) {
                    Ok(Some(event)) => {
                        let foot = matches!(event, RawEvent::ElementFoot(_));
                        let head_close = matches!(event, RawEvent::ElementHeadClose(_));
                        self.tree.process_event(event).map_err(invalid)?;
                        if head_close && self.tree.depth() == 1 && !self.header_done {
                            self.header_done = true;
                            self.header_id = self
                                .tree
                                .top()
                                .and_then(|root| root.attr("id"))
                                .map(str::to_owned);
                            break Some(Read::Header);
                        }
                        if foot && self.tree.depth() == 1 {
                            self.stanza_bytes = 0;
                            if let Some(el) = self.tree.unshift_child() {
                                break Some(Read::Stanza(el));
                            }
                        }
                        if foot && self.tree.depth() == 0 {
                            break Some(Read::Closed);
                        }
                    }
                    Ok(None) => break Some(Read::Closed),
                    Err(EndOrError::NeedMoreData) => break None,
                    Err(EndOrError::Error(e)) => return Err(invalid(e)),
                }
            };
            let consumed = before - slice.len();
            self.buf.drain(..consumed);
            if let Some(r) = result {
                return Ok(r);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Read::Closed);
            }
            self.stanza_bytes += n;
            if self.stanza_bytes > MAX_STANZA_BYTES {
                return Err(invalid("stanza too large"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

struct Stream {
    reader: XmlReader,
    writer: OwnedWriteHalf,
}

impl Stream {
    async fn send(&mut self, el: &Element) -> std::io::Result<()> {
        // Never minidom's writer directly: it panics on some received trees (see xml::to_xml_string).
        let out = crate::xml::to_xml_string(el).map_err(invalid)?;
        self.writer.write_all(out.as_bytes()).await
    }

    async fn close(&mut self) {
        let _ = self.writer.write_all(b"</stream:stream>").await;
        let _ = self.writer.shutdown().await;
    }
}

async fn open_stream(config: &ComponentConfig) -> Result<Stream> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Error::Connection(format!("component {what} ({}): {e}", config.server))
    };
    let tcp = TcpStream::connect(config.server)
        .await
        .map_err(|e| fail("connect", &e))?;
    let (read, mut writer) = tcp.into_split();
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
        config.jid
    );
    writer
        .write_all(header.as_bytes())
        .await
        .map_err(|e| fail("stream", &e))?;
    let mut stream = Stream {
        reader: XmlReader::new(read),
        writer,
    };
    let wait = Duration::from_secs(30);
    let step = |r: std::result::Result<std::io::Result<Read>, tokio::time::error::Elapsed>| match r
    {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(e)) => Err(fail("stream", &e)),
        Err(_) => Err(fail("stream", &"no answer in time")),
    };
    match step(tokio::time::timeout(wait, stream.reader.next()).await)? {
        Read::Header => {}
        _ => return Err(fail("stream", &"no stream header")),
    }
    let stream_id = stream
        .reader
        .header_id
        .clone()
        .ok_or_else(|| fail("stream", &"no stream id"))?;
    let handshake = Element::from(Handshake::from_stream_id_and_password(
        stream_id,
        &config.secret,
    ));
    stream
        .send(&rename_namespace(&handshake, NS_CLIENT, NS_COMPONENT))
        .await
        .map_err(|e| fail("handshake", &e))?;
    match step(tokio::time::timeout(wait, stream.reader.next()).await)? {
        Read::Stanza(el) if el.is("handshake", NS_COMPONENT) => Ok(stream),
        Read::Stanza(el) => Err(fail("handshake", &format!("refused: <{}/>", el.name()))),
        _ => Err(fail("handshake", &"refused: stream closed")),
    }
}

impl ComponentConnection {
    /// Connects and authenticates (one attempt; later disconnections are retried).
    pub async fn connect(config: ComponentConfig) -> Result<ComponentConnection> {
        let stream = open_stream(&config).await?;
        let (commands, rx) = mpsc::channel(256);
        let (incoming, _) = broadcast::channel(config.incoming_capacity.max(1));
        let shared = Arc::new(Shared {
            jid: config.jid.clone().into(),
            commands,
            pending: Mutex::new(HashMap::new()),
            incoming,
        });
        let driver = Driver {
            config,
            shared: Arc::downgrade(&shared),
            iq_namespaces: HashSet::new(),
        };
        tokio::spawn(driver.run(stream, rx));
        Ok(ComponentConnection { shared })
    }

    /// Sends an IQ request from `from` (any JID of the component's domain) and waits for the answer,
    /// which must come from `request.to`.
    pub async fn send_iq_from(&self, from: Jid, request: IqRequest) -> Result<Option<Element>> {
        let to = request
            .to
            .clone()
            .ok_or_else(|| Error::InvalidArgument("a component IQ needs a recipient".into()))?;
        let id = driver::iq_id("xc");
        let (tx, rx) = oneshot::channel();
        self.shared.pending().insert(id.clone(), (to, tx));
        let timeout = request.timeout;
        let iq = driver::request_iq(request, Some(from), id.clone());
        if let Err(e) = self.send_stanza(iq.into()).await {
            self.shared.pending().remove(&id);
            return Err(e);
        }
        driver::await_answer(rx, timeout, || {
            self.shared.pending().remove(&id);
        })
        .await
    }
}

impl Connection for ComponentConnection {
    fn jid(&self) -> Jid {
        self.shared.jid.clone()
    }

    async fn send_stanza(&self, stanza: Stanza) -> Result<()> {
        let own = || Some(self.shared.jid.clone());
        let element = match stanza {
            Stanza::Message(mut m) => {
                m.from = m.from.or_else(own);
                Element::from(m)
            }
            Stanza::Presence(mut p) => {
                p.from = p.from.or_else(own);
                Element::from(p)
            }
            Stanza::Iq(mut i) => {
                match &mut i {
                    Iq::Get { from, .. }
                    | Iq::Set { from, .. }
                    | Iq::Result { from, .. }
                    | Iq::Error { from, .. } => *from = from.take().or_else(own),
                }
                Element::from(i)
            }
        };
        crate::xml::check_serialisable(&element)?;
        self.shared
            .commands
            .send(rename_namespace(&element, NS_CLIENT, NS_COMPONENT))
            .await
            .map_err(|_| Error::Connection("component connection closed".into()))
    }

    async fn send_iq(&self, request: IqRequest) -> Result<Option<Element>> {
        let from = self.shared.jid.clone();
        self.send_iq_from(from, request).await
    }

    fn incoming(&self) -> Incoming {
        Incoming::new(self.shared.incoming.subscribe())
    }
}

struct Driver {
    config: ComponentConfig,
    shared: std::sync::Weak<Shared>,
    iq_namespaces: HashSet<String>,
}

enum Exit {
    Closed,
    Disconnected,
}

impl Driver {
    async fn run(mut self, mut stream: Stream, mut commands: mpsc::Receiver<Element>) {
        self.iq_namespaces = self.config.iq_namespaces.iter().cloned().collect();
        loop {
            match self.pump(&mut stream, &mut commands).await {
                Exit::Closed => {
                    stream.close().await;
                    return;
                }
                Exit::Disconnected => {}
            }
            // Fail the requests in flight; their answers are lost with the stream.
            if let Some(shared) = self.shared.upgrade() {
                shared.pending().clear();
            }
            let mut delay = Duration::from_millis(250);
            let mut attempt = 0;
            stream = loop {
                if self.shared.upgrade().is_none() || attempt >= self.config.max_reconnects {
                    tracing::warn!(jid = %self.config.jid, "component connection given up");
                    return;
                }
                attempt += 1;
                tokio::time::sleep(delay).await;
                match open_stream(&self.config).await {
                    Ok(s) => break s,
                    Err(e) => {
                        tracing::debug!(attempt, error = %e, "component reconnection failed");
                        delay = (delay * 2).min(self.config.max_backoff);
                    }
                }
            };
            tracing::info!(jid = %self.config.jid, "component reconnected");
        }
    }

    async fn pump(&self, stream: &mut Stream, commands: &mut mpsc::Receiver<Element>) -> Exit {
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(el) => {
                        if let Err(e) = stream.send(&el).await {
                            tracing::debug!(error = %e, "component send failed");
                            return Exit::Disconnected;
                        }
                    }
                    None => return Exit::Closed,
                },
                item = stream.reader.next() => match item {
                    Ok(Read::Stanza(el)) => {
                        let Some(shared) = self.shared.upgrade() else { return Exit::Closed };
                        if let Some(answer) = self.handle(&shared, el) {
                            if stream.send(&answer).await.is_err() {
                                return Exit::Disconnected;
                            }
                        }
                    }
                    Ok(Read::Header) => {}
                    Ok(Read::Closed) => return Exit::Disconnected,
                    Err(e) => {
                        tracing::debug!(error = %e, "component stream ended");
                        return Exit::Disconnected;
                    }
                },
            }
        }
    }

    /// Handles one element from the server; returns an answer to send, if any.
    fn handle(&self, shared: &Shared, el: Element) -> Option<Element> {
        if el.ns() != NS_COMPONENT {
            return None;
        }
        let el = rename_namespace(&el, NS_COMPONENT, NS_CLIENT);
        let stanza = match el.name() {
            "iq" => Iq::try_from(el.clone())
                .map(Stanza::Iq)
                .map_err(|e| e.to_string()),
            "message" => xmpp_parsers::message::Message::try_from(el.clone())
                .map(Stanza::Message)
                .map_err(|e| e.to_string()),
            "presence" => xmpp_parsers::presence::Presence::try_from(el.clone())
                .map(Stanza::Presence)
                .map_err(|e| e.to_string()),
            _ => return None,
        };
        let stanza = match stanza {
            Ok(s) => s,
            Err(reason) => {
                // One bad stanza never ends the stream; IQ requests get a bad-request error.
                tracing::debug!(%reason, "unparsable stanza dropped");
                return self.bad_request(&el);
            }
        };
        match stanza {
            Stanza::Iq(iq) => self.handle_iq(shared, iq),
            other => {
                let _ = shared.incoming.send(Arc::new(other));
                None
            }
        }
    }

    fn bad_request(&self, el: &Element) -> Option<Element> {
        if el.name() != "iq" || !matches!(el.attr("type"), Some("get") | Some("set")) {
            return None;
        }
        let mut answer = Element::builder("iq", NS_COMPONENT)
            .a("type", "error")
            .a("id", el.attr("id").unwrap_or_default())
            .a_opt("to", el.attr("from"))
            .a_opt("from", el.attr("to"))
            .build();
        let error = StanzaError::new(
            ErrorType::Modify,
            DefinedCondition::BadRequest,
            "en",
            "malformed stanza",
        );
        answer.append_child(rename_namespace(
            &Element::from(error),
            NS_CLIENT,
            NS_COMPONENT,
        ));
        Some(answer)
    }

    fn handle_iq(&self, shared: &Shared, iq: Iq) -> Option<Element> {
        let reply =
            |to: Option<Jid>, from: Option<Jid>, id: String, payload: Option<Element>| Iq::Result {
                from,
                to,
                id,
                payload,
            };
        let answer = match iq {
            Iq::Result {
                ref id, ref from, ..
            }
            | Iq::Error {
                ref id, ref from, ..
            } => {
                let mut pending = shared.pending();
                // RFC 6120 §10.1: the answer must come from the entity the request went to.
                let matches = pending
                    .get(id)
                    .is_some_and(|(to, _)| from.as_ref() == Some(to));
                if matches {
                    if let Some((_, tx)) = pending.remove(id) {
                        let _ = tx.send(iq);
                    }
                }
                return None;
            }
            Iq::Get {
                ref from,
                ref to,
                ref id,
                ref payload,
            } if payload.is("ping", "urn:xmpp:ping") => {
                reply(from.clone(), to.clone(), id.clone(), None)
            }
            Iq::Get {
                ref from,
                ref to,
                ref id,
                ref payload,
            } if payload.is("query", "http://jabber.org/protocol/disco#info")
                && payload.attr("node").is_none()
                && to.as_ref() == Some(&shared.jid) =>
            {
                reply(
                    from.clone(),
                    to.clone(),
                    id.clone(),
                    Some(self.disco_info()),
                )
            }
            Iq::Get {
                ref from,
                ref to,
                ref id,
                ref payload,
            }
            | Iq::Set {
                ref from,
                ref to,
                ref id,
                ref payload,
            } => {
                if self.iq_namespaces.contains(payload.ns().as_str()) {
                    let _ = shared.incoming.send(Arc::new(Stanza::Iq(iq.clone())));
                    return None;
                }
                Iq::Error {
                    from: to.clone(),
                    to: from.clone(),
                    id: id.clone(),
                    error: StanzaError::new(
                        ErrorType::Cancel,
                        DefinedCondition::ServiceUnavailable,
                        "en",
                        "not handled by this component",
                    ),
                    payload: None,
                }
            }
        };
        Some(rename_namespace(
            &Element::from(answer),
            NS_CLIENT,
            NS_COMPONENT,
        ))
    }

    fn disco_info(&self) -> Element {
        let (category, kind, name) = &self.config.identity;
        driver::disco_info(
            (category, kind, name),
            self.config
                .features
                .iter()
                .chain(self.iq_namespaces.iter())
                .cloned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_renamed_deeply_and_only_the_stream_one() {
        let xml = "<message xmlns='jabber:component:accept' to='a@b' type='chat'>\
            <body>hi</body><x xmlns='urn:other'><body>kept</body></x></message>";
        let el: Element = xml.parse().expect("test XML");
        let out = rename_namespace(&el, NS_COMPONENT, NS_CLIENT);
        assert_eq!(out.ns(), NS_CLIENT);
        assert_eq!(out.attr("to"), Some("a@b"));
        assert!(out.get_child("body", NS_CLIENT).is_some());
        let x = out.get_child("x", "urn:other").expect("x kept");
        assert!(x.get_child("body", "urn:other").is_some());
        let back = rename_namespace(&out, NS_CLIENT, NS_COMPONENT);
        assert_eq!(back, el);
        assert!(xmpp_parsers::message::Message::try_from(out).is_ok());
    }
}
