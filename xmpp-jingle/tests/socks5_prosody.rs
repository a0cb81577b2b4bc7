//! XEP-0065 bytestreams through a real Prosody: two SDK clients directly (the requester listens on
//! 127.0.0.1), through Prosody's mod_proxy65 (disco discovery + activation), a refusal, and slixmpp's
//! xep_0065 plugin (interop/jingle/s5b_peer.py) in both directions. Each transfer is checked with
//! SHA-256; throughput is printed (not asserted) next to a plain loopback TCP copy.
//!
//! The slixmpp tests need the venv made by `.ci/setup-omemo-client.sh` (`target/omemo-client-venv`, or
//! `S5B_PEER_PYTHON`); without it they fail with a message saying so.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jid::Jid;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xmpp_jingle::socks5::bytestreams::{self, LocalStreamHost, StreamHost, NS_BYTESTREAMS};
use xmpp_jingle::socks5::Socks5Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const SIZE: usize = 4 * 1024 * 1024;
const LIMIT: Duration = Duration::from_secs(30);

fn server() -> Server {
    server_of(ServerKind::Prosody)
}

fn server_of(kind: ServerKind) -> Server {
    xmpp_testkit::ensure_installed(kind).unwrap();
    Server::start(
        kind,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("py", "pypw")],
    )
    .unwrap()
}

async fn client(server: &Server, user: &str, password: &str) -> XmppClient {
    let c = XmppClient::connect_plaintext_loopback(
        &format!("{user}@localhost/s5b"),
        password,
        server.c2s_addr(),
    )
    .await
    .unwrap();
    c.handle_iq_namespace(NS_BYTESTREAMS);
    c
}

/// Deterministic pseudo-random bytes (xorshift).
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn send_all<S: AsyncWrite + Unpin>(mut s: S, data: &[u8]) {
    for chunk in data.chunks(64 * 1024) {
        s.write_all(chunk).await.unwrap();
    }
    s.shutdown().await.unwrap();
}

/// Reads to EOF (bounded by `limit` bytes); returns the SHA-256 and the count.
async fn receive_all<S: AsyncRead + Unpin>(mut s: S, limit: usize) -> (String, usize) {
    let mut h = Sha256::new();
    let mut n = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let k = s.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        n += k;
        assert!(n <= limit, "more data than sent");
        h.update(&buf[..k]);
    }
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    (hex, n)
}

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64().max(1e-9)
}

/// One SDK-to-SDK transfer: alice offers `local` and `proxies`, bob takes the first that works.
/// Returns the streamhost used and the transfer time.
async fn transfer(
    alice: &XmppClient,
    bob: &XmppClient,
    local: Option<LocalStreamHost>,
    proxies: &[StreamHost],
) -> (Jid, Duration) {
    let data = payload(SIZE);
    let want = sha256(&data);
    let mut incoming = bob.incoming();
    let bob2 = bob.clone();
    let receiver = tokio::spawn(async move {
        let offer = bytestreams::wait_offer(&bob2, &mut incoming, LIMIT)
            .await
            .unwrap();
        let est = bytestreams::accept_offer(&bob2, &offer, Duration::from_secs(5))
            .await
            .unwrap();
        receive_all(est.stream, SIZE).await
    });
    let sid = xmpp_jingle::random_id();
    let est = bytestreams::open(alice, &bob.jid(), &sid, local, proxies, LIMIT)
        .await
        .unwrap();
    let started = Instant::now();
    send_all(est.stream, &data).await;
    let (got, n) = receiver.await.unwrap();
    let took = started.elapsed();
    assert_eq!(n, SIZE);
    assert_eq!(got, want, "the bytes differ");
    (est.streamhost, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_proxied_streams_between_two_sdk_clients() {
    let server = server();
    let alice = client(&server, "alice", "alicepw").await;
    let bob = client(&server, "bob", "bobpw").await;

    // Direct: alice listens on loopback and is the streamhost.
    let local = LocalStreamHost::bind("127.0.0.1:0").await.unwrap();
    let (used, direct) = transfer(&alice, &bob, Some(local), &[]).await;
    assert_eq!(used, alice.jid());

    // Through the proxy: discovered on the server, then activated by alice.
    let proxies = bytestreams::discover_proxies(&alice, None).await.unwrap();
    assert_eq!(proxies.len(), 1, "{proxies:?}");
    assert_eq!(
        proxies[0].jid.to_string(),
        server.proxy65_service().unwrap()
    );
    assert_eq!(proxies[0].host, "127.0.0.1");
    assert_eq!(proxies[0].port, server.proxy65_addr().unwrap().port());
    let (used, proxied) = transfer(&alice, &bob, None, &proxies).await;
    assert_eq!(used, proxies[0].jid);

    // Baseline: a plain loopback TCP copy of the same size.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        receive_all(s, SIZE).await
    });
    let data = payload(SIZE);
    let started = Instant::now();
    send_all(tokio::net::TcpStream::connect(addr).await.unwrap(), &data).await;
    let (got, _) = reader.await.unwrap();
    let plain = started.elapsed();
    assert_eq!(got, sha256(&data));
    println!(
        "SOCKS5 bytestream, {} MiB on loopback: direct {:.0} MiB/s ({direct:?}), through Prosody's \
         proxy {:.0} MiB/s ({proxied:?}), plain TCP copy {:.0} MiB/s ({plain:?})",
        SIZE / (1024 * 1024),
        mib_per_s(SIZE, direct),
        mib_per_s(SIZE, proxied),
        mib_per_s(SIZE, plain),
    );
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

/// ejabberd's mod_proxy65 is a second, independent proxy implementation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_stream_through_ejabberd() {
    let server = server_of(ServerKind::Ejabberd);
    let alice = client(&server, "alice", "alicepw").await;
    let bob = client(&server, "bob", "bobpw").await;
    let proxies = bytestreams::discover_proxies(&alice, None).await.unwrap();
    assert_eq!(proxies.len(), 1, "{proxies:?}");
    assert_eq!(proxies[0].host, "127.0.0.1");
    assert_eq!(proxies[0].port, server.proxy65_addr().unwrap().port());
    let (used, took) = transfer(&alice, &bob, None, &proxies).await;
    assert_eq!(used, proxies[0].jid);
    println!(
        "SOCKS5 bytestream through ejabberd's proxy: {:.0} MiB/s ({took:?})",
        mib_per_s(SIZE, took)
    );
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_streamhosts_are_refused_with_item_not_found() {
    let server = server();
    let alice = client(&server, "alice", "alicepw").await;
    let bob = client(&server, "bob", "bobpw").await;
    // A port nobody listens on (bound then dropped).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nowhere = StreamHost {
        jid: Jid::new("proxy.invalid").unwrap(),
        host: "127.0.0.1".into(),
        port,
    };
    let mut incoming = bob.incoming();
    let bob2 = bob.clone();
    let target = tokio::spawn(async move {
        let offer = bytestreams::wait_offer(&bob2, &mut incoming, LIMIT)
            .await
            .unwrap();
        bytestreams::accept_offer(&bob2, &offer, Duration::from_secs(2)).await
    });
    let r = bytestreams::open(&alice, &bob.jid(), "s1", None, &[nowhere], LIMIT).await;
    match r {
        Err(Socks5Error::Xmpp(e)) => assert!(e.is_item_not_found(), "{e}"),
        other => panic!("expected item-not-found, got {other:?}"),
    }
    assert!(matches!(
        target.await.unwrap(),
        Err(Socks5Error::NoStreamhost(_))
    ));
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Starts the slixmpp peer; waits for its `ready` line. Returns the child and its stdout lines.
fn start_peer(
    server: &Server,
    args: &[&str],
) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let python = std::env::var_os("S5B_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/omemo-client-venv/bin/python"));
    assert!(
        python.exists(),
        "the slixmpp peer needs {} (run .ci/setup-omemo-client.sh, or set S5B_PEER_PYTHON)",
        python.display()
    );
    let port = server.c2s_addr().port().to_string();
    let mut child = Command::new(&python)
        .arg(workspace().join("interop/jingle/s5b_peer.py"))
        .args([
            "--jid",
            "py@localhost/peer",
            "--password",
            "pypw",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--timeout",
            "60",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("the peer exited").unwrap();
    assert!(first.contains("\"ready\""), "peer said: {first}");
    (child, lines)
}

/// Reads the peer's lines until `event`; returns that line as JSON.
fn wait_event(
    lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>,
    event: &str,
) -> serde_json::Value {
    for line in lines.by_ref() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == event {
            return v;
        }
        assert_ne!(v["event"], "done", "peer finished early: {line}");
    }
    panic!("the peer exited before {event}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_receives_a_direct_stream_from_the_sdk() {
    let server = server();
    let alice = client(&server, "alice", "alicepw").await;
    let (mut child, mut lines) = tokio::task::block_in_place(|| start_peer(&server, &["receive"]));
    let peer = Jid::new("py@localhost/peer").unwrap();
    let local = LocalStreamHost::bind("127.0.0.1:0").await.unwrap();
    let est = bytestreams::open(&alice, &peer, "slixsid1", Some(local), &[], LIMIT)
        .await
        .unwrap();
    assert_eq!(est.streamhost, alice.jid());
    let data = payload(SIZE);
    let started = Instant::now();
    send_all(est.stream, &data).await;
    let v = tokio::task::block_in_place(|| wait_event(&mut lines, "received"));
    println!(
        "SDK -> slixmpp direct: {:.0} MiB/s (until the peer reported)",
        mib_per_s(SIZE, started.elapsed())
    );
    assert_eq!(v["bytes"], SIZE as u64);
    assert_eq!(v["sha256"], sha256(&data));
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(status.success());
    alice.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_receives_a_proxied_stream_from_slixmpp() {
    let server = server();
    let bob = client(&server, "bob", "bobpw").await;
    let mut incoming = bob.incoming();
    let to = bob.jid().to_string();
    let size = SIZE.to_string();
    let (mut child, mut lines) = tokio::task::block_in_place(|| {
        start_peer(&server, &["send", "--to", &to, "--size", &size])
    });
    let offer = bytestreams::wait_offer(&bob, &mut incoming, LIMIT)
        .await
        .unwrap();
    assert_eq!(offer.from.to_string(), "py@localhost/peer");
    let est = bytestreams::accept_offer(&bob, &offer, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        est.streamhost.to_string(),
        server.proxy65_service().unwrap()
    );
    let (got, n) = receive_all(est.stream, SIZE).await;
    let v = tokio::task::block_in_place(|| wait_event(&mut lines, "sent"));
    assert_eq!(n, SIZE);
    assert_eq!(v["bytes"], SIZE as u64);
    assert_eq!(v["sha256"], got);
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(status.success());
    bob.close().await.unwrap();
}
