#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

/// A Create(Note) shaped like Mastodon 4.x writes it: mentions, hashtags, a media attachment,
/// contentMap, the compact public collection in `cc`.
pub(crate) const MASTODON_CREATE: &str = r##"{
  "@context": ["https://www.w3.org/ns/activitystreams",
    {"ostatus": "http://ostatus.org#", "atomUri": "ostatus:atomUri", "sensitive": "as:sensitive",
     "toot": "http://joinmastodon.org/ns#", "Hashtag": "as:Hashtag", "blurhash": "toot:blurhash",
     "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"}}],
  "id": "https://mastodon.example/users/bob/statuses/111/activity",
  "type": "Create",
  "actor": "https://mastodon.example/users/bob",
  "published": "2024-03-01T10:00:00Z",
  "to": ["https://www.w3.org/ns/activitystreams#Public"],
  "cc": ["https://mastodon.example/users/bob/followers", "https://ap.example.org/_ap/actor/alice@example.org"],
  "object": {
    "id": "https://mastodon.example/users/bob/statuses/111",
    "type": "Note",
    "summary": null,
    "inReplyTo": null,
    "published": "2024-03-01T10:00:00Z",
    "url": "https://mastodon.example/@bob/111",
    "attributedTo": "https://mastodon.example/users/bob",
    "to": ["https://www.w3.org/ns/activitystreams#Public"],
    "cc": ["https://mastodon.example/users/bob/followers", "https://ap.example.org/_ap/actor/alice@example.org"],
    "sensitive": false,
    "atomUri": "https://mastodon.example/users/bob/statuses/111",
    "conversation": "tag:mastodon.example,2024-03-01:objectId=1:objectType=Conversation",
    "content": "<p>Hello <span class=\"h-card\" translate=\"no\"><a href=\"https://ap.example.org/_ap/actor/alice@example.org\" class=\"u-url mention\">@<span>alice</span></a></span> <a href=\"https://mastodon.example/tags/xmpp\" class=\"mention hashtag\" rel=\"tag\">#<span>xmpp</span></a></p>",
    "contentMap": {"en": "<p>Hello @alice #xmpp</p>"},
    "attachment": [{"type": "Document", "mediaType": "image/png",
      "url": "https://files.mastodon.example/media/1.png", "name": "a cat", "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH",
      "focalPoint": [0.0, 0.0], "width": 640, "height": 480}],
    "tag": [
      {"type": "Mention", "href": "https://ap.example.org/_ap/actor/alice@example.org", "name": "@alice@example.org"},
      {"type": "Hashtag", "href": "https://mastodon.example/tags/xmpp", "name": "#xmpp"}],
    "replies": {"id": "https://mastodon.example/users/bob/statuses/111/replies", "type": "Collection",
      "first": {"type": "CollectionPage", "next": "https://mastodon.example/users/bob/statuses/111/replies?page=true",
        "partOf": "https://mastodon.example/users/bob/statuses/111/replies", "items": []}}
  },
  "signature": {"type": "RsaSignature2017", "creator": "https://mastodon.example/users/bob#main-key",
    "created": "2024-03-01T10:00:01Z", "signatureValue": "abc"}
}"##;

/// Pleroma/Akkoma `EmojiReact`.
pub(crate) const PLEROMA_EMOJI_REACT: &str = r##"{
  "@context": ["https://www.w3.org/ns/activitystreams", "https://pleroma.example/schemas/litepub-0.1.jsonld",
    {"@language": "und"}],
  "actor": "https://pleroma.example/users/carol",
  "cc": ["https://pleroma.example/users/carol/followers"],
  "content": "🔥",
  "context": "https://pleroma.example/contexts/abc",
  "id": "https://pleroma.example/activities/7d1c",
  "object": "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2",
  "to": ["https://ap.example.org/_ap/actor/alice@example.org"],
  "type": "EmojiReact"
}"##;

/// A Mobilizon `Event` (as embedded in its Create).
pub(crate) const MOBILIZON_EVENT: &str = r##"{
  "@context": ["https://www.w3.org/ns/activitystreams", "https://litepub.social/litepub/context.jsonld",
    {"mz": "https://joinmobilizon.org/ns#", "ical": "http://www.w3.org/2002/12/cal/ical#",
     "joinMode": {"@id": "mz:joinMode", "@type": "mz:joinModeType"}}],
  "type": "Event",
  "id": "https://mobilizon.example/events/9f2e",
  "url": "https://mobilizon.example/events/9f2e",
  "uuid": "9f2e5d4c-0000-4000-8000-000000000001",
  "name": "XMPP sprint",
  "content": "<p>Hacking on <b>XMPP</b> all weekend.</p>",
  "mediaType": "text/html",
  "attributedTo": "https://mobilizon.example/@libre_group",
  "startTime": "2024-05-04T09:00:00+02:00",
  "endTime": "2024-05-05T18:00:00+02:00",
  "timezone": "Europe/Paris",
  "joinMode": "free",
  "participantCount": 12,
  "maximumAttendeeCapacity": 30,
  "remainingAttendeeCapacity": 18,
  "anonymousParticipationEnabled": false,
  "repliesModerationOption": "allow_all",
  "isOnline": false,
  "ical:status": "CONFIRMED",
  "draft": false,
  "category": "MEETING",
  "inLanguage": "en",
  "contacts": [],
  "location": {"type": "Place", "name": "Hackerspace",
    "latitude": 48.85, "longitude": 2.35,
    "address": {"type": "PostalAddress", "streetAddress": "1 rue de la Paix", "addressLocality": "Paris",
      "postalCode": "75002", "addressCountry": "France"}},
  "tag": [{"type": "Hashtag", "name": "#xmpp", "href": "https://mobilizon.example/tags/xmpp"}],
  "to": ["https://www.w3.org/ns/activitystreams#Public"],
  "cc": ["https://mobilizon.example/@libre_group/followers"],
  "published": "2024-04-01T12:00:00Z",
  "updated": "2024-04-02T12:00:00Z"
}"##;

/// A Mastodon Person.
pub(crate) const MASTODON_PERSON: &str = r##"{
  "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
  "id": "https://mastodon.example/users/bob",
  "type": "Person",
  "following": "https://mastodon.example/users/bob/following",
  "followers": "https://mastodon.example/users/bob/followers",
  "inbox": "https://mastodon.example/users/bob/inbox",
  "outbox": "https://mastodon.example/users/bob/outbox",
  "preferredUsername": "bob",
  "name": "Bob",
  "summary": "<p>bio</p>",
  "url": "https://mastodon.example/@bob",
  "manuallyApprovesFollowers": false,
  "discoverable": true,
  "published": "2022-11-05T00:00:00Z",
  "publicKey": {"id": "https://mastodon.example/users/bob#main-key",
    "owner": "https://mastodon.example/users/bob",
    "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"},
  "attachment": [{"type": "PropertyValue", "name": "XMPP", "value": "bob@example.org"}],
  "endpoints": {"sharedInbox": "https://mastodon.example/inbox"},
  "icon": {"type": "Image", "mediaType": "image/png", "url": "https://files.mastodon.example/avatar.png"}
}"##;

#[test]
fn mastodon_create_note() {
    let doc = parse(MASTODON_CREATE.as_bytes()).unwrap();
    let AnyObject::Activity(create) = doc else {
        panic!("not an activity")
    };
    assert_eq!(create.kind, ActivityKind::Create);
    assert_eq!(create.actor, "https://mastodon.example/users/bob");
    let Some(AnyObject::Object(note)) = create.embedded_object() else {
        panic!("no note")
    };
    assert_eq!(note.kind, ObjectKind::Note);
    assert!(note.is_public());
    assert_eq!(note.author(), Some("https://mastodon.example/users/bob"));
    assert_eq!(
        note.url,
        vec!["https://mastodon.example/@bob/111".to_owned()]
    );
    assert_eq!(
        note.content_map.get("en").unwrap(),
        "<p>Hello @alice #xmpp</p>"
    );
    assert_eq!(note.tag.len(), 2);
    assert_eq!(note.tag[0].kind, TagKind::Mention);
    assert_eq!(note.tag[1].kind, TagKind::Hashtag);
    assert_eq!(note.tag[1].name.as_deref(), Some("#xmpp"));
    assert_eq!(note.attachment[0].kind, AttachmentKind::Document);
    assert_eq!(note.attachment[0].width, Some(640));
    assert_eq!(note.attachment[0].name.as_deref(), Some("a cat"));
    assert_eq!(
        note.replies.as_deref(),
        Some("https://mastodon.example/users/bob/statuses/111/replies")
    );
    assert_eq!(note.sensitive, Some(false));
    assert!(note.in_reply_to.is_none());
}

#[test]
fn pleroma_emoji_react() {
    let AnyObject::Activity(react) = parse(PLEROMA_EMOJI_REACT.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(react.kind, ActivityKind::EmojiReact);
    assert_eq!(react.content.as_deref(), Some("🔥"));
    assert_eq!(
        react.object,
        Some(ObjectRef::Id(
            "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2".into()
        ))
    );
}

#[test]
fn mobilizon_event() {
    let AnyObject::Object(ev) = parse(MOBILIZON_EVENT.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(ev.kind, ObjectKind::Event);
    assert_eq!(ev.join_mode.as_deref(), Some("free"));
    assert_eq!(ev.participant_count, Some(12));
    assert_eq!(ev.maximum_attendee_capacity, Some(30));
    assert_eq!(ev.ical_status.as_deref(), Some("CONFIRMED"));
    assert_eq!(ev.timezone.as_deref(), Some("Europe/Paris"));
    let place = ev.location.as_ref().unwrap();
    assert_eq!(place.name.as_deref(), Some("Hackerspace"));
    assert_eq!(place.latitude, Some(48.85));
    match place.address.as_ref().unwrap() {
        Address::Postal(p) => assert_eq!(p.address_locality.as_deref(), Some("Paris")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ev.start_time.unwrap().to_rfc3339(),
        "2024-05-04T09:00:00+02:00"
    );
}

#[test]
fn mastodon_person() {
    let actor: Actor = parse_as(MASTODON_PERSON.as_bytes()).unwrap();
    assert_eq!(actor.kind, ActorKind::Person);
    assert_eq!(actor.preferred_username.as_deref(), Some("bob"));
    assert_eq!(actor.delivery_inbox(), "https://mastodon.example/inbox");
    let key = actor.public_key.as_ref().unwrap();
    assert_eq!(key.owner, actor.id);
    assert!(key.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(actor.attachment[0].kind, AttachmentKind::PropertyValue);
    assert_eq!(
        actor.attachment[0].value.as_deref(),
        Some("bob@example.org")
    );
    // Through the dispatcher too.
    assert!(matches!(
        parse(MASTODON_PERSON.as_bytes()).unwrap(),
        AnyObject::Actor(_)
    ));
}

#[test]
fn actor_without_inbox_is_a_shape_error() {
    let err = parse(br#"{"type": "Person", "id": "https://x.example/u"}"#).unwrap_err();
    assert!(
        matches!(err, VocabError::Shape(ref m) if m.contains("inbox")),
        "{err}"
    );
}

#[test]
fn lenient_shapes() {
    // Single values where arrays are usual, arrays where single values are usual, embedded actors,
    // Link objects as URLs, the compact public collection, type arrays, publicKey arrays.
    let doc = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": ["Create", "schema:Thing"],
        "actor": {"type": "Person", "id": "https://a.example/u", "inbox": "https://a.example/i"},
        "to": "as:Public",
        "object": {
            "type": "Note", "id": "https://a.example/n",
            "attributedTo": [{"type": "Person", "id": "https://a.example/u"}, "https://a.example/v"],
            "url": {"type": "Link", "href": "https://a.example/@u/n", "mediaType": "text/html"},
            "tag": {"type": "Hashtag", "name": "#one"},
            "attachment": {"type": "Image", "url": [{"type": "Link", "href": "https://a.example/1.jpg"}]},
            "inReplyTo": {"type": "Note", "id": "https://b.example/p"},
            "cc": "Public"
        }
    });
    let AnyObject::Activity(a) = parse_value(doc).unwrap() else {
        panic!()
    };
    assert_eq!(a.kind, ActivityKind::Create);
    assert_eq!(a.actor, "https://a.example/u");
    assert_eq!(a.to, vec![PUBLIC.to_owned()]);
    let Some(AnyObject::Object(n)) = a.embedded_object() else {
        panic!()
    };
    assert_eq!(
        n.attributed_to,
        vec!["https://a.example/u", "https://a.example/v"]
    );
    assert_eq!(n.url, vec!["https://a.example/@u/n"]);
    assert_eq!(n.tag[0].name.as_deref(), Some("#one"));
    assert_eq!(
        n.attachment[0].url.as_deref(),
        Some("https://a.example/1.jpg")
    );
    assert_eq!(n.in_reply_to.as_deref(), Some("https://b.example/p"));
    assert!(n.is_public());

    let actor: Actor = serde_json::from_value(json!({
        "type": "Service", "id": "https://a.example/bot", "inbox": "https://a.example/bot/inbox",
        "publicKey": [{"id": "https://a.example/bot#k", "owner": "https://a.example/bot", "publicKeyPem": "PEM"}]
    }))
    .unwrap();
    assert_eq!(actor.public_key.unwrap().id, "https://a.example/bot#k");
}

#[test]
fn context_forms_are_tolerated_and_output_is_canonical() {
    for ctx in [
        json!("https://www.w3.org/ns/activitystreams"),
        json!(["https://www.w3.org/ns/activitystreams", {"Hashtag": "as:Hashtag"}]),
        json!({"@vocab": "https://www.w3.org/ns/activitystreams"}),
    ] {
        let doc =
            json!({"@context": ctx, "type": "Note", "id": "https://a.example/n", "content": "x"});
        let obj = parse_value(doc).unwrap();
        let out = to_json(&obj);
        assert_eq!(out["@context"], canonical_context());
        assert_eq!(out["type"], "Note");
        assert_eq!(out["content"], "x");
    }
}

#[test]
fn unknown_types() {
    let AnyObject::Unknown(u) =
        parse(br#"{"type": "ChatMessage", "id": "https://x.example/c/1"}"#).unwrap()
    else {
        panic!()
    };
    assert_eq!(u.kind, "ChatMessage");
    assert_eq!(u.id.as_deref(), Some("https://x.example/c/1"));
    // An activity of a type we do not model still parses as an activity.
    let AnyObject::Activity(a) = parse(
        br#"{"type": "Arrive", "id": "https://x.example/a", "actor": "https://x.example/u", "object": "https://x.example/o"}"#,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(a.kind, ActivityKind::Other("Arrive".into()));
    // Unknown tags and attachments are kept by name, not errors.
    let AnyObject::Object(n) = parse(
        br##"{"type": "Note", "tag": [{"type": "Weird"}, {"type": "Hashtag", "name": "#ok"}, 42],
             "attachment": [{"type": "Thing", "url": "https://x.example/f"}]}"##,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(n.tag.len(), 2);
    assert_eq!(n.tag[0].kind, TagKind::Other("Weird".into()));
    assert_eq!(n.attachment[0].kind, AttachmentKind::Other("Thing".into()));
}

#[test]
fn hostile_documents() {
    // Not JSON, not an object, no type.
    assert!(matches!(parse(b"{"), Err(VocabError::Json(_))));
    assert!(matches!(parse(b"[1,2]"), Err(VocabError::NoType(_))));
    assert!(matches!(parse(b"{}"), Err(VocabError::NoType(_))));
    assert!(matches!(
        parse(br#"{"type": 3}"#),
        Err(VocabError::NoType(_))
    ));
    // Too large.
    let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    assert!(matches!(
        parse(&big),
        Err(VocabError::TooLarge {
            what: "document",
            ..
        })
    ));
    let long = format!(
        r#"{{"type": "Note", "content": "{}"}}"#,
        "a".repeat(MAX_STRING_BYTES + 1)
    );
    assert!(matches!(
        parse(long.as_bytes()),
        Err(VocabError::TooLarge { what: "string", .. })
    ));
    // Too deep: within serde_json's limit (128) but beyond ours, and beyond serde_json's.
    for depth in [MAX_DEPTH + 5, 100_000] {
        let deep = format!(
            r#"{{"type": "Note", "content": {}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(parse(deep.as_bytes()).is_err(), "depth {depth}");
    }
    // Too many array elements / keys.
    let many = format!(
        r#"{{"type": "Note", "to": [{}"x"]}}"#,
        "\"x\",".repeat(MAX_ARRAY_LEN)
    );
    assert!(matches!(
        parse(many.as_bytes()),
        Err(VocabError::TooMany { .. })
    ));
    let keys: String = (0..=MAX_OBJECT_KEYS)
        .map(|i| format!(r#""k{i}": 1,"#))
        .collect();
    let wide = format!(r#"{{{keys} "type": "Note"}}"#);
    assert!(matches!(
        parse(wide.as_bytes()),
        Err(VocabError::TooMany { .. })
    ));
    // Present and wrong: a bad date.
    assert!(matches!(
        parse(br#"{"type": "Note", "published": "yesterday"}"#),
        Err(VocabError::Shape(_))
    ));
    // An activity without an actor.
    assert!(matches!(
        parse(br#"{"type": "Like", "object": "https://x.example/o"}"#),
        Err(VocabError::Shape(_))
    ));
}

#[test]
fn round_trip_of_written_documents() {
    for src in [
        MASTODON_CREATE,
        PLEROMA_EMOJI_REACT,
        MOBILIZON_EVENT,
        MASTODON_PERSON,
    ] {
        let first = parse(src.as_bytes()).unwrap();
        let bytes = to_vec(&first);
        let second = parse(&bytes).unwrap();
        // Contexts differ (canonical on output); everything else must be equal.
        assert_eq!(to_json(&first), to_json(&second));
    }
}

#[test]
fn collections() {
    let doc = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://a.example/u/outbox", "type": "OrderedCollection", "totalItems": "2",
        "first": {"type": "OrderedCollectionPage", "id": "https://a.example/u/outbox?page=1",
            "next": "https://a.example/u/outbox?page=2", "partOf": "https://a.example/u/outbox",
            "orderedItems": [
                {"type": "Announce", "id": "https://a.example/a/1", "actor": "https://a.example/u", "object": "https://b.example/n"},
                "https://a.example/a/2"]}
    });
    let AnyObject::Collection(c) = parse_value(doc).unwrap() else {
        panic!()
    };
    assert_eq!(c.total_items, Some(2));
    let Some(ObjectRef::Embedded(page)) = &c.first else {
        panic!()
    };
    let AnyObject::Collection(page) = page.as_ref() else {
        panic!()
    };
    assert_eq!(page.kind, CollectionKind::OrderedCollectionPage);
    assert_eq!(page.all_items().count(), 2);
    assert_eq!(page.ordered_items[1].id(), Some("https://a.example/a/2"));
}

#[test]
fn writes_one_author_as_a_string_and_no_hidden_audience() {
    let mut n = Object::new(ObjectKind::Note);
    n.attributed_to = vec!["https://a.example/u".into()];
    n.bcc = vec!["https://secret.example/x".into()];
    let v = to_json(&n);
    assert_eq!(v["attributedTo"], "https://a.example/u");
    assert!(v.get("bcc").is_none());
    assert!(v.get("tag").is_none());
}
