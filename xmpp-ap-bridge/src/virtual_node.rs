//! The XEP-0277 node of a virtual JID (`fed\40example.org@ap.example.org`), served by the gateway
//! from the remote actor's outbox (sans-IO).
//!
//! The gateway keeps no copy of remote posts: an items request (XEP-0060 §6.5) to a virtual JID is
//! answered from the actor's outbox, fetched when asked ([`crate::gateway::Gateway`] does the I/O).
//! This module reads the request ([`ItemsRequest::parse`]: item ids, `max_items`, XEP-0059 RSM),
//! turns the outbox's `Create(Note)`s into entries ([`outbox_entries`]), picks the page
//! ([`select`]) and writes the answer ([`items_answer`], with the RSM `<set/>`: `first` with its
//! index, `last`, `count`), and answers `disco#info`/`disco#items` about the virtual JID.
//!
//! Items are in the outbox's order (newest first). Only public notes by the actor itself are served:
//! a note addressed to someone in particular stays off the virtual node even if the outbox lists it.

use minidom::Element;
use serde_json::Value;
use xmpp_social::microblog::{Entry, NS_MICROBLOG};
use xmpp_social::rsm::{RsmRequest, NS_RSM};
use xmpp_social::xml::BuilderExt;

use crate::convert::{self, Incoming, UrlScheme};
use crate::vocab::{self, AnyObject};

/// `http://jabber.org/protocol/pubsub`.
const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// `http://jabber.org/protocol/disco#info`.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// `http://jabber.org/protocol/disco#items`.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// Most item ids in one request, most items read from one outbox, largest page.
pub const MAX_ITEMS: usize = 200;

/// Why an items request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VirtualNodeError {
    /// Malformed request (`bad-request`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Not the microblog node, or an RSM `after`/`before` id not in the result set
    /// (`item-not-found`).
    #[error("item not found")]
    ItemNotFound,
}

/// An items request to a virtual JID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemsRequest {
    /// The node asked.
    pub node: String,
    /// Only these items (§6.5.8), at most [`MAX_ITEMS`].
    pub ids: Vec<String>,
    /// `max_items` (§6.5.7).
    pub max_items: Option<usize>,
    /// XEP-0059 paging.
    pub rsm: Option<RsmRequest>,
}

fn number(text: &str, what: &str) -> Result<usize, VirtualNodeError> {
    text.trim()
        .parse()
        .map_err(|_| VirtualNodeError::BadRequest(format!("{what} is not a number")))
}

impl ItemsRequest {
    /// Reads `<pubsub><items node='...' max_items='N'><item id='...'/>*</items><set/>?</pubsub>`.
    pub fn parse(pubsub: &Element) -> Result<Self, VirtualNodeError> {
        if !pubsub.is("pubsub", NS_PUBSUB) {
            return Err(VirtualNodeError::BadRequest("not a pubsub request".into()));
        }
        let items = pubsub
            .get_child("items", NS_PUBSUB)
            .ok_or_else(|| VirtualNodeError::BadRequest("not an items request".into()))?;
        let node = items
            .attr("node")
            .ok_or_else(|| VirtualNodeError::BadRequest("no node".into()))?
            .to_owned();
        let max_items = items
            .attr("max_items")
            .map(|m| number(m, "max_items"))
            .transpose()?;
        let mut ids = Vec::new();
        for item in items.children().filter(|c| c.is("item", NS_PUBSUB)) {
            if ids.len() == MAX_ITEMS {
                return Err(VirtualNodeError::BadRequest("too many item ids".into()));
            }
            let id = item
                .attr("id")
                .ok_or_else(|| VirtualNodeError::BadRequest("item without id".into()))?;
            ids.push(id.to_owned());
        }
        let rsm = match pubsub.get_child("set", NS_RSM) {
            None => None,
            Some(set) => {
                let mut r = RsmRequest::default();
                for c in set.children().filter(|c| c.ns() == NS_RSM) {
                    match c.name() {
                        "max" => r.max = Some(number(&c.text(), "max")?),
                        "after" => r.after = Some(c.text()),
                        "before" => r.before = Some(c.text()),
                        "index" => r.index = Some(number(&c.text(), "index")?),
                        _ => {}
                    }
                }
                Some(r)
            }
        };
        Ok(ItemsRequest {
            node,
            ids,
            max_items,
            rsm,
        })
    }
}

/// One page of the node: the range of the whole result set it covers, and the set's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Position of the page's first item in the result set.
    pub start: usize,
    /// Position after its last item.
    pub end: usize,
    /// Size of the result set.
    pub count: usize,
    /// Whether to answer with an RSM `<set/>` (the request used RSM).
    pub rsm: bool,
}

/// Picks what `request` asks of `ids` (the node's item ids, newest first). Requests by item id
/// give the matching items in the node's order; without RSM, `max_items` (or everything) from the
/// newest.
pub fn select(ids: &[String], request: &ItemsRequest) -> Result<Page, VirtualNodeError> {
    if request.node != NS_MICROBLOG {
        return Err(VirtualNodeError::ItemNotFound);
    }
    let count = ids.len();
    let Some(rsm) = &request.rsm else {
        let end = request.max_items.unwrap_or(count).min(count);
        return Ok(Page {
            start: 0,
            end,
            count,
            rsm: false,
        });
    };
    page_of(ids, rsm)
}

/// The XEP-0059 page `rsm` asks of `ids` (pages of at most [`MAX_ITEMS`]).
pub fn page_of(ids: &[String], rsm: &RsmRequest) -> Result<Page, VirtualNodeError> {
    let count = ids.len();
    let max = rsm.max.unwrap_or(MAX_ITEMS).min(MAX_ITEMS);
    let position = |id: &str| {
        ids.iter()
            .position(|i| i == id)
            .ok_or(VirtualNodeError::ItemNotFound)
    };
    let (start, end) = if let Some(before) = &rsm.before {
        let end = if before.is_empty() {
            count
        } else {
            position(before)?
        };
        (end.saturating_sub(max), end)
    } else {
        let start = match (&rsm.after, rsm.index) {
            (Some(after), _) => position(after)? + 1,
            (None, Some(index)) => index.min(count),
            (None, None) => 0,
        };
        (start, start.saturating_add(max).min(count))
    };
    Ok(Page {
        start,
        end,
        count,
        rsm: true,
    })
}

/// The items of the node from an outbox's items (`Create` activities with their object embedded,
/// by `actor`, newest first): `(item id, entry)` of each public note, at most [`MAX_ITEMS`]. What
/// cannot be converted, is not the actor's or is not public is left out.
pub fn outbox_entries<S: UrlScheme + ?Sized>(
    actor: &str,
    items: &[Value],
    scheme: &S,
) -> Vec<(String, Entry)> {
    let mut out: Vec<(String, Entry)> = Vec::new();
    for item in items {
        if out.len() == MAX_ITEMS {
            break;
        }
        let Ok(AnyObject::Activity(activity)) = vocab::parse_value(item.clone()) else {
            continue;
        };
        if activity.actor != actor || activity.kind != vocab::ActivityKind::Create {
            continue;
        }
        match convert::incoming_activity(&activity, scheme) {
            Ok(Incoming::Publish(post))
                if post.public && !out.iter().any(|(id, _)| *id == post.item_id) =>
            {
                out.push((post.item_id, post.entry));
            }
            _ => {}
        }
    }
    out
}

/// The answer to an items request: the page's items of `entries` (by id when the request names
/// ids) and, for RSM requests, the `<set/>`.
pub fn items_answer(entries: &[(String, Entry)], request: &ItemsRequest, page: &Page) -> Element {
    let item = |(id, entry): &(String, Entry)| {
        Element::builder("item", NS_PUBSUB)
            .a("id", id.as_str())
            .append(Element::from(entry))
            .build()
    };
    let chosen: Vec<&(String, Entry)> = if request.ids.is_empty() {
        entries
            .get(page.start..page.end)
            .unwrap_or_default()
            .iter()
            .collect()
    } else {
        entries
            .iter()
            .filter(|(id, _)| request.ids.contains(id))
            .collect()
    };
    let items = Element::builder("items", NS_PUBSUB)
        .a("node", NS_MICROBLOG)
        .append_all(chosen.iter().map(|e| item(e)))
        .build();
    let mut answer = Element::builder("pubsub", NS_PUBSUB).append(items).build();
    if page.rsm && request.ids.is_empty() {
        let mut set = Element::builder("set", NS_RSM).build();
        if let (Some(first), Some(last)) = (chosen.first(), chosen.last()) {
            set.append_child(
                Element::builder("first", NS_RSM)
                    .a("index", page.start.to_string())
                    .append(first.0.as_str())
                    .build(),
            );
            set.append_child(
                Element::builder("last", NS_RSM)
                    .append(last.0.as_str())
                    .build(),
            );
        }
        set.append_child(
            Element::builder("count", NS_RSM)
                .append(page.count.to_string())
                .build(),
        );
        answer.append_child(set);
    }
    answer
}

/// The `disco#info` answer of a virtual JID (`node` `None`: the account-like entity with its PEP
/// service; the microblog node: a leaf), or `None` for another node.
pub fn disco_info_answer(node: Option<&str>) -> Option<Element> {
    let (category, kind) = match node {
        None => ("pubsub", "pep"),
        Some(NS_MICROBLOG) => ("pubsub", "leaf"),
        Some(_) => return None,
    };
    let features = [
        NS_DISCO_INFO,
        NS_DISCO_ITEMS,
        NS_PUBSUB,
        "http://jabber.org/protocol/pubsub#retrieve-items",
        "http://jabber.org/protocol/pubsub#subscribe",
        NS_RSM,
    ];
    Some(
        Element::builder("query", NS_DISCO_INFO)
            .a_opt("node", node)
            .append(
                Element::builder("identity", NS_DISCO_INFO)
                    .a("category", category)
                    .a("type", kind)
                    .build(),
            )
            .append_all(features.iter().map(|f| {
                Element::builder("feature", NS_DISCO_INFO)
                    .a("var", *f)
                    .build()
            }))
            .build(),
    )
}

/// The `disco#items` answer of the virtual JID `jid`: its microblog node.
pub fn disco_items_answer(jid: &str, node: Option<&str>) -> Element {
    let query = Element::builder("query", NS_DISCO_ITEMS).a_opt("node", node);
    if node.is_some() {
        return query.build();
    }
    query
        .append(
            Element::builder("item", NS_DISCO_ITEMS)
                .a("jid", jid)
                .a("node", NS_MICROBLOG)
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i{i}")).collect()
    }

    fn request(xml: &str) -> ItemsRequest {
        ItemsRequest::parse(&xml.parse::<Element>().unwrap()).unwrap()
    }

    // XEP-0060 Example 77 (all items), 79 (max_items) and 82 (by id), on the microblog node.
    #[test]
    fn xep_0060_requests() {
        let all = request(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='urn:xmpp:microblog:0'/></pubsub>",
        );
        assert_eq!(select(&ids(5), &all).unwrap().end, 5);
        let two = request(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='urn:xmpp:microblog:0' max_items='2'/></pubsub>",
        );
        let page = select(&ids(5), &two).unwrap();
        assert_eq!((page.start, page.end, page.rsm), (0, 2, false));
        let by_id = request(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='urn:xmpp:microblog:0'><item id='i3'/></items></pubsub>",
        );
        assert_eq!(by_id.ids, vec!["i3".to_owned()]);
        let other = request(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='princely_musings'/></pubsub>",
        );
        assert_eq!(select(&ids(5), &other), Err(VirtualNodeError::ItemNotFound));
    }

    // XEP-0059 §2.1-2.5: first page, next pages (after), previous (before), last page, index.
    #[test]
    fn xep_0059_paging() {
        let rsm = |inner: &str| {
            request(&format!(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <items node='urn:xmpp:microblog:0'/>\
                 <set xmlns='http://jabber.org/protocol/rsm'>{inner}</set></pubsub>"
            ))
        };
        let all = ids(7);
        let p = select(&all, &rsm("<max>3</max>")).unwrap();
        assert_eq!((p.start, p.end, p.count), (0, 3, 7));
        let p = select(&all, &rsm("<max>3</max><after>i5</after>")).unwrap();
        assert_eq!((p.start, p.end), (6, 7));
        let p = select(&all, &rsm("<max>3</max><before>i4</before>")).unwrap();
        assert_eq!((p.start, p.end), (1, 4));
        let p = select(&all, &rsm("<max>3</max><before/>")).unwrap();
        assert_eq!((p.start, p.end), (4, 7));
        let p = select(&all, &rsm("<max>2</max><index>3</index>")).unwrap();
        assert_eq!((p.start, p.end), (3, 5));
        let p = select(&all, &rsm("<max>0</max>")).unwrap();
        assert_eq!((p.start, p.end, p.count), (0, 0, 7));
        assert_eq!(
            select(&all, &rsm("<max>3</max><after>gone</after>")),
            Err(VirtualNodeError::ItemNotFound)
        );
        // The answer's <set/>: first (with its index), last, count.
        let entries: Vec<(String, Entry)> =
            all.iter().map(|i| (i.clone(), Entry::default())).collect();
        let req = rsm("<max>3</max><after>i0</after>");
        let page = select(&all, &req).unwrap();
        let answer = items_answer(&entries, &req, &page);
        let parsed = xmpp_social::pubsub::parse::parse_items_result(&answer).unwrap();
        let got: Vec<&str> = parsed.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(got, ["i1", "i2", "i3"]);
        let set = parsed.rsm.unwrap();
        assert_eq!(set.first.as_deref(), Some("i1"));
        assert_eq!(set.first_index, Some(1));
        assert_eq!(set.last.as_deref(), Some("i3"));
        assert_eq!(set.count, Some(7));
    }

    #[test]
    fn hostile_requests_are_refused() {
        let bad = |xml: &str| ItemsRequest::parse(&xml.parse::<Element>().unwrap()).unwrap_err();
        bad("<pubsub xmlns='http://jabber.org/protocol/pubsub'/>");
        bad("<pubsub xmlns='http://jabber.org/protocol/pubsub'><items/></pubsub>");
        bad("<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='n' max_items='-1'/></pubsub>");
        bad(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>many</max></set></pubsub>",
        );
        let many: String = (0..=MAX_ITEMS)
            .map(|i| format!("<item id='{i}'/>"))
            .collect();
        bad(&format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>{many}</items></pubsub>"
        ));
        // A huge index or max is clamped, not an overflow.
        let req = request(&format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:microblog:0'/>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>{m}</max><index>{m}</index></set>\
             </pubsub>",
            m = usize::MAX
        ));
        let p = select(&ids(3), &req).unwrap();
        assert_eq!((p.start, p.end), (3, 3));
    }

    #[test]
    fn disco() {
        let info = disco_info_answer(Some(NS_MICROBLOG)).unwrap();
        assert!(info.children().any(|c| c.attr("var") == Some(NS_PUBSUB)));
        assert!(disco_info_answer(Some("other")).is_none());
        let items = disco_items_answer("fed\\40h@ap.localhost", None);
        assert_eq!(
            items.children().next().unwrap().attr("node"),
            Some(NS_MICROBLOG)
        );
    }
}
