//! The SDK tour: starts a throwaway Prosody on loopback (installing Debian's package when it is missing
//! and we may), then shows two users blogging, commenting, liking and reading each other, live, and Bob
//! keeping a local SQLite cache of Alice's blog that he searches by words.
//!
//! `cargo run -p xmpp-social-examples --bin tour` (add `-- --server ejabberd` for ejabberd).

use std::process::ExitCode;
use std::time::Duration;

use jid::Jid;
use xmpp_pubsub_cache::{AsyncCache, Cache, Query, SyncEngine, SyncOptions};
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{Entry, MicroblogExt, PostOptions, Text, NS_MICROBLOG};
use xmpp_social::pubsub::{PubSubEvent, PubSubExt};
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn step(s: &str) {
    println!("\n== {s}");
}

async fn tour(kind: ServerKind) -> Res<()> {
    step(&format!("Starting a throwaway {} on loopback", kind.name()));
    xmpp_testkit::ensure_installed(kind)?;
    let server = tokio::task::spawn_blocking(move || {
        Server::start(kind, &[("alice", "pw-a"), ("bob", "pw-b")])
    })
    .await??;
    println!(
        "   {} ready at {} in {:?}; pubsub service {}",
        kind.name(),
        server.c2s_addr(),
        server.startup_time(),
        server.pubsub_service()
    );

    let alice =
        XmppClient::connect_plaintext_loopback("alice@localhost", "pw-a", server.c2s_addr())
            .await?;
    let bob =
        XmppClient::connect_plaintext_loopback("bob@localhost", "pw-b", server.c2s_addr()).await?;
    println!("   alice is {}, bob is {}", alice.jid(), bob.jid());
    let alice_jid: Jid = alice.jid().to_bare().into();
    let bob_jid: Jid = bob.jid().to_bare().into();
    let pubsub = bob
        .find_pubsub_service()
        .await?
        .ok_or("the server has no pubsub service")?;
    println!("   discovered pubsub service: {pubsub}");

    step("Alice blogs (XEP-0277 on her PEP, XEP-0472 node configuration)");
    let posts = [
        (
            "Hello, fediverse of XMPP",
            "My first post from the Rust SDK.",
            vec!["hello"],
        ),
        (
            "Été à Paris",
            "Croissants et café.",
            vec!["travel", "paris"],
        ),
        (
            "Привет, мир",
            "Friendly ids transliterate other scripts.",
            vec!["i18n"],
        ),
    ];
    let mut first = None;
    for (title, body, tags) in posts {
        let mut e = Entry::new_post(title, body);
        for t in tags {
            e = e.with_tag(t);
        }
        let opts = PostOptions {
            comments_service: Some(pubsub.clone()),
            ..PostOptions::default()
        };
        let item = alice.post(None, None, e, opts).await?;
        println!("   posted {:?} as item id {}", title, item.item);
        first.get_or_insert(item);
    }
    let first = first.ok_or("nothing posted")?;

    step("Bob reads Alice's blog");
    let mut entries = bob.entries(Some(&alice_jid), None, None).await?;
    entries.sort_newest_first();
    for e in &entries.entries {
        println!(
            "   [{}] {} — {} (tags: {})",
            e.item_id,
            e.entry.title_text().unwrap_or_default(),
            e.entry.body_text().unwrap_or_default(),
            e.entry.tags().collect::<Vec<_>>().join(", ")
        );
    }

    step("Bob follows Alice and sees her next post live");
    let mut bob_events = bob.pubsub_events();
    bob.subscribe(Some(&alice_jid), NS_MICROBLOG).await?;
    alice
        .post(
            None,
            None,
            Entry::new_post("Live!", "Posted while Bob listens."),
            PostOptions::default(),
        )
        .await?;
    let ev = tokio::time::timeout(Duration::from_secs(10), bob_events.next()).await??;
    if let PubSubEvent::Items { service, items, .. } = &ev {
        for it in items {
            let got = bob.entry(Some(service), None, &it.id).await?;
            println!(
                "   notification from {service}: new entry {} {:?}",
                it.id,
                got.entry.title_text().unwrap_or_default()
            );
        }
    }

    step("Bob comments on Alice's first post; Alice gets it live");
    let post = bob.entry(Some(&alice_jid), None, &first.item).await?;
    let comments = post
        .entry
        .comments()
        .into_iter()
        .next()
        .ok_or("no comments node")?;
    let mut alice_events = alice.pubsub_events();
    alice
        .subscribe(Some(&comments.service), &comments.node)
        .await?;
    bob.comment(
        &first,
        &comments,
        Entry::new().with_content(Text::plain("Welcome, Alice!")),
    )
    .await?;
    let ev = tokio::time::timeout(Duration::from_secs(10), alice_events.next()).await??;
    if let PubSubEvent::Items { node, items, .. } = &ev {
        let thread = alice
            .entries(Some(&comments.service), Some(node), None)
            .await?;
        for c in thread
            .entries
            .iter()
            .filter(|c| items.iter().any(|i| i.id == c.item_id))
        {
            println!(
                "   comment by {}: {:?}",
                c.entry
                    .authors
                    .first()
                    .and_then(|a| a.jid())
                    .map(|j| j.to_string())
                    .unwrap_or_default(),
                c.entry.body_text().unwrap_or_default()
            );
        }
    }

    step("Alice renames her first post; the comments stay attached");
    let renamed = alice
        .rename_entry(None, None, &first.item, "hello-fediverse")
        .await?;
    let again = bob.entry(Some(&alice_jid), None, &renamed.item).await?;
    let thread = match again.entry.comments().into_iter().next() {
        Some(c) => bob.entries(Some(&c.service), Some(&c.node), None).await?,
        None => Default::default(),
    };
    println!(
        "   {} -> {}: still {} comment(s)",
        first.item,
        renamed.item,
        thread.entries.len()
    );

    step("Bob likes and reacts to Alice's post (XEP-0470); Alice sees the aggregated state");
    alice.create_attachments_node(&renamed).await?;
    bob.set_noticed(&renamed, true).await?;
    bob.set_reactions(&renamed, &["🎉", "👍"]).await?;
    let view = alice.attachments(&renamed).await?;
    println!("   {}", serde_json::to_string(&view)?);

    step("Bob caches Alice's blog in SQLite and searches it offline");
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("cache.sqlite");
    let cache = AsyncCache::new(Cache::open_sqlite(&db)?);
    let engine = SyncEngine::new(
        std::sync::Arc::new(bob.clone()),
        cache.clone(),
        SyncOptions::default(),
    );
    let report = engine.sync_node(Some(&alice_jid), NS_MICROBLOG).await?;
    println!("   synced {} item(s) into {}", report.fetched, db.display());
    for words in ["croissants", "rust", "мир"] {
        let hits = cache.search(Query::new().fts(words)).await?;
        let ids: Vec<_> = hits.items.iter().map(|i| i.item_id.as_str()).collect();
        println!("   search {words:?}: {ids:?}");
    }

    step("Bob blogs back; Alice reads Bob's blog");
    bob.post(
        None,
        None,
        Entry::new_post("Hi Alice", "Reading you from Rust too.").with_tag("reply"),
        PostOptions::default(),
    )
    .await?;
    for e in alice.entries(Some(&bob_jid), None, None).await?.entries {
        println!(
            "   [{}] {}",
            e.item_id,
            e.entry.title_text().unwrap_or_default()
        );
    }

    alice.close().await?;
    bob.close().await?;
    step("Done: the server is stopped and its temp dir removed");
    Ok(())
}

fn main() -> ExitCode {
    let kind = match std::env::args()
        .skip_while(|a| a != "--server")
        .nth(1)
        .as_deref()
    {
        Some("ejabberd") => ServerKind::Ejabberd,
        _ => ServerKind::Prosody,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(tour(kind)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
