//! The OX and XEP-0473 XML models on the examples of XEP-0373 (0.7), XEP-0374 (0.2) and XEP-0473
//! (0.2), and hostile input to every parsing entry point: typed errors, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{TimeDelta, Utc};
use jid::BareJid;
use minidom::Element;
use xmpp_e2ee::ox::backup::decrypt_backup;
use xmpp_e2ee::ox::core::{open_element, seal, Checks};
use xmpp_e2ee::ox::pgp::{decrypt_with_password, PublicKey, SecretKey};
use xmpp_e2ee::ox::pubsub::{EncryptedItem, NodeSecrets, Revoke, SharedSecret};
use xmpp_e2ee::ox::xml::{Content, ContentKind, OpenPgp, Pubkey, PublicKeysList, SecretKeyBackup};
use xmpp_e2ee::ox::{BackupCode, OxError, NS_OX, NS_OX_PUBSUB};
use xmpp_parsers::message::Message;

fn el(xml: &str) -> Element {
    xml.parse().unwrap()
}

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

/// XEP-0373 Example 1: The <openpgp/> extension within a message (placeholder text).
const X373_EX1: &str = "<message to='juliet@example.org' xmlns='jabber:client'>
  <openpgp xmlns='urn:xmpp:openpgp:0'>
    BASE64_OPENPGP_MESSAGE
  </openpgp>
</message>";

/// XEP-0373 Example 2: The <signcrypt/> extension element.
const X373_EX2: &str = "<signcrypt xmlns='urn:xmpp:openpgp:0'>
  <to jid='juliet@example.org'/>
  <time stamp='2014-07-10T17:06:00+02:00'/>
  <rpad>
    f0rm1l4n4-mT8y33j!Y%fRSrcd^ZE4Q7VDt1L%WEgR!kv
  </rpad>
  <payload>
    <body xmlns='jabber:client'>
      This is a secret message.
    </body>
  </payload>
</signcrypt>";

/// XEP-0373 Example 3: Saving the public key in the data node (the item's payload).
const X373_EX3_PUBKEY: &str = "<pubkey xmlns='urn:xmpp:openpgp:0'>
           <data>
             BASE64_OPENPGP_PUBLIC_KEY
           </data>
        </pubkey>";

/// XEP-0373 Example 4/6: the metadata node's payload.
const X373_EX4_LIST: &str = "<public-keys-list xmlns='urn:xmpp:openpgp:0'>
          <pubkey-metadata
            v4-fingerprint='1357B01865B2503C18453D208CAC2A9678548E35'
            date='2018-03-01T15:26:12Z'
            />
          <pubkey-metadata
            v4-fingerprint='67819B343B2AB70DED9320872C6464AF2A8E4C02'
            date='1953-05-16T12:00:00Z'
            />
        </public-keys-list>";

/// XEP-0373 Example 11: the secret key node's payload.
const X373_EX11_SECRET: &str = "<secretkey xmlns='urn:xmpp:openpgp:0'>
            BASE64_OPENPGP_ENCRYPTED_SECRET_KEY
        </secretkey>";

/// XEP-0374 Example 3: An encrypted and signed message with hints.
const X374_EX3: &str = "<message to='juliet@example.org' xmlns='jabber:client'>
  <body>This message is encrypted using OpenPGP.</body>
  <store xmlns='urn:xmpp:hints'/>
  <encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:openpgp:0'/>
  <openpgp xmlns='urn:xmpp:openpgp:0'>
    BASE64_OPENPGP_MESSAGE_CONTAINING_CONTENT_ELEMENT
  </openpgp>
</message>";

/// XEP-0473 Example 1: Juliet publish an encrypted item (the item's payload).
const X473_EX1: &str = "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key='1234-abcd-5678-efgh'>
          <!-- BASE64_OPENPGP_SYMMETRICALLY_ENCRYPTED_ITEM -->
        </encrypted>";

/// XEP-0473 Example 2: shared-secret element.
const X473_EX2: &str = "<shared-secret
    xmlns='urn:xmpp:openpgp:pubsub:0'
    jid='pubsub.capulet.lit'
    node='123abc'
    id='1234-abcd-5678-efgh'
    timestamp='2022-10-10T13:24:31Z'
    type='http://www.w3.org/2005/Atom'
    >
    ZSRD5lK9mz-5VHNyu2N1XLiJZ8I87jkv85ceZkVrOGA
  </shared-secret>";

/// XEP-0473 Example 3: revoke element.
const X473_EX3: &str = "<revoke xmlns='urn:xmpp:openpgp:pubsub:0' jid='pubsub.capulet.lit' node='123abc' id='1234-abcd-5678-efgh'>
    <reason>Revoked access from an entity</reason>
  </revoke>";

#[test]
fn xep_0373_examples() {
    // The examples' placeholders are not base64: a typed error, not a panic.
    let msg = el(X373_EX1);
    let openpgp = msg.get_child("openpgp", NS_OX).unwrap();
    assert!(matches!(
        OpenPgp::from_element(openpgp),
        Err(OxError::Base64("openpgp"))
    ));
    // With real base64 (whitespace and line breaks as in the example are fine) it round-trips.
    let real = OpenPgp {
        message: vec![0xc1, 0x02, 0x03, 0x04, 0xff],
    };
    let text = format!(
        "<openpgp xmlns='urn:xmpp:openpgp:0'>\n    {}\n  </openpgp>",
        String::from(&real.to_element())
            .split('>')
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
    );
    assert_eq!(OpenPgp::from_element(&el(&text)).unwrap(), real);

    let c = Content::from_element(&el(X373_EX2)).unwrap();
    assert_eq!(c.kind, ContentKind::Signcrypt);
    assert_eq!(c.to, vec![jid("juliet@example.org")]);
    assert_eq!(c.time.to_rfc3339(), "2014-07-10T17:06:00+02:00");
    assert_eq!(
        c.rpad.as_deref(),
        Some("f0rm1l4n4-mT8y33j!Y%fRSrcd^ZE4Q7VDt1L%WEgR!kv")
    );
    assert_eq!(c.payload.len(), 1);
    assert!(c.payload[0].is("body", "jabber:client"));
    assert_eq!(c.payload[0].text().trim(), "This is a secret message.");
    // Round trips through the element and through the bytes that get encrypted.
    assert_eq!(Content::from_element(&c.to_element()).unwrap(), c);
    assert_eq!(Content::from_bytes(&c.to_bytes().unwrap()).unwrap(), c);
    let with_decl = format!("<?xml version='1.0'?>{X373_EX2}");
    assert_eq!(Content::from_bytes(with_decl.as_bytes()).unwrap(), c);

    // <sign/> and <crypt/> shapes.
    for kind in [ContentKind::Sign, ContentKind::Crypt] {
        let x = Content::new(kind, vec![jid("juliet@example.org")], vec![]);
        assert_eq!(Content::from_bytes(&x.to_bytes().unwrap()).unwrap(), x);
    }
    let crypt_without_to = Content::new(ContentKind::Crypt, vec![], vec![]);
    assert_eq!(
        Content::from_element(&crypt_without_to.to_element()).unwrap(),
        crypt_without_to
    );

    assert!(matches!(
        Pubkey::from_element(&el(X373_EX3_PUBKEY)),
        Err(OxError::Base64("data"))
    ));
    let pk = Pubkey {
        data: b"\x99\x00\x33key".to_vec(),
    };
    assert_eq!(Pubkey::from_element(&pk.to_element()).unwrap(), pk);

    let list = PublicKeysList::from_element(&el(X373_EX4_LIST)).unwrap();
    assert_eq!(list.keys.len(), 2);
    assert_eq!(
        list.keys[0].fingerprint,
        "1357B01865B2503C18453D208CAC2A9678548E35"
    );
    assert_eq!(list.keys[1].date.to_rfc3339(), "1953-05-16T12:00:00+00:00");
    assert_eq!(
        PublicKeysList::from_element(&list.to_element()).unwrap(),
        list
    );

    assert!(matches!(
        SecretKeyBackup::from_element(&el(X373_EX11_SECRET)),
        Err(OxError::Base64("secretkey"))
    ));
}

#[test]
fn xep_0374_message_shape() {
    let msg = Message::try_from(el(X374_EX3)).unwrap();
    assert!(msg.payloads.iter().any(|p| p.is("store", "urn:xmpp:hints")));
    let ours = xmpp_e2ee::ox::OxClient::<
        xmpp_social::client::XmppClient,
        xmpp_e2ee::ox::MemoryOxStore,
    >::message_stanza(
        "juliet@example.org".parse().unwrap(),
        &OpenPgp {
            message: vec![1, 2, 3],
        },
    );
    // The same elements as the example: a plaintext body, the store hint, EME with the OX
    // namespace, and <openpgp/>.
    assert!(!ours.bodies.is_empty());
    for (name, ns) in [
        ("store", "urn:xmpp:hints"),
        ("encryption", "urn:xmpp:eme:0"),
        ("openpgp", NS_OX),
    ] {
        assert!(ours.payloads.iter().any(|p| p.is(name, ns)), "{name}");
        assert!(msg.payloads.iter().any(|p| p.is(name, ns)), "{name}");
    }
    let eme = ours
        .payloads
        .iter()
        .find(|p| p.is("encryption", "urn:xmpp:eme:0"))
        .unwrap();
    assert_eq!(eme.attr("namespace"), Some(NS_OX));
}

#[test]
fn xep_0473_examples() {
    // The example's item holds a comment placeholder: XMPP's restricted XML has no comments, so it
    // cannot even be received; without it the element holds no ciphertext and is refused.
    assert!(X473_EX1.parse::<Element>().is_err());
    let placeholder_removed =
        X473_EX1.replace("<!-- BASE64_OPENPGP_SYMMETRICALLY_ENCRYPTED_ITEM -->", "");
    let example = el(&placeholder_removed);
    assert_eq!(example.attr("key"), Some("1234-abcd-5678-efgh"));
    assert!(EncryptedItem::from_element(&example).is_err());

    let s = SharedSecret::from_element(&el(X473_EX2)).unwrap();
    assert_eq!(s.service, jid("pubsub.capulet.lit"));
    assert_eq!(s.node, "123abc");
    assert_eq!(s.id, "1234-abcd-5678-efgh");
    assert_eq!(
        s.payload_type.as_deref(),
        Some("http://www.w3.org/2005/Atom")
    );
    assert_eq!(s.secret, "ZSRD5lK9mz-5VHNyu2N1XLiJZ8I87jkv85ceZkVrOGA");
    assert!(!s.revoked);
    assert_eq!(SharedSecret::from_element(&s.to_element()).unwrap(), s);
    // Debug never shows the secret.
    assert!(!format!("{s:?}").contains("ZSRD5lK9"));

    let r = Revoke::from_element(&el(X473_EX3)).unwrap();
    assert_eq!(r.id, "1234-abcd-5678-efgh");
    assert_eq!(
        r.reasons,
        vec![(None, "Revoked access from an entity".to_owned())]
    );
    assert_eq!(Revoke::from_element(&r.to_element()).unwrap(), r);

    // An item encrypted with the example's secret decrypts with it and round-trips as XML.
    let entry = el("<entry xmlns='http://www.w3.org/2005/Atom'><title>t</title></entry>");
    let item = EncryptedItem::encrypt(&entry, &s).unwrap();
    let item = EncryptedItem::from_element(&item.to_element()).unwrap();
    assert_eq!(item.key, s.id);
    assert_eq!(item.decrypt(&s).unwrap(), entry);
}

#[test]
fn node_secrets_rules() {
    let service = jid("pubsub.capulet.lit");
    let juliet = jid("juliet@capulet.lit");
    let mallory = jid("mallory@evil.example");
    let mut owner = NodeSecrets::new(service.clone(), "123abc");
    let first = owner
        .create(&juliet, Some("http://www.w3.org/2005/Atom"))
        .unwrap();
    let revoke = owner.revoke_current(Some("rotation")).unwrap();
    assert_eq!(revoke.id, first.id);
    let second = owner.create(&juliet, None).unwrap();
    assert_eq!(owner.current().unwrap().id, second.id);
    assert!(owner.create(&mallory, None).is_err());

    // A newcomer gets the old one marked revoked and the current one not.
    let given = owner.for_newcomer();
    assert_eq!(given.len(), 2);
    assert!(given.iter().find(|s| s.id == first.id).unwrap().revoked);
    assert!(!given.iter().find(|s| s.id == second.id).unwrap().revoked);

    // Trust on first use for a pubsub service: Juliet becomes the signer; Mallory is refused and
    // nothing changes.
    let mut reader = NodeSecrets::new(service.clone(), "123abc");
    let accepted = reader.accept(&juliet, &given, &[]).unwrap();
    assert_eq!(accepted.added.len(), 2);
    assert_eq!(reader.current().unwrap().id, second.id);
    let before = reader.clone();
    let forged = SharedSecret::generate(service.clone(), "123abc", None);
    assert!(matches!(
        reader.accept(&mallory, &[forged], &[]),
        Err(OxError::SecretRefused(_))
    ));
    let forged_revoke = Revoke {
        service: service.clone(),
        node: "123abc".to_owned(),
        id: second.id.clone(),
        reasons: vec![],
    };
    assert!(reader.accept(&mallory, &[], &[forged_revoke]).is_err());
    // The signer changing a known secret's value, or sending a secret of another node: refused.
    let mut changed = second.clone();
    changed.secret = "other".to_owned();
    assert!(reader.accept(&juliet, &[changed], &[]).is_err());
    let other_node = SharedSecret::generate(service.clone(), "other", None);
    assert!(reader.accept(&juliet, &[other_node], &[]).is_err());
    assert_eq!(reader, before);

    // A PEP node's signer is its owner from the start.
    let mut pep = NodeSecrets::new(juliet.clone(), "private");
    let s = SharedSecret::generate(juliet.clone(), "private", None);
    assert!(pep.accept(&mallory, std::slice::from_ref(&s), &[]).is_err());
    assert!(pep.accept(&juliet, &[s], &[]).is_ok());

    // Persistent form.
    assert_eq!(NodeSecrets::from_bytes(&owner.to_bytes()).unwrap(), owner);
    assert!(NodeSecrets::from_bytes(b"<nope/>").is_err());
    assert!(NodeSecrets::from_bytes(&[0xff, 0xfe]).is_err());

    // Wrong secret for an item: typed error.
    let entry = el("<x xmlns='urn:example'/>");
    let item = owner.encrypt(&entry).unwrap();
    assert_eq!(item.key, second.id);
    assert_eq!(reader.decrypt(&item).unwrap(), entry);
    let mut wrong = second.clone();
    wrong.secret = "not it".to_owned();
    assert!(matches!(item.decrypt(&wrong), Err(OxError::WrongPassword)));
    let mut unknown = item.clone();
    unknown.key = "nope".to_owned();
    assert!(matches!(
        reader.decrypt(&unknown),
        Err(OxError::UnknownSecret { .. })
    ));
}

#[test]
fn hostile_input_gives_typed_errors() {
    let alice = SecretKey::generate("alice@localhost").unwrap();
    let bob = SecretKey::generate("bob@localhost").unwrap();
    let (a, b) = (jid("alice@localhost"), jid("bob@localhost"));
    let now = Utc::now();
    let checks = Checks::default();
    let bob_pub = bob.public();

    // Garbage OpenPGP bytes of many shapes.
    let samples: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff; 64],
        b"-----BEGIN PGP MESSAGE-----".to_vec(),
        vec![0xc1, 0xff, 0xff, 0xff, 0xff, 0x7f],
        vec![0xa3, 0x01, 0x78, 0x9c],
        (0..=255u8).collect(),
    ];
    for s in &samples {
        let r = open_element(
            &OpenPgp { message: s.clone() },
            &alice,
            &b,
            &[&bob_pub],
            &a,
            &checks,
            now,
        );
        assert!(r.is_err(), "{s:?}");
        assert!(decrypt_with_password(s, "x").is_err());
        assert!(PublicKey::from_bytes(s).is_err());
        assert!(SecretKey::from_bytes(s).is_err());
        assert!(Content::from_bytes(s).is_err());
        assert!(decrypt_backup(
            &SecretKeyBackup { message: s.clone() },
            &BackupCode::generate()
        )
        .is_err());
    }
    // Oversized input is refused before parsing.
    let big = vec![0u8; 2 * 1024 * 1024];
    assert!(matches!(
        open_element(
            &OpenPgp {
                message: big.clone()
            },
            &alice,
            &b,
            &[],
            &a,
            &checks,
            now
        ),
        Err(OxError::TooLarge { .. })
    ));
    let big_b64 = "A".repeat(3 * 1024 * 1024);
    let huge = Element::builder("openpgp", NS_OX).append(big_b64).build();
    assert!(matches!(
        OpenPgp::from_element(&huge),
        Err(OxError::TooLarge { .. })
    ));
    // A public key is not an own key.
    assert!(SecretKey::from_bytes(&bob_pub.to_bytes().unwrap()).is_err());

    // Malformed content elements.
    for xml in [
        "<signcrypt xmlns='urn:xmpp:openpgp:0'><time stamp='2020-01-01T00:00:00Z'/><payload/></signcrypt>",
        "<signcrypt xmlns='urn:xmpp:openpgp:0'><to jid='a@b'/><payload/></signcrypt>",
        "<signcrypt xmlns='urn:xmpp:openpgp:0'><to jid='a@b'/><time stamp='yesterday'/><payload/></signcrypt>",
        "<signcrypt xmlns='urn:xmpp:openpgp:0'><to jid='a@b'/><time stamp='2020-01-01T00:00:00Z'/></signcrypt>",
        "<signcrypt xmlns='urn:xmpp:openpgp:0'><to/><time stamp='2020-01-01T00:00:00Z'/><payload/></signcrypt>",
        "<signcrypt xmlns='urn:xmpp:openpgp:0'><to jid='a@b'/><time stamp='2020-01-01T00:00:00Z'/><time stamp='2020-01-01T00:00:00Z'/><payload/></signcrypt>",
        "<other xmlns='urn:xmpp:openpgp:0'/>",
        "<signcrypt xmlns='urn:example'/>",
    ] {
        assert!(Content::from_element(&el(xml)).is_err(), "{xml}");
        assert!(Content::from_bytes(xml.as_bytes()).is_err(), "{xml}");
    }
    // Two roots, trailing junk, deep nesting.
    let c = Content::new(ContentKind::Sign, vec![a.clone()], vec![]);
    let one = String::from_utf8(c.to_bytes().unwrap()).unwrap();
    assert!(Content::from_bytes(format!("{one}{one}").as_bytes()).is_err());
    assert!(Content::from_bytes(format!("{one}junk").as_bytes()).is_err());
    assert!(Content::from_bytes(format!("{one}</ox-document><x/>").as_bytes()).is_err());
    let deep = format!(
        "<sign xmlns='urn:xmpp:openpgp:0'><to jid='a@b'/><time stamp='2020-01-01T00:00:00Z'/><payload>{}{}</payload></sign>",
        "<a>".repeat(500),
        "</a>".repeat(500)
    );
    assert!(Content::from_bytes(deep.as_bytes()).is_err());

    // Malformed metadata lists and XEP-0473 elements.
    for xml in [
        "<public-keys-list xmlns='urn:xmpp:openpgp:0'><pubkey-metadata date='2018-03-01T15:26:12Z'/></public-keys-list>",
        "<public-keys-list xmlns='urn:xmpp:openpgp:0'><pubkey-metadata v4-fingerprint='XYZ' date='2018-03-01T15:26:12Z'/></public-keys-list>",
        "<public-keys-list xmlns='urn:xmpp:openpgp:0'><pubkey-metadata v4-fingerprint='1357B01865B2503C18453D208CAC2A9678548E35' date='x'/></public-keys-list>",
        "<public-keys-list xmlns='urn:xmpp:openpgp:0'><pubkey-metadata v4-fingerprint='1357B01865B2503C18453D208CAC2A9678548E35' date='2018-03-01T15:26:12Z'/><pubkey-metadata v4-fingerprint='1357b01865b2503c18453d208cac2a9678548e35' date='2018-03-01T15:26:12Z'/></public-keys-list>",
    ] {
        assert!(PublicKeysList::from_element(&el(xml)).is_err(), "{xml}");
    }
    for xml in [
        "<shared-secret xmlns='urn:xmpp:openpgp:pubsub:0' node='n' id='i' timestamp='2022-10-10T13:24:31Z'>s</shared-secret>",
        "<shared-secret xmlns='urn:xmpp:openpgp:pubsub:0' jid='p' node='n' id='i' timestamp='2022-10-10T13:24:31Z'></shared-secret>",
        "<shared-secret xmlns='urn:xmpp:openpgp:pubsub:0' jid='p' node='n' id='i' timestamp='soon'>s</shared-secret>",
        "<shared-secret xmlns='urn:xmpp:openpgp:pubsub:0' jid='p' node='n' id='i' timestamp='2022-10-10T13:24:31Z' revoked='maybe'>s</shared-secret>",
        "<shared-secret xmlns='urn:xmpp:openpgp:pubsub:0' jid='@@' node='n' id='i' timestamp='2022-10-10T13:24:31Z'>s</shared-secret>",
    ] {
        assert!(SharedSecret::from_element(&el(xml)).is_err(), "{xml}");
    }
    assert!(
        Revoke::from_element(&el("<revoke xmlns='urn:xmpp:openpgp:pubsub:0' jid='p'/>")).is_err()
    );
    assert!(EncryptedItem::from_element(&el(
        "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0'>AAAA</encrypted>"
    ))
    .is_err());
    assert!(EncryptedItem::from_element(&el(&format!(
        "<encrypted xmlns='{NS_OX_PUBSUB}' key='k'>!!!</encrypted>"
    )))
    .is_err());

    // Checks with extreme settings do not panic.
    let extreme = Checks {
        max_future: TimeDelta::MAX,
        max_age: Some(TimeDelta::MAX),
    };
    assert!(extreme.check_time(now, now).is_ok());

    // A signcrypt sealed for Bob is not for Alice's key.
    let sealed = seal(
        &Content::new(ContentKind::Signcrypt, vec![b.clone()], vec![]),
        &bob,
        &[],
    )
    .unwrap();
    assert!(matches!(
        open_element(&sealed, &alice, &b, &[&bob_pub], &a, &checks, now),
        Err(OxError::NoDecryptionKey)
    ));
    // The sender's key must carry the sender's xmpp: user id.
    let sealed = seal(
        &Content::new(ContentKind::Signcrypt, vec![a.clone()], vec![]),
        &bob,
        &[&alice.public()],
    )
    .unwrap();
    assert!(open_element(&sealed, &alice, &b, &[&bob_pub], &a, &checks, now).is_ok());
    let err = open_element(
        &sealed,
        &alice,
        &jid("carol@localhost"),
        &[&bob_pub],
        &a,
        &checks,
        now,
    )
    .unwrap_err();
    assert!(matches!(err, OxError::UnknownSigner { .. }), "{err:?}");
}
