//! `omemo-bot`: an OMEMO echo bot. It publishes its device in both namespaces (OMEMO:2 and legacy
//! OMEMO) and answers every encrypted message with an encrypted `echo: <text>` in the namespace the
//! message came in.
//!
//! ```text
//! omemo-bot --server HOST:PORT --jid JID --password PW [--store FILE] [--prefix P] [--max N]
//! ```
//! Each event is one JSON line on stdout: `ready` (with the device id and fingerprint), `received`,
//! `sent`, `error`. `--store` keeps the device, its sessions and trust decisions in a SQLite file
//! (otherwise a new device each run). New devices are trusted blindly until one of the account is
//! verified (the library's default policy). A loopback `--server` is reached without TLS.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde_json::json;
use xmpp_e2ee::omemo::{DecryptedMessage, OmemoClient, OmemoConfig, OmemoStore};
use xmpp_parsers::stanza::Stanza;
use xmpp_social::connection::RecvError;
use xmpp_social::Connection;
use xmpp_social_examples::omemo::{open_store, profile_name, ReceivedJson, SentJson};
use xmpp_social_examples::{print_json, run_main, ConnectArgs};

#[derive(Parser)]
#[command(about = "OMEMO echo bot: answers encrypted messages in the namespace they came in")]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    /// SQLite file keeping the OMEMO device between runs (default: in memory, a new device each run).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Text put before the echoed message.
    #[arg(long, default_value = "echo: ")]
    prefix: String,
    /// Stop after answering this many messages (default: run until interrupted).
    #[arg(long)]
    max: Option<u64>,
}

async fn answer<C: Connection, S: OmemoStore + Send + 'static>(
    omemo: &OmemoClient<C, S>,
    message: &DecryptedMessage,
    text: &str,
    prefix: &str,
) -> Result<(), String> {
    let to = message.from.to_bare();
    let reply = format!("{prefix}{text}");
    let out = omemo
        .send_chat(&to, message.profile, &reply)
        .await
        .map_err(|e| format!("reply to {to} failed: {e}"))?;
    let to = to.to_string();
    if !SentJson::reached(&out, &to) {
        return Err(format!(
            "reply to {to}: no device got a key ({:?})",
            out.skipped
        ));
    }
    print_json(&SentJson::new(&to, message.profile, &reply, &out))
}

async fn run(cli: Cli) -> Result<(), String> {
    let store = open_store(cli.store.as_deref())?;
    let conn = cli.conn.connect().await?;
    // Subscribe before publishing: a peer may write as soon as our device is visible.
    let mut incoming = conn.incoming();
    let omemo = OmemoClient::new(conn.clone(), store, OmemoConfig::default())
        .map_err(|e| format!("cannot open the OMEMO device: {e}"))?;
    omemo
        .publish()
        .await
        .map_err(|e| format!("cannot publish the device: {e}"))?;
    let (device_id, fingerprint) = {
        let m = omemo.manager().map_err(|e| e.to_string())?;
        (m.device_id(), m.own_fingerprint())
    };
    print_json(&json!({
        "event": "ready",
        "jid": conn.bare_jid().to_string(),
        "device_id": device_id,
        "fingerprint": fingerprint,
    }))?;

    let mut answered = 0u64;
    loop {
        if cli.max.is_some_and(|max| answered >= max) {
            break;
        }
        let stanza = tokio::select! {
            s = incoming.recv() => s,
            _ = tokio::signal::ctrl_c() => break,
        };
        let stanza = match stanza {
            Ok(s) => s,
            Err(RecvError::Lagged(n)) => {
                print_json(
                    &json!({"event": "error", "error": format!("{n} stanzas dropped (too slow)")}),
                )?;
                continue;
            }
            Err(e) => return Err(format!("connection lost: {e}")),
        };
        let Stanza::Message(message) = &*stanza else {
            continue;
        };
        let from = message
            .from
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        match omemo.handle_message(message).await {
            // Not OMEMO, or a duplicate.
            Ok(None) => {}
            Ok(Some(decrypted)) => {
                print_json(&ReceivedJson::new(&decrypted))?;
                // Empty messages (key transport, heartbeats) keep the sessions healthy: no answer.
                if let Some(text) = decrypted.body.clone() {
                    if let Err(e) = answer(&omemo, &decrypted, &text, &cli.prefix).await {
                        print_json(&json!({
                            "event": "error",
                            "ns": profile_name(decrypted.profile),
                            "to": from,
                            "error": e,
                        }))?;
                    }
                    answered += 1;
                }
            }
            Err(e) => print_json(&json!({
                "event": "error",
                "from": from,
                "error": format!("cannot decrypt: {e}"),
            }))?,
        }
    }
    let _ = conn.close().await;
    Ok(())
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
