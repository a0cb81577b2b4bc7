//! aesgcm:// interop with an independent implementation: pyca/cryptography's AESGCM
//! (tests/peer/files_peer.py in target/files-peer-venv, prepared by `.ci/setup-files-peer.sh`).
//! Both directions, both IV lengths, several sizes; a tampered file is refused by both sides.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use rand::{RngCore, SeedableRng};
use xmpp_e2ee::files::aesgcm::{decrypt_to_file, encrypt_stream};
use xmpp_e2ee::files::{AesgcmUrl, FileCryptoError};

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let py = root.join("target/files-peer-venv/bin/python");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", "import cryptography"])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the Python peer is missing: run `.ci/setup-files-peer.sh` (creates target/files-peer-venv \
         with pinned pyca/cryptography; needs python3 and python3-venv)"
    );
    py
}

fn peer(args: &[&str]) -> std::process::Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peer/files_peer.py");
    Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn python_cryptography_and_our_streams_agree() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for size in [0usize, 1, 15, 16, 17, 300_001, 3 * 256 * 1024 + 5] {
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        std::fs::write(p("plain"), &data).unwrap();
        for iv_len in [12usize, 16] {
            // Ours -> Python.
            let key = xmpp_e2ee::files::FileKey::random_aes256();
            let mut iv = vec![0u8; iv_len];
            rng.fill_bytes(&mut iv);
            let url = AesgcmUrl::from_https("https://files.example/a/b.bin", &iv, key.as_bytes())
                .unwrap();
            let out = std::fs::File::create(p("ours.enc")).unwrap();
            encrypt_stream(&key, &iv, &data[..], out, |_| {}).unwrap();
            let o = peer(&[
                "decrypt",
                &url.to_string(),
                p("ours.enc").to_str().unwrap(),
                p("py.dec").to_str().unwrap(),
            ]);
            assert!(
                o.status.success(),
                "python decrypt {size}/{iv_len}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(std::fs::read(p("py.dec")).unwrap(), data, "{size}/{iv_len}");

            // Python -> ours, from the URL text Python printed.
            let o = peer(&[
                "encrypt",
                "files.example/c.bin",
                &iv_len.to_string(),
                p("plain").to_str().unwrap(),
                p("py.enc").to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8(o.stdout).unwrap();
            let url: AesgcmUrl = text.trim().parse().unwrap();
            assert_eq!(url.iv().len(), iv_len);
            let enc = std::fs::read(p("py.enc")).unwrap();
            assert_eq!(enc.len(), size + 16);
            let target = p("ours.dec");
            let n = decrypt_to_file(&url.key(), url.iv(), &enc[..], &target, None, |_| {}).unwrap();
            assert_eq!(n, size as u64);
            assert_eq!(std::fs::read(&target).unwrap(), data);
            std::fs::remove_file(&target).unwrap();

            // Tampered: both refuse.
            let mut bad = enc.clone();
            let i = size / 2;
            bad[i] ^= 0x20;
            std::fs::write(p("bad.enc"), &bad).unwrap();
            let err =
                decrypt_to_file(&url.key(), url.iv(), &bad[..], &target, None, |_| {}).unwrap_err();
            assert!(matches!(err, FileCryptoError::TagMismatch), "{err:?}");
            assert!(!target.exists());
            let o = peer(&[
                "decrypt",
                text.trim(),
                p("bad.enc").to_str().unwrap(),
                p("py.bad").to_str().unwrap(),
            ]);
            assert_eq!(o.status.code(), Some(2));
        }
    }
}
