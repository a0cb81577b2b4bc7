//! The `pubsub-cache` binary against real servers: sync a blog, search it, stats, purge.

use std::process::Command;

use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{Entry, MicroblogExt, PostOptions, Text};
use xmpp_testkit::{Server, ServerKind};

const PW: &str = "secret-pw";

fn cli(server: &Server, db: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pubsub-cache"))
        .arg("--db")
        .arg(db)
        .args([
            "--server",
            &server.c2s_addr().to_string(),
            "--jid",
            &format!("bob@{}", server.domain()),
            "--password",
            PW,
        ])
        .args(args)
        .output()
        .expect("run pubsub-cache");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn cli_sync_search_purge(kind: ServerKind) {
    let server =
        tokio::task::spawn_blocking(move || Server::start(kind, &[("alice", PW), ("bob", PW)]))
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"));
    let alice = XmppClient::connect_plaintext_loopback(
        &format!("alice@{}", server.domain()),
        PW,
        server.c2s_addr(),
    )
    .await
    .expect("alice");
    for (i, (title, tag)) in [
        ("Rust and XMPP", "rust"),
        ("Gardening notes", "garden"),
        ("More Rust", "rust"),
    ]
    .iter()
    .enumerate()
    {
        let mut e = Entry {
            title: Some(Text::plain(*title)),
            ..Entry::default()
        }
        .with_tag(*tag);
        e.content.push(Text::plain(format!("body {i}")));
        let opts = PostOptions {
            id: Some(format!("e{i}")),
            ..PostOptions::default()
        };
        alice.post(None, None, e, opts).await.expect("post");
    }
    alice.close().await.expect("close");

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("cache.db");
    let alice_jid = format!("alice@{}", server.domain());
    let (ok, out, err) = cli(&server, &db, &["sync", "--service", &alice_jid]);
    assert!(ok, "sync failed: {err}");
    assert!(out.contains("\"fetched\":3"), "{out}");

    let (ok, out, err) = cli(
        &server,
        &db,
        &[
            "search",
            "--fts",
            "rust",
            "--filter",
            "tags",
            "overlap",
            "[\"rust\"]",
            "--type",
            "blog",
            "--order-by",
            "item_id:desc",
            "--json",
        ],
    );
    assert!(ok, "search failed: {err}");
    let ids: Vec<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v["item_id"].as_str().expect("item_id").to_owned()
        })
        .collect();
    assert_eq!(ids, ["e2", "e0"]);

    let (ok, _, err) = cli(&server, &db, &["search", "--filter", "nope", "==", "1"]);
    assert!(!ok && err.contains("unknown field"), "{err}");

    let (ok, out, _) = cli(&server, &db, &["stats"]);
    assert!(ok && out.contains("\"items\":3"), "{out}");
    let (ok, out, _) = cli(&server, &db, &["purge", "--type", "blog"]);
    assert!(ok && out.contains("purged 3 items"), "{out}");
}

macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod prosody {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(xmpp_testkit::ServerKind::Prosody).await
                }
            )*
        }
        mod ejabberd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(xmpp_testkit::ServerKind::Ejabberd).await
                }
            )*
        }
    };
}

on_both_servers!(cli_sync_search_purge);
