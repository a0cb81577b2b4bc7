//! Example binaries of the xmpp-social SDK (`src/bin/`), and the small helpers they share.

use serde::Serialize;
use xmpp_social::microblog::{BlogItem, Text};

/// The flat JSON view of one blog entry printed by `microblog list --json`.
#[derive(Debug, Serialize)]
pub struct EntryJson {
    /// Pubsub item id.
    pub id: String,
    /// Title as plain text.
    pub title: Option<String>,
    /// Content as plain text.
    pub content: Option<String>,
    /// XHTML content, serialised, when the entry has some.
    pub content_xhtml: Option<String>,
    /// Name of the first author.
    pub author: Option<String>,
    /// JID of the first author.
    pub author_jid: Option<String>,
    /// Publication date (XEP-0082).
    pub published: Option<String>,
    /// Last update (XEP-0082).
    pub updated: Option<String>,
    /// Category terms.
    pub tags: Vec<String>,
    /// Service of the comments node.
    pub comments_service: Option<String>,
    /// Comments node.
    pub comments_node: Option<String>,
    /// `xmpp:` URIs (or refs) of the items this one answers.
    pub in_reply_to: Vec<String>,
    /// Who repeated this entry, when it is a repeat (the item's publisher).
    pub repeated_by: Option<String>,
}

impl EntryJson {
    /// Flattens a blog item.
    pub fn from_item(item: &BlogItem) -> Self {
        let e = &item.entry;
        let comments = e.comments().into_iter().next();
        let author = e.authors.first();
        EntryJson {
            id: item.item_id.clone(),
            title: e.title.as_ref().map(Text::plain_text),
            content: e.body_text(),
            content_xhtml: e.body_xhtml().map(|x| String::from(x.element())),
            author: author.and_then(|a| a.name.clone()),
            author_jid: author.and_then(|a| a.jid()).map(|j| j.to_string()),
            published: e.published.map(|d| d.to_rfc3339()),
            updated: e.updated.map(|d| d.to_rfc3339()),
            tags: e.tags().map(str::to_owned).collect(),
            comments_service: comments.as_ref().map(|c| c.service.to_string()),
            comments_node: comments.map(|c| c.node),
            in_reply_to: e.in_reply_to.iter().map(|r| r.reference.clone()).collect(),
            repeated_by: e
                .repeated_item()
                .and(item.publisher.as_ref().map(|p| p.to_bare().to_string())),
        }
    }
}
