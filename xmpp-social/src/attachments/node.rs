//! Names of the XEP-0470 nodes: the attachment node of a target item and the summary node of a target
//! node.

use jid::Jid;

use super::{NS_ATTACHMENTS, NS_ATTACHMENTS_0, NS_SUMMARY};
use crate::error::ParseError;
use crate::microblog::{ItemRef, XmppUri};

fn bare_item(target: &ItemRef) -> ItemRef {
    ItemRef::new(
        Jid::from(target.service.to_bare()),
        target.node.clone(),
        target.item.clone(),
    )
}

/// The attachment node of a target item: `urn:xmpp:pubsub-attachments:1/` followed by the item's
/// `xmpp:` URI (XEP-0060 §"Pubsub URIs", percent-encoded), e.g.
/// `urn:xmpp:pubsub-attachments:1/xmpp:juliet@capulet.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=balcony-restoration-afd1`.
/// The service is taken bare. The node lives on the target item's service.
pub fn attachment_node_name(target: &ItemRef) -> String {
    format!("{NS_ATTACHMENTS}/{}", bare_item(target).to_uri())
}

/// The attachment node name of XEP-0470 0.1.0 (`urn:xmpp:pubsub-attachments:0/...`), for reading
/// attachments written by older clients.
pub fn legacy_attachment_node_name(target: &ItemRef) -> String {
    format!("{NS_ATTACHMENTS_0}/{}", bare_item(target).to_uri())
}

/// The summary node of a target node: `urn:xmpp:pubsub-attachments:summary:1/<target node>`. It lives
/// on the target node's service; its item ids are the target item ids.
pub fn summary_node_name(target_node: &str) -> String {
    format!("{NS_SUMMARY}/{target_node}")
}

/// The target item of an attachment node name (current or 0.1.0 prefix). A name without the prefix, or
/// whose URI does not name a node and an item, is [`ParseError::InvalidValue`].
pub fn target_of_attachment_node(node: &str) -> Result<ItemRef, ParseError> {
    let uri = node
        .strip_prefix(NS_ATTACHMENTS)
        .or_else(|| node.strip_prefix(NS_ATTACHMENTS_0))
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| ParseError::InvalidValue {
            element: "attachment-node",
            reason: format!("{node:?} is not an attachment node name"),
        })?;
    XmppUri::parse(uri)?
        .item_ref()
        .ok_or_else(|| ParseError::InvalidValue {
            element: "attachment-node",
            reason: "the URI does not name a node and an item".into(),
        })
}
