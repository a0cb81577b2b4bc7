//! XEP-0261 (Jingle In-Band Bytestreams Transport Method, 1.0): the `<transport/>` element.
//!
//! Leniencies (RECIPES §7): Conversations omits `sid` and raises `block-size` in transport-accept, so `sid`
//! is optional when parsing (the session's own value is used) and a larger answered block size is ignored
//! by [`IbbTransport::negotiate`].

use minidom::Element;
use xmpp_social::xml::BuilderExt;
use xmpp_social::ParseError;

use crate::ibb::{parse_block_size, StanzaKind, DEFAULT_BLOCK_SIZE, MAX_SID_CHARS};

/// `urn:xmpp:jingle:transports:ibb:1`.
pub const NS_JINGLE_IBB: &str = "urn:xmpp:jingle:transports:ibb:1";

/// `<transport xmlns='urn:xmpp:jingle:transports:ibb:1'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbbTransport {
    /// The bytestream id (`None` when a peer left it out).
    pub sid: Option<String>,
    /// The block size (4096 when absent).
    pub block_size: u16,
    /// `stanza` (`iq` when absent).
    pub stanza: StanzaKind,
}

impl IbbTransport {
    /// A transport offer with a random bytestream id and the default block size.
    pub fn offer() -> IbbTransport {
        IbbTransport {
            sid: Some(crate::random_id()),
            block_size: DEFAULT_BLOCK_SIZE,
            stanza: StanzaKind::Iq,
        }
    }

    /// Parses the element.
    pub fn from_element(el: &Element) -> Result<IbbTransport, ParseError> {
        if !el.is("transport", NS_JINGLE_IBB) {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_JINGLE_IBB}}}transport"),
                found: xmpp_social::xml::qname(el),
            });
        }
        let sid = match el.attr("sid") {
            Some(s) if s.is_empty() || s.chars().count() > MAX_SID_CHARS => {
                return Err(ParseError::InvalidValue {
                    element: "transport",
                    reason: "sid empty or too long".into(),
                })
            }
            Some(s) => Some(s.to_owned()),
            None => None,
        };
        let block_size = match el.attr("block-size") {
            Some(v) => parse_block_size(v, "transport")?,
            None => DEFAULT_BLOCK_SIZE,
        };
        let stanza = match el.attr("stanza") {
            Some("message") => StanzaKind::Message,
            _ => StanzaKind::Iq,
        };
        Ok(IbbTransport {
            sid,
            block_size,
            stanza,
        })
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("transport", NS_JINGLE_IBB)
            .a("block-size", self.block_size.to_string())
            .a_opt("sid", self.sid.clone());
        if self.stanza == StanzaKind::Message {
            b = b.a("stanza", "message");
        }
        b.build()
    }

    /// The answer of a responder to this offer: the same sid and at most `max_block_size`.
    pub fn answer(&self, max_block_size: u16) -> IbbTransport {
        IbbTransport {
            sid: self.sid.clone(),
            block_size: self.block_size.min(max_block_size).max(1),
            stanza: StanzaKind::Iq,
        }
    }

    /// The block size to use given our offer and the peer's answer: the smaller one (an answer raising it
    /// is ignored).
    pub fn negotiate(offered: u16, answered: u16) -> u16 {
        offered.min(answered).max(1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lenient_parsing() {
        let el: Element = "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='8192'/>"
            .parse()
            .unwrap();
        let t = IbbTransport::from_element(&el).unwrap();
        assert_eq!(t.sid, None);
        assert_eq!(IbbTransport::negotiate(4096, t.block_size), 4096);
        let back = IbbTransport::from_element(&t.to_element()).unwrap();
        assert_eq!(back, t);
        let bad: Element =
            "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='x' sid='a'/>"
                .parse()
                .unwrap();
        assert!(IbbTransport::from_element(&bad).is_err());
    }
}
