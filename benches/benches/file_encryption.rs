//! File encryption: xmpp-e2ee's streaming AES-256-GCM (`files::Encryptor`, AES-CTR + GHASH interleaved
//! per 16 KiB slice) against the one-shot `aes-gcm` crate's `encrypt_inout_detached` on the same 64 MiB
//! buffer, in the same run.
//!
//! Acceptance criterion: streaming at least as fast as one-shot. Besides criterion's report, `main`
//! times both with plain loops (interleaved rounds, best round kept) and prints
//! `streaming / one-shot throughput ratio: X`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use criterion::{Criterion, Throughput};
use xmpp_e2ee::files::{Encryptor, FileKey};

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

fn time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn print_ratio(buf: &mut [u8], full: bool) {
    let rounds = if full { 15 } else { 1 };
    let cipher = Aes256Gcm::new((&KEY).into());
    // Same output, checked once: the comparison is of equal work.
    let mut a = buf.to_vec();
    let mut b = buf.to_vec();
    assert_eq!(one_shot(&cipher, &mut a), streaming(&mut b, 256 * 1024));
    assert_eq!(a, b);
    drop((a, b));
    let (mut os, mut st) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        os = os.min(time(|| {
            black_box(one_shot(&cipher, black_box(&mut *buf)));
        }));
        st = st.min(time(|| {
            black_box(streaming(black_box(&mut *buf), 256 * 1024));
        }));
    }
    let mib_s = |d: Duration| buf.len() as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
    println!(
        "\nAES-256-GCM over {} MiB (best of {rounds} rounds):",
        buf.len() >> 20
    );
    println!(
        "  (a) aes-gcm one-shot encrypt_inout_detached: {:>8.1} MiB/s",
        mib_s(os)
    );
    println!(
        "  (b) streaming Encryptor, 256 KiB pieces:     {:>8.1} MiB/s",
        mib_s(st)
    );
    println!(
        "streaming / one-shot throughput ratio: {:.3}",
        os.as_secs_f64() / st.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (quick smoke run then).
    let full = std::env::args().any(|a| a == "--bench");
    let mut buf = vec![0u8; if full { SIZE } else { 1 << 20 }];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8);
    }
    if full {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion, &mut buf);
        criterion.final_summary();
    }
    print_ratio(&mut buf, full);
}
