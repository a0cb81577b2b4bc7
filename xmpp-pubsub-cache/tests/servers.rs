//! The sync engine against real Prosody and ejabberd servers: a 1,000-entry blog is synchronised,
//! then live publishes, updates, retractions and a purge keep the cache equal to a fresh fetch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jid::Jid;
use xmpp_pubsub_cache::{
    AsyncCache, Cache, Query, SqliteStore, SyncEngine, SyncOptions, SyncState,
};
use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{Entry, MicroblogExt, PostOptions, Text, NS_MICROBLOG};
use xmpp_social::pubsub::PubSubExt;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";
const ENTRIES: usize = 1_000;

async fn start(kind: ServerKind) -> Server {
    tokio::task::spawn_blocking(move || Server::start(kind, &[("alice", PW), ("bob", PW)]))
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"))
}

async fn login(server: &Server, user: &str) -> XmppClient {
    let jid = format!("{user}@{}", server.domain());
    XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{user} could not log in: {e}\n{}", server.log_tail(30)))
}

fn entry(title: &str, body: &str, tag: &str) -> Entry {
    let mut e = Entry::default().with_tag(tag);
    e.title = Some(Text::plain(title));
    e.content.push(Text::plain(body));
    e
}

async fn post_all(alice: &XmppClient, range: std::ops::Range<usize>, prefix: &str) {
    let ids: Vec<usize> = range.collect();
    // The first publish creates the node: concurrent ones would race to create it (ejabberd answers
    // `conflict` to the losers).
    let (first, rest) = ids.split_at(1.min(ids.len()));
    for chunk in std::iter::once(first).chain(rest.chunks(25)) {
        let posts = chunk.iter().map(|i| {
            let opts = PostOptions {
                id: Some(format!("entry-{i:04}")),
                ..PostOptions::default()
            };
            let tag = if i % 3 == 0 { "three" } else { "other" };
            alice.post(
                None,
                None,
                entry(
                    &format!("{prefix} {i}"),
                    &format!("Body number {i} zebra"),
                    tag,
                ),
                opts,
            )
        });
        for r in join_all(posts).await {
            r.expect("post");
        }
    }
}

/// id -> payload XML, from the service.
async fn fresh(bob: &XmppClient, alice: &Jid) -> BTreeMap<String, String> {
    bob.get_all_items(Some(alice), NS_MICROBLOG, 100, None)
        .await
        .expect("fresh fetch")
        .into_iter()
        .map(|i| {
            (
                i.id,
                i.payload.as_ref().map(String::from).unwrap_or_default(),
            )
        })
        .collect()
}

async fn cached(engine: &SyncEngine<XmppClient>, alice: &Jid) -> BTreeMap<String, String> {
    engine
        .cache()
        .items(engine.key(Some(alice), NS_MICROBLOG))
        .await
        .expect("cached items")
        .into_iter()
        .map(|i| (i.item_id, i.xml.unwrap_or_default()))
        .collect()
}

/// Waits until the cache equals a fresh fetch.
async fn converge(engine: &SyncEngine<XmppClient>, bob: &XmppClient, alice: &Jid, what: &str) {
    let expected = fresh(bob, alice).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = cached(engine, alice).await;
        if got == expected {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let missing: Vec<_> = expected
                .keys()
                .filter(|k| !got.contains_key(*k))
                .take(5)
                .collect();
            let extra: Vec<_> = got
                .keys()
                .filter(|k| !expected.contains_key(*k))
                .take(5)
                .collect();
            let differ: Vec<_> = expected
                .iter()
                .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
                .map(|(k, _)| k)
                .take(5)
                .collect();
            panic!(
                "{what}: cache ({}) != service ({}); missing {missing:?}, extra {extra:?}, differ {differ:?}",
                got.len(),
                expected.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sync_1000_entry_blog_with_live_events(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = Arc::new(login(&server, "bob").await);
    let alice_jid = Jid::new(&format!("alice@{}", server.domain())).expect("jid");

    post_all(&alice, 0..ENTRIES, "Entry").await;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("cache.db")).expect("store");
    let cache = AsyncCache::new(Cache::new(Arc::new(store)));
    let engine = Arc::new(SyncEngine::new(
        bob.clone(),
        cache.clone(),
        SyncOptions::default(),
    ));
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run().await })
    };
    let t = std::time::Instant::now();
    let report = engine
        .sync_node(Some(&alice_jid), NS_MICROBLOG)
        .await
        .expect("sync");
    eprintln!(
        "{kind:?}: synced {} entries in {:?}",
        report.fetched,
        t.elapsed()
    );
    assert_eq!(report.fetched as usize, ENTRIES);
    assert_eq!(report.put.inserted as usize, ENTRIES);
    let node = cache
        .node(engine.key(Some(&alice_jid), NS_MICROBLOG))
        .await
        .expect("node")
        .expect("cached node");
    assert_eq!(node.sync_state, SyncState::Completed);
    assert_eq!(node.settings.node_type.as_deref(), Some("blog"));
    converge(&engine, &bob, &alice_jid, "after sync").await;

    // Live: 30 new entries, 20 updates, 15 retractions, interleaved.
    let new = post_all(&alice, ENTRIES..ENTRIES + 30, "New");
    let upd = post_all(&alice, 100..120, "Updated");
    let retract = async {
        for i in 500..515 {
            alice
                .delete_entry(None, None, &format!("entry-{i:04}"))
                .await
                .expect("retract");
        }
    };
    futures::join!(new, upd, retract);
    converge(&engine, &bob, &alice_jid, "after live events").await;

    // The cache answers searches on what it holds.
    let hits = cache
        .search(
            Query::new()
                .fts("updated")
                .filter("tags", "overlap", serde_json::json!(["three"])),
        )
        .await
        .expect("search");
    assert_eq!(hits.items.len(), (100..120).filter(|i| i % 3 == 0).count());

    // Read-through: served from the cache when in sync.
    let items = engine
        .get_items(Some(&alice_jid), NS_MICROBLOG)
        .await
        .expect("read-through");
    assert_eq!(items.len(), ENTRIES + 30 - 15);

    // A resync on demand changes nothing.
    let again = engine
        .sync_node(Some(&alice_jid), NS_MICROBLOG)
        .await
        .expect("resync");
    assert_eq!(
        again.put.inserted + again.put.updated + again.removed,
        0,
        "{again:?}"
    );

    // Purge.
    alice.purge(None, NS_MICROBLOG).await.expect("purge");
    converge(&engine, &bob, &alice_jid, "after purge").await;
    assert!(cached(&engine, &alice_jid).await.is_empty());

    runner.abort();
    alice.close().await.expect("close");
}

macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod prosody {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(xmpp_testkit::ServerKind::Prosody).await
                }
            )*
        }
        mod ejabberd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(xmpp_testkit::ServerKind::Ejabberd).await
                }
            )*
        }
    };
}

on_both_servers!(sync_1000_entry_blog_with_live_events);
