//! A thin tokio driver over [`xmpp_social::Connection`]: runs the [`SessionManager`], negotiates the
//! bytestream of each transfer, and offers file transfer (XEP-0234) as a few calls:
//! [`JingleClient::send_file`], [`JingleClient::request_file`], and [`IncomingOffer::accept`] /
//! [`IncomingOffer::serve`] for what peers offer or ask.
//!
//! Tasks: one *router* reads incoming stanzas (Jingle IQs go to the actor, IBB IQs to the bytestream that
//! expects them); one *actor* owns the session machine, so no lock is ever held across an await; each
//! request to the peer runs in its own small task and reports back. Every queue is bounded.
//!
//! The connection must forward IQ requests of [`IQ_NAMESPACES`] to [`xmpp_social::Connection::incoming`]
//! (for `XmppClient`: `handle_iq_namespace` for each), and should announce [`FEATURES`] in disco#info.
//!
//! # Transports
//!
//! [`DriverConfig::transports`] picks the policy ([`TransportPolicy`]). By default the initiator offers
//! SOCKS5 (XEP-0260): a direct candidate (a listener on [`Socks5Config::listen`], advertised as
//! [`Socks5Config::advertise_hosts`]) and the server's proxies (found once per client by
//! [`crate::socks5::bytestreams::discover_proxies`]); the responder answers with its own candidates in
//! session-accept; both try the other's and report `candidate-used`/`candidate-error` in
//! transport-info; the nominated pair wins per XEP-0260 §2.4 and a nominated proxy is activated by the
//! side that offered it. When that fails (both sides report errors, `proxy-error`, timeouts) the
//! initiator sends transport-replace with an IBB transport (XEP-0261) and the responder accepts it; a
//! transport-replace from the peer is accepted on either side. Outcomes say which transport carried the
//! bytes ([`TransportMethod`]).
//!
//! # Pipeline and the stage seam
//!
//! Sending: file reader → sha-256 + sha-1 of the plaintext → *stage* → transport. Receiving: transport →
//! *stage* → sha-256 + sha-1 of the plaintext → file writer. The stage is the crate-private
//! `driver::stage::Stage` trait (identity by default), set per transfer through
//! `SendOptions::stage` and `IncomingOffer::set_stage`: XEP-0391 (JET) puts its cipher there. `<size/>`,
//! ranges and hashes always describe the plaintext file; the transport carries `Stage::wire_len(size)`
//! bytes ([`SendOutcome::wire_bytes`], [`ReceiveOutcome::wire_bytes`]). Extra `<content/>` children
//! (e.g. `<security xmlns='urn:xmpp:jingle:jet:0'/>`) go out with [`SendOptions::extra`] and are read
//! on the other side with [`IncomingOffer::content_extra`].

mod link;
pub(crate) mod stage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_social::connection::RecvError;
use xmpp_social::{Connection, IqRequest};

use crate::error::{Error, Result};
use crate::ft::{Checksum, File, FileDescription, FtInfo, Range, Received, NS_FT};
use crate::hashes::{HashCheck, HashUsed, StreamHasher, NS_HASHES, SHA_1, SHA_256};
use crate::ibb::{IbbPayload, IbbReceiver, IbbSender, DEFAULT_BLOCK_SIZE, NS_IBB};
use crate::jingle::{
    Content, Creator, Description, Reason, ReasonCondition, Senders, Transport, NS_JINGLE,
};
use crate::jingle_ibb::{IbbTransport, NS_JINGLE_IBB};
use crate::session::{
    Event, EventKind, Output, RequestError, RequestId, SessionConfig, SessionManager,
};
use crate::socks5::bytestreams::StreamHost;
use crate::socks5::transport::NS_S5B;
use link::Link;
use stage::{BoxRead, BoxWrite, Stage};

/// IQ payload namespaces the connection must forward to this driver.
pub const IQ_NAMESPACES: [&str; 2] = [NS_JINGLE, NS_IBB];
/// Disco features of what this driver implements, to announce in disco#info (with feature `jet`:
/// XEP-0391 and XEP-0396 too). A slice, so its type is the same with and without `jet`.
pub const FEATURES: &[&str] = &[
    NS_JINGLE,
    NS_FT,
    NS_JINGLE_IBB,
    NS_IBB,
    NS_HASHES,
    NS_S5B,
    #[cfg(feature = "jet")]
    crate::jet::NS_JET,
    #[cfg(feature = "jet")]
    crate::jet::NS_JET_OMEMO,
];

/// Capacity of each bounded queue of the driver.
const QUEUE: usize = 64;
/// Blocks buffered per bytestream between the router and the writer (flow control makes 1 the norm).
const IBB_QUEUE: usize = 8;

/// Which transports file transfers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportPolicy {
    /// Offer SOCKS5 (XEP-0260); replace it with in-band bytestreams when it fails.
    #[default]
    Socks5ThenIbb,
    /// In-band bytestreams only (offered as such; a SOCKS5 offer is answered without candidates so the
    /// initiator falls back).
    IbbOnly,
    /// SOCKS5 only: a failed negotiation ends the session with `connectivity-error`, and IBB
    /// replacements are refused.
    Socks5Only,
}

/// The transport that carried a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportMethod {
    /// A SOCKS5 bytestream (XEP-0260), direct or through a proxy.
    Socks5,
    /// In-band bytestreams (XEP-0261).
    Ibb,
}

/// SOCKS5 settings of a [`JingleClient`].
#[derive(Debug, Clone)]
pub struct Socks5Config {
    /// The address our direct candidate listens on (`None`: offer no direct candidate). Default
    /// `127.0.0.1:0`, which only peers on this machine can reach: a real client binds its interfaces
    /// (e.g. `0.0.0.0:0`) and lists the addresses to advertise in [`Self::advertise_hosts`].
    pub listen: Option<String>,
    /// Hosts advertised for the listener (at most 8, first preferred); empty: its bound address.
    pub advertise_hosts: Vec<String>,
    /// The port advertised instead of the bound one (a port forwarded to it).
    pub advertise_port: Option<u16>,
    /// Whether to offer the server's SOCKS5 proxies (discovered once per client).
    pub use_proxy: bool,
    /// How long one connection to a candidate (TCP + SOCKS5 handshake) may take.
    pub connect_timeout: Duration,
    /// How long the whole candidate negotiation may take before falling back.
    pub negotiation_timeout: Duration,
}

impl Default for Socks5Config {
    fn default() -> Self {
        Socks5Config {
            listen: Some("127.0.0.1:0".into()),
            advertise_hosts: Vec::new(),
            advertise_port: None,
            use_proxy: true,
            connect_timeout: Duration::from_secs(5),
            negotiation_timeout: Duration::from_secs(30),
        }
    }
}

/// Settings of a [`JingleClient`].
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// How long an IQ to the peer waits for its answer.
    pub iq_timeout: Duration,
    /// How long `send_file` waits for the peer to accept.
    pub accept_timeout: Duration,
    /// How long a bytestream may stay silent before the transfer fails.
    pub idle_timeout: Duration,
    /// How long the receiver waits for a `<checksum/>` after the data, when none came before.
    pub checksum_wait: Duration,
    /// The IBB block size proposed and the largest accepted (at most 65535; 4096 by default, the
    /// largest Dino takes).
    pub block_size: u16,
    /// Which transports to use.
    pub transports: TransportPolicy,
    /// SOCKS5 settings.
    pub socks5: Socks5Config,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            iq_timeout: Duration::from_secs(30),
            accept_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(60),
            checksum_wait: Duration::from_secs(5),
            block_size: DEFAULT_BLOCK_SIZE,
            transports: TransportPolicy::default(),
            socks5: Socks5Config::default(),
        }
    }
}

/// Options of one outgoing offer or request.
#[derive(Clone, Default)]
pub struct SendOptions {
    /// Extra children of the `<content/>` (a `<security/>` element goes to its place, the others after
    /// the transport), e.g. `<security xmlns='urn:xmpp:jingle:jet:0'/>` for XEP-0391.
    pub extra: Vec<Element>,
    /// The stage between plaintext and transport (crate-private seam, see the module docs).
    pub(crate) stage: Option<Arc<dyn Stage>>,
}

impl std::fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOptions")
            .field("extra", &self.extra.len())
            .field("stage", &self.stage.is_some())
            .finish()
    }
}

impl SendOptions {
    /// Adds an extra `<content/>` child.
    pub fn with_extra(mut self, el: Element) -> Self {
        self.extra.push(el);
        self
    }

    /// Puts the extra children into `content`.
    fn apply(&self, content: &mut Content) {
        for el in &self.extra {
            if el.name() == "security" && content.security.is_none() {
                content.security = Some(el.clone());
            } else {
                content.extra.push(el.clone());
            }
        }
    }
}

type Done = oneshot::Sender<std::result::Result<(), RequestError>>;
/// A command run on the session machine inside the actor.
type Op = Box<dyn FnOnce(&mut SessionManager, Instant) -> Result<()> + Send>;

enum Cmd {
    Iq {
        from: Jid,
        id: String,
        payload: Element,
    },
    Run {
        op: Op,
        sid: String,
        events: Option<mpsc::Sender<Event>>,
        done: Option<Done>,
        started: oneshot::Sender<Result<()>>,
    },
    Completed {
        id: RequestId,
        result: std::result::Result<(), RequestError>,
    },
}

enum IbbMsg {
    Open,
    Data {
        from: Jid,
        id: String,
        data: crate::ibb::Data,
    },
    Close,
}

struct IbbSink {
    peer: Jid,
    tx: mpsc::Sender<IbbMsg>,
}

struct Shared<C> {
    conn: C,
    cfg: DriverConfig,
    cmds: mpsc::Sender<Cmd>,
    ibb: Mutex<HashMap<String, IbbSink>>,
    /// The server's SOCKS5 proxies, discovered on first use.
    proxies: tokio::sync::OnceCell<Vec<StreamHost>>,
}

/// Jingle over a [`Connection`]: file transfer over SOCKS5 or in-band bytestreams. Clones share the same
/// driver.
pub struct JingleClient<C> {
    shared: Arc<Shared<C>>,
    offers: Arc<tokio::sync::Mutex<mpsc::Receiver<IncomingOffer<C>>>>,
}

impl<C> Clone for JingleClient<C> {
    fn clone(&self) -> Self {
        JingleClient {
            shared: self.shared.clone(),
            offers: self.offers.clone(),
        }
    }
}

impl<C> std::fmt::Debug for JingleClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JingleClient").finish_non_exhaustive()
    }
}

fn iq_error(to: Jid, id: String, cond: DefinedCondition) -> Stanza {
    let type_ = match cond {
        DefinedCondition::ResourceConstraint | DefinedCondition::UnexpectedRequest => {
            ErrorType::Wait
        }
        DefinedCondition::BadRequest | DefinedCondition::NotAcceptable => ErrorType::Modify,
        _ => ErrorType::Cancel,
    };
    let mut e = StanzaError::new(type_, cond, "en", "");
    e.texts.clear();
    Stanza::Iq(Iq::Error {
        from: None,
        to: Some(to),
        id,
        error: e,
        payload: None,
    })
}

fn iq_result(to: Jid, id: String) -> Stanza {
    Stanza::Iq(Iq::Result {
        from: None,
        to: Some(to),
        id,
        payload: None,
    })
}

fn request_error(e: &xmpp_social::Error) -> RequestError {
    match e {
        xmpp_social::Error::Timeout(_) => RequestError::Timeout,
        other => match other.stanza_error() {
            Some(se) => RequestError::from_stanza_error(se),
            None => RequestError::Connection(other.to_string()),
        },
    }
}

impl<C: Connection + Clone + 'static> JingleClient<C> {
    /// Starts the driver on `conn` (spawns its tasks on the current tokio runtime).
    pub fn new(conn: C, cfg: DriverConfig) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::channel(QUEUE);
        let (offer_tx, offer_rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            conn: conn.clone(),
            cfg,
            cmds: cmd_tx,
            ibb: Mutex::new(HashMap::new()),
            proxies: tokio::sync::OnceCell::new(),
        });
        let mut session_cfg = SessionConfig::new(conn.jid());
        session_cfg.accept_timeout = Some(shared.cfg.accept_timeout);
        session_cfg.request_timeout = shared.cfg.iq_timeout + Duration::from_secs(5);
        let client = JingleClient {
            shared: shared.clone(),
            offers: Arc::new(tokio::sync::Mutex::new(offer_rx)),
        };
        tokio::spawn(actor(
            Arc::downgrade(&shared),
            SessionManager::new(session_cfg),
            cmd_rx,
            offer_tx,
        ));
        tokio::spawn(router(Arc::downgrade(&shared), conn.incoming()));
        client
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.shared.conn
    }

    /// Waits for the next file offered by a peer (`None` once the driver stopped).
    pub async fn next_offer(&self) -> Option<IncomingOffer<C>> {
        self.offers.lock().await.recv().await
    }

    /// Runs `op` on the session machine; resolves once the request it produced was answered.
    async fn run(
        &self,
        sid: &str,
        events: Option<mpsc::Sender<Event>>,
        wait: bool,
        op: impl FnOnce(&mut SessionManager, Instant) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let (started_tx, started_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        self.shared
            .cmds
            .send(Cmd::Run {
                op: Box::new(op),
                sid: sid.to_owned(),
                events,
                done: wait.then_some(done_tx),
                started: started_tx,
            })
            .await
            .map_err(|_| Error::InvalidState("driver stopped".into()))?;
        started_rx
            .await
            .map_err(|_| Error::InvalidState("driver stopped".into()))??;
        if !wait {
            return Ok(());
        }
        match done_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::InvalidState(format!("request failed: {e:?}"))),
            Err(_) => Err(Error::InvalidState("request dropped".into())),
        }
    }

    async fn terminate(&self, peer: &Jid, sid: &str, reason: Reason) {
        let (p, s) = (peer.clone(), sid.to_owned());
        // Wait for the peer's answer (bounded by `iq_timeout`): an application that exits right after
        // `reject` or a finished transfer must not lose the session-terminate, or the peer waits out
        // its accept timeout.
        let _ = self
            .run(sid, None, true, move |m, now| {
                m.terminate(&p, &s, reason, now)
            })
            .await;
    }

    /// Registers a bytestream we expect from `peer` under `sid`; its blocks are then read with
    /// [`IbbIncoming::read_into`]. Used by file transfer, and directly for plain XEP-0047 streams.
    pub fn expect_ibb(&self, peer: Jid, sid: &str, block_size: u16) -> IbbIncoming<C> {
        let (tx, rx) = mpsc::channel(IBB_QUEUE);
        self.shared
            .ibb
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                sid.to_owned(),
                IbbSink {
                    peer: peer.clone(),
                    tx,
                },
            );
        IbbIncoming {
            shared: self.shared.clone(),
            rx,
            receiver: IbbReceiver::new(sid, block_size),
            peer,
        }
    }

    /// Sends the bytes of `reader` to `peer` over a plain XEP-0047 bytestream `sid`: `<open/>` (lowering
    /// the block size when the peer answers `resource-constraint`), one `<data/>` IQ at a time, each
    /// waiting for its result, then `<close/>`. At most `limit` bytes are sent (all when `None`); every
    /// block is given to each of `hashers`. Returns the bytes sent.
    pub async fn send_ibb<R: AsyncRead + Unpin + Send>(
        &self,
        peer: &Jid,
        sid: &str,
        block_size: u16,
        reader: &mut R,
        limit: Option<u64>,
        hashers: &mut [&mut StreamHasher],
    ) -> Result<u64> {
        let conn = &self.shared.conn;
        let timeout = self.shared.cfg.iq_timeout;
        let iq = |p: IbbPayload| {
            IqRequest::set(Some(peer.clone()), p.to_element()).with_timeout(timeout)
        };
        let mut sender = IbbSender::new(sid, block_size);
        let mut attempts = 0;
        loop {
            match conn.send_iq(iq(sender.open())).await {
                Ok(_) => break,
                Err(e)
                    if attempts < 4
                        && e.stanza_error().is_some_and(|s| {
                            s.defined_condition == DefinedCondition::ResourceConstraint
                        })
                        && sender.lower_block_size() =>
                {
                    attempts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut sent: u64 = 0;
        let mut buf = vec![0u8; usize::from(sender.block_size())];
        loop {
            let want = match limit {
                Some(l) => (l - sent).min(buf.len() as u64) as usize,
                None => buf.len(),
            };
            if want == 0 {
                break;
            }
            let n = read_full(reader, &mut buf[..want]).await?;
            if n == 0 {
                break;
            }
            let block = buf.get(..n).unwrap_or_default();
            for h in hashers.iter_mut() {
                h.update(block);
            }
            if let Err(e) = conn.send_iq(iq(sender.data(block.to_vec()))).await {
                let _ = conn.send_iq(iq(sender.close())).await;
                return Err(e.into());
            }
            sent += n as u64;
        }
        conn.send_iq(iq(sender.close())).await?;
        Ok(sent)
    }

    /// Offers a file to `peer` (XEP-0234) and sends it once accepted, from the offset the receiver asks
    /// for (to resume). The transport follows [`DriverConfig::transports`]. sha-256 and sha-1 of the
    /// whole file are computed while it is read and sent in a `<checksum/>` after the data.
    pub async fn send_file<R>(&self, peer: Jid, file: File, reader: &mut R) -> Result<SendOutcome>
    where
        R: AsyncRead + AsyncSeek + Unpin + Send,
    {
        self.send_file_with(peer, file, reader, SendOptions::default())
            .await
    }

    /// [`Self::send_file`] with options (extra `<content/>` children, the stage).
    pub async fn send_file_with<R>(
        &self,
        peer: Jid,
        file: File,
        reader: &mut R,
        opts: SendOptions,
    ) -> Result<SendOutcome>
    where
        R: AsyncRead + AsyncSeek + Unpin + Send,
    {
        let sid = crate::random_id();
        let mut file = file;
        file.range.get_or_insert_with(Range::default);
        if file.hashes_used.is_empty() {
            file.hashes_used = vec![
                HashUsed {
                    algo: SHA_256.into(),
                },
                HashUsed { algo: SHA_1.into() },
            ];
        }
        let (transport, pending) = self.offer_transport(&peer, false).await?;
        let mut content = Content::new(Creator::Initiator, "file")
            .with_senders(Senders::Initiator)
            .with_description(Description::File(FileDescription { file: file.clone() }))
            .with_transport(transport);
        opts.apply(&mut content);
        let key = content.key();
        let (accepted, mut ev_rx) = self.start_session(&peer, &sid, content).await?;
        let answer = accepted.into_iter().find(|c| c.key() == key);
        let range = match answer.as_ref().map(|c| &c.description) {
            Some(Some(Description::File(d))) => d.file.range.clone().unwrap_or_default(),
            _ => Range::default(),
        };
        let link = self
            .establish(
                &peer,
                &sid,
                &key,
                pending,
                true,
                false,
                answer.as_ref(),
                &mut ev_rx,
            )
            .await?;
        let stage = stage::or_identity(&opts.stage);
        self.send_data(
            &peer, &sid, link, stage, range, file.size, key, reader, &mut ev_rx,
        )
        .await
    }

    /// Sends session-initiate with `content` and waits for session-accept; returns the accepted
    /// contents and the session's event queue.
    async fn start_session(
        &self,
        peer: &Jid,
        sid: &str,
        content: Content,
    ) -> Result<(Vec<Content>, mpsc::Receiver<Event>)> {
        let (ev_tx, mut ev_rx) = mpsc::channel(QUEUE);
        let (p, s) = (peer.clone(), sid.to_owned());
        self.run(sid, Some(ev_tx), true, move |m, now| {
            m.initiate_with_sid(p, s, vec![content], now).map(|_| ())
        })
        .await?;
        loop {
            let ev = tokio::time::timeout(self.shared.cfg.accept_timeout, ev_rx.recv())
                .await
                .map_err(|_| Error::Timeout("session-accept"))?
                .ok_or_else(|| Error::InvalidState("driver stopped".into()))?;
            match ev.kind {
                EventKind::Accepted { contents } => return Ok((contents, ev_rx)),
                EventKind::Terminated { reason, .. } => return Err(Error::Terminated(reason)),
                _ => {}
            }
        }
    }

    /// Requests a file `peer` holds (XEP-0234 §5, senders='responder'), described by `file` (usually a
    /// hash, or a name), and receives it into `writer`. Hashes are checked like for an offer.
    pub async fn request_file<W: AsyncWrite + Unpin + Send>(
        &self,
        peer: Jid,
        file: File,
        writer: &mut W,
    ) -> Result<ReceiveOutcome> {
        self.request_file_with(peer, file, writer, SendOptions::default())
            .await
    }

    /// [`Self::request_file`] with options (extra `<content/>` children, the stage).
    pub async fn request_file_with<W: AsyncWrite + Unpin + Send>(
        &self,
        peer: Jid,
        file: File,
        writer: &mut W,
        opts: SendOptions,
    ) -> Result<ReceiveOutcome> {
        let sid = crate::random_id();
        let (transport, pending) = self.offer_transport(&peer, true).await?;
        let mut content = Content::new(Creator::Initiator, "file-request")
            .with_senders(Senders::Responder)
            .with_description(Description::File(FileDescription { file: file.clone() }))
            .with_transport(transport);
        opts.apply(&mut content);
        let key = content.key();
        let (accepted, mut ev_rx) = self.start_session(&peer, &sid, content).await?;
        let answer = accepted.into_iter().find(|c| c.key() == key);
        // The holder's answer describes the file it sends (size, hashes).
        let described = match answer.as_ref().map(|c| &c.description) {
            Some(Some(Description::File(d))) => d.file.clone(),
            _ => file,
        };
        let link = self
            .establish(
                &peer,
                &sid,
                &key,
                pending,
                true,
                true,
                answer.as_ref(),
                &mut ev_rx,
            )
            .await?;
        let stage = stage::or_identity(&opts.stage);
        receive_data(
            self,
            &peer,
            &sid,
            key,
            &described,
            link,
            stage,
            &mut ev_rx,
            writer,
            0,
            StreamHasher::new(),
        )
        .await
    }

    /// Sends the data of an accepted content over `link` (through `stage`), then its `<checksum/>`, then
    /// waits for the receiver to end the session (ends it itself when the receiver does not).
    #[allow(clippy::too_many_arguments)]
    async fn send_data<R>(
        &self,
        peer: &Jid,
        sid: &str,
        link: Link<C>,
        stage: Arc<dyn Stage>,
        range: Range,
        size: Option<u64>,
        content: (Creator, String),
        reader: &mut R,
        ev_rx: &mut mpsc::Receiver<Event>,
    ) -> Result<SendOutcome>
    where
        R: AsyncRead + AsyncSeek + Unpin + Send,
    {
        let method = link.method();
        // Hash the part the receiver already has, then send the rest.
        let mut full = StreamHasher::new();
        let mut part = StreamHasher::new();
        let result: Result<(u64, u64)> = async {
            reader.seek(std::io::SeekFrom::Start(0)).await?;
            let mut prefix = (&mut *reader).take(range.offset);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = prefix.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                full.update(buf.get(..n).unwrap_or_default());
            }
            if full.bytes() != range.offset {
                return Err(Error::InvalidState(
                    "range offset beyond the end of the file".into(),
                ));
            }
            let plain: BoxRead<'_> = match range.length {
                Some(len) => Box::new((&mut *reader).take(len)),
                None => Box::new(&mut *reader),
            };
            let hashing: BoxRead<'_> = Box::new(HashingReader {
                inner: plain,
                hashers: [&mut full, &mut part],
            });
            let wire = self
                .send_over(peer, link, stage.wrap_reader(hashing), ev_rx)
                .await?;
            Ok((part.bytes(), wire))
        }
        .await;
        let (sent, wire) = match result {
            Ok(n) => n,
            Err(e) => {
                let cond = if matches!(e, Error::Io(_) | Error::InvalidState(_)) {
                    ReasonCondition::MediaError
                } else {
                    ReasonCondition::FailedTransport
                };
                if !matches!(e, Error::Terminated(_)) {
                    self.terminate(peer, sid, Reason::new(cond)).await;
                }
                return Err(e);
            }
        };
        // Whole-file hashes (prefix + part sent) when the part went to the end of the file.
        let part_hashes = part.finish();
        let whole = full;
        let tail_ok = range.length.is_none() && size.is_none_or(|s| s == whole.bytes());
        let whole_hashes = whole.finish();
        let mut sum = File {
            hashes: if tail_ok {
                whole_hashes.clone()
            } else {
                Vec::new()
            },
            ..File::default()
        };
        if range.offset != 0 || range.length.is_some() {
            sum.range = Some(Range {
                offset: range.offset,
                length: Some(sent),
                hashes: part_hashes,
            });
        }
        let checksum = FtInfo::Checksum(Box::new(Checksum {
            creator: content.0,
            name: content.1,
            file: sum,
        }))
        .to_element();
        let (p, s) = (peer.clone(), sid.to_owned());
        let _ = self
            .run(sid, None, true, move |m, now| {
                m.session_info(&p, &s, vec![checksum], now)
            })
            .await;
        // The receiver ends the session once it checked the data; end it ourselves if it does not.
        let by_peer = tokio::time::timeout(self.shared.cfg.iq_timeout, async {
            while let Some(ev) = ev_rx.recv().await {
                if let EventKind::Terminated { reason, .. } = ev.kind {
                    return Some(reason);
                }
            }
            None
        })
        .await;
        let reason = match by_peer {
            Ok(Some(r)) => r,
            _ => {
                self.terminate(peer, sid, Reason::new(ReasonCondition::Success))
                    .await;
                None
            }
        };
        if let Some(r) = &reason {
            if r.condition != ReasonCondition::Success {
                return Err(Error::Terminated(reason));
            }
        }
        Ok(SendOutcome {
            sid: sid.to_owned(),
            bytes_sent: sent,
            wire_bytes: wire,
            offset: range.offset,
            hashes: whole_hashes,
            transport: method,
        })
    }
}

/// Reads the plaintext and hashes what is read.
struct HashingReader<'a> {
    inner: BoxRead<'a>,
    hashers: [&'a mut StreamHasher; 2],
}

impl AsyncRead for HashingReader<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &r {
            let new = buf.filled().get(before..).unwrap_or_default();
            for h in this.hashers.iter_mut() {
                h.update(new);
            }
        }
        r
    }
}

async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = r.read(buf.get_mut(filled..).unwrap_or_default()).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// What [`JingleClient::send_file`] did.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// The session id.
    pub sid: String,
    /// File bytes sent (from `offset`).
    pub bytes_sent: u64,
    /// Bytes the transport carried (equal to `bytes_sent` unless a stage such as JET adds some).
    pub wire_bytes: u64,
    /// Where the receiver asked to start.
    pub offset: u64,
    /// sha-256 and sha-1 of the whole file.
    pub hashes: Vec<crate::hashes::Hash>,
    /// The transport that carried the bytes.
    pub transport: TransportMethod,
}

/// What [`IncomingOffer::accept`] received.
#[derive(Debug, Clone)]
pub struct ReceiveOutcome {
    /// File bytes received and written.
    pub bytes_received: u64,
    /// Bytes the transport carried (equal to `bytes_received` unless a stage such as JET adds some).
    pub wire_bytes: u64,
    /// The result of comparing the sender's hashes with ours.
    pub check: HashCheck,
    /// The transport that carried the bytes.
    pub transport: TransportMethod,
}

/// A bytestream we expect, registered with [`JingleClient::expect_ibb`].
pub struct IbbIncoming<C> {
    shared: Arc<Shared<C>>,
    rx: mpsc::Receiver<IbbMsg>,
    receiver: IbbReceiver,
    peer: Jid,
}

impl<C> std::fmt::Debug for IbbIncoming<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IbbIncoming")
            .field("sid", &self.receiver.sid())
            .finish_non_exhaustive()
    }
}

impl<C> Drop for IbbIncoming<C> {
    fn drop(&mut self) {
        self.shared
            .ibb
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(self.receiver.sid());
    }
}

impl<C: Connection + Clone + 'static> IbbIncoming<C> {
    /// Reads the bytestream until `<close/>`: each block is checked (order, size), written to `writer`,
    /// given to `hasher`, and only then acknowledged, so a slow writer slows the sender down. Fails when
    /// the stream stays silent longer than the idle timeout. Returns the bytes received.
    pub async fn read_into<W: AsyncWrite + Unpin + Send>(
        &mut self,
        writer: &mut W,
        hasher: &mut StreamHasher,
    ) -> Result<u64> {
        let idle = self.shared.cfg.idle_timeout;
        let conn = &self.shared.conn;
        loop {
            let msg = tokio::time::timeout(idle, self.rx.recv())
                .await
                .map_err(|_| Error::Timeout("in-band bytestream silent"))?
                .ok_or_else(|| Error::InvalidState("driver stopped".into()))?;
            match msg {
                IbbMsg::Open => {}
                IbbMsg::Data { from, id, data } => match self.receiver.data(data) {
                    Ok(bytes) => {
                        if let Err(e) = writer.write_all(&bytes).await {
                            let _ = conn
                                .send_stanza(iq_error(
                                    from,
                                    id,
                                    DefinedCondition::ResourceConstraint,
                                ))
                                .await;
                            return Err(e.into());
                        }
                        hasher.update(&bytes);
                        conn.send_stanza(iq_result(from, id)).await?;
                    }
                    Err(e) => {
                        // XEP-0047 §2.2: refuse, and the stream is over.
                        let _ = conn
                            .send_stanza(iq_error(from, id, DefinedCondition::UnexpectedRequest))
                            .await;
                        return Err(e.into());
                    }
                },
                IbbMsg::Close => {
                    self.receiver.close();
                    writer.flush().await?;
                    return Ok(self.receiver.received());
                }
            }
        }
    }

    /// The peer.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }
}

/// A file a peer offered (or asks for): accept it into a writer, serve it, or reject it.
pub struct IncomingOffer<C> {
    client: JingleClient<C>,
    peer: Jid,
    sid: String,
    content: Content,
    extra: Vec<Element>,
    stage: Option<Arc<dyn Stage>>,
    events: mpsc::Receiver<Event>,
}

impl<C> std::fmt::Debug for IncomingOffer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingOffer")
            .field("peer", &self.peer)
            .field("sid", &self.sid)
            .field("content", &self.content.name)
            .finish_non_exhaustive()
    }
}

impl<C: Connection + Clone + 'static> IncomingOffer<C> {
    /// Who offers it.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The offered file's metadata.
    pub fn file(&self) -> Option<&File> {
        match &self.content.description {
            Some(Description::File(d)) => Some(&d.file),
            _ => None,
        }
    }

    /// The `<content/>` children besides description and transport: its `<security/>` first (e.g.
    /// XEP-0391's `<security xmlns='urn:xmpp:jingle:jet:0'/>`), then unknown ones, as received.
    pub fn content_extra(&self) -> &[Element] {
        &self.extra
    }

    /// Sets the stage of this transfer (crate-private seam, see the module docs).
    #[cfg_attr(not(feature = "jet"), allow(dead_code))] // used by stages such as JET
    pub(crate) fn set_stage(&mut self, stage: Arc<dyn Stage>) {
        self.stage = Some(stage);
    }

    /// Whether the peer asks us for a file (senders='responder': answer with [`Self::serve`]) rather
    /// than offering one.
    pub fn is_request(&self) -> bool {
        self.content.senders == Some(Senders::Responder)
    }

    /// Sends session-accept with `content`, our transport answer in it.
    async fn send_accept(&self, content: Content) -> Result<()> {
        let (p, s) = (self.peer.clone(), self.sid.clone());
        self.client
            .run(&self.sid, None, true, move |m, now| {
                m.accept(&p, &s, vec![content], now)
            })
            .await
    }

    /// Answers the offered transport (by policy; `receiving`: we get the bytes), sends session-accept
    /// with `description` and that answer, and runs the negotiation until a bytestream is usable. A
    /// transport we cannot answer ends the session with `unsupported-transports`.
    async fn accept_and_establish(
        &mut self,
        description: Description,
        receiving: bool,
    ) -> Result<Link<C>> {
        let answered = self
            .client
            .answer_transport(&self.peer, &self.sid, Some(&self.content), receiving)
            .await;
        let (transport, pending) = match answered {
            Ok(a) => a,
            Err(e) => {
                self.client
                    .terminate(
                        &self.peer,
                        &self.sid,
                        Reason::new(ReasonCondition::UnsupportedTransports),
                    )
                    .await;
                return Err(e);
            }
        };
        let mut content = self.content.clone();
        content.description = Some(description);
        content.transport = Some(transport);
        self.send_accept(content).await?;
        let key = self.content.key();
        let client = self.client.clone();
        client
            .establish(
                &self.peer,
                &self.sid,
                &key,
                pending,
                false,
                receiving,
                None,
                &mut self.events,
            )
            .await
    }

    /// Answers a file request: accepts it, describing the file we send as `file` (size, name...), and
    /// sends `reader` over the bytestream negotiated with the requester.
    pub async fn serve<R>(mut self, file: File, reader: &mut R) -> Result<SendOutcome>
    where
        R: AsyncRead + AsyncSeek + Unpin + Send,
    {
        let range = self
            .file()
            .and_then(|f| f.range.clone())
            .unwrap_or_default();
        let link = self
            .accept_and_establish(
                Description::File(FileDescription { file: file.clone() }),
                false,
            )
            .await?;
        let key = self.content.key();
        let client = self.client.clone();
        let stage = stage::or_identity(&self.stage);
        client
            .send_data(
                &self.peer,
                &self.sid,
                link,
                stage,
                range,
                file.size,
                key,
                reader,
                &mut self.events,
            )
            .await
    }

    /// Declines the offer.
    pub async fn reject(self, reason: Reason) {
        self.client.terminate(&self.peer, &self.sid, reason).await;
    }

    /// Accepts the whole file into `writer`.
    pub async fn accept<W: AsyncWrite + Unpin + Send>(
        self,
        writer: &mut W,
    ) -> Result<ReceiveOutcome> {
        self.accept_from(writer, 0, StreamHasher::new()).await
    }

    /// Accepts the file from `offset` on (resuming an interrupted transfer): `prefix` has hashed the
    /// `offset` bytes already held, so the whole file can be checked; `writer` gets the rest.
    pub async fn accept_from<W: AsyncWrite + Unpin + Send>(
        mut self,
        writer: &mut W,
        offset: u64,
        prefix: StreamHasher,
    ) -> Result<ReceiveOutcome> {
        let Some(file) = self.file().cloned() else {
            self.reject(Reason::new(ReasonCondition::UnsupportedApplications))
                .await;
            return Err(Error::InvalidState("not a file offer".into()));
        };
        let mut accepted_file = file.clone();
        accepted_file.range = Some(Range {
            offset,
            length: None,
            hashes: Vec::new(),
        });
        let link = self
            .accept_and_establish(
                Description::File(FileDescription {
                    file: accepted_file,
                }),
                true,
            )
            .await?;
        let key = self.content.key();
        let client = self.client.clone();
        let stage = stage::or_identity(&self.stage);
        receive_data(
            &client,
            &self.peer,
            &self.sid,
            key,
            &file,
            link,
            stage,
            &mut self.events,
            writer,
            offset,
            prefix,
        )
        .await
    }
}

/// Receives the data of an accepted content over `link` (through `stage`) while watching the session's
/// events, checks size and hashes, then says `<received/>` and ends the session.
#[allow(clippy::too_many_arguments)]
async fn receive_data<C: Connection + Clone + 'static, W: AsyncWrite + Unpin + Send>(
    client: &JingleClient<C>,
    peer: &Jid,
    sid: &str,
    content: (Creator, String),
    file: &File,
    link: Link<C>,
    stage: Arc<dyn Stage>,
    events: &mut mpsc::Receiver<Event>,
    writer: &mut W,
    offset: u64,
    prefix: StreamHasher,
) -> Result<ReceiveOutcome> {
    let method = link.method();
    // Data, while watching the session.
    let mut whole = prefix;
    let mut part = StreamHasher::new();
    let mut checksums: Vec<Checksum> = Vec::new();
    let expected = file
        .size
        .map(|size| stage.wire_len(size.saturating_sub(offset)));
    let idle = client.shared.cfg.idle_timeout;
    let received = {
        let read = async {
            let tee: BoxWrite<'_> = Box::new(TeeHasher {
                whole: &mut whole,
                part: &mut part,
                writer,
            });
            link::receive_over(link, stage.wrap_writer(tee), expected, idle).await
        };
        tokio::pin!(read);
        loop {
            tokio::select! {
                r = &mut read => break r,
                ev = events.recv() => match ev.map(|e| e.kind) {
                    Some(EventKind::Terminated { reason, .. }) => break Err(Error::Terminated(reason)),
                    Some(EventKind::Info { payloads }) => collect_checksums(&payloads, &mut checksums),
                    Some(_) => {}
                    None => break Err(Error::InvalidState("driver stopped".into())),
                }
            }
        }
    };
    let wire = match received {
        Ok(n) => n,
        Err(e) => {
            if !matches!(e, Error::Terminated(_)) {
                // A JET tag that does not verify is a security failure, not a transport one.
                #[cfg(feature = "jet")]
                let condition = if crate::jet::is_tag_failure(&e) {
                    ReasonCondition::SecurityError
                } else {
                    ReasonCondition::FailedTransport
                };
                #[cfg(not(feature = "jet"))]
                let condition = ReasonCondition::FailedTransport;
                client.terminate(peer, sid, Reason::new(condition)).await;
            }
            return Err(e);
        }
    };
    let received = part.bytes();
    if let Some(size) = file.size {
        if offset + received != size {
            client
                .terminate(peer, sid, Reason::new(ReasonCondition::MediaError))
                .await;
            return Err(Error::InvalidState(format!(
                "received {} of {size} bytes",
                offset + received
            )));
        }
    }
    // The checksum usually follows the data.
    if checksums.is_empty() {
        let _ = tokio::time::timeout(client.shared.cfg.checksum_wait, async {
            while let Some(ev) = events.recv().await {
                match ev.kind {
                    EventKind::Info { payloads } => {
                        collect_checksums(&payloads, &mut checksums);
                        if !checksums.is_empty() {
                            return;
                        }
                    }
                    EventKind::Terminated { .. } => return,
                    _ => {}
                }
            }
        })
        .await;
    }
    let whole_hashes = whole.finish();
    let part_hashes = part.finish();
    let mut check = HashCheck::compare(&file.hashes, &whole_hashes);
    for c in &checksums {
        let c_whole = HashCheck::compare(&c.file.hashes, &whole_hashes);
        let c_part = match &c.file.range {
            Some(r) if r.offset == offset => HashCheck::compare(&r.hashes, &part_hashes),
            _ => HashCheck::Unverified,
        };
        for next in [c_whole, c_part] {
            check = match (&check, next) {
                (HashCheck::Mismatch(_), _) => check,
                (_, m @ HashCheck::Mismatch(_)) => m,
                (HashCheck::Verified(_), _) => check,
                (_, v) => v,
            };
        }
    }
    let (p, s) = (peer.clone(), sid.to_owned());
    if let HashCheck::Mismatch(algo) = &check {
        client
            .terminate(&p, &s, Reason::new(ReasonCondition::MediaError))
            .await;
        return Err(Error::HashMismatch { algo: algo.clone() });
    }
    let received_info = FtInfo::Received(Received {
        creator: content.0,
        name: content.1.clone(),
    })
    .to_element();
    let (p2, s2) = (p.clone(), s.clone());
    let _ = client
        .run(&s, None, true, move |m, now| {
            m.session_info(&p2, &s2, vec![received_info], now)
        })
        .await;
    client
        .terminate(&p, &s, Reason::new(ReasonCondition::Success))
        .await;
    Ok(ReceiveOutcome {
        bytes_received: received,
        wire_bytes: wire,
        check,
        transport: method,
    })
}

fn collect_checksums(payloads: &[Element], out: &mut Vec<Checksum>) {
    for p in payloads {
        if let Ok(FtInfo::Checksum(c)) = FtInfo::from_element(p) {
            if out.len() < 16 {
                out.push(*c);
            }
        }
    }
}

/// Writes to the application's writer and hashes what is written (whole file and this part). Its
/// `shutdown` only flushes the application's writer, which stays usable.
struct TeeHasher<'a, W> {
    whole: &'a mut StreamHasher,
    part: &'a mut StreamHasher,
    writer: &'a mut W,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for TeeHasher<'_, W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = std::pin::Pin::new(&mut *this.writer).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            let written = buf.get(..*n).unwrap_or_default();
            this.whole.update(written);
            this.part.update(written);
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.writer).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.writer).poll_flush(cx)
    }
}

/// Reads incoming stanzas: Jingle IQs to the actor, IBB IQs to their bytestream.
async fn router<C: Connection + Clone + 'static>(
    shared: std::sync::Weak<Shared<C>>,
    mut incoming: xmpp_social::Incoming,
) {
    loop {
        let stanza = match incoming.recv().await {
            Ok(s) => s,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("jingle driver fell behind, {n} stanzas lost");
                continue;
            }
            Err(_) => return,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Stanza::Iq(Iq::Set {
            from: Some(from),
            id,
            payload,
            ..
        }) = &*stanza
        else {
            continue;
        };
        if payload.is("jingle", NS_JINGLE) {
            let _ = shared
                .cmds
                .send(Cmd::Iq {
                    from: from.clone(),
                    id: id.clone(),
                    payload: payload.clone(),
                })
                .await;
        } else if payload.ns() == NS_IBB {
            let answer = route_ibb(&shared, from, id, payload);
            if let Some(a) = answer {
                let _ = shared.conn.send_stanza(a).await;
            }
        }
    }
}

/// Routes one IBB IQ; returns the answer to send now (data blocks are answered by their reader).
fn route_ibb<C>(shared: &Shared<C>, from: &Jid, id: &str, payload: &Element) -> Option<Stanza> {
    let parsed = match IbbPayload::from_element(payload) {
        Ok(p) => p,
        Err(_) => {
            return Some(iq_error(
                from.clone(),
                id.to_owned(),
                DefinedCondition::BadRequest,
            ))
        }
    };
    let sid = match &parsed {
        IbbPayload::Open(o) => o.sid.clone(),
        IbbPayload::Data(d) => d.sid.clone(),
        IbbPayload::Close(c) => c.sid.clone(),
    };
    let mut table = shared.ibb.lock().unwrap_or_else(|p| p.into_inner());
    let Some(sink) = table.get(&sid).filter(|s| s.peer == *from) else {
        let cond = match parsed {
            IbbPayload::Open(_) => DefinedCondition::NotAcceptable,
            _ => DefinedCondition::ItemNotFound,
        };
        return Some(iq_error(from.clone(), id.to_owned(), cond));
    };
    match parsed {
        IbbPayload::Open(o) => {
            if o.stanza != crate::ibb::StanzaKind::Iq {
                return Some(iq_error(
                    from.clone(),
                    id.to_owned(),
                    DefinedCondition::NotAcceptable,
                ));
            }
            let _ = sink.tx.try_send(IbbMsg::Open);
            Some(iq_result(from.clone(), id.to_owned()))
        }
        IbbPayload::Data(d) => {
            match sink.tx.try_send(IbbMsg::Data {
                from: from.clone(),
                id: id.to_owned(),
                data: d,
            }) {
                Ok(()) => None,
                // The sender does not wait for results: refuse rather than buffer without bound.
                Err(_) => Some(iq_error(
                    from.clone(),
                    id.to_owned(),
                    DefinedCondition::ResourceConstraint,
                )),
            }
        }
        IbbPayload::Close(_) => {
            let _ = sink.tx.try_send(IbbMsg::Close);
            table.remove(&sid);
            Some(iq_result(from.clone(), id.to_owned()))
        }
    }
}

/// Owns the session machine.
async fn actor<C: Connection + Clone + 'static>(
    shared: std::sync::Weak<Shared<C>>,
    mut manager: SessionManager,
    mut cmds: mpsc::Receiver<Cmd>,
    offers: mpsc::Sender<IncomingOffer<C>>,
) {
    let mut routes: HashMap<String, mpsc::Sender<Event>> = HashMap::new();
    let mut waiting: HashMap<RequestId, Done> = HashMap::new();
    loop {
        let deadline = manager.poll_timeout();
        let cmd = tokio::select! {
            c = cmds.recv() => match c { Some(c) => Some(c), None => return },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut done_for_next: Option<Done> = None;
        match cmd {
            None => manager.handle_timeout(now),
            Some(Cmd::Iq { from, id, payload }) => manager.handle_iq(&from, &id, &payload, now),
            Some(Cmd::Completed { id, result }) => {
                if let Some(d) = waiting.remove(&id) {
                    let _ = d.send(result.clone());
                }
                manager.handle_response(id, result, now)
            }
            Some(Cmd::Run {
                op,
                sid,
                events,
                done,
                started,
            }) => {
                if let Some(ev) = events {
                    routes.insert(sid, ev);
                }
                let r = op(&mut manager, now);
                if r.is_ok() {
                    done_for_next = done;
                }
                let _ = started.send(r);
            }
        }
        while let Some(out) = manager.poll_output() {
            match out {
                Output::Answer(iq) => {
                    let _ = shared.conn.send_stanza(Stanza::Iq(iq)).await;
                }
                Output::Request { id, to, jingle } => {
                    if let Some(d) = done_for_next.take() {
                        waiting.insert(id, d);
                    }
                    let conn = shared.conn.clone();
                    let cmds = shared.cmds.clone();
                    let timeout = shared.cfg.iq_timeout;
                    tokio::spawn(async move {
                        let req =
                            IqRequest::set(Some(to), jingle.to_element()).with_timeout(timeout);
                        let result = conn
                            .send_iq(req)
                            .await
                            .map(|_| ())
                            .map_err(|e| request_error(&e));
                        let _ = cmds.send(Cmd::Completed { id, result }).await;
                    });
                }
                Output::Event(ev) => {
                    let terminated = matches!(ev.kind, EventKind::Terminated { .. });
                    let sid = ev.sid.clone();
                    if let EventKind::Incoming { contents, .. } = &ev.kind {
                        let (tx, rx) = mpsc::channel(QUEUE);
                        routes.insert(sid.clone(), tx);
                        let content = contents
                            .iter()
                            .find(|c| matches!(c.description, Some(Description::File(_))))
                            .or(contents.first())
                            .cloned();
                        if let Some(content) = content {
                            let extra = content
                                .security
                                .iter()
                                .chain(content.extra.iter())
                                .cloned()
                                .collect();
                            let offer = IncomingOffer {
                                client: JingleClient {
                                    shared: shared.clone(),
                                    offers: Arc::new(tokio::sync::Mutex::new(mpsc::channel(1).1)),
                                },
                                peer: ev.peer.clone(),
                                sid: sid.clone(),
                                content,
                                extra,
                                stage: None,
                                events: rx,
                            };
                            if offers.try_send(offer).is_err() {
                                tracing::warn!("offer queue full, session {sid} dropped");
                            }
                        }
                    } else if let Some(tx) = routes.get(&sid) {
                        if tx.try_send(ev).is_err() {
                            tracing::warn!("event queue of session {sid} full or closed");
                        }
                    }
                    if terminated {
                        routes.remove(&sid);
                    }
                }
            }
        }
        if let Some(d) = done_for_next {
            // The operation produced no request (nothing to wait for).
            let _ = d.send(Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FEATURES` has one type with and without `jet` (it used to be an array whose length changed with
    /// the feature), lists each namespace once, and has the JET ones exactly when `jet` is on.
    #[test]
    fn features_are_a_slice_whatever_the_features() {
        let features: &'static [&'static str] = FEATURES;
        let mut sorted = features.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), features.len(), "a namespace listed twice");
        for ns in [NS_JINGLE, NS_FT, NS_JINGLE_IBB, NS_IBB, NS_HASHES, NS_S5B] {
            assert!(features.contains(&ns), "{ns} missing");
        }
        #[cfg(feature = "jet")]
        assert_eq!(features.len(), 8);
        #[cfg(not(feature = "jet"))]
        assert_eq!(features.len(), 6);
    }
}
