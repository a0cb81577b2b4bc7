//! `OmemoClient` over real Prosody and ejabberd: two devices of Alice and one of Bob exchange encrypted
//! chat messages in both namespaces; key exchanges are completed, used prekeys replaced and bundles
//! republished; each device decrypts what it should and nothing else. Bob's signed prekey rotates when
//! his clock moves on, and his republished bundle carries the new key.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod support;

use std::time::Duration;

use jid::BareJid;
use xmpp_e2ee::omemo::{OmemoPepExt, Profile, TrustLevel};
use xmpp_parsers::stanza::Stanza;
use xmpp_social::connection::Incoming;
use xmpp_testkit::{Server, ServerKind};

use support::{next_text, omemo_device, OmemoTestClient as Client};

/// A device of `jid` (full JID) with XEP-0280 carbons enabled, published.
async fn device(server: &Server, jid: &str) -> (Client, Incoming) {
    omemo_device(server, jid, true).await
}

/// Lets the empty follow-up messages arrive and be handled.
async fn drain(client: &Client, incoming: &mut Incoming) -> usize {
    let mut n = 0;
    while let Ok(Ok(stanza)) =
        tokio::time::timeout(Duration::from_millis(400), incoming.recv()).await
    {
        if let Stanza::Message(m) = &*stanza {
            // Copies of messages for other devices of the account are not for this one: ignored.
            if let Ok(Some(_)) = client.handle_message(m).await {
                n += 1;
            }
        }
    }
    n
}

async fn conversation(kind: ServerKind, profile: Profile) {
    let server = support::start(kind, &["bob"]).await;
    let (a1, mut a1_in) = device(&server, "alice@localhost/one").await;
    let (a2, mut a2_in) = device(&server, "alice@localhost/two").await;
    let (bob, mut bob_in) = device(&server, "bob@localhost/phone").await;
    let alice_jid = BareJid::new("alice@localhost").unwrap();
    let bob_jid = BareJid::new("bob@localhost").unwrap();
    let bob_id = bob.device_id().unwrap();
    let bundle_before = a1
        .connection()
        .bundle(&bob_jid.clone().into(), bob_id, profile)
        .await
        .unwrap();

    // First message: key exchanges with Bob and with Alice's other device.
    let out = a1.send_chat(&bob_jid, profile, "hello Bob").await.unwrap();
    assert_eq!(out.recipients.len(), 2, "{kind:?} {profile:?}: {out:?}");
    assert!(out.skipped.is_empty());
    let got = next_text(&bob, &mut bob_in).await;
    assert_eq!(got.body.as_deref(), Some("hello Bob"));
    assert_eq!(got.profile, profile);
    assert!(got.new_session);
    assert_eq!(got.trust, TrustLevel::BlindTrusted);
    assert_eq!(got.device_id, a1.device_id().unwrap());

    // Bob's bundle was republished without the used prekey, still with 100 prekeys.
    let bundle_after = a1
        .connection()
        .bundle(&bob_jid.clone().into(), bob_id, profile)
        .await
        .unwrap();
    assert_eq!(bundle_after.prekeys.len(), 100);
    assert_ne!(bundle_before.prekeys, bundle_after.prekeys);

    // Alice's first device completes its key exchange with Bob's empty answer.
    drain(&a1, &mut a1_in).await;
    drain(&a2, &mut a2_in).await;

    // Bob answers: both Alice devices read it.
    let out = bob
        .send_chat(&alice_jid, profile, "hello Alice")
        .await
        .unwrap();
    assert_eq!(out.recipients.len(), 2, "{out:?}");
    for (c, rx) in [(&a1, &mut a1_in), (&a2, &mut a2_in)] {
        let got = next_text(c, rx).await;
        assert_eq!(got.body.as_deref(), Some("hello Alice"));
        assert_eq!(got.from.to_bare(), bob_jid);
    }

    // A conversation: 15 turns each way, Alice's devices taking turns; the other device reads
    // Alice's own messages from their carbon copies (XEP-0280), keyed for it too.
    for i in 0..15 {
        let text = format!("alice {i}");
        let (sender, other, other_rx) = if i % 2 == 0 {
            (&a1, &a2, &mut a2_in)
        } else {
            (&a2, &a1, &mut a1_in)
        };
        let out = sender.send_chat(&bob_jid, profile, &text).await.unwrap();
        let kex: Vec<u32> = out
            .encrypted
            .keys
            .iter()
            .filter(|k| k.key_exchange)
            .map(|k| k.rid)
            .collect();
        assert!(
            kex.is_empty() || i < 2,
            "{kind:?} {profile:?} turn {i}: key exchange still sent to {kex:?}"
        );
        assert_eq!(next_text(&bob, &mut bob_in).await.body, Some(text.clone()));
        let copy = next_text(other, other_rx).await;
        assert_eq!(copy.body, Some(text));
        assert_eq!(copy.from.to_bare(), alice_jid);
        let text = format!("bob {i}");
        bob.send_chat(&alice_jid, profile, &text).await.unwrap();
        for (c, rx) in [(&a1, &mut a1_in), (&a2, &mut a2_in)] {
            assert_eq!(next_text(c, rx).await.body.as_deref(), Some(text.as_str()));
        }
    }
    drain(&bob, &mut bob_in).await;

    // A week and a day later, Bob's next message rotates his signed prekey and republishes his
    // bundle; the sessions go on. Another week later an explicit check (what a timer does) rotates
    // again.
    let bob_bundle = |a1: &Client| {
        let bob_jid = bob_jid.clone();
        let conn = a1.connection().clone();
        async move { conn.bundle(&bob_jid.into(), bob_id, profile).await.unwrap() }
    };
    let spk_before = bob_bundle(&a1).await.signed_prekey_id;
    let clock = |days: u64| {
        move || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            now + days * 24 * 60 * 60
        }
    };
    bob.manager().unwrap().set_clock(clock(8));
    bob.send_chat(&alice_jid, profile, "a week later")
        .await
        .unwrap();
    for (c, rx) in [(&a1, &mut a1_in), (&a2, &mut a2_in)] {
        assert_eq!(next_text(c, rx).await.body.as_deref(), Some("a week later"));
    }
    let rotated = bob_bundle(&a1).await;
    assert_eq!(rotated.verify(), Ok(()));
    assert_eq!(
        rotated.signed_prekey_id,
        spk_before + 1,
        "{kind:?} {profile:?}"
    );
    bob.manager().unwrap().set_clock(clock(16));
    assert!(bob.rotate_signed_prekey_if_due().await.unwrap());
    assert_eq!(bob_bundle(&a1).await.signed_prekey_id, spk_before + 2);
    a1.send_chat(&bob_jid, profile, "still here").await.unwrap();
    assert_eq!(
        next_text(&bob, &mut bob_in).await.body.as_deref(),
        Some("still here")
    );
    drain(&bob, &mut bob_in).await;

    // Fingerprints agree across the wire.
    let bob_addr = xmpp_e2ee::omemo::DeviceAddress::new(profile, "bob@localhost", bob_id);
    assert_eq!(
        a1.manager().unwrap().fingerprint_of(&bob_addr).unwrap(),
        Some(bob.manager().unwrap().own_fingerprint())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_omemo2_conversation() {
    conversation(ServerKind::Prosody, Profile::Omemo2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_legacy_conversation() {
    conversation(ServerKind::Prosody, Profile::Legacy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_omemo2_conversation() {
    conversation(ServerKind::Ejabberd, Profile::Omemo2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_legacy_conversation() {
    conversation(ServerKind::Ejabberd, Profile::Legacy).await;
}
