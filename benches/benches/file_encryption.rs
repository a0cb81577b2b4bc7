//! File encryption: xmpp-e2ee's streaming AES-256-GCM (`files::Encryptor`: on x86-64 with AES-NI and
//! PCLMULQDQ its fused kernel, eight blocks of AES-CTR and GHASH per step; elsewhere `ctr` + `ghash`
//! per 16 KiB slice) against the one-shot `aes-gcm` crate's `encrypt_inout_detached` on the same 64 MiB
//! buffer, in the same run. Decryption (`files::Decryptor` against `decrypt_inout_detached`) is printed
//! too.
//!
//! Acceptance criterion: streaming at least as fast as one-shot. Besides criterion's report, `main`
//! times both with plain loops (rounds alternating which runs first) on this thread's CPU time as well as
//! wall time (on a shared machine, wall time also counts the moments other processes held the core) and
//! prints `streaming / one-shot throughput ratio: ...` (best round, and the median of per-round ratios).
//! `cargo bench -p xmpp-social-benches --bench file_encryption -- --ratio-only` skips criterion.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use criterion::{Criterion, Throughput};
use xmpp_e2ee::files::{Decryptor, Encryptor, FileKey};

const SIZE: usize = 64 * 1024 * 1024;
const KEY: [u8; 32] = [0x42; 32];
const IV: [u8; 12] = [0x24; 12];

/// Streaming encryption of `buf` in pieces of `piece` bytes (what a file reader would hand over).
fn streaming(buf: &mut [u8], piece: usize) -> [u8; 16] {
    let mut enc = Encryptor::new(&FileKey::Aes256(KEY), &IV).expect("valid key and IV");
    for chunk in buf.chunks_mut(piece) {
        enc.update(chunk).expect("under the GCM limit");
    }
    enc.finish()
}

/// Streaming decryption of `buf` in pieces; whether the tag verified.
fn streaming_decrypt(buf: &mut [u8], piece: usize, tag: &[u8; 16]) -> bool {
    let mut dec = Decryptor::new(&FileKey::Aes256(KEY), &IV).expect("valid key and IV");
    for chunk in buf.chunks_mut(piece) {
        dec.update(chunk).expect("under the GCM limit");
    }
    dec.finish(tag).is_ok()
}

/// One-shot decryption (tag checked first, then decrypted); whether the tag verified.
fn one_shot_decrypt(cipher: &Aes256Gcm, buf: &mut [u8], tag: &[u8; 16]) -> bool {
    cipher
        .decrypt_inout_detached((&IV).into(), b"", buf.into(), tag.into())
        .is_ok()
}

fn one_shot(cipher: &Aes256Gcm, buf: &mut [u8]) -> [u8; 16] {
    let tag = cipher
        .encrypt_inout_detached((&IV).into(), b"", buf.into())
        .expect("under the GCM limit");
    tag.into()
}

fn benches(c: &mut Criterion, buf: &mut [u8]) {
    let cipher = Aes256Gcm::new((&KEY).into());
    let mut group = c.benchmark_group("file_encryption_64MiB");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.sample_size(10);
    group.bench_function("a_aes_gcm_one_shot", |b| {
        b.iter(|| one_shot(&cipher, black_box(&mut *buf)))
    });
    group.bench_function("b_streaming_256KiB_pieces", |b| {
        b.iter(|| streaming(black_box(&mut *buf), 256 * 1024))
    });
    group.finish();
}

/// Wall-clock and on-CPU time of this thread (the machine is shared: CPU time leaves out the time other
/// processes held the core, which wall time counts).
fn time(mut f: impl FnMut()) -> (Duration, Duration) {
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let (wall0, cpu0) = (Instant::now(), cpu());
    f();
    (wall0.elapsed(), cpu().saturating_sub(cpu0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `(a)` and `(b)` on the same buffer, `rounds` times, alternating which runs first; `prepare`
/// refills the buffer before each run (not timed). Prints the figures and the `(b) / (a)` throughput
/// ratio: best CPU time, median of per-round CPU-time ratios, best wall time.
fn compare(
    title: &str,
    names: [&str; 2],
    rounds: usize,
    buf: &mut [u8],
    prepare: &mut dyn FnMut(&mut [u8]),
    run: &mut dyn FnMut(usize, &mut [u8]),
) {
    let mut best = [(Duration::MAX, Duration::MAX); 2];
    let mut paired = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut one = |which: usize, buf: &mut [u8]| {
            prepare(buf);
            let t = time(|| run(which, black_box(&mut *buf)));
            best[which] = (best[which].0.min(t.0), best[which].1.min(t.1));
            t.1
        };
        // Alternate which one runs first, so neither always gets the warmer cache or the quieter moment.
        let (a, b) = if round % 2 == 0 {
            let a = one(0, buf);
            (a, one(1, buf))
        } else {
            let b = one(1, buf);
            (one(0, buf), b)
        };
        paired.push(a.as_secs_f64() / b.as_secs_f64());
    }
    let mib_s = |d: Duration| buf.len() as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
    println!(
        "\n{title} over {} MiB ({rounds} rounds, order alternated; best round; MiB/s of CPU time):",
        buf.len() >> 20
    );
    for (name, (wall, cpu)) in names.iter().zip(best) {
        println!(
            "  {name:<48} {:>8.1} MiB/s ({:>8.1} MiB/s wall)",
            mib_s(cpu),
            mib_s(wall)
        );
    }
    println!(
        "{title}: streaming / one-shot throughput ratio: {:.3} (best CPU time), {:.3} (median of per-round CPU-time ratios), {:.3} (best wall time)",
        best[0].1.as_secs_f64() / best[1].1.as_secs_f64(),
        median(paired),
        best[0].0.as_secs_f64() / best[1].0.as_secs_f64()
    );
}

fn print_ratio(buf: &mut [u8], full: bool) {
    let rounds = if full { 31 } else { 1 };
    let cipher = Aes256Gcm::new((&KEY).into());
    // Same output, checked once: the comparison is of equal work.
    let plain = buf.to_vec();
    let mut ct = buf.to_vec();
    let mut b = buf.to_vec();
    let tag = one_shot(&cipher, &mut ct);
    assert_eq!(tag, streaming(&mut b, 256 * 1024));
    assert_eq!(ct, b);
    assert!(streaming_decrypt(&mut b, 256 * 1024, &tag));
    assert_eq!(b, plain);
    drop(b);
    let piece = 256 * 1024;
    compare(
        "AES-256-GCM encryption",
        [
            "(a) aes-gcm one-shot encrypt_inout_detached:",
            "(b) streaming Encryptor, 256 KiB pieces:",
        ],
        rounds,
        buf,
        &mut |_| {},
        &mut |which, buf| {
            if which == 0 {
                black_box(one_shot(&cipher, buf));
            } else {
                black_box(streaming(buf, piece));
            }
        },
    );
    // Decryption starts from the real ciphertext each time, so that both verify the tag and decrypt
    // (the one-shot crate decrypts nothing when the tag is wrong).
    compare(
        "AES-256-GCM decryption",
        [
            "(a) aes-gcm one-shot decrypt_inout_detached:",
            "(b) streaming Decryptor, 256 KiB pieces:",
        ],
        rounds,
        buf,
        &mut |buf| buf.copy_from_slice(&ct),
        &mut |which, buf| {
            let ok = if which == 0 {
                one_shot_decrypt(&cipher, buf, &tag)
            } else {
                streaming_decrypt(buf, piece, &tag)
            };
            assert!(ok, "the tag verifies");
        },
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (quick smoke run then).
    let full = std::env::args().any(|a| a == "--bench");
    // `-- --ratio-only`: skip criterion, print the side-by-side figures only.
    let ratio_only = std::env::args().any(|a| a == "--ratio-only");
    let mut buf = vec![0u8; if full { SIZE } else { 1 << 20 }];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8);
    }
    if full && !ratio_only {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion, &mut buf);
        criterion.final_summary();
    }
    print_ratio(&mut buf, full);
}
