//! Publish-Subscribe (XEP-0060 1.26) with Result Set Management (XEP-0059).
//!
//! Sans-IO first: [`request`] builds the `<pubsub/>` payloads of IQs and [`parse`] reads results, both pure
//! and unit-tested; [`event`] reads notifications; [`PubSubExt`] runs them on any
//! [`Connection`](crate::Connection).

pub mod config;
pub mod event;
mod ops;
pub mod parse;
pub mod request;

use jid::Jid;
use minidom::Element;

pub use config::{AccessModel, MaxItems, NodeConfig, PublishModel};
pub use event::{PubSubEvent, PubSubEvents};
pub use ops::{
    is_publish_options_refusal, DiscoInfo, PreconditionPolicy, PubSubExt, PublishOptions,
};
pub use parse::ItemsPage;
pub use request::ItemsQuery;

/// `http://jabber.org/protocol/pubsub`.
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// `http://jabber.org/protocol/pubsub#owner`.
pub const NS_PUBSUB_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
/// `http://jabber.org/protocol/pubsub#event`.
pub const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// `http://jabber.org/protocol/pubsub#errors`.
pub const NS_PUBSUB_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
/// FORM_TYPE of node configuration forms.
pub const FORM_NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// FORM_TYPE of publish-options forms.
pub const FORM_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// Most items one result or notification may carry before it is refused as hostile.
pub const MAX_ITEMS_PER_RESULT: usize = 100_000;

/// A pubsub item as read from a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The item id (always present in results and notifications; a missing one is a parse error).
    pub id: String,
    /// The publisher, when the service exposes it (`publisher` attribute).
    pub publisher: Option<Jid>,
    /// The payload (absent when the node does not deliver payloads).
    pub payload: Option<Element>,
}

/// A subscription state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    /// Subscribed.
    Subscribed,
    /// Waiting for approval.
    Pending,
    /// Subscribed but configuration is required.
    Unconfigured,
    /// Not subscribed.
    None,
}

/// A subscription of a JID to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The node (absent in some answers, where the request's node applies).
    pub node: Option<String>,
    /// The subscribed JID.
    pub jid: Jid,
    /// The state.
    pub state: SubscriptionState,
    /// The subscription id, for multiple subscriptions.
    pub subid: Option<String>,
}

/// An affiliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Affiliation {
    /// Owner.
    Owner,
    /// Publisher.
    Publisher,
    /// Publish-only.
    PublishOnly,
    /// Member.
    Member,
    /// None.
    None,
    /// Outcast.
    Outcast,
}

impl Affiliation {
    /// The protocol string.
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Publisher => "publisher",
            Affiliation::PublishOnly => "publish-only",
            Affiliation::Member => "member",
            Affiliation::None => "none",
            Affiliation::Outcast => "outcast",
        }
    }

    /// Parses the protocol string.
    pub fn from_protocol(s: &str) -> Option<Affiliation> {
        Some(match s {
            "owner" => Affiliation::Owner,
            "publisher" => Affiliation::Publisher,
            "publish-only" => Affiliation::PublishOnly,
            "member" => Affiliation::Member,
            "none" => Affiliation::None,
            "outcast" => Affiliation::Outcast,
            _ => return None,
        })
    }
}

/// An affiliation of an entity with a node: from the entity's view (`node` set) or the owner's (`jid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffiliationEntry {
    /// The node (in an entity's own list).
    pub node: Option<String>,
    /// The JID (in an owner's list).
    pub jid: Option<Jid>,
    /// The affiliation.
    pub affiliation: Affiliation,
}
