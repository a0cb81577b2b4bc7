//! The aggregated view of a target item's attachments (sans-IO): every JID's attachments read from the
//! attachment node, checked, and summarised with the XEP's counting rules.

use jid::{BareJid, Jid};
use serde::{Serialize, Serializer};

use super::model::{Attachments, Summary};
use crate::microblog::ItemRef;
use crate::pubsub::Item;

fn serialize_item_ref<S: Serializer>(r: &ItemRef, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&r.to_uri().to_string())
}

fn serialize_bare<S: Serializer>(j: &BareJid, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(j.as_str())
}

/// What one JID attached to the target item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JidAttachments {
    /// The JID (the attachment item's id, checked against its publisher when the service says it).
    #[serde(serialize_with = "serialize_bare")]
    pub jid: BareJid,
    /// Its attachments.
    #[serde(flatten)]
    pub attachments: Attachments,
    /// Whether the item was written in the XEP-0470 0.1.0 format.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
}

/// An attachment item that was set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedAttachment {
    /// The pubsub item id.
    pub item_id: String,
    /// Why it was not counted.
    pub reason: String,
}

/// Every attachment of a target item, checked, with the summary computed from them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachmentsView {
    /// The target item.
    #[serde(serialize_with = "serialize_item_ref")]
    pub target: ItemRef,
    /// The attachment node that was read (absent when the target item has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Each JID's attachments, in the service's order (JIDs whose item is empty are left out).
    pub by_jid: Vec<JidAttachments>,
    /// The summary of `by_jid`, computed with the XEP's counting rules.
    pub summary: Summary,
    /// Items not counted: an id that is not a bare JID, a publisher other than the JID in the id (a
    /// forgery on a service that does not check), or a payload that is not valid `<attachments/>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedAttachment>,
}

impl AttachmentsView {
    /// An empty view: the target item has no attachment node.
    pub fn empty(target: ItemRef) -> Self {
        AttachmentsView {
            target,
            node: None,
            by_jid: Vec::new(),
            summary: Summary::default(),
            rejected: Vec::new(),
        }
    }

    /// Builds the view from the items of the attachment node `node`.
    pub fn from_items(target: ItemRef, node: String, items: Vec<Item>) -> Self {
        let mut view = AttachmentsView::empty(target);
        view.node = Some(node);
        for item in items {
            match check_item(&item) {
                // An emptied item (where the service would not let its publisher retract it).
                Ok((_, attachments, _)) if attachments.is_empty() => {}
                Ok((jid, attachments, legacy)) => {
                    if view.by_jid.iter().any(|j| j.jid == jid) {
                        view.rejected.push(RejectedAttachment {
                            item_id: item.id,
                            reason: "a second item for the same JID".into(),
                        });
                        continue;
                    }
                    view.by_jid.push(JidAttachments {
                        jid,
                        attachments,
                        legacy,
                    })
                }
                Err(reason) => view.rejected.push(RejectedAttachment {
                    item_id: item.id,
                    reason,
                }),
            }
        }
        view.summary = Summary::compute(view.by_jid.iter().map(|j| (&j.jid, &j.attachments)));
        view
    }

    /// The attachments of one JID, if it attached anything.
    pub fn of(&self, jid: &BareJid) -> Option<&Attachments> {
        self.by_jid
            .iter()
            .find(|j| &j.jid == jid)
            .map(|j| &j.attachments)
    }

    /// The JIDs that attached `<noticed/>`.
    pub fn noticed_by(&self) -> Vec<&BareJid> {
        self.by_jid
            .iter()
            .filter(|j| j.attachments.noticed.is_some())
            .map(|j| &j.jid)
            .collect()
    }

    /// The JIDs that attached `emoji`.
    pub fn reacted_with(&self, emoji: &str) -> Vec<&BareJid> {
        self.by_jid
            .iter()
            .filter(|j| j.attachments.emojis().iter().any(|e| e == emoji))
            .map(|j| &j.jid)
            .collect()
    }
}

/// Checks one attachment item: its id must be a bare JID, equal to the bare publisher when the service
/// exposes one, and its payload valid `<attachments/>`.
pub fn check_item(item: &Item) -> Result<(BareJid, Attachments, bool), String> {
    let jid = match Jid::new(&item.id) {
        Ok(j) if j.is_bare() => j.into_bare(),
        _ => return Err(format!("item id {:?} is not a bare JID", item.id)),
    };
    if let Some(p) = &item.publisher {
        if p.to_bare() != jid {
            return Err(format!(
                "published by {} under the id of {}",
                p.to_bare(),
                jid
            ));
        }
    }
    let payload = item
        .payload
        .as_ref()
        .ok_or_else(|| "no payload".to_owned())?;
    let legacy = payload.is("attachments", super::NS_ATTACHMENTS_0);
    let attachments = Attachments::try_from(payload).map_err(|e| e.to_string())?;
    Ok((jid, attachments, legacy))
}
