//! The raw XEP-0047 layer against an independent implementation: slixmpp's xep_0047 plugin
//! (`interop/jingle/ibb_peer.py`), through Prosody, both directions. Our sender proposes 65535-byte
//! blocks; slixmpp accepts at most 8192 and answers `resource-constraint`, so the block size is lowered
//! until it is accepted.
//!
//! Needs the venv of `.ci/setup-omemo-client.sh` (`target/omemo-client-venv`, slixmpp 1.17) or
//! `XMPP_OMEMO_CLIENT_PYTHON`; the test fails (never skips) without it.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::{BufRead, BufReader, Cursor};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use jid::Jid;
use serde_json::Value;
use xmpp_jingle::driver::{DriverConfig, JingleClient, IQ_NAMESPACES};
use xmpp_jingle::hashes::StreamHasher;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn python() -> PathBuf {
    let python = std::env::var_os("XMPP_OMEMO_CLIENT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/omemo-client-venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import slixmpp.plugins.xep_0047"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "slixmpp is not installed ({} cannot import slixmpp.plugins.xep_0047): run \
         .ci/setup-omemo-client.sh (creates target/omemo-client-venv), or set XMPP_OMEMO_CLIENT_PYTHON",
        python.display()
    );
    python
}

/// The Python peer, killed when dropped; its JSON lines arrive on `lines`.
struct Peer {
    child: Child,
    lines: Receiver<Value>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn spawn(server: &Server, jid: &str, extra: &[&str]) -> Peer {
        let mut child = Command::new(python())
            .arg(workspace().join("interop/jingle/ibb_peer.py"))
            .args(["--jid", jid, "--password", PW, "--host", "127.0.0.1"])
            .args(["--port", &server.c2s_addr().port().to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Peer { child, lines: rx }
    }

    async fn expect(&self, event: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            match self.lines.try_recv() {
                Ok(v) if v["event"] == event => return v,
                Ok(v) if v["event"] == "done" => panic!("peer ended before {event}: {v}"),
                Ok(_) => {}
                Err(_) if std::time::Instant::now() > deadline => {
                    panic!("no {event} from the peer")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

fn hex_sha256(h: StreamHasher) -> String {
    h.finish()[0]
        .value
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ibb_both_ways_with_slixmpp() {
    let server = tokio::task::spawn_blocking(|| {
        Server::start(ServerKind::Prosody, &[("alice", PW), ("carol", PW)])
            .unwrap_or_else(|e| panic!("Prosody did not start: {e}"))
    })
    .await
    .unwrap();
    let alice_jid = format!("alice@{}/rust", server.domain());
    let carol_jid = format!("carol@{}/python", server.domain());
    let conn = XmppClient::connect_plaintext_loopback(&alice_jid, PW, server.c2s_addr())
        .await
        .unwrap();
    for ns in IQ_NAMESPACES {
        conn.handle_iq_namespace(ns);
    }
    assert_eq!(conn.jid().to_string(), alice_jid);
    let alice = JingleClient::new(conn, DriverConfig::default());
    let carol = Jid::new(&carol_jid).unwrap();

    // Rust -> slixmpp, 65535-byte blocks proposed, lowered until slixmpp takes them.
    let peer = Peer::spawn(&server, &carol_jid, &["--receive"]);
    peer.expect("ready").await;
    let payload: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut h = StreamHasher::new();
    let sent = alice
        .send_ibb(
            &carol,
            "rust-1",
            65535,
            &mut Cursor::new(payload.clone()),
            None,
            &mut [&mut h],
        )
        .await
        .unwrap_or_else(|e| panic!("send to slixmpp failed: {e}\n{}", server.log_tail(20)));
    assert_eq!(sent, payload.len() as u64);
    let got = peer.expect("received").await;
    assert_eq!(got["bytes"], payload.len());
    assert_eq!(got["sha256"], hex_sha256(h));
    drop(peer);

    // slixmpp -> Rust.
    let mut incoming = alice.expect_ibb(carol.clone(), "py-1", 4096);
    let peer = Peer::spawn(
        &server,
        &carol_jid,
        &["--send", "200000", "--to", &alice_jid, "--sid", "py-1"],
    );
    let mut out = Vec::new();
    let mut h = StreamHasher::new();
    let n = incoming.read_into(&mut out, &mut h).await.unwrap();
    let sent = peer.expect("sent").await;
    assert_eq!(n, 200_000);
    assert_eq!(sent["bytes"], 200_000);
    assert_eq!(sent["sha256"], hex_sha256(h));
}
