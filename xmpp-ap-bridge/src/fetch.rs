//! Fetching remote ActivityPub objects safely.
//!
//! The gateway fetches URLs that remote servers hand it (actors, keys, objects), so every fetch is an SSRF
//! risk. [`Fetcher`] therefore:
//!
//! * resolves host names itself and refuses the request when **any** resolved address is loopback,
//!   private, link-local, unique-local, IPv4-mapped/compatible, unspecified, broadcast, multicast,
//!   shared (CGNAT), reserved or documentation ([`is_forbidden_address`]); the connection then goes to the
//!   checked addresses only (no second resolution, so no DNS rebinding window). IP literals in URLs are
//!   checked the same way. `allow_private_addresses` lifts this, for tests only;
//! * never follows redirects (a 3xx is [`FetchError::Redirect`]) and ignores proxy environment variables;
//! * caps the body while streaming it (default 1 MiB, as Mastodon), with connect and total timeouts;
//! * accepts only `application/activity+json` or `application/ld+json` with the ActivityStreams profile;
//! * requires the object's `id` to equal the URL requested;
//! * signs GETs (authorized fetch) when given an actor key.
//!
//! TLS is rustls with the `ring` provider and the system's root certificates (no aws-lc-rs, no OpenSSL).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::FetchError;
use crate::signature::{sign_request, KeyPair};

/// Default body cap (1 MiB, Mastodon's limit for fetched objects).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The `Accept` header sent.
pub const ACCEPT: &str =
    "application/activity+json, application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

const AS_PROFILE: &str = "https://www.w3.org/ns/activitystreams";

/// Settings of a [`Fetcher`].
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Connect to loopback/private/... addresses. **Tests only**: never enable it in production.
    pub allow_private_addresses: bool,
    /// Allow plain `http://` URLs (tests and local peers); `https` only otherwise.
    pub allow_http: bool,
    /// Body cap in bytes.
    pub max_body: usize,
    /// Timeout to establish a connection.
    pub connect_timeout: Duration,
    /// Timeout of the whole request, body included.
    pub timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            allow_http: false,
            max_body: DEFAULT_MAX_BODY,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            user_agent: concat!("xmpp-ap-bridge/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// True for addresses a server-side fetch must never reach (see the module docs).
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", incl. unspecified
        || a == 10 // private
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // documentation TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    // IPv4-mapped (::ffff:0:0/96) and IPv4-compatible (::/96, deprecated): refused outright.
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        return true;
    }
    let embedded_v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s[0] {
        0xfc00..=0xfdff => true,                            // unique local fc00::/7
        0xfe80..=0xfebf => true,                            // link-local fe80::/10
        0xfec0..=0xfeff => true,                            // site-local (deprecated)
        0xff00..=0xffff => true,                            // multicast
        0x2001 if s[1] == 0x0db8 => true,                   // documentation 2001:db8::/32
        0x2001 if s[1] == 0 => true,                        // Teredo 2001::/32
        0x2001 if s[1] < 0x200 => true, // other IETF protocol assignments 2001::/23
        0x3fff if s[1] < 0x1000 => true, // documentation 3fff::/20
        0x0100 if s[1..4] == [0, 0, 0] => true, // discard-only 100::/64
        0x2002 => is_forbidden_v4(embedded_v4(s[1], s[2])), // 6to4
        0x0064 if s[1] == 0xff9b => {
            // NAT64 64:ff9b::/96 and the local-use 64:ff9b:1::/48
            s[2] != 0 || is_forbidden_v4(embedded_v4(s[6], s[7]))
        }
        _ => false,
    }
}

/// The error a resolver returns for a forbidden address, recognised again in reqwest's error chain.
#[derive(Debug)]
struct ForbiddenAddress(IpAddr);

impl std::fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "address {} is not allowed", self.0)
    }
}

impl std::error::Error for ForbiddenAddress {}

/// DNS resolution that checks every address before reqwest connects to them.
#[derive(Debug, Clone, Copy)]
struct CheckingResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                if let Some(bad) = addrs.iter().find(|a| is_forbidden_address(a.ip())) {
                    return Err(Box::new(ForbiddenAddress(bad.ip())) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An HTTP client for remote ActivityPub objects (see the module docs).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: FetchConfig,
    signer: Option<(Arc<KeyPair>, String)>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .field("key_id", &self.signer.as_ref().map(|(_, id)| id))
            .finish_non_exhaustive()
    }
}

fn tls_config() -> Result<rustls::ClientConfig, FetchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A few malformed system certificates must not prevent fetching.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!("no system root certificates found: https fetches will fail");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl Fetcher {
    /// A client with `config`.
    pub fn new(config: FetchConfig) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .dns_resolver(CheckingResolver {
                allow_private: config.allow_private_addresses,
            })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| FetchError::Setup(e.to_string()))?;
        Ok(Self {
            client,
            config,
            signer: None,
        })
    }

    /// Signs every GET with `key` (authorized fetch); `key_id` is the key's URL (`<actor>#main-key`).
    pub fn with_signing_key(mut self, key: Arc<KeyPair>, key_id: impl Into<String>) -> Self {
        self.signer = Some((key, key_id.into()));
        self
    }

    /// The settings.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    fn check_url(&self, url: &str) -> Result<url::Url, FetchError> {
        let parsed = url::Url::parse(url).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.config.allow_http => {}
            other => return Err(FetchError::SchemeNotAllowed(other.to_owned())),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(FetchError::InvalidUrl("credentials in URL".into()));
        }
        let ip = match parsed.host() {
            None => return Err(FetchError::InvalidUrl("no host".into())),
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(ip) = ip {
            // IP literals bypass the resolver: check them here.
            if !self.config.allow_private_addresses && is_forbidden_address(ip) {
                return Err(FetchError::ForbiddenAddress(ip));
            }
        }
        Ok(parsed)
    }

    /// Fetches the ActivityPub object at `url` and returns its JSON object, after every check of the
    /// module docs.
    pub async fn fetch_object(
        &self,
        url: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, FetchError> {
        let parsed = self.check_url(url)?;
        let body = match tokio::time::timeout(self.config.timeout, self.get(&parsed)).await {
            Ok(r) => r?,
            Err(_) => return Err(FetchError::Timeout),
        };
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::Json(e.to_string()))?;
        let serde_json::Value::Object(object) = value else {
            return Err(FetchError::Json("not an object".into()));
        };
        let id = object
            .get("id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let same = id == url || url::Url::parse(id).is_ok_and(|id| id == parsed);
        if !same {
            return Err(FetchError::IdMismatch {
                expected: url.to_owned(),
                found: id.chars().take(512).collect(),
            });
        }
        Ok(object)
    }

    /// Resolves `user@host` (no `acct:`) to its actor URL with WebFinger: the `self` link of type
    /// `application/activity+json` (or AS ld+json). `https` only, unless `allow_http` (then `http`).
    pub async fn webfinger(&self, address: &str) -> Result<String, FetchError> {
        let address = address.strip_prefix("acct:").unwrap_or(address);
        let (_, host) = address
            .rsplit_once('@')
            .ok_or_else(|| FetchError::InvalidUrl("not a user@host address".into()))?;
        let scheme = if self.config.allow_http {
            "http"
        } else {
            "https"
        };
        let mut url = self.check_url(&format!("{scheme}://{host}/.well-known/webfinger"))?;
        url.query_pairs_mut()
            .append_pair("resource", &format!("acct:{address}"));
        let url = self.check_url(url.as_str())?;
        let body = match tokio::time::timeout(
            self.config.timeout,
            self.get_with(&url, "application/jrd+json", |ct| {
                let media = ct.split(';').next().unwrap_or_default().trim();
                media.eq_ignore_ascii_case("application/jrd+json")
                    || media.eq_ignore_ascii_case("application/json")
            }),
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => return Err(FetchError::Timeout),
        };
        let jrd: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::Json(e.to_string()))?;
        jrd.get("links")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .find(|l| {
                l.get("rel").and_then(serde_json::Value::as_str) == Some("self")
                    && l.get("type")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(is_activitypub_content_type)
            })
            .and_then(|l| l.get("href").and_then(serde_json::Value::as_str))
            .map(str::to_owned)
            .ok_or_else(|| FetchError::Json("no ActivityPub self link".into()))
    }

    /// POSTs `body` (an activity, JSON) to the inbox at `url`, signed with `key` (draft-cavage
    /// `rsa-sha256` over `(request-target) host date digest content-type`, `Host` with its port), through
    /// the same guarded client as fetches (connect-time address checks, no redirects, timeouts).
    /// Returns the HTTP status; the response body is not read.
    pub async fn post_activity(
        &self,
        url: &str,
        key: &KeyPair,
        key_id: &str,
        body: Vec<u8>,
    ) -> Result<u16, FetchError> {
        let parsed = self.check_url(url)?;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/activity+json"),
        );
        headers.insert(http::header::ACCEPT, http::HeaderValue::from_static(ACCEPT));
        sign_request(
            key,
            key_id,
            "POST",
            &parsed,
            &mut headers,
            Some(&body),
            SystemTime::now(),
        )?;
        let send = self.client.post(parsed).headers(headers).body(body).send();
        match tokio::time::timeout(self.config.timeout, send).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(e)) => Err(map_reqwest_error(e)),
            Err(_) => Err(FetchError::Timeout),
        }
    }

    async fn get(&self, url: &url::Url) -> Result<Vec<u8>, FetchError> {
        self.get_with(url, ACCEPT, is_activitypub_content_type)
            .await
    }

    async fn get_with(
        &self,
        url: &url::Url,
        accept: &'static str,
        content_type_ok: fn(&str) -> bool,
    ) -> Result<Vec<u8>, FetchError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::ACCEPT, http::HeaderValue::from_static(accept));
        if let Some((key, key_id)) = &self.signer {
            sign_request(
                key,
                key_id,
                "GET",
                url,
                &mut headers,
                None,
                SystemTime::now(),
            )?;
        }
        let mut response = self
            .client
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(map_reqwest_error)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type_ok(content_type) {
            return Err(FetchError::WrongContentType(
                content_type.chars().take(128).collect(),
            ));
        }
        let max = self.config.max_body;
        if response.content_length().is_some_and(|l| l > max as u64) {
            return Err(FetchError::TooLarge { max });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_reqwest_error)? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge { max });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// True for `application/activity+json` (any parameters) and for `application/ld+json` whose `profile`
/// parameter lists the ActivityStreams profile.
pub fn is_activitypub_content_type(value: &str) -> bool {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/activity+json") {
        return true;
    }
    if !media.eq_ignore_ascii_case("application/ld+json") {
        return false;
    }
    parts.any(|p| {
        let Some((name, v)) = p.split_once('=') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("profile")
            && v.trim()
                .trim_matches('"')
                .split_ascii_whitespace()
                .any(|p| p == AS_PROFILE)
    })
}

fn map_reqwest_error(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(ForbiddenAddress(ip)) = s.downcast_ref::<ForbiddenAddress>() {
            return FetchError::ForbiddenAddress(*ip);
        }
        source = s.source();
    }
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    FetchError::Transport(error_chain(&e))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
