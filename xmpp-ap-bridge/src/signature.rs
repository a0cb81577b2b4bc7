//! HTTP Signatures (draft-cavage-http-signatures, the flavour the fediverse speaks) and `Digest` headers.
//!
//! Sans-IO: nothing here does I/O or reads the clock; the caller passes `now`.
//!
//! * Signing ([`sign_request`]): `rsa-sha256` over `(request-target) host date` plus `digest` when there is
//!   a body and `content-type` when present, the way Mastodon expects. `(request-target)` is the lowercase
//!   method, a space and the path with its query; `Host` keeps a non-default port.
//! * Verifying is two-step because the key lives in the actor document the caller has to fetch:
//!   [`prepare_verification`] parses the `Signature` header (bounded), accepts `rsa-sha256` and `hs2019`
//!   (and a missing algorithm), refuses a `Date` more than [`DATE_WINDOW`] in the past or future, requires
//!   `(request-target)`, `host` and `date` to be signed (and `digest` on requests with a body), and checks
//!   the `Digest` against the body. Its [`PendingVerification::key_id`] tells which key to fetch; then
//!   [`PendingVerification::verify`] checks the RSA signature, and the caller checks with
//!   [`check_key_owner`] that the key's owner is the activity's actor.
//! * Every verification error is a distinct [`SignatureError`] that maps to HTTP 401
//!   ([`SignatureError::is_unauthorized`]).
//!
//! RSA: PKCS#1 v1.5 with SHA-256 through `ring` (native speed, constant-time private-key operations).
//! `ring` cannot generate RSA keys, so [`KeyPair::generate`] uses the `rsa` crate for that one step:
//! RUSTSEC-2023-0071 (Marvin) is a timing side channel of the `rsa` crate's private-key *operations*
//! (decryption and signing) observed by a remote attacker; key generation happens once per actor, offline,
//! with no attacker-controlled input or observable timing, and the key is then handed to `ring` as PKCS#8.
//! The `rsa` crate also parses public keys (PEM/DER of public data only).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::HeaderMap;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey, EncodePrivateKey as _, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::error::SignatureError;

/// Signatures whose `Date` is further than this from `now` (either way) are refused.
pub const DATE_WINDOW: Duration = Duration::from_secs(3600);
/// Longest `Signature` header accepted.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 8192;
/// Most parameters accepted in a `Signature` header.
pub const MAX_PARAMETERS: usize = 16;
/// Most headers a signature may cover.
pub const MAX_SIGNED_HEADERS: usize = 32;
/// Longest PEM public key accepted.
pub const MAX_PEM_LEN: usize = 16 * 1024;
/// Size of generated RSA keys (what Mastodon uses).
pub const DEFAULT_KEY_BITS: usize = 2048;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// An actor's RSA key pair (the signing half lives in `ring`).
pub struct KeyPair {
    ring: ring::signature::RsaKeyPair,
    pkcs8_der: Zeroizing<Vec<u8>>,
    public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_key_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Generates a new RSA-2048 key pair (one per actor). Takes tens of milliseconds in release builds,
    /// up to seconds in debug builds.
    pub fn generate() -> Result<Self, SignatureError> {
        Self::generate_with_bits(DEFAULT_KEY_BITS)
    }

    /// Generates an RSA key pair of `bits` bits (2048 to 4096).
    pub fn generate_with_bits(bits: usize) -> Result<Self, SignatureError> {
        if !(2048..=4096).contains(&bits) {
            return Err(SignatureError::InvalidKey(
                "RSA size must be 2048 to 4096 bits",
            ));
        }
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits)
            .map_err(|_| SignatureError::InvalidKey("RSA key generation failed"))?;
        let doc = private
            .to_pkcs8_der()
            .map_err(|_| SignatureError::InvalidKey("PKCS#8 encoding failed"))?;
        Self::from_pkcs8_der(doc.as_bytes())
    }

    /// Loads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignatureError> {
        let ring = ring::signature::RsaKeyPair::from_pkcs8(der)
            .map_err(|_| SignatureError::InvalidKey("not an RSA PKCS#8 key ring accepts"))?;
        let public = rsa::RsaPublicKey::from_pkcs1_der(ring.public().as_ref())
            .map_err(|_| SignatureError::InvalidKey("bad public key"))?;
        let public_pem = public
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|_| SignatureError::InvalidKey("SPKI encoding failed"))?;
        Ok(Self {
            ring,
            pkcs8_der: Zeroizing::new(der.to_vec()),
            public_pem,
        })
    }

    /// Loads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, SignatureError> {
        if pem.len() > MAX_PEM_LEN {
            return Err(SignatureError::InvalidKey("PEM too long"));
        }
        let doc = rsa::pkcs8::SecretDocument::from_pkcs8_pem(pem)
            .map_err(|_| SignatureError::InvalidKey("not a PKCS#8 PEM private key"))?;
        Self::from_pkcs8_der(doc.as_bytes())
    }

    /// The private key as PKCS#8 DER (secret: store it encrypted or with restricted access).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8_der.clone()
    }

    /// The private key as PKCS#8 PEM (secret).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let b64 = Zeroizing::new(B64.encode(self.pkcs8_der.as_slice()));
        let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
        out.push_str("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.extend(chunk.iter().map(|&b| char::from(b)));
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        Zeroizing::new(out)
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), what actors publish in `publicKeyPem`.
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public half, for verification.
    pub fn public_key(&self) -> Result<PublicKey, SignatureError> {
        PublicKey::from_pem(&self.public_pem)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut sig = vec![0; self.ring.public().modulus_len()];
        self.ring
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| SignatureError::SigningFailed)?;
        Ok(sig)
    }
}

/// An RSA public key (2048 to 8192 bits) to verify signatures with.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &(self.n.len() * 8))
            .finish()
    }
}

impl PublicKey {
    /// Parses the PEM actors publish: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, SignatureError> {
        if pem.len() > MAX_PEM_LEN {
            return Err(SignatureError::InvalidKey("PEM too long"));
        }
        let pem = pem.trim();
        let key = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
            .map_err(|_| SignatureError::InvalidKey("not an RSA public key PEM"))?;
        Self::from_rsa(&key)
    }

    /// Parses an SPKI DER public key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignatureError> {
        let key = rsa::RsaPublicKey::from_public_key_der(der)
            .map_err(|_| SignatureError::InvalidKey("not an RSA SPKI key"))?;
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &rsa::RsaPublicKey) -> Result<Self, SignatureError> {
        let n = key.n().to_bytes_be();
        if n.len() < 256 {
            return Err(SignatureError::InvalidKey("RSA key smaller than 2048 bits"));
        }
        if n.len() > 1024 {
            return Err(SignatureError::InvalidKey("RSA key larger than 8192 bits"));
        }
        Ok(Self {
            n,
            e: key.e().to_bytes_be(),
        })
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> Result<String, SignatureError> {
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&self.n),
            rsa::BigUint::from_bytes_be(&self.e),
        )
        .map_err(|_| SignatureError::InvalidKey("bad public key"))?;
        key.to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|_| SignatureError::InvalidKey("SPKI encoding failed"))
    }

    /// Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        ring::signature::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            message,
            signature,
        )
        .map_err(|_| SignatureError::BadSignature)
    }
}

/// `SHA-256=<base64>` of `body`, the value of a `Digest` header.
pub fn digest_header(body: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, body);
    format!("SHA-256={}", B64.encode(d.as_ref()))
}

/// Checks a `Digest` header value (possibly listing several algorithms) against `body`: the SHA-256
/// entry must be present and match.
pub fn verify_digest(header_value: &str, body: &[u8]) -> Result<(), SignatureError> {
    let mut found = None;
    for part in header_value.split(',') {
        if let Some((algo, value)) = part.trim().split_once('=') {
            if algo.trim().eq_ignore_ascii_case("sha-256") {
                found = Some(value.trim());
            }
        }
    }
    let value = found.ok_or(SignatureError::DigestMissing)?;
    let expected = B64
        .decode(value)
        .map_err(|_| SignatureError::DigestMalformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::DigestMalformed);
    }
    let actual = ring::digest::digest(&ring::digest::SHA256, body);
    // Public data, no need for constant time.
    if actual.as_ref() == expected.as_slice() {
        Ok(())
    } else {
        Err(SignatureError::DigestMismatch)
    }
}

/// The signature algorithm named in a `Signature` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `rsa-sha256`.
    RsaSha256,
    /// `hs2019` (or no `algorithm` parameter): the key decides; RSA keys mean PKCS#1 v1.5 SHA-256 here.
    Hs2019,
}

impl Algorithm {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa-sha256",
            Self::Hs2019 => "hs2019",
        }
    }
}

/// A parsed `Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `keyId`: the key's URL (`<actor>#main-key` for Mastodon).
    pub key_id: String,
    /// `algorithm` (`None` when absent, treated as `hs2019`).
    pub algorithm: Option<Algorithm>,
    /// `headers`, lowercased, in order (defaults to `["date"]` when absent).
    pub headers: Vec<String>,
    /// The decoded `signature`.
    pub signature: Vec<u8>,
    /// `created` (seconds since the epoch), if present.
    pub created: Option<u64>,
    /// `expires` (seconds since the epoch), if present.
    pub expires: Option<u64>,
}

impl SignatureHeader {
    /// Parses a header value: `keyId="...",algorithm="...",headers="...",signature="..."` (also accepts
    /// the `Authorization: Signature ...` form's parameters after the `Signature ` prefix).
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(SignatureError::HeaderTooLong {
                max: MAX_SIGNATURE_HEADER_LEN,
            });
        }
        let params = parse_params(value)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let key_id = get("keyId").ok_or(SignatureError::MissingParameter("keyId"))?;
        if key_id.is_empty() {
            return Err(SignatureError::MissingParameter("keyId"));
        }
        let signature = get("signature").ok_or(SignatureError::MissingParameter("signature"))?;
        let signature = B64
            .decode(signature.trim())
            .map_err(|_| SignatureError::BadBase64)?;
        if signature.is_empty() {
            return Err(SignatureError::BadBase64);
        }
        let algorithm = match get("algorithm") {
            None => None,
            Some(a) if a.eq_ignore_ascii_case("rsa-sha256") => Some(Algorithm::RsaSha256),
            Some(a) if a.eq_ignore_ascii_case("hs2019") => Some(Algorithm::Hs2019),
            Some(a) => {
                return Err(SignatureError::UnsupportedAlgorithm(
                    a.chars().take(64).collect(),
                ))
            }
        };
        let headers: Vec<String> = match get("headers") {
            None => vec!["date".to_owned()],
            Some(h) => h
                .split_ascii_whitespace()
                .map(str::to_ascii_lowercase)
                .collect(),
        };
        if headers.is_empty() {
            return Err(SignatureError::Malformed("empty headers parameter"));
        }
        if headers.len() > MAX_SIGNED_HEADERS {
            return Err(SignatureError::Malformed("too many signed headers"));
        }
        let number = |name: &'static str| -> Result<Option<u64>, SignatureError> {
            get(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| SignatureError::Malformed("created/expires not an integer"))
                })
                .transpose()
        };
        Ok(Self {
            key_id: key_id.to_owned(),
            algorithm,
            headers,
            signature,
            created: number("created")?,
            expires: number("expires")?,
        })
    }

    /// The header value (`keyId="...",algorithm="...",headers="...",signature="..."`).
    pub fn to_header_value(&self) -> String {
        let mut out = format!("keyId=\"{}\"", quote_escape(&self.key_id));
        if let Some(a) = self.algorithm {
            out.push_str(&format!(",algorithm=\"{}\"", a.as_str()));
        }
        if let Some(c) = self.created {
            out.push_str(&format!(",created={c}"));
        }
        if let Some(e) = self.expires {
            out.push_str(&format!(",expires={e}"));
        }
        out.push_str(&format!(
            ",headers=\"{}\",signature=\"{}\"",
            quote_escape(&self.headers.join(" ")),
            B64.encode(&self.signature)
        ));
        out
    }
}

/// Escapes `\` and `"` for a quoted-string (they never occur in real key ids or header names).
fn quote_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Parses `name="value"` / `name=token` pairs separated by commas.
fn parse_params(value: &str) -> Result<Vec<(String, String)>, SignatureError> {
    let mut rest = value.trim();
    if let Some(r) = rest.strip_prefix("Signature ") {
        rest = r.trim_start();
    }
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        if params.len() >= MAX_PARAMETERS {
            return Err(SignatureError::Malformed("too many parameters"));
        }
        let eq = rest
            .find('=')
            .ok_or(SignatureError::Malformed("parameter without '='"))?;
        let name = rest.get(..eq).unwrap_or_default().trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SignatureError::Malformed("bad parameter name"));
        }
        rest = rest.get(eq + 1..).unwrap_or_default().trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut end = None;
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, c)) => v.push(c),
                        None => break,
                    },
                    c => v.push(c),
                }
            }
            let end = end.ok_or(SignatureError::Malformed("unterminated quoted string"))?;
            value = v;
            rest = quoted.get(end + 1..).unwrap_or_default().trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest.get(..end).unwrap_or_default().trim().to_owned();
            rest = rest.get(end..).unwrap_or_default();
        }
        if !(rest.is_empty() || rest.starts_with(',')) {
            return Err(SignatureError::Malformed("garbage after a parameter value"));
        }
        if params.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
            return Err(SignatureError::Malformed("duplicate parameter"));
        }
        params.push((name.to_owned(), value));
    }
    Ok(params)
}

/// The `Host` header value for `url`: host plus the port when it is not the scheme's default.
pub fn host_header(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// `(request-target)` for `url`: path plus `?query` when there is one.
pub fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Builds the string to sign for `signed_headers` (lowercase names).
pub fn signing_string(
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    created: Option<u64>,
    expires: Option<u64>,
) -> Result<String, SignatureError> {
    let mut lines = Vec::with_capacity(signed_headers.len());
    for name in signed_headers {
        let line = match name.as_str() {
            "(request-target)" => format!(
                "(request-target): {} {path_and_query}",
                method.to_ascii_lowercase()
            ),
            "(created)" => format!(
                "(created): {}",
                created.ok_or_else(|| SignatureError::SignedHeaderAbsent(name.clone()))?
            ),
            "(expires)" => format!(
                "(expires): {}",
                expires.ok_or_else(|| SignatureError::SignedHeaderAbsent(name.clone()))?
            ),
            _ => {
                let mut values = Vec::new();
                for v in headers.get_all(name.as_str()) {
                    let v = v
                        .to_str()
                        .map_err(|_| SignatureError::BadHeaderValue(name.clone()))?;
                    values.push(v.trim());
                }
                if values.is_empty() {
                    return Err(SignatureError::SignedHeaderAbsent(name.clone()));
                }
                format!("{name}: {}", values.join(", "))
            }
        };
        lines.push(line);
    }
    Ok(lines.join("\n"))
}

fn insert_header(
    headers: &mut HeaderMap,
    name: &'static str,
    value: &str,
) -> Result<(), SignatureError> {
    let v = http::HeaderValue::from_str(value)
        .map_err(|_| SignatureError::BadHeaderValue(name.to_owned()))?;
    headers.insert(name, v);
    Ok(())
}

/// Signs a request in place, Mastodon-style: sets `Host` (with a non-default port), `Date` (from `now`)
/// when absent, `Digest` when `body` is given, and `Signature` over `(request-target) host date`
/// (+ `digest`, + `content-type` when present) with `algorithm="rsa-sha256"`.
pub fn sign_request(
    key: &KeyPair,
    key_id: &str,
    method: &str,
    url: &url::Url,
    headers: &mut HeaderMap,
    body: Option<&[u8]>,
    now: SystemTime,
) -> Result<(), SignatureError> {
    let host = host_header(url).ok_or(SignatureError::Malformed("URL without host"))?;
    insert_header(headers, "host", &host)?;
    if !headers.contains_key(http::header::DATE) {
        insert_header(headers, "date", &httpdate::fmt_http_date(now))?;
    }
    let mut signed: Vec<String> = ["(request-target)", "host", "date"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(body) = body {
        insert_header(headers, "digest", &digest_header(body))?;
        signed.push("digest".into());
    }
    if headers.contains_key(http::header::CONTENT_TYPE) {
        signed.push("content-type".into());
    }
    let text = signing_string(method, &path_and_query(url), headers, &signed, None, None)?;
    let signature = key.sign(text.as_bytes())?;
    let header = SignatureHeader {
        key_id: key_id.to_owned(),
        algorithm: Some(Algorithm::RsaSha256),
        headers: signed,
        signature,
        created: None,
        expires: None,
    };
    insert_header(headers, "signature", &header.to_header_value())
}

/// A signature that passed every check but the cryptographic one, waiting for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingVerification {
    header: SignatureHeader,
    signing_string: String,
}

impl PendingVerification {
    /// The `keyId`: fetch the key from there (usually the actor document, `<actor>#main-key`).
    pub fn key_id(&self) -> &str {
        &self.header.key_id
    }

    /// The `keyId` without its fragment: the document to fetch (usually the actor).
    pub fn key_document_url(&self) -> &str {
        self.header
            .key_id
            .split_once('#')
            .map_or(self.header.key_id.as_str(), |(doc, _)| doc)
    }

    /// The parsed header.
    pub fn header(&self) -> &SignatureHeader {
        &self.header
    }

    /// The string that was signed.
    pub fn signing_string(&self) -> &str {
        &self.signing_string
    }

    /// Checks the signature with the key found at [`PendingVerification::key_id`]. On success returns the
    /// `keyId`, which the caller links to the activity's actor ([`check_key_owner`]).
    pub fn verify(&self, key: &PublicKey) -> Result<&str, SignatureError> {
        key.verify(self.signing_string.as_bytes(), &self.header.signature)?;
        Ok(&self.header.key_id)
    }
}

fn window_check(signed_at: SystemTime, now: SystemTime) -> Result<(), SignatureError> {
    match now.duration_since(signed_at) {
        Ok(age) if age > DATE_WINDOW => Err(SignatureError::Expired {
            age_secs: age.as_secs(),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.duration() > DATE_WINDOW => Err(SignatureError::InFuture {
            ahead_secs: e.duration().as_secs(),
        }),
        Err(_) => Ok(()),
    }
}

/// Checks everything but the RSA signature of an incoming request (see the module docs).
///
/// `path_and_query` is the request target as received (path and query, no scheme or host); `body` is
/// `Some` for requests with a body (POST), which must then carry a signed `Digest`.
pub fn prepare_verification(
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Option<&[u8]>,
    now: SystemTime,
) -> Result<PendingVerification, SignatureError> {
    let value = match headers.get("signature") {
        Some(v) => v,
        None => headers
            .get(http::header::AUTHORIZATION)
            .filter(|v| v.as_bytes().starts_with(b"Signature "))
            .ok_or(SignatureError::Missing)?,
    };
    let value = value
        .to_str()
        .map_err(|_| SignatureError::Malformed("non-ASCII Signature header"))?;
    let header = SignatureHeader::parse(value)?;
    let key_url = url::Url::parse(&header.key_id).map_err(|_| SignatureError::BadKeyId)?;
    if !matches!(key_url.scheme(), "http" | "https") || key_url.host_str().is_none() {
        return Err(SignatureError::BadKeyId);
    }
    let signed = |name: &str| header.headers.iter().any(|h| h == name);
    for required in ["(request-target)", "host"] {
        if !signed(required) {
            return Err(SignatureError::HeaderNotSigned(required.into()));
        }
    }
    let has_body = body.is_some() || method.eq_ignore_ascii_case("POST");
    if has_body && !signed("digest") {
        return Err(SignatureError::HeaderNotSigned("digest".into()));
    }
    // Time window, from the signed Date or the signed (created).
    if signed("date") {
        let date = headers
            .get(http::header::DATE)
            .ok_or_else(|| SignatureError::SignedHeaderAbsent("date".into()))?
            .to_str()
            .map_err(|_| SignatureError::BadDate)?;
        let date = httpdate::parse_http_date(date.trim()).map_err(|_| SignatureError::BadDate)?;
        window_check(date, now)?;
    } else if signed("(created)") {
        let created = header
            .created
            .ok_or_else(|| SignatureError::SignedHeaderAbsent("(created)".into()))?;
        let created = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(created))
            .ok_or(SignatureError::BadDate)?;
        window_check(created, now)?;
    } else {
        return Err(SignatureError::HeaderNotSigned("date".into()));
    }
    if let Some(expires) = header.expires {
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if expires < now_secs {
            return Err(SignatureError::Expired {
                age_secs: now_secs - expires,
            });
        }
    }
    if signed("digest") || has_body {
        let digest = headers
            .get("digest")
            .ok_or(SignatureError::DigestMissing)?
            .to_str()
            .map_err(|_| SignatureError::DigestMalformed)?;
        verify_digest(digest, body.unwrap_or_default())?;
    }
    let signing_string = signing_string(
        method,
        path_and_query,
        headers,
        &header.headers,
        header.created,
        header.expires,
    )?;
    Ok(PendingVerification {
        header,
        signing_string,
    })
}

/// Links a verified `keyId` to the activity's actor: the key document's `owner` (or the actor whose
/// `publicKey` it is) must be the activity's `actor`, and the `keyId` must be on the actor's origin.
pub fn check_key_owner(
    key_id: &str,
    key_owner: &str,
    activity_actor: &str,
) -> Result<(), SignatureError> {
    if key_owner != activity_actor {
        return Err(SignatureError::KeyOwnerMismatch);
    }
    let key = url::Url::parse(key_id).map_err(|_| SignatureError::BadKeyId)?;
    let actor = url::Url::parse(activity_actor).map_err(|_| SignatureError::KeyOwnerMismatch)?;
    if key.origin() != actor.origin() {
        return Err(SignatureError::KeyOwnerMismatch);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
