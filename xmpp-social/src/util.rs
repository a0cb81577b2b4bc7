//! Helpers shared by the payload models (entries, events, lists): limits, `xml:lang`, dates, making
//! code-built trees writable, and serde adapters.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use jid::Jid;
use minidom::rxml::{xml_ncname, Namespace, XMLNS_XML};
use minidom::{Element, Node};
use serde::{Serialize, Serializer};

use crate::error::ParseError;
use crate::microblog::{ItemRef, NodeRef};

/// Largest text node or attribute value accepted in a payload (256 KiB).
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Most repeated children (names, locations, categories...) accepted in one payload.
pub const MAX_LIST_LEN: usize = 1024;
/// Deepest nesting accepted in a payload.
pub const MAX_DEPTH: usize = crate::xml::MAX_XML_DEPTH;

pub(crate) fn invalid(element: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError::InvalidValue {
        element,
        reason: reason.into(),
    }
}

/// One iterative pass over a payload: nesting depth, size of every text node and attribute.
pub(crate) fn check_limits(root: &Element, what: &'static str) -> Result<(), ParseError> {
    let mut stack: Vec<(&Element, usize)> = vec![(root, 1)];
    while let Some((el, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(ParseError::TooLarge {
                element: what,
                size: depth,
                limit: MAX_DEPTH,
            });
        }
        for (_, value) in el.attrs().iter() {
            if value.len() > MAX_TEXT_BYTES {
                return Err(ParseError::TooLarge {
                    element: "attribute",
                    size: value.len(),
                    limit: MAX_TEXT_BYTES,
                });
            }
        }
        for node in el.nodes() {
            match node {
                Node::Element(child) => stack.push((child, depth + 1)),
                Node::Text(text) if text.len() > MAX_TEXT_BYTES => {
                    return Err(ParseError::TooLarge {
                        element: "text",
                        size: text.len(),
                        limit: MAX_TEXT_BYTES,
                    })
                }
                Node::Text(_) => {}
            }
        }
    }
    Ok(())
}

pub(crate) fn push_bounded<T>(
    list: &mut Vec<T>,
    value: T,
    element: &'static str,
) -> Result<(), ParseError> {
    if list.len() >= MAX_LIST_LEN {
        return Err(ParseError::TooLarge {
            element,
            size: list.len() + 1,
            limit: MAX_LIST_LEN,
        });
    }
    list.push(value);
    Ok(())
}

/// `xml:lang` of an element.
pub(crate) fn lang_of(el: &Element) -> Option<String> {
    el.attr_ns(XMLNS_XML, "lang").map(str::to_owned)
}

/// Sets `xml:lang` when `lang` is given.
pub(crate) fn set_lang(el: &mut Element, lang: Option<&str>) {
    if let Some(l) = lang {
        el.set_attr(Namespace::XML, xml_ncname!("lang").into(), l.to_owned());
    }
}

/// A copy of a subtree without its namespace prefix declarations, so it serialises on its own.
pub(crate) fn detached(el: &Element) -> Element {
    let mut copy = el.clone();
    strip_prefixes(&mut copy);
    copy
}

pub(crate) fn text_element(name: &str, ns: &str, text: &str) -> Element {
    let mut el = Element::bare(name, ns);
    if !text.is_empty() {
        el.append_text_node(text);
    }
    el
}

pub(crate) fn required_attr<'a>(
    el: &'a Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str, ParseError> {
    el.attr(attribute)
        .ok_or(ParseError::MissingAttribute { element, attribute })
}

pub(crate) fn parse_jid(element: &'static str, s: &str) -> Result<Jid, ParseError> {
    Jid::new(s.trim()).map_err(|e| invalid(element, format!("bad JID {s:?}: {e}")))
}

/// Parses a XEP-0082 date-time.
pub(crate) fn parse_date(
    text: &str,
    element: &'static str,
) -> Result<DateTime<FixedOffset>, ParseError> {
    let text = text.trim();
    if text.len() > 64 {
        return Err(invalid(element, "not a XEP-0082 date-time"));
    }
    DateTime::parse_from_rfc3339(text)
        .map_err(|e| invalid(element, format!("not a XEP-0082 date-time ({e}): {text:?}")))
}

/// Formats a XEP-0082 date-time (`Z` for UTC, fractional seconds only when present).
pub fn format_date(date: &DateTime<FixedOffset>) -> String {
    date.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(crate) fn ser_date<S: Serializer>(d: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_date(d))
}

pub(crate) fn ser_opt_date<S: Serializer>(
    d: &Option<DateTime<FixedOffset>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&format_date(d)),
        None => s.serialize_none(),
    }
}

pub(crate) fn ser_jid<S: Serializer>(j: &Jid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&j.to_string())
}

pub(crate) fn ser_opt_jid<S: Serializer>(j: &Option<Jid>, s: S) -> Result<S::Ok, S::Error> {
    match j {
        Some(j) => s.serialize_some(&j.to_string()),
        None => s.serialize_none(),
    }
}

#[derive(Serialize)]
struct NodeJson<'a> {
    service: String,
    node: &'a str,
}

#[derive(Serialize)]
struct ItemJson<'a> {
    service: String,
    node: &'a str,
    item: &'a str,
}

pub(crate) fn ser_opt_node<S: Serializer>(n: &Option<NodeRef>, s: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(n) => s.serialize_some(&NodeJson {
            service: n.service.to_string(),
            node: &n.node,
        }),
        None => s.serialize_none(),
    }
}

pub(crate) fn ser_item<S: Serializer>(i: &ItemRef, s: S) -> Result<S::Ok, S::Error> {
    ItemJson {
        service: i.service.to_string(),
        node: &i.node,
        item: &i.item,
    }
    .serialize(s)
}

pub(crate) fn ser_opt_item<S: Serializer>(i: &Option<ItemRef>, s: S) -> Result<S::Ok, S::Error> {
    match i {
        Some(i) => s.serialize_some(&ItemJson {
            service: i.service.to_string(),
            node: &i.node,
            item: &i.item,
        }),
        None => s.serialize_none(),
    }
}

/// An element serialised (with serde) as its XML text.
pub(crate) struct XmlText<'a>(pub &'a Element);

impl Serialize for XmlText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = crate::xml::to_xml_string(self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

pub(crate) fn ser_elements<S: Serializer>(els: &[Element], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(els.iter().map(XmlText))
}

/// Removes the namespace prefix declarations of every element of a subtree.
pub(crate) fn strip_prefixes(el: &mut Element) {
    let mut stack = vec![el];
    while let Some(e) = stack.pop() {
        e.prefixes = Default::default();
        stack.extend(e.children_mut());
    }
}

fn drop_non_xml_chars(s: &mut String) {
    if !s.chars().all(crate::xml::is_xml_char) {
        s.retain(crate::xml::is_xml_char);
    }
}

/// Prepares a tree built from caller-supplied values for minidom's serialiser, which panics on
/// characters XML cannot carry (NUL, most C0 controls, U+FFFE/U+FFFF) and on conflicting prefix
/// declarations: drops such characters from text and attribute values, and removes the prefix
/// declarations of every descendant (the serialiser declares what it needs). Parsed input never
/// needs the first part; values set by code (a post bridged from elsewhere) may.
pub(crate) fn make_writable(root: &mut Element) {
    for value in root.attrs_mut().values_mut() {
        drop_non_xml_chars(value);
    }
    let mut stack: Vec<&mut Element> = Vec::new();
    for node in root.nodes_mut() {
        match node {
            Node::Text(text) => drop_non_xml_chars(text),
            Node::Element(child) => stack.push(child),
        }
    }
    while let Some(el) = stack.pop() {
        el.prefixes = Default::default();
        for value in el.attrs_mut().values_mut() {
            drop_non_xml_chars(value);
        }
        for node in el.nodes_mut() {
            match node {
                Node::Text(text) => drop_non_xml_chars(text),
                Node::Element(child) => stack.push(child),
            }
        }
    }
}
