//! One conformance suite for every [`OxStore`] (memory and SQLite), and the SQLite store's own
//! promises: state survives reopening, corrupt rows and future schemas are typed errors, the file is
//! private, `Debug` shows no key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use jid::BareJid;
use xmpp_e2ee::ox::store::OxStore;
use xmpp_e2ee::ox::{MemoryOxStore, NodeSecrets, SecretKey, SqliteOxStore, SqliteOxStoreError};

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn conformance<S: OxStore>(store: &mut S) {
    // Empty.
    assert!(store.load_own_key().unwrap().is_none());
    assert!(store.load_public_keys("bob@localhost").unwrap().is_empty());
    assert!(store
        .load_node_secrets("alice@localhost", "n")
        .unwrap()
        .is_none());

    // Own key: stored, replaced.
    let k1 = SecretKey::generate("alice@localhost").unwrap();
    store.store_own_key(&k1).unwrap();
    let back = store.load_own_key().unwrap().unwrap();
    assert_eq!(back.fingerprint(), k1.fingerprint());
    assert_eq!(back.to_bytes().unwrap(), k1.to_bytes().unwrap());
    let k2 = SecretKey::generate("alice@localhost").unwrap();
    store.store_own_key(&k2).unwrap();
    assert_eq!(
        store.load_own_key().unwrap().unwrap().fingerprint(),
        k2.fingerprint()
    );

    // Public keys per JID, replaced as a whole.
    let b1 = SecretKey::generate("bob@localhost").unwrap().public();
    let b2 = SecretKey::generate("bob@localhost").unwrap().public();
    let c1 = SecretKey::generate("carol@localhost").unwrap().public();
    store
        .store_public_keys("bob@localhost", &[b1.clone(), b2.clone()])
        .unwrap();
    store
        .store_public_keys("carol@localhost", std::slice::from_ref(&c1))
        .unwrap();
    let mut got: Vec<String> = store
        .load_public_keys("bob@localhost")
        .unwrap()
        .iter()
        .map(|k| k.fingerprint())
        .collect();
    got.sort();
    let mut want = vec![b1.fingerprint(), b2.fingerprint()];
    want.sort();
    assert_eq!(got, want);
    store
        .store_public_keys("bob@localhost", std::slice::from_ref(&b2))
        .unwrap();
    assert_eq!(store.load_public_keys("bob@localhost").unwrap(), vec![b2]);
    assert_eq!(store.load_public_keys("carol@localhost").unwrap(), vec![c1]);
    store.store_public_keys("carol@localhost", &[]).unwrap();
    assert!(store
        .load_public_keys("carol@localhost")
        .unwrap()
        .is_empty());

    // Node secrets per (service, node).
    let alice = jid("alice@localhost");
    let mut n = NodeSecrets::new(alice.clone(), "blog");
    n.create(&alice, Some("http://www.w3.org/2005/Atom"))
        .unwrap();
    store.store_node_secrets(&n).unwrap();
    let other = NodeSecrets::new(alice.clone(), "other");
    store.store_node_secrets(&other).unwrap();
    assert_eq!(
        store
            .load_node_secrets("alice@localhost", "blog")
            .unwrap()
            .unwrap(),
        n
    );
    n.revoke_current(None);
    n.create(&alice, None).unwrap();
    store.store_node_secrets(&n).unwrap();
    let back = store
        .load_node_secrets("alice@localhost", "blog")
        .unwrap()
        .unwrap();
    assert_eq!(back, n);
    assert_eq!(back.secrets.len(), 2);
    assert_eq!(
        store
            .load_node_secrets("alice@localhost", "other")
            .unwrap()
            .unwrap(),
        other
    );
}

#[test]
fn memory_store_conforms() {
    conformance(&mut MemoryOxStore::new());
}

#[test]
fn sqlite_store_conforms() {
    conformance(&mut SqliteOxStore::open_in_memory().unwrap());
    let dir = tempfile::tempdir().unwrap();
    conformance(&mut SqliteOxStore::open(dir.path().join("ox.sqlite")).unwrap());
}

#[test]
fn sqlite_state_survives_reopening_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ox.sqlite");
    let key = SecretKey::generate("alice@localhost").unwrap();
    let alice = jid("alice@localhost");
    let mut n = NodeSecrets::new(alice.clone(), "blog");
    let secret = n.create(&alice, None).unwrap();
    {
        let mut s = SqliteOxStore::open(&path).unwrap();
        s.store_own_key(&key).unwrap();
        s.store_node_secrets(&n).unwrap();
        // Debug shows neither key nor secret.
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&secret.secret));
        assert!(dbg.contains("ox.sqlite"));
    }
    let s = SqliteOxStore::open(&path).unwrap();
    assert_eq!(
        s.load_own_key().unwrap().unwrap().fingerprint(),
        key.fingerprint()
    );
    assert_eq!(
        s.load_node_secrets("alice@localhost", "blog")
            .unwrap()
            .unwrap(),
        n
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Debug of keys shows the fingerprint only.
    let dbg = format!("{key:?}");
    assert!(dbg.contains(&key.fingerprint()));
    assert!(dbg.len() < 200);
}

#[test]
fn sqlite_corrupt_rows_and_future_schemas_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ox.sqlite");
    {
        let mut s = SqliteOxStore::open(&path).unwrap();
        s.store_own_key(&SecretKey::generate("alice@localhost").unwrap())
            .unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "UPDATE own_key SET data = x'00ff00';
         INSERT INTO public_keys VALUES ('bob@localhost', 'X', x'99');
         INSERT INTO node_secrets VALUES ('alice@localhost', 'n', 'not xml');",
    )
    .unwrap();
    drop(raw);
    let s = SqliteOxStore::open(&path).unwrap();
    for (r, table) in [
        (s.load_own_key().map(|_| ()), "own_key"),
        (
            s.load_public_keys("bob@localhost").map(|_| ()),
            "public_keys",
        ),
        (
            s.load_node_secrets("alice@localhost", "n").map(|_| ()),
            "node_secrets",
        ),
    ] {
        match r {
            Err(SqliteOxStoreError::Corrupt { table: t, .. }) => assert_eq!(t, table),
            other => panic!("{table}: {other:?}"),
        }
    }
    drop(s);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    assert!(matches!(
        SqliteOxStore::open(&path),
        Err(SqliteOxStoreError::UnsupportedVersion { found: 99, .. })
    ));
    // Not a database at all.
    let junk = dir.path().join("junk");
    std::fs::write(
        &junk,
        b"this is not a database, just some text long enough to matter",
    )
    .unwrap();
    assert!(SqliteOxStore::open(&junk).is_err());
}
