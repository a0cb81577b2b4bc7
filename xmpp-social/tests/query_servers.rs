//! The query extensions against real Prosody and ejabberd: where a server does not announce XEP-0413,
//! XEP-0431, XEP-0462 or XEP-0460, the call returns `Error::Unsupported` without sending the query;
//! where it does, the answer is checked.

use std::time::Duration;

use jid::Jid;
use minidom::Element;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_social::client::XmppClient;
use xmpp_social::pubsub::{ItemsQuery, PubSubExt};
use xmpp_social::query::*;
use xmpp_social::{Connection, ConnectionExt, Error};
use xmpp_testkit::{Server, ServerKind};

async fn scenario(kind: ServerKind) {
    let server =
        tokio::task::spawn_blocking(move || Server::start(kind, &[("alice", "pw"), ("bob", "pw")]))
            .await
            .expect("join")
            .expect("server");
    let login = |u: &'static str| {
        XmppClient::connect_plaintext_loopback(
            match u {
                "alice" => "alice@localhost",
                _ => "bob@localhost",
            },
            "pw",
            server.c2s_addr(),
        )
    };
    let alice = login("alice").await.expect("alice");
    let bob = login("bob").await.expect("bob");
    let pubsub = Jid::new(server.pubsub_service()).expect("jid");
    alice
        .create_node(Some(&pubsub), "ordered", None)
        .await
        .expect("node");
    for id in ["A", "B", "C"] {
        alice
            .publish(
                Some(&pubsub),
                "ordered",
                Some(id),
                Element::builder("x", "urn:example").build(),
                None,
            )
            .await
            .expect("publish");
    }
    let info = alice.disco_info(Some(&pubsub), None).await.expect("disco");

    // XEP-0413
    let ordered = alice
        .get_items_ordered(
            Some(&pubsub),
            "ordered",
            &ItemsQuery::default(),
            &[OrderBy::desc(OrderField::Creation)],
        )
        .await;
    if info.has(NS_ORDER_BY) {
        let ids: Vec<_> = ordered
            .expect("ordered")
            .items
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(ids, ["C", "B", "A"]);
    } else {
        assert!(
            matches!(ordered, Err(Error::Unsupported(_))),
            "{kind:?}: {ordered:?}"
        );
    }

    // XEP-0462
    let filtered = alice
        .disco_items_by_type(
            &pubsub,
            &TypeFilter::Included(vec!["urn:xmpp:microblog:0".into()]),
        )
        .await;
    if info.has(NS_PUBSUB_FILTER) {
        filtered.expect("filtered");
    } else {
        assert!(
            matches!(filtered, Err(Error::Unsupported(_))),
            "{kind:?}: {filtered:?}"
        );
    }

    // XEP-0460
    let hints = alice.caching_hints(&pubsub, "ordered").await;
    if info.has(NS_PUBSUB_CACHING) {
        hints.expect("hints");
    } else {
        assert!(
            matches!(hints, Err(Error::Unsupported(_))),
            "{kind:?}: {hints:?}"
        );
    }

    // XEP-0431 on Bob's own archive: Alice sends two messages, Bob searches for a word of one.
    for text in ["the rehearsal is at noon", "bring the skull of Yorick"] {
        let mut m = Message::new(Some(Jid::new("bob@localhost").expect("jid")));
        m.type_ = MessageType::Chat;
        m.bodies.insert(Default::default(), text.to_owned());
        alice.send_stanza(m.into()).await.expect("send");
    }
    alice.ping(None).await.expect("flush");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let own = bob
        .disco_info(Some(&bob.jid().to_bare().into()), None)
        .await
        .expect("disco");
    let search = bob
        .mam_query(
            None,
            &MamQuery {
                fulltext: Some("skull".into()),
                ..Default::default()
            },
        )
        .await;
    if own.has(NS_FULLTEXT) {
        let page = search.expect("search");
        let bodies: Vec<String> = page
            .results
            .iter()
            .filter_map(|r| {
                r.stanza
                    .get_child("body", "jabber:client")
                    .map(Element::text)
            })
            .collect();
        assert_eq!(bodies, ["bring the skull of Yorick"], "{kind:?}");
    } else {
        assert!(
            matches!(search, Err(Error::Unsupported(_))),
            "{kind:?}: {search:?}"
        );
    }
    // A plain MAM query (no full text) works on both: both messages are archived.
    let plain = bob
        .mam_query(None, &MamQuery::default())
        .await
        .expect("mam");
    assert_eq!(plain.results.len(), 2, "{kind:?}: {plain:?}");
    println!(
        "{kind:?}: order-by {}, type-filter {}, caching-hints {}, fulltext {}",
        info.has(NS_ORDER_BY),
        info.has(NS_PUBSUB_FILTER),
        info.has(NS_PUBSUB_CACHING),
        own.has(NS_FULLTEXT)
    );
    alice.close().await.expect("close");
    bob.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_extensions_on_prosody() {
    scenario(ServerKind::Prosody).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_extensions_on_ejabberd() {
    scenario(ServerKind::Ejabberd).await
}
