//! JET (XEP-0391/0396) without a network: the `<security/>` element on the XEPs' examples, the
//! stream cipher against one-shot AES-GCM, tampering, hostile elements, and OMEMO key transport in
//! both namespaces between two session managers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use minidom::{Element, Node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xmpp_e2ee::omemo::xml::{DeviceEntry, DeviceList};
use xmpp_e2ee::omemo::{
    Encrypted, ManagerError, MemoryStore, OmemoConfig, OmemoManager, Profile, TrustLevel,
};
use xmpp_jingle::jet::{
    key_from_material, key_transport_material, JetCipher, JetError, JetKey, Security,
    TransportMaterial, NS_JET,
};
use xmpp_social::xml::BuilderExt;

/// The `<security/>` of XEP-0391's file offer example.
const XEP_0391_OFFER: &str = r#"<security xmlns='urn:xmpp:jingle:jet:0'
          name='a-file-offer'
          cipher='urn:xmpp:ciphers:aes-256-gcm-nopadding'
          type='urn:xmpp:encryption:stub:0'>
        <encrypted xmlns='urn:xmpp:encryption:stub:0'>
          <payload>BASE64-ENCODED-ENCRYPTED-SECRET</payload>
        </encrypted>
      </security>"#;

/// The `<security/>` of XEP-0391's file request example.
const XEP_0391_REQUEST: &str = r#"<security xmlns='urn:xmpp:jingle:jet:0'
          name='a-file-request'
          cipher='urn:xmpp:ciphers:aes-256-gcm-nopadding'
          type='urn:xmpp:encryption:stub:0'>
        <encrypted xmlns='urn:xmpp:encryption:stub:0'>
          <payload>BASE64-ENCODED-ENCRYPTED-SECRET</payload>
        </encrypted>
      </security>"#;

/// The `<security/>` of XEP-0396's example (the XML comment and `...` placeholders left out: the
/// placeholders are no base64, see `xep_0396_placeholders_are_refused`).
const XEP_0396_OFFER: &str = r#"<security xmlns='urn:xmpp:jingle:jet:0'
          name='a-file-offer'
          cipher='urn:xmpp:ciphers:aes-128-gcm-nopadding'
          type='eu.siacs.conversations.axolotl'>
        <encrypted xmlns='eu.siacs.conversations.axolotl'>
          <header sid='27183'>
            <key rid='31415'>BASE64ENCODED...</key>
            <key prekey="true" rid='12321'>BASE64ENCODED...</key>
            <iv>BASE64ENCODED...</iv>
          </header>
        </encrypted>
      </security>"#;

/// A comparable outline of a tree, whitespace-only text (indentation) left out.
fn strip(el: &Element) -> String {
    let mut attrs: Vec<String> = el
        .attrs()
        .iter()
        .map(|(k, v)| format!("{k:?}={v}"))
        .collect();
    attrs.sort();
    let mut out = format!("{{{}}}{}[{}](", el.ns(), el.name(), attrs.join(","));
    for node in el.nodes() {
        match node {
            Node::Element(c) => out.push_str(&strip(c)),
            Node::Text(t) if t.trim().is_empty() => {}
            Node::Text(t) => out.push_str(&format!("'{t}'")),
        }
    }
    out.push(')');
    out
}

fn parse(xml: &str) -> Element {
    xml.parse().unwrap()
}

#[test]
fn xep_examples_round_trip() {
    for (xml, name, cipher, type_) in [
        (
            XEP_0391_OFFER,
            "a-file-offer",
            JetCipher::Aes256Gcm,
            "urn:xmpp:encryption:stub:0",
        ),
        (
            XEP_0391_REQUEST,
            "a-file-request",
            JetCipher::Aes256Gcm,
            "urn:xmpp:encryption:stub:0",
        ),
        (
            XEP_0396_OFFER,
            "a-file-offer",
            JetCipher::Aes128Gcm,
            "eu.siacs.conversations.axolotl",
        ),
    ] {
        let el = parse(xml);
        let sec = Security::from_element(&el).unwrap();
        assert_eq!(sec.name.as_deref(), Some(name));
        assert_eq!(sec.cipher().unwrap(), cipher);
        assert_eq!(sec.type_, type_);
        assert_eq!(sec.envelope.name(), "encrypted");
        assert_eq!(strip(&sec.to_element()), strip(&el));
        // And once more through text.
        let again = Security::from_element(&parse(&String::from(&sec.to_element()))).unwrap();
        assert_eq!(strip(&again.to_element()), strip(&el));
    }
    let legacy = Security::from_element(&parse(XEP_0396_OFFER)).unwrap();
    assert_eq!(legacy.profile().unwrap(), Profile::Legacy);
    let stub = Security::from_element(&parse(XEP_0391_OFFER)).unwrap();
    assert!(matches!(stub.profile(), Err(JetError::UnknownType(_))));
}

#[test]
fn xep_0396_placeholders_are_refused() {
    let sec = Security::from_element(&parse(XEP_0396_OFFER)).unwrap();
    assert!(Encrypted::try_from(&sec.envelope).is_err());
}

#[test]
fn cipher_spellings() {
    for (urn, c) in [
        (
            "urn:xmpp:ciphers:aes-128-gcm-nopadding:0",
            JetCipher::Aes128Gcm,
        ),
        (
            "urn:xmpp:ciphers:aes-128-gcm-nopadding",
            JetCipher::Aes128Gcm,
        ),
        (
            "urn:xmpp:ciphers:aes-256-gcm-nopadding:0",
            JetCipher::Aes256Gcm,
        ),
        (
            "urn:xmpp:ciphers:aes-256-gcm-nopadding",
            JetCipher::Aes256Gcm,
        ),
    ] {
        assert_eq!(JetCipher::from_urn(urn), Some(c));
    }
    for bad in [
        "",
        "urn:xmpp:ciphers:aes-256-cbc-pkcs7:0",
        "urn:xmpp:ciphers:aes-128-gcm-nopadding:1",
        "aes-128-gcm-nopadding:0",
        "urn:xmpp:ciphers:aes-128-gcm-nopadding:0:0",
    ] {
        assert_eq!(JetCipher::from_urn(bad), None, "{bad}");
    }
    // What Conversations and Dino recognise is written.
    assert_eq!(
        JetCipher::Aes128Gcm.urn(),
        "urn:xmpp:ciphers:aes-128-gcm-nopadding"
    );
}

#[test]
fn hostile_security_elements() {
    type Check = fn(&JetError) -> bool;
    let cases: &[(&str, Check)] = &[
        (
            "<securit xmlns='urn:xmpp:jingle:jet:0' cipher='c' type='t'><e xmlns='t'/></securit>",
            |e| matches!(e, JetError::NotSecurity),
        ),
        (
            "<security xmlns='urn:xmpp:jingle:jet:1' cipher='c' type='t'><e xmlns='t'/></security>",
            |e| matches!(e, JetError::NotSecurity),
        ),
        (
            "<security xmlns='urn:xmpp:jingle:jet:0' type='t'><e xmlns='t'/></security>",
            |e| matches!(e, JetError::MissingAttribute("cipher")),
        ),
        (
            "<security xmlns='urn:xmpp:jingle:jet:0' cipher='c'><e xmlns='t'/></security>",
            |e| matches!(e, JetError::MissingAttribute("type")),
        ),
        (
            "<security xmlns='urn:xmpp:jingle:jet:0' cipher='c' type='t'/>",
            |e| matches!(e, JetError::NoEnvelope),
        ),
        (
            "<security xmlns='urn:xmpp:jingle:jet:0' cipher='c' type='t'><e xmlns='u'/>text</security>",
            |e| matches!(e, JetError::NoEnvelope),
        ),
    ];
    for (xml, check) in cases {
        let err = Security::from_element(&parse(xml)).unwrap_err();
        assert!(check(&err), "{xml}: {err:?}");
    }
    // Parsed but unusable: unknown cipher (echoed bounded), unknown type, a broken envelope.
    let long = "x".repeat(100_000);
    let el = Element::builder("security", NS_JET)
        .a("cipher", long.as_str())
        .a("type", long.as_str())
        .append(Element::builder("e", long.as_str()).build())
        .build();
    let sec = Security::from_element(&el).unwrap();
    match sec.cipher() {
        Err(JetError::UnknownCipher(s)) => assert!(s.len() <= 128),
        other => panic!("{other:?}"),
    }
    assert!(matches!(sec.profile(), Err(JetError::UnknownType(s)) if s.len() <= 128));
    for envelope in [
        "<encrypted xmlns='urn:xmpp:omemo:2'/>",
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='x'/></encrypted>",
        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>!!</key></header></encrypted>",
    ] {
        let el = parse(envelope);
        let sec = Security::new(Some("c"), JetCipher::Aes128Gcm, el.clone());
        assert_eq!(sec.type_, el.ns());
        assert!(Encrypted::try_from(&sec.envelope).is_err(), "{envelope}");
    }
    // find_in: none, one, broken.
    assert!(Security::find_in(&[]).unwrap().is_none());
    let ok = parse(XEP_0396_OFFER);
    assert!(Security::find_in(&[parse("<x xmlns='y'/>"), ok])
        .unwrap()
        .is_some());
    let broken = parse("<security xmlns='urn:xmpp:jingle:jet:0'/>");
    assert!(Security::find_in(&[broken]).is_err());
}

#[test]
fn jet_key_is_checked_and_redacted() {
    assert!(matches!(
        JetKey::new(JetCipher::Aes128Gcm, &[1; 32], &[0; 12]),
        Err(JetError::BadKeyLength(32))
    ));
    assert!(matches!(
        JetKey::new(JetCipher::Aes256Gcm, &[1; 16], &[0; 12]),
        Err(JetError::BadKeyLength(16))
    ));
    for iv in [0usize, 1, 11, 13, 15, 17, 64] {
        assert!(matches!(
            JetKey::new(JetCipher::Aes128Gcm, &[1; 16], &vec![0; iv]),
            Err(JetError::BadIvLength(n)) if n == iv
        ));
    }
    let key = JetKey::new(JetCipher::Aes128Gcm, &[0xab; 16], &[0xcd; 12]).unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "));
    assert!(shown.contains("redacted"));
    let a = JetKey::generate(JetCipher::Aes128Gcm);
    let b = JetKey::generate(JetCipher::Aes128Gcm);
    assert_ne!(a, b);
    assert_eq!(a.iv().len(), 12);
    assert_eq!(JetKey::wire_len(10), 26);
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect()
}

fn one_shot(key: &JetKey, plain: &[u8]) -> Vec<u8> {
    match (key.cipher(), key.iv().len()) {
        (JetCipher::Aes128Gcm, 12) => Aes128Gcm::new_from_slice(key.key_bytes())
            .unwrap()
            .encrypt(key.iv().try_into().unwrap(), plain)
            .unwrap(),
        (JetCipher::Aes256Gcm, 12) => Aes256Gcm::new_from_slice(key.key_bytes())
            .unwrap()
            .encrypt(key.iv().try_into().unwrap(), plain)
            .unwrap(),
        (JetCipher::Aes128Gcm, 16) => {
            AesGcm::<aes_gcm::aes::Aes128, U16>::new_from_slice(key.key_bytes())
                .unwrap()
                .encrypt(key.iv().try_into().unwrap(), plain)
                .unwrap()
        }
        other => panic!("{other:?}"),
    }
}

/// A reader that hands out at most `step` bytes per read.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl tokio::io::AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.step.min(self.data.len()).min(buf.remaining());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        std::task::Poll::Ready(Ok(()))
    }
}

async fn encrypt_stream(key: &JetKey, plain: &[u8], step: usize) -> Vec<u8> {
    let mut r = key.encrypting_reader(Trickle { data: plain, step });
    let mut out = Vec::new();
    // Small reads too, so that the tag is handed out in pieces.
    let mut buf = vec![0u8; step.clamp(1, 7000)];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

async fn decrypt_stream(key: &JetKey, wire: &[u8], step: usize) -> (Vec<u8>, std::io::Result<()>) {
    let mut plain = Vec::new();
    let mut w = key.decrypting_writer(&mut plain);
    let mut result = Ok(());
    for chunk in wire.chunks(step.max(1)) {
        if let Err(e) = w.write_all(chunk).await {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = w.shutdown().await;
    }
    if result.is_ok() {
        assert!(w.is_verified());
    }
    drop(w);
    (plain, result)
}

#[tokio::test]
async fn stream_cipher_equals_one_shot() {
    let keys = [
        JetKey::generate(JetCipher::Aes128Gcm),
        JetKey::generate(JetCipher::Aes256Gcm),
        // Dino draws 16-byte IVs.
        JetKey::new(JetCipher::Aes128Gcm, &[7; 16], &[9; 16]).unwrap(),
    ];
    for key in &keys {
        for len in [0usize, 1, 15, 16, 17, 31, 4096, 65_537, 1_000_003] {
            let plain = data(len);
            let expected = one_shot(key, &plain);
            for step in [1usize, 13, 4096, 1 << 20] {
                if len > 100_000 && step < 4096 {
                    continue;
                }
                let wire = encrypt_stream(key, &plain, step).await;
                assert_eq!(wire.len() as u64, JetKey::wire_len(len as u64));
                assert_eq!(wire, expected, "len {len} step {step}");
                let (back, result) = decrypt_stream(key, &wire, step).await;
                result.unwrap();
                assert_eq!(back, plain);
            }
        }
    }
}

#[tokio::test]
async fn tampering_is_refused() {
    let key = JetKey::generate(JetCipher::Aes128Gcm);
    let plain = data(100_000);
    let wire = one_shot(&key, &plain);
    // A flipped bit in the ciphertext, in the tag, a cut tag, an extra byte, another key.
    let mut in_ct = wire.clone();
    in_ct[500] ^= 1;
    let mut in_tag = wire.clone();
    let last = in_tag.len() - 1;
    in_tag[last] ^= 0x80;
    let cut = wire[..wire.len() - 1].to_vec();
    let mut longer = wire.clone();
    longer.push(0);
    for (what, bytes, k) in [
        ("ciphertext", &in_ct, &key),
        ("tag", &in_tag, &key),
        ("cut", &cut, &key),
        ("longer", &longer, &key),
        ("other key", &wire, &JetKey::generate(JetCipher::Aes128Gcm)),
    ] {
        let (_, result) = decrypt_stream(k, bytes, 4096).await;
        let err = result.expect_err(what);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{what}");
        assert!(
            matches!(JetError::from_io(&err), Some(JetError::TagMismatch)),
            "{what}: {err:?}"
        );
    }
    // Shorter than a tag.
    for len in [0usize, 1, 15] {
        let (out, result) = decrypt_stream(&key, &wire[..len], 1).await;
        assert!(out.is_empty());
        let err = result.unwrap_err();
        assert!(matches!(JetError::from_io(&err), Some(JetError::Truncated)));
    }
    // A writer whose tag failed stays failed.
    let mut sink = Vec::new();
    let mut w = key.decrypting_writer(&mut sink);
    w.write_all(&in_tag).await.unwrap();
    assert!(w.shutdown().await.is_err());
    assert!(w.shutdown().await.is_err());
    assert!(w.write_all(b"more").await.is_err());
    assert!(!w.is_verified());
}

// ---- OMEMO key transport between two managers, both namespaces ----

type M = OmemoManager<MemoryStore>;

fn device(jid: &str) -> M {
    OmemoManager::open(MemoryStore::new(), jid, OmemoConfig::default()).unwrap()
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

/// What the async client does before encrypting: learn device lists, build sessions from bundles.
fn introduce(from: &mut M, to: &M, profile: Profile) {
    from.apply_device_list(to.own_jid(), &list(profile, &[to.device_id()]))
        .unwrap();
    let own = from.own_jid().to_owned();
    from.apply_device_list(&own, &list(profile, &[from.device_id()]))
        .unwrap();
    for address in from.missing_sessions(profile, &[to.own_jid()]).unwrap() {
        from.add_bundle(&address, &to.bundle(profile)).unwrap();
    }
}

#[test]
fn omemo_key_transport_both_namespaces() {
    for profile in [Profile::Legacy, Profile::Omemo2] {
        let mut alice = device("alice@example.org");
        let mut bob = device("bob@example.org");
        let mut carol = device("carol@example.org");
        introduce(&mut alice, &bob, profile);
        for round in 0..3 {
            let TransportMaterial { material, iv, key } =
                key_transport_material(profile, JetCipher::Aes128Gcm).unwrap();
            match profile {
                // Conversations' key transport: the bare 16-byte key, a 12-byte <iv>.
                Profile::Legacy => {
                    assert_eq!(material.len(), 16);
                    assert_eq!(iv.as_deref().map(<[u8]>::len), Some(12));
                }
                Profile::Omemo2 => {
                    assert_eq!(material.len(), 32);
                    assert!(iv.is_none());
                }
            }
            let out = alice
                .encrypt_key_transport(profile, &material, iv.as_deref(), &["bob@example.org"])
                .unwrap();
            assert!(out.encrypted.payload.is_none());
            assert_eq!(out.recipients.len(), 1);
            let sec = Security::new(
                Some("a-file-offer"),
                JetCipher::Aes128Gcm,
                Element::from(&out.encrypted),
            );
            // Over the wire and back.
            let wire = String::from(&sec.to_element());
            let got = Security::from_element(&parse(&wire)).unwrap();
            assert_eq!(got.profile().unwrap(), profile);
            assert_eq!(got.envelope.ns(), profile.namespace());
            let encrypted = Encrypted::try_from(&got.envelope).unwrap();
            // Someone else cannot open it.
            assert!(matches!(
                carol.decrypt_key_transport("alice@example.org", &encrypted),
                Err(ManagerError::NotForThisDevice)
            ));
            // Nor does it open as coming from someone else (XEP-0391: the envelope must be the
            // initiator's). A first key exchange binds the sender's identity key, not a JID (what
            // trust levels are for), so this is checked once a session exists.
            if round > 0 {
                assert!(bob
                    .decrypt_key_transport("mallory@example.org", &encrypted)
                    .is_err());
            }
            let t = bob
                .decrypt_key_transport("alice@example.org", &encrypted)
                .unwrap();
            assert_eq!(t.new_session, round == 0);
            assert_eq!(t.trust, TrustLevel::BlindTrusted);
            assert!(!format!("{t:?}").contains(&format!("{:?}", t.material)));
            let opened =
                key_from_material(profile, got.cipher().unwrap(), &t.material, t.iv.as_deref())
                    .unwrap();
            assert_eq!(opened, key);
            // Replayed: refused.
            assert!(bob
                .decrypt_key_transport("alice@example.org", &encrypted)
                .is_err());
        }
    }
}

#[test]
fn key_transport_api_bounds() {
    let mut alice = device("alice@example.org");
    let bob = device("bob@example.org");
    introduce(&mut alice, &bob, Profile::Omemo2);
    introduce(&mut alice, &bob, Profile::Legacy);
    let to = ["bob@example.org"];
    for (profile, material, iv) in [
        (Profile::Omemo2, vec![], None),
        (Profile::Omemo2, vec![1; 65], None),
        (Profile::Omemo2, vec![1; 32], Some(vec![0u8; 12])),
        (Profile::Legacy, vec![1; 16], Some(vec![])),
        (Profile::Legacy, vec![1; 16], Some(vec![0; 65])),
    ] {
        assert!(matches!(
            alice.encrypt_key_transport(profile, &material, iv.as_deref(), &to),
            Err(ManagerError::Malformed(_))
        ));
    }
    // Nobody to send to.
    assert!(matches!(
        alice.encrypt_key_transport(Profile::Legacy, &[1; 16], None, &["nobody@example.org"]),
        Err(ManagerError::NoTrustedDevice(_))
    ));
    // A legacy message without an <iv> gets a random 12-byte one.
    let out = alice
        .encrypt_key_transport(Profile::Legacy, &[1; 16], None, &to)
        .unwrap();
    assert_eq!(out.encrypted.iv.map(|v| v.len()), Some(12));
}

#[test]
fn material_mapping() {
    // Legacy: 16 bytes (Conversations), or key || tag (Libervia, Dino read the first 16).
    let k16 = key_from_material(
        Profile::Legacy,
        JetCipher::Aes128Gcm,
        &[5; 16],
        Some(&[6; 12]),
    )
    .unwrap();
    let mut kt = vec![5u8; 16];
    kt.extend_from_slice(&[0xee; 16]);
    let k32 =
        key_from_material(Profile::Legacy, JetCipher::Aes128Gcm, &kt, Some(&[6; 12])).unwrap();
    assert_eq!(k16, k32);
    // Dino's 16-byte IV.
    assert!(key_from_material(
        Profile::Legacy,
        JetCipher::Aes128Gcm,
        &[5; 16],
        Some(&[6; 16])
    )
    .is_ok());
    for (material, iv) in [
        (vec![5u8; 15], Some(vec![6u8; 12])),
        (vec![5u8; 17], Some(vec![6u8; 12])),
        (vec![5u8; 48], Some(vec![6u8; 12])),
        (vec![], Some(vec![6u8; 12])),
        (vec![5u8; 16], None),
        (vec![5u8; 16], Some(vec![6u8; 8])),
    ] {
        assert!(
            key_from_material(
                Profile::Legacy,
                JetCipher::Aes128Gcm,
                &material,
                iv.as_deref()
            )
            .is_err(),
            "{} {:?}",
            material.len(),
            iv.map(|v| v.len())
        );
    }
    assert!(matches!(
        key_from_material(
            Profile::Legacy,
            JetCipher::Aes256Gcm,
            &[5; 16],
            Some(&[6; 12])
        ),
        Err(JetError::CipherNotForType { .. })
    ));
    assert!(matches!(
        key_transport_material(Profile::Legacy, JetCipher::Aes256Gcm),
        Err(JetError::CipherNotForType { .. })
    ));
    // OMEMO:2: HKDF-SHA-256 (zero salt, info "JET-OMEMO " + cipher namespace with :0); the expected
    // values were computed with pyca/cryptography's HKDF.
    let secret: Vec<u8> = (0u8..32).collect();
    let k = key_from_material(Profile::Omemo2, JetCipher::Aes128Gcm, &secret, None).unwrap();
    assert_eq!(hex(k.key_bytes()), "d3b0b731e506db8a4df200dc54062ac5");
    assert_eq!(hex(k.iv()), "acf2a48645e773725a5850ea");
    let k = key_from_material(Profile::Omemo2, JetCipher::Aes256Gcm, &secret, None).unwrap();
    assert_eq!(
        hex(k.key_bytes()),
        "69c58810d5ea950324be76c33c404ec6ea9f770687731155b25431836370141a"
    );
    assert_eq!(hex(k.iv()), "fdf027ad6748c6e1cb479110");
    // Key material with a payload's tag after the secret: the first 32 bytes count.
    let mut longer = secret.clone();
    longer.extend_from_slice(&[0xff; 16]);
    assert_eq!(
        key_from_material(Profile::Omemo2, JetCipher::Aes128Gcm, &longer, None).unwrap(),
        key_from_material(Profile::Omemo2, JetCipher::Aes128Gcm, &secret, None).unwrap()
    );
    assert!(matches!(
        key_from_material(Profile::Omemo2, JetCipher::Aes128Gcm, &secret[..31], None),
        Err(JetError::BadKeyLength(31))
    ));
    assert_eq!(NS_JET, "urn:xmpp:jingle:jet:0");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
