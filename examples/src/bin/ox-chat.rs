//! `ox-chat`: OpenPGP-encrypted instant messages (OX, XEP-0373/0374) from the command line.
//!
//! ```text
//! ox-chat --server HOST:PORT --jid JID --password PW --data-dir DIR key
//! ox-chat ... send --to JID TEXT
//! ox-chat ... listen [--count N] [--timeout SECS] [--json]
//! ```
//!
//! The account's OpenPGP key (generated on first use), the keys of its contacts and the XEP-0473
//! secrets it receives live in `<data-dir>/<jid>.ox.sqlite` (the store `microblog --data-dir` uses).
//! Every command publishes the account's public key on PEP, so that others can encrypt to it and
//! check its signatures. `send` signs and encrypts TEXT to the recipient's keys (fetched from its
//! PEP) and to the own keys; `listen` prints every OX message it can open, one per line (`FROM:
//! TEXT`, or JSON with `--json`): first those of the account's archive (XEP-0313) not seen yet (the
//! messages sent while it was offline; the last archive id seen is kept in
//! `<data-dir>/<jid>.archive-last`, shared with `microblog`), then those arriving live. It stops
//! after `--count` messages or `--timeout` seconds. A loopback `--server` is reached without
//! TLS (for local test servers); any other with STARTTLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use xmpp_e2ee::ox::{OxClient, OxMessage, SqliteOxStore};
use xmpp_e2ee::secure::catch_up_archive;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_social::client::{ClientConfig, Transport, XmppClient};
use xmpp_social::{Connection, Incoming};
use xmpp_social_examples::{parse_jid, run_main, ConnectArgs};

#[derive(Parser)]
#[command(about = "OpenPGP-encrypted XMPP chat (OX, XEP-0374)")]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Where the OpenPGP keys are kept (`<dir>/<jid>.ox.sqlite`).
    #[arg(long)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish the account's public key and print its fingerprint.
    Key,
    /// Send a signed and encrypted message.
    Send {
        /// The recipient.
        #[arg(long)]
        to: String,
        /// The text.
        text: String,
    },
    /// Print received messages.
    Listen {
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
        /// One JSON object per message and line.
        #[arg(long)]
        json: bool,
    },
}

/// Connects without initial presence and subscribes to incoming stanzas before announcing itself,
/// so that the messages the server kept offline are not missed.
async fn connect_quiet(args: &ConnectArgs) -> Result<(XmppClient, Incoming), String> {
    let jid = parse_jid(&args.jid)?;
    let loopback = args
        .server
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| a.ip().is_loopback());
    let transport = match loopback {
        Some(addr) if !args.starttls => Transport::PlaintextLoopback { addr },
        _ => Transport::StartTls {
            server: Some(args.server.clone()),
        },
    };
    let mut config = ClientConfig::new(jid, args.password.clone(), transport);
    config.send_presence = false;
    let client = XmppClient::connect(config)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let incoming = client.incoming();
    Ok((client, incoming))
}

async fn run(cli: Cli) -> Result<(), String> {
    let (client, mut incoming) = connect_quiet(&cli.conn).await?;
    let bare = client.jid().to_bare();
    std::fs::create_dir_all(&cli.data_dir)
        .map_err(|e| format!("{}: {e}", cli.data_dir.display()))?;
    let store = SqliteOxStore::open(cli.data_dir.join(format!("{bare}.ox.sqlite")))
        .map_err(|e| format!("OpenPGP store: {e}"))?;
    let ox = OxClient::new(client.clone(), store).map_err(|e| format!("OpenPGP key: {e}"))?;
    ox.publish_key()
        .await
        .map_err(|e| format!("cannot publish the OpenPGP key: {e}"))?;
    let result = match cli.command {
        Command::Key => {
            let key = ox.public_key().map_err(|e| e.to_string())?;
            println!("{}", key.fingerprint());
            Ok(())
        }
        Command::Send { to, text } => {
            let to = parse_jid(&to)?.to_bare();
            ox.send_chat(&to, &text)
                .await
                .map_err(|e| format!("send failed: {e}"))
        }
        Command::Listen {
            count,
            timeout,
            json,
        } => {
            let marker = cli.data_dir.join(format!("{bare}.archive-last"));
            let listen = async {
                let mut seen = 0usize;
                let print = |msg: &OxMessage| {
                    let from = msg.from.to_bare();
                    for (service, node, accepted) in &msg.secrets {
                        if accepted.added.is_empty() && accepted.revoked.is_empty() {
                            continue;
                        }
                        eprintln!(
                            "secrets for {node} on {service} from {from}: {} new, {} revoked",
                            accepted.added.len(),
                            accepted.revoked.len()
                        );
                    }
                    let Some(body) = &msg.body else {
                        return false;
                    };
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "from": from.to_string(),
                                "text": body,
                                "signer_fingerprint": msg.signer,
                            })
                        );
                    } else {
                        println!("{from}: {body}");
                    }
                    true
                };
                // What arrived while we were away.
                let after = std::fs::read_to_string(&marker)
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty() && s.len() < 256);
                let archived = catch_up_archive(&ox, after.as_deref())
                    .await
                    .map_err(|e| format!("reading the archive: {e}"))?;
                if let Some(last) = &archived.last_id {
                    std::fs::write(&marker, last)
                        .map_err(|e| format!("{}: {e}", marker.display()))?;
                }
                for (id, e) in &archived.refused {
                    eprintln!("refused archived message {id}: {e}");
                }
                for msg in &archived.messages {
                    if count.is_some_and(|c| seen >= c) {
                        return Ok(());
                    }
                    if print(msg) {
                        seen += 1;
                    }
                }
                if count.is_some_and(|c| seen >= c) {
                    return Ok(());
                }
                // Then live.
                client
                    .send_stanza(Presence::new(PresenceType::None).into())
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!("listening as {bare}");
                while count.is_none_or(|c| seen < c) {
                    let stanza = incoming
                        .recv()
                        .await
                        .map_err(|e| format!("connection: {e:?}"))?;
                    let Stanza::Message(m) = &*stanza else {
                        continue;
                    };
                    match ox.handle_message(m).await {
                        Ok(Some(msg)) => {
                            if print(&msg) {
                                seen += 1;
                            }
                        }
                        Ok(None) => {}
                        // A message that does not open (not for us, unknown signer, tampered) is
                        // reported, not fatal.
                        Err(e) => eprintln!(
                            "refused a message from {}: {e}",
                            m.from.as_ref().map(|f| f.to_string()).unwrap_or_default()
                        ),
                    }
                }
                Ok::<(), String>(())
            };
            let result = match timeout {
                Some(secs) => tokio::time::timeout(Duration::from_secs(secs), listen)
                    .await
                    .unwrap_or(Ok(())),
                None => listen.await,
            };
            // The live messages are archived too: move the marker past them (their secrets are
            // applied again, which changes nothing).
            if result.is_ok() {
                let after = std::fs::read_to_string(&marker).ok();
                if let Ok(found) = catch_up_archive(&ox, after.as_deref().map(str::trim)).await {
                    if let Some(last) = found.last_id {
                        let _ = std::fs::write(&marker, last);
                    }
                }
            }
            result
        }
    };
    let _ = client.close().await;
    result
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
