//! The OMEMO sessions the `omemo_decrypt` and `omemo_proto` targets attack: built once per process, for
//! both profiles, with a few messages exchanged (DH turns, a skipped key, a pending key exchange), plus
//! the genuine messages each state must still accept after a hostile input.
//!
//! The core draws its ephemeral keys from the thread-local CSPRNG, so the keys differ from process to
//! process; the shapes (lengths, counters, field layout) do not, so a crashing input reproduces.
//! With `OMEMO_FUZZ_SEEDS=<dir>` set, the genuine messages are written there as seed inputs.

use std::sync::OnceLock;

use xmpp_e2ee::omemo::{
    payload, DeviceKeys, EncryptedKey, EncryptedPayload, KeyMaterial, OmemoError, Profile, Session,
};

/// A genuine `<key>` and what it decrypts to.
pub struct Genuine {
    /// The `<key>` bytes.
    pub data: Vec<u8>,
    /// Its kex/prekey flag.
    pub key_exchange: bool,
    /// The key material it carries.
    pub plaintext: Vec<u8>,
}

/// One profile's states.
pub struct Fixture {
    /// The profile.
    pub profile: Profile,
    /// Bob's device after accepting Alice and Dave; Carol's key exchange is still pending.
    pub bob_keys: DeviceKeys,
    /// Carol's key exchange for `bob_keys` (not accepted yet).
    pub carol_kex: Genuine,
    /// Bob's confirmed session with Alice: DH turns done, one skipped key (message 0 of the chain).
    pub b: Session,
    /// Genuine messages each of which `b` (a clone of it) must decrypt: the skipped one, the next one of
    /// the current chain, the first one of Alice's next chain.
    pub b_next: Vec<Genuine>,
    /// Bob's session built from Dave's key exchange; Dave has not heard back yet.
    pub b_kex: Session,
    /// Dave's next message: the same key exchange repeated around a new ratchet message.
    pub b_kex_next: Genuine,
    /// A 200-byte payload, its key material and plaintext.
    pub payload: (KeyMaterial, EncryptedPayload, Vec<u8>),
}

fn send(s: &mut Session, profile: Profile, text: &str) -> Genuine {
    let (km, _) = payload::encrypt(profile, text.as_bytes());
    let EncryptedKey { data, key_exchange } = s.encrypt(&km).expect("encrypt");
    Genuine {
        data,
        key_exchange,
        plaintext: km,
    }
}

fn recv(s: &mut Session, g: &Genuine) {
    let pt = s.decrypt(&g.data, g.key_exchange).expect("fixture decrypt");
    assert_eq!(pt, g.plaintext);
}

fn build(profile: Profile) -> Fixture {
    let alice = DeviceKeys::generate(3);
    let mut bob = DeviceKeys::generate(5);
    let mut a = alice.initiate(&bob.bundle(profile)).expect("initiate");
    let first = send(&mut a, profile, "hello");
    let (mut b, pt) = bob.accept(profile, &first.data).expect("accept");
    assert_eq!(pt, first.plaintext);
    for round in 0..3 {
        let m = send(&mut b, profile, &format!("b{round}"));
        recv(&mut a, &m);
        let m = send(&mut a, profile, &format!("a{round}"));
        recv(&mut b, &m);
    }
    let chain: Vec<Genuine> = (0..4)
        .map(|i| send(&mut a, profile, &format!("m{i}")))
        .collect();
    recv(&mut b, &chain[2]);
    recv(&mut b, &chain[1]);
    let r = send(&mut b, profile, "r");
    recv(&mut a, &r);
    let next_chain = send(&mut a, profile, "m4");
    assert_eq!(b.skipped_keys(), 1);
    let Ok::<[Genuine; 4], _>([m0, _, _, m3]) = chain.try_into() else {
        unreachable!("four messages")
    };
    let b_next = vec![m0, m3, next_chain];

    let dave = DeviceKeys::generate(1);
    let mut d = dave.initiate(&bob.bundle(profile)).expect("initiate");
    let kex1 = send(&mut d, profile, "dave 1");
    let (b_kex, _) = bob.accept(profile, &kex1.data).expect("accept");
    let b_kex_next = send(&mut d, profile, "dave 2");
    assert!(b_kex_next.key_exchange);

    let carol = DeviceKeys::generate(1);
    let mut c = carol.initiate(&bob.bundle(profile)).expect("initiate");
    let carol_kex = send(&mut c, profile, "carol");

    let text = vec![0x61; 200];
    let (km, body) = payload::encrypt(profile, &text);

    let f = Fixture {
        profile,
        bob_keys: bob,
        carol_kex,
        b,
        b_next,
        b_kex,
        b_kex_next,
        payload: (km, body, text),
    };
    f.self_check();
    if let Some(dir) = std::env::var_os("OMEMO_FUZZ_SEEDS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("seed dir");
        let tag = match profile {
            Profile::Omemo2 => "omemo2",
            _ => "legacy",
        };
        let all = f.b_next.iter().chain([&f.b_kex_next, &f.carol_kex]);
        for (i, g) in all.enumerate() {
            std::fs::write(dir.join(format!("{tag}_{i}.bin")), &g.data).expect("write seed");
        }
    }
    f
}

impl Fixture {
    /// The genuine messages do what they should on fresh copies of the states.
    fn self_check(&self) {
        self.assert_session_unharmed(&self.b, &self.b.clone(), true);
        self.assert_kex_session_unharmed(&self.b_kex, &self.b_kex.clone(), true);
        self.assert_keys_unharmed(&self.bob_keys, true);
    }

    /// `after` (a copy of `b` that was fed a failing input) is byte for byte `before` (the stored form
    /// is the whole state) and, when `decrypt_genuine` (costs X25519 for the new-chain message), still
    /// decrypts every genuine message.
    pub fn assert_session_unharmed(
        &self,
        before: &Session,
        after: &Session,
        decrypt_genuine: bool,
    ) {
        assert!(
            before.to_bytes() == after.to_bytes(),
            "a failed decryption changed the session"
        );
        if !decrypt_genuine {
            return;
        }
        for g in &self.b_next {
            let pt = after
                .clone()
                .decrypt(&g.data, g.key_exchange)
                .expect("genuine message after a failed one");
            assert_eq!(pt, g.plaintext);
        }
    }

    /// Same for the session built from Dave's key exchange.
    pub fn assert_kex_session_unharmed(
        &self,
        before: &Session,
        after: &Session,
        decrypt_genuine: bool,
    ) {
        assert!(
            before.to_bytes() == after.to_bytes(),
            "a failed decryption changed the session"
        );
        if !decrypt_genuine {
            return;
        }
        let g = &self.b_kex_next;
        let pt = after
            .clone()
            .decrypt(&g.data, true)
            .expect("genuine key exchange after a failed one");
        assert_eq!(pt, g.plaintext);
    }

    /// `keys` (a copy of `bob_keys` that was fed a failing key exchange) is unchanged, and (when
    /// `accept_genuine`, which costs four X25519) still accepts Carol's genuine key exchange.
    pub fn assert_keys_unharmed(&self, keys: &DeviceKeys, accept_genuine: bool) {
        assert!(
            keys.to_bytes() == self.bob_keys.to_bytes(),
            "a failed key exchange changed the device keys"
        );
        if accept_genuine {
            let (_, pt) = keys
                .clone()
                .accept(self.profile, &self.carol_kex.data)
                .expect("genuine key exchange after a failed one");
            assert_eq!(pt, self.carol_kex.plaintext);
        }
    }
}

/// Whether an error comes from the framing only (nothing cryptographic was reached).
pub fn is_parse_error(e: &OmemoError) -> bool {
    matches!(e, OmemoError::MalformedProtobuf(_))
}

/// The fixtures of both profiles.
pub fn fixtures() -> &'static [Fixture; 2] {
    static F: OnceLock<[Fixture; 2]> = OnceLock::new();
    F.get_or_init(|| [build(Profile::Omemo2), build(Profile::Legacy)])
}
