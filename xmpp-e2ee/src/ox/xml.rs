//! The XML of XEP-0373: `<openpgp/>`, the content elements (`<signcrypt/>`, `<sign/>`, `<crypt/>`),
//! `<pubkey/>`, `<public-keys-list/>` and `<secretkey/>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use jid::BareJid;
use minidom::Element;
use rand::Rng;
use xmpp_social::error::ParseError;
use xmpp_social::xml::{expect_element, parse_bounded, BuilderExt};

use super::error::OxError;
use super::pgp::{MAX_KEY_BYTES, MAX_MESSAGE_BYTES, MAX_PLAINTEXT_BYTES};
use super::NS_OX;

/// The most `<to/>` elements a content element may carry.
pub const MAX_RECIPIENTS: usize = 256;
/// The most keys a `<public-keys-list/>` may announce.
pub const MAX_ANNOUNCED_KEYS: usize = 64;
/// Longest random padding written in `<rpad/>`.
pub const MAX_RPAD: usize = 200;

const RPAD_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%()*+,-./:;=?@[]^_{|}~";

fn invalid(element: &'static str, reason: impl Into<String>) -> OxError {
    OxError::Parse(ParseError::InvalidValue {
        element,
        reason: reason.into(),
    })
}

/// Decodes base64 text, ignoring whitespace (line breaks, indentation), bounded by `limit` decoded
/// bytes.
pub fn decode_base64(element: &'static str, text: &str, limit: usize) -> Result<Vec<u8>, OxError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // 4 characters encode 3 bytes.
    let max_chars = limit.saturating_add(2) / 3 * 4;
    if compact.len() > max_chars {
        return Err(OxError::TooLarge {
            what: element,
            size: compact.len() / 4 * 3,
            limit,
        });
    }
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| OxError::Base64(element))
}

/// `<openpgp xmlns='urn:xmpp:openpgp:0'>`: one binary OpenPGP message, base64 in the element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPgp {
    /// The OpenPGP message (unarmored).
    pub message: Vec<u8>,
}

impl OpenPgp {
    /// Reads the element (the message is at most [`MAX_MESSAGE_BYTES`]).
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        expect_element(el, NS_OX, "openpgp")?;
        let message = decode_base64("openpgp", &el.text(), MAX_MESSAGE_BYTES)?;
        if message.is_empty() {
            return Err(invalid("openpgp", "empty"));
        }
        Ok(OpenPgp { message })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Element::builder("openpgp", NS_OX)
            .append(STANDARD.encode(&self.message))
            .build()
    }
}

/// Which content element (XEP-0373 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// `<signcrypt/>`: signed and encrypted.
    Signcrypt,
    /// `<sign/>`: signed, not encrypted.
    Sign,
    /// `<crypt/>`: encrypted, not signed.
    Crypt,
}

impl ContentKind {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::Signcrypt => "signcrypt",
            ContentKind::Sign => "sign",
            ContentKind::Crypt => "crypt",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "signcrypt" => Some(ContentKind::Signcrypt),
            "sign" => Some(ContentKind::Sign),
            "crypt" => Some(ContentKind::Crypt),
            _ => None,
        }
    }

    /// Whether the OpenPGP message must be signed.
    pub fn signed(self) -> bool {
        matches!(self, ContentKind::Signcrypt | ContentKind::Sign)
    }

    /// Whether the OpenPGP message must be encrypted.
    pub fn encrypted(self) -> bool {
        matches!(self, ContentKind::Signcrypt | ContentKind::Crypt)
    }
}

/// An OpenPGP content element: `<signcrypt/>`, `<sign/>` or `<crypt/>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Which element.
    pub kind: ContentKind,
    /// The intended recipients (`<to jid/>`; at least one for `<signcrypt/>` and `<sign/>`).
    pub to: Vec<BareJid>,
    /// `<time stamp/>`.
    pub time: DateTime<FixedOffset>,
    /// `<rpad/>` text, if any.
    pub rpad: Option<String>,
    /// The children of `<payload/>`.
    pub payload: Vec<Element>,
}

impl Content {
    /// A content element stamped now, with random padding for `<signcrypt/>` and `<crypt/>`.
    pub fn new(kind: ContentKind, to: Vec<BareJid>, payload: Vec<Element>) -> Self {
        let rpad = match kind {
            ContentKind::Sign => None,
            _ => Some(random_padding()),
        };
        Content {
            kind,
            to,
            time: Utc::now().fixed_offset(),
            rpad,
            payload,
        }
    }

    /// Reads a content element.
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        if el.ns() != NS_OX {
            return Err(OxError::Parse(ParseError::WrongElement {
                expected: format!("{{{NS_OX}}}signcrypt|sign|crypt"),
                found: xmpp_social::xml::qname(el),
            }));
        }
        let kind = ContentKind::from_name(el.name()).ok_or_else(|| {
            OxError::Parse(ParseError::WrongElement {
                expected: format!("{{{NS_OX}}}signcrypt|sign|crypt"),
                found: xmpp_social::xml::qname(el),
            })
        })?;
        let mut to = Vec::new();
        let mut time = None;
        let mut rpad = None;
        let mut payload = None;
        for child in el.children() {
            if child.ns() != NS_OX {
                continue;
            }
            match child.name() {
                "to" => {
                    let jid = child.attr("jid").ok_or(ParseError::MissingAttribute {
                        element: "to",
                        attribute: "jid",
                    })?;
                    let jid = jid::Jid::new(jid).map_err(|e| invalid("to", e.to_string()))?;
                    if to.len() >= MAX_RECIPIENTS {
                        return Err(OxError::TooLarge {
                            what: "<to/> list",
                            size: to.len() + 1,
                            limit: MAX_RECIPIENTS,
                        });
                    }
                    // XEP-0373: SHOULD be bare; a full JID names its bare JID's account.
                    to.push(jid.to_bare());
                }
                "time" => {
                    if time.is_some() {
                        return Err(invalid("time", "more than one <time/>"));
                    }
                    let stamp = child.attr("stamp").ok_or(ParseError::MissingAttribute {
                        element: "time",
                        attribute: "stamp",
                    })?;
                    time = Some(
                        DateTime::parse_from_rfc3339(stamp.trim())
                            .map_err(|e| invalid("time", e.to_string()))?,
                    );
                }
                "rpad" => {
                    if rpad.is_some() {
                        return Err(invalid("rpad", "more than one <rpad/>"));
                    }
                    rpad = Some(child.text().trim().to_owned());
                }
                "payload" => {
                    if payload.is_some() {
                        return Err(invalid("payload", "more than one <payload/>"));
                    }
                    payload = Some(child.children().cloned().collect::<Vec<_>>());
                }
                _ => {}
            }
        }
        let time = time.ok_or(ParseError::MissingChild {
            element: kind.name(),
            child: "time",
        })?;
        let payload = payload.ok_or(ParseError::MissingChild {
            element: kind.name(),
            child: "payload",
        })?;
        if kind.signed() && to.is_empty() {
            return Err(OxError::Parse(ParseError::MissingChild {
                element: kind.name(),
                child: "to",
            }));
        }
        Ok(Content {
            kind,
            to,
            time,
            rpad,
            payload,
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder(self.kind.name(), NS_OX);
        for jid in &self.to {
            b = b.append(
                Element::builder("to", NS_OX)
                    .a("jid", jid.to_string())
                    .build(),
            );
        }
        b = b.append(
            Element::builder("time", NS_OX)
                .a(
                    "stamp",
                    self.time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                )
                .build(),
        );
        if let Some(rpad) = &self.rpad {
            b = b.append(
                Element::builder("rpad", NS_OX)
                    .append(rpad.as_str())
                    .build(),
            );
        }
        b.append(
            Element::builder("payload", NS_OX)
                .append_all(self.payload.iter().cloned())
                .build(),
        )
        .build()
    }

    /// The UTF-8 text that is signed and/or encrypted. Fails on payload text or attribute values
    /// holding characters XML cannot carry.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OxError> {
        xmpp_social::xml::to_xml_string(&self.to_element())
            .map(String::into_bytes)
            .map_err(|e| invalid("payload", e.to_string()))
    }

    /// Parses decrypted bytes: exactly one content element (at most [`MAX_PLAINTEXT_BYTES`]; an XML
    /// declaration is allowed, anything after the element is not).
    pub fn from_bytes(data: &[u8]) -> Result<Self, OxError> {
        if data.len() > MAX_PLAINTEXT_BYTES {
            return Err(OxError::TooLarge {
                what: "content element",
                size: data.len(),
                limit: MAX_PLAINTEXT_BYTES,
            });
        }
        let text =
            std::str::from_utf8(data).map_err(|_| invalid("openpgp", "content is not UTF-8"))?;
        let body = strip_xml_declaration(text);
        // minidom ignores what follows the first element: parse inside a wrapper that must hold
        // exactly one element.
        const WRAPPER_END: &str = "</ox-document";
        if body.contains(WRAPPER_END) {
            return Err(invalid("openpgp", "unexpected wrapper end tag"));
        }
        let wrapped =
            format!("<ox-document xmlns='urn:xmpp:openpgp:0#document'>{body}</ox-document>");
        let doc = parse_bounded(&wrapped, MAX_PLAINTEXT_BYTES.saturating_add(100))?;
        if doc.texts().any(|t| !t.trim().is_empty()) {
            return Err(invalid("openpgp", "text outside the content element"));
        }
        let mut roots = doc.children();
        match (roots.next(), roots.next()) {
            (Some(el), None) => Self::from_element(el),
            (None, _) => Err(invalid("openpgp", "no content element")),
            (Some(_), Some(_)) => Err(invalid("openpgp", "more than one content element")),
        }
    }
}

fn strip_xml_declaration(text: &str) -> &str {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    match trimmed.strip_prefix("<?xml") {
        Some(rest) => rest.find("?>").map_or(trimmed, |end| &rest[end + 2..]),
        None => trimmed,
    }
}

/// Random padding of random length (0 to [`MAX_RPAD`] characters, XML-safe ASCII).
pub fn random_padding() -> String {
    let mut rng = rand::rng();
    let len = rng.random_range(0..=MAX_RPAD);
    (0..len)
        .map(|_| char::from(RPAD_ALPHABET[rng.random_range(0..RPAD_ALPHABET.len())]))
        .collect()
}

/// `<pubkey xmlns='urn:xmpp:openpgp:0'><data>BASE64</data></pubkey>`: a public key (XEP-0373 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pubkey {
    /// The binary public key.
    pub data: Vec<u8>,
}

impl Pubkey {
    /// Reads the element.
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        expect_element(el, NS_OX, "pubkey")?;
        let data = el
            .get_child("data", NS_OX)
            .ok_or(ParseError::MissingChild {
                element: "pubkey",
                child: "data",
            })?;
        Ok(Pubkey {
            data: decode_base64("data", &data.text(), MAX_KEY_BYTES)?,
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Element::builder("pubkey", NS_OX)
            .append(
                Element::builder("data", NS_OX)
                    .append(STANDARD.encode(&self.data))
                    .build(),
            )
            .build()
    }
}

/// One `<pubkey-metadata/>` of the metadata node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubkeyMetadata {
    /// The v4 fingerprint string (upper-case hex).
    pub fingerprint: String,
    /// When the key was published or updated.
    pub date: DateTime<FixedOffset>,
}

/// `<public-keys-list/>`: the announced keys (XEP-0373 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublicKeysList {
    /// The keys, each fingerprint once.
    pub keys: Vec<PubkeyMetadata>,
}

fn valid_fingerprint(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

impl PublicKeysList {
    /// Reads the element; fingerprints are normalised to upper case, duplicates are refused.
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        expect_element(el, NS_OX, "public-keys-list")?;
        let mut keys: Vec<PubkeyMetadata> = Vec::new();
        for child in el.children().filter(|c| c.is("pubkey-metadata", NS_OX)) {
            let fpr = child
                .attr("v4-fingerprint")
                .ok_or(ParseError::MissingAttribute {
                    element: "pubkey-metadata",
                    attribute: "v4-fingerprint",
                })?
                .trim()
                .to_ascii_uppercase();
            if !valid_fingerprint(&fpr) {
                return Err(invalid("pubkey-metadata", "not a v4 fingerprint"));
            }
            let date = child.attr("date").ok_or(ParseError::MissingAttribute {
                element: "pubkey-metadata",
                attribute: "date",
            })?;
            let date = DateTime::parse_from_rfc3339(date.trim())
                .map_err(|e| invalid("pubkey-metadata", e.to_string()))?;
            if keys.iter().any(|k| k.fingerprint == fpr) {
                return Err(invalid("public-keys-list", "a fingerprint occurs twice"));
            }
            if keys.len() >= MAX_ANNOUNCED_KEYS {
                return Err(OxError::TooLarge {
                    what: "public-keys-list",
                    size: keys.len() + 1,
                    limit: MAX_ANNOUNCED_KEYS,
                });
            }
            keys.push(PubkeyMetadata {
                fingerprint: fpr,
                date,
            });
        }
        Ok(PublicKeysList { keys })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Element::builder("public-keys-list", NS_OX)
            .append_all(self.keys.iter().map(|k| {
                Element::builder("pubkey-metadata", NS_OX)
                    .a("v4-fingerprint", k.fingerprint.as_str())
                    .a("date", k.date.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .build()
            }))
            .build()
    }
}

/// `<secretkey xmlns='urn:xmpp:openpgp:0'>BASE64</secretkey>`: the encrypted secret key backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyBackup {
    /// The password-encrypted OpenPGP message holding the transferable secret keys.
    pub message: Vec<u8>,
}

impl SecretKeyBackup {
    /// Reads the element.
    pub fn from_element(el: &Element) -> Result<Self, OxError> {
        expect_element(el, NS_OX, "secretkey")?;
        Ok(SecretKeyBackup {
            message: decode_base64("secretkey", &el.text(), MAX_MESSAGE_BYTES)?,
        })
    }

    /// Writes the element.
    pub fn to_element(&self) -> Element {
        Element::builder("secretkey", NS_OX)
            .append(STANDARD.encode(&self.message))
            .build()
    }
}
