//! Pubsub notifications (XEP-0060 §7.1.2, §7.2.2, §8.4.2, §8.5.2, §8.2.4.3) carried in `<message/>`s.

use std::collections::VecDeque;
use std::sync::Arc;

use jid::Jid;
use minidom::Element;
use xmpp_parsers::message::Message;
use xmpp_parsers::stanza::Stanza;

use super::config::NodeConfig;
use super::parse::{parse_items_of, parse_subscription};
use super::{Item, Subscription, MAX_ITEMS_PER_RESULT, NS_PUBSUB_EVENT};
use crate::connection::{Incoming, RecvError};
use crate::error::ParseError;
use crate::forms::{DataForm, NS_DATA};

/// One notification from a pubsub service.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PubSubEvent {
    /// Items were published (or overwritten).
    Items {
        /// The service (a pubsub component, or the publishing account for PEP).
        service: Jid,
        /// The node.
        node: String,
        /// The items.
        items: Vec<Item>,
    },
    /// Items were retracted.
    Retract {
        /// The service.
        service: Jid,
        /// The node.
        node: String,
        /// Ids of the retracted items.
        ids: Vec<String>,
    },
    /// All items of the node were purged.
    Purge {
        /// The service.
        service: Jid,
        /// The node.
        node: String,
    },
    /// The node was deleted.
    Delete {
        /// The service.
        service: Jid,
        /// The node.
        node: String,
        /// Where subscribers should go instead (`xmpp:` URI).
        redirect: Option<String>,
    },
    /// The node's configuration changed.
    Configuration {
        /// The service.
        service: Jid,
        /// The node.
        node: String,
        /// The new configuration, when the service includes it.
        config: Option<NodeConfig>,
    },
    /// A subscription changed (approval, removal by the owner...).
    Subscription {
        /// The service.
        service: Jid,
        /// The subscription.
        subscription: Subscription,
    },
}

impl PubSubEvent {
    /// The node the event is about, if it names one.
    pub fn node(&self) -> Option<&str> {
        match self {
            PubSubEvent::Items { node, .. }
            | PubSubEvent::Retract { node, .. }
            | PubSubEvent::Purge { node, .. }
            | PubSubEvent::Delete { node, .. }
            | PubSubEvent::Configuration { node, .. } => Some(node),
            PubSubEvent::Subscription { subscription, .. } => subscription.node.as_deref(),
        }
    }

    /// The service the event comes from.
    pub fn service(&self) -> &Jid {
        match self {
            PubSubEvent::Items { service, .. }
            | PubSubEvent::Retract { service, .. }
            | PubSubEvent::Purge { service, .. }
            | PubSubEvent::Delete { service, .. }
            | PubSubEvent::Configuration { service, .. }
            | PubSubEvent::Subscription { service, .. } => service,
        }
    }
}

fn node_of(el: &Element, name: &'static str) -> Result<String, ParseError> {
    el.attr("node")
        .map(str::to_owned)
        .ok_or(ParseError::MissingAttribute {
            element: name,
            attribute: "node",
        })
}

/// Parses the `<event xmlns='http://jabber.org/protocol/pubsub#event'/>` of a message sent by `service`.
/// One `<items/>` may give both an [`PubSubEvent::Items`] and a [`PubSubEvent::Retract`].
pub fn parse_event(service: &Jid, event: &Element) -> Result<Vec<PubSubEvent>, ParseError> {
    crate::xml::expect_element(event, NS_PUBSUB_EVENT, "event")?;
    let mut out = Vec::new();
    for c in event.children().filter(|c| c.ns() == NS_PUBSUB_EVENT) {
        match c.name() {
            "items" => {
                let node = node_of(c, "items")?;
                let items = parse_items_of(c, NS_PUBSUB_EVENT)?;
                let mut ids = Vec::new();
                for r in c.children().filter(|r| r.is("retract", NS_PUBSUB_EVENT)) {
                    if ids.len() >= MAX_ITEMS_PER_RESULT {
                        return Err(ParseError::TooLarge {
                            element: "retract",
                            size: ids.len() + 1,
                            limit: MAX_ITEMS_PER_RESULT,
                        });
                    }
                    let id = r.attr("id").filter(|i| !i.is_empty()).ok_or(
                        ParseError::MissingAttribute {
                            element: "retract",
                            attribute: "id",
                        },
                    )?;
                    ids.push(id.to_owned());
                }
                if !items.is_empty() {
                    out.push(PubSubEvent::Items {
                        service: service.clone(),
                        node: node.clone(),
                        items,
                    });
                }
                if !ids.is_empty() {
                    out.push(PubSubEvent::Retract {
                        service: service.clone(),
                        node,
                        ids,
                    });
                }
            }
            "purge" => out.push(PubSubEvent::Purge {
                service: service.clone(),
                node: node_of(c, "purge")?,
            }),
            "delete" => out.push(PubSubEvent::Delete {
                service: service.clone(),
                node: node_of(c, "delete")?,
                redirect: c
                    .get_child("redirect", NS_PUBSUB_EVENT)
                    .and_then(|r| r.attr("uri"))
                    .map(str::to_owned),
            }),
            "configuration" => out.push(PubSubEvent::Configuration {
                service: service.clone(),
                node: node_of(c, "configuration")?,
                config: match c.get_child("x", NS_DATA) {
                    Some(x) => Some(NodeConfig::from_form(&DataForm::parse(x)?)),
                    None => None,
                },
            }),
            "subscription" => out.push(PubSubEvent::Subscription {
                service: service.clone(),
                subscription: parse_subscription(c)?,
            }),
            _ => {}
        }
    }
    Ok(out)
}

/// Parses the pubsub events of a message: `Ok(None)` when it carries none.
pub fn parse_message(message: &Message) -> Result<Option<Vec<PubSubEvent>>, ParseError> {
    let Some(event) = message
        .payloads
        .iter()
        .find(|p| p.is("event", NS_PUBSUB_EVENT))
    else {
        return Ok(None);
    };
    let service = message.from.as_ref().ok_or(ParseError::MissingAttribute {
        element: "message",
        attribute: "from",
    })?;
    parse_event(service, event).map(Some)
}

/// Why [`PubSubEvents::next`] returned no event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A notification was malformed (it is skipped; the stream goes on).
    #[error("malformed pubsub notification: {0}")]
    Malformed(#[from] ParseError),
    /// The underlying receiver lagged or closed.
    #[error(transparent)]
    Recv(#[from] RecvError),
}

/// A stream of pubsub notifications over a connection's incoming stanzas.
#[derive(Debug)]
pub struct PubSubEvents {
    incoming: Incoming,
    queue: VecDeque<PubSubEvent>,
}

impl PubSubEvents {
    /// Wraps a receiver of incoming stanzas.
    pub fn new(incoming: Incoming) -> Self {
        PubSubEvents {
            incoming,
            queue: VecDeque::new(),
        }
    }

    /// Waits for the next notification. Other stanzas are skipped; a malformed notification gives
    /// [`EventError::Malformed`] and the stream goes on; [`RecvError::Lagged`] tells that some were lost.
    pub async fn next(&mut self) -> Result<PubSubEvent, EventError> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Ok(e);
            }
            let stanza: Arc<Stanza> = self.incoming.recv().await?;
            if let Stanza::Message(m) = stanza.as_ref() {
                if let Some(events) = parse_message(m)? {
                    self.queue.extend(events);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(xml: &str) -> Result<Vec<PubSubEvent>, ParseError> {
        let el: Element = xml.parse().expect("test XML");
        parse_event(&Jid::new("pubsub.shakespeare.lit").expect("jid"), &el)
    }

    #[test]
    fn xep_0060_notifications() {
        // Example 101 (publish notification) shape.
        let e = ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='princely_musings'>\
            <item id='ae890ac52d0df67ed7cfdf51b644e901'><entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry></item>\
            </items></event>").expect("items");
        assert!(
            matches!(&e[0], PubSubEvent::Items { node, items, .. } if node == "princely_musings" && items.len() == 1)
        );
        // Example 117 (retract notification).
        let e = ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='princely_musings'>\
            <retract id='ae890ac52d0df67ed7cfdf51b644e901'/></items></event>").expect("retract");
        assert!(
            matches!(&e[0], PubSubEvent::Retract { ids, .. } if ids == &["ae890ac52d0df67ed7cfdf51b644e901"])
        );
        // Example 176 (purge), 162 (delete with redirect).
        let e = ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><purge node='princely_musings'/></event>").expect("purge");
        assert!(matches!(&e[0], PubSubEvent::Purge { .. }));
        let e = ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><delete node='princely_musings'>\
            <redirect uri='xmpp:hamlet@denmark.lit?;node=blog'/></delete></event>").expect("delete");
        assert!(
            matches!(&e[0], PubSubEvent::Delete { redirect: Some(r), .. } if r == "xmpp:hamlet@denmark.lit?;node=blog")
        );
    }

    #[test]
    fn malformed_notifications_are_errors() {
        assert!(ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><items><item id='a'/></items></event>").is_err());
        assert!(ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'><item/></items></event>").is_err());
        assert!(ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'><retract/></items></event>").is_err());
        assert!(ev("<event xmlns='urn:wrong'/>").is_err());
        assert!(
            ev("<event xmlns='http://jabber.org/protocol/pubsub#event'><purge/></event>").is_err()
        );
    }
}
