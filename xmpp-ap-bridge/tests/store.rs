//! The gateway store's conformance suite (run on SQLite, in memory and in a file reopened), and the
//! delivery queue's policy: backoff, dead letters, shared inboxes, restart with deliveries pending.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use xmpp_ap_bridge::queue::{
    enqueue_all, plan_inboxes, run_worker, settle, Backoff, Deliverer, DeliveryError, WorkerConfig,
};
use xmpp_ap_bridge::store::{Delivery, GatewayStore, RemoteActor, SqliteGatewayStore};

fn actor(id: &str, shared: Option<&str>) -> RemoteActor {
    RemoteActor {
        id: id.to_owned(),
        inbox: format!("{id}/inbox"),
        shared_inbox: shared.map(str::to_owned),
        key_id: format!("{id}#main-key"),
        public_key_pem: "-----BEGIN PUBLIC KEY-----".to_owned(),
        document: "{}".to_owned(),
        fetched_at: 100,
    }
}

/// What every [`GatewayStore`] must do.
fn conformance(s: &dyn GatewayStore) {
    // Keys: the first one stays.
    assert_eq!(s.actor_key("alice").unwrap(), None);
    assert_eq!(s.ensure_actor_key("alice", "K1").unwrap(), "K1");
    assert_eq!(s.ensure_actor_key("alice", "K2").unwrap(), "K1");
    assert_eq!(s.actor_key("alice").unwrap().as_deref(), Some("K1"));

    // Remote actors: stored, refreshed, deleted with their follows.
    let a = actor(
        "https://m.example/users/bob",
        Some("https://m.example/inbox"),
    );
    s.store_remote_actor(&a).unwrap();
    assert_eq!(s.remote_actor(&a.id).unwrap(), Some(a.clone()));
    let fresh = RemoteActor {
        fetched_at: 200,
        public_key_pem: "NEW".into(),
        ..a.clone()
    };
    s.store_remote_actor(&fresh).unwrap();
    assert_eq!(s.remote_actor(&a.id).unwrap(), Some(fresh));

    // Follows both ways.
    s.add_follower("alice", &a.id).unwrap();
    s.add_follower("alice", &a.id).unwrap();
    s.add_follower("alice", "https://z.example/u/zed").unwrap();
    assert_eq!(
        s.followers("alice").unwrap(),
        [a.id.clone(), "https://z.example/u/zed".to_owned()]
    );
    assert!(s
        .remove_follower("alice", "https://z.example/u/zed")
        .unwrap());
    assert!(!s
        .remove_follower("alice", "https://z.example/u/zed")
        .unwrap());
    s.set_following("carol@localhost", &a.id, false).unwrap();
    s.set_following("carol@localhost", &a.id, true).unwrap();
    assert_eq!(
        s.following("carol@localhost").unwrap(),
        [(a.id.clone(), true)]
    );
    assert_eq!(s.subscribers(&a.id).unwrap(), ["carol@localhost"]);
    s.delete_remote_actor(&a.id).unwrap();
    assert_eq!(s.remote_actor(&a.id).unwrap(), None);
    assert!(s.followers("alice").unwrap().is_empty());
    assert!(s.following("carol@localhost").unwrap().is_empty());

    // Inbound de-duplication.
    assert!(s.first_sight("https://m.example/a/1", 10).unwrap());
    assert!(!s.first_sight("https://m.example/a/1", 20).unwrap());
    assert!(s.first_sight("https://m.example/a/2", 30).unwrap());
    assert_eq!(s.prune_seen(25).unwrap(), 1);
    assert!(s.first_sight("https://m.example/a/1", 40).unwrap());

    // Queue: due order, leases, retry, dead letters.
    let d = |n: u32| Delivery {
        inbox: format!("https://m.example/inbox{n}"),
        body: format!("{{\"n\":{n}}}"),
        signer: "alice".into(),
    };
    let id1 = s.enqueue(&d(1), 100).unwrap();
    let id2 = s.enqueue(&d(2), 50).unwrap();
    let _id3 = s.enqueue(&d(3), 1000).unwrap();
    assert_eq!(s.pending_count().unwrap(), 3);
    let due = s.take_due(100, 60, 10).unwrap();
    assert_eq!(
        due.iter().map(|q| q.id).collect::<Vec<_>>(),
        [id2, id1],
        "due first, oldest first"
    );
    assert_eq!(due[1].delivery, d(1));
    assert!(s.take_due(100, 60, 10).unwrap().is_empty(), "leased");
    s.complete(id2).unwrap();
    s.fail(id1, "HTTP 503", Some(500)).unwrap();
    assert!(s.take_due(400, 60, 10).unwrap().is_empty());
    let again = s.take_due(500, 60, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    s.fail(id1, "HTTP 410 Gone", None).unwrap();
    let dead = s.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].last_error, "HTTP 410 Gone");
    assert_eq!(s.pending_count().unwrap(), 1);

    // Item mapping both ways.
    s.map_item(
        "localhost",
        "urn:xmpp:microblog:0",
        "p1",
        "https://gw/_ap/item/alice/p1",
    )
    .unwrap();
    assert_eq!(
        s.object_of("localhost", "urn:xmpp:microblog:0", "p1")
            .unwrap()
            .as_deref(),
        Some("https://gw/_ap/item/alice/p1")
    );
    assert_eq!(
        s.item_of("https://gw/_ap/item/alice/p1").unwrap(),
        Some((
            "localhost".into(),
            "urn:xmpp:microblog:0".into(),
            "p1".into()
        ))
    );
    assert_eq!(s.item_of("https://nowhere").unwrap(), None);
    // Repeats: the Announce is kept until taken, once.
    assert_eq!(s.take_repeat("localhost", "n", "r1").unwrap(), None);
    s.record_repeat("localhost", "n", "r1", "{\"type\":\"Announce\"}")
        .unwrap();
    assert_eq!(
        s.take_repeat("localhost", "n", "r1").unwrap().as_deref(),
        Some("{\"type\":\"Announce\"}")
    );
    assert_eq!(s.take_repeat("localhost", "n", "r1").unwrap(), None);
}

/// A database of schema version 1 (before repeats were recorded) is upgraded in place.
#[test]
fn sqlite_upgrades_a_version_1_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.sqlite");
    {
        let s = SqliteGatewayStore::open(&path).unwrap();
        s.map_item("localhost", "n", "p1", "https://gw/p1").unwrap();
    }
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("DROP TABLE repeats; PRAGMA user_version = 1;")
            .unwrap();
    }
    let s = SqliteGatewayStore::open(&path).unwrap();
    assert_eq!(
        s.object_of("localhost", "n", "p1").unwrap().as_deref(),
        Some("https://gw/p1")
    );
    s.record_repeat("localhost", "n", "r1", "{}").unwrap();
    assert!(s.take_repeat("localhost", "n", "r1").unwrap().is_some());
}

#[test]
fn sqlite_in_memory_conforms() {
    conformance(&SqliteGatewayStore::open_in_memory().unwrap());
}

#[test]
fn sqlite_file_conforms_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.sqlite");
    {
        let s = SqliteGatewayStore::open(&path).unwrap();
        conformance(&s);
        s.enqueue(
            &Delivery {
                inbox: "https://x/inbox".into(),
                body: "{}".into(),
                signer: "alice".into(),
            },
            0,
        )
        .unwrap();
    }
    let s = SqliteGatewayStore::open(&path).unwrap();
    assert_eq!(s.actor_key("alice").unwrap().as_deref(), Some("K1"));
    assert_eq!(s.pending_count().unwrap(), 2);
    assert_eq!(s.dead_letters().unwrap().len(), 1);
}

#[test]
fn backoff_doubles_caps_and_gives_up() {
    let b = Backoff {
        base: 30,
        max: 3600,
        max_attempts: 5,
    };
    assert_eq!(b.next_try(1, 1000), Some(1030));
    assert_eq!(b.next_try(2, 1000), Some(1060));
    assert_eq!(b.next_try(4, 1000), Some(1240));
    let capped = Backoff {
        max_attempts: 100,
        ..b
    };
    assert_eq!(capped.next_try(60, 0), Some(3600));
    assert_eq!(b.next_try(5, 1000), None);
    assert_eq!(Backoff::default().next_try(u32::MAX, i64::MAX), None);
}

#[test]
fn shared_inboxes_are_used_once() {
    let a = actor("https://m.example/users/a", Some("https://m.example/inbox"));
    let b = actor("https://m.example/users/b", Some("https://m.example/inbox"));
    let c = actor("https://p.example/users/c", None);
    assert_eq!(
        plan_inboxes([&a, &b, &c]),
        ["https://m.example/inbox", "https://p.example/users/c/inbox"]
    );
}

#[test]
fn settle_applies_the_policy() {
    let s = SqliteGatewayStore::open_in_memory().unwrap();
    let ids = enqueue_all(&s, "alice", "{}", &["i1".into(), "i2".into()], 0).unwrap();
    let due = s.take_due(0, 10, 10).unwrap();
    let b = Backoff::default();
    let retry = DeliveryError {
        retryable: true,
        reason: "timeout".into(),
    };
    let refuse = DeliveryError {
        retryable: false,
        reason: "HTTP 403".into(),
    };
    settle(&s, &b, &due[0], Err(retry), 0).unwrap();
    settle(&s, &b, &due[1], Err(refuse), 0).unwrap();
    assert_eq!(s.dead_letters().unwrap()[0].id, ids[1]);
    assert_eq!(s.take_due(29, 10, 10).unwrap().len(), 0);
    assert_eq!(s.take_due(30, 10, 10).unwrap().len(), 1);
}

/// Fails the first `fail_first` attempts, then accepts; records what it accepted.
struct Flaky {
    fail_first: usize,
    calls: AtomicUsize,
    accepted: Mutex<Vec<String>>,
}

impl Deliverer for Flaky {
    async fn deliver(&self, d: &Delivery) -> Result<(), DeliveryError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(DeliveryError {
                retryable: true,
                reason: "connection refused".into(),
            });
        }
        self.accepted.lock().unwrap().push(d.inbox.clone());
        Ok(())
    }
}

/// Deliveries queued before a "crash" are delivered by a worker started on the reopened store, with
/// retries after failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_pending_deliveries_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.sqlite");
    let inboxes: Vec<String> = (0..20)
        .map(|i| format!("https://h{i}.example/inbox"))
        .collect();
    {
        let s = SqliteGatewayStore::open(&path).unwrap();
        enqueue_all(&s, "alice", "{\"type\":\"Create\"}", &inboxes, 0).unwrap();
        // A worker that took some and "crashed" before settling: their lease is short.
        assert_eq!(s.take_due(0, 1, 5).unwrap().len(), 5);
    }
    let store = Arc::new(SqliteGatewayStore::open(&path).unwrap());
    let deliverer = Arc::new(Flaky {
        fail_first: 7,
        calls: AtomicUsize::new(0),
        accepted: Mutex::new(Vec::new()),
    });
    let config = WorkerConfig {
        backoff: Backoff {
            base: 1,
            max: 1,
            max_attempts: 10,
        },
        concurrency: 4,
        lease: 30,
        idle: Duration::from_millis(50),
    };
    let s2 = store.clone();
    let stop = async move {
        for _ in 0..200 {
            if s2.pending_count().unwrap() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    run_worker(store.clone(), deliverer.clone(), config, stop).await;
    assert_eq!(store.pending_count().unwrap(), 0);
    assert!(store.dead_letters().unwrap().is_empty());
    let mut got = deliverer.accepted.lock().unwrap().clone();
    got.sort();
    let mut want = inboxes.clone();
    want.sort();
    assert_eq!(got, want);
    assert!(deliverer.calls.load(Ordering::SeqCst) >= 27);
}
