//! Shared lists over XEP-0346 (Form Discovery and Publishing 0.2): a template node
//! `fdp/template/<app>` holds the XEP-0004 form describing an entry, and the submitted node
//! `fdp/submitted/<app>` holds one item per entry (a submitted form).
//!
//! [`model`] holds the sans-IO parts: [`ListRef`] (the node pair), [`ListTemplate`] with ready-made
//! grocery, to-do and ticket templates in Libervia's format (so Libervia reads the lists made here and
//! the other way round), submission building with validation against the template, [`ListEntry`] and
//! [`ListView`] (which renders a whole list as one XEP-0004 `<reported/>`/`<item/>` result).
//! [`ListsExt`] runs the operations on any [`Connection`].
//!
//! Who may do what is the nodes' business: the list's access model says who reads, its publish model
//! and affiliations who adds and edits entries. [`ListsExt::share_list`] makes someone a reader, an
//! editor or a co-owner. Editing an entry republishes the item under its id, so everyone sees the same
//! entry. Servers differ on who may overwrite an item: Prosody 0.12 lets any publisher overwrite any
//! item; ejabberd 23.01 lets nobody overwrite an item someone else published, not even an owner, but
//! lets owners retract any item, so [`ListsExt::update_item`] retracts and republishes there (Libervia's
//! own pubsub service has an `overwrite_policy` option for this, which these servers lack). For a list
//! everyone edits entirely on every server, share it with [`ListAccess::Manage`].
//!
//! ```
//! use xmpp_social::lists::{ItemValues, ListTemplate};
//!
//! let grocery = ListTemplate::grocery();
//! let form = grocery
//!     .submission(&ItemValues::new().set("name", "milk").set("quantity", "2"), None)
//!     .unwrap();
//! assert_eq!(form.value("status"), Some("to_buy"));
//! assert!(grocery
//!     .submission(&ItemValues::new().set("name", "milk").set("status", "stolen"), None)
//!     .is_err());
//! ```

pub mod model;

use std::future::Future;

use jid::Jid;

pub use model::*;

use crate::connection::Connection;
use crate::error::{Error, ParseError, Result};
use crate::microblog::{is_safe_item_id, random_id};
use crate::pubsub::{
    AccessModel, Affiliation, AffiliationEntry, DiscoInfo, ItemsQuery, MaxItems, NodeConfig,
    PubSubExt, PublishModel,
};
use xmpp_parsers::stanza_error::DefinedCondition;

/// How [`ListsExt::create_list`] configures the nodes.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// Who reads the list and its template (default whitelist: the owner and those it is shared with).
    pub access: AccessModel,
    /// Who adds and edits entries (default publishers: the owner and editors).
    pub publish_model: PublishModel,
    /// A title for the nodes.
    pub title: Option<String>,
}

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            access: AccessModel::Whitelist,
            publish_model: PublishModel::Publishers,
            title: None,
        }
    }
}

/// What someone may do with a shared list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListAccess {
    /// Read the template and the entries (`member` on both nodes).
    Read,
    /// Read, add entries and edit them (`member` on the template, `publisher` on the entries). Which
    /// entries a publisher may overwrite is the server's rule: Prosody lets publishers overwrite any
    /// entry, ejabberd only the entries they published (others give `forbidden`).
    Edit,
    /// Co-own the list (`owner` on both nodes): edit every entry on every server (on ejabberd through
    /// retract-and-republish, see [`ListsExt::update_item`]), share, reconfigure.
    Manage,
    /// Nothing granted (affiliation `none`).
    Revoke,
}

/// Whether a pubsub service announces XEP-0346 support (disco identity `pubsub`/`urn:xmpp:fdp:0`). Any
/// pubsub service can hold lists; this only tells the service means it.
pub fn is_fdp_service(info: &DiscoInfo) -> bool {
    info.identities
        .iter()
        .any(|(category, kind)| category == "pubsub" && kind == NS_FDP)
}

/// The configuration of a template node: one persistent item, owner-published.
pub fn template_node_config(options: &ListOptions) -> NodeConfig {
    let c = NodeConfig::new()
        .access_model(options.access)
        .publish_model(PublishModel::Publishers)
        .max_items(MaxItems::Count(1))
        .persist_items(true);
    match &options.title {
        Some(t) => c.title(t.clone()),
        None => c,
    }
}

/// The configuration of a submitted node: every entry kept, retractions notified.
pub fn submitted_node_config(options: &ListOptions) -> NodeConfig {
    let c = NodeConfig::new()
        .access_model(options.access)
        .publish_model(options.publish_model)
        .max_items(MaxItems::Max)
        .persist_items(true)
        .notify_retract(true)
        .deliver_payloads(true);
    match &options.title {
        Some(t) => c.title(t.clone()),
        None => c,
    }
}

/// The IQ target for a service: `None` (own PEP) when it is the account's bare JID.
fn target<C: Connection + ?Sized>(c: &C, service: &Jid) -> Option<Jid> {
    if service.as_str() == c.jid().to_bare().as_str() {
        None
    } else {
        Some(service.clone())
    }
}

async fn ensure_node<C: Connection + ?Sized>(
    c: &C,
    service: Option<&Jid>,
    node: &str,
    config: &NodeConfig,
) -> Result<()> {
    match c.create_node(service, node, Some(config)).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_condition(DefinedCondition::Conflict) => {
            c.configure_node(service, node, config).await
        }
        Err(e) => Err(e),
    }
}

/// Fills the bookkeeping fields a template may have (`created` for new entries, `updated`, `author`)
/// when the caller did not set them, as Libervia does.
fn bookkeeping(template: &ListTemplate, values: ItemValues, new: bool, me: &Jid) -> ItemValues {
    let now = crate::events::format_date(&chrono::Utc::now().fixed_offset());
    let mut values = values;
    let has =
        |v: &ItemValues, var: &str| template.form.field(var).is_some() && v.get(var).is_none();
    if new && has(&values, "created") {
        values = values.set("created", now.clone());
    }
    if has(&values, "updated") {
        values = values.set("updated", now);
    }
    if new && has(&values, "author") {
        let author = me
            .node()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| me.to_string());
        values = values.set("author", author);
    }
    values
}

/// List operations on any [`Connection`]. `service` `None` means the account's PEP service.
pub trait ListsExt: Connection {
    /// Creates a list: the template node (holding `template` as item `current`) and the submitted node,
    /// both with `options` (existing nodes are reconfigured).
    fn create_list(
        &self,
        service: Option<&Jid>,
        app: &str,
        template: &ListTemplate,
        options: ListOptions,
    ) -> impl Future<Output = Result<ListRef>> + Send {
        let service = service
            .cloned()
            .unwrap_or_else(|| self.jid().to_bare().into());
        let list = ListRef::new(service, app);
        let template = template.clone();
        async move {
            if list.app.is_empty() || list.app.len() > 512 {
                return Err(Error::InvalidArgument(format!(
                    "bad list name {:?}",
                    list.app
                )));
            }
            let to = target(self, &list.service);
            ensure_node(
                self,
                to.as_ref(),
                &list.template_node(),
                &template_node_config(&options),
            )
            .await?;
            self.publish(
                to.as_ref(),
                &list.template_node(),
                Some(TEMPLATE_ITEM_ID),
                template.to_element(),
                None,
            )
            .await?;
            ensure_node(
                self,
                to.as_ref(),
                &list.submitted_node(),
                &submitted_node_config(&options),
            )
            .await?;
            Ok(list)
        }
    }

    /// Reads a list's template (the last item of its template node).
    fn list_template(&self, list: &ListRef) -> impl Future<Output = Result<ListTemplate>> + Send {
        let list = list.clone();
        async move {
            let to = target(self, &list.service);
            let q = ItemsQuery {
                max_items: Some(1),
                ..ItemsQuery::default()
            };
            let page = self
                .get_items(to.as_ref(), &list.template_node(), &q)
                .await?;
            let item = page.items.last().ok_or_else(|| {
                Error::InvalidArgument(format!("{} holds no template", list.template_node()))
            })?;
            let payload = item.payload.as_ref().ok_or(ParseError::MissingChild {
                element: "item",
                child: "x",
            })?;
            Ok(ListTemplate::parse(payload)?)
        }
    }

    /// Adds an entry (validated against the template, defaults filled in) and returns it.
    fn add_item(
        &self,
        list: &ListRef,
        values: ItemValues,
    ) -> impl Future<Output = Result<ListEntry>> + Send {
        let list = list.clone();
        let me: Jid = self.jid().to_bare().into();
        async move {
            let template = self.list_template(&list).await?;
            let values = bookkeeping(&template, values, true, &me);
            let form = template.submission(&values, None)?;
            let id = random_id();
            let to = target(self, &list.service);
            self.publish(
                to.as_ref(),
                &list.submitted_node(),
                Some(&id),
                form.to_element(),
                None,
            )
            .await?;
            Ok(ListEntry {
                id,
                publisher: Some(me),
                form,
            })
        }
    }

    /// Changes some fields of an entry (the others are kept) and republishes it under its id. Where the
    /// server refuses overwriting someone else's item but the caller may retract it (an owner on
    /// ejabberd), the entry is retracted then republished under the same id.
    fn update_item(
        &self,
        list: &ListRef,
        id: &str,
        values: ItemValues,
    ) -> impl Future<Output = Result<ListEntry>> + Send {
        let list = list.clone();
        let id = id.to_owned();
        let me: Jid = self.jid().to_bare().into();
        async move {
            if !is_safe_item_id(&id) {
                return Err(Error::InvalidArgument(format!("bad item id {id:?}")));
            }
            let template = self.list_template(&list).await?;
            let to = target(self, &list.service);
            let items = self
                .get_items_by_id(to.as_ref(), &list.submitted_node(), &[id.as_str()])
                .await?;
            let item = items.into_iter().find(|i| i.id == id).ok_or_else(|| {
                Error::InvalidArgument(format!("no entry {id} in {}", list.submitted_node()))
            })?;
            let old = ListEntry::from_item(&item)?;
            let values = bookkeeping(&template, values, false, &me);
            let form = template.submission(&values, Some(&old.form))?;
            let node = list.submitted_node();
            match self
                .publish(to.as_ref(), &node, Some(&id), form.to_element(), None)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_condition(DefinedCondition::Forbidden) => {
                    // ejabberd lets only an item's publisher overwrite it, but lets owners retract any
                    // item: retract, then publish under the same id (restoring the old entry if that
                    // fails). Someone who may not retract it gets the original refusal.
                    if self
                        .retract(to.as_ref(), &node, &[id.as_str()], true)
                        .await
                        .is_err()
                    {
                        return Err(e);
                    }
                    if let Err(pe) = self
                        .publish(to.as_ref(), &node, Some(&id), form.to_element(), None)
                        .await
                    {
                        let _ = self
                            .publish(to.as_ref(), &node, Some(&id), old.form.to_element(), None)
                            .await;
                        return Err(pe);
                    }
                }
                Err(e) => return Err(e),
            }
            Ok(ListEntry {
                id,
                publisher: Some(me),
                form,
            })
        }
    }

    /// Removes an entry (retract with notification).
    fn remove_item(&self, list: &ListRef, id: &str) -> impl Future<Output = Result<()>> + Send {
        let list = list.clone();
        let id = id.to_owned();
        async move {
            let to = target(self, &list.service);
            self.retract(to.as_ref(), &list.submitted_node(), &[id.as_str()], true)
                .await
        }
    }

    /// Reads a list: its template and up to `limit` entries.
    fn list(
        &self,
        list: &ListRef,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<ListView>> + Send {
        let list = list.clone();
        async move {
            let template = match self.list_template(&list).await {
                Ok(t) => Some(t),
                // A list without template (or one we may not read) still shows its entries.
                Err(Error::InvalidArgument(_)) => None,
                Err(e) if e.is_item_not_found() => None,
                Err(e) => return Err(e),
            };
            let to = target(self, &list.service);
            let items = self
                .get_all_items(to.as_ref(), &list.submitted_node(), 100, limit)
                .await?;
            Ok(ListView::from_items(list, template, &items))
        }
    }

    /// Shares a list (owner only): sets `jid`'s affiliation with both nodes.
    fn share_list(
        &self,
        list: &ListRef,
        jid: &Jid,
        access: ListAccess,
    ) -> impl Future<Output = Result<()>> + Send {
        let list = list.clone();
        let jid: Jid = jid.to_bare().into();
        async move {
            let (template_aff, entries_aff) = match access {
                ListAccess::Read => (Affiliation::Member, Affiliation::Member),
                ListAccess::Edit => (Affiliation::Member, Affiliation::Publisher),
                ListAccess::Manage => (Affiliation::Owner, Affiliation::Owner),
                ListAccess::Revoke => (Affiliation::None, Affiliation::None),
            };
            let entry = |affiliation| {
                [AffiliationEntry {
                    node: None,
                    jid: Some(jid.clone()),
                    affiliation,
                }]
            };
            let to = target(self, &list.service);
            self.set_node_affiliations(to.as_ref(), &list.template_node(), &entry(template_aff))
                .await?;
            self.set_node_affiliations(to.as_ref(), &list.submitted_node(), &entry(entries_aff))
                .await
        }
    }

    /// Finds the lists of a service by `disco#items` (one per `fdp/template/...` node).
    fn find_lists(
        &self,
        service: Option<&Jid>,
    ) -> impl Future<Output = Result<Vec<ListRef>>> + Send {
        let service = service
            .cloned()
            .unwrap_or_else(|| self.jid().to_bare().into());
        async move {
            let items = self.disco_items(Some(&service)).await?;
            let mut out: Vec<ListRef> = Vec::new();
            for (jid, node) in items {
                let Some(node) = node else { continue };
                if !node.starts_with(TEMPLATE_PREFIX) {
                    continue;
                }
                if let Some(l) = ListRef::from_node(jid, &node) {
                    if !out.contains(&l) {
                        out.push(l);
                    }
                }
            }
            Ok(out)
        }
    }
}

impl<C: Connection + ?Sized> ListsExt for C {}
