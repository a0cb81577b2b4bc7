//! The OMEMO decrypt path on arbitrary bytes, in both profiles, against established sessions (see
//! `common/omemo_fixture.rs`):
//!
//! * as a `<key>` to `Session::decrypt` (key_exchange false and true) of a confirmed session and of a
//!   session built from a key exchange: a typed error, the session byte for byte unchanged and still
//!   decrypting the genuine next messages;
//! * as a key exchange to `DeviceKeys::accept`: a typed error, the device keys unchanged and still
//!   accepting the genuine pending key exchange;
//! * as payload and/or key material to `payload::decrypt`: a typed error, or (with the genuine key
//!   material) the genuine plaintext only;
//! * to `Session::from_bytes` / `DeviceKeys::from_bytes`: a typed error, or a state that stores back to
//!   the same bytes and can be used without panicking (our own bundles verify).
#![no_main]

#[allow(dead_code)]
#[path = "common/omemo_fixture.rs"]
mod fixture;

use fixture::{fixtures, is_parse_error, Fixture};
use libfuzzer_sys::fuzz_target;
use xmpp_e2ee::omemo::{payload, DeviceKeys, EncryptedPayload, Profile, Session};

fn sessions(f: &Fixture, data: &[u8]) {
    for key_exchange in [false, true] {
        let mut s = f.b.clone();
        match s.decrypt(data, key_exchange) {
            // Only a genuine message can decrypt, and the fuzzer cannot know one (keys are per process).
            Ok(pt) => assert!(f.b_next.iter().any(|g| g.plaintext == pt)),
            // The genuine messages are re-decrypted only when the input got past the framing.
            Err(e) => f.assert_session_unharmed(&f.b, &s, !is_parse_error(&e)),
        }
        let mut s = f.b_kex.clone();
        match s.decrypt(data, key_exchange) {
            Ok(pt) => assert_eq!(pt, f.b_kex_next.plaintext),
            Err(e) => f.assert_kex_session_unharmed(&f.b_kex, &s, !is_parse_error(&e)),
        }
    }
}

fn accept(f: &Fixture, data: &[u8]) {
    let mut keys = f.bob_keys.clone();
    match keys.accept(f.profile, data) {
        Ok((_, pt)) => assert_eq!(pt, f.carol_kex.plaintext),
        // The genuine re-accept costs four X25519: only when the input got past the framing.
        Err(e) => f.assert_keys_unharmed(&keys, !is_parse_error(&e)),
    }
}

fn payloads(f: &Fixture, data: &[u8]) {
    let (km, genuine, text) = &f.payload;
    // Layout: [km_len][iv_len][km][iv][ciphertext], lengths taken modulo small bounds.
    let (km_len, iv_len, rest) = match data {
        [a, b, rest @ ..] => (usize::from(*a % 64), usize::from(*b % 24), rest),
        _ => (0, 0, data),
    };
    let (fz_km, rest) = rest.split_at(km_len.min(rest.len()));
    let (fz_iv, fz_ct) = rest.split_at(iv_len.min(rest.len()));
    let fz_payload = EncryptedPayload {
        ciphertext: fz_ct.to_vec(),
        iv: (f.profile == Profile::Legacy || !fz_iv.is_empty()).then(|| fz_iv.to_vec()),
    };
    let _ = payload::decrypt(f.profile, fz_km, &fz_payload);
    if let Ok(pt) = payload::decrypt(f.profile, km, &fz_payload) {
        assert_eq!(&pt, text, "forged payload accepted");
    }
    if let Ok(pt) = payload::decrypt(f.profile, fz_km, genuine) {
        assert_eq!(&pt, text, "forged key material accepted");
    }
    // The whole input as ciphertext, with the genuine key and IV.
    let whole = EncryptedPayload {
        ciphertext: data.to_vec(),
        iv: genuine.iv.clone(),
    };
    if let Ok(pt) = payload::decrypt(f.profile, km, &whole) {
        assert_eq!(&pt, text, "forged payload accepted");
    }
}

fn stored(f: &Fixture, data: &[u8]) {
    if let Ok(s) = Session::from_bytes(data) {
        let bytes = s.to_bytes();
        let again = Session::from_bytes(&bytes).expect("stored session restores");
        assert!(again.to_bytes() == bytes, "session storage is not stable");
        let _ = s.clone().encrypt(b"x");
        let _ = s.clone().decrypt(data, false);
        for g in &f.b_next {
            let _ = s.clone().decrypt(&g.data, g.key_exchange);
        }
    }
    if let Ok(k) = DeviceKeys::from_bytes(data) {
        let bytes = k.to_bytes();
        let again = DeviceKeys::from_bytes(&bytes).expect("stored keys restore");
        assert!(again.to_bytes() == bytes, "device storage is not stable");
        for p in [Profile::Omemo2, Profile::Legacy] {
            k.bundle(p).verify().expect("our own bundle verifies");
        }
        let _ = k.clone().accept(f.profile, &f.carol_kex.data);
    }
}

fuzz_target!(|data: &[u8]| {
    for f in fixtures() {
        sessions(f, data);
        accept(f, data);
        payloads(f, data);
    }
    stored(&fixtures()[0], data);
});
