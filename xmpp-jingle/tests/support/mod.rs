//! Helpers shared by the large-transfer tests: a Prosody per test, temporary files of deterministic
//! pseudo-random bytes, streaming sha-256, driver configurations that make SOCKS5 candidates
//! unusable, and a writer that fails part-way (a receiver dropping mid-transfer).
#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xmpp_jingle::driver::{DriverConfig, Socks5Config};
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

/// No SOCKS5 candidate at all (no listener, no proxy).
pub fn no_candidates(block_size: u16) -> DriverConfig {
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

/// A file writer that fails once `limit` bytes are written (a receiver dropping mid-transfer).
pub struct DropAfter {
    /// The file written to.
    pub inner: tokio::fs::File,
    /// Bytes written so far.
    pub written: u64,
    /// Where the writer fails.
    pub limit: u64,
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
