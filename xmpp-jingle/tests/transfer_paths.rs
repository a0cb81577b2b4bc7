//! The transport paths of the file-transfer driver through a real Prosody, with small files: SOCKS5
//! direct (offer and request), SOCKS5 through Prosody's proxy (direct candidates made unusable by
//! configuration), the fall back to IBB by transport-replace when no candidate works (and when the
//! responder only wants IBB), SOCKS5-only refusing to fall back, and a resume over SOCKS5.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod support;

use std::io::Cursor;
use std::time::Instant;

use support::{mib_s, no_candidates, unreachable};
use xmpp_jingle::driver::{DriverConfig, JingleClient, TransportMethod, TransportPolicy};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::HashCheck;
use xmpp_jingle::ibb::DEFAULT_BLOCK_SIZE;
use xmpp_jingle::jingle::ReasonCondition;
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{ProsodyNetwork, Server};

async fn start() -> Server {
    support::start(ProsodyNetwork::Select).await
}

async fn client(server: &Server, user: &str, cfg: DriverConfig) -> JingleClient<XmppClient> {
    support::client(server, user, "jingle", cfg).await
}

/// `len` pseudo-random bytes.
fn data(len: usize) -> Vec<u8> {
    support::data(len, 0x2545_f491_4f6c_dd1d, 24)
}

/// alice offers `len` bytes to bob; returns both transports.
async fn offer(
    alice: &JingleClient<XmppClient>,
    bob: &JingleClient<XmppClient>,
    len: usize,
    label: &str,
) -> (TransportMethod, TransportMethod) {
    let payload = data(len);
    let receiving = tokio::spawn({
        let bob = bob.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let mut out = Vec::new();
            let outcome = offer.accept(&mut out).await.unwrap();
            (outcome, out)
        }
    });
    let started = Instant::now();
    let sent = alice
        .send_file(
            bob.connection().jid(),
            File::named("paths.bin", len as u64),
            &mut Cursor::new(payload.clone()),
        )
        .await
        .unwrap();
    let (got, out) = receiving.await.unwrap();
    println!(
        "{label}: {len} bytes over {:?} at {:.2} MiB/s",
        sent.transport,
        mib_s(len as u64, started.elapsed())
    );
    assert_eq!(got.check, HashCheck::Verified("sha-256".into()));
    assert_eq!(got.bytes_received, len as u64);
    assert_eq!(got.wire_bytes, len as u64);
    assert_eq!(sent.bytes_sent, len as u64);
    assert!(out == payload, "{label}: the bytes differ");
    (sent.transport, got.transport)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_direct_offer_and_request() {
    let server = start().await;
    let alice = client(&server, "alice", DriverConfig::default()).await;
    let bob = client(&server, "bob", DriverConfig::default()).await;
    let t = offer(&alice, &bob, 2 * 1024 * 1024 + 7, "SOCKS5 direct").await;
    assert_eq!(t, (TransportMethod::Socks5, TransportMethod::Socks5));

    // Pull: bob requests a file alice holds.
    let wanted = data(300 * 1024 + 1);
    let holder = tokio::spawn({
        let alice = alice.clone();
        let wanted = wanted.clone();
        async move {
            let offer = alice.next_offer().await.unwrap();
            assert!(offer.is_request());
            offer
                .serve(
                    File::named("wanted.bin", wanted.len() as u64),
                    &mut Cursor::new(wanted),
                )
                .await
                .unwrap()
        }
    });
    let mut got = Vec::new();
    let outcome = bob
        .request_file(
            alice.connection().jid(),
            File::named("wanted.bin", 0),
            &mut got,
        )
        .await
        .unwrap();
    let served = holder.await.unwrap();
    assert_eq!(served.transport, TransportMethod::Socks5);
    assert_eq!(outcome.transport, TransportMethod::Socks5);
    assert_eq!(outcome.check, HashCheck::Verified("sha-256".into()));
    assert!(got == wanted, "the requested file differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_through_the_servers_proxy() {
    let server = start().await;
    // alice's direct candidate is unreachable, bob offers none: only alice's proxy candidate works.
    let alice = client(&server, "alice", unreachable(true, DEFAULT_BLOCK_SIZE)).await;
    let bob = client(&server, "bob", no_candidates(DEFAULT_BLOCK_SIZE)).await;
    let t = offer(&alice, &bob, 1024 * 1024 + 3, "SOCKS5 proxy").await;
    assert_eq!(t, (TransportMethod::Socks5, TransportMethod::Socks5));
    // The other way round: bob initiates, alice's proxy is the responder's candidate.
    let t = offer(&bob, &alice, 512 * 1024, "SOCKS5 proxy (responder's)").await;
    assert_eq!(t, (TransportMethod::Socks5, TransportMethod::Socks5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_socks5_falls_back_to_ibb() {
    let server = start().await;
    let alice = client(&server, "alice", unreachable(false, DEFAULT_BLOCK_SIZE)).await;
    let bob = client(&server, "bob", no_candidates(DEFAULT_BLOCK_SIZE)).await;
    // Both report candidate-error: alice replaces the transport with IBB, bob accepts.
    let t = offer(&alice, &bob, 200 * 1024 + 9, "IBB after transport-replace").await;
    assert_eq!(t, (TransportMethod::Ibb, TransportMethod::Ibb));

    // A responder that only wants IBB answers without candidates: the initiator falls back too.
    let ibb_only = support::client(
        &server,
        "bob",
        "ibb-only",
        DriverConfig {
            transports: TransportPolicy::IbbOnly,
            ..DriverConfig::default()
        },
    )
    .await;
    let t = offer(&alice, &ibb_only, 50 * 1024, "IBB-only responder").await;
    assert_eq!(t, (TransportMethod::Ibb, TransportMethod::Ibb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_only_does_not_fall_back() {
    let server = start().await;
    let mut cfg = unreachable(false, DEFAULT_BLOCK_SIZE);
    cfg.transports = TransportPolicy::Socks5Only;
    let alice = client(&server, "alice", cfg).await;
    let bob = client(&server, "bob", no_candidates(DEFAULT_BLOCK_SIZE)).await;
    let receiving = tokio::spawn({
        let bob = bob.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            offer.accept(&mut Vec::new()).await
        }
    });
    let sent = alice
        .send_file(
            bob.connection().jid(),
            File::named("never.bin", 10),
            &mut Cursor::new(vec![0u8; 10]),
        )
        .await;
    assert!(sent.is_err(), "{sent:?}");
    let got = receiving.await.unwrap();
    match got {
        Err(Error::Terminated(Some(r))) => {
            assert_eq!(r.condition, ReasonCondition::ConnectivityError)
        }
        other => panic!("expected connectivity-error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_socks5_transfer_resumes_with_a_range() {
    let server = start().await;
    let alice = client(&server, "alice", DriverConfig::default()).await;
    let bob = client(&server, "bob", DriverConfig::default()).await;
    let file = data(3 * 1024 * 1024 + 11);
    let cut = file.len() / 2;
    let r = support::interrupted_and_resumed(&alice, &bob, &file, cut, "resume.bin").await;
    assert_eq!(r.kept, cut);
    assert_eq!(r.sent.transport, TransportMethod::Socks5);
}
