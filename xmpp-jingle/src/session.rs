//! The sans-IO Jingle session machine (XEP-0166): every action, both roles, reasons, timeouts.
//!
//! [`SessionManager`] holds every session of one account. It has no sockets and no clock:
//! - inputs: received Jingle IQ sets ([`SessionManager::handle_iq`]), the answers to the requests it asked
//!   to send ([`SessionManager::handle_response`]), local commands ([`SessionManager::initiate`],
//!   [`SessionManager::accept`], [`SessionManager::terminate`], [`SessionManager::send_action`], ...) and
//!   the time ([`SessionManager::handle_timeout`], with [`SessionManager::poll_timeout`] saying when);
//! - outputs ([`SessionManager::poll_output`]): requests to send (the driver reports their answers back
//!   by [`RequestId`]), IQ answers to send as they are, and [`Event`]s for the application.
//!
//! What the XEP says about bad sequences is followed: an action that cannot happen in the session's state
//! is answered `unexpected-request` + `<out-of-order/>`; a session id that is not live (never seen, or
//! terminated) gets `item-not-found` + `<unknown-session/>`, and so does a session-initiate that would
//! start a session that ended recently again (a retransmission: see [`SessionConfig::ended_memory`]);
//! simultaneous session-initiates are settled by the lower session id (then the lower JID), and
//! simultaneous identical actions in a session by the initiator, with `conflict` + `<tie-break/>` for the
//! loser; session-info payloads nobody registered get `feature-not-implemented` + `<unsupported-info/>`.
//! A repeated IQ (same sender and id) is answered like the first time without being processed again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use crate::error::{Error, Result};
use crate::jingle::{
    Action, Content, Creator, Jingle, JingleErrorCondition, Reason, ReasonCondition, Transport,
    NS_JINGLE_ERRORS,
};

/// Which side of a session we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent session-initiate.
    Initiator,
    /// We received it.
    Responder,
}

/// The state of a session (XEP-0166 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// session-initiate sent or received, not yet accepted.
    Pending,
    /// session-accept sent or received.
    Active,
    /// Terminated (kept only until the outputs are drained).
    Ended,
}

/// The handle of a request the machine asked the driver to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why a request of ours failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RequestError {
    /// No answer in time.
    Timeout,
    /// An IQ error: its defined condition and, when present, the Jingle condition.
    Stanza {
        /// The XMPP condition, e.g. `conflict`.
        condition: String,
        /// The Jingle condition, e.g. `tie-break`.
        jingle: Option<JingleErrorCondition>,
    },
    /// The connection failed.
    Connection(String),
}

impl RequestError {
    /// Reads a stanza error.
    pub fn from_stanza_error(e: &StanzaError) -> RequestError {
        let condition = Element::from(e.defined_condition.clone()).name().to_owned();
        RequestError::Stanza {
            condition,
            jingle: e
                .other
                .as_ref()
                .and_then(JingleErrorCondition::from_element),
        }
    }
}

/// What the machine reports to the application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// A peer initiated a session: accept it with [`SessionManager::accept`] or end it.
    Incoming {
        /// The offered contents.
        contents: Vec<Content>,
        /// Other children of the `<jingle/>` (unknown extensions), kept raw.
        payloads: Vec<Element>,
    },
    /// The peer accepted our session.
    Accepted {
        /// The contents as the peer accepted them (transport answers, file ranges...).
        contents: Vec<Content>,
    },
    /// The session ended.
    Terminated {
        /// The reason given (or ours).
        reason: Option<Reason>,
        /// Whether the peer ended it.
        by_peer: bool,
    },
    /// session-info with payloads of a registered namespace.
    Info {
        /// The payloads.
        payloads: Vec<Element>,
    },
    /// Any other action from the peer (content-*, description-info, transport-*, security-info), already
    /// checked against the session's state.
    Action {
        /// The action.
        action: Action,
        /// The contents it carried.
        contents: Vec<Content>,
        /// Its reason, if any.
        reason: Option<Reason>,
    },
    /// A request of ours failed.
    RequestFailed {
        /// The action of the request.
        action: Action,
        /// Why.
        error: RequestError,
    },
    /// Both sides initiated a session at once and the peer's session won the tie-break: ours is dropped and
    /// the peer's arrives as [`EventKind::Incoming`] under `winner`.
    TieBreakLost {
        /// The session id that won.
        winner: String,
    },
}

/// An event of one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The session id.
    pub sid: String,
    /// The other party.
    pub peer: Jid,
    /// What happened.
    pub kind: EventKind,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send an IQ set with this `<jingle/>` to `to`, then report its answer with
    /// [`SessionManager::handle_response`].
    Request {
        /// The handle to report with.
        id: RequestId,
        /// The recipient.
        to: Jid,
        /// The payload.
        jingle: Jingle,
    },
    /// Send this IQ result or error as it is.
    Answer(Iq),
    /// Tell the application.
    Event(Event),
}

/// Settings of a [`SessionManager`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Our full JID (initiator or responder attribute of what we send).
    pub local: Jid,
    /// Namespaces of session-info payloads the application handles; others get `<unsupported-info/>`.
    pub info_namespaces: Vec<String>,
    /// How long a session we initiated waits for session-accept before we end it with `<timeout/>`.
    /// `None` waits forever.
    pub accept_timeout: Option<Duration>,
    /// How long a request waits for its answer before it counts as failed (drivers usually report
    /// timeouts themselves; this bounds the machine's own bookkeeping).
    pub request_timeout: Duration,
    /// The most sessions at once; more session-initiates are refused with `resource-constraint`.
    pub max_sessions: usize,
    /// How long the id of an ended session stays unusable: a session-initiate with the peer and id of a
    /// session that ended this recently (a retransmission, or a replay) is refused with `item-not-found`
    /// and `<unknown-session/>` instead of starting the session again, and
    /// [`SessionManager::initiate_with_sid`] refuses the id too. At most the last [`RECENTLY_ENDED`]
    /// ended sessions are remembered.
    pub ended_memory: Duration,
}

impl SessionConfig {
    /// Defaults: file-transfer session-info understood, 5 minutes to accept, 60 s per request, 256 sessions,
    /// ended session ids remembered for 5 minutes.
    pub fn new(local: Jid) -> Self {
        SessionConfig {
            local,
            info_namespaces: vec![crate::ft::NS_FT.into()],
            accept_timeout: Some(Duration::from_secs(300)),
            request_timeout: Duration::from_secs(60),
            max_sessions: 256,
            ended_memory: Duration::from_secs(300),
        }
    }
}

type ContentKey = (Creator, String);

/// How an incoming action was answered: a result (`None`) or this error.
type Verdict = Option<(DefinedCondition, Option<JingleErrorCondition>)>;

/// How many answered IQs (sender and id) a session remembers to answer repeats the same way.
const RECENT_IDS: usize = 32;

/// How many ended sessions (peer and id) a [`SessionManager`] remembers, to refuse a session-initiate that
/// would start one of them again (see [`SessionConfig::ended_memory`]).
pub const RECENTLY_ENDED: usize = 64;

#[derive(Debug)]
struct Session {
    role: Role,
    state: SessionState,
    peer: Jid,
    contents: BTreeMap<ContentKey, Content>,
    /// content-add we sent, waiting for content-accept/reject.
    our_adds: BTreeMap<ContentKey, Content>,
    /// content-add the peer sent, waiting for our answer.
    peer_adds: BTreeMap<ContentKey, Content>,
    /// transport-replace we sent: the proposed transports.
    our_replaces: BTreeMap<ContentKey, Option<Transport>>,
    /// transport-replace the peer sent: the proposed transports.
    peer_replaces: BTreeMap<ContentKey, Option<Transport>>,
    /// Our unanswered requests by action (for tie-breaks).
    outstanding: BTreeMap<Action, u32>,
    /// Whether our session-initiate was answered (tie-breaks only apply before).
    initiate_answered: bool,
    /// IQs already answered, by sender (full JID) and id: the answer was a result (`None`) or this
    /// error. Ids are only unique per sender, so the sender is part of the key.
    recent: VecDeque<(Jid, String, Verdict)>,
    accept_deadline: Option<Instant>,
    /// Our session lost a tie-break; the peer's error will end it silently.
    lost_tie: bool,
    /// Which session this is among those that had the same peer and id (a peer may start a new session with
    /// the id of an ended one, or win a tie-break with the id of ours): answers to requests of an earlier
    /// one must not touch it.
    serial: u64,
}

#[derive(Debug)]
struct PendingRequest {
    peer: Jid,
    sid: String,
    /// The [`Session::serial`] of the session that sent it.
    serial: u64,
    action: Action,
    deadline: Instant,
}

/// All Jingle sessions of one account, sans IO. See the module documentation.
#[derive(Debug)]
pub struct SessionManager {
    cfg: SessionConfig,
    sessions: HashMap<(Jid, String), Session>,
    requests: BTreeMap<RequestId, PendingRequest>,
    next_request: u64,
    next_serial: u64,
    out: VecDeque<Output>,
    /// Sessions that ended (peer, id) and when, oldest first, at most [`RECENTLY_ENDED`].
    ended: VecDeque<((Jid, String), Instant)>,
}

fn error_iq(
    to: &Jid,
    id: &str,
    cond: DefinedCondition,
    jingle: Option<JingleErrorCondition>,
) -> Iq {
    let type_ = match cond {
        DefinedCondition::BadRequest | DefinedCondition::NotAcceptable => ErrorType::Modify,
        DefinedCondition::ResourceConstraint | DefinedCondition::UnexpectedRequest => {
            ErrorType::Wait
        }
        _ => ErrorType::Cancel,
    };
    let mut e = StanzaError::new(type_, cond, "en", "");
    e.texts.clear();
    e.other = jingle.map(|j| Element::bare(j.name(), NS_JINGLE_ERRORS));
    Iq::Error {
        from: None,
        to: Some(to.clone()),
        id: id.to_owned(),
        error: e,
        payload: None,
    }
}

fn result_iq(to: &Jid, id: &str) -> Iq {
    Iq::Result {
        from: None,
        to: Some(to.clone()),
        id: id.to_owned(),
        payload: None,
    }
}

fn keys(contents: &[Content]) -> Vec<ContentKey> {
    contents.iter().map(Content::key).collect()
}

fn app_namespaces(contents: &[Content]) -> Vec<String> {
    let mut v: Vec<String> = contents
        .iter()
        .filter_map(|c| c.description.as_ref().map(|d| d.ns()))
        .collect();
    v.sort();
    v.dedup();
    v
}

impl SessionManager {
    /// A manager with no sessions.
    pub fn new(cfg: SessionConfig) -> Self {
        SessionManager {
            cfg,
            sessions: HashMap::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            next_serial: 0,
            out: VecDeque::new(),
            ended: VecDeque::new(),
        }
    }

    /// Our JID.
    pub fn local(&self) -> &Jid {
        &self.cfg.local
    }

    /// The next output, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The state of a session, `None` when it is not live.
    pub fn state(&self, peer: &Jid, sid: &str) -> Option<SessionState> {
        self.sessions
            .get(&(peer.clone(), sid.to_owned()))
            .map(|s| s.state)
    }

    /// Our role in a session.
    pub fn role(&self, peer: &Jid, sid: &str) -> Option<Role> {
        self.sessions
            .get(&(peer.clone(), sid.to_owned()))
            .map(|s| s.role)
    }

    /// The current contents of a live session (accepted or offered, with transports as negotiated).
    pub fn contents(&self, peer: &Jid, sid: &str) -> Vec<Content> {
        self.sessions
            .get(&(peer.clone(), sid.to_owned()))
            .map(|s| s.contents.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    fn serial(&mut self) -> u64 {
        self.next_serial = self.next_serial.wrapping_add(1);
        self.next_serial
    }

    fn event(&mut self, peer: &Jid, sid: &str, kind: EventKind) {
        self.out.push_back(Output::Event(Event {
            sid: sid.to_owned(),
            peer: peer.clone(),
            kind,
        }));
    }

    fn request(&mut self, peer: &Jid, jingle: Jingle, now: Instant) {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        let mut serial = u64::MAX;
        if let Some(s) = self.sessions.get_mut(&(peer.clone(), jingle.sid.clone())) {
            *s.outstanding.entry(jingle.action).or_insert(0) += 1;
            serial = s.serial;
        }
        self.requests.insert(
            id,
            PendingRequest {
                peer: peer.clone(),
                sid: jingle.sid.clone(),
                serial,
                action: jingle.action,
                deadline: now + self.cfg.request_timeout,
            },
        );
        self.out.push_back(Output::Request {
            id,
            to: peer.clone(),
            jingle,
        });
    }

    fn end(&mut self, peer: &Jid, sid: &str, reason: Option<Reason>, by_peer: bool, now: Instant) {
        let key = (peer.clone(), sid.to_owned());
        if self.sessions.remove(&key).is_some() {
            self.remember_ended(key, now);
            self.event(peer, sid, EventKind::Terminated { reason, by_peer });
        }
    }

    /// Remembers an ended session (bounded by count and age).
    fn remember_ended(&mut self, key: (Jid, String), now: Instant) {
        let memory = self.cfg.ended_memory;
        while self.ended.len() >= RECENTLY_ENDED
            || self
                .ended
                .front()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= memory)
        {
            self.ended.pop_front();
        }
        self.ended.retain(|(k, _)| *k != key);
        self.ended.push_back((key, now));
    }

    /// Whether the session (peer, id) ended less than [`SessionConfig::ended_memory`] ago.
    pub fn recently_ended(&self, peer: &Jid, sid: &str, now: Instant) -> bool {
        self.ended.iter().any(|((p, s), at)| {
            p == peer && s == sid && now.saturating_duration_since(*at) < self.cfg.ended_memory
        })
    }

    /// Starts a session with `peer` offering `contents` (each needs a description and a transport).
    /// Returns the new session id.
    pub fn initiate(&mut self, peer: Jid, contents: Vec<Content>, now: Instant) -> Result<String> {
        self.initiate_with_sid(peer, crate::random_id(), contents, now)
    }

    /// [`Self::initiate`] with a chosen session id (tests, and XEP-0353 where the id is agreed first).
    pub fn initiate_with_sid(
        &mut self,
        peer: Jid,
        sid: String,
        contents: Vec<Content>,
        now: Instant,
    ) -> Result<String> {
        if contents.is_empty() {
            return Err(Error::InvalidState(
                "session-initiate needs a content".into(),
            ));
        }
        if self.sessions.contains_key(&(peer.clone(), sid.clone())) {
            return Err(Error::InvalidState(format!("session {sid} exists")));
        }
        if self.recently_ended(&peer, &sid, now) {
            // The peer would refuse it as a replay of the ended session.
            return Err(Error::InvalidState(format!("session {sid} just ended")));
        }
        if self.sessions.len() >= self.cfg.max_sessions {
            return Err(Error::InvalidState("too many sessions".into()));
        }
        let session = Session {
            role: Role::Initiator,
            state: SessionState::Pending,
            peer: peer.clone(),
            contents: contents.iter().map(|c| (c.key(), c.clone())).collect(),
            our_adds: BTreeMap::new(),
            peer_adds: BTreeMap::new(),
            our_replaces: BTreeMap::new(),
            peer_replaces: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            initiate_answered: false,
            recent: VecDeque::new(),
            accept_deadline: self.cfg.accept_timeout.map(|t| now + t),
            lost_tie: false,
            serial: self.serial(),
        };
        self.sessions.insert((peer.clone(), sid.clone()), session);
        let mut j = Jingle::new(Action::SessionInitiate, sid.clone());
        j.initiator = Some(self.cfg.local.clone());
        j.contents = contents;
        self.request(&peer, j, now);
        Ok(sid)
    }

    /// Accepts a session the peer initiated, with our answers for its contents (e.g. the transport with
    /// our block size, a file `<range/>` to resume).
    pub fn accept(
        &mut self,
        peer: &Jid,
        sid: &str,
        contents: Vec<Content>,
        now: Instant,
    ) -> Result<()> {
        let local = self.cfg.local.clone();
        let s = self
            .sessions
            .get_mut(&(peer.clone(), sid.to_owned()))
            .ok_or_else(|| Error::UnknownSession(sid.to_owned()))?;
        if s.role != Role::Responder || s.state != SessionState::Pending {
            return Err(Error::InvalidState(
                "only a pending session we received can be accepted".into(),
            ));
        }
        s.state = SessionState::Active;
        for c in &contents {
            s.contents.insert(c.key(), c.clone());
        }
        let mut j = Jingle::new(Action::SessionAccept, sid);
        j.responder = Some(local);
        j.contents = contents;
        self.request(peer, j, now);
        Ok(())
    }

    /// Ends a session (any state). Further stanzas of it get `<unknown-session/>`.
    pub fn terminate(&mut self, peer: &Jid, sid: &str, reason: Reason, now: Instant) -> Result<()> {
        if !self.sessions.contains_key(&(peer.clone(), sid.to_owned())) {
            return Err(Error::UnknownSession(sid.to_owned()));
        }
        let mut j = Jingle::new(Action::SessionTerminate, sid);
        j.reason = Some(reason.clone());
        self.request(peer, j, now);
        self.end(peer, sid, Some(reason), false, now);
        Ok(())
    }

    /// Sends session-info with these payloads (none: a session ping).
    pub fn session_info(
        &mut self,
        peer: &Jid,
        sid: &str,
        payloads: Vec<Element>,
        now: Instant,
    ) -> Result<()> {
        if !self.sessions.contains_key(&(peer.clone(), sid.to_owned())) {
            return Err(Error::UnknownSession(sid.to_owned()));
        }
        let mut j = Jingle::new(Action::SessionInfo, sid);
        j.payloads = payloads;
        self.request(peer, j, now);
        Ok(())
    }

    /// Sends one of the content-, transport-, description-info or security-info actions, after checking it
    /// fits the session (e.g. content-accept only answers a content-add of the peer).
    pub fn send_action(
        &mut self,
        peer: &Jid,
        sid: &str,
        action: Action,
        contents: Vec<Content>,
        reason: Option<Reason>,
        now: Instant,
    ) -> Result<()> {
        let s = self
            .sessions
            .get_mut(&(peer.clone(), sid.to_owned()))
            .ok_or_else(|| Error::UnknownSession(sid.to_owned()))?;
        let ks = keys(&contents);
        let bad = |what: &str| Err(Error::InvalidState(format!("{}: {what}", action.as_str())));
        if contents.is_empty() {
            return bad("needs a content");
        }
        match action {
            Action::SessionInitiate
            | Action::SessionAccept
            | Action::SessionTerminate
            | Action::SessionInfo => return bad("use the dedicated method"),
            Action::ContentAdd => {
                if ks
                    .iter()
                    .any(|k| s.contents.contains_key(k) || s.our_adds.contains_key(k))
                {
                    return bad("content exists");
                }
                for c in &contents {
                    s.our_adds.insert(c.key(), c.clone());
                }
            }
            Action::ContentAccept | Action::ContentReject => {
                if !ks.iter().all(|k| s.peer_adds.contains_key(k)) {
                    return bad("no content-add of the peer to answer");
                }
                for c in &contents {
                    if let Some(added) = s.peer_adds.remove(&c.key()) {
                        if action == Action::ContentAccept {
                            let mut merged = added;
                            if c.description.is_some() {
                                merged.description = c.description.clone();
                            }
                            if c.transport.is_some() {
                                merged.transport = c.transport.clone();
                            }
                            s.contents.insert(c.key(), merged);
                        }
                    }
                }
            }
            Action::ContentModify
            | Action::DescriptionInfo
            | Action::SecurityInfo
            | Action::TransportInfo => {
                if !ks.iter().all(|k| s.contents.contains_key(k)) {
                    return bad("unknown content");
                }
                if action == Action::ContentModify {
                    for c in &contents {
                        if let (Some(existing), Some(senders)) =
                            (s.contents.get_mut(&c.key()), c.senders)
                        {
                            existing.senders = Some(senders);
                        }
                    }
                }
            }
            Action::ContentRemove => {
                if !ks.iter().all(|k| {
                    s.contents.contains_key(k)
                        || s.our_adds.contains_key(k)
                        || s.peer_adds.contains_key(k)
                }) {
                    return bad("unknown content");
                }
                for k in &ks {
                    s.contents.remove(k);
                    s.our_adds.remove(k);
                    s.peer_adds.remove(k);
                }
            }
            Action::TransportReplace => {
                if !ks.iter().all(|k| s.contents.contains_key(k)) {
                    return bad("unknown content");
                }
                for c in &contents {
                    s.our_replaces.insert(c.key(), c.transport.clone());
                }
            }
            Action::TransportAccept | Action::TransportReject => {
                if !ks.iter().all(|k| s.peer_replaces.contains_key(k)) {
                    return bad("no transport-replace of the peer to answer");
                }
                for c in &contents {
                    let proposed = s.peer_replaces.remove(&c.key()).flatten();
                    if action == Action::TransportAccept {
                        if let Some(existing) = s.contents.get_mut(&c.key()) {
                            existing.transport = c.transport.clone().or(proposed);
                        }
                    }
                }
            }
        }
        let mut j = Jingle::new(action, sid);
        j.contents = contents;
        j.reason = reason;
        self.request(peer, j, now);
        Ok(())
    }

    /// Handles a received `<iq type='set'>` whose payload is `<jingle/>` (`payload`). Always produces an
    /// answer for the IQ; never panics on any input.
    pub fn handle_iq(&mut self, from: &Jid, id: &str, payload: &Element, now: Instant) {
        let jingle = match Jingle::from_element(payload) {
            Ok(j) => j,
            Err(_) => {
                self.out.push_back(Output::Answer(error_iq(
                    from,
                    id,
                    DefinedCondition::BadRequest,
                    None,
                )));
                return;
            }
        };
        let key = (from.clone(), jingle.sid.clone());
        // A repeated IQ is answered as the first time, without processing it again.
        if let Some(s) = self.sessions.get(&key) {
            if let Some((_, _, prev)) = s.recent.iter().find(|(p, i, _)| p == from && i == id) {
                let answer = match prev {
                    None => result_iq(from, id),
                    Some((c, j)) => error_iq(from, id, c.clone(), *j),
                };
                self.out.push_back(Output::Answer(answer));
                return;
            }
        }
        let verdict = self.process(from, jingle, now);
        if let Some(s) = self.sessions.get_mut(&key) {
            if s.recent.len() >= RECENT_IDS {
                s.recent.pop_front();
            }
            s.recent
                .push_back((from.clone(), id.to_owned(), verdict.clone()));
        }
        let answer = match verdict {
            None => result_iq(from, id),
            Some((c, j)) => error_iq(from, id, c, j),
        };
        // The answer goes out before the events it caused, so the peer hears it first.
        let events: Vec<Output> = self.out.drain(..).collect();
        self.out.push_back(Output::Answer(answer));
        self.out.extend(events);
    }

    /// Processes one parsed action; `None` means answer with a result.
    fn process(&mut self, from: &Jid, j: Jingle, now: Instant) -> Verdict {
        let out_of_order = Some((
            DefinedCondition::UnexpectedRequest,
            Some(JingleErrorCondition::OutOfOrder),
        ));
        let bad_request = Some((DefinedCondition::BadRequest, None));
        let key = (from.clone(), j.sid.clone());
        let sid = j.sid.clone();

        if j.action == Action::SessionInitiate {
            // Our own unanswered session-initiate to the same peer for the same applications ties with it.
            let ties = |s: &Session| {
                s.role == Role::Initiator
                    && s.state == SessionState::Pending
                    && !s.initiate_answered
                    && !s.lost_tie
                    && app_namespaces(&s.contents.values().cloned().collect::<Vec<_>>())
                        == app_namespaces(&j.contents)
            };
            // The same session id is only a tie (settled by the JIDs), never a second session.
            let same_sid = match self.sessions.get(&key) {
                Some(s) if ties(s) => true,
                Some(_) => return out_of_order,
                // A retransmitted (or replayed) session-initiate of a session that ended: that session
                // is no longer live (XEP-0166 "Termination" and "Error Handling": `<unknown-session/>`),
                // and it must not start again.
                None if self.recently_ended(from, &sid, now) => {
                    return Some((
                        DefinedCondition::ItemNotFound,
                        Some(JingleErrorCondition::UnknownSession),
                    ))
                }
                None => false,
            };
            if j.contents.is_empty() || j.contents.iter().any(|c| c.description.is_none()) {
                return bad_request;
            }
            // Every pending initiate of ours that ties with theirs, in session id order (so the outcome
            // never depends on the order of a hash map). The same session id ties too (`same_sid`).
            let mut ours: Vec<String> = self
                .sessions
                .iter()
                .filter(|((p, _), s)| p == from && ties(s))
                .map(|((_, sid), _)| sid.clone())
                .collect();
            ours.sort_unstable();
            debug_assert!(!same_sid || ours.contains(&sid));
            // XEP-0166 §7.2.16 pairwise: the lower session id overrules (i;octet), then the lower JID.
            let local = self.cfg.local.to_string();
            let beats_theirs = |our_sid: &String| match our_sid.as_bytes().cmp(sid.as_bytes()) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => local < from.to_string(),
            };
            if ours.iter().any(beats_theirs) {
                // One of ours overrules theirs: the peer gives way (its own check agrees).
                return Some((
                    DefinedCondition::Conflict,
                    Some(JingleErrorCondition::TieBreak),
                ));
            }
            // Theirs overrules each of ours (the peer refuses all of them): drop them, lowest id first.
            for our_sid in ours {
                if let Some(s) = self.sessions.get_mut(&(from.clone(), our_sid.clone())) {
                    s.lost_tie = true;
                }
                self.sessions.remove(&(from.clone(), our_sid.clone()));
                self.event(
                    from,
                    &our_sid,
                    EventKind::TieBreakLost {
                        winner: sid.clone(),
                    },
                );
            }
            if self.sessions.len() >= self.cfg.max_sessions {
                return Some((DefinedCondition::ResourceConstraint, None));
            }
            let session = Session {
                role: Role::Responder,
                state: SessionState::Pending,
                peer: from.clone(),
                contents: j.contents.iter().map(|c| (c.key(), c.clone())).collect(),
                our_adds: BTreeMap::new(),
                peer_adds: BTreeMap::new(),
                our_replaces: BTreeMap::new(),
                peer_replaces: BTreeMap::new(),
                outstanding: BTreeMap::new(),
                initiate_answered: true,
                recent: VecDeque::new(),
                accept_deadline: None,
                lost_tie: false,
                serial: self.serial(),
            };
            self.sessions.insert(key, session);
            self.event(
                from,
                &sid,
                EventKind::Incoming {
                    contents: j.contents,
                    payloads: j.payloads,
                },
            );
            return None;
        }

        let info_namespaces = self.cfg.info_namespaces.clone();
        let Some(s) = self.sessions.get_mut(&key) else {
            return Some((
                DefinedCondition::ItemNotFound,
                Some(JingleErrorCondition::UnknownSession),
            ));
        };
        let ks = keys(&j.contents);
        // Existing-session tie-break: the initiator's action overrules the responder's identical one.
        if s.role == Role::Initiator
            && matches!(
                j.action,
                Action::ContentAdd | Action::ContentModify | Action::TransportReplace
            )
            && s.outstanding.get(&j.action).copied().unwrap_or(0) > 0
        {
            let clash = match j.action {
                Action::ContentAdd => {
                    ks.iter().any(|k| s.our_adds.contains_key(k)) || !ks.is_empty()
                }
                Action::TransportReplace => ks.iter().any(|k| s.our_replaces.contains_key(k)),
                _ => true,
            };
            if clash {
                return Some((
                    DefinedCondition::Conflict,
                    Some(JingleErrorCondition::TieBreak),
                ));
            }
        }
        match j.action {
            Action::SessionInitiate => out_of_order,
            Action::SessionAccept => {
                if s.role != Role::Initiator || s.state != SessionState::Pending {
                    return out_of_order;
                }
                s.state = SessionState::Active;
                s.accept_deadline = None;
                s.initiate_answered = true;
                for c in &j.contents {
                    let entry = s.contents.entry(c.key()).or_insert_with(|| c.clone());
                    if c.description.is_some() {
                        entry.description = c.description.clone();
                    }
                    if c.transport.is_some() {
                        entry.transport = c.transport.clone();
                    }
                }
                self.event(
                    from,
                    &sid,
                    EventKind::Accepted {
                        contents: j.contents,
                    },
                );
                None
            }
            Action::SessionTerminate => {
                self.end(from, &sid, j.reason, true, now);
                None
            }
            Action::SessionInfo => {
                if j.payloads.is_empty() {
                    return None; // a session ping
                }
                if !j
                    .payloads
                    .iter()
                    .all(|p| info_namespaces.iter().any(|n| *n == p.ns()))
                {
                    return Some((
                        DefinedCondition::FeatureNotImplemented,
                        Some(JingleErrorCondition::UnsupportedInfo),
                    ));
                }
                self.event(
                    from,
                    &sid,
                    EventKind::Info {
                        payloads: j.payloads,
                    },
                );
                None
            }
            action => {
                if j.contents.is_empty() {
                    return bad_request;
                }
                let known = |s: &Session, k: &ContentKey| s.contents.contains_key(k);
                match action {
                    Action::ContentAdd => {
                        if ks
                            .iter()
                            .any(|k| known(s, k) || s.peer_adds.contains_key(k))
                        {
                            return bad_request;
                        }
                        for c in &j.contents {
                            s.peer_adds.insert(c.key(), c.clone());
                        }
                    }
                    Action::ContentAccept | Action::ContentReject => {
                        if !ks.iter().all(|k| s.our_adds.contains_key(k)) {
                            return out_of_order;
                        }
                        for c in &j.contents {
                            if let Some(mut added) = s.our_adds.remove(&c.key()) {
                                if action == Action::ContentAccept {
                                    if c.transport.is_some() {
                                        added.transport = c.transport.clone();
                                    }
                                    s.contents.insert(c.key(), added);
                                }
                            }
                        }
                    }
                    Action::ContentRemove => {
                        if !ks.iter().all(|k| {
                            known(s, k) || s.our_adds.contains_key(k) || s.peer_adds.contains_key(k)
                        }) {
                            return bad_request;
                        }
                        for k in &ks {
                            s.contents.remove(k);
                            s.our_adds.remove(k);
                            s.peer_adds.remove(k);
                        }
                    }
                    Action::ContentModify => {
                        if !ks.iter().all(|k| known(s, k)) {
                            return bad_request;
                        }
                        for c in &j.contents {
                            if let (Some(e), Some(senders)) =
                                (s.contents.get_mut(&c.key()), c.senders)
                            {
                                e.senders = Some(senders);
                            }
                        }
                    }
                    Action::DescriptionInfo | Action::SecurityInfo | Action::TransportInfo => {
                        if !ks.iter().all(|k| known(s, k)) {
                            return bad_request;
                        }
                    }
                    Action::TransportReplace => {
                        if !ks.iter().all(|k| known(s, k)) {
                            return bad_request;
                        }
                        for c in &j.contents {
                            s.peer_replaces.insert(c.key(), c.transport.clone());
                        }
                    }
                    Action::TransportAccept | Action::TransportReject => {
                        if !ks.iter().all(|k| s.our_replaces.contains_key(k)) {
                            return out_of_order;
                        }
                        for c in &j.contents {
                            let proposed = s.our_replaces.remove(&c.key()).flatten();
                            if action == Action::TransportAccept {
                                if let Some(e) = s.contents.get_mut(&c.key()) {
                                    e.transport = proposed.or_else(|| c.transport.clone());
                                }
                            }
                        }
                    }
                    _ => return out_of_order,
                }
                let now_empty = s.contents.is_empty()
                    && s.our_adds.is_empty()
                    && s.peer_adds.is_empty()
                    && action == Action::ContentRemove;
                self.event(
                    from,
                    &sid,
                    EventKind::Action {
                        action,
                        contents: j.contents,
                        reason: j.reason.clone(),
                    },
                );
                // A session without contents is void (XEP-0166 §7.2.?): end it.
                if now_empty {
                    let reason = j
                        .reason
                        .unwrap_or_else(|| Reason::new(ReasonCondition::Cancel));
                    let _ = self.terminate(from, &sid, reason, now);
                }
                None
            }
        }
    }

    /// Reports the answer to a request: `Ok` for a result, `Err` for an error or a timeout.
    pub fn handle_response(
        &mut self,
        id: RequestId,
        answer: std::result::Result<(), RequestError>,
        now: Instant,
    ) {
        let Some(req) = self.requests.remove(&id) else {
            return;
        };
        let key = (req.peer.clone(), req.sid.clone());
        let Some(s) = self.sessions.get_mut(&key) else {
            return; // the session ended meanwhile
        };
        if s.serial != req.serial {
            return; // it ended meanwhile, and this is another session with the same peer and id
        }
        if let Some(n) = s.outstanding.get_mut(&req.action) {
            *n = n.saturating_sub(1);
        }
        if req.action == Action::SessionInitiate {
            s.initiate_answered = true;
        }
        let Err(error) = answer else {
            return;
        };
        if s.lost_tie {
            self.sessions.remove(&key);
            return;
        }
        self.event(
            &req.peer,
            &req.sid,
            EventKind::RequestFailed {
                action: req.action,
                error: error.clone(),
            },
        );
        match req.action {
            // Without these the session cannot go on.
            Action::SessionInitiate | Action::SessionAccept => {
                let reason = match &error {
                    RequestError::Timeout => ReasonCondition::Timeout,
                    _ => ReasonCondition::GeneralError,
                };
                let unknown = matches!(
                    &error,
                    RequestError::Stanza {
                        jingle: Some(JingleErrorCondition::UnknownSession),
                        ..
                    }
                );
                if req.action == Action::SessionAccept && !unknown {
                    let _ = self.terminate(&req.peer, &req.sid, Reason::new(reason), now);
                } else {
                    self.end(&req.peer, &req.sid, Some(Reason::new(reason)), false, now);
                }
            }
            _ => {}
        }
    }

    /// The next instant at which [`Self::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.sessions.values().filter_map(|s| s.accept_deadline);
        let requests = self.requests.values().map(|r| r.deadline);
        sessions.chain(requests).min()
    }

    /// Expires what is due at `now`: unanswered requests fail with [`RequestError::Timeout`], sessions we
    /// initiated and nobody accepted in time are terminated with `<timeout/>`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.handle_response(id, Err(RequestError::Timeout), now);
        }
        let mut expired: Vec<(Jid, String)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.accept_deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        // In a stable order (session id, then peer), not the hash map's.
        expired.sort_unstable_by(|(pa, sa), (pb, sb)| {
            sa.cmp(sb).then_with(|| pa.to_string().cmp(&pb.to_string()))
        });
        for (peer, sid) in expired {
            let _ = self.terminate(&peer, &sid, Reason::new(ReasonCondition::Timeout), now);
        }
    }

    /// The peer of a session (for drivers that only know the sid). When several peers use the same
    /// sid, the lowest JID (as a string) is returned, so the answer does not depend on a hash map's order.
    pub fn peer_of(&self, sid: &str) -> Option<Jid> {
        self.sessions
            .iter()
            .filter(|((_, s), _)| s == sid)
            .map(|(_, s)| s.peer.clone())
            .min_by_key(|p| p.to_string())
    }
}

#[cfg(test)]
mod tests {
    //! Regressions found by the `jingle_sequence` fuzz target (more tests in `tests/session.rs`).
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

    use super::*;
    use crate::ft::{File, FileDescription};
    use crate::jingle::{Description, Senders};
    use crate::jingle_ibb::IbbTransport;

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    fn offer() -> Vec<Content> {
        vec![Content::new(Creator::Initiator, "f")
            .with_senders(Senders::Initiator)
            .with_description(Description::File(FileDescription {
                file: File::named("a.txt", 10),
            }))
            .with_transport(Transport::Ibb(IbbTransport::offer()))]
    }

    fn drain(m: &mut SessionManager) -> Vec<Output> {
        std::iter::from_fn(|| m.poll_output()).collect()
    }

    /// The one request among `outputs`, as `(id, element)`.
    fn request(outputs: &[Output]) -> (RequestId, Element) {
        let mut found = outputs.iter().filter_map(|o| match o {
            Output::Request { id, jingle, .. } => Some((*id, jingle.to_element())),
            _ => None,
        });
        let r = found.next().expect("a request");
        assert!(found.next().is_none(), "one request: {outputs:?}");
        r
    }

    fn answer(outputs: &[Output]) -> Iq {
        outputs
            .iter()
            .find_map(|o| match o {
                Output::Answer(iq) => Some(iq.clone()),
                _ => None,
            })
            .expect("an answer")
    }

    fn is_result(iq: &Iq) -> bool {
        matches!(iq, Iq::Result { .. })
    }

    /// XEP-0166 §7.2.16: simultaneous session-initiates with the same session id are settled by the JIDs
    /// (the lower one wins), instead of both sides refusing each other's as out of order.
    #[test]
    fn simultaneous_initiate_same_sid_lower_jid_wins() {
        let (a, b) = (jid("alice@example.org/a"), jid("bob@example.org/b"));
        let now = Instant::now();
        let mut ma = SessionManager::new(SessionConfig::new(a.clone()));
        let mut mb = SessionManager::new(SessionConfig::new(b.clone()));
        ma.initiate_with_sid(b.clone(), "same".into(), offer(), now)
            .unwrap();
        mb.initiate_with_sid(a.clone(), "same".into(), offer(), now)
            .unwrap();
        let (ra, ia) = request(&drain(&mut ma));
        let (rb, ib) = request(&drain(&mut mb));

        // Bob (the higher JID) gives way: his session is dropped and Alice's arrives.
        mb.handle_iq(&a, "ia", &ia, now);
        let out_b = drain(&mut mb);
        assert!(is_result(&answer(&out_b)), "{out_b:?}");
        assert!(out_b.iter().any(|o| matches!(o,
            Output::Event(Event { kind: EventKind::TieBreakLost { winner }, .. }) if winner == "same")));
        assert!(out_b.iter().any(|o| matches!(
            o,
            Output::Event(Event {
                kind: EventKind::Incoming { .. },
                ..
            })
        )));
        // Alice keeps hers and refuses Bob's with a tie-break.
        ma.handle_iq(&b, "ib", &ib, now);
        let refused = answer(&drain(&mut ma));
        let Iq::Error { error, .. } = &refused else {
            panic!("{refused:?}")
        };
        assert_eq!(
            RequestError::from_stanza_error(error),
            RequestError::Stanza {
                condition: "conflict".into(),
                jingle: Some(JingleErrorCondition::TieBreak)
            }
        );

        // The answers cross. Bob's refused initiate must not touch the session he now answers.
        ma.handle_response(ra, Ok(()), now);
        assert!(drain(&mut ma).is_empty());
        mb.handle_response(rb, Err(RequestError::from_stanza_error(error)), now);
        assert!(drain(&mut mb).is_empty());
        assert_eq!(ma.state(&b, "same"), Some(SessionState::Pending));
        assert_eq!(ma.role(&b, "same"), Some(Role::Initiator));
        assert_eq!(mb.state(&a, "same"), Some(SessionState::Pending));
        assert_eq!(mb.role(&a, "same"), Some(Role::Responder));
        mb.accept(&a, "same", offer(), now).unwrap();
        let (_, accept) = request(&drain(&mut mb));
        ma.handle_iq(&b, "acc", &accept, now);
        assert!(is_result(&answer(&drain(&mut ma))));
        assert_eq!(ma.state(&b, "same"), Some(SessionState::Active));
    }

    /// The answer to a request of a session that ended does not reach a newer session with the same peer
    /// and session id (here a late failure of an old session-accept used to terminate the new session).
    #[test]
    fn late_answer_does_not_touch_a_new_session_with_the_same_id() {
        let (a, b) = (jid("alice@example.org/a"), jid("bob@example.org/b"));
        let now = Instant::now();
        let mut ma = SessionManager::new(SessionConfig::new(a.clone()));
        let mut mb = SessionManager::new(SessionConfig::new(b.clone()));
        ma.initiate_with_sid(b.clone(), "s".into(), offer(), now)
            .unwrap();
        let (_, init) = request(&drain(&mut ma));
        mb.handle_iq(&a, "i1", &init, now);
        drain(&mut mb);
        // Bob accepts; his session-accept is still unanswered when Alice ends and starts again with "s".
        mb.accept(&a, "s", offer(), now).unwrap();
        let (accept_id, _) = request(&drain(&mut mb));
        ma.terminate(&b, "s", Reason::new(ReasonCondition::Cancel), now)
            .unwrap();
        let (_, term) = request(&drain(&mut ma));
        mb.handle_iq(&a, "t1", &term, now);
        drain(&mut mb);
        // The id of an ended session is refused for a while (a retransmission), then usable again.
        let later = now + SessionConfig::new(a.clone()).ended_memory;
        ma.initiate_with_sid(b.clone(), "s".into(), offer(), later)
            .unwrap();
        let (_, init2) = request(&drain(&mut ma));
        mb.handle_iq(&a, "i2", &init2, later);
        let out = drain(&mut mb);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Event(Event {
                kind: EventKind::Incoming { .. },
                ..
            })
        )));
        // The old session-accept times out now: nothing happens to the new session.
        mb.handle_response(accept_id, Err(RequestError::Timeout), later);
        let late = drain(&mut mb);
        assert!(late.is_empty(), "{late:?}");
        assert_eq!(mb.state(&a, "s"), Some(SessionState::Pending));
    }
}
