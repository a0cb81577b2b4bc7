//! `omemo-bot` and `omemo-send` against an independent OMEMO client over real Prosody and ejabberd: the Python
//! client (interop/omemo_client, slixmpp + python-omemo) talks to the bot in OMEMO:2 and legacy OMEMO
//! and must get the encrypted echo back; `omemo-send` writes to the Python client in both namespaces;
//! the bot restarted on its SQLite store keeps its device and sessions.
//!
//! Needs the client's venv (`.ci/setup-omemo-client.sh` creates `target/omemo-client-venv`; or set
//! `XMPP_OMEMO_CLIENT_PYTHON` to a Python with the packages of interop/omemo_client/requirements.txt).
//! Without it the test fails, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{describe, event_line, json_lines, Proc};
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "omemo-pw";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn client_script() -> PathBuf {
    workspace().join("interop/omemo_client/omemo_client.py")
}

/// The Python of the client's venv; the test fails (never skips) without it.
fn python() -> PathBuf {
    let python = std::env::var_os("XMPP_OMEMO_CLIENT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/omemo-client-venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import slixmpp, omemo, twomemo, oldmemo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the independent Python OMEMO client is not installed ({} cannot import slixmpp, omemo, \
         twomemo, oldmemo): run .ci/setup-omemo-client.sh (creates target/omemo-client-venv from \
         interop/omemo_client/requirements.txt), or set XMPP_OMEMO_CLIENT_PYTHON",
        python.display()
    );
    python
}

fn bot(server: &Server, store: &Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omemo-bot"));
    cmd.args(["--server", &server.c2s_addr().to_string()])
        .args(["--jid", "bot@localhost", "--password", PW, "--store"])
        .arg(store);
    Proc::spawn("omemo-bot", cmd)
}

fn py_command(server: &Server, state: &Path) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(client_script())
        .args([
            "--jid",
            "py@localhost",
            "--password",
            PW,
            "--host",
            "127.0.0.1",
        ])
        .args(["--port", &server.c2s_addr().port().to_string()])
        .arg("--state")
        .arg(state);
    cmd
}

/// The Python client sends `text` to the bot in `ns` and must decrypt the echo in the same namespace.
fn py_to_bot(server: &Server, state: &Path, bot: &Proc, ns: &str, text: &str) {
    let out = py_command(server, state)
        .args(["--to", "bot@localhost", "--ns", ns, "--send", text])
        .args(["--expect-reply-prefix", "echo: ", "--timeout", "45"])
        .output()
        .expect("run the Python OMEMO client");
    assert!(
        out.status.success(),
        "Python client -> omemo-bot in {ns}: {}\nomemo-bot:\n{}\nserver log:\n{}",
        describe(&out),
        bot.output(),
        server.log_tail(40)
    );
    let lines = json_lines(&out);
    let echo = format!("echo: {text}");
    assert!(
        lines.iter().any(|l| l["event"] == "message"
            && l["from"] == "bot@localhost"
            && l["ns"] == ns
            && l["body"] == echo.as_str()),
        "no decrypted echo in {ns}: {}",
        describe(&out)
    );
    if ns == "omemo2" {
        // The bot's XEP-0420 envelope carried the from/to affixes the client checked.
        let m = lines
            .iter()
            .find(|l| l["event"] == "message" && l["body"] == echo.as_str());
        let m = m.unwrap();
        assert_eq!(m["envelope"]["from"], "bot@localhost");
        // XEP-0420: no plaintext fallback body beside the envelope.
        assert_eq!(m["plain_body"], false, "{m}");
    }
    let got = bot.expect("received line", Duration::from_secs(10), |v| {
        v["event"] == "received" && v["body"] == text
    });
    assert_eq!(got["ns"], ns);
    assert_eq!(got["trust"], "BlindTrusted");
    bot.expect("sent line", Duration::from_secs(10), |v| {
        v["event"] == "sent" && v["body"] == echo.as_str()
    });
}

fn omemo_send(server: &Server, store: &Path, legacy: bool, text: &str) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omemo-send"));
    cmd.args(["--server", &server.c2s_addr().to_string()])
        .args(["--jid", "alice@localhost", "--password", PW, "--store"])
        .arg(store)
        .args(["--to", "py@localhost"]);
    if legacy {
        cmd.arg("--legacy");
    }
    let out = cmd.arg(text).output().expect("run omemo-send");
    assert!(out.status.success(), "omemo-send: {}", describe(&out));
    event_line(&out, "omemo-send", "sent")
}

fn scenario(kind: ServerKind) {
    let python = python(); // fail first, and clearly, without the client
    assert!(client_script().exists());
    drop(python);
    let server = Server::start(kind, &[("bot", PW), ("py", PW), ("alice", PW)])
        .unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let bot_store = dir.path().join("bot.sqlite");
    let py_state = dir.path().join("py.json");
    let alice_store = dir.path().join("alice.sqlite");

    // 1. The Python client writes to omemo-bot, in both namespaces, and reads the encrypted echo.
    let mut b = bot(&server, &bot_store);
    let ready = b.expect_event("ready", Duration::from_secs(60));
    let bot_device = ready["device_id"].as_u64().expect("device id");
    py_to_bot(&server, &py_state, &b, "omemo2", "hello bot, OMEMO:2 <&> ✓");
    py_to_bot(
        &server,
        &py_state,
        &b,
        "legacy",
        "hello bot, legacy OMEMO <&> ✓",
    );

    // 2. omemo-send writes to the Python client listening, in both namespaces; the third message
    //    reuses the session kept in omemo-send's store.
    let mut listener = Proc::spawn("Python client --listen", {
        let mut cmd = py_command(&server, &py_state);
        cmd.args(["--listen", "3", "--timeout", "120"]);
        cmd
    });
    listener.expect_event("ready", Duration::from_secs(60));
    let texts = [
        (false, "omemo2", "from Rust over OMEMO:2"),
        (true, "legacy", "from Rust over legacy OMEMO"),
        (false, "omemo2", "again over OMEMO:2, same session"),
    ];
    for (legacy, ns, text) in texts {
        let sent = omemo_send(&server, &alice_store, legacy, text);
        assert_eq!(sent["ns"], ns);
        assert!(
            sent["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("py@localhost/")),
            "{sent}"
        );
        let got = listener.expect("decrypted message", Duration::from_secs(30), |v| {
            v["event"] == "message"
        });
        assert_eq!(got["body"], text, "{}", listener.output());
        assert_eq!(got["ns"], ns);
        assert_eq!(got["from"], "alice@localhost");
    }
    listener.wait_success(Duration::from_secs(30));

    // 3. The bot restarted on its store is the same device and still answers.
    drop(b);
    b = bot(&server, &bot_store);
    let ready = b.expect_event("ready", Duration::from_secs(60));
    assert_eq!(ready["device_id"].as_u64(), Some(bot_device));
    py_to_bot(&server, &py_state, &b, "omemo2", "after the restart");
    drop(b);
}

#[test]
fn omemo_bot_and_send_with_the_python_client_over_prosody() {
    scenario(ServerKind::Prosody);
}

#[test]
fn omemo_bot_and_send_with_the_python_client_over_ejabberd() {
    scenario(ServerKind::Ejabberd);
}
