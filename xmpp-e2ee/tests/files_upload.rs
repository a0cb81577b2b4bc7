//! Encrypted XEP-0363 upload to Prosody's mod_http_file_share and download back (feature `http-upload`,
//! enabled for the tests through the crate's dev-dependency on itself).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use xmpp_e2ee::files::upload::{FileTransfer, HttpConfig, HttpUploadExt, UploadError};
use xmpp_e2ee::files::{AesgcmUrl, FileCryptoError, FileKey};
use xmpp_social::client::XmppClient;
use xmpp_testkit::{Server, ServerKind, HTTP_UPLOAD_MAX_FILE_SIZE};

const PW: &str = "secret-pw";

fn transfer() -> FileTransfer {
    FileTransfer::new(HttpConfig {
        allow_plain_http_loopback: true,
        ..HttpConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_upload_and_download_through_prosody() {
    let server = tokio::task::spawn_blocking(|| {
        Server::start(ServerKind::Prosody, &[("alice", PW), ("bob", PW)])
            .unwrap_or_else(|e| panic!("Prosody did not start: {e}"))
    })
    .await
    .unwrap();
    let service = server
        .http_upload_service()
        .expect("the testkit's Prosody serves mod_http_file_share");
    let login = |user: &str| {
        let jid = format!("{user}@{}", server.domain());
        let addr = server.c2s_addr();
        async move {
            XmppClient::connect_plaintext_loopback(&jid, PW, addr)
                .await
                .unwrap()
        }
    };
    let alice = login("alice").await;
    let bob = login("bob").await;

    // Discovery: the component and its limit.
    let found = alice.discover_upload_service().await.unwrap();
    assert_eq!(found.jid.to_string(), service);
    assert_eq!(found.max_file_size, Some(HTTP_UPLOAD_MAX_FILE_SIZE));

    let dir = tempfile::tempdir().unwrap();
    let http = transfer();
    for size in [0usize, 1, 5 * 1024 * 1024 + 3] {
        let mut data = vec![0u8; size];
        rand::rngs::StdRng::seed_from_u64(size as u64).fill_bytes(&mut data);
        let src = dir.path().join(format!("in-{size}.bin"));
        std::fs::write(&src, &data).unwrap();

        let seen = Arc::new(AtomicU64::new(0));
        let s2 = seen.clone();
        let up = http
            .upload_encrypted(
                &alice,
                &src,
                Some("application/octet-stream"),
                Some(Box::new(move |done, total| {
                    assert!(done <= total);
                    s2.store(done, Ordering::SeqCst);
                })),
            )
            .await
            .unwrap_or_else(|e| panic!("upload of {size} bytes: {e}\n{}", server.log_tail(20)));
        assert_eq!(up.size, size as u64);
        assert_eq!(seen.load(Ordering::SeqCst), size as u64);
        assert_eq!(up.sha256.as_slice(), Sha256::digest(&data).as_slice());
        let text = up.url.to_string();
        assert!(text.starts_with("aesgcm://127.0.0.1:"), "{text}");

        // The server holds ciphertext || tag, not the plaintext.
        let stored = http_get(&up.get_url).await;
        assert_eq!(stored.len(), size + 16);
        if size > 64 {
            assert_ne!(&stored[..64], &data[..64]);
        }

        // Bob downloads from the URL text alone.
        let url: AesgcmUrl = text.parse().unwrap();
        let out = dir.path().join(format!("out-{size}.bin"));
        let got = Arc::new(AtomicU64::new(0));
        let g2 = got.clone();
        let n = http
            .download_aesgcm(
                &url,
                &out,
                Some(Box::new(move |done, _| g2.store(done, Ordering::SeqCst))),
            )
            .await
            .unwrap();
        assert_eq!(n, size as u64);
        assert_eq!(got.load(Ordering::SeqCst), size as u64);
        assert_eq!(std::fs::read(&out).unwrap(), data);
    }
    let _ = bob;

    // Wrong key: typed error, no file left behind.
    let src = dir.path().join("in-5242883.bin");
    let up = http
        .upload_encrypted(&alice, &src, None, None)
        .await
        .unwrap();
    let target = dir.path().join("tampered.bin");
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    let err = http
        .download_decrypted(
            &up.get_url,
            &FileKey::random_aes256(),
            up.url.iv(),
            &target,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, UploadError::Crypto(FileCryptoError::TagMismatch)),
        "{err:?}"
    );
    assert!(!target.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before.len());

    // Download cap.
    let small = FileTransfer::new(HttpConfig {
        allow_plain_http_loopback: true,
        max_download: 1000,
        ..HttpConfig::default()
    })
    .unwrap();
    let err = small
        .download_aesgcm(&up.url, &target, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Crypto(FileCryptoError::SizeLimit { limit: 1000 })
        ),
        "{err:?}"
    );
    assert!(!target.exists());

    // Oversized: the service refuses the slot with <file-too-large/>.
    let err = alice
        .request_slot(&found.jid, "big.bin", HTTP_UPLOAD_MAX_FILE_SIZE + 1, None)
        .await
        .unwrap_err();
    match err {
        UploadError::FileTooLarge { size, max } => {
            assert_eq!(size, HTTP_UPLOAD_MAX_FILE_SIZE + 1);
            assert_eq!(max, Some(HTTP_UPLOAD_MAX_FILE_SIZE));
        }
        other => panic!("expected FileTooLarge, got {other:?}"),
    }

    // Plain HTTP off loopback is refused before any connection; so is HTTP when not allowed.
    let err = http
        .download_decrypted(
            "http://example.org/x",
            &FileKey::random_aes256(),
            &[0; 12],
            &target,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::UrlRefused(_)), "{err:?}");
    let strict = FileTransfer::new(HttpConfig::default()).unwrap();
    let err = strict
        .download_aesgcm(&up.url, &target, None)
        .await
        .unwrap_err();
    assert!(!target.exists(), "{err:?}");
}

async fn http_get(url: &str) -> Vec<u8> {
    // A tiny HTTP/1.0 GET over a TcpStream: the test checks what the server stores without our client.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let pos = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..pos]);
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    resp[pos + 4..].to_vec()
}
