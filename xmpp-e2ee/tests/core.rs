//! Two of our own OMEMO cores talking to each other, in both profiles.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use xmpp_e2ee::omemo::{payload, DeviceKeys, OmemoError, Profile, Session, MAX_SKIPPED_KEYS};

const PROFILES: [Profile; 2] = [Profile::Omemo2, Profile::Legacy];

/// Alice starts a session with Bob and Bob answers once, so both sides have confirmed sessions.
fn pair(profile: Profile) -> (DeviceKeys, Session, DeviceKeys, Session) {
    let alice = DeviceKeys::generate(5);
    let mut bob = DeviceKeys::generate(5);
    let mut a = alice.initiate(&bob.bundle(profile)).expect("initiate");
    let first = a.encrypt(b"hello").expect("encrypt");
    assert!(first.key_exchange);
    let (mut b, pt) = bob.accept(profile, &first.data).expect("accept");
    assert_eq!(pt, b"hello");
    assert_eq!(bob.prekey_count(), 4);
    let reply = b.encrypt(b"hi").expect("encrypt");
    assert!(!reply.key_exchange);
    assert_eq!(a.decrypt(&reply.data, false).expect("decrypt"), b"hi");
    assert!(a.is_confirmed());
    (alice, a, bob, b)
}

#[test]
fn key_exchange_is_repeated_until_answered() {
    for p in PROFILES {
        let alice = DeviceKeys::generate(1);
        let mut bob = DeviceKeys::generate(1);
        let mut a = alice.initiate(&bob.bundle(p)).unwrap();
        let m: Vec<_> = (0..3).map(|i| a.encrypt(&[i]).unwrap()).collect();
        assert!(m.iter().all(|k| k.key_exchange));
        // The second one arrives first.
        let (mut b, pt) = bob.accept(p, &m[1].data).unwrap();
        assert_eq!(pt, [1]);
        assert_eq!(bob.prekey_count(), 0);
        // The others are repetitions of the same key exchange: the session handles them.
        assert_eq!(b.decrypt(&m[2].data, true).unwrap(), [2]);
        assert_eq!(b.decrypt(&m[0].data, true).unwrap(), [0]);
        // Replayed key exchange: the prekey is gone, and the session knows the message.
        assert_eq!(
            bob.accept(p, &m[0].data).err(),
            Some(OmemoError::UnknownPreKey(1))
        );
        assert_eq!(
            b.decrypt(&m[0].data, true).err(),
            Some(OmemoError::Replay(0))
        );
        // A key exchange of another session is refused.
        let other = DeviceKeys::generate(1).initiate(&bob.bundle(p)).is_err();
        assert!(other, "bob has no prekeys left");
        assert!(!a.is_confirmed());
        let r = b.encrypt(b"ok").unwrap();
        assert_eq!(a.decrypt(&r.data, false).unwrap(), b"ok");
        assert!(!a.encrypt(b"x").unwrap().key_exchange);
    }
}

#[test]
fn ping_pong_with_payloads_and_dh_turns() {
    for p in PROFILES {
        let (_, mut a, _, mut b) = pair(p);
        for round in 0..20u32 {
            let (from, to) = if round % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            for k in 0..(round % 3 + 1) {
                let text = format!("round {round} message {k}");
                let (km, body) = payload::encrypt(p, text.as_bytes());
                let key = from.encrypt(&km).unwrap();
                assert!(!key.key_exchange);
                let km2 = to.decrypt(&key.data, false).unwrap();
                assert_eq!(payload::decrypt(p, &km2, &body).unwrap(), text.as_bytes());
            }
        }
        assert_eq!(a.skipped_keys(), 0);
        assert_eq!(b.skipped_keys(), 0);
    }
}

#[test]
fn out_of_order_and_gaps_across_chains() {
    for p in PROFILES {
        let (_, mut a, _, mut b) = pair(p);
        let chain1: Vec<_> = (0..5u8).map(|i| a.encrypt(&[i]).unwrap()).collect();
        for i in [4usize, 1, 3] {
            assert_eq!(b.decrypt(&chain1[i].data, false).unwrap(), [i as u8]);
        }
        // Bob answers: a new DH turn; Alice's next chain arrives before the rest of chain 1.
        let r = b.encrypt(b"r").unwrap();
        assert_eq!(a.decrypt(&r.data, false).unwrap(), b"r");
        let chain2: Vec<_> = (10..13u8).map(|i| a.encrypt(&[i]).unwrap()).collect();
        assert_eq!(b.decrypt(&chain2[2].data, false).unwrap(), [12]);
        assert_eq!(b.decrypt(&chain1[0].data, false).unwrap(), [0]);
        assert_eq!(b.decrypt(&chain2[0].data, false).unwrap(), [10]);
        assert_eq!(b.decrypt(&chain1[2].data, false).unwrap(), [2]);
        assert_eq!(b.skipped_keys(), 1);
        // chain2[1] is lost for good; everything else still works.
        let r = b.encrypt(b"s").unwrap();
        assert_eq!(a.decrypt(&r.data, false).unwrap(), b"s");
        // Replays of consumed keys, from skipped storage and from the current chain.
        for m in chain1.iter().chain(&chain2[..1]).chain(&chain2[2..]) {
            assert!(matches!(
                b.decrypt(&m.data, false),
                Err(OmemoError::Replay(_)) | Err(OmemoError::BadMac)
            ));
        }
        assert_eq!(b.decrypt(&chain2[1].data, false).unwrap(), [11]);
    }
}

#[test]
fn replay_in_the_current_chain_is_a_typed_error() {
    for p in PROFILES {
        let (_, mut a, _, mut b) = pair(p);
        let m = a.encrypt(b"once").unwrap();
        assert_eq!(b.decrypt(&m.data, false).unwrap(), b"once");
        assert_eq!(b.decrypt(&m.data, false).err(), Some(OmemoError::Replay(0)));
        let m2 = a.encrypt(b"twice").unwrap();
        assert_eq!(b.decrypt(&m2.data, false).unwrap(), b"twice");
    }
}

#[test]
fn tampering_is_detected_and_leaves_the_session_intact() {
    for p in PROFILES {
        let (_, mut a, _, mut b) = pair(p);
        let m = a.encrypt(b"secret").unwrap();
        for i in 0..m.data.len() {
            let mut bad = m.data.clone();
            bad[i] ^= 0x01;
            let err = b
                .decrypt(&bad, false)
                .expect_err("tampered message accepted");
            assert!(
                matches!(
                    err,
                    OmemoError::BadMac
                        | OmemoError::MalformedProtobuf(_)
                        | OmemoError::InvalidKey(_)
                        | OmemoError::Replay(_)
                        | OmemoError::TooManySkipped(_)
                ),
                "{p:?} byte {i}: {err:?}"
            );
        }
        // The last bytes are MAC bytes: a flipped MAC is exactly BadMac.
        let mut bad = m.data.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        assert_eq!(b.decrypt(&bad, false).err(), Some(OmemoError::BadMac));
        assert_eq!(b.decrypt(&m.data, false).unwrap(), b"secret");
        assert_eq!(b.skipped_keys(), 0);
    }
}

#[test]
fn malformed_input_never_panics() {
    for p in PROFILES {
        let (_, _, mut bob, mut b) = pair(p);
        let inputs: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x33],
            vec![0x0a, 0xff],
            vec![0x33; 40],
            vec![0xff; 100],
            (0..=255u8).collect(),
        ];
        for data in &inputs {
            assert!(b.decrypt(data, false).is_err());
            assert!(b.decrypt(data, true).is_err());
            assert!(bob.accept(p, data).is_err());
        }
        assert!(matches!(
            b.decrypt(&[0x0a, 0x05, 1, 2], false),
            Err(OmemoError::MalformedProtobuf(_))
        ));
    }
}

#[test]
fn skipped_keys_are_bounded() {
    for p in PROFILES {
        let (_, mut a, _, mut b) = pair(p);
        let msgs: Vec<_> = (0..MAX_SKIPPED_KEYS + 2)
            .map(|_| a.encrypt(b"m").unwrap())
            .collect();
        // Skipping 1001 keys at once is refused, and the session is unharmed.
        assert_eq!(
            b.decrypt(&msgs[MAX_SKIPPED_KEYS + 1].data, false).err(),
            Some(OmemoError::TooManySkipped(MAX_SKIPPED_KEYS as u64 + 1))
        );
        assert_eq!(b.skipped_keys(), 0);
        // Skipping exactly 1000 is fine.
        assert_eq!(
            b.decrypt(&msgs[MAX_SKIPPED_KEYS].data, false).unwrap(),
            b"m"
        );
        assert_eq!(b.skipped_keys(), MAX_SKIPPED_KEYS);
        // A new chain that skips more keys evicts the oldest ones.
        let r = b.encrypt(b"r").unwrap();
        a.decrypt(&r.data, false).unwrap();
        let c2: Vec<_> = (0..5).map(|_| a.encrypt(b"n").unwrap()).collect();
        assert_eq!(b.decrypt(&c2[4].data, false).unwrap(), b"n");
        assert_eq!(b.skipped_keys(), MAX_SKIPPED_KEYS);
        assert!(b.decrypt(&msgs[0].data, false).is_err());
        assert_eq!(b.decrypt(&msgs[10].data, false).unwrap(), b"m");
        assert_eq!(b.decrypt(&c2[0].data, false).unwrap(), b"n");
    }
}

#[test]
fn bad_bundles_are_refused() {
    for p in PROFILES {
        let alice = DeviceKeys::generate(1);
        let bob = DeviceKeys::generate(1);
        let mut bundle = bob.bundle(p);
        bundle.signed_prekey_signature[10] ^= 4;
        assert_eq!(
            alice.initiate(&bundle).err(),
            Some(OmemoError::BadSignature)
        );
        let mut bundle = bob.bundle(p);
        bundle.prekeys.clear();
        assert_eq!(alice.initiate(&bundle).err(), Some(OmemoError::NoPreKey));
        let mut bundle = bob.bundle(p);
        bundle.prekeys[0].key = vec![0; bundle.prekeys[0].key.len()];
        if p == Profile::Legacy {
            bundle.prekeys[0].key[0] = 0x05;
        }
        assert!(matches!(
            alice.initiate(&bundle),
            Err(OmemoError::InvalidKey(_))
        ));
        // A bundle of one profile does not validate as the other.
        let mut bundle = bob.bundle(Profile::Omemo2);
        bundle.profile = Profile::Legacy;
        assert!(alice.initiate(&bundle).is_err());
    }
}

/// A small xorshift generator: the mutation test is deterministic without extra dependencies.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Thousands of random mutations (bit flips, truncations, insertions, splices) of ratchet messages and
/// key exchanges: never a panic; a mutation is accepted only when the authenticated bytes are intact
/// (e.g. an unauthenticated key-exchange wrapper field or an appended unknown protobuf field), and then it
/// yields exactly the genuine plaintext; the genuine messages still decrypt afterwards (or are replays of
/// those already accepted).
#[test]
fn random_mutations_never_panic_nor_harm_the_session() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for p in PROFILES {
        let alice = DeviceKeys::generate(2);
        let mut bob = DeviceKeys::generate(2);
        let mut a = alice.initiate(&bob.bundle(p)).unwrap();
        let kex = a.encrypt(b"kex").unwrap();
        let (mut b, _) = bob.accept(p, &kex.data).unwrap();
        let genuine: Vec<_> = (0..3u8).map(|i| a.encrypt(&[i]).unwrap()).collect();
        let mut consumed = [false; 3];
        for _ in 0..3000 {
            let which = rng.below(genuine.len());
            let src = &genuine[which];
            let mut m = src.data.clone();
            match rng.below(4) {
                0 => {
                    let i = rng.below(m.len());
                    m[i] ^= 1 << rng.below(8);
                }
                1 => m.truncate(rng.below(m.len())),
                2 => {
                    let i = rng.below(m.len() + 1);
                    m.insert(i, rng.next() as u8);
                }
                _ => {
                    let i = rng.below(m.len());
                    let j = rng.below(kex.data.len());
                    m.splice(i.., kex.data[j..].iter().copied());
                }
            }
            if m == src.data {
                continue;
            }
            for kex in [false, true] {
                if let Ok(pt) = b.decrypt(&m, kex) {
                    assert_eq!(pt, [which as u8], "a mutation changed the plaintext");
                    consumed[which] = true;
                }
            }
            if let Ok((_, pt)) = bob.clone().accept(p, &m) {
                assert!(
                    pt == [which as u8] || pt == b"kex",
                    "a mutation changed the plaintext"
                );
            }
        }
        for (i, g) in genuine.iter().enumerate() {
            match b.decrypt(&g.data, true) {
                Ok(pt) => assert_eq!(pt, [i as u8]),
                Err(e) => assert!(
                    consumed[i] && e == OmemoError::Replay(i as u32 + 1),
                    "{e:?}"
                ),
            }
        }
    }
}
