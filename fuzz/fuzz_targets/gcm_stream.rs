//! Streaming AES-GCM (xmpp-e2ee `files::Encryptor`/`Decryptor`, the fused x86-64 kernel where the CPU
//! has AES-NI and PCLMULQDQ) against the one-shot `aes-gcm` crate.
//! Input: byte 0 picks AES-128/256 and a 12- or 16-byte IV, byte 1 seeds the piece sizes, then key,
//! IV and plaintext. The streamed ciphertext and tag must equal the one-shot ones; decryption in other
//! pieces must give the plaintext back and verify; one flipped bit must fail verification.
#![no_main]

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::{Aes128, Aes256};
use aes_gcm::AesGcm;
use libfuzzer_sys::fuzz_target;
use xmpp_e2ee::files::{Decryptor, Encryptor, FileKey};

/// Splits `len` bytes into pieces of 1..=300 bytes from a seed (crossing blocks and 128-byte groups).
fn cuts(len: usize, seed: u8) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut left, mut s) = (len, seed as usize + 1);
    while left > 0 {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345) % 65_521;
        let n = (s % 300 + 1).min(left);
        out.push(n);
        left -= n;
    }
    out
}

fn one_shot(key: &[u8], iv: &[u8], buf: &mut [u8]) -> [u8; 16] {
    macro_rules! run {
        ($aes:ty, $n:ty) => {{
            let c = AesGcm::<$aes, $n>::new_from_slice(key).expect("key length");
            let nonce = aes_gcm::Nonce::<$n>::try_from(iv).expect("nonce length");
            c.encrypt_inout_detached(&nonce, b"", buf.into()).expect("short input").into()
        }};
    }
    match (key.len(), iv.len()) {
        (16, 12) => run!(Aes128, U12),
        (16, _) => run!(Aes128, U16),
        (_, 12) => run!(Aes256, U12),
        _ => run!(Aes256, U16),
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, seed, rest @ ..] = data else {
        return;
    };
    let key_len = if mode & 1 == 0 { 16 } else { 32 };
    let iv_len = if mode & 2 == 0 { 12 } else { 16 };
    if rest.len() < key_len + iv_len {
        return;
    }
    let (key, rest) = rest.split_at(key_len);
    let (iv, plain) = rest.split_at(iv_len);
    let file_key = FileKey::from_slice(key).expect("16 or 32 bytes");

    let mut expected = plain.to_vec();
    let tag = one_shot(key, iv, &mut expected);

    let mut ct = plain.to_vec();
    let mut enc = Encryptor::new(&file_key, iv).expect("valid IV");
    let mut at = 0;
    for n in cuts(ct.len(), *seed) {
        enc.update(&mut ct[at..at + n]).expect("short input");
        at += n;
    }
    assert_eq!(ct, expected, "ciphertext differs from one-shot");
    assert_eq!(enc.finish(), tag, "tag differs from one-shot");

    let mut pt = ct.clone();
    let mut dec = Decryptor::new(&file_key, iv).expect("valid IV");
    let mut at = 0;
    for n in cuts(pt.len(), seed.wrapping_add(101)) {
        dec.update(&mut pt[at..at + n]).expect("short input");
        at += n;
    }
    assert_eq!(pt, plain, "decryption differs");
    dec.finish(&tag).expect("tag verifies");

    let mut bad = ct;
    let flip = (*seed as usize) % (bad.len() + 16);
    let mut bad_tag = tag;
    if flip < bad.len() {
        bad[flip] ^= 1 << (mode >> 5);
    } else {
        bad_tag[flip - bad.len()] ^= 1 << (mode >> 5);
    }
    let mut dec = Decryptor::new(&file_key, iv).expect("valid IV");
    dec.update(&mut bad).expect("short input");
    assert!(dec.finish(&bad_tag).is_err(), "a flipped bit verified");
});
