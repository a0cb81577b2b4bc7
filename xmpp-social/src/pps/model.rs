//! The XEP-0465 payloads (`<subscription/>`, `<subscriber/>`) and the XEP-0376 elements (`<pam/>`
//! requests, `<notify/>` messages, `<subscriptions/>` lists), typed and sans-IO.

use jid::Jid;
use minidom::Element;
use serde::{Serialize, Serializer};

use super::{NS_PAM, NS_PAM_2, NS_PPS};
use crate::error::ParseError;
use crate::pubsub::{parse::parse_subscription, Subscription, SubscriptionState, NS_PUBSUB};
use crate::xml::{qname, BuilderExt};

/// Most subscriptions a PAM `<subscriptions/>` list may carry before it is refused as hostile.
pub const MAX_PAM_SUBSCRIPTIONS: usize = 100_000;

/// The longest node name this crate accepts in these payloads (bytes).
pub const MAX_NODE_BYTES: usize = 3072;

fn invalid(element: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError::InvalidValue {
        element,
        reason: reason.into(),
    }
}

fn required<'a>(
    el: &'a Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str, ParseError> {
    el.attr(attribute)
        .ok_or(ParseError::MissingAttribute { element, attribute })
}

fn parse_jid(element: &'static str, s: &str) -> Result<Jid, ParseError> {
    Jid::new(s.trim()).map_err(|e| invalid(element, format!("bad JID {s:?}: {e}")))
}

fn parse_node(element: &'static str, s: &str) -> Result<String, ParseError> {
    if s.is_empty() {
        return Err(invalid(element, "empty node name"));
    }
    if s.len() > MAX_NODE_BYTES {
        return Err(ParseError::TooLarge {
            element,
            size: s.len(),
            limit: MAX_NODE_BYTES,
        });
    }
    Ok(s.to_owned())
}

pub(crate) fn serialize_jid<S: Serializer>(j: &Jid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(j.as_str())
}

/// The protocol string of a subscription state.
pub fn state_str(state: SubscriptionState) -> &'static str {
    match state {
        SubscriptionState::Subscribed => "subscribed",
        SubscriptionState::Pending => "pending",
        SubscriptionState::Unconfigured => "unconfigured",
        SubscriptionState::None => "none",
    }
}

fn parse_state(element: &'static str, s: Option<&str>) -> Result<SubscriptionState, ParseError> {
    Ok(match s.unwrap_or("subscribed") {
        "subscribed" => SubscriptionState::Subscribed,
        "pending" => SubscriptionState::Pending,
        "unconfigured" => SubscriptionState::Unconfigured,
        "none" => SubscriptionState::None,
        other => return Err(invalid(element, format!("unknown state {other:?}"))),
    })
}

fn pam_namespace(el: &Element, name: &str) -> Result<&'static str, ParseError> {
    [NS_PAM, NS_PAM_2]
        .into_iter()
        .find(|ns| el.is(name, *ns))
        .ok_or_else(|| ParseError::WrongElement {
            expected: format!("{{{NS_PAM}}}{name}"),
            found: qname(el),
        })
}

// ---------------------------------------------------------------------------------------------
// XEP-0465 payloads
// ---------------------------------------------------------------------------------------------

/// `<subscription xmlns='urn:xmpp:pps:0' node='...' jid='...'/>`: an item of a user's public
/// subscriptions node (`urn:xmpp:pps:subscriptions:0`), a node the user publicly follows.
///
/// Reading also takes the `service` attribute Libervia 0.9 writes instead of `jid`, and an optional
/// `subscription` state (`none` marks a withdrawn entry where a client could not retract it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicSubscription {
    /// The pubsub service (or PEP account) of the followed node (`jid` attribute).
    #[serde(serialize_with = "serialize_jid")]
    pub service: Jid,
    /// The followed node.
    pub node: String,
    /// The subscription state (`subscription` attribute; absent means subscribed).
    pub state: SubscriptionState,
}

impl PublicSubscription {
    /// A subscribed entry.
    pub fn new(service: Jid, node: impl Into<String>) -> Self {
        PublicSubscription {
            service,
            node: node.into(),
            state: SubscriptionState::Subscribed,
        }
    }
}

impl TryFrom<&Element> for PublicSubscription {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        crate::xml::expect_element(el, NS_PPS, "subscription")?;
        let service = match el.attr("jid").or_else(|| el.attr("service")) {
            Some(j) => parse_jid("subscription@jid", j)?,
            None => {
                return Err(ParseError::MissingAttribute {
                    element: "subscription",
                    attribute: "jid",
                })
            }
        };
        Ok(PublicSubscription {
            service,
            node: parse_node("subscription@node", required(el, "subscription", "node")?)?,
            state: parse_state("subscription@subscription", el.attr("subscription"))?,
        })
    }
}

impl From<&PublicSubscription> for Element {
    fn from(s: &PublicSubscription) -> Element {
        Element::builder("subscription", NS_PPS)
            .a("node", s.node.as_str())
            .a("jid", s.service.as_str())
            .a_opt(
                "subscription",
                (s.state != SubscriptionState::Subscribed).then(|| state_str(s.state)),
            )
            .build()
    }
}

/// `<subscriber xmlns='urn:xmpp:pps:0' jid='...'/>`: an item of a node's public subscribers node
/// (`urn:xmpp:pps:subscribers:0/<node>`), a JID that publicly follows the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicSubscriber {
    /// The subscriber.
    #[serde(serialize_with = "serialize_jid")]
    pub jid: Jid,
    /// The subscription state (`subscription` attribute; absent means subscribed).
    pub state: SubscriptionState,
}

impl PublicSubscriber {
    /// A subscribed entry.
    pub fn new(jid: Jid) -> Self {
        PublicSubscriber {
            jid,
            state: SubscriptionState::Subscribed,
        }
    }
}

impl TryFrom<&Element> for PublicSubscriber {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        crate::xml::expect_element(el, NS_PPS, "subscriber")?;
        Ok(PublicSubscriber {
            jid: parse_jid("subscriber@jid", required(el, "subscriber", "jid")?)?,
            state: parse_state("subscriber@subscription", el.attr("subscription"))?,
        })
    }
}

impl From<&PublicSubscriber> for Element {
    fn from(s: &PublicSubscriber) -> Element {
        Element::builder("subscriber", NS_PPS)
            .a("jid", s.jid.as_str())
            .a_opt(
                "subscription",
                (s.state != SubscriptionState::Subscribed).then(|| state_str(s.state)),
            )
            .build()
    }
}

// ---------------------------------------------------------------------------------------------
// XEP-0376 (Pubsub Account Management)
// ---------------------------------------------------------------------------------------------

/// Subscribe or unsubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PamAction {
    /// `<subscribe/>`.
    Subscribe,
    /// `<unsubscribe/>`.
    Unsubscribe,
}

/// A `<pam/>` request (XEP-0376 §"Subscribing"): an IQ set to the user's own account that asks the
/// server to (un)subscribe the account to a node of `service`. With `public`, the subscribe carries
/// XEP-0465's `<public xmlns='urn:xmpp:pps:0'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamRequest {
    /// The PAM namespace to write (the one the server announces).
    pub namespace: &'static str,
    /// The pubsub service of the node (`jid` attribute of `<pam/>`).
    pub service: Jid,
    /// Subscribe or unsubscribe.
    pub action: PamAction,
    /// The node.
    pub node: String,
    /// The subscriber: the account's own bare JID (the server checks it).
    pub jid: Jid,
    /// Whether the subscription is public (XEP-0465); only meaningful for a subscribe.
    pub public: bool,
}

impl TryFrom<&Element> for PamRequest {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let namespace = pam_namespace(el, "pam")?;
        let service = parse_jid("pam@jid", required(el, "pam", "jid")?)?;
        let mut ops = el
            .children()
            .filter(|c| c.is("subscribe", NS_PUBSUB) || c.is("unsubscribe", NS_PUBSUB));
        let op = ops.next().ok_or(ParseError::MissingChild {
            element: "pam",
            child: "subscribe",
        })?;
        if ops.next().is_some() {
            return Err(invalid("pam", "more than one operation"));
        }
        let action = if op.name() == "subscribe" {
            PamAction::Subscribe
        } else {
            PamAction::Unsubscribe
        };
        Ok(PamRequest {
            namespace,
            service,
            action,
            node: parse_node("subscribe@node", required(op, "subscribe", "node")?)?,
            jid: parse_jid("subscribe@jid", required(op, "subscribe", "jid")?)?,
            public: op.get_child("public", NS_PPS).is_some(),
        })
    }
}

impl From<&PamRequest> for Element {
    fn from(r: &PamRequest) -> Element {
        let name = match r.action {
            PamAction::Subscribe => "subscribe",
            PamAction::Unsubscribe => "unsubscribe",
        };
        let mut op = Element::builder(name, NS_PUBSUB)
            .a("node", r.node.as_str())
            .a("jid", r.jid.as_str());
        if r.public && r.action == PamAction::Subscribe {
            op = op.append(Element::bare("public", NS_PPS));
        }
        Element::builder("pam", r.namespace)
            .a("jid", r.service.as_str())
            .append(op.build())
            .build()
    }
}

fn subscription_element(ns: &str, s: &Subscription) -> Element {
    Element::builder("subscription", ns)
        .a_opt("node", s.node.as_deref())
        .a("jid", s.jid.as_str())
        .a("subscription", state_str(s.state))
        .a_opt("subid", s.subid.as_deref())
        .build()
}

/// A `<notify/>` (XEP-0376): the server tells the account's clients that a subscription changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamNotify {
    /// The PAM namespace it came in.
    pub namespace: &'static str,
    /// The new version of the subscription list, if given.
    pub ver: Option<String>,
    /// The pubsub service of the node.
    pub service: Jid,
    /// The subscription as the service now has it.
    pub subscription: Subscription,
}

impl TryFrom<&Element> for PamNotify {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let namespace = pam_namespace(el, "notify")?;
        let sub = el
            .get_child("subscription", NS_PUBSUB)
            .ok_or(ParseError::MissingChild {
                element: "notify",
                child: "subscription",
            })?;
        Ok(PamNotify {
            namespace,
            ver: el.attr("ver").map(str::to_owned),
            service: parse_jid("notify@service", required(el, "notify", "service")?)?,
            subscription: parse_subscription(sub)?,
        })
    }
}

impl From<&PamNotify> for Element {
    fn from(n: &PamNotify) -> Element {
        Element::builder("notify", n.namespace)
            .a_opt("ver", n.ver.as_deref())
            .a("service", n.service.as_str())
            .append(subscription_element(NS_PUBSUB, &n.subscription))
            .build()
    }
}

impl PamNotify {
    /// The `<notify/>` of a message, if it has one.
    pub fn from_message(
        message: &xmpp_parsers::message::Message,
    ) -> Option<Result<Self, ParseError>> {
        message
            .payloads
            .iter()
            .find(|p| pam_namespace(p, "notify").is_ok())
            .map(PamNotify::try_from)
    }
}

/// One subscription of a PAM `<subscriptions/>` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PamSubscription {
    /// The pubsub service.
    #[serde(serialize_with = "serialize_jid")]
    pub service: Jid,
    /// The node.
    pub node: String,
    /// The subscribed JID.
    #[serde(serialize_with = "serialize_jid")]
    pub jid: Jid,
    /// The state.
    pub state: SubscriptionState,
    /// The subscription id, for multiple subscriptions to one node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subid: Option<String>,
}

/// A PAM `<subscriptions/>` (XEP-0376 §"Listing Subscriptions"): empty with an optional `ver` as a
/// request, the account's subscriptions on every service as a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamSubscriptions {
    /// The PAM namespace.
    pub namespace: &'static str,
    /// The opaque version of the list.
    pub ver: Option<String>,
    /// The subscriptions.
    pub subscriptions: Vec<PamSubscription>,
}

impl TryFrom<&Element> for PamSubscriptions {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let namespace = pam_namespace(el, "subscriptions")?;
        let mut subscriptions = Vec::new();
        for s in el.children().filter(|c| c.is("subscription", namespace)) {
            if subscriptions.len() >= MAX_PAM_SUBSCRIPTIONS {
                return Err(ParseError::TooLarge {
                    element: "subscriptions",
                    size: subscriptions.len() + 1,
                    limit: MAX_PAM_SUBSCRIPTIONS,
                });
            }
            subscriptions.push(PamSubscription {
                service: parse_jid(
                    "subscription@service",
                    required(s, "subscription", "service")?,
                )?,
                node: parse_node("subscription@node", required(s, "subscription", "node")?)?,
                jid: parse_jid("subscription@jid", required(s, "subscription", "jid")?)?,
                state: parse_state("subscription@subscription", s.attr("subscription"))?,
                subid: s.attr("subid").map(str::to_owned),
            });
        }
        Ok(PamSubscriptions {
            namespace,
            ver: el.attr("ver").map(str::to_owned),
            subscriptions,
        })
    }
}

impl From<&PamSubscriptions> for Element {
    fn from(l: &PamSubscriptions) -> Element {
        let mut b = Element::builder("subscriptions", l.namespace).a_opt("ver", l.ver.as_deref());
        for s in &l.subscriptions {
            b = b.append(
                Element::builder("subscription", l.namespace)
                    .a("service", s.service.as_str())
                    .a("node", s.node.as_str())
                    .a("jid", s.jid.as_str())
                    .a("subscription", state_str(s.state))
                    .a_opt("subid", s.subid.as_deref())
                    .build(),
            );
        }
        b.build()
    }
}
