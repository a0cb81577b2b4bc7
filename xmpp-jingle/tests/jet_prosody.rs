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

use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xmpp_e2ee::omemo::{MemoryStore, OmemoClient, OmemoConfig, Profile, TrustLevel};
use xmpp_jingle::driver::{
    DriverConfig, JingleClient, SendOptions, TransportMethod, FEATURES, IQ_NAMESPACES,
};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::HashCheck;
use xmpp_jingle::jet::{self, JetCipher, JetKey, Sealed, NS_JET, NS_JET_OMEMO};
use xmpp_jingle::jingle::ReasonCondition;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

type Omemo = OmemoClient<XmppClient, MemoryStore>;

struct Peer {
    jingle: JingleClient<XmppClient>,
    omemo: Omemo,
}

fn large_size() -> u64 {
    let mib = std::env::var("JINGLE_JET_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(200);
    mib * 1024 * 1024 + 4_321
}

async fn start() -> Server {
    tokio::task::spawn_blocking(|| {
        xmpp_testkit::ensure_installed(ServerKind::Prosody).unwrap();
        Server::start(ServerKind::Prosody, &[("alice", PW), ("bob", PW)])
            .unwrap_or_else(|e| panic!("Prosody did not start: {e}"))
    })
    .await
    .unwrap()
}

async fn peer(server: &Server, user: &str) -> Peer {
    let jid = format!("{user}@{}/jet", server.domain());
    let conn = XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{jid} could not log in: {e}\n{}", server.log_tail(30)));
    for ns in IQ_NAMESPACES {
        conn.handle_iq_namespace(ns);
    }
    let omemo = OmemoClient::new(conn.clone(), MemoryStore::new(), OmemoConfig::default()).unwrap();
    omemo.publish().await.unwrap();
    Peer {
        jingle: JingleClient::new(conn, DriverConfig::default()),
        omemo,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes `len` deterministic pseudo-random bytes to `path`, 1 MiB at a time; returns the sha-256.
async fn make_file(path: &Path, len: u64) -> String {
    let mut f = tokio::io::BufWriter::new(tokio::fs::File::create(path).await.unwrap());
    let mut h = Sha256::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut left = len;
    let mut chunk = Vec::with_capacity(1 << 20);
    while left > 0 {
        chunk.clear();
        let n = left.min(1 << 20) as usize;
        while chunk.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let take = (n - chunk.len()).min(8);
            chunk.extend_from_slice(&x.to_le_bytes()[..take]);
        }
        h.update(&chunk);
        f.write_all(&chunk).await.unwrap();
        left -= n as u64;
    }
    f.flush().await.unwrap();
    hex(&h.finalize())
}

async fn sha256_of(path: &Path) -> (String, u64) {
    let mut f = tokio::fs::File::open(path).await.unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    (hex(&h.finalize()), n)
}

/// Alice seals a key for Bob in `profile` and sends the file at `src`; Bob opens the `<security/>`,
/// accepts into `dst`, and the received file must hash to `want`. Returns the transport used.
#[allow(clippy::too_many_arguments)]
async fn encrypted_transfer(
    alice: &Peer,
    bob: &Peer,
    profile: Profile,
    src: &Path,
    len: u64,
    want: &str,
    dst: &Path,
    label: &str,
) -> TransportMethod {
    let bob_jid = bob.jingle.connection().jid();
    let receiving = tokio::spawn({
        let jingle = bob.jingle.clone();
        let omemo = bob.omemo.clone();
        let dst = dst.to_owned();
        async move {
            let mut offer = jingle.next_offer().await.unwrap();
            let security = offer.security().expect("an encrypted offer").unwrap();
            assert_eq!(security.profile().unwrap(), profile);
            assert_eq!(security.cipher().unwrap(), JetCipher::Aes128Gcm);
            // Written as Conversations and Dino expect it.
            assert_eq!(security.cipher, "urn:xmpp:ciphers:aes-128-gcm-nopadding");
            let opened = offer.open_jet(&omemo).await.unwrap().unwrap();
            assert_eq!(opened.profile, profile);
            assert_eq!(opened.trust, TrustLevel::BlindTrusted);
            let mut out = tokio::fs::File::create(&dst).await.unwrap();
            let got = offer.accept(&mut out).await.unwrap();
            out.flush().await.unwrap();
            got
        }
    });
    let started = Instant::now();
    let sealed = jet::seal(
        &alice.omemo,
        profile,
        &bob_jid.to_bare(),
        Some(jet::FILE_CONTENT_NAME),
    )
    .await
    .unwrap();
    assert_eq!(sealed.recipients.len(), 1);
    let mut reader = tokio::fs::File::open(src).await.unwrap();
    let sent = alice
        .jingle
        .send_file_with(
            bob_jid,
            File::named("secret.bin", len),
            &mut reader,
            SendOptions::default().with_jet(&sealed),
        )
        .await
        .unwrap();
    let got = receiving.await.unwrap();
    let took = started.elapsed();
    println!(
        "{label}: {:.1} MiB with JET ({profile:?}) over {:?} in {:.2} s: {:.1} MiB/s",
        len as f64 / 1048576.0,
        sent.transport,
        took.as_secs_f64(),
        len as f64 / 1048576.0 / took.as_secs_f64().max(1e-9)
    );
    assert_eq!(sent.transport, got.transport);
    assert_eq!(sent.bytes_sent, len);
    assert_eq!(sent.wire_bytes, len + 16);
    assert_eq!(got.bytes_received, len);
    assert_eq!(got.wire_bytes, len + 16);
    assert_eq!(got.check, HashCheck::Verified("sha-256".into()));
    let (hash, n) = sha256_of(dst).await;
    assert_eq!(n, len);
    assert_eq!(hash, want, "{label}: the received file differs");
    tokio::fs::remove_file(dst).await.unwrap();
    sent.transport
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jet_omemo_file_transfers_both_namespaces() {
    assert!(FEATURES.contains(&NS_JET) && FEATURES.contains(&NS_JET_OMEMO));
    let dir = tempfile::tempdir().unwrap();
    let server = start().await;
    let alice = peer(&server, "alice").await;
    let bob = peer(&server, "bob").await;
    let dst = dir.path().join("received.bin");

    // A small file in each namespace.
    let small = dir.path().join("small.bin");
    let small_len = 300_007;
    let small_hash = make_file(&small, small_len).await;
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
    let len = large_size();
    let want = make_file(&large, len).await;
    for profile in [Profile::Legacy, Profile::Omemo2] {
        let t = encrypted_transfer(&alice, &bob, profile, &large, len, &want, &dst, "large").await;
        assert_eq!(t, TransportMethod::Socks5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jet_file_request_both_namespaces() {
    let server = start().await;
    let alice = peer(&server, "alice").await;
    let bob = peer(&server, "bob").await;
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
