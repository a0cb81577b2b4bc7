//! The session manager without a network: several accounts and devices, trust, stale devices,
//! heartbeats, broken-session recovery, tamper and replay checks.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use xmpp_e2ee::omemo::xml::{DeviceEntry, DeviceList};
use xmpp_e2ee::omemo::{
    Action, DeviceAddress, Encrypted, ManagerError, MemoryStore, OmemoConfig, OmemoError,
    OmemoManager, Profile, SkipReason, TrustLevel, TrustPolicy,
};

type M = OmemoManager<MemoryStore>;

fn device(jid: &str, config: OmemoConfig) -> M {
    OmemoManager::open(MemoryStore::new(), jid, config).unwrap()
}

fn list(profile: Profile, ids: &[u32]) -> DeviceList {
    DeviceList {
        profile,
        devices: ids
            .iter()
            .map(|&id| DeviceEntry {
                id,
                label: None,
                label_signature: None,
            })
            .collect(),
    }
}

/// What a driver does before sending: learn every device list, fetch missing bundles.
fn prepare(from: &mut M, profile: Profile, to: &[&str], world: &[&M]) {
    let mut jids: Vec<&str> = to.to_vec();
    let own = from.own_jid().to_owned();
    jids.push(&own);
    for jid in &jids {
        let ids: Vec<u32> = world
            .iter()
            .filter(|m| m.own_jid() == *jid)
            .map(|m| m.device_id())
            .collect();
        from.apply_device_list(jid, &list(profile, &ids)).unwrap();
    }
    for address in from.missing_sessions(profile, to).unwrap() {
        let peer = world
            .iter()
            .find(|m| m.own_jid() == address.jid && m.device_id() == address.device_id)
            .unwrap();
        from.add_bundle(&address, &peer.bundle(profile)).unwrap();
    }
}

/// Decrypts and performs the queued empty-message actions by delivering them directly.
fn receive(to: &mut M, from_jid: &str, m: &Encrypted) -> Option<Vec<u8>> {
    let d = to.decrypt(from_jid, m).unwrap();
    d.plaintext
}

#[test]
fn several_recipients_and_own_devices() {
    for p in [Profile::Omemo2, Profile::Legacy] {
        let mut alice1 = device("alice@x", OmemoConfig::default());
        let mut alice2 = device("alice@x", OmemoConfig::default());
        let mut bob = device("bob@x", OmemoConfig::default());
        let mut carol = device("carol@x", OmemoConfig::default());
        let world_ids = [
            ("alice@x", alice1.device_id(), alice1.bundle(p)),
            ("alice@x", alice2.device_id(), alice2.bundle(p)),
            ("bob@x", bob.device_id(), bob.bundle(p)),
            ("carol@x", carol.device_id(), carol.bundle(p)),
        ];
        for (jid, _, _) in &world_ids {
            let ids: Vec<u32> = world_ids
                .iter()
                .filter(|(j, _, _)| j == jid)
                .map(|(_, id, _)| *id)
                .collect();
            alice1.apply_device_list(jid, &list(p, &ids)).unwrap();
        }
        let missing = alice1.missing_sessions(p, &["bob@x", "carol@x"]).unwrap();
        assert_eq!(missing.len(), 3, "bob, carol and alice's other device");
        for a in &missing {
            let (_, _, b) = world_ids
                .iter()
                .find(|(j, id, _)| *j == a.jid && *id == a.device_id)
                .unwrap();
            alice1.add_bundle(a, b).unwrap();
        }
        let out = alice1
            .encrypt(p, b"hello all", &["bob@x", "carol@x"])
            .unwrap();
        assert_eq!(out.recipients.len(), 3);
        assert!(out.skipped.is_empty());
        for (m, jid) in [
            (&mut bob, "alice@x"),
            (&mut carol, "alice@x"),
            (&mut alice2, "alice@x"),
        ] {
            let d = m.decrypt(jid, &out.encrypted).unwrap();
            assert_eq!(d.plaintext.as_deref(), Some(&b"hello all"[..]));
            assert!(d.new_session);
            assert_eq!(d.trust, TrustLevel::BlindTrusted);
            let actions = m.take_actions();
            assert!(actions.contains(&Action::SendEmpty(DeviceAddress::new(
                p,
                "alice@x",
                alice1.device_id()
            ))));
            assert!(actions.contains(&Action::RepublishBundle(Profile::Omemo2)));
            assert!(actions.contains(&Action::RepublishBundle(Profile::Legacy)));
            assert_eq!(m.keys().prekey_count(), 100, "refilled");
        }
        // The sender's own copy: no key for itself.
        assert!(matches!(
            alice1.decrypt("alice@x", &out.encrypted),
            Err(ManagerError::NotForThisDevice)
        ));
    }
}

#[test]
fn conversation_with_answers_heartbeats_and_tamper() {
    let p = Profile::Omemo2;
    let mut alice = device("alice@x", OmemoConfig::default());
    let mut bob = device("bob@x", OmemoConfig::default());
    let bob_snapshot = device_snapshot(&bob);
    prepare(&mut alice, p, &["bob@x"], &[&bob_snapshot]);
    let first = alice.encrypt(p, b"m0", &["bob@x"]).unwrap().encrypted;
    assert!(first.keys[0].key_exchange);
    assert_eq!(receive(&mut bob, "alice@x", &first).unwrap(), b"m0");
    // Bob completes the key exchange with an empty message.
    let alice_addr = DeviceAddress::new(p, "alice@x", alice.device_id());
    assert!(bob
        .take_actions()
        .contains(&Action::SendEmpty(alice_addr.clone())));
    bob.apply_device_list("alice@x", &list(p, &[alice.device_id()]))
        .unwrap();
    let empty = bob.encrypt_empty(&alice_addr).unwrap();
    assert_eq!(receive(&mut alice, "bob@x", &empty), None);
    let next = alice.encrypt(p, b"m1", &["bob@x"]).unwrap().encrypted;
    assert!(!next.keys[0].key_exchange, "key exchange answered");

    // 60 messages without an answer: one heartbeat requested at counter 53, not more.
    let mut heartbeats = 0;
    assert_eq!(receive(&mut bob, "alice@x", &next).unwrap(), b"m1");
    for i in 2..62 {
        let m = alice
            .encrypt(p, format!("m{i}").as_bytes(), &["bob@x"])
            .unwrap()
            .encrypted;
        // Tampering first: typed error, and the genuine message still decrypts afterwards.
        let mut bad = m.clone();
        let last = bad.payload.as_mut().unwrap().len() - 1;
        bad.payload.as_mut().unwrap()[last] ^= 1;
        assert!(bob.decrypt("alice@x", &bad).is_err());
        let mut bad_key = m.clone();
        bad_key.keys[0].data[5] ^= 0x40;
        assert!(bob.decrypt("alice@x", &bad_key).is_err());
        assert_eq!(
            receive(&mut bob, "alice@x", &m).unwrap(),
            format!("m{i}").as_bytes()
        );
        // Replay.
        assert!(matches!(
            bob.decrypt("alice@x", &m),
            Err(ManagerError::Omemo(OmemoError::Replay(_)))
        ));
        heartbeats += bob
            .take_actions()
            .iter()
            .filter(|a| **a == Action::SendEmpty(alice_addr.clone()))
            .count();
    }
    assert_eq!(heartbeats, 1);
    let hb = bob.encrypt_empty(&alice_addr).unwrap();
    assert_eq!(receive(&mut alice, "bob@x", &hb), None);
}

/// A fresh manager over a copy of `m`'s store, to hand out its bundle.
fn device_snapshot(m: &M) -> M {
    OmemoManager::open(m.store().clone(), m.own_jid(), OmemoConfig::default()).unwrap()
}

#[test]
fn trust_policies_and_decider() {
    let p = Profile::Legacy;
    let bob1 = device("bob@x", OmemoConfig::default());
    let bob2 = device("bob@x", OmemoConfig::default());
    // Manual: nothing is sent before a decision.
    let mut alice = device(
        "alice@x",
        OmemoConfig {
            trust_policy: TrustPolicy::Manual,
            ..OmemoConfig::default()
        },
    );
    prepare(&mut alice, p, &["bob@x"], &[&bob1]);
    let b1 = DeviceAddress::new(p, "bob@x", bob1.device_id());
    assert!(matches!(
        alice.encrypt(p, b"x", &["bob@x"]),
        Err(ManagerError::NoTrustedDevice(_))
    ));
    let fp = alice.fingerprint_of(&b1).unwrap().unwrap();
    assert_eq!(fp, bob1.own_fingerprint());
    alice.set_trust(&b1, TrustLevel::Verified).unwrap();
    assert_eq!(
        alice.encrypt(p, b"x", &["bob@x"]).unwrap().recipients,
        std::slice::from_ref(&b1)
    );

    // BTBV: blind trust until a key of the contact is verified; then new keys wait.
    let mut carol = device("carol@x", OmemoConfig::default());
    prepare(&mut carol, p, &["bob@x"], &[&bob1]);
    assert_eq!(
        carol.devices(p, "bob@x").unwrap()[0].1.trust,
        TrustLevel::BlindTrusted
    );
    carol.set_trust(&b1, TrustLevel::Verified).unwrap();
    prepare(&mut carol, p, &["bob@x"], &[&bob1, &bob2]);
    let b2 = DeviceAddress::new(p, "bob@x", bob2.device_id());
    let out = carol.encrypt(p, b"y", &["bob@x"]).unwrap();
    assert_eq!(out.recipients, std::slice::from_ref(&b1));
    assert_eq!(
        out.skipped,
        [(b2.clone(), SkipReason::Untrusted(TrustLevel::Undecided))]
    );

    // The application decides through a callback.
    let mut dave = device("dave@x", OmemoConfig::default());
    let refused = bob2.device_id();
    dave.set_trust_decider(move |_p: Profile, _j: &str, id: u32, fp: &str| {
        assert_eq!(fp.len(), 71);
        (id == refused).then_some(TrustLevel::Distrusted)
    });
    prepare(&mut dave, p, &["bob@x"], &[&bob1, &bob2]);
    let out = dave.encrypt(p, b"z", &["bob@x"]).unwrap();
    assert_eq!(out.recipients, [b1]);
    assert_eq!(
        out.skipped,
        [(b2, SkipReason::Untrusted(TrustLevel::Distrusted))]
    );
}

#[test]
fn stale_and_removed_devices_get_nothing() {
    let p = Profile::Omemo2;
    let bob1 = device("bob@x", OmemoConfig::default());
    let mut bob2 = device("bob@x", OmemoConfig::default());
    let mut alice = device(
        "alice@x",
        OmemoConfig {
            stale_after: 5,
            ..OmemoConfig::default()
        },
    );
    prepare(&mut alice, p, &["bob@x"], &[&bob1, &bob2]);
    let b1 = DeviceAddress::new(p, "bob@x", bob1.device_id());
    let b2 = DeviceAddress::new(p, "bob@x", bob2.device_id());
    let mut last = None;
    for _ in 0..5 {
        last = Some(alice.encrypt(p, b"hi", &["bob@x"]).unwrap());
    }
    // bob2 answers (it decrypts the latest message and sends an empty one), bob1 stays silent.
    let m = last.unwrap().encrypted;
    assert_eq!(
        bob2.decrypt("alice@x", &m).unwrap().plaintext.unwrap(),
        b"hi"
    );
    bob2.apply_device_list("alice@x", &list(p, &[alice.device_id()]))
        .unwrap();
    let answer = bob2
        .encrypt_empty(&DeviceAddress::new(p, "alice@x", alice.device_id()))
        .unwrap();
    assert_eq!(alice.decrypt("bob@x", &answer).unwrap().plaintext, None);
    let out = alice.encrypt(p, b"again", &["bob@x"]).unwrap();
    assert_eq!(out.recipients, std::slice::from_ref(&b2));
    assert_eq!(out.skipped, [(b1, SkipReason::Stale)]);
    // bob2 leaves the device list: nobody is left.
    alice
        .apply_device_list("bob@x", &list(p, &[bob1.device_id()]))
        .unwrap();
    assert!(matches!(
        alice.encrypt(p, b"x", &["bob@x"]),
        Err(ManagerError::NoTrustedDevice(_))
    ));
}

#[test]
fn labels_are_kept_only_with_a_valid_signature() {
    let p = Profile::Omemo2;
    let bob = device("bob@x", OmemoConfig::default());
    let mut alice = device("alice@x", OmemoConfig::default());
    let id = bob.device_id();
    let signed = |label: &str| {
        let mut l = list(p, &[]);
        xmpp_e2ee::omemo::pep::add_device(&mut l, bob.keys(), id, Some(label));
        l
    };
    alice.apply_device_list("bob@x", &signed("Phone")).unwrap();
    // Key unknown yet: the label cannot be checked and is not shown.
    assert_eq!(alice.devices(p, "bob@x").unwrap()[0].1.label, None);
    let b = DeviceAddress::new(p, "bob@x", id);
    alice.add_bundle(&b, &bob.bundle(p)).unwrap();
    alice.apply_device_list("bob@x", &signed("Phone")).unwrap();
    assert_eq!(
        alice.devices(p, "bob@x").unwrap()[0].1.label.as_deref(),
        Some("Phone")
    );
    let mut forged = signed("Phone");
    forged.devices[0].label = Some("Evil".to_owned());
    alice.apply_device_list("bob@x", &forged).unwrap();
    assert_eq!(alice.devices(p, "bob@x").unwrap()[0].1.label, None);
}

#[test]
fn broken_sessions_are_rebuilt_on_request() {
    let p = Profile::Legacy;
    let mut alice = device("alice@x", OmemoConfig::default());
    let mut bob = device("bob@x", OmemoConfig::default());
    prepare(&mut alice, p, &["bob@x"], &[&device_snapshot(&bob)]);
    let m = alice.encrypt(p, b"one", &["bob@x"]).unwrap().encrypted;
    assert_eq!(receive(&mut bob, "alice@x", &m).unwrap(), b"one");
    bob.take_actions();
    let empty = {
        bob.apply_device_list("alice@x", &list(p, &[alice.device_id()]))
            .unwrap();
        bob.encrypt_empty(&DeviceAddress::new(p, "alice@x", alice.device_id()))
            .unwrap()
    };
    alice.decrypt("bob@x", &empty).unwrap();
    // Bob loses his session (restored an old backup): Alice's next message cannot be decrypted and
    // Bob is told to rebuild the session, which he does from Alice's bundle.
    let alice_addr = DeviceAddress::new(p, "alice@x", alice.device_id());
    bob.replace_session(&alice_addr).unwrap();
    let m = alice.encrypt(p, b"two", &["bob@x"]).unwrap().encrypted;
    assert!(matches!(
        bob.decrypt("alice@x", &m),
        Err(ManagerError::NoSession(_))
    ));
    assert_eq!(
        bob.take_actions(),
        [Action::RebuildSession(alice_addr.clone())]
    );
    bob.add_bundle(&alice_addr, &alice.bundle(p)).unwrap();
    let kex = bob.encrypt_empty(&alice_addr).unwrap();
    assert!(kex.keys[0].key_exchange);
    let d = alice.decrypt("bob@x", &kex).unwrap();
    assert!(d.new_session);
    assert_eq!(d.plaintext, None);
    // The new session works both ways.
    let bob_addr = DeviceAddress::new(p, "bob@x", bob.device_id());
    let m = alice.encrypt(p, b"three", &["bob@x"]).unwrap().encrypted;
    assert!(m.keys.iter().any(|k| k.rid == bob_addr.device_id));
    assert_eq!(receive(&mut bob, "alice@x", &m).unwrap(), b"three");
}

#[test]
fn unknown_devices_and_malformed_keys_are_typed_errors() {
    for p in [Profile::Omemo2, Profile::Legacy] {
        let mut alice = device("alice@x", OmemoConfig::default());
        let mut bob = device("bob@x", OmemoConfig::default());
        prepare(&mut alice, p, &["bob@x"], &[&device_snapshot(&bob)]);
        let m = alice.encrypt(p, b"one", &["bob@x"]).unwrap().encrypted;
        assert_eq!(receive(&mut bob, "alice@x", &m).unwrap(), b"one");
        bob.take_actions();
        let before = bob.store().clone();

        // A device nobody knows sends a (non key-exchange) message.
        let mut stranger = m.clone();
        stranger.sid = 4242;
        stranger.keys[0].key_exchange = false;
        assert!(matches!(
            bob.decrypt("alice@x", &stranger),
            Err(ManagerError::NoSession(a)) if a.device_id == 4242
        ));
        assert_eq!(
            bob.take_actions(),
            [Action::RebuildSession(DeviceAddress::new(
                p, "alice@x", 4242
            ))]
        );
        // Malformed protobuf, truncated key, garbage key exchange.
        for data in [vec![0xff; 40], m.keys[0].data[..10].to_vec(), vec![]] {
            for kex in [false, true] {
                let mut bad = m.clone();
                bad.keys[0].data = data.clone();
                bad.keys[0].key_exchange = kex;
                assert!(bob.decrypt("alice@x", &bad).is_err());
            }
        }
        // The state is unharmed: sessions identical, the next genuine message decrypts.
        let addr = DeviceAddress::new(p, "alice@x", alice.device_id());
        use xmpp_e2ee::omemo::OmemoStore;
        assert_eq!(
            bob.store().load_session(&addr).unwrap().unwrap().to_bytes(),
            before.load_session(&addr).unwrap().unwrap().to_bytes()
        );
        let m = alice.encrypt(p, b"two", &["bob@x"]).unwrap().encrypted;
        assert_eq!(receive(&mut bob, "alice@x", &m).unwrap(), b"two");
    }
}
