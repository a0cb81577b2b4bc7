//! `jingle-send`: offers a file to a peer by Jingle file transfer (XEP-0234) and sends it.
//!
//! ```text
//! jingle-send [--server HOST:PORT --jid JID --password PW] --to FULLJID [--name NAME] [--desc TEXT]
//!             [--transport auto|socks5|ibb] [--listen ADDR] [--advertise HOST]... [--no-direct]
//!             [--no-proxy] [--block-size N] [--encrypt [--legacy] [--store FILE]] [--json] [--quiet]
//!             FILE
//! ```
//! The file goes over a SOCKS5 bytestream (XEP-0260: a direct connection to a listener of ours or of
//! the receiver, or through the server's proxy), or over in-band bytestreams (XEP-0261) when SOCKS5
//! fails or with `--transport ibb`. The account flags fall back to `$XMPP_SERVER`, `$XMPP_JID` and `$XMPP_PASSWORD`. The offer carries
//! the file's name, size, modification date, a media type guessed from the extension, and announces
//! sha-256 and sha-1, which are computed while the file streams and sent after the data. A progress bar
//! (bytes, rate, ETA) shows on stderr when it is a terminal (never with `--quiet`). On success (the
//! receiver checked the data and ended the session with `<success/>`), prints
//! `sent NAME: BYTES bytes to JID over TRANSPORT, sha-256 HEX` (with `--json`: one line
//! `{"event": "sent", "to", "name", "size", "bytes_sent", "offset", "transport", "sha256", "sid"}`) and
//! exits 0; on refusal or failure exits 1 saying why.
//!
//! `--encrypt` encrypts the transfer with Jingle Encrypted Transports (XEP-0391, AES-128-GCM): a fresh
//! key goes to the receiver's OMEMO devices (XEP-0396) in OMEMO:2, or legacy OMEMO with `--legacy`,
//! inside the offer; the transport carries the ciphertext and the 16-byte tag. `--store FILE` keeps
//! the OMEMO device in SQLite (default: a new device in memory each run). The JSON line then has
//! `"encrypted": "omemo2"` or `"legacy"` and `wire_bytes` (size + 16).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use jid::Jid;
use serde_json::json;
use xmpp_e2ee::omemo::{OmemoClient, OmemoConfig, Profile, SqliteStore};
use xmpp_jingle::driver::SendOptions;
use xmpp_jingle::ft::File;
use xmpp_jingle::jet::{self, Sealed};
use xmpp_jingle::jingle::ReasonCondition;
use xmpp_jingle::Error;
use xmpp_social::client::XmppClient;
use xmpp_social_examples::jingle::{
    close_jingle, connect_jingle, guess_media_type, progress_bar, progress_enabled, sha256_hex,
    transport_name, AccountArgs, ProgressReader, TransferArgs,
};
use xmpp_social_examples::omemo::{open_store, profile_name};
use xmpp_social_examples::{parse_jid, print_json, run_main};

#[derive(Parser)]
#[command(about = "Send a file by Jingle file transfer (XEP-0234)")]
struct Cli {
    #[command(flatten)]
    account: AccountArgs,
    /// The receiver's full JID (with its resource: Jingle talks to one client).
    #[arg(long)]
    to: String,
    /// The name offered (default: the file's own name).
    #[arg(long)]
    name: Option<String>,
    /// A description sent with the offer.
    #[arg(long)]
    desc: Option<String>,
    /// Encrypt the transfer (Jingle Encrypted Transports, XEP-0391, key sent by OMEMO, XEP-0396):
    /// OMEMO:2 unless --legacy.
    #[arg(long)]
    encrypt: bool,
    /// With --encrypt: send the key by legacy OMEMO (eu.siacs.conversations.axolotl; Conversations,
    /// Dino) instead of OMEMO:2.
    #[arg(long, requires = "encrypt")]
    legacy: bool,
    /// SQLite file keeping the OMEMO device between runs (default: in memory, a new device each run).
    #[arg(long, requires = "encrypt")]
    store: Option<PathBuf>,
    #[command(flatten)]
    transfer: TransferArgs,
    /// Print the outcome as one JSON line.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// The file to send.
    file: PathBuf,
}

/// Why a failed transfer failed, in words.
fn explain(e: &Error) -> String {
    match e {
        Error::Terminated(Some(r)) => {
            let what = match &r.condition {
                ReasonCondition::Decline => "the receiver declined the file".to_owned(),
                ReasonCondition::MediaError
                    if r.extra.iter().any(|x| x.name() == "file-too-large") =>
                {
                    "the receiver refused the file: too large".to_owned()
                }
                ReasonCondition::MediaError => "the receiver reported a media error".to_owned(),
                ReasonCondition::Timeout => "the receiver did not answer in time".to_owned(),
                ReasonCondition::SecurityError => "the receiver refused for security".to_owned(),
                c => format!("the session ended with <{}/>", c.name()),
            };
            match &r.text {
                Some(t) => format!("{what} ({t})"),
                None => what,
            }
        }
        Error::Terminated(None) => "the session ended without a reason".to_owned(),
        Error::Timeout(what) => format!("timed out waiting for {what}"),
        other => other.to_string(),
    }
}

/// Publishes our OMEMO device and seals a fresh transport key for `to`'s devices (and our other ones).
async fn seal(
    conn: XmppClient,
    store: SqliteStore,
    profile: Profile,
    to: &Jid,
) -> Result<Sealed, String> {
    let omemo = OmemoClient::new(conn, store, OmemoConfig::default())
        .map_err(|e| format!("cannot open the OMEMO device: {e}"))?;
    omemo
        .publish()
        .await
        .map_err(|e| format!("cannot publish the OMEMO device: {e}"))?;
    let bare = to.to_bare();
    let sealed = jet::seal(&omemo, profile, &bare, Some(jet::FILE_CONTENT_NAME))
        .await
        .map_err(|e| format!("cannot encrypt the transport key for {bare}: {e}"))?;
    if !sealed.recipients.iter().any(|d| d.jid == bare.as_str()) {
        return Err(format!(
            "no OMEMO device of {bare} got the key (has it published a device in {}?)",
            profile_name(profile)
        ));
    }
    Ok(sealed)
}

async fn run(cli: Cli) -> Result<(), String> {
    let to = parse_jid(&cli.to)?;
    if to.resource().is_none() {
        return Err(format!(
            "--to needs a full JID (with /resource): Jingle offers go to one client of {to}"
        ));
    }
    let meta = std::fs::metadata(&cli.file).map_err(|e| format!("{}: {e}", cli.file.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", cli.file.display()));
    }
    let size = meta.len();
    let name = match &cli.name {
        Some(n) => n.clone(),
        None => cli
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned()),
    };
    let mut offer = File::named(name.clone(), size);
    offer.media_type = guess_media_type(&cli.file).map(str::to_owned);
    offer.desc = cli.desc.clone();
    offer.date = meta.modified().ok().map(|t| {
        chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    });
    let reader = tokio::fs::File::open(&cli.file)
        .await
        .map_err(|e| format!("{}: {e}", cli.file.display()))?;

    let args = cli.account.resolve()?;
    let profile = cli.encrypt.then_some(if cli.legacy {
        Profile::Legacy
    } else {
        Profile::Omemo2
    });
    let store = match profile {
        Some(_) => Some(open_store(cli.store.as_deref())?),
        None => None,
    };
    let jingle = connect_jingle(&args, cli.transfer.driver_config(), profile.is_some()).await?;
    let conn = jingle.connection().clone();
    let result = async {
        let opts = match (profile, store) {
            (Some(profile), Some(store)) => {
                let sealed = seal(conn.clone(), store, profile, &to).await?;
                SendOptions::default().with_jet(&sealed)
            }
            _ => SendOptions::default(),
        };
        let bar = progress_bar(Some(size), progress_enabled(cli.quiet), &name);
        let mut reader = ProgressReader::new(reader, bar.clone());
        let result = jingle
            .send_file_with(to.clone(), offer, &mut reader, opts)
            .await;
        bar.finish_and_clear();
        result.map_err(|e| format!("sending {name} to {to} failed: {}", explain(&e)))
    }
    .await;
    close_jingle(&jingle).await;
    let outcome = result?;
    let encrypted = profile.map(profile_name);
    let sha256 = sha256_hex(&outcome.hashes).unwrap_or_default();
    let transport = transport_name(outcome.transport);
    if cli.json {
        print_json(&json!({
            "event": "sent",
            "to": to.to_string(),
            "name": name,
            "size": size,
            "bytes_sent": outcome.bytes_sent,
            "offset": outcome.offset,
            "transport": transport,
            "sha256": sha256,
            "sid": outcome.sid,
            "encrypted": encrypted,
            "wire_bytes": outcome.wire_bytes,
        }))?;
    } else {
        println!(
            "sent {name}: {} bytes to {to} over {transport}{}, sha-256 {sha256}",
            outcome.offset + outcome.bytes_sent,
            encrypted
                .map(|e| format!(" encrypted (JET, {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
