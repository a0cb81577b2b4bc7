//! Follows: XEP-0465 public subscriptions <-> `Follow` / `Undo(Follow)` / `Accept` / `Reject`, and
//! the followers / following collections from the public subscribers and subscriptions lists.
//!
//! An ActivityPub actor following one of the gateway's actors is, on the XMPP side, the actor's
//! gateway JID subscribing to the followed blog node: a [`PublicSubscription`] in that JID's public
//! subscriptions list and a [`PublicSubscriber`] in the node's public subscribers list (XEP-0465).
//! An XMPP account publishing a public subscription to a gateway node follows the remote actor.

use jid::BareJid;
use xmpp_social::microblog::NodeRef;
use xmpp_social::pps::{PublicSubscriber, PublicSubscription};
use xmpp_social::pubsub::SubscriptionState;

use super::{ConvertError, Incoming, UrlScheme};
use crate::vocab::{Activity, ActivityKind, AnyObject, Collection, CollectionKind, ObjectRef};

/// A follow relation read from a `Follow` (or its `Undo`).
#[derive(Debug, Clone, PartialEq)]
pub struct FollowRequest {
    /// The `Follow` activity's id (to answer with `Accept`/`Reject`).
    pub id: Option<String>,
    /// The follower's actor id.
    pub follower_actor: String,
    /// The follower's (gateway) JID.
    pub follower: BareJid,
    /// The followed actor's id.
    pub followed_actor: String,
    /// The followed blog node.
    pub followed: NodeRef,
}

impl FollowRequest {
    /// The item of the follower's public subscriptions list.
    pub fn subscription(&self) -> PublicSubscription {
        PublicSubscription::new(self.followed.service.clone(), self.followed.node.clone())
    }

    /// The item of the followed node's public subscribers list.
    pub fn subscriber(&self) -> PublicSubscriber {
        PublicSubscriber::new(self.follower.clone().into())
    }
}

/// Reads a `Follow` (withdrawn when `undone`) into [`Incoming::Follow`] / [`Incoming::Unfollow`].
pub fn incoming_follow<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
    undone: bool,
) -> Result<Incoming, ConvertError> {
    let followed_actor = activity
        .object_id()
        .ok_or(ConvertError::Missing("Follow object"))?
        .to_owned();
    let followed =
        scheme
            .node_for_actor(&followed_actor)
            .ok_or_else(|| ConvertError::Unmapped {
                what: "actor",
                id: followed_actor.clone(),
            })?;
    let follower = scheme
        .jid_for_actor(&activity.actor)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "actor",
            id: activity.actor.clone(),
        })?;
    let req = FollowRequest {
        id: activity.id.clone(),
        follower_actor: activity.actor.clone(),
        follower,
        followed_actor,
        followed,
    };
    Ok(if undone {
        Incoming::Unfollow(req)
    } else {
        Incoming::Follow(req)
    })
}

fn answer<S: UrlScheme + ?Sized>(kind: ActivityKind, follow: &Activity, scheme: &S) -> Activity {
    let actor = follow.object_id().unwrap_or_default().to_owned();
    let follow_id = follow.id.clone().unwrap_or_default();
    let id = scheme.activity_id(&kind.as_str().to_ascii_lowercase(), &follow_id, &actor, "");
    let mut a = Activity::new(kind, Some(id), actor, None);
    a.to = vec![follow.actor.clone()];
    // Embed the Follow: Mastodon matches the answer on its id, others on its content.
    let mut embedded = follow.clone();
    embedded.context = None;
    a.object = Some(ObjectRef::embed(AnyObject::Activity(Box::new(embedded))));
    a
}

/// The `Accept` of a `Follow` of one of the gateway's actors (sent by the followed actor).
pub fn accept_follow<S: UrlScheme + ?Sized>(follow: &Activity, scheme: &S) -> Activity {
    answer(ActivityKind::Accept, follow, scheme)
}

/// The `Reject` of a `Follow`.
pub fn reject_follow<S: UrlScheme + ?Sized>(follow: &Activity, scheme: &S) -> Activity {
    answer(ActivityKind::Reject, follow, scheme)
}

/// `Accept` / `Reject` -> [`Incoming::FollowAccepted`] / [`Incoming::FollowRejected`] (the object
/// is the `Follow`, embedded or by id). Answers to other activities (a `Join`) are RSVP answers:
/// see [`super::event`].
pub(crate) fn incoming_answer<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let follow = match activity.embedded_object() {
        Some(AnyObject::Activity(inner)) if inner.kind == ActivityKind::Follow => {
            // Only the followed actor may answer.
            if inner.object_id() != Some(activity.actor.as_str()) {
                return Err(ConvertError::Invalid {
                    field: "object",
                    reason: "the answered Follow is not addressed to the answering actor".into(),
                });
            }
            inner.id.clone()
        }
        Some(AnyObject::Activity(inner)) if inner.kind == ActivityKind::Join => {
            return super::event::incoming_join_answer(activity, inner, scheme);
        }
        Some(other) => {
            return Ok(super::unsupported(
                format!("{}/{}", activity.kind.as_str(), other.type_name()),
                "answer to an activity that is not a Follow or a Join",
            ))
        }
        None => activity.object_id().map(str::to_owned),
    };
    let actor = activity.actor.clone();
    Ok(if activity.kind == ActivityKind::Accept {
        Incoming::FollowAccepted { actor, follow }
    } else {
        Incoming::FollowRejected { actor, follow }
    })
}

/// The activity for a change in `user`'s public subscriptions list: `Follow` of the node's actor
/// when subscribed, `Undo(Follow)` when the entry says `none` or was retracted (`withdrawn`).
/// `None` for pending or unconfigured entries.
pub fn subscription_to_activity<S: UrlScheme + ?Sized>(
    user: &BareJid,
    subscription: &PublicSubscription,
    withdrawn: bool,
    scheme: &S,
) -> Option<Activity> {
    let me = scheme.actor_for_jid(user);
    let target = scheme.actor_for_node(&NodeRef::new(
        subscription.service.clone(),
        subscription.node.clone(),
    ));
    let id = scheme.activity_id("follow", &target, &me, "");
    let mut follow = Activity::new(
        ActivityKind::Follow,
        Some(id),
        me.clone(),
        Some(ObjectRef::Id(target.clone())),
    );
    follow.to = vec![target];
    match (withdrawn, subscription.state) {
        (false, SubscriptionState::Subscribed) => Some(follow),
        (true, _) | (false, SubscriptionState::None) => {
            let undo_id =
                scheme.activity_id("undo", follow.id.as_deref().unwrap_or_default(), &me, "");
            let mut undo = Activity::new(ActivityKind::Undo, Some(undo_id), me, None);
            undo.to = follow.to.clone();
            undo.object = Some(ObjectRef::embed(AnyObject::Activity(Box::new(follow))));
            Some(undo)
        }
        _ => None,
    }
}

/// A collection of actors, whole or one page: `page` `None` gives the `OrderedCollection` (with
/// `totalItems` and a `first` page link), `Some(n)` (from 1) the `OrderedCollectionPage` `n` of
/// `page_size` items with `next`/`prev` links. Page ids are `<id>?page=<n>`.
pub fn actors_collection(
    id: &str,
    actors: &[String],
    page: Option<usize>,
    page_size: usize,
) -> Collection {
    let page_size = page_size.max(1);
    let page_id = |n: usize| format!("{id}?page={n}");
    match page {
        None => {
            let mut c = Collection::new(CollectionKind::OrderedCollection, Some(id.to_owned()));
            c.total_items = Some(actors.len() as u64);
            if !actors.is_empty() {
                c.first = Some(ObjectRef::Id(page_id(1)));
                c.last = Some(page_id(actors.len().div_ceil(page_size)));
            }
            c
        }
        Some(n) => {
            let n = n.max(1);
            let mut c = Collection::new(CollectionKind::OrderedCollectionPage, Some(page_id(n)));
            c.part_of = Some(id.to_owned());
            c.total_items = Some(actors.len() as u64);
            let start = (n - 1).saturating_mul(page_size);
            c.ordered_items = actors
                .iter()
                .skip(start)
                .take(page_size)
                .cloned()
                .map(ObjectRef::Id)
                .collect();
            if start.saturating_add(page_size) < actors.len() {
                c.next = Some(page_id(n + 1));
            }
            if n > 1 {
                c.prev = Some(page_id(n - 1));
            }
            c
        }
    }
}

/// The followers collection of `actor` (one of the gateway's) from its node's public subscribers
/// (only `subscribed` ones).
pub fn followers_collection<S: UrlScheme + ?Sized>(
    actor: &str,
    subscribers: &[PublicSubscriber],
    page: Option<usize>,
    page_size: usize,
    scheme: &S,
) -> Collection {
    let actors: Vec<String> = subscribers
        .iter()
        .filter(|s| s.state == SubscriptionState::Subscribed)
        .map(|s| scheme.actor_for_jid(&s.jid.to_bare()))
        .collect();
    actors_collection(&scheme.followers_url(actor), &actors, page, page_size)
}

/// The following collection (its id given) from a user's public subscriptions (only `subscribed`
/// ones): the actors of the followed nodes.
pub fn following_collection<S: UrlScheme + ?Sized>(
    id: &str,
    subscriptions: &[PublicSubscription],
    page: Option<usize>,
    page_size: usize,
    scheme: &S,
) -> Collection {
    let actors: Vec<String> = subscriptions
        .iter()
        .filter(|s| s.state == SubscriptionState::Subscribed)
        .map(|s| scheme.actor_for_node(&NodeRef::new(s.service.clone(), s.node.clone())))
        .collect();
    actors_collection(id, &actors, page, page_size)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::convert::test_scheme::{blog, jid, TestScheme};
    use crate::convert::{incoming_bytes, Unsupported};
    use crate::vocab::to_vec;

    const FOLLOW: &[u8] = br#"{"@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://mastodon.example/8a1d", "type": "Follow",
        "actor": "https://mastodon.example/users/bob",
        "object": "https://ap.example.org/_ap/actor/alice@example.org"}"#;

    #[test]
    fn incoming_follow_accept_and_undo() {
        let Incoming::Follow(req) = incoming_bytes(FOLLOW, &TestScheme).unwrap() else {
            panic!()
        };
        assert_eq!(req.follower, jid("bob\\40mastodon.example@ap.example.org"));
        assert_eq!(req.followed, blog("alice@example.org"));
        assert_eq!(req.subscription().node, "urn:xmpp:microblog:0");
        assert_eq!(req.subscriber().jid.to_bare(), req.follower);
        let AnyObject::Activity(follow) = crate::vocab::parse(FOLLOW).unwrap() else {
            panic!()
        };
        let accept = accept_follow(&follow, &TestScheme);
        assert_eq!(accept.kind, ActivityKind::Accept);
        assert_eq!(
            accept.actor,
            "https://ap.example.org/_ap/actor/alice@example.org"
        );
        assert_eq!(accept.to, vec!["https://mastodon.example/users/bob"]);
        assert_eq!(accept.object_id(), Some("https://mastodon.example/8a1d"));
        assert_eq!(
            reject_follow(&follow, &TestScheme).kind,
            ActivityKind::Reject
        );
        // Undo(Follow) by the follower.
        let undo = br#"{"type": "Undo", "id": "https://mastodon.example/8a1d/undo",
            "actor": "https://mastodon.example/users/bob",
            "object": {"id": "https://mastodon.example/8a1d", "type": "Follow",
              "actor": "https://mastodon.example/users/bob",
              "object": "https://ap.example.org/_ap/actor/alice@example.org"}}"#;
        let Incoming::Unfollow(req2) = incoming_bytes(undo, &TestScheme).unwrap() else {
            panic!()
        };
        assert_eq!(req2.follower, req.follower);
    }

    #[test]
    fn outgoing_follow_and_its_answers() {
        let me = jid("alice@example.org");
        let sub = PublicSubscription::new(
            jid("bob\\40mastodon.example@ap.example.org").into(),
            "urn:xmpp:microblog:0",
        );
        let follow = subscription_to_activity(&me, &sub, false, &TestScheme).unwrap();
        assert_eq!(follow.kind, ActivityKind::Follow);
        assert_eq!(
            follow.object_id(),
            Some("https://mastodon.example/users/bob")
        );
        // Mastodon's Accept embeds our Follow.
        let accept = format!(
            r#"{{"type": "Accept", "id": "https://mastodon.example/users/bob#accepts/follows/1",
               "actor": "https://mastodon.example/users/bob", "object": {}}}"#,
            String::from_utf8(to_vec(&follow)).unwrap()
        );
        assert_eq!(
            incoming_bytes(accept.as_bytes(), &TestScheme).unwrap(),
            Incoming::FollowAccepted {
                actor: "https://mastodon.example/users/bob".into(),
                follow: follow.id.clone()
            }
        );
        // An Accept by someone else than the followed actor is refused.
        let forged = accept.replace(
            r#""actor": "https://mastodon.example/users/bob", "object""#,
            r#""actor": "https://evil.example/users/mallory", "object""#,
        );
        assert!(matches!(
            incoming_bytes(forged.as_bytes(), &TestScheme),
            Err(ConvertError::Invalid { .. })
        ));
        // Reject by id.
        let reject = br#"{"type": "Reject", "actor": "https://mastodon.example/users/bob", "object": "https://x.example/f/1"}"#;
        assert!(matches!(
            incoming_bytes(reject, &TestScheme).unwrap(),
            Incoming::FollowRejected {
                follow: Some(_),
                ..
            }
        ));
        // Withdrawn: Undo(Follow) embedding the same Follow.
        let undo = subscription_to_activity(&me, &sub, true, &TestScheme).unwrap();
        assert_eq!(undo.kind, ActivityKind::Undo);
        let Some(AnyObject::Activity(inner)) = undo.embedded_object() else {
            panic!()
        };
        assert_eq!(inner.id, follow.id);
        let mut none = sub.clone();
        none.state = SubscriptionState::None;
        assert_eq!(
            subscription_to_activity(&me, &none, false, &TestScheme)
                .unwrap()
                .kind,
            ActivityKind::Undo
        );
        let mut pending = sub;
        pending.state = SubscriptionState::Pending;
        assert!(subscription_to_activity(&me, &pending, false, &TestScheme).is_none());
        // An Accept of something else.
        let odd = br#"{"type": "Accept", "actor": "https://m.example/users/b", "object": {"type": "Note", "id": "https://m.example/n"}}"#;
        assert!(matches!(
            incoming_bytes(odd, &TestScheme).unwrap(),
            Incoming::Unsupported(Unsupported { .. })
        ));
    }

    #[test]
    fn collections() {
        let subscribers: Vec<PublicSubscriber> = (0..25)
            .map(|i| PublicSubscriber::new(jid(&format!("u{i}@example.org")).into()))
            .chain([PublicSubscriber {
                jid: jid("gone@example.org").into(),
                state: SubscriptionState::None,
            }])
            .collect();
        let actor = "https://ap.example.org/_ap/actor/alice@example.org";
        let whole = followers_collection(actor, &subscribers, None, 10, &TestScheme);
        assert_eq!(
            whole.id.as_deref(),
            Some("https://ap.example.org/_ap/followers/alice@example.org")
        );
        assert_eq!(whole.total_items, Some(25));
        assert_eq!(
            whole.last.as_deref(),
            Some("https://ap.example.org/_ap/followers/alice@example.org?page=3")
        );
        let p3 = followers_collection(actor, &subscribers, Some(3), 10, &TestScheme);
        assert_eq!(p3.ordered_items.len(), 5);
        assert!(p3.next.is_none());
        assert!(p3.prev.is_some());
        let p1 = followers_collection(actor, &subscribers, Some(1), 10, &TestScheme);
        assert_eq!(
            p1.ordered_items[0].id(),
            Some("https://ap.example.org/_ap/actor/u0@example.org")
        );
        assert!(p1.next.is_some());
        // Far past the end: an empty page, no panic.
        let far = followers_collection(actor, &subscribers, Some(usize::MAX), 10, &TestScheme);
        assert!(far.ordered_items.is_empty());
        let subs = vec![PublicSubscription::new(
            jid("bob\\40mastodon.example@ap.example.org").into(),
            "urn:xmpp:microblog:0",
        )];
        let following = following_collection(
            "https://ap.example.org/_ap/following/alice@example.org",
            &subs,
            Some(1),
            10,
            &TestScheme,
        );
        assert_eq!(
            following.ordered_items[0].id(),
            Some("https://mastodon.example/users/bob")
        );
    }
}
