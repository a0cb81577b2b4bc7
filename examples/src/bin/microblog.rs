//! `microblog`: publish and read XEP-0277 blogs from the command line.
//!
//! ```text
//! microblog --server HOST:PORT --jid JID --password PW post --title T --body B [--tag X]... [--id ID]
//! microblog ... list [--service JID] [--node NODE] [--max N] [--json]
//! microblog ... comment --service JID --item ID --body B
//! microblog ... rename --item OLD --to NEW
//! microblog ... delete --item ID
//! ```
//! A loopback `--server` is reached without TLS (for local test servers); any other with STARTTLS.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{Entry, ItemRef, MicroblogExt, PostOptions, Text, NS_MICROBLOG};
use xmpp_social::pubsub::PubSubExt;
use xmpp_social_examples::{parse_jid, run_main, ConnectArgs, EntryJson};

#[derive(Parser)]
#[command(about = "Publish and read XMPP microblogs (XEP-0277)")]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish a post on your blog.
    Post {
        /// Title.
        #[arg(long)]
        title: String,
        /// Body (plain text).
        #[arg(long)]
        body: String,
        /// A tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Item id (default: a friendly id from the title).
        #[arg(long)]
        id: Option<String>,
        /// Pubsub service for the comments node (default: the server's pubsub service, if any).
        #[arg(long)]
        comments_service: Option<String>,
        /// Do not create a comments node.
        #[arg(long)]
        no_comments: bool,
        /// Do not create the XEP-0470 attachments node (others then cannot like or react).
        #[arg(long)]
        no_attachments: bool,
    },
    /// List entries of a blog.
    List {
        /// Blog owner or pubsub service (default: your own blog).
        #[arg(long)]
        service: Option<String>,
        /// Node (default: urn:xmpp:microblog:0).
        #[arg(long)]
        node: Option<String>,
        /// At most this many entries.
        #[arg(long)]
        max: Option<usize>,
        /// One JSON object per entry and line.
        #[arg(long)]
        json: bool,
    },
    /// Comment on an entry.
    Comment {
        /// Blog owner or pubsub service of the entry.
        #[arg(long)]
        service: String,
        /// Node of the entry (default: urn:xmpp:microblog:0).
        #[arg(long)]
        node: Option<String>,
        /// Item id of the entry.
        #[arg(long)]
        item: String,
        /// Comment text.
        #[arg(long)]
        body: String,
    },
    /// Rename one of your entries (comments stay attached).
    Rename {
        /// Current item id.
        #[arg(long)]
        item: String,
        /// New item id.
        #[arg(long)]
        to: String,
    },
    /// Delete one of your entries.
    Delete {
        /// Item id.
        #[arg(long)]
        item: String,
    },
}

async fn run(cli: Cli) -> Result<(), String> {
    let client = cli.conn.connect().await?;
    let result = run_command(&client, cli.command).await;
    // Flush before leaving: the server must process what we sent (see RECIPES: closing with unread
    // input can make the kernel reset the connection and the server drop stanzas).
    let _ = client.close().await;
    result
}

async fn run_command(client: &XmppClient, command: Command) -> Result<(), String> {
    match command {
        Command::Post {
            title,
            body,
            tags,
            id,
            comments_service,
            no_comments,
            no_attachments,
        } => {
            let mut entry = Entry::new_post(title, body);
            for t in tags {
                entry = entry.with_tag(t);
            }
            let comments_service = match (no_comments, comments_service) {
                (true, _) => None,
                (false, Some(s)) => Some(parse_jid(&s)?),
                (false, None) => client
                    .find_pubsub_service()
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let item = client
                .post(
                    None,
                    None,
                    entry,
                    PostOptions {
                        id,
                        comments_service,
                        ..PostOptions::default()
                    },
                )
                .await
                .map_err(|e| format!("post failed: {e}"))?;
            if !no_attachments {
                // XEP-0470: the item's publisher creates its attachments node, open to publishers.
                client
                    .create_attachments_node(&item)
                    .await
                    .map_err(|e| format!("attachments node: {e}"))?;
            }
            println!("{}", item.item);
        }
        Command::List {
            service,
            node,
            max,
            json,
        } => {
            let service = service.as_deref().map(parse_jid).transpose()?;
            let mut entries = client
                .entries(service.as_ref(), node.as_deref(), max)
                .await
                .map_err(|e| format!("list failed: {e}"))?;
            entries.sort_newest_first();
            for item in &entries.entries {
                if json {
                    let line = serde_json::to_string(&EntryJson::from_item(item))
                        .map_err(|e| e.to_string())?;
                    println!("{line}");
                } else {
                    let e = &item.entry;
                    println!(
                        "[{}] {} ({})\n    {}",
                        item.item_id,
                        e.title.as_ref().map(Text::plain_text).unwrap_or_default(),
                        e.published.map(|d| d.to_rfc3339()).unwrap_or_default(),
                        e.body_text().unwrap_or_default()
                    );
                }
            }
            for (item, err) in &entries.invalid {
                eprintln!("skipped item {}: {err}", item.id);
            }
        }
        Command::Comment {
            service,
            node,
            item,
            body,
        } => {
            let service = parse_jid(&service)?;
            let node = node.unwrap_or_else(|| NS_MICROBLOG.to_owned());
            let post = client
                .entry(Some(&service), Some(&node), &item)
                .await
                .map_err(|e| format!("cannot read the entry: {e}"))?;
            let comments = post
                .entry
                .comments()
                .into_iter()
                .next()
                .ok_or("this entry has no comments node")?;
            let target = ItemRef::new(service, node, item);
            let c = client
                .comment(
                    &target,
                    &comments,
                    Entry::new().with_content(Text::plain(body)),
                )
                .await
                .map_err(|e| format!("comment failed: {e}"))?;
            println!("{}", c.item);
        }
        Command::Rename { item, to } => {
            let r = client
                .rename_entry(None, None, &item, &to)
                .await
                .map_err(|e| format!("rename failed: {e}"))?;
            println!("{}", r.item);
        }
        Command::Delete { item } => {
            client
                .delete_entry(None, None, &item)
                .await
                .map_err(|e| format!("delete failed: {e}"))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
