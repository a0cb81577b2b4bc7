//! `encrypted-download`: downloads an `aesgcm://` URL (XEP-0454), decrypting while it streams.
//!
//! ```text
//! encrypted-download [--allow-plain-http-loopback] URL [-o FILE]
//! ```
//! The plaintext goes to a temporary file next to FILE (default: the URL's last path segment in the
//! current directory) that is renamed to FILE only once the GCM tag verifies; a tampered or truncated
//! download leaves nothing behind and exits with an error. A progress bar shows on a terminal. Prints
//! the path and size written.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use xmpp_e2ee::files::upload::{FileTransfer, HttpConfig};
use xmpp_e2ee::files::AesgcmUrl;
use xmpp_social_examples::run_main;

#[derive(Parser)]
#[command(about = "Download and decrypt an aesgcm:// URL")]
struct Cli {
    /// Fetch over plain HTTP when the URL's host is a loopback address (local test servers).
    #[arg(long)]
    allow_plain_http_loopback: bool,
    /// Where to write the file (default: the URL's file name in the current directory).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The aesgcm:// URL.
    url: String,
}

/// The URL's last path segment, if it is a plain file name.
fn default_name(url: &AesgcmUrl) -> Option<PathBuf> {
    let path = url.location().split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.%+".contains(c));
    ok.then(|| PathBuf::from(name))
}

async fn run(cli: Cli) -> Result<(), String> {
    let url: AesgcmUrl = cli.url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let target = match cli.output {
        Some(p) => p,
        None => default_name(&url).ok_or("the URL has no usable file name: pass -o FILE")?,
    };
    let http = FileTransfer::new(HttpConfig {
        allow_plain_http_loopback: cli.allow_plain_http_loopback,
        ..HttpConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        bar.set_style(style);
    }
    let b2 = bar.clone();
    let size = http
        .download_aesgcm(
            &url,
            &target,
            Some(Box::new(move |done, total| {
                b2.set_length(total.max(done));
                b2.set_position(done);
            })),
        )
        .await
        .map_err(|e| format!("download failed: {e}"))?;
    bar.finish_and_clear();
    println!("{} {size}", target.display());
    Ok(())
}

fn main() -> ExitCode {
    run_main(run(Cli::parse()))
}
