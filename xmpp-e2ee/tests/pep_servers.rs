//! OMEMO device lists and bundles through real PEP on Prosody and ejabberd, then sessions built from the
//! fetched bundles in both profiles.

use jid::Jid;
use xmpp_e2ee::omemo::{payload, DeviceKeys, OmemoPepExt, Profile};
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

async fn start(kind: ServerKind) -> Server {
    tokio::task::spawn_blocking(move || {
        let server = Server::start(kind, &[("alice", PW)])
            .unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"));
        // bob is an ordinary account, not a contact of alice.
        server
            .register("bob", PW)
            .unwrap_or_else(|e| panic!("{kind:?}: could not register bob: {e}"));
        server
    })
    .await
    .expect("join")
}

async fn login(server: &Server, user: &str) -> XmppClient {
    let jid = format!("{user}@{}", server.domain());
    XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{user} could not log in: {e}\n{}", server.log_tail(30)))
}

async fn omemo_through_pep(kind: ServerKind) {
    let server = start(kind).await;
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let alice_jid: Jid = alice.jid().to_bare().into();
    let log = |e: &dyn std::fmt::Display| format!("{kind:?}: {e}\n{}", server.log_tail(30));

    let mut alice_keys = DeviceKeys::generate(5);
    let alice_id = 1_000_001;
    for profile in [Profile::Omemo2, Profile::Legacy] {
        // Nothing published yet: an empty list, not an error. (A non-contact reading a node that does
        // not exist gets forbidden from Prosody: its PEP default access model is presence.)
        let empty = alice
            .device_list(None, profile)
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)));
        assert!(empty.devices.is_empty(), "{kind:?} {profile:?}");
        match bob.device_list(Some(&alice_jid), profile).await {
            Ok(list) => assert!(list.devices.is_empty(), "{kind:?} {profile:?}"),
            Err(e) => assert!(
                kind == ServerKind::Prosody && format!("{e:?}").contains("Forbidden"),
                "{}",
                log(&e)
            ),
        }
        let list = alice
            .publish_device(&alice_keys, alice_id, profile, Some("Rust test"))
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)));
        assert_eq!(list.devices.len(), 1);
        // Publishing again changes nothing.
        let again = alice
            .publish_device(&alice_keys, alice_id, profile, Some("Rust test"))
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)));
        assert_eq!(again, list);
    }

    let bob_keys = DeviceKeys::generate(5);
    for profile in [Profile::Omemo2, Profile::Legacy] {
        let list = bob
            .device_list(Some(&alice_jid), profile)
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)));
        assert_eq!(list.profile, profile);
        let ids: Vec<u32> = list.devices.iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![alice_id], "{kind:?} {profile:?}");
        if profile == Profile::Omemo2 {
            assert_eq!(list.devices[0].label.as_deref(), Some("Rust test"));
        }
        let bundle = bob
            .bundle(&alice_jid, alice_id, profile)
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)));
        assert_eq!(bundle, alice_keys.bundle(profile));

        // bob starts a session from the fetched bundle; alice decrypts the first message.
        let mut session = bob_keys.initiate(&bundle).expect("initiate");
        let text = format!("hello over {profile:?} on {kind:?}");
        let (material, body) = payload::encrypt(profile, text.as_bytes());
        let key = session.encrypt(&material).expect("encrypt");
        assert!(key.key_exchange);
        let (mut alice_session, alice_material) = alice_keys
            .accept(profile, &key.data)
            .expect("alice accepts the key exchange");
        assert_eq!(alice_material, material);
        let plain = payload::decrypt(profile, &alice_material, &body).expect("payload");
        assert_eq!(plain, text.as_bytes());
        assert_eq!(
            alice_session.remote_identity_key(),
            bob_keys.bundle(profile).identity_key.as_slice()
        );
        // The one-time prekey is gone (and the two profiles share prekeys): alice republishes both
        // bundles, as a client must after a key exchange.
        for p in [Profile::Omemo2, Profile::Legacy] {
            alice
                .publish_device(&alice_keys, alice_id, p, Some("Rust test"))
                .await
                .unwrap_or_else(|e| panic!("{}", log(&e)));
        }
        // And alice answers on the same session.
        let reply = alice_session.encrypt(&material).expect("reply");
        assert_eq!(
            session
                .decrypt(&reply.data, reply.key_exchange)
                .expect("bob"),
            material
        );
    }

    // A second device of alice, added later, keeps the first in both lists; both bundles stay readable.
    let alice2 = XmppClient::connect_plaintext_loopback(
        &format!("alice@{}/second", server.domain()),
        PW,
        server.c2s_addr(),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", log(&e)));
    let second_keys = DeviceKeys::generate(3);
    let second_id = 2_000_002;
    for profile in [Profile::Omemo2, Profile::Legacy] {
        let list = alice2
            .publish_device(&second_keys, second_id, profile, None)
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)));
        assert_eq!(list.devices.len(), 2);
        let seen = bob
            .device_list(Some(&alice_jid), profile)
            .await
            .unwrap_or_else(|e| panic!("{}", log(&e)));
        let mut ids: Vec<u32> = seen.devices.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![alice_id, second_id], "{kind:?} {profile:?}");
        for (id, keys) in [(alice_id, &alice_keys), (second_id, &second_keys)] {
            let bundle = bob
                .bundle(&alice_jid, id, profile)
                .await
                .unwrap_or_else(|e| panic!("{}", log(&e)));
            assert_eq!(bundle, keys.bundle(profile), "{kind:?} {profile:?} {id}");
        }
    }
    // An unknown device has no bundle.
    assert!(bob.bundle(&alice_jid, 42, Profile::Omemo2).await.is_err());

    let _ = alice2.close().await;
    let _ = alice.close().await;
    let _ = bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_omemo_through_pep() {
    omemo_through_pep(ServerKind::Prosody).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_omemo_through_pep() {
    omemo_through_pep(ServerKind::Ejabberd).await
}
