//! JET (XEP-0391, OMEMO key transport) on every file-transfer path, through a real Prosody, in both
//! OMEMO namespaces (legacy `eu.siacs.conversations.axolotl` and `urn:xmpp:omemo:2`), streamed from and
//! to temporary files:
//!
//! - (a) 200 MiB by SOCKS5 through Prosody's proxy: the sender's direct candidate is a closed port and
//!   the receiver offers none, so only the proxy works;
//! - (c) 200 MiB the receiver drops at about half, then resumed with a range: the resume is a new
//!   Jingle session with its own `<security/>` and a new key, and its encrypted stream carries the
//!   requested range only (AES-GCM over those bytes, the tag at the end: `len - offset + 16` bytes);
//! - (b) in-band bytestreams after a forced SOCKS5 failure (the initiator replaces the transport), on
//!   an epoll Prosody with 65535-byte blocks: 200 MiB in each namespace (IBB moves ~3-4 MiB/s in a
//!   debug build: about a minute each).
//!
//! Every received file is checked by the receiver (sha-256 of the plaintext against the sender's
//! `<checksum/>`) and hashed again here. Throughput is printed, never asserted.
//!
//! `JET_PATHS_MIB` changes the SOCKS5 size (default 200), `JET_PATHS_IBB_MIB` the legacy IBB size
//! (default 200) and `JET_PATHS_IBB2_MIB` the OMEMO:2 IBB size (default 200).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod support;

use std::path::Path;
use std::time::Instant;

use support::{encrypted_transfer, mib_s, peer, seal_file_key, send_sealed, DropAfter, Peer};
use tokio::io::AsyncWriteExt;
use xmpp_e2ee::omemo::Profile;
use xmpp_jingle::driver::TransportMethod;
use xmpp_jingle::hashes::HashCheck;
use xmpp_jingle::jet;
use xmpp_jingle::Error;
use xmpp_social::Connection;
use xmpp_testkit::ProsodyNetwork;

/// Bob drops an encrypted transfer at about half; Alice then offers the file again with a new key and
/// Bob accepts it from what he kept (a range): only the rest travels, encrypted on its own.
async fn dropped_and_resumed(
    alice: &Peer,
    bob: &Peer,
    profile: Profile,
    src: &Path,
    len: u64,
    want: &str,
    dst: &Path,
) {
    let bob_jid = bob.jingle.connection().jid();
    let cut = len / 2;

    // The first attempt: Bob's file writer fails after `cut` plaintext bytes.
    let receiving = tokio::spawn({
        let jingle = bob.jingle.clone();
        let omemo = bob.omemo.clone();
        let dst = dst.to_owned();
        async move {
            let mut offer = jingle.next_offer().await.unwrap();
            offer.open_jet(&omemo).await.unwrap().unwrap();
            let mut out = DropAfter::create(&dst, cut).await;
            let r = offer.accept(&mut out).await;
            out.inner.flush().await.unwrap();
            r
        }
    });
    let sealed = seal_file_key(alice, &bob_jid, profile).await;
    let first = send_sealed(alice, bob_jid.clone(), src, len, &sealed).await;
    assert!(
        first.is_err(),
        "{profile:?}: the interrupted send reported success"
    );
    let r = receiving.await.unwrap();
    assert!(matches!(r, Err(Error::Io(_))), "{profile:?}: {r:?}");
    assert!(!jet::is_tag_failure(r.as_ref().unwrap_err()));
    let kept = tokio::fs::metadata(dst).await.unwrap().len();
    assert_eq!(kept, cut);

    // The resume: a new session, a new <security/> and key; Bob asks for the rest.
    let receiving = tokio::spawn({
        let jingle = bob.jingle.clone();
        let omemo = bob.omemo.clone();
        let dst = dst.to_owned();
        async move {
            let mut offer = jingle.next_offer().await.unwrap();
            let opened = offer.open_jet(&omemo).await.unwrap().unwrap();
            assert_eq!(opened.profile, profile);
            // Hash what is kept (the plaintext written before the drop), then append the rest.
            let (prefix, mut out) = support::resume_writer(&dst).await;
            let got = offer
                .accept_from(&mut out, prefix.bytes(), prefix)
                .await
                .unwrap();
            out.flush().await.unwrap();
            got
        }
    });
    let started = Instant::now();
    let resealed = seal_file_key(alice, &bob_jid, profile).await;
    assert_ne!(
        resealed.security, sealed.security,
        "the resume carries its own <security/>"
    );
    let sent = send_sealed(alice, bob_jid, src, len, &resealed)
        .await
        .unwrap();
    let got = receiving.await.unwrap();
    let took = started.elapsed();
    println!(
        "resume: {:.1} MiB from offset {} with JET ({profile:?}) over {:?} in {:.1} s: {:.2} MiB/s",
        (len - cut) as f64 / 1048576.0,
        sent.offset,
        sent.transport,
        took.as_secs_f64(),
        mib_s(len - cut, took)
    );
    assert_eq!(sent.offset, cut);
    assert_eq!(sent.bytes_sent, len - cut);
    // AES-GCM over the requested range only, the tag at its end.
    assert_eq!(sent.wire_bytes, len - cut + 16);
    assert_eq!(got.bytes_received, len - cut);
    assert_eq!(got.wire_bytes, len - cut + 16);
    assert_eq!(sent.transport, got.transport);
    assert_eq!(got.check, HashCheck::Verified("sha-256".into()));
    let (hash, n) = support::sha256_of(dst).await;
    assert_eq!(n, len);
    assert_eq!(hash, want, "{profile:?}: the resumed file differs");
    tokio::fs::remove_file(dst).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jet_through_the_proxy_and_resumed_both_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let len = support::mib_env("JET_PATHS_MIB", 200, 4_321);
    let src = dir.path().join("source.bin");
    let want = support::make_file(&src, len, 0x2545_f491_4f6c_dd1d).await;
    let dst = dir.path().join("received.bin");
    let server = support::start(ProsodyNetwork::Select).await;
    // Alice's direct candidate is a closed port and Bob offers none: only Prosody's proxy works.
    let alice = peer(
        &server,
        "alice",
        "jet-paths",
        support::unreachable(true, 4096),
    )
    .await;
    let bob = peer(&server, "bob", "jet-paths", support::no_candidates(4096)).await;
    for profile in [Profile::Legacy, Profile::Omemo2] {
        let t = encrypted_transfer(&alice, &bob, profile, &src, len, &want, &dst, "proxy").await;
        assert_eq!(t, TransportMethod::Socks5);
        dropped_and_resumed(&alice, &bob, profile, &src, len, &want, &dst).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jet_ibb_after_a_failed_socks5_negotiation_both_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("received.bin");
    // Epoll with TCP_NODELAY for fast IQ round trips (no proxy there).
    let server = support::start(ProsodyNetwork::Epoll).await;
    // Neither side can use a candidate: Alice replaces the transport with IBB, 65535-byte blocks.
    let alice = peer(
        &server,
        "alice",
        "jet-paths",
        support::unreachable(false, 65535),
    )
    .await;
    let bob = peer(&server, "bob", "jet-paths", support::no_candidates(65535)).await;
    for (profile, len) in [
        (
            Profile::Legacy,
            support::mib_env("JET_PATHS_IBB_MIB", 200, 7_777),
        ),
        (
            Profile::Omemo2,
            support::mib_env("JET_PATHS_IBB2_MIB", 200, 7_777),
        ),
    ] {
        let src = dir.path().join("source.bin");
        let want = support::make_file(&src, len, 0x9e37_79b9_7f4a_7c15).await;
        let t = encrypted_transfer(&alice, &bob, profile, &src, len, &want, &dst, "IBB").await;
        assert_eq!(t, TransportMethod::Ibb);
    }
}
