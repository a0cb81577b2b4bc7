//! XEP-0470 attachments <-> `Like` / `EmojiReact` and their `Undo`.
//!
//! `<noticed/>` is a `Like`; each emoji of `<reactions/>` is an `EmojiReact` with the emoji in
//! `content` (Pleroma, Akkoma, Misskey). Misskey also sends reactions as a `Like` with `content`
//! (or `_misskey_reaction`): those read as reactions. Activity ids are derived from (kind, target,
//! actor, emoji) through [`UrlScheme::activity_id`], so an `Undo` names the activity it withdraws
//! without any storage. Custom emojis (`:name:` with an `Emoji` tag) are not XEP-0470 reactions and
//! are refused as [`super::Unsupported`].

use jid::BareJid;
use xmpp_social::attachments::{check_reaction, Attachments, Noticed, Reactions};
use xmpp_social::microblog::ItemRef;

use super::{AttachmentChange, ConvertError, Incoming, UrlScheme};
use crate::vocab::{Activity, ActivityKind, AnyObject, ObjectRef};

fn like(target: &str, actor: &str, scheme: &(impl UrlScheme + ?Sized)) -> Activity {
    let id = scheme.activity_id("like", target, actor, "");
    Activity::new(
        ActivityKind::Like,
        Some(id),
        actor,
        Some(ObjectRef::Id(target.to_owned())),
    )
}

fn emoji_react(
    target: &str,
    actor: &str,
    emoji: &str,
    scheme: &(impl UrlScheme + ?Sized),
) -> Activity {
    let id = scheme.activity_id("emojireact", target, actor, emoji);
    let mut a = Activity::new(
        ActivityKind::EmojiReact,
        Some(id),
        actor,
        Some(ObjectRef::Id(target.to_owned())),
    );
    a.content = Some(emoji.to_owned());
    a
}

fn undo(inner: Activity, scheme: &(impl UrlScheme + ?Sized)) -> Activity {
    let actor = inner.actor.clone();
    let id = scheme.activity_id("undo", inner.id.as_deref().unwrap_or_default(), &actor, "");
    let mut u = Activity::new(ActivityKind::Undo, Some(id), actor, None);
    u.to = inner.to.clone();
    u.cc = inner.cc.clone();
    u.object = Some(ObjectRef::embed(AnyObject::Activity(Box::new(inner))));
    u
}

/// The activities for a change of `by`'s XEP-0470 attachments on `target`, from `old` (what was
/// published before, `None` if nothing) to `new` (`None` when retracted): `Like` / `Undo(Like)` for
/// `<noticed/>`, `EmojiReact` / `Undo(EmojiReact)` per emoji added / removed.
///
/// `target_author` (the target's actor) is put in `to`, as Mastodon addresses likes.
pub fn attachments_to_activities<S: UrlScheme + ?Sized>(
    by: &BareJid,
    target: &ItemRef,
    target_author: Option<&str>,
    old: Option<&Attachments>,
    new: Option<&Attachments>,
    scheme: &S,
) -> Vec<Activity> {
    let actor = scheme.actor_for_jid(by);
    let object = scheme.object_url(target);
    let address = |mut a: Activity| {
        if let Some(author) = target_author {
            a.to = vec![author.to_owned()];
        }
        a
    };
    let mut out = Vec::new();
    let was_noticed = old.is_some_and(Attachments::is_noticed);
    let is_noticed = new.is_some_and(Attachments::is_noticed);
    if is_noticed && !was_noticed {
        out.push(address(like(&object, &actor, scheme)));
    } else if was_noticed && !is_noticed {
        out.push(undo(address(like(&object, &actor, scheme)), scheme));
    }
    let old_emojis = old.map(Attachments::emojis).unwrap_or_default();
    let new_emojis = new.map(Attachments::emojis).unwrap_or_default();
    for e in new_emojis.iter().filter(|e| !old_emojis.contains(e)) {
        out.push(address(emoji_react(&object, &actor, e, scheme)));
    }
    for e in old_emojis.iter().filter(|e| !new_emojis.contains(e)) {
        out.push(undo(
            address(emoji_react(&object, &actor, e, scheme)),
            scheme,
        ));
    }
    out
}

/// Reads a `Like` / `EmojiReact` (withdrawn when `undone`) into an [`Incoming::Attachment`].
pub fn reaction_from_activity<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
    undone: bool,
) -> Result<Incoming, ConvertError> {
    let object = activity
        .object_id()
        .ok_or(ConvertError::Missing("reaction object"))?;
    let target = scheme
        .item_for_object(object)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "object",
            id: object.to_owned(),
        })?;
    let by = scheme
        .jid_for_actor(&activity.actor)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "actor",
            id: activity.actor.clone(),
        })?;
    let emoji = activity
        .content
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let change = match (&activity.kind, emoji) {
        (ActivityKind::Like, None) => {
            if undone {
                AttachmentChange::Unnotice
            } else {
                AttachmentChange::Notice
            }
        }
        (ActivityKind::Like | ActivityKind::EmojiReact, Some(e)) => {
            // Custom emojis (`:blobcat:`) have no XEP-0470 form.
            let Ok(emoji) = check_reaction(e) else {
                return Ok(super::unsupported(
                    activity.kind.as_str(),
                    "reaction is not a single Unicode emoji",
                ));
            };
            if undone {
                AttachmentChange::Unreact(emoji)
            } else {
                AttachmentChange::React(emoji)
            }
        }
        (ActivityKind::EmojiReact, None) => {
            return Err(ConvertError::Missing("EmojiReact content"))
        }
        (other, _) => {
            return Ok(super::unsupported(other.as_str(), "not a reaction"));
        }
    };
    Ok(Incoming::Attachment { target, by, change })
}

/// Applies a change to the attachments `by` has on a target (what is already published, or empty):
/// the payload to publish next. Unknown attachments are kept; `timestamp` is the time to stamp new
/// attachments with.
pub fn apply_reaction(
    current: Option<&Attachments>,
    change: &AttachmentChange,
    timestamp: chrono::DateTime<chrono::FixedOffset>,
) -> Attachments {
    let mut a = current.cloned().unwrap_or_default();
    match change {
        AttachmentChange::Notice => {
            if a.noticed.is_none() {
                a.noticed = Some(Noticed {
                    timestamp: Some(timestamp),
                });
            }
        }
        AttachmentChange::Unnotice => a.noticed = None,
        AttachmentChange::React(e) => {
            let r = a.reactions.get_or_insert_with(Reactions::default);
            if !r.emojis.contains(e) {
                r.emojis.push(e.clone());
                r.timestamp = Some(timestamp);
            }
        }
        AttachmentChange::Unreact(e) => {
            if let Some(r) = a.reactions.as_mut() {
                r.emojis.retain(|x| x != e);
                r.timestamp = Some(timestamp);
                if r.emojis.is_empty() {
                    a.reactions = None;
                }
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::convert::test_scheme::{item, jid, TestScheme};
    use crate::convert::{incoming_bytes, Unsupported};
    use crate::vocab::{self, to_vec};
    use chrono::DateTime;

    fn ts() -> chrono::DateTime<chrono::FixedOffset> {
        DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z").unwrap()
    }

    #[test]
    fn outgoing_like_and_reactions() {
        let me = jid("alice@example.org");
        let target = item("bob\\40mastodon.example@ap.example.org", "111");
        let new = apply_reaction(None, &AttachmentChange::Notice, ts());
        let new = apply_reaction(Some(&new), &AttachmentChange::React("👍".into()), ts());
        let acts = attachments_to_activities(
            &me,
            &target,
            Some("https://mastodon.example/users/bob"),
            None,
            Some(&new),
            &TestScheme,
        );
        assert_eq!(acts.len(), 2);
        assert_eq!(acts[0].kind, ActivityKind::Like);
        assert_eq!(
            acts[0].actor,
            "https://ap.example.org/_ap/actor/alice@example.org"
        );
        assert_eq!(
            acts[0].object_id(),
            Some("https://mastodon.example/users/bob/statuses/111")
        );
        assert_eq!(acts[0].to, vec!["https://mastodon.example/users/bob"]);
        assert_eq!(acts[1].kind, ActivityKind::EmojiReact);
        assert_eq!(acts[1].content.as_deref(), Some("👍"));

        // Remove the like, swap the emoji: Undo(Like), EmojiReact 🎉, Undo(EmojiReact 👍).
        let newer = apply_reaction(Some(&new), &AttachmentChange::Unnotice, ts());
        let newer = apply_reaction(Some(&newer), &AttachmentChange::React("🎉".into()), ts());
        let newer = apply_reaction(Some(&newer), &AttachmentChange::Unreact("👍".into()), ts());
        let acts2 =
            attachments_to_activities(&me, &target, None, Some(&new), Some(&newer), &TestScheme);
        let kinds: Vec<_> = acts2.iter().map(|a| a.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                ActivityKind::Undo,
                ActivityKind::EmojiReact,
                ActivityKind::Undo
            ]
        );
        // The Undo embeds the very activity sent before (same id).
        let Some(AnyObject::Activity(undone)) = acts2[0].embedded_object() else {
            panic!()
        };
        assert_eq!(undone.id, acts[0].id);
        let Some(AnyObject::Activity(undone)) = acts2[2].embedded_object() else {
            panic!()
        };
        assert_eq!(undone.id, acts[1].id);
        // Retraction of the whole item undoes what is left.
        let acts3 = attachments_to_activities(&me, &target, None, Some(&newer), None, &TestScheme);
        assert_eq!(acts3.len(), 1);
        assert_eq!(acts3[0].kind, ActivityKind::Undo);
        // No change, no activity.
        assert!(attachments_to_activities(
            &me,
            &target,
            None,
            Some(&newer),
            Some(&newer),
            &TestScheme
        )
        .is_empty());
    }

    #[test]
    fn incoming_reactions_round_trip() {
        // What we send, read back by the other side's mapping (our scheme maps both ways).
        let me = jid("alice@example.org");
        let target = item("alice@example.org", "hello-a1b2");
        let new = apply_reaction(None, &AttachmentChange::Notice, ts());
        let new = apply_reaction(Some(&new), &AttachmentChange::React("🔥".into()), ts());
        let acts = attachments_to_activities(&me, &target, None, None, Some(&new), &TestScheme);
        let mut rebuilt: Option<Attachments> = None;
        for a in &acts {
            let bytes = to_vec(a);
            let Incoming::Attachment {
                target: t,
                by,
                change,
            } = incoming_bytes(&bytes, &TestScheme).unwrap()
            else {
                panic!()
            };
            assert_eq!(t, target);
            assert_eq!(by, me);
            rebuilt = Some(apply_reaction(rebuilt.as_ref(), &change, ts()));
        }
        assert_eq!(rebuilt.as_ref(), Some(&new));
        // And the undos take it all back.
        let undos = attachments_to_activities(&me, &target, None, Some(&new), None, &TestScheme);
        for a in &undos {
            let Incoming::Attachment { change, .. } =
                incoming_bytes(&to_vec(a), &TestScheme).unwrap()
            else {
                panic!()
            };
            rebuilt = Some(apply_reaction(rebuilt.as_ref(), &change, ts()));
        }
        assert!(rebuilt.unwrap().is_empty());
    }

    #[test]
    fn pleroma_and_misskey_reactions() {
        let inc = incoming_bytes(
            crate::vocab::tests::PLEROMA_EMOJI_REACT.as_bytes(),
            &TestScheme,
        )
        .unwrap();
        assert_eq!(
            inc,
            Incoming::Attachment {
                target: item("alice@example.org", "hello-a1b2"),
                by: jid("carol\\40pleroma.example@ap.example.org"),
                change: AttachmentChange::React("🔥".into()),
            }
        );
        // Misskey: a Like with the reaction in content.
        let misskey = br#"{"type": "Like", "id": "https://misskey.example/likes/1",
            "actor": "https://misskey.example/users/dave", "content": "\u2764\ufe0f", "_misskey_reaction": "\u2764\ufe0f",
            "object": "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2"}"#;
        let Incoming::Attachment { change, .. } = incoming_bytes(misskey, &TestScheme).unwrap()
        else {
            panic!()
        };
        assert_eq!(change, AttachmentChange::React("❤️".into()));
        // A custom emoji is unsupported, not an error.
        let custom = br#"{"type": "EmojiReact", "id": "https://p.example/a/1", "actor": "https://p.example/users/e",
            "content": ":blobcat:", "object": "https://ap.example.org/_ap/item/alice@example.org/x",
            "tag": [{"type": "Emoji", "name": ":blobcat:", "icon": {"type": "Image", "url": "https://p.example/e.png"}}]}"#;
        assert!(matches!(
            incoming_bytes(custom, &TestScheme).unwrap(),
            Incoming::Unsupported(Unsupported { .. })
        ));
        // Undo by id only: the driver must look it up.
        let undo = br#"{"type": "Undo", "id": "https://p.example/u/1", "actor": "https://p.example/users/e",
            "object": "https://p.example/a/1"}"#;
        assert_eq!(
            incoming_bytes(undo, &TestScheme).unwrap(),
            Incoming::UndoById {
                actor: "https://p.example/users/e".into(),
                activity: "https://p.example/a/1".into()
            }
        );
        // An Undo of someone else's Like is refused.
        let forged = br#"{"type": "Undo", "actor": "https://p.example/users/mallory",
            "object": {"type": "Like", "actor": "https://p.example/users/e", "object": "https://ap.example.org/_ap/item/alice@example.org/x"}}"#;
        assert!(matches!(
            incoming_bytes(forged, &TestScheme),
            Err(ConvertError::Invalid { .. })
        ));
        // A Like of something the gateway does not know.
        let unknown = br#"{"type": "Like", "actor": "https://p.example/users/e", "object": "https://elsewhere.example/x"}"#;
        assert!(matches!(
            incoming_bytes(unknown, &TestScheme),
            Err(ConvertError::Unmapped { .. })
        ));
        let _ = vocab::PUBLIC;
    }
}
