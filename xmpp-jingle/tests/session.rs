//! The session machine stepped against itself: every action, both roles, out-of-order and repeated
//! stanzas, tie-breaks, timeouts on a fake clock, and hostile input.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use jid::Jid;
use minidom::Element;
use xmpp_jingle::ft::{Checksum, File, FileDescription, FtInfo};
use xmpp_jingle::jingle::{
    Action, Content, Creator, Description, Jingle, JingleErrorCondition, Reason, ReasonCondition,
    Senders, Transport,
};
use xmpp_jingle::jingle_ibb::IbbTransport;
use xmpp_jingle::session::{
    Event, EventKind, Output, RequestError, RequestId, SessionConfig, SessionManager, SessionState,
};
use xmpp_parsers::iq::Iq;

struct Peer {
    jid: Jid,
    m: SessionManager,
    events: Vec<Event>,
    answers: Vec<Iq>,
}

/// Two managers and the network between them (in order, lossless unless told).
struct Net {
    p: [Peer; 2],
    now: Instant,
    inflight: HashMap<String, (usize, RequestId)>,
}

fn jid(s: &str) -> Jid {
    Jid::new(s).unwrap()
}

impl Net {
    fn new() -> Net {
        let mk = |j: &str| Peer {
            jid: jid(j),
            m: SessionManager::new(SessionConfig::new(jid(j))),
            events: Vec::new(),
            answers: Vec::new(),
        };
        Net {
            p: [
                mk("romeo@montague.lit/orchard"),
                mk("juliet@capulet.lit/balcony"),
            ],
            now: Instant::now(),
            inflight: HashMap::new(),
        }
    }

    fn jid(&self, i: usize) -> Jid {
        self.p[i].jid.clone()
    }

    /// Delivers everything until both sides are quiet.
    fn pump(&mut self) {
        loop {
            let mut requests: VecDeque<(usize, Jid, String, Element)> = VecDeque::new();
            let mut responses: Vec<(String, Result<(), RequestError>)> = Vec::new();
            for i in 0..2 {
                while let Some(o) = self.p[i].m.poll_output() {
                    match o {
                        Output::Request { id, to, jingle } => {
                            assert_eq!(to, self.p[1 - i].jid);
                            let iq_id = format!("{i}-{}", id.0);
                            self.inflight.insert(iq_id.clone(), (i, id));
                            requests.push_back((
                                1 - i,
                                self.p[i].jid.clone(),
                                iq_id,
                                jingle.to_element(),
                            ));
                        }
                        Output::Answer(iq) => {
                            match &iq {
                                Iq::Result { id, .. } => responses.push((id.clone(), Ok(()))),
                                Iq::Error { id, error, .. } => responses.push((
                                    id.clone(),
                                    Err(RequestError::from_stanza_error(error)),
                                )),
                                _ => panic!("answer is not a result or error"),
                            }
                            self.p[i].answers.push(iq);
                        }
                        Output::Event(e) => self.p[i].events.push(e),
                    }
                }
            }
            if requests.is_empty() && responses.is_empty() {
                return;
            }
            for (to, from, id, el) in requests {
                // Through the wire format, as a real peer would see it.
                let el: Element = String::from(&el).parse().unwrap();
                self.p[to].m.handle_iq(&from, &id, &el, self.now);
            }
            for (id, r) in responses {
                let (i, rid) = self.inflight.remove(&id).unwrap();
                self.p[i].m.handle_response(rid, r, self.now);
            }
        }
    }

    fn take_events(&mut self, i: usize) -> Vec<EventKind> {
        self.p[i].events.drain(..).map(|e| e.kind).collect()
    }

    fn take_answers(&mut self, i: usize) -> Vec<Iq> {
        self.p[i].answers.drain(..).collect()
    }

    /// Feeds raw XML to side `to` as if sent by the other side, and returns the answer.
    fn inject(&mut self, to: usize, id: &str, xml: &str) -> Iq {
        let el: Element = xml.parse().unwrap();
        let from = self.jid(1 - to);
        self.p[to].m.handle_iq(&from, id, &el, self.now);
        let mut answer = None;
        while let Some(o) = self.p[to].m.poll_output() {
            match o {
                Output::Answer(iq) if answer.is_none() => answer = Some(iq),
                Output::Event(e) => self.p[to].events.push(e),
                Output::Request { .. } | Output::Answer(_) => {}
            }
        }
        answer.unwrap()
    }
}

fn file_content(name: &str) -> Content {
    Content::new(Creator::Initiator, name)
        .with_senders(Senders::Initiator)
        .with_description(Description::File(FileDescription {
            file: File::named("test.txt", 6144),
        }))
        .with_transport(Transport::Ibb(IbbTransport::offer()))
}

fn error_of(iq: &Iq) -> Option<(String, Option<JingleErrorCondition>)> {
    match iq {
        Iq::Error { error, .. } => match RequestError::from_stanza_error(error) {
            RequestError::Stanza { condition, jingle } => Some((condition, jingle)),
            _ => None,
        },
        _ => None,
    }
}

/// Sets up an active session from 0 (initiator) to 1; returns the sid.
fn active(net: &mut Net) -> String {
    let peer = net.jid(1);
    let sid = net.p[0]
        .m
        .initiate(peer, vec![file_content("a-file-offer")], net.now)
        .unwrap();
    net.pump();
    let ev = net.take_events(1);
    let EventKind::Incoming { contents, .. } = &ev[0] else {
        panic!("{ev:?}")
    };
    let from = net.jid(0);
    net.p[1]
        .m
        .accept(&from, &sid, contents.clone(), net.now)
        .unwrap();
    net.pump();
    assert!(matches!(
        net.take_events(0)[..],
        [EventKind::Accepted { .. }]
    ));
    assert_eq!(
        net.p[0].m.state(&net.jid(1), &sid),
        Some(SessionState::Active)
    );
    assert_eq!(
        net.p[1].m.state(&net.jid(0), &sid),
        Some(SessionState::Active)
    );
    net.take_answers(0);
    net.take_answers(1);
    sid
}

#[test]
fn initiate_accept_info_terminate() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let (j0, j1) = (net.jid(0), net.jid(1));
    // session-info: checksum (registered namespace), and a ping.
    let checksum = FtInfo::Checksum(Box::new(Checksum {
        creator: Creator::Initiator,
        name: "a-file-offer".into(),
        file: File::default(),
    }));
    net.p[0]
        .m
        .session_info(&j1, &sid, vec![checksum.to_element()], net.now)
        .unwrap();
    net.p[0].m.session_info(&j1, &sid, vec![], net.now).unwrap();
    net.pump();
    let ev = net.take_events(1);
    assert_eq!(ev.len(), 1);
    let EventKind::Info { payloads } = &ev[0] else {
        panic!()
    };
    assert_eq!(FtInfo::from_element(&payloads[0]).unwrap(), checksum);
    // The responder ends it.
    net.p[1]
        .m
        .terminate(&j0, &sid, Reason::new(ReasonCondition::Success), net.now)
        .unwrap();
    net.pump();
    assert!(matches!(
        &net.take_events(0)[..],
        [EventKind::Terminated {
            by_peer: true,
            reason: Some(Reason {
                condition: ReasonCondition::Success,
                ..
            })
        }]
    ));
    assert!(matches!(
        &net.take_events(1)[..],
        [EventKind::Terminated { by_peer: false, .. }]
    ));
    assert!(net.p[0].m.is_empty() && net.p[1].m.is_empty());
}

#[test]
fn stanzas_after_terminate_get_unknown_session() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let j1 = net.jid(1);
    net.p[0]
        .m
        .terminate(&j1, &sid, Reason::new(ReasonCondition::Cancel), net.now)
        .unwrap();
    // The peer sends transport-info before it saw the terminate.
    let answer = net.inject(
        0,
        "late",
        &format!("<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='{sid}'><content creator='initiator' name='a-file-offer'/></jingle>"),
    );
    assert_eq!(
        error_of(&answer),
        Some((
            "item-not-found".into(),
            Some(JingleErrorCondition::UnknownSession)
        ))
    );
    // A session id never seen, and a known sid from another JID, likewise.
    let answer = net.inject(
        0,
        "x",
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='nope'/>",
    );
    assert_eq!(
        error_of(&answer).unwrap().1,
        Some(JingleErrorCondition::UnknownSession)
    );
}

#[test]
fn out_of_order_actions() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let cases = [
        // The responder (1) receives session-accept: only initiators do.
        (1, "session-accept", "<content creator='initiator' name='a-file-offer'/>"),
        // The initiator receives session-accept again, after the session is active.
        (0, "session-accept", "<content creator='initiator' name='a-file-offer'/>"),
        // session-initiate for a live session.
        (0, "session-initiate", "<content creator='initiator' name='x'><description xmlns='urn:xmpp:example'/></content>"),
        // content-accept without a content-add.
        (0, "content-accept", "<content creator='initiator' name='a-file-offer'/>"),
        // transport-accept without a transport-replace.
        (1, "transport-reject", "<content creator='initiator' name='a-file-offer'/>"),
    ];
    for (i, (to, action, content)) in cases.iter().enumerate() {
        let xml = format!(
            "<jingle xmlns='urn:xmpp:jingle:1' action='{action}' sid='{sid}'>{content}</jingle>"
        );
        let answer = net.inject(*to, &format!("ooo{i}"), &xml);
        assert_eq!(
            error_of(&answer),
            Some((
                "unexpected-request".into(),
                Some(JingleErrorCondition::OutOfOrder)
            )),
            "{action} to {to}"
        );
    }
    // Nothing changed.
    assert_eq!(
        net.p[0].m.state(&net.jid(1), &sid),
        Some(SessionState::Active)
    );
    assert!(net.take_events(0).is_empty() && net.take_events(1).is_empty());
}

#[test]
fn repeated_iq_is_answered_once_processed_once() {
    let mut net = Net::new();
    let xml = "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'>\
        <content creator='initiator' name='ex'><description xmlns='urn:xmpp:example'/>\
        <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='ch3d9s71'/></content></jingle>";
    let a1 = net.inject(1, "xn28s7gk", xml);
    let a2 = net.inject(1, "xn28s7gk", xml);
    assert!(matches!(a1, Iq::Result { .. }) && matches!(a2, Iq::Result { .. }));
    assert_eq!(net.take_events(1).len(), 1);
    // The same action under a new id is out of order.
    let a3 = net.inject(1, "other-id", xml);
    assert_eq!(
        error_of(&a3).unwrap().1,
        Some(JingleErrorCondition::OutOfOrder)
    );
    // A repeated error is repeated too.
    let a4 = net.inject(1, "other-id", xml);
    assert_eq!(
        error_of(&a4).unwrap().1,
        Some(JingleErrorCondition::OutOfOrder)
    );
}

/// Gives `m` an IQ set from `from` and returns its answer (other outputs are dropped).
fn answer_from(m: &mut SessionManager, from: &Jid, id: &str, xml: &str, now: Instant) -> Iq {
    let el: Element = xml.parse().unwrap();
    m.handle_iq(from, id, &el, now);
    let mut answer = None;
    while let Some(o) = m.poll_output() {
        if let Output::Answer(iq) = o {
            answer.get_or_insert(iq);
        }
    }
    answer.unwrap()
}

/// Ids are unique per sender only: two resources of the same account (and two accounts) may use the
/// same IQ id and session id. A repeat is recognised by sender and id, so the second sender's IQ is
/// processed, not answered with the first sender's verdict.
#[test]
fn repeats_are_recognised_per_sender() {
    let now = Instant::now();
    let juliet = jid("juliet@capulet.lit/balcony");
    let mut m = SessionManager::new(SessionConfig::new(juliet));
    let orchard = jid("romeo@montague.lit/orchard");
    let garden = jid("romeo@montague.lit/garden");
    let initiate = |from: &Jid| {
        format!(
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='{from}' sid='s1'>\
             <content creator='initiator' name='ex'><description xmlns='urn:xmpp:example'/>\
             <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='ib'/></content></jingle>"
        )
    };
    for from in [&orchard, &garden] {
        let a = answer_from(&mut m, from, "same-id", &initiate(from), now);
        assert!(matches!(a, Iq::Result { .. }), "{from}: {a:?}");
    }
    assert_eq!(m.len(), 2);
    // From orchard, "i1" is a session-info nobody handles: refused.
    let unsupported = "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s1'>\
        <ringing xmlns='urn:xmpp:example:info'/></jingle>";
    let a = answer_from(&mut m, &orchard, "i1", unsupported, now);
    assert_eq!(
        error_of(&a),
        Some((
            "feature-not-implemented".into(),
            Some(JingleErrorCondition::UnsupportedInfo)
        ))
    );
    // From garden, "i1" is a session-terminate: processed (a result, and the session ends), not
    // answered with orchard's refusal.
    let terminate = "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s1'>\
        <reason><success/></reason></jingle>";
    let a = answer_from(&mut m, &garden, "i1", terminate, now);
    assert!(matches!(a, Iq::Result { .. }), "{a:?}");
    assert_eq!(m.state(&garden, "s1"), None);
    assert_eq!(m.state(&orchard, "s1"), Some(SessionState::Pending));
    // Orchard's repeat of "i1" still gets its own first answer.
    let again = answer_from(&mut m, &orchard, "i1", unsupported, now);
    assert_eq!(
        error_of(&again),
        Some((
            "feature-not-implemented".into(),
            Some(JingleErrorCondition::UnsupportedInfo)
        ))
    );
}

/// A session-initiate of `sid` from side 0, as side 0 would send it.
fn initiate_xml(net: &Net, sid: &str) -> String {
    let mut j = Jingle::new(Action::SessionInitiate, sid);
    j.initiator = Some(net.jid(0));
    j.contents = vec![file_content("a-file-offer")];
    String::from(&j.to_element())
}

/// A retransmitted session-initiate of a session that ended (whichever side ended it) does not start it
/// again: `item-not-found` + `<unknown-session/>`, no event. A new session from the same peer (fresh id)
/// works; the id is usable again once `ended_memory` passed, or once 64 later sessions ended.
#[test]
fn retransmitted_initiate_of_an_ended_session_is_refused() {
    let mut net = Net::new();
    let unknown = Some((
        "item-not-found".to_owned(),
        Some(JingleErrorCondition::UnknownSession),
    ));
    for ender in [0, 1] {
        let sid = active(&mut net);
        let peer = net.jid(1 - ender);
        net.p[ender]
            .m
            .terminate(&peer, &sid, Reason::new(ReasonCondition::Success), net.now)
            .unwrap();
        net.pump();
        net.take_events(0);
        net.take_events(1);
        assert!(net.p[1].m.is_empty() && net.p[0].m.is_empty());
        let xml = initiate_xml(&net, &sid);
        let a = net.inject(1, &format!("retransmit-{ender}"), &xml);
        assert_eq!(error_of(&a), unknown, "ended by {ender}");
        assert!(net.take_events(1).is_empty());
        assert!(net.p[1].m.is_empty());
        assert!(net.p[1].m.recently_ended(&net.jid(0), &sid, net.now));
        // Our own side refuses to reuse the id too.
        let juliet = net.jid(1);
        assert!(net.p[0]
            .m
            .initiate_with_sid(juliet, sid.clone(), vec![file_content("f")], net.now)
            .is_err());
        assert!(net.p[0].m.poll_output().is_none());
    }
    // A fresh session id from the same peer is a new session.
    let sid = active(&mut net);
    assert_eq!(
        net.p[1].m.state(&net.jid(0), &sid),
        Some(SessionState::Active)
    );
    let romeo = net.jid(0);
    net.p[1]
        .m
        .terminate(&romeo, &sid, Reason::new(ReasonCondition::Success), net.now)
        .unwrap();
    net.pump();
    net.take_events(0);
    net.take_events(1);

    // After `ended_memory`, the id may start a session again.
    let memory = SessionConfig::new(net.jid(1)).ended_memory;
    let xml = initiate_xml(&net, &sid);
    net.now += memory - Duration::from_secs(1);
    assert_eq!(error_of(&net.inject(1, "late-1", &xml)), unknown);
    net.now += Duration::from_secs(1);
    assert!(matches!(net.inject(1, "late-2", &xml), Iq::Result { .. }));
    assert!(matches!(
        net.take_events(1)[..],
        [EventKind::Incoming { .. }]
    ));
    net.p[1]
        .m
        .terminate(&romeo, &sid, Reason::new(ReasonCondition::Decline), net.now)
        .unwrap();
    net.pump();

    // The memory is bounded: 64 later ended sessions push the first out.
    for i in 0..64 {
        let x = initiate_xml(&net, &format!("filler-{i}"));
        assert!(matches!(
            net.inject(1, &format!("f-{i}"), &x),
            Iq::Result { .. }
        ));
        net.p[1]
            .m
            .terminate(
                &romeo,
                &format!("filler-{i}"),
                Reason::new(ReasonCondition::Decline),
                net.now,
            )
            .unwrap();
        while net.p[1].m.poll_output().is_some() {}
    }
    assert!(!net.p[1].m.recently_ended(&romeo, &sid, net.now));
    assert!(net.p[1].m.recently_ended(&romeo, "filler-63", net.now));
    assert!(matches!(net.inject(1, "again", &xml), Iq::Result { .. }));
}

#[test]
fn simultaneous_initiate_lower_sid_wins() {
    let mut net = Net::new();
    let (j0, j1) = (net.jid(0), net.jid(1));
    net.p[0]
        .m
        .initiate_with_sid(j1.clone(), "bbbb".into(), vec![file_content("f")], net.now)
        .unwrap();
    net.p[1]
        .m
        .initiate_with_sid(j0.clone(), "aaaa".into(), vec![file_content("f")], net.now)
        .unwrap();
    net.pump();
    // 1's session (aaaa) wins: 0 dropped its own and got 1's; 1 refused 0's with tie-break.
    let ev0 = net.take_events(0);
    assert!(
        ev0.contains(&EventKind::TieBreakLost {
            winner: "aaaa".into()
        }),
        "{ev0:?}"
    );
    assert!(ev0.iter().any(|e| matches!(e, EventKind::Incoming { .. })));
    let ev1 = net.take_events(1);
    assert!(ev1.is_empty(), "{ev1:?}");
    let conflict = net
        .take_answers(1)
        .iter()
        .filter_map(error_of)
        .collect::<Vec<_>>();
    assert_eq!(
        conflict,
        vec![("conflict".into(), Some(JingleErrorCondition::TieBreak))]
    );
    assert_eq!(net.p[0].m.state(&j1, "bbbb"), None);
    assert_eq!(net.p[0].m.state(&j1, "aaaa"), Some(SessionState::Pending));
    assert_eq!(net.p[1].m.state(&j0, "aaaa"), Some(SessionState::Pending));
    assert_eq!(net.p[1].m.state(&j0, "bbbb"), None);
}

/// Several pending initiates of ours to the same peer tie with the peer's: the outcome follows the
/// session ids (each pair by the XEP's rule), never the order of a hash map. One of ours lower than theirs
/// overrules it; when theirs is lower than all of ours, all of ours give way, lowest id first.
#[test]
fn tie_break_with_several_pending_initiates_is_deterministic() {
    for round in 0..16 {
        let mut net = Net::new();
        let romeo = net.jid(0);
        // Juliet's pending initiates to romeo (never delivered), created in a varying order.
        let mut sids = vec!["mmmm", "pppp", "kkkk"];
        sids.rotate_left(round % 3);
        if round % 2 == 1 {
            sids.reverse();
        }
        for sid in &sids {
            net.p[1]
                .m
                .initiate_with_sid(
                    romeo.clone(),
                    (*sid).into(),
                    vec![file_content("f")],
                    net.now,
                )
                .unwrap();
        }
        while net.p[1].m.poll_output().is_some() {}
        // Romeo's "nnnn" is higher than "kkkk" and "mmmm": refused, nothing of juliet's moves (a
        // walk that met "pppp" first used to drop it and accept "nnnn").
        let a = net.inject(1, "n", &initiate_xml(&net, "nnnn"));
        assert_eq!(
            error_of(&a),
            Some(("conflict".into(), Some(JingleErrorCondition::TieBreak))),
            "round {round}"
        );
        assert!(net.take_events(1).is_empty(), "round {round}");
        assert_eq!(net.p[1].m.len(), 3);
        // Romeo's "aaaa" is lower than all: every one of juliet's gives way, in id order, then
        // romeo's arrives.
        let a = net.inject(1, "a", &initiate_xml(&net, "aaaa"));
        assert!(matches!(a, Iq::Result { .. }), "round {round}: {a:?}");
        let lost = |sid: &str| Event {
            sid: sid.into(),
            peer: romeo.clone(),
            kind: EventKind::TieBreakLost {
                winner: "aaaa".into(),
            },
        };
        let events: Vec<Event> = net.p[1].events.drain(..).collect();
        assert_eq!(events.len(), 4, "round {round}: {events:?}");
        assert_eq!(events[..3], [lost("kkkk"), lost("mmmm"), lost("pppp")]);
        assert!(matches!(events[3].kind, EventKind::Incoming { .. }));
        assert_eq!(net.p[1].m.len(), 1);
        assert_eq!(
            net.p[1].m.state(&romeo, "aaaa"),
            Some(SessionState::Pending)
        );
    }
}

#[test]
fn simultaneous_content_add_initiator_wins() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let (j0, j1) = (net.jid(0), net.jid(1));
    net.p[0]
        .m
        .send_action(
            &j1,
            &sid,
            Action::ContentAdd,
            vec![file_content("second")],
            None,
            net.now,
        )
        .unwrap();
    let mut theirs = file_content("third");
    theirs.creator = Creator::Responder;
    net.p[1]
        .m
        .send_action(&j0, &sid, Action::ContentAdd, vec![theirs], None, net.now)
        .unwrap();
    net.pump();
    let ev1 = net.take_events(1);
    assert!(
        matches!(
            &ev1[..],
            [
                EventKind::Action {
                    action: Action::ContentAdd,
                    ..
                },
                EventKind::RequestFailed {
                    action: Action::ContentAdd,
                    error: RequestError::Stanza {
                        jingle: Some(JingleErrorCondition::TieBreak),
                        ..
                    }
                }
            ]
        ),
        "{ev1:?}"
    );
    assert!(net.take_events(0).is_empty());
    // The responder accepts the initiator's content.
    net.p[1]
        .m
        .send_action(
            &j0,
            &sid,
            Action::ContentAccept,
            vec![Content::new(Creator::Initiator, "second")],
            None,
            net.now,
        )
        .unwrap();
    net.pump();
    assert!(matches!(
        &net.take_events(0)[..],
        [EventKind::Action {
            action: Action::ContentAccept,
            ..
        }]
    ));
    assert_eq!(net.p[0].m.contents(&j1, &sid).len(), 2);
    assert_eq!(net.p[1].m.contents(&j0, &sid).len(), 2);
}

#[test]
fn content_actions() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let (j0, j1) = (net.jid(0), net.jid(1));
    let now = net.now;
    // content-add then content-reject.
    net.p[0]
        .m
        .send_action(
            &j1,
            &sid,
            Action::ContentAdd,
            vec![file_content("b")],
            None,
            now,
        )
        .unwrap();
    net.pump();
    assert!(matches!(
        &net.take_events(1)[..],
        [EventKind::Action {
            action: Action::ContentAdd,
            ..
        }]
    ));
    net.p[1]
        .m
        .send_action(
            &j0,
            &sid,
            Action::ContentReject,
            vec![Content::new(Creator::Initiator, "b")],
            Some(Reason::new(ReasonCondition::Decline)),
            now,
        )
        .unwrap();
    net.pump();
    assert!(matches!(
        &net.take_events(0)[..],
        [EventKind::Action {
            action: Action::ContentReject,
            reason: Some(_),
            ..
        }]
    ));
    assert_eq!(net.p[0].m.contents(&j1, &sid).len(), 1);
    // content-accept for a content that was not added is refused locally.
    assert!(net.p[1]
        .m
        .send_action(
            &j0,
            &sid,
            Action::ContentAccept,
            vec![Content::new(Creator::Initiator, "b")],
            None,
            now
        )
        .is_err());
    // content-modify changes senders.
    let m = Content::new(Creator::Initiator, "a-file-offer").with_senders(Senders::Both);
    net.p[1]
        .m
        .send_action(&j0, &sid, Action::ContentModify, vec![m], None, now)
        .unwrap();
    net.pump();
    assert_eq!(
        net.p[0].m.contents(&j1, &sid)[0].senders,
        Some(Senders::Both)
    );
    assert!(matches!(
        &net.take_events(0)[..],
        [EventKind::Action {
            action: Action::ContentModify,
            ..
        }]
    ));
    // description-info, security-info and transport-info reach the application.
    for action in [
        Action::DescriptionInfo,
        Action::SecurityInfo,
        Action::TransportInfo,
    ] {
        net.p[0]
            .m
            .send_action(
                &j1,
                &sid,
                action,
                vec![Content::new(Creator::Initiator, "a-file-offer")],
                None,
                now,
            )
            .unwrap();
    }
    net.pump();
    let ev: Vec<Action> = net
        .take_events(1)
        .into_iter()
        .filter_map(|e| match e {
            EventKind::Action { action, .. } => Some(action),
            _ => None,
        })
        .collect();
    assert_eq!(
        ev,
        vec![
            Action::DescriptionInfo,
            Action::SecurityInfo,
            Action::TransportInfo
        ]
    );
    // Info about a content that does not exist is a bad request.
    let answer = net.inject(1, "bad", &format!("<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='{sid}'><content creator='initiator' name='nope'/></jingle>"));
    assert_eq!(error_of(&answer).unwrap().0, "bad-request");
    // Removing the last content ends the session.
    net.p[1]
        .m
        .send_action(
            &j0,
            &sid,
            Action::ContentRemove,
            vec![Content::new(Creator::Initiator, "a-file-offer")],
            Some(Reason::new(ReasonCondition::Cancel)),
            now,
        )
        .unwrap();
    net.pump();
    let ev0 = net.take_events(0);
    assert!(
        matches!(
            &ev0[..],
            [
                EventKind::Action {
                    action: Action::ContentRemove,
                    ..
                },
                EventKind::Terminated { by_peer: false, .. }
            ]
        ),
        "{ev0:?}"
    );
    assert!(net.p[0].m.is_empty() && net.p[1].m.is_empty());
}

#[test]
fn transport_replace_accept_and_reject() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let (j0, j1) = (net.jid(0), net.jid(1));
    let now = net.now;
    let replacement = Transport::Ibb(IbbTransport {
        sid: Some("new-sid".into()),
        block_size: 2048,
        stanza: Default::default(),
    });
    let c = Content::new(Creator::Initiator, "a-file-offer").with_transport(replacement.clone());
    net.p[0]
        .m
        .send_action(
            &j1,
            &sid,
            Action::TransportReplace,
            vec![c.clone()],
            None,
            now,
        )
        .unwrap();
    net.pump();
    assert!(matches!(
        &net.take_events(1)[..],
        [EventKind::Action {
            action: Action::TransportReplace,
            ..
        }]
    ));
    net.p[1]
        .m
        .send_action(
            &j0,
            &sid,
            Action::TransportAccept,
            vec![c.clone()],
            None,
            now,
        )
        .unwrap();
    net.pump();
    assert!(matches!(
        &net.take_events(0)[..],
        [EventKind::Action {
            action: Action::TransportAccept,
            ..
        }]
    ));
    assert_eq!(
        net.p[0].m.contents(&j1, &sid)[0].transport,
        Some(replacement.clone())
    );
    assert_eq!(
        net.p[1].m.contents(&j0, &sid)[0].transport,
        Some(replacement)
    );
    // A second answer is out of order (locally refused, and refused by the peer).
    assert!(net.p[1]
        .m
        .send_action(
            &j0,
            &sid,
            Action::TransportAccept,
            vec![c.clone()],
            None,
            now
        )
        .is_err());
    net.p[0]
        .m
        .send_action(
            &j1,
            &sid,
            Action::TransportReplace,
            vec![c.clone()],
            None,
            now,
        )
        .unwrap();
    net.pump();
    net.p[1]
        .m
        .send_action(&j0, &sid, Action::TransportReject, vec![c], None, now)
        .unwrap();
    net.pump();
    assert!(net.take_events(0).iter().any(|e| matches!(
        e,
        EventKind::Action {
            action: Action::TransportReject,
            ..
        }
    )));
    // Simultaneous transport-replace: the initiator's wins.
    let c = Content::new(Creator::Initiator, "a-file-offer")
        .with_transport(Transport::Ibb(IbbTransport::offer()));
    net.take_events(1);
    net.p[0]
        .m
        .send_action(
            &j1,
            &sid,
            Action::TransportReplace,
            vec![c.clone()],
            None,
            now,
        )
        .unwrap();
    net.p[1]
        .m
        .send_action(&j0, &sid, Action::TransportReplace, vec![c], None, now)
        .unwrap();
    net.pump();
    let ev1 = net.take_events(1);
    assert!(
        ev1.iter().any(|e| matches!(
            e,
            EventKind::RequestFailed {
                error: RequestError::Stanza {
                    jingle: Some(JingleErrorCondition::TieBreak),
                    ..
                },
                ..
            }
        )),
        "{ev1:?}"
    );
}

#[test]
fn unsupported_info_payload() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let answer = net.inject(1, "i", &format!("<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='{sid}'><ringing xmlns='urn:xmpp:jingle:apps:rtp:info:1'/></jingle>"));
    assert_eq!(
        error_of(&answer),
        Some((
            "feature-not-implemented".into(),
            Some(JingleErrorCondition::UnsupportedInfo)
        ))
    );
}

#[test]
fn timeouts_on_a_fake_clock() {
    let mut net = Net::new();
    let j1 = net.jid(1);
    let sid = net.p[0]
        .m
        .initiate(j1.clone(), vec![file_content("f")], net.now)
        .unwrap();
    net.pump();
    net.take_events(1);
    // Nobody accepts: after the accept timeout the initiator ends the session with <timeout/>.
    let due = net.p[0].m.poll_timeout().unwrap();
    assert_eq!(due, net.now + Duration::from_secs(300));
    net.now = due;
    net.p[0].m.handle_timeout(net.now);
    net.pump();
    assert!(matches!(
        &net.take_events(0)[..],
        [EventKind::Terminated {
            by_peer: false,
            reason: Some(Reason {
                condition: ReasonCondition::Timeout,
                ..
            })
        }]
    ));
    assert!(matches!(
        &net.take_events(1)[..],
        [EventKind::Terminated { by_peer: true, .. }]
    ));
    // A request that is never answered fails with a timeout, and a failed session-initiate ends the session.
    let sid2 = net.p[0]
        .m
        .initiate(j1.clone(), vec![file_content("f")], net.now)
        .unwrap();
    while net.p[0].m.poll_output().is_some() {} // lost on the way
    net.now += Duration::from_secs(61);
    net.p[0].m.handle_timeout(net.now);
    let mut kinds = Vec::new();
    while let Some(Output::Event(e)) = net.p[0].m.poll_output() {
        kinds.push(e.kind);
    }
    assert!(
        matches!(
            &kinds[..],
            [
                EventKind::RequestFailed {
                    action: Action::SessionInitiate,
                    error: RequestError::Timeout
                },
                EventKind::Terminated { .. }
            ]
        ),
        "{kinds:?}"
    );
    assert_eq!(net.p[0].m.state(&j1, &sid2), None);
    assert_ne!(sid, sid2);
}

#[test]
fn local_commands_are_checked() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let (j0, j1) = (net.jid(0), net.jid(1));
    let now = net.now;
    assert!(
        net.p[0].m.accept(&j1, &sid, vec![], now).is_err(),
        "initiator cannot accept"
    );
    assert!(
        net.p[1].m.accept(&j0, &sid, vec![], now).is_err(),
        "already active"
    );
    assert!(net.p[0]
        .m
        .terminate(&j1, "nope", Reason::new(ReasonCondition::Success), now)
        .is_err());
    assert!(net.p[0].m.initiate(j1.clone(), vec![], now).is_err());
    assert!(net.p[0]
        .m
        .send_action(
            &j1,
            &sid,
            Action::SessionAccept,
            vec![file_content("x")],
            None,
            now
        )
        .is_err());
    assert!(net.p[0]
        .m
        .send_action(
            &j1,
            &sid,
            Action::TransportInfo,
            vec![Content::new(Creator::Initiator, "nope")],
            None,
            now
        )
        .is_err());
}

#[test]
fn hostile_input_never_panics() {
    let mut net = Net::new();
    let sid = active(&mut net);
    let bad = [
        "<jingle xmlns='urn:xmpp:jingle:1'/>".to_string(),
        "<jingle xmlns='urn:xmpp:jingle:1' action='dance' sid='x'/>".into(),
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid=''/>".into(),
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'/>".into(),
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s' initiator='@@'><content name='c'/></jingle>".into(),
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content creator='nobody' name='c'/></jingle>".into(),
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'><content creator='initiator' name='c'/></jingle>".into(),
        format!("<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='{sid}'><reason/></jingle>"),
        format!("<jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='{sid}'/>"),
        format!("<jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='{}'/>", "s".repeat(1000)),
        format!("<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='{sid}'>{}</jingle>", "<x xmlns='y'/>".repeat(100)),
        format!("<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='{sid}'>{}</jingle>", "<content creator='initiator' name='a-file-offer'/>".repeat(100)),
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='z'><content creator='initiator' name='c'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><size>-1</size></file></description></content></jingle>".to_string(),
        "<jingle xmlns='urn:xmpp:jingle:0' action='session-info' sid='s'/>".into(),
    ];
    for (i, xml) in bad.iter().enumerate() {
        let answer = net.inject(1, &format!("bad{i}"), xml);
        assert!(matches!(answer, Iq::Error { .. }), "{xml} was accepted");
    }
    // The live session is untouched.
    assert_eq!(
        net.p[1].m.state(&net.jid(0), &sid),
        Some(SessionState::Active)
    );
    // Random mutations of a valid stanza: always one answer, never a panic.
    let base = format!("<jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='{sid}'><content creator='initiator' name='n' senders='initiator'><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>a</name><size>5</size><range offset='1' length='2'/><hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>w0mcJylzCn+AfvuGdqkty2+KP48=</hash></file></description><transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='q'/></content></jingle>");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"<>/='\"ax0-9 &;";
    for i in 0..2000 {
        let mut bytes = base.clone().into_bytes();
        for _ in 0..1 + rnd() % 4 {
            let pos = (rnd() as usize) % bytes.len();
            bytes[pos] = alphabet[(rnd() as usize) % alphabet.len()];
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let Ok(el) = text.parse::<Element>() else {
            continue;
        };
        let from = net.jid(0);
        net.p[1].m.handle_iq(&from, &format!("m{i}"), &el, net.now);
        let mut answers = 0;
        while let Some(o) = net.p[1].m.poll_output() {
            if matches!(o, Output::Answer(_)) {
                answers += 1;
            }
        }
        assert_eq!(answers, 1);
    }
}

/// The `<jingle/>` of every example of XEP-0166, XEP-0234 and XEP-0261 that has one parses, and writes
/// back to an element that parses to the same value.
#[test]
fn xep_examples_round_trip() {
    for xml in EXAMPLES {
        let el: Element = xml.parse().unwrap();
        let j = Jingle::from_element(&el).unwrap_or_else(|e| panic!("{e}: {xml}"));
        let back = Jingle::from_element(&j.to_element()).unwrap();
        assert_eq!(back, j, "{xml}");
        // Typed where we know the application or transport.
        for c in &j.contents {
            if let Some(Description::Raw(d)) = &c.description {
                assert_ne!(d.ns(), xmpp_jingle::ft::NS_FT);
            }
            if let Some(Transport::Raw(t)) = &c.transport {
                assert_ne!(t.ns(), xmpp_jingle::jingle_ibb::NS_JINGLE_IBB);
            }
        }
    }
    // Field checks on two of them.
    let offer = Jingle::from_element(&EXAMPLES[0].parse().unwrap()).unwrap();
    let Some(Description::File(d)) = &offer.contents[0].description else {
        panic!()
    };
    assert_eq!(d.file.name.as_deref(), Some("test.txt"));
    assert_eq!(d.file.size, Some(6144));
    assert_eq!(d.file.media_type.as_deref(), Some("text/plain"));
    assert_eq!(d.file.date.as_deref(), Some("1969-07-21T02:56:15Z"));
    assert_eq!(d.file.range, Some(Default::default()));
    assert_eq!(d.file.hashes[0].algo, "sha-1");
    let ranged = Jingle::from_element(&EXAMPLES[3].parse().unwrap()).unwrap();
    let info = FtInfo::from_element(&ranged.payloads[0]).unwrap();
    let FtInfo::Checksum(c) = info else { panic!() };
    let r = c.file.range.unwrap();
    assert_eq!((r.offset, r.length, r.hashes.len()), (2048, Some(1024), 1));
    let used = Jingle::from_element(&EXAMPLES[4].parse().unwrap()).unwrap();
    let Some(Description::File(d)) = &used.contents[0].description else {
        panic!()
    };
    assert_eq!(d.file.hashes_used[0].algo, "sha-1");
    let rejected = Jingle::from_element(&EXAMPLES[5].parse().unwrap()).unwrap();
    let reason = rejected.reason.unwrap();
    assert_eq!(reason.condition, ReasonCondition::FailedApplication);
    assert_eq!(reason.extra[0].name(), "file-not-available");
}

const EXAMPLES: &[&str] = &[
    // XEP-0234 example 1 (session-initiate with a file offer over SOCKS5).
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.example/dr4hcr0st3lup4c' sid='851ba2'>
    <content creator='initiator' name='a-file-offer' senders='initiator'>
      <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
        <file>
          <date>1969-07-21T02:56:15Z</date>
          <desc>This is a test. If this were a real file...</desc>
          <media-type>text/plain</media-type>
          <name>test.txt</name>
          <range/>
          <size>6144</size>
          <hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>w0mcJylzCn+AfvuGdqkty2+KP48=</hash>
        </file>
      </description>
      <transport xmlns='urn:xmpp:jingle:transports:s5b:1' mode='tcp' sid='vj3hs98y'>
        <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5086' priority='8257636' type='direct'/>
      </transport>
    </content>
  </jingle>"#,
    // XEP-0234: file request (senders='responder').
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='juliet@capulet.example/yn0cl4bnw0yr3vym' sid='uj3b2'>
    <content creator='initiator' name='a-file-request' senders='responder'>
      <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
        <file><hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>w0mcJylzCn+AfvuGdqkty2+KP48=</hash></file>
      </description>
      <transport xmlns='urn:xmpp:jingle:transports:s5b:1' mode='tcp' sid='xig361fj'/>
    </content>
  </jingle>"#,
    // XEP-0234: session-info with <received/>.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='a73sjjvkla37jfea'>
    <received xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='a-file-offer' />
  </jingle>"#,
    // XEP-0234: checksum for a range.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='a73sjjvkla37jfea'>
    <checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='a-file-offer'>
      <file>
        <range offset='2048' length='1024'>
          <hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>kHp5RSzW/h7Gm1etSf90Mr5PC/k=</hash>
        </range>
      </file>
    </checksum>
  </jingle>"#,
    // XEP-0234: hash-used in session-initiate.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.example/dr4hcr0st3lup4c' sid='851ba2'>
    <content creator='initiator' name='a-file-offer' senders='initiator'>
      <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
        <file>
          <date>1969-07-21T02:56:15Z</date>
          <desc>This is a test. If this were a real file...</desc>
          <media-type>text/plain</media-type>
          <name>test.txt</name>
          <range/>
          <size>6144</size>
          <hash-used xmlns='urn:xmpp:hashes:2' algo='sha-1'/>
        </file>
      </description>
      <transport xmlns='urn:xmpp:jingle:transports:s5b:1' mode='tcp' sid='vj3hs98y'/>
    </content>
  </jingle>"#,
    // XEP-0234: content-reject with a file-transfer error.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='content-reject' sid='uj3b2'>
    <content creator='initiator' name='requesting-file' senders='initiator'/>
    <reason>
      <failed-application />
      <file-not-available xmlns='urn:xmpp:jingle:apps:file-transfer:errors:0' />
    </reason>
  </jingle>"#,
    // XEP-0234: file sender restarts with a range.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.example/dr4hcr0st3lup4c' sid='uj3b2'>
    <content creator='initiator' name='restart' senders='initiator'>
      <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
        <file>
          <range offset='270336'/>
          <hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>w0mcJylzCn+AfvuGdqkty2+KP48=</hash>
        </file>
      </description>
      <transport xmlns='urn:xmpp:jingle:transports:s5b:1' mode='tcp' sid='vj3hs98y'/>
    </content>
  </jingle>"#,
    // XEP-0234: content-remove with media-error and file-too-large.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='content-remove' sid='uj3b2'>
    <content creator='initiator' name='big-file' senders='initiator'/>
    <reason>
      <media-error />
      <file-too-large xmlns='urn:xmpp:jingle:apps:file-transfer:errors:0' />
    </reason>
  </jingle>"#,
    // XEP-0261 examples: IBB transport in session-initiate, session-accept (smaller block size), transport-info.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'>
    <content creator='initiator' name='ex'>
      <description xmlns='urn:xmpp:example'/>
      <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='ch3d9s71'/>
    </content>
  </jingle>"#,
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' responder='juliet@capulet.lit/balcony' sid='a73sjjvkla37jfea'>
    <content creator='initiator' name='ex'>
      <description xmlns='urn:xmpp:example'/>
      <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='2048' sid='ch3d9s71'/>
    </content>
  </jingle>"#,
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='a73sjjvkla37jfea'>
    <content creator='initiator' name='ex'>
      <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='2048' sid='bt8a71h6'/>
    </content>
  </jingle>"#,
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='a73sjjvkla37jfea'><reason><success/></reason></jingle>"#,
    // XEP-0166: alternative-session reason with text.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='a73sjjvkla37jfea'>
    <reason><alternative-session><sid>b84tkkwlmb48kgfb</sid></alternative-session><text>Use the other one</text></reason>
  </jingle>"#,
    // XEP-0166: security-info with an unknown security element, and an unknown extension child.
    r#"<jingle xmlns='urn:xmpp:jingle:1' action='security-info' sid='a73sjjvkla37jfea'>
    <content creator='initiator' name='voice'><security xmlns='urn:xmpp:example:sec'/></content>
    <mystery xmlns='urn:example:unknown' a='1'><deep/></mystery>
  </jingle>"#,
];
