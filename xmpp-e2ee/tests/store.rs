//! Key stores: a conformance suite (run on the in-memory store) and restarts mid-conversation.
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
#[test]
fn restart_mid_conversation() {
    for p in PROFILES {
        let mut alice_store = MemoryStore::new();
        let mut bob_store = MemoryStore::new();
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
            s = alice_store.load_session(&bob_addr).unwrap().unwrap();
            let mut t = bob_store.load_session(&alice_addr).unwrap().unwrap();
            assert_eq!(t.decrypt(&m.data, false).unwrap(), [i]);
            let r = t.encrypt(&[i, i]).unwrap();
            bob_store.store_session(&alice_addr, &t).unwrap();
            assert_eq!(s.decrypt(&r.data, false).unwrap(), [i, i]);
        }
        let mut t = bob_store.load_session(&alice_addr).unwrap().unwrap();
        assert_eq!(t.decrypt(&lost.data, true).unwrap(), b"late");
    }
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
