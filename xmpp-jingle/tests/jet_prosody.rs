//! JET (XEP-0391) with OMEMO key transport (XEP-0396) through a real Prosody: two accounts with
//! OMEMO clients send files by Jingle, encrypted, in both OMEMO namespaces: a small file, then a
//! 200 MiB file over the driver's default transport (SOCKS5), streamed from and to temporary files;
//! then a transfer whose stream does not match the key in its `<security/>` is refused by the tag,
//! and an encrypted file request (the requester seals the key, the holder serves encrypted).
//! The receiver checks sha-256 against the sender's `<checksum/>`, and the test hashes the received
//! file again. Throughput is printed, never asserted.
//!
//! `JINGLE_JET_MIB` changes the large size (default 200) for measurements by hand.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod support;

use support::{encrypted_transfer, peer};
use xmpp_e2ee::omemo::Profile;
use xmpp_jingle::driver::{DriverConfig, SendOptions, TransportMethod, FEATURES};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::HashCheck;
use xmpp_jingle::jet::{self, JetCipher, JetKey, Sealed, NS_JET, NS_JET_OMEMO};
use xmpp_jingle::jingle::ReasonCondition;
use xmpp_social::Connection;
use xmpp_testkit::ProsodyNetwork;

/// The seed of the files' pseudo-random bytes.
const SEED: u64 = 0x2545_f491_4f6c_dd1d;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jet_omemo_file_transfers_both_namespaces() {
    assert!(FEATURES.contains(&NS_JET) && FEATURES.contains(&NS_JET_OMEMO));
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(ProsodyNetwork::Select).await;
    let alice = peer(&server, "alice", "jet", DriverConfig::default()).await;
    let bob = peer(&server, "bob", "jet", DriverConfig::default()).await;
    let dst = dir.path().join("received.bin");

    // A small file in each namespace.
    let small = dir.path().join("small.bin");
    let small_len = 300_007;
    let small_hash = support::make_file(&small, small_len, SEED).await;
    for profile in [Profile::Legacy, Profile::Omemo2] {
        encrypted_transfer(
            &alice,
            &bob,
            profile,
            &small,
            small_len,
            &small_hash,
            &dst,
            "small",
        )
        .await;
    }

    // A transfer whose bytes do not match the key in its <security/>: the tag refuses it.
    for profile in [Profile::Legacy, Profile::Omemo2] {
        let bob_jid = bob.jingle.connection().jid();
        let receiving = tokio::spawn({
            let jingle = bob.jingle.clone();
            let omemo = bob.omemo.clone();
            async move {
                let mut offer = jingle.next_offer().await.unwrap();
                offer.open_jet(&omemo).await.unwrap().unwrap();
                let mut out = Vec::new();
                let r = offer.accept(&mut out).await;
                (r, out.len())
            }
        });
        let real = jet::seal(&alice.omemo, profile, &bob_jid.to_bare(), Some("file"))
            .await
            .unwrap();
        let forged = Sealed {
            key: JetKey::generate(JetCipher::Aes128Gcm),
            ..real
        };
        let mut reader = tokio::fs::File::open(&small).await.unwrap();
        let sent = alice
            .jingle
            .send_file_with(
                bob_jid,
                File::named("forged.bin", small_len),
                &mut reader,
                SendOptions::default().with_jet(&forged),
            )
            .await;
        let (received, written) = receiving.await.unwrap();
        let err = received.expect_err("a transfer with a wrong tag must fail");
        assert!(jet::is_tag_failure(&err), "{profile:?}: {err:?}");
        // The sender hears why.
        match &sent {
            Err(xmpp_jingle::Error::Terminated(Some(reason))) => {
                assert_eq!(reason.condition, ReasonCondition::SecurityError)
            }
            other => panic!("{profile:?}: the sender should see security-error: {other:?}"),
        }
        println!(
            "forged ({profile:?}): receiver refused ({err}) after writing {written} provisional bytes; sender: {:?}",
            sent.as_ref().map(|s| s.bytes_sent)
        );
    }

    // 200 MiB in each namespace over the default transport.
    let large = dir.path().join("large.bin");
    let len = support::mib_env("JINGLE_JET_MIB", 200, 4_321);
    let want = support::make_file(&large, len, SEED).await;
    for profile in [Profile::Legacy, Profile::Omemo2] {
        let t = encrypted_transfer(&alice, &bob, profile, &large, len, &want, &dst, "large").await;
        assert_eq!(t, TransportMethod::Socks5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jet_file_request_both_namespaces() {
    let server = support::start(ProsodyNetwork::Select).await;
    let alice = peer(&server, "alice", "jet", DriverConfig::default()).await;
    let bob = peer(&server, "bob", "jet", DriverConfig::default()).await;
    let wanted: Vec<u8> = (0..250_000u32).map(|i| (i % 251) as u8).collect();
    for profile in [Profile::Legacy, Profile::Omemo2] {
        let alice_jid = alice.jingle.connection().jid();
        // Alice holds the file; Bob asks for it with a key sealed for her.
        let holder = tokio::spawn({
            let jingle = alice.jingle.clone();
            let omemo = alice.omemo.clone();
            let wanted = wanted.clone();
            async move {
                let mut offer = jingle.next_offer().await.unwrap();
                assert!(offer.is_request());
                let opened = offer.open_jet(&omemo).await.unwrap().unwrap();
                assert_eq!(opened.profile, profile);
                offer
                    .serve(
                        File::named("wanted.bin", wanted.len() as u64),
                        &mut std::io::Cursor::new(wanted),
                    )
                    .await
                    .unwrap()
            }
        });
        let sealed = jet::seal(
            &bob.omemo,
            profile,
            &alice_jid.to_bare(),
            Some(jet::REQUEST_CONTENT_NAME),
        )
        .await
        .unwrap();
        let mut got = Vec::new();
        let outcome = bob
            .jingle
            .request_file_with(
                alice_jid,
                File::named("wanted.bin", 0),
                &mut got,
                SendOptions::default().with_jet(&sealed),
            )
            .await
            .unwrap();
        let served = holder.await.unwrap();
        assert_eq!(served.wire_bytes, wanted.len() as u64 + 16);
        assert_eq!(outcome.wire_bytes, wanted.len() as u64 + 16);
        assert_eq!(outcome.check, HashCheck::Verified("sha-256".into()));
        assert_eq!(got, wanted, "{profile:?}");
    }
}
