//! Integration tests of XEP-0470 (pubsub attachments) and XEP-0465/XEP-0376 (public subscriptions)
//! against real Prosody and ejabberd servers started on loopback by `xmpp-testkit`. Every scenario
//! runs on both.
//!
//! Only `alice` is given to `Server::start`; `bob`, `carol` and `dave` are registered afterwards so that
//! on Prosody they are ordinary users, not admins of every node of pubsub.localhost.

#[macro_use]
mod common;

use common::{jid, login};
use jid::BareJid;
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition;
use xmpp_social::attachments::{
    attachment_node_name, Attachments, AttachmentsExt, AttachmentsNodeStatus, SummarySource,
};
use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{Entry, ItemRef, MicroblogExt, PostOptions, Text};
use xmpp_social::pps::{
    subscribers_node_name, PpsExt, PublicSubscriber, NODE_PUBLIC_SUBSCRIPTIONS,
};
use xmpp_social::pubsub::{AccessModel, PubSubExt, SubscriptionState};
use xmpp_social::xml::BuilderExt;
use xmpp_social::Error;
use xmpp_testkit::{Server, ServerKind};

async fn start(kind: ServerKind) -> Server {
    common::start_with(kind, &["alice"], &["bob", "carol", "dave"]).await
}

fn bare(s: &str) -> BareJid {
    BareJid::new(s).expect("valid JID")
}

fn post(title: &str, body: &str) -> Entry {
    Entry {
        title: Some(Text::plain(title)),
        content: vec![Text::plain(body)],
        ..Entry::default()
    }
}

/// Alice's entry, on a blog on pubsub.localhost or on her PEP blog, with its attachment node created
/// by Alice (the XEP: by the target item's publisher, on the target item's service).
async fn alice_entry(server: &Server, alice: &XmppClient, on_pep: bool) -> ItemRef {
    let service = jid(server.pubsub_service());
    let (target, node) = if on_pep {
        (None, None)
    } else {
        alice
            .create_blog_node(Some(&service), Some("alice-blog"), AccessModel::Open)
            .await
            .expect("blog node");
        (Some(&service), Some("alice-blog"))
    };
    let item = alice
        .post(
            target,
            node,
            post("Balcony restoration", "The balcony is finished."),
            PostOptions {
                id: Some("balcony-restoration".into()),
                ..PostOptions::default()
            },
        )
        .await
        .expect("post");
    let status = alice
        .create_attachments_node(&item)
        .await
        .expect("attachment node");
    assert_eq!(status, AttachmentsNodeStatus::Created);
    // Creating it again leaves it alone.
    assert_eq!(
        alice.create_attachments_node(&item).await.expect("again"),
        AttachmentsNodeStatus::AlreadyExists
    );
    item
}

/// The user story: Bob likes and reacts to Alice's entry, changes and removes his reaction; Alice sees
/// the aggregated state; a third party's unknown attachment child survives Bob's updates. `on_pep`:
/// Alice's entry is on her PEP blog (the attachment node then lives on her PEP service, and both
/// servers let others publish there once Alice opened its publish model), else on pubsub.localhost.
async fn story(kind: ServerKind, on_pep: bool) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let carol = login(&server, "carol").await;
    let domain = server.domain().to_owned();
    let bob_jid = bare(&format!("bob@{domain}"));
    let carol_jid = bare(&format!("carol@{domain}"));
    let item = alice_entry(&server, &alice, on_pep).await;
    let service = item.service.clone();

    // Nothing attached yet.
    let view = alice.attachments(&item).await.expect("empty view");
    assert_eq!(
        view.node.as_deref(),
        Some(attachment_node_name(&item).as_str())
    );
    assert!(view.by_jid.is_empty() && view.summary.is_empty());
    assert_eq!(bob.my_attachments(&item).await.expect("mine"), None);

    // Bob notices (likes) the entry and reacts.
    let a = bob.set_noticed(&item, true).await.expect("noticed");
    assert!(a.is_noticed());
    bob.add_reaction(&item, "👍").await.expect("react 👍");
    let a = bob.add_reaction(&item, "🎉").await.expect("react 🎉");
    assert_eq!(a.emojis(), ["👍", "🎉"]);
    // Noticing again changes nothing (same timestamp, nothing sent).
    let again = bob.set_noticed(&item, true).await.expect("noticed again");
    assert_eq!(again, a);
    assert!(matches!(
        bob.add_reaction(&item, "not an emoji").await,
        Err(Error::InvalidArgument(_))
    ));

    // Another client of Bob's (a third party's software) adds an attachment this SDK does not know,
    // republishing what was there as the XEP asks.
    let node = attachment_node_name(&item);
    let mut raw = Element::from(&a);
    raw.append_child(
        Element::builder("vote", "urn:example:third-party:0")
            .a("choice", "blue")
            .append("kept as is")
            .build(),
    );
    bob.publish(Some(&service), &node, Some(bob_jid.as_str()), raw, None)
        .await
        .expect("third-party publish");

    // Carol notices and reacts too.
    carol.set_noticed(&item, true).await.expect("carol noticed");
    carol
        .set_reactions(&item, &["🎉", "❤️"])
        .await
        .expect("carol reacts");

    // Alice sees the aggregated state.
    let view = alice.attachments(&item).await.expect("view");
    assert!(view.rejected.is_empty(), "{:?}", view.rejected);
    assert_eq!(view.by_jid.len(), 2);
    assert_eq!(view.summary.noticed, Some(2));
    assert_eq!(view.summary.count_of("🎉"), 2);
    assert_eq!(view.summary.count_of("👍"), 1);
    assert_eq!(view.summary.count_of("❤️"), 1);
    assert_eq!(view.reacted_with("🎉").len(), 2);
    let bobs = view.of(&bob_jid).expect("bob's attachments");
    assert_eq!(bobs.extra.len(), 1, "the unknown attachment is visible");
    let summary = alice.summary(&item).await.expect("summary");
    assert_eq!(summary.source, SummarySource::Computed);
    assert_eq!(summary.summary, view.summary);
    let json = serde_json::to_value(&view).expect("json");
    assert_eq!(json["summary"]["noticed"], 2);

    // Bob changes his reaction (👍 -> ❤️), then removes one: the unknown child survives each update.
    bob.remove_reaction(&item, "👍").await.expect("remove 👍");
    let a = bob.add_reaction(&item, "❤️").await.expect("add ❤️");
    assert_eq!(a.emojis(), ["🎉", "❤️"]);
    assert_eq!(a.extra.len(), 1);
    let a = bob.remove_reaction(&item, "🎉").await.expect("remove 🎉");
    assert_eq!(a.emojis(), ["❤️"]);
    let stored = bob
        .my_attachments(&item)
        .await
        .expect("mine")
        .expect("present");
    assert_eq!(stored.emojis(), ["❤️"]);
    assert!(stored.is_noticed());
    let vote = stored
        .extra
        .first()
        .expect("the unknown attachment survived");
    assert!(vote.is("vote", "urn:example:third-party:0"));
    assert_eq!(vote.attr("choice"), Some("blue"));
    assert_eq!(vote.text(), "kept as is");

    let view = alice.attachments(&item).await.expect("view");
    assert_eq!(view.summary.count_of("❤️"), 2);
    assert_eq!(view.summary.count_of("🎉"), 1);
    assert_eq!(view.summary.count_of("👍"), 0);

    // Bob withdraws his like and reactions: the unknown attachment is all that stays (the item is not
    // retracted while it holds attachments the SDK does not know).
    let a = bob.clear_attachments(&item).await.expect("clear");
    assert!(!a.is_noticed() && a.emojis().is_empty() && a.extra.len() == 1);
    let view = alice.attachments(&item).await.expect("view");
    assert_eq!(view.summary.noticed, Some(1));
    assert_eq!(view.noticed_by(), [&carol_jid]);
    assert_eq!(
        view.of(&bob_jid).map(|a| a.extra.len()),
        Some(1),
        "Bob's item keeps the unknown attachment"
    );

    // Carol withdraws everything: her item goes (retracted, or emptied where the service does not let
    // a publisher retract), and she is no longer listed.
    let a = carol.clear_attachments(&item).await.expect("carol clears");
    assert!(a.is_empty());
    let view = alice.attachments(&item).await.expect("view");
    assert!(view.of(&carol_jid).is_none());
    assert_eq!(view.summary.noticed, None);
    eprintln!(
        "{kind:?}: Carol's emptied item: {:?}",
        carol
            .get_items_by_id(Some(&service), &node, &[carol_jid.as_str()])
            .await
            .map(|items| items.len())
    );

    // A forgery: Carol publishes under Dave's JID. Where the service exposes publishers, the item is
    // set aside.
    let forged = Attachments {
        noticed: Some(Default::default()),
        ..Default::default()
    };
    carol
        .publish(
            Some(&service),
            &node,
            Some(&format!("dave@{domain}")),
            Element::from(&forged),
            None,
        )
        .await
        .expect("publish under another id");
    let view = alice.attachments(&item).await.expect("view");
    let dave_listed = view.of(&bare(&format!("dave@{domain}"))).is_some();
    eprintln!(
        "{kind:?}: forgery under dave's id listed: {dave_listed}, rejected: {:?}",
        view.rejected
    );
    let items = alice
        .get_items_by_id(Some(&service), &node, &[&format!("dave@{domain}")])
        .await
        .expect("read the forged item");
    let exposed = items.first().is_some_and(|i| i.publisher.is_some());
    eprintln!("{kind:?} (PEP: {on_pep}): publishers exposed: {exposed}");
    // pubsub.localhost exposes publishers on both servers (Prosody: expose_publisher; ejabberd:
    // pubsub#itemreply=publisher in the node configuration); Prosody's PEP never does.
    if !(on_pep && kind == ServerKind::Prosody) {
        assert!(exposed, "the service should say who published");
    }
    if exposed {
        assert!(!dave_listed, "a forgery must be set aside");
        assert_eq!(view.rejected.len(), 1);
    }

    // A target item whose publisher created no attachment node: a typed error, and no node is created
    // in the publisher's place.
    let (target, target_node) = if on_pep {
        (None, None)
    } else {
        (Some(&service), Some("alice-blog"))
    };
    let other = alice
        .post(
            target,
            target_node,
            post("No attachments here", "…"),
            PostOptions {
                id: Some("no-attachments".into()),
                ..PostOptions::default()
            },
        )
        .await
        .expect("post");
    match bob.set_noticed(&other, true).await {
        // Prosody's PEP answers a non-contact's read of a missing node with <forbidden/>: the node
        // cannot be told from a private one, and the error stays the server's.
        Err(e) if on_pep && kind == ServerKind::Prosody => {
            assert!(e.is_condition(DefinedCondition::Forbidden), "{e}")
        }
        r => assert!(matches!(r, Err(Error::Unsupported(_))), "{r:?}"),
    }
    match bob.attachments(&other).await {
        Err(e) if on_pep && kind == ServerKind::Prosody => {
            assert!(e.is_condition(DefinedCondition::Forbidden), "{e}")
        }
        r => assert!(r.expect("view of an item without node").node.is_none()),
    }
    assert!(
        alice
            .node_config(Some(&service), &attachment_node_name(&other))
            .await
            .is_err(),
        "no attachment node was created"
    );
    assert!(!alice.attachments_supported(&service).await.expect("disco"));
}

async fn likes_and_reactions_on_pubsub_service(kind: ServerKind) {
    story(kind, false).await
}

async fn likes_and_reactions_on_pep(kind: ServerKind) {
    story(kind, true).await
}

/// Public subscriptions: neither server supports PAM, so the XEP-0465 call is a typed unsupported
/// error; the client-maintained fallback then works for real.
async fn public_subscriptions(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let carol = login(&server, "carol").await;
    let domain = server.domain().to_owned();
    let service = jid(server.pubsub_service());
    let bob_jid = jid(&format!("bob@{domain}"));
    let alice_jid = jid(&format!("alice@{domain}"));
    alice
        .create_blog_node(Some(&service), Some("alice-blog"), AccessModel::Open)
        .await
        .expect("blog node");
    // Alice's PEP blog too.
    alice
        .post(None, None, post("Hello", "…"), PostOptions::default())
        .await
        .expect("PEP post");

    // No PAM on the server: typed error, checked by disco before anything is sent.
    let support = bob.pps_support().await.expect("disco");
    assert_eq!(support.pam, None, "{kind:?} announces PAM?");
    assert!(!support.pps);
    for result in [
        bob.subscribe_public(&service, "alice-blog").await,
        bob.subscribe_private(&service, "alice-blog").await,
        bob.unsubscribe_public(&service, "alice-blog").await,
    ] {
        assert!(
            matches!(result, Err(Error::Unsupported(_))),
            "{kind:?}: {result:?}"
        );
    }
    assert!(matches!(
        bob.pam_subscriptions().await,
        Err(Error::Unsupported(_))
    ));
    // Nothing became public. (Prosody refuses reading a PEP node of a non-contact that does not
    // exist with <forbidden/>, ejabberd answers <item-not-found/>, which reads as an empty list.)
    match carol.public_subscriptions(&bob_jid).await {
        Ok(list) => assert!(list.subscriptions.is_empty()),
        Err(e) => assert!(e.is_condition(DefinedCondition::Forbidden), "{e}"),
    }

    // The fallback: Alice opens her node's public subscribers list; Bob follows publicly.
    alice
        .open_public_subscribers(&service, "alice-blog")
        .await
        .expect("open subscribers list");
    let outcome = bob
        .subscribe_public_fallback(&service, "alice-blog")
        .await
        .expect("public subscription");
    assert!(outcome.listed_in_subscriptions);
    assert!(outcome.listed_in_subscribers, "{outcome:?}");
    let subs = bob
        .subscriptions(Some(&service), Some("alice-blog"))
        .await
        .expect("subscriptions");
    assert!(
        subs.iter()
            .any(|s| s.jid.to_bare() == bob_jid.to_bare()
                && s.state == SubscriptionState::Subscribed),
        "{subs:?}"
    );
    // Bob also follows Alice's PEP blog publicly: listed in his subscriptions; no subscribers list there.
    let pep = bob
        .subscribe_public_fallback(&alice_jid, "urn:xmpp:microblog:0")
        .await
        .expect("public subscription to a PEP node");
    assert!(pep.listed_in_subscriptions && !pep.listed_in_subscribers);
    eprintln!("{kind:?}: PEP subscribers note: {:?}", pep.subscribers_note);

    // Carol reads whom Bob follows and who follows Alice's blog.
    let following = carol
        .public_subscriptions(&bob_jid)
        .await
        .expect("following");
    assert!(following.rejected.is_empty(), "{:?}", following.rejected);
    let mut nodes: Vec<(String, String)> = following
        .subscriptions
        .iter()
        .map(|e| (e.entry.service.to_string(), e.entry.node.clone()))
        .collect();
    nodes.sort();
    assert_eq!(
        nodes,
        [
            (alice_jid.to_string(), "urn:xmpp:microblog:0".to_owned()),
            (service.to_string(), "alice-blog".to_owned()),
        ]
    );
    let followers = carol
        .public_subscribers(&service, "alice-blog")
        .await
        .expect("followers");
    let who: Vec<String> = followers
        .subscribers
        .iter()
        .map(|e| e.entry.jid.to_string())
        .collect();
    assert_eq!(who, [bob_jid.to_string()]);
    let json = serde_json::to_value(&followers).expect("json");
    assert_eq!(json["subscribers"][0]["jid"], bob_jid.to_string());

    // A forged entry: Carol lists Dave as a follower. Where the service exposes publishers, it is set
    // aside.
    carol
        .publish(
            Some(&service),
            &subscribers_node_name("alice-blog"),
            Some(&format!("dave@{domain}")),
            Element::from(&PublicSubscriber::new(jid(&format!("dave@{domain}")))),
            None,
        )
        .await
        .expect("forged listing");
    let followers = carol
        .public_subscribers(&service, "alice-blog")
        .await
        .expect("followers");
    assert_eq!(followers.subscribers.len(), 1, "{followers:?}");
    assert_eq!(followers.rejected.len(), 1, "{followers:?}");

    // Unfollowing removes both listings.
    let undone = bob
        .unsubscribe_public_fallback(&service, "alice-blog")
        .await
        .expect("unfollow");
    assert!(undone.removed_from_subscriptions && undone.removed_from_subscribers);
    let followers = carol
        .public_subscribers(&service, "alice-blog")
        .await
        .expect("followers");
    assert!(
        !followers
            .subscribers
            .iter()
            .any(|e| e.entry.jid.to_bare() == bob_jid.to_bare()),
        "{followers:?}"
    );
    let following = carol
        .public_subscriptions(&bob_jid)
        .await
        .expect("following");
    assert_eq!(following.subscriptions.len(), 1);
    assert_eq!(
        following.subscriptions[0].entry.node,
        "urn:xmpp:microblog:0"
    );
    let subs = bob
        .subscriptions(Some(&service), Some("alice-blog"))
        .await
        .expect("subscriptions");
    assert!(
        !subs
            .iter()
            .any(|s| s.state == SubscriptionState::Subscribed),
        "{subs:?}"
    );
    // The lists are ordinary nodes: Bob's own list is on his PEP service.
    let raw = carol
        .get_all_items(Some(&bob_jid), NODE_PUBLIC_SUBSCRIPTIONS, 100, None)
        .await
        .expect("raw list");
    assert_eq!(raw.len(), 1);
}

on_both_servers!(
    likes_and_reactions_on_pubsub_service,
    likes_and_reactions_on_pep,
    public_subscriptions
);
