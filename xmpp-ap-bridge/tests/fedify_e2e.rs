//! End to end: a Fedify actor (interop/fedify/peer.mjs, an independent ActivityPub implementation)
//! and alice on a real Prosody and a real ejabberd (one test each), through the gateway (HTTP side,
//! delivery worker, XMPP component).
//!
//! Fedify follows alice's blog and gets Accept; alice posts and Fedify receives a Create(Note) it
//! verified; Fedify replies, likes and reacts, and alice sees the comment in the comments node and the
//! like/reaction as XEP-0470 attachments; alice repeats it (Announce), edits (Update) and deletes
//! (Delete) it.
//!
//! Needs the peer: `.ci/setup-fedify.sh` (Node 22 and the pinned Fedify packages). Without it the
//! test FAILS, saying so.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use jid::{BareJid, Jid};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use xmpp_ap_bridge::fetch::{FetchConfig, Fetcher};
use xmpp_ap_bridge::gateway::{
    federated_blog_config, Gateway, GatewayScheme, XmppObjects, IQ_NAMESPACES,
};
use xmpp_ap_bridge::http::{ApServer, HttpConfig, HttpDeliverer, LocalKeys};
use xmpp_ap_bridge::queue::{run_worker, WorkerConfig};
use xmpp_ap_bridge::store::{GatewayStore, SqliteGatewayStore};
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::client::XmppClient;
use xmpp_social::component::{ComponentConfig, ComponentConnection};
use xmpp_social::microblog::NS_MICROBLOG;
use xmpp_social::microblog::{comments_node_name, Entry, MicroblogExt, PostOptions, Text};
use xmpp_social::pubsub::{AccessModel, ItemsQuery, PubSubEvent, PubSubEvents, PubSubExt};
use xmpp_social::rsm::RsmRequest;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";
/// Entries per page of the gateway's outboxes in these tests.
const OUTBOX_PAGE: usize = 3;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Fedify peer, killed on drop.
struct Fedify {
    child: Child,
    origin: String,
    actor: String,
    http: reqwest::Client,
}

impl Drop for Fedify {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_fedify() -> Fedify {
    let root = repo_root();
    let node = root.join("interop/fedify/node_modules/.bin/node");
    let peer = root.join("interop/fedify/peer.mjs");
    assert!(
        node.exists(),
        "the Fedify peer is not installed ({} missing): run .ci/setup-fedify.sh \
         (Node 22 from npm and the pinned @fedify packages)",
        node.display()
    );
    let port = free_port();
    let mut child = Command::new(&node)
        .arg(&peer)
        .arg("--port")
        .arg(port.to_string())
        .current_dir(root.join("interop/fedify"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["event"] == "ready" {
                    return Some(v);
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the Fedify peer did not print its ready line (see its stderr above)");
    // Keep draining its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let _ = rustls::crypto::ring::default_provider().install_default();
    Fedify {
        child,
        origin: ready["origin"].as_str().unwrap().to_owned(),
        actor: ready["actor"].as_str().unwrap().to_owned(),
        http: reqwest::Client::new(),
    }
}

impl Fedify {
    async fn control(&self, op: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/_control/{op}", self.origin))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "Fedify {op} failed: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn events(&self) -> Vec<Value> {
        let text = self
            .http
            .get(format!("{}/_control/events", self.origin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Waits for a verified inbox activity of `kind` matching `pred`.
    async fn wait_inbox(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..240 {
            for e in self.events().await {
                if e["event"] == "inbox" && e["type"] == kind && pred(&e) {
                    return e;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let events = self.events().await;
        panic!("Fedify received no {kind}; its events: {events:#?}");
    }
}

async fn start_server(kind: ServerKind) -> Server {
    tokio::task::spawn_blocking(move || {
        Server::start(kind, &[("alice", PW), ("bob", PW)])
            .unwrap_or_else(|e| panic!("{} did not start: {e}", kind.name()))
    })
    .await
    .unwrap()
}

struct GatewayUnderTest {
    base: String,
    store: Arc<SqliteGatewayStore>,
    _dir: tempfile::TempDir,
}

async fn start_gateway(server: &Server) -> GatewayUnderTest {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteGatewayStore::open(dir.path().join("gw.sqlite")).unwrap());
    let dyn_store: Arc<dyn GatewayStore> = store.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://127.0.0.1:{}/_ap",
        listener.local_addr().unwrap().port()
    );
    let config = HttpConfig::new(
        &base,
        server.domain(),
        server.component_domain(),
        Some(server.pubsub_service()),
    )
    .unwrap();
    let fetcher = Fetcher::new(FetchConfig {
        allow_private_addresses: true,
        allow_http: true,
        ..FetchConfig::default()
    })
    .unwrap();
    let keys = Arc::new(LocalKeys::new(dyn_store.clone()));
    let component = BareJid::new(server.component_domain()).unwrap();
    let mut component_config = ComponentConfig::new(
        component.clone(),
        server.component_addr(),
        server.component_secret(),
    );
    component_config.iq_namespaces = IQ_NAMESPACES.iter().map(|s| (*s).to_owned()).collect();
    let conn = ComponentConnection::connect(component_config)
        .await
        .unwrap_or_else(|e| panic!("component: {e}\n{}", server.log_tail(30)));
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let http = ApServer::new(
        config.clone(),
        dyn_store.clone(),
        keys.clone(),
        fetcher.clone(),
        Arc::new(
            XmppObjects::new(
                conn.clone(),
                GatewayScheme::new(config.clone(), component.clone()),
            )
            .with_page_size(OUTBOX_PAGE),
        ),
        tx,
    );
    tokio::spawn(async move { http.serve(listener, std::future::pending()).await });
    let deliverer = Arc::new(HttpDeliverer::new(fetcher.clone(), keys, config.clone()));
    tokio::spawn(run_worker(
        store.clone(),
        deliverer,
        WorkerConfig {
            idle: Duration::from_millis(100),
            ..WorkerConfig::default()
        },
        std::future::pending(),
    ));
    let gateway =
        Gateway::new(GatewayScheme::new(config, component), dyn_store, conn).with_fetcher(fetcher);
    tokio::spawn(async move { gateway.run(rx).await });
    GatewayUnderTest {
        base,
        store,
        _dir: dir,
    }
}

/// The next notification of `from`'s microblog node.
async fn next_blog_event(events: &mut PubSubEvents, from: &Jid, what: &str) -> PubSubEvent {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(event) = events.next().await {
                if event.service() == from && event.node() == Some(NS_MICROBLOG) {
                    return event;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("bob received no {what} from the Fedify actor's virtual JID"))
}

fn post_entry(title: &str, body: &str) -> Entry {
    Entry {
        title: Some(Text::plain(title)),
        content: vec![Text::plain(body)],
        ..Entry::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedify_and_alice_blog_on_prosody() {
    blog_scenario(ServerKind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedify_and_alice_blog_on_ejabberd() {
    blog_scenario(ServerKind::Ejabberd).await;
}

async fn blog_scenario(kind: ServerKind) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let fedify = start_fedify().await;
    let server = start_server(kind).await;
    let gateway = start_gateway(&server).await;
    let alice = XmppClient::connect_plaintext_loopback(
        &format!("alice@{}", server.domain()),
        PW,
        server.c2s_addr(),
    )
    .await
    .unwrap_or_else(|e| panic!("alice: {e}\n{}", server.log_tail(30)));
    alice
        .create_blog_node(None, None, AccessModel::Open)
        .await
        .unwrap();
    alice
        .configure_node(None, NS_MICROBLOG, &federated_blog_config())
        .await
        .unwrap_or_else(|e| panic!("{}: federation config refused: {e}", kind.name()));

    // Fedify follows alice's blog and gets Accept.
    let alice_actor = format!("{}/actor/alice@{}", gateway.base, server.domain());
    fedify
        .control("follow", json!({"target": alice_actor}))
        .await;
    fedify
        .wait_inbox("Accept", |e| e["actor"] == alice_actor.as_str())
        .await;
    assert_eq!(
        gateway
            .store
            .followers(&format!("alice@{}", server.domain()))
            .unwrap(),
        vec![fedify.actor.clone()]
    );

    // Alice posts; Fedify receives the Create(Note) (recorded only once its signature verified).
    let pubsub: Jid = BareJid::new(server.pubsub_service()).unwrap().into();
    let item = alice
        .post(
            None,
            None,
            post_entry("Hello fediverse", "First post through the gateway"),
            PostOptions {
                id: Some("hello-fediverse".into()),
                comments_service: Some(pubsub.clone()),
                ..PostOptions::default()
            },
        )
        .await
        .unwrap();
    let object = format!(
        "{}/item/alice@{}/hello-fediverse",
        gateway.base,
        server.domain()
    );
    let create = fedify
        .wait_inbox("Create", |e| e["object"] == object.as_str())
        .await;
    // The object's URL serves the same Note (content negotiation: activity+json).
    let served = fedify
        .http
        .get(&object)
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let served: Value = serde_json::from_str(&served.text().await.unwrap()).unwrap();
    assert_eq!(served["id"], object.as_str());
    assert!(served["content"]
        .to_string()
        .contains("First post through the gateway"));
    let outbox: Value = serde_json::from_str(
        &fedify
            .http
            .get(format!(
                "{}/outbox/alice@{}?page=1",
                gateway.base,
                server.domain()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        outbox["orderedItems"][0]["object"]["id"],
        object.as_str(),
        "{outbox:#}"
    );
    let content = create["activity"]["object"]["content"].to_string();
    assert!(
        content.contains("First post through the gateway"),
        "{create:#}"
    );

    // Fedify replies: alice sees the comment in the comments node, by the Fedify actor's virtual JID.
    fedify
        .control(
            "reply",
            json!({"target": alice_actor, "inReplyTo": object, "content": "<p>Nice post!</p>"}),
        )
        .await;
    let comments_node = comments_node_name("hello-fediverse");
    let mut comment = None;
    for _ in 0..120 {
        let entries = alice
            .entries(Some(&pubsub), Some(&comments_node), None)
            .await
            .unwrap();
        if let Some(c) = entries.entries.into_iter().next() {
            comment = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let comment = comment.expect("the reply never reached the comments node");
    let xml = String::from(&minidom::Element::from(&comment.entry));
    assert!(xml.contains("Nice post!"), "{xml}");
    let fed_host = fedify
        .origin
        .trim_start_matches("http://")
        .replace(':', "\\3a");
    let virtual_jid = format!("fed\\40{fed_host}@{}", server.component_domain());
    // The author is the virtual JID; so is the publisher where the server reports publishers
    // (Prosody does, ejabberd only with `itemreply = publisher`).
    assert_eq!(
        comment
            .entry
            .authors
            .first()
            .and_then(|a| a.jid())
            .map(|j| j.to_string()),
        Some(virtual_jid.clone()),
        "{xml}"
    );
    if kind == ServerKind::Prosody || comment.publisher.is_some() {
        assert_eq!(
            comment.publisher.map(|p| p.to_bare().to_string()),
            Some(virtual_jid.clone())
        );
    }

    // Likes and reactions become XEP-0470 attachments of the virtual JID.
    alice.create_attachments_node(&item).await.unwrap();
    fedify
        .control("like", json!({"target": alice_actor, "object": object}))
        .await;
    fedify
        .control(
            "react",
            json!({"target": alice_actor, "object": object, "emoji": "🎉"}),
        )
        .await;
    let mut seen = false;
    for _ in 0..120 {
        let view = alice.attachments(&item).await.unwrap();
        if let Some(a) = view.by_jid.iter().find(|a| a.jid.as_str() == virtual_jid) {
            if a.attachments.noticed.is_some() && a.attachments.emojis().contains(&"🎉".to_owned())
            {
                seen = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        seen,
        "the like and the reaction never reached the attachments node"
    );

    // Alice repeats her post: Fedify sees an Announce of it.
    let original = alice
        .entry(None, None, "hello-fediverse")
        .await
        .unwrap()
        .entry;
    alice
        .post(
            None,
            None,
            Entry::repeat_of(&original, &item),
            PostOptions {
                id: Some("repeat-hello".into()),
                ..PostOptions::default()
            },
        )
        .await
        .unwrap();
    let announce = fedify
        .wait_inbox("Announce", |e| e["object"] == object.as_str())
        .await;
    // She retracts the repeat: Fedify sees the Undo of that Announce.
    alice
        .delete_entry(None, None, "repeat-hello")
        .await
        .unwrap();
    let announce_id = announce["id"].as_str().unwrap().to_owned();
    let undo = fedify
        .wait_inbox("Undo", |e| e["object"] == announce_id.as_str())
        .await;
    assert_eq!(undo["actor"], alice_actor.as_str(), "{undo:#}");

    // Alice edits, then deletes: Fedify sees Update and Delete.
    alice
        .post(
            None,
            None,
            post_entry("Hello fediverse", "First post, edited"),
            PostOptions {
                id: Some("hello-fediverse".into()),
                ..PostOptions::default()
            },
        )
        .await
        .unwrap();
    let update = fedify
        .wait_inbox("Update", |e| e["object"] == object.as_str())
        .await;
    assert!(update["activity"]["object"]["content"]
        .to_string()
        .contains("edited"));
    alice
        .delete_entry(None, None, "hello-fediverse")
        .await
        .unwrap();
    fedify
        .wait_inbox("Delete", |e| e["object"] == object.as_str())
        .await;

    // bob subscribes to the Fedify actor's virtual JID: the gateway follows it for him, and the
    // actor's new Note reaches bob as a XEP-0277 item from the virtual JID.
    let bob = XmppClient::connect_plaintext_loopback(
        &format!("bob@{}", server.domain()),
        PW,
        server.c2s_addr(),
    )
    .await
    .unwrap_or_else(|e| panic!("bob: {e}\n{}", server.log_tail(30)));
    let mut events = bob.pubsub_events();
    let fed_jid: Jid = BareJid::new(&virtual_jid).unwrap().into();
    bob.subscribe(Some(&fed_jid), NS_MICROBLOG)
        .await
        .unwrap_or_else(|e| panic!("bob's subscription to {virtual_jid} refused: {e}"));
    let bob_actor = format!("{}/actor/bob@{}", gateway.base, server.domain());
    fedify
        .wait_inbox("Follow", |e| e["actor"] == bob_actor.as_str())
        .await;
    let mut accepted = false;
    for _ in 0..120 {
        let following = gateway
            .store
            .following(&format!("bob@{}", server.domain()))
            .unwrap();
        if following == vec![(fedify.actor.clone(), true)] {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(accepted, "Fedify's Accept of bob's Follow was not recorded");
    let note = fedify
        .control("post", json!({"content": "<p>Hello XMPP readers</p>"}))
        .await;
    let note_id = note["id"].as_str().unwrap().to_owned();
    let PubSubEvent::Items { items: got, .. } =
        next_blog_event(&mut events, &fed_jid, "item").await
    else {
        panic!("not an item notification")
    };
    let xml = String::from(got[0].payload.as_ref().unwrap());
    assert!(xml.contains("Hello XMPP readers"), "{xml}");
    let item_id = got[0].id.clone();

    // The Fedify actor edits its Note: bob is notified of the same item, edited.
    fedify
        .control(
            "update",
            json!({"id": note_id, "content": "<p>Hello XMPP readers, edited</p>"}),
        )
        .await;
    let PubSubEvent::Items { items: edited, .. } =
        next_blog_event(&mut events, &fed_jid, "edit").await
    else {
        panic!("not an item notification")
    };
    assert_eq!(edited[0].id, item_id);
    let xml = String::from(edited[0].payload.as_ref().unwrap());
    assert!(xml.contains("readers, edited"), "{xml}");

    // ...then deletes it: bob is notified of the retraction of that item.
    fedify.control("delete", json!({"id": note_id})).await;
    match next_blog_event(&mut events, &fed_jid, "retraction").await {
        PubSubEvent::Retract { ids, .. } => assert_eq!(ids, vec![item_id.clone()]),
        other => panic!("expected a retraction, got {other:?}"),
    }

    // bob unsubscribes: the gateway withdraws his Follow (Fedify sees Undo(Follow)).
    bob.unsubscribe(Some(&fed_jid), NS_MICROBLOG, None)
        .await
        .unwrap_or_else(|e| panic!("bob's unsubscription from {virtual_jid} refused: {e}"));
    let undo = fedify
        .wait_inbox("Undo", |e| e["actor"] == bob_actor.as_str())
        .await;
    let follow = &undo["activity"]["object"];
    assert_eq!(follow["type"], "Follow", "{undo:#}");
    assert_eq!(follow["object"], fedify.actor.as_str(), "{undo:#}");
    assert!(gateway
        .store
        .following(&format!("bob@{}", server.domain()))
        .unwrap()
        .is_empty());

    // The virtual JID as a pubsub service: bob reads the Fedify actor's notes (its outbox, through
    // the gateway) with disco and XEP-0059 paging.
    for i in 1..=5 {
        fedify
            .control(
                "post",
                json!({"content": format!("<p>Outbox note {i}</p>")}),
            )
            .await;
    }
    let nodes = bob.disco_items(Some(&fed_jid)).await.unwrap();
    assert_eq!(
        nodes,
        vec![(fed_jid.clone(), Some(NS_MICROBLOG.to_owned()))]
    );
    let info = bob
        .disco_info(Some(&fed_jid), Some(NS_MICROBLOG))
        .await
        .unwrap();
    assert!(info.has("http://jabber.org/protocol/pubsub"), "{info:?}");
    let text = |item: &xmpp_social::pubsub::Item| String::from(item.payload.as_ref().unwrap());
    let page_query = |rsm: RsmRequest| ItemsQuery {
        rsm: Some(rsm),
        ..ItemsQuery::default()
    };
    // Walk every page of 2: every note exactly once, newest first.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut rsm = RsmRequest::first(2);
    for _ in 0..10 {
        let page = bob
            .get_items(Some(&fed_jid), NS_MICROBLOG, &page_query(rsm.clone()))
            .await
            .unwrap_or_else(|e| panic!("items of {virtual_jid}: {e}"));
        let set = page.rsm.expect("an RSM answer");
        assert_eq!(set.count, Some(5), "{set:?}");
        if page.items.is_empty() {
            break;
        }
        assert_eq!(set.first_index, Some(seen.len()));
        seen.extend(page.items.iter().map(|i| (i.id.clone(), text(i))));
        rsm = RsmRequest::after(2, set.last.unwrap());
    }
    assert_eq!(seen.len(), 5, "{seen:#?}");
    for (n, (_, xml)) in seen.iter().enumerate() {
        assert!(xml.contains(&format!("Outbox note {}", 5 - n)), "{xml}");
    }
    // The last page, one item by id, the latest one.
    let last = bob
        .get_items(
            Some(&fed_jid),
            NS_MICROBLOG,
            &page_query(RsmRequest::last(2)),
        )
        .await
        .unwrap();
    let last_ids: Vec<&str> = last.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(last_ids, [seen[3].0.as_str(), seen[4].0.as_str()]);
    let one = bob
        .get_items_by_id(Some(&fed_jid), NS_MICROBLOG, &[seen[2].0.as_str()])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert!(text(&one[0]).contains("Outbox note 3"));
    let latest = bob
        .get_items(
            Some(&fed_jid),
            NS_MICROBLOG,
            &ItemsQuery {
                max_items: Some(1),
                ..ItemsQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(latest.items.len(), 1);
    assert!(text(&latest.items[0]).contains("Outbox note 5"));

    // alice's outbox is paged by RSM on her blog node: more entries than a page, every entry
    // exactly once, newest first, and back again with `prev`.
    for i in 1..=7 {
        alice
            .post(
                None,
                None,
                post_entry(&format!("Paged {i}"), &format!("Paged entry {i}")),
                PostOptions {
                    id: Some(format!("paged-{i}")),
                    ..PostOptions::default()
                },
            )
            .await
            .unwrap();
    }
    let get = |url: String| {
        let http = fedify.http.clone();
        async move {
            let text = http
                .get(&url)
                .header("accept", "application/activity+json")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"))
        }
    };
    let collection = get(format!("{}/outbox/alice@{}", gateway.base, server.domain())).await;
    assert_eq!(collection["type"], "OrderedCollection", "{collection:#}");
    if let Some(total) = collection.get("totalItems") {
        assert_eq!(total, 7, "{collection:#}");
    }
    let mut url = collection["first"].as_str().unwrap().to_owned();
    let mut walked: Vec<String> = Vec::new();
    let mut pages: Vec<Value> = Vec::new();
    for _ in 0..10 {
        let page = get(url.clone()).await;
        let items = page["orderedItems"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= OUTBOX_PAGE, "{page:#}");
        walked.extend(
            items
                .iter()
                .map(|a| a["object"]["id"].as_str().unwrap().to_owned()),
        );
        pages.push(page.clone());
        match page["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    let expected: Vec<String> = (1..=7)
        .rev()
        .map(|i| format!("{}/item/alice@{}/paged-{i}", gateway.base, server.domain()))
        .collect();
    assert_eq!(walked, expected, "{pages:#?}");
    // `prev` of the second page is the first page again.
    let prev = get(pages[1]["prev"].as_str().unwrap().to_owned()).await;
    assert_eq!(prev["orderedItems"], pages[0]["orderedItems"], "{prev:#}");
}
