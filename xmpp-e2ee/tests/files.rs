//! Encrypted files: streaming AES-GCM against the one-shot `aes-gcm` crate, the trailing-tag decryptor,
//! tamper handling (typed error, no output file) and the XEP-0447/0448 examples round-tripped.
#![allow(clippy::unwrap_used)]

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use minidom::Element;
use rand::{Rng, RngCore, SeedableRng};
use xmpp_e2ee::files::aesgcm::{decrypt_to_file, encrypt_stream};
use xmpp_e2ee::files::gcm::INTERLEAVE;
use xmpp_e2ee::files::sfs::{
    EncryptedSource, FileMetadata, FileSharing, Hash, Source, SourcesAttachment, NS_SFS,
};
use xmpp_e2ee::files::{
    AesgcmUrl, Cipher, Decryptor, Encryptor, FileCryptoError, FileKey, SfsError,
    TrailingTagDecryptor,
};

type Aes256Gcm16 = AesGcm<aes::Aes256, U16>;
type Aes128Gcm16 = AesGcm<aes::Aes128, U16>;

/// One-shot reference: ciphertext || tag.
fn oracle(key: &FileKey, iv: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    let tag = match (key, iv.len()) {
        (FileKey::Aes256(k), 12) => Aes256Gcm::new(k.into())
            .encrypt_inout_detached(iv.try_into().unwrap(), b"", buf.as_mut_slice().into())
            .unwrap()
            .to_vec(),
        (FileKey::Aes256(k), 16) => Aes256Gcm16::new(k.into())
            .encrypt_inout_detached(iv.try_into().unwrap(), b"", buf.as_mut_slice().into())
            .unwrap()
            .to_vec(),
        (FileKey::Aes128(k), 12) => Aes128Gcm::new(k.into())
            .encrypt_inout_detached(iv.try_into().unwrap(), b"", buf.as_mut_slice().into())
            .unwrap()
            .to_vec(),
        (FileKey::Aes128(k), 16) => Aes128Gcm16::new(k.into())
            .encrypt_inout_detached(iv.try_into().unwrap(), b"", buf.as_mut_slice().into())
            .unwrap()
            .to_vec(),
        _ => unreachable!(),
    };
    buf.extend_from_slice(&tag);
    buf
}

fn sizes() -> Vec<usize> {
    let mut v = vec![
        0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000, 4095, 4096,
    ];
    for base in [INTERLEAVE, 2 * INTERLEAVE, 256 * 1024] {
        v.extend([
            base - 17,
            base - 16,
            base - 1,
            base,
            base + 1,
            base + 15,
            base + 16,
            base + 17,
        ]);
    }
    v.push(1_000_003);
    v
}

fn streaming_encrypt(key: &FileKey, iv: &[u8], plain: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    let mut enc = Encryptor::new(key, iv).unwrap();
    let mut out = plain.to_vec();
    let mut pos = 0;
    while pos < out.len() {
        // Random piece sizes, often not multiples of 16.
        let n = match rng.random_range(0..4) {
            0 => rng.random_range(1..=17),
            1 => rng.random_range(1..=300),
            2 => rng.random_range(1..=70_000),
            _ => out.len() - pos,
        }
        .min(out.len() - pos);
        enc.update(&mut out[pos..pos + n]).unwrap();
        pos += n;
    }
    assert_eq!(enc.len(), plain.len() as u64);
    let tag = enc.finish();
    out.extend_from_slice(&tag);
    out
}

fn keys(rng: &mut impl RngCore) -> Vec<FileKey> {
    let mut k16 = [0u8; 16];
    let mut k32 = [0u8; 32];
    rng.fill_bytes(&mut k16);
    rng.fill_bytes(&mut k32);
    vec![FileKey::Aes256(k32), FileKey::Aes128(k16)]
}

#[test]
fn streaming_equals_one_shot_on_many_sizes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let max = *sizes().iter().max().unwrap();
    let mut data = vec![0u8; max];
    rng.fill_bytes(&mut data);
    for key in keys(&mut rng) {
        for iv_len in [12usize, 16] {
            let mut iv = vec![0u8; iv_len];
            rng.fill_bytes(&mut iv);
            for &size in &sizes() {
                let plain = &data[..size];
                let expected = oracle(&key, &iv, plain);
                let got = streaming_encrypt(&key, &iv, plain, &mut rng);
                assert_eq!(got, expected, "size {size} iv {iv_len} key {key:?}");

                // Plain decryptor, random pieces.
                let (ct, tag) = expected.split_at(size);
                let mut dec = Decryptor::new(&key, &iv).unwrap();
                let mut buf = ct.to_vec();
                let mut pos = 0;
                while pos < buf.len() {
                    let n = rng.random_range(1..=40_000).min(buf.len() - pos);
                    dec.update(&mut buf[pos..pos + n]).unwrap();
                    pos += n;
                }
                dec.finish(tag).unwrap();
                assert_eq!(buf, plain);

                // Trailing-tag decryptor fed the whole file in random pieces.
                let mut tt = TrailingTagDecryptor::new(&key, &iv).unwrap();
                let mut out = Vec::with_capacity(size);
                let mut pos = 0;
                while pos < expected.len() {
                    let n = match rng.random_range(0..3) {
                        0 => rng.random_range(1..=20),
                        _ => rng.random_range(1..=50_000),
                    }
                    .min(expected.len() - pos);
                    let mut piece = expected[pos..pos + n].to_vec();
                    let k = tt.update(&mut piece).unwrap();
                    out.extend_from_slice(&piece[..k]);
                    pos += n;
                }
                tt.finish().unwrap();
                assert_eq!(out, plain, "size {size}");
            }
        }
    }
}

#[test]
fn one_bit_flips_are_refused() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let key = FileKey::random_aes256();
    for iv_len in [12usize, 16] {
        let mut iv = vec![0u8; iv_len];
        rng.fill_bytes(&mut iv);
        let mut plain = vec![0u8; 5000];
        rng.fill_bytes(&mut plain);
        let file = oracle(&key, &iv, &plain);
        for _ in 0..50 {
            let mut bad = file.clone();
            let i = rng.random_range(0..bad.len());
            bad[i] ^= 1 << rng.random_range(0..8);
            let mut tt = TrailingTagDecryptor::new(&key, &iv).unwrap();
            tt.update(&mut bad).unwrap();
            assert!(matches!(tt.finish(), Err(FileCryptoError::TagMismatch)));
        }
        // Wrong key.
        let mut tt = TrailingTagDecryptor::new(&FileKey::random_aes256(), &iv).unwrap();
        tt.update(&mut file.clone()).unwrap();
        assert!(matches!(tt.finish(), Err(FileCryptoError::TagMismatch)));
        // Truncated below a tag.
        let mut tt = TrailingTagDecryptor::new(&key, &iv).unwrap();
        tt.update(&mut file[..10].to_vec()).unwrap();
        assert!(matches!(tt.finish(), Err(FileCryptoError::Truncated)));
        // Bad tag length.
        let dec = Decryptor::new(&key, &iv).unwrap();
        assert!(matches!(
            dec.finish(&[0; 8]),
            Err(FileCryptoError::TagMismatch)
        ));
    }
    assert!(matches!(
        Encryptor::new(&key, &[]),
        Err(FileCryptoError::IvLength(0))
    ));
    assert!(matches!(
        FileKey::from_slice(&[0; 24]),
        Err(FileCryptoError::KeyLength(24))
    ));
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn file_helpers_keep_output_only_when_tag_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut plain = vec![0u8; 3 * 256 * 1024 + 123];
    rng.fill_bytes(&mut plain);
    let key = FileKey::random_aes256();
    let iv = xmpp_e2ee::files::aesgcm::random_iv();
    let mut enc = Vec::new();
    let mut last = 0;
    let n = encrypt_stream(&key, &iv, &plain[..], &mut enc, |p| last = p).unwrap();
    assert_eq!(n, plain.len() as u64);
    assert_eq!(last, plain.len() as u64);
    assert_eq!(enc, oracle(&key, &iv, &plain));

    let target = dir.path().join("out.bin");
    let n = decrypt_to_file(&key, &iv, &enc[..], &target, None, |_| {}).unwrap();
    assert_eq!(n, plain.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), plain);
    std::fs::remove_file(&target).unwrap();

    // Tampered body, tampered tag, truncated, oversized: typed error, nothing left in the directory.
    let mut body = enc.clone();
    body[1000] ^= 0x80;
    let mut tag = enc.clone();
    let l = tag.len();
    tag[l - 1] ^= 1;
    for (bad, limit, what) in [
        (body, None, "body"),
        (tag, None, "tag"),
        (enc[..8].to_vec(), None, "truncated"),
        (enc.clone(), Some(1000), "limit"),
    ] {
        let err = decrypt_to_file(&key, &iv, &bad[..], &target, limit, |_| {}).unwrap_err();
        match what {
            "truncated" => assert!(matches!(err, FileCryptoError::Truncated), "{err:?}"),
            "limit" => assert!(matches!(err, FileCryptoError::SizeLimit { limit: 1000 })),
            _ => assert!(
                matches!(err, FileCryptoError::TagMismatch),
                "{what}: {err:?}"
            ),
        }
        assert!(
            files_in(dir.path()).is_empty(),
            "{what}: {:?}",
            files_in(dir.path())
        );
    }
    // An existing target is not touched by a failed download.
    std::fs::write(&target, b"keep me").unwrap();
    let mut bad = enc.clone();
    bad[5] ^= 1;
    decrypt_to_file(&key, &iv, &bad[..], &target, None, |_| {}).unwrap_err();
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    assert_eq!(files_in(dir.path()), vec!["out.bin".to_string()]);
}

#[test]
fn aesgcm_url_decrypts_a_legacy_16_byte_iv_file() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(10);
    let mut iv = [0u8; 16];
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut iv);
    rng.fill_bytes(&mut key);
    let url = AesgcmUrl::from_https("https://share.example/x/y.jpg", &iv, &key).unwrap();
    let text = url.to_string();
    assert_eq!(text.len(), "aesgcm://share.example/x/y.jpg#".len() + 96);
    let parsed: AesgcmUrl = text.parse().unwrap();
    let file = oracle(&parsed.key(), parsed.iv(), b"hello legacy");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.jpg");
    decrypt_to_file(&parsed.key(), parsed.iv(), &file[..], &out, None, |_| {}).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), b"hello legacy");
}

fn fixture(name: &str) -> Element {
    let path = format!("{}/tests/fixtures/files/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.split_once("-->\n").unwrap().1;
    // The abbreviated examples hold an XML comment, which minidom refuses: drop it.
    let body = body.replace("<!-- ... -->", "");
    xmpp_social::xml::parse_bounded(&body, 1 << 20).unwrap()
}

fn descendants<'a>(el: &'a Element, name: &str, ns: &str, out: &mut Vec<&'a Element>) {
    for c in el.children() {
        if c.is(name, ns) {
            out.push(c);
        } else {
            descendants(c, name, ns, out);
        }
    }
}

#[test]
fn xep_examples_round_trip() {
    let mut sharings = 0;
    let mut attachments = 0;
    for i in 1..=9 {
        let name = if i == 9 {
            "xep0448-09.xml".to_string()
        } else {
            format!("xep0447-{i:02}.xml")
        };
        let root = fixture(&name);
        for msg in root.children() {
            for c in msg.children() {
                if c.is("file-sharing", NS_SFS) {
                    if c.children().next().is_none() {
                        // The "<!-- ... -->" abbreviated examples have no <file/>: refused, typed.
                        assert_eq!(
                            FileSharing::from_element(c),
                            Err(SfsError::Missing {
                                element: "file-sharing",
                                what: "<file/>"
                            })
                        );
                        continue;
                    }
                    let fs = FileSharing::from_element(c).unwrap_or_else(|e| panic!("{name}: {e}"));
                    let back = FileSharing::from_element(&fs.to_element()).unwrap();
                    assert_eq!(back, fs, "{name}");
                    // Text form too.
                    let text = String::from(&fs.to_element());
                    assert_eq!(FileSharing::parse_str(&text).unwrap(), fs);
                    sharings += 1;
                } else if c.is("sources", NS_SFS) {
                    let a = SourcesAttachment::from_element(c).unwrap();
                    assert_eq!(SourcesAttachment::from_element(&a.to_element()).unwrap(), a);
                    assert!(!a.sources.is_empty());
                    attachments += 1;
                }
            }
        }
    }
    assert_eq!(sharings, 8, "every complete example parsed");
    assert!(attachments >= 5);

    // The XEP-0448 example in detail.
    let root = fixture("xep0448-09.xml");
    let mut found = Vec::new();
    descendants(&root, "file-sharing", NS_SFS, &mut found);
    let fs = FileSharing::from_element(found[0]).unwrap();
    assert_eq!(fs.file.name.as_deref(), Some("summit.jpg"));
    assert_eq!(fs.file.size, Some(3032449));
    assert_eq!(fs.file.media_type.as_deref(), Some("image/jpeg"));
    assert_eq!(fs.file.hashes.len(), 2);
    assert_eq!(fs.file.extra.len(), 2, "dimension and thumbnail kept");
    let enc: Vec<&EncryptedSource> = fs.encrypted_sources().collect();
    assert_eq!(enc.len(), 1);
    assert_eq!(enc[0].cipher(), Some(Cipher::Aes256GcmNoPadding));
    assert_eq!(enc[0].key.len(), 32);
    assert_eq!(enc[0].iv.len(), 12);
    assert!(matches!(enc[0].file_key().unwrap(), FileKey::Aes256(_)));
    assert_eq!(
        enc[0].urls().collect::<Vec<_>>(),
        vec!["https://download.montague.lit/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/encrypted.jpg"]
    );
    assert!(!format!("{:?}", enc[0]).contains("SuRJ"), "no key in Debug");
    assert!(matches!(fs.sources.as_ref().unwrap()[1], Source::Other(_)));
}

#[test]
fn building_an_encrypted_sharing() {
    let (key, iv) = Cipher::Aes128GcmNoPadding.generate();
    assert!(matches!(key, FileKey::Aes128(_)));
    let mut meta = FileMetadata::new("a.txt", "text/plain", 5, Hash::sha256(b"hello").value);
    meta.desc = Some("greeting".into());
    let src = EncryptedSource::new(Cipher::Aes128GcmNoPadding, &key, &iv, "https://h/a");
    let fs = FileSharing {
        disposition: Some("attachment".into()),
        id: None,
        file: meta,
        sources: Some(vec![Source::Encrypted(src)]),
    };
    let el = fs.to_element();
    let back = FileSharing::from_element(&el).unwrap();
    assert_eq!(back, fs);
    assert_eq!(
        back.file.sha256().unwrap(),
        Hash::sha256(b"hello").value.as_slice()
    );
    assert_eq!(
        back.encrypted_sources().next().unwrap().file_key().unwrap(),
        key
    );
    // The JET form without ":0" is understood.
    assert_eq!(
        Cipher::from_urn("urn:xmpp:ciphers:aes-128-gcm-nopadding"),
        Some(Cipher::Aes128GcmNoPadding)
    );
}

#[test]
fn malformed_elements_are_typed_errors() {
    let p = FileSharing::parse_str;
    let file = "<file xmlns='urn:xmpp:file:metadata:0'><name>x</name></file>";
    let enc = |inner: &str| {
        format!(
            "<file-sharing xmlns='urn:xmpp:sfs:0'>{file}<sources>\
             <encrypted xmlns='urn:xmpp:esfs:0' cipher='urn:xmpp:ciphers:aes-256-gcm-nopadding:0'>\
             {inner}</encrypted></sources></file-sharing>"
        )
    };
    let sources = "<sources xmlns='urn:xmpp:sfs:0'><url-data xmlns='http://jabber.org/protocol/url-data' target='https://x/y'/></sources>";
    let key = "<key>SuRJ2agVm/pQbJQlPq/B23Xt1YOOJCcEGJA5HrcYOGQ=</key>";
    let iv = "<iv>T8RDMBaiqn6Ci4Nw</iv>";
    assert!(p(&enc(&format!("{key}{iv}{sources}"))).is_ok());
    assert!(matches!(
        p(&enc(&format!("{iv}{sources}"))),
        Err(SfsError::Missing { what: "<key/>", .. })
    ));
    assert!(matches!(
        p(&enc(&format!("{key}{sources}"))),
        Err(SfsError::Missing { what: "<iv/>", .. })
    ));
    assert!(matches!(
        p(&enc(&format!("{key}{iv}"))),
        Err(SfsError::Missing {
            what: "<sources/>",
            ..
        })
    ));
    assert!(matches!(
        p(&enc(&format!("<key>!!notbase64</key>{iv}{sources}"))),
        Err(SfsError::Invalid { element: "key", .. })
    ));
    assert!(matches!(
        p(&enc(&format!(
            "<key>{}</key>{iv}{sources}",
            "A".repeat(400)
        ))),
        Err(SfsError::TooLarge { element: "key", .. })
    ));
    assert!(matches!(
        p(&enc(&format!("{key}{key}{iv}{sources}"))),
        Err(SfsError::Invalid {
            what: "duplicate element",
            ..
        })
    ));
    // Nested encrypted sources are refused.
    let nested = format!(
        "{key}{iv}<sources xmlns='urn:xmpp:sfs:0'><encrypted xmlns='urn:xmpp:esfs:0' cipher='c'>{key}{iv}{sources}</encrypted></sources>"
    );
    assert!(matches!(
        p(&enc(&nested)),
        Err(SfsError::Invalid {
            element: "encrypted",
            ..
        })
    ));
    // Cipher attribute missing.
    assert!(matches!(
        p(&format!("<file-sharing xmlns='urn:xmpp:sfs:0'>{file}<sources><encrypted xmlns='urn:xmpp:esfs:0'>{key}{iv}{sources}</encrypted></sources></file-sharing>")),
        Err(SfsError::Missing { what: "cipher", .. })
    ));
    // Key of the wrong size for the cipher.
    let fs = p(&enc(&format!(
        "<key>AAAAAAAAAAAAAAAAAAAAAA==</key>{iv}{sources}"
    )))
    .unwrap();
    assert!(fs.encrypted_sources().next().unwrap().file_key().is_err());
    // Metadata.
    let meta = |inner: &str| {
        p(&format!("<file-sharing xmlns='urn:xmpp:sfs:0'><file xmlns='urn:xmpp:file:metadata:0'>{inner}</file></file-sharing>"))
    };
    assert!(matches!(
        meta("<size>-1</size>"),
        Err(SfsError::Invalid {
            element: "size",
            ..
        })
    ));
    assert!(matches!(
        meta("<size>99999999999999999999999</size>"),
        Err(SfsError::Invalid { .. })
    ));
    assert!(matches!(
        meta("<width>1e3</width>"),
        Err(SfsError::Invalid { .. })
    ));
    assert!(matches!(
        meta("<hash xmlns='urn:xmpp:hashes:2'>AAAA</hash>"),
        Err(SfsError::Missing { what: "algo", .. })
    ));
    assert!(matches!(
        meta("<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'></hash>"),
        Err(SfsError::Invalid { .. })
    ));
    assert!(matches!(
        meta(&format!("<name>{}</name>", "n".repeat(9000))),
        Err(SfsError::TooLarge { .. })
    ));
    let many = "<x xmlns='urn:other'/>".repeat(40);
    assert!(matches!(
        meta(&many),
        Err(SfsError::TooLarge {
            what: "unknown children",
            ..
        })
    ));
    let many_src =
        "<url-data xmlns='http://jabber.org/protocol/url-data' target='https://x/y'/>".repeat(40);
    assert!(matches!(
        p(&format!("<file-sharing xmlns='urn:xmpp:sfs:0'>{file}<sources>{many_src}</sources></file-sharing>")),
        Err(SfsError::TooLarge { element: "sources", .. })
    ));
    assert!(matches!(
        p(&format!("<file-sharing xmlns='urn:xmpp:sfs:0'>{file}<sources><url-data xmlns='http://jabber.org/protocol/url-data'/></sources></file-sharing>")),
        Err(SfsError::Missing { element: "url-data", .. })
    ));
    assert!(matches!(
        p("<other xmlns='x'/>"),
        Err(SfsError::UnexpectedElement { .. })
    ));
    assert!(matches!(p("<file-sharing"), Err(SfsError::Xml(_))));
    assert!(matches!(p(&"x".repeat(300 * 1024)), Err(SfsError::Xml(_))));
}
