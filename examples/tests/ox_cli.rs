//! Runs `microblog` with OpenPGP (`post --encrypt --sign`, `share`, `rotate`, `list`, `read`) and
//! `ox-chat` (both ways) against real Prosody and ejabberd servers, each account with its own data
//! directory, as separate processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use xmpp_testkit::{Server, ServerKind};

fn run(server: &Server, bin: &str, user: &str, data: Option<&Path>, args: &[&str]) -> String {
    let addr = server.c2s_addr().to_string();
    let jid = format!("{user}@{}", server.domain());
    let mut cmd = Command::new(bin);
    cmd.args(["--server", &addr, "--jid", &jid, "--password", "pw"]);
    if let Some(dir) = data {
        cmd.arg("--data-dir").arg(dir.join(user));
    }
    let out = cmd.args(args).output().expect("run the example");
    assert!(
        out.status.success(),
        "{bin} {args:?} as {user} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_tail(20)
    );
    eprintln!(
        "{user}: {args:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn microblog(server: &Server, user: &str, data: Option<&Path>, args: &[&str]) -> String {
    run(server, env!("CARGO_BIN_EXE_microblog"), user, data, args)
}

fn ox_chat(server: &Server, user: &str, data: &Path, args: &[&str]) -> String {
    run(
        server,
        env!("CARGO_BIN_EXE_ox-chat"),
        user,
        Some(data),
        args,
    )
}

fn list(server: &Server, user: &str, data: Option<&Path>) -> Vec<Value> {
    microblog(
        server,
        user,
        data,
        &["list", "--json", "--service", "alice@localhost"],
    )
    .lines()
    .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
    .collect()
}

fn by_id<'a>(entries: &'a [Value], id: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no entry {id} in {entries:?}"))
}

fn scenario(kind: ServerKind) {
    let server =
        Server::start(kind, &[("alice", "pw"), ("bob", "pw"), ("carol", "pw")]).expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = Some(dir.path());

    // Readers publish their keys (`ox-chat key` prints the fingerprint).
    for user in ["bob", "carol"] {
        let fpr = ox_chat(&server, user, dir.path(), &["key"]);
        assert_eq!(fpr.trim().len(), 40, "{fpr}");
    }

    let secret = microblog(
        &server,
        "alice",
        data,
        &[
            "post",
            "--title",
            "Secret one",
            "--body",
            "hidden text",
            "--encrypt",
            "--sign",
        ],
    );
    let secret = secret.trim().to_owned();
    let signed = microblog(
        &server,
        "alice",
        data,
        &[
            "post",
            "--title",
            "Public",
            "--body",
            "signed text",
            "--sign",
            "--id",
            "public",
        ],
    );
    assert_eq!(signed.trim(), "public");

    // Before sharing: Bob verifies the public entry and cannot read the secret one.
    let entries = list(&server, "bob", data);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let p = by_id(&entries, "public");
    assert_eq!(p["encryption"], "plain");
    assert_eq!(p["signature"], "verified");
    assert_eq!(p["signed_by"], serde_json::json!(["alice@localhost"]));
    assert_eq!(p["content"], "signed text");
    assert_eq!(by_id(&entries, &secret)["encryption"], "missing-secret");

    // Shared: Bob's next `list` applies the secrets kept offline and reads everything.
    microblog(
        &server,
        "alice",
        data,
        &["share", "--to", "bob@localhost", "--to", "carol@localhost"],
    );
    let entries = list(&server, "bob", data);
    let s = by_id(&entries, &secret);
    assert_eq!(s["encryption"], "decrypted", "{s}");
    assert_eq!(s["signature"], "verified", "{s}");
    assert_eq!(s["signed_by"], serde_json::json!(["alice@localhost"]));
    assert_eq!(s["title"], "Secret one");
    assert_eq!(s["content"], "hidden text");
    let text = microblog(
        &server,
        "bob",
        data,
        &["read", "--service", "alice@localhost", "--item", &secret],
    );
    assert!(text.contains("hidden text"), "{text}");
    assert!(
        text.contains("encrypted, signature verified: alice@localhost"),
        "{text}"
    );
    // Without a data directory nothing decrypts, signatures still verify.
    let entries = list(&server, "bob", None);
    assert_eq!(by_id(&entries, &secret)["encryption"], "missing-secret");
    assert_eq!(by_id(&entries, "public")["signature"], "verified");

    // Carol read it too; after a rotation that revokes her, she cannot read the new entry.
    assert_eq!(
        by_id(&list(&server, "carol", data), &secret)["encryption"],
        "decrypted"
    );
    microblog(
        &server,
        "alice",
        data,
        &[
            "rotate",
            "--keep",
            "bob@localhost",
            "--revoke",
            "carol@localhost",
        ],
    );
    let newer = microblog(
        &server,
        "alice",
        data,
        &[
            "post",
            "--title",
            "After",
            "--body",
            "newer",
            "--encrypt",
            "--sign",
            "--id",
            "after",
        ],
    );
    assert_eq!(newer.trim(), "after");
    let bob_sees = list(&server, "bob", data);
    assert_eq!(by_id(&bob_sees, "after")["encryption"], "decrypted");
    assert_eq!(by_id(&bob_sees, "after")["signature"], "verified");
    let carol_sees = list(&server, "carol", data);
    assert_eq!(by_id(&carol_sees, "after")["encryption"], "missing-secret");
    assert_eq!(by_id(&carol_sees, &secret)["encryption"], "decrypted");

    // OX chat both ways (the recipient offline when the message is sent).
    ox_chat(
        &server,
        "alice",
        dir.path(),
        &["send", "--to", "bob@localhost", "hello bob"],
    );
    let got = ox_chat(
        &server,
        "bob",
        dir.path(),
        &["listen", "--count", "1", "--timeout", "30"],
    );
    assert_eq!(got.trim(), "alice@localhost: hello bob");
    ox_chat(
        &server,
        "bob",
        dir.path(),
        &["send", "--to", "alice@localhost", "hi alice"],
    );
    let got = ox_chat(
        &server,
        "alice",
        dir.path(),
        &["listen", "--count", "1", "--timeout", "30", "--json"],
    );
    let v: Value = serde_json::from_str(got.trim()).expect("JSON line");
    assert_eq!(v["from"], "bob@localhost");
    assert_eq!(v["text"], "hi alice");
    assert_eq!(v["signer_fingerprint"].as_str().map(str::len), Some(40));

    // Live: Bob listens, Alice sends.
    let addr = server.c2s_addr().to_string();
    let mut listener = Command::new(env!("CARGO_BIN_EXE_ox-chat"))
        .args([
            "--server",
            &addr,
            "--jid",
            "bob@localhost",
            "--password",
            "pw",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("bob"))
        .args(["listen", "--count", "1", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ox-chat listen");
    let stderr = listener.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("listening as") => break,
            Ok(_) => continue,
            Err(e) => {
                let _ = listener.kill();
                panic!("ox-chat listen did not start: {e:?}");
            }
        }
    }
    ox_chat(
        &server,
        "alice",
        dir.path(),
        &["send", "--to", "bob@localhost", "live hello"],
    );
    let out = listener.wait_with_output().expect("listener output");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "alice@localhost: live hello"
    );
}

#[test]
fn ox_examples_on_prosody() {
    scenario(ServerKind::Prosody);
}

#[test]
fn ox_examples_on_ejabberd() {
    scenario(ServerKind::Ejabberd);
}
