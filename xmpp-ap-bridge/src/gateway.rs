//! The glue between the HTTP side ([`crate::http`]), the conversions ([`crate::convert`]), the store
//! and the XMPP component.
//!
//! Sans-IO where it matters: [`GatewayScheme`] is the [`UrlScheme`] of a deployment (pure), and
//! [`plan_inbound`] / [`plan_published`] / [`plan_retracted`] turn an accepted activity or an XMPP
//! pubsub event into [`Effect`]s (data). [`Gateway`] is the thin async driver: it performs effects on
//! the store, the delivery queue and the component connection.
//!
//! # What the XMPP side must allow
//!
//! The gateway subscribes its component JID (`ap.example.org`) to a local blog when a fediverse actor
//! follows it, and reads the items it is notified of: the blog node's access model must let the
//! component read and subscribe (`open`, the default of public XEP-0277 blogs; `presence` or `roster`
//! blogs are private and are not federated). Comments of fediverse actors are published by their
//! virtual JIDs (`name\40host@ap.example.org`) in the post's comments node, whose publish model must be
//! `open` (XEP-0277's comments node configuration). Likes and reactions go to the post's XEP-0470
//! attachments node, which the post's publisher creates (open publishing).
//!
//! ejabberd's PEP nodes default to `pubsub#presence_based_delivery = true`: notifications go only to
//! subscribers with an online client session, which a component never has, so nothing published on
//! such a node reaches the gateway. [`federated_blog_config`] is the configuration a blog owner applies
//! (on top of XEP-0277's) to federate a blog on any server.

use std::sync::Arc;

use jid::{BareJid, Jid};
use minidom::Element;
use serde_json::Value;
use tokio::sync::mpsc;
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::component::ComponentConnection;
use xmpp_social::microblog::{Entry, ItemRef, MicroblogExt, NodeRef, NS_MICROBLOG};
use xmpp_social::pubsub::{ItemsQuery, PubSubEvent, PubSubExt};
use xmpp_social::rsm::{RsmRequest, RsmResult};
use xmpp_social::{Connection, Incoming as XmppIncoming, IqRequest};

use crate::convert::{
    self, AttachmentChange, ConvertError, Incoming, IncomingPost, NoteOptions, UrlScheme,
};
use crate::escape::{escape_localpart, unescape_localpart};
use crate::fetch::Fetcher;
use crate::handles::{ActorEndpoint, ApPath, XmppTarget};
use crate::http::{
    remote_actor_from_document, BoxFuture, HttpConfig, InboundActivity, ObjectSource,
};
use crate::queue::{enqueue_all, plan_inboxes};
use crate::store::{GatewayStore, StoreError};
use crate::vocab::{self, AnyObject};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_social::xml::BuilderExt;

/// Errors of the gateway driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A conversion failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The XMPP side failed.
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::Error),
    /// A remote actor could not be reached or read.
    #[error("remote actor: {0}")]
    Remote(String),
}

/// What a blog node needs to be federated through the gateway, to apply with
/// [`PubSubExt::configure_node`] on top of XEP-0277's configuration: `open` access (the component
/// reads and subscribes) and `presence_based_delivery` off (the component has no presence; ejabberd's
/// PEP default would withhold every notification from it).
pub fn federated_blog_config() -> xmpp_social::pubsub::NodeConfig {
    xmpp_social::pubsub::NodeConfig::new()
        .access_model(xmpp_social::pubsub::AccessModel::Open)
        .set("pubsub#presence_based_delivery", "false")
}

/// The pubsub namespace (requests the component handles for virtual JIDs).
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";

/// The IQ namespaces the component must pass to the gateway
/// (`ComponentConfig::iq_namespaces`): pubsub (subscriptions and items of virtual JIDs) and service
/// discovery of virtual JIDs.
pub const IQ_NAMESPACES: [&str; 3] = [
    NS_PUBSUB,
    crate::virtual_node::NS_DISCO_INFO,
    crate::virtual_node::NS_DISCO_ITEMS,
];

/// Most pages of a remote outbox read to answer one items request.
const MAX_OUTBOX_PAGES: usize = 5;
const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";

fn short_hash(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The [`UrlScheme`] of one deployment: local JIDs and nodes are actors under the gateway's URL
/// layout; remote actors are virtual JIDs `escape(name@host[:port])@<component domain>`.
#[derive(Debug, Clone)]
pub struct GatewayScheme {
    config: HttpConfig,
    gateway: BareJid,
}

impl GatewayScheme {
    /// The scheme of `config`, with the component's domain `gateway`.
    pub fn new(config: HttpConfig, gateway: BareJid) -> Self {
        Self { config, gateway }
    }

    /// The HTTP settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The local target and canonical handle of one of our actor URLs.
    pub fn local_actor(&self, url: &str) -> Option<(XmppTarget, String)> {
        match self.config.layout.parse_url(url).ok()? {
            ApPath::Actor {
                endpoint: ActorEndpoint::Actor,
                handle,
            } => self.config.resolve_handle(&handle).ok(),
            _ => None,
        }
    }

    /// The canonical handle of a local node.
    pub fn handle_of(&self, node: &NodeRef) -> Option<String> {
        let node_name = (node.node != NS_MICROBLOG).then_some(node.node.as_str());
        self.config
            .mapper
            .encode(&node.service.to_bare(), node_name)
            .ok()
    }

    /// The virtual JID of a remote actor URL: `name@host[:port]` (the last path segment as name),
    /// XEP-0106-escaped, at the component's domain.
    pub fn virtual_jid(&self, actor: &str) -> Option<BareJid> {
        let url = url::Url::parse(actor).ok()?;
        let host = crate::signature::host_header(&url)?;
        let name = url.path_segments()?.rfind(|s| !s.is_empty())?;
        let name = name.trim_start_matches('@');
        let local = escape_localpart(&format!("{name}@{host}")).ok()?;
        BareJid::new(&format!("{local}@{}", self.gateway)).ok()
    }

    /// The `name@host[:port]` address a virtual JID stands for.
    pub fn remote_address(&self, jid: &BareJid) -> Option<String> {
        if jid.domain() != self.gateway.domain() {
            return None;
        }
        unescape_localpart(jid.node()?.as_str()).ok()
    }
}

impl UrlScheme for GatewayScheme {
    fn actor_for_node(&self, node: &NodeRef) -> String {
        self.handle_of(node)
            .and_then(|h| self.config.actor_url(&h).ok())
            .unwrap_or_default()
    }

    fn actor_for_jid(&self, jid: &BareJid) -> String {
        self.actor_for_node(&NodeRef::new(jid.clone().into(), NS_MICROBLOG))
    }

    fn object_url(&self, item: &ItemRef) -> String {
        let node = NodeRef::new(item.service.clone(), item.node.clone());
        self.handle_of(&node)
            .and_then(|h| self.config.layout.item_url(&h, &item.item).ok())
            .unwrap_or_default()
    }

    fn followers_url(&self, actor: &str) -> String {
        match self.local_actor(actor) {
            Some((_, handle)) => self
                .config
                .layout
                .actor_url(ActorEndpoint::Followers, &handle)
                .unwrap_or_default(),
            None => format!("{actor}/followers"),
        }
    }

    fn activity_id(&self, kind: &str, object: &str, by: &str, salt: &str) -> String {
        let hash = short_hash(&format!("{kind}\n{object}\n{by}\n{salt}"));
        format!("{}/activity/{kind}-{hash}", self.config.layout.base())
    }

    fn jid_for_actor(&self, actor: &str) -> Option<BareJid> {
        match self.local_actor(actor) {
            Some((target, _)) => Some(target.jid),
            None => self.virtual_jid(actor),
        }
    }

    fn node_for_actor(&self, actor: &str) -> Option<NodeRef> {
        match self.local_actor(actor) {
            Some((target, _)) => Some(NodeRef::new(
                target.jid.into(),
                target.node.unwrap_or_else(|| NS_MICROBLOG.to_owned()),
            )),
            None => Some(NodeRef::new(self.virtual_jid(actor)?.into(), NS_MICROBLOG)),
        }
    }

    fn item_for_object(&self, object: &str) -> Option<ItemRef> {
        if let Ok(ApPath::Item { handle, id }) = self.config.layout.parse_url(object) {
            let (target, _) = self.config.resolve_handle(&handle).ok()?;
            return Some(ItemRef::new(
                target.jid.into(),
                target.node.unwrap_or_else(|| NS_MICROBLOG.to_owned()),
                id,
            ));
        }
        // A remote object: mirrored on the gateway's domain, under a stable id.
        let url = url::Url::parse(object).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        Some(ItemRef::new(
            Jid::from(self.gateway.clone()),
            NS_MICROBLOG,
            format!("ap-{}", short_hash(object)),
        ))
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Effect {
    /// Record a follower of a local actor.
    AddFollower {
        /// The local actor's handle.
        handle: String,
        /// The remote actor.
        follower: String,
    },
    /// Forget a follower.
    RemoveFollower {
        /// The local actor's handle.
        handle: String,
        /// The remote actor.
        follower: String,
    },
    /// Subscribe the component to a local blog node (to federate its posts).
    Subscribe(NodeRef),
    /// Queue `activity` signed by `signer` to `inboxes`.
    Deliver {
        /// The local actor's handle.
        signer: String,
        /// The activity.
        activity: Value,
        /// The inboxes (already de-duplicated).
        inboxes: Vec<String>,
    },
    /// Queue `activity` to every follower of `signer` (shared inboxes de-duplicated).
    DeliverToFollowers {
        /// The local actor's handle.
        signer: String,
        /// The activity.
        activity: Value,
    },
    /// Publish a comment by a remote actor (as its virtual JID) answering `parent`.
    Comment {
        /// The virtual JID.
        by: BareJid,
        /// The post answered.
        parent: ItemRef,
        /// The comment.
        post: Box<IncomingPost>,
    },
    /// Change the XEP-0470 attachments of a remote actor (as its virtual JID) on a local item.
    Attach {
        /// The virtual JID.
        by: BareJid,
        /// The item.
        target: ItemRef,
        /// The change.
        change: AttachmentChange,
    },
    /// A remote actor accepted the follows of XMPP subscribers.
    FollowAccepted {
        /// The remote actor.
        actor: String,
    },
    /// Push a post of a followed remote actor to its XMPP subscribers (XEP-0277 notifications from
    /// the actor's virtual JID).
    PushToSubscribers {
        /// The remote actor.
        actor: String,
        /// The virtual JID.
        from: BareJid,
        /// The item id.
        item_id: String,
        /// The remote object's id (the item is recorded as the actor's, for later edits and
        /// retractions).
        object: String,
        /// The entry.
        entry: Box<Entry>,
    },
    /// Retract a post of a followed remote actor from its XMPP subscribers (a XEP-0060 retract
    /// notification from the actor's virtual JID). Done only when the store records the item as
    /// published by that same virtual JID.
    RetractFromSubscribers {
        /// The remote actor.
        actor: String,
        /// The virtual JID.
        from: BareJid,
        /// The item id.
        item_id: String,
        /// The deleted object's id.
        object: String,
    },
    /// Remember the `Announce` a local repeat item was federated as (for its `Undo` on retraction).
    RememberRepeat {
        /// The repeat item.
        item: ItemRef,
        /// The `Announce`.
        announce: Value,
    },
    /// Nothing to do (with the reason, for logs).
    Ignore(String),
}

/// The `Follow` of the remote actor `object` by our actor `me` (no `@context`: also embedded in
/// [`unfollow_activity`]).
pub fn follow_activity(scheme: &GatewayScheme, me: &str, object: &str) -> Value {
    serde_json::json!({
        "id": scheme.activity_id("follow", object, me, ""),
        "type": "Follow",
        "actor": me,
        "object": object,
    })
}

/// The `Undo` of [`follow_activity`] (an XMPP user unsubscribed from the actor's virtual JID).
pub fn unfollow_activity(scheme: &GatewayScheme, me: &str, object: &str) -> Value {
    let follow = follow_activity(scheme, me, object);
    let follow_id = follow["id"].as_str().unwrap_or_default().to_owned();
    serde_json::json!({
        "@context": vocab::AS_CONTEXT,
        "id": scheme.activity_id("undo", &follow_id, me, ""),
        "type": "Undo",
        "actor": me,
        "object": follow,
    })
}

/// Whether the virtual JID `from` may publish (or edit) item `item_id` of a remote object, given
/// what the store recorded for that object (`(service, node, item)`): a new object, or one this
/// same virtual JID published under the same item id.
pub fn may_publish(
    recorded: Option<&(String, String, String)>,
    from: &BareJid,
    item_id: &str,
) -> bool {
    match recorded {
        None => true,
        Some(_) => may_retract(recorded, from, item_id),
    }
}

/// Whether the virtual JID `from` may retract item `item_id` of a remote object: only when the
/// store recorded that object as published by `from` under that item id (a `Delete` by another
/// actor, or of an object never seen, changes nothing).
pub fn may_retract(
    recorded: Option<&(String, String, String)>,
    from: &BareJid,
    item_id: &str,
) -> bool {
    recorded.is_some_and(|(service, node, item)| {
        service == from.as_str() && node == NS_MICROBLOG && item == item_id
    })
}

/// What an accepted inbound activity means (sans-IO).
pub fn plan_inbound(
    scheme: &GatewayScheme,
    inbound: &InboundActivity,
) -> Result<Vec<Effect>, ConvertError> {
    let doc = vocab::parse_value(Value::Object(inbound.activity.clone()))?;
    let AnyObject::Activity(activity) = &doc else {
        return Ok(vec![Effect::Ignore("not an activity".into())]);
    };
    let incoming = convert::incoming_activity(activity, scheme)?;
    Ok(match incoming {
        Incoming::Follow(req) => {
            let Some(handle) = scheme.handle_of(&req.followed) else {
                return Ok(vec![Effect::Ignore("follow of an unknown actor".into())]);
            };
            let accept = convert::accept_follow(activity, scheme);
            vec![
                Effect::AddFollower {
                    handle: handle.clone(),
                    follower: req.follower_actor.clone(),
                },
                Effect::Subscribe(req.followed.clone()),
                Effect::Deliver {
                    signer: handle,
                    activity: vocab::to_json(&accept),
                    inboxes: vec![inbound.actor.inbox.clone()],
                },
            ]
        }
        Incoming::Unfollow(req) => match scheme.handle_of(&req.followed) {
            Some(handle) => vec![Effect::RemoveFollower {
                handle,
                follower: req.follower_actor,
            }],
            None => vec![Effect::Ignore("unfollow of an unknown actor".into())],
        },
        Incoming::Publish(post) | Incoming::Republish(post) => match post.in_reply_to.clone() {
            Some(parent) if parent.service.domain() != scheme.gateway.domain() => {
                let Some(by) = scheme.virtual_jid(&activity.actor) else {
                    return Ok(vec![Effect::Ignore("unmappable actor".into())]);
                };
                vec![Effect::Comment {
                    by,
                    parent,
                    post: Box::new(post),
                }]
            }
            _ => match scheme.virtual_jid(&activity.actor) {
                Some(from) => vec![Effect::PushToSubscribers {
                    actor: activity.actor.clone(),
                    from,
                    item_id: post.item_id.clone(),
                    object: activity.object_id().unwrap_or_default().to_owned(),
                    entry: Box::new(post.entry),
                }],
                None => vec![Effect::Ignore("unmappable actor".into())],
            },
        },
        // A remote object deleted: only objects mirrored on the gateway's domain (the origin check
        // of the conversion already refused other origins; the driver checks the item is this
        // actor's).
        Incoming::Retract { item } if item.service.domain() == scheme.gateway.domain() => {
            match (scheme.virtual_jid(&activity.actor), activity.object_id()) {
                (Some(from), Some(object)) => vec![Effect::RetractFromSubscribers {
                    actor: activity.actor.clone(),
                    from,
                    item_id: item.item,
                    object: object.to_owned(),
                }],
                _ => vec![Effect::Ignore("unmappable Delete".into())],
            }
        }
        Incoming::FollowAccepted { actor, .. } => vec![Effect::FollowAccepted { actor }],
        Incoming::Attachment { target, by, change } => vec![Effect::Attach { by, target, change }],
        other => vec![Effect::Ignore(format!("not acted upon: {other:?}"))],
    })
}

/// The activity for an entry published (or republished, `update`) on a local node.
pub fn plan_published(
    scheme: &GatewayScheme,
    item: &ItemRef,
    entry: &Entry,
    update: bool,
) -> Result<Vec<Effect>, ConvertError> {
    let node = NodeRef::new(item.service.clone(), item.node.clone());
    let Some(signer) = scheme.handle_of(&node) else {
        return Ok(vec![Effect::Ignore("not a local node".into())]);
    };
    let activity =
        convert::entry_to_activity(entry, item, scheme, &NoteOptions::default(), update)?;
    let json = vocab::to_json(&activity);
    let mut effects = Vec::with_capacity(2);
    if activity.kind == vocab::ActivityKind::Announce {
        effects.push(Effect::RememberRepeat {
            item: item.clone(),
            announce: json.clone(),
        });
    }
    effects.push(Effect::DeliverToFollowers {
        signer,
        activity: json,
    });
    Ok(effects)
}

/// What to send for an item retracted from a local node: `Undo` of the `Announce` it was federated
/// as when it was a repeat (`announce`, as [`Effect::RememberRepeat`] recorded it), else `Delete`.
pub fn plan_retracted(
    scheme: &GatewayScheme,
    item: &ItemRef,
    announce: Option<Value>,
) -> Vec<Effect> {
    let node = NodeRef::new(item.service.clone(), item.node.clone());
    let Some(signer) = scheme.handle_of(&node) else {
        return vec![Effect::Ignore("not a local node".into())];
    };
    let actor = scheme.actor_for_node(&node);
    let activity = match announce {
        Some(Value::Object(mut announce)) => {
            announce.remove("@context");
            let announce_id = announce
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut undo = serde_json::json!({
                "@context": vocab::AS_CONTEXT,
                "id": scheme.activity_id("undo", announce_id, &actor, ""),
                "type": "Undo",
                "actor": actor,
            });
            for field in ["to", "cc"] {
                if let Some(v) = announce.get(field) {
                    undo[field] = v.clone();
                }
            }
            undo["object"] = Value::Object(announce);
            undo
        }
        _ => vocab::to_json(&convert::delete_activity(
            item,
            &actor,
            scheme,
            &NoteOptions::default(),
        )),
    };
    vec![Effect::DeliverToFollowers { signer, activity }]
}

/// A view of the component connection that sends IQs from one of its virtual JIDs.
#[derive(Debug, Clone)]
pub struct AsJid {
    conn: ComponentConnection,
    from: Jid,
}

impl AsJid {
    /// `conn` acting as `from` (a JID of the component's domain).
    pub fn new(conn: ComponentConnection, from: Jid) -> Self {
        Self { conn, from }
    }
}

impl Connection for AsJid {
    fn jid(&self) -> Jid {
        self.from.clone()
    }

    async fn send_stanza(
        &self,
        stanza: xmpp_parsers::stanza::Stanza,
    ) -> xmpp_social::error::Result<()> {
        self.conn.send_stanza(stanza).await
    }

    async fn send_iq(&self, request: IqRequest) -> xmpp_social::error::Result<Option<Element>> {
        self.conn.send_iq_from(self.from.clone(), request).await
    }

    fn incoming(&self) -> XmppIncoming {
        self.conn.incoming()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The async driver (see the module docs).
#[derive(Clone)]
pub struct Gateway {
    scheme: GatewayScheme,
    store: Arc<dyn GatewayStore>,
    conn: ComponentConnection,
    fetcher: Option<Fetcher>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A driver over `conn` (the component) and `store`.
    pub fn new(
        scheme: GatewayScheme,
        store: Arc<dyn GatewayStore>,
        conn: ComponentConnection,
    ) -> Self {
        Self {
            scheme,
            store,
            conn,
            fetcher: None,
        }
    }

    /// Lets XMPP users follow remote actors: subscribe requests to virtual JIDs are resolved with
    /// WebFinger and the actor document through `fetcher`. The component must receive pubsub IQs
    /// (`ComponentConfig::iq_namespaces` with [`NS_PUBSUB`]).
    pub fn with_fetcher(mut self, fetcher: Fetcher) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// The scheme.
    pub fn scheme(&self) -> &GatewayScheme {
        &self.scheme
    }

    /// Acts on accepted activities and on the component's pubsub notifications until `inbound`
    /// closes. One bad activity or event is logged and skipped.
    pub async fn run(&self, mut inbound: mpsc::Receiver<InboundActivity>) {
        let mut events = self.conn.pubsub_events();
        let mut stanzas = self.conn.incoming();
        loop {
            tokio::select! {
                stanza = stanzas.recv() => match stanza {
                    Ok(stanza) => {
                        match &*stanza {
                            Stanza::Iq(Iq::Set { from: Some(from), to: Some(to), id, payload }) => {
                                self.on_iq_set(from, to, id, payload).await;
                            }
                            Stanza::Iq(Iq::Get { from: Some(from), to: Some(to), id, payload }) => {
                                self.on_iq_get(from, to, id, payload).await;
                            }
                            _ => {}
                        }
                    }
                    Err(_) => stanzas = self.conn.incoming(),
                },
                activity = inbound.recv() => {
                    let Some(activity) = activity else { return };
                    if let Err(e) = self.on_inbound(&activity).await {
                        tracing::info!(error = %e, actor = %activity.actor.id, "inbound activity not applied");
                    }
                }
                event = events.next() => match event {
                    Ok(event) => {
                        if let Err(e) = self.on_event(event).await {
                            tracing::info!(error = %e, "pubsub event not federated");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pubsub event stream");
                        events = self.conn.pubsub_events();
                    }
                },
            }
        }
    }

    /// Performs the effects of one accepted activity.
    pub async fn on_inbound(&self, inbound: &InboundActivity) -> Result<(), GatewayError> {
        let effects = plan_inbound(&self.scheme, inbound)?;
        self.perform(effects).await
    }

    /// Federates one pubsub notification of a local blog.
    pub async fn on_event(&self, event: PubSubEvent) -> Result<(), GatewayError> {
        match event {
            PubSubEvent::Items {
                service,
                node,
                items,
            } => {
                for item in items.into_iter().take(100) {
                    let item_ref = ItemRef::new(service.clone(), node.clone(), item.id.clone());
                    // Notifications may carry ids only (XEP-0472's deliver_payloads=false).
                    let entry = match item.payload.as_ref().map(Entry::try_from) {
                        Some(Ok(entry)) => entry,
                        _ => {
                            self.conn
                                .entry(Some(&service), Some(&node), &item.id)
                                .await?
                                .entry
                        }
                    };
                    let object = self.scheme.object_url(&item_ref);
                    let known = self
                        .store
                        .object_of(service.as_str(), &node, &item.id)?
                        .is_some();
                    if !known {
                        self.store
                            .map_item(service.as_str(), &node, &item.id, &object)?;
                    }
                    let effects = plan_published(&self.scheme, &item_ref, &entry, known)?;
                    self.perform(effects).await?;
                }
                Ok(())
            }
            PubSubEvent::Retract { service, node, ids } => {
                for id in ids.into_iter().take(100) {
                    let announce = self
                        .store
                        .take_repeat(service.as_str(), &node, &id)?
                        .and_then(|json| serde_json::from_str(&json).ok());
                    let item_ref = ItemRef::new(service.clone(), node.clone(), id);
                    self.perform(plan_retracted(&self.scheme, &item_ref, announce))
                        .await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn answer(
        &self,
        from: &Jid,
        to: &Jid,
        id: &str,
        result: Result<Option<Element>, DefinedCondition>,
    ) {
        let iq = match result {
            Ok(payload) => Iq::Result {
                from: Some(to.clone()),
                to: Some(from.clone()),
                id: id.to_owned(),
                payload,
            },
            Err(condition) => Iq::Error {
                from: Some(to.clone()),
                to: Some(from.clone()),
                id: id.to_owned(),
                error: StanzaError::new(ErrorType::Cancel, condition, "en", ""),
                payload: None,
            },
        };
        if let Err(e) = self.conn.send_stanza(iq.into()).await {
            tracing::debug!(error = %e, "cannot answer an IQ");
        }
    }

    /// `get` requests: items of a virtual JID's microblog node (from the remote actor's outbox),
    /// service discovery of virtual JIDs.
    async fn on_iq_get(&self, from: &Jid, to: &Jid, id: &str, payload: &Element) {
        use crate::virtual_node::{self as vn, NS_DISCO_INFO, NS_DISCO_ITEMS};
        let to_bare = to.to_bare();
        let address = self.scheme.remote_address(&to_bare);
        let node = payload.attr("node");
        let result = if payload.is("query", NS_DISCO_INFO) {
            match address {
                Some(_) => vn::disco_info_answer(node)
                    .map(Some)
                    .ok_or(DefinedCondition::ItemNotFound),
                None => Err(DefinedCondition::ItemNotFound),
            }
        } else if payload.is("query", NS_DISCO_ITEMS) {
            match address {
                Some(_) => Ok(Some(vn::disco_items_answer(to_bare.as_str(), node))),
                None => Ok(Some(
                    Element::builder("query", NS_DISCO_ITEMS)
                        .a_opt("node", node)
                        .build(),
                )),
            }
        } else if payload.is("pubsub", NS_PUBSUB) {
            match address {
                Some(address) => self.virtual_items(&address, payload).await,
                None => Err(DefinedCondition::ItemNotFound),
            }
        } else {
            Err(DefinedCondition::ServiceUnavailable)
        };
        self.answer(from, to, id, result).await;
    }

    /// Answers an items request to the virtual JID of `address` from the actor's outbox.
    async fn virtual_items(
        &self,
        address: &str,
        payload: &Element,
    ) -> Result<Option<Element>, DefinedCondition> {
        use crate::virtual_node::{self as vn, VirtualNodeError};
        let request = vn::ItemsRequest::parse(payload).map_err(|e| {
            tracing::debug!(error = %e, "items request refused");
            DefinedCondition::BadRequest
        })?;
        if request.node != NS_MICROBLOG {
            return Err(DefinedCondition::ItemNotFound);
        }
        let entries = self.remote_notes(address).await.map_err(|e| {
            tracing::info!(error = %e, %address, "cannot read a remote outbox");
            DefinedCondition::RemoteServerNotFound
        })?;
        let ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
        let page = vn::select(&ids, &request).map_err(|e| match e {
            VirtualNodeError::BadRequest(_) => DefinedCondition::BadRequest,
            _ => DefinedCondition::ItemNotFound,
        })?;
        Ok(Some(vn::items_answer(&entries, &request, &page)))
    }

    /// The public notes of the remote actor at `address` (`user@host`), newest first, read from its
    /// outbox through the fetcher (at most [`MAX_OUTBOX_PAGES`] pages and
    /// [`crate::virtual_node::MAX_ITEMS`] items).
    async fn remote_notes(&self, address: &str) -> Result<Vec<(String, Entry)>, GatewayError> {
        let fetcher = self.fetcher.as_ref().ok_or(GatewayError::Remote(
            "the gateway has no fetcher for remote actors".into(),
        ))?;
        let remote = |e: crate::error::FetchError| GatewayError::Remote(e.to_string());
        let actor_url = fetcher.webfinger(address).await.map_err(remote)?;
        let doc = fetcher.fetch_object(&actor_url).await.map_err(remote)?;
        let actor = doc
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(&actor_url)
            .to_owned();
        let outbox_url = doc
            .get("outbox")
            .and_then(Value::as_str)
            .ok_or_else(|| GatewayError::Remote("the actor has no outbox".into()))?;
        if convert::origin(outbox_url) != convert::origin(&actor) {
            return Err(GatewayError::Remote(
                "the outbox is not on the actor's origin".into(),
            ));
        }
        let mut collection = fetcher.fetch_object(outbox_url).await.map_err(remote)?;
        let mut items: Vec<Value> = Vec::new();
        for _ in 0..MAX_OUTBOX_PAGES {
            let page_items = collection
                .get("orderedItems")
                .or_else(|| collection.get("items"));
            if let Some(Value::Array(list)) = page_items {
                items.extend(list.iter().cloned());
            }
            if items.len() >= crate::virtual_node::MAX_ITEMS {
                break;
            }
            // The next page: `first` of the collection, then `next` of each page (ids or embedded).
            let next = if page_items.is_none() {
                collection.get("first")
            } else {
                collection.get("next")
            };
            collection = match next {
                Some(Value::String(url)) if convert::origin(url) == convert::origin(&actor) => {
                    fetcher.fetch_object(url).await.map_err(remote)?
                }
                Some(Value::Object(page)) => page.clone(),
                _ => break,
            };
        }
        Ok(crate::virtual_node::outbox_entries(
            &actor,
            &items,
            &self.scheme,
        ))
    }

    /// Pubsub `set` requests to virtual JIDs: `subscribe` to the microblog node follows the remote
    /// actor (Follow from the requester's actor), `unsubscribe` withdraws the subscription.
    async fn on_iq_set(&self, from: &Jid, to: &Jid, id: &str, payload: &Element) {
        if !payload.is("pubsub", NS_PUBSUB) {
            return;
        }
        let to_bare = to.to_bare();
        let Some(address) = self.scheme.remote_address(&to_bare) else {
            self.answer(from, to, id, Err(DefinedCondition::ItemNotFound))
                .await;
            return;
        };
        let subscriber = from.to_bare();
        if payload.get_child("unsubscribe", NS_PUBSUB).is_some() {
            let result = match self.unfollow_remote(&subscriber, &to_bare).await {
                Ok(true) => Ok(None),
                Ok(false) => Err(DefinedCondition::UnexpectedRequest),
                Err(e) => {
                    tracing::info!(error = %e, %address, "cannot unfollow a remote actor");
                    Err(DefinedCondition::InternalServerError)
                }
            };
            self.answer(from, to, id, result).await;
            return;
        }
        let Some(sub) = payload.get_child("subscribe", NS_PUBSUB) else {
            self.answer(from, to, id, Err(DefinedCondition::FeatureNotImplemented))
                .await;
            return;
        };
        match self.follow_remote(&subscriber, &address).await {
            Ok(()) => {
                let node = sub.attr("node").unwrap_or(NS_MICROBLOG);
                let answer = Element::builder("pubsub", NS_PUBSUB)
                    .append(
                        Element::builder("subscription", NS_PUBSUB)
                            .a("node", node)
                            .a("jid", subscriber.as_str())
                            .a("subscription", "subscribed")
                            .build(),
                    )
                    .build();
                self.answer(from, to, id, Ok(Some(answer))).await;
            }
            Err(e) => {
                tracing::info!(error = %e, %address, "cannot follow a remote actor");
                self.answer(from, to, id, Err(DefinedCondition::RemoteServerNotFound))
                    .await;
            }
        }
    }

    /// `subscriber` (a local JID) follows the remote actor at `address` (`user@host`).
    async fn follow_remote(&self, subscriber: &BareJid, address: &str) -> Result<(), GatewayError> {
        let fetcher = self.fetcher.as_ref().ok_or(GatewayError::Remote(
            "the gateway has no fetcher for remote actors".into(),
        ))?;
        let remote = |e: crate::error::FetchError| GatewayError::Remote(e.to_string());
        let actor_url = fetcher.webfinger(address).await.map_err(remote)?;
        let doc = fetcher.fetch_object(&actor_url).await.map_err(remote)?;
        let key_id = doc
            .get("publicKey")
            .and_then(|k| k.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let actor = remote_actor_from_document(&doc, &key_id, unix_now())
            .ok_or_else(|| GatewayError::Remote("not an actor document".into()))?;
        self.store.store_remote_actor(&actor)?;
        let handle = self
            .scheme
            .handle_of(&NodeRef::new(subscriber.clone().into(), NS_MICROBLOG))
            .ok_or_else(|| GatewayError::Remote("the subscriber has no handle".into()))?;
        let me = self.scheme.actor_for_jid(subscriber);
        let mut follow = follow_activity(&self.scheme, &me, &actor.id);
        if let Value::Object(map) = &mut follow {
            map.insert("@context".into(), Value::from(vocab::AS_CONTEXT));
        }
        self.store
            .set_following(subscriber.as_str(), &actor.id, false)?;
        enqueue_all(
            &*self.store,
            &handle,
            &follow.to_string(),
            std::slice::from_ref(&actor.inbox),
            unix_now(),
        )?;
        Ok(())
    }

    /// `subscriber` stops following the remote actor behind the virtual JID `virtual_jid`: the
    /// following is forgotten and `Undo(Follow)` queued to the actor. `false` when `subscriber` did
    /// not follow it.
    async fn unfollow_remote(
        &self,
        subscriber: &BareJid,
        virtual_jid: &BareJid,
    ) -> Result<bool, GatewayError> {
        let Some((actor_id, _)) = self
            .store
            .following(subscriber.as_str())?
            .into_iter()
            .find(|(actor, _)| self.scheme.virtual_jid(actor).as_ref() == Some(virtual_jid))
        else {
            return Ok(false);
        };
        self.store
            .remove_following(subscriber.as_str(), &actor_id)?;
        let actor = self
            .store
            .remote_actor(&actor_id)?
            .ok_or_else(|| GatewayError::Remote("the followed actor is not known".into()))?;
        let handle = self
            .scheme
            .handle_of(&NodeRef::new(subscriber.clone().into(), NS_MICROBLOG))
            .ok_or_else(|| GatewayError::Remote("the subscriber has no handle".into()))?;
        let me = self.scheme.actor_for_jid(subscriber);
        let undo = unfollow_activity(&self.scheme, &me, &actor.id);
        enqueue_all(
            &*self.store,
            &handle,
            &undo.to_string(),
            std::slice::from_ref(&actor.inbox),
            unix_now(),
        )?;
        Ok(true)
    }

    async fn deliver_to_followers(&self, signer: &str, body: &str) -> Result<(), GatewayError> {
        let mut actors = Vec::new();
        for id in self.store.followers(signer)? {
            if let Some(actor) = self.store.remote_actor(&id)? {
                actors.push(actor);
            }
        }
        let inboxes = plan_inboxes(&actors);
        enqueue_all(&*self.store, signer, body, &inboxes, unix_now())?;
        Ok(())
    }

    /// Sends one XEP-0060 notification of the virtual JID `from`'s microblog node (`child`: an `item`
    /// or a `retract`) to the XMPP subscribers of the remote `actor`.
    async fn notify_subscribers(
        &self,
        actor: &str,
        from: &BareJid,
        child: Element,
    ) -> Result<(), GatewayError> {
        let event = Element::builder("event", NS_PUBSUB_EVENT)
            .append(
                Element::builder("items", NS_PUBSUB_EVENT)
                    .a("node", NS_MICROBLOG)
                    .append(child)
                    .build(),
            )
            .build();
        for jid in self.store.subscribers(actor)?.into_iter().take(10_000) {
            let Ok(to) = BareJid::new(&jid) else { continue };
            let mut message = Message::new(Some(to.into()));
            message.from = Some(from.clone().into());
            message.type_ = MessageType::Headline;
            message.payloads.push(event.clone());
            self.conn.send_stanza(message.into()).await?;
        }
        Ok(())
    }

    /// Performs effects in order.
    pub async fn perform(&self, effects: Vec<Effect>) -> Result<(), GatewayError> {
        for effect in effects {
            match effect {
                Effect::AddFollower { handle, follower } => {
                    self.store.add_follower(&handle, &follower)?;
                }
                Effect::RemoveFollower { handle, follower } => {
                    self.store.remove_follower(&handle, &follower)?;
                }
                Effect::Subscribe(node) => {
                    let service = node.service.clone();
                    if let Err(e) = self.conn.subscribe(Some(&service), &node.node).await {
                        tracing::warn!(error = %e, node = %node.node, "cannot subscribe to a followed blog");
                    }
                }
                Effect::Deliver {
                    signer,
                    activity,
                    inboxes,
                } => {
                    enqueue_all(
                        &*self.store,
                        &signer,
                        &activity.to_string(),
                        &inboxes,
                        unix_now(),
                    )?;
                }
                Effect::DeliverToFollowers { signer, activity } => {
                    self.deliver_to_followers(&signer, &activity.to_string())
                        .await?;
                }
                Effect::Comment { by, parent, post } => {
                    let parent_entry = self
                        .conn
                        .entry(Some(&parent.service), Some(&parent.node), &parent.item)
                        .await?;
                    let Some(comments) = parent_entry.entry.comments().into_iter().next() else {
                        tracing::info!(item = %parent.item, "reply to a post without comments node");
                        continue;
                    };
                    let me = AsJid::new(self.conn.clone(), by.into());
                    me.comment(&parent, &comments, post.entry).await?;
                }
                Effect::Attach { by, target, change } => {
                    let me = AsJid::new(self.conn.clone(), by.into());
                    match change {
                        AttachmentChange::Notice => {
                            me.set_noticed(&target, true).await?;
                        }
                        AttachmentChange::Unnotice => {
                            me.set_noticed(&target, false).await?;
                        }
                        AttachmentChange::React(emoji) => {
                            me.add_reaction(&target, &emoji).await?;
                        }
                        AttachmentChange::Unreact(emoji) => {
                            me.remove_reaction(&target, &emoji).await?;
                        }
                    }
                }
                Effect::FollowAccepted { actor } => {
                    for jid in self.store.subscribers(&actor)? {
                        self.store.set_following(&jid, &actor, true)?;
                    }
                }
                Effect::PushToSubscribers {
                    actor,
                    from,
                    item_id,
                    object,
                    entry,
                } => {
                    let recorded = self.store.item_of(&object)?;
                    if !may_publish(recorded.as_ref(), &from, &item_id) {
                        tracing::info!(%actor, %object, "edit of another actor's object refused");
                        continue;
                    }
                    if recorded.is_none() && !object.is_empty() {
                        self.store
                            .map_item(from.as_str(), NS_MICROBLOG, &item_id, &object)?;
                    }
                    let item = Element::builder("item", NS_PUBSUB_EVENT)
                        .a("id", item_id.as_str())
                        .append(Element::from(&*entry))
                        .build();
                    self.notify_subscribers(&actor, &from, item).await?;
                }
                Effect::RetractFromSubscribers {
                    actor,
                    from,
                    item_id,
                    object,
                } => {
                    let recorded = self.store.item_of(&object)?;
                    if !may_retract(recorded.as_ref(), &from, &item_id) {
                        tracing::info!(%actor, %object, "Delete of an object not published by its actor ignored");
                        continue;
                    }
                    let retract = Element::builder("retract", NS_PUBSUB_EVENT)
                        .a("id", item_id.as_str())
                        .build();
                    self.notify_subscribers(&actor, &from, retract).await?;
                }
                Effect::RememberRepeat { item, announce } => {
                    self.store.record_repeat(
                        item.service.as_str(),
                        &item.node,
                        &item.item,
                        &announce.to_string(),
                    )?;
                }
                Effect::Ignore(reason) => tracing::debug!(%reason, "activity ignored"),
            }
        }
        Ok(())
    }
}

/// Entries in an outbox page served from a blog node, unless [`XmppObjects::with_page_size`].
pub const OUTBOX_PAGE_SIZE: usize = 20;

/// Longest item id carried in an outbox page cursor.
const MAX_CURSOR_ID: usize = 1024;

/// Which page of an outbox (`?page=` of the outbox URL): an XEP-0059 request on the blog node.
///
/// Pubsub services page items oldest first (Prosody and ejabberd both do), outboxes list the newest
/// first: the outbox's first page is the node's last RSM page, its `next` (older) page is the RSM
/// page `before` the oldest item shown, its `prev` (newer) page the one `after` the newest, and
/// each page is shown in reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxCursor {
    /// The first page (newest entries): `first` (and, for older links, anything unknown).
    First,
    /// The last page (oldest entries): `last`.
    Last,
    /// The RSM page after this item id (newer entries): `after:<id>`.
    After(String),
    /// The RSM page before this item id (older entries): `before:<id>`.
    Before(String),
}

impl OutboxCursor {
    /// The cursor of a `page` query value as received (percent-encoded).
    pub fn parse(raw: &str) -> Self {
        let decoded: String = url::form_urlencoded::parse(format!("p={raw}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let id = |id: &str| (!id.is_empty() && id.len() <= MAX_CURSOR_ID).then(|| id.to_owned());
        if decoded == "last" {
            return OutboxCursor::Last;
        }
        if let Some(after) = decoded.strip_prefix("after:").and_then(id) {
            return OutboxCursor::After(after);
        }
        if let Some(before) = decoded.strip_prefix("before:").and_then(id) {
            return OutboxCursor::Before(before);
        }
        OutboxCursor::First
    }

    /// The `page` query value (percent-encoded).
    pub fn to_query(&self) -> String {
        let enc =
            |id: &str| url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
        match self {
            OutboxCursor::First => "first".into(),
            OutboxCursor::Last => "last".into(),
            OutboxCursor::After(id) => format!("after:{}", enc(id)),
            OutboxCursor::Before(id) => format!("before:{}", enc(id)),
        }
    }

    /// The RSM request of this page, `max` entries.
    pub fn rsm(&self, max: usize) -> RsmRequest {
        match self {
            OutboxCursor::First => RsmRequest::last(max),
            OutboxCursor::Last => RsmRequest::first(max),
            OutboxCursor::After(id) => RsmRequest::after(max, id.clone()),
            OutboxCursor::Before(id) => RsmRequest {
                max: Some(max),
                before: Some(id.clone()),
                ..RsmRequest::default()
            },
        }
    }
}

/// The `next` (older entries) and `prev` (newer) cursors of an outbox page that `cursor` asked
/// for, `got` entries long, from the RSM answer (`None` when there is no such page, or nothing to
/// anchor it on).
pub fn outbox_links(
    cursor: &OutboxCursor,
    rsm: &RsmResult,
    got: usize,
    max: usize,
) -> (Option<OutboxCursor>, Option<OutboxCursor>) {
    let (Some(oldest), Some(newest)) = (&rsm.first, &rsm.last) else {
        return (None, None);
    };
    let older = match rsm.first_index {
        Some(index) => index > 0,
        None => got >= max && *cursor != OutboxCursor::Last,
    };
    let newer = match (rsm.count, rsm.first_index) {
        (Some(count), Some(index)) => index.saturating_add(got) < count,
        _ => *cursor != OutboxCursor::First,
    };
    (
        older.then(|| OutboxCursor::Before(oldest.clone())),
        newer.then(|| OutboxCursor::After(newest.clone())),
    )
}

/// The [`ObjectSource`] of the HTTP side backed by the XMPP side: item URLs are the blog entries
/// (read by the component, so only what the node's access model lets it read is served), the outbox
/// is an `OrderedCollection` whose pages are XEP-0059 pages of the blog node, newest first (see
/// [`OutboxCursor`]), `totalItems` from the RSM count.
#[derive(Debug, Clone)]
pub struct XmppObjects {
    conn: ComponentConnection,
    scheme: GatewayScheme,
    page_size: usize,
}

impl XmppObjects {
    /// Objects read through `conn`, named by `scheme`.
    pub fn new(conn: ComponentConnection, scheme: GatewayScheme) -> Self {
        Self {
            conn,
            scheme,
            page_size: OUTBOX_PAGE_SIZE,
        }
    }

    /// Outbox pages of `size` entries (1 to 100).
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.clamp(1, 100);
        self
    }

    fn node_of(target: &XmppTarget) -> (Jid, String) {
        (
            target.jid.clone().into(),
            target
                .node
                .clone()
                .unwrap_or_else(|| NS_MICROBLOG.to_owned()),
        )
    }

    /// One RSM page of a blog node: its items and the RSM answer. A service that ignores RSM sent
    /// every item: the page is cut from them here, the same way.
    async fn rsm_page(
        &self,
        service: &Jid,
        node: &str,
        rsm: RsmRequest,
    ) -> Option<(Vec<xmpp_social::pubsub::Item>, RsmResult)> {
        let query = ItemsQuery {
            rsm: Some(rsm.clone()),
            ..ItemsQuery::default()
        };
        let page = match self.conn.get_items(Some(service), node, &query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::info!(error = %e, %node, ?rsm, "cannot read a page of a blog node");
                return None;
            }
        };
        if let Some(result) = page.rsm {
            return Some((page.items, result));
        }
        let ids: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
        let cut = crate::virtual_node::page_of(&ids, &rsm).ok()?;
        let items: Vec<_> = page
            .items
            .into_iter()
            .skip(cut.start)
            .take(cut.end - cut.start)
            .collect();
        let result = RsmResult {
            first: items.first().map(|i| i.id.clone()),
            first_index: Some(cut.start),
            last: items.last().map(|i| i.id.clone()),
            count: Some(cut.count),
        };
        Some((items, result))
    }
}

impl ObjectSource for XmppObjects {
    fn item<'a>(
        &'a self,
        _handle: &'a str,
        target: &'a XmppTarget,
        id: &'a str,
    ) -> BoxFuture<'a, Option<Value>> {
        Box::pin(async move {
            let (service, node) = Self::node_of(target);
            let blog_item = self
                .conn
                .entry(Some(&service), Some(&node), id)
                .await
                .ok()?;
            let item = ItemRef::new(service, node, id);
            let note = convert::entry_to_note(
                &blog_item.entry,
                &item,
                &self.scheme,
                &NoteOptions::default(),
            )
            .ok()?;
            Some(vocab::to_json(&note))
        })
    }

    fn outbox<'a>(
        &'a self,
        handle: &'a str,
        target: &'a XmppTarget,
        page: Option<&'a str>,
    ) -> BoxFuture<'a, Option<Value>> {
        Box::pin(async move {
            let outbox = self
                .scheme
                .config()
                .layout
                .actor_url(ActorEndpoint::Outbox, handle)
                .ok()?;
            let (service, node) = Self::node_of(target);
            let page_url = |c: &OutboxCursor| format!("{outbox}?page={}", c.to_query());
            let Some(raw) = page else {
                let (_, rsm) = self.rsm_page(&service, &node, RsmRequest::first(1)).await?;
                let mut collection = serde_json::json!({
                    "@context": vocab::AS_CONTEXT,
                    "id": outbox,
                    "type": "OrderedCollection",
                    "first": page_url(&OutboxCursor::First),
                    "last": page_url(&OutboxCursor::Last),
                });
                if let Some(count) = rsm.count {
                    collection["totalItems"] = count.into();
                }
                return Some(collection);
            };
            let cursor = OutboxCursor::parse(raw);
            let (items, rsm) = self
                .rsm_page(&service, &node, cursor.rsm(self.page_size))
                .await?;
            let (next, prev) = outbox_links(&cursor, &rsm, items.len(), self.page_size);
            let entries: Vec<(ItemRef, Entry)> = items
                .into_iter()
                .rev()
                .filter_map(|item| {
                    let entry = Entry::try_from(item.payload.as_ref()?).ok()?;
                    Some((ItemRef::new(service.clone(), node.clone(), item.id), entry))
                })
                .collect();
            let page = convert::note::outbox_page(
                &outbox,
                &page_url(&cursor),
                &entries,
                next.as_ref().map(page_url),
                prev.as_ref().map(page_url),
                &self.scheme,
                &NoteOptions::default(),
            );
            let mut json = vocab::to_json(&page);
            if let (Some(count), Value::Object(map)) = (rsm.count, &mut json) {
                map.insert("totalItems".into(), count.into());
            }
            Some(json)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn scheme() -> GatewayScheme {
        let config = HttpConfig::new(
            "http://127.0.0.1:8080/_ap",
            "localhost",
            "ap.localhost",
            None,
        )
        .unwrap();
        GatewayScheme::new(config, BareJid::new("ap.localhost").unwrap())
    }

    #[test]
    fn virtual_jids() {
        let s = scheme();
        let jid = s.virtual_jid("http://127.0.0.1:4000/users/fed").unwrap();
        assert_eq!(jid.as_str(), "fed\\40127.0.0.1\\3a4000@ap.localhost");
        assert_eq!(s.remote_address(&jid).unwrap(), "fed@127.0.0.1:4000");
        let alice = s
            .jid_for_actor("http://127.0.0.1:8080/_ap/actor/alice@localhost")
            .unwrap();
        assert_eq!(alice.as_str(), "alice@localhost");
    }

    #[test]
    fn a_retracted_repeat_is_undone() {
        let s = scheme();
        let original = ItemRef::new(
            BareJid::new("bob@localhost").unwrap().into(),
            NS_MICROBLOG,
            "orig",
        );
        let repeat_item = ItemRef::new(
            BareJid::new("alice@localhost").unwrap().into(),
            NS_MICROBLOG,
            "rep",
        );
        let repeat = Entry::repeat_of(&Entry::default(), &original);
        let effects = plan_published(&s, &repeat_item, &repeat, false).unwrap();
        let Some(Effect::RememberRepeat { item, announce }) = effects.first() else {
            panic!("{effects:?}")
        };
        assert_eq!(item, &repeat_item);
        assert_eq!(announce["type"], "Announce");
        let effects = plan_retracted(&s, &repeat_item, Some(announce.clone()));
        let [Effect::DeliverToFollowers { signer, activity }] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(signer, "alice@localhost");
        assert_eq!(activity["type"], "Undo");
        assert_eq!(activity["object"]["id"], announce["id"]);
        assert!(activity["object"].get("@context").is_none());
        // Without a recorded Announce, a retraction is a Delete.
        let effects = plan_retracted(&s, &repeat_item, None);
        let [Effect::DeliverToFollowers { activity, .. }] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(activity["type"], "Delete");
    }

    #[test]
    fn outbox_cursors() {
        for c in [
            OutboxCursor::First,
            OutboxCursor::Last,
            OutboxCursor::After("a b&c=d/é".into()),
            OutboxCursor::Before("x:y".into()),
        ] {
            assert_eq!(OutboxCursor::parse(&c.to_query()), c);
        }
        assert_eq!(OutboxCursor::parse("1"), OutboxCursor::First);
        assert_eq!(OutboxCursor::parse("after:"), OutboxCursor::First);
        let long = format!("after:{}", "x".repeat(MAX_CURSOR_ID + 1));
        assert_eq!(OutboxCursor::parse(&long), OutboxCursor::First);
        assert_eq!(
            OutboxCursor::After("i".into()).rsm(3),
            RsmRequest::after(3, "i")
        );
    }

    #[test]
    fn outbox_page_links() {
        let rsm = |index, count| RsmResult {
            first: Some("old".into()),
            first_index: index,
            last: Some("new".into()),
            count,
        };
        let older = Some(OutboxCursor::Before("old".into()));
        let newer = Some(OutboxCursor::After("new".into()));
        let first = OutboxCursor::First;
        // With count and index: exact. The first page is the node's last RSM page.
        assert_eq!(
            outbox_links(&first, &rsm(Some(4), Some(7)), 3, 3),
            (older.clone(), None)
        );
        assert_eq!(
            outbox_links(&first, &rsm(Some(1), Some(7)), 3, 3),
            (older.clone(), newer.clone())
        );
        assert_eq!(
            outbox_links(&first, &rsm(Some(0), Some(7)), 1, 3),
            (None, newer.clone())
        );
        // Without: a full page may have an older one; any page but the first a newer one.
        let before = OutboxCursor::Before("x".into());
        assert_eq!(
            outbox_links(&before, &rsm(None, None), 3, 3),
            (older, newer)
        );
        // An empty page links nowhere.
        assert_eq!(
            outbox_links(&before, &RsmResult::default(), 0, 3),
            (None, None)
        );
    }

    #[test]
    fn unfollow_undoes_the_same_follow() {
        let s = scheme();
        let me = "http://127.0.0.1:8080/_ap/actor/bob@localhost";
        let them = "http://127.0.0.1:4000/users/fed";
        let follow = follow_activity(&s, me, them);
        let undo = unfollow_activity(&s, me, them);
        assert_eq!(undo["type"], "Undo");
        assert_eq!(undo["actor"], me);
        assert_eq!(undo["object"], follow);
    }

    #[test]
    fn only_the_publisher_edits_or_retracts() {
        let fed = BareJid::new("fed\\40h@ap.localhost").unwrap();
        let other = BareJid::new("eve\\40h@ap.localhost").unwrap();
        let mine = (fed.to_string(), NS_MICROBLOG.to_owned(), "ap-1".to_owned());
        assert!(may_publish(None, &fed, "ap-1"));
        assert!(may_publish(Some(&mine), &fed, "ap-1"));
        assert!(!may_publish(Some(&mine), &other, "ap-1"));
        assert!(may_retract(Some(&mine), &fed, "ap-1"));
        assert!(!may_retract(Some(&mine), &other, "ap-1"));
        assert!(!may_retract(Some(&mine), &fed, "ap-2"));
        assert!(!may_retract(None, &fed, "ap-1"));
    }

    #[test]
    fn items_round_trip() {
        let s = scheme();
        let item = ItemRef::new(
            BareJid::new("alice@localhost").unwrap().into(),
            NS_MICROBLOG,
            "hello-1",
        );
        let url = s.object_url(&item);
        assert_eq!(
            url,
            "http://127.0.0.1:8080/_ap/item/alice@localhost/hello-1"
        );
        assert_eq!(s.item_for_object(&url).unwrap(), item);
        let remote = s.item_for_object("http://127.0.0.1:4000/notes/1").unwrap();
        assert_eq!(remote.service.as_str(), "ap.localhost");
    }
}
