//! File transfer end to end through Prosody: two SDK clients, a file offered by Jingle (XEP-0234) and
//! carried by in-band bytestreams (XEP-0261/0047), hashes checked; then an interrupted transfer resumed
//! with a range.
//!
//! `JINGLE_IBB_BYTES` sets the file size (default 1 MiB) to measure larger transfers by hand. The sizes are
//! small because every IQ round trip through `XmppClient` costs ~45 ms on loopback (see the crate README).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod support;

use std::io::Cursor;
use std::time::Instant;

use xmpp_jingle::driver::{DriverConfig, JingleClient, TransportPolicy};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::{HashCheck, StreamHasher};
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{ProsodyNetwork, Server};

/// A client taking only in-band bytestreams.
async fn client(server: &Server, user: &str) -> JingleClient<XmppClient> {
    let cfg = DriverConfig {
        transports: TransportPolicy::IbbOnly,
        ..DriverConfig::default()
    };
    support::client(server, user, "jingle", cfg).await
}

/// `len` pseudo-random bytes.
fn data(len: usize) -> Vec<u8> {
    support::data(len, 0x9e37_79b9_7f4a_7c15, 0)
}

fn sha256(bytes: &[u8]) -> Vec<xmpp_jingle::hashes::Hash> {
    let mut h = StreamHasher::new();
    h.update(bytes);
    h.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_by_ibb_through_prosody_and_resume() {
    let server = support::start(ProsodyNetwork::Select).await;
    let alice = client(&server, "alice").await;
    let bob = client(&server, "bob").await;
    let bob_jid = bob.connection().jid();

    let size: usize = std::env::var("JINGLE_IBB_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024 * 1024);
    let content = data(size);
    let expected = sha256(&content);

    // 1. A whole file.
    let receiver = tokio::spawn({
        let bob = bob.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let file = offer.file().cloned().unwrap();
            let mut out = Vec::new();
            let outcome = offer.accept(&mut out).await.unwrap();
            (file, out, outcome)
        }
    });
    let started = Instant::now();
    let mut reader = Cursor::new(content.clone());
    let mut offer = File::named("random.bin", size as u64);
    offer.media_type = Some("application/octet-stream".into());
    let sent = alice
        .send_file(bob_jid.clone(), offer, &mut reader)
        .await
        .unwrap_or_else(|e| panic!("send failed: {e}\n{}", server.log_tail(30)));
    let (file, out, outcome) = receiver.await.unwrap();
    let elapsed = started.elapsed();
    println!(
        "IBB through Prosody: {} bytes in {:.2} s ({:.2} MiB/s)",
        size,
        elapsed.as_secs_f64(),
        size as f64 / 1048576.0 / elapsed.as_secs_f64()
    );
    assert_eq!(file.name.as_deref(), Some("random.bin"));
    assert_eq!(file.size, Some(size as u64));
    assert_eq!(sent.bytes_sent, size as u64);
    assert_eq!(sent.hashes, expected);
    assert_eq!(outcome.bytes_received, size as u64);
    assert_eq!(outcome.check, HashCheck::Verified("sha-256".into()));
    assert!(out == content, "received bytes differ");

    // 2. Interrupted after ~200 KiB (the receiver's disk "fills up"), then resumed with a range.
    let small = data(600 * 1024 + 123);
    let cut = 200 * 1024 + 7;
    support::interrupted_and_resumed(&alice, &bob, &small, cut, "resume.bin").await;

    // 3. A file request (pull): bob asks alice for a file by its hash; alice serves it.
    let wanted = data(100 * 1024 + 5);
    let alice_jid = alice.connection().jid();
    let holder = tokio::spawn({
        let alice = alice.clone();
        let wanted = wanted.clone();
        async move {
            let offer = alice.next_offer().await.unwrap();
            assert!(offer.is_request());
            let asked = offer.file().cloned().unwrap();
            assert_eq!(asked.hashes, sha256(&wanted)[..1].to_vec());
            let mut described = File::named("wanted.bin", wanted.len() as u64);
            described.hashes = asked.hashes.clone();
            offer
                .serve(described, &mut Cursor::new(wanted))
                .await
                .unwrap()
        }
    });
    let request = File {
        hashes: sha256(&wanted)[..1].to_vec(),
        ..File::default()
    };
    let mut got = Vec::new();
    let outcome = bob
        .request_file(alice_jid, request, &mut got)
        .await
        .unwrap();
    let served = holder.await.unwrap();
    assert_eq!(served.bytes_sent, wanted.len() as u64);
    assert_eq!(outcome.bytes_received, wanted.len() as u64);
    assert_eq!(outcome.check, HashCheck::Verified("sha-256".into()));
    assert!(got == wanted, "requested file differs");
}
