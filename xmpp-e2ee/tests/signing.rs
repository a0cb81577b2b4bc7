//! Pubsub item signing (XEP-0475/0476) with OpenPGP: sign and verify, tampering and wrong signers
//! refused, GnuPG checks our signatures and we check its, and the whole story on real servers: a
//! signed blog item verifies for a second account, tampered copies and forged attachments fail.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use jid::{BareJid, Jid};
use minidom::Element;
use sequoia_openpgp as pgp;

use pgp::cert::{CertBuilder, CipherSuite};
use pgp::parse::Parse;
use pgp::serialize::SerializeInto;
use pgp::Cert;
use xmpp_e2ee::signing::openpgp::{sign_detached, sign_item, verify_detached, verify_item};
use xmpp_e2ee::signing::{wrap_payload, SignData, Signature, SigningError, SigningExt, NS_SIGNING};
use xmpp_social::attachments::{Attachments, AttachmentsExt};
use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{Entry, ItemRef, MicroblogExt, PostOptions, Text};
use xmpp_social::pubsub::{AccessModel, PubSubExt};
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

fn bare(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn cert_for(jid: &str) -> Cert {
    CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid(format!("xmpp:{jid}"))
        .add_signing_subkey()
        .generate()
        .unwrap()
        .0
}

fn entry_item(title: &str) -> Element {
    let atom = "http://www.w3.org/2005/Atom";
    let entry = Element::builder("entry", atom)
        .append(Element::builder("title", atom).append(title).build())
        .append(
            Element::builder("content", atom)
                .append("  Body with <markup> & \u{e9}\u{a0}  ")
                .build(),
        )
        .build();
    wrap_payload(Some(&entry))
}

#[test]
fn sign_verify_tamper_and_wrong_signer() {
    let juliet = bare("juliet@capulet.lit");
    let romeo = bare("romeo@montague.lit");
    let service = bare("pubsub.capulet.lit");
    let jcert = cert_for("juliet@capulet.lit");
    let rcert = cert_for("romeo@montague.lit");
    let item = entry_item("She is so pretty!");

    let sig = sign_item(&jcert, &juliet, &service, &item).unwrap();
    // Through the wire format.
    let sig = Signature::try_from(&sig.to_element()).unwrap();
    let ok = verify_item(&service, &item, &sig, &[rcert.clone(), jcert.clone()]).unwrap();
    assert_eq!(ok.signer, juliet);
    assert_eq!(ok.fingerprint, jcert.fingerprint());

    // One character of the item text changed.
    let tampered = entry_item("She is so pretty?");
    assert!(matches!(
        verify_item(&service, &tampered, &sig, std::slice::from_ref(&jcert)),
        Err(SigningError::BadSignature(_))
    ));
    // Another service, another time, another signer named: the wrapper differs.
    assert!(matches!(
        verify_item(
            &bare("elsewhere.lit"),
            &item,
            &sig,
            std::slice::from_ref(&jcert)
        ),
        Err(SigningError::BadSignature(_))
    ));
    let mut later = sig.clone();
    later.stamp = "2030-01-01T00:00:00Z".into();
    assert!(matches!(
        verify_item(&service, &item, &later, std::slice::from_ref(&jcert)),
        Err(SigningError::BadSignature(_))
    ));
    let mut renamed = sig.clone();
    renamed.signers = vec![romeo.clone()];
    assert!(matches!(
        verify_item(&service, &item, &renamed, &[jcert.clone(), rcert.clone()]),
        Err(SigningError::BadSignature(_))
    ));
    // Only Romeo's key given: nothing verifies.
    assert!(matches!(
        verify_item(&service, &item, &sig, std::slice::from_ref(&rcert)),
        Err(SigningError::BadSignature(_))
    ));
    // Romeo signs a wrapper naming Juliet with his own key: the key does not belong to Juliet.
    let data = SignData::new(service.clone(), juliet.clone(), Utc::now(), &item);
    let forged = Signature {
        stamp: data.stamp.clone(),
        signers: vec![juliet.clone()],
        extra: Vec::new(),
        openpgp: Some(sign_detached(&rcert, &data.signed_bytes().unwrap()).unwrap()),
        unknown: Vec::new(),
    };
    assert!(matches!(
        verify_item(&service, &item, &forged, std::slice::from_ref(&rcert)),
        Err(SigningError::SignerMismatch { .. })
    ));
    // Signing as someone the key does not name is refused up front.
    assert!(matches!(
        sign_item(&rcert, &juliet, &service, &item),
        Err(SigningError::SignerMismatch { .. })
    ));
    // Garbage where the signature goes: a typed error.
    let mut garbage = sig.clone();
    garbage.openpgp = Some(vec![0x89, 0x01, 0x02]);
    assert!(matches!(
        verify_item(&service, &item, &garbage, std::slice::from_ref(&jcert)),
        Err(SigningError::BadSignature(_))
    ));
    garbage.openpgp = None;
    assert!(matches!(
        verify_item(&service, &item, &garbage, &[jcert]),
        Err(SigningError::NoSignature)
    ));
}

/// A throwaway GnuPG home; the agent it starts is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        let gpg = Gpg { home };
        let out = gpg.run(&["--version"]);
        assert!(
            out.status.success(),
            "gpg is needed for the interop tests (bash .ci/setup-gpg.sh, or apt-get install gnupg)"
        );
        gpg
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("gpg is needed for the interop tests (bash .ci/setup-gpg.sh): {e}")
            })
    }

    fn path(&self, name: &str) -> String {
        self.home.path().join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

fn write(path: &str, data: &[u8]) {
    std::fs::write(Path::new(path), data).unwrap();
}

#[test]
fn gnupg_verifies_ours_and_we_verify_gnupgs() {
    let gpg = Gpg::new();
    let service = bare("pubsub.capulet.lit");
    let item = entry_item("Interop \u{1f600}");

    // Ours, checked by gpg over the canonical bytes.
    let juliet = bare("juliet@capulet.lit");
    let jcert = cert_for("juliet@capulet.lit");
    let sig = sign_item(&jcert, &juliet, &service, &item).unwrap();
    let data = SignData::for_attachment(service.clone(), &sig, &item)
        .signed_bytes()
        .unwrap();
    write(&gpg.path("juliet.asc"), &jcert.armored().to_vec().unwrap());
    let imported = gpg.run(&["--import", &gpg.path("juliet.asc")]);
    assert!(imported.status.success(), "{imported:?}");
    write(&gpg.path("data"), &data);
    write(&gpg.path("data.sig"), sig.openpgp.as_ref().unwrap());
    let verified = gpg.run(&[
        "--status-fd",
        "1",
        "--verify",
        &gpg.path("data.sig"),
        &gpg.path("data"),
    ]);
    let status = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && status.contains("GOODSIG"),
        "gpg refused our signature: {status}\n{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // One byte changed: gpg refuses it too.
    let mut bad = data.clone();
    bad[data.len() / 2] ^= 1;
    write(&gpg.path("bad"), &bad);
    let refused = gpg.run(&["--verify", &gpg.path("data.sig"), &gpg.path("bad")]);
    assert!(!refused.status.success());

    // Theirs: a gpg key for Romeo signs the wrapper, we verify it.
    let romeo = bare("romeo@montague.lit");
    let made = gpg.run(&[
        "--quick-gen-key",
        "xmpp:romeo@montague.lit",
        "ed25519",
        "sign",
        "never",
    ]);
    assert!(made.status.success(), "{made:?}");
    let wrapper = SignData::new(service.clone(), romeo.clone(), Utc::now(), &item);
    write(&gpg.path("theirs"), &wrapper.signed_bytes().unwrap());
    let signed = gpg.run(&[
        "--local-user",
        "xmpp:romeo@montague.lit",
        "--output",
        &gpg.path("theirs.sig"),
        "--detach-sign",
        &gpg.path("theirs"),
    ]);
    assert!(signed.status.success(), "{signed:?}");
    let exported = gpg.run(&["--export", "xmpp:romeo@montague.lit"]);
    let rcert = Cert::from_bytes(&exported.stdout).unwrap();
    let their_sig = std::fs::read(gpg.path("theirs.sig")).unwrap();
    let fpr = verify_detached(
        &wrapper.signed_bytes().unwrap(),
        &their_sig,
        std::slice::from_ref(&rcert),
    )
    .unwrap();
    assert_eq!(fpr, rcert.fingerprint());
    let attachment = Signature {
        stamp: wrapper.stamp.clone(),
        signers: vec![romeo.clone()],
        extra: Vec::new(),
        openpgp: Some(their_sig),
        unknown: Vec::new(),
    };
    let ok = verify_item(&service, &item, &attachment, &[jcert, rcert.clone()]).unwrap();
    assert_eq!(ok.signer, romeo);
    assert!(matches!(
        verify_item(&service, &entry_item("Interop!"), &attachment, &[rcert]),
        Err(SigningError::BadSignature(_))
    ));
}

async fn login(server: &Server, user: &str) -> XmppClient {
    let jid = format!("{user}@{}", server.domain());
    XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{user} could not log in: {e}\n{}", server.log_tail(30)))
}

fn post(title: &str, body: &str) -> Entry {
    Entry {
        title: Some(Text::plain(title)),
        content: vec![Text::plain(body)],
        ..Entry::default()
    }
}

async fn signed_blog_story(kind: ServerKind) {
    let server = tokio::task::spawn_blocking(move || {
        let server = Server::start(kind, &[("alice", PW)])
            .unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"));
        server.register("bob", PW).unwrap();
        server
    })
    .await
    .unwrap();
    let domain = server.domain().to_owned();
    let alice_jid = bare(&format!("alice@{domain}"));
    let bob_jid = bare(&format!("bob@{domain}"));
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let service: Jid = server.pubsub_service().parse().unwrap();
    let acert = cert_for(alice_jid.as_str());
    let bcert = cert_for(bob_jid.as_str());

    alice
        .create_blog_node(Some(&service), Some("alice-blog"), AccessModel::Open)
        .await
        .unwrap();
    let item: ItemRef = alice
        .post(
            Some(&service),
            Some("alice-blog"),
            post("Signed balcony", "The balcony is finished, signed."),
            PostOptions {
                id: Some("signed-balcony".into()),
                ..PostOptions::default()
            },
        )
        .await
        .unwrap();

    // Alice signs the published item; the signature is her XEP-0470 attachment.
    let sig = alice.sign_published_item(&item, &acert).await.unwrap();
    assert_eq!(sig.signers, vec![alice_jid.clone()]);
    // Bob's like next to it is another attachment and does not disturb it.
    bob.set_noticed(&item, true).await.unwrap();

    // Bob verifies with Alice's certificate (and his own, irrelevant).
    let checks = bob
        .verify_item_signatures(&item, &[bcert.clone(), acert.clone()])
        .await
        .unwrap();
    assert_eq!(checks.len(), 1, "{checks:?}");
    let v = checks[0].result.as_ref().unwrap();
    assert_eq!((&checks[0].jid, &v.signer), (&alice_jid, &alice_jid));
    assert_eq!(v.fingerprint, acert.fingerprint());

    // Bob copies Alice's signature into his own attachment: refused, his JID is not the signer.
    let copied = sig.to_element();
    bob.update_attachments(&item, move |a: &mut Attachments| a.extra.push(copied))
        .await
        .unwrap();
    let checks = bob
        .verify_item_signatures(&item, std::slice::from_ref(&acert))
        .await
        .unwrap();
    assert_eq!(checks.len(), 2);
    for c in &checks {
        if c.jid == alice_jid {
            assert!(c.result.is_ok());
        } else {
            assert_eq!(c.jid, bob_jid);
            assert!(matches!(c.result, Err(SigningError::SignerMismatch { .. })));
        }
    }

    // The item is changed afterwards (one character): Alice's signature no longer verifies.
    let items = alice
        .get_items_by_id(Some(&service), "alice-blog", &["signed-balcony"])
        .await
        .unwrap();
    let mut payload = items[0].payload.clone().unwrap();
    let xml = String::from(&payload).replace("signed.", "signed!");
    payload = xml.parse().unwrap();
    alice
        .publish(
            Some(&service),
            "alice-blog",
            Some("signed-balcony"),
            payload,
            None,
        )
        .await
        .unwrap();
    let checks = bob
        .verify_item_signatures(&item, std::slice::from_ref(&acert))
        .await
        .unwrap();
    let alice_check = checks.iter().find(|c| c.jid == alice_jid).unwrap();
    assert!(
        matches!(alice_check.result, Err(SigningError::BadSignature(_))),
        "{alice_check:?}"
    );
    // A malformed signature attachment is a typed error, not a panic.
    let broken = Element::builder("signature", NS_SIGNING)
        .append(
            Element::builder("signer", NS_SIGNING)
                .append("not a jid@@")
                .build(),
        )
        .build();
    bob.update_attachments(&item, move |a: &mut Attachments| {
        a.extra.retain(|e| !e.is("signature", NS_SIGNING));
        a.extra.push(broken);
    })
    .await
    .unwrap();
    let checks = bob.verify_item_signatures(&item, &[acert]).await.unwrap();
    let bob_check = checks.iter().find(|c| c.jid == bob_jid).unwrap();
    assert!(matches!(
        bob_check.result,
        Err(SigningError::Malformed { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_blog_item_on_prosody() {
    signed_blog_story(ServerKind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_blog_item_on_ejabberd() {
    signed_blog_story(ServerKind::Ejabberd).await;
}
