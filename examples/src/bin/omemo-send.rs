//! `omemo-send`: sends one OMEMO-encrypted chat message.
//!
//! ```text
//! omemo-send --server HOST:PORT --jid JID --password PW --to JID [--legacy] [--store FILE] [--wait SECS] TEXT
//! ```
//! Publishes this device (the recipient needs its identity key), encrypts TEXT for every device of
//! `--to` (and the own other devices) in OMEMO:2, or legacy OMEMO with `--legacy`, and prints one JSON
//! line `{"event": "sent", "to", "ns", "body", "recipients", "skipped"}`. With `--wait`, the encrypted
//! messages arriving during SECS seconds are decrypted and printed as `received` lines. Fails when no
//! device of `--to` could get a key. A loopback `--server` is reached without TLS.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use xmpp_e2ee::omemo::{OmemoClient, OmemoConfig, Profile};
use xmpp_parsers::stanza::Stanza;
use xmpp_social::Connection;
use xmpp_social_examples::omemo::{open_store, ReceivedJson, SentJson};
use xmpp_social_examples::{parse_jid, print_json, run_main, ConnectArgs};

#[derive(Parser)]
#[command(about = "Send one OMEMO-encrypted chat message")]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Recipient (its bare JID is used).
    #[arg(long)]
    to: String,
    /// Use legacy OMEMO (eu.siacs.conversations.axolotl) instead of OMEMO:2.
    #[arg(long)]
    legacy: bool,
    /// SQLite file keeping the OMEMO device between runs (default: in memory, a new device each run).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Afterwards, print the encrypted messages arriving during this many seconds.
    #[arg(long, default_value_t = 0)]
    wait: u64,
    /// The message.
    text: String,
}

async fn run(cli: Cli) -> Result<(), String> {
    let to = parse_jid(&cli.to)?.to_bare();
    let profile = if cli.legacy {
        Profile::Legacy
    } else {
        Profile::Omemo2
    };
    let store = open_store(cli.store.as_deref())?;
    let conn = cli.conn.connect().await?;
    let mut incoming = conn.incoming();
    let omemo = OmemoClient::new(conn.clone(), store, OmemoConfig::default())
        .map_err(|e| format!("cannot open the OMEMO device: {e}"))?;
    let result = async {
        omemo
            .publish()
            .await
            .map_err(|e| format!("cannot publish the device: {e}"))?;
        let out = omemo
            .send_chat(&to, profile, &cli.text)
            .await
            .map_err(|e| format!("cannot send: {e}"))?;
        let to_s = to.to_string();
        print_json(&SentJson::new(&to_s, profile, &cli.text, &out))?;
        if !SentJson::reached(&out, &to_s) {
            return Err(format!(
                "no device of {to_s} got a key (has it published an OMEMO device in this namespace?)"
            ));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(cli.wait);
        while let Ok(stanza) = tokio::time::timeout_at(deadline, incoming.recv()).await {
            let Ok(stanza) = stanza else { break };
            let Stanza::Message(message) = &*stanza else {
                continue;
            };
            match omemo.handle_message(message).await {
                Ok(Some(d)) => print_json(&ReceivedJson::new(&d))?,
                Ok(None) => {}
                Err(e) => print_json(&json!({"event": "error", "error": format!("cannot decrypt: {e}")}))?,
            }
        }
        Ok(())
    }
    .await;
    // Flush before leaving, so the message is not lost with the connection.
    let _ = conn.close().await;
    result
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
