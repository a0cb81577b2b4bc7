//! XEP-0353 (Jingle Message Initiation, 0.8.0, `urn:xmpp:jingle-message:0`): the message payloads
//! (`<propose/>` with several descriptions, `<ringing/>`, `<proceed/>`, `<accept/>`, `<reject/>`,
//! `<retract/>`, `<finish/>` with `<migrated/>`) and a small sans-IO state machine per proposed session.
//!
//! (xmpp-parsers 0.23 implements version 0.3, where `<ringing/>` and `<finish/>` fail to parse.)

use minidom::Element;
use xmpp_social::xml::BuilderExt;
use xmpp_social::ParseError;

use crate::jingle::{Description, Reason, ReasonCondition, MAX_ID_CHARS, MAX_PAYLOADS, NS_JINGLE};

/// `urn:xmpp:jingle-message:0`.
pub const NS_JMI: &str = "urn:xmpp:jingle-message:0";

/// One XEP-0353 payload.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JmiMessage {
    /// `<propose/>`: the intent to start a session with these applications.
    Propose {
        /// The future Jingle session id.
        id: String,
        /// One or more application descriptions (RTP audio and video, file transfer, others raw).
        descriptions: Vec<Description>,
    },
    /// `<ringing/>`: a responder device is alerting its user.
    Ringing {
        /// The session id.
        id: String,
    },
    /// `<proceed/>`: the responder wants the session; the initiator sends session-initiate to it.
    Proceed {
        /// The session id.
        id: String,
    },
    /// `<accept/>`: sent to the responder's own other devices: the call was taken here.
    Accept {
        /// The session id.
        id: String,
    },
    /// `<reject/>`: the responder declines (or loses a tie-break).
    Reject {
        /// The session id.
        id: String,
        /// Why.
        reason: Option<Reason>,
        /// `<tie-break/>` present.
        tie_break: bool,
    },
    /// `<retract/>`: the initiator withdraws the proposal (or loses a tie-break).
    Retract {
        /// The session id.
        id: String,
        /// Why.
        reason: Option<Reason>,
        /// `<tie-break/>` present.
        tie_break: bool,
    },
    /// `<finish/>`: the session is over (both parties send it).
    Finish {
        /// The session id.
        id: String,
        /// Why (usually `<success/>` or `<expired/>`).
        reason: Option<Reason>,
        /// `<migrated to='...'/>`: the session moved to this new id.
        migrated: Option<String>,
    },
}

fn id(el: &Element, element: &'static str) -> Result<String, ParseError> {
    let v = el.attr("id").ok_or(ParseError::MissingAttribute {
        element,
        attribute: "id",
    })?;
    if v.is_empty() || v.chars().count() > MAX_ID_CHARS {
        return Err(ParseError::InvalidValue {
            element,
            reason: "id empty or too long".into(),
        });
    }
    Ok(v.to_owned())
}

fn reason(el: &Element) -> Result<Option<Reason>, ParseError> {
    el.get_child("reason", NS_JINGLE)
        .map(Reason::from_element)
        .transpose()
}

impl JmiMessage {
    /// The session id the message is about.
    pub fn id(&self) -> &str {
        match self {
            JmiMessage::Propose { id, .. }
            | JmiMessage::Ringing { id }
            | JmiMessage::Proceed { id }
            | JmiMessage::Accept { id }
            | JmiMessage::Reject { id, .. }
            | JmiMessage::Retract { id, .. }
            | JmiMessage::Finish { id, .. } => id,
        }
    }

    /// Finds and parses the XEP-0353 payload among a message's children; `Ok(None)` when there is none.
    pub fn from_message_payloads<'a>(
        payloads: impl IntoIterator<Item = &'a Element>,
    ) -> Result<Option<JmiMessage>, ParseError> {
        payloads
            .into_iter()
            .find(|p| p.ns() == NS_JMI)
            .map(JmiMessage::from_element)
            .transpose()
    }

    /// Parses one payload.
    pub fn from_element(el: &Element) -> Result<JmiMessage, ParseError> {
        if el.ns() != NS_JMI {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_JMI}}}*"),
                found: xmpp_social::xml::qname(el),
            });
        }
        let tie_break = el.get_child("tie-break", NS_JMI).is_some();
        Ok(match el.name() {
            "propose" => {
                let mut descriptions = Vec::new();
                for c in el.children().filter(|c| c.name() == "description") {
                    if descriptions.len() >= MAX_PAYLOADS {
                        return Err(ParseError::TooLarge {
                            element: "propose",
                            size: descriptions.len() + 1,
                            limit: MAX_PAYLOADS,
                        });
                    }
                    descriptions.push(Description::from_element(c)?);
                }
                if descriptions.is_empty() {
                    return Err(ParseError::MissingChild {
                        element: "propose",
                        child: "description",
                    });
                }
                JmiMessage::Propose {
                    id: id(el, "propose")?,
                    descriptions,
                }
            }
            "ringing" => JmiMessage::Ringing {
                id: id(el, "ringing")?,
            },
            "proceed" => JmiMessage::Proceed {
                id: id(el, "proceed")?,
            },
            "accept" => JmiMessage::Accept {
                id: id(el, "accept")?,
            },
            "reject" => JmiMessage::Reject {
                id: id(el, "reject")?,
                reason: reason(el)?,
                tie_break,
            },
            "retract" => JmiMessage::Retract {
                id: id(el, "retract")?,
                reason: reason(el)?,
                tie_break,
            },
            "finish" => JmiMessage::Finish {
                id: id(el, "finish")?,
                reason: reason(el)?,
                migrated: match el.get_child("migrated", NS_JMI) {
                    Some(m) => Some(
                        m.attr("to")
                            .filter(|t| !t.is_empty() && t.chars().count() <= MAX_ID_CHARS)
                            .ok_or(ParseError::MissingAttribute {
                                element: "migrated",
                                attribute: "to",
                            })?
                            .to_owned(),
                    ),
                    None => None,
                },
            },
            _ => {
                return Err(ParseError::WrongElement {
                    expected: format!(
                        "{{{NS_JMI}}}propose|ringing|proceed|accept|reject|retract|finish"
                    ),
                    found: xmpp_social::xml::qname(el),
                })
            }
        })
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        let (name, id) = match self {
            JmiMessage::Propose { id, .. } => ("propose", id),
            JmiMessage::Ringing { id } => ("ringing", id),
            JmiMessage::Proceed { id } => ("proceed", id),
            JmiMessage::Accept { id } => ("accept", id),
            JmiMessage::Reject { id, .. } => ("reject", id),
            JmiMessage::Retract { id, .. } => ("retract", id),
            JmiMessage::Finish { id, .. } => ("finish", id),
        };
        let mut b = Element::builder(name, NS_JMI).a("id", id.clone());
        match self {
            JmiMessage::Propose { descriptions, .. } => {
                for d in descriptions {
                    b = b.append(d.to_element());
                }
            }
            JmiMessage::Reject {
                reason, tie_break, ..
            }
            | JmiMessage::Retract {
                reason, tie_break, ..
            } => {
                if let Some(r) = reason {
                    b = b.append(r.to_element());
                }
                if *tie_break {
                    b = b.append(Element::bare("tie-break", NS_JMI));
                }
            }
            JmiMessage::Finish {
                reason, migrated, ..
            } => {
                if let Some(r) = reason {
                    b = b.append(r.to_element());
                }
                if let Some(to) = migrated {
                    b = b.append(
                        Element::builder("migrated", NS_JMI)
                            .a("to", to.clone())
                            .build(),
                    );
                }
            }
            _ => {}
        }
        b.build()
    }
}

/// Where a proposed session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JmiState {
    /// Proposed, no answer yet.
    Proposed,
    /// A responder device rings.
    Ringing,
    /// The responder proceeded: the Jingle session follows.
    Proceeding,
    /// Accepted on another device of ours (responder side).
    AcceptedElsewhere,
    /// Rejected by the responder.
    Rejected,
    /// Retracted by the initiator.
    Retracted,
    /// Finished.
    Finished,
}

/// Why a message does not fit the proposal's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JmiError {
    /// Another session id.
    #[error("message for session {0:?}")]
    WrongSession(String),
    /// Not possible in this state (or from this side).
    #[error("{message} is out of order in state {state:?}")]
    OutOfOrder {
        /// The message name.
        message: &'static str,
        /// The state.
        state: JmiState,
    },
}

/// One proposed session, from one side. Feed it what arrives and what is sent; it refuses what cannot
/// happen (e.g. `<proceed/>` after `<retract/>`). A repeated message in the state it led to is accepted.
#[derive(Debug, Clone)]
pub struct JmiSession {
    id: String,
    initiator: bool,
    state: JmiState,
}

impl JmiSession {
    /// We propose: returns the session and the `<propose/>` to send (to the peer's bare JID).
    pub fn propose(descriptions: Vec<Description>) -> (JmiSession, JmiMessage) {
        let id = crate::random_id();
        (
            JmiSession {
                id: id.clone(),
                initiator: true,
                state: JmiState::Proposed,
            },
            JmiMessage::Propose { id, descriptions },
        )
    }

    /// A proposal received from a peer.
    pub fn received(id: impl Into<String>) -> JmiSession {
        JmiSession {
            id: id.into(),
            initiator: false,
            state: JmiState::Proposed,
        }
    }

    /// The session id (also the Jingle `sid`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The state.
    pub fn state(&self) -> JmiState {
        self.state
    }

    /// Applies a message, sent (`outgoing`) or received, and returns the new state.
    pub fn apply(&mut self, msg: &JmiMessage, outgoing: bool) -> Result<JmiState, JmiError> {
        if msg.id() != self.id {
            return Err(JmiError::WrongSession(msg.id().to_owned()));
        }
        // Which side sends it: initiator messages are retract; responder ones ringing/proceed/reject/accept.
        let from_initiator = self.initiator == outgoing;
        use JmiState::*;
        let (name, next, allowed): (&'static str, JmiState, &[JmiState]) = match msg {
            JmiMessage::Propose { .. } => ("propose", Proposed, &[Proposed]),
            JmiMessage::Ringing { .. } if !from_initiator => {
                ("ringing", Ringing, &[Proposed, Ringing])
            }
            JmiMessage::Proceed { .. } if !from_initiator => {
                ("proceed", Proceeding, &[Proposed, Ringing, Proceeding])
            }
            JmiMessage::Accept { .. } if !from_initiator => (
                "accept",
                AcceptedElsewhere,
                &[Proposed, Ringing, AcceptedElsewhere],
            ),
            JmiMessage::Reject { .. } if !from_initiator => {
                ("reject", Rejected, &[Proposed, Ringing, Rejected])
            }
            JmiMessage::Retract { .. } if from_initiator => {
                ("retract", Retracted, &[Proposed, Ringing, Retracted])
            }
            JmiMessage::Finish { .. } => (
                "finish",
                Finished,
                &[Proceeding, AcceptedElsewhere, Finished],
            ),
            other => {
                let name = match other {
                    JmiMessage::Ringing { .. } => "ringing",
                    JmiMessage::Proceed { .. } => "proceed",
                    JmiMessage::Accept { .. } => "accept",
                    JmiMessage::Reject { .. } => "reject",
                    _ => "retract",
                };
                return Err(JmiError::OutOfOrder {
                    message: name,
                    state: self.state,
                });
            }
        };
        if !allowed.contains(&self.state) {
            return Err(JmiError::OutOfOrder {
                message: name,
                state: self.state,
            });
        }
        self.state = next;
        Ok(next)
    }

    /// Both sides proposed at once (XEP-0353 §5.1): given our proposal and theirs, what we must send.
    /// The lower id wins: if theirs is lower we retract ours (and then answer theirs normally); if ours
    /// is lower we reject theirs.
    pub fn tie_break(ours: &str, theirs: &str) -> JmiMessage {
        let expired = Some(Reason::new(ReasonCondition::Expired));
        if theirs.as_bytes() < ours.as_bytes() {
            JmiMessage::Retract {
                id: ours.to_owned(),
                reason: expired,
                tie_break: true,
            }
        } else {
            JmiMessage::Reject {
                id: theirs.to_owned(),
                reason: expired,
                tie_break: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ID: &str = "ca3cf894-5325-482f-a412-a6e9f832298d";

    #[test]
    fn xep_examples_round_trip() {
        let examples = [
            "<propose xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>",
            "<retract xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'><reason xmlns='urn:xmpp:jingle:1'><cancel/><text>Retracted</text></reason></retract>",
            "<ringing xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'/>",
            "<proceed xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'/>",
            "<reject xmlns='urn:xmpp:jingle-message:0' id='fecbea35-08d3-404f-9ec7-2b57c566fa74'><reason xmlns='urn:xmpp:jingle:1'><expired/><text>Tie-Break</text></reason><tie-break/></reject>",
            "<finish xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'><reason xmlns='urn:xmpp:jingle:1'><success/><text>Success</text></reason></finish>",
            "<finish xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'><reason xmlns='urn:xmpp:jingle:1'><expired/><text>Session migrated</text></reason><migrated to='989a46a6-f202-4910-a7c3-83c6ba3f3947'/></finish>",
            "<accept xmlns='urn:xmpp:jingle-message:0' id='ca3cf894-5325-482f-a412-a6e9f832298d'/>",
            // Several descriptions, one of them file transfer.
            "<propose xmlns='urn:xmpp:jingle-message:0' id='x'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'/><description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>a</name></file></description></propose>",
        ];
        for xml in examples {
            let el: Element = xml.parse().unwrap();
            let m = JmiMessage::from_element(&el).unwrap();
            assert_eq!(
                JmiMessage::from_element(&m.to_element()).unwrap(),
                m,
                "{xml}"
            );
        }
        let m = JmiMessage::from_element(&examples[6].parse().unwrap()).unwrap();
        assert!(
            matches!(m, JmiMessage::Finish { migrated: Some(ref t), .. } if t == "989a46a6-f202-4910-a7c3-83c6ba3f3947")
        );
        let m = JmiMessage::from_element(&examples[8].parse().unwrap()).unwrap();
        assert!(
            matches!(m, JmiMessage::Propose { ref descriptions, .. } if descriptions.len() == 3 && matches!(descriptions[2], Description::File(_)))
        );
        for bad in [
            "<propose xmlns='urn:xmpp:jingle-message:0' id='x'/>",
            "<proceed xmlns='urn:xmpp:jingle-message:0'/>",
            "<finish xmlns='urn:xmpp:jingle-message:0' id='x'><migrated/></finish>",
            "<dance xmlns='urn:xmpp:jingle-message:0' id='x'/>",
            "<reject xmlns='urn:xmpp:jingle-message:0' id='x'><reason xmlns='urn:xmpp:jingle:1'/></reject>",
        ] {
            assert!(JmiMessage::from_element(&bad.parse().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn state_machine() {
        let (mut ours, propose) = JmiSession::propose(vec![]);
        let mut theirs = JmiSession::received(propose.id());
        let id = ours.id().to_owned();
        for (msg, from_us) in [
            (JmiMessage::Ringing { id: id.clone() }, false),
            (JmiMessage::Proceed { id: id.clone() }, false),
            (JmiMessage::Proceed { id: id.clone() }, false), // repeated
            (
                JmiMessage::Finish {
                    id: id.clone(),
                    reason: None,
                    migrated: None,
                },
                true,
            ),
        ] {
            ours.apply(&msg, from_us).unwrap();
            theirs.apply(&msg, !from_us).unwrap();
        }
        assert_eq!(ours.state(), JmiState::Finished);
        assert_eq!(theirs.state(), JmiState::Finished);
        // Out of order: proceed after retract; retract from the responder; finish before proceed.
        let mut s = JmiSession::received(ID);
        s.apply(
            &JmiMessage::Retract {
                id: ID.into(),
                reason: None,
                tie_break: false,
            },
            false,
        )
        .unwrap();
        assert!(s
            .apply(&JmiMessage::Proceed { id: ID.into() }, true)
            .is_err());
        let mut s = JmiSession::received(ID);
        assert!(s
            .apply(
                &JmiMessage::Retract {
                    id: ID.into(),
                    reason: None,
                    tie_break: false
                },
                true
            )
            .is_err());
        assert!(s
            .apply(
                &JmiMessage::Finish {
                    id: ID.into(),
                    reason: None,
                    migrated: None
                },
                false
            )
            .is_err());
        assert!(matches!(
            s.apply(&JmiMessage::Ringing { id: "other".into() }, true),
            Err(JmiError::WrongSession(_))
        ));
    }

    #[test]
    fn tie_break_lower_id_wins() {
        let ours = "ca3cf894-5325-482f-a412-a6e9f832298d";
        let theirs = "fecbea35-08d3-404f-9ec7-2b57c566fa74";
        assert!(
            matches!(JmiSession::tie_break(ours, theirs), JmiMessage::Reject { ref id, tie_break: true, .. } if id == theirs)
        );
        assert!(
            matches!(JmiSession::tie_break(theirs, ours), JmiMessage::Retract { ref id, tie_break: true, .. } if id == theirs)
        );
    }
}
