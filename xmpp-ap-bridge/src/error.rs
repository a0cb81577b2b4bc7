//! Errors of the gateway's federation foundations.
//!
//! One enum per concern, all `#[non_exhaustive]`, wrapped by [`Error`]. Every parser of remote input
//! (handles, URLs, `Signature` headers, fetched documents) reports what was wrong with a typed variant;
//! nothing here panics on hostile input.

use std::net::IpAddr;

/// Any error of this crate's federation layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An actor handle or a gateway URL could not be built or parsed.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// XEP-0106 escaping or unescaping failed.
    #[error(transparent)]
    Escape(#[from] EscapeError),
    /// HTTP Signature creation or verification failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Fetching a remote ActivityPub object failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// Errors of actor handles (`user@domain`) and of the gateway's `/_ap/...` URLs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The handle is empty or has an empty user or domain part.
    #[error("empty handle, user part or domain")]
    Empty,
    /// The handle does not contain exactly one `@`.
    #[error("a handle needs exactly one '@' (found {0})")]
    AtCount(usize),
    /// The handle is longer than [`crate::handles::MAX_HANDLE_LEN`].
    #[error("handle longer than {max} bytes")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// A `%` escape is not followed by two hex digits.
    #[error("invalid percent escape at byte {0}")]
    BadPercentEscape(usize),
    /// A character that may not appear in an encoded handle or path segment.
    #[error("character {0:?} not allowed here")]
    ForbiddenChar(char),
    /// Decoded bytes are not UTF-8.
    #[error("decoded text is not valid UTF-8")]
    InvalidUtf8,
    /// The decoded user/domain do not form a valid JID.
    #[error("invalid JID {0:?}")]
    InvalidJid(String),
    /// A JID without a local part and without a node cannot be an actor.
    #[error("a JID without a local part needs a node to be an actor")]
    NoUserPart,
    /// The URL is not a URL of this gateway (other origin or other base path).
    #[error("URL is not under this gateway's base URL")]
    NotOurUrl,
    /// The URL could not be parsed.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The endpoint name after the base path is unknown.
    #[error("unknown gateway endpoint {0:?}")]
    UnknownEndpoint(String),
    /// The endpoint has the wrong number of path segments.
    #[error("wrong number of path segments for endpoint {0:?}")]
    SegmentCount(&'static str),
}

/// Errors of XEP-0106 JID escaping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EscapeError {
    /// Empty input or output.
    #[error("empty local part")]
    Empty,
    /// XEP-0106: `\20` (a space) may not be the first or last character of an escaped local part.
    #[error("a space may not start or end an escaped local part")]
    EdgeSpace,
    /// The escaped local part is longer than the 1023 bytes RFC 7622 allows.
    #[error("escaped local part longer than {max} bytes")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// A character that cannot appear in a JID local part even escaped (controls, other spaces).
    #[error("character {0:?} cannot be put in a JID local part")]
    ForbiddenChar(char),
}

/// Errors of HTTP Signatures (draft-cavage) and `Digest` headers.
///
/// Every variant produced while verifying an incoming request means "unauthenticated": the HTTP layer
/// answers 401 (see [`SignatureError::is_unauthorized`]), which is also what lets peers that try RFC 9421
/// first fall back to draft-cavage ("double knock").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The request has no `Signature` header.
    #[error("no Signature header")]
    Missing,
    /// The `Signature` header is longer than the accepted maximum.
    #[error("Signature header longer than {max} bytes")]
    HeaderTooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The `Signature` header is malformed.
    #[error("malformed Signature header: {0}")]
    Malformed(&'static str),
    /// A required `Signature` parameter is absent.
    #[error("Signature header lacks the {0:?} parameter")]
    MissingParameter(&'static str),
    /// The algorithm is neither `rsa-sha256` nor `hs2019`.
    #[error("unsupported signature algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// A header that must be signed is not in the signed header list.
    #[error("header {0:?} must be signed")]
    HeaderNotSigned(String),
    /// A header listed as signed is absent from the request.
    #[error("signed header {0:?} is absent from the request")]
    SignedHeaderAbsent(String),
    /// The `Date` header is malformed.
    #[error("malformed Date header")]
    BadDate,
    /// The `Date` is older than the accepted window.
    #[error("Date too old ({age_secs} s)")]
    Expired {
        /// Age of the signature in seconds.
        age_secs: u64,
    },
    /// The `Date` is further in the future than the accepted window.
    #[error("Date in the future ({ahead_secs} s ahead)")]
    InFuture {
        /// How far ahead in seconds.
        ahead_secs: u64,
    },
    /// The `Digest` header is absent or names no SHA-256 value.
    #[error("no SHA-256 Digest header")]
    DigestMissing,
    /// The `Digest` value is not valid base64 of 32 bytes.
    #[error("malformed Digest header")]
    DigestMalformed,
    /// The body does not match the `Digest` header.
    #[error("body does not match the Digest header")]
    DigestMismatch,
    /// The signature value is not valid base64.
    #[error("signature value is not valid base64")]
    BadBase64,
    /// The RSA signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The `keyId` is not a usable absolute http(s) URL.
    #[error("keyId is not an http(s) URL")]
    BadKeyId,
    /// A public or private key could not be parsed or is not acceptable (e.g. too small).
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// Signing failed (should not happen with a valid key).
    #[error("signing failed")]
    SigningFailed,
    /// The key's owner is not the activity's actor, or the key is on another origin.
    #[error("the signing key does not belong to the activity's actor")]
    KeyOwnerMismatch,
    /// A header value to sign is not valid (non-visible ASCII).
    #[error("header {0:?} has a value that cannot be signed")]
    BadHeaderValue(String),
}

impl SignatureError {
    /// True for errors that mean "the request is not authenticated": answer HTTP 401.
    ///
    /// Only key handling and signing failures on our own side are not 401s.
    pub fn is_unauthorized(&self) -> bool {
        !matches!(self, Self::SigningFailed)
    }
}

/// Errors while fetching a remote ActivityPub object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL could not be parsed or has no host.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// Only `https` (and `http` when allowed) are fetched.
    #[error("URL scheme {0:?} not allowed")]
    SchemeNotAllowed(String),
    /// The host resolves to (or is) an address the gateway must not connect to.
    #[error("address {0} is not allowed (loopback, private, link-local, ...)")]
    ForbiddenAddress(IpAddr),
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Dns {
        /// The host name.
        host: String,
        /// Why.
        reason: String,
    },
    /// The request timed out.
    #[error("request timed out")]
    Timeout,
    /// The server answered with a redirect, which is not followed.
    #[error("redirect (HTTP {status}) not followed")]
    Redirect {
        /// The HTTP status.
        status: u16,
    },
    /// The server answered with a non-success status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is bigger than the configured cap.
    #[error("body larger than {max} bytes")]
    TooLarge {
        /// The cap in bytes.
        max: usize,
    },
    /// The content type is not an ActivityPub one.
    #[error("content type {0:?} is not application/activity+json or AS ld+json")]
    WrongContentType(String),
    /// The body is not a JSON object.
    #[error("body is not a JSON object: {0}")]
    Json(String),
    /// The object's `id` differs from the URL fetched.
    #[error("object id {found:?} differs from the URL fetched {expected:?}")]
    IdMismatch {
        /// The URL requested.
        expected: String,
        /// The `id` found (empty when absent).
        found: String,
    },
    /// Signing the request failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Building the HTTP client (TLS roots) failed.
    #[error("HTTP client setup: {0}")]
    Setup(String),
    /// Another transport error (connection refused, TLS, protocol).
    #[error("transport: {0}")]
    Transport(String),
}
