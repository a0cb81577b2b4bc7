//! The [`UrlScheme`] of the unit tests: Libervia's URL layout for XMPP accounts on `example.org`,
//! remote actors mirrored as `name\40host@ap.example.org` (XEP-0106 escaping of `@`), Mastodon-shaped
//! remote URLs (`https://host/users/name`, `.../statuses/id`) and Mobilizon's `https://host/@name`.
#![allow(clippy::unwrap_used)]

use jid::BareJid;
use xmpp_social::microblog::{
    comments_node_name, ItemRef, NodeRef, COMMENTS_NODE_PREFIX, NS_MICROBLOG,
};

use super::UrlScheme;

pub(crate) const GATEWAY: &str = "ap.example.org";
pub(crate) const BASE: &str = "https://ap.example.org/_ap";
pub(crate) const COMMENTS_SERVICE: &str = "pubsub.example.org";

pub(crate) struct TestScheme;

pub(crate) fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

pub(crate) fn blog(of: &str) -> NodeRef {
    NodeRef::new(jid(of).into(), NS_MICROBLOG)
}

pub(crate) fn item(of: &str, id: &str) -> ItemRef {
    ItemRef::new(jid(of).into(), NS_MICROBLOG, id)
}

/// `https://host/users/name[/...]` or `https://host/@name[/...]` -> (name, host, rest).
fn split_remote(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let (name, tail) = if let Some(p) = path.strip_prefix("users/") {
        match p.split_once('/') {
            Some((n, t)) => (n, t),
            None => (p, ""),
        }
    } else if let Some(p) = path.strip_prefix('@') {
        match p.split_once('/') {
            Some((n, t)) => (n, t),
            None => (p, ""),
        }
    } else {
        return None;
    };
    Some((name.to_owned(), host.to_owned(), tail.to_owned()))
}

impl UrlScheme for TestScheme {
    fn actor_for_node(&self, node: &NodeRef) -> String {
        if node.node == NS_MICROBLOG {
            self.actor_for_jid(&node.service.to_bare())
        } else {
            format!("{BASE}/actor/{}---{}", node.node, node.service)
        }
    }

    fn actor_for_jid(&self, jid: &BareJid) -> String {
        if jid.domain().as_str() == GATEWAY {
            let node = jid
                .node()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default();
            let (name, host) = node.split_once("\\40").unwrap();
            if host.starts_with("mobilizon") {
                format!("https://{host}/@{name}")
            } else {
                format!("https://{host}/users/{name}")
            }
        } else {
            format!("{BASE}/actor/{jid}")
        }
    }

    fn object_url(&self, item: &ItemRef) -> String {
        let service = item.service.to_bare();
        if service.domain().as_str() == GATEWAY {
            let actor = self.actor_for_jid(&service);
            format!("{actor}/statuses/{}", item.item)
        } else {
            format!("{BASE}/item/{service}/{}", item.item)
        }
    }

    fn followers_url(&self, actor: &str) -> String {
        actor.replace("/_ap/actor/", "/_ap/followers/")
    }

    fn activity_id(&self, kind: &str, object: &str, by: &str, salt: &str) -> String {
        format!("{BASE}/activity/{kind}?object={object}&by={by}&salt={salt}")
    }

    fn jid_for_actor(&self, actor: &str) -> Option<BareJid> {
        if let Some(j) = actor.strip_prefix(&format!("{BASE}/actor/")) {
            return BareJid::new(j).ok();
        }
        let (name, host, _) = split_remote(actor)?;
        BareJid::new(&format!("{name}\\40{host}@{GATEWAY}")).ok()
    }

    fn node_for_actor(&self, actor: &str) -> Option<NodeRef> {
        Some(NodeRef::new(
            self.jid_for_actor(actor)?.into(),
            NS_MICROBLOG,
        ))
    }

    fn item_for_object(&self, object: &str) -> Option<ItemRef> {
        if let Some(rest) = object.strip_prefix(&format!("{BASE}/item/")) {
            let (j, id) = rest.rsplit_once('/')?;
            return Some(ItemRef::new(BareJid::new(j).ok()?.into(), NS_MICROBLOG, id));
        }
        let (name, host, tail) = split_remote(object)?;
        let id = tail.rsplit('/').next().filter(|s| !s.is_empty())?;
        let service = BareJid::new(&format!("{name}\\40{host}@{GATEWAY}")).ok()?;
        Some(ItemRef::new(service.into(), NS_MICROBLOG, id))
    }

    fn comments_node(&self, parent: &ItemRef) -> Option<NodeRef> {
        if parent.service.domain().as_str() == GATEWAY {
            return None;
        }
        Some(NodeRef::new(
            jid(COMMENTS_SERVICE).into(),
            comments_node_name(&parent.item),
        ))
    }

    fn parent_of_comments_node(&self, node: &NodeRef) -> Option<ItemRef> {
        let id = node.node.strip_prefix(COMMENTS_NODE_PREFIX)?;
        // The tests' comments nodes all belong to alice's blog.
        Some(item("alice@example.org", id))
    }
}
