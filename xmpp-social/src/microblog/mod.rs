//! Microblogging over pubsub: XEP-0277 (Microblogging over XMPP, 0.6) and XEP-0472 (Pubsub Social Feed, 0.2).
//!
//! [`entry`] holds the typed Atom entry model (sans-IO, round-trips the XEPs' examples), [`ids`] the
//! friendly item ids, and [`MicroblogExt`] the operations on a [`Connection`]: blog and comments nodes with
//! the XEP-0472 configuration, publishing, listing, commenting, renaming and deleting entries.

pub mod entry;
pub mod ids;

use std::future::Future;

use jid::Jid;
use minidom::Element;

pub use entry::*;
pub use ids::*;

use crate::connection::Connection;
use crate::error::{Error, ParseError, Result};
use crate::pubsub::{
    AccessModel, Item, MaxItems, NodeConfig, PreconditionPolicy, PubSubExt, PublishModel,
    PublishOptions,
};

/// `pubsub#type` of a generic social feed (XEP-0472).
pub const NS_SOCIAL_FEED: &str = "urn:xmpp:pubsub-social-feed:1";
/// `pubsub#type` of a gallery (XEP-0472).
pub const NS_SOCIAL_FEED_GALLERY: &str = "urn:xmpp:pubsub-social-feed:gallery:1";

/// The XEP-0472 configuration of a social feed node: `notify_retract` true, `max_items` max,
/// `persist_items` true, `send_last_published_item` never, `deliver_payloads` false, `pubsub#type`
/// `urn:xmpp:microblog:0`, and the given access model.
pub fn blog_node_config(access: AccessModel) -> NodeConfig {
    NodeConfig::new()
        .access_model(access)
        .notify_retract(true)
        .max_items(MaxItems::Max)
        .persist_items(true)
        .send_last_published_item("never")
        .deliver_payloads(false)
        .payload_type(NS_MICROBLOG)
}

/// The XEP-0277 §"Comments node configuration" settings: open access and publishing (anyone may
/// comment), `notify_retract` true, `max_items` max, persistent.
pub fn comments_node_config() -> NodeConfig {
    NodeConfig::new()
        .access_model(AccessModel::Open)
        .publish_model(PublishModel::Open)
        .notify_retract(true)
        .max_items(MaxItems::Max)
        .persist_items(true)
        .send_last_published_item("never")
        .payload_type(NS_MICROBLOG)
}

/// One blog item read from a node.
#[derive(Debug, Clone, PartialEq)]
pub struct BlogItem {
    /// The pubsub item id.
    pub item_id: String,
    /// The publisher, when the service exposes it.
    pub publisher: Option<Jid>,
    /// The parsed entry.
    pub entry: Entry,
}

/// Entries of a node, with the items that were not valid entries (kept, not silently dropped).
#[derive(Debug, Clone, Default)]
pub struct Entries {
    /// The valid entries, in the service's order.
    pub entries: Vec<BlogItem>,
    /// Items whose payload is not a valid Atom entry, with the reason.
    pub invalid: Vec<(Item, ParseError)>,
}

impl Entries {
    /// Sorts entries by publication date, newest first (items without a date last).
    pub fn sort_newest_first(&mut self) {
        self.entries
            .sort_by_key(|e| std::cmp::Reverse(e.entry.published));
    }

    fn from_items(items: Vec<Item>) -> Entries {
        let mut out = Entries::default();
        for item in items {
            match item.payload.as_ref().map(Entry::try_from) {
                Some(Ok(entry)) => out.entries.push(BlogItem {
                    item_id: item.id,
                    publisher: item.publisher,
                    entry,
                }),
                Some(Err(e)) => out.invalid.push((item, e)),
                None => out.invalid.push((
                    item,
                    ParseError::MissingChild {
                        element: "item",
                        child: "entry",
                    },
                )),
            }
        }
        out
    }
}

/// How [`MicroblogExt::post`] publishes.
#[derive(Debug, Clone)]
pub struct PostOptions {
    /// The item id; `None` derives a friendly id from the title ([`friendly_id`]).
    pub id: Option<String>,
    /// The blog node's access model (default: open, a public blog).
    pub access: AccessModel,
    /// Where to create the entry's comments node; `None` for no comments.
    pub comments_service: Option<Jid>,
    /// What to do when the service refuses the publish-options (default: reconfigure the node).
    pub on_refusal: PreconditionPolicy,
}

impl Default for PostOptions {
    fn default() -> Self {
        PostOptions {
            id: None,
            access: AccessModel::Open,
            comments_service: None,
            on_refusal: PreconditionPolicy::ReconfigureNode,
        }
    }
}

fn own_service<C: Connection + ?Sized>(c: &C, service: Option<&Jid>) -> Jid {
    service.cloned().unwrap_or_else(|| c.jid().to_bare().into())
}

/// Microblogging operations on any [`Connection`]. `service` `None` means the account's PEP service, and
/// `node` `None` the XEP-0277 node `urn:xmpp:microblog:0`.
pub trait MicroblogExt: Connection {
    /// Creates a blog node with the XEP-0472 configuration.
    fn create_blog_node(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        access: AccessModel,
    ) -> impl Future<Output = Result<()>> + Send {
        let cfg = blog_node_config(access);
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        let service = service.cloned();
        async move { self.create_node(service.as_ref(), &node, Some(&cfg)).await }
    }

    /// Creates (or reconfigures, when it exists) the comments node of an item and returns its reference.
    fn create_comments_node(
        &self,
        comments_service: &Jid,
        item_id: &str,
    ) -> impl Future<Output = Result<NodeRef>> + Send {
        let node = comments_node_name(item_id);
        let service = comments_service.clone();
        async move {
            let cfg = comments_node_config();
            match self.create_node(Some(&service), &node, Some(&cfg)).await {
                Ok(()) => {}
                Err(e)
                    if e.is_condition(xmpp_parsers::stanza_error::DefinedCondition::Conflict) =>
                {
                    self.configure_node(Some(&service), &node, &cfg).await?
                }
                Err(e) => return Err(e),
            }
            Ok(NodeRef::new(service, node))
        }
    }

    /// Publishes a blog post and returns where it is. Fills in what the caller left empty: the item id
    /// (friendly, from the title), the atom:id (the item's `xmpp:` URI), the author (this account),
    /// published/updated (now), and the comments link when `options.comments_service` is set.
    fn post(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        entry: Entry,
        options: PostOptions,
    ) -> impl Future<Output = Result<ItemRef>> + Send {
        let service = own_service(self, service);
        let pep = service == self.jid().to_bare();
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        let me = self.jid().to_bare();
        async move {
            let mut entry = entry;
            let id = match &options.id {
                Some(id) => id.clone(),
                None => friendly_id(
                    &entry
                        .title
                        .as_ref()
                        .map(Text::plain_text)
                        .unwrap_or_default(),
                ),
            };
            let item = ItemRef::new(service.clone(), node.clone(), id.clone());
            if entry.id.is_none() {
                entry.id = Some(item.to_uri().to_string());
            }
            if entry.authors.is_empty() {
                entry
                    .authors
                    .push(Person::from_jid(&me.clone().into(), None));
            }
            let now = chrono::Utc::now().fixed_offset();
            entry.published.get_or_insert(now);
            entry.updated.get_or_insert(now);
            if let Some(cs) = &options.comments_service {
                if !entry.links.iter().any(Link::is_comments) {
                    let comments = self.create_comments_node(cs, &id).await?;
                    entry.links.push(Link::comments(&comments));
                }
            }
            let po = PublishOptions::new(blog_node_config(options.access), options.on_refusal);
            let target = if pep { None } else { Some(&service) };
            self.publish(target, &node, Some(&id), Element::from(&entry), Some(&po))
                .await?;
            Ok(item)
        }
    }

    /// Reads up to `limit` entries of a blog node (all pages when the service pages).
    fn entries(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Entries>> + Send {
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        let service = service.cloned();
        async move {
            let items = self
                .get_all_items(service.as_ref(), &node, 100, limit)
                .await?;
            Ok(Entries::from_items(items))
        }
    }

    /// Reads one entry by item id.
    fn entry(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        item_id: &str,
    ) -> impl Future<Output = Result<BlogItem>> + Send {
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        let service = service.cloned();
        let item_id = item_id.to_owned();
        async move {
            let items = self
                .get_items_by_id(service.as_ref(), &node, &[item_id.as_str()])
                .await?;
            let mut e = Entries::from_items(items);
            if let Some((_, err)) = e.invalid.pop() {
                return Err(err.into());
            }
            e.entries
                .pop()
                .ok_or_else(|| Error::InvalidArgument(format!("no item {item_id} in {node}")))
        }
    }

    /// Comments on a post: publishes `comment` in the post's comments node, with `thr:in-reply-to`
    /// pointing at the post, and returns where the comment is.
    fn comment(
        &self,
        post: &ItemRef,
        comments: &NodeRef,
        comment: Entry,
    ) -> impl Future<Output = Result<ItemRef>> + Send {
        let post = post.clone();
        let comments = comments.clone();
        let me = self.jid().to_bare();
        async move {
            let mut comment = comment;
            let id = random_id();
            let item = ItemRef::new(comments.service.clone(), comments.node.clone(), id.clone());
            comment.id.get_or_insert_with(|| item.to_uri().to_string());
            if comment.authors.is_empty() {
                comment
                    .authors
                    .push(Person::from_jid(&me.clone().into(), None));
            }
            let now = chrono::Utc::now().fixed_offset();
            comment.published.get_or_insert(now);
            comment.updated.get_or_insert(now);
            if comment.in_reply_to.is_empty() {
                comment.in_reply_to.push(InReplyTo::to_item(&post, None));
            }
            self.publish(
                Some(&comments.service),
                &comments.node,
                Some(&id),
                Element::from(&comment),
                None,
            )
            .await?;
            Ok(item)
        }
    }

    /// Renames an entry: publishes it under `new_id`, then retracts `old_id` (in that order, so the entry
    /// never disappears). Its comments link is kept, so comments stay reachable.
    fn rename_entry(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        old_id: &str,
        new_id: &str,
    ) -> impl Future<Output = Result<ItemRef>> + Send {
        let service_j = own_service(self, service);
        let target = service.cloned();
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        let (old_id, new_id) = (old_id.to_owned(), new_id.to_owned());
        async move {
            if !is_safe_item_id(&new_id) {
                return Err(Error::InvalidArgument(format!("bad item id {new_id:?}")));
            }
            let old = self.entry(target.as_ref(), Some(&node), &old_id).await?;
            let mut entry = old.entry;
            let new_item = ItemRef::new(service_j, node.clone(), new_id.clone());
            let old_uri = ItemRef::new(new_item.service.clone(), node.clone(), old_id.clone())
                .to_uri()
                .to_string();
            if entry.id.as_deref() == Some(old_uri.as_str()) || entry.id.as_deref() == Some(&old_id)
            {
                entry.id = Some(new_item.to_uri().to_string());
            }
            entry.updated = Some(chrono::Utc::now().fixed_offset());
            self.publish(
                target.as_ref(),
                &node,
                Some(&new_id),
                Element::from(&entry),
                None,
            )
            .await?;
            self.retract(target.as_ref(), &node, &[old_id.as_str()], true)
                .await?;
            Ok(new_item)
        }
    }

    /// Deletes an entry (retract with notification).
    fn delete_entry(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        item_id: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let node = node.unwrap_or(NS_MICROBLOG).to_owned();
        let service = service.cloned();
        let item_id = item_id.to_owned();
        async move {
            self.retract(service.as_ref(), &node, &[item_id.as_str()], true)
                .await
        }
    }
}

impl<C: Connection + ?Sized> MicroblogExt for C {}
