//! XEP-0059 Result Set Management: the `<set/>` element, sent in requests and read in results.
//!
//! xmpp-parsers' `PubSub` parser refuses a `<set/>` inside `<pubsub/>`, so the pubsub module appends and
//! reads it itself with these types.

use minidom::Element;

use crate::error::ParseError;

/// `http://jabber.org/protocol/rsm`.
pub const NS_RSM: &str = "http://jabber.org/protocol/rsm";

/// A paging request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RsmRequest {
    /// `<max/>`: the page size.
    pub max: Option<usize>,
    /// `<after/>`: the page after this opaque id.
    pub after: Option<String>,
    /// `<before/>`: the page before this id; `Some("")` asks for the last page.
    pub before: Option<String>,
    /// `<index/>`: the page starting at this position.
    pub index: Option<usize>,
}

impl RsmRequest {
    /// A first page of `max` items.
    pub fn first(max: usize) -> Self {
        RsmRequest {
            max: Some(max),
            ..Default::default()
        }
    }

    /// The page of `max` items after the item `after`.
    pub fn after(max: usize, after: impl Into<String>) -> Self {
        RsmRequest {
            max: Some(max),
            after: Some(after.into()),
            ..Default::default()
        }
    }

    /// The last page of `max` items.
    pub fn last(max: usize) -> Self {
        RsmRequest {
            max: Some(max),
            before: Some(String::new()),
            ..Default::default()
        }
    }

    /// The `<set/>` element.
    pub fn to_element(&self) -> Element {
        let mut set = Element::builder("set", NS_RSM).build();
        let mut child = |name: &str, text: String| {
            set.append_child(Element::builder(name, NS_RSM).append(text).build());
        };
        if let Some(m) = self.max {
            child("max", m.to_string());
        }
        if let Some(a) = &self.after {
            child("after", a.clone());
        }
        if let Some(b) = &self.before {
            child("before", b.clone());
        }
        if let Some(i) = self.index {
            child("index", i.to_string());
        }
        set
    }
}

/// The `<set/>` of a result page.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RsmResult {
    /// `<first/>`: id of the first item of the page.
    pub first: Option<String>,
    /// `index` attribute of `<first/>`.
    pub first_index: Option<usize>,
    /// `<last/>`: id of the last item of the page.
    pub last: Option<String>,
    /// `<count/>`: the size of the whole result set, when the server tells it.
    pub count: Option<usize>,
}

impl RsmResult {
    /// Parses a `<set xmlns='http://jabber.org/protocol/rsm'/>`.
    pub fn parse(el: &Element) -> Result<RsmResult, ParseError> {
        crate::xml::expect_element(el, NS_RSM, "set")?;
        let num = |name: &'static str, s: &str| -> Result<usize, ParseError> {
            s.trim().parse().map_err(|_| ParseError::InvalidValue {
                element: name,
                reason: format!("not a number: {s:?}"),
            })
        };
        let mut r = RsmResult::default();
        for c in el.children().filter(|c| c.ns() == NS_RSM) {
            match c.name() {
                "first" => {
                    r.first = Some(c.text());
                    // ejabberd 23.01 answers a `<before/>` request on a set smaller than the page
                    // with a negative index (count - max): an unknown index, not an error.
                    if let Some(i) = c.attr("index") {
                        let negative = i
                            .trim()
                            .strip_prefix('-')
                            .is_some_and(|n| n.parse::<u64>().is_ok());
                        if !negative {
                            r.first_index = Some(num("first@index", i)?);
                        }
                    }
                }
                "last" => r.last = Some(c.text()),
                "count" => r.count = Some(num("count", &c.text())?),
                _ => {}
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep_0059_examples() {
        // XEP-0059 example 2 (request) and 3 (result set).
        let req = RsmRequest::first(10).to_element();
        assert_eq!(
            req.get_child("max", NS_RSM).map(Element::text),
            Some("10".into())
        );
        let el: Element = "<set xmlns='http://jabber.org/protocol/rsm'>\
            <first index='0'>stpeter@jabber.org</first><last>peterpan@neverland.lit</last>\
            <count>800</count></set>"
            .parse()
            .expect("xml");
        let r = RsmResult::parse(&el).expect("parse");
        assert_eq!(r.first.as_deref(), Some("stpeter@jabber.org"));
        assert_eq!(r.first_index, Some(0));
        assert_eq!(r.last.as_deref(), Some("peterpan@neverland.lit"));
        assert_eq!(r.count, Some(800));
        let bad: Element = "<set xmlns='http://jabber.org/protocol/rsm'><count>x</count></set>"
            .parse()
            .expect("xml");
        assert!(RsmResult::parse(&bad).is_err());
        // ejabberd's negative index: unknown.
        let odd: Element = "<set xmlns='http://jabber.org/protocol/rsm'>\
            <first index='-2'>a</first><last>a</last><count>1</count></set>"
            .parse()
            .expect("xml");
        let r = RsmResult::parse(&odd).expect("parse");
        assert_eq!((r.first_index, r.count), (None, Some(1)));
    }
}
