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

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xmpp_jingle::driver::{
    DriverConfig, JingleClient, Socks5Config, TransportMethod, IQ_NAMESPACES,
};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::{HashCheck, StreamHasher};
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{ProsodyNetwork, Server, ServerKind, StartOptions};

const PW: &str = "secret-pw";

/// The SOCKS5 file size: `JINGLE_LARGE_MIB` MiB (default 200) and a few bytes.
fn size() -> u64 {
    mib_env("JINGLE_LARGE_MIB", 200)
}

/// The IBB file size: `JINGLE_LARGE_IBB_MIB` MiB (default 200) and a few bytes: about 50 s here
/// (~4 MiB/s with 65535-byte blocks in a debug build; Prosody's Lua takes half of the CPU).
fn ibb_size() -> u64 {
    mib_env("JINGLE_LARGE_IBB_MIB", 200)
}

fn mib_env(var: &str, default: u64) -> u64 {
    let mib = std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default);
    mib * 1024 * 1024 + 12_345
}

/// The IBB block size (`JINGLE_LARGE_BLOCK`, default 65535).
fn block_size() -> u16 {
    std::env::var("JINGLE_LARGE_BLOCK")
        .ok()
        .and_then(|v| v.parse::<u16>().ok())
        .unwrap_or(65535)
}

async fn start(network: ProsodyNetwork) -> Server {
    tokio::task::spawn_blocking(move || {
        xmpp_testkit::ensure_installed(ServerKind::Prosody).unwrap();
        Server::start_with(
            ServerKind::Prosody,
            &[("alice", PW), ("bob", PW)],
            &StartOptions::default().prosody_network(network),
        )
        .unwrap_or_else(|e| panic!("Prosody did not start: {e}"))
    })
    .await
    .unwrap()
}

async fn client(server: &Server, user: &str, cfg: DriverConfig) -> JingleClient<XmppClient> {
    let jid = format!("{user}@{}/large", server.domain());
    let conn = XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{jid} could not log in: {e}\n{}", server.log_tail(30)));
    for ns in IQ_NAMESPACES {
        conn.handle_iq_namespace(ns);
    }
    JingleClient::new(conn, cfg)
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Direct candidate at a closed port (and the server's proxy when `proxy`).
fn unreachable(proxy: bool, block_size: u16) -> DriverConfig {
    DriverConfig {
        block_size,
        socks5: Socks5Config {
            advertise_port: Some(closed_port()),
            use_proxy: proxy,
            connect_timeout: Duration::from_secs(3),
            ..Socks5Config::default()
        },
        ..DriverConfig::default()
    }
}

fn no_candidates(block_size: u16) -> DriverConfig {
    DriverConfig {
        block_size,
        socks5: Socks5Config {
            listen: None,
            use_proxy: false,
            ..Socks5Config::default()
        },
        ..DriverConfig::default()
    }
}

/// Writes `len` deterministic pseudo-random bytes to a new temporary file, 1 MiB at a time; returns
/// the file and its sha-256.
async fn make_file(dir: &Path, len: u64) -> (std::path::PathBuf, String) {
    let path = dir.join("source.bin");
    let mut f = tokio::io::BufWriter::new(tokio::fs::File::create(&path).await.unwrap());
    let mut h = Sha256::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
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
    (path, hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Streams a file through sha-256.
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

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64().max(1e-9)
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

/// A file writer that fails once `limit` bytes are written (a receiver dropping mid-transfer).
struct DropAfter {
    inner: tokio::fs::File,
    written: u64,
    limit: u64,
}

impl AsyncWrite for DropAfter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let room = self.limit - self.written;
        if room == 0 {
            return Poll::Ready(Err(std::io::Error::other("receiver dropped")));
        }
        let n = (room as usize).min(b.len());
        let r = Pin::new(&mut self.inner).poll_write(cx, &b[..n]);
        if let Poll::Ready(Ok(k)) = &r {
            self.written += *k as u64;
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_direct_proxied_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (src, want) = make_file(dir.path(), size()).await;
    let dst = dir.path().join("received.bin");
    let server = start(ProsodyNetwork::Select).await;

    // (a) Direct.
    let alice = client(&server, "alice", DriverConfig::default()).await;
    let bob = client(&server, "bob", DriverConfig::default()).await;
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
            let mut out = DropAfter {
                inner: tokio::fs::File::create(&dst).await.unwrap(),
                written: 0,
                limit: cut,
            };
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
            let mut prefix = StreamHasher::new();
            let mut f = tokio::fs::File::open(&dst).await.unwrap();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let k = f.read(&mut buf).await.unwrap();
                if k == 0 {
                    break;
                }
                prefix.update(&buf[..k]);
            }
            let mut out = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&dst)
                .await
                .unwrap();
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
    let alice = client(&server, "alice", unreachable(true, 4096)).await;
    let bob = client(&server, "bob", no_candidates(4096)).await;
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
    let server = start(ProsodyNetwork::Epoll).await;
    // Neither side can use a candidate: alice replaces the transport with IBB, 65535-byte blocks.
    let alice = client(&server, "alice", unreachable(false, block_size())).await;
    let bob = client(&server, "bob", no_candidates(block_size())).await;
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
