//! Calendar events: XEP-0471 (Calendar Events 0.2.0, `urn:xmpp:calendar-events:0`), with Libervia 0.9's
//! `urn:xmpp:events:0` (XEP-0471 0.1.0) read too, and RSVP answers as XEP-0470 (Pubsub Attachments 0.2.0)
//! attachments.
//!
//! [`model`] types the `<event/>` payload (names per language, start/end, head picture, text/XHTML
//! descriptions, categories, physical and online locations, RSVP forms, linked invitees/comments/blog/
//! schedule nodes, attachments, the extra form, external links); [`rsvp`] types answers and the
//! attendees summary; [`EventsExt`] runs the operations on any [`Connection`]: create, read, update and
//! delete events, answer (RSVP), count attendees, invite and list invitees, add someone else's event to
//! one's agenda.
//!
//! Permissions follow the nodes: an event node's access model says who reads it; the attachment node
//! made for RSVPs gets the same access model, and is open to publishing for open events and limited to
//! publishers (the invitees) otherwise. [`EventsExt::invite`] lists the invitee and grants them `member`
//! on the event node and `publisher` on the attachment node.
//!
//! ```
//! use xmpp_social::events::{Attending, AttendeesSummary, Event, RsvpAnswer, RsvpForm, EventNamespace};
//! use minidom::Element;
//!
//! let start = chrono::DateTime::parse_from_rfc3339("2022-09-05T12:00:00Z").unwrap();
//! let end = chrono::DateTime::parse_from_rfc3339("2022-09-05T13:00:00Z").unwrap();
//! let event = Event::new("Coffee with the nurse", start, end)
//!     .with_rsvp(RsvpForm::standard(EventNamespace::Current));
//! let el = Element::from(&event);
//! assert_eq!(Event::try_from(&el).unwrap(), event);
//!
//! let answers = [
//!     RsvpAnswer::new(Attending::Yes).with_participants(2),
//!     RsvpAnswer::new(Attending::Maybe),
//! ];
//! assert_eq!(
//!     AttendeesSummary::from_answers(&answers),
//!     AttendeesSummary { confirmed: 2, max: 3 }
//! );
//! ```

pub mod model;
pub mod rsvp;

use std::future::Future;

use jid::{BareJid, Jid};
use minidom::Element;
use serde::Serialize;
use xmpp_parsers::stanza_error::DefinedCondition;

pub use crate::util::{format_date, MAX_DEPTH, MAX_LIST_LEN, MAX_TEXT_BYTES};
pub use model::*;
pub use rsvp::{
    attachments_without_rsvp, AttendeesSummary, Attending, RsvpAnswer, ATTENDING_FIELD, NS_HINTS,
    PARTICIPANTS_FIELD,
};

use crate::attachments::{attachment_node_name as attachment_node, NS_ATTACHMENTS};
use crate::connection::Connection;
use crate::error::{Error, ParseError, Result};
use crate::microblog::{friendly_id, is_safe_item_id, ItemRef, NodeRef};
use crate::pubsub::{
    AccessModel, Affiliation, AffiliationEntry, Item, MaxItems, NodeConfig, PreconditionPolicy,
    PubSubExt, PublishModel, PublishOptions,
};
use crate::util::{ser_item, ser_jid, ser_opt_jid};

/// The configuration of an events node: the access model, all items kept, retractions notified.
pub fn events_node_config(access: AccessModel) -> NodeConfig {
    NodeConfig::new()
        .access_model(access)
        .max_items(MaxItems::Max)
        .persist_items(true)
        .notify_retract(true)
}

/// The configuration of an event's attachment node (RSVPs): the event node's access model; anyone
/// allowed to read may answer an open event, only publishers (invitees) a restricted one.
pub fn rsvp_node_config(access: AccessModel) -> NodeConfig {
    let publish = if access == AccessModel::Open {
        PublishModel::Open
    } else {
        PublishModel::Publishers
    };
    NodeConfig::new()
        .access_model(access)
        .publish_model(publish)
        .max_items(MaxItems::Max)
        .persist_items(true)
        .notify_retract(true)
}

/// The configuration of an invitees node: whitelist (organisers only) unless told otherwise.
pub fn invitees_node_config(access: AccessModel) -> NodeConfig {
    NodeConfig::new()
        .access_model(access)
        .publish_model(PublishModel::Publishers)
        .max_items(MaxItems::Max)
        .persist_items(true)
}

/// How [`EventsExt::create_event`] publishes.
#[derive(Debug, Clone)]
pub struct CreateEventOptions {
    /// The item id; `None` derives a friendly id from the name.
    pub id: Option<String>,
    /// The events node's access model (default whitelist, as the XEP advises for agendas).
    pub access: AccessModel,
    /// Create the attachment node for RSVPs when the event has an RSVP form (default true).
    pub rsvp_node: bool,
    /// Create an invitees node (`urn:xmpp:calendar-events:invitees:0/<id>`, whitelist) and link it when
    /// the event links none (default true).
    pub invitees_node: bool,
    /// What to do when the service refuses the publish-options (default: reconfigure the node).
    pub on_refusal: PreconditionPolicy,
}

impl Default for CreateEventOptions {
    fn default() -> Self {
        CreateEventOptions {
            id: None,
            access: AccessModel::Whitelist,
            rsvp_node: true,
            invitees_node: true,
            on_refusal: PreconditionPolicy::ReconfigureNode,
        }
    }
}

/// An item that could not be read as what was expected, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidItem {
    /// The item id.
    pub id: String,
    /// The publisher, when the service exposes it.
    #[serde(
        serialize_with = "ser_opt_jid",
        skip_serializing_if = "Option::is_none"
    )]
    pub publisher: Option<Jid>,
    /// What was wrong.
    #[serde(serialize_with = "ser_display")]
    pub error: ParseError,
}

fn ser_display<S: serde::Serializer>(e: &ParseError, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// An event read from a node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventItem {
    /// Where it is.
    #[serde(serialize_with = "ser_item")]
    pub item: ItemRef,
    /// The publisher, when the service exposes it.
    #[serde(
        serialize_with = "ser_opt_jid",
        skip_serializing_if = "Option::is_none"
    )]
    pub publisher: Option<Jid>,
    /// The event.
    pub event: Event,
}

/// Events of a node, with the items that were not valid events (kept, not silently dropped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Events {
    /// Valid events, in the service's order.
    pub events: Vec<EventItem>,
    /// Items that are not valid events.
    pub invalid: Vec<InvalidItem>,
}

impl Events {
    /// Sorts events by start time, earliest first.
    pub fn sort_by_start(&mut self) {
        self.events.sort_by_key(|e| e.event.start);
    }
}

/// One invitee's RSVP.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RsvpEntry {
    /// Who answered (the attachment item id: a bare JID).
    #[serde(serialize_with = "ser_jid")]
    pub jid: Jid,
    /// The publisher, when the service exposes it (then equal to `jid`).
    #[serde(
        serialize_with = "ser_opt_jid",
        skip_serializing_if = "Option::is_none"
    )]
    pub publisher: Option<Jid>,
    /// The answer.
    pub answer: RsvpAnswer,
}

/// The RSVPs of an event and their XEP-0471 summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attendance {
    /// The event.
    #[serde(serialize_with = "ser_item")]
    pub event: ItemRef,
    /// Confirmed and maximum attendees.
    pub summary: AttendeesSummary,
    /// Every answer, in the service's order.
    pub answers: Vec<RsvpEntry>,
    /// Attachment items with an RSVP that could not be counted: malformed, not keyed by a bare JID, or
    /// published by someone else than the JID they claim (a non-compliant service lets anyone try).
    pub invalid: Vec<InvalidItem>,
}

impl Attendance {
    /// The answer of one JID.
    pub fn answer_of(&self, jid: &BareJid) -> Option<&RsvpAnswer> {
        self.answers
            .iter()
            .find(|e| e.jid.to_bare() == *jid)
            .map(|e| &e.answer)
    }

    /// JIDs that answered `attending`.
    pub fn with_answer(&self, attending: Attending) -> Vec<&Jid> {
        self.answers
            .iter()
            .filter(|e| e.answer.attending() == Some(attending))
            .map(|e| &e.jid)
            .collect()
    }
}

/// How [`EventsExt::invite`] invites.
#[derive(Debug, Clone)]
pub struct InviteOptions {
    /// A human-readable name for the invitee.
    pub name: Option<String>,
    /// Grant `member` on the event node and `publisher` on its RSVP node (default true; needs the caller
    /// to own them).
    pub grant_access: bool,
}

impl Default for InviteOptions {
    fn default() -> Self {
        InviteOptions {
            name: None,
            grant_access: true,
        }
    }
}

fn own_service<C: Connection + ?Sized>(c: &C, service: Option<&Jid>) -> Jid {
    service.cloned().unwrap_or_else(|| c.jid().to_bare().into())
}

/// The IQ target for a service: `None` (own PEP) when it is the account's bare JID.
fn target<C: Connection + ?Sized>(c: &C, service: &Jid) -> Option<Jid> {
    if service.as_str() == c.jid().to_bare().as_str() {
        None
    } else {
        Some(service.clone())
    }
}

fn events_from_items(service: &Jid, node: &str, items: Vec<Item>) -> Events {
    let mut out = Events::default();
    for item in items {
        let parsed = match &item.payload {
            Some(p) => Event::try_from(p),
            None => Err(ParseError::MissingChild {
                element: "item",
                child: "event",
            }),
        };
        match parsed {
            Ok(event) => out.events.push(EventItem {
                item: ItemRef::new(service.clone(), node, item.id),
                publisher: item.publisher,
                event,
            }),
            Err(error) => out.invalid.push(InvalidItem {
                id: item.id,
                publisher: item.publisher,
                error,
            }),
        }
    }
    out
}

/// Reads the RSVPs of attachment items (items without an RSVP are other attachments and are skipped).
pub fn attendance_from_items(event: &ItemRef, items: Vec<Item>) -> Attendance {
    let mut answers = Vec::new();
    let mut invalid = Vec::new();
    for item in items {
        let parsed = match &item.payload {
            Some(p) => RsvpAnswer::from_attachments(p),
            None => Ok(None),
        };
        let answer = match parsed {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(error) => {
                invalid.push(InvalidItem {
                    id: item.id,
                    publisher: item.publisher,
                    error,
                });
                continue;
            }
        };
        let jid = match BareJid::new(&item.id) {
            Ok(j) => j,
            Err(e) => {
                invalid.push(InvalidItem {
                    id: item.id.clone(),
                    publisher: item.publisher,
                    error: ParseError::InvalidValue {
                        element: "item@id",
                        reason: format!("an attachment item id must be a bare JID: {e}"),
                    },
                });
                continue;
            }
        };
        if let Some(p) = &item.publisher {
            if p.to_bare() != jid {
                invalid.push(InvalidItem {
                    id: item.id.clone(),
                    publisher: item.publisher.clone(),
                    error: ParseError::InvalidValue {
                        element: "item@publisher",
                        reason: format!("published by {p}, not by {jid}"),
                    },
                });
                continue;
            }
        }
        answers.push(RsvpEntry {
            jid: jid.into(),
            publisher: item.publisher,
            answer,
        });
    }
    Attendance {
        event: event.clone(),
        summary: AttendeesSummary::from_answers(answers.iter().map(|e| &e.answer)),
        answers,
        invalid,
    }
}

/// Creates a node, or reconfigures it when it exists already.
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

/// Calendar event operations on any [`Connection`]. `service` `None` means the account's PEP service;
/// `node` `None` the agenda node `urn:xmpp:calendar-events:0` (`urn:xmpp:events:0` when creating an
/// event in the legacy namespace).
pub trait EventsExt: Connection {
    /// Publishes a new event and returns where it is. Creates (or reconfigures) the events node with
    /// `options.access`, an invitees node when asked, and the RSVP attachment node when the event has an
    /// RSVP form.
    fn create_event(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        event: Event,
        options: CreateEventOptions,
    ) -> impl Future<Output = Result<ItemRef>> + Send {
        let service = own_service(self, service);
        let node = node.unwrap_or(event.ns.agenda_node()).to_owned();
        async move {
            let mut event = event;
            event.validate()?;
            let id = match &options.id {
                Some(id) => id.clone(),
                None => friendly_id(event.name(None).unwrap_or_default()),
            };
            if !is_safe_item_id(&id) {
                return Err(Error::InvalidArgument(format!("bad item id {id:?}")));
            }
            let to = target(self, &service);
            if options.invitees_node && event.invitees.is_none() {
                let inv = format!("{INVITEES_NODE_PREFIX}{id}");
                let cfg = invitees_node_config(AccessModel::Whitelist);
                ensure_node(self, to.as_ref(), &inv, &cfg).await?;
                event.invitees = Some(NodeRef::new(service.clone(), inv));
            }
            let po = PublishOptions::new(events_node_config(options.access), options.on_refusal);
            self.publish(
                to.as_ref(),
                &node,
                Some(&id),
                Element::from(&event),
                Some(&po),
            )
            .await?;
            let item = ItemRef::new(service, node, id);
            if options.rsvp_node && !event.rsvp.is_empty() {
                let cfg = rsvp_node_config(options.access);
                ensure_node(self, to.as_ref(), &attachment_node(&item), &cfg).await?;
            }
            Ok(item)
        }
    }

    /// Replaces an event (same item id). Links and RSVP node are left as they are.
    fn update_event(
        &self,
        item: &ItemRef,
        event: Event,
    ) -> impl Future<Output = Result<()>> + Send {
        let item = item.clone();
        async move {
            event.validate()?;
            let to = target(self, &item.service);
            self.publish(
                to.as_ref(),
                &item.node,
                Some(&item.item),
                Element::from(&event),
                None,
            )
            .await
            .map(|_| ())
        }
    }

    /// Reads one event.
    fn event(&self, item: &ItemRef) -> impl Future<Output = Result<EventItem>> + Send {
        let item = item.clone();
        async move {
            let to = target(self, &item.service);
            let items = self
                .get_items_by_id(to.as_ref(), &item.node, &[item.item.as_str()])
                .await?;
            let items: Vec<Item> = items.into_iter().filter(|i| i.id == item.item).collect();
            let mut evs = events_from_items(&item.service, &item.node, items);
            if let Some(bad) = evs.invalid.pop() {
                return Err(bad.error.into());
            }
            evs.events.pop().ok_or_else(|| {
                Error::InvalidArgument(format!("no item {} in {}", item.item, item.node))
            })
        }
    }

    /// Reads up to `limit` events of a node.
    fn events(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Events>> + Send {
        let service = own_service(self, service);
        let node = node.unwrap_or(NS_CALENDAR_EVENTS).to_owned();
        async move {
            let to = target(self, &service);
            let items = self.get_all_items(to.as_ref(), &node, 100, limit).await?;
            Ok(events_from_items(&service, &node, items))
        }
    }

    /// Deletes an event (retract with notification) and, best effort, its RSVP node.
    fn delete_event(&self, item: &ItemRef) -> impl Future<Output = Result<()>> + Send {
        let item = item.clone();
        async move {
            let to = target(self, &item.service);
            self.retract(to.as_ref(), &item.node, &[item.item.as_str()], true)
                .await?;
            // The attachment node may not exist (no RSVP) or belong to the service: ignore failures.
            let _ = self.delete_node(to.as_ref(), &attachment_node(&item)).await;
            Ok(())
        }
    }

    /// Answers an event's RSVP: reads the event, then publishes `answer` (in the event's namespace,
    /// stamped now when it has no timestamp) in the event's attachment node under one's bare JID, keeping
    /// one's other attachments to the event. Fails with
    /// [`Error::Unsupported`] when the event has no RSVP node and the service does not create them (the
    /// XEP forbids creating it oneself).
    fn rsvp(&self, event: &ItemRef, answer: RsvpAnswer) -> impl Future<Output = Result<()>> + Send {
        let event = event.clone();
        let me = self.jid().to_bare().to_string();
        async move {
            // Reading the event checks it exists and gives its namespace: Libervia 0.9 reads only
            // answers in the 0.1.0 namespace, so a legacy event gets a legacy answer.
            let ns = self.event(&event).await?.event.ns;
            let mut answer = answer.in_namespace(ns);
            if answer.timestamp.is_none() {
                answer.timestamp = Some(chrono::Utc::now().fixed_offset());
            }
            let node = attachment_node(&event);
            let to = target(self, &event.service);
            let existing = own_attachments(self, to.as_ref(), &node, &me).await?;
            let payload = answer.merge_into_attachments(existing.as_ref());
            self.publish(to.as_ref(), &node, Some(&me), payload, None)
                .await
                .map(|_| ())
        }
    }

    /// Withdraws one's RSVP, keeping one's other attachments (the item is retracted when nothing else
    /// is left).
    fn withdraw_rsvp(&self, event: &ItemRef) -> impl Future<Output = Result<()>> + Send {
        let event = event.clone();
        let me = self.jid().to_bare().to_string();
        async move {
            let node = attachment_node(&event);
            let to = target(self, &event.service);
            let Some(existing) = own_attachments(self, to.as_ref(), &node, &me).await? else {
                return Ok(());
            };
            match attachments_without_rsvp(&existing) {
                Some(rest) => self
                    .publish(to.as_ref(), &node, Some(&me), rest, None)
                    .await
                    .map(|_| ()),
                None => self.retract(to.as_ref(), &node, &[me.as_str()], true).await,
            }
        }
    }

    /// Reads every RSVP of an event and counts attendees as XEP-0471 §RSVP Summarizing says. An event
    /// without RSVP node has no answers.
    fn attendees(&self, event: &ItemRef) -> impl Future<Output = Result<Attendance>> + Send {
        let event = event.clone();
        async move {
            let node = attachment_node(&event);
            let to = target(self, &event.service);
            let items = match self.get_all_items(to.as_ref(), &node, 100, None).await {
                Ok(items) => items,
                Err(e) if e.is_item_not_found() => Vec::new(),
                Err(e) => return Err(e),
            };
            Ok(attendance_from_items(&event, items))
        }
    }

    /// Invites someone: adds them to the event's invitees node (item id = their bare JID) and, with
    /// `options.grant_access`, grants them `member` on the event node and `publisher` on its RSVP node.
    fn invite(
        &self,
        event: &ItemRef,
        invitee: &Jid,
        options: InviteOptions,
    ) -> impl Future<Output = Result<()>> + Send {
        let event = event.clone();
        let invitee: Jid = invitee.to_bare().into();
        async move {
            let ev = self.event(&event).await?;
            let invitees = ev.event.invitees.clone().ok_or_else(|| {
                Error::InvalidArgument(format!("event {} links no invitees node", event.item))
            })?;
            let entry = Invitee {
                jid: invitee.clone(),
                name: options.name.clone(),
            };
            let inv_to = target(self, &invitees.service);
            let id = invitee.to_string();
            self.publish(
                inv_to.as_ref(),
                &invitees.node,
                Some(&id),
                entry.to_element(ev.event.ns),
                None,
            )
            .await?;
            if options.grant_access {
                let to = target(self, &event.service);
                let grant = |affiliation| {
                    [AffiliationEntry {
                        node: None,
                        jid: Some(invitee.clone()),
                        affiliation,
                    }]
                };
                self.set_node_affiliations(to.as_ref(), &event.node, &grant(Affiliation::Member))
                    .await?;
                if !ev.event.rsvp.is_empty() {
                    match self
                        .set_node_affiliations(
                            to.as_ref(),
                            &attachment_node(&event),
                            &grant(Affiliation::Publisher),
                        )
                        .await
                    {
                        // No RSVP node (created without one): nothing to grant.
                        Err(e) if e.is_item_not_found() => {}
                        other => other?,
                    }
                }
            }
            Ok(())
        }
    }

    /// Lists an event's invitees (readable by the organisers when the node is whitelisted).
    fn invitees(&self, event: &ItemRef) -> impl Future<Output = Result<Vec<Invitee>>> + Send {
        let event = event.clone();
        async move {
            let ev = self.event(&event).await?;
            let Some(node) = ev.event.invitees else {
                return Ok(Vec::new());
            };
            let to = target(self, &node.service);
            let items = self
                .get_all_items(to.as_ref(), &node.node, 100, None)
                .await?;
            let mut out = Vec::new();
            for item in items {
                if let Some(p) = &item.payload {
                    out.push(Invitee::parse(p)?);
                }
            }
            Ok(out)
        }
    }

    /// Adds someone else's event to one's PEP agenda as an `<external/>` link (name and times copied)
    /// and returns the new item.
    fn add_to_agenda(&self, event: &ItemRef) -> impl Future<Output = Result<ItemRef>> + Send {
        let event = event.clone();
        async move {
            let original = self.event(&event).await?;
            let link = Event::link_to(&original.event, event.clone());
            let options = CreateEventOptions {
                rsvp_node: false,
                invitees_node: false,
                ..CreateEventOptions::default()
            };
            self.create_event(None, Some(original.event.ns.agenda_node()), link, options)
                .await
        }
    }
}

impl<C: Connection + ?Sized> EventsExt for C {}

/// One's current attachment item on `node`, if any. When the node itself is missing, fails with
/// [`Error::Unsupported`] unless the service creates attachment nodes itself (XEP-0470 full compliance).
async fn own_attachments<C: Connection + ?Sized>(
    c: &C,
    to: Option<&Jid>,
    node: &str,
    me: &str,
) -> Result<Option<Element>> {
    match c.get_items_by_id(to, node, &[me]).await {
        Ok(items) => Ok(items
            .into_iter()
            .find(|i| i.id == me)
            .and_then(|i| i.payload)),
        Err(e) if e.is_item_not_found() => {
            let node_exists = match c.disco_info(to, Some(node)).await {
                Ok(_) => true,
                Err(e) if e.is_item_not_found() => false,
                Err(e) => return Err(e),
            };
            if node_exists {
                return Ok(None);
            }
            let compliant = c
                .disco_info(to, None)
                .await
                .map(|i| i.has(NS_ATTACHMENTS))
                .unwrap_or(false);
            if compliant {
                Ok(None)
            } else {
                Err(Error::Unsupported(format!(
                    "no attachment node {node}: the event takes no RSVP here"
                )))
            }
        }
        Err(e) => Err(e),
    }
}
