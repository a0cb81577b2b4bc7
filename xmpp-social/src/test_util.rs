//! Helpers for the crate's unit tests on XEP examples.

use minidom::{Element, Node};

use crate::error::ParseError;
use crate::xml::parse_bounded;

/// Parses one example stanza, giving it the `jabber:client` namespace the XEPs leave out.
pub(crate) fn stanza(xml: &str) -> Result<Element, ParseError> {
    let wrapped = format!("<stream xmlns='jabber:client'>{xml}</stream>");
    let el = parse_bounded(&wrapped, 1 << 20)?;
    Ok(el.children().next().cloned().expect("one stanza"))
}

/// The element without whitespace-only text nodes, for structural comparison.
pub(crate) fn strip(el: &Element) -> Element {
    let mut out = el.clone();
    for n in out.take_nodes() {
        match n {
            Node::Element(e) => {
                out.append_child(strip(&e));
            }
            Node::Text(t) if t.trim().is_empty() => {}
            Node::Text(t) => out.append_text_node(t),
        }
    }
    out
}
