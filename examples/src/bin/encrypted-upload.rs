//! `encrypted-upload`: encrypts a file (AES-256-GCM, fresh key and IV) while uploading it through the
//! account's XEP-0363 HTTP upload service, and prints the `aesgcm://` URL (XEP-0454) to share.
//!
//! ```text
//! encrypted-upload --server HOST:PORT --jid JID --password PW [--allow-plain-http-loopback] FILE
//! ```
//! The file is streamed (never held in memory); a progress bar shows on a terminal. The upload service
//! is found by service discovery; a file over its limit is refused before anything is sent. Plain
//! `http://` upload URLs are refused unless `--allow-plain-http-loopback` is given and the host is a
//! loopback address (local test servers).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use xmpp_e2ee::files::upload::{FileTransfer, HttpConfig};
use xmpp_social_examples::{run_main, ConnectArgs};

#[derive(Parser)]
#[command(about = "Upload a file encrypted (XEP-0363 + XEP-0454) and print its aesgcm:// URL")]
struct Cli {
    #[command(flatten)]
    conn: ConnectArgs,
    /// Accept plain-HTTP upload URLs on loopback hosts (local test servers).
    #[arg(long)]
    allow_plain_http_loopback: bool,
    /// The file to upload.
    file: PathBuf,
}

async fn run(cli: Cli) -> Result<(), String> {
    let size = std::fs::metadata(&cli.file)
        .map_err(|e| format!("{}: {e}", cli.file.display()))?
        .len();
    let conn = cli.conn.connect().await?;
    let http = FileTransfer::new(HttpConfig {
        allow_plain_http_loopback: cli.allow_plain_http_loopback,
        ..HttpConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(size);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        bar.set_style(style);
    }
    let b2 = bar.clone();
    let uploaded = http
        .upload_encrypted(
            &conn,
            &cli.file,
            None,
            Some(Box::new(move |done, _| b2.set_position(done))),
        )
        .await
        .map_err(|e| format!("upload failed: {e}"))?;
    bar.finish_and_clear();
    println!("{}", uploaded.url);
    Ok(())
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
