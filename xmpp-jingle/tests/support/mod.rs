//! Helpers shared by the Jingle tests against a real Prosody: a Prosody per test, logged-in clients
//! (plain Jingle or Jingle with OMEMO for JET), files of deterministic pseudo-random bytes (temporary
//! files or in memory), streaming sha-256, driver configurations that make SOCKS5 candidates
//! unusable, writers that fail part-way (a receiver dropping mid-transfer) and the transfers the
//! tests repeat (an encrypted one, an interrupted one resumed with a range).
#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::Cursor;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use jid::Jid;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xmpp_e2ee::omemo::{MemoryStore, OmemoClient, OmemoConfig, Profile, TrustLevel};
use xmpp_jingle::driver::{
    DriverConfig, JingleClient, ReceiveOutcome, SendOptions, SendOutcome, Socks5Config,
    TransportMethod, IQ_NAMESPACES,
};
use xmpp_jingle::ft::File;
use xmpp_jingle::hashes::{HashCheck, StreamHasher};
use xmpp_jingle::jet::{self, JetCipher, Sealed};
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{ProsodyNetwork, Server, ServerKind, StartOptions};

/// The password of every test account.
pub const PW: &str = "secret-pw";

/// Starts a Prosody with `alice` and `bob` and the given network backend (installing it if needed).
pub async fn start(network: ProsodyNetwork) -> Server {
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

/// `var` MiB (default `default`) plus `extra` bytes, so sizes are not block multiples.
pub fn mib_env(var: &str, default: u64, extra: u64) -> u64 {
    let mib = std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default);
    mib * 1024 * 1024 + extra
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes `len` deterministic pseudo-random bytes (xorshift from `seed`) to `path`, 1 MiB at a time;
/// returns their sha-256.
pub async fn make_file(path: &Path, len: u64, seed: u64) -> String {
    let mut f = tokio::io::BufWriter::new(tokio::fs::File::create(path).await.unwrap());
    let mut h = Sha256::new();
    let mut x: u64 = seed | 1;
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

/// Streams the file at `path` through sha-256; returns the hash and the length.
pub async fn sha256_of(path: &Path) -> (String, u64) {
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

/// MiB per second.
pub fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1048576.0 / d.as_secs_f64().max(1e-9)
}

/// A local port nobody listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The direct candidate points at a closed port; the server's proxy is offered when `proxy`.
pub fn unreachable(proxy: bool, block_size: u16) -> DriverConfig {
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

/// No SOCKS5 candidate at all (no listener, no proxy); the peer's candidates are tried for 3 s each.
pub fn no_candidates(block_size: u16) -> DriverConfig {
    DriverConfig {
        block_size,
        socks5: Socks5Config {
            listen: None,
            use_proxy: false,
            connect_timeout: Duration::from_secs(3),
            ..Socks5Config::default()
        },
        ..DriverConfig::default()
    }
}

/// A file writer that fails once `limit` bytes are written (a receiver dropping mid-transfer).
///
/// Flush `inner` after the failure so that what was written is on disk for the resume.
pub struct DropAfter {
    /// The file written to.
    pub inner: tokio::fs::File,
    /// Bytes written so far.
    pub written: u64,
    /// Where the writer fails.
    pub limit: u64,
}

impl DropAfter {
    /// Creates (or truncates) the file at `path`; the writer fails after `limit` bytes.
    pub async fn create(path: &Path, limit: u64) -> DropAfter {
        DropAfter {
            inner: tokio::fs::File::create(path).await.unwrap(),
            written: 0,
            limit,
        }
    }
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

/// Hashes what an interrupted transfer left at `path` and opens it for appending the rest: the
/// arguments of `accept_from` (the offset is the hasher's byte count).
pub async fn resume_writer(path: &Path) -> (StreamHasher, tokio::fs::File) {
    let mut prefix = StreamHasher::new();
    let mut f = tokio::fs::File::open(path).await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        prefix.update(&buf[..k]);
    }
    let out = tokio::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .await
        .unwrap();
    (prefix, out)
}

/// `len` deterministic pseudo-random bytes in memory: xorshift from `seed`, each byte the state
/// shifted right by `shift` bits.
pub fn data(len: usize, seed: u64, shift: u32) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> shift) as u8
        })
        .collect()
}

/// An in-memory writer that takes `limit` bytes and then fails, as a full disk or a dropped
/// connection would.
pub struct FailAfter {
    /// What was written.
    pub buf: Vec<u8>,
    /// Where the writer fails.
    pub limit: usize,
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

/// An in-memory transfer interrupted by the receiver and then resumed with a range.
pub struct Resumed {
    /// The bytes the receiver kept from the first attempt (the resume's offset).
    pub kept: usize,
    /// The sender's outcome of the resumed transfer.
    pub sent: SendOutcome,
    /// The receiver's outcome of the resumed transfer.
    pub got: ReceiveOutcome,
}

/// `alice` offers `file` to `bob` as `name`; bob's writer fails after `cut` bytes, so both sides
/// fail. Then alice offers it again and bob accepts it from what he kept. Checks that the first
/// attempt failed on both sides with a kept prefix of the file, that the resume started at the kept
/// length, was verified by sha-256 and completed the file.
pub async fn interrupted_and_resumed(
    alice: &JingleClient<XmppClient>,
    bob: &JingleClient<XmppClient>,
    file: &[u8],
    cut: usize,
    name: &str,
) -> Resumed {
    let len = file.len() as u64;
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
            File::named(name, len),
            &mut Cursor::new(file.to_vec()),
        )
        .await;
    assert!(first.is_err(), "the interrupted send reported success");
    let (r, partial) = receiver.await.unwrap();
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    assert!(!partial.is_empty() && partial.len() <= cut);
    assert_eq!(partial[..], file[..partial.len()]);
    let kept = partial.len();

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
            File::named(name, len),
            &mut Cursor::new(file.to_vec()),
        )
        .await
        .unwrap();
    let (got, whole) = receiver.await.unwrap();
    assert_eq!(sent.offset, kept as u64);
    assert_eq!(sent.bytes_sent, len - kept as u64);
    assert_eq!(got.bytes_received, len - kept as u64);
    assert_eq!(got.check, HashCheck::Verified("sha-256".into()));
    assert!(whole == file, "the resumed file differs");
    Resumed { kept, sent, got }
}

/// Logs `user` in as `user@domain/resource` and lets it answer the Jingle IQ namespaces.
pub async fn login(server: &Server, user: &str, resource: &str) -> XmppClient {
    let jid = format!("{user}@{}/{resource}", server.domain());
    let conn = XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{jid} could not log in: {e}\n{}", server.log_tail(30)));
    for ns in IQ_NAMESPACES {
        conn.handle_iq_namespace(ns);
    }
    conn
}

/// A Jingle client for `user@domain/resource` with `cfg`.
pub async fn client(
    server: &Server,
    user: &str,
    resource: &str,
    cfg: DriverConfig,
) -> JingleClient<XmppClient> {
    JingleClient::new(login(server, user, resource).await, cfg)
}

/// The OMEMO client of a JET test peer.
pub type Omemo = OmemoClient<XmppClient, MemoryStore>;

/// A Jingle client with an OMEMO client on the same connection (for JET).
pub struct Peer {
    /// File transfers.
    pub jingle: JingleClient<XmppClient>,
    /// Key transport; its device and bundle are published.
    pub omemo: Omemo,
}

/// Logs `user` in as `user@domain/resource`, publishes a new OMEMO device and starts Jingle with `cfg`.
pub async fn peer(server: &Server, user: &str, resource: &str, cfg: DriverConfig) -> Peer {
    let conn = login(server, user, resource).await;
    let omemo = OmemoClient::new(conn.clone(), MemoryStore::new(), OmemoConfig::default()).unwrap();
    omemo.publish().await.unwrap();
    Peer {
        jingle: JingleClient::new(conn, cfg),
        omemo,
    }
}

/// A new JET key sealed by `from` for `to` in `profile`, for a file offer's content.
pub async fn seal_file_key(from: &Peer, to: &Jid, profile: Profile) -> Sealed {
    jet::seal(
        &from.omemo,
        profile,
        &to.to_bare(),
        Some(jet::FILE_CONTENT_NAME),
    )
    .await
    .unwrap()
}

/// `from` offers the file at `src` (`len` bytes, named `secret.bin`) to `to`, encrypted with `sealed`.
pub async fn send_sealed(
    from: &Peer,
    to: Jid,
    src: &Path,
    len: u64,
    sealed: &Sealed,
) -> Result<SendOutcome, Error> {
    from.jingle
        .send_file_with(
            to,
            File::named("secret.bin", len),
            &mut tokio::fs::File::open(src).await.unwrap(),
            SendOptions::default().with_jet(sealed),
        )
        .await
}

/// Alice seals a new key for Bob in `profile` and sends the file at `src` (`len` bytes) with JET;
/// Bob checks and opens the `<security/>` and accepts into `dst`; the received file must hash to
/// `want` (then it is removed). Prints the throughput; returns the transport used.
#[allow(clippy::too_many_arguments)]
pub async fn encrypted_transfer(
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
    let sealed = seal_file_key(alice, &bob_jid, profile).await;
    assert_eq!(sealed.recipients.len(), 1);
    let sent = send_sealed(alice, bob_jid, src, len, &sealed)
        .await
        .unwrap();
    let got = receiving.await.unwrap();
    let took = started.elapsed();
    println!(
        "{label}: {:.1} MiB with JET ({profile:?}) over {:?} in {:.1} s: {:.2} MiB/s",
        len as f64 / 1048576.0,
        sent.transport,
        took.as_secs_f64(),
        mib_s(len, took)
    );
    assert_eq!(sent.transport, got.transport);
    assert_eq!(sent.bytes_sent, len);
    assert_eq!(sent.wire_bytes, len + 16);
    assert_eq!(got.bytes_received, len);
    assert_eq!(got.wire_bytes, len + 16);
    assert_eq!(got.check, HashCheck::Verified("sha-256".into()));
    let (hash, n) = sha256_of(dst).await;
    assert_eq!(n, len);
    assert_eq!(
        hash, want,
        "{label} ({profile:?}): the received file differs"
    );
    tokio::fs::remove_file(dst).await.unwrap();
    sent.transport
}
