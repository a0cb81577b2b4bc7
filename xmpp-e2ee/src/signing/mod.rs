//! Pubsub item signing: XEP-0475 (Pubsub Signing 0.1.x) and its OpenPGP profile XEP-0476.
//!
//! A signer wraps the item in a `<sign-data/>` element ([`SignData`]: recipients, time, signers,
//! then the item without its `id` and `publisher`), canonicalises it with C14N 2.0 ([`c14n`]) and
//! signs those bytes; the signature travels as a XEP-0470 attachment of the item ([`Signature`]),
//! carrying the same `<time/>` and `<signer/>` elements so that a reader can rebuild the wrapper and
//! check it. With the `openpgp` feature, [`openpgp`] makes and checks XEP-0476 detached OpenPGP
//! signatures and [`SigningExt`] publishes and verifies them over a connection.
//!
//! Where XEP-0475 is ambiguous this module does what Libervia 0.9, its reference implementation,
//! does, so that signatures verify in both directions:
//!
//! * the wrapper and its `<to/>`, `<time/>`, `<signer/>` children are in `urn:xmpp:pubsub-signing:0`
//!   (the XEP's text says `...:pubsub-signature:0`, its example shows no namespace);
//! * `<to jid=.../>` names the pubsub (or PEP) service that holds the item;
//! * `<signer/>` carries the signer's bare JID as text (the XEP's text says a `jid` attribute, its
//!   examples use text);
//! * the wrapped `<item/>` is in the `http://jabber.org/protocol/pubsub` namespace whether the item
//!   came from a request or an event notification;
//! * the stamp is written to the second (`2022-10-16T18:39:03Z`), and a reader rebuilds the wrapper
//!   with the stamp exactly as the attachment gives it.
//!
//! An encrypted item is signed in its plaintext form, before encryption (XEP-0475 §4).

pub mod c14n;
#[cfg(feature = "openpgp")]
pub mod openpgp;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use jid::BareJid;
use minidom::Element;

#[cfg(feature = "openpgp")]
pub use openpgp::{SignatureCheck, SigningExt, VerifiedSignature};

/// XEP-0475 namespace (wrapper, `<signature/>` attachment, disco feature).
pub const NS_SIGNING: &str = "urn:xmpp:pubsub-signing:0";
/// XEP-0476 namespace (the `<sign/>` element, disco feature).
pub const NS_SIGNING_OPENPGP: &str = "urn:xmpp:pubsub-signing:openpgp:0";
/// XEP-0060 namespace, the one of the wrapped `<item/>`.
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";

/// Most `<to/>` or `<signer/>` elements read in one wrapper or attachment.
pub const MAX_JIDS: usize = 64;
/// Most bytes of base64 signature text read from a `<sign/>` element.
pub const MAX_SIGNATURE_TEXT: usize = 64 * 1024;

/// Errors of pubsub signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// An element is malformed: which one and what is wrong.
    #[error("malformed <{element}/>: {reason}")]
    Malformed {
        /// The element.
        element: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Canonicalisation failed.
    #[error(transparent)]
    C14n(#[from] c14n::C14nError),
    /// The attachment has no signature of a known profile.
    #[error("no signature of a known profile in the attachment")]
    NoSignature,
    /// The signature does not verify over the rebuilt wrapper (tampered item, wrong signer, wrong
    /// key).
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
    /// The key that verified the signature does not belong to the claimed signer (no `xmpp:` user
    /// ID for it).
    #[error("the signing key does not belong to {claimed}")]
    SignerMismatch {
        /// The signer the attachment claims.
        claimed: String,
    },
    /// No usable signing key.
    #[error("no usable key: {0}")]
    NoKey(String),
    /// An OpenPGP operation failed.
    #[error("OpenPGP: {0}")]
    OpenPgp(String),
    /// The network or server failed.
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::Error),
}

fn malformed(element: &'static str, reason: impl Into<String>) -> SigningError {
    SigningError::Malformed {
        element,
        reason: reason.into(),
    }
}

/// Formats a stamp the way signatures carry it: UTC, to the second, `Z`.
pub fn format_stamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn check_stamp(stamp: &str) -> Result<DateTime<FixedOffset>, SigningError> {
    if stamp.len() > 64 {
        return Err(malformed("time", "stamp too long"));
    }
    DateTime::parse_from_rfc3339(stamp).map_err(|e| malformed("time", format!("stamp: {e}")))
}

fn parse_jid(element: &'static str, s: &str) -> Result<BareJid, SigningError> {
    let s = s.trim();
    BareJid::new(s).map_err(|e| malformed(element, format!("JID {s:?}: {e}")))
}

/// Appends what `<sign-data/>` and `<signature/>` both carry, in their order: the `<time/>`, the
/// `<signer/>`s, then the profile's extra elements.
fn append_stamp_and_signers(el: &mut Element, stamp: &str, signers: &[BareJid], extra: &[Element]) {
    el.append_child(
        Element::builder("time", NS_SIGNING)
            .attr(minidom::rxml::xml_ncname!("stamp").to_owned(), stamp)
            .build(),
    );
    for signer in signers {
        el.append_child(
            Element::builder("signer", NS_SIGNING)
                .append(signer.as_str())
                .build(),
        );
    }
    for extra in extra {
        el.append_child(extra.clone());
    }
}

/// The parsing `<sign-data/>` and `<signature/>` share: the check of the element itself, then its
/// one `<time/>` and its `<signer/>`s.
struct StampAndSigners {
    /// `sign-data` or `signature`.
    element: &'static str,
    stamp: Option<String>,
    signers: Vec<BareJid>,
}

impl StampAndSigners {
    /// Checks that `el` is `<element xmlns='urn:xmpp:pubsub-signing:0'/>`.
    fn start(el: &Element, element: &'static str) -> Result<Self, SigningError> {
        if !el.is(element, NS_SIGNING) {
            return Err(malformed(
                element,
                format!("found <{}/> in {:?}", el.name(), el.ns()),
            ));
        }
        Ok(StampAndSigners {
            element,
            stamp: None,
            signers: Vec::new(),
        })
    }

    /// Reads `child` when it is a `<time/>` or a `<signer/>` (`true`); any other child is the
    /// caller's (`false`).
    fn read(&mut self, child: &Element) -> Result<bool, SigningError> {
        if child.is("time", NS_SIGNING) {
            if self.stamp.is_some() {
                return Err(malformed(self.element, "more than one <time/>"));
            }
            let s = child
                .attr("stamp")
                .ok_or_else(|| malformed("time", "no stamp"))?;
            check_stamp(s)?;
            self.stamp = Some(s.to_owned());
            Ok(true)
        } else if child.is("signer", NS_SIGNING) {
            self.signers.push(parse_jid("signer", &child.text())?);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The stamp and the signers, once every child is read: at least one signer, and the time.
    fn finish(self) -> Result<(String, Vec<BareJid>), SigningError> {
        if self.signers.is_empty() {
            return Err(malformed(self.element, "no <signer/>"));
        }
        let stamp = self
            .stamp
            .ok_or_else(|| malformed(self.element, "no <time/>"))?;
        Ok((stamp, self.signers))
    }
}

/// The `<item/>` as XEP-0475 wraps it: in the pubsub namespace, without `id` and `publisher`,
/// attributes and children otherwise kept.
pub fn wrap_item(item: &Element) -> Element {
    let mut builder = Element::builder("item", NS_PUBSUB);
    for ((ns, name), value) in item.attrs().iter() {
        if ns.is_empty() && (name.as_str() == "id" || name.as_str() == "publisher") {
            continue;
        }
        if ns.is_empty() {
            builder = builder.attr(name.clone(), value.as_str());
        } else {
            builder = builder.attr_ns(ns.clone(), name.clone(), value.as_str());
        }
    }
    let mut out = builder.build();
    for node in item.nodes() {
        out.append_node(node.clone());
    }
    out
}

/// The wrapped `<item/>` of a pubsub item given by its payload (XEP-0060 items carry one).
pub fn wrap_payload(payload: Option<&Element>) -> Element {
    let mut item = Element::builder("item", NS_PUBSUB).build();
    if let Some(p) = payload {
        item.append_child(p.clone());
    }
    item
}

/// XEP-0475's `<sign-data/>` wrapper: what is signed.
#[derive(Debug, Clone, PartialEq)]
pub struct SignData {
    /// Intended recipients (`<to jid/>`, at least one): the service holding the item.
    pub to: Vec<BareJid>,
    /// The `<time stamp/>` text, exactly as signed.
    pub stamp: String,
    /// The signers (`<signer/>`, at least one).
    pub signers: Vec<BareJid>,
    /// Signing-profile elements placed after the signers (none for XEP-0476).
    pub extra: Vec<Element>,
    /// The wrapped `<item/>` (see [`wrap_item`]).
    pub item: Element,
}

impl SignData {
    /// A wrapper for `item` (any `<item/>`; it is rewrapped by [`wrap_item`]) held by `service`,
    /// signed by `signer` at `time`.
    pub fn new(service: BareJid, signer: BareJid, time: DateTime<Utc>, item: &Element) -> Self {
        SignData {
            to: vec![service],
            stamp: format_stamp(time),
            signers: vec![signer],
            extra: Vec::new(),
            item: wrap_item(item),
        }
    }

    /// The wrapper a reader rebuilds from a signature attachment, for `item` held by `service`.
    pub fn for_attachment(service: BareJid, signature: &Signature, item: &Element) -> Self {
        SignData {
            to: vec![service],
            stamp: signature.stamp.clone(),
            signers: signature.signers.clone(),
            extra: signature.extra.clone(),
            item: wrap_item(item),
        }
    }

    /// The `<sign-data/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::builder("sign-data", NS_SIGNING).build();
        for to in &self.to {
            el.append_child(
                Element::builder("to", NS_SIGNING)
                    .attr(minidom::rxml::xml_ncname!("jid").to_owned(), to.as_str())
                    .build(),
            );
        }
        append_stamp_and_signers(&mut el, &self.stamp, &self.signers, &self.extra);
        el.append_child(self.item.clone());
        el
    }

    /// The signed data: the canonical form of [`Self::to_element`].
    pub fn signed_bytes(&self) -> Result<Vec<u8>, SigningError> {
        Ok(c14n::canonicalize(&self.to_element())?)
    }
}

impl TryFrom<&Element> for SignData {
    type Error = SigningError;

    fn try_from(el: &Element) -> Result<Self, SigningError> {
        let mut common = StampAndSigners::start(el, "sign-data")?;
        let mut to = Vec::new();
        let mut extra = Vec::new();
        let mut item = None;
        for child in el.children() {
            if to.len() + common.signers.len() + extra.len() > 2 * MAX_JIDS {
                return Err(malformed("sign-data", "too many children"));
            }
            if common.read(child)? {
                continue;
            }
            if child.is("to", NS_SIGNING) {
                let jid = child.attr("jid").ok_or_else(|| malformed("to", "no jid"))?;
                to.push(parse_jid("to", jid)?);
            } else if child.is("item", NS_PUBSUB) {
                if item.is_some() {
                    return Err(malformed("sign-data", "more than one <item/>"));
                }
                item = Some(child.clone());
            } else {
                extra.push(child.clone());
            }
        }
        if to.is_empty() {
            return Err(malformed("sign-data", "no <to/>"));
        }
        let (stamp, signers) = common.finish()?;
        Ok(SignData {
            to,
            stamp,
            signers,
            extra,
            item: item.ok_or_else(|| malformed("sign-data", "no <item/>"))?,
        })
    }
}

/// XEP-0475's `<signature/>` attachment (one per signer, in the XEP-0470 attachments of the item).
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// The `<time stamp/>` text of the signed wrapper.
    pub stamp: String,
    /// The signers, as in the wrapper.
    pub signers: Vec<BareJid>,
    /// Signing-profile elements that are also in the wrapper (none for XEP-0476).
    pub extra: Vec<Element>,
    /// The XEP-0476 OpenPGP detached signature (the decoded `<sign/>` content), if present.
    pub openpgp: Option<Vec<u8>>,
    /// Other profiles' signature elements, kept verbatim.
    pub unknown: Vec<Element>,
}

impl Signature {
    /// The time of the signed wrapper.
    pub fn time(&self) -> Result<DateTime<FixedOffset>, SigningError> {
        check_stamp(&self.stamp)
    }

    /// The `<signature/>` element.
    pub fn to_element(&self) -> Element {
        use base64::Engine as _;
        let mut el = Element::builder("signature", NS_SIGNING).build();
        append_stamp_and_signers(&mut el, &self.stamp, &self.signers, &self.extra);
        if let Some(sig) = &self.openpgp {
            el.append_child(
                Element::builder("sign", NS_SIGNING_OPENPGP)
                    .append(base64::engine::general_purpose::STANDARD.encode(sig))
                    .build(),
            );
        }
        for u in &self.unknown {
            el.append_child(u.clone());
        }
        el
    }
}

impl TryFrom<&Element> for Signature {
    type Error = SigningError;

    fn try_from(el: &Element) -> Result<Self, SigningError> {
        use base64::Engine as _;
        let mut common = StampAndSigners::start(el, "signature")?;
        let mut extra = Vec::new();
        let mut openpgp = None;
        let mut unknown = Vec::new();
        for child in el.children() {
            if common.signers.len() + extra.len() + unknown.len() > 2 * MAX_JIDS {
                return Err(malformed("signature", "too many children"));
            }
            if common.read(child)? {
                continue;
            }
            if child.is("sign", NS_SIGNING_OPENPGP) {
                if openpgp.is_some() {
                    return Err(malformed("signature", "more than one <sign/>"));
                }
                let text = child.text();
                if text.len() > MAX_SIGNATURE_TEXT {
                    return Err(malformed("sign", "signature too large"));
                }
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|e| malformed("sign", format!("base64: {e}")))?;
                if bytes.is_empty() {
                    return Err(malformed("sign", "empty signature"));
                }
                openpgp = Some(bytes);
            } else if child.ns() == NS_SIGNING {
                extra.push(child.clone());
            } else {
                unknown.push(child.clone());
            }
        }
        let (stamp, signers) = common.finish()?;
        Ok(Signature {
            stamp,
            signers,
            extra,
            openpgp,
            unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const EXAMPLE_SIGNATURE: &str = r#"<signature xmlns="urn:xmpp:pubsub-signing:0">
      <time stamp="2022-10-16T18:39:03Z"/>
      <signer>juliet@capulet.lit</signer>
      <sign xmlns="urn:xmpp:pubsub-signing:openpgp:0">iQGzBAABCAAdFiEEyTOMos/ZmE//ikYkAzNxB0kY9CIFAmNaomUACgkQAzNxB0kY9CJQcAv9HjIIrzIhtmWvf2IoHBUgY7hUFPZ3TKZ0Ltc6uz+CR4K1GHQB842/vjPSHwo5qfVgaVEUK3Liw8eXawOZ4SJeSZdmd1KUjjuZ+SLlB1SKKEoap3KFhidT9XYA2OU4tkWOwVI2cyBIWE3JRxD0YFh5YMJObZrOoyMiobwaMaGCHt60T71rl1wPb399l9aU6sYu2HHIRnM5pDgVljIMZe0n1LnY5pH5jzN67JgxlFAfl0Q4BO81pBycNnbk0VPb78Ki4001S7uoFftkN3j6euYf8KhtTH+Yaw1BdYzjO8o2Nw/9ledMrwO652Ud4hLGpmSpIJI1NTOjmy5crfhEHMA5ERYDbGbaB/IoaHxje+8occlI78xChoz7xCQlwVVyHARvuotEbYRimY78s2Ozae+uG/8wQZmeLnrvwCrzDiJbEkW4MbiOWUC1QcApNoW8lriLcb+ZfNGMeENSSMqMRfi3wL6WOovM2IR8O97/1DkGFiYAZ414CVZV2ZT+xxE64pMM</sign>
    </signature>"#;

    #[test]
    fn xep0476_example_round_trip() {
        let el: Element = EXAMPLE_SIGNATURE.parse().unwrap();
        let sig = Signature::try_from(&el).unwrap();
        assert_eq!(sig.stamp, "2022-10-16T18:39:03Z");
        assert_eq!(
            sig.signers,
            vec![BareJid::new("juliet@capulet.lit").unwrap()]
        );
        let bytes = sig.openpgp.as_ref().unwrap();
        // An OpenPGP signature packet (new format, tag 2).
        assert_eq!(bytes[0], 0x89);
        let again = Signature::try_from(&sig.to_element()).unwrap();
        assert_eq!(again, sig);
    }

    #[test]
    fn xep0475_wrapper_example() {
        let entry: Element = "<entry xmlns='http://www.w3.org/2005/Atom'>\n <author>\n <name>Juliet Capulet</name>\n <uri>xmpp:juliet@capulet.lit</uri>\n </author>\n <title type='text'>She is so pretty! </title>\n <published>2022-10-16T18:39:02Z</published>\n </entry>".parse().unwrap();
        let item = Element::builder("item", NS_PUBSUB)
            .attr(minidom::rxml::xml_ncname!("id").to_owned(), "x")
            .attr(
                minidom::rxml::xml_ncname!("publisher").to_owned(),
                "juliet@capulet.lit/chamber",
            )
            .append(entry)
            .build();
        let time = DateTime::parse_from_rfc3339("2022-10-16T18:39:03Z")
            .unwrap()
            .with_timezone(&Utc);
        let juliet = BareJid::new("juliet@capulet.lit").unwrap();
        let data = SignData::new(juliet.clone(), juliet, time, &item);
        let bytes = String::from_utf8(data.signed_bytes().unwrap()).unwrap();
        // The XEP's normalised example, with the namespaces Libervia uses.
        assert_eq!(
            bytes,
            r#"<sign-data xmlns="urn:xmpp:pubsub-signing:0"><to jid="juliet@capulet.lit"></to><time stamp="2022-10-16T18:39:03Z"></time><signer>juliet@capulet.lit</signer><item xmlns="http://jabber.org/protocol/pubsub"><entry xmlns="http://www.w3.org/2005/Atom"><author><name>Juliet Capulet</name><uri>xmpp:juliet@capulet.lit</uri></author><title type="text">She is so pretty!</title><published>2022-10-16T18:39:02Z</published></entry></item></sign-data>"#
        );
        let parsed = SignData::try_from(&data.to_element()).unwrap();
        assert_eq!(parsed, data);
    }

    #[test]
    fn malformed_elements_are_typed_errors() {
        for bad in [
            "<signature xmlns='urn:xmpp:pubsub-signing:0'><signer>a@b</signer></signature>",
            "<signature xmlns='urn:xmpp:pubsub-signing:0'><time stamp='yesterday'/><signer>a@b</signer></signature>",
            "<signature xmlns='urn:xmpp:pubsub-signing:0'><time stamp='2022-10-16T18:39:03Z'/></signature>",
            "<signature xmlns='urn:xmpp:pubsub-signing:0'><time stamp='2022-10-16T18:39:03Z'/><signer>@@</signer></signature>",
            "<signature xmlns='urn:xmpp:pubsub-signing:0'><time stamp='2022-10-16T18:39:03Z'/><signer>a@b</signer><sign xmlns='urn:xmpp:pubsub-signing:openpgp:0'>!!notbase64</sign></signature>",
            "<signature xmlns='urn:xmpp:pubsub-signing:0'><time stamp='2022-10-16T18:39:03Z'/><time stamp='2022-10-16T18:39:03Z'/><signer>a@b</signer></signature>",
            "<signature xmlns='urn:xmpp:other'/>",
        ] {
            let el: Element = bad.parse().unwrap();
            assert!(
                matches!(Signature::try_from(&el), Err(SigningError::Malformed { .. })),
                "{bad}"
            );
        }
        for bad in [
            "<sign-data xmlns='urn:xmpp:pubsub-signing:0'><time stamp='2022-10-16T18:39:03Z'/><signer>a@b</signer><item xmlns='http://jabber.org/protocol/pubsub'/></sign-data>",
            "<sign-data xmlns='urn:xmpp:pubsub-signing:0'><to jid='s'/><time stamp='2022-10-16T18:39:03Z'/><signer>a@b</signer></sign-data>",
            "<sign-data xmlns='urn:xmpp:pubsub-signing:0'><to/><time stamp='2022-10-16T18:39:03Z'/><signer>a@b</signer><item xmlns='http://jabber.org/protocol/pubsub'/></sign-data>",
        ] {
            let el: Element = bad.parse().unwrap();
            assert!(
                matches!(SignData::try_from(&el), Err(SigningError::Malformed { .. })),
                "{bad}"
            );
        }
    }
}
