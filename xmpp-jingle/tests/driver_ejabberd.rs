//! The file-transfer driver through a real ejabberd (a second server implementation next to the Prosody
//! tests): a few MiB offered over SOCKS5 (direct, then through ejabberd's mod_proxy65 with the direct
//! candidates made unusable), requested and served over SOCKS5, and offered over in-band bytestreams; every
//! transfer checked with sha-256 on both sides. Then, through Prosody, a session-terminate from the
//! receiver in the middle of an IBB send stops the sender with `Error::Terminated` (it used to wait for
//! the stalled block's IQ timeout).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use xmpp_jingle::driver::{
    DriverConfig, JingleClient, Socks5Config, TransportMethod, TransportPolicy, IQ_NAMESPACES,
};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::{Hash, HashCheck, SHA_256};
use xmpp_jingle::jingle::{Action, Jingle, Reason, ReasonCondition};
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social::{Connection, IqRequest};
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

/// Starts a server of `kind` with alice and bob (installing it if needed).
async fn start(kind: ServerKind) -> Server {
    tokio::task::spawn_blocking(move || {
        xmpp_testkit::ensure_installed(kind)
            .unwrap_or_else(|e| panic!("{} is not installed: {e}", kind.name()));
        Server::start(kind, &[("alice", PW), ("bob", PW)])
            .unwrap_or_else(|e| panic!("{} did not start: {e}", kind.name()))
    })
    .await
    .unwrap()
}

/// `user@domain/resource` logged in, Jingle and IBB requests let through, the driver started with
/// `cfg`.
async fn client(
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

/// `len` deterministic pseudo-random bytes (xorshift from `seed`).
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// The sha-256 among `hashes`.
fn sha256_of(hashes: &[Hash]) -> Option<Vec<u8>> {
    hashes
        .iter()
        .find(|h| h.algo == SHA_256)
        .map(|h| h.value.clone())
}

/// MiB per second (printed, never asserted).
fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64().max(1e-9)
}

/// Direct candidates pointing at a port nobody listens on, so only the server's proxy can work.
fn proxy_only() -> DriverConfig {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    DriverConfig {
        socks5: Socks5Config {
            advertise_port: Some(closed),
            connect_timeout: Duration::from_secs(3),
            ..Socks5Config::default()
        },
        ..DriverConfig::default()
    }
}

fn ibb_only() -> DriverConfig {
    DriverConfig {
        transports: TransportPolicy::IbbOnly,
        block_size: 65535,
        ..DriverConfig::default()
    }
}

/// alice offers `len` bytes to bob; both sides' sha-256 must match the data. Returns the transport.
async fn offer(
    alice: &JingleClient<XmppClient>,
    bob: &JingleClient<XmppClient>,
    len: usize,
    label: &str,
) -> TransportMethod {
    let payload = data(len, len as u64);
    let want = sha256(&payload);
    let receiving = tokio::spawn({
        let bob = bob.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let mut out = Vec::with_capacity(len);
            let outcome = offer.accept(&mut out).await.unwrap();
            (outcome, out)
        }
    });
    let started = Instant::now();
    let sent = alice
        .send_file(
            bob.connection().jid(),
            File::named("ejabberd.bin", len as u64),
            &mut Cursor::new(payload),
        )
        .await
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let (got, out) = receiving.await.unwrap();
    println!(
        "ejabberd, {label}: {len} bytes over {:?} at {:.1} MiB/s",
        sent.transport,
        mib_s(len, started.elapsed())
    );
    assert_eq!(sent.bytes_sent, len as u64, "{label}");
    assert_eq!(sha256_of(&sent.hashes), Some(want.clone()), "{label}");
    assert_eq!(got.bytes_received, len as u64, "{label}");
    assert_eq!(got.check, HashCheck::Verified(SHA_256.into()), "{label}");
    assert_eq!(sha256(&out), want, "{label}: the bytes differ");
    assert_eq!(got.transport, sent.transport, "{label}");
    sent.transport
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_direct_proxy_and_request_through_ejabberd() {
    let server = start(ServerKind::Ejabberd).await;
    assert!(
        server.proxy65_service().is_some(),
        "testkit's ejabberd has no mod_proxy65"
    );
    let alice = client(&server, "alice", "jingle", DriverConfig::default()).await;
    let bob = client(&server, "bob", "jingle", DriverConfig::default()).await;
    let len = 4 * 1024 * 1024 + 123;
    assert_eq!(
        offer(&alice, &bob, len, "SOCKS5 direct").await,
        TransportMethod::Socks5
    );

    // Nobody's direct candidate works: ejabberd's mod_proxy65 carries the stream.
    let carol = client(&server, "alice", "proxied", proxy_only()).await;
    let dave = client(&server, "bob", "proxied", proxy_only()).await;
    assert_eq!(
        offer(&carol, &dave, len, "SOCKS5 through mod_proxy65").await,
        TransportMethod::Socks5
    );

    // A request (pull): bob asks alice for the file, alice serves it.
    let payload = data(len, 7);
    let want = sha256(&payload);
    let serving = tokio::spawn({
        let alice = alice.clone();
        let payload = payload.clone();
        async move {
            let request = alice.next_offer().await.unwrap();
            assert!(request.is_request());
            request
                .serve(
                    File::named("pulled.bin", payload.len() as u64),
                    &mut Cursor::new(payload),
                )
                .await
                .unwrap()
        }
    });
    let mut out = Vec::new();
    let got = bob
        .request_file(
            alice.connection().jid(),
            File::named("pulled.bin", 0),
            &mut out,
        )
        .await
        .unwrap();
    let served = serving.await.unwrap();
    assert_eq!(served.bytes_sent, len as u64);
    assert_eq!(got.bytes_received, len as u64);
    assert_eq!(got.check, HashCheck::Verified(SHA_256.into()));
    assert_eq!(sha256(&out), want);
    assert_eq!(got.transport, TransportMethod::Socks5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ibb_through_ejabberd() {
    let server = start(ServerKind::Ejabberd).await;
    let alice = client(&server, "alice", "jingle", ibb_only()).await;
    let bob = client(&server, "bob", "jingle", ibb_only()).await;
    let len = 3 * 1024 * 1024 + 77;
    assert_eq!(offer(&alice, &bob, len, "IBB").await, TransportMethod::Ibb);
}

/// A writer that takes `limit` bytes, then never completes a write (a receiver that stopped reading),
/// and says so once.
struct Stall {
    written: usize,
    limit: usize,
    stalled: Arc<Notify>,
}

impl AsyncWrite for Stall {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.written >= self.limit {
            self.stalled.notify_one();
            return Poll::Pending; // never woken: the block is never acknowledged
        }
        let n = b.len().min(self.limit - self.written);
        self.written += n;
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The receiver stops acknowledging IBB blocks, then ends the session (session-terminate, no IBB
/// `<close/>`): the sender stops with `Error::Terminated` carrying the receiver's reason, long before its
/// IQ timeout (set to 10 minutes here, so only the terminate can end the send).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_terminate_stops_an_ibb_send() {
    let server = start(ServerKind::Prosody).await;
    let patient = DriverConfig {
        iq_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(600),
        ..ibb_only()
    };
    let alice = client(&server, "alice", "jingle", patient.clone()).await;
    let bob = client(&server, "bob", "jingle", patient).await;
    let alice_jid = alice.connection().jid();
    let len = 16 * 1024 * 1024;
    let stalled = Arc::new(Notify::new());
    let receiving = tokio::spawn({
        let bob = bob.clone();
        let stalled = stalled.clone();
        async move {
            let offer = bob.next_offer().await.unwrap();
            let sid = offer.sid().to_owned();
            let accepting = tokio::spawn(async move {
                let mut w = Stall {
                    written: 0,
                    limit: 256 * 1024,
                    stalled,
                };
                let _ = offer.accept(&mut w).await;
            });
            (sid, accepting)
        }
    });
    let sending = tokio::spawn({
        let alice = alice.clone();
        let bob_jid = bob.connection().jid();
        async move {
            alice
                .send_file(
                    bob_jid,
                    File::named("stopped.bin", len as u64),
                    &mut Cursor::new(data(len, 3)),
                )
                .await
        }
    });
    let (sid, accepting) = receiving.await.unwrap();
    // Once bob's writer stalls, alice is waiting for a block's result; bob's side ends the session.
    stalled.notified().await;
    let mut terminate = Jingle::new(Action::SessionTerminate, &sid);
    terminate.reason = Some(Reason::new(ReasonCondition::Cancel));
    bob.connection()
        .send_iq(
            IqRequest::set(Some(alice_jid), terminate.to_element())
                .with_timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let sent = tokio::time::timeout(Duration::from_secs(120), sending)
        .await
        .expect("the sender did not stop after session-terminate")
        .unwrap();
    match sent {
        Err(Error::Terminated(Some(reason))) => {
            assert_eq!(reason.condition, ReasonCondition::Cancel)
        }
        other => panic!("expected Error::Terminated(cancel), got {other:?}"),
    }
    accepting.abort();
}
