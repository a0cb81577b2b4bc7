//! XEP-0047 (In-Band Bytestreams, 2.0.1): `<open/>`, `<data/>`, `<close/>`, and the sans-IO halves of a
//! bytestream: [`IbbSender`] (block sizes, `seq` wrapping at 65535) and [`IbbReceiver`] (order and size
//! checks).
//!
//! Data always travels in IQs here (flow control: the sender waits for each result before the next
//! block). Received `<data/>` in messages is refused by the driver. Base64 is checked strictly, as the XEP
//! requires (no characters outside the alphabet, padding only at the end); whitespace between characters
//! (line breaks, as in the XEP's own example) is tolerated.

use base64::Engine;
use minidom::Element;
use xmpp_social::xml::BuilderExt;
use xmpp_social::ParseError;

/// `http://jabber.org/protocol/ibb`.
pub const NS_IBB: &str = "http://jabber.org/protocol/ibb";
/// The block size we propose: 4096, as XEP-0261 recommends (Dino refuses larger answers).
pub const DEFAULT_BLOCK_SIZE: u16 = 4096;
/// The largest `sid` accepted.
pub const MAX_SID_CHARS: usize = 256;

/// How data packets are carried (`stanza` attribute of `<open/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StanzaKind {
    /// `iq` (the default, and what this crate sends).
    #[default]
    Iq,
    /// `message`.
    Message,
}

/// `<open/>`: opens a bytestream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The bytestream id.
    pub sid: String,
    /// The largest block, in bytes before base64.
    pub block_size: u16,
    /// How data packets are carried.
    pub stanza: StanzaKind,
}

/// `<data/>`: one block.
#[derive(Clone, PartialEq, Eq)]
pub struct Data {
    /// The bytestream id.
    pub sid: String,
    /// The sequence number (wraps to 0 after 65535).
    pub seq: u16,
    /// The decoded bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Data")
            .field("sid", &self.sid)
            .field("seq", &self.seq)
            .field("len", &self.data.len())
            .finish()
    }
}

/// `<close/>`: closes a bytestream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The bytestream id.
    pub sid: String,
}

/// Any of the three IBB elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IbbPayload {
    /// `<open/>`.
    Open(Open),
    /// `<data/>`.
    Data(Data),
    /// `<close/>`.
    Close(Close),
}

fn sid(el: &Element, element: &'static str) -> Result<String, ParseError> {
    let sid = el.attr("sid").ok_or(ParseError::MissingAttribute {
        element,
        attribute: "sid",
    })?;
    if sid.is_empty() || sid.chars().count() > MAX_SID_CHARS {
        return Err(ParseError::InvalidValue {
            element,
            reason: "sid empty or too long".into(),
        });
    }
    Ok(sid.to_owned())
}

/// Parses a block size attribute value: 1..=65535.
pub fn parse_block_size(value: &str, element: &'static str) -> Result<u16, ParseError> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        Ok(n) if n > 65535 => Ok(u16::MAX), // lenient: clamp to the protocol's maximum
        _ => Err(ParseError::InvalidValue {
            element,
            reason: format!("bad block-size {value:?}"),
        }),
    }
}

impl IbbPayload {
    /// Parses one IBB element (the payload of an IQ).
    pub fn from_element(el: &Element) -> Result<IbbPayload, ParseError> {
        if el.ns() != NS_IBB {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_IBB}}}open|data|close"),
                found: xmpp_social::xml::qname(el),
            });
        }
        match el.name() {
            "open" => {
                let bs = el.attr("block-size").ok_or(ParseError::MissingAttribute {
                    element: "open",
                    attribute: "block-size",
                })?;
                let stanza = match el.attr("stanza") {
                    None | Some("iq") => StanzaKind::Iq,
                    Some("message") => StanzaKind::Message,
                    Some(other) => {
                        return Err(ParseError::InvalidValue {
                            element: "open",
                            reason: format!("stanza={other:?}"),
                        })
                    }
                };
                Ok(IbbPayload::Open(Open {
                    sid: sid(el, "open")?,
                    block_size: parse_block_size(bs, "open")?,
                    stanza,
                }))
            }
            "data" => {
                let seq = el
                    .attr("seq")
                    .ok_or(ParseError::MissingAttribute {
                        element: "data",
                        attribute: "seq",
                    })?
                    .parse::<u16>()
                    .map_err(|e| ParseError::InvalidValue {
                        element: "data",
                        reason: format!("seq: {e}"),
                    })?;
                let sid = sid(el, "data")?;
                Ok(IbbPayload::Data(Data {
                    sid,
                    seq,
                    data: decode_base64(&el.text())?,
                }))
            }
            "close" => Ok(IbbPayload::Close(Close {
                sid: sid(el, "close")?,
            })),
            _ => Err(ParseError::WrongElement {
                expected: format!("{{{NS_IBB}}}open|data|close"),
                found: xmpp_social::xml::qname(el),
            }),
        }
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        match self {
            IbbPayload::Open(o) => Element::builder("open", NS_IBB)
                .a("block-size", o.block_size.to_string())
                .a("sid", o.sid.clone())
                .a(
                    "stanza",
                    match o.stanza {
                        StanzaKind::Iq => "iq",
                        StanzaKind::Message => "message",
                    },
                )
                .build(),
            IbbPayload::Data(d) => Element::builder("data", NS_IBB)
                .a("seq", d.seq.to_string())
                .a("sid", d.sid.clone())
                .append(base64::engine::general_purpose::STANDARD.encode(&d.data))
                .build(),
            IbbPayload::Close(c) => Element::builder("close", NS_IBB)
                .a("sid", c.sid.clone())
                .build(),
        }
    }
}

/// The most base64 text accepted in one `<data/>` (65535 bytes encoded, plus room for line breaks).
const MAX_BASE64_CHARS: usize = 65536 / 3 * 4 + 4 + 8192;

/// Strict base64 (RFC 4648 §4, padded), ignoring ASCII whitespace.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, ParseError> {
    if text.len() > MAX_BASE64_CHARS {
        return Err(ParseError::TooLarge {
            element: "data",
            size: text.len(),
            limit: MAX_BASE64_CHARS,
        });
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| ParseError::InvalidValue {
            element: "data",
            reason: format!("bad base64: {e}"),
        })
}

/// The sending half of a bytestream: numbers blocks and cuts data to the block size.
#[derive(Debug, Clone)]
pub struct IbbSender {
    sid: String,
    block_size: u16,
    next_seq: u16,
}

impl IbbSender {
    /// A sender for `sid` with the negotiated block size (0 is raised to 1).
    pub fn new(sid: impl Into<String>, block_size: u16) -> Self {
        IbbSender {
            sid: sid.into(),
            block_size: block_size.max(1),
            next_seq: 0,
        }
    }

    /// The bytestream id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The block size in use.
    pub fn block_size(&self) -> u16 {
        self.block_size
    }

    /// The `<open/>` to send.
    pub fn open(&self) -> IbbPayload {
        IbbPayload::Open(Open {
            sid: self.sid.clone(),
            block_size: self.block_size,
            stanza: StanzaKind::Iq,
        })
    }

    /// Lowers the block size after a `resource-constraint` answer to `<open/>`: halves it, down to 256.
    /// Returns false when it cannot go lower.
    pub fn lower_block_size(&mut self) -> bool {
        if self.block_size <= 256 {
            return false;
        }
        self.block_size = (self.block_size / 2).max(256);
        true
    }

    /// Uses the block size the peer asked for when it is smaller (a larger answer is ignored: never send
    /// more than we proposed).
    pub fn accept_block_size(&mut self, answered: u16) {
        if answered >= 1 && answered < self.block_size {
            self.block_size = answered;
        }
    }

    /// The next `<data/>` for `data` (at most one block; callers cut with [`Self::block_size`]).
    /// Sequence numbers wrap from 65535 to 0.
    pub fn data(&mut self, data: Vec<u8>) -> IbbPayload {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        IbbPayload::Data(Data {
            sid: self.sid.clone(),
            seq,
            data,
        })
    }

    /// The `<close/>`.
    pub fn close(&self) -> IbbPayload {
        IbbPayload::Close(Close {
            sid: self.sid.clone(),
        })
    }
}

/// Why a received block was refused. The bytestream must then be closed (XEP-0047 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IbbError {
    /// Not this bytestream.
    #[error("unknown bytestream {0:?}")]
    UnknownSid(String),
    /// A block was lost or repeated.
    #[error("out-of-sequence block: expected {expected}, got {got}")]
    OutOfSequence {
        /// The expected `seq`.
        expected: u16,
        /// The received `seq`.
        got: u16,
    },
    /// A block larger than allowed.
    #[error("block of {size} bytes exceeds {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Data after `<close/>`.
    #[error("bytestream already closed")]
    Closed,
}

/// The receiving half: checks order and size of blocks.
#[derive(Debug, Clone)]
pub struct IbbReceiver {
    sid: String,
    block_size: u16,
    expected_seq: u16,
    closed: bool,
    received: u64,
}

impl IbbReceiver {
    /// A receiver for `sid` with the negotiated block size.
    ///
    /// Leniency: blocks up to 65535 bytes are accepted even when a smaller size was negotiated, since some
    /// clients raise the block size in their answers and then use it; memory stays bounded by 64 KiB.
    pub fn new(sid: impl Into<String>, block_size: u16) -> Self {
        IbbReceiver {
            sid: sid.into(),
            block_size,
            expected_seq: 0,
            closed: false,
            received: 0,
        }
    }

    /// The bytestream id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The negotiated block size.
    pub fn block_size(&self) -> u16 {
        self.block_size
    }

    /// Bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Whether `<close/>` was received.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Checks one block; on success its data is the next part of the stream.
    pub fn data(&mut self, data: Data) -> Result<Vec<u8>, IbbError> {
        if data.sid != self.sid {
            return Err(IbbError::UnknownSid(data.sid));
        }
        if self.closed {
            return Err(IbbError::Closed);
        }
        if data.seq != self.expected_seq {
            return Err(IbbError::OutOfSequence {
                expected: self.expected_seq,
                got: data.seq,
            });
        }
        if data.data.len() > usize::from(u16::MAX) {
            return Err(IbbError::TooLarge {
                size: data.data.len(),
                limit: usize::from(u16::MAX),
            });
        }
        self.expected_seq = self.expected_seq.wrapping_add(1);
        self.received = self.received.saturating_add(data.data.len() as u64);
        Ok(data.data)
    }

    /// Records `<close/>`.
    pub fn close(&mut self) {
        self.closed = true;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn xep_examples_round_trip() {
        let open: Element = "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='i781hf64' stanza='iq'/>".parse().unwrap();
        let p = IbbPayload::from_element(&open).unwrap();
        assert_eq!(
            p,
            IbbPayload::Open(Open {
                sid: "i781hf64".into(),
                block_size: 4096,
                stanza: StanzaKind::Iq
            })
        );
        assert_eq!(IbbPayload::from_element(&p.to_element()).unwrap(), p);

        let data: Element = "<data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='i781hf64'>
    qANQR1DBwU4DX7jmYZnncmUQB/9KuKBddzQH+tZ1ZywKK0yHKnq57kWq+RFtQdCJ
    WpdWpR0uQsuJe7+vh3NWn59/gTc5MDlX8dS9p0ovStmNcyLhxVgmqS8ZKhsblVeu
    IpQ0JgavABqibJolc3BKrVtVV1igKiX/N7Pi8RtY1K18toaMDhdEfhBRzO/XB0+P
    AQhYlRjNacGcslkhXqNjK5Va4tuOAPy2n1Q8UUrHbUd0g+xJ9Bm0G0LZXyvCWyKH
    kuNEHFQiLuCY6Iv0myq6iX6tjuHehZlFSh80b5BVV9tNLwNR5Eqz1klxMhoghJOA
  </data>"
            .parse()
            .unwrap();
        let p = IbbPayload::from_element(&data).unwrap();
        let IbbPayload::Data(d) = &p else { panic!() };
        assert_eq!(d.data.len(), 240);
        assert_eq!(IbbPayload::from_element(&p.to_element()).unwrap(), p);

        let close: Element = "<close xmlns='http://jabber.org/protocol/ibb' sid='i781hf64'/>"
            .parse()
            .unwrap();
        let p = IbbPayload::from_element(&close).unwrap();
        assert_eq!(IbbPayload::from_element(&p.to_element()).unwrap(), p);
    }

    #[test]
    fn hostile_input_is_refused() {
        for xml in [
            "<open xmlns='http://jabber.org/protocol/ibb' sid='a'/>",
            "<open xmlns='http://jabber.org/protocol/ibb' block-size='0' sid='a'/>",
            "<open xmlns='http://jabber.org/protocol/ibb' block-size='-1' sid='a'/>",
            "<open xmlns='http://jabber.org/protocol/ibb' block-size='10' sid=''/>",
            "<open xmlns='http://jabber.org/protocol/ibb' block-size='10' sid='a' stanza='pigeon'/>",
            "<data xmlns='http://jabber.org/protocol/ibb' seq='65536' sid='a'/>",
            "<data xmlns='http://jabber.org/protocol/ibb' sid='a'>AAAA</data>",
            "<data xmlns='http://jabber.org/protocol/ibb' seq='1' sid='a'>=AAA</data>",
            "<data xmlns='http://jabber.org/protocol/ibb' seq='1' sid='a'>BBBB=CCC</data>",
            "<data xmlns='http://jabber.org/protocol/ibb' seq='1' sid='a'>AA*A</data>",
            "<close xmlns='http://jabber.org/protocol/ibb'/>",
            "<other xmlns='http://jabber.org/protocol/ibb' sid='a'/>",
        ] {
            let el: Element = xml.parse().unwrap();
            assert!(IbbPayload::from_element(&el).is_err(), "{xml}");
        }
        let big = format!(
            "<data xmlns='http://jabber.org/protocol/ibb' seq='1' sid='a'>{}</data>",
            "A".repeat(200_000)
        );
        assert!(IbbPayload::from_element(&big.parse().unwrap()).is_err());
        // A raised block size is clamped, not refused.
        let el: Element =
            "<open xmlns='http://jabber.org/protocol/ibb' block-size='100000' sid='a'/>"
                .parse()
                .unwrap();
        let IbbPayload::Open(o) = IbbPayload::from_element(&el).unwrap() else {
            panic!()
        };
        assert_eq!(o.block_size, 65535);
    }

    #[test]
    fn seq_wraps_and_receiver_checks_order() {
        let mut s = IbbSender::new("s", 4096);
        let mut r = IbbReceiver::new("s", 4096);
        for i in 0..70_000u32 {
            let IbbPayload::Data(d) = s.data(vec![1]) else {
                panic!()
            };
            assert_eq!(u32::from(d.seq), i % 65536);
            r.data(d).unwrap();
        }
        assert_eq!(r.received(), 70_000);
        let IbbPayload::Data(mut d) = s.data(vec![1]) else {
            panic!()
        };
        d.seq = d.seq.wrapping_add(1);
        assert!(matches!(
            r.data(d.clone()),
            Err(IbbError::OutOfSequence { .. })
        ));
        d.sid = "other".into();
        assert!(matches!(r.data(d), Err(IbbError::UnknownSid(_))));
        r.close();
        assert!(r.is_closed());
    }

    #[test]
    fn block_size_negotiation() {
        let mut s = IbbSender::new("s", 4096);
        s.accept_block_size(8192);
        assert_eq!(s.block_size(), 4096);
        s.accept_block_size(2048);
        assert_eq!(s.block_size(), 2048);
        assert!(s.lower_block_size());
        assert_eq!(s.block_size(), 1024);
        while s.lower_block_size() {}
        assert_eq!(s.block_size(), 256);
    }
}
