//! `microblog`: publish and read XEP-0277 blogs from the command line.
//!
//! ```text
//! microblog --server HOST:PORT --jid JID --password PW [--data-dir DIR] post --title T --body B [--tag X]... [--id ID]
//!           [--encrypt] [--sign]
//! microblog ... share --to JID...
//! microblog ... rotate [--keep JID]... [--revoke JID]...
//! microblog ... list [--service JID] [--node NODE] [--max N] [--json]
//! microblog ... read --item ID [--service JID] [--node NODE] [--json]
//! microblog ... comment --service JID --item ID --body B
//! microblog ... rename --item OLD --to NEW
//! microblog ... delete --item ID
//! ```
//! A loopback `--server` is reached without TLS (for local test servers); any other with STARTTLS.
//!
//! End-to-end protection (OpenPGP, `xmpp_e2ee::secure`): `post --sign` signs the entry with the
//! account's OX key (XEP-0476, as a XEP-0470 attachment), `post --encrypt` encrypts it with the blog's
//! XEP-0473 shared secret (created on first use), signing first when both are given. `share` sends
//! the blog's secrets to readers (XEP-0373 messages, kept in their archive until they connect),
//! `rotate` revokes the current secret and sends a new one to the readers kept. `list` and `read`
//! decrypt what they can and check every signature, printing the status of each entry. The OX key,
//! the known keys of others and the node secrets live in `<data-dir>/<jid>.ox.sqlite`; `--data-dir`
//! is needed for `--encrypt`, `--sign`, `share` and `rotate`, and for `list`/`read` to decrypt (without
//! it they still verify signatures, with a throwaway key). With `--data-dir`, every command first
//! opens the OX messages of the account's archive (XEP-0313) not seen yet, applying the secrets
//! received while it was offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jid::BareJid;
use xmpp_e2ee::ox::{MemoryOxStore, OxClient, OxStore, SqliteOxStore};
use xmpp_e2ee::secure::{
    catch_up_archive, Encryption, Protection, SecureItem, SecureSocialExt, SignatureStatus,
};
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::client::XmppClient;
use xmpp_social::microblog::{
    BlogItem, Entry, ItemRef, MicroblogExt, PostOptions, Text, NS_MICROBLOG,
};
use xmpp_social::pubsub::{AccessModel, PubSubExt};
use xmpp_social::Connection;
use xmpp_social_examples::{parse_jid, run_main, ConnectArgs, EntryJson};

#[derive(Parser)]
#[command(about = "Publish and read XMPP microblogs (XEP-0277)")]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Where the OpenPGP key, known keys and blog secrets are kept (`<dir>/<jid>.ox.sqlite`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
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
        /// Encrypt with the blog's shared secret (XEP-0473; created on first use). No comments node.
        #[arg(long)]
        encrypt: bool,
        /// Sign with the account's OpenPGP key (XEP-0476), before encrypting.
        #[arg(long)]
        sign: bool,
    },
    /// Give readers the secrets of your encrypted blog (they can then read every entry).
    Share {
        /// A reader (repeatable).
        #[arg(long = "to", required = true)]
        readers: Vec<String>,
    },
    /// Revoke the blog's current secret and create a new one, sent to the readers kept: revoked
    /// readers keep reading older entries, not the new ones.
    Rotate {
        /// A reader who gets the new secret (repeatable).
        #[arg(long = "keep")]
        keep: Vec<String>,
        /// A reader who only learns of the revocation (repeatable).
        #[arg(long = "revoke")]
        revoke: Vec<String>,
    },
    /// Show one entry, decrypted and signature-checked.
    Read {
        /// Blog owner or pubsub service (default: your own blog).
        #[arg(long)]
        service: Option<String>,
        /// Node (default: urn:xmpp:microblog:0).
        #[arg(long)]
        node: Option<String>,
        /// Item id.
        #[arg(long)]
        item: String,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
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
    let needs_ox = match &cli.command {
        Command::Post { encrypt, sign, .. } => *encrypt || *sign,
        Command::Share { .. } | Command::Rotate { .. } => true,
        Command::List { .. } | Command::Read { .. } => false,
        _ => false,
    };
    if needs_ox && cli.data_dir.is_none() {
        return Err("--data-dir is needed to keep the OpenPGP key and the blog's secrets".into());
    }
    if let Some(dir) = &cli.data_dir {
        let client = cli.conn.connect().await?;
        let ox = OxClient::new(client.clone(), open_store(dir, &cli.conn.jid)?)
            .map_err(|e| format!("OpenPGP key: {e}"))?;
        // Secrets sent to us while we were away are in our archive.
        catch_up(&ox, dir, &cli.conn.jid).await?;
        let result = run_secure(&ox, cli.command).await;
        let _ = client.close().await;
        return result;
    }
    let client = cli.conn.connect().await?;
    let result = match cli.command {
        Command::List {
            service,
            node,
            max,
            json,
        } => {
            // No data dir: signatures are still checked (with a throwaway key), nothing decrypts.
            let ox = OxClient::new(client.clone(), MemoryOxStore::new())
                .map_err(|e| format!("OpenPGP key: {e}"))?;
            list_secure(&ox, service, node, max, json).await
        }
        Command::Read {
            service,
            node,
            item,
            json,
        } => {
            let ox = OxClient::new(client.clone(), MemoryOxStore::new())
                .map_err(|e| format!("OpenPGP key: {e}"))?;
            read_secure(&ox, service, node, item, json).await
        }
        command => run_command(&client, command).await,
    };
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
            encrypt: _,
            sign: _,
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
        Command::List { .. }
        | Command::Read { .. }
        | Command::Share { .. }
        | Command::Rotate { .. } => return Err("this command needs the OpenPGP client".into()),
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

fn open_store(dir: &Path, jid: &str) -> Result<SqliteOxStore, String> {
    let bare = parse_jid(jid)?.to_bare();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    SqliteOxStore::open(dir.join(format!("{bare}.ox.sqlite")))
        .map_err(|e| format!("OpenPGP store: {e}"))
}

/// Opens the OX messages of the account's archive not seen yet (XEP-0473 secrets are applied),
/// remembering the last archive id in `<dir>/<jid>.archive-last`.
async fn catch_up<S: OxStore + Send + 'static>(
    ox: &OxClient<XmppClient, S>,
    dir: &Path,
    jid: &str,
) -> Result<(), String> {
    let marker = dir.join(format!("{}.archive-last", parse_jid(jid)?.to_bare()));
    let after = std::fs::read_to_string(&marker)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() < 256);
    let found = catch_up_archive(ox, after.as_deref())
        .await
        .map_err(|e| format!("reading the archive: {e}"))?;
    for msg in &found.messages {
        for (service, node, accepted) in &msg.secrets {
            if accepted.added.is_empty() && accepted.revoked.is_empty() {
                continue;
            }
            eprintln!(
                "secrets for {node} on {service} from {}: {} new, {} revoked",
                msg.from.to_bare(),
                accepted.added.len(),
                accepted.revoked.len()
            );
        }
    }
    for (id, e) in &found.refused {
        eprintln!("ignored archived message {id}: {e}");
    }
    if let Some(last) = found.last_id {
        std::fs::write(&marker, last).map_err(|e| format!("{}: {e}", marker.display()))?;
    }
    Ok(())
}

fn jids(list: &[String]) -> Result<Vec<BareJid>, String> {
    list.iter()
        .map(|s| parse_jid(s).map(|j| j.to_bare()))
        .collect()
}

async fn run_secure<S: OxStore + Send + 'static>(
    ox: &OxClient<XmppClient, S>,
    command: Command,
) -> Result<(), String> {
    match command {
        Command::Post {
            title,
            body,
            tags,
            id,
            encrypt,
            sign,
            no_attachments,
            ..
        } if encrypt || sign => {
            ox.publish_key()
                .await
                .map_err(|e| format!("cannot publish the OpenPGP key: {e}"))?;
            if encrypt
                && ox
                    .node_secrets(None, NS_MICROBLOG)
                    .map_err(|e| e.to_string())?
                    .and_then(|s| s.current().cloned())
                    .is_none()
            {
                ox.new_node_secret(None, NS_MICROBLOG, Some(NS_MICROBLOG))
                    .await
                    .map_err(|e| format!("cannot create the blog's secret: {e}"))?;
            }
            let mut entry = Entry::new_post(title, body);
            if let Some(id) = id {
                entry = entry.with_id(
                    ItemRef::new(ox.connection().jid().to_bare().into(), NS_MICROBLOG, id)
                        .to_uri()
                        .to_string(),
                );
            }
            for t in tags {
                entry = entry.with_tag(t);
            }
            let item = ox
                .post_entry(
                    None,
                    None,
                    entry,
                    AccessModel::Open,
                    Protection { encrypt, sign },
                )
                .await
                .map_err(|e| format!("post failed: {e}"))?;
            if !sign && !no_attachments {
                ox.connection()
                    .create_attachments_node(&item)
                    .await
                    .map_err(|e| format!("attachments node: {e}"))?;
            }
            println!("{}", item.item);
            Ok(())
        }
        Command::Share { readers } => {
            let readers = jids(&readers)?;
            for r in &readers {
                // Fetch the reader's key now: a clear error when it has none.
                ox.fetch_keys(r)
                    .await
                    .map_err(|e| format!("no OpenPGP key for {r}: {e}"))?;
            }
            ox.share_node(None, NS_MICROBLOG, &readers)
                .await
                .map_err(|e| format!("share failed: {e}"))
        }
        Command::Rotate { keep, revoke } => {
            let secret = ox
                .rotate_node_secret(None, NS_MICROBLOG, &jids(&keep)?, &jids(&revoke)?, None)
                .await
                .map_err(|e| format!("rotate failed: {e}"))?;
            println!("{}", secret.id);
            Ok(())
        }
        Command::List {
            service,
            node,
            max,
            json,
        } => list_secure(ox, service, node, max, json).await,
        Command::Read {
            service,
            node,
            item,
            json,
        } => read_secure(ox, service, node, item, json).await,
        command => run_command(ox.connection(), command).await,
    }
}

fn encryption_name(e: &Encryption) -> &'static str {
    match e {
        Encryption::Plain => "plain",
        Encryption::Decrypted { .. } => "decrypted",
        Encryption::MissingSecret { .. } => "missing-secret",
        Encryption::Failed { .. } => "failed",
    }
}

fn signature_line(item: &SecureItem<Entry>) -> String {
    match item.signature() {
        None => "unsigned".into(),
        Some(SignatureStatus::Verified {
            signer,
            fingerprint,
            ..
        }) => format!("signature verified: {signer} ({fingerprint})"),
        Some(SignatureStatus::Invalid { jid, reason }) => {
            format!("signature INVALID (attached by {jid}): {reason}")
        }
        Some(SignatureStatus::Unchecked { reason, .. }) => {
            format!("signature unchecked: {reason}")
        }
    }
}

fn signature_name(item: &SecureItem<Entry>) -> &'static str {
    match item.signature() {
        None => "unsigned",
        Some(SignatureStatus::Verified { .. }) => "verified",
        Some(SignatureStatus::Invalid { .. }) => "invalid",
        Some(SignatureStatus::Unchecked { .. }) => "unchecked",
    }
}

fn print_item(item: &SecureItem<Entry>, json: bool) -> Result<(), String> {
    if json {
        let mut value = match &item.content {
            Ok(entry) => serde_json::to_value(EntryJson::from_item(&BlogItem {
                item_id: item.item_id.clone(),
                publisher: item.publisher.clone(),
                entry: entry.clone(),
            }))
            .map_err(|e| e.to_string())?,
            Err(_) => serde_json::json!({ "id": item.item_id }),
        };
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "encryption".into(),
                encryption_name(&item.encryption).into(),
            );
            obj.insert("signature".into(), signature_name(item).into());
            obj.insert(
                "signed_by".into(),
                item.verified_signers()
                    .iter()
                    .map(|j| j.to_string())
                    .collect::<Vec<_>>()
                    .into(),
            );
            if let Err(e) = &item.content {
                obj.insert("error".into(), e.to_string().into());
            }
        }
        println!("{value}");
        return Ok(());
    }
    let lock = if item.encryption.is_encrypted() {
        "encrypted, "
    } else {
        ""
    };
    match &item.content {
        Ok(e) => println!(
            "[{}] {} ({})\n    {}\n    {lock}{}",
            item.item_id,
            e.title.as_ref().map(Text::plain_text).unwrap_or_default(),
            e.published.map(|d| d.to_rfc3339()).unwrap_or_default(),
            e.body_text().unwrap_or_default(),
            signature_line(item)
        ),
        Err(err) => println!("[{}] unreadable: {err}", item.item_id),
    }
    Ok(())
}

async fn list_secure<S: OxStore + Send + 'static>(
    ox: &OxClient<XmppClient, S>,
    service: Option<String>,
    node: Option<String>,
    max: Option<usize>,
    json: bool,
) -> Result<(), String> {
    let service = service.as_deref().map(parse_jid).transpose()?;
    let mut items = ox
        .read_entries(service.as_ref(), node.as_deref(), max)
        .await
        .map_err(|e| format!("list failed: {e}"))?;
    // Newest first; unreadable entries last.
    items.sort_by_key(|i| std::cmp::Reverse(i.content.as_ref().ok().and_then(|e| e.published)));
    for item in &items {
        match &item.content {
            Err(xmpp_e2ee::secure::SecureError::Parse(err)) => {
                eprintln!("skipped item {}: {err}", item.item_id)
            }
            _ => print_item(item, json)?,
        }
    }
    Ok(())
}

async fn read_secure<S: OxStore + Send + 'static>(
    ox: &OxClient<XmppClient, S>,
    service: Option<String>,
    node: Option<String>,
    item: String,
    json: bool,
) -> Result<(), String> {
    let service = service.as_deref().map(parse_jid).transpose()?;
    let node = node.unwrap_or_else(|| NS_MICROBLOG.to_owned());
    let items = ox
        .connection()
        .get_items_by_id(service.as_ref(), &node, &[&item])
        .await
        .map_err(|e| format!("read failed: {e}"))?;
    let found = items
        .iter()
        .find(|i| i.id == item)
        .ok_or_else(|| format!("no item {item:?} on {node}"))?;
    let opened = ox
        .open_item(service.as_ref(), &node, found)
        .await
        .map(|el| Ok(Entry::try_from(&el)?));
    print_item(&opened, json)
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
