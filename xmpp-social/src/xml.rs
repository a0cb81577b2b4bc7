//! Small XML helpers shared by every parser of the crate: bounded parsing from text and element checks.

use minidom::Element;

use crate::error::ParseError;

/// The largest XML document [`parse_bounded`] accepts by default (1 MiB).
pub const DEFAULT_MAX_XML_BYTES: usize = 1024 * 1024;

/// The deepest nesting [`parse_bounded`] accepts.
pub const MAX_XML_DEPTH: usize = 64;

/// Parses one XML element from text, refusing documents over `max_bytes` or nested deeper than
/// [`MAX_XML_DEPTH`] before any DOM is built.
pub fn parse_bounded(xml: &str, max_bytes: usize) -> Result<Element, ParseError> {
    if xml.len() > max_bytes {
        return Err(ParseError::TooLarge {
            element: "document",
            size: xml.len(),
            limit: max_bytes,
        });
    }
    check_depth(xml)?;
    xml.parse::<Element>()
        .map_err(|e| ParseError::Xml(e.to_string()))
}

/// A cheap upper bound on element nesting, computed on the raw text, so that hostile input cannot make
/// the recursive DOM builder (or later recursive walks) use unbounded stack.
fn check_depth(xml: &str) -> Result<(), ParseError> {
    let bytes = xml.as_bytes();
    let mut depth: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            match bytes.get(i + 1) {
                Some(b'/') => depth = depth.saturating_sub(1),
                Some(b'?') | Some(b'!') => {}
                _ => {
                    // Self-closing tags do not nest: find the end of the tag.
                    let end = memchr_gt(bytes, i);
                    let self_closing = end.is_some_and(|e| e > 0 && bytes[e - 1] == b'/');
                    if !self_closing {
                        depth += 1;
                        if depth > MAX_XML_DEPTH {
                            return Err(ParseError::TooLarge {
                                element: "document nesting",
                                size: depth,
                                limit: MAX_XML_DEPTH,
                            });
                        }
                    }
                    if let Some(e) = end {
                        i = e;
                    }
                }
            }
        }
        i += 1;
    }
    Ok(())
}

fn memchr_gt(bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|&b| b == b'>')
        .map(|p| p + from)
}

/// `{namespace}name` of an element, for error messages.
pub fn qname(el: &Element) -> String {
    format!("{{{}}}{}", el.ns(), el.name())
}

/// Checks that `el` is `<name xmlns=ns>`.
pub fn expect_element(el: &Element, ns: &str, name: &str) -> Result<(), ParseError> {
    if el.is(name, ns) {
        Ok(())
    } else {
        Err(ParseError::WrongElement {
            expected: format!("{{{ns}}}{name}"),
            found: qname(el),
        })
    }
}

/// Nesting depth of a parsed element (1 for a leaf). Iterative, so safe on any input.
pub fn depth(el: &Element) -> usize {
    let mut max = 0;
    let mut stack = vec![(el, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        for c in e.children() {
            stack.push((c, d + 1));
        }
    }
    max
}

/// An attribute name for minidom's builder. Only for names written in this crate's code (constants):
/// every such name is a valid NCName, so the conversion cannot fail on them.
pub fn nc(name: &str) -> minidom::rxml::NcName {
    minidom::rxml::NcName::try_from(name).expect("attribute names in this crate are valid NCNames")
}

/// Builder conveniences: attributes by `&str` name, and optional attributes.
pub trait BuilderExt: Sized {
    /// Sets attribute `name`.
    fn a(self, name: &str, value: impl Into<String>) -> Self;
    /// Sets attribute `name` when `value` is `Some`.
    fn a_opt<S: Into<String>>(self, name: &str, value: Option<S>) -> Self {
        match value {
            Some(v) => self.a(name, v),
            None => self,
        }
    }
}

impl BuilderExt for minidom::ElementBuilder {
    fn a(self, name: &str, value: impl Into<String>) -> Self {
        self.attr(nc(name), value.into())
    }
}

/// Sets or replaces an attribute on a built element.
pub fn set_attr(el: &mut Element, name: &str, value: impl Into<String>) {
    el.set_attr(minidom::rxml::Namespace::NONE, nc(name), value.into());
}

/// Whether `c` may appear in XML 1.0 text (`Char` production; Rust strings hold no surrogates).
pub fn is_xml_char(c: char) -> bool {
    !((c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// Checks that minidom's writer can write `el`: every text node and attribute value holds only
/// characters XML 1.0 allows, and no element re-declares a namespace prefix one of its ancestors
/// declared (minidom's writer panics on both; the second is easy to receive from the network, e.g.
/// `<a xmlns:p='u'><b xmlns:p='u'/></a>`). Anything built from received, user or bridged data must
/// pass this before it reaches a stream; [`to_xml_string`] writes such trees safely instead.
/// Iterative, so safe on deep trees.
pub fn check_serialisable(el: &Element) -> Result<(), ParseError> {
    check_chars(el)?;
    if has_prefix_conflict(el) {
        return Err(ParseError::InvalidValue {
            element: "xmlns",
            reason: "an element re-declares a namespace prefix declared above it".to_owned(),
        });
    }
    Ok(())
}

/// Whether an element of the tree declares a prefix one of its ancestors declared.
fn has_prefix_conflict(root: &Element) -> bool {
    // (element, index in `declared` where its ancestors' declarations end)
    let mut declared: Vec<Option<String>> = Vec::new();
    let mut stack: Vec<(&Element, usize, bool)> = vec![(root, 0, false)];
    while let Some((el, depth_mark, visited)) = stack.pop() {
        if visited {
            declared.truncate(depth_mark);
            continue;
        }
        let mark = declared.len();
        for prefix in el.prefixes.declared_prefixes().keys() {
            if prefix.is_some() && declared.contains(prefix) {
                return true;
            }
        }
        declared.extend(el.prefixes.declared_prefixes().keys().cloned());
        stack.push((el, mark, true));
        for child in el.children() {
            stack.push((child, 0, false));
        }
    }
    false
}

/// Writes `el` as XML text without the panics of minidom's writer: characters XML 1.0 cannot carry
/// give an error, and when an element re-declares a prefix declared above it, a copy without the
/// prefix declarations below the root is written (the writer declares the prefixes it needs, so
/// every element and attribute keeps its namespace; only prefix names may change).
pub fn to_xml_string(el: &Element) -> Result<String, ParseError> {
    check_chars(el)?;
    let mut out = Vec::new();
    if has_prefix_conflict(el) {
        let mut copy = el.clone();
        let mut stack: Vec<&mut Element> = copy.children_mut().collect();
        while let Some(e) = stack.pop() {
            e.prefixes = Default::default();
            stack.extend(e.children_mut());
        }
        copy.write_to(&mut out)
    } else {
        el.write_to(&mut out)
    }
    .map_err(|e| ParseError::Xml(e.to_string()))?;
    String::from_utf8(out).map_err(|e| ParseError::Xml(e.to_string()))
}

fn check_chars(el: &Element) -> Result<(), ParseError> {
    let bad = |s: &str| s.chars().any(|c| !is_xml_char(c));
    let mut stack = vec![el];
    while let Some(e) = stack.pop() {
        for (_, value) in e.attrs().iter() {
            if bad(value) {
                return Err(ParseError::InvalidValue {
                    element: "attribute",
                    reason: format!(
                        "<{}/> has an attribute with a character XML forbids",
                        e.name()
                    ),
                });
            }
        }
        for node in e.nodes() {
            match node {
                minidom::Node::Text(t) if bad(t) => {
                    return Err(ParseError::InvalidValue {
                        element: "text",
                        reason: format!("<{}/> has text with a character XML forbids", e.name()),
                    })
                }
                minidom::Node::Element(c) => stack.push(c),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_prefix_declarations_are_written_safely() {
        for xml in [
            "<a xmlns='x' xmlns:p='u'><b xmlns:p='u'/></a>",
            "<a xmlns='x' xmlns:p='u'><b xmlns:p='v'><p:c/></b></a>",
            "<a xmlns='x' xmlns:p='u'><p:b xmlns:p='u' p:k='v'><p:c/></p:b></a>",
        ] {
            let el: Element = xml.parse().expect("xml");
            assert!(check_serialisable(&el).is_err(), "{xml}");
            let text = to_xml_string(&el).expect("written");
            let back: Element = text.parse().expect("re-parses");
            assert_eq!(back.name(), el.name());
            let (mut a, mut b) = (vec![&el], vec![&back]);
            while let (Some(x), Some(y)) = (a.pop(), b.pop()) {
                assert_eq!((x.name(), x.ns()), (y.name(), y.ns()), "{xml} -> {text}");
                assert_eq!(x.attrs().iter().count(), y.attrs().iter().count());
                a.extend(x.children());
                b.extend(y.children());
            }
        }
        // Siblings may each declare the same prefix.
        let ok: Element = "<a xmlns='x'><b xmlns:p='u'/><c xmlns:p='u'/></a>"
            .parse()
            .expect("xml");
        assert!(check_serialisable(&ok).is_ok());
        assert!(to_xml_string(&ok).is_ok());
    }

    #[test]
    fn refuses_oversized_and_deep_documents() {
        let big = format!("<a xmlns='x'>{}</a>", "y".repeat(100));
        assert!(matches!(
            parse_bounded(&big, 50),
            Err(ParseError::TooLarge { .. })
        ));
        let deep = format!(
            "{}{}",
            "<a xmlns='x'>".repeat(MAX_XML_DEPTH + 1),
            "</a>".repeat(MAX_XML_DEPTH + 1)
        );
        assert!(matches!(
            parse_bounded(&deep, usize::MAX),
            Err(ParseError::TooLarge { .. })
        ));
        let mut el: Element = "<a xmlns='x' b='c'>d</a>".parse().expect("xml");
        assert!(check_serialisable(&el).is_ok());
        el.append_text_node("bad\u{1}text");
        assert!(check_serialisable(&el).is_err());
        let mut el: Element = "<a xmlns='x'/>".parse().expect("xml");
        set_attr(&mut el, "b", "\u{0}");
        assert!(check_serialisable(&el).is_err());
        let ok = format!("{}{}", "<a xmlns='x'/>", "");
        assert!(parse_bounded(&ok, 1000).is_ok());
        assert!(matches!(
            parse_bounded("<a xmlns='x'>", 1000),
            Err(ParseError::Xml(_))
        ));
    }
}
