//! `OxClient` over real Prosody and ejabberd: public keys published on PEP and read by another
//! account, XEP-0374 chat messages, the secret key backup restored on a new device, and XEP-0473:
//! Alice publishes 20 encrypted entries, Bob and Carol get the secret later and read them all, Alice
//! revokes Carol and rotates, then only Bob reads the new entries; a newcomer gets the old secrets
//! marked revoked and reads everything; a secret forged by another account is refused and changes
//! nothing. With the whitelist access model XEP-0473 recommends, only members fetch the items and a
//! revoked reader leaves the whitelist.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_e2ee::ox::client::OxMessage;
use xmpp_e2ee::ox::pep::{NODE_PUBLIC_KEYS, NODE_SECRET_KEY};
use xmpp_e2ee::ox::pubsub::SharedSecret;
use xmpp_e2ee::ox::{
    MemoryOxStore, OxClient, OxError, OxPepExt, DISCO_FEATURES, NS_OX_IM, NS_OX_PUBSUB,
};
use xmpp_social::client::XmppClient;
use xmpp_social::connection::Incoming;
use xmpp_social::pubsub::{
    AccessModel, ItemsQuery, MaxItems, NodeConfig, PreconditionPolicy, PubSubExt, PublishOptions,
};
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

use support::{connect, next_message, ox_login, OxTestClient as Client};

const NODE: &str = "urn:xmpp:microblog:0:private";
const ATOM: &str = "http://www.w3.org/2005/Atom";

/// The server, with Bob, Carol, Dave and Mallory registered next to Alice.
async fn start(kind: ServerKind) -> Server {
    support::start(kind, &["bob", "carol", "dave", "mallory"]).await
}

/// `user` logged in, announcing the OX disco features, with its OX key published.
async fn login(server: &Server, user: &str) -> (Client, Incoming) {
    ox_login(server, user, DISCO_FEATURES).await
}

/// The next message carrying `<openpgp/>`, handled by `client`.
async fn next_ox(client: &Client, incoming: &mut Incoming) -> Result<OxMessage, OxError> {
    next_message(incoming, "OX message", async |m| {
        client.handle_message(m).await.transpose()
    })
    .await
}

fn entry(n: usize) -> Element {
    Element::builder("entry", ATOM)
        .append(
            Element::builder("title", ATOM)
                .append(format!("private post {n}"))
                .build(),
        )
        .build()
}

/// Open access (so that everybody can fetch the ciphertext: only the secret decides who reads) and
/// room for every item (PEP keeps one item by default).
fn node_options() -> PublishOptions {
    PublishOptions::new(
        NodeConfig::new()
            .access_model(AccessModel::Open)
            .max_items(MaxItems::Max),
        PreconditionPolicy::ReconfigureNode,
    )
}

/// Decrypts every item of Alice's node with `reader`'s secrets: (readable titles, unreadable count).
async fn read_all(reader: &Client, alice: &Jid) -> (Vec<String>, usize) {
    // (`max_items` larger than the node makes ejabberd 23.01 answer a negative RSM index, which
    // the pubsub parser refuses: page with RSM instead.)
    let items = reader
        .connection()
        .get_all_items(Some(alice), NODE, 100, None)
        .await
        .unwrap();
    let mut titles = Vec::new();
    let mut unreadable = 0;
    for item in &items {
        match reader.decrypt_item(Some(alice), NODE, item) {
            Ok(el) => {
                assert!(el.is("entry", ATOM));
                titles.push(el.get_child("title", ATOM).unwrap().text());
            }
            Err(OxError::UnknownSecret { .. }) => unreadable += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    titles.sort();
    (titles, unreadable)
}

async fn ox_on(kind: ServerKind) {
    let server = start(kind).await;
    let (alice, mut alice_in) = login(&server, "alice").await;
    let (bob, mut bob_in) = login(&server, "bob").await;
    let (carol, mut carol_in) = login(&server, "carol").await;
    let (mallory, _mallory_in) = login(&server, "mallory").await;
    let alice_bare: BareJid = alice.connection().jid().to_bare();
    let alice_jid: Jid = alice_bare.clone().into();
    let bob_bare: BareJid = bob.connection().jid().to_bare();
    let carol_bare: BareJid = carol.connection().jid().to_bare();

    // Keys: Bob reads Alice's announced key from her PEP service (open access, not a contact).
    let list = bob
        .connection()
        .public_keys_list(Some(&alice_jid))
        .await
        .unwrap();
    let alice_fpr = alice.public_key().unwrap().fingerprint();
    assert_eq!(list.keys.len(), 1, "{kind:?}");
    assert_eq!(list.keys[0].fingerprint, alice_fpr);
    let keys = bob.fetch_keys(&alice_bare).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].fingerprint(), alice_fpr);
    // Publishing again keeps one announcement.
    alice.publish_key().await.unwrap();
    let again = bob
        .connection()
        .public_keys_list(Some(&alice_jid))
        .await
        .unwrap();
    assert_eq!(again.keys.len(), 1);
    // An account without keys.
    let nobody: Jid = format!("dave@{}", server.domain()).parse().unwrap();
    assert!(bob.connection().public_keys(Some(&nobody)).await.is_err());

    // XEP-0374 §2.1: support is announced in disco#info.
    let info = bob
        .connection()
        .disco_info(Some(&alice.connection().jid()), None)
        .await
        .unwrap();
    assert!(info.has(NS_OX_IM) && info.has(NS_OX_PUBSUB), "{kind:?}");

    // XEP-0374: a signcrypted chat message.
    alice
        .send_chat(&bob_bare, "hello Bob, secretly")
        .await
        .unwrap();
    let msg = next_ox(&bob, &mut bob_in).await.unwrap();
    assert_eq!(msg.body.as_deref(), Some("hello Bob, secretly"));
    assert_eq!(msg.signer.as_deref(), Some(alice_fpr.as_str()));
    assert_eq!(msg.from.to_bare(), alice_bare);
    bob.send_chat(&alice_bare, "hello Alice").await.unwrap();
    let msg = next_ox(&alice, &mut alice_in).await.unwrap();
    assert_eq!(msg.body.as_deref(), Some("hello Alice"));

    // Secret key backup: Bob cannot read it, a new device of Alice restores the key with the code.
    let code = alice.backup_secret_key().await.unwrap();
    assert!(
        bob.connection()
            .get_items(Some(&alice_jid), NODE_SECRET_KEY, &ItemsQuery::default())
            .await
            .is_err(),
        "{kind:?}: another account read the secret key node"
    );
    let conn2 = connect(&server, &alice_bare.to_string(), &[]).await;
    let alice2 = OxClient::new(conn2, MemoryOxStore::new()).unwrap();
    assert_ne!(alice2.public_key().unwrap().fingerprint(), alice_fpr);
    let wrong = xmpp_e2ee::ox::BackupCode::generate();
    assert!(matches!(
        alice2.restore_secret_key(&wrong).await,
        Err(OxError::WrongPassword)
    ));
    let restored = alice2.restore_secret_key(&code).await.unwrap();
    assert_eq!(restored.fingerprint(), alice_fpr);
    drop(alice2);
    // The metadata node still announces the one key.
    assert_eq!(
        alice
            .connection()
            .public_keys_list(None)
            .await
            .unwrap()
            .keys
            .len(),
        1,
        "{NODE_PUBLIC_KEYS}"
    );

    // XEP-0473: 20 encrypted entries before anybody has the secret.
    alice.new_node_secret(None, NODE, Some(ATOM)).await.unwrap();
    for n in 0..20 {
        let id = format!("p{n:02}");
        alice
            .publish_encrypted(None, NODE, Some(&id), &entry(n), Some(&node_options()))
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: publish {n}: {e}\n{}", server.log_tail(20)));
    }
    // Without the secret, Bob reads nothing.
    let (titles, unreadable) = read_all(&bob, &alice_jid).await;
    assert_eq!((titles.len(), unreadable), (0, 20), "{kind:?}");

    alice
        .share_node(None, NODE, &[bob_bare.clone(), carol_bare.clone()])
        .await
        .unwrap();
    let got = next_ox(&bob, &mut bob_in).await.unwrap();
    assert_eq!(got.secrets.len(), 1);
    next_ox(&carol, &mut carol_in).await.unwrap();
    for reader in [&bob, &carol] {
        let (titles, unreadable) = read_all(reader, &alice_jid).await;
        assert_eq!((titles.len(), unreadable), (20, 0), "{kind:?}");
        assert_eq!(titles[0], "private post 0");
    }

    // Revoke Carol, rotate, publish 5 more.
    let old = alice
        .node_secrets(None, NODE)
        .unwrap()
        .unwrap()
        .current()
        .unwrap()
        .id
        .clone();
    let new = alice
        .rotate_node_secret(
            None,
            NODE,
            std::slice::from_ref(&bob_bare),
            std::slice::from_ref(&carol_bare),
            Some("bye"),
        )
        .await
        .unwrap();
    assert_ne!(new.id, old);
    let bob_got = next_ox(&bob, &mut bob_in).await.unwrap();
    assert_eq!(bob_got.secrets[0].2.added, vec![new.id.clone()]);
    assert_eq!(bob_got.secrets[0].2.revoked, vec![old.clone()]);
    let carol_got = next_ox(&carol, &mut carol_in).await.unwrap();
    assert_eq!(carol_got.secrets[0].2.revoked, vec![old.clone()]);
    assert!(carol_got.secrets[0].2.added.is_empty());
    for n in 20..25 {
        let id = format!("p{n:02}");
        alice
            .publish_encrypted(None, NODE, Some(&id), &entry(n), Some(&node_options()))
            .await
            .unwrap();
    }
    let (titles, unreadable) = read_all(&bob, &alice_jid).await;
    assert_eq!((titles.len(), unreadable), (25, 0), "{kind:?}");
    let (titles, unreadable) = read_all(&carol, &alice_jid).await;
    assert_eq!((titles.len(), unreadable), (20, 5), "{kind:?}");
    // Carol's revoked secret still opens the archive, never the new items: trying it on one gives
    // the wrong-password error.
    let q = ItemsQuery {
        ids: vec!["p24".to_owned()],
        ..Default::default()
    };
    let item = carol
        .connection()
        .get_items(Some(&alice_jid), NODE, &q)
        .await
        .unwrap()
        .items
        .remove(0);
    let encrypted =
        xmpp_e2ee::ox::EncryptedItem::from_element(item.payload.as_ref().unwrap()).unwrap();
    let carol_secrets = carol.node_secrets(Some(&alice_jid), NODE).unwrap().unwrap();
    let mut forged_key = carol_secrets.secrets[0].clone();
    forged_key.id = encrypted.key.clone();
    assert!(matches!(
        encrypted.decrypt(&forged_key),
        Err(OxError::WrongPassword)
    ));

    // A newcomer gets every secret (the old ones marked revoked) and reads everything.
    let (dave, mut dave_in) = login(&server, "dave").await;
    let dave_bare = dave.connection().jid().to_bare();
    alice.share_node(None, NODE, &[dave_bare]).await.unwrap();
    let dave_got = next_ox(&dave, &mut dave_in).await.unwrap();
    assert_eq!(dave_got.secrets[0].2.added.len(), 2);
    let secrets = dave.node_secrets(Some(&alice_jid), NODE).unwrap().unwrap();
    assert!(secrets.get(&old).unwrap().revoked);
    assert_eq!(secrets.current().unwrap().id, new.id);
    let (titles, unreadable) = read_all(&dave, &alice_jid).await;
    assert_eq!((titles.len(), unreadable), (25, 0), "{kind:?}");

    // Mallory forges a secret for Alice's node: properly signed by Mallory, refused by Bob, whose
    // state does not change.
    let before = bob.node_secrets(Some(&alice_jid), NODE).unwrap().unwrap();
    let mut forged = SharedSecret::generate(alice_bare.clone(), NODE, Some(ATOM));
    forged.timestamp += chrono::TimeDelta::days(1);
    let openpgp = mallory
        .signcrypt(std::slice::from_ref(&bob_bare), vec![forged.to_element()])
        .await
        .unwrap();
    let stanza = OxClient::<XmppClient, MemoryOxStore>::message_stanza(
        Jid::from(bob_bare.clone()),
        &openpgp,
    );
    mallory
        .connection()
        .send_stanza(stanza.into())
        .await
        .unwrap();
    let err = next_ox(&bob, &mut bob_in).await.unwrap_err();
    assert!(matches!(err, OxError::SecretRefused(_)), "{err:?}");
    let after = bob.node_secrets(Some(&alice_jid), NODE).unwrap().unwrap();
    assert_eq!(before, after);
    // Publishing without a secret publishes nothing.
    let count_before = read_all(&bob, &alice_jid).await.0.len();
    assert!(matches!(
        mallory
            .publish_encrypted(None, NODE, Some("x"), &entry(99), Some(&node_options()))
            .await,
        Err(OxError::UnknownSecret { .. })
    ));
    assert_eq!(read_all(&bob, &alice_jid).await.0.len(), count_before);
}

/// XEP-0473 with the whitelist access model it recommends: only members fetch the ciphertext, and a
/// revoked reader also leaves the whitelist.
async fn whitelist_on(kind: ServerKind) {
    let server = start(kind).await;
    let (alice, _alice_in) = login(&server, "alice").await;
    let (bob, mut bob_in) = login(&server, "bob").await;
    let (carol, mut carol_in) = login(&server, "carol").await;
    let alice_jid: Jid = alice.connection().jid().to_bare().into();
    let bob_bare = bob.connection().jid().to_bare();
    let carol_bare = carol.connection().jid().to_bare();
    let node = "private-notes";
    let log = |e: &dyn std::fmt::Display| format!("{kind:?}: {e}\n{}", server.log_tail(30));

    alice.new_node_secret(None, node, None).await.unwrap();
    let options = xmpp_e2ee::ox::client::encrypted_node_options();
    alice
        .publish_encrypted(None, node, Some("n1"), &entry(1), Some(&options))
        .await
        .unwrap_or_else(|e| panic!("{}", log(&e)));
    let q = ItemsQuery::default();
    assert!(
        bob.connection()
            .get_items(Some(&alice_jid), node, &q)
            .await
            .is_err(),
        "{kind:?}: a non-member fetched a whitelist node"
    );
    alice
        .set_node_readers(None, node, &[bob_bare.clone(), carol_bare.clone()], &[])
        .await
        .unwrap_or_else(|e| panic!("{}", log(&e)));
    alice
        .share_node(None, node, &[bob_bare.clone(), carol_bare.clone()])
        .await
        .unwrap();
    next_ox(&bob, &mut bob_in).await.unwrap();
    next_ox(&carol, &mut carol_in).await.unwrap();
    for reader in [&bob, &carol] {
        let items = reader
            .connection()
            .get_items(Some(&alice_jid), node, &q)
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)))
            .items;
        assert_eq!(items.len(), 1);
        let el = reader
            .decrypt_item(Some(&alice_jid), node, &items[0])
            .unwrap();
        assert_eq!(el, entry(1));
    }

    alice
        .set_node_readers(None, node, &[], std::slice::from_ref(&carol_bare))
        .await
        .unwrap_or_else(|e| panic!("{}", log(&e)));
    alice
        .rotate_node_secret(
            None,
            node,
            std::slice::from_ref(&bob_bare),
            std::slice::from_ref(&carol_bare),
            None,
        )
        .await
        .unwrap();
    next_ox(&bob, &mut bob_in).await.unwrap();
    next_ox(&carol, &mut carol_in).await.unwrap();
    alice
        .publish_encrypted(None, node, Some("n2"), &entry(2), Some(&options))
        .await
        .unwrap();
    assert!(
        carol
            .connection()
            .get_items(Some(&alice_jid), node, &q)
            .await
            .is_err(),
        "{kind:?}: a removed reader still fetches the node"
    );
    let items = bob
        .connection()
        .get_all_items(Some(&alice_jid), node, 100, None)
        .await
        .unwrap();
    let n2 = items.iter().find(|i| i.id == "n2").expect("n2");
    assert_eq!(
        bob.decrypt_item(Some(&alice_jid), node, n2).unwrap(),
        entry(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_on_prosody() {
    whitelist_on(ServerKind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_on_ejabberd() {
    whitelist_on(ServerKind::Ejabberd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ox_on_prosody() {
    ox_on(ServerKind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ox_on_ejabberd() {
    ox_on(ServerKind::Ejabberd).await;
}
