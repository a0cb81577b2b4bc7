//! Runs the `social` binary against real Prosody and ejabberd: likes and reactions, a public follow,
//! an event with RSVPs, and a shared grocery list.

use std::process::Command;

use serde_json::Value;
use xmpp_testkit::{Server, ServerKind};

fn run(bin: &str, server: &Server, user: &str, args: &[&str]) -> String {
    let addr = server.c2s_addr().to_string();
    let jid = format!("{user}@{}", server.domain());
    let out = Command::new(bin)
        .args(["--server", &addr, "--jid", &jid, "--password", "pw"])
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn social(server: &Server, user: &str, args: &[&str]) -> String {
    run(env!("CARGO_BIN_EXE_social"), server, user, args)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn scenario(kind: ServerKind) {
    let server =
        Server::start(kind, &[("alice", "pw"), ("bob", "pw"), ("carol", "pw")]).expect("server");
    let ps = server.pubsub_service().to_owned();

    // A blog post on the pubsub service, liked and reacted to by Bob.
    let id = run(
        env!("CARGO_BIN_EXE_microblog"),
        &server,
        "alice",
        &[
            "post",
            "--title",
            "Party",
            "--body",
            "Come!",
            "--no-comments",
            "--id",
            "party",
        ],
    );
    assert_eq!(id.trim(), "party");
    let target = ["--service", "alice@localhost", "--item", "party"];
    social(&server, "bob", &[&["like"][..], &target].concat());
    social(
        &server,
        "bob",
        &[&["react"][..], &target, &["👍", "🎉"]].concat(),
    );
    social(&server, "bob", &[&["react"][..], &target, &["❤️"]].concat());
    let view = json(&social(
        &server,
        "alice",
        &[&["attachments"][..], &target, &["--json"]].concat(),
    ));
    let text = view.to_string();
    assert!(text.contains("bob@localhost"), "{text}");
    assert!(
        text.contains("❤️") && !text.contains("🎉"),
        "reactions replaced: {text}"
    );
    social(&server, "bob", &[&["unlike"][..], &target].concat());

    // A public follow: PAM is missing on both servers, so the XEP-0465 fallback is used.
    social(
        &server,
        "bob",
        &["follow", "--service", "alice@localhost", "--public"],
    );
    let following = json(&social(
        &server,
        "carol",
        &["following", "--of", "bob@localhost", "--json"],
    ));
    assert!(
        following.to_string().contains("alice@localhost"),
        "{following}"
    );

    // An event with RSVPs.
    let ev = social(
        &server,
        "alice",
        &[
            "event",
            "create",
            "--name",
            "Picnic",
            "--start",
            "2026-12-01T12:00:00Z",
            "--end",
            "2026-12-01T16:00:00Z",
            "--service",
            &ps,
            "--id",
            "picnic",
        ],
    );
    assert_eq!(ev.trim(), "picnic");
    let evt = ["--service", ps.as_str(), "--item", "picnic"];
    for who in ["bob@localhost", "carol@localhost"] {
        social(
            &server,
            "alice",
            &[&["event", "invite"][..], &evt, &["--who", who]].concat(),
        );
    }
    social(
        &server,
        "bob",
        &[&["event", "rsvp"][..], &evt, &["--answer", "yes"]].concat(),
    );
    social(
        &server,
        "carol",
        &[&["event", "rsvp"][..], &evt, &["--answer", "maybe"]].concat(),
    );
    let att = json(&social(
        &server,
        "alice",
        &[&["event", "attendees"][..], &evt, &["--json"]].concat(),
    ));
    let answers = att["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 2, "{att}");
    let shown = json(&social(
        &server,
        "bob",
        &[&["event", "show"][..], &evt, &["--json"]].concat(),
    ));
    assert!(shown.to_string().contains("Picnic"), "{shown}");

    // A shared grocery list.
    social(
        &server,
        "alice",
        &[
            "list",
            "create",
            "--template",
            "grocery",
            "--service",
            &ps,
            "--app",
            "groceries",
        ],
    );
    let l = ["--service", ps.as_str(), "--app", "groceries"];
    social(
        &server,
        "alice",
        &[&["list", "share"][..], &l, &["--who", "bob@localhost"]].concat(),
    );
    let item = social(
        &server,
        "bob",
        &[
            &["list", "add"][..],
            &l,
            &["--field", "name=milk", "--field", "quantity=2"],
        ]
        .concat(),
    );
    social(
        &server,
        "bob",
        &[
            &["list", "update"][..],
            &l,
            &[
                "--id",
                item.trim(),
                "--field",
                "name=milk",
                "--field",
                "quantity=2",
                "--field",
                "status=bought",
            ],
        ]
        .concat(),
    );
    let a = json(&social(
        &server,
        "alice",
        &[&["list", "show"][..], &l, &["--json"]].concat(),
    ));
    let b = json(&social(
        &server,
        "bob",
        &[&["list", "show"][..], &l, &["--json"]].concat(),
    ));
    assert_eq!(a["entries"], b["entries"], "both see the same list");
    let t = a["entries"].to_string();
    assert!(t.contains("milk") && t.contains("bought"), "{t}");
}

#[test]
fn social_cli_on_prosody() {
    scenario(ServerKind::Prosody);
}

#[test]
fn social_cli_on_ejabberd() {
    scenario(ServerKind::Ejabberd);
}
