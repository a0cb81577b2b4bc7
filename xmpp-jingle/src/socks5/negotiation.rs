//! The XEP-0260 candidate negotiation as a sans-IO state machine.
//!
//! Each side offers candidates, tries the peer's in priority order, and reports `candidate-used` or
//! `candidate-error`. Once both reports are known the nominated candidate follows XEP-0260 §2.4: a
//! used candidate beats an error, the higher priority wins, and a tie goes to the initiator's choice.
//! A nominated proxy candidate must be activated by the side that offered it; the other side waits
//! for `<activated/>`. Both sides failing (or a `proxy-error`) ends in [`Event::Failed`]: the session
//! then replaces the transport (IBB, XEP-0261) or terminates.
//!
//! The machine never touches a socket: the driver asks [`Negotiation::next_attempt`] what to connect
//! to (with the DST.ADDR to use), reports the result, feeds the peer's transport-info payloads to
//! [`Negotiation::receive`], and sends what [`Negotiation::poll_event`] asks for.
//!
//! DST.ADDR: for a candidate offered by X to Y it is `SHA1(SID + X + Y)` (XEP-0260 §2.2, where the
//! initiator's candidates use initiator + responder and the responder's use responder + initiator).

use std::collections::VecDeque;

use super::bytestreams::Mode;
use super::proto::dst_addr;
use super::transport::{Candidate, CandidateType, Transport, TransportInfo};

/// Which side of the Jingle session we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent session-initiate.
    Initiator,
    /// We received it.
    Responder,
}

/// Why the peer's input does not fit the negotiation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The transport element belongs to another stream.
    #[error("transport sid {0:?} does not match")]
    WrongSid(String),
    /// The peer used a candidate id we never offered.
    #[error("unknown candidate {0:?}")]
    UnknownCandidate(String),
    /// The peer reported twice, or at a time that makes no sense.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
    /// The peer's candidates were given twice.
    #[error("the peer's candidates are already known")]
    CandidatesTwice,
}

/// One connection to try: a peer candidate and how to handshake with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The candidate.
    pub candidate: Candidate,
    /// The DST.ADDR to send in the SOCKS5 CONNECT.
    pub dst_addr: String,
}

/// What a side reported about the other's candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Report {
    Used(String),
    Error,
}

/// The candidate both sides will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nomination {
    /// The nominated candidate.
    pub candidate: Candidate,
    /// `true` when it is one of ours: the bytestream is the connection the peer made to it (accepted
    /// on our listener, or, for a proxy, our own connection to the proxy); `false` when it is the
    /// peer's: our outgoing connection to it.
    pub offered_by_us: bool,
    /// A proxy of ours: connect to it with [`Negotiation::local_dst_addr`], activate the stream
    /// (XEP-0065 `<activate/>` naming the peer), then call [`Negotiation::activated`].
    pub must_activate: bool,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send this `<transport/>` to the peer in a `transport-info`.
    Send(Transport),
    /// The nominated candidate is known (see [`Nomination`]).
    Nominated(Nomination),
    /// Data may flow on the nominated candidate's connection.
    Ready,
    /// SOCKS5 failed: replace the transport (IBB) or terminate with `connectivity-error`.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Negotiating,
    /// Nominated a proxy; waiting for activation (ours or the peer's `<activated/>`).
    Activating {
        cid: String,
        by_us: bool,
    },
    Ready,
    Failed,
}

/// One side's XEP-0260 negotiation.
#[derive(Debug)]
pub struct Negotiation {
    role: Role,
    sid: String,
    local_jid: String,
    remote_jid: String,
    local: Vec<Candidate>,
    remote: Vec<Candidate>,
    remote_dstaddr: Option<String>,
    remote_known: bool,
    next: usize,
    ours: Option<Report>,
    theirs: Option<Report>,
    phase: Phase,
    events: VecDeque<Event>,
}

impl Negotiation {
    /// A negotiation for stream `sid` between our full JID and the peer's, offering `local`
    /// (see [`super::transport::priority`] for their priorities).
    pub fn new(
        role: Role,
        sid: impl Into<String>,
        local_jid: impl Into<String>,
        remote_jid: impl Into<String>,
        local: Vec<Candidate>,
    ) -> Negotiation {
        Negotiation {
            role,
            sid: sid.into(),
            local_jid: local_jid.into(),
            remote_jid: remote_jid.into(),
            local,
            remote: Vec::new(),
            remote_dstaddr: None,
            remote_known: false,
            next: 0,
            ours: None,
            theirs: None,
            phase: Phase::Negotiating,
            events: VecDeque::new(),
        }
    }

    /// The stream id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The DST.ADDR of connections to our candidates: `SHA1(sid + us + peer)`. A listener behind a
    /// direct candidate accepts exactly this.
    pub fn local_dst_addr(&self) -> String {
        dst_addr(&self.sid, &self.local_jid, &self.remote_jid)
    }

    /// The DST.ADDR of our connections to the peer's candidates (its `dstaddr` if it sent one).
    pub fn remote_dst_addr(&self) -> String {
        self.remote_dstaddr
            .clone()
            .unwrap_or_else(|| dst_addr(&self.sid, &self.remote_jid, &self.local_jid))
    }

    /// Our `<transport/>` with candidates, for session-initiate or session-accept.
    pub fn local_transport(&self) -> Transport {
        let mut t = Transport::with_candidates(self.sid.clone(), self.local.clone());
        if self.local.iter().any(|c| c.kind == CandidateType::Proxy) {
            t.dstaddr = Some(self.local_dst_addr());
        }
        if self.role == Role::Initiator {
            t.mode = Some(Mode::Tcp);
        }
        t
    }

    /// Takes the peer's candidates (from its session-initiate or session-accept).
    pub fn set_remote(&mut self, transport: &Transport) -> Result<(), NegotiationError> {
        if transport.sid != self.sid {
            return Err(NegotiationError::WrongSid(transport.sid.clone()));
        }
        if self.remote_known {
            return Err(NegotiationError::CandidatesTwice);
        }
        self.remote_known = true;
        self.remote = transport.candidates.clone();
        // Highest priority first; the sort is stable, so equal priorities keep the peer's order.
        self.remote.sort_by_key(|c| std::cmp::Reverse(c.priority));
        self.remote_dstaddr = transport.dstaddr.clone();
        Ok(())
    }

    fn priority_of_local(&self, cid: &str) -> Option<u32> {
        self.local.iter().find(|c| c.cid == cid).map(|c| c.priority)
    }

    fn remote_candidate(&self, cid: &str) -> Option<&Candidate> {
        self.remote.iter().find(|c| c.cid == cid)
    }

    /// The next peer candidate to connect to, or `None` when there is nothing (more) worth trying;
    /// in that case a `candidate-error` is queued if we had not reported yet. Call it again after
    /// [`Negotiation::attempt_failed`].
    pub fn next_attempt(&mut self) -> Option<Attempt> {
        if self.ours.is_some() || self.phase != Phase::Negotiating || !self.remote_known {
            return None;
        }
        // A candidate lower than the one the peer already used cannot win (ties go to the initiator).
        let floor = match &self.theirs {
            Some(Report::Used(cid)) => self.priority_of_local(cid),
            _ => None,
        };
        if let Some(candidate) = self.remote.get(self.next).cloned() {
            let worth = match floor {
                None => true,
                Some(p) => {
                    candidate.priority > p
                        || (candidate.priority == p && self.role == Role::Initiator)
                }
            };
            if worth {
                self.next += 1;
                return Some(Attempt {
                    dst_addr: self.remote_dst_addr(),
                    candidate,
                });
            }
        }
        self.ours = Some(Report::Error);
        self.send(TransportInfo::CandidateError);
        self.settle();
        None
    }

    /// Our connection to the peer's candidate `cid` completed its SOCKS5 handshake.
    pub fn attempt_succeeded(&mut self, cid: &str) -> Result<(), NegotiationError> {
        if self.ours.is_some() || self.phase != Phase::Negotiating {
            return Err(NegotiationError::Unexpected("success after our report"));
        }
        if self.remote_candidate(cid).is_none() {
            return Err(NegotiationError::UnknownCandidate(cid.to_owned()));
        }
        self.ours = Some(Report::Used(cid.to_owned()));
        self.send(TransportInfo::CandidateUsed(cid.to_owned()));
        self.settle();
        Ok(())
    }

    /// Our connection to `cid` failed; ask [`Negotiation::next_attempt`] for the next one.
    pub fn attempt_failed(&mut self, _cid: &str) {}

    /// Takes a `transport-info` payload from the peer.
    pub fn receive(&mut self, transport: &Transport) -> Result<(), NegotiationError> {
        if transport.sid != self.sid {
            return Err(NegotiationError::WrongSid(transport.sid.clone()));
        }
        let Some(info) = &transport.info else {
            // Candidates sent in a transport-info (trickled): only before we know any.
            return self.set_remote(transport);
        };
        match info {
            TransportInfo::CandidateUsed(cid) => {
                if self.theirs.is_some() || self.phase != Phase::Negotiating {
                    return Err(NegotiationError::Unexpected("candidate-used"));
                }
                if self.priority_of_local(cid).is_none() {
                    return Err(NegotiationError::UnknownCandidate(cid.clone()));
                }
                self.theirs = Some(Report::Used(cid.clone()));
                self.settle();
            }
            TransportInfo::CandidateError => {
                if self.theirs.is_some() || self.phase != Phase::Negotiating {
                    return Err(NegotiationError::Unexpected("candidate-error"));
                }
                self.theirs = Some(Report::Error);
                self.settle();
            }
            TransportInfo::Activated(cid) => match &self.phase {
                Phase::Activating { cid: want, by_us } if !by_us && want == cid => {
                    self.phase = Phase::Ready;
                    self.events.push_back(Event::Ready);
                }
                _ => return Err(NegotiationError::Unexpected("activated")),
            },
            TransportInfo::ProxyError => match &self.phase {
                Phase::Activating { .. } => {
                    self.phase = Phase::Failed;
                    self.events
                        .push_back(Event::Failed("the peer could not reach the proxy".into()));
                }
                _ => return Err(NegotiationError::Unexpected("proxy-error")),
            },
        }
        Ok(())
    }

    /// We activated our nominated proxy: queues `<activated/>` and [`Event::Ready`].
    pub fn activated(&mut self) -> Result<(), NegotiationError> {
        match &self.phase {
            Phase::Activating { cid, by_us: true } => {
                let cid = cid.clone();
                self.send(TransportInfo::Activated(cid));
                self.phase = Phase::Ready;
                self.events.push_back(Event::Ready);
                Ok(())
            }
            _ => Err(NegotiationError::Unexpected("activation")),
        }
    }

    /// We could not connect to (or activate) the nominated proxy: queues `<proxy-error/>` and fails.
    pub fn proxy_failed(&mut self) -> Result<(), NegotiationError> {
        match &self.phase {
            Phase::Activating { .. } => {
                self.send(TransportInfo::ProxyError);
                self.phase = Phase::Failed;
                self.events
                    .push_back(Event::Failed("the nominated proxy is unreachable".into()));
                Ok(())
            }
            _ => Err(NegotiationError::Unexpected("proxy failure")),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether data may flow.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the negotiation failed (fall back to another transport).
    pub fn is_failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    fn send(&mut self, info: TransportInfo) {
        self.events
            .push_back(Event::Send(Transport::with_info(self.sid.clone(), info)));
    }

    /// Decides once both reports are in.
    fn settle(&mut self) {
        if self.phase != Phase::Negotiating {
            return;
        }
        let (Some(ours), Some(theirs)) = (&self.ours, &self.theirs) else {
            return;
        };
        // (candidate, offered by us)
        let mine = match ours {
            Report::Used(cid) => self.remote_candidate(cid).cloned().map(|c| (c, false)),
            Report::Error => None,
        };
        let peers = match theirs {
            Report::Used(cid) => self
                .local
                .iter()
                .find(|c| &c.cid == cid)
                .cloned()
                .map(|c| (c, true)),
            Report::Error => None,
        };
        let chosen = match (mine, peers) {
            (None, None) => {
                self.phase = Phase::Failed;
                self.events.push_back(Event::Failed(
                    "neither side could connect to a candidate".into(),
                ));
                return;
            }
            (Some(m), None) => m,
            (None, Some(p)) => p,
            (Some(m), Some(p)) => {
                if m.0.priority != p.0.priority {
                    if m.0.priority > p.0.priority {
                        m
                    } else {
                        p
                    }
                } else if self.role == Role::Initiator {
                    // Our choice is the initiator's.
                    m
                } else {
                    p
                }
            }
        };
        let (candidate, offered_by_us) = chosen;
        let proxy = candidate.kind == CandidateType::Proxy;
        let must_activate = proxy && offered_by_us;
        let cid = candidate.cid.clone();
        self.events.push_back(Event::Nominated(Nomination {
            candidate,
            offered_by_us,
            must_activate,
        }));
        if proxy {
            self.phase = Phase::Activating {
                cid,
                by_us: offered_by_us,
            };
        } else {
            self.phase = Phase::Ready;
            self.events.push_back(Event::Ready);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::transport::priority;
    use super::*;

    const ROMEO: &str = "romeo@montague.lit/orchard";
    const JULIET: &str = "juliet@capulet.lit/balcony";

    fn cand(cid: &str, jid: &str, kind: CandidateType, local_pref: u16) -> Candidate {
        Candidate {
            cid: cid.into(),
            host: "127.0.0.1".into(),
            jid: jid::Jid::new(jid).unwrap(),
            port: Some(1000),
            priority: priority(kind, local_pref),
            kind,
        }
    }

    fn pair(init: Vec<Candidate>, resp: Vec<Candidate>) -> (Negotiation, Negotiation) {
        let mut a = Negotiation::new(Role::Initiator, "vj3hs98y", ROMEO, JULIET, init);
        let mut b = Negotiation::new(Role::Responder, "vj3hs98y", JULIET, ROMEO, resp);
        b.set_remote(&a.local_transport()).unwrap();
        a.set_remote(&b.local_transport()).unwrap();
        (a, b)
    }

    /// Delivers `from`'s queued Send events to `to`, returns the other events.
    fn deliver(from: &mut Negotiation, to: &mut Negotiation) -> Vec<Event> {
        let mut rest = Vec::new();
        while let Some(e) = from.poll_event() {
            match e {
                Event::Send(t) => {
                    // Through XML, as on the wire.
                    let t = Transport::from_element(&t.to_element()).unwrap();
                    to.receive(&t).unwrap();
                }
                other => rest.push(other),
            }
        }
        rest
    }

    fn nominated(events: &[Event]) -> Option<&Nomination> {
        events.iter().find_map(|e| match e {
            Event::Nominated(n) => Some(n),
            _ => None,
        })
    }

    #[test]
    fn dst_addrs_match_the_xep() {
        let (a, b) = pair(vec![], vec![]);
        assert_eq!(
            a.local_dst_addr(),
            "972b7bf47291ca609517f67f86b5081086052dad"
        );
        assert_eq!(b.remote_dst_addr(), a.local_dst_addr());
        assert_eq!(
            b.local_dst_addr(),
            "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"
        );
        assert_eq!(a.remote_dst_addr(), b.local_dst_addr());
    }

    #[test]
    fn higher_priority_wins_and_ties_go_to_the_initiator() {
        // Both connect: the responder's direct beats the initiator's proxy.
        let (mut a, mut b) = pair(
            vec![cand("a-proxy", "proxy.lit", CandidateType::Proxy, 0)],
            vec![cand("b-direct", JULIET, CandidateType::Direct, 0)],
        );
        let at = a.next_attempt().unwrap();
        assert_eq!(at.candidate.cid, "b-direct");
        assert_eq!(at.dst_addr, b.local_dst_addr());
        let bt = b.next_attempt().unwrap();
        assert_eq!(bt.candidate.cid, "a-proxy");
        a.attempt_succeeded("b-direct").unwrap();
        b.attempt_succeeded("a-proxy").unwrap();
        let ea = deliver(&mut a, &mut b);
        let eb = deliver(&mut b, &mut a);
        let ea2 = deliver(&mut a, &mut b);
        let na = nominated(&ea).or(nominated(&ea2)).unwrap();
        let nb = nominated(&eb).unwrap();
        assert_eq!(na.candidate.cid, "b-direct");
        assert!(!na.offered_by_us);
        assert_eq!(nb.candidate.cid, "b-direct");
        assert!(nb.offered_by_us && !nb.must_activate);
        assert!(a.is_ready() && b.is_ready());

        // Same priority both ways: the initiator's choice (the responder's candidate) wins.
        let (mut a, mut b) = pair(
            vec![cand("a1", ROMEO, CandidateType::Direct, 5)],
            vec![cand("b1", JULIET, CandidateType::Direct, 5)],
        );
        a.next_attempt().unwrap();
        b.next_attempt().unwrap();
        a.attempt_succeeded("b1").unwrap();
        b.attempt_succeeded("a1").unwrap();
        let mut all = deliver(&mut a, &mut b);
        all.extend(deliver(&mut b, &mut a));
        assert!(a.is_ready() && b.is_ready());
        for n in all.iter().filter_map(|e| match e {
            Event::Nominated(n) => Some(n),
            _ => None,
        }) {
            assert_eq!(n.candidate.cid, "b1");
        }
    }

    #[test]
    fn a_used_candidate_beats_an_error_and_lower_candidates_are_skipped() {
        let (mut a, mut b) = pair(
            vec![cand("a1", ROMEO, CandidateType::Direct, 9)],
            vec![
                cand("b-low", JULIET, CandidateType::Proxy, 0),
                cand("b-high", JULIET, CandidateType::Direct, 0),
            ],
        );
        // The responder connects first and reports.
        assert_eq!(b.next_attempt().unwrap().candidate.cid, "a1");
        b.attempt_succeeded("a1").unwrap();
        deliver(&mut b, &mut a);
        // The initiator still tries its higher candidate (priority 126<<16 < a1's 126<<16 + 9? no:
        // b-high is lower than a1, so nothing is worth trying): it reports candidate-error.
        assert!(a.next_attempt().is_none());
        let ea = deliver(&mut a, &mut b);
        let n = nominated(&ea).unwrap();
        assert_eq!(n.candidate.cid, "a1");
        assert!(n.offered_by_us);
        assert!(a.is_ready() && b.is_ready());
    }

    #[test]
    fn proxy_nomination_needs_activation() {
        let (mut a, mut b) = pair(
            vec![cand("a-proxy", "proxy.lit", CandidateType::Proxy, 0)],
            vec![],
        );
        assert!(a.next_attempt().is_none()); // nothing offered by the responder
        assert_eq!(b.next_attempt().unwrap().candidate.cid, "a-proxy");
        b.attempt_succeeded("a-proxy").unwrap();
        deliver(&mut a, &mut b);
        let eb = deliver(&mut b, &mut a);
        let nb = nominated(&eb).unwrap();
        assert!(!nb.must_activate && !nb.offered_by_us);
        let ea: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
        let n = nominated(&ea).unwrap();
        assert!(n.must_activate && n.offered_by_us);
        assert!(!a.is_ready() && !b.is_ready());
        // The responder must not take a premature or wrong activation.
        assert!(b.activated().is_err());
        a.activated().unwrap();
        let ea = deliver(&mut a, &mut b);
        assert!(ea.contains(&Event::Ready));
        assert_eq!(b.poll_event(), Some(Event::Ready));
        assert!(a.is_ready() && b.is_ready());
    }

    #[test]
    fn proxy_error_and_double_failure_fall_back() {
        let (mut a, mut b) = pair(
            vec![cand("a1", ROMEO, CandidateType::Direct, 0)],
            vec![cand("b1", JULIET, CandidateType::Direct, 0)],
        );
        a.next_attempt().unwrap();
        a.attempt_failed("a1");
        assert!(a.next_attempt().is_none());
        b.next_attempt().unwrap();
        assert!(b.next_attempt().is_none());
        let ea = deliver(&mut a, &mut b);
        let eb = deliver(&mut b, &mut a);
        assert!(ea
            .iter()
            .chain(eb.iter())
            .any(|e| matches!(e, Event::Failed(_))));
        assert!(a.is_failed() && b.is_failed());

        let (mut a, mut b) = pair(
            vec![cand("a-proxy", "proxy.lit", CandidateType::Proxy, 0)],
            vec![],
        );
        a.next_attempt();
        b.next_attempt().unwrap();
        b.attempt_succeeded("a-proxy").unwrap();
        deliver(&mut a, &mut b);
        deliver(&mut b, &mut a);
        a.proxy_failed().unwrap();
        let ea = deliver(&mut a, &mut b);
        assert!(ea.iter().any(|e| matches!(e, Event::Failed(_))));
        assert!(matches!(b.poll_event(), Some(Event::Failed(_))));
    }

    #[test]
    fn hostile_reports_are_errors() {
        let (mut a, _) = pair(vec![cand("a1", ROMEO, CandidateType::Direct, 0)], vec![]);
        let used =
            |cid: &str| Transport::with_info("vj3hs98y", TransportInfo::CandidateUsed(cid.into()));
        assert_eq!(
            a.receive(&used("nope")),
            Err(NegotiationError::UnknownCandidate("nope".into()))
        );
        assert!(matches!(
            a.receive(&Transport::with_info(
                "other",
                TransportInfo::CandidateError
            )),
            Err(NegotiationError::WrongSid(_))
        ));
        a.receive(&used("a1")).unwrap();
        assert!(a.receive(&used("a1")).is_err());
        assert!(a
            .receive(&Transport::with_info(
                "vj3hs98y",
                TransportInfo::Activated("a1".into())
            ))
            .is_err());
        assert!(a.attempt_succeeded("zz").is_err());
        assert!(a
            .set_remote(&Transport::with_candidates("vj3hs98y", vec![]))
            .is_err());
    }
}
