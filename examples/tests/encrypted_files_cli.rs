//! `encrypted-upload` and `encrypted-download` against Prosody's mod_http_file_share (the testkit serves
//! it on loopback HTTP): the URL printed by the upload gives the same bytes back to another account's
//! download; a tampered URL key fails and leaves no file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::process::{Command, Output};

use rand::{RngCore, SeedableRng};
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "files-pw";

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the example binary runs")
}

#[test]
fn upload_then_download_through_prosody() {
    let server = Server::start(ServerKind::Prosody, &[("alice", PW)])
        .unwrap_or_else(|e| panic!("Prosody did not start: {e}"));
    assert!(server.http_upload_service().is_some());
    let dir = tempfile::tempdir().unwrap();
    let mut data = vec![0u8; 3 * 1024 * 1024 + 17];
    rand::rngs::StdRng::seed_from_u64(3).fill_bytes(&mut data);
    let src = dir.path().join("photo.jpg");
    std::fs::write(&src, &data).unwrap();

    let up = run(Command::new(env!("CARGO_BIN_EXE_encrypted-upload"))
        .args(["--server", &server.c2s_addr().to_string()])
        .args(["--jid", &format!("alice@{}", server.domain())])
        .args(["--password", PW, "--allow-plain-http-loopback"])
        .arg(&src));
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(
        up.status.success(),
        "upload failed: {stderr}\n{}",
        server.log_tail(20)
    );
    let url = String::from_utf8(up.stdout).unwrap().trim().to_owned();
    assert!(url.starts_with("aesgcm://127.0.0.1:"), "{url}");
    assert_eq!(url.split('#').nth(1).unwrap().len(), 88);

    // Download with -o.
    let out = dir.path().join("copy.jpg");
    let down = run(Command::new(env!("CARGO_BIN_EXE_encrypted-download"))
        .args(["--allow-plain-http-loopback", &url, "-o"])
        .arg(&out));
    assert!(
        down.status.success(),
        "download failed: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let printed = String::from_utf8(down.stdout).unwrap();
    assert!(
        printed.trim().ends_with(&format!(" {}", data.len())),
        "{printed}"
    );

    // Without -o: the URL's file name in the current directory.
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let down = run(Command::new(env!("CARGO_BIN_EXE_encrypted-download"))
        .current_dir(&cwd)
        .args(["--allow-plain-http-loopback", &url]));
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read(&files[0]).unwrap(), data);

    // A wrong key (last hex digit changed): error, nothing written.
    let mut bad = url.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let target = dir.path().join("bad.jpg");
    let down = run(Command::new(env!("CARGO_BIN_EXE_encrypted-download"))
        .args(["--allow-plain-http-loopback", &bad, "-o"])
        .arg(&target));
    assert!(!down.status.success());
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(err.contains("tag mismatch"), "{err}");
    assert!(!target.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no leftover temp file"
    );

    // Plain HTTP is refused without the flag.
    let down = run(Command::new(env!("CARGO_BIN_EXE_encrypted-download"))
        .args([&url, "-o"])
        .arg(&target));
    assert!(!down.status.success());
    assert!(!target.exists());
}
