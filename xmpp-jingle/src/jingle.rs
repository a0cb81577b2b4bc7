//! XEP-0166 (Jingle, 1.1.2) elements: `<jingle/>`, `<content/>`, `<reason/>`, with the application
//! descriptions and transports this crate knows typed and every other extension kept raw.
//!
//! Parsing is bounded (contents, payloads, attribute lengths) and never panics; what is not understood is
//! kept as a [`minidom::Element`] and written back unchanged.

use jid::Jid;
use minidom::Element;
use xmpp_social::xml::BuilderExt;
use xmpp_social::ParseError;

use crate::ft::{FileDescription, NS_FT};
use crate::jingle_ibb::{IbbTransport, NS_JINGLE_IBB};

/// `urn:xmpp:jingle:1`.
pub const NS_JINGLE: &str = "urn:xmpp:jingle:1";
/// `urn:xmpp:jingle:errors:1`.
pub const NS_JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";

/// Most `<content/>` elements accepted in one `<jingle/>`.
pub const MAX_CONTENTS: usize = 32;
/// Most other children (payloads) accepted in one `<jingle/>` or `<content/>`.
pub const MAX_PAYLOADS: usize = 32;
/// Longest `sid` or content name accepted.
pub const MAX_ID_CHARS: usize = 256;

/// A Jingle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `content-accept`.
    ContentAccept,
    /// `content-add`.
    ContentAdd,
    /// `content-modify`.
    ContentModify,
    /// `content-reject`.
    ContentReject,
    /// `content-remove`.
    ContentRemove,
    /// `description-info`.
    DescriptionInfo,
    /// `security-info`.
    SecurityInfo,
    /// `session-accept`.
    SessionAccept,
    /// `session-info`.
    SessionInfo,
    /// `session-initiate`.
    SessionInitiate,
    /// `session-terminate`.
    SessionTerminate,
    /// `transport-accept`.
    TransportAccept,
    /// `transport-info`.
    TransportInfo,
    /// `transport-reject`.
    TransportReject,
    /// `transport-replace`.
    TransportReplace,
}

const ACTIONS: [(Action, &str); 15] = [
    (Action::ContentAccept, "content-accept"),
    (Action::ContentAdd, "content-add"),
    (Action::ContentModify, "content-modify"),
    (Action::ContentReject, "content-reject"),
    (Action::ContentRemove, "content-remove"),
    (Action::DescriptionInfo, "description-info"),
    (Action::SecurityInfo, "security-info"),
    (Action::SessionAccept, "session-accept"),
    (Action::SessionInfo, "session-info"),
    (Action::SessionInitiate, "session-initiate"),
    (Action::SessionTerminate, "session-terminate"),
    (Action::TransportAccept, "transport-accept"),
    (Action::TransportInfo, "transport-info"),
    (Action::TransportReject, "transport-reject"),
    (Action::TransportReplace, "transport-replace"),
];

impl Action {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("session-info", |(_, s)| s)
    }

    /// Parses an attribute value.
    pub fn parse(s: &str) -> Option<Action> {
        ACTIONS.iter().find(|(_, n)| *n == s).map(|(a, _)| *a)
    }

    /// All actions.
    pub fn all() -> impl Iterator<Item = Action> {
        ACTIONS.iter().map(|(a, _)| *a)
    }
}

/// Which party created a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Creator {
    /// `initiator`.
    Initiator,
    /// `responder`.
    Responder,
}

impl Creator {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Creator::Initiator => "initiator",
            Creator::Responder => "responder",
        }
    }

    /// Parses an attribute value.
    pub fn parse(s: &str) -> Option<Creator> {
        match s {
            "initiator" => Some(Creator::Initiator),
            "responder" => Some(Creator::Responder),
            _ => None,
        }
    }
}

/// Which parties send media of a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Senders {
    /// `both` (the default).
    #[default]
    Both,
    /// `initiator`.
    Initiator,
    /// `none`.
    None,
    /// `responder`.
    Responder,
}

impl Senders {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Senders::Both => "both",
            Senders::Initiator => "initiator",
            Senders::None => "none",
            Senders::Responder => "responder",
        }
    }

    /// Parses an attribute value.
    pub fn parse(s: &str) -> Option<Senders> {
        match s {
            "both" => Some(Senders::Both),
            "initiator" => Some(Senders::Initiator),
            "none" => Some(Senders::None),
            "responder" => Some(Senders::Responder),
            _ => None,
        }
    }
}

/// An application description.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Description {
    /// XEP-0234 file transfer.
    File(FileDescription),
    /// Any other application, kept as it came.
    Raw(Element),
}

impl Description {
    /// Parses a `<description/>` (any namespace).
    pub fn from_element(el: &Element) -> Result<Description, ParseError> {
        if el.is("description", NS_FT) {
            Ok(Description::File(FileDescription::from_element(el)?))
        } else {
            Ok(Description::Raw(el.clone()))
        }
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        match self {
            Description::File(f) => f.to_element(),
            Description::Raw(e) => e.clone(),
        }
    }

    /// The namespace of the application.
    pub fn ns(&self) -> String {
        match self {
            Description::File(_) => NS_FT.into(),
            Description::Raw(e) => e.ns(),
        }
    }
}

/// A transport method. SOCKS5 (XEP-0260) and others arrive as [`Transport::Raw`] until a typed variant
/// exists; the session machine treats every transport alike.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Transport {
    /// XEP-0261 in-band bytestreams.
    Ibb(IbbTransport),
    /// Any other transport, kept as it came.
    Raw(Element),
}

impl Transport {
    /// Parses a `<transport/>` (any namespace).
    pub fn from_element(el: &Element) -> Result<Transport, ParseError> {
        if el.is("transport", NS_JINGLE_IBB) {
            Ok(Transport::Ibb(IbbTransport::from_element(el)?))
        } else {
            Ok(Transport::Raw(el.clone()))
        }
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        match self {
            Transport::Ibb(t) => t.to_element(),
            Transport::Raw(e) => e.clone(),
        }
    }

    /// The namespace of the transport method.
    pub fn ns(&self) -> String {
        match self {
            Transport::Ibb(_) => NS_JINGLE_IBB.into(),
            Transport::Raw(e) => e.ns(),
        }
    }
}

/// A `<content/>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Which party created it.
    pub creator: Creator,
    /// Its name, unique per creator within the session.
    pub name: String,
    /// `disposition` (absent means `session`).
    pub disposition: Option<String>,
    /// `senders` (absent means `both`).
    pub senders: Option<Senders>,
    /// The application.
    pub description: Option<Description>,
    /// The transport.
    pub transport: Option<Transport>,
    /// The `<security/>` child, kept raw.
    pub security: Option<Element>,
    /// Other children, kept raw.
    pub extra: Vec<Element>,
}

impl Content {
    /// A content with only creator and name (as in content-remove or content-accept).
    pub fn new(creator: Creator, name: impl Into<String>) -> Content {
        Content {
            creator,
            name: name.into(),
            disposition: None,
            senders: None,
            description: None,
            transport: None,
            security: None,
            extra: Vec::new(),
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, d: Description) -> Self {
        self.description = Some(d);
        self
    }

    /// Sets the transport.
    pub fn with_transport(mut self, t: Transport) -> Self {
        self.transport = Some(t);
        self
    }

    /// Sets `senders`.
    pub fn with_senders(mut self, s: Senders) -> Self {
        self.senders = Some(s);
        self
    }

    /// The key of the content within its session.
    pub fn key(&self) -> (Creator, String) {
        (self.creator, self.name.clone())
    }

    /// Parses a `<content xmlns='urn:xmpp:jingle:1'/>`.
    pub fn from_element(el: &Element) -> Result<Content, ParseError> {
        let creator = el
            .attr("creator")
            .map(|c| {
                Creator::parse(c).ok_or(ParseError::InvalidValue {
                    element: "content",
                    reason: format!("creator={c:?}"),
                })
            })
            .transpose()?
            // Lenient: some clients omit it on responder-side actions; the initiator is the usual creator.
            .unwrap_or(Creator::Initiator);
        let name = id_attr(el, "content", "name")?;
        let senders = el
            .attr("senders")
            .map(|s| {
                Senders::parse(s).ok_or(ParseError::InvalidValue {
                    element: "content",
                    reason: format!("senders={s:?}"),
                })
            })
            .transpose()?;
        let disposition = el.attr("disposition").map(str::to_owned);
        let mut c = Content::new(creator, name);
        c.senders = senders;
        c.disposition = disposition;
        for child in el.children() {
            match child.name() {
                "description" if c.description.is_none() => {
                    c.description = Some(Description::from_element(child)?)
                }
                "transport" if c.transport.is_none() => {
                    c.transport = Some(Transport::from_element(child)?)
                }
                "security" if c.security.is_none() => c.security = Some(child.clone()),
                _ => {
                    if c.extra.len() >= MAX_PAYLOADS {
                        return Err(ParseError::TooLarge {
                            element: "content",
                            size: c.extra.len() + 1,
                            limit: MAX_PAYLOADS,
                        });
                    }
                    c.extra.push(child.clone())
                }
            }
        }
        Ok(c)
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("content", NS_JINGLE)
            .a("creator", self.creator.as_str())
            .a("name", self.name.clone())
            .a_opt("disposition", self.disposition.clone())
            .a_opt("senders", self.senders.map(|s| s.as_str()));
        if let Some(d) = &self.description {
            b = b.append(d.to_element());
        }
        if let Some(t) = &self.transport {
            b = b.append(t.to_element());
        }
        if let Some(s) = &self.security {
            b = b.append(s.clone());
        }
        for e in &self.extra {
            b = b.append(e.clone());
        }
        b.build()
    }
}

/// The defined conditions of a `<reason/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReasonCondition {
    /// `<alternative-session><sid/></alternative-session>`.
    AlternativeSession(String),
    /// `<busy/>`.
    Busy,
    /// `<cancel/>`.
    Cancel,
    /// `<connectivity-error/>`.
    ConnectivityError,
    /// `<decline/>`.
    Decline,
    /// `<expired/>`.
    Expired,
    /// `<failed-application/>`.
    FailedApplication,
    /// `<failed-transport/>`.
    FailedTransport,
    /// `<general-error/>`.
    GeneralError,
    /// `<gone/>`.
    Gone,
    /// `<incompatible-parameters/>`.
    IncompatibleParameters,
    /// `<media-error/>`.
    MediaError,
    /// `<security-error/>`.
    SecurityError,
    /// `<success/>`.
    Success,
    /// `<timeout/>`.
    Timeout,
    /// `<unsupported-applications/>`.
    UnsupportedApplications,
    /// `<unsupported-transports/>`.
    UnsupportedTransports,
    /// A condition this version does not know (kept by name).
    Other(String),
}

impl ReasonCondition {
    /// The element name.
    pub fn name(&self) -> &str {
        match self {
            ReasonCondition::AlternativeSession(_) => "alternative-session",
            ReasonCondition::Busy => "busy",
            ReasonCondition::Cancel => "cancel",
            ReasonCondition::ConnectivityError => "connectivity-error",
            ReasonCondition::Decline => "decline",
            ReasonCondition::Expired => "expired",
            ReasonCondition::FailedApplication => "failed-application",
            ReasonCondition::FailedTransport => "failed-transport",
            ReasonCondition::GeneralError => "general-error",
            ReasonCondition::Gone => "gone",
            ReasonCondition::IncompatibleParameters => "incompatible-parameters",
            ReasonCondition::MediaError => "media-error",
            ReasonCondition::SecurityError => "security-error",
            ReasonCondition::Success => "success",
            ReasonCondition::Timeout => "timeout",
            ReasonCondition::UnsupportedApplications => "unsupported-applications",
            ReasonCondition::UnsupportedTransports => "unsupported-transports",
            ReasonCondition::Other(n) => n,
        }
    }

    /// The condition of an element name (without `alternative-session`, which has a child); unknown
    /// names give [`ReasonCondition::Other`].
    pub fn from_name(name: &str) -> ReasonCondition {
        match name {
            "busy" => ReasonCondition::Busy,
            "cancel" => ReasonCondition::Cancel,
            "connectivity-error" => ReasonCondition::ConnectivityError,
            "decline" => ReasonCondition::Decline,
            "expired" => ReasonCondition::Expired,
            "failed-application" => ReasonCondition::FailedApplication,
            "failed-transport" => ReasonCondition::FailedTransport,
            "general-error" => ReasonCondition::GeneralError,
            "gone" => ReasonCondition::Gone,
            "incompatible-parameters" => ReasonCondition::IncompatibleParameters,
            "media-error" => ReasonCondition::MediaError,
            "security-error" => ReasonCondition::SecurityError,
            "success" => ReasonCondition::Success,
            "timeout" => ReasonCondition::Timeout,
            "unsupported-applications" => ReasonCondition::UnsupportedApplications,
            "unsupported-transports" => ReasonCondition::UnsupportedTransports,
            other => ReasonCondition::Other(other.chars().take(64).collect()),
        }
    }
}

/// A `<reason/>`: why a session or content ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// The condition.
    pub condition: ReasonCondition,
    /// `<text/>`.
    pub text: Option<String>,
    /// Application-specific conditions (e.g. XEP-0234's `<file-too-large/>`), kept raw.
    pub extra: Vec<Element>,
}

impl Reason {
    /// A reason with only a condition.
    pub fn new(condition: ReasonCondition) -> Reason {
        Reason {
            condition,
            text: None,
            extra: Vec::new(),
        }
    }

    /// Parses a `<reason/>`.
    pub fn from_element(el: &Element) -> Result<Reason, ParseError> {
        let mut condition = None;
        let mut text = None;
        let mut extra = Vec::new();
        for c in el.children() {
            if c.ns() != NS_JINGLE {
                if extra.len() < MAX_PAYLOADS {
                    extra.push(c.clone());
                }
                continue;
            }
            match c.name() {
                "text" => {
                    let t = c.text();
                    if t.len() > 4096 {
                        return Err(ParseError::TooLarge {
                            element: "reason/text",
                            size: t.len(),
                            limit: 4096,
                        });
                    }
                    text = Some(t)
                }
                "alternative-session" => {
                    let sid = c.get_child("sid", NS_JINGLE).map(|s| s.text()).ok_or(
                        ParseError::MissingChild {
                            element: "alternative-session",
                            child: "sid",
                        },
                    )?;
                    condition = Some(ReasonCondition::AlternativeSession(sid));
                }
                name if condition.is_none() => condition = Some(ReasonCondition::from_name(name)),
                _ => {}
            }
        }
        Ok(Reason {
            condition: condition.ok_or(ParseError::MissingChild {
                element: "reason",
                child: "condition",
            })?,
            text,
            extra,
        })
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        let cond = match &self.condition {
            ReasonCondition::AlternativeSession(sid) => {
                Element::builder("alternative-session", NS_JINGLE)
                    .append(
                        Element::builder("sid", NS_JINGLE)
                            .append(sid.clone())
                            .build(),
                    )
                    .build()
            }
            other => Element::bare(other.name(), NS_JINGLE),
        };
        let mut b = Element::builder("reason", NS_JINGLE).append(cond);
        if let Some(t) = &self.text {
            b = b.append(
                Element::builder("text", NS_JINGLE)
                    .append(t.clone())
                    .build(),
            );
        }
        for e in &self.extra {
            b = b.append(e.clone());
        }
        b.build()
    }
}

/// A `<jingle/>` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Jingle {
    /// The action.
    pub action: Action,
    /// The session id.
    pub sid: String,
    /// `initiator` (required in session-initiate by the XEP, optional elsewhere).
    pub initiator: Option<Jid>,
    /// `responder`.
    pub responder: Option<Jid>,
    /// The contents.
    pub contents: Vec<Content>,
    /// The reason.
    pub reason: Option<Reason>,
    /// Other children (session-info payloads and unknown extensions), kept raw.
    pub payloads: Vec<Element>,
}

fn id_attr(
    el: &Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<String, ParseError> {
    let v = el
        .attr(attribute)
        .ok_or(ParseError::MissingAttribute { element, attribute })?;
    if v.is_empty() || v.chars().count() > MAX_ID_CHARS {
        return Err(ParseError::InvalidValue {
            element,
            reason: format!("{attribute} is empty or longer than {MAX_ID_CHARS} characters"),
        });
    }
    Ok(v.to_owned())
}

fn jid_attr(el: &Element, attribute: &'static str) -> Result<Option<Jid>, ParseError> {
    el.attr(attribute)
        .map(|v| {
            Jid::new(v).map_err(|e| ParseError::InvalidValue {
                element: "jingle",
                reason: format!("{attribute}: {e}"),
            })
        })
        .transpose()
}

impl Jingle {
    /// A `<jingle/>` with no contents.
    pub fn new(action: Action, sid: impl Into<String>) -> Jingle {
        Jingle {
            action,
            sid: sid.into(),
            initiator: None,
            responder: None,
            contents: Vec::new(),
            reason: None,
            payloads: Vec::new(),
        }
    }

    /// Parses a `<jingle xmlns='urn:xmpp:jingle:1'/>`.
    pub fn from_element(el: &Element) -> Result<Jingle, ParseError> {
        if !el.is("jingle", NS_JINGLE) {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_JINGLE}}}jingle"),
                found: xmpp_social::xml::qname(el),
            });
        }
        let action_s = el.attr("action").ok_or(ParseError::MissingAttribute {
            element: "jingle",
            attribute: "action",
        })?;
        let action = Action::parse(action_s).ok_or(ParseError::InvalidValue {
            element: "jingle",
            reason: format!(
                "unknown action {:?}",
                action_s.chars().take(64).collect::<String>()
            ),
        })?;
        let mut j = Jingle::new(action, id_attr(el, "jingle", "sid")?);
        j.initiator = jid_attr(el, "initiator")?;
        j.responder = jid_attr(el, "responder")?;
        for c in el.children() {
            if c.is("content", NS_JINGLE) {
                if j.contents.len() >= MAX_CONTENTS {
                    return Err(ParseError::TooLarge {
                        element: "jingle",
                        size: j.contents.len() + 1,
                        limit: MAX_CONTENTS,
                    });
                }
                j.contents.push(Content::from_element(c)?);
            } else if c.is("reason", NS_JINGLE) && j.reason.is_none() {
                j.reason = Some(Reason::from_element(c)?);
            } else {
                if j.payloads.len() >= MAX_PAYLOADS {
                    return Err(ParseError::TooLarge {
                        element: "jingle",
                        size: j.payloads.len() + 1,
                        limit: MAX_PAYLOADS,
                    });
                }
                j.payloads.push(c.clone());
            }
        }
        Ok(j)
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("jingle", NS_JINGLE)
            .a("action", self.action.as_str())
            .a("sid", self.sid.clone())
            .a_opt("initiator", self.initiator.as_ref().map(|j| j.to_string()))
            .a_opt("responder", self.responder.as_ref().map(|j| j.to_string()));
        for c in &self.contents {
            b = b.append(c.to_element());
        }
        if let Some(r) = &self.reason {
            b = b.append(r.to_element());
        }
        for p in &self.payloads {
            b = b.append(p.clone());
        }
        b.build()
    }
}

/// The Jingle-specific error conditions (`urn:xmpp:jingle:errors:1`) put next to a stanza error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JingleErrorCondition {
    /// `<out-of-order/>` (with `unexpected-request`).
    OutOfOrder,
    /// `<tie-break/>` (with `conflict`).
    TieBreak,
    /// `<unknown-session/>` (with `item-not-found`).
    UnknownSession,
    /// `<unsupported-info/>` (with `feature-not-implemented`).
    UnsupportedInfo,
    /// `<security-required/>` (with `not-acceptable`).
    SecurityRequired,
}

impl JingleErrorCondition {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            JingleErrorCondition::OutOfOrder => "out-of-order",
            JingleErrorCondition::TieBreak => "tie-break",
            JingleErrorCondition::UnknownSession => "unknown-session",
            JingleErrorCondition::UnsupportedInfo => "unsupported-info",
            JingleErrorCondition::SecurityRequired => "security-required",
        }
    }

    /// Finds the Jingle condition in a stanza error's extension element.
    pub fn from_element(el: &Element) -> Option<JingleErrorCondition> {
        if el.ns() != NS_JINGLE_ERRORS {
            return None;
        }
        [
            JingleErrorCondition::OutOfOrder,
            JingleErrorCondition::TieBreak,
            JingleErrorCondition::UnknownSession,
            JingleErrorCondition::UnsupportedInfo,
            JingleErrorCondition::SecurityRequired,
        ]
        .into_iter()
        .find(|c| c.name() == el.name())
    }
}
