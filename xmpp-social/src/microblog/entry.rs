//! The Atom entry of XEP-0277 (Microblogging over XMPP, version 0.6.5) and XEP-0472 (Pubsub Social
//! Feed, `urn:xmpp:pubsub-social-feed:1`).
//!
//! A post is an RFC 4287 `<entry xmlns='http://www.w3.org/2005/Atom'>` inside a pubsub item. This module
//! types the parts social clients use (title, text and XHTML content, authors, dates, tags, links,
//! comments nodes, replies, repeats, enclosures, XEP-0080 geolocation) and keeps every element it does
//! not understand in [`Entry::extra`], so that reading then republishing an entry loses nothing.
//!
//! Reading is lenient like deployed clients (a comment without `<title/>` is fine, an element that
//! cannot be typed is kept raw), but values that are present and wrong are errors: a date that is not
//! XEP-0082, an `xmpp:` URI with an invalid JID, a non-numeric `length`. Sizes are bounded
//! ([`MAX_TEXT_BYTES`], [`MAX_LIST_LEN`], [`MAX_ENTRY_DEPTH`]); nothing here panics on remote input.
//!
//! ```
//! use xmpp_social::microblog::{Entry, Text};
//!
//! let entry = Entry::from_xml_str(
//!     "<entry xmlns='http://www.w3.org/2005/Atom'>\
//!        <title type='text'>hanging out at the Café Napolitano</title>\
//!        <id>tag:montague.lit,2008-05-08:posts-1cb57d9c</id>\
//!        <published>2008-05-08T18:30:02Z</published>\
//!      </entry>",
//! )
//! .unwrap();
//! assert_eq!(entry.title, Some(Text::Plain("hanging out at the Café Napolitano".into())));
//! assert_eq!(entry.item_id().as_deref(), Some("1cb57d9c"));
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use jid::Jid;
use minidom::rxml::{xml_ncname, Namespace, XMLNS_XML};
use minidom::{Element, Node};
use serde::{Serialize, Serializer};

use crate::error::ParseError;
use crate::util::{
    check_limits, detached, format_date, invalid, make_writable, parse_date, push_bounded,
    strip_prefixes,
};

/// The Atom namespace (RFC 4287).
pub const NS_ATOM: &str = "http://www.w3.org/2005/Atom";
/// The Atom threading extensions namespace (RFC 4685), for `<thr:in-reply-to/>`.
pub const NS_THREAD: &str = "http://purl.org/syndication/thread/1.0";
/// The XEP-0277 namespace, also the name of a user's microblog PEP node.
pub const NS_MICROBLOG: &str = "urn:xmpp:microblog:0";
/// Prefix of XEP-0277 comments node names: `urn:xmpp:microblog:0:comments/<item id>`.
pub const COMMENTS_NODE_PREFIX: &str = "urn:xmpp:microblog:0:comments/";
/// The XEP-0080 User Location namespace, for `<geoloc/>` in entries.
pub const NS_GEOLOC: &str = "http://jabber.org/protocol/geoloc";
/// The XHTML namespace of `type='xhtml'` text constructs.
pub const NS_XHTML: &str = "http://www.w3.org/1999/xhtml";

/// The largest single text value or attribute accepted in an entry (256 KiB).
pub const MAX_TEXT_BYTES: usize = crate::util::MAX_TEXT_BYTES;
/// The most authors, contributors, categories, links, contents, replies or unknown children an entry
/// may have (each list separately).
pub const MAX_LIST_LEN: usize = crate::util::MAX_LIST_LEN;
/// The deepest element nesting accepted inside an entry (the entry itself is depth 1).
pub const MAX_ENTRY_DEPTH: usize = crate::xml::MAX_XML_DEPTH;
/// The largest XML text [`Entry::from_xml_str`] accepts (1 MiB).
pub const MAX_ENTRY_XML_BYTES: usize = crate::xml::DEFAULT_MAX_XML_BYTES;

/// The name of the XEP-0277 comments node for a post: `urn:xmpp:microblog:0:comments/<item_id>`.
pub fn comments_node_name(item_id: &str) -> String {
    let mut node = String::with_capacity(COMMENTS_NODE_PREFIX.len() + item_id.len());
    node.push_str(COMMENTS_NODE_PREFIX);
    node.push_str(item_id);
    node
}

// ---------------------------------------------------------------------------------------------
// Text constructs
// ---------------------------------------------------------------------------------------------

/// The `<div xmlns='http://www.w3.org/1999/xhtml'>` of an XHTML text construct (RFC 4287 §3.1.1.3).
///
/// Serialises (with serde) as its XML text.
#[derive(Debug, Clone, PartialEq)]
pub struct Xhtml(Element);

impl Xhtml {
    /// Wraps an element: an XHTML `<div/>` is kept as is, anything else is put inside a new one.
    pub fn from_element(el: Element) -> Self {
        let mut el = el;
        strip_prefixes(&mut el);
        if el.is("div", NS_XHTML) {
            Xhtml(el)
        } else {
            Xhtml(Element::builder("div", NS_XHTML).append(el).build())
        }
    }

    /// Parses an XHTML fragment such as `<p>Hello <b>world</b></p>` (the XHTML namespace is implied)
    /// or a complete `<div xmlns='http://www.w3.org/1999/xhtml'>...</div>`.
    pub fn parse(fragment: &str) -> Result<Self, ParseError> {
        let wrapped = format!("<div xmlns='{NS_XHTML}'>{fragment}</div>");
        let mut div = crate::xml::parse_bounded(&wrapped, MAX_ENTRY_XML_BYTES)?;
        check_limits(&div, "xhtml")?;
        // A complete <div/> was given: unwrap it.
        let only_div = {
            let mut elements = div.children();
            match (elements.next(), elements.next()) {
                (Some(first), None)
                    if first.is("div", NS_XHTML) && div.texts().all(|t| t.trim().is_empty()) =>
                {
                    Some(first.clone())
                }
                _ => None,
            }
        };
        if let Some(inner) = only_div {
            div = inner;
        }
        strip_prefixes(&mut div);
        Ok(Xhtml(div))
    }

    /// An XHTML body from plain text: one `<p/>` per paragraph (blank-line separated), `<br/>` for
    /// single line breaks. Markup characters are escaped by the serialiser.
    pub fn from_plain_text(text: &str) -> Self {
        let mut div = Element::builder("div", NS_XHTML).build();
        for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
            let mut p = Element::builder("p", NS_XHTML).build();
            for (i, line) in para.trim_matches('\n').split('\n').enumerate() {
                if i > 0 {
                    p.append_child(Element::bare("br", NS_XHTML));
                }
                p.append_text(line);
            }
            div.append_child(p);
        }
        Xhtml(div)
    }

    /// The `<div/>` element.
    pub fn element(&self) -> &Element {
        &self.0
    }

    /// Consumes the wrapper, returning the `<div/>` element.
    pub fn into_element(self) -> Element {
        self.0
    }

    /// A plain-text rendering: markup stripped, whitespace collapsed, one line per block element.
    pub fn plain_text(&self) -> String {
        xhtml_to_plain(&self.0)
    }
}

impl Serialize for Xhtml {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        XmlText(&self.0).serialize(s)
    }
}

/// An Atom text construct (RFC 4287 §3.1): `<title/>`, `<summary/>`, `<content/>`, `<rights/>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Text {
    /// `type='text'` (or no type): plain text.
    #[serde(rename = "text")]
    Plain(String),
    /// `type='html'`: HTML markup carried as escaped text.
    Html(String),
    /// `type='xhtml'`: an XHTML `<div/>`.
    Xhtml(Xhtml),
}

impl Text {
    /// A plain text value.
    pub fn plain(text: impl Into<String>) -> Self {
        Text::Plain(text.into())
    }

    /// The value's `type` attribute: `text`, `html` or `xhtml`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Text::Plain(_) => "text",
            Text::Html(_) => "html",
            Text::Xhtml(_) => "xhtml",
        }
    }

    /// Whether this is plain text.
    pub fn is_plain(&self) -> bool {
        matches!(self, Text::Plain(_))
    }

    /// A plain-text rendering: the text itself, or the markup stripped (HTML entities decoded).
    pub fn plain_text(&self) -> String {
        match self {
            Text::Plain(s) => s.clone(),
            Text::Html(s) => html_to_plain(s),
            Text::Xhtml(x) => x.plain_text(),
        }
    }

    fn parse(el: &Element, element: &'static str) -> Result<Self, ParseError> {
        let text = match el.attr("type") {
            Some("html") => Text::Html(bounded_text(el, element)?),
            Some("xhtml") => match el.children().find(|c| c.is("div", NS_XHTML)) {
                Some(div) => Text::Xhtml(Xhtml(detached(div))),
                // RFC 4287 requires the <div/>; read what is there as text rather than failing.
                None => Text::Plain(bounded_text(el, element)?),
            },
            // "text", absent, or an unknown value (RFC 4287 allows nothing else): plain text.
            _ => Text::Plain(bounded_text(el, element)?),
        };
        Ok(text)
    }

    fn to_element(&self, name: &str) -> Element {
        let b = Element::builder(name, NS_ATOM).attr(xml_ncname!("type").into(), self.type_name());
        match self {
            Text::Plain(s) | Text::Html(s) => with_text(b.build(), s),
            Text::Xhtml(x) => b.append(x.0.clone()).build(),
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::Plain(s.to_owned())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::Plain(s)
    }
}

impl From<Xhtml> for Text {
    fn from(x: Xhtml) -> Self {
        Text::Xhtml(x)
    }
}

// ---------------------------------------------------------------------------------------------
// xmpp: URIs
// ---------------------------------------------------------------------------------------------

/// An RFC 5122 `xmpp:` URI as XEP-0060 uses it for nodes and items:
/// `xmpp:pubsub.example.org?;node=urn%3Axmpp%3Amicroblog%3A0;item=abc`.
///
/// Parsing percent-decodes, ignores whitespace (XEP-0277's own examples wrap URIs over lines), drops
/// a fragment, skips an authority (`xmpp://me@example.org/...`), and ignores query keys other than
/// `node` and `item`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct XmppUri {
    /// The target entity (a pubsub service or a PEP account).
    pub jid: Jid,
    /// The query type (`pubsub`, `message`...), if any; `?;node=` has none.
    pub action: Option<String>,
    /// The `node` query parameter.
    pub node: Option<String>,
    /// The `item` query parameter.
    pub item: Option<String>,
}

impl XmppUri {
    /// A URI for an entity: `xmpp:<jid>`.
    pub fn new(jid: Jid) -> Self {
        XmppUri {
            jid,
            action: None,
            node: None,
            item: None,
        }
    }

    /// Parses an `xmpp:` URI; a bad JID, bad percent-encoding or another scheme is
    /// [`ParseError::InvalidValue`].
    pub fn parse(uri: &str) -> Result<Self, ParseError> {
        let cleaned;
        let uri = if uri.bytes().any(|b| b.is_ascii_whitespace()) {
            cleaned = uri
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect::<String>();
            cleaned.as_str()
        } else {
            uri
        };
        let rest = match uri.get(..5) {
            Some(scheme) if scheme.eq_ignore_ascii_case("xmpp:") => &uri[5..],
            _ => return Err(invalid("xmpp-uri", "not an xmpp: URI")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let path = match path.strip_prefix("//") {
            Some(auth_and_path) => match auth_and_path.split_once('/') {
                Some((_, p)) => p,
                None => "",
            },
            None => path,
        };
        let jid_text = percent_decode(path, "xmpp-uri")?;
        if jid_text.is_empty() {
            return Err(invalid("xmpp-uri", "no JID in the URI"));
        }
        let jid = Jid::new(&jid_text)
            .map_err(|e| invalid("xmpp-uri", format!("bad JID {jid_text:?}: {e}")))?;
        let mut parsed = XmppUri::new(jid);
        if let Some(query) = query {
            let mut parts = query.split(';');
            let action = percent_decode(parts.next().unwrap_or_default(), "xmpp-uri")?;
            if !action.is_empty() {
                parsed.action = Some(action);
            }
            for pair in parts {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let slot = match key {
                    "node" => &mut parsed.node,
                    "item" => &mut parsed.item,
                    _ => continue,
                };
                let value = percent_decode(value, "xmpp-uri")?;
                if slot.is_none() && !value.is_empty() {
                    *slot = Some(value);
                }
            }
        }
        Ok(parsed)
    }

    /// The node this URI points to, if it names one.
    pub fn node_ref(&self) -> Option<NodeRef> {
        Some(NodeRef {
            service: self.jid.clone(),
            node: self.node.clone()?,
        })
    }

    /// The item this URI points to, if it names a node and an item.
    pub fn item_ref(&self) -> Option<ItemRef> {
        Some(ItemRef {
            service: self.jid.clone(),
            node: self.node.clone()?,
            item: self.item.clone()?,
        })
    }
}

impl fmt::Display for XmppUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("xmpp:")?;
        percent_encode_into(f, &self.jid.to_string(), PATH_SAFE)?;
        if self.action.is_some() || self.node.is_some() || self.item.is_some() {
            f.write_str("?")?;
            if let Some(action) = &self.action {
                percent_encode_into(f, action, b"")?;
            }
            if let Some(node) = &self.node {
                f.write_str(";node=")?;
                percent_encode_into(f, node, b"")?;
            }
            if let Some(item) = &self.item {
                f.write_str(";item=")?;
                percent_encode_into(f, item, b"")?;
            }
        }
        Ok(())
    }
}

impl FromStr for XmppUri {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        XmppUri::parse(s)
    }
}

/// A pubsub node: service JID and node name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// The pubsub service (or PEP account).
    pub service: Jid,
    /// The node name.
    pub node: String,
}

impl NodeRef {
    /// A node reference.
    pub fn new(service: Jid, node: impl Into<String>) -> Self {
        NodeRef {
            service,
            node: node.into(),
        }
    }

    /// `xmpp:<service>?;node=<node>`.
    pub fn to_uri(&self) -> XmppUri {
        XmppUri {
            jid: self.service.clone(),
            action: None,
            node: Some(self.node.clone()),
            item: None,
        }
    }
}

/// A pubsub item: service JID, node name and item id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemRef {
    /// The pubsub service (or PEP account).
    pub service: Jid,
    /// The node name.
    pub node: String,
    /// The item id.
    pub item: String,
}

impl ItemRef {
    /// An item reference.
    pub fn new(service: Jid, node: impl Into<String>, item: impl Into<String>) -> Self {
        ItemRef {
            service,
            node: node.into(),
            item: item.into(),
        }
    }

    /// `xmpp:<service>?;node=<node>;item=<item>`.
    pub fn to_uri(&self) -> XmppUri {
        XmppUri {
            jid: self.service.clone(),
            action: None,
            node: Some(self.node.clone()),
            item: Some(self.item.clone()),
        }
    }
}

/// Characters left as is in the JID part of an `xmpp:` URI (besides ASCII letters, digits and `-._~`).
const PATH_SAFE: &[u8] = b"@/!$'()*+,=:";

fn percent_encode_into(f: &mut fmt::Formatter<'_>, s: &str, also_safe: &[u8]) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let safe = b.is_ascii_alphanumeric() || b"-._~".contains(&b) || also_safe.contains(&b);
        if !safe {
            // `start < i` only after a run of safe ASCII bytes, so both are char boundaries.
            if start < i {
                f.write_str(&s[start..i])?;
            }
            let esc = [b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            // `esc` is ASCII.
            f.write_str(std::str::from_utf8(&esc).map_err(|_| fmt::Error)?)?;
            start = i + 1;
        }
    }
    f.write_str(&s[start..])
}

fn percent_decode(s: &str, element: &'static str) -> Result<String, ParseError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    // Both digits are < 16, so this fits in a byte.
                    out.push(((h << 4) | l) as u8);
                    i += 3;
                }
                _ => return Err(invalid(element, "bad percent-encoding")),
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(element, "percent-encoding is not UTF-8"))
}

/// Validates `value` if it is an `xmpp:` URI.
fn check_xmpp_uri(value: &str) -> Result<(), ParseError> {
    if value
        .trim_start()
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("xmpp:"))
    {
        XmppUri::parse(value)?;
    }
    Ok(())
}

fn as_xmpp_uri(value: &str) -> Option<XmppUri> {
    XmppUri::parse(value).ok()
}

// ---------------------------------------------------------------------------------------------
// Entry parts
// ---------------------------------------------------------------------------------------------

/// An Atom person construct (`<author/>`, `<contributor/>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Person {
    /// `<name/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `<uri/>`: for XMPP authors an `xmpp:` URI of their JID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `<email/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Person {
    /// A person with this JID (`<uri>xmpp:jid</uri>`) and an optional display name.
    pub fn from_jid(jid: &Jid, name: Option<String>) -> Self {
        Person {
            name,
            uri: Some(XmppUri::new(jid.clone()).to_string()),
            email: None,
        }
    }

    /// The JID from an `xmpp:` [`Person::uri`].
    pub fn jid(&self) -> Option<Jid> {
        self.uri.as_deref().and_then(as_xmpp_uri).map(|u| u.jid)
    }

    fn parse(el: &Element) -> Result<Self, ParseError> {
        let mut person = Person::default();
        for child in el.children() {
            if !child.has_ns(NS_ATOM) {
                continue;
            }
            let slot = match child.name() {
                "name" => &mut person.name,
                "uri" => &mut person.uri,
                "email" => &mut person.email,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(bounded_text(child, "author")?);
            }
        }
        if let Some(uri) = &person.uri {
            check_xmpp_uri(uri)?;
        }
        Ok(person)
    }

    fn to_element(&self, name: &str) -> Element {
        let mut el = Element::bare(name, NS_ATOM);
        for (child, value) in [
            ("name", &self.name),
            ("uri", &self.uri),
            ("email", &self.email),
        ] {
            if let Some(v) = value {
                el.append_child(with_text(Element::bare(child, NS_ATOM), v));
            }
        }
        el
    }
}

/// An `<atom:category/>`: a tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    /// The tag itself (`term`).
    pub term: String,
    /// `scheme`: the vocabulary the term belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// `label`: a human-readable label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Category {
    /// A tag.
    pub fn new(term: impl Into<String>) -> Self {
        Category {
            term: term.into(),
            scheme: None,
            label: None,
        }
    }

    fn to_element(&self) -> Element {
        Element::builder("category", NS_ATOM)
            .attr(xml_ncname!("term").into(), self.term.as_str())
            .attr(xml_ncname!("scheme").into(), self.scheme.as_deref())
            .attr(xml_ncname!("label").into(), self.label.as_deref())
            .build()
    }
}

/// An `<atom:link/>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Link {
    /// `rel` (RFC 4287: absent means `alternate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    /// `href`.
    pub href: String,
    /// `type`: the media type of the target.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `title`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `length`: the size of the target in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// `hreflang`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hreflang: Option<String>,
    /// `ref`: the atom:id of the target (XEP-0277 puts it on `rel='via'` links of repeats).
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl Link {
    /// A link with a relation.
    pub fn new(rel: impl Into<String>, href: impl Into<String>) -> Self {
        Link {
            rel: Some(rel.into()),
            href: href.into(),
            ..Link::default()
        }
    }

    /// An attachment (`rel='enclosure'`, XEP-0472 galleries): a file URL, its media type and size.
    pub fn enclosure(
        href: impl Into<String>,
        media_type: Option<String>,
        length: Option<u64>,
    ) -> Self {
        Link {
            media_type,
            length,
            ..Link::new("enclosure", href)
        }
    }

    /// The XEP-0277 comments link: `rel='replies' title='comments' href='xmpp:service?;node=...'`.
    pub fn comments(node: &NodeRef) -> Self {
        Link {
            title: Some("comments".to_owned()),
            ..Link::new("replies", node.to_uri().to_string())
        }
    }

    /// The relation, with RFC 4287's default: `alternate` when absent.
    pub fn rel_or_default(&self) -> &str {
        self.rel.as_deref().unwrap_or("alternate")
    }

    /// The `href` as an `xmpp:` URI, if it is one.
    pub fn xmpp_uri(&self) -> Option<XmppUri> {
        as_xmpp_uri(&self.href)
    }

    /// Whether this is a XEP-0277 comments link (`rel='replies'`, `title='comments'`).
    pub fn is_comments(&self) -> bool {
        self.rel.as_deref() == Some("replies") && self.title.as_deref() == Some("comments")
    }

    /// `None` if the element has no `href` (it is then kept raw in [`Entry::extra`]).
    fn parse(el: &Element) -> Result<Option<Self>, ParseError> {
        let Some(href) = el.attr("href") else {
            return Ok(None);
        };
        check_xmpp_uri(href)?;
        let length = match el.attr("length") {
            Some(l) => Some(
                l.trim()
                    .parse::<u64>()
                    .map_err(|_| invalid("link@length", format!("not a byte count: {l:?}")))?,
            ),
            None => None,
        };
        Ok(Some(Link {
            rel: el.attr("rel").map(str::to_owned),
            href: href.to_owned(),
            media_type: el.attr("type").map(str::to_owned),
            title: el.attr("title").map(str::to_owned),
            length,
            hreflang: el.attr("hreflang").map(str::to_owned),
            reference: el.attr("ref").map(str::to_owned),
        }))
    }

    fn to_element(&self) -> Element {
        Element::builder("link", NS_ATOM)
            .attr(xml_ncname!("rel").into(), self.rel.as_deref())
            .attr(xml_ncname!("href").into(), self.href.as_str())
            .attr(xml_ncname!("type").into(), self.media_type.as_deref())
            .attr(xml_ncname!("title").into(), self.title.as_deref())
            .attr(
                xml_ncname!("length").into(),
                self.length.map(|l| l.to_string()),
            )
            .attr(xml_ncname!("hreflang").into(), self.hreflang.as_deref())
            .attr(xml_ncname!("ref").into(), self.reference.as_deref())
            .build()
    }
}

/// An RFC 4685 `<thr:in-reply-to/>`: the post this entry answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InReplyTo {
    /// `ref`: the atom:id of the post replied to.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `href`: where the post is (XEP-0472: its `xmpp:` URI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// `type`: the media type of `href`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `source`: the feed of the post replied to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl InReplyTo {
    /// A reply to a pubsub item; `reference` is the item's atom:id (its `xmpp:` URI is used if unknown).
    pub fn to_item(item: &ItemRef, reference: Option<String>) -> Self {
        let href = item.to_uri().to_string();
        InReplyTo {
            reference: reference.unwrap_or_else(|| href.clone()),
            href: Some(href),
            media_type: None,
            source: None,
        }
    }

    /// The `href` as an `xmpp:` URI, if it is one.
    pub fn xmpp_uri(&self) -> Option<XmppUri> {
        self.href.as_deref().and_then(as_xmpp_uri)
    }

    /// The pubsub item replied to, if `href` is an `xmpp:` item URI.
    pub fn item(&self) -> Option<ItemRef> {
        self.xmpp_uri()?.item_ref()
    }

    /// `None` if the element has no `ref` (it is then kept raw in [`Entry::extra`]).
    fn parse(el: &Element) -> Result<Option<Self>, ParseError> {
        let Some(reference) = el.attr("ref") else {
            return Ok(None);
        };
        let href = el.attr("href");
        if let Some(href) = href {
            check_xmpp_uri(href)?;
        }
        Ok(Some(InReplyTo {
            reference: reference.to_owned(),
            href: href.map(str::to_owned),
            media_type: el.attr("type").map(str::to_owned),
            source: el.attr("source").map(str::to_owned),
        }))
    }

    fn to_element(&self) -> Element {
        Element::builder("in-reply-to", NS_THREAD)
            .attr(xml_ncname!("ref").into(), self.reference.as_str())
            .attr(xml_ncname!("href").into(), self.href.as_deref())
            .attr(xml_ncname!("type").into(), self.media_type.as_deref())
            .attr(xml_ncname!("source").into(), self.source.as_deref())
            .build()
    }
}

/// `<atom:generator/>`: the software that wrote the entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generator {
    /// The software's name (the element's text).
    pub name: String,
    /// `uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Generator {
    fn to_element(&self) -> Element {
        let el = Element::builder("generator", NS_ATOM)
            .attr(xml_ncname!("uri").into(), self.uri.as_deref())
            .attr(xml_ncname!("version").into(), self.version.as_deref())
            .build();
        with_text(el, &self.name)
    }
}

/// A XEP-0080 `<geoloc xmlns='http://jabber.org/protocol/geoloc'/>` geotag (XEP-0277 §Geotagging).
///
/// The common fields are typed; every other child is kept in [`Geoloc::other`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Geoloc {
    /// Latitude in decimal degrees North.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude in decimal degrees East.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// Altitude in metres above or below sea level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt: Option<f64>,
    /// Horizontal accuracy in metres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Country name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// ISO 3166 two-letter country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub countrycode: Option<String>,
    /// Administrative region (state, province).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Locality (town, city).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Street address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    /// Postal code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postalcode: Option<String>,
    /// Named area (park, neighbourhood).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// Building.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub building: Option<String>,
    /// Floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
    /// Room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Free-text description of the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-text catch-all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A URI about the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// When the location was recorded (XEP-0082 text, kept as given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Every other child (speed, bearing, datum...), unchanged.
    #[serde(
        serialize_with = "serialize_elements",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub other: Vec<Element>,
}

impl Geoloc {
    /// A geotag at a point.
    pub fn at(lat: f64, lon: f64) -> Self {
        Geoloc {
            lat: Some(lat),
            lon: Some(lon),
            ..Geoloc::default()
        }
    }

    fn string_slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "country" => &mut self.country,
            "countrycode" => &mut self.countrycode,
            "region" => &mut self.region,
            "locality" => &mut self.locality,
            "street" => &mut self.street,
            "postalcode" => &mut self.postalcode,
            "area" => &mut self.area,
            "building" => &mut self.building,
            "floor" => &mut self.floor,
            "room" => &mut self.room,
            "description" => &mut self.description,
            "text" => &mut self.text,
            "uri" => &mut self.uri,
            "timestamp" => &mut self.timestamp,
            _ => return None,
        })
    }

    fn number_slot(&mut self, name: &str) -> Option<&mut Option<f64>> {
        Some(match name {
            "lat" => &mut self.lat,
            "lon" => &mut self.lon,
            "alt" => &mut self.alt,
            "accuracy" => &mut self.accuracy,
            _ => return None,
        })
    }

    /// Reads a `<geoloc xmlns='http://jabber.org/protocol/geoloc'/>` (also used by calendar events).
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        let mut geo = Geoloc::default();
        for child in el.children() {
            if child.has_ns(NS_GEOLOC) {
                let name = child.name();
                if let Some(slot) = geo.number_slot(name) {
                    if slot.is_none() {
                        let text = child.text();
                        let v = text.trim().parse::<f64>().ok().filter(|v| v.is_finite());
                        match v {
                            Some(v) => *slot = Some(v),
                            None => {
                                return Err(invalid("geoloc", format!("<{name}/> is not a number")))
                            }
                        }
                        continue;
                    }
                } else if let Some(slot) = geo.string_slot(name) {
                    if slot.is_none() {
                        *slot = Some(bounded_text(child, "geoloc")?);
                        continue;
                    }
                }
            }
            push_bounded(&mut geo.other, detached(child), "geoloc")?;
        }
        Ok(geo)
    }

    /// The `<geoloc/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::bare("geoloc", NS_GEOLOC);
        let numbers = [
            ("lat", self.lat),
            ("lon", self.lon),
            ("alt", self.alt),
            ("accuracy", self.accuracy),
        ];
        for (name, value) in numbers {
            if let Some(v) = value {
                el.append_child(with_text(Element::bare(name, NS_GEOLOC), &v.to_string()));
            }
        }
        let strings = [
            ("country", &self.country),
            ("countrycode", &self.countrycode),
            ("region", &self.region),
            ("locality", &self.locality),
            ("street", &self.street),
            ("postalcode", &self.postalcode),
            ("area", &self.area),
            ("building", &self.building),
            ("floor", &self.floor),
            ("room", &self.room),
            ("description", &self.description),
            ("text", &self.text),
            ("uri", &self.uri),
            ("timestamp", &self.timestamp),
        ];
        for (name, value) in strings {
            if let Some(v) = value {
                el.append_child(with_text(Element::bare(name, NS_GEOLOC), v));
            }
        }
        for other in &self.other {
            el.append_child(other.clone());
        }
        make_writable(&mut el);
        el
    }
}

// ---------------------------------------------------------------------------------------------
// The entry
// ---------------------------------------------------------------------------------------------

/// An Atom `<entry/>` as XEP-0277 and XEP-0472 publish it.
///
/// Parse with [`Entry::from_xml_str`] or `Entry::try_from(&element)`; serialise with
/// `Element::from(&entry)` or [`Entry::to_xml_string`]. Element order is normalised on output
/// (Atom gives it no meaning); every child this type does not model is kept in [`Entry::extra`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entry {
    /// `<id/>`: the atom:id (Libervia writes the bare item id, others `tag:` or `xmpp:` URIs).
    /// See [`Entry::item_id`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `<title/>` (required by RFC 4287, missing in some comments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    /// `<summary/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    /// The `<content/>` elements: XEP-0277 publishers of XHTML also write a text version.
    /// Content given by `src` or in another media type is kept in [`Entry::extra`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Text>,
    /// `<author/>`s. In a XEP-0277 repeat this is the original post's author.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Person>,
    /// `<contributor/>`s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contributors: Vec<Person>,
    /// `<published/>` (XEP-0082 date-time, precision kept).
    #[serde(
        serialize_with = "serialize_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub published: Option<DateTime<FixedOffset>>,
    /// `<updated/>` (XEP-0082 date-time, precision kept).
    #[serde(
        serialize_with = "serialize_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated: Option<DateTime<FixedOffset>>,
    /// `xml:lang` of the entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `<category/>`s: the post's tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// `<link/>`s: alternates, comments nodes, repeats (`via`), attachments (`enclosure`)...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// `<thr:in-reply-to/>`s: the posts this one answers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_reply_to: Vec<InReplyTo>,
    /// `<generator/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<Generator>,
    /// A XEP-0080 geotag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoloc: Option<Geoloc>,
    /// Every child not modelled above (and duplicates of single-valued ones), unchanged, so that
    /// republishing an entry does not drop data.
    #[serde(
        serialize_with = "serialize_elements",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra: Vec<Element>,
}

impl Entry {
    /// An empty entry.
    pub fn new() -> Self {
        Entry::default()
    }

    /// A new post: a plain-text title and body (no `<content/>` if `body` is empty), published and
    /// updated now. Set the id with [`Entry::with_id`] or [`Entry::prepare_for_publish`].
    pub fn new_post(title: impl Into<String>, body: impl Into<String>) -> Self {
        let now = now();
        let body = body.into();
        Entry {
            title: Some(Text::Plain(title.into())),
            content: if body.is_empty() {
                Vec::new()
            } else {
                vec![Text::Plain(body)]
            },
            published: Some(now),
            updated: Some(now),
            ..Entry::default()
        }
    }

    /// A repeat (XEP-0277 §Repeating a Post) of `original`, found at `original_item`: its title,
    /// content, authors (the original author), tags, comments links and publication date are kept,
    /// a `rel='via'` link points at the original (with its atom:id as `ref`), the id is cleared (set
    /// the new item's) and `updated` is now.
    pub fn repeat_of(original: &Entry, original_item: &ItemRef) -> Self {
        let mut entry = original.clone();
        entry.id = None;
        entry
            .links
            .retain(|l| !matches!(l.rel_or_default(), "alternate" | "via" | "self" | "edit"));
        entry.links.push(Link {
            reference: original.id.clone(),
            ..Link::new("via", original_item.to_uri().to_string())
        });
        entry.updated = Some(now());
        entry
    }

    /// Sets the atom:id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the title.
    pub fn with_title(mut self, title: impl Into<Text>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the summary.
    pub fn with_summary(mut self, summary: impl Into<Text>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// Adds a content; plain text goes before XHTML (the order Libervia writes).
    pub fn with_content(mut self, content: impl Into<Text>) -> Self {
        let content = content.into();
        if content.is_plain() {
            let pos = self.content.iter().take_while(|c| c.is_plain()).count();
            self.content.insert(pos, content);
        } else {
            self.content.push(content);
        }
        self
    }

    /// Adds an XHTML content, and (XEP-0277: publishing XHTML MUST also publish text) its plain-text
    /// rendering if the entry has no text content yet.
    pub fn with_xhtml(mut self, xhtml: Xhtml) -> Self {
        if !self.content.iter().any(Text::is_plain) {
            let plain = xhtml.plain_text();
            self.content.insert(0, Text::Plain(plain));
        }
        self.content.push(Text::Xhtml(xhtml));
        self
    }

    /// Adds an author.
    pub fn with_author(mut self, author: Person) -> Self {
        self.authors.push(author);
        self
    }

    /// Adds a tag (`<category term=.../>`), unless the entry already has it.
    pub fn with_tag(mut self, term: impl Into<String>) -> Self {
        let term = term.into();
        if !self.categories.iter().any(|c| c.term == term) {
            self.categories.push(Category::new(term));
        }
        self
    }

    /// Adds a link.
    pub fn with_link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Adds the XEP-0277 comments link to a comments node (usually on a pubsub service, named with
    /// [`comments_node_name`]).
    pub fn with_comments(mut self, service: Jid, node: impl Into<String>) -> Self {
        self.links
            .push(Link::comments(&NodeRef::new(service, node)));
        self
    }

    /// Marks the entry as a reply.
    pub fn with_in_reply_to(mut self, reply: InReplyTo) -> Self {
        self.in_reply_to.push(reply);
        self
    }

    /// Adds an attachment (`rel='enclosure'`).
    pub fn with_enclosure(
        mut self,
        href: impl Into<String>,
        media_type: Option<String>,
        length: Option<u64>,
    ) -> Self {
        self.links.push(Link::enclosure(href, media_type, length));
        self
    }

    /// Sets the geotag.
    pub fn with_geoloc(mut self, geoloc: Geoloc) -> Self {
        self.geoloc = Some(geoloc);
        self
    }

    /// Sets `xml:lang`.
    pub fn with_language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// Sets the publication date.
    pub fn with_published(mut self, date: DateTime<FixedOffset>) -> Self {
        self.published = Some(date);
        self
    }

    /// Sets the update date.
    pub fn with_updated(mut self, date: DateTime<FixedOffset>) -> Self {
        self.updated = Some(date);
        self
    }

    /// Fills what publishing needs and is missing: the id (`item_id`, as Libervia does), `updated`
    /// and `published` (now), and a text content next to an XHTML-only one.
    pub fn prepare_for_publish(&mut self, item_id: &str) {
        if self.id.is_none() {
            self.id = Some(item_id.to_owned());
        }
        let now = now();
        if self.updated.is_none() {
            self.updated = Some(now);
        }
        if self.published.is_none() {
            self.published = self.updated;
        }
        if !self.content.iter().any(Text::is_plain) {
            let plain = self.content.iter().find_map(|c| match c {
                Text::Xhtml(x) => Some(x.plain_text()),
                _ => None,
            });
            if let Some(plain) = plain {
                self.content.insert(0, Text::Plain(plain));
            }
        }
    }

    /// Checks what RFC 4287 and XEP-0277 require of a published entry: `<id/>`, `<title/>` and
    /// `<updated/>` present, a text content next to any XHTML one, and comments links that point to
    /// an `xmpp:` node URI.
    pub fn validate_for_publish(&self) -> Result<(), ParseError> {
        for (present, child) in [
            (self.id.is_some(), "id"),
            (self.title.is_some(), "title"),
            (self.updated.is_some(), "updated"),
        ] {
            if !present {
                return Err(ParseError::MissingChild {
                    element: "entry",
                    child,
                });
            }
        }
        if self.content.iter().any(|c| matches!(c, Text::Xhtml(_)))
            && !self.content.iter().any(Text::is_plain)
        {
            return Err(invalid(
                "content",
                "XHTML content needs a text content too (XEP-0277)",
            ));
        }
        for link in self.links.iter().filter(|l| l.is_comments()) {
            let uri = XmppUri::parse(&link.href)?;
            if uri.node.is_none() {
                return Err(invalid("link", "comments link without a node"));
            }
        }
        Ok(())
    }

    /// Parses an `<entry xmlns='http://www.w3.org/2005/Atom'>` from XML text (at most
    /// [`MAX_ENTRY_XML_BYTES`]).
    pub fn from_xml_str(xml: &str) -> Result<Self, ParseError> {
        let el = crate::xml::parse_bounded(xml, MAX_ENTRY_XML_BYTES)?;
        Entry::try_from(&el)
    }

    /// Serialises to XML text.
    pub fn to_xml_string(&self) -> Result<String, ParseError> {
        let mut out = Vec::new();
        Element::from(self)
            .write_to(&mut out)
            .map_err(|e| ParseError::Xml(e.to_string()))?;
        String::from_utf8(out).map_err(|e| ParseError::Xml(e.to_string()))
    }

    /// The pubsub item id this entry's atom:id designates, if any (see [`item_id_from_atom_id`]).
    pub fn item_id(&self) -> Option<String> {
        self.id.as_deref().and_then(item_id_from_atom_id)
    }

    /// The title as plain text.
    pub fn title_text(&self) -> Option<String> {
        self.title.as_ref().map(Text::plain_text)
    }

    /// The body as plain text: the first text content, else a rendering of the first content.
    pub fn body_text(&self) -> Option<String> {
        self.content
            .iter()
            .find_map(|c| match c {
                Text::Plain(s) => Some(s.clone()),
                _ => None,
            })
            .or_else(|| self.content.first().map(Text::plain_text))
    }

    /// The first XHTML content.
    pub fn body_xhtml(&self) -> Option<&Xhtml> {
        self.content.iter().find_map(|c| match c {
            Text::Xhtml(x) => Some(x),
            _ => None,
        })
    }

    /// The tags (category terms).
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|c| c.term.as_str())
    }

    /// The comments nodes of XEP-0277 comments links (`rel='replies' title='comments'` with an
    /// `xmpp:service?;node=...` href).
    pub fn comments(&self) -> Vec<NodeRef> {
        self.links
            .iter()
            .filter(|l| l.is_comments())
            .filter_map(|l| l.xmpp_uri()?.node_ref())
            .collect()
    }

    /// The pubsub items this entry replies to (`thr:in-reply-to` with an `xmpp:` item URI).
    pub fn reply_targets(&self) -> Vec<ItemRef> {
        self.in_reply_to
            .iter()
            .filter_map(InReplyTo::item)
            .collect()
    }

    /// The `rel='via'` link of a repeat (XEP-0277 §Repeating a Post).
    pub fn via_link(&self) -> Option<&Link> {
        self.links.iter().find(|l| l.rel.as_deref() == Some("via"))
    }

    /// The original pubsub item of a repeat, from its `rel='via'` `xmpp:` link.
    pub fn repeated_item(&self) -> Option<ItemRef> {
        self.links
            .iter()
            .filter(|l| l.rel.as_deref() == Some("via"))
            .find_map(|l| l.xmpp_uri()?.item_ref())
    }

    /// Attachments (`rel='enclosure'` links: XEP-0472 gallery pictures...).
    pub fn enclosures(&self) -> impl Iterator<Item = &Link> {
        self.links
            .iter()
            .filter(|l| l.rel.as_deref() == Some("enclosure"))
    }

    /// Reads one child of the entry into the matching field.
    fn absorb(&mut self, child: &Element) -> Result<(), ParseError> {
        if child.has_ns(NS_ATOM) {
            match child.name() {
                "id" if self.id.is_none() => {
                    self.id = Some(bounded_text(child, "id")?);
                    return Ok(());
                }
                "title" if self.title.is_none() => {
                    self.title = Some(Text::parse(child, "title")?);
                    return Ok(());
                }
                "summary" if self.summary.is_none() => {
                    self.summary = Some(Text::parse(child, "summary")?);
                    return Ok(());
                }
                "content"
                    if child.attr("src").is_none()
                        && matches!(child.attr("type"), None | Some("text" | "html" | "xhtml")) =>
                {
                    push_bounded(&mut self.content, Text::parse(child, "content")?, "content")?;
                    return Ok(());
                }
                "author" => {
                    return push_bounded(&mut self.authors, Person::parse(child)?, "author");
                }
                "contributor" => {
                    return push_bounded(
                        &mut self.contributors,
                        Person::parse(child)?,
                        "contributor",
                    );
                }
                "published" if self.published.is_none() => {
                    self.published = Some(parse_date(&child.text(), "published")?);
                    return Ok(());
                }
                "updated" if self.updated.is_none() => {
                    self.updated = Some(parse_date(&child.text(), "updated")?);
                    return Ok(());
                }
                "category" => {
                    if let Some(term) = child.attr("term") {
                        let category = Category {
                            term: term.to_owned(),
                            scheme: child.attr("scheme").map(str::to_owned),
                            label: child.attr("label").map(str::to_owned),
                        };
                        return push_bounded(&mut self.categories, category, "category");
                    }
                }
                "link" => {
                    if let Some(link) = Link::parse(child)? {
                        return push_bounded(&mut self.links, link, "link");
                    }
                }
                "generator" if self.generator.is_none() => {
                    self.generator = Some(Generator {
                        name: bounded_text(child, "generator")?,
                        uri: child.attr("uri").map(str::to_owned),
                        version: child.attr("version").map(str::to_owned),
                    });
                    return Ok(());
                }
                _ => {}
            }
        } else if child.is("in-reply-to", NS_THREAD) {
            if let Some(reply) = InReplyTo::parse(child)? {
                return push_bounded(&mut self.in_reply_to, reply, "in-reply-to");
            }
        } else if child.is("geoloc", NS_GEOLOC) && self.geoloc.is_none() {
            self.geoloc = Some(Geoloc::parse(child)?);
            return Ok(());
        }
        push_bounded(&mut self.extra, detached(child), "entry")
    }
}

impl TryFrom<&Element> for Entry {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        crate::xml::expect_element(el, NS_ATOM, "entry")?;
        check_limits(el, "entry")?;
        let mut entry = Entry {
            language: el.attr_ns(XMLNS_XML, "lang").map(str::to_owned),
            ..Entry::default()
        };
        for child in el.children() {
            entry.absorb(child)?;
        }
        Ok(entry)
    }
}

impl TryFrom<Element> for Entry {
    type Error = ParseError;

    fn try_from(el: Element) -> Result<Self, ParseError> {
        Entry::try_from(&el)
    }
}

impl FromStr for Entry {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Entry::from_xml_str(s)
    }
}

impl From<&Entry> for Element {
    fn from(entry: &Entry) -> Element {
        let mut root = Element::builder("entry", NS_ATOM)
            .attr_ns(
                Namespace::XML,
                xml_ncname!("lang").into(),
                entry.language.as_deref(),
            )
            .build();
        // Declare the default namespace, and `thr` when replies are present, as Atom feeds do.
        root.prefixes = if entry.in_reply_to.is_empty() {
            NS_ATOM.to_owned().into()
        } else {
            std::collections::BTreeMap::from([
                (None, NS_ATOM.to_owned()),
                (Some("thr".to_owned()), NS_THREAD.to_owned()),
            ])
            .into()
        };
        if let Some(id) = &entry.id {
            root.append_child(with_text(Element::bare("id", NS_ATOM), id));
        }
        if let Some(title) = &entry.title {
            root.append_child(title.to_element("title"));
        }
        if let Some(summary) = &entry.summary {
            root.append_child(summary.to_element("summary"));
        }
        for content in &entry.content {
            root.append_child(content.to_element("content"));
        }
        for author in &entry.authors {
            root.append_child(author.to_element("author"));
        }
        for contributor in &entry.contributors {
            root.append_child(contributor.to_element("contributor"));
        }
        for link in &entry.links {
            root.append_child(link.to_element());
        }
        for category in &entry.categories {
            root.append_child(category.to_element());
        }
        if let Some(published) = &entry.published {
            root.append_child(date_element("published", published));
        }
        if let Some(updated) = &entry.updated {
            root.append_child(date_element("updated", updated));
        }
        if let Some(generator) = &entry.generator {
            root.append_child(generator.to_element());
        }
        for reply in &entry.in_reply_to {
            root.append_child(reply.to_element());
        }
        if let Some(geoloc) = &entry.geoloc {
            root.append_child(geoloc.to_element());
        }
        for extra in &entry.extra {
            root.append_child(extra.clone());
        }
        make_writable(&mut root);
        root
    }
}

impl From<Entry> for Element {
    fn from(entry: Entry) -> Element {
        Element::from(&entry)
    }
}

/// The pubsub item id an atom:id designates, following the conventions seen in practice:
///
/// - an `xmpp:` URI: its `item` parameter (`xmpp:s?;node=n;item=abc` -> `abc`);
/// - a `tag:` URI: the last segment of its specific part, without XEP-0277's `posts-` prefix
///   (`tag:montague.lit,2008-05-08:posts-1cb57d9c` -> `1cb57d9c`);
/// - `urn:uuid:<uuid>`: the UUID;
/// - an `http(s):` URL: its last path segment;
/// - anything else (Libervia writes the bare item id): the id itself.
///
/// `None` when the result would be empty or contain whitespace.
pub fn item_id_from_atom_id(atom_id: &str) -> Option<String> {
    let id = atom_id.trim();
    let scheme = id.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    let candidate: String = match scheme.as_deref() {
        Some("xmpp") => XmppUri::parse(id).ok()?.item?,
        Some("tag") => {
            // tag:authority,date:specific
            let specific = id.splitn(3, ':').nth(2)?;
            let last = specific.rsplit(['/', ':']).next()?;
            last.strip_prefix("posts-").unwrap_or(last).to_owned()
        }
        Some("urn") => {
            let lower = id.to_ascii_lowercase();
            if lower.starts_with("urn:uuid:") {
                id[9..].to_owned()
            } else {
                id.rsplit(':').next()?.to_owned()
            }
        }
        Some("http" | "https") => {
            let path = id.split(['?', '#']).next()?;
            path.trim_end_matches('/').rsplit('/').next()?.to_owned()
        }
        _ => id.to_owned(),
    };
    if candidate.is_empty() || candidate.chars().any(char::is_whitespace) {
        None
    } else {
        Some(candidate)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn now() -> DateTime<FixedOffset> {
    Utc::now().trunc_subsecs(3).fixed_offset()
}

/// The element's text, refused above [`MAX_TEXT_BYTES`].
fn bounded_text(el: &Element, element: &'static str) -> Result<String, ParseError> {
    let text = el.text();
    if text.len() > MAX_TEXT_BYTES {
        return Err(ParseError::TooLarge {
            element,
            size: text.len(),
            limit: MAX_TEXT_BYTES,
        });
    }
    Ok(text)
}

fn with_text(mut el: Element, text: &str) -> Element {
    if !text.is_empty() {
        el.append_text_node(text);
    }
    el
}

fn date_element(name: &str, date: &DateTime<FixedOffset>) -> Element {
    with_text(Element::bare(name, NS_ATOM), &format_date(date))
}

fn serialize_date<S: Serializer>(
    date: &Option<DateTime<FixedOffset>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match date {
        Some(d) => s.serialize_some(&format_date(d)),
        None => s.serialize_none(),
    }
}

/// Serialises an element as its XML text.
struct XmlText<'a>(&'a Element);

impl Serialize for XmlText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A copy made safe for the serialiser: elements in `extra` may come from callers.
        let mut copy = self.0.clone();
        copy.prefixes = Default::default();
        make_writable(&mut copy);
        let mut out = Vec::new();
        copy.write_to(&mut out).map_err(serde::ser::Error::custom)?;
        let text = String::from_utf8(out).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

fn serialize_elements<S: Serializer>(elements: &[Element], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(elements.iter().map(XmlText))
}

// ---------------------------------------------------------------------------------------------
// Plain-text rendering of markup
// ---------------------------------------------------------------------------------------------

/// Builds plain text: whitespace runs collapse to one space, block boundaries become line breaks.
#[derive(Default)]
struct PlainWriter {
    out: String,
    pending_space: bool,
}

impl PlainWriter {
    fn text(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() {
                self.pending_space = true;
            } else {
                if self.pending_space && !self.out.is_empty() && !self.out.ends_with('\n') {
                    self.out.push(' ');
                }
                self.pending_space = false;
                self.out.push(c);
            }
        }
    }

    fn line_break(&mut self) {
        self.pending_space = false;
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn hard_break(&mut self) {
        self.pending_space = false;
        self.out.push('\n');
    }

    fn finish(self) -> String {
        let trimmed = self.out.trim_end();
        trimmed.trim_start_matches('\n').to_owned()
    }
}

fn is_block(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "p" | "div"
            | "blockquote"
            | "pre"
            | "ul"
            | "ol"
            | "li"
            | "dl"
            | "dt"
            | "dd"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "table"
            | "tr"
            | "section"
            | "article"
            | "header"
            | "footer"
            | "figure"
            | "figcaption"
            | "hr"
    )
}

/// Text of an XHTML tree (iterative walk).
fn xhtml_to_plain(root: &Element) -> String {
    let mut w = PlainWriter::default();
    let mut stack: Vec<(std::slice::Iter<'_, Node>, bool)> = vec![(root.nodes(), false)];
    while let Some((iter, block)) = stack.last_mut() {
        match iter.next() {
            Some(Node::Text(t)) => w.text(t),
            Some(Node::Element(e)) => {
                if e.name().eq_ignore_ascii_case("br") {
                    w.hard_break();
                } else {
                    let b = is_block(e.name());
                    if b {
                        w.line_break();
                    }
                    stack.push((e.nodes(), b));
                }
            }
            None => {
                if *block {
                    w.line_break();
                }
                stack.pop();
            }
        }
    }
    w.finish()
}

/// Text of escaped HTML: tags stripped, common entities decoded.
fn html_to_plain(html: &str) -> String {
    let mut w = PlainWriter::default();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        w.text(&decode_entities(&rest[..lt]));
        let after = &rest[lt + 1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        let gt = after.find('>').filter(|_| starts_tag);
        let Some(gt) = gt else {
            // A '<' that does not open a tag is text.
            w.text("<");
            rest = after;
            continue;
        };
        let tag = after[..gt].trim_start_matches('/');
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.eq_ignore_ascii_case("br") {
            w.hard_break();
        } else if is_block(&name) {
            w.line_break();
        }
        rest = &after[gt + 1..];
    }
    w.text(&decode_entities(rest));
    w.finish()
}

fn decode_entities(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('&') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse::<u32>().ok()?,
                    };
                    char::from_u32(code)
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::new(s).expect("valid test JID")
    }

    #[test]
    fn xmpp_uris_parse_and_print() {
        let uri = XmppUri::parse(
            "xmpp:pubsub.montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Fdd88c9bc",
        )
        .expect("valid");
        assert_eq!(uri.jid, jid("pubsub.montague.lit"));
        assert_eq!(
            uri.node.as_deref(),
            Some("urn:xmpp:microblog:0:comments/dd88c9bc")
        );
        assert_eq!(uri.item, None);
        assert_eq!(uri.action, None);
        assert_eq!(
            uri.to_string(),
            "xmpp:pubsub.montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Fdd88c9bc"
        );

        // Wrapped over lines as in XEP-0277's reply example.
        let uri = XmppUri::parse(
            "xmpp:benvolio@montague.lit?;\n   node=urn%3Axmpp%3Amicroblog%3A0;\n   item=c4145006",
        )
        .expect("valid");
        assert_eq!(
            uri.item_ref(),
            Some(ItemRef::new(
                jid("benvolio@montague.lit"),
                NS_MICROBLOG,
                "c4145006"
            ))
        );

        let uri = XmppUri::parse("xmpp://me@example.org/caf%C3%A9@example.org/res?pubsub;node=n#x")
            .expect("valid");
        assert_eq!(uri.jid, jid("café@example.org/res"));
        assert_eq!(uri.action.as_deref(), Some("pubsub"));
        let again = XmppUri::parse(&uri.to_string()).expect("reparse");
        assert_eq!(again, uri);

        for bad in [
            "http://example.org",
            "xmpp:",
            "xmpp:?;node=x",
            "xmpp:a@b@c",
            "xmpp:romeo@%ZZ",
            "xmpp:%FF%FE",
            "xmpp:@montague.lit",
            "xmp",
        ] {
            assert!(
                matches!(XmppUri::parse(bad), Err(ParseError::InvalidValue { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn item_ids_from_atom_ids() {
        let cases = [
            (
                "tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db",
                Some("1cb57d9c-1c46-11dd-838c-001143d5d5db"),
            ),
            (
                "xmpp:romeo@montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=abc",
                Some("abc"),
            ),
            ("hello-world-x3f9qa", Some("hello-world-x3f9qa")),
            (
                "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
                Some("1225c695-cfb8-4ebb-aaaa-80da344efa6a"),
            ),
            ("https://example.org/blog/my-post/", Some("my-post")),
            ("tag:example.org,2020:blog/42", Some("42")),
            ("xmpp:romeo@montague.lit?;node=x", None),
            ("", None),
            ("  ", None),
            ("two words", None),
        ];
        for (atom_id, expected) in cases {
            assert_eq!(
                item_id_from_atom_id(atom_id).as_deref(),
                expected,
                "{atom_id}"
            );
        }
    }

    #[test]
    fn plain_text_rendering() {
        let x = Xhtml::parse(
            "<p>Hello <b>world</b>,</p><p>second<br/>line</p>  <ul><li>a</li><li>b</li></ul>",
        )
        .expect("valid");
        assert_eq!(x.plain_text(), "Hello world,\nsecond\nline\na\nb");
        let x2 = Xhtml::parse("<div xmlns='http://www.w3.org/1999/xhtml'><p>x</p></div>")
            .expect("valid");
        assert_eq!(x2.element().children().count(), 1);
        assert_eq!(x2.plain_text(), "x");
        assert_eq!(
            Text::Html("<p>Fish &amp; chips &#233;&#x263A;</p><p>next &bogus; 1 < 2</p>".into())
                .plain_text(),
            "Fish & chips é☺\nnext &bogus; 1 < 2"
        );
        let x3 = Xhtml::from_plain_text("first line\nsecond\n\nnew <para>");
        assert_eq!(x3.plain_text(), "first line\nsecond\nnew <para>");
        assert!(Xhtml::parse("<p>unclosed").is_err());
    }

    #[test]
    fn builder_round_trip() {
        let service = jid("pubsub.example.org");
        let entry = Entry::new_post("Hello", "Body text")
            .with_id("hello-abc123")
            .with_xhtml(Xhtml::parse("<p>Body <em>text</em></p>").expect("valid"))
            .with_author(Person::from_jid(
                &jid("romeo@montague.lit"),
                Some("Romeo".into()),
            ))
            .with_tag("xmpp")
            .with_tag("rust")
            .with_tag("xmpp")
            .with_comments(service.clone(), comments_node_name("hello-abc123"))
            .with_enclosure(
                "https://example.org/a.jpg",
                Some("image/jpeg".into()),
                Some(1234),
            )
            .with_in_reply_to(InReplyTo::to_item(
                &ItemRef::new(jid("juliet@capulet.lit"), NS_MICROBLOG, "orig"),
                Some("tag:capulet.lit,2008:orig".into()),
            ))
            .with_geoloc(Geoloc::at(48.171761, -3.3667986))
            .with_language("en");
        entry.validate_for_publish().expect("complete");
        assert_eq!(entry.content.len(), 2);
        assert_eq!(entry.body_text().as_deref(), Some("Body text"));
        assert_eq!(entry.tags().collect::<Vec<_>>(), ["xmpp", "rust"]);
        assert_eq!(
            entry.comments(),
            [NodeRef::new(
                service,
                "urn:xmpp:microblog:0:comments/hello-abc123"
            )]
        );
        assert_eq!(entry.reply_targets()[0].item, "orig");
        assert_eq!(entry.enclosures().count(), 1);
        let xml = entry.to_xml_string().expect("serialises");
        assert!(xml.contains("xmlns:thr="), "{xml}");
        let back = Entry::from_xml_str(&xml).expect("reparses");
        assert_eq!(back, entry);
        assert_eq!(back.authors[0].jid(), Some(jid("romeo@montague.lit")));
        let json = serde_json::to_value(&back).expect("json");
        assert_eq!(json["title"]["type"], "text");
        assert_eq!(json["content"][1]["type"], "xhtml");
        assert_eq!(json["links"][1]["type"], "image/jpeg");
    }

    #[test]
    fn repeats() {
        let original = Entry::new_post("Original", "text")
            .with_id("tag:montague.lit,2008:posts-1")
            .with_author(Person::from_jid(&jid("romeo@montague.lit"), None))
            .with_link(Link::new("alternate", "https://montague.lit/1"))
            .with_comments(jid("pubsub.montague.lit"), comments_node_name("1"));
        let item = ItemRef::new(jid("romeo@montague.lit"), NS_MICROBLOG, "1");
        let repeat = Entry::repeat_of(&original, &item);
        assert_eq!(repeat.id, None);
        assert_eq!(repeat.repeated_item(), Some(item));
        assert_eq!(
            repeat.via_link().and_then(|l| l.reference.as_deref()),
            Some("tag:montague.lit,2008:posts-1")
        );
        assert_eq!(repeat.comments(), original.comments());
        assert_eq!(repeat.authors, original.authors);
        assert!(repeat
            .links
            .iter()
            .all(|l| l.rel_or_default() != "alternate"));
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped_on_output() {
        let mut entry = Entry::new_post("a\u{0}b\u{1b}c\u{fffe}", "body\u{7}")
            .with_language("en\u{1}")
            .with_link(Link::new("related", "https://x/\u{2}"));
        let mut odd = Element::builder("x", "urn:x")
            .attr(xml_ncname!("a").into(), "v\u{0}")
            .append("t\u{3}ext")
            .build();
        odd.prefixes = (Some("xml".to_owned()), "urn:not-xml".to_owned()).into();
        entry.extra.push(odd);
        let xml = entry.to_xml_string().expect("serialises");
        let back = Entry::from_xml_str(&xml).expect("reparses");
        assert_eq!(back.title_text().as_deref(), Some("abc"));
        assert_eq!(back.body_text().as_deref(), Some("body"));
        assert_eq!(back.language.as_deref(), Some("en"));
        assert_eq!(back.links[0].href, "https://x/");
        assert_eq!(back.extra[0].attr("a"), Some("v"));
        assert_eq!(back.extra[0].text(), "text");
        let json = serde_json::to_value(&entry).expect("json");
        assert_eq!(json["extra"][0], "<x xmlns='urn:x' a='v'>text</x>");
        assert!(Geoloc {
            country: Some("F\u{0}R".into()),
            ..Geoloc::default()
        }
        .to_element()
        .get_child("country", NS_GEOLOC)
        .is_some_and(|c| c.text() == "FR"));
    }

    #[test]
    fn prepare_and_validate() {
        let mut entry = Entry::new()
            .with_title("t")
            .with_content(Xhtml::parse("<p>x</p>").expect("valid"));
        assert!(matches!(
            entry.validate_for_publish(),
            Err(ParseError::MissingChild { child: "id", .. })
        ));
        entry.prepare_for_publish("item-1");
        entry.validate_for_publish().expect("complete");
        assert_eq!(entry.id.as_deref(), Some("item-1"));
        assert_eq!(entry.content[0], Text::Plain("x".into()));
    }
}
