//! Integration tests against real Prosody and ejabberd servers started on loopback by `xmpp-testkit`.
//! Every scenario runs on both servers: they differ in ordering, RSM and publish-options, and the SDK
//! must give the same results on both.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{jid, login, start};
use xmpp_social::client::{ClientConfig, Transport, XmppClient};
use xmpp_social::microblog::{Entry, MicroblogExt, PostOptions, Text, NS_MICROBLOG};
use xmpp_social::pubsub::event::EventError;
use xmpp_social::pubsub::{
    AccessModel, ItemsQuery, NodeConfig, PreconditionPolicy, PubSubEvent, PubSubEvents, PubSubExt,
    PublishOptions,
};
use xmpp_social::rsm::RsmRequest;
use xmpp_social::{Connection, Error};
use xmpp_testkit::ServerKind;

/// Waits for the next event matching `pred`, skipping others, for at most 15 s.
async fn wait_event(
    events: &mut PubSubEvents,
    what: &str,
    pred: impl Fn(&PubSubEvent) -> bool,
) -> PubSubEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, events.next()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) => continue,
            Ok(Err(EventError::Malformed(e))) => {
                panic!("malformed event while waiting for {what}: {e}")
            }
            Ok(Err(e)) => panic!("event stream failed while waiting for {what}: {e}"),
            Err(_) => panic!("no {what} notification within 15 s"),
        }
    }
}

fn post(title: &str, body: &str) -> Entry {
    Entry::new()
        .with_title(Text::plain(title))
        .with_content(Text::plain(body))
}

async fn blog_250_entries_paging_and_live_events(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let alice_jid = jid(&format!("alice@{}", server.domain()));

    for i in 0..250 {
        let opts = PostOptions {
            id: Some(format!("entry-{i:03}")),
            ..PostOptions::default()
        };
        alice
            .post(
                None,
                None,
                post(&format!("Entry {i}"), &format!("Body of entry {i}")),
                opts,
            )
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: post {i} failed: {e}"));
    }

    // Bob reads everything: RSM pages where the server offers them, one answer where it does not.
    let first = bob
        .get_items(
            Some(&alice_jid),
            NS_MICROBLOG,
            &ItemsQuery {
                rsm: Some(RsmRequest::first(100)),
                ..Default::default()
            },
        )
        .await
        .expect("first page");
    match kind {
        // ejabberd pages (RSM); Prosody 0.12 ignores RSM and sends everything.
        ServerKind::Ejabberd => {
            assert_eq!(first.items.len(), 100, "ejabberd pages by 100");
            assert_eq!(first.rsm.as_ref().and_then(|r| r.count), Some(250));
        }
        ServerKind::Prosody => {
            assert!(first.rsm.is_none(), "Prosody 0.12 has no RSM on items");
            assert_eq!(first.items.len(), 250);
        }
    }
    let entries = bob
        .entries(Some(&alice_jid), None, None)
        .await
        .expect("bob reads the blog");
    assert!(entries.invalid.is_empty(), "{:?}", entries.invalid);
    assert_eq!(entries.entries.len(), 250, "{kind:?}: all 250 entries");
    let ids: HashSet<_> = entries.entries.iter().map(|e| e.item_id.clone()).collect();
    assert_eq!(ids.len(), 250);
    let e42 = entries
        .entries
        .iter()
        .find(|e| e.item_id == "entry-042")
        .expect("entry 42");
    assert_eq!(
        e42.entry.title.as_ref().map(Text::plain_text).as_deref(),
        Some("Entry 42")
    );
    assert_eq!(
        e42.entry.authors[0].jid().map(|j| j.to_bare()),
        Some(alice_jid.to_bare())
    );
    // A limit gives the requested number on both servers.
    let ten = bob
        .entries(Some(&alice_jid), None, Some(10))
        .await
        .expect("limited");
    assert_eq!(ten.entries.len(), 10);

    // Live notifications: a new entry, a retraction, a purge.
    let mut events = bob.pubsub_events();
    bob.subscribe(Some(&alice_jid), NS_MICROBLOG)
        .await
        .expect("bob subscribes");
    let live = alice
        .post(
            None,
            None,
            post("Live", "A new entry"),
            PostOptions {
                id: Some("live-entry".into()),
                ..PostOptions::default()
            },
        )
        .await
        .expect("live post");
    assert_eq!(live.item, "live-entry");
    let e = wait_event(&mut events, "new item", |e| {
        matches!(e, PubSubEvent::Items { .. })
    })
    .await;
    match e {
        PubSubEvent::Items {
            service,
            node,
            items,
        } => {
            assert_eq!(service.to_bare(), alice_jid.to_bare());
            assert_eq!(node, NS_MICROBLOG);
            assert_eq!(items[0].id, "live-entry");
        }
        other => panic!("unexpected {other:?}"),
    }
    alice
        .delete_entry(None, None, "live-entry")
        .await
        .expect("retract");
    let e = wait_event(&mut events, "retraction", |e| {
        matches!(e, PubSubEvent::Retract { .. })
    })
    .await;
    assert!(matches!(e, PubSubEvent::Retract { ref ids, .. } if ids == &["live-entry"]));
    alice.purge(None, NS_MICROBLOG).await.expect("purge");
    wait_event(&mut events, "purge", |e| {
        matches!(e, PubSubEvent::Purge { .. })
    })
    .await;
    let after = bob
        .entries(Some(&alice_jid), None, None)
        .await
        .expect("read after purge");
    assert!(after.entries.is_empty(), "purged node is empty");

    alice.close().await.expect("close");
    bob.close().await.expect("close");
}

async fn comments_and_rename(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let alice_jid = jid(&format!("alice@{}", server.domain()));
    let pubsub = jid(server.pubsub_service());

    let posted = alice
        .post(
            None,
            None,
            post("Ceci est un été à Paris", "Let's talk"),
            PostOptions {
                comments_service: Some(pubsub.clone()),
                ..PostOptions::default()
            },
        )
        .await
        .expect("post with comments");
    assert!(
        posted.item.starts_with("ceci-est-un-ete-a-paris-"),
        "{}",
        posted.item
    );

    // Bob reads the post, finds its comments node and comments.
    let read = bob
        .entry(Some(&alice_jid), None, &posted.item)
        .await
        .expect("bob reads the post");
    let comments = read
        .entry
        .comments()
        .into_iter()
        .next()
        .expect("a comments node");
    assert_eq!(comments.service, pubsub);
    let c = Entry::new().with_content(Text::plain("Nice post!"));
    let comment = bob
        .comment(&posted, &comments, c)
        .await
        .expect("bob comments");

    // Alice renames the post; comments stay reachable through the kept link.
    let renamed = alice
        .rename_entry(None, None, &posted.item, "paris-summer")
        .await
        .expect("rename");
    assert_eq!(renamed.item, "paris-summer");
    let all = bob
        .entries(Some(&alice_jid), None, None)
        .await
        .expect("read after rename");
    let ids: Vec<_> = all.entries.iter().map(|e| e.item_id.as_str()).collect();
    assert_eq!(ids, vec!["paris-summer"], "old id is gone");
    let comments_after = all.entries[0]
        .entry
        .comments()
        .into_iter()
        .next()
        .expect("comments link kept");
    let thread = bob
        .entries(
            Some(&comments_after.service),
            Some(&comments_after.node),
            None,
        )
        .await
        .expect("read comments");
    assert_eq!(thread.entries.len(), 1);
    assert_eq!(thread.entries[0].item_id, comment.item);
    let reply = &thread.entries[0].entry;
    assert_eq!(
        reply.content[0].plain_text(),
        "Nice post!",
        "comment content survives"
    );
    assert!(!reply.in_reply_to.is_empty());

    alice.close().await.expect("close");
    bob.close().await.expect("close");
}

async fn publish_options_policies(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let pubsub = jid(server.pubsub_service());
    let node = "po-conflict";
    alice
        .create_node(
            Some(&pubsub),
            node,
            Some(&NodeConfig::new().access_model(AccessModel::Open)),
        )
        .await
        .expect("create node");
    let payload = || minidom::Element::builder("x", "urn:example:po").build();
    let options = |policy| {
        PublishOptions::new(
            NodeConfig::new().access_model(AccessModel::Whitelist),
            policy,
        )
    };

    // 1. Fail: the refusal comes back as a typed stanza error.
    let err = alice
        .publish(
            Some(&pubsub),
            node,
            Some("a"),
            payload(),
            Some(&options(PreconditionPolicy::Fail)),
        )
        .await
        .expect_err("conflicting publish-options must be refused");
    assert!(
        xmpp_social::pubsub::is_publish_options_refusal(&err),
        "{kind:?}: {err}"
    );

    // 2. Publish without options: published, configuration untouched.
    alice
        .publish(
            Some(&pubsub),
            node,
            Some("b"),
            payload(),
            Some(&options(PreconditionPolicy::PublishWithoutOptions)),
        )
        .await
        .expect("publish without options");
    let cfg = alice
        .node_config(Some(&pubsub), node)
        .await
        .expect("config");
    assert_eq!(cfg.get_access_model(), Some(AccessModel::Open));

    // 3. Reconfigure then publish: published, configuration changed.
    alice
        .publish(
            Some(&pubsub),
            node,
            Some("c"),
            payload(),
            Some(&options(PreconditionPolicy::ReconfigureNode)),
        )
        .await
        .expect("reconfigure then publish");
    let cfg = alice
        .node_config(Some(&pubsub), node)
        .await
        .expect("config");
    assert_eq!(cfg.get_access_model(), Some(AccessModel::Whitelist));
    let items = alice
        .get_all_items(Some(&pubsub), node, 10, None)
        .await
        .expect("items");
    let ids: HashSet<_> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, HashSet::from(["b", "c"]));
    alice.close().await.expect("close");
}

async fn server_errors_are_typed(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let pubsub = jid(server.pubsub_service());
    let err = alice
        .get_items(Some(&pubsub), "no-such-node", &ItemsQuery::default())
        .await
        .expect_err("missing node");
    assert!(err.is_item_not_found(), "{kind:?}: {err}");
    // Bad credentials are an error, not a hang.
    let mut cfg = ClientConfig::new(
        jid(&format!("alice@{}", server.domain())),
        "wrong",
        Transport::PlaintextLoopback {
            addr: server.c2s_addr(),
        },
    );
    cfg.connect_timeout = Duration::from_secs(3);
    let bad = XmppClient::connect(cfg).await;
    assert!(matches!(bad, Err(Error::Connection(_))), "{bad:?}");
    assert_eq!(
        alice.jid().to_bare().as_str(),
        format!("alice@{}", server.domain())
    );
    alice.close().await.expect("close");
}

on_both_servers!(
    blog_250_entries_paging_and_live_events,
    comments_and_rename,
    publish_options_policies,
    server_errors_are_typed,
);
