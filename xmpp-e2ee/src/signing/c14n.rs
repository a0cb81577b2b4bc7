//! Canonical XML 2.0 (<https://www.w3.org/TR/xml-c14n2/>) with the parameters XEP-0475 fixes:
//! comments ignored, `TrimTextNodes` on, no prefix rewriting, no QName-aware nodes.
//!
//! The reference implementation of XEP-0475 (Libervia) canonicalises with lxml's C14N 2.0 writer,
//! which is the same algorithm as Python's `xml.etree.ElementTree.canonicalize(..., strip_text=True)`.
//! Signatures only verify when both sides produce the same bytes, so this module reproduces that
//! writer exactly, including where it reads the specification in its own way:
//!
//! * a namespace declaration is written on the first element that uses it (for its name or an
//!   attribute's) and is not yet declared by an output ancestor; declarations that nothing uses are
//!   dropped; when several prefixes are bound to the same namespace, the one already written by an
//!   ancestor wins, otherwise the innermost source declaration;
//! * declarations come first, sorted by (`xmlns` or `xmlns:prefix`, namespace); then the
//!   attributes, sorted by their `{namespace}local` name in code point order (so unqualified names
//!   come before qualified ones, except names starting above `{`);
//! * text is trimmed of leading and trailing white space as Python's `str.strip()` defines it
//!   (Unicode white space, e.g. U+00A0 too), except under `xml:space="preserve"`; text left empty
//!   is dropped;
//! * escaping: `&`, `<`, `>` and CR in text; `&`, `<`, `"`, TAB, LF and CR in attribute values;
//! * empty elements are written as a start tag and an end tag.
//!
//! [`canonicalize`] works on a [`minidom::Element`]: minidom keeps the namespace declarations it
//! parsed, so a parsed element gives what its text gives; an element built in code gets the
//! declarations a serialiser has to add (its namespace as the default one where nothing binds it).
//! One difference remains: minidom keeps an element's declarations sorted by prefix, not in
//! document order, so when one element binds several prefixes to the same namespace the prefix
//! chosen may differ from the one Python chooses from the text.
//! It never serialises through minidom, whose writer panics on some parsed elements (a prefix
//! declared again further down).
//! [`canonicalize_str`] works on XML text directly.

use minidom::rxml::{RawEvent, RawReader};
use minidom::Element;

/// The XML namespace, bound to `xml` everywhere.
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Largest input [`canonicalize_str`] accepts, in bytes.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 256;

/// Why canonicalisation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum C14nError {
    /// The input is not well-formed (namespace-aware) XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A prefix is used without a declaration in scope.
    #[error("prefix {0:?} is not declared")]
    UndeclaredPrefix(String),
    /// The input is larger than [`MAX_INPUT_BYTES`].
    #[error("XML input of {0} bytes is too large")]
    TooLarge(usize),
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("elements nest deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// The canonical form (C14N 2.0, XEP-0475 parameters) of `element`.
pub fn canonicalize(element: &Element) -> Result<Vec<u8>, C14nError> {
    let mut w = Writer::new();
    // Depth-first walk without recursion: (element, index of the next child node).
    let mut stack: Vec<(&Element, usize)> = Vec::new();
    w.start_element(element)?;
    stack.push((element, 0));
    while let Some(&(el, idx)) = stack.last() {
        match el.nodes().nth(idx) {
            Some(node) => {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match node {
                    minidom::Node::Text(t) => w.text.push_str(t),
                    minidom::Node::Element(child) => {
                        w.start_element(child)?;
                        stack.push((child, 0));
                    }
                }
            }
            None => {
                w.end()?;
                stack.pop();
            }
        }
    }
    Ok(w.out.into_bytes())
}

/// The canonical form (C14N 2.0, XEP-0475 parameters) of the XML document `xml` (one root element).
pub fn canonicalize_str(xml: &str) -> Result<Vec<u8>, C14nError> {
    canonicalize_bytes(xml.as_bytes())
}

/// The XML `space` behaviour of the Python writer: `true` strips, unless `xml:space="preserve"`.
fn is_py_space(c: char) -> bool {
    // Python's str.isspace(): Unicode White_Space plus the C0 separators U+001C..U+001F (which XML
    // cannot carry anyway).
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// One (namespace, prefix) binding; prefix "" is the default namespace.
type Binding = (String, String);

/// An element whose head is being read.
struct Head {
    prefix: Option<String>,
    local: String,
    decls: Vec<Binding>,
    attrs: Vec<(Option<String>, String, String)>,
}

/// An open element of the output.
struct Open {
    uri: String,
    local: String,
    preserve: bool,
}

struct Writer {
    out: String,
    /// Declarations written to the output, per open element (innermost last); the base frame binds
    /// `xml`.
    declared: Vec<Vec<Binding>>,
    /// Declarations of the source, in scope (to resolve the source's prefixes).
    scope: Vec<Vec<Binding>>,
    /// Declarations of the source as Python's writer stacks them: an element's declarations go into
    /// its parent's frame, which all its siblings share, so a declaration stays visible to the
    /// following siblings of the element that made it (this matters only for which prefix is
    /// chosen when a namespace has several).
    source: Vec<Vec<Binding>>,
    open: Vec<Open>,
    text: String,
}

impl Writer {
    fn new() -> Self {
        Writer {
            out: String::new(),
            declared: vec![vec![(NS_XML.to_owned(), "xml".to_owned())]],
            scope: Vec::new(),
            source: vec![Vec::new()],
            open: Vec::new(),
            text: String::new(),
        }
    }

    fn preserve(&self) -> bool {
        self.open.last().is_some_and(|o| o.preserve)
    }

    fn flush_text(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        let data = if self.preserve() {
            text.as_str()
        } else {
            text.trim_matches(is_py_space)
        };
        escape_text(data, &mut self.out);
    }

    /// The namespace a prefix is bound to in the source (innermost declaration).
    fn source_ns(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(NS_XML);
        }
        self.scope
            .iter()
            .rev()
            .flat_map(|frame| frame.iter().rev())
            .find(|(_, p)| p == prefix)
            .map(|(u, _)| u.as_str())
    }

    /// The output prefix for namespace `uri` (Python's `C14NWriterTarget._qname`): an output
    /// declaration still in force, else the innermost source declaration (declared now, on the
    /// current element), else no prefix for the empty namespace.
    fn prefix_for(&mut self, uri: &str) -> Result<String, C14nError> {
        let mut seen: Vec<&str> = Vec::new();
        for (u, p) in self.declared.iter().rev().flat_map(|f| f.iter()) {
            if u == uri && !seen.contains(&p.as_str()) {
                return Ok(p.clone());
            }
            seen.push(p);
        }
        let found = self
            .source
            .iter()
            .rev()
            .flat_map(|f| f.iter())
            .find(|(u, _)| u == uri)
            .cloned();
        if let Some((u, p)) = found {
            if let Some(frame) = self.declared.last_mut() {
                frame.push((u, p.clone()));
            }
            return Ok(p);
        }
        if uri.is_empty() {
            return Ok(String::new());
        }
        Err(C14nError::Malformed(format!(
            "namespace {uri:?} is not declared"
        )))
    }

    /// Starts an element read from text: its prefixes are resolved in the source's scope.
    fn start(&mut self, head: Head) -> Result<(), C14nError> {
        self.scope.push(head.decls.clone());
        let tag_ns = match &head.prefix {
            Some(p) => self
                .source_ns(p)
                .ok_or_else(|| C14nError::UndeclaredPrefix(p.clone()))?
                .to_owned(),
            None => self.source_ns("").unwrap_or("").to_owned(),
        };
        let mut attrs: Vec<(String, String, String)> = Vec::with_capacity(head.attrs.len());
        for (prefix, local, value) in head.attrs {
            let uri = match prefix {
                Some(p) => self
                    .source_ns(&p)
                    .ok_or(C14nError::UndeclaredPrefix(p))?
                    .to_owned(),
                None => String::new(),
            };
            if attrs.iter().any(|(u, l, _)| *u == uri && *l == local) {
                return Err(C14nError::Malformed(format!(
                    "duplicate attribute {{{uri}}}{local}"
                )));
            }
            attrs.push((uri, local, value));
        }
        self.start_resolved(tag_ns, head.local, head.decls, attrs)
    }

    /// Whether `uri` is bound to some prefix (or is the default namespace) in the source's scope.
    fn in_scope(&self, uri: &str) -> bool {
        if uri == NS_XML {
            return true;
        }
        let mut seen: Vec<&str> = Vec::new();
        for (u, p) in self.scope.iter().rev().flat_map(|f| f.iter().rev()) {
            if seen.contains(&p.as_str()) {
                continue;
            }
            if u == uri {
                return true;
            }
            seen.push(p);
        }
        false
    }

    /// Starts a minidom element: its declarations are the ones minidom kept from parsing, plus,
    /// for namespaces nothing declares (elements built in code), the declarations a serialiser
    /// must add: the element's namespace as the default one, an attribute's under a `tnsN` prefix.
    fn start_element(&mut self, el: &Element) -> Result<(), C14nError> {
        let mut decls: Vec<Binding> = el
            .prefixes
            .declared_prefixes()
            .iter()
            .map(|(p, u)| (u.clone(), p.clone().unwrap_or_default()))
            .filter(|(_, p)| p != "xml")
            .collect();
        self.scope.push(decls.clone());
        let tag_ns = el.ns();
        let mut extra: Vec<Binding> = Vec::new();
        if !tag_ns.is_empty() && !self.in_scope(&tag_ns) {
            if decls.iter().any(|(_, p)| p.is_empty()) {
                extra.push((tag_ns.clone(), "tns0".to_owned()));
            } else {
                extra.push((tag_ns.clone(), String::new()));
            }
        }
        let mut attrs: Vec<(String, String, String)> = Vec::new();
        for ((ns, name), value) in el.attrs().iter() {
            let uri: String = ns.to_string();
            if !uri.is_empty()
                && !self.in_scope(&uri)
                && !extra.iter().any(|(u, p)| *u == uri && !p.is_empty())
            {
                extra.push((uri.clone(), format!("tns{}", extra.len() + 1)));
            }
            attrs.push((uri, name.as_str().to_owned(), value.clone()));
        }
        if let Some(frame) = self.scope.last_mut() {
            frame.extend(extra.iter().cloned());
        }
        decls.extend(extra);
        self.start_resolved(tag_ns, el.name().to_owned(), decls, attrs)
    }

    /// Starts an element whose names are resolved; `decls` are its source declarations (already
    /// pushed on `scope`).
    fn start_resolved(
        &mut self,
        tag_ns: String,
        local: String,
        decls: Vec<Binding>,
        attrs: Vec<(String, String, String)>,
    ) -> Result<(), C14nError> {
        if self.open.len() >= MAX_DEPTH {
            return Err(C14nError::TooDeep);
        }
        self.flush_text();
        if let Some(frame) = self.source.last_mut() {
            frame.extend(decls);
        }
        self.declared.push(Vec::new());
        let head_local = local;
        // Python resolves each distinct name once, sorted by its `{uri}local` form split at `}`;
        // resolving may declare namespaces, so the order and the single resolution both matter.
        let key = |uri: &str, local: &str| -> Vec<String> {
            if uri.is_empty() {
                vec![local.to_owned()]
            } else {
                vec![format!("{{{uri}"), local.to_owned()]
            }
        };
        let mut names: Vec<(Vec<String>, String, String)> = Vec::with_capacity(attrs.len() + 1);
        for (u, l) in attrs
            .iter()
            .map(|(u, l, _)| (u, l))
            .chain(std::iter::once((&tag_ns, &head_local)))
        {
            if !names.iter().any(|(_, nu, nl)| nu == u && nl == l) {
                names.push((key(u, l), u.clone(), l.clone()));
            }
        }
        names.sort();
        let mut resolved: Vec<(String, String, String)> = Vec::with_capacity(names.len());
        for (_, uri, local) in names {
            let p = self.prefix_for(&uri)?;
            resolved.push((uri, local, p));
        }
        let prefix_of = |uri: &str, local: &str| -> String {
            resolved
                .iter()
                .find(|(u, l, _)| u == uri && l == local)
                .map(|(_, _, p)| p.clone())
                .unwrap_or_default()
        };
        let tag_prefix = prefix_of(&tag_ns, &head_local);
        let qname = if tag_prefix.is_empty() {
            head_local.clone()
        } else {
            format!("{tag_prefix}:{head_local}")
        };
        let mut decls: Vec<(String, String)> = self
            .declared
            .last()
            .map(|f| {
                f.iter()
                    .map(|(u, p)| {
                        let name = if p.is_empty() {
                            "xmlns".to_owned()
                        } else {
                            format!("xmlns:{p}")
                        };
                        (name, u.clone())
                    })
                    .collect()
            })
            .unwrap_or_default();
        decls.sort();
        let mut sorted: Vec<(String, String, String, String)> = Vec::with_capacity(attrs.len());
        for (uri, local, value) in attrs {
            let sort_key = if uri.is_empty() {
                local.clone()
            } else {
                format!("{{{uri}}}{local}")
            };
            let name = if uri.is_empty() {
                local
            } else {
                let p = prefix_of(&uri, &local);
                if p.is_empty() {
                    local
                } else {
                    format!("{p}:{local}")
                }
            };
            sorted.push((sort_key, name, value, uri));
        }
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let space = sorted
            .iter()
            .find(|(k, ..)| k == &format!("{{{NS_XML}}}space"))
            .map(|(_, _, v, _)| v.clone())
            .filter(|v| !v.is_empty());
        let preserve = match space {
            Some(v) => v == "preserve",
            None => self.preserve(),
        };
        self.out.push('<');
        self.out.push_str(&qname);
        for (name, uri) in &decls {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_attr(uri, &mut self.out);
            self.out.push('"');
        }
        for (_, name, value, _) in &sorted {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_attr(value, &mut self.out);
            self.out.push('"');
        }
        self.out.push('>');
        self.open.push(Open {
            uri: tag_ns,
            local: head_local,
            preserve,
        });
        self.source.push(Vec::new());
        Ok(())
    }

    fn end(&mut self) -> Result<(), C14nError> {
        self.flush_text();
        let (uri, local) = self
            .open
            .last()
            .map(|o| (o.uri.clone(), o.local.clone()))
            .ok_or_else(|| C14nError::Malformed("unbalanced end tag".into()))?;
        // Python resolves the name again for the end tag, with the declarations of the element's
        // children still stacked: with rebound prefixes its end tag can differ from the start tag.
        let prefix = self.prefix_for(&uri)?;
        self.out.push_str("</");
        if !prefix.is_empty() {
            self.out.push_str(&prefix);
            self.out.push(':');
        }
        self.out.push_str(&local);
        self.out.push('>');
        self.open.pop();
        self.source.pop();
        self.scope.pop();
        self.declared.pop();
        Ok(())
    }
}

fn canonicalize_bytes(xml: &[u8]) -> Result<Vec<u8>, C14nError> {
    if xml.len() > MAX_INPUT_BYTES {
        return Err(C14nError::TooLarge(xml.len()));
    }
    let mut reader = RawReader::new(xml);
    let mut w = Writer::new();
    let mut head: Option<Head> = None;
    let mut seen_root = false;
    loop {
        let event = reader
            .read()
            .map_err(|e| C14nError::Malformed(e.to_string()))?;
        let Some(event) = event else { break };
        match event {
            RawEvent::XmlDeclaration(..) => {}
            RawEvent::ElementHeadOpen(_, (prefix, local)) => {
                if w.open.is_empty() && seen_root {
                    return Err(C14nError::Malformed("more than one root element".into()));
                }
                seen_root = true;
                head = Some(Head {
                    prefix: prefix.map(|p| p.as_str().to_owned()),
                    local: local.as_str().to_owned(),
                    decls: Vec::new(),
                    attrs: Vec::new(),
                });
            }
            RawEvent::Attribute(_, (prefix, local), value) => {
                let h = head
                    .as_mut()
                    .ok_or_else(|| C14nError::Malformed("attribute outside a tag".into()))?;
                let value = value.as_str().to_owned();
                match prefix.as_ref().map(|p| p.as_str()) {
                    None if local.as_str() == "xmlns" => h.decls.push((value, String::new())),
                    Some("xmlns") => {
                        let p = local.as_str().to_owned();
                        if p != "xml" {
                            h.decls.push((value, p));
                        }
                    }
                    _ => h.attrs.push((
                        prefix.map(|p| p.as_str().to_owned()),
                        local.as_str().to_owned(),
                        value,
                    )),
                }
            }
            RawEvent::ElementHeadClose(_) => {
                let h = head
                    .take()
                    .ok_or_else(|| C14nError::Malformed("tag end outside a tag".into()))?;
                w.start(h)?;
            }
            RawEvent::ElementFoot(_) => w.end()?,
            RawEvent::Text(_, text) => {
                if !w.open.is_empty() {
                    w.text.push_str(text.as_str());
                }
            }
        }
    }
    if !w.open.is_empty() || !seen_root {
        return Err(C14nError::Malformed("incomplete document".into()));
    }
    Ok(w.out.into_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn c(x: &str) -> String {
        String::from_utf8(canonicalize_str(x).unwrap()).unwrap()
    }

    #[test]
    fn xep0475_example() {
        let input = "<sign-data>\n  <to jid='juliet@capulet.lit' />\n  <time stamp='2022-10-16T18:39:03Z' />\n  <signer>juliet@capulet.lit</signer>\n  <item>\n    <entry xmlns='http://www.w3.org/2005/Atom'>\n      <author>\n        <name>Juliet Capulet</name>\n        <uri>xmpp:juliet@capulet.lit</uri>\n      </author>\n      <title type='text'>She is so pretty! </title>\n      <published>2022-10-16T18:39:02Z</published>\n    </entry>\n  </item>\n</sign-data>";
        let expected = r#"<sign-data><to jid="juliet@capulet.lit"></to><time stamp="2022-10-16T18:39:03Z"></time><signer>juliet@capulet.lit</signer><item><entry xmlns="http://www.w3.org/2005/Atom"><author><name>Juliet Capulet</name><uri>xmpp:juliet@capulet.lit</uri></author><title type="text">She is so pretty!</title><published>2022-10-16T18:39:02Z</published></entry></item></sign-data>"#;
        assert_eq!(c(input), expected);
    }

    #[test]
    fn namespaces_and_attributes() {
        assert_eq!(
            c("<a xmlns='u' xmlns:p='v' xmlns:unused='w' z='1' p:b='2' a='3'><p:c/></a>"),
            r#"<a xmlns="u" xmlns:p="v" a="3" z="1" p:b="2"><p:c></p:c></a>"#
        );
        assert_eq!(
            c("<a xmlns='u' xml:lang='en'>&lt;&amp;&gt;\r<b c='&quot;&#9;&#10;&#13;&lt;'/></a>"),
            "<a xmlns=\"u\" xml:lang=\"en\">&lt;&amp;&gt;<b c=\"&quot;&#x9;&#xA;&#xD;&lt;\"></b></a>"
        );
        assert_eq!(
            c("<a xmlns='u' xml:space='preserve'> x <b> y </b></a>"),
            "<a xmlns=\"u\" xml:space=\"preserve\"> x <b> y </b></a>"
        );
    }

    #[test]
    fn elements_minidom_cannot_serialise() {
        // minidom's writer panics on a prefix declared again further down; canonicalisation of
        // such an element must work (and give what its text gives).
        let xml = "<a xmlns='u' xmlns:p='v'><p:b xmlns:p='w' p:c='1'/><p:d/></a>";
        let el: Element = xml.parse().unwrap();
        assert_eq!(canonicalize(&el).unwrap(), canonicalize_str(xml).unwrap());
        assert_eq!(
            c(xml),
            r#"<a xmlns="u"><p:b xmlns:p="w" p:c="1"></p:b><p:d xmlns:p="v"></p:d></a>"#
        );
    }

    #[test]
    fn hostile_input_is_an_error() {
        assert!(matches!(
            canonicalize_str("<a><b></a>"),
            Err(C14nError::Malformed(_))
        ));
        assert!(matches!(
            canonicalize_str("<p:a/>"),
            Err(C14nError::Malformed(_) | C14nError::UndeclaredPrefix(_))
        ));
        assert!(canonicalize_str("").is_err());
        assert!(canonicalize_str("<a/><b/>").is_err());
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(canonicalize_str(&deep), Err(C14nError::TooDeep));
        assert!(matches!(
            canonicalize_str(&" ".repeat(MAX_INPUT_BYTES + 1)),
            Err(C14nError::TooLarge(_))
        ));
    }
}
