//! Crash safety: a child process ingests batches (one transaction each) and reports each commit; the
//! parent kills it with SIGKILL mid-ingest, then checks `PRAGMA integrity_check` and that every
//! reported batch is there in full.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use xmpp_pubsub_cache::{CacheStore, ItemInput, NodeKey, NodeSettings, SqliteStore};

const CHILD_ENV: &str = "XMPP_PUBSUB_CACHE_CRASH_CHILD_DB";
const BATCH: usize = 300;

fn key() -> NodeKey {
    NodeKey::new("me@example.org", "pubsub.example.org", "crash")
}

/// The child: ingests until killed. Does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(&path).expect("open");
    store
        .upsert_node(
            &key(),
            &NodeSettings {
                max_items: Some(10_000_000),
                ..NodeSettings::default()
            },
        )
        .expect("node");
    let filler = "lorem ipsum dolor sit amet ".repeat(40);
    for batch in 0.. {
        let items: Vec<ItemInput> = (0..BATCH)
            .map(|i| ItemInput {
                item_id: format!("b{batch}-{i}"),
                xml: format!("<x xmlns='urn:t'>{batch} {i} {filler}</x>"),
                text: format!("batch{batch} item{i} {filler}"),
                tags: vec![format!("t{}", i % 7)],
                ..ItemInput::default()
            })
            .collect();
        store.put_items(&key(), &items, 1_000 + batch).expect("put");
        // Reported only after the commit returned.
        println!("committed {batch}");
    }
}

#[test]
fn sigkill_mid_ingest_keeps_committed_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut committed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(n) = line.strip_prefix("committed ") {
            committed.push(n.trim().parse::<usize>().expect("batch number"));
            if committed.len() == 12 {
                // Mid-way through the next batch's transaction, most likely.
                child.kill().expect("SIGKILL");
                break;
            }
        }
    }
    child.wait().expect("reaped");
    assert_eq!(committed.len(), 12, "the child did not ingest");

    let store = SqliteStore::open(&db).expect("reopen after crash");
    store.integrity_check().expect("integrity_check");
    let items = store.items(&key()).expect("items");
    let ids: std::collections::HashSet<_> = items.iter().map(|i| i.item_id.as_str()).collect();
    for b in &committed {
        for i in 0..BATCH {
            assert!(
                ids.contains(format!("b{b}-{i}").as_str()),
                "batch {b} item {i} lost"
            );
        }
    }
    // Nothing half-written: whole batches only.
    assert_eq!(items.len() % BATCH, 0, "a partial batch is visible");
    // The full-text index agrees with the table.
    let n = store
        .search(
            &xmpp_pubsub_cache::Query::new()
                .fts("lorem")
                .limit(10_000)
                .compile(&xmpp_pubsub_cache::FieldSchema::new())
                .expect("query"),
        )
        .expect("search")
        .items
        .len();
    assert_eq!(n, items.len().min(10_000));
}
