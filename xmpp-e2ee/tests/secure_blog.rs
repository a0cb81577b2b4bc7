//! Encrypted and signed social items (`xmpp_e2ee::secure`) on real Prosody and ejabberd servers.
//!
//! Alice posts 20 blog entries, signed then encrypted; Bob and Carol get the node secret later and
//! read all 20, decrypted, with Alice's verified signature. Alice revokes Carol, rotates and posts 5
//! more: Bob reads all 25, Carol the old 20 only. A copy of an entry with one character changed,
//! re-published raw by Alice's account under the same id, fails verification, as does a signature
//! whose signer was changed. An event and a list entry round-trip encrypted and signed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use chrono::{DateTime, TimeDelta, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_e2ee::secure::{Encryption, Protection, SecureSocialExt, SignatureStatus};
use xmpp_e2ee::signing::openpgp::sign_item;
use xmpp_e2ee::signing::{wrap_payload, Signature, NS_SIGNING};
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::connection::Incoming;
use xmpp_social::events::Event;
use xmpp_social::lists::{ItemValues, ListOptions, ListTemplate, ListsExt};
use xmpp_social::microblog::{Entry, ItemRef, NS_MICROBLOG};
use xmpp_social::pubsub::{AccessModel, PubSubExt};
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

use support::{next_message, ox_login, OxTestClient as Client};

/// The server, with Bob, Carol and Mallory registered next to Alice.
async fn start(kind: ServerKind) -> Server {
    support::start(kind, &["bob", "carol", "mallory"]).await
}

/// `user` logged in, with its OX key published.
async fn login(server: &Server, user: &str) -> (Client, Incoming) {
    ox_login(server, user, &[]).await
}

/// Handles incoming messages until one carries OX content (secrets are applied on the way).
async fn next_ox(client: &Client, incoming: &mut Incoming) {
    next_message(incoming, "OX message", async |m| {
        match client.handle_message(m).await {
            Ok(None) => None,
            Ok(Some(_)) => Some(()),
            Err(e) => panic!("OX message refused: {e}"),
        }
    })
    .await
}

fn bare(c: &Client) -> BareJid {
    c.connection().jid().to_bare()
}

fn post(n: usize) -> Entry {
    Entry::new_post(
        format!("secret post {n}"),
        format!("body of secret post {n}"),
    )
}

/// Reads Alice's blog as `reader`: (titles of entries decrypted with Alice's verified signature,
/// count of entries whose secret the reader lacks).
async fn read_blog(reader: &Client, alice: &BareJid) -> (Vec<String>, usize) {
    let items = reader
        .read_entries(Some(&Jid::from(alice.clone())), None, None)
        .await
        .unwrap();
    let mut titles = Vec::new();
    let mut missing = 0;
    for item in items {
        match &item.encryption {
            Encryption::Decrypted { .. } => {
                assert!(
                    item.is_signed_by(alice),
                    "{}: signatures {:?}",
                    item.item_id,
                    item.signatures
                );
                assert!(!item.has_invalid_signature());
                let entry = item.content.as_ref().unwrap();
                titles.push(entry.title_text().unwrap());
            }
            Encryption::MissingSecret { .. } => {
                assert!(item.content.is_err());
                assert!(item.signatures.is_empty());
                missing += 1;
            }
            other => panic!("{}: unexpected {other:?}", item.item_id),
        }
    }
    titles.sort();
    (titles, missing)
}

fn titles(range: std::ops::Range<usize>) -> Vec<String> {
    let mut t: Vec<String> = range.map(|n| format!("secret post {n}")).collect();
    t.sort();
    t
}

async fn scenario(kind: ServerKind) {
    let server = start(kind).await;
    let (alice, _alice_in) = login(&server, "alice").await;
    let (bob, mut bob_in) = login(&server, "bob").await;
    let (carol, mut carol_in) = login(&server, "carol").await;
    let alice_jid = bare(&alice);
    let alice_service = Jid::from(alice_jid.clone());

    // Encryption needs a secret first.
    let refused = alice
        .post_entry(
            None,
            None,
            post(0),
            AccessModel::Open,
            Protection::ENCRYPTED_SIGNED,
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(xmpp_e2ee::secure::SecureError::NoSecret { .. })
        ),
        "{refused:?}"
    );

    alice
        .new_node_secret(None, NS_MICROBLOG, Some(NS_MICROBLOG))
        .await
        .unwrap();
    let mut refs = Vec::new();
    for n in 0..20 {
        let r = alice
            .post_entry(
                None,
                None,
                post(n),
                AccessModel::Open,
                Protection::ENCRYPTED_SIGNED,
            )
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: post {n}: {e}\n{}", server.log_tail(30)));
        refs.push(r);
    }

    // Before the secret is shared, Bob sees 20 entries he cannot read (and no signature).
    let (readable, missing) = read_blog(&bob, &alice_jid).await;
    assert_eq!((readable.len(), missing), (0, 20));

    // The secret, given later, opens all 20, each with Alice's verified signature.
    alice
        .share_node(None, NS_MICROBLOG, &[bare(&bob), bare(&carol)])
        .await
        .unwrap();
    next_ox(&bob, &mut bob_in).await;
    next_ox(&carol, &mut carol_in).await;
    assert_eq!(read_blog(&bob, &alice_jid).await, (titles(0..20), 0));
    assert_eq!(read_blog(&carol, &alice_jid).await, (titles(0..20), 0));

    // Carol revoked, the secret rotated, 5 more entries: Bob reads 25, Carol the old 20 only.
    alice
        .rotate_node_secret(
            None,
            NS_MICROBLOG,
            &[bare(&bob)],
            &[bare(&carol)],
            Some("no longer a reader"),
        )
        .await
        .unwrap();
    next_ox(&bob, &mut bob_in).await;
    next_ox(&carol, &mut carol_in).await;
    for n in 20..25 {
        alice
            .post_entry(
                None,
                None,
                post(n),
                AccessModel::Open,
                Protection::ENCRYPTED_SIGNED,
            )
            .await
            .unwrap();
    }
    assert_eq!(read_blog(&bob, &alice_jid).await, (titles(0..25), 0));
    assert_eq!(read_blog(&carol, &alice_jid).await, (titles(0..20), 5));

    // One character changed in a stored entry, re-published raw by Alice's account under the same
    // id (its signature attachment unchanged): decrypts, but the signature fails.
    let target = &refs[3];
    let original = alice
        .connection()
        .get_items_by_id(Some(&alice_service), NS_MICROBLOG, &[&target.item])
        .await
        .unwrap();
    let plain = alice
        .decrypt_item(Some(&alice_service), NS_MICROBLOG, &original[0])
        .unwrap();
    let text = String::from(&plain);
    assert!(text.contains("secret post 3"));
    let tampered: Element = text
        .replacen("secret post 3", "secreT post 3", 1)
        .parse()
        .unwrap();
    alice
        .publish_encrypted(None, NS_MICROBLOG, Some(&target.item), &tampered, None)
        .await
        .unwrap();
    let item = open(&bob, &alice_service, target).await;
    assert!(matches!(item.encryption, Encryption::Decrypted { .. }));
    assert_eq!(
        item.content.as_ref().unwrap().title_text().as_deref(),
        Some("secreT post 3")
    );
    assert!(!item.is_signed_by(&alice_jid));
    assert!(
        matches!(item.signature(), Some(SignatureStatus::Invalid { jid, .. }) if *jid == alice_jid),
        "{:?}",
        item.signatures
    );

    // The signer of another entry's signature changed to Carol (the attachment still Alice's).
    let target = &refs[5];
    let original = alice
        .connection()
        .get_items_by_id(Some(&alice_service), NS_MICROBLOG, &[&target.item])
        .await
        .unwrap();
    let plain = alice
        .decrypt_item(Some(&alice_service), NS_MICROBLOG, &original[0])
        .unwrap();
    let cert = sequoia_cert(&alice);
    let mut sig: Signature =
        sign_item(&cert, &alice_jid, &alice_jid, &wrap_payload(Some(&plain))).unwrap();
    sig.signers = vec![bare(&carol)];
    let secrets = alice.node_secrets(None, NS_MICROBLOG).unwrap().unwrap();
    let encrypted = secrets.encrypt(&sig.to_element()).unwrap().to_element();
    alice
        .connection()
        .update_attachments(target, move |a| {
            a.extra.retain(|e| {
                !e.is("signature", NS_SIGNING) && !e.is("encrypted", xmpp_e2ee::ox::NS_OX_PUBSUB)
            });
            a.extra.push(encrypted);
        })
        .await
        .unwrap();
    let item = open(&bob, &alice_service, target).await;
    assert!(item.content.is_ok());
    assert!(
        matches!(item.signature(), Some(SignatureStatus::Invalid { .. })),
        "{:?}",
        item.signatures
    );
    // Mallory attaches to an entry of Alice's: a signature of her own key naming Alice as signer,
    // and garbage. Each is invalid; Alice's own signature still verifies.
    let (mallory, _mallory_in) = login(&server, "mallory").await;
    let target = &refs[6];
    let plain = {
        let items = alice
            .connection()
            .get_items_by_id(Some(&alice_service), NS_MICROBLOG, &[&target.item])
            .await
            .unwrap();
        alice
            .decrypt_item(Some(&alice_service), NS_MICROBLOG, &items[0])
            .unwrap()
    };
    let mut forged = sign_item(
        &sequoia_cert(&mallory),
        &bare(&mallory),
        &alice_jid,
        &wrap_payload(Some(&plain)),
    )
    .unwrap();
    forged.signers = vec![alice_jid.clone()];
    mallory
        .connection()
        .update_attachments(target, move |a| a.extra.push(forged.to_element()))
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: Mallory's attachment: {e}"));
    let item = open(&bob, &alice_service, target).await;
    assert!(item.is_signed_by(&alice_jid), "{:?}", item.signatures);
    assert!(!item.is_signed_by(&bare(&mallory)));
    assert!(item.has_invalid_signature());
    assert!(matches!(
        item.signature(),
        Some(SignatureStatus::Verified { .. })
    ));
    assert_eq!(item.signatures.len(), 2);
    for garbage in [
        "<signature xmlns='urn:xmpp:pubsub-signing:0'><time stamp='2022-10-16T18:39:03Z'/><signer>alice@localhost</signer><sign xmlns='urn:xmpp:pubsub-signing:openpgp:0'>AAAA</sign></signature>",
        "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key='nope'>!!!</encrypted>",
        "<encrypted xmlns='urn:xmpp:openpgp:pubsub:0' key='nope'>AAAA</encrypted>",
    ] {
        let el: Element = garbage.parse().unwrap();
        mallory
            .connection()
            .update_attachments(target, move |a| {
                a.extra.retain(|e| {
                    !e.is("signature", NS_SIGNING)
                        && !e.is("encrypted", xmpp_e2ee::ox::NS_OX_PUBSUB)
                });
                a.extra.push(el);
            })
            .await
            .unwrap();
        let item = open(&bob, &alice_service, target).await;
        assert!(item.is_signed_by(&alice_jid), "{garbage}: {:?}", item.signatures);
        assert_eq!(item.signatures.len(), 2, "{garbage}");
        assert!(
            item.signatures.iter().any(|s| matches!(
                s,
                SignatureStatus::Invalid { jid, .. } | SignatureStatus::Unchecked { jid: Some(jid), .. }
                    if *jid == bare(&mallory)
            )),
            "{garbage}: {:?}",
            item.signatures
        );
    }

    // The untouched entries still verify.
    let item = open(&bob, &alice_service, &refs[4]).await;
    assert!(item.is_signed_by(&alice_jid), "{:?}", item.signatures);

    // An event, encrypted and signed.
    let start_at: DateTime<chrono::FixedOffset> = (Utc::now() + TimeDelta::days(7)).fixed_offset();
    let event = Event::new("Secret party", start_at, start_at + TimeDelta::hours(3));
    let agenda = event.ns.agenda_node().to_owned();
    alice.new_node_secret(None, &agenda, None).await.unwrap();
    alice
        .share_node(None, &agenda, &[bare(&bob)])
        .await
        .unwrap();
    next_ox(&bob, &mut bob_in).await;
    alice
        .publish_event(
            None,
            None,
            Some("party"),
            &event,
            AccessModel::Open,
            Protection::ENCRYPTED_SIGNED,
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: event: {e}\n{}", server.log_tail(30)));
    let events = bob
        .read_events(Some(&alice_service), &agenda, None)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert!(matches!(events[0].encryption, Encryption::Decrypted { .. }));
    assert!(
        events[0].is_signed_by(&alice_jid),
        "{:?}",
        events[0].signatures
    );
    let got = events[0].content.as_ref().unwrap();
    assert_eq!(got.name(None), Some("Secret party"));
    assert_eq!(got.start, event.start);
    // Carol, without that node's secret, sees an event she cannot read.
    let events = carol
        .read_events(Some(&alice_service), &agenda, None)
        .await
        .unwrap();
    assert!(matches!(
        events[0].encryption,
        Encryption::MissingSecret { .. }
    ));

    // A list entry, encrypted and signed.
    let template = ListTemplate::grocery();
    let list = alice
        .connection()
        .create_list(
            None,
            "secret-groceries",
            &template,
            ListOptions {
                access: AccessModel::Open,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: list: {e}\n{}", server.log_tail(30)));
    alice
        .new_node_secret(None, &list.submitted_node(), None)
        .await
        .unwrap();
    alice
        .share_node(None, &list.submitted_node(), &[bare(&bob)])
        .await
        .unwrap();
    next_ox(&bob, &mut bob_in).await;
    let form = template
        .submission(
            &ItemValues::new().set("name", "milk").set("quantity", "2"),
            None,
        )
        .unwrap();
    alice
        .add_list_entry(&list, Some("milk"), &form, Protection::ENCRYPTED_SIGNED)
        .await
        .unwrap();
    let entries = bob.read_list(&list, None).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert!(matches!(
        entries[0].encryption,
        Encryption::Decrypted { .. }
    ));
    assert!(
        entries[0].is_signed_by(&alice_jid),
        "{:?}",
        entries[0].signatures
    );
    let entry = entries[0].content.as_ref().unwrap();
    assert_eq!(entry.id, "milk");
    assert_eq!(entry.value("name"), Some("milk"));
    assert_eq!(entry.value("quantity"), Some("2"));

    // Signed but not encrypted: readable by all, verified.
    let r = alice
        .post_entry(
            None,
            Some("urn:xmpp:microblog:0:signed"),
            post(100),
            AccessModel::Open,
            Protection::SIGNED,
        )
        .await
        .unwrap();
    let items = carol
        .read_entries(Some(&alice_service), Some(&r.node), None)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].encryption, Encryption::Plain);
    assert!(
        items[0].is_signed_by(&alice_jid),
        "{:?}",
        items[0].signatures
    );
}

async fn open(
    reader: &Client,
    service: &Jid,
    target: &ItemRef,
) -> xmpp_e2ee::secure::SecureItem<Entry> {
    let items = reader
        .connection()
        .get_items_by_id(Some(service), &target.node, &[&target.item])
        .await
        .unwrap();
    reader
        .open_item(Some(service), &target.node, &items[0])
        .await
        .map(|el| Ok(Entry::try_from(&el)?))
}

fn sequoia_cert(client: &Client) -> sequoia_openpgp::Cert {
    use sequoia_openpgp::parse::Parse;
    let key = client.secret_key().unwrap();
    sequoia_openpgp::Cert::from_bytes(&key.to_bytes().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_social_items_on_prosody() {
    scenario(ServerKind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_social_items_on_ejabberd() {
    scenario(ServerKind::Ejabberd).await;
}
