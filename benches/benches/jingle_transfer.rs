//! File transfer throughput on loopback: a SOCKS5 bytestream between two SDK clients negotiated through a
//! real Prosody (started by xmpp-testkit), against a plain tokio TCP copy of the same file, in the same run.
//!
//! Both sides move the same file from a file to a file, in 64 KiB reads, and do the same hashing work:
//! the sender and the receiver each feed every byte to `xmpp_jingle::hashes::StreamHasher` (sha-256 and
//! sha-1, what the Jingle file-transfer driver computes on each side), and the received file's digests are
//! checked against the sent file's. The file lives in a temporary directory on a tmpfs (`/dev/shm` when
//! present), so the disk is not what is measured.
//!
//! - (a) `tcp_copy`: a tokio `TcpListener` on 127.0.0.1, one connection, file -> socket -> file.
//! - (b) `socks5_direct`: XEP-0065 through Prosody (the sender offers itself as the streamhost on
//!   127.0.0.1, the receiver connects, SOCKS5 handshake, `<streamhost-used/>`), then file -> bytestream ->
//!   file. The time counts the XMPP negotiation as well as the bytes: that is what a user waits for.
//! - (c) `jingle_ft_socks5`: the whole XEP-0234 file transfer of xmpp-jingle's driver between two other
//!   SDK clients (`JingleClient::send_file` / `IncomingOffer::accept`): session-initiate, session-accept,
//!   XEP-0260 candidate exchange with the sender's direct candidate only (no proxy, SOCKS5 only),
//!   the bytes, the `<checksum/>` and the receiver's verdict (which must be `Verified`), session-terminate.
//!   The driver hashes on both sides itself (same sha-256 + sha-1 as above).
//! - (d) `jingle_ft_jet_omemo2` and (e) `jingle_ft_jet_legacy`: the same transfer between the same two
//!   clients, encrypted with XEP-0391 JET (AES-128-GCM) under a key carried by XEP-0396 OMEMO key
//!   transport, in the OMEMO:2 (`urn:xmpp:omemo:2`) and legacy (`eu.siacs.conversations.axolotl`)
//!   namespaces. The OMEMO sessions between the two accounts are set up once before the timed rounds
//!   (bundles published, the first key transport of each namespace in the untimed warm-up round); each
//!   timed transfer still seals a fresh key for the receiver (`jet::seal`), and the receiver opens it
//!   (`IncomingOffer::open_jet`) before accepting: that key transport is part of the real cost.
//!
//! Prosody runs with its epoll network backend (as in xmpp-jingle's large-transfer test): IQ round trips
//! are faster than with the default backend; no variant goes through the server's SOCKS5 proxy.
//!
//! `cargo bench -p xmpp-social-benches --bench jingle_transfer`: criterion groups, then the paired rounds.
//! `-- --ratio-only` skips criterion: rounds alternate which variant runs first and the bench prints
//! MiB/s (best and median), `socks5 / tcp` and `jingle / tcp` throughput ratios, and `jet-omemo2 /
//! unencrypted` and `jet-legacy / unencrypted` (against (c), the unencrypted Jingle transfer of the same
//! round) (median of per-round ratios, and of the best rounds). `JINGLE_TRANSFER_MIB` sets the file size (default 128). Under `cargo test --benches`, a
//! quick smoke run of 4 MiB. Needs Prosody (`.ci/install-servers.sh`); without it the bench fails and
//! says so.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use xmpp_e2ee::omemo::{MemoryStore, OmemoClient, OmemoConfig, Profile};
use xmpp_jingle::driver::{
    DriverConfig, JingleClient, SendOptions, Socks5Config, TransportMethod, TransportPolicy,
    IQ_NAMESPACES,
};
use xmpp_jingle::hashes::{Hash, HashCheck, StreamHasher};
use xmpp_jingle::jet;
use xmpp_jingle::socks5::bytestreams::{self, LocalStreamHost, NS_BYTESTREAMS};
use xmpp_parsers::stanza::Stanza;
use xmpp_social::client::XmppClient;
use xmpp_social::connection::RecvError;
use xmpp_social::Connection;
use xmpp_testkit::{ProsodyNetwork, Server, ServerKind, StartOptions};

/// Bytes per read, on both sides of both variants.
const CHUNK: usize = 64 * 1024;
/// Bound on one transfer's negotiation.
const LIMIT: Duration = Duration::from_secs(60);
/// Bytes JET adds to a stream: the AES-GCM tag.
const JET_TAG: u64 = 16;

/// An OMEMO client on one of the Jingle clients' connections.
type Omemo = OmemoClient<XmppClient, MemoryStore>;

/// Copies `from` into `to` while hashing; returns the digests and the byte count.
async fn pump<R, W>(mut from: R, mut to: W) -> std::io::Result<(Vec<Hash>, u64)>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut hasher = StreamHasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let data = buf.get(..n).unwrap_or_default();
        hasher.update(data);
        to.write_all(data).await?;
    }
    to.flush().await?;
    to.shutdown().await?;
    let bytes = hasher.bytes();
    Ok((hasher.finish(), bytes))
}

/// Sends `src` through `stream` (the sending side: file -> stream).
async fn send_file<S: AsyncWrite + Unpin>(src: &Path, stream: S) -> (Vec<Hash>, u64) {
    let file = File::open(src).await.expect("source file opens");
    pump(file, stream).await.expect("sending works")
}

/// Receives `stream` into `dst` (the receiving side: stream -> file).
async fn receive_file<S: AsyncRead + Unpin>(stream: S, dst: &Path) -> (Vec<Hash>, u64) {
    let file = File::create(dst).await.expect("destination file opens");
    pump(stream, BufWriter::with_capacity(CHUNK, file))
        .await
        .expect("receiving works")
}

/// Feeds every message `omemo`'s connection receives to it, until the connection closes.
async fn handle_omemo_messages(omemo: Omemo) {
    let mut incoming = omemo.connection().incoming();
    loop {
        match incoming.recv().await {
            Ok(stanza) => {
                if let Stanza::Message(m) = &*stanza {
                    // A failure here (a message it cannot decrypt) is not the bench's business.
                    let _ = omemo.handle_message(m).await;
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(_) => break,
        }
    }
}

/// The environment both variants share: the file, the server, the two clients.
struct Setup {
    _dir: tempfile::TempDir,
    src: PathBuf,
    dst: PathBuf,
    size: u64,
    _server: Server,
    alice: XmppClient,
    bob: XmppClient,
    carol: JingleClient<XmppClient>,
    dave: JingleClient<XmppClient>,
    carol_omemo: Omemo,
    dave_omemo: Omemo,
}

impl Setup {
    async fn new(size: usize) -> Setup {
        let dir = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")
        } else {
            tempfile::tempdir()
        }
        .expect("temporary directory");
        let src = dir.path().join("source.bin");
        let dst = dir.path().join("received.bin");
        let mut data = Vec::with_capacity(size);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        while data.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(size);
        tokio::fs::write(&src, &data)
            .await
            .expect("source file written");
        if let Err(e) = xmpp_testkit::ensure_installed(ServerKind::Prosody) {
            panic!("jingle_transfer needs Prosody (run .ci/install-servers.sh as root): {e}");
        }
        let server = Server::start_with(
            ServerKind::Prosody,
            &[
                ("alice", "alicepw"),
                ("bob", "bobpw"),
                ("carol", "carolpw"),
                ("dave", "davepw"),
            ],
            &StartOptions::default().prosody_network(ProsodyNetwork::Epoll),
        )
        .expect("Prosody starts");
        let connect = |user: &str, pw: &str| {
            let jid = format!("{user}@localhost/bench");
            let pw = pw.to_owned();
            let addr = server.c2s_addr();
            async move {
                let c = XmppClient::connect_plaintext_loopback(&jid, &pw, addr)
                    .await
                    .expect("client connects");
                c.handle_iq_namespace(NS_BYTESTREAMS);
                for ns in IQ_NAMESPACES {
                    c.handle_iq_namespace(ns);
                }
                c
            }
        };
        let alice = connect("alice", "alicepw").await;
        let bob = connect("bob", "bobpw").await;
        let jingle_cfg = || DriverConfig {
            transports: TransportPolicy::Socks5Only,
            socks5: Socks5Config {
                use_proxy: false,
                ..Socks5Config::default()
            },
            ..DriverConfig::default()
        };
        let carol_conn = connect("carol", "carolpw").await;
        let dave_conn = connect("dave", "davepw").await;
        let omemo = |conn: &XmppClient| {
            OmemoClient::new(conn.clone(), MemoryStore::new(), OmemoConfig::default())
                .expect("OMEMO client")
        };
        let carol_omemo = omemo(&carol_conn);
        let dave_omemo = omemo(&dave_conn);
        carol_omemo.publish().await.expect("carol's OMEMO bundle");
        dave_omemo.publish().await.expect("dave's OMEMO bundle");
        // Carol only ever sends key transports; dave's device answers every 53rd with an empty OMEMO
        // message (a heartbeat). Carol handles her messages as an application would, or after 300
        // unanswered transports dave's device would be stale and get no more keys.
        tokio::spawn(handle_omemo_messages(carol_omemo.clone()));
        let carol = JingleClient::new(carol_conn, jingle_cfg());
        let dave = JingleClient::new(dave_conn, jingle_cfg());
        Setup {
            _dir: dir,
            src,
            dst,
            size: size as u64,
            _server: server,
            alice,
            bob,
            carol,
            dave,
            carol_omemo,
            dave_omemo,
        }
    }

    fn check(&self, sent: (Vec<Hash>, u64), received: (Vec<Hash>, u64)) {
        assert_eq!(sent.1, self.size, "the whole file was read");
        assert_eq!(received.1, self.size, "the whole file arrived");
        assert_eq!(sent.0, received.0, "the received file differs");
    }

    /// (a) A plain TCP copy, file to file.
    async fn tcp_copy(&self) -> Duration {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener binds");
        let addr = listener.local_addr().expect("bound address");
        let dst = self.dst.clone();
        let started = Instant::now();
        let receiver = tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accepts");
            receive_file(s, &dst).await
        });
        let stream = TcpStream::connect(addr).await.expect("connects");
        let sent = send_file(&self.src, stream).await;
        let received = receiver.await.expect("receiver task");
        let took = started.elapsed();
        self.check(sent, received);
        took
    }

    /// (b) A SOCKS5 bytestream negotiated through Prosody, the sender as the direct streamhost.
    async fn socks5_direct(&self) -> Duration {
        let bob = self.bob.clone();
        let mut incoming = bob.incoming();
        let dst = self.dst.clone();
        let started = Instant::now();
        let receiver = tokio::spawn(async move {
            let offer = bytestreams::wait_offer(&bob, &mut incoming, LIMIT)
                .await
                .expect("offer arrives");
            let est = bytestreams::accept_offer(&bob, &offer, Duration::from_secs(10))
                .await
                .expect("bytestream accepted");
            receive_file(est.stream, &dst).await
        });
        let local = LocalStreamHost::bind("127.0.0.1:0")
            .await
            .expect("streamhost binds");
        let sid = xmpp_jingle::random_id();
        let est = bytestreams::open(&self.alice, &self.bob.jid(), &sid, Some(local), &[], LIMIT)
            .await
            .expect("bytestream opens");
        assert_eq!(
            est.streamhost,
            self.alice.jid(),
            "the direct streamhost was used"
        );
        let sent = send_file(&self.src, est.stream).await;
        let received = receiver.await.expect("receiver task");
        let took = started.elapsed();
        self.check(sent, received);
        took
    }

    /// (c) The driver's Jingle file transfer over a direct SOCKS5 bytestream; (d) and (e) the same
    /// with JET, the key sent by OMEMO key transport in the namespace of `jet_profile`.
    async fn jingle_ft(&self, jet_profile: Option<Profile>) -> Duration {
        let dave = self.dave.clone();
        let dave_omemo = self.dave_omemo.clone();
        let dst = self.dst.clone();
        let started = Instant::now();
        let receiver = tokio::spawn(async move {
            let mut offer = dave.next_offer().await.expect("an offer arrives");
            match jet_profile {
                Some(profile) => {
                    let opened = offer
                        .open_jet(&dave_omemo)
                        .await
                        .expect("the JET key opens")
                        .expect("the offer is encrypted");
                    assert_eq!(
                        opened.profile, profile,
                        "the key came in the expected namespace"
                    );
                }
                None => assert!(offer.security().is_none(), "the offer is not encrypted"),
            }
            let mut out = BufWriter::with_capacity(CHUNK, File::create(&dst).await.expect("opens"));
            let outcome = offer
                .accept(&mut out)
                .await
                .expect("the transfer completes");
            out.flush().await.expect("flushed");
            outcome
        });
        let mut src = File::open(&self.src).await.expect("source file opens");
        let file = xmpp_jingle::ft::File::named("source.bin", self.size);
        let peer = self.dave.connection().jid();
        let sent = match jet_profile {
            Some(profile) => {
                let sealed = jet::seal(
                    &self.carol_omemo,
                    profile,
                    &peer.to_bare(),
                    Some(jet::FILE_CONTENT_NAME),
                )
                .await
                .expect("the JET key is sealed");
                let options = SendOptions::default().with_jet(&sealed);
                self.carol
                    .send_file_with(peer, file, &mut src, options)
                    .await
            }
            None => self.carol.send_file(peer, file, &mut src).await,
        }
        .expect("the file is sent");
        let received = receiver.await.expect("receiver task");
        let took = started.elapsed();
        let overhead = if jet_profile.is_some() { JET_TAG } else { 0 };
        assert_eq!(sent.wire_bytes, self.size + overhead, "bytes on the wire");
        assert_eq!(received.wire_bytes, self.size + overhead);
        assert_eq!(sent.transport, TransportMethod::Socks5, "SOCKS5 carried it");
        assert_eq!(received.transport, TransportMethod::Socks5);
        assert_eq!(sent.bytes_sent, self.size);
        assert_eq!(received.bytes_received, self.size);
        assert!(
            matches!(received.check, HashCheck::Verified(_)),
            "the receiver verified the file: {:?}",
            received.check
        );
        took
    }

    async fn run(&self, variant: Variant) -> Duration {
        match variant {
            Variant::Tcp => self.tcp_copy().await,
            Variant::Socks5 => self.socks5_direct().await,
            Variant::Jingle => self.jingle_ft(None).await,
            Variant::JetOmemo2 => self.jingle_ft(Some(Profile::Omemo2)).await,
            Variant::JetLegacy => self.jingle_ft(Some(Profile::Legacy)).await,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Tcp,
    Socks5,
    Jingle,
    JetOmemo2,
    JetLegacy,
}

const VARIANTS: [(Variant, &str); 5] = [
    (Variant::Tcp, "a_tcp_copy"),
    (Variant::Socks5, "b_socks5_direct_via_prosody"),
    (Variant::Jingle, "c_jingle_ft_socks5_direct"),
    (Variant::JetOmemo2, "d_jingle_ft_jet_omemo2"),
    (Variant::JetLegacy, "e_jingle_ft_jet_legacy_omemo"),
];

fn benches(c: &mut Criterion, rt: &Runtime, setup: &Setup) {
    let mut group = c.benchmark_group(format!("jingle_transfer_{}MiB", setup.size >> 20));
    group.throughput(Throughput::Bytes(setup.size));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    for (variant, name) in VARIANTS {
        group.bench_function(name, |b| b.iter(|| rt.block_on(setup.run(variant))));
    }
    group.finish();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn print_ratio(rt: &Runtime, setup: &Setup, rounds: usize) {
    let mib = |d: Duration| setup.size as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
    let n = VARIANTS.len();
    // MiB/s of each variant per round, and the TCP copy's time over its time in the same round.
    let mut speed = vec![Vec::with_capacity(rounds); n];
    let mut paired = vec![Vec::with_capacity(rounds); n];
    // One untimed round of each: page cache, TCP buffers, the clients' first IQs, and the OMEMO
    // sessions between carol and dave (the first key transport of each namespace builds them).
    for (v, _) in VARIANTS {
        rt.block_on(setup.run(v));
    }
    for round in 0..rounds {
        // Rotate which runs first, and reverse the order every other round, so none always gets the
        // quieter moment and each pair alternates which of the two runs first.
        let mut order: Vec<usize> = (0..n).map(|k| (round + k) % n).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut took = vec![Duration::ZERO; n];
        for i in order {
            took[i] = rt.block_on(setup.run(VARIANTS[i].0));
        }
        for i in 0..n {
            speed[i].push(mib(took[i]));
            paired[i].push(took[0].as_secs_f64() / took[i].as_secs_f64());
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    println!(
        "\nFile transfer of {} MiB on loopback, file to file on {} ({rounds} rounds, order rotated and reversed; \
         sha-256 + sha-1 on both sides of each):",
        setup.size >> 20,
        setup.src.parent().map_or("?".into(), |p| p.display().to_string()),
    );
    let labels = [
        "(a) plain tokio TCP copy",
        "(b) SOCKS5 direct, negotiated through Prosody",
        "(c) Jingle file transfer, SOCKS5 direct",
        "(d) (c) with JET, key by OMEMO:2",
        "(e) (c) with JET, key by legacy OMEMO",
    ];
    for i in 0..n {
        println!(
            "  {:<46} median {:>8.1} MiB/s, best {:>8.1} MiB/s",
            labels[i],
            median(speed[i].clone()),
            best(&speed[i])
        );
    }
    for (i, name) in [(1, "socks5"), (2, "jingle")] {
        println!(
            "{name} / tcp throughput ratio: {:.3} (median of per-round ratios), {:.3} (best rounds)",
            median(paired[i].clone()),
            best(&speed[i]) / best(&speed[0])
        );
    }
    // The encrypted transfers against the unencrypted one (c) of the same round.
    for (i, name) in [(3, "jet-omemo2"), (4, "jet-legacy")] {
        let per_round: Vec<f64> = paired[i]
            .iter()
            .zip(&paired[2])
            .map(|(enc, plain)| enc / plain)
            .collect();
        println!(
            "{name} / unencrypted throughput ratio: {:.3} (median of per-round ratios), {:.3} (best rounds)",
            median(per_round),
            best(&speed[i]) / best(&speed[2])
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (quick smoke run then).
    let full = std::env::args().any(|a| a == "--bench");
    let ratio_only = std::env::args().any(|a| a == "--ratio-only");
    let mib: usize = std::env::var("JINGLE_TRANSFER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let size = if full { mib << 20 } else { 4 << 20 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let setup = rt.block_on(Setup::new(size));
    if full && !ratio_only {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion, &rt, &setup);
        criterion.final_summary();
    }
    print_ratio(&rt, &setup, if full { 7 } else { 1 });
    let Setup {
        alice,
        bob,
        carol,
        dave,
        carol_omemo,
        dave_omemo,
        ..
    } = setup;
    drop((carol, dave, carol_omemo, dave_omemo));
    rt.block_on(async {
        let _ = alice.close().await;
        let _ = bob.close().await;
    });
}
