//! `jingle-send` and `jingle-receive` as processes, between two accounts of a real Prosody: a file of a
//! few MiB arrives over SOCKS5 with the sender's sha-256; a receiver that takes only in-band
//! bytestreams gets the next file over IBB after the sender's fallback, and the file's hostile offered
//! name (`../../etc/x`) is stored inside the directory, without overwriting a file already there; an
//! offer over `--max-size` is refused and the sender says so; files encrypted with JET in OMEMO:2 and
//! legacy OMEMO are decrypted by the receiver; encrypted offers without OMEMO, and plain ones to a
//! receiver requiring encryption, are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{describe, event_line, Proc};
use xmpp_jingle::hashes::StreamHasher;
use xmpp_social_examples::jingle::sha256_hex;
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "jingle-pw";
/// Receiver's full JID (a fixed resource, so the sender knows where to offer).
const BOB: &str = "bob@localhost/files";
/// Large blocks: in-band bytestreams move one block per round trip.
const BLOCK: &str = "65535";
/// Size of the first file.
const SIZE: u64 = 4 << 20;

/// `jingle-receive --once` as bob, the password from the environment.
fn receiver(server: &Server, dir: &Path, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jingle-receive"));
    cmd.args(["--server", &server.c2s_addr().to_string(), "--jid", BOB])
        .env("XMPP_PASSWORD", PW)
        .args(["--once", "--json", "--block-size", BLOCK, "--dir"])
        .arg(dir)
        .args(extra);
    let p = Proc::spawn("jingle-receive", cmd);
    let ready = p.expect_event("ready", Duration::from_secs(60));
    assert_eq!(ready["jid"], BOB);
    p
}

/// `jingle-send` as alice to bob.
fn send(server: &Server, file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jingle-send"))
        .args(["--server", &server.c2s_addr().to_string()])
        .args(["--jid", "alice@localhost", "--password", PW, "--to", BOB])
        .args(["--json", "--block-size", BLOCK])
        .args(extra)
        .arg(file)
        .output()
        .expect("run jingle-send")
}

fn sent_line(out: &Output) -> Value {
    event_line(out, "jingle-send", "sent")
}

fn write_random(path: &Path, len: usize) -> String {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::File::create(path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    sha256_of(path)
}

fn sha256_of(path: &Path) -> String {
    let mut h = StreamHasher::new();
    h.update(&std::fs::read(path).unwrap());
    sha256_hex(&h.finish()).unwrap()
}

/// The regular files of `dir` (no leftovers of temporary files allowed).
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn jingle_send_and_receive_through_prosody() {
    let server = Server::start(ServerKind::Prosody, &[("alice", PW), ("bob", PW)])
        .unwrap_or_else(|e| panic!("Prosody did not start: {e}"));
    let work = tempfile::tempdir().unwrap();
    let inbox = work.path().join("inbox");
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();

    // 1. A 4 MiB file over SOCKS5: the receiver stores it under its name, with the sender's sha-256.
    let file = src.join("photo album.bin");
    let sha = write_random(&file, SIZE as usize);
    let mut rx = receiver(&server, &inbox, &[]);
    let started = Instant::now();
    let out = send(&server, &file, &[]);
    assert!(
        out.status.success(),
        "jingle-send: {}\nreceiver:\n{}\nserver:\n{}",
        describe(&out),
        rx.output(),
        server.log_tail(30)
    );
    let secs = started.elapsed().as_secs_f64();
    let sent = sent_line(&out);
    assert_eq!(sent["sha256"], sha.as_str(), "{sent}");
    assert_eq!(sent["size"], SIZE);
    assert_eq!(sent["bytes_sent"], SIZE);
    assert_eq!(sent["transport"], "socks5");
    let offer = rx.expect_event("offer", Duration::from_secs(30));
    assert_eq!(offer["name"], "photo album.bin");
    assert_eq!(offer["size"], SIZE);
    let got = rx.expect_event("received", Duration::from_secs(30));
    assert!(rx.wait(Duration::from_secs(30)), "{}", rx.output());
    assert_eq!(got["sha256"], sha.as_str());
    assert_eq!(got["hash"], "sha-256");
    assert_eq!(got["transport"], "socks5");
    assert!(
        got["from"]
            .as_str()
            .unwrap()
            .starts_with("alice@localhost/"),
        "{got}"
    );
    let stored = PathBuf::from(got["path"].as_str().unwrap());
    assert_eq!(
        stored,
        inbox.canonicalize().unwrap().join("photo album.bin")
    );
    assert_eq!(sha256_of(&stored), sha);
    println!(
        "jingle-send -> jingle-receive over SOCKS5: {} MiB in {secs:.1} s ({:.2} MiB/s, process start \
         and login included)",
        SIZE >> 20,
        (SIZE >> 20) as f64 / secs
    );

    // 2. A receiver taking only in-band bytestreams: the sender falls back to IBB. The hostile name
    //    stays inside the directory and does not overwrite the file already named so.
    std::fs::write(inbox.join("x"), b"already here").unwrap();
    let small = src.join("small.txt");
    let small_sha = write_random(&small, 200_000);
    let mut rx = receiver(&server, &inbox, &["--transport", "ibb"]);
    let out = send(&server, &small, &["--name", "../../etc/x"]);
    assert!(out.status.success(), "jingle-send: {}", describe(&out));
    assert_eq!(sent_line(&out)["transport"], "ibb");
    let offer = rx.expect_event("offer", Duration::from_secs(30));
    assert_eq!(offer["name"], "../../etc/x");
    let got = rx.expect_event("received", Duration::from_secs(30));
    assert!(rx.wait(Duration::from_secs(30)), "{}", rx.output());
    assert_eq!(got["transport"], "ibb");
    let stored = PathBuf::from(got["path"].as_str().unwrap());
    assert_eq!(stored, inbox.canonicalize().unwrap().join("x (1)"));
    assert_eq!(sha256_of(&stored), small_sha);
    assert_eq!(std::fs::read(inbox.join("x")).unwrap(), b"already here");
    assert!(!work.path().join("etc").exists());
    assert_eq!(files_in(&inbox), ["photo album.bin", "x", "x (1)"]);

    // 3. Over --max-size: refused before any data moves; the sender says why and fails.
    let mut rx = receiver(&server, &inbox, &["--max-size", "10K"]);
    let out = send(&server, &small, &[]);
    assert!(
        !out.status.success(),
        "jingle-send succeeded: {}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("too large"), "{}", describe(&out));
    let refused = rx.expect_event("rejected", Duration::from_secs(30));
    assert_eq!(refused["name"], "small.txt");
    assert!(
        !rx.wait(Duration::from_secs(30)),
        "--once after a refusal exits 1"
    );
    assert_eq!(files_in(&inbox), ["photo album.bin", "x", "x (1)"]);

    // 4. Encrypted (JET) in both OMEMO namespaces, over SOCKS5: the receiver decrypts, the plaintext
    //    hash matches, the transport carried the file plus the 16-byte tag.
    let secret = src.join("secret.bin");
    let secret_sha = write_random(&secret, 1 << 20);
    for (flag, ns) in [(None, "omemo2"), (Some("--legacy"), "legacy")] {
        let mut rx = receiver(&server, &inbox, &["--omemo", "--require-encryption"]);
        let mut extra = vec!["--encrypt"];
        extra.extend(flag);
        let out = send(&server, &secret, &extra);
        assert!(
            out.status.success(),
            "jingle-send --encrypt ({ns}): {}\nreceiver:\n{}",
            describe(&out),
            rx.output()
        );
        let sent = sent_line(&out);
        assert_eq!(sent["encrypted"], ns, "{sent}");
        assert_eq!(sent["wire_bytes"], (1 << 20) + 16, "{sent}");
        assert_eq!(sent["sha256"], secret_sha.as_str());
        let offer = rx.expect_event("offer", Duration::from_secs(30));
        assert_eq!(offer["encrypted"], ns);
        let got = rx.expect_event("received", Duration::from_secs(30));
        assert!(rx.wait(Duration::from_secs(30)), "{}", rx.output());
        assert_eq!(got["encrypted"], ns);
        assert_eq!(got["sha256"], secret_sha.as_str());
        assert_eq!(got["hash"], "sha-256");
        assert_eq!(
            sha256_of(Path::new(got["path"].as_str().unwrap())),
            secret_sha
        );
    }
    assert_eq!(
        files_in(&inbox),
        [
            "photo album.bin",
            "secret (1).bin",
            "secret.bin",
            "x",
            "x (1)"
        ]
    );

    // 5. An encrypted offer to a receiver without OMEMO, and a plain one to a receiver requiring
    //    encryption: both refused, both senders fail saying so.
    let mut rx = receiver(&server, &inbox, &[]);
    let out = send(&server, &secret, &["--encrypt", "--accept-timeout", "60"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("security"),
        "{}\nreceiver:\n{}\nserver:\n{}",
        describe(&out),
        rx.output(),
        server.log_tail(40)
    );
    let refused = rx.expect_event("rejected", Duration::from_secs(30));
    assert!(
        refused["reason"].as_str().unwrap().contains("--omemo"),
        "{refused}"
    );
    assert!(!rx.wait(Duration::from_secs(30)));
    let mut rx = receiver(&server, &inbox, &["--omemo", "--require-encryption"]);
    let out = send(&server, &secret, &["--accept-timeout", "60"]);
    assert!(!out.status.success(), "{}", describe(&out));
    rx.expect_event("rejected", Duration::from_secs(30));
    assert!(!rx.wait(Duration::from_secs(30)));
    assert_eq!(files_in(&inbox).len(), 5);

    // 6. A bare JID is refused by the sender with a clear message.
    let out = Command::new(env!("CARGO_BIN_EXE_jingle-send"))
        .args(["--server", &server.c2s_addr().to_string()])
        .args(["--jid", "alice@localhost", "--password", PW])
        .args(["--to", "bob@localhost"])
        .arg(&small)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("full JID"),
        "{}",
        describe(&out)
    );
}
