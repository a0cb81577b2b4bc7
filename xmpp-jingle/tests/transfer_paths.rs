//! The transport paths of the file-transfer driver through a real Prosody, with small files: SOCKS5
//! direct (offer and request), SOCKS5 through Prosody's proxy (direct candidates made unusable by
//! configuration), the fall back to IBB by transport-replace when no candidate works (and when the
//! responder only wants IBB), SOCKS5-only refusing to fall back, and a resume over SOCKS5.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::AsyncWrite;
use xmpp_jingle::driver::{
    DriverConfig, JingleClient, Socks5Config, TransportMethod, TransportPolicy, IQ_NAMESPACES,
};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::{HashCheck, StreamHasher};
use xmpp_jingle::jingle::ReasonCondition;
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

async fn start() -> Server {
    tokio::task::spawn_blocking(|| {
        xmpp_testkit::ensure_installed(ServerKind::Prosody).unwrap();
        Server::start(ServerKind::Prosody, &[("alice", PW), ("bob", PW)])
            .unwrap_or_else(|e| panic!("Prosody did not start: {e}"))
    })
    .await
    .unwrap()
}

async fn client(server: &Server, user: &str, cfg: DriverConfig) -> JingleClient<XmppClient> {
    client_as(server, user, "jingle", cfg).await
}

async fn client_as(
    server: &Server,
    user: &str,
    resource: &str,
    cfg: DriverConfig,
) -> JingleClient<XmppClient> {
    let jid = format!("{user}@{}/{resource}", server.domain());
    let conn = XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{jid} could not log in: {e}\n{}", server.log_tail(30)));
    for ns in IQ_NAMESPACES {
        conn.handle_iq_namespace(ns);
    }
    JingleClient::new(conn, cfg)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A configuration whose direct candidate points at a closed port; `proxy`: offer Prosody's proxy.
fn unreachable(proxy: bool) -> DriverConfig {
    DriverConfig {
        socks5: Socks5Config {
            advertise_port: Some(closed_port()),
            use_proxy: proxy,
            connect_timeout: Duration::from_secs(3),
            ..Socks5Config::default()
        },
        ..DriverConfig::default()
    }
}

/// A configuration offering no candidate at all.
fn no_candidates() -> DriverConfig {
    DriverConfig {
        socks5: Socks5Config {
            listen: None,
            use_proxy: false,
            connect_timeout: Duration::from_secs(3),
            ..Socks5Config::default()
        },
        ..DriverConfig::default()
    }
}

fn data(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64().max(1e-9)
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
        mib_s(len, started.elapsed())
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
    let alice = client(&server, "alice", unreachable(true)).await;
    let bob = client(&server, "bob", no_candidates()).await;
    let t = offer(&alice, &bob, 1024 * 1024 + 3, "SOCKS5 proxy").await;
    assert_eq!(t, (TransportMethod::Socks5, TransportMethod::Socks5));
    // The other way round: bob initiates, alice's proxy is the responder's candidate.
    let t = offer(&bob, &alice, 512 * 1024, "SOCKS5 proxy (responder's)").await;
    assert_eq!(t, (TransportMethod::Socks5, TransportMethod::Socks5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_socks5_falls_back_to_ibb() {
    let server = start().await;
    let alice = client(&server, "alice", unreachable(false)).await;
    let bob = client(&server, "bob", no_candidates()).await;
    // Both report candidate-error: alice replaces the transport with IBB, bob accepts.
    let t = offer(&alice, &bob, 200 * 1024 + 9, "IBB after transport-replace").await;
    assert_eq!(t, (TransportMethod::Ibb, TransportMethod::Ibb));

    // A responder that only wants IBB answers without candidates: the initiator falls back too.
    let ibb_only = client_as(
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
    let mut cfg = unreachable(false);
    cfg.transports = TransportPolicy::Socks5Only;
    let alice = client(&server, "alice", cfg).await;
    let bob = client(&server, "bob", no_candidates()).await;
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
        let room = self.limit - self.buf.len();
        if room == 0 {
            return Poll::Ready(Err(std::io::Error::other("disk full")));
        }
        let n = room.min(b.len());
        self.buf.extend_from_slice(&b[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_socks5_transfer_resumes_with_a_range() {
    let server = start().await;
    let alice = client(&server, "alice", DriverConfig::default()).await;
    let bob = client(&server, "bob", DriverConfig::default()).await;
    let file = data(3 * 1024 * 1024 + 11);
    let cut = file.len() / 2;
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
            bob.connection().jid(),
            File::named("resume.bin", file.len() as u64),
            &mut Cursor::new(file.clone()),
        )
        .await;
    assert!(first.is_err(), "the interrupted send reported success");
    let (r, partial) = receiver.await.unwrap();
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    assert_eq!(partial.len(), cut);
    let receiver = tokio::spawn({
        let bob = bob.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let mut prefix = StreamHasher::new();
            prefix.update(&partial);
            let mut rest = Vec::new();
            let outcome = offer
                .accept_from(&mut rest, partial.len() as u64, prefix)
                .await
                .unwrap();
            let mut whole = partial;
            whole.extend_from_slice(&rest);
            (outcome, whole)
        }
    });
    let sent = alice
        .send_file(
            bob.connection().jid(),
            File::named("resume.bin", file.len() as u64),
            &mut Cursor::new(file.clone()),
        )
        .await
        .unwrap();
    let (outcome, whole) = receiver.await.unwrap();
    assert_eq!(sent.offset, cut as u64);
    assert_eq!(sent.transport, TransportMethod::Socks5);
    assert_eq!(outcome.bytes_received, (file.len() - cut) as u64);
    assert_eq!(outcome.check, HashCheck::Verified("sha-256".into()));
    assert!(whole == file, "the resumed file differs");
}
