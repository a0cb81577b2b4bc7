//! Sequences of Jingle stanzas (XEP-0166, with XEP-0234 file transfer, XEP-0261 IBB and XEP-0260 SOCKS5
//! contents) fed to two sans-IO `SessionManager`s that talk to each other over a simulated wire, plus a
//! third party that has no manager and only injects stanzas.
//!
//! The input is a program: each operation takes a byte and its arguments from the data. Operations deliver,
//! reorder, drop or repeat what is on the wire, answer requests with made-up results or errors, inject
//! generated Jingle IQs (every action, ids, sids, creators and names from small alphabets so that clashes
//! are frequent, from the right peer, a third party or the right account on another resource), inject
//! structured mutations of valid stanzas and of what is on the wire, embed arbitrary XML from the data in
//! valid stanzas, advance a fake clock, and run the local commands (initiate, accept, terminate,
//! session-info, every other action).
//!
//! Invariants checked after every input, besides "no panic":
//! - every received IQ set gets exactly one answer, right away, addressed to its sender with its id, and
//!   the answer matches the XEP: bad-request when it does not parse, `<unknown-session/>` for an action on a
//!   session that is not live, a result for a fresh session-initiate creates the session;
//! - a repeated IQ (same sender, id and stanza) on a live session is answered like the first time and
//!   changes nothing;
//! - a stanza from one address never changes the sessions with another address;
//! - session states only move Pending -> Active -> ended, a session appears only with an `Incoming` event or
//!   a local initiate and ends only with a `Terminated` or `TieBreakLost` event, no event follows the end
//!   of a session in the same batch, and a terminated session stays terminated until a new session-initiate;
//! - the number of live sessions is what the events say, and never above the configured maximum; one input
//!   never produces more than a bounded number of outputs;
//! - a local command that fails changes nothing and sends nothing, one that succeeds sends one request;
//! - every request the machines send serialises, parses back as Jingle, and goes to the session's peer;
//! - everything that parses as Jingle (or as a typed transport or file-transfer info) serialises and parses
//!   back equal;
//! - at the end, once the wire is drained and the clock moved far ahead, no timer is left pending.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use jid::Jid;
use libfuzzer_sys::fuzz_target;
use minidom::Element;
use xmpp_jingle::ft::{FileDescription, FtInfo, Received, NS_FT};
use xmpp_jingle::jingle::{
    Action, Content, Creator, Description, Jingle, JingleErrorCondition, Reason, ReasonCondition,
    Senders, Transport, NS_JINGLE, NS_JINGLE_ERRORS,
};
use xmpp_jingle::jingle_ibb::IbbTransport;
use xmpp_jingle::session::{
    Event, EventKind, Output, RequestError, RequestId, SessionConfig, SessionManager, SessionState,
};
use xmpp_jingle::socks5::transport::{
    Candidate, CandidateType, Transport as S5bTransport, TransportInfo, NS_S5B,
};
use xmpp_parsers::iq::Iq;
use xmpp_social::xml::set_attr;

/// Sessions per manager: small, so that the limit is reached often.
const MAX_SESSIONS: usize = 4;
/// Most operations run per input.
const MAX_OPS: usize = 400;
/// Bound on the outputs of one input that concerns one session.
const MAX_OUTPUTS_PER_INPUT: usize = 8;
/// Largest XML text taken from the data at once.
const MAX_XML: usize = 2048;

const ALICE: &str = "alice@example.org/a";
const BOB: &str = "bob@example.org/b";
const MALLORY: &str = "mallory@example.org/m";
const ALICE_OTHER: &str = "alice@example.org/other";

const SIDS: [&str; 4] = ["s1", "s2", "s3", "a73sjjvkla37jfea"];
const IQ_IDS: [&str; 4] = ["x1", "x2", "x3", "m0-0"];
const NAMES: [&str; 3] = ["a", "b", "c"];

fuzz_target!(|data: &[u8]| {
    let mut h = Harness::new();
    let mut input = Input { data };
    for _ in 0..MAX_OPS {
        if input.data.is_empty() {
            break;
        }
        h.op(&mut input);
    }
    h.finish();
});

/// Reads the program. Past the end every read gives zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.byte()) << 8 | u16::from(self.byte())
    }

    /// A number below `n` (always reads a byte, so that programs keep their shape).
    fn below(&mut self, n: usize) -> usize {
        let b = self.byte() as usize;
        if n == 0 {
            0
        } else {
            b % n
        }
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }

    fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
}

/// `JS_DEBUG=1` prints every output (to follow a crashing input).
fn debug() -> bool {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DEBUG.get_or_init(|| std::env::var_os("JS_DEBUG").is_some())
}

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("valid test JID")
}

type Key = (Jid, String);

fn key_str(k: &Key) -> (String, String) {
    (k.0.to_string(), k.1.clone())
}

/// What the simulated network carries.
#[derive(Clone)]
enum Wire {
    /// An IQ set with a `<jingle/>` (or anything else after a mutation).
    Set {
        to: usize,
        from: Jid,
        id: String,
        payload: Element,
    },
    /// An answer to an IQ set of manager `to`.
    Answer { to: usize, from: Jid, iq: Iq },
}

struct Peer {
    sm: SessionManager,
    me: Jid,
    /// Our IQ ids still waiting for an answer: the request handle and who it went to.
    pending: HashMap<String, (RequestId, Jid)>,
    next_iq: u32,
    /// Every session key this manager may have: the last state seen.
    last: HashMap<Key, Option<SessionState>>,
    /// Sessions that ended and were not started again since.
    ended: HashSet<Key>,
    /// IQ ids answered in each live session.
    answered: HashMap<Key, HashSet<String>>,
    /// How many times each session key was created.
    life: HashMap<Key, u32>,
    /// The session (key and life) of each request.
    request_of: HashMap<RequestId, (Key, u32)>,
}

/// What one input to a manager was, for the checks that follow it.
enum Step {
    Iq {
        from: Jid,
        id: String,
        parsed: Option<Jingle>,
    },
    Local {
        key: Key,
        ok: bool,
        initiate: bool,
        terminate: bool,
    },
    Response {
        /// The request belonged to a session that ended.
        stale: bool,
    },
    Timeout,
}

struct Harness {
    peers: [Peer; 2],
    wire: Vec<Wire>,
    now: Instant,
}

fn config(me: &Jid) -> SessionConfig {
    let mut cfg = SessionConfig::new(me.clone());
    cfg.max_sessions = MAX_SESSIONS;
    cfg.accept_timeout = Some(Duration::from_secs(30));
    cfg.request_timeout = Duration::from_secs(10);
    cfg
}

impl Harness {
    fn new() -> Harness {
        let mk = |s: &str| {
            let me = jid(s);
            Peer {
                sm: SessionManager::new(config(&me)),
                me,
                pending: HashMap::new(),
                next_iq: 0,
                last: HashMap::new(),
                ended: HashSet::new(),
                answered: HashMap::new(),
                life: HashMap::new(),
                request_of: HashMap::new(),
            }
        };
        Harness {
            peers: [mk(ALICE), mk(BOB)],
            wire: Vec::new(),
            now: Instant::now(),
        }
    }

    fn index_of(&self, j: &Jid) -> Option<usize> {
        self.peers.iter().position(|p| p.me == *j)
    }

    fn senders(&self, m: usize) -> Vec<Jid> {
        vec![
            self.peers[1 - m].me.clone(),
            jid(MALLORY),
            jid(ALICE_OTHER),
            self.peers[1 - m].me.clone(),
        ]
    }

    /// Keys worth aiming local commands and stanzas at: live or remembered sessions, then the alphabet.
    fn some_key(&self, m: usize, input: &mut Input) -> Key {
        let mut known: Vec<Key> = self.peers[m].last.keys().cloned().collect();
        known.sort_by_key(key_str);
        let use_known = input.bool();
        if use_known && !known.is_empty() {
            return input.pick(&known);
        }
        let peers = self.senders(m);
        (input.pick(&peers), input.pick(&SIDS).to_owned())
    }

    fn op(&mut self, input: &mut Input) {
        let m = input.below(2);
        match input.byte() % 16 {
            0..=3 => {
                // Deliver one message of the wire (any of them: reordering).
                let i = input.below(self.wire.len());
                if !self.wire.is_empty() {
                    let w = self.wire.remove(i);
                    self.deliver(w);
                }
            }
            4 => {
                // Lose one.
                let i = input.below(self.wire.len());
                if !self.wire.is_empty() {
                    self.wire.remove(i);
                }
            }
            5 => {
                // Deliver one twice in a row (a retransmission).
                let i = input.below(self.wire.len());
                if !self.wire.is_empty() {
                    let w = self.wire.remove(i);
                    match w {
                        Wire::Set {
                            to,
                            from,
                            id,
                            payload,
                        } => self.repeat(to, from, id, payload),
                        other => {
                            self.deliver(other.clone());
                            self.deliver(other);
                        }
                    }
                }
            }
            6 => {
                // A mutated copy of a stanza on the wire.
                let sets: Vec<usize> = (0..self.wire.len())
                    .filter(|&i| matches!(self.wire[i], Wire::Set { .. }))
                    .collect();
                if !sets.is_empty() {
                    let i = input.pick(&sets);
                    if let Wire::Set {
                        to,
                        from,
                        id,
                        payload,
                    } = self.wire[i].clone()
                    {
                        let mutated = mutate(payload, input);
                        let from = if input.bool() {
                            from
                        } else {
                            input.pick(&self.senders(to))
                        };
                        self.iq(to, from, id, &mutated);
                    }
                }
            }
            7 | 8 => {
                // A generated stanza, perhaps mutated.
                let (peer, sid) = self.some_key(m, input);
                let id = input.pick(&IQ_IDS).to_owned();
                let j = gen_jingle(input, &sid, &peer, &self.peers[m].me);
                let mut el = j.to_element();
                if input.byte() % 4 == 0 {
                    el = mutate(el, input);
                }
                self.iq(m, peer, id, &el);
            }
            9 => {
                // Arbitrary XML from the data, on its own or inside a valid stanza.
                let len = (input.u16() as usize) % MAX_XML;
                let text = String::from_utf8_lossy(input.take(len)).into_owned();
                let (peer, sid) = self.some_key(m, input);
                let id = input.pick(&IQ_IDS).to_owned();
                let Ok(el) = xmpp_social::xml::parse_bounded(&text, MAX_XML) else {
                    return;
                };
                let payload = match input.byte() % 6 {
                    0 => el,
                    where_ => {
                        let j = gen_jingle(input, &sid, &peer, &self.peers[m].me);
                        embed(j.to_element(), el, where_)
                    }
                };
                self.iq(m, peer, id, &payload);
            }
            10 => {
                let secs = match input.byte() % 4 {
                    0 => 1,
                    1 => 9,
                    2 => 11,
                    _ => 31,
                };
                self.now += Duration::from_secs(secs);
                for m in 0..2 {
                    self.timeout(m);
                }
            }
            11 => {
                // A made-up answer to one of our requests (or to nothing).
                let mut ids: Vec<String> = self.peers[m].pending.keys().cloned().collect();
                ids.sort();
                let answer = gen_answer(input);
                if ids.is_empty() || input.byte() % 8 == 0 {
                    let stale = RequestId(u64::MAX - u64::from(input.byte()));
                    self.response(m, stale, answer);
                } else {
                    let id = input.pick(&ids);
                    if let Some((rid, _)) = self.peers[m].pending.remove(&id) {
                        self.response(m, rid, answer);
                    }
                }
            }
            _ => self.local(m, input),
        }
    }

    /// A local command on manager `m`.
    fn local(&mut self, m: usize, input: &mut Input) {
        let now = self.now;
        let (peer, sid) = self.some_key(m, input);
        let key = (peer.clone(), sid.clone());
        let me = self.peers[m].me.clone();
        let before = self.snapshot(m);
        let len_before = self.peers[m].sm.len();
        let (result, initiate, terminate) = match input.byte() % 6 {
            0 | 1 => {
                let n = 1 + input.below(2);
                let contents = (0..n).map(|_| gen_content(input, true, &me)).collect();
                let sm = &mut self.peers[m].sm;
                let r = sm.initiate_with_sid(peer.clone(), sid.clone(), contents, now);
                if len_before >= MAX_SESSIONS {
                    assert!(r.is_err(), "initiate above the session limit");
                }
                (r.map(|_| ()), true, false)
            }
            2 => {
                let n = input.below(3);
                let contents = (0..n).map(|_| gen_content(input, false, &me)).collect();
                (
                    self.peers[m].sm.accept(&peer, &sid, contents, now),
                    false,
                    false,
                )
            }
            3 => {
                let reason = gen_reason(input);
                (
                    self.peers[m].sm.terminate(&peer, &sid, reason, now),
                    false,
                    true,
                )
            }
            4 => {
                let payloads = gen_info_payloads(input);
                (
                    self.peers[m].sm.session_info(&peer, &sid, payloads, now),
                    false,
                    false,
                )
            }
            _ => {
                let action = input.pick(&Action::all().collect::<Vec<_>>());
                let n = input.below(3);
                let contents = (0..n).map(|_| gen_content(input, false, &me)).collect();
                let reason = input.bool().then(|| gen_reason(input));
                let sm = &mut self.peers[m].sm;
                (
                    sm.send_action(&peer, &sid, action, contents, reason, now),
                    false,
                    false,
                )
            }
        };
        let ok = result.is_ok();
        if !ok {
            assert_eq!(
                before,
                self.snapshot(m),
                "a refused local command changed a session"
            );
        }
        self.after(
            m,
            Step::Local {
                key,
                ok,
                initiate,
                terminate,
            },
            before,
        );
    }

    /// Reports the answer of request `rid` to manager `m`. The answer of a request of a session that
    /// ended (even if another session with the same peer and id started since) changes nothing.
    fn response(&mut self, m: usize, rid: RequestId, answer: Result<(), RequestError>) {
        let p = &self.peers[m];
        let stale = match p.request_of.get(&rid) {
            None => true,
            Some((key, life)) => {
                p.sm.state(&key.0, &key.1).is_none() || p.life.get(key) != Some(life)
            }
        };
        let before = self.snapshot(m);
        self.peers[m].sm.handle_response(rid, answer, self.now);
        if stale {
            assert_eq!(
                before,
                self.snapshot(m),
                "the answer to a request of an ended session changed a session"
            );
        }
        let outputs = self.after(m, Step::Response { stale }, before);
        let _ = outputs;
    }

    fn timeout(&mut self, m: usize) {
        let before = self.snapshot(m);
        self.peers[m].sm.handle_timeout(self.now);
        self.after(m, Step::Timeout, before);
    }

    fn deliver(&mut self, w: Wire) {
        match w {
            Wire::Set {
                to,
                from,
                id,
                payload,
            } => {
                self.iq(to, from, id, &payload);
            }
            Wire::Answer { to, from, iq } => {
                let id = match &iq {
                    Iq::Result { id, .. } | Iq::Error { id, .. } => id.clone(),
                    _ => panic!("only answers travel as answers"),
                };
                // A driver matches an answer by id and sender, like tokio-xmpp does.
                let Some((rid, expected)) = self.peers[to].pending.get(&id).cloned() else {
                    return;
                };
                if expected != from {
                    return;
                }
                self.peers[to].pending.remove(&id);
                let answer = match &iq {
                    Iq::Error { error, .. } => Err(RequestError::from_stanza_error(error)),
                    _ => Ok(()),
                };
                self.response(to, rid, answer);
            }
        }
    }

    /// Delivers the same IQ twice: when the session is live after the first, the second must be answered
    /// the same way and change nothing.
    fn repeat(&mut self, to: usize, from: Jid, id: String, payload: Element) {
        let first = self.iq(to, from.clone(), id.clone(), &payload);
        let parsed = Jingle::from_element(&payload).ok();
        let live = parsed
            .as_ref()
            .is_some_and(|j| self.peers[to].sm.state(&from, &j.sid).is_some());
        let snapshot = self.snapshot(to);
        let wire_len = self.wire.len();
        let second = self.iq(to, from, id, &payload);
        if live {
            assert_eq!(
                answer_summary(&first),
                answer_summary(&second),
                "a repeated IQ was answered differently"
            );
            assert_eq!(
                snapshot,
                self.snapshot(to),
                "a repeated IQ changed a session"
            );
            // Only the answer went out (or was dropped, for a third party).
            assert!(
                self.wire.len() <= wire_len + 1,
                "a repeated IQ sent requests"
            );
        }
    }

    /// Gives manager `to` an IQ set; returns its answer.
    fn iq(&mut self, to: usize, from: Jid, id: String, payload: &Element) -> Iq {
        let parsed = Jingle::from_element(payload).ok();
        if let Some(j) = &parsed {
            check_jingle_roundtrip(j);
        }
        let before = self.snapshot(to);
        self.peers[to].sm.handle_iq(&from, &id, payload, self.now);
        self.after(to, Step::Iq { from, id, parsed }, before)
            .expect("an IQ set got its answer")
    }

    /// States and contents of every session key manager `m` may have.
    fn snapshot(&self, m: usize) -> Vec<(Key, Option<SessionState>, Vec<Content>)> {
        let p = &self.peers[m];
        let mut keys: Vec<Key> = p.last.keys().cloned().collect();
        keys.sort_by_key(key_str);
        keys.into_iter()
            .map(|k| {
                let st = p.sm.state(&k.0, &k.1);
                let c = p.sm.contents(&k.0, &k.1);
                (k, st, c)
            })
            .collect()
    }

    /// Drains manager `m`'s outputs after `step` and checks them; returns the IQ answer, if any.
    fn after(
        &mut self,
        m: usize,
        step: Step,
        before: Vec<(Key, Option<SessionState>, Vec<Content>)>,
    ) -> Option<Iq> {
        let mut outputs = Vec::new();
        while let Some(o) = self.peers[m].sm.poll_output() {
            if debug() {
                eprintln!("[{m}] {o:?}");
            }
            outputs.push(o);
            assert!(outputs.len() <= 4 * MAX_SESSIONS + 64, "unbounded outputs");
        }
        let pending_requests = self.peers[m].pending.len();
        if let Step::Response { stale: true } = step {
            assert!(
                outputs.is_empty(),
                "the answer to a request of an ended session: {outputs:?}"
            );
        }
        match step {
            Step::Timeout => assert!(
                outputs.len() <= 4 * MAX_SESSIONS + 3 * pending_requests + 4,
                "too many outputs for one timeout"
            ),
            _ => assert!(
                outputs.len() <= MAX_OUTPUTS_PER_INPUT,
                "too many outputs for one input: {}",
                outputs.len()
            ),
        }
        let old: HashMap<Key, Option<SessionState>> =
            before.iter().map(|(k, s, _)| (k.clone(), *s)).collect();
        let old_state = |k: &Key| old.get(k).copied().flatten();

        let mut answer = None;
        let mut created: HashSet<Key> = HashSet::new();
        let mut gone: HashSet<Key> = HashSet::new();
        let mut requests = 0usize;
        let mut requests_out = Vec::new();
        for o in outputs {
            match o {
                Output::Answer(iq) => {
                    let Step::Iq { from, id, .. } = &step else {
                        panic!("an answer without an IQ");
                    };
                    assert!(answer.is_none(), "two answers to one IQ");
                    match &iq {
                        Iq::Result {
                            to: Some(t), id: i, ..
                        }
                        | Iq::Error {
                            to: Some(t), id: i, ..
                        } => {
                            assert_eq!(t, from, "answer to someone else");
                            assert_eq!(i, id, "answer with another id");
                        }
                        _ => panic!("an answer that is not a result or error to the sender"),
                    }
                    answer = Some(iq);
                }
                Output::Request { id, to, jingle } => {
                    requests += 1;
                    let key = (to.clone(), jingle.sid.clone());
                    assert!(
                        old_state(&key).is_some()
                            || created.contains(&key)
                            || matches!(&step, Step::Local { initiate: true, key: k, .. } if *k == key),
                        "a request for a session that was not live: {key:?} {:?}",
                        jingle.action
                    );
                    assert!(!gone.contains(&key) || jingle.action == Action::SessionTerminate);
                    if jingle.action == Action::SessionInitiate {
                        assert_eq!(jingle.initiator.as_ref(), Some(&self.peers[m].me));
                        assert!(!jingle.contents.is_empty());
                    }
                    requests_out.push((id, to, jingle));
                }
                Output::Event(Event { sid, peer, kind }) => {
                    let key = (peer, sid);
                    // Only a new session may follow the end of one with the same peer and id (the
                    // peer's session-initiate with the id of ours won the tie-break).
                    let new_one = matches!(kind, EventKind::Incoming { .. });
                    assert!(
                        !gone.contains(&key) || new_one,
                        "an event after the end: {kind:?}"
                    );
                    match &kind {
                        EventKind::Incoming { contents, .. } => {
                            assert!(!contents.is_empty());
                            assert!(
                                old_state(&key).is_none() || gone.remove(&key),
                                "Incoming for a live session"
                            );
                            let Step::Iq { from, .. } = &step else {
                                panic!("Incoming without an IQ");
                            };
                            assert_eq!(*from, key.0);
                            created.insert(key.clone());
                            self.peers[m].ended.remove(&key);
                        }
                        EventKind::Terminated { .. } | EventKind::TieBreakLost { .. } => {
                            assert!(
                                old_state(&key).is_some() || created.contains(&key),
                                "end of a session that was not live"
                            );
                            gone.insert(key.clone());
                            self.peers[m].ended.insert(key.clone());
                        }
                        EventKind::Accepted { .. } => {
                            assert_eq!(old_state(&key), Some(SessionState::Pending));
                        }
                        _ => assert!(
                            old_state(&key).is_some() || created.contains(&key),
                            "an event for a session that was not live: {kind:?}"
                        ),
                    }
                    self.peers[m].last.entry(key).or_insert(None);
                }
            }
        }
        if let Step::Local {
            key,
            ok,
            initiate,
            terminate,
        } = &step
        {
            if *ok {
                assert_eq!(requests, 1, "a local command sent {requests} requests");
                if *initiate {
                    self.peers[m].ended.remove(key);
                    created.insert(key.clone());
                }
                if *terminate {
                    assert!(gone.contains(key), "terminate without Terminated");
                }
            } else {
                assert_eq!(requests, 0, "a refused local command sent a request");
                assert!(created.is_empty() && gone.is_empty());
            }
            self.peers[m].last.entry(key.clone()).or_insert(None);
        }
        if let Step::Iq { from, id, parsed } = &step {
            let a = answer.as_ref().expect("an IQ set without an answer");
            match parsed {
                None => assert_eq!(
                    answer_summary(a),
                    Some(("bad-request".into(), None)),
                    "an IQ that does not parse as Jingle must get bad-request"
                ),
                Some(j) => {
                    let key = (from.clone(), j.sid.clone());
                    if j.action != Action::SessionInitiate && old_state(&key).is_none() {
                        assert_eq!(
                            answer_summary(a),
                            Some((
                                "item-not-found".into(),
                                Some(JingleErrorCondition::UnknownSession.name().into())
                            )),
                            "{:?} on a session that is not live",
                            j.action
                        );
                    }
                    if j.action == Action::SessionInitiate && old_state(&key).is_none() {
                        assert_eq!(
                            answer_summary(a).is_none(),
                            created.contains(&key),
                            "session-initiate answered with a result exactly when it creates the session"
                        );
                    }
                    if j.action == Action::SessionTerminate
                        && old_state(&key).is_some()
                        && answer_summary(a).is_none()
                        && !self.peers[m].sm.state(&key.0, &key.1).is_none()
                    {
                        // Only a repeat of an IQ already answered may leave it live.
                        let repeated = self.peers[m]
                            .answered
                            .get(&key)
                            .is_some_and(|ids| ids.contains(id));
                        assert!(
                            repeated,
                            "session-terminate answered but the session lives on"
                        );
                    }
                    // Mirror of the ids the session remembers (every one, the machine keeps the last 32).
                    let p = &mut self.peers[m];
                    if created.contains(&key) {
                        p.answered.remove(&key);
                    }
                    if p.sm.state(&key.0, &key.1).is_some() {
                        p.answered
                            .entry(key.clone())
                            .or_default()
                            .insert(id.clone());
                    }
                    p.last.entry(key).or_insert(None);
                }
            }
            if let Some(e) = answer_summary(a) {
                assert!(
                    [
                        "bad-request",
                        "unexpected-request",
                        "item-not-found",
                        "conflict",
                        "resource-constraint",
                        "feature-not-implemented",
                    ]
                    .contains(&e.0.as_str()),
                    "unexpected error condition {e:?}"
                );
            }
            // Sessions with anyone else are untouched.
            for (k, st, c) in &before {
                if k.0 != *from {
                    let p = &self.peers[m].sm;
                    assert_eq!(
                        p.state(&k.0, &k.1),
                        *st,
                        "a stanza from {from} changed {k:?}"
                    );
                    assert_eq!(
                        p.contents(&k.0, &k.1),
                        *c,
                        "a stanza from {from} changed {k:?}"
                    );
                }
            }
        }
        if let Step::Local { key, .. } = &step {
            for (k, st, c) in &before {
                if k != key {
                    let p = &self.peers[m].sm;
                    assert_eq!(
                        p.state(&k.0, &k.1),
                        *st,
                        "a command on {key:?} changed {k:?}"
                    );
                    assert_eq!(p.contents(&k.0, &k.1), *c);
                }
            }
        }

        // State transitions and the session count.
        let p = &mut self.peers[m];
        let mut live = 0;
        let mut keys: Vec<Key> = p.last.keys().cloned().collect();
        keys.sort_by_key(key_str);
        for k in keys {
            let was = old_state(&k);
            let now = p.sm.state(&k.0, &k.1);
            match (was, now) {
                (None, Some(s)) => {
                    assert!(
                        created.contains(&k),
                        "{k:?} appeared without Incoming or initiate"
                    );
                    assert_eq!(s, SessionState::Pending, "{k:?} appeared already active");
                }
                (Some(SessionState::Active), Some(SessionState::Pending)) => {
                    panic!("{k:?} went back to pending")
                }
                (Some(_), None) => {
                    assert!(gone.contains(&k), "{k:?} vanished without Terminated")
                }
                _ => {}
            }
            if gone.contains(&k) && !created.contains(&k) {
                assert!(now.is_none(), "{k:?} lives on after Terminated");
            }
            if p.ended.contains(&k) {
                assert!(now.is_none(), "a terminated session {k:?} came back");
            }
            if created.contains(&k) {
                *p.life.entry(k.clone()).or_insert(0) += 1;
            }
            if now.is_some() {
                live += 1;
            } else {
                p.answered.remove(&k);
            }
            p.last.insert(k, now);
        }
        assert_eq!(p.sm.len(), live, "sessions the events do not account for");
        assert!(p.sm.len() <= MAX_SESSIONS);

        // Requests go on the wire as serialised text, as a real driver would send them.
        let mut unwritable = Vec::new();
        for (rid, to, jingle) in requests_out {
            let el = jingle.to_element();
            let text = match xmpp_social::xml::to_xml_string(&el) {
                Ok(t) => t,
                Err(_) => {
                    // A driver that cannot write the stanza reports a failure (below).
                    unwritable.push(rid);
                    continue;
                }
            };
            let back =
                xmpp_social::xml::parse_bounded(&text, 1 << 22).expect("our own request parses");
            let reparsed = Jingle::from_element(&back).expect("our own request is Jingle");
            assert_eq!(reparsed.action, jingle.action);
            assert_eq!(reparsed.sid, jingle.sid);
            let iq_id = format!("m{m}-{}", self.peers[m].next_iq);
            self.peers[m].next_iq += 1;
            self.peers[m]
                .pending
                .insert(iq_id.clone(), (rid, to.clone()));
            let key = (to.clone(), jingle.sid.clone());
            let life = self.peers[m].life.get(&key).copied().unwrap_or(0);
            self.peers[m].request_of.insert(rid, (key, life));
            if let Some(t) = self.index_of(&to) {
                self.wire.push(Wire::Set {
                    to: t,
                    from: self.peers[m].me.clone(),
                    id: iq_id,
                    payload: back,
                });
            }
        }
        // The answer travels back to a manager, or is lost on a third party.
        if let (Some(a), Step::Iq { from, .. }) = (&answer, &step) {
            if let Some(t) = self.index_of(from) {
                self.wire.push(Wire::Answer {
                    to: t,
                    from: self.peers[m].me.clone(),
                    iq: a.clone(),
                });
            }
        }
        // A request that could not be written fails, which may produce outputs: check them too.
        for rid in unwritable {
            let before = self.snapshot(m);
            self.peers[m].sm.handle_response(
                rid,
                Err(RequestError::Connection("unserialisable".into())),
                self.now,
            );
            let _ = self.after(m, Step::Response { stale: false }, before);
        }
        answer
    }

    /// Drains the wire, moves the clock far ahead twice, and checks that nothing is left waiting.
    fn finish(&mut self) {
        for _round in 0..3 {
            let mut budget = 10_000;
            while !self.wire.is_empty() && budget > 0 {
                let w = self.wire.remove(0);
                self.deliver(w);
                budget -= 1;
            }
            assert!(self.wire.is_empty(), "the two machines never stop talking");
            self.now += Duration::from_secs(3600);
            for m in 0..2 {
                self.timeout(m);
            }
        }
        for m in 0..2 {
            assert!(
                self.peers[m].sm.poll_timeout().is_none(),
                "a timer is left after everything expired"
            );
        }
    }
}

/// The defined condition and Jingle condition of an error answer, `None` for a result.
fn answer_summary(iq: &Iq) -> Option<(String, Option<String>)> {
    match iq {
        Iq::Error { error, .. } => {
            let cond = Element::from(error.defined_condition.clone())
                .name()
                .to_owned();
            let jingle = error
                .other
                .as_ref()
                .and_then(|e| (e.ns() == NS_JINGLE_ERRORS).then(|| e.name().to_owned()));
            Some((cond, jingle))
        }
        _ => None,
    }
}

fn check_jingle_roundtrip(j: &Jingle) {
    let back = Jingle::from_element(&j.to_element()).expect("own Jingle re-parses");
    assert_eq!(back, *j, "Jingle round trip");
    for c in &j.contents {
        if let Some(Transport::Raw(t)) = &c.transport {
            if t.is("transport", NS_S5B) {
                if let Ok(s) = S5bTransport::from_element(t) {
                    let back = S5bTransport::from_element(&s.to_element()).expect("s5b re-parses");
                    assert_eq!(back, s);
                }
            }
        }
    }
    for p in &j.payloads {
        if let Ok(info) = FtInfo::from_element(p) {
            let back = FtInfo::from_element(&info.to_element()).expect("ft info re-parses");
            assert_eq!(back, info);
        }
    }
}

fn gen_answer(input: &mut Input) -> Result<(), RequestError> {
    match input.byte() % 6 {
        0 | 1 => Ok(()),
        2 => Err(RequestError::Timeout),
        3 => Err(RequestError::Connection("gone".into())),
        _ => {
            let condition = input
                .pick(&[
                    "conflict",
                    "item-not-found",
                    "unexpected-request",
                    "bad-request",
                    "service-unavailable",
                ])
                .to_owned();
            let jingle = input.pick(&[
                None,
                Some(JingleErrorCondition::TieBreak),
                Some(JingleErrorCondition::UnknownSession),
                Some(JingleErrorCondition::OutOfOrder),
                Some(JingleErrorCondition::UnsupportedInfo),
            ]);
            Err(RequestError::Stanza { condition, jingle })
        }
    }
}

fn gen_reason(input: &mut Input) -> Reason {
    let condition = input.pick(&[
        ReasonCondition::Success,
        ReasonCondition::Decline,
        ReasonCondition::Cancel,
        ReasonCondition::Busy,
        ReasonCondition::Timeout,
        ReasonCondition::FailedTransport,
        ReasonCondition::AlternativeSession("s2".into()),
        ReasonCondition::Other("made-up".into()),
    ]);
    let mut r = Reason::new(condition);
    if input.bool() {
        r.text = Some("because".into());
    }
    if input.byte() % 4 == 0 {
        r.extra.push(Element::bare(
            "file-too-large",
            "urn:xmpp:jingle:apps:file-transfer:errors:0",
        ));
    }
    r
}

fn gen_info_payloads(input: &mut Input) -> Vec<Element> {
    (0..input.below(3))
        .map(|_| match input.byte() % 4 {
            0 => FtInfo::Received(Received {
                creator: input.pick(&[Creator::Initiator, Creator::Responder]),
                name: input.pick(&NAMES).to_owned(),
            })
            .to_element(),
            1 => Element::bare("ringing", "urn:xmpp:jingle:apps:rtp:info:1"),
            2 => Element::builder("checksum", NS_FT)
                .attr(xmpp_social::xml::nc("creator"), "initiator")
                .attr(xmpp_social::xml::nc("name"), input.pick(&NAMES))
                .append(
                    Element::builder("file", NS_FT)
                        .append(
                            Element::builder("hash", "urn:xmpp:hashes:2")
                                .attr(xmpp_social::xml::nc("algo"), "sha-256")
                                .append("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
                                .build(),
                        )
                        .build(),
                )
                .build(),
            _ => Element::bare("mute", "urn:xmpp:jingle:apps:rtp:info:1"),
        })
        .collect()
}

fn gen_content(input: &mut Input, with_description: bool, me: &Jid) -> Content {
    let creator = input.pick(&[Creator::Initiator, Creator::Responder]);
    let mut c = Content::new(creator, input.pick(&NAMES));
    if input.byte() % 4 == 0 {
        c.senders = Some(input.pick(&[
            Senders::Both,
            Senders::Initiator,
            Senders::Responder,
            Senders::None,
        ]));
    }
    let d = if with_description {
        1 + input.below(3)
    } else {
        input.below(4)
    };
    c.description = match d {
        0 => None,
        1 => {
            let mut file = xmpp_jingle::ft::File::named("test.txt", u64::from(input.u16()));
            if input.bool() {
                file.range = Some(xmpp_jingle::ft::Range::default());
            }
            Some(Description::File(FileDescription { file }))
        }
        2 => Some(Description::Raw(
            Element::builder("description", "urn:xmpp:jingle:apps:rtp:1")
                .attr(xmpp_social::xml::nc("media"), "audio")
                .build(),
        )),
        _ => Some(Description::Raw(Element::bare(
            "description",
            "urn:example:unknown-app",
        ))),
    };
    c.transport = match input.byte() % 5 {
        0 => None,
        1 => Some(Transport::Ibb(IbbTransport {
            sid: Some(input.pick(&["ibb1", "ibb2"]).to_owned()),
            block_size: input.pick(&[4096, 1, 65535, 2048]),
            stanza: Default::default(),
        })),
        2 => {
            let cand = Candidate::local(
                input.pick(&["c1", "c2"]),
                me.clone(),
                "127.0.0.1",
                1000 + input.u16() % 1000,
                CandidateType::Direct,
                0,
            );
            Some(Transport::Raw(
                S5bTransport::with_candidates("s5b1", vec![cand]).to_element(),
            ))
        }
        3 => {
            let info = input.pick(&[
                TransportInfo::CandidateUsed("c1".into()),
                TransportInfo::CandidateError,
                TransportInfo::Activated("c2".into()),
                TransportInfo::ProxyError,
            ]);
            Some(Transport::Raw(
                S5bTransport::with_info("s5b1", info).to_element(),
            ))
        }
        _ => Some(Transport::Raw(Element::bare(
            "transport",
            "urn:xmpp:jingle:transports:ice-udp:1",
        ))),
    };
    if input.byte() % 8 == 0 {
        c.security = Some(Element::bare("security", "urn:xmpp:jingle:jet:0"));
    }
    c
}

fn gen_jingle(input: &mut Input, sid: &str, from: &Jid, to: &Jid) -> Jingle {
    let action = input.pick(&Action::all().collect::<Vec<_>>());
    let mut j = Jingle::new(action, sid);
    match action {
        Action::SessionInitiate => j.initiator = Some(from.clone()),
        Action::SessionAccept => j.responder = Some(from.clone()),
        _ => {}
    }
    if input.byte() % 8 == 0 {
        j.initiator = Some(to.clone());
    }
    let n = match action {
        Action::SessionInfo | Action::SessionTerminate => input.below(2),
        _ => input.below(3) + usize::from(input.byte() % 4 != 0),
    };
    let with_description =
        matches!(action, Action::SessionInitiate | Action::ContentAdd) && input.byte() % 8 != 0;
    j.contents = (0..n)
        .map(|_| gen_content(input, with_description, from))
        .collect();
    if matches!(
        action,
        Action::SessionTerminate | Action::ContentReject | Action::ContentRemove
    ) || input.byte() % 8 == 0
    {
        j.reason = Some(gen_reason(input));
    }
    if action == Action::SessionInfo || input.byte() % 8 == 0 {
        j.payloads = gen_info_payloads(input);
    }
    j
}

/// Structured damage to a stanza: attributes removed or given odd values, children dropped, repeated or
/// moved to another namespace.
fn mutate(mut el: Element, input: &mut Input) -> Element {
    for _ in 0..1 + input.below(3) {
        match input.byte() % 10 {
            0 => {
                let a = input.pick(&["action", "sid", "initiator", "responder"]);
                remove_attr(&mut el, a);
            }
            1 => {
                let v = input.pick(&[
                    "bogus",
                    "",
                    "session-initiate",
                    "session-terminate",
                    "content-add",
                    "transport-replace",
                    "session-accept",
                ]);
                set_attr(&mut el, "action", v);
            }
            2 => {
                let v = match input.byte() % 4 {
                    0 => String::new(),
                    1 => "z".repeat(300),
                    2 => input.pick(&SIDS).to_owned(),
                    _ => "\u{1F600}".repeat(256),
                };
                set_attr(&mut el, "sid", v);
            }
            3 => {
                let v = input.pick(&["not a jid@@", "", "romeo@montague.example/x"]);
                set_attr(&mut el, "initiator", v);
            }
            4 | 5 => {
                // Work on one content.
                let i = input.below(4);
                let attr = input.pick(&["creator", "name", "senders", "disposition"]);
                let value = input.pick(&["", "nobody", "a", "b", "responder", "initiator", "both"]);
                let remove = input.bool();
                for (n, c) in el
                    .children_mut()
                    .filter(|c| c.name() == "content")
                    .enumerate()
                {
                    if n == i % 2 {
                        if remove {
                            remove_attr(c, attr);
                        } else {
                            set_attr(c, attr, value);
                        }
                    }
                }
            }
            6 => {
                // Drop one child.
                let nodes = el.take_nodes();
                let skip = input.below(nodes.len().max(1));
                for (n, node) in nodes.into_iter().enumerate() {
                    if n != skip {
                        el.append_node(node);
                    }
                }
            }
            7 => {
                // Repeat the first child.
                if let Some(first) = el.children().next().cloned() {
                    el.append_child(first);
                }
            }
            8 => {
                // Drop the children of the contents (descriptions, transports).
                for c in el.children_mut().filter(|c| c.name() == "content") {
                    if input.bool() {
                        let _ = c.take_nodes();
                    }
                }
            }
            _ => {
                // The right names in the wrong namespace.
                let action = el.attr("action").unwrap_or("x").to_owned();
                let sid = el.attr("sid").unwrap_or("x").to_owned();
                let ns = input.pick(&["urn:xmpp:jingle:0", "urn:xmpp:jingle:1", "jabber:client"]);
                let mut b = Element::builder("jingle", ns)
                    .attr(xmpp_social::xml::nc("action"), action)
                    .attr(xmpp_social::xml::nc("sid"), sid);
                for c in el.children() {
                    b = b.append(c.clone());
                }
                el = b.build();
            }
        }
    }
    el
}

/// Puts arbitrary `extra` somewhere in a valid `<jingle/>`.
fn embed(mut jingle: Element, extra: Element, where_: u8) -> Element {
    match where_ {
        1 => {
            jingle.append_child(extra);
        }
        2 | 3 | 4 => {
            let mut placed = false;
            for c in jingle.children_mut().filter(|c| c.name() == "content") {
                if where_ == 2 {
                    c.append_child(extra.clone());
                } else {
                    // Replace the description (3) or transport (4) by the arbitrary element.
                    let name = if where_ == 3 {
                        "description"
                    } else {
                        "transport"
                    };
                    let nodes = c.take_nodes();
                    for n in nodes {
                        if n.as_element().is_some_and(|e| e.name() == name) {
                            continue;
                        }
                        c.append_node(n);
                    }
                    c.append_child(extra.clone());
                }
                placed = true;
                break;
            }
            if !placed {
                jingle.append_child(
                    Element::builder("content", NS_JINGLE)
                        .attr(xmpp_social::xml::nc("creator"), "initiator")
                        .attr(xmpp_social::xml::nc("name"), "a")
                        .append(extra)
                        .build(),
                );
            }
        }
        _ => {
            // As the reason.
            let _ = jingle.remove_child("reason", NS_JINGLE);
            jingle.append_child(Element::builder("reason", NS_JINGLE).append(extra).build());
        }
    }
    jingle
}

fn remove_attr(el: &mut Element, name: &str) {
    let _ = el.attrs_mut().remove(&minidom::rxml::Namespace::NONE, name);
}
