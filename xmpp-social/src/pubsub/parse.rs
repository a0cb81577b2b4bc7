//! Parsers of pubsub IQ results (sans-IO). They read `<pubsub/>` themselves so that an RSM `<set/>`
//! next to `<items/>` is understood.

use jid::Jid;
use minidom::Element;

use super::config::NodeConfig;
use super::{
    Affiliation, AffiliationEntry, Item, Subscription, SubscriptionState, MAX_ITEMS_PER_RESULT,
    NS_PUBSUB, NS_PUBSUB_OWNER,
};
use crate::error::ParseError;
use crate::forms::{DataForm, NS_DATA};
use crate::rsm::{RsmResult, NS_RSM};
use crate::xml::expect_element;

/// One page of items.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsPage {
    /// The node the items belong to.
    pub node: String,
    /// The items, in the order the service sent them.
    pub items: Vec<Item>,
    /// The RSM `<set/>` when the service pages (absent when it ignored the request's RSM).
    pub rsm: Option<RsmResult>,
}

fn parse_jid(element: &'static str, s: &str) -> Result<Jid, ParseError> {
    Jid::new(s).map_err(|e| ParseError::InvalidValue {
        element,
        reason: format!("bad JID {s:?}: {e}"),
    })
}

fn required_attr<'a>(
    el: &'a Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str, ParseError> {
    el.attr(attribute)
        .ok_or(ParseError::MissingAttribute { element, attribute })
}

/// Parses one `<item/>` of a result or a notification (any pubsub namespace).
pub fn parse_item(el: &Element) -> Result<Item, ParseError> {
    let id = required_attr(el, "item", "id")?;
    if id.is_empty() {
        return Err(ParseError::InvalidValue {
            element: "item@id",
            reason: "empty item id".into(),
        });
    }
    let publisher = match el.attr("publisher") {
        Some(p) => Some(parse_jid("item@publisher", p)?),
        None => None,
    };
    let mut payloads = el.children();
    let payload = payloads.next().cloned();
    if payloads.next().is_some() {
        return Err(ParseError::InvalidValue {
            element: "item",
            reason: "more than one payload".into(),
        });
    }
    Ok(Item {
        id: id.to_owned(),
        publisher,
        payload,
    })
}

/// Parses the children `<item/>` of `parent` (in namespace `ns`).
pub(crate) fn parse_items_of(parent: &Element, ns: &str) -> Result<Vec<Item>, ParseError> {
    let mut items = Vec::new();
    for c in parent.children().filter(|c| c.is("item", ns)) {
        if items.len() >= MAX_ITEMS_PER_RESULT {
            return Err(ParseError::TooLarge {
                element: "items",
                size: items.len() + 1,
                limit: MAX_ITEMS_PER_RESULT,
            });
        }
        items.push(parse_item(c)?);
    }
    Ok(items)
}

/// Parses the result of [`super::request::get_items`].
pub fn parse_items_result(el: &Element) -> Result<ItemsPage, ParseError> {
    expect_element(el, NS_PUBSUB, "pubsub")?;
    let items_el = el
        .get_child("items", NS_PUBSUB)
        .ok_or(ParseError::MissingChild {
            element: "pubsub",
            child: "items",
        })?;
    let node = required_attr(items_el, "items", "node")?.to_owned();
    let items = parse_items_of(items_el, NS_PUBSUB)?;
    let rsm = match el.get_child("set", NS_RSM) {
        Some(s) => Some(RsmResult::parse(s)?),
        None => None,
    };
    Ok(ItemsPage { node, items, rsm })
}

/// The item id the service assigned in a publish result (None if it sent none: the request's id holds).
pub fn parse_publish_result(el: Option<&Element>) -> Result<Option<String>, ParseError> {
    let Some(el) = el else { return Ok(None) };
    expect_element(el, NS_PUBSUB, "pubsub")?;
    Ok(el
        .get_child("publish", NS_PUBSUB)
        .and_then(|p| p.get_child("item", NS_PUBSUB))
        .and_then(|i| i.attr("id"))
        .map(str::to_owned))
}

/// The node name in a create result (for instant nodes), if any.
pub fn parse_create_result(el: Option<&Element>) -> Result<Option<String>, ParseError> {
    let Some(el) = el else { return Ok(None) };
    expect_element(el, NS_PUBSUB, "pubsub")?;
    Ok(el
        .get_child("create", NS_PUBSUB)
        .and_then(|c| c.attr("node"))
        .map(str::to_owned))
}

fn parse_state(s: &str) -> Result<SubscriptionState, ParseError> {
    Ok(match s {
        "subscribed" => SubscriptionState::Subscribed,
        "pending" => SubscriptionState::Pending,
        "unconfigured" => SubscriptionState::Unconfigured,
        "none" => SubscriptionState::None,
        other => {
            return Err(ParseError::InvalidValue {
                element: "subscription@subscription",
                reason: format!("unknown state {other:?}"),
            })
        }
    })
}

/// Parses one `<subscription/>` (any pubsub namespace).
pub fn parse_subscription(el: &Element) -> Result<Subscription, ParseError> {
    let jid = parse_jid(
        "subscription@jid",
        required_attr(el, "subscription", "jid")?,
    )?;
    let state = parse_state(el.attr("subscription").unwrap_or("subscribed"))?;
    Ok(Subscription {
        node: el.attr("node").map(str::to_owned),
        jid,
        state,
        subid: el.attr("subid").map(str::to_owned),
    })
}

/// Parses a subscribe result (`<pubsub><subscription/></pubsub>`); `None` for an empty result.
pub fn parse_subscribe_result(el: Option<&Element>) -> Result<Option<Subscription>, ParseError> {
    let Some(el) = el else { return Ok(None) };
    expect_element(el, NS_PUBSUB, "pubsub")?;
    el.get_child("subscription", NS_PUBSUB)
        .map(parse_subscription)
        .transpose()
}

/// Parses a subscriptions result (`<pubsub><subscriptions/></pubsub>`).
pub fn parse_subscriptions_result(el: Option<&Element>) -> Result<Vec<Subscription>, ParseError> {
    let Some(el) = el else {
        return Ok(Vec::new());
    };
    let ns = el.ns();
    let subs = el
        .get_child("subscriptions", ns.as_str())
        .ok_or(ParseError::MissingChild {
            element: "pubsub",
            child: "subscriptions",
        })?;
    let node = subs.attr("node");
    subs.children()
        .filter(|c| c.name() == "subscription")
        .map(|c| {
            parse_subscription(c).map(|mut s| {
                if s.node.is_none() {
                    s.node = node.map(str::to_owned);
                }
                s
            })
        })
        .collect()
}

/// Parses an affiliations result, of an entity (`pubsub`) or of a node's owner (`pubsub#owner`).
pub fn parse_affiliations_result(
    el: Option<&Element>,
) -> Result<Vec<AffiliationEntry>, ParseError> {
    let Some(el) = el else {
        return Ok(Vec::new());
    };
    if !(el.is("pubsub", NS_PUBSUB) || el.is("pubsub", NS_PUBSUB_OWNER)) {
        return Err(ParseError::WrongElement {
            expected: format!("{{{NS_PUBSUB}}}pubsub"),
            found: crate::xml::qname(el),
        });
    }
    let ns = el.ns();
    let affs = el
        .get_child("affiliations", ns.as_str())
        .ok_or(ParseError::MissingChild {
            element: "pubsub",
            child: "affiliations",
        })?;
    let mut out = Vec::new();
    for c in affs.children().filter(|c| c.name() == "affiliation") {
        let a = required_attr(c, "affiliation", "affiliation")?;
        let affiliation = Affiliation::from_protocol(a).ok_or(ParseError::InvalidValue {
            element: "affiliation@affiliation",
            reason: format!("unknown affiliation {a:?}"),
        })?;
        let jid = match c.attr("jid") {
            Some(j) => Some(parse_jid("affiliation@jid", j)?),
            None => None,
        };
        out.push(AffiliationEntry {
            node: c.attr("node").or(affs.attr("node")).map(str::to_owned),
            jid,
            affiliation,
        });
    }
    Ok(out)
}

/// Parses a node configuration result (`<pubsub#owner><configure><x/></configure></pubsub>`).
pub fn parse_config_result(el: Option<&Element>) -> Result<NodeConfig, ParseError> {
    let el = el.ok_or(ParseError::MissingChild {
        element: "iq",
        child: "pubsub",
    })?;
    expect_element(el, NS_PUBSUB_OWNER, "pubsub")?;
    let form = el
        .get_child("configure", NS_PUBSUB_OWNER)
        .and_then(|c| c.get_child("x", NS_DATA))
        .ok_or(ParseError::MissingChild {
            element: "configure",
            child: "x",
        })?;
    Ok(NodeConfig::from_form(&DataForm::parse(form)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        xml.parse().expect("test XML")
    }

    #[test]
    fn reads_items_with_rsm() {
        // XEP-0060 example 78 shape, with the XEP-0059 set a paging service adds.
        let page = parse_items_result(&el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='princely_musings'>\
             <item id='368866411b877c30064a5f62b917cffe' publisher='hamlet@denmark.lit'><entry xmlns='http://www.w3.org/2005/Atom'><title>x</title></entry></item>\
             <item id='3300659945416e274474e469a1f0154c'><entry xmlns='http://www.w3.org/2005/Atom'/></item></items>\
             <set xmlns='http://jabber.org/protocol/rsm'><first index='0'>368866411b877c30064a5f62b917cffe</first>\
             <last>3300659945416e274474e469a1f0154c</last><count>19</count></set></pubsub>",
        ))
        .expect("parse");
        assert_eq!(page.node, "princely_musings");
        assert_eq!(page.items.len(), 2);
        assert_eq!(
            page.items[0].publisher.as_ref().map(Jid::as_str),
            Some("hamlet@denmark.lit")
        );
        assert_eq!(page.rsm.as_ref().and_then(|r| r.count), Some(19));
    }

    #[test]
    fn refuses_malformed_results() {
        // missing item id
        assert!(matches!(
            parse_items_result(&el(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item/></items></pubsub>"
            )),
            Err(ParseError::MissingAttribute { .. })
        ));
        // wrong namespace
        assert!(matches!(
            parse_items_result(&el("<pubsub xmlns='urn:bogus'><items node='n'/></pubsub>")),
            Err(ParseError::WrongElement { .. })
        ));
        // bad publisher JID
        assert!(matches!(
            parse_items_result(&el(
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='a' publisher='@@'/></items></pubsub>"
            )),
            Err(ParseError::InvalidValue { .. })
        ));
        // two payloads
        assert!(parse_items_result(&el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='a'><x xmlns='a'/><y xmlns='b'/></item></items></pubsub>"
        ))
        .is_err());
        // missing node
        assert!(parse_items_result(&el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items/></pubsub>"
        ))
        .is_err());
    }

    #[test]
    fn reads_subscriptions_and_affiliations() {
        let subs = parse_subscriptions_result(Some(&el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions>\
             <subscription node='node1' jid='francisco@denmark.lit' subscription='subscribed'/>\
             <subscription node='node5' jid='francisco@denmark.lit' subscription='pending'/>\
             </subscriptions></pubsub>",
        )))
        .expect("subs");
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[1].state, SubscriptionState::Pending);
        let affs = parse_affiliations_result(Some(&el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='princely_musings'>\
             <affiliation jid='hamlet@denmark.lit' affiliation='owner'/>\
             <affiliation jid='polonius@denmark.lit' affiliation='outcast'/></affiliations></pubsub>",
        )))
        .expect("affs");
        assert_eq!(affs[1].affiliation, Affiliation::Outcast);
        assert_eq!(affs[0].node.as_deref(), Some("princely_musings"));
    }
}
