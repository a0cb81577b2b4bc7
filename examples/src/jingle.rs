//! Helpers shared by the Jingle file-transfer examples (`jingle-send`, `jingle-receive`): account flags
//! that fall back to environment variables, a connection ready for Jingle, progress bars that only draw
//! on a terminal, a reader that reports progress, a bounded writer that reports progress and hashes, and
//! safe file names inside a directory.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use xmpp_jingle::driver::{
    DriverConfig, JingleClient, TransportMethod, TransportPolicy, FEATURES, IQ_NAMESPACES,
};
use xmpp_jingle::hashes::{Hash, StreamHasher, SHA_256};
use xmpp_social::client::XmppClient;

use crate::ConnectArgs;

/// Environment variable read when `--server` is not given.
pub const ENV_SERVER: &str = "XMPP_SERVER";
/// Environment variable read when `--jid` is not given.
pub const ENV_JID: &str = "XMPP_JID";
/// Environment variable read when `--password` is not given (keeps the password out of `ps`).
pub const ENV_PASSWORD: &str = "XMPP_PASSWORD";

/// The longest file name (in bytes) a received file gets; longer offered names are cut.
pub const MAX_NAME_BYTES: usize = 200;
/// How many numbered names (`name (1).ext`, ...) are tried before giving up on a crowded directory.
pub const MAX_NAME_ATTEMPTS: u32 = 1000;

/// Account flags, each falling back to an environment variable ([`ENV_SERVER`], [`ENV_JID`],
/// [`ENV_PASSWORD`]).
#[derive(Clone, clap::Args)]
pub struct AccountArgs {
    /// Server address, HOST:PORT (or $XMPP_SERVER). A loopback address is reached without TLS.
    #[arg(long)]
    pub server: Option<String>,
    /// Account JID, with a resource if you want a fixed one (or $XMPP_JID).
    #[arg(long)]
    pub jid: Option<String>,
    /// Account password (or $XMPP_PASSWORD, which other users cannot see in the process list).
    #[arg(long)]
    pub password: Option<String>,
    /// Use STARTTLS even to a loopback address.
    #[arg(long)]
    pub starttls: bool,
}

impl std::fmt::Debug for AccountArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountArgs")
            .field("server", &self.server)
            .field("jid", &self.jid)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("starttls", &self.starttls)
            .finish()
    }
}

impl AccountArgs {
    /// The flags, completed from the environment; fails naming what is missing.
    pub fn resolve(&self) -> Result<ConnectArgs, String> {
        fn pick(flag: &Option<String>, var: &str, what: &str) -> Result<String, String> {
            match flag {
                Some(v) => Ok(v.clone()),
                None => std::env::var(var)
                    .map_err(|_| format!("no {what}: give --{what} or set ${var}")),
            }
        }
        Ok(ConnectArgs {
            server: pick(&self.server, ENV_SERVER, "server")?,
            jid: pick(&self.jid, ENV_JID, "jid")?,
            password: pick(&self.password, ENV_PASSWORD, "password")?,
            starttls: self.starttls,
        })
    }
}

/// Which transports to use, as the `--transport` flag names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportChoice {
    /// SOCKS5 bytestreams (direct, or through the server's proxy), in-band bytestreams when they fail.
    Auto,
    /// SOCKS5 bytestreams only.
    Socks5,
    /// In-band bytestreams only (slow, but they go wherever XMPP goes).
    Ibb,
}

/// The transfer flags both examples take.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// Transports to use.
    #[arg(long, value_enum, default_value_t = TransportChoice::Auto)]
    pub transport: TransportChoice,
    /// Address the direct SOCKS5 candidate listens on (`0.0.0.0:0` to be reachable from other
    /// machines; then name the addresses with --advertise).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Host offered to the peer for the direct candidate (repeat for several; default: the bound address).
    #[arg(long)]
    pub advertise: Vec<String>,
    /// Offer no direct SOCKS5 candidate (only the server's proxy).
    #[arg(long)]
    pub no_direct: bool,
    /// Do not offer the server's SOCKS5 proxy.
    #[arg(long)]
    pub no_proxy: bool,
    /// In-band bytestream block size, 256 to 65535 (proposed by the sender, largest accepted by the
    /// receiver).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u16).range(256..))]
    pub block_size: u16,
    /// Seconds the sender waits for the receiver to accept or decline an offer.
    #[arg(long, default_value_t = 300)]
    pub accept_timeout: u64,
}

impl TransferArgs {
    /// The driver configuration these flags describe.
    pub fn driver_config(&self) -> DriverConfig {
        let mut cfg = DriverConfig {
            block_size: self.block_size,
            transports: match self.transport {
                TransportChoice::Auto => TransportPolicy::Socks5ThenIbb,
                TransportChoice::Socks5 => TransportPolicy::Socks5Only,
                TransportChoice::Ibb => TransportPolicy::IbbOnly,
            },
            accept_timeout: std::time::Duration::from_secs(self.accept_timeout),
            ..DriverConfig::default()
        };
        cfg.socks5.listen = (!self.no_direct).then(|| self.listen.clone());
        cfg.socks5.advertise_hosts = self.advertise.clone();
        cfg.socks5.use_proxy = !self.no_proxy;
        cfg
    }
}

/// The name of a transport in the examples' output: `socks5` or `ibb`.
pub fn transport_name(t: TransportMethod) -> &'static str {
    match t {
        TransportMethod::Socks5 => "socks5",
        TransportMethod::Ibb => "ibb",
    }
}

/// Connects with the Jingle features announced in disco#info (JET's only when `jet`: the client can
/// open encrypted offers) and the Jingle IQ namespaces let through, then starts the Jingle driver on
/// the connection.
pub async fn connect_jingle(
    args: &ConnectArgs,
    cfg: DriverConfig,
    jet: bool,
) -> Result<JingleClient<XmppClient>, String> {
    let mut config = args.client_config()?;
    config.features.extend(
        FEATURES
            .iter()
            .filter(|f| jet || !xmpp_jingle::jet::DISCO_FEATURES.contains(f))
            .map(|f| (*f).to_owned()),
    );
    config
        .iq_namespaces
        .extend(IQ_NAMESPACES.iter().map(|n| (*n).to_owned()));
    let conn = XmppClient::connect(config)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    Ok(JingleClient::new(conn, cfg))
}

/// How long [`close_jingle`] lets the driver's last requests leave before closing.
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Closes the connection of a Jingle client after [`CLOSE_GRACE`]. The driver sends a
/// session-terminate (after declining an offer, or at the end of a transfer) from a task of its own
/// without waiting for it, so closing at once could drop it and leave the peer waiting for its
/// timeout; the pause lets it go out first (`XmppClient::close` then flushes what is queued).
pub async fn close_jingle(jingle: &JingleClient<XmppClient>) {
    tokio::time::sleep(CLOSE_GRACE).await;
    let _ = jingle.connection().clone().close().await;
}

/// Whether progress bars should draw: not with `quiet`, and only when stderr is a terminal.
pub fn progress_enabled(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A byte progress bar (bytes, rate, ETA) on stderr, or a hidden one when `enabled` is false.
pub fn progress_bar(total: Option<u64>, enabled: bool, label: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(label.to_owned());
    bar
}

/// A reader that moves a progress bar to its position as it is read (and sought).
#[derive(Debug)]
pub struct ProgressReader<R> {
    inner: R,
    bar: ProgressBar,
    pos: u64,
}

impl<R> ProgressReader<R> {
    /// Wraps `inner`, reporting to `bar`.
    pub fn new(inner: R, bar: ProgressBar) -> Self {
        ProgressReader { inner, bar, pos: 0 }
    }

    /// How far the reader got.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ProgressReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            this.pos += buf.filled().len().saturating_sub(before) as u64;
            this.bar.set_position(this.pos);
        }
        r
    }
}

impl<R: AsyncSeek + Unpin> AsyncSeek for ProgressReader<R> {
    fn start_seek(mut self: Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        Pin::new(&mut self.inner).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_complete(cx);
        if let Poll::Ready(Ok(p)) = &r {
            this.pos = *p;
            this.bar.set_position(*p);
        }
        r
    }
}

/// A writer that refuses to go past a limit, hashes what it writes (sha-256 and sha-1) and moves a
/// progress bar.
#[derive(Debug)]
pub struct ReceiveWriter<W> {
    inner: W,
    bar: ProgressBar,
    limit: u64,
    hasher: StreamHasher,
}

impl<W> ReceiveWriter<W> {
    /// Wraps `inner`; a write that would take it past `limit` bytes fails.
    pub fn new(inner: W, limit: u64, bar: ProgressBar) -> Self {
        ReceiveWriter {
            inner,
            bar,
            limit,
            hasher: StreamHasher::new(),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.bytes()
    }

    /// The hashes of everything written.
    pub fn finish(self) -> Vec<Hash> {
        self.hasher.finish()
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ReceiveWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.hasher.bytes().saturating_add(buf.len() as u64) > this.limit {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("more than {} bytes", this.limit),
            )));
        }
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.hasher.update(buf.get(..*n).unwrap_or_default());
            this.bar.set_position(this.hasher.bytes());
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The sha-256 digest among `hashes`, in hexadecimal.
pub fn sha256_hex(hashes: &[Hash]) -> Option<String> {
    hashes
        .iter()
        .find(|h| h.algo == SHA_256)
        .map(|h| hex(&h.value))
}

/// A safe local name for an offered file name: only its last path component (`/` and `\` both
/// separate), no control characters, none of `<>:"|?*`, no leading dots or spaces (no hidden files, no
/// `..`), no trailing dots or spaces, at most [`MAX_NAME_BYTES`] bytes; `file` when nothing is left.
pub fn sanitize_file_name(offered: Option<&str>) -> String {
    let last = offered
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    let mut name = String::new();
    for c in trimmed.chars() {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    let name = name.trim_end_matches(['.', ' ']).to_owned();
    if name.is_empty() {
        "file".to_owned()
    } else {
        name
    }
}

/// The `n`-th alternative of a file name: `name`, then `stem (1).ext`, `stem (2).ext`...
pub fn numbered_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    match name.split_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({n}).{ext}"),
        _ => format!("{name} ({n})"),
    }
}

/// Moves a completed temporary file into `dir` under `name` (already sanitised), or the first free
/// numbered variant of it: never overwrites an existing file.
pub fn persist_unique(
    mut tmp: tempfile::NamedTempFile,
    dir: &Path,
    name: &str,
) -> Result<PathBuf, String> {
    let mut taken = HashSet::new();
    for n in 0..MAX_NAME_ATTEMPTS {
        let candidate = numbered_name(name, n);
        if !taken.insert(candidate.clone()) {
            continue;
        }
        let path = dir.join(&candidate);
        match tmp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(format!("cannot store {}: {}", path.display(), e.error)),
        }
    }
    Err(format!(
        "no free name for {name:?} in {} after {MAX_NAME_ATTEMPTS} attempts",
        dir.display()
    ))
}

/// A media type guessed from a file name's extension (a few common ones), for the offer.
pub fn guess_media_type(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "bin" => "application/octet-stream",
        _ => return None,
    })
}

/// Parses a size: bytes, or with a `K`, `M`, `G` or `T` suffix (powers of 1024; `KiB`, `MB`... also
/// read as powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("bad size unit in {s:?} (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size {s:?} too large"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hostile_names_stay_in_the_directory() {
        assert_eq!(sanitize_file_name(Some("../../etc/x")), "x");
        assert_eq!(sanitize_file_name(Some("..\\..\\boot.ini")), "boot.ini");
        assert_eq!(sanitize_file_name(Some("/etc/passwd")), "passwd");
        assert_eq!(sanitize_file_name(Some("..")), "file");
        assert_eq!(sanitize_file_name(Some("../")), "file");
        assert_eq!(sanitize_file_name(Some(".bashrc")), "bashrc");
        assert_eq!(sanitize_file_name(Some("a\u{0}b\nc\u{7f}")), "abc");
        assert_eq!(sanitize_file_name(Some("what?.txt")), "what_.txt");
        assert_eq!(sanitize_file_name(Some("name. . ")), "name");
        assert_eq!(sanitize_file_name(None), "file");
        assert_eq!(sanitize_file_name(Some("")), "file");
        assert_eq!(sanitize_file_name(Some("photo 1.jpg")), "photo 1.jpg");
        let long = "é".repeat(500);
        let cut = sanitize_file_name(Some(&long));
        assert!(cut.len() <= MAX_NAME_BYTES && !cut.is_empty());
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn numbered_names() {
        assert_eq!(numbered_name("a.tar.gz", 0), "a.tar.gz");
        assert_eq!(numbered_name("a.tar.gz", 2), "a (2).tar.gz");
        assert_eq!(numbered_name("README", 1), "README (1)");
    }

    #[test]
    fn persist_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..3u8 {
            let mut tmp = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
            std::io::Write::write_all(&mut tmp, &[i]).unwrap();
            paths.push(persist_unique(tmp, dir.path(), "same.bin").unwrap());
        }
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["same.bin", "same (1).bin", "same (2).bin"]);
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(std::fs::read(p).unwrap(), [i as u8]);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("2 MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert!(parse_size("").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("99999999999999T").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[tokio::test]
    async fn writer_refuses_past_its_limit() {
        use tokio::io::AsyncWriteExt;
        let mut w = ReceiveWriter::new(Vec::new(), 5, ProgressBar::hidden());
        w.write_all(b"abc").await.unwrap();
        let e = w.write_all(b"def").await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(w.written(), 3);
        assert_eq!(
            sha256_hex(&w.finish()).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
