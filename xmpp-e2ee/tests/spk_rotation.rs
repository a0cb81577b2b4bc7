//! Signed prekey rotation on a schedule, driven by an injected clock: nothing before the period, a
//! new key and bundle republication after it, the previous key accepted for late key exchanges
//! until its lifetime ends, creation times kept across restarts (memory and SQLite), and keys stored
//! before creation times existed.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use xmpp_e2ee::omemo::manager::SIGNED_PREKEY_ROTATION;
use xmpp_e2ee::omemo::xml::{DeviceEntry, DeviceList};
use xmpp_e2ee::omemo::{
    Action, DeviceAddress, DeviceKeys, ManagerError, MemoryStore, OmemoConfig, OmemoError,
    OmemoManager, OmemoStore, Profile, SignedPreKey,
};

/// 2026-01-01T00:00:00Z.
const T0: u64 = 1_767_225_600;
const DAY: u64 = 24 * 60 * 60;
const WEEK: u64 = 7 * DAY;
const PROFILES: [Profile; 2] = [Profile::Omemo2, Profile::Legacy];

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn at(t: u64) -> Self {
        TestClock(Arc::new(AtomicU64::new(t)))
    }
    fn set(&self, t: u64) {
        self.0.store(t, Ordering::SeqCst);
    }
    fn source(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let t = Arc::clone(&self.0);
        move || t.load(Ordering::SeqCst)
    }
}

fn open<S: OmemoStore>(
    store: S,
    jid: &str,
    config: OmemoConfig,
    clock: &TestClock,
) -> OmemoManager<S> {
    OmemoManager::open_with_clock(store, jid, config, clock.source()).unwrap()
}

fn one_profile(profile: Profile) -> OmemoConfig {
    OmemoConfig {
        profiles: vec![profile],
        ..OmemoConfig::default()
    }
}

fn republish_all() -> Vec<Action> {
    PROFILES
        .iter()
        .map(|p| Action::RepublishBundle(*p))
        .collect()
}

/// Makes `from` know `to`'s device and build a session from `bundle` (fetched at some time).
fn session_from<S: OmemoStore>(
    from: &mut OmemoManager<S>,
    to_jid: &str,
    to_device: u32,
    bundle: &xmpp_e2ee::omemo::Bundle,
) -> DeviceAddress {
    let profile = bundle.profile;
    let list = DeviceList {
        profile,
        devices: vec![DeviceEntry {
            id: to_device,
            label: None,
            label_signature: None,
        }],
    };
    from.apply_device_list(to_jid, &list).unwrap();
    let address = DeviceAddress::new(profile, to_jid, to_device);
    from.add_bundle(&address, bundle).unwrap();
    address
}

#[test]
fn no_rotation_before_the_period_then_a_new_key_and_republication() {
    let clock = TestClock::at(T0);
    let mut bob = open(MemoryStore::new(), "bob@x", OmemoConfig::default(), &clock);
    assert_eq!(bob.take_actions(), vec![]);
    let first = bob.keys().signed_prekey.clone();
    assert_eq!(first.created(), Some(T0));
    assert_eq!(bob.next_signed_prekey_change(), Some(T0 + WEEK));
    let first_bundles: Vec<_> = PROFILES.iter().map(|p| bob.bundle(*p)).collect();

    // One second short of a week: every entry point leaves the key alone.
    clock.set(T0 + WEEK - 1);
    assert!(!bob.rotate_signed_prekey_if_due().unwrap());
    let alice_clock = TestClock::at(T0);
    let mut alice = open(
        MemoryStore::new(),
        "alice@x",
        OmemoConfig::default(),
        &alice_clock,
    );
    let to_alice = session_from(
        &mut bob,
        "alice@x",
        alice.device_id(),
        &alice.bundle(Profile::Omemo2),
    );
    bob.encrypt(Profile::Omemo2, b"hi", &["alice@x"]).unwrap();
    assert_eq!(bob.keys().signed_prekey.id, first.id);
    assert!(bob.keys().old_signed_prekey.is_none());
    assert_eq!(bob.take_actions(), vec![]);

    // A week: the next encryption rotates first.
    clock.set(T0 + WEEK);
    let m = bob
        .encrypt(Profile::Omemo2, b"again", &["alice@x"])
        .unwrap();
    let current = bob.keys().signed_prekey.clone();
    assert_eq!(current.id, first.id + 1);
    assert_eq!(current.created(), Some(T0 + WEEK));
    assert_ne!(current.public(), first.public());
    let old = bob.keys().old_signed_prekey.clone().unwrap();
    assert_eq!((old.id, old.public()), (first.id, first.public()));
    assert_eq!(bob.take_actions(), republish_all());
    for (p, before) in PROFILES.iter().zip(&first_bundles) {
        let b = bob.bundle(*p);
        assert_eq!(b.verify(), Ok(()));
        assert_eq!(b.signed_prekey_id, current.id);
        assert_ne!(b.signed_prekey, before.signed_prekey);
        assert_eq!(b.identity_key, before.identity_key);
    }
    // The rotation is stored.
    let (_, stored) = bob.store().load_own_device().unwrap().unwrap();
    assert_eq!(stored.signed_prekey.id, current.id);
    assert_eq!(stored.signed_prekey.created(), Some(T0 + WEEK));
    assert_eq!(stored.old_signed_prekey.unwrap().id, first.id);
    // Nothing else is due until the next week (the old key expires at the same time).
    assert_eq!(bob.next_signed_prekey_change(), Some(T0 + 2 * WEEK));
    assert!(!bob.rotate_signed_prekey_if_due().unwrap());
    assert_eq!(bob.take_actions(), vec![]);

    // The session with alice is unaffected.
    let d = alice.decrypt("bob@x", &m.encrypted).unwrap();
    assert_eq!(d.plaintext.as_deref(), Some(&b"again"[..]));
    assert_eq!(to_alice.device_id, alice.device_id());
}

#[test]
fn decryption_and_opening_rotate_too() {
    // Decryption checks first.
    let clock = TestClock::at(T0);
    let mut bob = open(MemoryStore::new(), "bob@x", OmemoConfig::default(), &clock);
    let mut alice = open(
        MemoryStore::new(),
        "alice@x",
        OmemoConfig::default(),
        &clock,
    );
    session_from(
        &mut alice,
        "bob@x",
        bob.device_id(),
        &bob.bundle(Profile::Legacy),
    );
    let m = alice.encrypt(Profile::Legacy, b"x", &["bob@x"]).unwrap();
    clock.set(T0 + WEEK + 5);
    let d = bob.decrypt("alice@x", &m.encrypted).unwrap();
    assert_eq!(d.plaintext.as_deref(), Some(&b"x"[..]));
    assert_eq!(bob.keys().signed_prekey.created(), Some(T0 + WEEK + 5));
    let actions = bob.take_actions();
    for a in republish_all() {
        assert!(actions.contains(&a), "{actions:?}");
    }

    // Opening a stored device whose key is due rotates it before anything else.
    let clock = TestClock::at(T0);
    let carol = open(
        MemoryStore::new(),
        "carol@x",
        OmemoConfig::default(),
        &clock,
    );
    let first = carol.keys().signed_prekey.id;
    clock.set(T0 + 3 * WEEK);
    let mut carol = open(
        carol.into_store(),
        "carol@x",
        OmemoConfig::default(),
        &clock,
    );
    assert_eq!(carol.keys().signed_prekey.id, first + 1);
    assert_eq!(carol.keys().old_signed_prekey.as_ref().unwrap().id, first);
    assert_eq!(carol.take_actions(), republish_all());
}

#[test]
fn late_key_exchange_against_the_previous_key_works_within_its_lifetime_then_fails() {
    for profile in PROFILES {
        // A lifetime shorter than the period, so that the expiry is seen without a second rotation.
        let config = OmemoConfig {
            old_signed_prekey_lifetime: Duration::from_secs(2 * DAY),
            ..one_profile(profile)
        };
        for (late, accepted) in [(2 * DAY - 1, true), (2 * DAY, false)] {
            let clock = TestClock::at(T0);
            let mut bob = open(MemoryStore::new(), "bob@x", config.clone(), &clock);
            let mut alice = open(MemoryStore::new(), "alice@x", config.clone(), &clock);
            let old_bundle = bob.bundle(profile);
            // Bob rotates a week later; alice still has the bundle fetched before.
            clock.set(T0 + WEEK);
            assert!(bob.rotate_signed_prekey_if_due().unwrap());
            assert_eq!(bob.take_actions(), vec![Action::RepublishBundle(profile)]);
            session_from(&mut alice, "bob@x", bob.device_id(), &old_bundle);
            let m = alice.encrypt(profile, b"late", &["bob@x"]).unwrap();

            clock.set(T0 + WEEK + late);
            let result = bob.decrypt("alice@x", &m.encrypted);
            if accepted {
                let d = result.unwrap();
                assert!(d.new_session);
                assert_eq!(d.plaintext.as_deref(), Some(&b"late"[..]));
                assert!(bob.keys().old_signed_prekey.is_some());
                continue;
            }
            match result {
                Err(ManagerError::Omemo(OmemoError::UnknownSignedPreKey(id))) => {
                    assert_eq!(id, old_bundle.signed_prekey_id)
                }
                other => panic!("{profile:?}: expected UnknownSignedPreKey, got {other:?}"),
            }
            assert!(bob.keys().old_signed_prekey.is_none());
            let (_, stored) = bob.store().load_own_device().unwrap().unwrap();
            assert!(stored.old_signed_prekey.is_none());
            // Dropping the old key republishes nothing (the bundle never carries it).
            assert_eq!(bob.take_actions(), vec![]);

            // Alice recovers with the current bundle.
            let to_bob = DeviceAddress::new(profile, "bob@x", bob.device_id());
            alice.replace_session(&to_bob).unwrap();
            alice.add_bundle(&to_bob, &bob.bundle(profile)).unwrap();
            let m = alice.encrypt(profile, b"fresh", &["bob@x"]).unwrap();
            let d = bob.decrypt("alice@x", &m.encrypted).unwrap();
            assert_eq!(d.plaintext.as_deref(), Some(&b"fresh"[..]));
        }
    }
}

#[test]
fn with_the_defaults_the_previous_key_lives_one_more_period() {
    for profile in PROFILES {
        let clock = TestClock::at(T0);
        let mut bob = open(MemoryStore::new(), "bob@x", one_profile(profile), &clock);
        let mut alice = open(MemoryStore::new(), "alice@x", one_profile(profile), &clock);
        let old_bundle = bob.bundle(profile);
        clock.set(T0 + WEEK);
        assert!(bob.rotate_signed_prekey_if_due().unwrap());
        session_from(&mut alice, "bob@x", bob.device_id(), &old_bundle);
        let m = alice
            .encrypt(profile, b"six days late", &["bob@x"])
            .unwrap();
        clock.set(T0 + 2 * WEEK - 1);
        let d = bob.decrypt("alice@x", &m.encrypted).unwrap();
        assert_eq!(d.plaintext.as_deref(), Some(&b"six days late"[..]));
        // The next rotation retires the key after it and drops this one.
        clock.set(T0 + 2 * WEEK);
        assert!(bob.rotate_signed_prekey_if_due().unwrap());
        assert_eq!(
            bob.keys().old_signed_prekey.as_ref().unwrap().id,
            old_bundle.signed_prekey_id + 1
        );
    }
}

#[test]
fn no_rotation_when_disabled_and_manual_rotation_still_expires() {
    let config = OmemoConfig {
        signed_prekey_rotation: None,
        old_signed_prekey_lifetime: Duration::from_secs(DAY),
        ..OmemoConfig::default()
    };
    let clock = TestClock::at(T0);
    let mut bob = open(MemoryStore::new(), "bob@x", config.clone(), &clock);
    let first = bob.keys().signed_prekey.id;
    assert_eq!(bob.next_signed_prekey_change(), None);
    clock.set(T0 + 520 * WEEK);
    assert!(!bob.rotate_signed_prekey_if_due().unwrap());
    let mut bob = open(bob.into_store(), "bob@x", config.clone(), &clock);
    assert_eq!(bob.keys().signed_prekey.id, first);
    assert_eq!(bob.take_actions(), vec![]);

    // The application rotates by hand: the clock dates the key, and the old one expires.
    bob.rotate_signed_prekey().unwrap();
    assert_eq!(bob.take_actions(), republish_all());
    assert_eq!(bob.keys().signed_prekey.created(), Some(T0 + 520 * WEEK));
    assert_eq!(bob.next_signed_prekey_change(), Some(T0 + 520 * WEEK + DAY));
    clock.set(T0 + 520 * WEEK + DAY);
    assert!(!bob.rotate_signed_prekey_if_due().unwrap());
    assert!(bob.keys().old_signed_prekey.is_none());
    assert_eq!(bob.next_signed_prekey_change(), None);
}

/// Opens, rotates, restarts at several times: the creation times survive the store.
fn restarts_keep_creation_times<S: OmemoStore>(
    mut reopen: impl FnMut(Option<OmemoManager<S>>) -> S,
) {
    let clock = TestClock::at(T0);
    let config = OmemoConfig::default();
    let bob = open(reopen(None), "bob@x", config.clone(), &clock);
    let device = bob.device_id();
    let first = bob.keys().signed_prekey.clone();

    clock.set(T0 + 3 * DAY);
    let bob = open(reopen(Some(bob)), "bob@x", config.clone(), &clock);
    assert_eq!(bob.device_id(), device);
    assert_eq!(bob.keys().signed_prekey.id, first.id);
    assert_eq!(bob.keys().signed_prekey.created(), Some(T0));

    clock.set(T0 + WEEK + 10);
    let mut bob = open(reopen(Some(bob)), "bob@x", config.clone(), &clock);
    assert_eq!(bob.take_actions(), republish_all());
    let second = bob.keys().signed_prekey.clone();
    assert_eq!(second.created(), Some(T0 + WEEK + 10));

    clock.set(T0 + WEEK + 20);
    let mut bob = open(reopen(Some(bob)), "bob@x", config.clone(), &clock);
    assert_eq!(bob.take_actions(), vec![]);
    assert_eq!(bob.keys().signed_prekey.id, second.id);
    assert_eq!(bob.keys().signed_prekey.created(), Some(T0 + WEEK + 10));
    assert_eq!(bob.keys().signed_prekey.public(), second.public());
    let old = bob.keys().old_signed_prekey.clone().unwrap();
    assert_eq!((old.id, old.created()), (first.id, Some(T0)));
    assert_eq!(old.public(), first.public());
    assert_eq!(bob.next_signed_prekey_change(), Some(T0 + 2 * WEEK + 10));
}

#[test]
fn restarts_keep_creation_times_in_memory() {
    restarts_keep_creation_times::<MemoryStore>(|m| m.map(|m| m.into_store()).unwrap_or_default());
}

#[cfg(feature = "sqlite")]
#[test]
fn restarts_keep_creation_times_in_sqlite() {
    use xmpp_e2ee::omemo::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omemo.sqlite");
    restarts_keep_creation_times::<SqliteStore>(|m| {
        // Close the previous manager's connection, then open the file again.
        drop(m);
        SqliteStore::open(&path).unwrap()
    });
}

/// A protobuf length-delimited field.
fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2);
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

/// Device keys as the format without creation times stored them (written by hand): format 1,
/// identity seed, signed prekey {id, secret}, old signed prekey, 3 one-time prekeys, next id.
fn old_format_bytes() -> Vec<u8> {
    let mut out = vec![15 << 3, 1];
    field(&mut out, 1, &[7; 32]);
    let spk = |id: u8, fill: u8| {
        let mut v = vec![1 << 3, id];
        field(&mut v, 2, &[fill; 32]);
        v
    };
    field(&mut out, 2, &spk(5, 0x11));
    field(&mut out, 3, &spk(4, 0x22));
    let mut pks = Vec::new();
    for id in 1u32..=3 {
        pks.extend_from_slice(&id.to_be_bytes());
        pks.extend_from_slice(&[0x30 + id as u8; 32]);
    }
    field(&mut out, 4, &pks);
    out.extend_from_slice(&[5 << 3, 4]);
    out
}

#[test]
fn keys_stored_without_creation_times_load_and_rotate_at_the_first_check() {
    let bytes = old_format_bytes();
    let keys = DeviceKeys::from_bytes(&bytes).unwrap();
    assert_eq!(keys.signed_prekey.id, 5);
    assert_eq!(keys.signed_prekey.created(), None);
    assert_eq!(keys.signed_prekey.secret(), [0x11; 32]);
    let old = keys.old_signed_prekey.clone().unwrap();
    assert_eq!((old.id, old.created()), (4, None));
    assert_eq!(keys.prekey_count(), 3);
    // Unknown times are written as before: byte for byte the old format.
    assert_eq!(keys.to_bytes(), bytes);

    // Rotation disabled: the keys stay as they are, the old key included.
    let clock = TestClock::at(T0);
    let mut store = MemoryStore::new();
    store.store_own_device(42, &keys).unwrap();
    let never = OmemoConfig {
        signed_prekey_rotation: None,
        prekeys: 3,
        ..OmemoConfig::default()
    };
    let mut m = open(store.clone(), "bob@x", never, &clock);
    assert_eq!(m.keys().signed_prekey.id, 5);
    assert_eq!(m.keys().old_signed_prekey.as_ref().unwrap().id, 4);
    assert_eq!(m.take_actions(), vec![]);
    assert_eq!(m.next_signed_prekey_change(), None);

    // With rotation: the key of unknown age is replaced when the device is opened, the replaced
    // one stays accepted for a key exchange made from the bundle published before.
    let config = OmemoConfig {
        prekeys: 3,
        ..OmemoConfig::default()
    };
    for profile in PROFILES {
        let before = keys.bundle(profile);
        let mut bob = open(store.clone(), "bob@x", config.clone(), &clock);
        assert_eq!(bob.device_id(), 42);
        assert_eq!(bob.take_actions(), republish_all());
        assert_eq!(bob.keys().signed_prekey.id, 6);
        assert_eq!(bob.keys().signed_prekey.created(), Some(T0));
        assert_eq!(bob.keys().old_signed_prekey.as_ref().unwrap().id, 5);
        let (_, stored) = bob.store().load_own_device().unwrap().unwrap();
        assert_eq!(stored.signed_prekey.created(), Some(T0));

        let mut alice = open(MemoryStore::new(), "alice@x", one_profile(profile), &clock);
        session_from(&mut alice, "bob@x", 42, &before);
        let m = alice
            .encrypt(profile, b"from the old bundle", &["bob@x"])
            .unwrap();
        clock.set(T0 + WEEK - 1);
        let d = bob.decrypt("alice@x", &m.encrypted).unwrap();
        assert_eq!(d.plaintext.as_deref(), Some(&b"from the old bundle"[..]));
        clock.set(T0);
    }
}

#[test]
fn malformed_creation_times_are_typed_errors() {
    let mut keys = DeviceKeys::generate_at(2, T0);
    keys.rotate_signed_prekey_at(T0 + WEEK);
    let good = keys.to_bytes();
    let back = DeviceKeys::from_bytes(&good).unwrap();
    assert_eq!(back.signed_prekey.created(), Some(T0 + WEEK));
    assert_eq!(back.old_signed_prekey.unwrap().created(), Some(T0));

    let with_spk = |spk: Vec<u8>| {
        let mut out = vec![15 << 3, 1];
        field(&mut out, 1, &[7; 32]);
        field(&mut out, 2, &spk);
        field(&mut out, 4, &[]);
        out.extend_from_slice(&[5 << 3, 1]);
        out
    };
    let spk = |created: &[u8]| {
        let mut v = vec![1 << 3, 1];
        field(&mut v, 2, &[1; 32]);
        field(&mut v, 3, created);
        v
    };
    assert_eq!(
        DeviceKeys::from_bytes(&with_spk(spk(&T0.to_be_bytes())))
            .unwrap()
            .signed_prekey
            .created(),
        Some(T0)
    );
    for bad in [&[][..], &[1, 2, 3][..], &[0; 9][..]] {
        assert_eq!(
            DeviceKeys::from_bytes(&with_spk(spk(bad))).err(),
            Some(OmemoError::CorruptState("signed prekey creation time")),
            "{bad:?}"
        );
    }
    // A varint where the 8 bytes belong.
    let mut v = vec![1 << 3, 1];
    field(&mut v, 2, &[1; 32]);
    v.extend_from_slice(&[3 << 3, 0x05]);
    assert_eq!(
        DeviceKeys::from_bytes(&with_spk(v)).err(),
        Some(OmemoError::CorruptState("device keys"))
    );
}

#[test]
fn clock_errors_and_id_wrap() {
    let period = SIGNED_PREKEY_ROTATION;
    let mut keys = DeviceKeys::generate_at(1, T0);
    // Made a little in the future (the clock went back): age zero, not due.
    assert!(!keys.signed_prekey_rotation_due(period, T0 - DAY));
    // Made far in the future (the clock was wrong): due.
    assert!(keys.signed_prekey_rotation_due(period, T0 - WEEK - 1));
    assert!(!keys.signed_prekey_rotation_due(period, T0 + WEEK - 1));
    assert!(keys.signed_prekey_rotation_due(period, T0 + WEEK));
    // Unknown creation time: due.
    keys.signed_prekey = SignedPreKey::from_secret(0x7fff_ffff, [3; 32]);
    assert!(keys.signed_prekey_rotation_due(period, T0));
    // XEP-0384 ids stay within 1..=2^31-1.
    keys.rotate_signed_prekey_at(T0);
    assert_eq!(keys.signed_prekey.id, 1);
    assert_eq!(keys.old_signed_prekey.as_ref().unwrap().id, 0x7fff_ffff);
    // The old key's lifetime counts from the rotation.
    assert!(!keys.expire_old_signed_prekey(Duration::from_secs(DAY), T0 + DAY - 1));
    assert!(keys.expire_old_signed_prekey(Duration::from_secs(DAY), T0 + DAY));
    assert!(keys.old_signed_prekey.is_none());
}
