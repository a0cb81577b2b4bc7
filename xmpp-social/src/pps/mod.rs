//! Pubsub Public Subscriptions: XEP-0465 (0.1.1, `urn:xmpp:pps:0`), "following" and "followers" made
//! public on purpose, over Pubsub Account Management (XEP-0376 0.2, `urn:xmpp:pam:0`).
//!
//! A user subscribes through their own server (a `<pam/>` request) and adds
//! `<public xmlns='urn:xmpp:pps:0'/>` to make that subscription public. The server then lists it in the
//! user's `urn:xmpp:pps:subscriptions:0` node (whom the user follows) and the subscribers node
//! `urn:xmpp:pps:subscribers:0/<node>` of the followed service (who follows a node). Both nodes are
//! maintained by the services; clients only read them.
//!
//! **Opt-in only.** Nothing in this module makes a subscription public unless the caller asks for it
//! by name ([`PpsExt::subscribe_public`], [`PpsExt::subscribe_public_fallback`]); plain subscriptions
//! ([`crate::pubsub::PubSubExt::subscribe`]) are never public. As the XEP's security considerations
//! say, public subscriptions reveal interests and make the user's JID discoverable: applications
//! should warn users before making a subscription public.
//!
//! **Servers without PAM.** Prosody 0.12 and ejabberd 23.01 have neither PAM nor XEP-0465: the PAM
//! operations then fail with [`Error::Unsupported`], found by service discovery before anything is
//! sent. The XEP's introduction names the alternative that works on any pubsub service: lists the
//! client keeps itself, as XEP-0330 does. [`PpsExt::subscribe_public_fallback`] does that in XEP-0465's
//! own formats, so that the readers ([`PpsExt::public_subscriptions`], [`PpsExt::public_subscribers`])
//! work the same on both: it subscribes with plain XEP-0060, lists the node in the user's own
//! `urn:xmpp:pps:subscriptions:0` PEP node (open access), and, when the followed node's owner opened a
//! subscribers node ([`PpsExt::open_public_subscribers`]), lists the user there under their bare JID.
//! Such lists rely on clients keeping them in sync; readers check that each entry was published by the
//! JID it names (or by the service), and set forgeries aside.

pub mod model;
#[cfg(test)]
mod tests;

use std::future::Future;

use jid::{BareJid, Jid};
use minidom::Element;
use serde::Serialize;
use xmpp_parsers::stanza_error::DefinedCondition;

pub use model::{
    PamAction, PamNotify, PamRequest, PamSubscription, PamSubscriptions, PublicSubscriber,
    PublicSubscription,
};

use crate::connection::{Connection, IqRequest};
use crate::error::{Error, Result};
use crate::microblog::NodeRef;
use crate::pubsub::{
    AccessModel, Item, ItemsQuery, MaxItems, NodeConfig, PreconditionPolicy, PubSubExt,
    PublishModel, PublishOptions, SubscriptionState,
};
use crate::xml::set_attr;

/// Namespace of XEP-0465 payloads, the `<public/>` flag, and the disco feature of services that keep
/// public subscriptions.
pub const NS_PPS: &str = "urn:xmpp:pps:0";
/// The node of a user's public subscriptions (on the user's PEP service).
pub const NODE_PUBLIC_SUBSCRIPTIONS: &str = "urn:xmpp:pps:subscriptions:0";
/// Prefix of the node listing a node's public subscribers: `urn:xmpp:pps:subscribers:0/<node>`.
pub const NS_PPS_SUBSCRIBERS: &str = "urn:xmpp:pps:subscribers:0";
/// Namespace of Pubsub Account Management as XEP-0376 0.2 (the version XEP-0465 builds on) defines it.
pub const NS_PAM: &str = "urn:xmpp:pam:0";
/// A later PAM namespace, accepted when a server announces it.
pub const NS_PAM_2: &str = "urn:xmpp:pam:2";

/// Most entries the list readers return for one node.
pub const MAX_LIST_ITEMS: usize = 10_000;

/// The node listing the public subscribers of `node`: `urn:xmpp:pps:subscribers:0/<node>`.
pub fn subscribers_node_name(node: &str) -> String {
    format!("{NS_PPS_SUBSCRIBERS}/{node}")
}

/// The item id a client-maintained public subscriptions list uses for a followed node: its `xmpp:` URI,
/// so that following twice replaces the entry and unfollowing finds it.
pub fn fallback_item_id(service: &Jid, node: &str) -> String {
    NodeRef::new(Jid::from(service.to_bare()), node)
        .to_uri()
        .to_string()
}

/// The configuration of a client-maintained public subscriptions node: readable by anyone (that is
/// the point), every item kept.
pub fn public_subscriptions_node_config() -> NodeConfig {
    NodeConfig::new()
        .access_model(AccessModel::Open)
        .max_items(MaxItems::Max)
        .persist_items(true)
        .notify_retract(true)
}

/// The configuration of a subscribers node opened by a node's owner: readable by anyone, anyone may
/// publish (each subscriber lists itself under its bare JID), and `pubsub#itemreply` = `publisher`
/// so that services which honour it (ejabberd) say who published each entry (readers set entries
/// published by someone else than the subscriber aside).
pub fn public_subscribers_node_config() -> NodeConfig {
    public_subscriptions_node_config()
        .publish_model(PublishModel::Open)
        .set("pubsub#itemreply", "publisher")
}

/// What the account's server offers for public subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PpsSupport {
    /// The PAM namespace the server announces, if any.
    pub pam: Option<String>,
    /// Whether the account's PEP service announces `urn:xmpp:pps:0` (it keeps the lists).
    pub pps: bool,
}

impl PpsSupport {
    /// Whether public subscriptions can be made the XEP's way (PAM and XEP-0465).
    pub fn public_subscriptions(&self) -> bool {
        self.pam.is_some() && self.pps
    }
}

fn serialize_bare<S: serde::Serializer>(j: &BareJid, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(j.as_str())
}

/// An entry of a list, with the pubsub item it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry<T> {
    /// The pubsub item id.
    pub item_id: String,
    /// The entry.
    #[serde(flatten)]
    pub entry: T,
}

/// An item set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedEntry {
    /// The pubsub item id.
    pub item_id: String,
    /// Why it was not listed.
    pub reason: String,
}

/// The nodes a user publicly follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicSubscriptions {
    /// The user.
    #[serde(serialize_with = "serialize_bare")]
    pub of: BareJid,
    /// The followed nodes (withdrawn entries left out).
    pub subscriptions: Vec<ListEntry<PublicSubscription>>,
    /// Items that are not valid entries or were not published by the user or its service.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedEntry>,
}

/// The JIDs that publicly follow a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicSubscribers {
    /// The followed node.
    #[serde(serialize_with = "model::serialize_jid")]
    pub service: Jid,
    /// The followed node's name.
    pub node: String,
    /// The public subscribers (withdrawn entries left out).
    pub subscribers: Vec<ListEntry<PublicSubscriber>>,
    /// Items that are not valid entries or were published by someone else than the subscriber named
    /// (or the service).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedEntry>,
}

/// Whether `publisher` may have written an entry: itself, the list's service, or that service's domain.
fn publisher_allowed(publisher: &Option<Jid>, allowed: &[&BareJid]) -> bool {
    match publisher {
        None => true,
        Some(p) => {
            let p = p.to_bare();
            allowed.iter().any(|a| **a == p)
        }
    }
}

fn domain_of(j: &BareJid) -> Option<BareJid> {
    BareJid::new(j.domain().as_str()).ok()
}

impl PublicSubscriptions {
    /// Builds the list from the items of `of`'s `urn:xmpp:pps:subscriptions:0` node. Entries must have
    /// been published by `of` (or its server, for service-kept lists).
    pub fn from_items(of: BareJid, items: Vec<Item>) -> Self {
        let domain = domain_of(&of);
        let mut allowed = vec![&of];
        allowed.extend(domain.as_ref());
        let mut out = PublicSubscriptions {
            of: of.clone(),
            subscriptions: Vec::new(),
            rejected: Vec::new(),
        };
        for item in items {
            let parsed = match &item.payload {
                None => Err("no payload".to_owned()),
                Some(_) if !publisher_allowed(&item.publisher, &allowed) => Err(format!(
                    "published by {}, not by {of}",
                    item.publisher
                        .as_ref()
                        .map(|p| p.to_bare().to_string())
                        .unwrap_or_default()
                )),
                Some(p) => PublicSubscription::try_from(p).map_err(|e| e.to_string()),
            };
            match parsed {
                Ok(s) if s.state == SubscriptionState::None => {}
                Ok(entry) => out.subscriptions.push(ListEntry {
                    item_id: item.id,
                    entry,
                }),
                Err(reason) => out.rejected.push(RejectedEntry {
                    item_id: item.id,
                    reason,
                }),
            }
        }
        out
    }
}

impl PublicSubscribers {
    /// Builds the list from the items of the subscribers node of `node` on `service`. Each entry must
    /// have been published by the subscriber it names, or by the service.
    pub fn from_items(service: Jid, node: String, items: Vec<Item>) -> Self {
        let service_bare = service.to_bare();
        let service_domain = domain_of(&service_bare);
        let mut out = PublicSubscribers {
            service,
            node,
            subscribers: Vec::new(),
            rejected: Vec::new(),
        };
        for item in items {
            let parsed = match &item.payload {
                None => Err("no payload".to_owned()),
                Some(p) => PublicSubscriber::try_from(p)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        let subscriber = s.jid.to_bare();
                        let mut allowed = vec![&subscriber, &service_bare];
                        allowed.extend(service_domain.as_ref());
                        if publisher_allowed(&item.publisher, &allowed) {
                            Ok(s)
                        } else {
                            Err(format!(
                                "lists {subscriber} but was published by {}",
                                item.publisher
                                    .as_ref()
                                    .map(|p| p.to_bare().to_string())
                                    .unwrap_or_default()
                            ))
                        }
                    }),
            };
            match parsed {
                Ok(s) if s.state == SubscriptionState::None => {}
                Ok(entry) => out.subscribers.push(ListEntry {
                    item_id: item.id,
                    entry,
                }),
                Err(reason) => out.rejected.push(RejectedEntry {
                    item_id: item.id,
                    reason,
                }),
            }
        }
        out
    }
}

/// What [`PpsExt::subscribe_public_fallback`] managed to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackSubscription {
    /// The subscription state the service answered (absent when it said nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<SubscriptionState>,
    /// The node is listed in the user's own `urn:xmpp:pps:subscriptions:0` node.
    pub listed_in_subscriptions: bool,
    /// The user is listed in the followed node's subscribers node.
    pub listed_in_subscribers: bool,
    /// Why the user could not be listed as a subscriber, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribers_note: Option<String>,
}

/// What [`PpsExt::unsubscribe_public_fallback`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackUnsubscription {
    /// The entry was removed from (or was absent in) the user's subscriptions node.
    pub removed_from_subscriptions: bool,
    /// The entry was removed from (or was absent in, or marked withdrawn in) the subscribers node.
    pub removed_from_subscribers: bool,
}

fn no_pam(me: &BareJid) -> Error {
    Error::Unsupported(format!(
        "the server of {me} does not support Pubsub Account Management (XEP-0376, {NS_PAM}), which \
         public subscriptions (XEP-0465) need; subscribe_public_fallback keeps the lists on the client's side"
    ))
}

fn no_pps(me: &BareJid) -> Error {
    Error::Unsupported(format!(
        "the server of {me} supports Pubsub Account Management but not Pubsub Public Subscriptions \
         ({NS_PPS}): a <public/> flag would be ignored; subscribe_public_fallback keeps the lists on the \
         client's side"
    ))
}

fn ignorable_on_cleanup(e: &Error) -> bool {
    e.is_item_not_found() || e.is_condition(DefinedCondition::UnexpectedRequest)
}

fn refused(e: &Error) -> bool {
    e.is_condition(DefinedCondition::Forbidden) || e.is_condition(DefinedCondition::NotAllowed)
}

/// Pubsub Public Subscriptions (XEP-0465) and Pubsub Account Management (XEP-0376) operations on any
/// [`Connection`].
pub trait PpsExt: Connection {
    /// What the account's server offers: the PAM namespace announced on the account (or, failing
    /// that, on its domain), and whether the account announces `urn:xmpp:pps:0`.
    fn pps_support(&self) -> impl Future<Output = Result<PpsSupport>> + Send {
        let me: Jid = self.jid().to_bare().into();
        let domain = Jid::new(self.jid().domain().as_str());
        async move {
            let domain = domain.map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let mut support = PpsSupport::default();
            for target in [&me, &domain] {
                let info = match self.disco_info(Some(target), None).await {
                    Ok(info) => info,
                    // An entity that does not answer disco offers nothing.
                    Err(Error::Stanza(_)) => continue,
                    Err(e) => return Err(e),
                };
                if support.pam.is_none() {
                    support.pam = [NS_PAM, NS_PAM_2]
                        .into_iter()
                        .find(|ns| info.has(ns))
                        .map(str::to_owned);
                }
                support.pps |= info.has(NS_PPS);
            }
            Ok(support)
        }
    }

    /// Sends a PAM request for this account (IQ set to the account itself) and waits for the result.
    /// Fails with [`Error::Unsupported`] when the server announces no PAM.
    fn pam_request(
        &self,
        service: &Jid,
        node: &str,
        action: PamAction,
        public: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        let me = self.jid().to_bare();
        let service = service.clone();
        let node = node.to_owned();
        async move {
            let support = self.pps_support().await?;
            let Some(pam) = support.pam.as_deref() else {
                return Err(no_pam(&me));
            };
            if public && !support.pps {
                return Err(no_pps(&me));
            }
            let req = PamRequest {
                namespace: if pam == NS_PAM_2 { NS_PAM_2 } else { NS_PAM },
                service,
                action,
                node,
                jid: me.into(),
                public,
            };
            self.send_iq(IqRequest::set(None, Element::from(&req)))
                .await
                .map(|_| ())
        }
    }

    /// Subscribes this account to `node` on `service` **publicly**: the subscription appears in the
    /// account's public subscriptions and in the node's public subscribers. Needs PAM and XEP-0465 on
    /// the account's server, else [`Error::Unsupported`] (nothing is sent then); see
    /// [`PpsExt::subscribe_public_fallback`] for servers without them.
    fn subscribe_public(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        self.pam_request(service, node, PamAction::Subscribe, true)
    }

    /// Subscribes through PAM without making the subscription public; on a subscription that was public,
    /// this withdraws it from the public lists and keeps the subscription (XEP-0465 §"Retracting").
    fn subscribe_private(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        self.pam_request(service, node, PamAction::Subscribe, false)
    }

    /// Unsubscribes through PAM, which also removes the subscription from the public lists.
    fn unsubscribe_public(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        self.pam_request(service, node, PamAction::Unsubscribe, false)
    }

    /// The account's subscriptions on every service, as the PAM server keeps them (XEP-0376
    /// §"Listing Subscriptions"). [`Error::Unsupported`] without PAM.
    fn pam_subscriptions(&self) -> impl Future<Output = Result<PamSubscriptions>> + Send {
        let me = self.jid().to_bare();
        async move {
            let support = self.pps_support().await?;
            let Some(pam) = support.pam.as_deref() else {
                return Err(no_pam(&me));
            };
            let ns = if pam == NS_PAM_2 { NS_PAM_2 } else { NS_PAM };
            let req = PamSubscriptions {
                namespace: ns,
                ver: None,
                subscriptions: Vec::new(),
            };
            let r = self
                .send_iq(IqRequest::get(None, Element::from(&req)))
                .await?;
            match r {
                Some(el) => Ok(PamSubscriptions::try_from(&el)?),
                None => Ok(req),
            }
        }
    }

    /// The nodes `user` publicly follows (the `urn:xmpp:pps:subscriptions:0` node of `user`'s PEP
    /// service). A user without such a node has an empty list (the XEP asks services to answer the same
    /// for unknown users and users without public subscriptions).
    fn public_subscriptions(
        &self,
        user: &Jid,
    ) -> impl Future<Output = Result<PublicSubscriptions>> + Send {
        let user = user.to_bare();
        async move {
            let service: Jid = user.clone().into();
            match self
                .get_all_items(
                    Some(&service),
                    NODE_PUBLIC_SUBSCRIPTIONS,
                    100,
                    Some(MAX_LIST_ITEMS),
                )
                .await
            {
                Ok(items) => Ok(PublicSubscriptions::from_items(user, items)),
                Err(e) if e.is_item_not_found() => {
                    Ok(PublicSubscriptions::from_items(user, vec![]))
                }
                Err(e) => Err(e),
            }
        }
    }

    /// The JIDs that publicly follow `node` on `service` (its `urn:xmpp:pps:subscribers:0/<node>`
    /// node). A node without subscribers node has an empty list.
    fn public_subscribers(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<PublicSubscribers>> + Send {
        let service = Jid::from(service.to_bare());
        let node = node.to_owned();
        async move {
            let list = subscribers_node_name(&node);
            match self
                .get_all_items(Some(&service), &list, 100, Some(MAX_LIST_ITEMS))
                .await
            {
                Ok(items) => Ok(PublicSubscribers::from_items(service, node, items)),
                Err(e) if e.is_item_not_found() => {
                    Ok(PublicSubscribers::from_items(service, node, vec![]))
                }
                Err(e) => Err(e),
            }
        }
    }

    /// For a node's owner on a service without XEP-0465: creates the node's subscribers node
    /// (`urn:xmpp:pps:subscribers:0/<node>`), open to read and to publish, so that followers using
    /// [`PpsExt::subscribe_public_fallback`] can list themselves. An existing node is left as it is.
    fn open_public_subscribers(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let service = Jid::from(service.to_bare());
        let list = subscribers_node_name(node);
        async move {
            match self
                .create_node(
                    Some(&service),
                    &list,
                    Some(&public_subscribers_node_config()),
                )
                .await
            {
                Err(e) if e.is_condition(DefinedCondition::Conflict) => Ok(()),
                other => other,
            }
        }
    }

    /// The client-maintained public subscription, for servers without PAM/XEP-0465 (opt-in, like
    /// [`PpsExt::subscribe_public`]): subscribes with plain XEP-0060, lists the node in this account's
    /// own `urn:xmpp:pps:subscriptions:0` PEP node (created open to everyone), and lists this account in
    /// the node's subscribers node when the node's owner opened one. The subscribers node is never
    /// created here (it would belong to the wrong user); the result says when listing there was not
    /// possible, and why.
    fn subscribe_public_fallback(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<FallbackSubscription>> + Send {
        let me = self.jid().to_bare();
        let service = Jid::from(service.to_bare());
        let node = node.to_owned();
        async move {
            let sub = self.subscribe(Some(&service), &node).await?;
            // The user's own list. `service` attribute too, for Libervia 0.9's reader.
            let mut entry = Element::from(&PublicSubscription::new(service.clone(), node.clone()));
            set_attr(&mut entry, "service", service.as_str());
            let options = PublishOptions::new(
                public_subscriptions_node_config(),
                PreconditionPolicy::ReconfigureNode,
            );
            self.publish(
                None,
                NODE_PUBLIC_SUBSCRIPTIONS,
                Some(&fallback_item_id(&service, &node)),
                entry,
                Some(&options),
            )
            .await?;
            let mut out = FallbackSubscription {
                state: sub.map(|s| s.state),
                listed_in_subscriptions: true,
                listed_in_subscribers: false,
                subscribers_note: None,
            };
            // The followed node's list, only if its owner opened it.
            let list = subscribers_node_name(&node);
            let probe = ItemsQuery {
                max_items: Some(1),
                ..Default::default()
            };
            match self.get_items(Some(&service), &list, &probe).await {
                Ok(_) => {
                    let entry = Element::from(&PublicSubscriber::new(me.clone().into()));
                    match self
                        .publish(Some(&service), &list, Some(me.as_str()), entry, None)
                        .await
                    {
                        Ok(_) => out.listed_in_subscribers = true,
                        Err(e @ Error::Stanza(_)) => {
                            out.subscribers_note =
                                Some(format!("{service} refused the listing in {list}: {e}"))
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e @ Error::Stanza(_)) => {
                    out.subscribers_note = Some(if e.is_item_not_found() {
                        format!(
                            "the owner of {node} has not opened a public subscribers list ({list})"
                        )
                    } else {
                        format!("{list} on {service} cannot be read: {e}")
                    })
                }
                Err(e) => return Err(e),
            }
            Ok(out)
        }
    }

    /// Undoes [`PpsExt::subscribe_public_fallback`]: unsubscribes (not being subscribed is fine),
    /// removes the node from this account's public subscriptions, and removes this account from the
    /// node's subscribers list. Where the service does not let a publisher retract its own item
    /// (Prosody with open publishing), the entry is overwritten with a withdrawn one
    /// (`subscription='none'`), which readers leave out.
    fn unsubscribe_public_fallback(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<FallbackUnsubscription>> + Send {
        let me = self.jid().to_bare();
        let service = Jid::from(service.to_bare());
        let node = node.to_owned();
        async move {
            match self.unsubscribe(Some(&service), &node, None).await {
                Err(e) if !ignorable_on_cleanup(&e) => return Err(e),
                _ => {}
            }
            let id = fallback_item_id(&service, &node);
            let removed_from_subscriptions = match self
                .retract(None, NODE_PUBLIC_SUBSCRIPTIONS, &[id.as_str()], true)
                .await
            {
                Ok(()) => true,
                Err(e) if e.is_item_not_found() => true,
                Err(e) => return Err(e),
            };
            let list = subscribers_node_name(&node);
            let removed_from_subscribers = match self
                .retract(Some(&service), &list, &[me.as_str()], true)
                .await
            {
                Ok(()) => true,
                Err(e) if e.is_item_not_found() => true,
                Err(e) if refused(&e) => {
                    let withdrawn = PublicSubscriber {
                        jid: me.clone().into(),
                        state: SubscriptionState::None,
                    };
                    match self
                        .publish(
                            Some(&service),
                            &list,
                            Some(me.as_str()),
                            Element::from(&withdrawn),
                            None,
                        )
                        .await
                    {
                        Ok(_) => true,
                        Err(e) if refused(&e) => false,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            Ok(FallbackUnsubscription {
                removed_from_subscriptions,
                removed_from_subscribers,
            })
        }
    }
}

impl<C: Connection + ?Sized> PpsExt for C {}
