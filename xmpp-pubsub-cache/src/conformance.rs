//! One conformance suite for every [`CacheStore`] backend: each function takes a fresh, empty store
//! and panics on a failed check. [`crate::store_conformance_tests!`] turns them into `#[test]`s for a
//! backend; this crate runs it on SQLite in a file and in memory, and a PostgreSQL backend would run
//! the same.

use serde_json::json;

use crate::model::{ItemInput, NodeKey, NodeSettings, PurgeCriteria, SyncState};
use crate::query::{FieldSchema, FieldType, Query};
use crate::store::CacheStore;
use crate::QueryError;

/// Generates one `#[test]` per conformance check, each with a store made by `$make` (an expression
/// giving something that derefs to a [`CacheStore`]).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@tests $make;
            nodes_and_states, items_roundtrip, profiles_isolated, out_of_order,
            retract_and_tombstones, purge_and_delete, snapshot, item_limit, search_basics,
            search_errors, purge_by_criteria, decrypted, stale_syncs);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let store = $make;
                $crate::conformance::$name(&*store);
            }
        )*
    };
}

fn key(profile: &str, node: &str) -> NodeKey {
    NodeKey::new(profile, "pubsub.example.org", node)
}

fn item(id: &str, text: &str) -> ItemInput {
    ItemInput {
        item_id: id.into(),
        xml: format!("<x xmlns='urn:t'>{text}</x>"),
        parsed: Some(json!({"title": text})),
        text: text.into(),
        ..ItemInput::default()
    }
}

fn schema() -> FieldSchema {
    let mut s = FieldSchema::new();
    s.declare("title", FieldType::Text);
    s.declare("n", FieldType::Number);
    s
}

fn ids(store: &dyn CacheStore, k: &NodeKey) -> Vec<String> {
    store
        .items(k)
        .expect("items")
        .into_iter()
        .map(|i| i.item_id)
        .collect()
}

fn search_ids(store: &dyn CacheStore, q: Query) -> Vec<String> {
    store
        .search(&q.compile(&schema()).expect("valid query"))
        .expect("search")
        .items
        .into_iter()
        .map(|i| i.item_id)
        .collect()
}

/// Nodes: upsert, read back, sync states.
pub fn nodes_and_states(store: &dyn CacheStore) {
    let k = key("p", "n");
    assert!(store.node(&k).expect("node").is_none());
    let s = NodeSettings {
        node_type: Some("blog".into()),
        max_items: Some(7),
        config: Some(json!({"pubsub#max_items": ["7"]})),
        ..NodeSettings::default()
    };
    store.upsert_node(&k, &s).expect("upsert");
    let n = store.node(&k).expect("node").expect("exists");
    assert_eq!(n.settings, s);
    assert_eq!(n.sync_state, SyncState::NoSync);
    store
        .set_sync_state(&k, SyncState::Error, Some("boom"))
        .expect("state");
    let n = store.node(&k).expect("node").expect("exists");
    assert_eq!(n.sync_state, SyncState::Error);
    assert_eq!(n.sync_error.as_deref(), Some("boom"));
    assert!(store
        .set_sync_state(&key("p", "missing"), SyncState::Completed, None)
        .is_err());
    assert_eq!(store.nodes(Some("p")).expect("nodes").len(), 1);
    assert_eq!(store.nodes(Some("other")).expect("nodes").len(), 0);
}

/// Items: insert, update, unchanged, read back in creation order.
pub fn items_roundtrip(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    let mut a = item("a", "alpha");
    a.tags = vec!["T1".into(), "t2".into()];
    a.published = Some(1_000);
    let r = store
        .put_items(&k, &[a.clone(), item("b", "beta")], 10)
        .expect("put");
    assert_eq!(r.inserted, 2);
    assert_eq!(ids(store, &k), ["a", "b"]);
    let got = store.item(&k, "a").expect("item").expect("exists");
    assert_eq!(got.tags, ["T1", "t2"]);
    assert_eq!(got.published, Some(1_000));
    assert_eq!(got.xml.as_deref(), Some(a.xml.as_str()));
    let r = store.put_items(&k, &[a.clone()], 20).expect("put");
    assert_eq!(r.unchanged, 1);
    let r = store
        .put_items(&k, &[item("a", "alpha 2")], 30)
        .expect("put");
    assert_eq!(r.updated, 1);
    let got = store.item(&k, "a").expect("item").expect("exists");
    assert_eq!(got.text, "alpha 2");
    assert!(got.tags.is_empty());
    // An update keeps the creation order.
    assert_eq!(ids(store, &k), ["a", "b"]);
    assert!(store
        .put_items(&key("p", "missing"), &[item("x", "x")], 1)
        .is_err());
}

/// Profiles never see each other's nodes or items.
pub fn profiles_isolated(store: &dyn CacheStore) {
    let (k1, k2) = (key("alice", "n"), key("bob", "n"));
    for k in [&k1, &k2] {
        store
            .upsert_node(k, &NodeSettings::default())
            .expect("upsert");
    }
    store
        .put_items(&k1, &[item("a", "secret words")], 1)
        .expect("put");
    store
        .put_items(&k2, &[item("b", "other words")], 1)
        .expect("put");
    assert_eq!(ids(store, &k1), ["a"]);
    assert_eq!(ids(store, &k2), ["b"]);
    let mut q = Query::new().fts("words");
    q.profiles = vec!["bob".into()];
    assert_eq!(search_ids(store, q), ["b"]);
    store.retract_items(&k2, &["a".into()], 5).expect("retract");
    assert_eq!(ids(store, &k1), ["a"]);
}

/// An older observation never overwrites a newer one, whatever the order of arrival.
pub fn out_of_order(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    // The update (observed at 20) arrives before the first version (observed at 10).
    store.put_items(&k, &[item("a", "v2")], 20).expect("put");
    let r = store.put_items(&k, &[item("a", "v1")], 10).expect("put");
    assert_eq!(r.stale, 1);
    assert_eq!(store.item(&k, "a").expect("item").expect("a").text, "v2");
    // Payload dates: an older `updated` is refused even when observed later.
    let mut new = item("b", "new");
    new.updated = Some(200);
    let mut old = item("b", "old");
    old.updated = Some(100);
    store.put_items(&k, &[new], 30).expect("put");
    assert_eq!(store.put_items(&k, &[old], 40).expect("put").stale, 1);
    assert_eq!(store.item(&k, "b").expect("item").expect("b").text, "new");
}

/// Retractions delete, and a tombstone refuses older publishes of the same id.
pub fn retract_and_tombstones(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    // Retraction of an unknown item, then a late, older publish of it.
    assert_eq!(
        store.retract_items(&k, &["x".into()], 50).expect("retract"),
        0
    );
    assert_eq!(
        store
            .put_items(&k, &[item("x", "x")], 40)
            .expect("put")
            .stale,
        1
    );
    assert!(store.item(&k, "x").expect("item").is_none());
    // A publish observed after the retraction brings the id back.
    assert_eq!(
        store
            .put_items(&k, &[item("x", "x2")], 60)
            .expect("put")
            .inserted,
        1
    );
    // A retraction older than the cached version does not delete it.
    assert_eq!(
        store.retract_items(&k, &["x".into()], 55).expect("retract"),
        0
    );
    assert!(store.item(&k, "x").expect("item").is_some());
    assert_eq!(
        store.retract_items(&k, &["x".into()], 70).expect("retract"),
        1
    );
    assert!(store.item(&k, "x").expect("item").is_none());
    assert_eq!(
        search_ids(store, Query::new().fts("x2")),
        Vec::<String>::new()
    );
}

/// Purge empties and refuses older data; node delete removes everything.
pub fn purge_and_delete(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    store
        .put_items(&k, &[item("a", "a"), item("b", "b")], 10)
        .expect("put");
    assert_eq!(store.purge_node(&k, 20).expect("purge"), 2);
    assert_eq!(
        store
            .put_items(&k, &[item("a", "a")], 15)
            .expect("put")
            .stale,
        1
    );
    assert_eq!(
        store
            .put_items(&k, &[item("c", "c")], 25)
            .expect("put")
            .inserted,
        1
    );
    assert_eq!(ids(store, &k), ["c"]);
    assert!(store.delete_node(&k).expect("delete"));
    assert!(store.node(&k).expect("node").is_none());
    assert!(!store.delete_node(&k).expect("delete"));
    assert_eq!(store.stats().expect("stats").items, 0);
}

/// A full fetch removes what the service no longer has, but not newer items.
pub fn snapshot(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    store
        .put_items(&k, &[item("old", "o"), item("keep", "k")], 10)
        .expect("put");
    store.put_items(&k, &[item("live", "l")], 30).expect("put");
    store.put_items(&k, &[item("keep", "k")], 20).expect("put");
    let removed = store
        .finish_snapshot(&k, &["keep".into()], 20)
        .expect("finish");
    assert_eq!(removed, 1);
    assert_eq!(ids(store, &k), ["keep", "live"]);
}

/// The per-node item limit evicts the oldest items.
pub fn item_limit(store: &dyn CacheStore) {
    let k = key("p", "n");
    let s = NodeSettings {
        max_items: Some(3),
        ..NodeSettings::default()
    };
    store.upsert_node(&k, &s).expect("upsert");
    let items: Vec<_> = (0..5).map(|i| item(&format!("i{i}"), "t")).collect();
    let r = store.put_items(&k, &items, 10).expect("put");
    assert_eq!(r.evicted, 2);
    assert_eq!(ids(store, &k), ["i2", "i3", "i4"]);
}

/// Full text, filters, orders, paging.
pub fn search_basics(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(
            &k,
            &NodeSettings {
                node_type: Some("blog".into()),
                ..NodeSettings::default()
            },
        )
        .expect("upsert");
    let mut items = Vec::new();
    for i in 0..10i64 {
        let mut it = item(
            &format!("i{i}"),
            if i % 2 == 0 { "even Café" } else { "odd" },
        );
        it.parsed = Some(json!({"title": format!("Title {i}"), "n": i}));
        it.published = Some(1000 - i);
        it.tags = if i < 5 {
            vec!["Low".into()]
        } else {
            vec!["high".into()]
        };
        items.push(it);
    }
    store.put_items(&k, &items, 10).expect("put");
    assert_eq!(
        search_ids(store, Query::new().fts("cafe").order_by("item_id", false)),
        ["i0", "i2", "i4", "i6", "i8"]
    );
    assert_eq!(
        search_ids(
            store,
            Query::new()
                .filter("n", ">=", json!(3))
                .filter("n", "<", json!(6))
                .order_by("published", false)
        ),
        ["i5", "i4", "i3"]
    );
    assert_eq!(
        search_ids(
            store,
            Query::new()
                .filter("tags", "ioverlap", json!(["LOW"]))
                .filter("title", "ilike", json!("title 1%"))
        ),
        ["i1"]
    );
    assert_eq!(
        search_ids(store, Query::new().filter("title", "like", json!("title%"))).len(),
        0
    );
    assert_eq!(
        search_ids(
            store,
            Query::new()
                .filter("tags", "disjoint", json!(["Low"]))
                .filter("n", "not_in", json!([5, 6]))
                .order_by("n", true)
        ),
        ["i9", "i8", "i7"]
    );
    let mut q = Query::new().order_by("n", false).limit(4);
    let page = store.search(&q.compile(&schema()).expect("q")).expect("s");
    assert_eq!(page.items.len(), 4);
    q.cursor = page.next_cursor;
    let page2 = store.search(&q.compile(&schema()).expect("q")).expect("s");
    assert_eq!(page2.items[0].item_id, "i4");
    let mut t = Query::new();
    t.types = vec!["other".into()];
    assert!(search_ids(store, t).is_empty());
}

/// A bad full-text query is a typed error.
pub fn search_errors(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    store.put_items(&k, &[item("a", "a")], 1).expect("put");
    for bad in [
        "\"unterminated",
        "AND",
        "a OR",
        "(a",
        "nosuchcol: x",
        "a NEAR(",
    ] {
        let e = store
            .search(&Query::new().fts(bad).compile(&schema()).expect("compiles"))
            .expect_err(bad);
        assert!(
            matches!(e, crate::CacheError::Query(QueryError::FtsSyntax { .. })),
            "{bad}: {e:?}"
        );
    }
}

/// Purge by criteria.
pub fn purge_by_criteria(store: &dyn CacheStore) {
    let (k1, k2) = (key("p", "blog"), key("p", "other"));
    store
        .upsert_node(
            &k1,
            &NodeSettings {
                node_type: Some("blog".into()),
                ..NodeSettings::default()
            },
        )
        .expect("upsert");
    store
        .upsert_node(&k2, &NodeSettings::default())
        .expect("upsert");
    store
        .put_items(&k1, &[item("a", "a"), item("b", "b")], 10)
        .expect("put");
    store.put_items(&k2, &[item("c", "c")], 10).expect("put");
    let c = PurgeCriteria {
        types: vec!["blog".into()],
        ..PurgeCriteria::default()
    };
    assert_eq!(store.purge(&c).expect("purge"), 2);
    assert_eq!(ids(store, &k2), ["c"]);
    let c = PurgeCriteria {
        updated_before: Some(5),
        ..PurgeCriteria::default()
    };
    assert_eq!(store.purge(&c).expect("purge"), 0);
    let stats = store.stats().expect("stats");
    assert_eq!((stats.nodes, stats.items), (2, 1));
}

/// Decrypted data next to the ciphertext.
pub fn decrypted(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    let mut enc = item("e", "");
    enc.encrypted = true;
    enc.xml = "<openpgp xmlns='urn:xmpp:openpgp:0'>BASE64</openpgp>".into();
    store.put_items(&k, &[enc.clone()], 1).expect("put");
    assert!(search_ids(store, Query::new().fts("hidden")).is_empty());
    let d = crate::model::DecryptedInput {
        plain_xml: "<x xmlns='urn:t'>hidden treasure</x>".into(),
        parsed: Some(json!({"title": "hidden treasure"})),
        text: "hidden treasure".into(),
        signature_verified: true,
        tags: vec!["secret".into()],
        ..Default::default()
    };
    store.set_decrypted(&k, "e", &d).expect("decrypted");
    let got = store.item(&k, "e").expect("item").expect("e");
    assert!(got.encrypted && got.decrypted && got.signature_verified);
    assert_eq!(got.xml.as_deref(), Some(enc.xml.as_str()));
    assert_eq!(got.plain_xml.as_deref(), Some(d.plain_xml.as_str()));
    let mut q = Query::new().fts("treasure");
    q.with_payload = true;
    let page = store.search(&q.compile(&schema()).expect("q")).expect("s");
    assert_eq!(page.items.len(), 1);
    // The flags survive a read from the cache (Libervia lost the encrypted flag there).
    assert!(page.items[0].encrypted && page.items[0].decrypted);
    assert!(store.set_decrypted(&k, "missing", &d).is_err());
    let stats = store.stats().expect("stats");
    assert_eq!((stats.encrypted_items, stats.decrypted_items), (1, 1));
}

/// Stuck in-progress syncs are reset.
pub fn stale_syncs(store: &dyn CacheStore) {
    let k = key("p", "n");
    store
        .upsert_node(&k, &NodeSettings::default())
        .expect("upsert");
    store
        .set_sync_state(&k, SyncState::InProgress, None)
        .expect("state");
    assert_eq!(store.reset_stale_syncs(0).expect("reset"), 0);
    assert_eq!(store.reset_stale_syncs(i64::MAX).expect("reset"), 1);
    assert_eq!(
        store.node(&k).expect("node").expect("n").sync_state,
        SyncState::Error
    );
}
