//! `jingle-receive`: accepts files offered by Jingle file transfer (XEP-0234) into a directory.
//!
//! ```text
//! jingle-receive [--server HOST:PORT --jid JID --password PW] --dir DIR [--once] [--max-size SIZE]
//!                [--from JID]... [--transport auto|socks5|ibb] [--listen ADDR] [--advertise HOST]...
//!                [--no-direct] [--no-proxy] [--block-size N] [--omemo [--store FILE]
//!                [--require-encryption]] [--json] [--quiet]
//! ```
//! The account flags fall back to `$XMPP_SERVER`, `$XMPP_JID` and `$XMPP_PASSWORD`; give the JID a
//! resource (`me@example.org/files`) so senders know the full JID to offer to. The Jingle features are
//! announced in disco#info. Each offer is checked before it is accepted: only from the `--from` JIDs
//! when some are given; no larger than `--max-size` (default 1G; `K`, `M`, `G`, `T` suffixes; an offer
//! without a size is cut at that limit); requests for our files are declined. The data goes to a hidden
//! temporary file in DIR, and only once the transfer ended and the sender's hash matched is it given its
//! name: the offered name stripped of any path and of unsafe characters, never overwriting a file
//! (`name (1).ext`, ...). A progress bar per transfer shows on stderr when it is a terminal.
//!
//! Prints a line per event; with `--json` one JSON object per line:
//! `{"event": "ready", "jid"}`, `{"event": "offer", "from", "name", "size"}`,
//! `{"event": "received", "from", "name", "path", "bytes", "sha256", "hash", "transport"}` (`hash`: the algorithm
//! that verified the data, or `unverified` when the sender gave no hash), `{"event": "rejected", "from",
//! "name", "reason"}`, `{"event": "failed", "from", "name", "error"}`. With `--once`, exits after the
//! first offer: 0 when its file was stored, 1 otherwise. Up to four transfers run at once.
//!
//! With `--omemo` (and `--store FILE` to keep the device in SQLite), the OMEMO device is published in
//! both namespaces and JET is announced: encrypted offers (XEP-0391 + XEP-0396, OMEMO:2 or legacy) are
//! decrypted while they arrive, and the tag is checked before the file gets its name (a failed tag
//! deletes the data). The `offer` and `received` lines then say `"encrypted": "omemo2"` or `"legacy"`,
//! and `received` the trust in the sender's device. Encrypted offers are refused without `--omemo`,
//! unencrypted ones with `--require-encryption`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use jid::BareJid;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use xmpp_e2ee::omemo::{OmemoClient, OmemoConfig, SqliteStore};
use xmpp_jingle::driver::IncomingOffer;
use xmpp_jingle::ft::FtError;
use xmpp_jingle::hashes::HashCheck;
use xmpp_jingle::jet::is_tag_failure;
use xmpp_jingle::jingle::{Reason, ReasonCondition};
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_social_examples::jingle::{
    close_jingle, connect_jingle, parse_size, persist_unique, progress_bar, progress_enabled,
    sanitize_file_name, sha256_hex, transport_name, AccountArgs, ReceiveWriter, TransferArgs,
};
use xmpp_social_examples::omemo::{open_store, profile_name};
use xmpp_social_examples::{parse_jid, run_main};

/// Transfers running at once; further offers wait in the driver's queue.
const MAX_CONCURRENT: usize = 4;

#[derive(Parser)]
#[command(about = "Receive files sent by Jingle file transfer (XEP-0234) into a directory")]
struct Cli {
    #[command(flatten)]
    account: AccountArgs,
    /// Where received files go (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Exit after the first offer.
    #[arg(long)]
    once: bool,
    /// Largest file accepted (bytes, or with a K, M, G or T suffix).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    max_size: u64,
    /// Accept offers only from this JID (bare; repeat for several). Default: from anyone.
    #[arg(long = "from")]
    from: Vec<String>,
    #[command(flatten)]
    transfer: TransferArgs,
    /// Set up OMEMO, so encrypted offers (JET, XEP-0391 with OMEMO key transport, both namespaces) are
    /// decrypted. Without it, encrypted offers are refused.
    #[arg(long)]
    omemo: bool,
    /// SQLite file keeping the OMEMO device between runs (default: in memory, a new device each run).
    #[arg(long, requires = "omemo")]
    store: Option<PathBuf>,
    /// Refuse offers that are not encrypted.
    #[arg(long, requires = "omemo")]
    require_encryption: bool,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// What every transfer task needs.
struct Opts {
    dir: PathBuf,
    max_size: u64,
    from: Option<HashSet<BareJid>>,
    json: bool,
    bars: Option<MultiProgress>,
    omemo: Option<OmemoClient<XmppClient, SqliteStore>>,
    require_encryption: bool,
}

impl Opts {
    /// Prints an event: its JSON form, or `text`.
    fn emit(&self, value: Value, text: String) {
        let line = if self.json { value.to_string() } else { text };
        match &self.bars {
            Some(m) => m.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn bar(&self, size: Option<u64>, label: &str) -> ProgressBar {
        match &self.bars {
            Some(m) => m.add(progress_bar(size, true, label)),
            None => ProgressBar::hidden(),
        }
    }
}

/// Declines an offer and reports it; always `false` (nothing stored).
async fn reject(
    opts: &Opts,
    offer: IncomingOffer<XmppClient>,
    name: &str,
    reason: Reason,
    why: &str,
) -> bool {
    let from = offer.peer().to_string();
    let mut reason = reason;
    reason.text.get_or_insert_with(|| why.to_owned());
    offer.reject(reason).await;
    opts.emit(
        json!({"event": "rejected", "from": from, "name": name, "reason": why}),
        format!("rejected {name:?} from {from}: {why}"),
    );
    false
}

/// Handles one offer; `true` when a file was stored.
async fn receive(mut offer: IncomingOffer<XmppClient>, opts: Arc<Opts>) -> bool {
    let from = offer.peer().clone();
    if offer.is_request() {
        let reason = Reason::new(ReasonCondition::Decline);
        return reject(
            &opts,
            offer,
            "",
            reason,
            "asks for a file; this client only receives",
        )
        .await;
    }
    let offered = offer
        .file()
        .and_then(|f| f.name.clone())
        .unwrap_or_default();
    if let Some(allowed) = &opts.from {
        if !allowed.contains(&from.to_bare()) {
            let reason = Reason::new(ReasonCondition::Decline);
            return reject(
                &opts,
                offer,
                &offered,
                reason,
                "sender not allowed (--from)",
            )
            .await;
        }
    }
    let Some(file) = offer.file().cloned() else {
        let reason = Reason::new(ReasonCondition::UnsupportedApplications);
        return reject(&opts, offer, &offered, reason, "not a file offer").await;
    };
    let limit = match file.size {
        Some(size) if size > opts.max_size => {
            let mut reason = Reason::new(ReasonCondition::MediaError);
            reason.extra.push(FtError::FileTooLarge.to_element());
            let why = format!("{size} bytes, over --max-size {}", opts.max_size);
            return reject(&opts, offer, &offered, reason, &why).await;
        }
        Some(size) => size,
        None => opts.max_size,
    };
    // XEP-0391: an encrypted offer is never accepted unencrypted.
    let security_error = Reason::new(ReasonCondition::SecurityError);
    let opened = match (offer.security().is_some(), &opts.omemo) {
        (false, _) if opts.require_encryption => {
            let why = "not encrypted (--require-encryption)";
            return reject(&opts, offer, &offered, security_error, why).await;
        }
        (false, _) => None,
        (true, None) => {
            let why = "encrypted (JET), but OMEMO is off (run with --omemo)";
            return reject(&opts, offer, &offered, security_error, why).await;
        }
        (true, Some(omemo)) => match offer.open_jet(omemo).await {
            Ok(o) => o,
            Err(e) => {
                let why = format!("cannot open the encrypted offer: {e}");
                return reject(&opts, offer, &offered, security_error, &why).await;
            }
        },
    };
    let encrypted = opened.as_ref().map(|o| profile_name(o.profile));
    let trust = opened.as_ref().map(|o| format!("{:?}", o.trust));
    let name = sanitize_file_name(file.name.as_deref());
    opts.emit(
        json!({"event": "offer", "from": from.to_string(), "name": offered, "size": file.size,
               "encrypted": encrypted}),
        format!(
            "offer {offered:?} from {from}{}",
            file.size
                .map(|s| format!(", {s} bytes"))
                .unwrap_or_default()
        ),
    );
    let fail = |error: String| {
        opts.emit(
            json!({"event": "failed", "from": from.to_string(), "name": offered, "error": error}),
            format!("failed {offered:?} from {from}: {error}"),
        );
        false
    };
    // A hidden temporary file in the target directory (deleted unless the transfer succeeds).
    let tmp = match tempfile::Builder::new()
        .prefix(".jingle-")
        .suffix(".part")
        .tempfile_in(&opts.dir)
    {
        Ok(t) => t,
        Err(e) => {
            let reason = Reason::new(ReasonCondition::MediaError);
            let why = format!("cannot create a file in {}: {e}", opts.dir.display());
            return reject(&opts, offer, &offered, reason, &why).await;
        }
    };
    let std_file = match tmp.reopen() {
        Ok(f) => f,
        Err(e) => {
            let reason = Reason::new(ReasonCondition::MediaError);
            return reject(&opts, offer, &offered, reason, &e.to_string()).await;
        }
    };
    let bar = opts.bar(file.size, &name);
    let mut writer = ReceiveWriter::new(tokio::fs::File::from_std(std_file), limit, bar.clone());
    let result = offer.accept(&mut writer).await;
    bar.finish_and_clear();
    let outcome = match result {
        Ok(o) => o,
        Err(e) if is_tag_failure(&e) => {
            return fail(format!(
                "{e}: the data was not authentic (JET tag mismatch) and is deleted"
            ))
        }
        Err(e) => return fail(e.to_string()),
    };
    if let Err(e) = writer.flush().await {
        return fail(format!("cannot write: {e}"));
    }
    let bytes = writer.written();
    let sha256 = sha256_hex(&writer.finish()).unwrap_or_default();
    let transport = transport_name(outcome.transport);
    let hash = match outcome.check {
        HashCheck::Verified(algo) => algo,
        HashCheck::Unverified => "unverified".to_owned(),
        // The driver fails the transfer on a mismatch; never store such data.
        HashCheck::Mismatch(algo) => return fail(format!("{algo} hash mismatch")),
    };
    let path = match persist_unique(tmp, &opts.dir, &name) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    opts.emit(
        json!({
            "event": "received",
            "from": from.to_string(),
            "name": offered,
            "path": path.display().to_string(),
            "bytes": bytes,
            "sha256": sha256,
            "hash": hash,
            "transport": transport,
            "encrypted": encrypted,
            "trust": trust,
        }),
        format!(
            "received {}: {bytes} bytes from {from} over {transport}{}, sha-256 {sha256} ({})",
            path.display(),
            match (encrypted, &trust) {
                (Some(e), Some(t)) => format!(" encrypted (JET, {e}, sender's device {t})"),
                _ => String::new(),
            },
            if hash == "unverified" {
                "unverified: the sender gave no hash".to_owned()
            } else {
                format!("{hash} verified")
            }
        ),
    );
    true
}

async fn run(cli: Cli) -> Result<(), String> {
    std::fs::create_dir_all(&cli.dir).map_err(|e| format!("{}: {e}", cli.dir.display()))?;
    let dir = std::fs::canonicalize(&cli.dir).map_err(|e| format!("{}: {e}", cli.dir.display()))?;
    let from = if cli.from.is_empty() {
        None
    } else {
        let mut set = HashSet::new();
        for f in &cli.from {
            set.insert(parse_jid(f)?.to_bare());
        }
        Some(set)
    };
    let bars = progress_enabled(cli.quiet)
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let store = match cli.omemo {
        true => Some(open_store(cli.store.as_deref())?),
        false => None,
    };
    let args = cli.account.resolve()?;
    let jingle = connect_jingle(&args, cli.transfer.driver_config(), cli.omemo).await?;
    let omemo = match store {
        Some(store) => {
            let omemo =
                OmemoClient::new(jingle.connection().clone(), store, OmemoConfig::default())
                    .map_err(|e| format!("cannot open the OMEMO device: {e}"))?;
            omemo
                .publish()
                .await
                .map_err(|e| format!("cannot publish the OMEMO device: {e}"))?;
            Some(omemo)
        }
        None => None,
    };
    let opts = Arc::new(Opts {
        dir,
        max_size: cli.max_size,
        from,
        json: cli.json,
        bars,
        omemo,
        require_encryption: cli.require_encryption,
    });
    let me = jingle.connection().jid().to_string();
    opts.emit(
        json!({"event": "ready", "jid": me}),
        format!(
            "ready: offer files to {me}; saving into {}",
            opts.dir.display()
        ),
    );
    let mut tasks = JoinSet::new();
    let result = loop {
        while tasks.len() >= MAX_CONCURRENT {
            let _ = tasks.join_next().await;
        }
        let offer = tokio::select! {
            o = jingle.next_offer() => o,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            _ = tokio::signal::ctrl_c() => break Ok(()),
        };
        let Some(offer) = offer else {
            break Err("the connection ended".to_owned());
        };
        if cli.once {
            break if receive(offer, opts.clone()).await {
                Ok(())
            } else {
                Err("no file stored".to_owned())
            };
        }
        tasks.spawn(receive(offer, opts.clone()));
    };
    // Transfers still running are cut (their temporary files are deleted).
    tasks.shutdown().await;
    close_jingle(&jingle).await;
    result
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
