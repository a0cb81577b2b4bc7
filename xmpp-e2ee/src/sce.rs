//! Stanza Content Encryption (XEP-0420, `urn:xmpp:sce:1`): the `<envelope/>` that end-to-end encryption
//! protocols (OMEMO:2, OpenPGP for XMPP) encrypt instead of a bare `<body/>`.
//!
//! An [`Envelope`] holds the stanza content to protect (`<content/>`: a body, reactions, OOB links, any
//! extension element) and the affix elements that bind it to its context:
//!
//! | affix | XEP-0420 | OMEMO:2 profile (XEP-0384 §5.4.1) | here |
//! |---|---|---|---|
//! | `<rpad/>` | random padding, never verified; longer paddings MUST NOT be rejected | MUST | [`Envelope::for_omemo`] pads; parsing accepts any length within [`MAX_ENVELOPE_BYTES`] |
//! | `<from/>` | bare JID of the sender; receivers MUST check it against the stanza | SHOULD | [`Envelope::check`] requires it (policy) and compares bare JIDs |
//! | `<to/>` | bare JID of the recipient; receivers MUST check it against the stanza | MUST in group chats | checked when present (bare); [`Envelope::check_groupchat`] requires it |
//! | `<time/>` | XEP-0082 stamp; receivers MUST check it against the stanza's sending time | MAY | [`Envelope::check`] refuses stamps more than [`MAX_FUTURE_SKEW`] ahead of the local clock (policy); [`Envelope::check_stanza_time`] compares with a stanza's delay stamp |
//!
//! **Server-processed elements** (XEP-0420 §8) must stay outside the encryption: XEP-0334 hints
//! (`urn:xmpp:hints`), XEP-0359 `<stanza-id/>` (`<origin-id/>` is allowed inside), XEP-0033 addressing
//! (`http://jabber.org/protocol/address`) and XEP-0380 `<encryption/>` (`urn:xmpp:eme:0`). As a policy this
//! module adds XEP-0280's `<private/>` and `<no-copy/>` (`urn:xmpp:carbons:2`), which only a server acts on.
//! See [`is_server_processed`]:
//!
//! * when receiving, [`Envelope::from_bytes`] discards such elements found inside `<content/>` (the XEP says
//!   discard, not reject; [`Envelope::from_bytes_detailed`] tells which were dropped);
//! * when sending, [`Envelope::to_element`] and [`Envelope::to_bytes`] never write them inside the envelope,
//!   and [`Envelope::try_to_bytes`] refuses them with [`SceError::ForbiddenContent`]; use
//!   [`split_server_processed`] to move them to the plain stanza.
//!
//! Content children must be namespace-qualified (XEP-0420 §9: a `<body/>` must be in `jabber:client`): a
//! child without its own namespace (which XML gives the SCE namespace) is refused with
//! [`SceError::UnqualifiedContent`]; this also refuses a nested `<envelope/>`, which would otherwise end up
//! unencrypted in the recreated stanza.
//!
//! Parsing is bounded ([`MAX_ENVELOPE_BYTES`], and [`xmpp_social::xml::MAX_XML_DEPTH`] nesting) and every
//! malformed or hostile input gives a typed [`SceError`].

use chrono::{DateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use rand::Rng;
use xmpp_social::error::ParseError;
use xmpp_social::xml::{parse_bounded, BuilderExt};

/// The namespace of XEP-0420 version 0.4+.
pub const NS_SCE: &str = "urn:xmpp:sce:1";

/// The largest serialised envelope [`Envelope::from_bytes`] accepts (256 KiB, the stanza size limit of
/// common server configurations; an encrypted envelope travels base64-encoded, so a larger one could not
/// have arrived in one stanza anyway).
pub const MAX_ENVELOPE_BYTES: usize = 256 * 1024;

/// How far ahead of the local clock a `<time/>` stamp may be before [`Envelope::check`] refuses it
/// (5 minutes: clock skew between devices; a policy, XEP-0420 leaves the margin to the implementation).
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The most random characters [`Envelope::for_omemo`] adds on top of the minimum size (XEP-0420 §4:
/// "between 0 and 200 characters").
pub const MAX_RANDOM_PADDING: usize = 200;

/// The size (bytes of serialised `<envelope/>`) that [`Envelope::for_omemo`] pads short envelopes up to
/// before adding the random part (XEP-0420 0.5 asks for "a fixed minimum size" without giving one; this
/// covers a short chat message with its affixes, so "ok" and a sentence look alike).
pub const MIN_PADDED_ENVELOPE_BYTES: usize = 256;

/// Longest attacker-controlled value quoted in an error message.
const QUOTE_LIMIT: usize = 80;

/// Characters of the random padding: printable ASCII without the characters XML escapes, so one
/// character is one byte on the wire.
const RPAD_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%()*+,-./:;=?@[]^_`{|}~";

/// What went wrong with an envelope (parsing, writing or the receipt checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SceError {
    /// The decrypted bytes are not UTF-8.
    #[error("the envelope is not UTF-8")]
    NotUtf8,
    /// The decrypted bytes are not well-formed XML.
    #[error("malformed envelope XML: {0}")]
    Xml(String),
    /// The envelope is larger than accepted.
    #[error("the envelope is too large: {size} > {limit} bytes")]
    TooLarge {
        /// Size found.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The envelope nests deeper than accepted.
    #[error("the envelope nests too deep: {depth} > {limit}")]
    TooDeep {
        /// Depth found (at least).
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// The root element is not `<envelope xmlns='urn:xmpp:sce:1'/>`.
    #[error("expected <envelope xmlns='urn:xmpp:sce:1'/>, found <{found}/>")]
    NotAnEnvelope {
        /// `{namespace}name` of the root element.
        found: String,
    },
    /// The envelope has no `<content/>`.
    #[error("the envelope has no <content/>")]
    MissingContent,
    /// `<content/>` or an affix appears more than once.
    #[error("<{0}/> appears more than once in the envelope")]
    Duplicate(&'static str),
    /// An affix lacks its required attribute.
    #[error("<{element}/> lacks the required '{attribute}' attribute")]
    MissingAttribute {
        /// The affix element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// A `<from/>` or `<to/>` affix holds an invalid JID.
    #[error("<{element}/> holds an invalid JID {value:?}: {reason}")]
    BadJid {
        /// `from` or `to`.
        element: &'static str,
        /// The value (truncated).
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A `<time/>` affix holds no valid XEP-0082 date-time.
    #[error("<time/> holds an invalid XEP-0082 date-time {value:?}")]
    BadTime {
        /// The value (truncated).
        value: String,
    },
    /// A content child has no namespace of its own (XEP-0420 §9 requires one).
    #[error("content child <{name}/> has no namespace of its own")]
    UnqualifiedContent {
        /// Its name.
        name: String,
    },
    /// Sending: a server-processed element (see [`is_server_processed`]) was put inside the envelope.
    #[error("<{name} xmlns='{namespace}'/> must be sent outside the envelope")]
    ForbiddenContent {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Sending: the content cannot be written as XML 1.0 (forbidden characters or an invalid name).
    #[error("the content cannot be serialised: {0}")]
    Unserialisable(String),
    /// Receipt check: the envelope has no `<from/>` affix.
    #[error("the envelope has no <from/> affix")]
    MissingFrom,
    /// Receipt check: the envelope has no `<to/>` affix (required in group chats).
    #[error("the envelope has no <to/> affix")]
    MissingTo,
    /// Receipt check: `<from/>` names someone else than the stanza's sender.
    #[error("the envelope claims to be from {claimed}, the stanza comes from {actual}")]
    FromMismatch {
        /// Bare JID in the envelope.
        claimed: String,
        /// Bare JID of the stanza's sender.
        actual: String,
    },
    /// Receipt check: `<to/>` names someone else than the stanza's recipient.
    #[error("the envelope is addressed to {claimed}, the stanza to {actual}")]
    ToMismatch {
        /// Bare JID in the envelope.
        claimed: String,
        /// Bare JID of the stanza's recipient (or room).
        actual: String,
    },
    /// Receipt check: the `<time/>` stamp is too far in the future.
    #[error("the envelope is stamped {stamp}, more than {skew_secs} s ahead of {now}")]
    TimeInFuture {
        /// The stamp.
        stamp: DateTime<Utc>,
        /// The local time of the check.
        now: DateTime<Utc>,
        /// The tolerated skew in seconds.
        skew_secs: i64,
    },
    /// Receipt check: the `<time/>` stamp and the stanza's sending time differ too much (replay or a
    /// misconfigured clock).
    #[error("the envelope is stamped {stamp}, the stanza was sent at {stanza_time}")]
    TimeMismatch {
        /// The stamp.
        stamp: DateTime<Utc>,
        /// The stanza's sending time.
        stanza_time: DateTime<Utc>,
    },
}

/// A server-processed element that [`Envelope::from_bytes_detailed`] discarded from `<content/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedElement {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// A XEP-0420 `<envelope/>`: the content to encrypt and its affixes.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Children of `<content/>`: any namespace-qualified stanza content (body, reactions, ...).
    pub content: Vec<Element>,
    /// `<rpad/>`: random padding (its text).
    pub rpad: Option<String>,
    /// `<from/>`: the sender (a bare JID per the XEP; full JIDs are read and compared bare).
    pub from: Option<Jid>,
    /// `<to/>`: the recipient, or the room in a group chat.
    pub to: Option<Jid>,
    /// `<time/>`: when the sender encrypted the stanza.
    pub time: Option<DateTime<Utc>>,
}

/// Whether `el` is a server-processed element that must travel outside the envelope (see the module
/// documentation for the list and which entries are policy).
pub fn is_server_processed(el: &Element) -> bool {
    match el.ns().as_str() {
        // XEP-0334, XEP-0033, XEP-0380: every element of these namespaces.
        "urn:xmpp:hints" | "http://jabber.org/protocol/address" | "urn:xmpp:eme:0" => true,
        // XEP-0359: stanza-id only; origin-id may be encrypted.
        "urn:xmpp:sid:0" => el.name() == "stanza-id",
        // Policy: XEP-0280 instructions to the server.
        "urn:xmpp:carbons:2" => matches!(el.name(), "private" | "no-copy"),
        _ => false,
    }
}

/// Splits stanza content into what goes inside the envelope and what is sent as plain stanza children
/// (the server-processed elements), keeping the order within each part.
pub fn split_server_processed(elements: Vec<Element>) -> (Vec<Element>, Vec<Element>) {
    elements.into_iter().partition(|e| !is_server_processed(e))
}

fn quote(s: &str) -> String {
    if s.len() <= QUOTE_LIMIT {
        return s.to_owned();
    }
    let mut end = QUOTE_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn qname(el: &Element) -> String {
    quote(&format!("{{{}}}{}", el.ns(), el.name()))
}

/// Formats a XEP-0082 date-time in UTC (`Z`, fractional seconds only when present).
fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses a XEP-0082 DateTime (`CCYY-MM-DDThh:mm:ss[.sss]TZD`, TZD mandatory).
fn parse_time(s: &str) -> Result<DateTime<Utc>, SceError> {
    let bad = || SceError::BadTime { value: quote(s) };
    // chrono's RFC 3339 parser also takes 't' or ' ' as separator and a lowercase 'z'; XEP-0082 does not.
    if s.len() > 64 || s.as_bytes().get(10) != Some(&b'T') || s.ends_with('z') {
        return Err(bad());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| bad())
}

fn parse_jid(element: &'static str, value: &str) -> Result<Jid, SceError> {
    Jid::new(value).map_err(|e| SceError::BadJid {
        element,
        value: quote(value),
        reason: e.to_string(),
    })
}

fn affix_attr<'a>(
    el: &'a Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str, SceError> {
    el.attr(attribute)
        .ok_or(SceError::MissingAttribute { element, attribute })
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), SceError> {
    if slot.is_some() {
        return Err(SceError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// Serialises `el`, refusing (instead of panicking like minidom's writer) what XML 1.0 cannot hold.
fn write_checked(el: &Element) -> Result<Vec<u8>, SceError> {
    xmpp_social::xml::to_xml_string(el)
        .map(String::into_bytes)
        .map_err(|e| SceError::Unserialisable(e.to_string()))
}

/// Name and namespace of the wrapper [`Envelope::from_bytes_with_limit`] parses the text in.
const WRAPPER: &str = "sce-document";
const NS_WRAPPER: &str = "urn:xmpp:sce:1#document";
const WRAPPER_END: &str = "</sce-document";

/// The text after an optional byte-order mark and `<?xml ...?>` declaration (neither can appear inside
/// the wrapper).
fn strip_xml_declaration(text: &str) -> &str {
    let trimmed = text.trim_start_matches('\u{feff}');
    match trimmed.strip_prefix("<?xml") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_whitespace()) => {
            rest.find("?>").map_or(trimmed, |end| &rest[end + 2..])
        }
        _ => trimmed,
    }
}

fn random_padding(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(RPAD_ALPHABET[rng.random_range(0..RPAD_ALPHABET.len())]))
        .collect()
}

impl Envelope {
    /// An envelope around `content`, without affixes.
    pub fn new(content: Vec<Element>) -> Self {
        Envelope {
            content,
            rpad: None,
            from: None,
            to: None,
            time: None,
        }
    }

    /// An envelope as the OMEMO:2 SCE profile wants it: `<rpad/>` (the envelope padded to
    /// [`MIN_PADDED_ENVELOPE_BYTES`], then 0 to [`MAX_RANDOM_PADDING`] random characters on top),
    /// `<from/>` (the sender's bare JID), `<to/>` (the recipient's bare JID, or the room for a group chat:
    /// pass the room's JID) and `<time/>` (now, to the second).
    pub fn for_omemo(content: Vec<Element>, from: &BareJid, to: &jid::Jid) -> Self {
        let mut env = Envelope {
            content,
            rpad: None,
            from: Some(Jid::from(from.clone())),
            to: Some(Jid::from(to.to_bare())),
            time: Some(Utc::now().trunc_subsecs(0)),
        };
        // `<rpad></rpad>` adds 13 bytes around the padding itself.
        let unpadded = env.to_bytes().len() + "<rpad></rpad>".len();
        let fill = MIN_PADDED_ENVELOPE_BYTES.saturating_sub(unpadded);
        let random = rand::rng().random_range(0..=MAX_RANDOM_PADDING);
        env.rpad = Some(random_padding(fill + random));
        env
    }

    /// The `<envelope/>` element. Server-processed content (see [`is_server_processed`]) is left out.
    pub fn to_element(&self) -> Element {
        self.build(|c| !is_server_processed(c))
    }

    fn build(&self, keep: impl Fn(&Element) -> bool) -> Element {
        let content = Element::builder("content", NS_SCE)
            .append_all(self.content.iter().filter(|c| keep(c)).cloned())
            .build();
        let mut b = Element::builder("envelope", NS_SCE).append(content);
        if let Some(rpad) = &self.rpad {
            b = b.append(Element::builder("rpad", NS_SCE).append(rpad.as_str()));
        }
        if let Some(from) = &self.from {
            b = b.append(Element::builder("from", NS_SCE).a("jid", from.as_str()));
        }
        if let Some(to) = &self.to {
            b = b.append(Element::builder("to", NS_SCE).a("jid", to.as_str()));
        }
        if let Some(time) = &self.time {
            b = b.append(Element::builder("time", NS_SCE).a("stamp", format_time(time)));
        }
        b.build()
    }

    /// The serialised `<envelope/>` (UTF-8 XML, no XML declaration): the plaintext to encrypt.
    ///
    /// Never fails and never panics: server-processed content is left out (as in [`Self::to_element`]),
    /// and a content child that cannot be written as XML 1.0 (a forbidden control character, an invalid
    /// element name) is left out too. [`Self::try_to_bytes`] refuses both instead.
    pub fn to_bytes(&self) -> Vec<u8> {
        if let Ok(bytes) = write_checked(&self.to_element()) {
            return bytes;
        }
        let mut env = self.clone();
        env.content
            .retain(|c| !is_server_processed(c) && write_checked(c).is_ok());
        if let Ok(bytes) = write_checked(&env.to_element()) {
            return bytes;
        }
        // The affixes are written from JIDs, a date and the padding: only a padding the caller filled
        // with forbidden characters can fail; drop it.
        env.rpad = None;
        write_checked(&env.to_element()).unwrap_or_default()
    }

    /// The serialised `<envelope/>`, refusing server-processed content
    /// ([`SceError::ForbiddenContent`]) and anything XML 1.0 cannot hold ([`SceError::Unserialisable`]).
    pub fn try_to_bytes(&self) -> Result<Vec<u8>, SceError> {
        if let Some(c) = self.content.iter().find(|c| is_server_processed(c)) {
            return Err(SceError::ForbiddenContent {
                namespace: c.ns(),
                name: c.name().to_owned(),
            });
        }
        write_checked(&self.build(|_| true))
    }

    /// Parses decrypted bytes (at most [`MAX_ENVELOPE_BYTES`]); server-processed content is discarded.
    pub fn from_bytes(data: &[u8]) -> Result<Self, SceError> {
        Self::from_bytes_detailed(data).map(|(env, _)| env)
    }

    /// Like [`Self::from_bytes`], also returning the server-processed elements that were discarded.
    pub fn from_bytes_detailed(data: &[u8]) -> Result<(Self, Vec<DroppedElement>), SceError> {
        Self::from_bytes_with_limit(data, MAX_ENVELOPE_BYTES)
    }

    /// Like [`Self::from_bytes_detailed`] with another size limit.
    pub fn from_bytes_with_limit(
        data: &[u8],
        max_bytes: usize,
    ) -> Result<(Self, Vec<DroppedElement>), SceError> {
        if data.len() > max_bytes {
            return Err(SceError::TooLarge {
                size: data.len(),
                limit: max_bytes,
            });
        }
        let text = std::str::from_utf8(data).map_err(|_| SceError::NotUtf8)?;
        // minidom stops at the end of the first element and ignores what follows; XEP-0420 wants invalid
        // XML rejected, so the text is parsed inside a wrapper that must hold exactly one element.
        let body = strip_xml_declaration(text);
        // minidom would also ignore whatever follows the wrapper's end tag, so none may come early.
        if body.contains(WRAPPER_END) {
            return Err(SceError::Xml(format!("unexpected {WRAPPER_END}")));
        }
        let wrapped = format!("<{WRAPPER} xmlns='{NS_WRAPPER}'>{body}</{WRAPPER}>");
        let doc = parse_bounded(
            &wrapped,
            max_bytes.saturating_add(wrapped.len() - body.len()),
        )
        .map_err(|e| match e {
            ParseError::TooLarge {
                element: "document",
                size,
                limit,
            } => SceError::TooLarge { size, limit },
            ParseError::TooLarge { size, limit, .. } => SceError::TooDeep { depth: size, limit },
            other => SceError::Xml(other.to_string()),
        })?;
        if doc.texts().any(|t| !t.trim().is_empty()) {
            return Err(SceError::Xml("text outside the root element".to_owned()));
        }
        let mut roots = doc.children();
        match (roots.next(), roots.next()) {
            (Some(el), None) => Self::from_element_detailed(el),
            (None, _) => Err(SceError::Xml("no root element".to_owned())),
            (Some(_), Some(_)) => Err(SceError::Xml("more than one root element".to_owned())),
        }
    }

    /// Reads an already parsed `<envelope/>`; server-processed content is discarded.
    pub fn from_element(el: &Element) -> Result<Self, SceError> {
        Self::from_element_detailed(el).map(|(env, _)| env)
    }

    /// Like [`Self::from_element`], also returning the discarded server-processed elements.
    pub fn from_element_detailed(el: &Element) -> Result<(Self, Vec<DroppedElement>), SceError> {
        if !el.is("envelope", NS_SCE) {
            return Err(SceError::NotAnEnvelope { found: qname(el) });
        }
        let mut content = None;
        let mut rpad = None;
        let mut from = None;
        let mut to = None;
        let mut time = None;
        let mut dropped = Vec::new();
        for child in el.children() {
            if child.ns() != NS_SCE {
                // Protocol-specific affixes of other namespaces: allowed by the schema, not ours to read.
                continue;
            }
            match child.name() {
                "content" => {
                    let mut kept = Vec::new();
                    for c in child.children() {
                        let ns = c.ns();
                        if ns.is_empty() || ns == NS_SCE {
                            return Err(SceError::UnqualifiedContent {
                                name: quote(c.name()),
                            });
                        }
                        if is_server_processed(c) {
                            dropped.push(DroppedElement {
                                namespace: quote(&ns),
                                name: quote(c.name()),
                            });
                        } else {
                            kept.push(c.clone());
                        }
                    }
                    set_once(&mut content, kept, "content")?;
                }
                "rpad" => set_once(&mut rpad, child.text(), "rpad")?,
                "from" => {
                    let jid = parse_jid("from", affix_attr(child, "from", "jid")?)?;
                    set_once(&mut from, jid, "from")?;
                }
                "to" => {
                    let jid = parse_jid("to", affix_attr(child, "to", "jid")?)?;
                    set_once(&mut to, jid, "to")?;
                }
                "time" => {
                    let stamp = parse_time(affix_attr(child, "time", "stamp")?)?;
                    set_once(&mut time, stamp, "time")?;
                }
                // Unknown children in our namespace: future affixes, ignored like foreign ones.
                _ => {}
            }
        }
        let content = content.ok_or(SceError::MissingContent)?;
        Ok((
            Envelope {
                content,
                rpad,
                from,
                to,
                time,
            },
            dropped,
        ))
    }

    /// The receipt checks for a one-to-one stanza, against the local clock. See [`Self::check_at`].
    pub fn check(&self, sender: &BareJid, recipient: &Jid) -> Result<(), SceError> {
        self.check_at(sender, recipient, Utc::now())
    }

    /// The receipt checks, at time `now`:
    ///
    /// * `<from/>` must be present and name `sender` (the stanza's sender; in a group chat the
    ///   occupant's real bare JID), compared as bare JIDs. XEP-0420 requires the comparison when the
    ///   affix is present; requiring its presence is this crate's policy (OMEMO:2 says SHOULD), since an
    ///   envelope without it could be replayed under another sender's name.
    /// * `<to/>`, when present, must name `recipient` compared as bare JIDs (for one-to-one stanzas the
    ///   own account, for group chats the room's JID). XEP-0420 requires this comparison.
    /// * `<time/>`, when present, must not be more than [`MAX_FUTURE_SKEW`] ahead of `now`. XEP-0420
    ///   requires comparing the stamp with the stanza's sending time within "a reasonable margin" and
    ///   leaves the margin open; refusing only the future is this crate's policy, since messages
    ///   delivered late (offline storage, MAM) are legitimately old. Callers that know the sending time
    ///   (a XEP-0203 delay stamp) add [`Self::check_stanza_time`].
    ///
    /// `<rpad/>` is never checked (XEP-0420: longer paddings MUST NOT be rejected, and a missing padding
    /// only hurts the sender).
    pub fn check_at(
        &self,
        sender: &BareJid,
        recipient: &Jid,
        now: DateTime<Utc>,
    ) -> Result<(), SceError> {
        let from = self.from.as_ref().ok_or(SceError::MissingFrom)?;
        if from.to_bare() != *sender {
            return Err(SceError::FromMismatch {
                claimed: quote(from.to_bare().as_str()),
                actual: sender.to_string(),
            });
        }
        if let Some(to) = &self.to {
            let expected = recipient.to_bare();
            if to.to_bare() != expected {
                return Err(SceError::ToMismatch {
                    claimed: quote(to.to_bare().as_str()),
                    actual: expected.to_string(),
                });
            }
        }
        if let Some(stamp) = self.time {
            if stamp > now + MAX_FUTURE_SKEW {
                return Err(SceError::TimeInFuture {
                    stamp,
                    now,
                    skew_secs: MAX_FUTURE_SKEW.num_seconds(),
                });
            }
        }
        Ok(())
    }

    /// The receipt checks for a group chat message: those of [`Self::check`] with `room` as recipient,
    /// and `<to/>` must be present (the OMEMO:2 profile makes it mandatory in group chats so that a server
    /// cannot turn a group message into a private one or back).
    pub fn check_groupchat(&self, sender: &BareJid, room: &BareJid) -> Result<(), SceError> {
        if self.to.is_none() {
            return Err(SceError::MissingTo);
        }
        self.check(sender, &Jid::from(room.clone()))
    }

    /// Compares `<time/>` with the stanza's sending time (e.g. a XEP-0203 delay stamp): refused when they
    /// differ by more than `tolerance` either way. Passes when the envelope has no `<time/>` (the OMEMO:2
    /// profile makes it optional).
    pub fn check_stanza_time(
        &self,
        stanza_time: DateTime<Utc>,
        tolerance: TimeDelta,
    ) -> Result<(), SceError> {
        match self.time {
            Some(stamp) if (stamp - stanza_time).abs() > tolerance => {
                Err(SceError::TimeMismatch { stamp, stanza_time })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(text: &str) -> Element {
        Element::builder("body", "jabber:client")
            .append(text)
            .build()
    }

    #[test]
    fn omemo_envelope_is_padded_and_round_trips() {
        let from = BareJid::new("alice@example.org").unwrap();
        let to = Jid::new("bob@example.org/phone").unwrap();
        for _ in 0..50 {
            let env = Envelope::for_omemo(vec![body("ok")], &from, &to);
            assert_eq!(env.to.as_ref().unwrap().as_str(), "bob@example.org");
            let bytes = env.to_bytes();
            assert!(bytes.len() >= MIN_PADDED_ENVELOPE_BYTES, "{}", bytes.len());
            assert!(bytes.len() <= MIN_PADDED_ENVELOPE_BYTES + MAX_RANDOM_PADDING);
            let back = Envelope::from_bytes(&bytes).unwrap();
            assert_eq!(back, env);
            back.check(&from, &Jid::new("bob@example.org").unwrap())
                .unwrap();
        }
        // Long content: only the random part is added.
        let long = "x".repeat(1000);
        let env = Envelope::for_omemo(vec![body(&long)], &from, &to);
        assert!(env.rpad.as_ref().unwrap().len() <= MAX_RANDOM_PADDING);
    }

    #[test]
    fn time_format() {
        assert!(parse_time("2004-01-25T06:05:00+01:00").is_ok());
        assert!(parse_time("2004-01-25T06:05:00.123Z").is_ok());
        for bad in [
            "2004-01-25 06:05:00Z",
            "2004-01-25t06:05:00Z",
            "2004-01-25T06:05:00z",
            "2004-01-25T06:05:00",
            "2004-01-25",
            "",
            "2004-13-25T06:05:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unserialisable_content_never_panics() {
        let mut bad = body("fine");
        bad.append_text_node("\u{0}");
        let env = Envelope::new(vec![bad, body("kept")]);
        assert!(matches!(
            env.try_to_bytes(),
            Err(SceError::Unserialisable(_))
        ));
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        assert_eq!(back.content, vec![body("kept")]);
        let mut env = Envelope::new(vec![body("a")]);
        env.rpad = Some("\u{1}".to_owned());
        let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
        assert_eq!(back.rpad, None);
        assert_eq!(back.content, vec![body("a")]);
    }
}
