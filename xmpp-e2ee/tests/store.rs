//! Key stores: a conformance suite (run on the in-memory and the SQLite store), restarts
//! mid-conversation on both (the SQLite files closed and reopened), and corrupt stored state.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use xmpp_e2ee::omemo::{
    DeviceAddress, DeviceKeys, DeviceRecord, MemoryStore, OmemoError, OmemoStore, Profile, Session,
    TrustLevel,
};

const PROFILES: [Profile; 2] = [Profile::Omemo2, Profile::Legacy];

/// What every [`OmemoStore`] must do.
fn conformance<S: OmemoStore>(store: &mut S) {
    assert!(store.load_own_device().unwrap().is_none());
    let keys = DeviceKeys::generate(4);
    store.store_own_device(77, &keys).unwrap();
    let (id, loaded) = store.load_own_device().unwrap().unwrap();
    assert_eq!(id, 77);
    assert_eq!(loaded.to_bytes(), keys.to_bytes());
    for p in PROFILES {
        assert_eq!(loaded.bundle(p), keys.bundle(p));
    }

    let bob = DeviceKeys::generate(2);
    let session = keys.initiate(&bob.bundle(Profile::Omemo2)).unwrap();
    let a = DeviceAddress::new(Profile::Omemo2, "bob@example.org", 5);
    let b = DeviceAddress::new(Profile::Omemo2, "bob@example.org", 3);
    let c = DeviceAddress::new(Profile::Legacy, "bob@example.org", 9);
    assert!(store.load_session(&a).unwrap().is_none());
    for addr in [&a, &b, &c] {
        store.store_session(addr, &session).unwrap();
    }
    assert_eq!(
        store.load_session(&a).unwrap().unwrap().to_bytes(),
        session.to_bytes()
    );
    assert_eq!(
        store
            .session_devices(Profile::Omemo2, "bob@example.org")
            .unwrap(),
        [3, 5]
    );
    assert_eq!(
        store
            .session_devices(Profile::Legacy, "bob@example.org")
            .unwrap(),
        [9]
    );
    store.delete_session(&a).unwrap();
    assert!(store.load_session(&a).unwrap().is_none());
    assert_eq!(
        store
            .session_devices(Profile::Omemo2, "bob@example.org")
            .unwrap(),
        [3]
    );
    assert!(store
        .session_devices(Profile::Omemo2, "nobody@x")
        .unwrap()
        .is_empty());

    // Device records: per profile and JID, replaced on store, listed by ascending id.
    assert!(store.load_device(&a).unwrap().is_none());
    let rec = DeviceRecord {
        identity_key: Some(bob.identity.wire_public(Profile::Omemo2)),
        trust: TrustLevel::BlindTrusted,
        label: Some("Laptop".to_owned()),
        label_signature: Some(vec![7; 64]),
        unanswered: 3,
        last_received: Some(1_700_000_000),
        ..DeviceRecord::default()
    };
    store.store_device(&a, &rec).unwrap();
    store.store_device(&b, &DeviceRecord::default()).unwrap();
    store.store_device(&c, &DeviceRecord::default()).unwrap();
    assert_eq!(store.load_device(&a).unwrap(), Some(rec.clone()));
    let verified = DeviceRecord {
        trust: TrustLevel::Verified,
        active: false,
        ..rec
    };
    store.store_device(&a, &verified).unwrap();
    let listed = store.devices(Profile::Omemo2, "bob@example.org").unwrap();
    assert_eq!(
        listed,
        [(3, DeviceRecord::default()), (5, verified.clone())]
    );
    assert_eq!(
        store
            .devices(Profile::Legacy, "bob@example.org")
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .devices(Profile::Omemo2, "nobody@x")
        .unwrap()
        .is_empty());
}

#[test]
fn memory_store_conforms() {
    conformance(&mut MemoryStore::new());
}

/// Both sides store everything after each step and are rebuilt from their stores in the middle of the
/// conversation, including a session with a pending key exchange and one holding skipped keys.
/// `open(name)` makes a store, `restart(store, name)` closes and reopens it (the memory store is kept).
fn restart_mid_conversation<S: OmemoStore>(
    open: impl Fn(&str) -> S,
    restart: impl Fn(S, &str) -> S,
) {
    for p in PROFILES {
        let (alice_name, bob_name) = (format!("alice-{p:?}"), format!("bob-{p:?}"));
        let mut alice_store = open(&alice_name);
        let mut bob_store = open(&bob_name);
        let alice_addr = DeviceAddress::new(p, "alice@x", 1);
        let bob_addr = DeviceAddress::new(p, "bob@x", 2);
        alice_store
            .store_own_device(1, &DeviceKeys::generate(3))
            .unwrap();
        bob_store
            .store_own_device(2, &DeviceKeys::generate(3))
            .unwrap();

        let (_, alice) = alice_store.load_own_device().unwrap().unwrap();
        let (_, mut bob) = bob_store.load_own_device().unwrap().unwrap();
        let mut s = alice.initiate(&bob.bundle(p)).unwrap();
        let first = s.encrypt(b"one").unwrap();
        alice_store.store_session(&bob_addr, &s).unwrap();

        // Alice restarts before Bob answers: the key exchange is still attached.
        alice_store = restart(alice_store, &alice_name);
        let mut s = alice_store.load_session(&bob_addr).unwrap().unwrap();
        let second = s.encrypt(b"two").unwrap();
        assert!(second.key_exchange);
        let lost = s.encrypt(b"late").unwrap();
        let third = s.encrypt(b"three").unwrap();
        alice_store.store_session(&bob_addr, &s).unwrap();

        let (mut t, pt) = bob.accept(p, &first.data).unwrap();
        assert_eq!(pt, b"one");
        assert_eq!(t.decrypt(&third.data, true).unwrap(), b"three");
        bob_store.store_own_device(2, &bob).unwrap();
        bob_store.store_session(&alice_addr, &t).unwrap();

        // Bob restarts holding skipped keys (for "two" and "late"); the used prekey stays gone.
        bob_store = restart(bob_store, &bob_name);
        let (_, mut bob) = bob_store.load_own_device().unwrap().unwrap();
        assert_eq!(bob.prekey_count(), 2);
        assert_eq!(
            bob.accept(p, &first.data)
                .err()
                .map(|e| matches!(e, OmemoError::UnknownPreKey(_))),
            Some(true)
        );
        let mut t = bob_store.load_session(&alice_addr).unwrap().unwrap();
        assert_eq!(t.skipped_keys(), 2);
        assert_eq!(t.decrypt(&second.data, true).unwrap(), b"two");
        let reply = t.encrypt(b"reply").unwrap();
        bob_store.store_session(&alice_addr, &t).unwrap();

        let mut s = alice_store.load_session(&bob_addr).unwrap().unwrap();
        assert_eq!(s.decrypt(&reply.data, false).unwrap(), b"reply");
        for i in 0..5u8 {
            let m = s.encrypt(&[i]).unwrap();
            alice_store.store_session(&bob_addr, &s).unwrap();
            alice_store = restart(alice_store, &alice_name);
            bob_store = restart(bob_store, &bob_name);
            s = alice_store.load_session(&bob_addr).unwrap().unwrap();
            let mut t = bob_store.load_session(&alice_addr).unwrap().unwrap();
            assert_eq!(t.decrypt(&m.data, false).unwrap(), [i]);
            let r = t.encrypt(&[i, i]).unwrap();
            bob_store.store_session(&alice_addr, &t).unwrap();
            assert_eq!(s.decrypt(&r.data, false).unwrap(), [i, i]);
        }
        bob_store = restart(bob_store, &bob_name);
        let mut t = bob_store.load_session(&alice_addr).unwrap().unwrap();
        assert_eq!(t.decrypt(&lost.data, true).unwrap(), b"late");
    }
}

#[test]
fn restart_mid_conversation_memory() {
    restart_mid_conversation(|_| MemoryStore::new(), |store, _| store);
}

#[test]
fn corrupt_state_is_a_typed_error() {
    let keys = DeviceKeys::generate(3);
    let bob = DeviceKeys::generate(1);
    let mut s = keys.initiate(&bob.bundle(Profile::Legacy)).unwrap();
    s.encrypt(b"x").unwrap();
    let session = s.to_bytes();
    let device = keys.to_bytes();
    assert!(Session::from_bytes(&session).is_ok());
    assert!(DeviceKeys::from_bytes(&device).is_ok());
    for cut in 0..session.len() {
        assert!(Session::from_bytes(&session[..cut]).is_err(), "cut {cut}");
    }
    for cut in 0..device.len() {
        assert!(DeviceKeys::from_bytes(&device[..cut]).is_err(), "cut {cut}");
    }
    for i in 0..session.len() {
        let mut bad = session.clone();
        bad[i] ^= 0xff;
        let _ = Session::from_bytes(&bad);
    }
    assert!(matches!(
        Session::from_bytes(&device),
        Err(OmemoError::CorruptState(_))
    ));
    assert!(matches!(
        DeviceKeys::from_bytes(&session),
        Err(OmemoError::CorruptState(_))
    ));
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use std::path::{Path, PathBuf};
    use xmpp_e2ee::omemo::sqlite::{SqliteStoreError, SCHEMA_VERSION};
    use xmpp_e2ee::omemo::SqliteStore;

    #[test]
    fn sqlite_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("omemo.db");
        conformance(&mut SqliteStore::open(&path).unwrap());
        conformance(&mut SqliteStore::open_in_memory().unwrap());
    }

    /// Both stores are SQLite files, closed and reopened at every restart point.
    #[test]
    fn restart_mid_conversation_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| dir.path().join(format!("{name}.db"));
        restart_mid_conversation(
            |name| SqliteStore::open(file(name)).unwrap(),
            |store, name| {
                drop(store);
                SqliteStore::open(file(name)).unwrap()
            },
        );
    }

    /// What one store wrote is all there after reopening: own device, sessions, device records.
    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("omemo.db");
        let keys = DeviceKeys::generate(5);
        let bob = DeviceKeys::generate(1);
        let session = keys.initiate(&bob.bundle(Profile::Omemo2)).unwrap();
        let addr = DeviceAddress::new(Profile::Omemo2, "bob@example.org", 31415);
        let rec = DeviceRecord {
            trust: TrustLevel::Verified,
            label: Some("Phone".to_owned()),
            ..DeviceRecord::default()
        };
        {
            let mut store = SqliteStore::open(&path).unwrap();
            assert_eq!(store.path(), Some(path.as_path()));
            store.store_own_device(u32::MAX, &keys).unwrap();
            store.store_session(&addr, &session).unwrap();
            store.store_device(&addr, &rec).unwrap();
            // Replacing the own device keeps one row.
            store.store_own_device(u32::MAX, &keys).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let (id, loaded) = store.load_own_device().unwrap().unwrap();
        assert_eq!((id, loaded.to_bytes()), (u32::MAX, keys.to_bytes()));
        assert_eq!(
            store.load_session(&addr).unwrap().unwrap().to_bytes(),
            session.to_bytes()
        );
        assert_eq!(store.load_device(&addr).unwrap(), Some(rec));
        assert_eq!(
            store
                .session_devices(Profile::Omemo2, "bob@example.org")
                .unwrap(),
            [31415]
        );
        // The same JID in the other profile is another device.
        assert!(store
            .session_devices(Profile::Legacy, "bob@example.org")
            .unwrap()
            .is_empty());
        let raw = rusqlite::Connection::open(&path).unwrap();
        let mode: String = raw
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    fn with_raw(path: &Path, sql: &str) {
        let raw = rusqlite::Connection::open(path).unwrap();
        raw.execute_batch(sql).unwrap();
    }

    fn filled_store(dir: &Path) -> (PathBuf, DeviceAddress) {
        let path = dir.join("omemo.db");
        let keys = DeviceKeys::generate(2);
        let bob = DeviceKeys::generate(1);
        let addr = DeviceAddress::new(Profile::Legacy, "bob@example.org", 7);
        let mut store = SqliteStore::open(&path).unwrap();
        store.store_own_device(1, &keys).unwrap();
        store
            .store_session(&addr, &keys.initiate(&bob.bundle(Profile::Legacy)).unwrap())
            .unwrap();
        store.store_device(&addr, &DeviceRecord::default()).unwrap();
        (path, addr)
    }

    fn assert_corrupt<T: std::fmt::Debug>(r: Result<T, SqliteStoreError>, expected_table: &str) {
        match r {
            Err(SqliteStoreError::Corrupt { table, .. }) => assert_eq!(table, expected_table),
            other => panic!("expected a corrupt {expected_table} row, got {other:?}"),
        }
    }

    /// Garbage, truncated values, values of the wrong type and out-of-range ids: typed errors, no panic,
    /// and the other rows stay readable.
    #[test]
    fn corrupt_rows_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (path, addr) = filled_store(dir.path());
        for sql in [
            "UPDATE sessions SET data = x'00ff00ff'",
            "UPDATE sessions SET data = substr(data, 1, 20)",
            "UPDATE sessions SET data = x''",
            "UPDATE sessions SET data = 'text, not a blob'",
            "UPDATE sessions SET data = 42",
        ] {
            with_raw(&path, sql);
            let store = SqliteStore::open(&path).unwrap();
            assert_corrupt(store.load_session(&addr), "sessions");
            // Listing ids does not read the values.
            assert_eq!(
                store
                    .session_devices(Profile::Legacy, "bob@example.org")
                    .unwrap(),
                [7]
            );
            assert!(store.load_own_device().unwrap().is_some());
            assert!(store.load_device(&addr).unwrap().is_some());
        }
        with_raw(&path, "UPDATE devices SET data = x'0102030405'");
        let store = SqliteStore::open(&path).unwrap();
        assert_corrupt(store.load_device(&addr), "devices");
        assert_corrupt(store.devices(Profile::Legacy, "bob@example.org"), "devices");
        drop(store);
        with_raw(&path, "UPDATE own_device SET keys = x'deadbeef'");
        assert_corrupt(
            SqliteStore::open(&path).unwrap().load_own_device(),
            "own_device",
        );
        // Device ids outside u32.
        let sub = dir.path().join("ids");
        std::fs::create_dir(&sub).unwrap();
        let (path, addr) = filled_store(&sub);
        with_raw(&path, "UPDATE own_device SET device_id = -1");
        with_raw(
            &path,
            "INSERT INTO sessions SELECT profile, jid, 4294967296, data FROM sessions",
        );
        let store = SqliteStore::open(&path).unwrap();
        assert_corrupt(store.load_own_device(), "own_device");
        assert_corrupt(
            store.session_devices(Profile::Legacy, "bob@example.org"),
            "sessions",
        );
        assert!(store.load_session(&addr).unwrap().is_some());
    }

    #[test]
    fn future_schema_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = filled_store(dir.path());
        with_raw(&path, "PRAGMA user_version = 2");
        match SqliteStore::open(&path) {
            Err(SqliteStoreError::UnsupportedVersion { found, supported }) => {
                assert_eq!((found, supported), (2, SCHEMA_VERSION))
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x42; 8192]).unwrap();
        assert!(matches!(
            SqliteStore::open(&junk),
            Err(SqliteStoreError::Sqlite(_))
        ));
        // A directory, a path in a missing directory.
        assert!(SqliteStore::open(dir.path()).is_err());
        assert!(matches!(
            SqliteStore::open(dir.path().join("missing/omemo.db")),
            Err(SqliteStoreError::Io(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn store_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let path = dir.path().join("omemo.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store.store_own_device(1, &DeviceKeys::generate(1)).unwrap();
        assert_eq!(mode(&path), 0o600);
        let wal = dir.path().join("omemo.db-wal");
        assert!(wal.exists());
        assert_eq!(mode(&wal), 0o600);
        drop(store);
        // An existing file readable by others is narrowed when opened.
        let loose = dir.path().join("loose.db");
        std::fs::write(&loose, b"").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        SqliteStore::open(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
    }

    #[test]
    fn debug_shows_no_state() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.store_own_device(1, &DeviceKeys::generate(1)).unwrap();
        let shown = format!("{store:?}");
        assert!(shown.starts_with("SqliteStore"), "{shown}");
        assert!(!shown.contains("keys"), "{shown}");
    }
}
