//! Builders of `<pubsub/>` IQ payloads (sans-IO). Each returns the single child of the IQ.

use jid::Jid;
use minidom::Element;

use super::config::NodeConfig;
use super::{AffiliationEntry, FORM_NODE_CONFIG, FORM_PUBLISH_OPTIONS, NS_PUBSUB, NS_PUBSUB_OWNER};
use crate::rsm::RsmRequest;
use crate::xml::BuilderExt;

fn pubsub(child: Element) -> Element {
    Element::builder("pubsub", NS_PUBSUB).append(child).build()
}

fn owner(child: Element) -> Element {
    Element::builder("pubsub", NS_PUBSUB_OWNER)
        .append(child)
        .build()
}

fn configure_child(ns: &str, config: &NodeConfig, form_type: &str) -> Element {
    Element::builder("configure", ns)
        .append(config.to_form(form_type).to_element())
        .build()
}

/// Creates `node` (§8.1), with an initial configuration when given.
pub fn create_node(node: &str, config: Option<&NodeConfig>) -> Element {
    let mut b = Element::builder("pubsub", NS_PUBSUB).append(
        Element::builder("create", NS_PUBSUB)
            .a("node", node)
            .build(),
    );
    if let Some(c) = config {
        b = b.append(configure_child(NS_PUBSUB, c, FORM_NODE_CONFIG));
    }
    b.build()
}

/// Deletes `node` (§8.4), optionally pointing subscribers to `redirect` (an `xmpp:` URI).
pub fn delete_node(node: &str, redirect: Option<&str>) -> Element {
    let mut d = Element::builder("delete", NS_PUBSUB_OWNER).a("node", node);
    if let Some(uri) = redirect {
        d = d.append(
            Element::builder("redirect", NS_PUBSUB_OWNER)
                .a("uri", uri)
                .build(),
        );
    }
    owner(d.build())
}

/// Asks for the configuration form of `node` (§8.2).
pub fn get_node_config(node: &str) -> Element {
    owner(
        Element::builder("configure", NS_PUBSUB_OWNER)
            .a("node", node)
            .build(),
    )
}

/// Submits a configuration of `node` (§8.2.4).
pub fn configure_node(node: &str, config: &NodeConfig) -> Element {
    owner(
        Element::builder("configure", NS_PUBSUB_OWNER)
            .a("node", node)
            .append(config.to_form(FORM_NODE_CONFIG).to_element())
            .build(),
    )
}

/// Publishes one item (§7.1) with an optional id and optional publish-options (§7.1.5).
pub fn publish(
    node: &str,
    id: Option<&str>,
    payload: Element,
    options: Option<&NodeConfig>,
) -> Element {
    let item = Element::builder("item", NS_PUBSUB)
        .a_opt("id", id)
        .append(payload)
        .build();
    let mut b = Element::builder("pubsub", NS_PUBSUB).append(
        Element::builder("publish", NS_PUBSUB)
            .a("node", node)
            .append(item)
            .build(),
    );
    if let Some(o) = options.filter(|o| !o.is_empty()) {
        b = b.append(
            Element::builder("publish-options", NS_PUBSUB)
                .append(o.to_form(FORM_PUBLISH_OPTIONS).to_element())
                .build(),
        );
    }
    b.build()
}

/// Retracts items (§7.2), notifying subscribers when `notify`.
pub fn retract(node: &str, ids: &[&str], notify: bool) -> Element {
    let mut r = Element::builder("retract", NS_PUBSUB).a("node", node);
    if notify {
        r = r.a("notify", "true");
    }
    for id in ids {
        r = r.append(Element::builder("item", NS_PUBSUB).a("id", *id).build());
    }
    pubsub(r.build())
}

/// What to fetch with [`get_items`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemsQuery {
    /// Only these item ids (§6.5.8).
    pub ids: Vec<String>,
    /// `max_items`: the most recent N items (§6.5.7).
    pub max_items: Option<u32>,
    /// RSM paging (XEP-0059), appended to `<pubsub/>`.
    pub rsm: Option<RsmRequest>,
    /// Subscription id, for services that need it.
    pub subid: Option<String>,
}

/// Retrieves items (§6.5).
pub fn get_items(node: &str, query: &ItemsQuery) -> Element {
    let mut items = Element::builder("items", NS_PUBSUB)
        .a("node", node)
        .a_opt("max_items", query.max_items.map(|m| m.to_string()))
        .a_opt("subid", query.subid.clone());
    for id in &query.ids {
        items = items.append(Element::builder("item", NS_PUBSUB).a("id", id).build());
    }
    let mut b = Element::builder("pubsub", NS_PUBSUB).append(items.build());
    if let Some(rsm) = &query.rsm {
        b = b.append(rsm.to_element());
    }
    b.build()
}

/// Subscribes `jid` to `node` (§6.1).
pub fn subscribe(node: &str, jid: &Jid) -> Element {
    pubsub(
        Element::builder("subscribe", NS_PUBSUB)
            .a("node", node)
            .a("jid", jid.as_str())
            .build(),
    )
}

/// Unsubscribes `jid` from `node` (§6.2).
pub fn unsubscribe(node: &str, jid: &Jid, subid: Option<&str>) -> Element {
    pubsub(
        Element::builder("unsubscribe", NS_PUBSUB)
            .a("node", node)
            .a("jid", jid.as_str())
            .a_opt("subid", subid)
            .build(),
    )
}

/// The requesting entity's subscriptions, on the service or one node (§5.6).
pub fn subscriptions(node: Option<&str>) -> Element {
    pubsub(
        Element::builder("subscriptions", NS_PUBSUB)
            .a_opt("node", node)
            .build(),
    )
}

/// The requesting entity's affiliations, on the service or one node (§5.7).
pub fn affiliations(node: Option<&str>) -> Element {
    pubsub(
        Element::builder("affiliations", NS_PUBSUB)
            .a_opt("node", node)
            .build(),
    )
}

/// All affiliations with `node`, as its owner (§8.9.1).
pub fn node_affiliations(node: &str) -> Element {
    owner(
        Element::builder("affiliations", NS_PUBSUB_OWNER)
            .a("node", node)
            .build(),
    )
}

/// Changes affiliations with `node`, as its owner (§8.9.2). Entries need a `jid`.
pub fn set_node_affiliations(node: &str, entries: &[AffiliationEntry]) -> Element {
    let mut b = Element::builder("affiliations", NS_PUBSUB_OWNER).a("node", node);
    for e in entries {
        if let Some(j) = &e.jid {
            b = b.append(
                Element::builder("affiliation", NS_PUBSUB_OWNER)
                    .a("jid", j.as_str())
                    .a("affiliation", e.affiliation.as_str())
                    .build(),
            );
        }
    }
    owner(b.build())
}

/// Purges all items of `node` (§8.5).
pub fn purge(node: &str) -> Element {
    owner(
        Element::builder("purge", NS_PUBSUB_OWNER)
            .a("node", node)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::config::{AccessModel, MaxItems};

    fn same(a: &Element, xml: &str) {
        let b: Element = xml.parse().expect("test XML");
        assert_eq!(a, &b, "\n{}\n!=\n{xml}", String::from(a));
    }

    #[test]
    fn builds_xep_0060_requests() {
        // Example 100 (retrieve items, with the RSM set appended as XEP-0059 §2.1 allows).
        let q = ItemsQuery {
            rsm: Some(RsmRequest::first(10)),
            ..Default::default()
        };
        same(
            &get_items("princely_musings", &q),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='princely_musings'/>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set></pubsub>",
        );
        // Example 115 (retract with notify).
        same(
            &retract("princely_musings", &["ae890ac52d0df67ed7cfdf51b644e901"], true),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='princely_musings' notify='true'>\
             <item id='ae890ac52d0df67ed7cfdf51b644e901'/></retract></pubsub>",
        );
        // Example 174 (purge).
        same(
            &purge("princely_musings"),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='princely_musings'/></pubsub>",
        );
        let opts = NodeConfig::new()
            .access_model(AccessModel::Presence)
            .max_items(MaxItems::Max);
        let p = publish(
            "n",
            Some("i"),
            Element::builder("x", "y").build(),
            Some(&opts),
        );
        let po = p
            .get_child("publish-options", NS_PUBSUB)
            .expect("publish-options");
        let form =
            crate::forms::DataForm::parse(po.children().next().expect("form")).expect("form");
        assert_eq!(form.form_type(), Some(FORM_PUBLISH_OPTIONS));
        assert_eq!(form.value("pubsub#access_model"), Some("presence"));
        assert_eq!(form.value("pubsub#max_items"), Some("max"));
    }
}
