//! Pubsub Attachments: XEP-0470 (0.2.0, `urn:xmpp:pubsub-attachments:1`), likes ("noticed") and emoji
//! reactions attached to any pubsub item.
//!
//! Each JID's attachments to a target item are one item, whose id is the JID's bare JID, in the target
//! item's *attachment node*: `urn:xmpp:pubsub-attachments:1/<xmpp: URI of the item>`
//! ([`attachment_node_name`]), on the target item's service. On a generic pubsub service the target
//! item's publisher creates that node ([`AttachmentsExt::create_attachments_node`], open publishing,
//! the target node's access model); a fully-compliant service (feature `urn:xmpp:pubsub-attachments:1`)
//! creates it itself and keeps a *summary node* ([`summary_node_name`]).
//!
//! - [`model`]: the `<attachments/>` and `<summary/>` payloads (typed, sans-IO); unknown attachments
//!   are kept and written back unchanged; the 0.1.0 namespace (`...:0`) is read too.
//! - [`view`]: the aggregated view of a target item (every JID's attachments, checked: an item whose
//!   publisher is not the JID in its id is set aside as a forgery) and the summary computed with the
//!   XEP's counting rules.
//! - [`AttachmentsExt`]: the operations on a [`Connection`]: like/unlike, react, read.
//!
//! Seen on Prosody 0.12 and ejabberd 23.01 (neither is fully compliant): both let other users publish
//! to an attachment node the target's publisher created with open publishing, on a pubsub component
//! and on a PEP service alike, so likes and reactions work on PEP blogs too. Prosody refuses a
//! publisher's retraction on such a node (only the owner may retract): withdrawing everything then
//! publishes an empty `<attachments/>`, which readers skip. Prosody's PEP never says who published an
//! item, so there a forged item (published under someone else's JID) cannot be told apart; its pubsub
//! component with `expose_publisher`, and ejabberd with `pubsub#itemreply` = `publisher`, do say it.
//!
//! The XEP's privacy warning applies: what one notices or reacts to reveals tastes and opinions, and
//! the attachment node is as readable as the target node.

pub mod emoji;
pub mod model;
mod node;
#[cfg(test)]
mod tests;
pub mod view;

use std::future::Future;

use jid::{BareJid, Jid};
use serde::Serialize;
use xmpp_parsers::stanza_error::DefinedCondition;

pub use emoji::{check_reaction, split_emojis};
pub use model::{Attachments, Noticed, ReactionCount, Reactions, Summary};
pub use node::{
    attachment_node_name, legacy_attachment_node_name, summary_node_name, target_of_attachment_node,
};
pub use view::{AttachmentsView, JidAttachments, RejectedAttachment};

use crate::connection::Connection;
use crate::error::{Error, ParseError, Result};
use crate::microblog::ItemRef;
use crate::pubsub::{AccessModel, ItemsQuery, MaxItems, NodeConfig, PubSubExt, PublishModel};

/// Namespace of XEP-0470 attachments (and the disco feature of fully-compliant services).
pub const NS_ATTACHMENTS: &str = "urn:xmpp:pubsub-attachments:1";
/// Namespace of XEP-0470 0.1.0 attachments (read only).
pub const NS_ATTACHMENTS_0: &str = "urn:xmpp:pubsub-attachments:0";
/// Namespace of XEP-0470 summaries, and prefix of summary node names.
pub const NS_SUMMARY: &str = "urn:xmpp:pubsub-attachments:summary:1";
/// Namespace of XEP-0470 0.1.0 summaries (read only).
pub const NS_SUMMARY_0: &str = "urn:xmpp:pubsub-attachments:summary:0";

/// Most attachment items [`AttachmentsExt::attachments`] reads for one target item.
pub const MAX_ATTACHMENT_ITEMS: usize = 10_000;

/// The configuration of an attachment node created by the target item's publisher: anyone may
/// publish (each JID its own item), the given access model (the XEP: the target node's), every item
/// kept, retractions notified, and `pubsub#itemreply` = `publisher` so that services which honour it
/// (ejabberd) say who published each item, which lets readers set forgeries aside (Prosody ignores
/// the field and exposes publishers per service instead).
pub fn attachments_node_config(access: AccessModel) -> NodeConfig {
    NodeConfig::new()
        .access_model(access)
        .publish_model(PublishModel::Open)
        .max_items(MaxItems::Max)
        .persist_items(true)
        .notify_retract(true)
        .set("pubsub#itemreply", "publisher")
}

/// What [`AttachmentsExt::create_attachments_node`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachmentsNodeStatus {
    /// The node was created.
    Created,
    /// The node existed already; it was left as it is.
    AlreadyExists,
    /// The service is fully compliant: it creates attachment nodes itself and refuses manual creation.
    ServiceManaged,
}

/// Where a [`SummaryView`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SummarySource {
    /// The summary node of a fully-compliant service.
    Service,
    /// Computed here from the attachment node (the service keeps no summary).
    Computed,
}

/// The summary of a target item's attachments, and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryView {
    /// The summary.
    #[serde(flatten)]
    pub summary: Summary,
    /// Where it comes from.
    pub source: SummarySource,
}

/// One item of a summary node: the target item id and its summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryItem {
    /// The target item id.
    pub item_id: String,
    /// Its summary.
    #[serde(flatten)]
    pub summary: Summary,
}

fn bare_service(target: &ItemRef) -> Jid {
    Jid::from(target.service.to_bare())
}

fn no_attachment_node(node: &str, target: &ItemRef) -> Error {
    Error::Unsupported(format!(
        "{} has no attachment node ({node}) and its service does not create one: the target item's \
         publisher must create it before others can attach to the item",
        target.to_uri()
    ))
}

/// Pubsub Attachments (XEP-0470) operations on any [`Connection`]. A target item is given as an
/// [`ItemRef`] (service, node, item id); attachments always go to the target item's service.
pub trait AttachmentsExt: Connection {
    /// Whether `service` is fully compliant with XEP-0470 (announces `urn:xmpp:pubsub-attachments:1`):
    /// it then creates attachment nodes itself and keeps summary nodes. A service that answers the
    /// discovery request with an error (ejabberd refuses it on another user's account to non-contacts
    /// with `subscription-required`) announces nothing: `false`.
    fn attachments_supported(&self, service: &Jid) -> impl Future<Output = Result<bool>> + Send {
        let service = Jid::from(service.to_bare());
        async move {
            match self.disco_info(Some(&service), None).await {
                Ok(info) => Ok(info.has(NS_ATTACHMENTS)),
                Err(Error::Stanza(_)) => Ok(false),
                Err(e) => Err(e),
            }
        }
    }

    /// For the target item's publisher: creates the item's attachment node so that others can attach
    /// to it, with open publishing and the target node's access model (open when the target node's
    /// configuration cannot be read). Does nothing on a fully-compliant service, which creates the node
    /// itself (the XEP forbids manual creation there), or when the node exists.
    fn create_attachments_node(
        &self,
        target: &ItemRef,
    ) -> impl Future<Output = Result<AttachmentsNodeStatus>> + Send {
        let target = target.clone();
        async move {
            let service = bare_service(&target);
            if self.attachments_supported(&service).await? {
                return Ok(AttachmentsNodeStatus::ServiceManaged);
            }
            let access = match self.node_config(Some(&service), &target.node).await {
                Ok(cfg) => cfg.get_access_model().unwrap_or(AccessModel::Open),
                Err(_) => AccessModel::Open,
            };
            let node = attachment_node_name(&target);
            match self
                .create_node(
                    Some(&service),
                    &node,
                    Some(&attachments_node_config(access)),
                )
                .await
            {
                Ok(()) => Ok(AttachmentsNodeStatus::Created),
                Err(e) if e.is_condition(DefinedCondition::Conflict) => {
                    Ok(AttachmentsNodeStatus::AlreadyExists)
                }
                Err(e) => Err(e),
            }
        }
    }

    /// This account's attachments to the target item (`None` when it attached nothing). A target item
    /// without attachment node is `Ok(None)`.
    fn my_attachments(
        &self,
        target: &ItemRef,
    ) -> impl Future<Output = Result<Option<Attachments>>> + Send {
        let target = target.clone();
        let me = self.jid().to_bare();
        async move {
            let service = bare_service(&target);
            let node = attachment_node_name(&target);
            match read_own(self, &service, &node, &me).await? {
                Own::NodeMissing => Ok(None),
                Own::Found(a) => Ok(a),
            }
        }
    }

    /// Reads this account's attachments to the target item, lets `change` modify them, and publishes
    /// the result under this account's bare JID, keeping every attachment this crate does not know.
    /// Nothing is sent when `change` leaves them as they were. When nothing at all is left, the item is
    /// retracted (or, where the service does not let a publisher retract, replaced by an empty
    /// `<attachments/>`). Returns the attachments now published.
    ///
    /// A target item whose attachment node does not exist, on a service that does not create it, gives
    /// [`Error::Unsupported`]: the XEP forbids creating it in the target publisher's place.
    fn update_attachments<F>(
        &self,
        target: &ItemRef,
        change: F,
    ) -> impl Future<Output = Result<Attachments>> + Send
    where
        F: FnOnce(&mut Attachments) + Send,
    {
        let target = target.clone();
        let me = self.jid().to_bare();
        async move {
            let service = bare_service(&target);
            let node = attachment_node_name(&target);
            let current = match read_own(self, &service, &node, &me).await? {
                Own::Found(a) => a,
                Own::NodeMissing => {
                    if !self.attachments_supported(&service).await? {
                        return Err(no_attachment_node(&node, &target));
                    }
                    // A fully-compliant service creates the node on the first publish.
                    None
                }
            };
            let existed = current.is_some();
            let before = current.unwrap_or_default();
            let mut after = before.clone();
            change(&mut after);
            if (existed && after == before) || (!existed && after.is_empty()) {
                return Ok(after);
            }
            if after.is_empty() {
                match self
                    .retract(Some(&service), &node, &[me.as_str()], true)
                    .await
                {
                    Ok(()) => return Ok(after),
                    Err(e)
                        if e.is_condition(DefinedCondition::Forbidden)
                            || e.is_condition(DefinedCondition::NotAllowed) =>
                    {
                        // Not allowed to retract: publish an empty <attachments/> instead.
                    }
                    Err(e) => return Err(e),
                }
            }
            self.publish_attachments(&target, &after).await?;
            Ok(after)
        }
    }

    /// Publishes `attachments` as this account's attachment item for the target item, replacing what
    /// was there without reading it first (prefer [`AttachmentsExt::update_attachments`], which keeps
    /// the attachments of other clients).
    fn publish_attachments(
        &self,
        target: &ItemRef,
        attachments: &Attachments,
    ) -> impl Future<Output = Result<()>> + Send {
        let target = target.clone();
        let payload = minidom::Element::from(attachments);
        let me = self.jid().to_bare();
        async move {
            let service = bare_service(&target);
            let node = attachment_node_name(&target);
            match self
                .publish(Some(&service), &node, Some(me.as_str()), payload, None)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.is_item_not_found() => Err(no_attachment_node(&node, &target)),
                Err(e) => Err(e),
            }
        }
    }

    /// Notices (likes) the target item, or withdraws the `<noticed/>` when `noticed` is false.
    fn set_noticed(
        &self,
        target: &ItemRef,
        noticed: bool,
    ) -> impl Future<Output = Result<Attachments>> + Send {
        self.update_attachments(target, move |a| {
            if !noticed {
                a.noticed = None;
            } else if a.noticed.is_none() {
                a.noticed = Some(Noticed {
                    timestamp: Some(model::now_timestamp()),
                });
            }
        })
    }

    /// Replaces this account's reactions to the target item (an empty list removes them). Each reaction
    /// must be a single emoji ([`check_reaction`]); duplicates are dropped.
    fn set_reactions(
        &self,
        target: &ItemRef,
        emojis: &[&str],
    ) -> impl Future<Output = Result<Attachments>> + Send {
        let checked: std::result::Result<Vec<String>, String> =
            emojis.iter().map(|e| check_reaction(e)).collect();
        let target = target.clone();
        async move {
            let mut list: Vec<String> = Vec::new();
            for e in checked.map_err(Error::InvalidArgument)? {
                if !list.contains(&e) {
                    list.push(e);
                }
            }
            self.update_attachments(&target, move |a| {
                if list.is_empty() {
                    a.reactions = None;
                } else if a.emojis() != list.as_slice() {
                    a.reactions = Some(Reactions {
                        timestamp: Some(model::now_timestamp()),
                        emojis: list,
                    });
                }
            })
            .await
        }
    }

    /// Adds one reaction (a single emoji) to this account's reactions to the target item.
    fn add_reaction(
        &self,
        target: &ItemRef,
        emoji: &str,
    ) -> impl Future<Output = Result<Attachments>> + Send {
        let checked = check_reaction(emoji);
        let target = target.clone();
        async move {
            let emoji = checked.map_err(Error::InvalidArgument)?;
            self.update_attachments(&target, move |a| {
                if !a.emojis().contains(&emoji) {
                    let r = a.reactions.get_or_insert_with(Reactions::default);
                    r.emojis.push(emoji);
                    r.timestamp = Some(model::now_timestamp());
                }
            })
            .await
        }
    }

    /// Removes one reaction from this account's reactions to the target item.
    fn remove_reaction(
        &self,
        target: &ItemRef,
        emoji: &str,
    ) -> impl Future<Output = Result<Attachments>> + Send {
        let emoji = emoji.trim().to_owned();
        self.update_attachments(target, move |a| {
            if let Some(r) = &mut a.reactions {
                if r.emojis.contains(&emoji) {
                    r.emojis.retain(|e| *e != emoji);
                    r.timestamp = Some(model::now_timestamp());
                }
                if r.emojis.is_empty() {
                    a.reactions = None;
                }
            }
        })
    }

    /// Withdraws this account's `<noticed/>` and reactions from the target item. Attachments this crate
    /// does not know stay (the XEP asks clients not to retract them); the item is retracted only when
    /// nothing else is left.
    fn clear_attachments(
        &self,
        target: &ItemRef,
    ) -> impl Future<Output = Result<Attachments>> + Send {
        self.update_attachments(target, |a| {
            a.noticed = None;
            a.reactions = None;
        })
    }

    /// Every JID's attachments to the target item, checked, with the summary computed from them. Reads
    /// the current attachment node, or the 0.1.0 one when only that exists; a target item with neither
    /// gives an empty view (`node` None).
    fn attachments(
        &self,
        target: &ItemRef,
    ) -> impl Future<Output = Result<AttachmentsView>> + Send {
        let target = target.clone();
        async move {
            let service = bare_service(&target);
            for node in [
                attachment_node_name(&target),
                legacy_attachment_node_name(&target),
            ] {
                match self
                    .get_all_items(Some(&service), &node, 100, Some(MAX_ATTACHMENT_ITEMS))
                    .await
                {
                    Ok(items) => return Ok(AttachmentsView::from_items(target, node, items)),
                    Err(e) if e.is_item_not_found() => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(AttachmentsView::empty(target))
        }
    }

    /// The summary of the target item's attachments: from the service's summary node when the service
    /// is fully compliant (a summary node on another service could be written by anyone, so it is not
    /// trusted), computed from the attachment node otherwise or when the service has no summary item.
    fn summary(&self, target: &ItemRef) -> impl Future<Output = Result<SummaryView>> + Send {
        let target = target.clone();
        async move {
            let service = bare_service(&target);
            if self.attachments_supported(&service).await? {
                let node = summary_node_name(&target.node);
                match self
                    .get_items_by_id(Some(&service), &node, &[target.item.as_str()])
                    .await
                {
                    Ok(items) => {
                        if let Some(payload) = items
                            .iter()
                            .find(|i| i.id == target.item)
                            .and_then(|i| i.payload.as_ref())
                        {
                            return Ok(SummaryView {
                                summary: Summary::try_from(payload)?,
                                source: SummarySource::Service,
                            });
                        }
                    }
                    Err(e) if e.is_item_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            let view = self.attachments(&target).await?;
            Ok(SummaryView {
                summary: view.summary,
                source: SummarySource::Computed,
            })
        }
    }

    /// Every item of the summary node of `target_node` on `service` (fully-compliant services only;
    /// elsewhere the node does not exist and the service's error is returned). Invalid summaries are
    /// parse errors.
    fn summaries(
        &self,
        service: &Jid,
        target_node: &str,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<SummaryItem>>> + Send {
        let service = Jid::from(service.to_bare());
        let node = summary_node_name(target_node);
        async move {
            let items = self
                .get_all_items(Some(&service), &node, 100, limit)
                .await?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let summary = match &item.payload {
                    Some(p) => Summary::try_from(p)?,
                    None => Summary::default(),
                };
                out.push(SummaryItem {
                    item_id: item.id,
                    summary,
                });
            }
            Ok(out)
        }
    }
}

impl<C: Connection + ?Sized> AttachmentsExt for C {}

/// What reading this account's own attachment item found.
enum Own {
    /// The attachment node does not exist.
    NodeMissing,
    /// The node exists; the item, if any.
    Found(Option<Attachments>),
}

/// Reads this account's item of an attachment node. Services differ on a missing node or item
/// (Prosody: `item-not-found`; ejabberd's PEP: `subscription-required` for items asked by id on a
/// missing node), so an error is checked with a plain read of the node: `item-not-found` there means
/// the node is missing; a node that exists makes an `item-not-found` mean "no item"; any other error
/// is returned as it is (Prosody's PEP answers `forbidden` for a missing node of a non-contact).
async fn read_own<C: Connection + ?Sized>(
    c: &C,
    service: &Jid,
    node: &str,
    me: &BareJid,
) -> Result<Own> {
    let first = match c.get_items_by_id(Some(service), node, &[me.as_str()]).await {
        Ok(items) => return Ok(Own::Found(own_attachments(&items, me)?)),
        Err(e @ Error::Stanza(_)) => e,
        Err(e) => return Err(e),
    };
    let probe = ItemsQuery {
        max_items: Some(1),
        ..Default::default()
    };
    match c.get_items(Some(service), node, &probe).await {
        Err(e) if e.is_item_not_found() => Ok(Own::NodeMissing),
        Ok(_) if first.is_item_not_found() => Ok(Own::Found(None)),
        _ => Err(first),
    }
}

/// This account's attachments among the items read by id: `None` when its item is absent.
fn own_attachments(items: &[crate::pubsub::Item], me: &BareJid) -> Result<Option<Attachments>> {
    let Some(item) = items.iter().find(|i| i.id == me.as_str()) else {
        return Ok(None);
    };
    match &item.payload {
        Some(p) => Ok(Some(Attachments::try_from(p)?)),
        None => Err(Error::Parse(ParseError::MissingChild {
            element: "item",
            child: "attachments",
        })),
    }
}
