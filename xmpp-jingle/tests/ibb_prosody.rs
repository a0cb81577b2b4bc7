//! File transfer end to end through Prosody: two SDK clients, a file offered by Jingle (XEP-0234) and
//! carried by in-band bytestreams (XEP-0261/0047), hashes checked; then an interrupted transfer resumed
//! with a range.
//!
//! `JINGLE_IBB_BYTES` sets the file size (default 1 MiB) to measure larger transfers by hand. The sizes are
//! small because every IQ round trip through `XmppClient` costs ~45 ms on loopback (see the crate README).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::AsyncWrite;
use xmpp_jingle::driver::{DriverConfig, JingleClient, TransportPolicy, IQ_NAMESPACES};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::{HashCheck, StreamHasher};
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

async fn start() -> Server {
    tokio::task::spawn_blocking(|| {
        let server = Server::start(ServerKind::Prosody, &[("alice", PW), ("bob", PW)])
            .unwrap_or_else(|e| panic!("Prosody did not start: {e}"));
        server
    })
    .await
    .unwrap()
}

async fn client(server: &Server, user: &str) -> JingleClient<XmppClient> {
    let jid = format!("{user}@{}/jingle", server.domain());
    let conn = XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{jid} could not log in: {e}\n{}", server.log_tail(30)));
    for ns in IQ_NAMESPACES {
        conn.handle_iq_namespace(ns);
    }
    let cfg = DriverConfig {
        transports: TransportPolicy::IbbOnly,
        ..DriverConfig::default()
    };
    JingleClient::new(conn, cfg)
}

fn data(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> Vec<xmpp_jingle::hashes::Hash> {
    let mut h = StreamHasher::new();
    h.update(bytes);
    h.finish()
}

/// A writer that fails after `limit` bytes, as a full disk or a dropped connection would.
struct FailAfter {
    buf: Vec<u8>,
    limit: usize,
}

impl AsyncWrite for FailAfter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.buf.len() + b.len() > self.limit {
            return Poll::Ready(Err(std::io::Error::other("disk full")));
        }
        self.buf.extend_from_slice(b);
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_by_ibb_through_prosody_and_resume() {
    let server = start().await;
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
    let receiver = tokio::spawn({
        let bob = bob.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let mut w = FailAfter {
                buf: Vec::new(),
                limit: cut,
            };
            let r = offer.accept(&mut w).await;
            (r, w.buf)
        }
    });
    let first = alice
        .send_file(
            bob_jid.clone(),
            File::named("resume.bin", small.len() as u64),
            &mut Cursor::new(small.clone()),
        )
        .await;
    assert!(first.is_err(), "the interrupted send reported success");
    let (r, partial) = receiver.await.unwrap();
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    assert!(!partial.is_empty() && partial.len() <= cut);
    assert_eq!(partial[..], small[..partial.len()]);

    let offset = partial.len() as u64;
    let receiver = tokio::spawn({
        let bob = bob.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let mut prefix = StreamHasher::new();
            prefix.update(&partial);
            let mut rest = Vec::new();
            let outcome = offer.accept_from(&mut rest, offset, prefix).await.unwrap();
            let mut whole = partial;
            whole.extend_from_slice(&rest);
            (outcome, whole)
        }
    });
    let sent = alice
        .send_file(
            bob_jid.clone(),
            File::named("resume.bin", small.len() as u64),
            &mut Cursor::new(small.clone()),
        )
        .await
        .unwrap();
    let (outcome, whole) = receiver.await.unwrap();
    assert_eq!(sent.offset, offset);
    assert_eq!(sent.bytes_sent, small.len() as u64 - offset);
    assert_eq!(outcome.bytes_received, small.len() as u64 - offset);
    assert_eq!(outcome.check, HashCheck::Verified("sha-256".into()));
    assert!(whole == small, "resumed file differs");

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
