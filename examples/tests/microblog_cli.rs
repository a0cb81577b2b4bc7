//! Runs the `microblog` binary against real Prosody and ejabberd servers: post, list --json, comment,
//! rename, delete, as the README documents them.

use std::process::Command;

use serde_json::Value;
use xmpp_testkit::{Server, ServerKind};

fn cli(server: &Server, user: &str, args: &[&str]) -> String {
    let addr = server.c2s_addr().to_string();
    let jid = format!("{user}@{}", server.domain());
    let out = Command::new(env!("CARGO_BIN_EXE_microblog"))
        .args(["--server", &addr, "--jid", &jid, "--password", "pw"])
        .args(args)
        .output()
        .expect("run microblog");
    assert!(
        out.status.success(),
        "microblog {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn list_json(server: &Server, user: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["list", "--json"];
    args.extend_from_slice(extra);
    cli(server, user, &args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn scenario(kind: ServerKind) {
    let server = Server::start(kind, &[("alice", "pw"), ("bob", "pw")]).expect("server");
    let id = cli(
        &server,
        "alice",
        &[
            "post",
            "--title",
            "Über Straße",
            "--body",
            "Hallo",
            "--tag",
            "de",
            "--tag",
            "test",
        ],
    );
    let id = id.trim().to_owned();
    assert!(id.starts_with("uber-strasse-"), "{id}");
    cli(
        &server,
        "alice",
        &[
            "post", "--title", "Second", "--body", "Two", "--id", "second",
        ],
    );

    let entries = list_json(&server, "bob", &["--service", "alice@localhost"]);
    assert_eq!(entries.len(), 2);
    let first = entries
        .iter()
        .find(|e| e["id"] == id.as_str())
        .expect("first post");
    assert_eq!(first["title"], "Über Straße");
    assert_eq!(first["content"], "Hallo");
    assert_eq!(first["author_jid"], "alice@localhost");
    assert_eq!(first["tags"], serde_json::json!(["de", "test"]));
    assert_eq!(first["comments_service"], "pubsub.localhost");
    for key in [
        "published",
        "updated",
        "comments_node",
        "content_xhtml",
        "in_reply_to",
        "repeated_by",
    ] {
        assert!(first.get(key).is_some(), "missing key {key}");
    }
    let limited = list_json(
        &server,
        "bob",
        &["--service", "alice@localhost", "--max", "1"],
    );
    assert_eq!(limited.len(), 1);

    cli(
        &server,
        "bob",
        &[
            "comment",
            "--service",
            "alice@localhost",
            "--item",
            &id,
            "--body",
            "Nice",
        ],
    );
    let comments = list_json(
        &server,
        "bob",
        &[
            "--service",
            first["comments_service"].as_str().expect("service"),
            "--node",
            first["comments_node"].as_str().expect("node"),
        ],
    );
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["content"], "Nice");
    assert_eq!(comments[0]["in_reply_to"].as_array().map(Vec::len), Some(1));

    assert_eq!(
        cli(
            &server,
            "alice",
            &["rename", "--item", &id, "--to", "strasse"]
        )
        .trim(),
        "strasse"
    );
    cli(&server, "alice", &["delete", "--item", "second"]);
    let after = list_json(&server, "alice", &[]);
    let ids: Vec<_> = after
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, vec!["strasse"]);
    assert_eq!(
        after[0]["comments_node"], first["comments_node"],
        "comments kept"
    );
}

#[test]
fn microblog_cli_on_prosody() {
    scenario(ServerKind::Prosody);
}

#[test]
fn microblog_cli_on_ejabberd() {
    scenario(ServerKind::Ejabberd);
}
