#![allow(clippy::unwrap_used)]

use super::*;
use crate::convert::tags::{Reference, NS_REFERENCE};
use crate::convert::test_scheme::{blog, item, jid, TestScheme, COMMENTS_SERVICE};
use crate::convert::{incoming_bytes, Unsupported};
use crate::vocab::{self, parse, to_vec, TagKind};
use xmpp_social::microblog::{comments_node_name, Xhtml};

fn date(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn alice_post() -> Entry {
    Entry::new()
        .with_id("hello-a1b2")
        .with_title("Hello fediverse")
        .with_xhtml(
            Xhtml::parse(r#"<p>Hello <a href="https://xmpp.org">XMPP</a> &amp; friends</p>"#)
                .unwrap(),
        )
        .with_author(Person::from_jid(
            &jid("alice@example.org").into(),
            Some("Alice".into()),
        ))
        .with_tag("xmpp")
        .with_tag("activitypub")
        .with_enclosure(
            "https://files.example.org/cat.png",
            Some("image/png".into()),
            Some(1234),
        )
        .with_language("en")
        .with_published(date("2024-03-01T10:00:00Z"))
        .with_updated(date("2024-03-01T10:00:00Z"))
}

fn unwrap_note(activity: &Activity) -> &Object {
    match activity.embedded_object() {
        Some(AnyObject::Object(o)) => o,
        other => panic!("{other:?}"),
    }
}

#[test]
fn microblog_post_becomes_a_note() {
    let entry = Entry::new_post("Just a short post about #xmpp", "")
        .with_author(Person::from_jid(&jid("alice@example.org").into(), None));
    let note = entry_to_note(
        &entry,
        &item("alice@example.org", "p1"),
        &TestScheme,
        &NoteOptions::default(),
    )
    .unwrap();
    assert_eq!(note.kind, ObjectKind::Note);
    assert_eq!(note.name, None);
    assert_eq!(
        note.content.as_deref(),
        Some("<p>Just a short post about #xmpp</p>")
    );
    assert_eq!(
        note.id.as_deref(),
        Some("https://ap.example.org/_ap/item/alice@example.org/p1")
    );
    assert_eq!(
        note.attributed_to,
        vec!["https://ap.example.org/_ap/actor/alice@example.org"]
    );
    assert_eq!(note.to, vec![PUBLIC]);
    assert_eq!(
        note.cc,
        vec!["https://ap.example.org/_ap/followers/alice@example.org"]
    );
}

#[test]
fn titled_post_becomes_an_article_in_create_and_update() {
    let entry = alice_post();
    let it = item("alice@example.org", "hello-a1b2");
    let create =
        entry_to_activity(&entry, &it, &TestScheme, &NoteOptions::default(), false).unwrap();
    assert_eq!(create.kind, ActivityKind::Create);
    assert_eq!(
        create.actor,
        "https://ap.example.org/_ap/actor/alice@example.org"
    );
    let note = unwrap_note(&create);
    assert_eq!(note.kind, ObjectKind::Article);
    assert_eq!(note.name.as_deref(), Some("Hello fediverse"));
    assert_eq!(
        note.content.as_deref(),
        Some(r#"<p>Hello <a href="https://xmpp.org">XMPP</a> &amp; friends</p>"#)
    );
    assert_eq!(note.content_map.get("en"), note.content.as_ref());
    assert_eq!(
        note.name_map.get("en").map(String::as_str),
        Some("Hello fediverse")
    );
    let tags: Vec<_> = note.tag.iter().map(|t| t.name.clone().unwrap()).collect();
    assert_eq!(tags, ["#xmpp", "#activitypub"]);
    assert_eq!(note.attachment.len(), 1);
    assert_eq!(
        note.attachment[0].url.as_deref(),
        Some("https://files.example.org/cat.png")
    );
    assert_eq!(note.attachment[0].media_type.as_deref(), Some("image/png"));
    assert_eq!(note.published, Some(date("2024-03-01T10:00:00Z")));
    assert_eq!(note.updated, None);
    assert_eq!(create.to, note.to);

    // An edit: Update, with `updated` and a distinct activity id.
    let edited = entry.clone().with_updated(date("2024-03-02T08:00:00Z"));
    let update =
        entry_to_activity(&edited, &it, &TestScheme, &NoteOptions::default(), true).unwrap();
    assert_eq!(update.kind, ActivityKind::Update);
    assert_ne!(update.id, create.id);
    assert_eq!(
        unwrap_note(&update).updated,
        Some(date("2024-03-02T08:00:00Z"))
    );

    // Followers-only.
    let private = entry_to_note(
        &entry,
        &it,
        &TestScheme,
        &NoteOptions {
            public: false,
            sensitive: true,
        },
    )
    .unwrap();
    assert!(!private.is_public());
    assert_eq!(private.sensitive, Some(true));
}

#[test]
fn entry_note_entry_round_trip() {
    let entry = alice_post();
    let it = item("alice@example.org", "hello-a1b2");
    let create =
        entry_to_activity(&entry, &it, &TestScheme, &NoteOptions::default(), false).unwrap();
    // Through JSON and back, as another gateway would see it.
    let AnyObject::Activity(read) = parse(&to_vec(&create)).unwrap() else {
        panic!()
    };
    let back = note_to_entry(unwrap_note(&read), &TestScheme).unwrap();
    assert_eq!(back.title, entry.title);
    assert_eq!(back.body_text(), entry.body_text());
    assert_eq!(back.body_xhtml(), entry.body_xhtml());
    assert_eq!(back.language, entry.language);
    assert_eq!(
        back.tags().collect::<Vec<_>>(),
        entry.tags().collect::<Vec<_>>()
    );
    assert_eq!(
        back.enclosures().map(|l| &l.href).collect::<Vec<_>>(),
        entry.enclosures().map(|l| &l.href).collect::<Vec<_>>()
    );
    assert_eq!(back.published, entry.published);
    assert_eq!(back.authors[0].jid(), entry.authors[0].jid());
    assert_eq!(
        back.id.as_deref(),
        Some("https://ap.example.org/_ap/item/alice@example.org/hello-a1b2")
    );
    back.validate_for_publish().unwrap();
    // And again to AP: the same object.
    let again = entry_to_note(&back, &it, &TestScheme, &NoteOptions::default()).unwrap();
    assert_eq!(&again, unwrap_note(&create));
}

#[test]
fn mastodon_note_to_entry() {
    let inc = incoming_bytes(crate::vocab::tests::MASTODON_CREATE.as_bytes(), &TestScheme).unwrap();
    let Incoming::Publish(post) = inc else {
        panic!("{inc:?}")
    };
    assert_eq!(post.node, blog("bob\\40mastodon.example@ap.example.org"));
    assert_eq!(post.item_id, "111");
    assert_eq!(post.in_reply_to, None);
    assert!(post.public);
    assert!(post
        .audience
        .contains(&"https://mastodon.example/users/bob/followers".to_owned()));
    let e = &post.entry;
    assert_eq!(e.title_text().as_deref(), Some("Hello @alice #xmpp"));
    // Links and mentions are markup worth keeping.
    let x = e.body_xhtml().unwrap();
    let mut xml = Vec::new();
    x.element().write_to(&mut xml).unwrap();
    let xml = String::from_utf8(xml).unwrap();
    assert!(
        xml.contains("href='https://mastodon.example/tags/xmpp'"),
        "{xml}"
    );
    assert_eq!(e.tags().collect::<Vec<_>>(), ["xmpp"]);
    assert_eq!(
        e.language.as_deref(),
        None,
        "content differs from contentMap's en value"
    );
    assert_eq!(
        e.authors[0].jid().unwrap().to_string(),
        "bob\\40mastodon.example@ap.example.org"
    );
    let refs: Vec<Reference> = e.extra.iter().filter_map(Reference::from_element).collect();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].mentioned_jid(), Some(jid("alice@example.org")));
    let enc: Vec<_> = e.enclosures().collect();
    assert_eq!(enc[0].href, "https://files.mastodon.example/media/1.png");
    assert_eq!(enc[0].title.as_deref(), Some("a cat"));
    assert!(e
        .links
        .iter()
        .any(|l| l.rel.as_deref() == Some("alternate")
            && l.href == "https://mastodon.example/@bob/111"));
    e.validate_for_publish().unwrap();
    // It serialises and parses as a XEP-0277 entry.
    let xml = e.to_xml_string().unwrap();
    assert_eq!(&Entry::from_xml_str(&xml).unwrap(), e);
    assert!(xml.contains(NS_REFERENCE));
}

#[test]
fn mentions_go_out_as_tags_and_cc() {
    let mut entry = Entry::new_post("hi @bob", "")
        .with_author(Person::from_jid(&jid("alice@example.org").into(), None));
    entry
        .extra
        .push(Reference::mention_of(&jid("bob\\40mastodon.example@ap.example.org")).to_element());
    let note = entry_to_note(
        &entry,
        &item("alice@example.org", "m"),
        &TestScheme,
        &NoteOptions::default(),
    )
    .unwrap();
    let mention = note
        .tag
        .iter()
        .find(|t| t.kind == TagKind::Mention)
        .unwrap();
    assert_eq!(
        mention.href.as_deref(),
        Some("https://mastodon.example/users/bob")
    );
    assert!(note
        .cc
        .contains(&"https://mastodon.example/users/bob".to_owned()));
}

#[test]
fn replies_both_ways() {
    // A remote reply to alice's post goes to the post's comments node.
    let reply =
        br#"{"type": "Create", "id": "https://mastodon.example/users/bob/statuses/222/activity",
        "actor": "https://mastodon.example/users/bob",
        "object": {"type": "Note", "id": "https://mastodon.example/users/bob/statuses/222",
          "attributedTo": "https://mastodon.example/users/bob",
          "inReplyTo": "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2",
          "content": "<p>nice!</p>", "to": "as:Public", "published": "2024-03-01T11:00:00Z"}}"#;
    let Incoming::Publish(post) = incoming_bytes(reply, &TestScheme).unwrap() else {
        panic!()
    };
    let parent = item("alice@example.org", "hello-a1b2");
    assert_eq!(post.in_reply_to.as_ref(), Some(&parent));
    assert_eq!(post.node.service.to_string(), COMMENTS_SERVICE);
    assert_eq!(post.node.node, comments_node_name("hello-a1b2"));
    assert_eq!(post.entry.reply_targets(), vec![parent.clone()]);
    assert_eq!(
        post.entry.in_reply_to[0].reference,
        "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2"
    );
    assert_eq!(post.entry.title_text().as_deref(), Some("nice!"));
    assert!(
        post.entry.content.is_empty(),
        "no markup worth an XHTML copy"
    );

    // A reply to a remote post the gateway does not map stays a reply by URL, on bob's node.
    let elsewhere = String::from_utf8(reply.to_vec()).unwrap().replace(
        "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2",
        "https://other.example/notes/9",
    );
    let Incoming::Publish(post) = incoming_bytes(elsewhere.as_bytes(), &TestScheme).unwrap() else {
        panic!()
    };
    assert_eq!(post.node, blog("bob\\40mastodon.example@ap.example.org"));
    assert_eq!(
        post.entry.in_reply_to[0].href.as_deref(),
        Some("https://other.example/notes/9")
    );

    // Outgoing: alice's comment on bob's (mirrored) post, with thr:in-reply-to.
    let bobs = item("bob\\40mastodon.example@ap.example.org", "111");
    let comment = Entry::new_post("agreed", "")
        .with_author(Person::from_jid(&jid("alice@example.org").into(), None))
        .with_in_reply_to(InReplyTo::to_item(&bobs, None));
    let comment_item = ItemRef::new(
        jid(COMMENTS_SERVICE).into(),
        comments_node_name("111"),
        "c1",
    );
    let note = entry_to_note(
        &comment,
        &comment_item,
        &TestScheme,
        &NoteOptions::default(),
    )
    .unwrap();
    assert_eq!(
        note.in_reply_to.as_deref(),
        Some("https://mastodon.example/users/bob/statuses/111")
    );
    assert_eq!(
        note.attributed_to,
        vec!["https://ap.example.org/_ap/actor/alice@example.org"]
    );
    // A comment without thr:in-reply-to gets it from its comments node.
    let bare = Entry::new_post("me too", "")
        .with_author(Person::from_jid(&jid("carol@example.org").into(), None));
    let node_item = ItemRef::new(
        jid(COMMENTS_SERVICE).into(),
        comments_node_name("hello-a1b2"),
        "c2",
    );
    let note = entry_to_note(&bare, &node_item, &TestScheme, &NoteOptions::default()).unwrap();
    assert_eq!(
        note.in_reply_to.as_deref(),
        Some("https://ap.example.org/_ap/item/alice@example.org/hello-a1b2")
    );
    assert_eq!(
        note.attributed_to,
        vec!["https://ap.example.org/_ap/actor/carol@example.org"]
    );
    // A comment without an author JID cannot be attributed.
    let anonymous = Entry::new_post("who?", "");
    assert!(matches!(
        entry_to_note(&anonymous, &node_item, &TestScheme, &NoteOptions::default()),
        Err(ConvertError::Missing(_))
    ));
}

#[test]
fn deletes_both_ways() {
    let it = item("alice@example.org", "hello-a1b2");
    let actor = "https://ap.example.org/_ap/actor/alice@example.org";
    let del = delete_activity(&it, actor, &TestScheme, &NoteOptions::default());
    assert_eq!(del.kind, ActivityKind::Delete);
    let Some(AnyObject::Tombstone(t)) = del.embedded_object() else {
        panic!()
    };
    assert_eq!(
        t.id.as_deref(),
        Some("https://ap.example.org/_ap/item/alice@example.org/hello-a1b2")
    );
    // Read back: a retraction of the same item.
    assert_eq!(
        incoming_bytes(&to_vec(&del), &TestScheme).unwrap(),
        Incoming::Retract { item: it }
    );
    // Mastodon's Delete with a Tombstone, and an actor deleting itself.
    let mdel = br#"{"type": "Delete", "actor": "https://mastodon.example/users/bob",
        "object": {"id": "https://mastodon.example/users/bob/statuses/111", "type": "Tombstone"}}"#;
    assert_eq!(
        incoming_bytes(mdel, &TestScheme).unwrap(),
        Incoming::Retract {
            item: item("bob\\40mastodon.example@ap.example.org", "111")
        }
    );
    let gone = br#"{"type": "Delete", "actor": "https://mastodon.example/users/bob", "object": "https://mastodon.example/users/bob"}"#;
    assert!(matches!(
        incoming_bytes(gone, &TestScheme).unwrap(),
        Incoming::DeleteActor { .. }
    ));
}

#[test]
fn repeats_both_ways() {
    // Alice repeats bob's mirrored post on her blog.
    let bobs_entry = Entry::new_post("bob's words", "")
        .with_id("https://mastodon.example/users/bob/statuses/111")
        .with_author(Person::from_jid(
            &jid("bob\\40mastodon.example@ap.example.org").into(),
            None,
        ));
    let original = item("bob\\40mastodon.example@ap.example.org", "111");
    let repeat = Entry::repeat_of(&bobs_entry, &original);
    let rep_item = item("alice@example.org", "rep1");
    let announce = entry_to_activity(
        &repeat,
        &rep_item,
        &TestScheme,
        &NoteOptions::default(),
        false,
    )
    .unwrap();
    assert_eq!(announce.kind, ActivityKind::Announce);
    assert_eq!(
        announce.actor,
        "https://ap.example.org/_ap/actor/alice@example.org"
    );
    assert_eq!(
        announce.object_id(),
        Some("https://mastodon.example/users/bob/statuses/111")
    );
    assert!(announce
        .cc
        .contains(&"https://mastodon.example/users/bob".to_owned()));
    let undo = unrepeat_activity(&repeat, &rep_item, &TestScheme, &NoteOptions::default()).unwrap();
    assert_eq!(undo.kind, ActivityKind::Undo);

    // Incoming Announce by id (Mastodon): the driver fetches the object.
    let boost = br#"{"type": "Announce", "id": "https://mastodon.example/users/bob/statuses/333/activity",
        "actor": "https://mastodon.example/users/bob", "published": "2024-03-03T00:00:00Z",
        "object": "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2", "to": "as:Public"}"#;
    let Incoming::Repeat {
        node,
        item_id,
        object,
        object_item,
        entry,
    } = incoming_bytes(boost, &TestScheme).unwrap()
    else {
        panic!()
    };
    assert_eq!(node, blog("bob\\40mastodon.example@ap.example.org"));
    assert!(item_id.starts_with("announce-"));
    assert_eq!(
        object,
        "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2"
    );
    assert_eq!(object_item, Some(item("alice@example.org", "hello-a1b2")));
    assert!(entry.is_none());
    // Undo(Announce) retracts the same item.
    let unboost = format!(
        r#"{{"type": "Undo", "actor": "https://mastodon.example/users/bob", "object": {}}}"#,
        String::from_utf8(boost.to_vec()).unwrap()
    );
    let Incoming::Unrepeat {
        item_id: undone, ..
    } = incoming_bytes(unboost.as_bytes(), &TestScheme).unwrap()
    else {
        panic!()
    };
    assert_eq!(undone, item_id);
    // Announce with the object embedded: the repeat entry is built, with its via link.
    let AnyObject::Activity(create) =
        parse(crate::vocab::tests::MASTODON_CREATE.as_bytes()).unwrap()
    else {
        panic!()
    };
    let mut embedded = Activity::new(
        ActivityKind::Announce,
        Some("https://pleroma.example/activities/a1".into()),
        "https://pleroma.example/users/carol",
        create.object.clone(),
    );
    embedded.published = Some(date("2024-03-04T00:00:00Z"));
    let Incoming::Repeat { entry: Some(e), .. } =
        incoming_bytes(&to_vec(&embedded), &TestScheme).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        e.repeated_item(),
        Some(item("bob\\40mastodon.example@ap.example.org", "111"))
    );
    assert_eq!(
        e.via_link().unwrap().reference.as_deref(),
        Some("https://mastodon.example/users/bob/statuses/111")
    );
    assert_eq!(e.updated, Some(date("2024-03-04T00:00:00Z")));
    assert_eq!(e.id, None);
}

#[test]
fn forged_and_unsupported_input() {
    // A Create whose object is someone else's.
    let forged = br#"{"type": "Create", "actor": "https://evil.example/users/mallory",
        "object": {"type": "Note", "id": "https://mastodon.example/users/bob/statuses/1",
          "attributedTo": "https://mastodon.example/users/bob", "content": "I am bob"}}"#;
    assert!(matches!(
        incoming_bytes(forged, &TestScheme),
        Err(ConvertError::Invalid { .. })
    ));
    // A Create or Delete of an object on another origin than the actor's.
    let foreign = br#"{"type": "Create", "actor": "https://evil.example/users/mallory",
        "object": {"type": "Note", "id": "https://mastodon.example/users/bob/statuses/1", "content": "x"}}"#;
    assert!(matches!(
        incoming_bytes(foreign, &TestScheme),
        Err(ConvertError::Invalid { .. })
    ));
    let foreign_delete = br#"{"type": "Delete", "actor": "https://evil.example/users/mallory",
        "object": "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2"}"#;
    assert!(matches!(
        incoming_bytes(foreign_delete, &TestScheme),
        Err(ConvertError::Invalid { .. })
    ));
    let userinfo = br#"{"type": "Delete", "actor": "https://evil.example/users/mallory",
        "object": "https://evil.example@mastodon.example/users/bob/statuses/1"}"#;
    assert!(matches!(
        incoming_bytes(userinfo, &TestScheme),
        Err(ConvertError::Invalid { .. })
    ));
    assert_eq!(
        crate::convert::origin("HTTPS://A.example:8443/x?y"),
        Some("https://a.example:8443".into())
    );
    assert_eq!(crate::convert::origin("no-scheme"), None);
    // A Create of an unknown object type, a bare object, an unknown activity: Unsupported.
    let chat = br#"{"type": "Create", "actor": "https://mastodon.example/users/bob",
        "object": {"type": "ChatMessage", "id": "https://mastodon.example/c/1"}}"#;
    assert!(matches!(
        incoming_bytes(chat, &TestScheme).unwrap(),
        Incoming::Unsupported(Unsupported { .. })
    ));
    let note = br#"{"type": "Note", "id": "https://x.example/n"}"#;
    assert!(matches!(
        incoming_bytes(note, &TestScheme).unwrap(),
        Incoming::Unsupported(_)
    ));
    let block = br#"{"type": "Block", "actor": "https://x.example/u", "object": "https://ap.example.org/_ap/actor/alice@example.org"}"#;
    assert!(matches!(
        incoming_bytes(block, &TestScheme).unwrap(),
        Incoming::Unsupported(_)
    ));
    // A followers-only post says so.
    let private = br#"{"type": "Create", "actor": "https://mastodon.example/users/bob",
        "object": {"type": "Note", "id": "https://mastodon.example/users/bob/statuses/7",
          "attributedTo": "https://mastodon.example/users/bob", "content": "psst",
          "to": ["https://mastodon.example/users/bob/followers"]}}"#;
    let Incoming::Publish(post) = incoming_bytes(private, &TestScheme).unwrap() else {
        panic!()
    };
    assert!(!post.public);
    // A Create by id only: fetch first.
    let by_id = br#"{"type": "Create", "actor": "https://mastodon.example/users/bob", "object": "https://mastodon.example/users/bob/statuses/5"}"#;
    assert!(matches!(
        incoming_bytes(by_id, &TestScheme),
        Err(ConvertError::Missing(_))
    ));
}

#[test]
fn hostile_content() {
    let hostile = serde_json::json!({
        "type": "Create", "actor": "https://mastodon.example/users/bob",
        "object": {
            "type": "Note", "id": "https://mastodon.example/users/bob/statuses/666",
            "attributedTo": "https://mastodon.example/users/bob",
            "name": "title\u{0}with\u{1}controls",
            "content": "<p onclick=\"steal()\">hi<script>alert(1)</script> <a href=\"javascript:alert(1)\">x</a> <img src=x onerror=alert(1)> <b>bold</b>\u{0}</p><iframe src=\"https://evil.example\"></iframe>",
            "summary": "<script>cw</script>spoiler",
            "tag": [{"type": "Hashtag", "name": "#ok\u{0}"}, {"type": "Mention", "href": "javascript:alert(1)"}],
            "attachment": [{"type": "Document", "url": "javascript:alert(1)"}, {"type": "Image", "url": "file:///etc/passwd"}],
            "url": "javascript:alert(1)",
            "published": "2024-03-01T10:00:00Z"
        }
    });
    let doc = vocab::parse_value(hostile).unwrap();
    let Incoming::Publish(post) = super::super::incoming(&doc, &TestScheme).unwrap() else {
        panic!()
    };
    let xml = post.entry.to_xml_string().unwrap();
    let lower = xml.to_ascii_lowercase();
    for bad in [
        "script",
        "javascript",
        "onclick",
        "onerror",
        "iframe",
        "steal",
        "file://",
        "\u{0}",
        "<img",
    ] {
        assert!(!lower.contains(bad), "{bad} in {xml}");
    }
    assert!(xml.contains("<b>bold</b>"), "{xml}");
    assert_eq!(
        post.entry.title_text().as_deref(),
        Some("titlewithcontrols")
    );
    assert_eq!(post.entry.summary.as_ref().unwrap().plain_text(), "spoiler");
    assert_eq!(post.entry.tags().collect::<Vec<_>>(), ["ok"]);
    assert_eq!(post.entry.enclosures().count(), 0);

    // Huge content is refused, not truncated silently.
    let mut o = Object::new(ObjectKind::Note);
    o.content = Some("a".repeat(MAX_HTML_BYTES + 1));
    assert!(matches!(
        note_to_entry(&o, &TestScheme),
        Err(ConvertError::TooLarge { .. })
    ));
    // Deeply nested markup still gives an entry (as text).
    o.content = Some(format!("{}deep{}", "<b>".repeat(5000), "</b>".repeat(5000)));
    let e = note_to_entry(&o, &TestScheme).unwrap();
    assert_eq!(e.title_text().as_deref(), Some("deep"));
    // Many attachments and tags are capped.
    o.content = Some("x".into());
    o.attachment = (0..500)
        .map(|i| vocab::Attachment {
            kind: vocab::AttachmentKind::Image,
            url: Some(format!("https://x.example/{i}.png")),
            href: None,
            media_type: None,
            name: None,
            value: None,
            width: None,
            height: None,
            blurhash: None,
        })
        .collect();
    assert_eq!(
        note_to_entry(&o, &TestScheme).unwrap().enclosures().count(),
        MAX_ATTACHMENTS
    );
    // Dates outside XEP-0082's years are dropped, not written.
    o.published = Some(date("9999-12-31T23:59:59Z") + chrono::Duration::days(2));
    assert_eq!(note_to_entry(&o, &TestScheme).unwrap().published, None);
}

#[test]
fn language_maps_and_plain_media_types() {
    let mut o = Object::new(ObjectKind::Note);
    o.content_map = [("de", "<p>Hallo</p>"), ("en", "<p>Hello</p>")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    let e = note_to_entry(&o, &TestScheme).unwrap();
    assert_eq!(e.language.as_deref(), Some("de"));
    assert_eq!(e.title_text().as_deref(), Some("Hallo"));
    o.content = Some("<p>Hello</p>".into());
    let e = note_to_entry(&o, &TestScheme).unwrap();
    assert_eq!(e.language.as_deref(), Some("en"));
    // Markdown source stays text.
    let mut md = Object::new(ObjectKind::Note);
    md.content = Some("**not** <b>html</b>".into());
    md.media_type = Some("text/markdown".into());
    let e = note_to_entry(&md, &TestScheme).unwrap();
    assert_eq!(e.title_text().as_deref(), Some("**not** <b>html</b>"));
    // Geolocation.
    let mut placed = Object::new(ObjectKind::Note);
    placed.content = Some("here".into());
    let mut p = vocab::Place::named("Café");
    p.latitude = Some(45.0);
    p.longitude = Some(5.0);
    placed.location = Some(p);
    let e = note_to_entry(&placed, &TestScheme).unwrap();
    let g = e.geoloc.as_ref().unwrap();
    assert_eq!(
        (g.lat, g.lon, g.text.as_deref()),
        (Some(45.0), Some(5.0), Some("Café"))
    );
    let out = entry_to_note(
        &e.clone()
            .with_author(Person::from_jid(&jid("alice@example.org").into(), None)),
        &item("alice@example.org", "geo"),
        &TestScheme,
        &NoteOptions::default(),
    )
    .unwrap();
    assert_eq!(out.location.unwrap().latitude, Some(45.0));
}

#[test]
fn outbox_pages() {
    let it = item("alice@example.org", "hello-a1b2");
    let bad = ItemRef::new(jid(COMMENTS_SERVICE).into(), comments_node_name("x"), "c");
    let entries = vec![
        (it.clone(), alice_post()),
        (bad, Entry::new_post("no author", "")),
    ];
    let page = outbox_page(
        "https://ap.example.org/_ap/outbox/alice@example.org",
        "https://ap.example.org/_ap/outbox/alice@example.org?page=1",
        &entries,
        Some("https://ap.example.org/_ap/outbox/alice@example.org?after=hello-a1b2".into()),
        None,
        &TestScheme,
        &NoteOptions::default(),
    );
    assert_eq!(
        page.ordered_items.len(),
        1,
        "the comment without author is skipped"
    );
    let v = vocab::to_json(&page);
    assert_eq!(v["type"], "OrderedCollectionPage");
    assert_eq!(v["orderedItems"][0]["type"], "Create");
    assert_eq!(
        v["orderedItems"][0]["object"]["id"],
        "https://ap.example.org/_ap/item/alice@example.org/hello-a1b2"
    );
    assert!(v["orderedItems"][0].get("@context").is_none());
}
