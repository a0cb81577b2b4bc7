//! Encrypted file sharing (xmpp-e2ee `files`): the first byte picks the input kind.
//! 0: `aesgcm://` URL text (what parses must format and parse back the same);
//! 1: XML for `<file-sharing/>`, `<sources/>`, `<encrypted/>` (typed errors only; round trips);
//! 2: arbitrary bytes through the streaming trailing-tag decryptor in arbitrary pieces (never a panic,
//!    never a verified tag), then the same bytes as plaintext: encrypted, decrypted in other pieces,
//!    they must come back and verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_e2ee::files::sfs::{EncryptedSource, FileSharing, SourcesAttachment};
use xmpp_e2ee::files::{AesgcmUrl, Encryptor, FileKey, TrailingTagDecryptor};
use xmpp_social::xml::parse_bounded;

fn pieces(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut s = seed as usize;
    while !rest.is_empty() {
        s = s.wrapping_mul(31).wrapping_add(7);
        let n = (s % 37 + 1).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(url) = text.parse::<AesgcmUrl>() {
                let again: AesgcmUrl = url.to_string().parse().expect("formatted URL parses");
                assert_eq!(again, url);
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let Ok(el) = parse_bounded(text, 64 * 1024) else {
                return;
            };
            if let Ok(fs) = FileSharing::from_element(&el) {
                let back = FileSharing::from_element(&fs.to_element()).expect("re-parse");
                assert_eq!(back, fs);
                for e in fs.encrypted_sources() {
                    let _ = e.file_key();
                }
            }
            if let Ok(a) = SourcesAttachment::from_element(&el) {
                assert_eq!(SourcesAttachment::from_element(&a.to_element()).expect("re-parse"), a);
            }
            if let Ok(e) = EncryptedSource::from_element(&el) {
                assert_eq!(EncryptedSource::from_element(&e.to_element()).expect("re-parse"), e);
            }
        }
        _ => {
            let Some((&mode, body)) = rest.split_first() else {
                return;
            };
            let key = if mode & 1 == 0 {
                FileKey::Aes256([mode; 32])
            } else {
                FileKey::Aes128([mode; 16])
            };
            let iv: &[u8] = if mode & 2 == 0 { &[3u8; 12] } else { &[5u8; 16] };
            // Arbitrary ciphertext: must fail to verify (a forgery would need the key), never panic.
            let mut dec = TrailingTagDecryptor::new(&key, iv).expect("valid key and IV");
            let mut released = 0usize;
            for p in pieces(body, mode) {
                let mut buf = p.to_vec();
                released += dec.update(&mut buf).expect("under the GCM limit");
            }
            assert_eq!(released, body.len().saturating_sub(16));
            assert!(dec.finish().is_err());
            // The same bytes as plaintext: round trip in different pieces.
            let mut enc = Encryptor::new(&key, iv).expect("valid key and IV");
            let mut ct = Vec::with_capacity(body.len() + 16);
            for p in pieces(body, mode.wrapping_add(1)) {
                let mut buf = p.to_vec();
                enc.update(&mut buf).expect("under the GCM limit");
                ct.extend_from_slice(&buf);
            }
            ct.extend_from_slice(&enc.finish());
            let mut dec = TrailingTagDecryptor::new(&key, iv).expect("valid key and IV");
            let mut plain = Vec::with_capacity(body.len());
            for p in pieces(&ct, mode.wrapping_add(2)) {
                let mut buf = p.to_vec();
                let n = dec.update(&mut buf).expect("under the GCM limit");
                plain.extend_from_slice(&buf[..n]);
            }
            dec.finish().expect("own ciphertext verifies");
            assert_eq!(plain, body);
        }
    }
});
