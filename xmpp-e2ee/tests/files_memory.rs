//! A 1 GiB file encrypted and decrypted through the streaming file API in a child process whose peak
//! resident memory (VmHWM from /proc) must stay under 64 MiB; the decrypted output's SHA-256 must
//! equal the input's.
//!
//! The child is this test binary itself, re-run on the `memory_child_entry` test with an environment
//! variable naming the work directory (no extra binary needed).
#![allow(clippy::unwrap_used)]

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use xmpp_e2ee::files::aesgcm::{decrypt_to_file, encrypt_stream};
use xmpp_e2ee::files::{Encryptor, FileKey};

const CHILD_ENV: &str = "XMPP_E2EE_FILES_MEMORY_CHILD";
const SIZE: u64 = 1 << 30;
const LIMIT_KIB: u64 = 64 * 1024;

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn work_dir() -> tempfile::TempDir {
    // Two 1 GiB files exist at once: RAM-backed /dev/shm when there is plenty of memory.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && mem_available_kib() > 8 * 1024 * 1024 {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("xmpp-e2ee-mem")
            .tempdir_in(shm)
        {
            return d;
        }
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
    std::fs::create_dir_all(&target).unwrap();
    tempfile::Builder::new()
        .prefix("xmpp-e2ee-mem")
        .tempdir_in(target)
        .unwrap()
}

fn sha256_file(path: &Path) -> [u8; 32] {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().into()
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Entry point of the child process (does nothing unless started by the parent test below).
#[test]
fn memory_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let key = FileKey::Aes256([7u8; 32]);
    let iv = [9u8; 12];
    let input = std::fs::File::open(dir.join("input")).unwrap();
    let enc = std::fs::File::create(dir.join("enc")).unwrap();
    let n = encrypt_stream(&key, &iv, input, enc, |_| {}).unwrap();
    assert_eq!(n, SIZE);
    std::fs::remove_file(dir.join("input")).unwrap();
    let enc = std::fs::File::open(dir.join("enc")).unwrap();
    let n = decrypt_to_file(&key, &iv, enc, &dir.join("output"), None, |_| {}).unwrap();
    assert_eq!(n, SIZE);
    std::fs::remove_file(dir.join("enc")).unwrap();
    println!("VMHWM_KIB={}", vm_hwm_kib());
}

#[test]
fn one_gib_round_trip_in_constant_memory() {
    let dir = work_dir();
    // Input generated streaming: a seeded keystream (AES-CTR of zeros under a fixed key, via the
    // encryptor, which is fast where a ChaCha RNG is not in an unoptimised test build), hashed on the way.
    let mut gen = Encryptor::new(&FileKey::Aes128([1u8; 16]), &[2u8; 12]).unwrap();
    let mut w = BufWriter::new(std::fs::File::create(dir.path().join("input")).unwrap());
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..(SIZE / buf.len() as u64) {
        buf.fill(0);
        gen.update(&mut buf).unwrap();
        h.update(&buf);
        w.write_all(&buf).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let input_sha: [u8; 32] = h.finalize().into();

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split("VMHWM_KIB=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VMHWM_KIB line in: {stdout}"));
    println!(
        "1 GiB encrypt + decrypt: peak RSS {} KiB ({:.1} MiB)",
        peak,
        peak as f64 / 1024.0
    );
    assert!(peak < LIMIT_KIB, "peak RSS {peak} KiB >= 64 MiB");
    let output = dir.path().join("output");
    assert_eq!(std::fs::metadata(&output).unwrap().len(), SIZE);
    assert_eq!(sha256_file(&output), input_sha);
}
