//! 200 MiB files between two SDK clients through a real Prosody, streamed from and to temporary files
//! (never held in memory): (a) SOCKS5 direct, (b) SOCKS5 through Prosody's proxy (direct candidates
//! made unusable by configuration), (c) in-band bytestreams after a forced SOCKS5 failure (the initiator
//! replaces the transport), on a Prosody with the epoll backend and TCP_NODELAY and 65535-byte blocks,
//! (d) a transfer the receiver drops at about half, resumed with a range. Every received file is
//! checked by the receiver (sha-256 against the sender's `<checksum/>`) and hashed again here.
//! Throughput is printed, never asserted.
//!
//! `JINGLE_LARGE_MIB` changes the SOCKS5 size (default 200), `JINGLE_LARGE_IBB_MIB` the IBB size
//! (default 200: IBB through Prosody moves ~4 MiB/s in debug builds, half of the CPU in Prosody) and `JINGLE_LARGE_BLOCK` the IBB block size
//! (default 65535) for measurements by hand.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod support;

use std::path::Path;
use std::time::Instant;

use support::{client, mib_s, no_candidates, sha256_of, unreachable, DropAfter};
use tokio::io::AsyncWriteExt;
use xmpp_jingle::driver::{DriverConfig, JingleClient, TransportMethod};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::HashCheck;
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::ProsodyNetwork;

/// The SOCKS5 file size: `JINGLE_LARGE_MIB` MiB (default 200) and a few bytes.
fn size() -> u64 {
    support::mib_env("JINGLE_LARGE_MIB", 200, 12_345)
}

/// The IBB file size: `JINGLE_LARGE_IBB_MIB` MiB (default 200) and a few bytes: about 50 s here
/// (~4 MiB/s with 65535-byte blocks in a debug build; Prosody's Lua takes half of the CPU).
fn ibb_size() -> u64 {
    support::mib_env("JINGLE_LARGE_IBB_MIB", 200, 12_345)
}

/// The IBB block size (`JINGLE_LARGE_BLOCK`, default 65535).
fn block_size() -> u16 {
    std::env::var("JINGLE_LARGE_BLOCK")
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(65535)
}

/// Writes `len` deterministic pseudo-random bytes to `source.bin` in `dir`; returns the path and
/// the sha-256.
async fn make_file(dir: &Path, len: u64) -> (std::path::PathBuf, String) {
    let path = dir.join("source.bin");
    let hash = support::make_file(&path, len, 0x9e37_79b9_7f4a_7c15).await;
    (path, hash)
}

/// alice sends the file at `src` to bob, who writes it to `dst`; checks both outcomes and the hash.
async fn transfer(
    alice: &JingleClient<XmppClient>,
    bob: &JingleClient<XmppClient>,
    src: &Path,
    want: &str,
    dst: &Path,
    label: &str,
    len: u64,
) -> TransportMethod {
    let receiving = tokio::spawn({
        let bob = bob.clone();
        let dst = dst.to_owned();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let mut out = tokio::fs::File::create(&dst).await.unwrap();
            offer.accept(&mut out).await.unwrap()
        }
    });
    let started = Instant::now();
    let mut reader = tokio::fs::File::open(src).await.unwrap();
    let sent = alice
        .send_file(
            bob.connection().jid(),
            File::named("large.bin", len),
            &mut reader,
        )
        .await
        .unwrap();
    let got = receiving.await.unwrap();
    let took = started.elapsed();
    println!(
        "{label}: {} MiB over {:?} in {:.1} s: {:.2} MiB/s",
        len >> 20,
        sent.transport,
        took.as_secs_f64(),
        mib_s(len, took)
    );
    assert_eq!(sent.transport, got.transport);
    assert_eq!(got.bytes_received, len);
    assert_eq!(got.check, HashCheck::Verified("sha-256".into()));
    let (hash, n) = sha256_of(dst).await;
    assert_eq!(n, len);
    assert_eq!(hash, want, "{label}: the received file differs");
    tokio::fs::remove_file(dst).await.unwrap();
    sent.transport
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_direct_proxied_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (src, want) = make_file(dir.path(), size()).await;
    let dst = dir.path().join("received.bin");
    let server = support::start(ProsodyNetwork::Select).await;

    // (a) Direct.
    let alice = client(&server, "alice", "large", DriverConfig::default()).await;
    let bob = client(&server, "bob", "large", DriverConfig::default()).await;
    let t = transfer(&alice, &bob, &src, &want, &dst, "SOCKS5 direct", size()).await;
    assert_eq!(t, TransportMethod::Socks5);

    // (d) The receiver drops at about half; the next offer is resumed from what it kept.
    let len = size();
    let cut = len / 2;
    let receiving = tokio::spawn({
        let bob = bob.clone();
        let dst = dst.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let mut out = DropAfter::create(&dst, cut).await;
            let r = offer.accept(&mut out).await;
            out.inner.flush().await.unwrap();
            r
        }
    });
    let first = alice
        .send_file(
            bob.connection().jid(),
            File::named("large.bin", len),
            &mut tokio::fs::File::open(&src).await.unwrap(),
        )
        .await;
    assert!(first.is_err(), "the interrupted send reported success");
    let r = receiving.await.unwrap();
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    let kept = tokio::fs::metadata(&dst).await.unwrap().len();
    assert_eq!(kept, cut);
    let receiving = tokio::spawn({
        let bob = bob.clone();
        let dst = dst.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            // Hash what is kept, then append the rest.
            let (prefix, mut out) = support::resume_writer(&dst).await;
            offer
                .accept_from(&mut out, prefix.bytes(), prefix)
                .await
                .unwrap()
        }
    });
    let started = Instant::now();
    let sent = alice
        .send_file(
            bob.connection().jid(),
            File::named("large.bin", len),
            &mut tokio::fs::File::open(&src).await.unwrap(),
        )
        .await
        .unwrap();
    let got = receiving.await.unwrap();
    println!(
        "resume: {} MiB from offset {} over {:?}: {:.2} MiB/s",
        (len - cut) >> 20,
        sent.offset,
        sent.transport,
        mib_s(len - cut, started.elapsed())
    );
    assert_eq!(sent.offset, cut);
    assert_eq!(sent.bytes_sent, len - cut);
    assert_eq!(got.bytes_received, len - cut);
    assert_eq!(got.check, HashCheck::Verified("sha-256".into()));
    let (hash, n) = sha256_of(&dst).await;
    assert_eq!(n, len);
    assert_eq!(hash, want, "the resumed file differs");
    tokio::fs::remove_file(&dst).await.unwrap();

    // (b) Through Prosody's proxy: alice's direct candidate is a closed port, bob offers none.
    drop((alice, bob));
    let alice = client(&server, "alice", "large", unreachable(true, 4096)).await;
    let bob = client(&server, "bob", "large", no_candidates(4096)).await;
    let t = transfer(
        &alice,
        &bob,
        &src,
        &want,
        &dst,
        "SOCKS5 through the proxy",
        size(),
    )
    .await;
    assert_eq!(t, TransportMethod::Socks5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ibb_after_a_failed_socks5_negotiation() {
    let dir = tempfile::tempdir().unwrap();
    let (src, want) = make_file(dir.path(), ibb_size()).await;
    let dst = dir.path().join("received.bin");
    // No proxy needed: epoll with TCP_NODELAY.
    let server = support::start(ProsodyNetwork::Epoll).await;
    // Neither side can use a candidate: alice replaces the transport with IBB, 65535-byte blocks.
    let alice = client(&server, "alice", "large", unreachable(false, block_size())).await;
    let bob = client(&server, "bob", "large", no_candidates(block_size())).await;
    let t = transfer(
        &alice,
        &bob,
        &src,
        &want,
        &dst,
        "IBB after transport-replace",
        ibb_size(),
    )
    .await;
    assert_eq!(t, TransportMethod::Ibb);
}
