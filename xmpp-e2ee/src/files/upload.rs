//! XEP-0363 HTTP File Upload of encrypted files (feature `http-upload`).
//!
//! * Sans-IO: the slot request element, the slot and disco#info parsers, the `file-too-large` reader.
//! * [`HttpUploadExt`] on any [`Connection`]: discover the upload service (disco#items of the account's
//!   server, then disco#info of each item for `urn:xmpp:http:upload:0` and its `max-file-size`) and
//!   request slots.
//! * [`FileTransfer`]: a reqwest client over rustls with the `ring` provider and the system's root
//!   certificates. [`FileTransfer::upload_encrypted`] streams a file through AES-256-GCM into the PUT
//!   body (never the whole file in memory) and returns the `aesgcm://` URL;
//!   [`FileTransfer::download_decrypted`] streams the GET body through the decryptor into a temporary file
//!   that becomes the target only once the tag verifies. Both report progress, cap sizes and time out
//!   when the peer stalls.
//!
//! Plain `http://` is refused unless [`HttpConfig::allow_plain_http_loopback`] is set and the host is a
//! loopback address (test servers); `aesgcm://` URLs then map to `http://` for loopback hosts only.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jid::Jid;
use minidom::Element;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xmpp_social::pubsub::PubSubExt;
use xmpp_social::xml::BuilderExt;
use xmpp_social::{Connection, IqRequest};

use super::aesgcm::{random_iv, AesgcmUrl, IO_CHUNK};
use super::error::{FileCryptoError, UrlError};
use super::gcm::{Encryptor, FileKey, TrailingTagDecryptor, TAG_LEN};

/// `urn:xmpp:http:upload:0`.
pub const NS_HTTP_UPLOAD: &str = "urn:xmpp:http:upload:0";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_DATA: &str = "jabber:x:data";

/// Most disco items probed when looking for the upload service.
pub const MAX_PROBED_ITEMS: usize = 64;
/// Longest slot URL or header value accepted.
pub const MAX_SLOT_VALUE: usize = 8 * 1024;

/// Errors of uploading and downloading files.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The XMPP side failed (IQ error, timeout, connection).
    #[error("xmpp: {0}")]
    Xmpp(#[from] xmpp_social::Error),
    /// No item of the server announces `urn:xmpp:http:upload:0`.
    #[error("the server offers no HTTP upload service")]
    NoService,
    /// The file is larger than the service accepts (refused locally from the announced limit, or by
    /// the service with `<file-too-large/>`).
    #[error("file of {size} bytes is too large for the upload service (max {max:?})")]
    FileTooLarge {
        /// Size that was asked for (of the encrypted file).
        size: u64,
        /// The service's limit, when it said.
        max: Option<u64>,
    },
    /// The slot answer is malformed.
    #[error("invalid upload slot: {0}")]
    InvalidSlot(&'static str),
    /// The URL's scheme or host is not allowed by the configuration (plain HTTP off loopback...).
    #[error("URL refused: {0}")]
    UrlRefused(String),
    /// The `aesgcm://` URL is malformed.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The HTTP server answered with an unexpected status.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The HTTP exchange failed (connection, TLS, timeout).
    #[error("HTTP: {0}")]
    Http(String),
    /// The HTTP exchange stalled longer than the configured timeout.
    #[error("HTTP timed out")]
    Timeout,
    /// Encryption, decryption (tag mismatch...), size limit or local file I/O failed.
    #[error(transparent)]
    Crypto(#[from] FileCryptoError),
}

impl From<std::io::Error> for UploadError {
    fn from(e: std::io::Error) -> Self {
        UploadError::Crypto(FileCryptoError::Io(e))
    }
}

impl From<reqwest::Error> for UploadError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            UploadError::Timeout
        } else {
            // Without the URL: slot URLs carry secrets on some servers.
            UploadError::Http(e.without_url().to_string())
        }
    }
}

/// An upload service and its announced size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadService {
    /// The service's JID (e.g. `upload.example.org`).
    pub jid: Jid,
    /// `max-file-size` from its disco#info form, if announced.
    pub max_file_size: Option<u64>,
}

/// An upload slot (XEP-0363 `<slot/>`).
#[derive(Clone, PartialEq, Eq)]
pub struct Slot {
    /// Where to PUT the file.
    pub put_url: String,
    /// Headers to send with the PUT (only `Authorization`, `Cookie` and `Expires`, as the XEP allows).
    pub put_headers: Vec<(String, String)>,
    /// Where the file can be fetched afterwards.
    pub get_url: String,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are credentials.
        f.debug_struct("Slot")
            .field("put_url", &self.put_url)
            .field(
                "put_headers",
                &self.put_headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("get_url", &self.get_url)
            .finish()
    }
}

/// The `<request/>` payload asking for a slot.
pub fn slot_request(filename: &str, size: u64, content_type: Option<&str>) -> Element {
    Element::builder("request", NS_HTTP_UPLOAD)
        .a("filename", filename)
        .a("size", size.to_string())
        .a_opt("content-type", content_type)
        .build()
}

/// Parses a `<slot/>` answer.
pub fn parse_slot(el: &Element) -> Result<Slot, UploadError> {
    if !el.is("slot", NS_HTTP_UPLOAD) {
        return Err(UploadError::InvalidSlot("not a <slot/>"));
    }
    let put = el
        .get_child("put", NS_HTTP_UPLOAD)
        .ok_or(UploadError::InvalidSlot("no <put/>"))?;
    let get = el
        .get_child("get", NS_HTTP_UPLOAD)
        .ok_or(UploadError::InvalidSlot("no <get/>"))?;
    let url = |e: &Element| -> Result<String, UploadError> {
        let u = e.attr("url").ok_or(UploadError::InvalidSlot("no url"))?;
        if u.len() > MAX_SLOT_VALUE || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UploadError::InvalidSlot("bad url"));
        }
        let lower = u.get(..8).unwrap_or("").to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(UploadError::InvalidSlot("url is not http(s)"));
        }
        Ok(u.to_owned())
    };
    let mut put_headers = Vec::new();
    for h in put.children().filter(|c| c.is("header", NS_HTTP_UPLOAD)) {
        let name = h
            .attr("name")
            .ok_or(UploadError::InvalidSlot("header without name"))?;
        // XEP-0363 §4: only these headers; newlines stripped.
        if !["authorization", "cookie", "expires"].contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        let value: String = h
            .text()
            .chars()
            .filter(|c| *c != '\n' && *c != '\r')
            .collect();
        if value.len() > MAX_SLOT_VALUE || put_headers.len() >= 8 {
            return Err(UploadError::InvalidSlot("header too large"));
        }
        put_headers.push((name.to_owned(), value));
    }
    Ok(Slot {
        put_url: url(put)?,
        put_headers,
        get_url: url(get)?,
    })
}

/// Reads a disco#info `<query/>`: `None` if it does not announce `urn:xmpp:http:upload:0`, otherwise
/// `Some(max_file_size)`.
pub fn parse_service_info(query: &Element) -> Option<Option<u64>> {
    let has = query
        .children()
        .any(|c| c.is("feature", NS_DISCO_INFO) && c.attr("var") == Some(NS_HTTP_UPLOAD));
    if !has {
        return None;
    }
    let max = query
        .children()
        .filter(|c| c.is("x", NS_DATA))
        .find(|x| {
            x.children().any(|f| {
                f.attr("var") == Some("FORM_TYPE")
                    && f.children()
                        .any(|v| v.name() == "value" && v.text() == NS_HTTP_UPLOAD)
            })
        })
        .and_then(|x| {
            x.children()
                .find(|f| f.is("field", NS_DATA) && f.attr("var") == Some("max-file-size"))
        })
        .and_then(|f| f.get_child("value", NS_DATA))
        .and_then(|v| v.text().trim().parse::<u64>().ok());
    Some(max)
}

/// The `max-file-size` of a `<file-too-large/>` stanza error, if the error is one.
pub fn file_too_large(err: &xmpp_social::Error) -> Option<Option<u64>> {
    let se = err.stanza_error()?;
    let other = se.other.as_ref()?;
    if !other.is("file-too-large", NS_HTTP_UPLOAD) {
        return None;
    }
    Some(
        other
            .get_child("max-file-size", NS_HTTP_UPLOAD)
            .and_then(|m| m.text().trim().parse().ok()),
    )
}

/// XEP-0363 over any [`Connection`].
pub trait HttpUploadExt: Connection {
    /// Finds the upload service among the items of the account's server (and the server itself).
    fn discover_upload_service(
        &self,
    ) -> impl std::future::Future<Output = Result<UploadService, UploadError>> + Send {
        async move {
            let domain: Jid = Jid::from(self.jid().domain().to_owned());
            let mut candidates: Vec<Jid> = self
                .disco_items(Some(&domain))
                .await?
                .into_iter()
                .filter(|(_, node)| node.is_none())
                .map(|(j, _)| j)
                .take(MAX_PROBED_ITEMS)
                .collect();
            candidates.push(domain);
            for jid in candidates {
                let q = Element::builder("query", NS_DISCO_INFO).build();
                let Ok(Some(info)) = self.send_iq(IqRequest::get(Some(jid.clone()), q)).await
                else {
                    continue;
                };
                if let Some(max_file_size) = parse_service_info(&info) {
                    return Ok(UploadService { jid, max_file_size });
                }
            }
            Err(UploadError::NoService)
        }
    }

    /// Asks `service` for a slot; `<file-too-large/>` becomes [`UploadError::FileTooLarge`].
    fn request_slot(
        &self,
        service: &Jid,
        filename: &str,
        size: u64,
        content_type: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Slot, UploadError>> + Send {
        let req = IqRequest::get(
            Some(service.clone()),
            slot_request(filename, size, content_type),
        );
        async move {
            match self.send_iq(req).await {
                Ok(Some(el)) => parse_slot(&el),
                Ok(None) => Err(UploadError::InvalidSlot("empty answer")),
                Err(e) => match file_too_large(&e) {
                    Some(max) => Err(UploadError::FileTooLarge { size, max }),
                    None => Err(e.into()),
                },
            }
        }
    }
}

impl<C: Connection + ?Sized> HttpUploadExt for C {}

/// HTTP settings of [`FileTransfer`].
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Longest time without progress while reading a response.
    pub idle_timeout: Duration,
    /// Limit on the whole exchange (`None`: none, big files take long).
    pub total_timeout: Option<Duration>,
    /// Largest encrypted download accepted.
    pub max_download: u64,
    /// Allow `http://` when the host is a loopback address (local test servers).
    pub allow_plain_http_loopback: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            total_timeout: None,
            max_download: 4 * 1024 * 1024 * 1024,
            allow_plain_http_loopback: false,
        }
    }
}

/// What [`FileTransfer::upload_encrypted`] produced.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The URL to share: the GET URL with the IV and key in the fragment.
    pub url: AesgcmUrl,
    /// The plain GET URL of the ciphertext.
    pub get_url: String,
    /// Plaintext size.
    pub size: u64,
    /// SHA-256 of the plaintext (for XEP-0446 `<hash/>`).
    pub sha256: [u8; 32],
}

/// What the upload body stream ended with: the plaintext SHA-256, or why it stopped.
type StreamOutcome = Option<Result<[u8; 32], String>>;

/// Progress callback: `(bytes done, total bytes)`.
pub type Progress = Box<dyn FnMut(u64, u64) + Send + 'static>;

/// An HTTP client for encrypted uploads and downloads.
#[derive(Debug, Clone)]
pub struct FileTransfer {
    client: reqwest::Client,
    config: HttpConfig,
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FileTransfer {
    /// A client with `config`: rustls with the `ring` provider, trusting the system's root certificates.
    pub fn new(config: HttpConfig) -> Result<Self, UploadError> {
        let mut roots = rustls::RootCertStore::empty();
        // Certificates that fail to load are skipped; HTTPS to hosts they would vouch for then fails.
        let loaded = rustls_native_certs::load_native_certs();
        for cert in loaded.certs {
            let _ = roots.add(cert);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| UploadError::Http(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.idle_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .https_only(!config.allow_plain_http_loopback)
            .no_proxy();
        if let Some(t) = config.total_timeout {
            b = b.timeout(t);
        }
        let client = b.build()?;
        Ok(FileTransfer { client, config })
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn check_url(&self, url: &str) -> Result<reqwest::Url, UploadError> {
        let u =
            reqwest::Url::parse(url).map_err(|_| UploadError::UrlRefused("unparsable".into()))?;
        match u.scheme() {
            "https" => Ok(u),
            "http"
                if self.config.allow_plain_http_loopback
                    && u.host_str().is_some_and(is_loopback_host) =>
            {
                Ok(u)
            }
            s => Err(UploadError::UrlRefused(format!(
                "scheme {s} (plain HTTP only to loopback, when allowed)"
            ))),
        }
    }

    /// The HTTP URL an `aesgcm://` URL points to (`https://`, or `http://` for loopback hosts when
    /// allowed).
    pub fn http_url_of(&self, url: &AesgcmUrl) -> String {
        let host = url.host();
        let host_only = match host.rfind(':') {
            Some(i) if !host.ends_with(']') => &host[..i],
            _ => host,
        };
        if self.config.allow_plain_http_loopback && is_loopback_host(host_only) {
            format!("http://{}", url.location())
        } else {
            url.https_url()
        }
    }

    /// Uploads the file at `path` encrypted with a fresh AES-256 key and 12-byte IV: discovers the
    /// service, asks for a slot for the ciphertext size, streams the PUT. `progress` gets plaintext bytes.
    pub async fn upload_encrypted<C: Connection>(
        &self,
        conn: &C,
        path: &Path,
        content_type: Option<&str>,
        progress: Option<Progress>,
    ) -> Result<UploadedFile, UploadError> {
        let service = conn.discover_upload_service().await?;
        let size = tokio::fs::metadata(path).await?.len();
        let enc_size = size + TAG_LEN as u64;
        if let Some(max) = service.max_file_size {
            if enc_size > max {
                return Err(UploadError::FileTooLarge {
                    size: enc_size,
                    max: Some(max),
                });
            }
        }
        // The name sent to the server is random: the real name travels encrypted in the message.
        let name = format!("{}.bin", hex(&super::random_bytes::<12>()));
        let slot = conn
            .request_slot(
                &service.jid,
                &name,
                enc_size,
                content_type.map(|_| "application/octet-stream"),
            )
            .await?;
        let key = FileKey::random_aes256();
        let iv = random_iv();
        let sha = self
            .put_encrypted(&slot, path, &key, &iv, size, progress)
            .await?;
        let url = aesgcm_url_for(&slot.get_url, &iv, key.as_bytes())?;
        Ok(UploadedFile {
            url,
            get_url: slot.get_url,
            size,
            sha256: sha,
        })
    }

    /// Streams the file at `path` (`size` bytes, checked while reading) encrypted with `key`/`iv` to
    /// the slot, the tag appended. Returns the SHA-256 of the plaintext.
    pub async fn put_encrypted(
        &self,
        slot: &Slot,
        path: &Path,
        key: &FileKey,
        iv: &[u8],
        size: u64,
        progress: Option<Progress>,
    ) -> Result<[u8; 32], UploadError> {
        let url = self.check_url(&slot.put_url)?;
        let file = tokio::fs::File::open(path).await?;
        let enc = Encryptor::new(key, iv)?;
        let digest: Arc<Mutex<StreamOutcome>> = Arc::new(Mutex::new(None));
        let out = digest.clone();
        struct St {
            file: tokio::fs::File,
            enc: Option<Encryptor>,
            sha: Sha256,
            buf: Vec<u8>,
            progress: Option<Progress>,
        }
        let st = St {
            file,
            enc: Some(enc),
            sha: Sha256::new(),
            buf: vec![0u8; IO_CHUNK],
            progress,
        };
        let stream = futures::stream::unfold(st, move |mut st| {
            let out = out.clone();
            async move {
                let enc = st.enc.as_mut()?;
                let fail = |msg: String| {
                    if let Ok(mut g) = out.lock() {
                        *g = Some(Err(msg.clone()));
                    }
                    std::io::Error::other(msg)
                };
                let n = match st.file.read(&mut st.buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        st.enc = None;
                        return Some((Err(fail(e.to_string())), st));
                    }
                };
                if n == 0 {
                    if enc.len() != size {
                        st.enc = None;
                        return Some((Err(fail("file changed size while uploading".into())), st));
                    }
                    let tag = st.enc.take().map(Encryptor::finish).unwrap_or_default();
                    let sha: [u8; 32] = std::mem::take(&mut st.sha).finalize().into();
                    if let Ok(mut g) = out.lock() {
                        *g = Some(Ok(sha));
                    }
                    return Some((Ok(bytes::Bytes::copy_from_slice(&tag)), st));
                }
                if enc.len() + n as u64 > size {
                    st.enc = None;
                    return Some((Err(fail("file grew while uploading".into())), st));
                }
                st.sha.update(&st.buf[..n]);
                let mut chunk = st.buf[..n].to_vec();
                if let Err(e) = enc.update(&mut chunk) {
                    st.enc = None;
                    return Some((Err(fail(e.to_string())), st));
                }
                let done = enc.len();
                if let Some(p) = st.progress.as_mut() {
                    p(done, size);
                }
                Some((Ok(bytes::Bytes::from(chunk)), st))
            }
        });
        let mut req = self
            .client
            .put(url)
            .header(reqwest::header::CONTENT_LENGTH, size + TAG_LEN as u64)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(stream));
        for (n, v) in &slot.put_headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let resp = req.send().await;
        let local = digest.lock().ok().and_then(|mut g| g.take());
        if let Some(Err(msg)) = &local {
            return Err(UploadError::Crypto(FileCryptoError::Io(
                std::io::Error::other(msg.clone()),
            )));
        }
        let resp = resp?;
        let status = resp.status();
        if !status.is_success() {
            return Err(UploadError::HttpStatus(status.as_u16()));
        }
        match local {
            Some(Ok(sha)) => Ok(sha),
            _ => Err(UploadError::Http("upload body not fully sent".into())),
        }
    }

    /// Downloads the ciphertext at `url` (http(s)), decrypts it with `key`/`iv` into a temporary file
    /// next to `target` and renames it to `target` once the tag verifies. Returns the plaintext size.
    pub async fn download_decrypted(
        &self,
        url: &str,
        key: &FileKey,
        iv: &[u8],
        target: &Path,
        mut progress: Option<Progress>,
    ) -> Result<u64, UploadError> {
        let u = self.check_url(url)?;
        let mut resp = self.client.get(u).send().await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(UploadError::HttpStatus(status.as_u16()));
        }
        let limit = self.config.max_download;
        let total = resp.content_length();
        if total.is_some_and(|l| l > limit) {
            return Err(FileCryptoError::SizeLimit { limit }.into());
        }
        let mut dec = TrailingTagDecryptor::new(key, iv)?;
        let dir: PathBuf = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".xmpp-e2ee-download-")
            .suffix(".part")
            .tempfile_in(&dir)?;
        let mut out = tokio::fs::File::from_std(tmp.reopen()?);
        let mut received: u64 = 0;
        let plain_total = total.map_or(0, |t| t.saturating_sub(TAG_LEN as u64));
        while let Some(chunk) = resp.chunk().await? {
            received += chunk.len() as u64;
            if received > limit {
                return Err(FileCryptoError::SizeLimit { limit }.into());
            }
            let mut buf = chunk.to_vec();
            let n = dec.update(&mut buf)?;
            out.write_all(&buf[..n]).await?;
            if let Some(p) = progress.as_mut() {
                p(dec.len(), plain_total);
            }
        }
        let len = dec.len();
        dec.finish()?;
        out.flush().await?;
        out.sync_all().await?;
        drop(out);
        tmp.persist(target)
            .map_err(|e| FileCryptoError::Io(e.error))?;
        Ok(len)
    }

    /// Downloads and decrypts the file an `aesgcm://` URL points to into `target`.
    pub async fn download_aesgcm(
        &self,
        url: &AesgcmUrl,
        target: &Path,
        progress: Option<Progress>,
    ) -> Result<u64, UploadError> {
        let http = self.http_url_of(url);
        self.download_decrypted(&http, &url.key(), url.iv(), target, progress)
            .await
    }
}

/// The `aesgcm://` URL of a GET URL (`https://`, or `http://` which only loopback downloads accept).
pub fn aesgcm_url_for(get_url: &str, iv: &[u8], key: &[u8]) -> Result<AesgcmUrl, UploadError> {
    let lower = get_url.get(..8).unwrap_or("").to_ascii_lowercase();
    if lower.starts_with("https://") {
        Ok(AesgcmUrl::from_https(get_url, iv, key)?)
    } else if lower.starts_with("http://") {
        Ok(AesgcmUrl::from_location(&get_url[7..], iv, key)?)
    } else {
        Err(UrlError::NotHttps.into())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
