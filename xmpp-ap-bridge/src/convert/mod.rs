//! XMPP <-> ActivityPub conversions: pure functions, no I/O, one module per mapping.
//!
//! | XMPP | ActivityPub | module |
//! |---|---|---|
//! | XEP-0277 entry published / republished / retracted | `Create` / `Update` (`Note` or `Article`) / `Delete` (`Tombstone`) | [`note`] |
//! | XHTML `<content>` (+ text), `xml:lang` | `content` (sanitised HTML), `contentMap` | [`content`] |
//! | `<category term>` | `Hashtag` | [`tags`] |
//! | XEP-0372 mention `<reference>` | `Mention` tag (+ `cc`) | [`tags`] |
//! | `thr:in-reply-to` + comments node of the parent | `inReplyTo` | [`note`] |
//! | `rel='enclosure'` links | `Document`/`Image`/`Video`/`Audio` attachments | [`note`] |
//! | XEP-0277 repeat (`rel='via'` link) | `Announce` | [`note`] |
//! | XEP-0470 `<noticed/>` / `<reactions/>` (added / removed) | `Like` / `EmojiReact` (and their `Undo`) | [`reactions`] |
//! | XEP-0465 public subscription (added / withdrawn), subscribers list | `Follow` / `Undo(Follow)`, `Accept`/`Reject`, followers/following collections | [`follow`] |
//! | XEP-0471 event, RSVP | Mobilizon `Event`, `Join`/`Leave` | [`event`] |
//!
//! The caller supplies the URL layout and the identity mapping through [`UrlScheme`] (a parameter,
//! never global state). Incoming activities become [`Incoming`] values: what to do on the XMPP side,
//! as data; the driver performs it. An activity the gateway does not map is an
//! [`Incoming::Unsupported`] outcome, not an error and never a panic.

pub mod content;
pub mod event;
pub mod follow;
pub mod note;
pub mod reactions;
pub mod tags;

use jid::BareJid;
use xmpp_social::microblog::{Entry, ItemRef, NodeRef};

use crate::vocab::{self, Activity, ActivityKind, AnyObject, VocabError};

pub use content::{html_to_xhtml, sanitize_html, xhtml_to_html};
pub use event::{event_to_object, object_to_event, rsvp_from_activity, rsvp_to_activity};
pub use follow::{
    accept_follow, followers_collection, following_collection, incoming_follow, reject_follow,
    subscription_to_activity,
};
pub use note::{
    announce_to_repeat, delete_activity, entry_to_activity, entry_to_note, note_to_entry,
    outbox_page, repeat_entry, repeat_to_announce, unrepeat_activity, NoteOptions,
};
pub use reactions::{apply_reaction, attachments_to_activities, reaction_from_activity};
pub use tags::{Reference, ReferenceType};

/// How the gateway names things on the ActivityPub side, and how it finds XMPP things back from
/// ActivityPub ids.
///
/// The gateway implements it with its handle mapping and URL layout (e.g. Libervia's
/// `/_ap/actor/{handle}`, `/_ap/item/{handle}/{id}`). For items and actors that are really on the
/// ActivityPub side (mirrored by the gateway as XMPP JIDs and nodes), the forward methods must return
/// the original ActivityPub ids and the reverse methods the gateway's JIDs, nodes and items.
pub trait UrlScheme {
    /// The actor that publishes on `node`: the owner of a PEP blog (`node.service` is then the
    /// account), the actor of a pubsub blog node, or the remote actor a gateway node mirrors.
    fn actor_for_node(&self, node: &NodeRef) -> String;
    /// The actor of an XMPP account (or, for a gateway JID, the remote actor it stands for).
    fn actor_for_jid(&self, jid: &BareJid) -> String;
    /// The id of a pubsub item as an ActivityPub object.
    fn object_url(&self, item: &ItemRef) -> String;
    /// The followers collection of one of the gateway's actors.
    fn followers_url(&self, actor: &str) -> String;
    /// An id for an activity the gateway emits. It must be stable for the same arguments (so that an
    /// `Undo` can name the activity it withdraws without storage): `kind` is the activity type in
    /// lower case, `object` the object's id, `by` the actor and `salt` what makes repeated activities
    /// distinct (an update's date, an emoji), empty when there is nothing.
    fn activity_id(&self, kind: &str, object: &str, by: &str, salt: &str) -> String;

    /// The XMPP JID standing for an actor: the account for one of ours, the gateway JID for a remote
    /// actor. `None` if the id cannot be mapped.
    fn jid_for_actor(&self, actor: &str) -> Option<BareJid>;
    /// The blog node of an actor (a gateway node for a remote actor).
    fn node_for_actor(&self, actor: &str) -> Option<NodeRef>;
    /// The pubsub item an object id stands for (ours, or the gateway's mirror of a remote object).
    fn item_for_object(&self, object: &str) -> Option<ItemRef>;
    /// The comments node of an item, if known (incoming replies are published there).
    fn comments_node(&self, _parent: &ItemRef) -> Option<NodeRef> {
        None
    }
    /// The item a comments node belongs to, if known (outgoing comments without
    /// `thr:in-reply-to` get their `inReplyTo` from it).
    fn parent_of_comments_node(&self, _node: &NodeRef) -> Option<ItemRef> {
        None
    }
}

/// Why a conversion could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The ActivityStreams document was not readable.
    #[error(transparent)]
    Vocab(#[from] VocabError),
    /// An XMPP value was not valid.
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::ParseError),
    /// A property the mapping needs is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A value is present but not usable.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The property.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An id the [`UrlScheme`] cannot map to XMPP.
    #[error("{what} {id:?} cannot be mapped to XMPP")]
    Unmapped {
        /// What kind of id (`actor`, `object`).
        what: &'static str,
        /// The id.
        id: String,
    },
    /// Content over a size limit.
    #[error("{what} too large: {size} > {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// An activity the gateway does not map, with the reason: the outcome for unknown or unhandled
/// input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The activity's type, and the object's type when that is what is not handled
    /// (`Create/ChatMessage`).
    pub kind: String,
    /// Why it is not handled.
    pub reason: &'static str,
}

/// A XEP-0470 change one incoming activity asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentChange {
    /// `<noticed/>` attached (`Like`).
    Notice,
    /// `<noticed/>` removed (`Undo(Like)`).
    Unnotice,
    /// An emoji added (`EmojiReact`, Misskey's `Like` with `content`).
    React(String),
    /// An emoji removed.
    Unreact(String),
}

/// A post to publish on the XMPP side.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingPost {
    /// Where: the author's (gateway) blog node, or the comments node of the post it answers.
    pub node: NodeRef,
    /// The item id.
    pub item_id: String,
    /// The entry.
    pub entry: Entry,
    /// The XMPP item it answers, if it answers one the gateway knows.
    pub in_reply_to: Option<ItemRef>,
    /// Whether the object is addressed to the public collection. A post that is not (followers-only,
    /// direct) must not land on an open node: the driver publishes it where only its audience can
    /// read it, or delivers it as a message.
    pub public: bool,
    /// The object's audience (`to` and `cc`, public collection included).
    pub audience: Vec<String>,
}

/// What an incoming activity means on the XMPP side.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// `Create`: publish a new item.
    Publish(IncomingPost),
    /// `Update`: publish the item again (same id).
    Republish(IncomingPost),
    /// `Delete` of an object: retract the item.
    Retract {
        /// The item.
        item: ItemRef,
    },
    /// `Delete` of an actor by itself: forget the actor (its gateway JID, subscriptions...).
    DeleteActor {
        /// The actor.
        actor: String,
    },
    /// `Announce`: publish a repeat on the announcer's gateway node. When the announced object was
    /// not embedded, `entry` is `None`: fetch the object, then build it with
    /// [`note::repeat_entry`].
    Repeat {
        /// The announcer's gateway node.
        node: NodeRef,
        /// The repeat's item id.
        item_id: String,
        /// The announced object's id.
        object: String,
        /// The XMPP item of the announced object, if the gateway knows it.
        object_item: Option<ItemRef>,
        /// The repeat entry, if the object was embedded.
        entry: Option<Box<Entry>>,
    },
    /// `Undo(Announce)`: retract the repeat.
    Unrepeat {
        /// The announcer's gateway node.
        node: NodeRef,
        /// The repeat's item id.
        item_id: String,
    },
    /// `Like`, `EmojiReact` and their `Undo`: change the XEP-0470 attachments of `by` on `target`.
    Attachment {
        /// The item reacted to.
        target: ItemRef,
        /// Who reacts (a gateway JID).
        by: BareJid,
        /// The change.
        change: AttachmentChange,
    },
    /// `Follow` of one of the gateway's actors: add a XEP-0465 public subscription, then answer
    /// with [`accept_follow`] or [`reject_follow`].
    Follow(follow::FollowRequest),
    /// `Undo(Follow)`: remove the subscription.
    Unfollow(follow::FollowRequest),
    /// `Accept` of a `Follow` the gateway sent.
    FollowAccepted {
        /// The actor who accepted (the followed one).
        actor: String,
        /// The id of the accepted `Follow`.
        follow: Option<String>,
    },
    /// `Reject` of a `Follow` the gateway sent (or the removal of a follower).
    FollowRejected {
        /// The actor who rejected.
        actor: String,
        /// The id of the rejected `Follow`.
        follow: Option<String>,
    },
    /// `Join`/`Leave` of an event: an RSVP.
    Rsvp(event::IncomingRsvp),
    /// An `Undo` naming its activity by id only: the driver must look up what that activity was.
    UndoById {
        /// The actor.
        actor: String,
        /// The withdrawn activity's id.
        activity: String,
    },
    /// Not mapped (see [`Unsupported`]).
    Unsupported(Unsupported),
}

/// The origin (`scheme://host[:port]`, lower case) of an absolute URL.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    // Drop userinfo: `https://evil@host` has the origin of `host`.
    let host = authority.rsplit('@').next()?;
    if scheme.is_empty() || host.is_empty() {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    ))
}

/// Whether two URLs have the same origin (both must have one).
pub fn same_origin(a: &str, b: &str) -> bool {
    matches!((origin(a), origin(b)), (Some(x), Some(y)) if x == y)
}

fn unsupported(kind: impl Into<String>, reason: &'static str) -> Incoming {
    Incoming::Unsupported(Unsupported {
        kind: kind.into(),
        reason,
    })
}

/// Maps any incoming document to what it means on the XMPP side.
///
/// Only activities are acted upon; a bare object, actor or collection is
/// [`Incoming::Unsupported`]. The signature and origin checks (the signer is the activity's actor,
/// the object's id has the actor's origin...) are the caller's job before this is called.
pub fn incoming<S: UrlScheme + ?Sized>(
    doc: &AnyObject,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    match doc {
        AnyObject::Activity(a) => incoming_activity(a, scheme),
        other => Ok(unsupported(other.type_name(), "not an activity")),
    }
}

/// Maps an incoming activity (see [`incoming`]).
pub fn incoming_activity<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    match &activity.kind {
        ActivityKind::Create | ActivityKind::Update => note::incoming_create(activity, scheme),
        ActivityKind::Delete => note::incoming_delete(activity, scheme),
        ActivityKind::Announce => note::incoming_announce(activity, scheme),
        ActivityKind::Like | ActivityKind::EmojiReact => {
            reactions::reaction_from_activity(activity, scheme, false)
        }
        ActivityKind::Follow => follow::incoming_follow(activity, scheme, false),
        ActivityKind::Accept | ActivityKind::Reject => follow::incoming_answer(activity, scheme),
        ActivityKind::Join | ActivityKind::Leave => event::rsvp_from_activity(activity, scheme),
        ActivityKind::Undo => incoming_undo(activity, scheme),
        other => Ok(unsupported(other.as_str(), "activity type not mapped")),
    }
}

fn incoming_undo<S: UrlScheme + ?Sized>(
    undo: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let Some(AnyObject::Activity(inner)) = undo.embedded_object() else {
        return match undo.object_id() {
            Some(id) => Ok(Incoming::UndoById {
                actor: undo.actor.clone(),
                activity: id.to_owned(),
            }),
            None => Err(ConvertError::Missing("Undo object")),
        };
    };
    // Only the actor of an activity may withdraw it.
    if inner.actor != undo.actor {
        return Err(ConvertError::Invalid {
            field: "Undo",
            reason: "the undone activity has another actor".into(),
        });
    }
    match &inner.kind {
        ActivityKind::Like | ActivityKind::EmojiReact => {
            reactions::reaction_from_activity(inner, scheme, true)
        }
        ActivityKind::Follow => follow::incoming_follow(inner, scheme, true),
        ActivityKind::Announce => note::incoming_unannounce(inner, scheme),
        ActivityKind::Join => {
            let mut leave = (**inner).clone();
            leave.kind = ActivityKind::Leave;
            event::rsvp_from_activity(&leave, scheme)
        }
        other => Ok(unsupported(
            format!("Undo/{}", other.as_str()),
            "undone activity type not mapped",
        )),
    }
}

/// Parses then maps a document received from the network: [`vocab::parse`] then [`incoming`].
pub fn incoming_bytes<S: UrlScheme + ?Sized>(
    bytes: &[u8],
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let doc = vocab::parse(bytes)?;
    incoming(&doc, scheme)
}

#[cfg(test)]
pub(crate) mod test_scheme;
