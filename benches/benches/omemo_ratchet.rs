//! OMEMO ratchet: one 200-byte message from Alice to Bob on an established session, end to end:
//! payload encryption (`payload::encrypt`), ratchet encryption of the key material (`Session::encrypt`),
//! ratchet decryption (`Session::decrypt`), payload decryption (`payload::decrypt`); for both profiles
//! (OMEMO:2 and legacy). The same is timed for vodozemac's Olm session (`encrypt`, `to_parts`,
//! `from_parts`, `decrypt`), the reference Rust Double Ratchet, and for python-omemo 2.1 (twomemo,
//! oldmemo; benches/python/omemo_ratchet.py, run with the venv `.ci/run` makes at
//! `target/omemo-peer-venv`, or `XMPP_E2EE_PEER_PYTHON`).
//!
//! Two shapes: `one_way` (Alice keeps sending: symmetric ratchet steps only) and `ping_pong` (the
//! direction alternates: one DH ratchet step per message).
//!
//! Acceptance criterion: ours within 1.5x of vodozemac (`one_way`). Besides criterion's report, `main`
//! times everything with plain interleaved loops (best round) and prints `ratio ours/vodozemac` and
//! `python-omemo/ours`.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use vodozemac::olm::{Account, OlmMessage, Session as OlmSession, SessionConfig};
use xmpp_e2ee::omemo::{payload, DeviceKeys, Profile, Session};

const MESSAGE_LEN: usize = 200;

fn message() -> Vec<u8> {
    (0..MESSAGE_LEN).map(|i| i as u8).collect()
}

/// Two established sessions of our core: a key exchange, a reply, three messages each way.
fn ours_pair(profile: Profile) -> (Session, Session) {
    let alice = DeviceKeys::generate(1);
    let mut bob = DeviceKeys::generate(1);
    let mut a = alice.initiate(&bob.bundle(profile)).expect("initiate");
    let first = a.encrypt(b"hello").expect("encrypt");
    let (mut b, _) = bob.accept(profile, &first.data).expect("accept");
    let msg = message();
    for _ in 0..3 {
        assert_eq!(ours_message(profile, &mut b, &mut a, &msg), msg);
        assert_eq!(ours_message(profile, &mut a, &mut b, &msg), msg);
    }
    assert!(a.is_confirmed());
    (a, b)
}

/// One message `from` -> `to`, everything a client does with the bytes.
fn ours_message(profile: Profile, from: &mut Session, to: &mut Session, msg: &[u8]) -> Vec<u8> {
    let (km, body) = payload::encrypt(profile, msg);
    let key = from.encrypt(&km).expect("encrypt");
    let km = to.decrypt(&key.data, key.key_exchange).expect("decrypt");
    payload::decrypt(profile, &km, &body).expect("payload")
}

/// Two established vodozemac Olm sessions, set up the same way.
fn olm_pair() -> (OlmSession, OlmSession) {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let otk = *bob.one_time_keys().values().next().expect("one-time key");
    bob.mark_keys_as_published();
    let mut a = alice
        .create_outbound_session(SessionConfig::version_1(), bob.curve25519_key(), otk)
        .expect("outbound");
    let OlmMessage::PreKey(first) = a.encrypt("hello").expect("encrypt") else {
        unreachable!("the first message is a pre-key message")
    };
    let mut b = bob
        .create_inbound_session(SessionConfig::version_1(), alice.curve25519_key(), &first)
        .expect("inbound")
        .session;
    let msg = message();
    for _ in 0..3 {
        assert_eq!(olm_message(&mut b, &mut a, &msg), msg);
        assert_eq!(olm_message(&mut a, &mut b, &msg), msg);
    }
    (a, b)
}

/// One Olm message `from` -> `to`, through its wire form.
fn olm_message(from: &mut OlmSession, to: &mut OlmSession, msg: &[u8]) -> Vec<u8> {
    let (kind, bytes) = from.encrypt(msg).expect("encrypt").to_parts();
    let m = OlmMessage::from_parts(kind, &bytes).expect("parse");
    to.decrypt(&m).expect("decrypt")
}

fn benches(c: &mut Criterion) {
    let msg = message();
    for (shape, ping_pong) in [("one_way", false), ("ping_pong", true)] {
        let mut group = c.benchmark_group(format!("omemo_ratchet_{shape}"));
        for (name, profile) in [
            ("ours_omemo2", Profile::Omemo2),
            ("ours_legacy", Profile::Legacy),
        ] {
            let (mut a, mut b) = ours_pair(profile);
            let mut turn = false;
            group.bench_function(name, |bench| {
                bench.iter(|| {
                    turn ^= ping_pong;
                    let (from, to) = if turn {
                        (&mut b, &mut a)
                    } else {
                        (&mut a, &mut b)
                    };
                    ours_message(profile, from, to, black_box(&msg))
                })
            });
        }
        let (mut a, mut b) = olm_pair();
        let mut turn = false;
        group.bench_function("vodozemac_olm", |bench| {
            bench.iter(|| {
                turn ^= ping_pong;
                let (from, to) = if turn {
                    (&mut b, &mut a)
                } else {
                    (&mut a, &mut b)
                };
                olm_message(from, to, black_box(&msg))
            })
        });
        group.finish();
    }
}

/// Mean time per message over `iters` messages; `ping_pong` alternates the direction.
fn time_pair<S>(
    iters: u32,
    ping_pong: bool,
    (a, b): &mut (S, S),
    mut one: impl FnMut(&mut S, &mut S) -> Vec<u8>,
) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        if ping_pong && i % 2 == 1 {
            black_box(one(b, a));
        } else {
            black_box(one(a, b));
        }
    }
    start.elapsed() / iters
}

/// Figures of python-omemo (twomemo, oldmemo) in microseconds per message, or why there are none.
fn python_omemo(full: bool) -> Result<(f64, f64), String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("XMPP_E2EE_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/omemo-peer-venv/bin/python"));
    if !python.exists() {
        return Err(format!(
            "no python-omemo venv at {} (made by .ci/run from xmpp-e2ee/tests/peer/requirements.txt; \
             or set XMPP_E2EE_PEER_PYTHON)",
            python.display()
        ));
    }
    let (iters, rounds) = if full { ("2000", "5") } else { ("20", "1") };
    let out = Command::new(&python)
        .arg(manifest.join("python/omemo_ratchet.py"))
        .args([iters, rounds])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "benches/python/omemo_ratchet.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("unexpected output of omemo_ratchet.py: {e}"))?;
    match (v["twomemo_us"].as_f64(), v["oldmemo_us"].as_f64()) {
        (Some(two), Some(old)) => Ok((two, old)),
        _ => Err(format!("unexpected output of omemo_ratchet.py: {v}")),
    }
}

/// Times every implementation with plain loops, interleaved round by round so that load from other
/// processes hits all alike, keeps each one's best round, and prints the ratios.
fn print_ratios(full: bool) {
    let (rounds, iters) = if full { (15, 5_000) } else { (1, 100) };
    let msg = message();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut one_way_ours = [0.0f64; 2];
    for (shape, ping_pong) in [("one way", false), ("ping-pong", true)] {
        let mut two = ours_pair(Profile::Omemo2);
        let mut legacy = ours_pair(Profile::Legacy);
        let mut olm = olm_pair();
        let mut best = [Duration::MAX; 3];
        for _ in 0..rounds {
            best[0] = best[0].min(time_pair(iters, ping_pong, &mut two, |f, t| {
                ours_message(Profile::Omemo2, f, t, black_box(&msg))
            }));
            best[1] = best[1].min(time_pair(iters, ping_pong, &mut legacy, |f, t| {
                ours_message(Profile::Legacy, f, t, black_box(&msg))
            }));
            best[2] = best[2].min(time_pair(iters, ping_pong, &mut olm, |f, t| {
                olm_message(f, t, black_box(&msg))
            }));
        }
        println!(
            "\nOMEMO ratchet, {MESSAGE_LEN}-byte message, encrypt + decrypt, {shape} \
             (best of {rounds} rounds x {iters} messages):"
        );
        println!("  ours, OMEMO:2        : {:>8.2} us", us(best[0]));
        println!("  ours, legacy         : {:>8.2} us", us(best[1]));
        println!("  vodozemac Olm        : {:>8.2} us", us(best[2]));
        println!(
            "ratio ours/vodozemac ({shape}): OMEMO:2 {:.3}, legacy {:.3}",
            us(best[0]) / us(best[2]),
            us(best[1]) / us(best[2])
        );
        if !ping_pong {
            one_way_ours = [us(best[0]), us(best[1])];
        }
    }
    match python_omemo(full) {
        Ok((two, old)) => {
            println!("\npython-omemo 2.1, same message, one way: twomemo {two:.2} us, oldmemo {old:.2} us");
            println!(
                "python-omemo/ours = {:.1} x (twomemo/OMEMO:2), {:.1} x (oldmemo/legacy)",
                two / one_way_ours[0],
                old / one_way_ours[1]
            );
        }
        Err(why) => println!("\npython-omemo comparison NOT RUN: {why}"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (quick smoke run then).
    let full = std::env::args().any(|a| a == "--bench");
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    print_ratios(full);
}
