//! Establishing the bytestream of a file transfer: SOCKS5 (XEP-0260) candidates offered, tried and
//! nominated, proxy activation, and the fall back to in-band bytestreams (XEP-0261) by
//! transport-replace; then moving the bytes over whichever won.

use std::future::Future;
use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::stage::{BoxRead, BoxWrite};
use super::*;
use crate::jingle::Action;
use crate::socks5::bytestreams::{self, StreamHost};
use crate::socks5::negotiation::{self, Negotiation};
use crate::socks5::net;
use crate::socks5::transport::{Candidate, CandidateType, Transport as S5bTransport, NS_S5B};
use crate::socks5::Socks5Error;

/// The bytestream a transfer runs on, once established.
pub(super) enum Link<C> {
    /// A SOCKS5 stream (direct or through a proxy).
    Tcp(TcpStream),
    /// We send over an in-band bytestream.
    IbbSend {
        /// Its sid.
        sid: String,
        /// The negotiated block size.
        block_size: u16,
    },
    /// We receive an in-band bytestream (registered before the peer could open it).
    IbbRecv(IbbIncoming<C>),
}

impl<C> Link<C> {
    /// A name for logs and outcomes.
    pub(super) fn method(&self) -> TransportMethod {
        match self {
            Link::Tcp(_) => TransportMethod::Socks5,
            Link::IbbSend { .. } | Link::IbbRecv(_) => TransportMethod::Ibb,
        }
    }
}

/// Our SOCKS5 side before the negotiation runs: the machine and the listener behind our direct
/// candidate.
pub(super) struct S5bOffer {
    neg: Negotiation,
    listener: Option<TcpListener>,
}

/// What a session offers (initiator) or answered (responder), before the negotiation.
pub(super) enum Pending<C> {
    /// In-band from the start.
    Ibb(Link<C>),
    /// SOCKS5 to negotiate.
    S5b(Box<S5bOffer>),
}

enum Negotiated {
    Stream(TcpStream),
    Failed(String),
    Replaced(Transport),
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(Option<JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = std::result::Result<TcpStream, Socks5Error>> + Send>>;

/// The XEP-0260 transport of a content, if it has one.
pub(super) fn s5b_of(content: &Content) -> Option<std::result::Result<S5bTransport, Error>> {
    match &content.transport {
        Some(Transport::Raw(el)) if el.is("transport", NS_S5B) => {
            Some(S5bTransport::from_element(el).map_err(Error::from))
        }
        _ => None,
    }
}

impl<C: Connection + Clone + 'static> JingleClient<C> {
    /// The server's SOCKS5 proxies, discovered once per client (an empty list when discovery fails).
    async fn proxies(&self) -> Vec<StreamHost> {
        self.shared
            .proxies
            .get_or_init(|| async {
                match bytestreams::discover_proxies(&self.shared.conn, None).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::debug!("no SOCKS5 proxy: {e}");
                        Vec::new()
                    }
                }
            })
            .await
            .clone()
    }

    /// Our candidates for a new stream (direct listener, then proxies) and the negotiation machine.
    async fn s5b_offer(
        &self,
        role: negotiation::Role,
        s5b_sid: &str,
        peer: &Jid,
        with_candidates: bool,
    ) -> Result<S5bOffer> {
        let cfg = &self.shared.cfg.socks5;
        let me = self.shared.conn.jid();
        let mut candidates = Vec::new();
        let mut listener = None;
        if with_candidates {
            if let Some(addr) = &cfg.listen {
                let l = TcpListener::bind(addr.as_str()).await?;
                let local = l.local_addr()?;
                let port = cfg.advertise_port.unwrap_or(local.port());
                let hosts = if cfg.advertise_hosts.is_empty() {
                    vec![local.ip().to_string()]
                } else {
                    cfg.advertise_hosts.clone()
                };
                for (i, host) in hosts.into_iter().take(8).enumerate() {
                    let pref = u16::try_from(8 - i).unwrap_or(0);
                    candidates.push(Candidate::local(
                        crate::random_id(),
                        me.clone(),
                        host,
                        port,
                        CandidateType::Direct,
                        pref,
                    ));
                }
                listener = Some(l);
            }
            if cfg.use_proxy {
                for p in self.proxies().await.iter().take(4) {
                    candidates.push(Candidate::proxy(crate::random_id(), p, 0));
                }
            }
        }
        Ok(S5bOffer {
            neg: Negotiation::new(role, s5b_sid, me.to_string(), peer.to_string(), candidates),
            listener,
        })
    }

    /// The transport to put in a session-initiate, by policy. `receiving`: we are the one who gets
    /// the bytes (a file request).
    pub(super) async fn offer_transport(
        &self,
        peer: &Jid,
        receiving: bool,
    ) -> Result<(Transport, Pending<C>)> {
        if self.shared.cfg.transports == TransportPolicy::IbbOnly {
            let t = IbbTransport {
                block_size: self.shared.cfg.block_size,
                ..IbbTransport::offer()
            };
            let ibb_sid = t.sid.clone().unwrap_or_else(crate::random_id);
            let link = if receiving {
                Link::IbbRecv(self.expect_ibb(peer.clone(), &ibb_sid, t.block_size))
            } else {
                Link::IbbSend {
                    sid: ibb_sid,
                    block_size: t.block_size,
                }
            };
            return Ok((Transport::Ibb(t), Pending::Ibb(link)));
        }
        let offer = self
            .s5b_offer(
                negotiation::Role::Initiator,
                &crate::random_id(),
                peer,
                true,
            )
            .await?;
        let t = Transport::Raw(offer.neg.local_transport().to_element());
        Ok((t, Pending::S5b(Box::new(offer))))
    }

    /// The responder's answer to the offered transport, by policy.
    pub(super) async fn answer_transport(
        &self,
        peer: &Jid,
        sid: &str,
        offered: Option<&Content>,
        receiving: bool,
    ) -> Result<(Transport, Pending<C>)> {
        let cfg = &self.shared.cfg;
        let Some(content) = offered else {
            return Err(Error::InvalidState("no content".into()));
        };
        if let Some(parsed) = s5b_of(content) {
            let theirs = parsed?;
            let ibb_only = cfg.transports == TransportPolicy::IbbOnly;
            let mut offer = self
                .s5b_offer(negotiation::Role::Responder, &theirs.sid, peer, !ibb_only)
                .await?;
            // Under IbbOnly we neither offer nor try candidates: the initiator falls back to IBB.
            let remote = if ibb_only {
                S5bTransport::with_candidates(theirs.sid.clone(), Vec::new())
            } else {
                theirs
            };
            offer
                .neg
                .set_remote(&remote)
                .map_err(|e| Error::InvalidState(format!("SOCKS5 offer: {e}")))?;
            let t = Transport::Raw(offer.neg.local_transport().to_element());
            return Ok((t, Pending::S5b(Box::new(offer))));
        }
        match &content.transport {
            Some(Transport::Ibb(t)) => {
                let answer = t.answer(cfg.block_size);
                let ibb_sid = t.sid.clone().unwrap_or_else(|| sid.to_owned());
                let link = if receiving {
                    Link::IbbRecv(self.expect_ibb(peer.clone(), &ibb_sid, answer.block_size))
                } else {
                    Link::IbbSend {
                        sid: ibb_sid,
                        block_size: answer.block_size,
                    }
                };
                Ok((Transport::Ibb(answer), Pending::Ibb(link)))
            }
            _ => Err(Error::InvalidState("no usable transport offered".into())),
        }
    }

    /// Runs what [`Self::offer_transport`] or [`Self::answer_transport`] started until a bytestream is
    /// usable: the SOCKS5 negotiation, and on its failure the replacement by IBB (the initiator asks,
    /// the responder accepts). `answer` is the peer's session-accept content (initiator only).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn establish(
        &self,
        peer: &Jid,
        sid: &str,
        key: &(Creator, String),
        pending: Pending<C>,
        initiator: bool,
        receiving: bool,
        answer: Option<&Content>,
        events: &mut mpsc::Receiver<Event>,
    ) -> Result<Link<C>> {
        let mut offer = match pending {
            Pending::Ibb(Link::IbbSend {
                sid: ibb_sid,
                block_size,
            }) => {
                // The answer may lower the block size.
                let bs = match answer.and_then(|c| c.transport.as_ref()) {
                    Some(Transport::Ibb(t)) => IbbTransport::negotiate(block_size, t.block_size),
                    _ => block_size,
                };
                return Ok(Link::IbbSend {
                    sid: ibb_sid,
                    block_size: bs,
                });
            }
            Pending::Ibb(link) => return Ok(link),
            Pending::S5b(o) => *o,
        };
        let outcome = if initiator {
            match answer.map(|c| (s5b_of(c), c.transport.clone())) {
                Some((Some(Ok(t)), _)) => match offer.neg.set_remote(&t) {
                    Ok(()) => self.negotiate(peer, sid, key, offer, events).await?,
                    Err(e) => Negotiated::Failed(format!("the answer's transport: {e}")),
                },
                // Lenient: a peer that answered our SOCKS5 offer with IBB is taken at its word.
                Some((None, Some(t @ Transport::Ibb(_)))) => {
                    return self
                        .accept_replacement(peer, sid, key, t, receiving, false)
                        .await;
                }
                _ => Negotiated::Failed("the answer has no SOCKS5 transport".into()),
            }
        } else {
            self.negotiate(peer, sid, key, offer, events).await?
        };
        let replacement = match outcome {
            Negotiated::Stream(s) => return Ok(Link::Tcp(s)),
            // The peer asked to replace the transport (from either side: lenient).
            Negotiated::Replaced(t) => t,
            Negotiated::Failed(why) => {
                tracing::debug!("SOCKS5 negotiation of {sid} failed: {why}");
                if self.shared.cfg.transports == TransportPolicy::Socks5Only {
                    self.terminate(peer, sid, Reason::new(ReasonCondition::ConnectivityError))
                        .await;
                    return Err(Error::InvalidState(format!("SOCKS5 failed: {why}")));
                }
                if initiator {
                    return self
                        .replace_with_ibb(peer, sid, key, receiving, events)
                        .await;
                }
                self.wait_replacement(events).await?
            }
        };
        self.accept_replacement(peer, sid, key, replacement, receiving, true)
            .await
    }

    /// Sends one XEP-0260 `<transport/>` in a transport-info and waits for its result (the order of
    /// these reports matters).
    async fn transport_info(
        &self,
        peer: &Jid,
        sid: &str,
        key: &(Creator, String),
        t: S5bTransport,
    ) {
        let content =
            Content::new(key.0, key.1.clone()).with_transport(Transport::Raw(t.to_element()));
        let (p, s) = (peer.clone(), sid.to_owned());
        if let Err(e) = self
            .run(sid, None, true, move |m, now| {
                m.send_action(&p, &s, Action::TransportInfo, vec![content], None, now)
            })
            .await
        {
            tracing::debug!("transport-info of {sid}: {e}");
        }
    }

    /// The XEP-0260 negotiation: tries the peer's candidates one at a time while accepting on our
    /// listener and reading the peer's reports, until a stream is ready, the negotiation fails, the
    /// peer replaces the transport, or the negotiation timeout passes.
    async fn negotiate(
        &self,
        peer: &Jid,
        sid: &str,
        key: &(Creator, String),
        offer: S5bOffer,
        events: &mut mpsc::Receiver<Event>,
    ) -> Result<Negotiated> {
        let S5bOffer { mut neg, listener } = offer;
        let cfg = self.shared.cfg.socks5.clone();
        let deadline = tokio::time::Instant::now() + cfg.negotiation_timeout;
        let mut accept_task = AbortOnDrop(listener.map(|l| {
            let expected = vec![neg.local_dst_addr()];
            let limit = cfg.negotiation_timeout;
            tokio::spawn(async move { net::accept(&l, &expected, limit).await })
        }));
        let mut accepted: Option<TcpStream> = None;
        let mut outgoing: Option<(String, TcpStream)> = None;
        let mut attempt: Option<(String, Connecting)> = None;
        let mut nominated: Option<TcpStream> = None;
        loop {
            if attempt.is_none() {
                if let Some(a) = neg.next_attempt() {
                    let c = a.candidate;
                    let limit = cfg.connect_timeout;
                    let cid = c.cid.clone();
                    let dst = a.dst_addr;
                    attempt = Some((
                        cid,
                        Box::pin(async move {
                            net::connect(&c.host, c.port_or_default(), &dst, limit).await
                        }),
                    ));
                }
            }
            while let Some(ev) = neg.poll_event() {
                match ev {
                    negotiation::Event::Send(t) => self.transport_info(peer, sid, key, t).await,
                    negotiation::Event::Nominated(n) => {
                        if n.must_activate {
                            let proxy = n.candidate.streamhost();
                            match bytestreams::connect_and_activate(
                                &self.shared.conn,
                                &proxy,
                                &neg.local_dst_addr(),
                                neg.sid(),
                                peer,
                                cfg.connect_timeout,
                            )
                            .await
                            {
                                Ok(s) => {
                                    nominated = Some(s);
                                    let _ = neg.activated();
                                }
                                Err(e) => {
                                    tracing::debug!("proxy {} unusable: {e}", proxy.jid);
                                    let _ = neg.proxy_failed();
                                }
                            }
                        } else if n.offered_by_us {
                            // The peer's connection to our listener.
                            if accepted.is_none() {
                                if let Some(h) = accept_task.0.take() {
                                    if let Ok(Ok(Ok((s, _)))) =
                                        tokio::time::timeout(cfg.connect_timeout, h).await
                                    {
                                        accepted = Some(s);
                                    }
                                }
                            }
                            match accepted.take() {
                                Some(s) => nominated = Some(s),
                                None => {
                                    return Ok(Negotiated::Failed(
                                        "the peer's connection to our candidate never came".into(),
                                    ))
                                }
                            }
                        } else {
                            match outgoing.take() {
                                Some((cid, s)) if cid == n.candidate.cid => nominated = Some(s),
                                _ => {
                                    return Ok(Negotiated::Failed(
                                        "nominated a candidate we have no connection to".into(),
                                    ))
                                }
                            }
                        }
                    }
                    negotiation::Event::Ready => {
                        return Ok(match nominated.take() {
                            Some(s) => Negotiated::Stream(s),
                            None => Negotiated::Failed("ready without a stream".into()),
                        });
                    }
                    negotiation::Event::Failed(why) => return Ok(Negotiated::Failed(why)),
                }
            }
            tokio::select! {
                r = async {
                    match attempt.as_mut() {
                        Some((_, f)) => f.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let cid = attempt.take().map(|(c, _)| c).unwrap_or_default();
                    match r {
                        Ok(s) => {
                            if neg.attempt_succeeded(&cid).is_ok() {
                                outgoing = Some((cid, s));
                            }
                        }
                        Err(e) => {
                            tracing::debug!("candidate {cid} failed: {e}");
                            neg.attempt_failed(&cid);
                        }
                    }
                }
                r = async {
                    match accept_task.0.as_mut() {
                        Some(h) => h.await,
                        None => std::future::pending().await,
                    }
                } => {
                    accept_task.0 = None;
                    if let Ok(Ok((s, _))) = r {
                        accepted = Some(s);
                    }
                }
                ev = events.recv() => {
                    let Some(ev) = ev else {
                        return Err(Error::InvalidState("driver stopped".into()));
                    };
                    match ev.kind {
                        EventKind::Terminated { reason, .. } => return Err(Error::Terminated(reason)),
                        EventKind::Action { action: Action::TransportInfo, contents, .. } => {
                            for c in &contents {
                                match s5b_of(c) {
                                    Some(Ok(t)) => {
                                        if let Err(e) = neg.receive(&t) {
                                            tracing::debug!("transport-info of {sid} ignored: {e}");
                                        }
                                    }
                                    Some(Err(e)) => tracing::debug!("bad transport-info: {e}"),
                                    None => {}
                                }
                            }
                        }
                        EventKind::Action { action: Action::TransportReplace, contents, .. } => {
                            if let Some(t) = contents.into_iter().find_map(|c| c.transport) {
                                return Ok(Negotiated::Replaced(t));
                            }
                        }
                        _ => {}
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(Negotiated::Failed("negotiation timed out".into()));
                }
            }
        }
    }

    /// Initiator: asks to replace the failed SOCKS5 transport with IBB and waits for the answer.
    async fn replace_with_ibb(
        &self,
        peer: &Jid,
        sid: &str,
        key: &(Creator, String),
        receiving: bool,
        events: &mut mpsc::Receiver<Event>,
    ) -> Result<Link<C>> {
        let offer = IbbTransport {
            block_size: self.shared.cfg.block_size,
            ..IbbTransport::offer()
        };
        let ibb_sid = offer.sid.clone().unwrap_or_else(crate::random_id);
        let mut incoming =
            receiving.then(|| self.expect_ibb(peer.clone(), &ibb_sid, offer.block_size));
        let content =
            Content::new(key.0, key.1.clone()).with_transport(Transport::Ibb(offer.clone()));
        let (p, s) = (peer.clone(), sid.to_owned());
        let sent = self
            .run(sid, None, true, move |m, now| {
                m.send_action(&p, &s, Action::TransportReplace, vec![content], None, now)
            })
            .await;
        if let Err(e) = sent {
            self.terminate(peer, sid, Reason::new(ReasonCondition::FailedTransport))
                .await;
            return Err(e);
        }
        let answer = tokio::time::timeout(self.shared.cfg.iq_timeout, async {
            while let Some(ev) = events.recv().await {
                match ev.kind {
                    EventKind::Action {
                        action: Action::TransportAccept,
                        contents,
                        ..
                    } => return Ok(contents),
                    EventKind::Action {
                        action: Action::TransportReject,
                        ..
                    } => return Err(Error::InvalidState("the peer rejected IBB".into())),
                    EventKind::Terminated { reason, .. } => return Err(Error::Terminated(reason)),
                    _ => {}
                }
            }
            Err(Error::InvalidState("driver stopped".into()))
        })
        .await
        .unwrap_or(Err(Error::Timeout("transport-accept")));
        let contents = match answer {
            Ok(c) => c,
            Err(e) => {
                if !matches!(e, Error::Terminated(_)) {
                    self.terminate(peer, sid, Reason::new(ReasonCondition::FailedTransport))
                        .await;
                }
                return Err(e);
            }
        };
        if let Some(inc) = incoming.take() {
            return Ok(Link::IbbRecv(inc));
        }
        let bs = contents
            .iter()
            .find_map(|c| match &c.transport {
                Some(Transport::Ibb(t)) => {
                    Some(IbbTransport::negotiate(offer.block_size, t.block_size))
                }
                _ => None,
            })
            .unwrap_or(offer.block_size);
        Ok(Link::IbbSend {
            sid: ibb_sid,
            block_size: bs,
        })
    }

    /// Responder: waits for the initiator's transport-replace after a failed negotiation.
    async fn wait_replacement(&self, events: &mut mpsc::Receiver<Event>) -> Result<Transport> {
        tokio::time::timeout(self.shared.cfg.iq_timeout, async {
            while let Some(ev) = events.recv().await {
                match ev.kind {
                    EventKind::Action {
                        action: Action::TransportReplace,
                        contents,
                        ..
                    } => {
                        if let Some(t) = contents.into_iter().find_map(|c| c.transport) {
                            return Ok(t);
                        }
                    }
                    EventKind::Terminated { reason, .. } => return Err(Error::Terminated(reason)),
                    _ => {}
                }
            }
            Err(Error::InvalidState("driver stopped".into()))
        })
        .await
        .unwrap_or(Err(Error::Timeout("transport-replace")))
    }

    /// Accepts the peer's transport-replace when it proposes IBB (and the policy allows it), rejects
    /// it otherwise. `answer`: send transport-accept (false when nothing needs answering).
    async fn accept_replacement(
        &self,
        peer: &Jid,
        sid: &str,
        key: &(Creator, String),
        proposed: Transport,
        receiving: bool,
        answer: bool,
    ) -> Result<Link<C>> {
        let policy_ok = self.shared.cfg.transports != TransportPolicy::Socks5Only;
        let Transport::Ibb(t) = proposed.clone() else {
            if answer {
                let _ = self
                    .transport_answer(peer, sid, key, Action::TransportReject, proposed)
                    .await;
            }
            self.terminate(
                peer,
                sid,
                Reason::new(ReasonCondition::UnsupportedTransports),
            )
            .await;
            return Err(Error::InvalidState(
                "replacement transport not supported".into(),
            ));
        };
        if !policy_ok {
            if answer {
                let _ = self
                    .transport_answer(peer, sid, key, Action::TransportReject, proposed)
                    .await;
            }
            self.terminate(peer, sid, Reason::new(ReasonCondition::ConnectivityError))
                .await;
            return Err(Error::InvalidState("IBB refused by policy".into()));
        }
        let ours = t.answer(self.shared.cfg.block_size);
        let ibb_sid = t.sid.clone().unwrap_or_else(|| sid.to_owned());
        let link = if receiving {
            Link::IbbRecv(self.expect_ibb(peer.clone(), &ibb_sid, ours.block_size))
        } else {
            Link::IbbSend {
                sid: ibb_sid,
                block_size: ours.block_size,
            }
        };
        if answer {
            let ok = self
                .transport_answer(
                    peer,
                    sid,
                    key,
                    Action::TransportAccept,
                    Transport::Ibb(ours),
                )
                .await;
            if let Err(e) = ok {
                self.terminate(peer, sid, Reason::new(ReasonCondition::FailedTransport))
                    .await;
                return Err(e);
            }
        }
        Ok(link)
    }

    async fn transport_answer(
        &self,
        peer: &Jid,
        sid: &str,
        key: &(Creator, String),
        action: Action,
        t: Transport,
    ) -> Result<()> {
        let content = Content::new(key.0, key.1.clone()).with_transport(t);
        let (p, s) = (peer.clone(), sid.to_owned());
        self.run(sid, None, true, move |m, now| {
            m.send_action(&p, &s, action, vec![content], None, now)
        })
        .await
    }

    /// Sends `reader` (already wrapped by the stage) over the link until its end; returns the
    /// transport bytes sent. A SOCKS5 stream is shut down afterwards. On either transport the session's
    /// events are watched, so a session-terminate from the receiver stops the send at once with
    /// [`Error::Terminated`] (an in-band bytestream then gets a best-effort `<close/>`).
    pub(super) async fn send_over(
        &self,
        peer: &Jid,
        link: Link<C>,
        mut reader: BoxRead<'_>,
        events: &mut mpsc::Receiver<Event>,
    ) -> Result<u64> {
        match link {
            Link::Tcp(mut stream) => {
                let copy = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut sent: u64 = 0;
                    loop {
                        let n = reader.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        stream.write_all(buf.get(..n).unwrap_or_default()).await?;
                        sent += n as u64;
                    }
                    stream.shutdown().await?;
                    Ok::<u64, Error>(sent)
                };
                until_terminated(copy, events).await
            }
            Link::IbbSend { sid, block_size } => {
                let send = self.send_ibb(peer, &sid, block_size, &mut reader, None, &mut []);
                let r = until_terminated(send, events).await;
                if matches!(r, Err(Error::Terminated(_))) {
                    // The send stopped between blocks or with a block in flight: tell the peer the
                    // bytestream is over too, without waiting for its answer.
                    let conn = self.shared.conn.clone();
                    let close = IqRequest::set(
                        Some(peer.clone()),
                        IbbSender::new(&sid, block_size).close().to_element(),
                    )
                    .with_timeout(self.shared.cfg.iq_timeout);
                    tokio::spawn(async move {
                        let _ = conn.send_iq(close).await;
                    });
                }
                r
            }
            Link::IbbRecv(_) => Err(Error::InvalidState("a receiving link cannot send".into())),
        }
    }
}

/// Runs `work` while watching the session's events: a session-terminate (or the driver stopping) ends
/// it at once, dropping `work`.
async fn until_terminated<T>(
    work: impl Future<Output = Result<T>>,
    events: &mut mpsc::Receiver<Event>,
) -> Result<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            // Finished work wins over a terminate that arrived meanwhile.
            biased;
            r = &mut work => return r,
            ev = events.recv() => match ev.map(|e| e.kind) {
                Some(EventKind::Terminated { reason, .. }) => return Err(Error::Terminated(reason)),
                Some(_) => {}
                None => return Err(Error::InvalidState("driver stopped".into())),
            }
        }
    }
}

/// Receives the link's bytes into `writer` (the stage's writer): a SOCKS5 stream until `expected`
/// bytes (or its end when the size is unknown), an in-band bytestream until `<close/>`; then shuts
/// `writer` down (the stage's last check). Returns the transport bytes received.
pub(super) async fn receive_over<C: Connection + Clone + 'static>(
    link: Link<C>,
    mut writer: BoxWrite<'_>,
    expected: Option<u64>,
    idle: Duration,
) -> Result<u64> {
    let got = match link {
        Link::Tcp(mut stream) => {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got: u64 = 0;
            loop {
                let room = match expected {
                    Some(e) => (e - got).min(buf.len() as u64) as usize,
                    None => buf.len(),
                };
                if room == 0 {
                    break;
                }
                let chunk = buf.get_mut(..room).unwrap_or_default();
                let n = tokio::time::timeout(idle, stream.read(chunk))
                    .await
                    .map_err(|_| Error::Timeout("SOCKS5 stream silent"))??;
                if n == 0 {
                    break;
                }
                writer.write_all(buf.get(..n).unwrap_or_default()).await?;
                got += n as u64;
            }
            if let Some(e) = expected {
                if got < e {
                    return Err(Error::InvalidState(format!(
                        "the SOCKS5 stream ended after {got} of {e} bytes"
                    )));
                }
            }
            got
        }
        Link::IbbRecv(mut incoming) => {
            let mut ignored = StreamHasher::new();
            incoming.read_into(&mut writer, &mut ignored).await?
        }
        Link::IbbSend { .. } => {
            return Err(Error::InvalidState("a sending link cannot receive".into()))
        }
    };
    writer.shutdown().await?;
    Ok(got)
}
