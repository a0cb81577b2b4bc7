//! Typed errors of the file-sharing module.

use thiserror::Error;

/// Errors of the file cipher (streaming AES-GCM) and of the file helpers around it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileCryptoError {
    /// A key must be 16 (AES-128) or 32 (AES-256) bytes.
    #[error("file key must be 16 or 32 bytes, got {0}")]
    KeyLength(usize),
    /// The IV is empty or longer than the accepted maximum.
    #[error("file IV length {0} is not accepted")]
    IvLength(usize),
    /// More data than one GCM key/IV pair may protect (about 64 GiB).
    #[error("more data than AES-GCM allows under one IV")]
    TooLong,
    /// The authentication tag does not match: the data was altered or the key/IV is wrong.
    #[error("authentication tag mismatch: file altered or wrong key")]
    TagMismatch,
    /// The encrypted stream ended before a whole tag was read.
    #[error("encrypted stream shorter than its authentication tag")]
    Truncated,
    /// The stream is larger than the caller's limit.
    #[error("stream larger than the limit of {limit} bytes")]
    SizeLimit {
        /// The limit that was passed.
        limit: u64,
    },
    /// PKCS#7 padding of a CBC stream is invalid (wrong key or altered data).
    #[error("invalid padding in CBC stream")]
    Padding,
    /// The cipher is known but not usable with this operation.
    #[error("cipher {0} is not supported here")]
    UnsupportedCipher(String),
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Errors of `aesgcm://` URL parsing (XEP-0454).
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL is longer than [`super::aesgcm::MAX_URL_LEN`].
    #[error("URL longer than {0} bytes")]
    TooLong(usize),
    /// The URL does not start with `aesgcm://`.
    #[error("not an aesgcm:// URL")]
    Scheme,
    /// Whitespace or control characters in the URL.
    #[error("URL contains whitespace or control characters")]
    BadCharacter,
    /// No host after `aesgcm://`.
    #[error("URL has no host")]
    NoHost,
    /// No `#` fragment with the key material.
    #[error("URL has no #fragment with the IV and key")]
    NoFragment,
    /// The fragment is neither 88 (12-byte IV) nor 96 (16-byte IV) hex digits.
    #[error("fragment has {0} characters, expected 88 or 96 hex digits")]
    FragmentLength(usize),
    /// A character of the fragment is not a hex digit.
    #[error("fragment character {0} is not a hex digit")]
    NotHex(usize),
    /// A URL to format has an IV that is neither 12 nor 16 bytes.
    #[error("IV must be 12 or 16 bytes, got {0}")]
    IvLength(usize),
    /// A URL to format has a key that is not 32 bytes (aesgcm:// is AES-256 only).
    #[error("aesgcm:// keys are 32 bytes (AES-256), got {0}")]
    KeyLength(usize),
    /// The HTTPS URL to turn into aesgcm:// does not start with https://.
    #[error("only https:// URLs can become aesgcm:// URLs")]
    NotHttps,
}

/// Errors of parsing XEP-0447/0448/0446/0300/0103 elements.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SfsError {
    /// The XML text is oversized, too deep or not well-formed.
    #[error("bad XML: {0}")]
    Xml(String),
    /// The element is not the one expected.
    #[error("expected <{expected}/>, got <{got}/>")]
    UnexpectedElement {
        /// Expected `{namespace}name`.
        expected: String,
        /// What was found.
        got: String,
    },
    /// A required child or attribute is missing.
    #[error("<{element}/> lacks {what}")]
    Missing {
        /// The element.
        element: &'static str,
        /// The missing child or attribute.
        what: &'static str,
    },
    /// A value is malformed (bad number, base64, URL...).
    #[error("<{element}/>: invalid {what}")]
    Invalid {
        /// The element.
        element: &'static str,
        /// What is invalid.
        what: &'static str,
    },
    /// More children or bigger values than the parser accepts.
    #[error("<{element}/>: too many or too large {what}")]
    TooLarge {
        /// The element.
        element: &'static str,
        /// What is too large.
        what: &'static str,
    },
}
