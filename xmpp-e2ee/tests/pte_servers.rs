//! Pubsub targeted encryption (XEP-0477) over real Prosody and ejabberd: in Alice's public blog
//! node, one item is encrypted with OMEMO:2 for Bob only. Bob decrypts it once and keeps the
//! plaintext in his pubsub cache (the OMEMO key is gone afterwards), Carol gets a typed "not for us",
//! public items stay public, and a wrapper claiming another publisher is refused. Alice also signs
//! the plaintext before encrypting (XEP-0475): Bob verifies her signature on what he decrypted.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::sync::Arc;

use jid::{BareJid, Jid};
use minidom::Element;
use sequoia_openpgp::cert::{CertBuilder, CipherSuite};
use xmpp_e2ee::omemo::{MemoryStore, OmemoClient, OmemoConfig};
use xmpp_e2ee::pte::{
    decrypt_item, publish_targeted, read_item, CachePlaintextStore, MemoryPlaintextStore,
    PlaintextStore, PteEncrypted, PteError, PteRead, TYPE_OMEMO2,
};
use xmpp_e2ee::signing::{SigningError, SigningExt};
use xmpp_pubsub_cache::{Cache, NodeKey};
use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{Entry, ItemRef, MicroblogExt, Text};
use xmpp_social::pubsub::{AccessModel, PubSubExt};
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";
const NODE: &str = "alice-blog";

type Client = OmemoClient<XmppClient, MemoryStore>;

async fn device(server: &Server, user: &str) -> Client {
    let jid = format!("{user}@{}", server.domain());
    let conn = XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{jid} could not log in: {e}\n{}", server.log_tail(30)));
    let client = OmemoClient::new(conn, MemoryStore::new(), OmemoConfig::default()).unwrap();
    client.publish().await.unwrap();
    client
}

fn entry(title: &str, body: &str) -> Element {
    Element::from(&Entry {
        title: Some(Text::plain(title)),
        content: vec![Text::plain(body)],
        ..Entry::default()
    })
}

async fn story(kind: ServerKind) {
    let server = tokio::task::spawn_blocking(move || {
        let server = Server::start(kind, &[("alice", PW)])
            .unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"));
        server.register("bob", PW).unwrap();
        server.register("carol", PW).unwrap();
        server
    })
    .await
    .unwrap();
    let domain = server.domain().to_owned();
    let alice_jid = BareJid::new(&format!("alice@{domain}")).unwrap();
    let bob_jid = BareJid::new(&format!("bob@{domain}")).unwrap();
    let alice = device(&server, "alice").await;
    let bob = device(&server, "bob").await;
    let carol = device(&server, "carol").await;
    let service: Jid = server.pubsub_service().parse().unwrap();
    let service_bare = service.to_bare();

    alice
        .connection()
        .create_blog_node(Some(&service), Some(NODE), AccessModel::Open)
        .await
        .unwrap();
    let public = entry("Public", "Everyone reads this.");
    alice
        .connection()
        .publish(Some(&service), NODE, Some("public"), public.clone(), None)
        .await
        .unwrap();
    let secret = entry("For Bob", "Only Bob reads this: the key is under the mat.");
    let alice_kept = MemoryPlaintextStore::new(100);
    let (id, report) = publish_targeted(
        &alice,
        Some(&service),
        NODE,
        Some("for-bob"),
        secret.clone(),
        std::slice::from_ref(&bob_jid),
        Some(&alice_kept),
    )
    .await
    .unwrap();
    assert_eq!(id, "for-bob");
    assert!(
        report.recipients.iter().any(|r| r.jid == bob_jid.as_str()),
        "{report:?}"
    );
    // Signed before encryption: the signature covers the plaintext (XEP-0475).
    let acert = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid(format!("xmpp:{alice_jid}"))
        .add_signing_subkey()
        .generate()
        .unwrap()
        .0;
    let target = ItemRef::new(service.clone(), NODE, "for-bob");
    alice
        .connection()
        .publish_signature(&target, Some(&secret), &acert, true)
        .await
        .unwrap();
    // The publisher reads her own item from what she kept.
    assert_eq!(
        alice_kept.load(&service_bare, NODE, "for-bob").unwrap(),
        Some(secret.clone())
    );

    // What the node holds: the public item in clear, the targeted one wrapped.
    let items = bob
        .connection()
        .get_items_by_id(Some(&service), NODE, &["public", "for-bob"])
        .await
        .unwrap();
    let public_item = items.iter().find(|i| i.id == "public").unwrap();
    let targeted = items.iter().find(|i| i.id == "for-bob").unwrap().clone();
    let wrapper = PteEncrypted::try_from(targeted.payload.as_ref().unwrap()).unwrap();
    assert_eq!(
        (wrapper.by.clone(), wrapper.kind.as_str()),
        (alice_jid.clone(), TYPE_OMEMO2)
    );
    assert!(!String::from(targeted.payload.as_ref().unwrap()).contains("under the mat"));

    // Bob reads through his cache: decrypted once, then served from the cache.
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open_sqlite(dir.path().join("cache.db")).unwrap());
    let kept = CachePlaintextStore::new(cache.clone(), bob_jid.to_string());
    assert_eq!(
        read_item(&bob, &kept, &service_bare, NODE, public_item)
            .await
            .unwrap(),
        PteRead::NotEncrypted
    );
    let PteRead::Decrypted(first) = read_item(&bob, &kept, &service_bare, NODE, &targeted)
        .await
        .unwrap()
    else {
        panic!("Bob could not decrypt");
    };
    assert_eq!(first.payload, secret);
    assert_eq!(first.by, alice_jid);
    assert!(first.device.is_some());
    // Bob checks Alice's signature on the plaintext; over the ciphertext it does not verify.
    let checks = bob
        .connection()
        .verify_signatures_of(&target, Some(&first.payload), std::slice::from_ref(&acert))
        .await
        .unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].result.as_ref().unwrap().signer, alice_jid);
    let checks = bob
        .connection()
        .verify_item_signatures(&target, std::slice::from_ref(&acert))
        .await
        .unwrap();
    assert!(matches!(
        checks[0].result,
        Err(SigningError::BadSignature(_))
    ));
    let key = NodeKey::new(bob_jid.to_string(), service_bare.to_string(), NODE);
    let cached = cache.item(&key, "for-bob").unwrap().unwrap();
    assert!(cached.encrypted && cached.decrypted, "{cached:?}");
    // Forward secrecy: decrypting the same item again fails (the message key is gone)...
    assert!(matches!(
        decrypt_item(&bob, &service_bare, &targeted).await,
        Err(PteError::Omemo(_))
    ));
    // ...but the kept plaintext still reads.
    let PteRead::Decrypted(again) = read_item(&bob, &kept, &service_bare, NODE, &targeted)
        .await
        .unwrap()
    else {
        panic!("kept plaintext lost");
    };
    assert_eq!((again.payload, again.device), (secret.clone(), None));

    // Carol is not a target: a typed "not for us".
    let carol_store = MemoryPlaintextStore::new(10);
    assert_eq!(
        read_item(&carol, &carol_store, &service_bare, NODE, &targeted)
            .await
            .unwrap(),
        PteRead::NotForUs {
            by: alice_jid.clone()
        }
    );
    assert!(carol_store
        .load(&service_bare, NODE, "for-bob")
        .unwrap()
        .is_none());

    // A wrapper that claims Bob as publisher of Alice's item is refused where the service says who
    // published it (Prosody's pubsub.localhost does; ejabberd's blog nodes here do not, so the
    // publisher is set as such a service would give it).
    if kind == ServerKind::Prosody {
        assert_eq!(
            targeted.publisher.as_ref().map(|p| p.to_bare()),
            Some(alice_jid.clone())
        );
    }
    let mut forged = targeted.clone();
    forged.publisher = Some(Jid::from(alice_jid.clone()));
    let mut claim = wrapper.clone();
    claim.by = bob_jid.clone();
    forged.payload = Some(Element::from(&claim));
    assert!(matches!(
        decrypt_item(&carol, &service_bare, &forged).await,
        Err(PteError::PublisherMismatch { .. })
    ));
    // A malformed wrapper is a typed error.
    let mut broken = targeted.clone();
    broken.payload = Some(
        Element::builder("encrypted", xmpp_e2ee::pte::NS_PTE)
            .attr(
                minidom::rxml::xml_ncname!("by").to_owned(),
                alice_jid.as_str(),
            )
            .attr(minidom::rxml::xml_ncname!("type").to_owned(), TYPE_OMEMO2)
            .append(Element::builder("garbage", "urn:xmpp:omemo:2").build())
            .build(),
    );
    assert!(matches!(
        decrypt_item(&bob, &service_bare, &broken).await,
        Err(PteError::Malformed(_))
    ));
    let _ = alice.connection().jid();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeted_item_on_prosody() {
    story(ServerKind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeted_item_on_ejabberd() {
    story(ServerKind::Ejabberd).await;
}
