//! The error type of the OX and XEP-0473 module.

use xmpp_social::error::{Error as XmppError, ParseError};

/// What went wrong with OpenPGP data, an OX element, a key, a shared secret or the network.
///
/// Messages never contain key material or secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OxError {
    /// Malformed XML or an element that is not what was expected.
    #[error("malformed OX element: {0}")]
    Parse(#[from] ParseError),
    /// The text of an element is not valid base64.
    #[error("<{0}/> does not hold valid base64")]
    Base64(&'static str),
    /// Input larger than accepted.
    #[error("{what} too large: {size} > {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Size found (at least).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Sequoia refused the OpenPGP data (malformed packets, unsupported algorithms, integrity
    /// failure...).
    #[error("OpenPGP error: {0}")]
    OpenPgp(String),
    /// None of our secret keys can decrypt the message.
    #[error("the message is not encrypted to any of our keys")]
    NoDecryptionKey,
    /// The password (backup code, shared secret) does not decrypt the message.
    #[error("wrong password or shared secret")]
    WrongPassword,
    /// The OpenPGP protection does not match the content element (a `<signcrypt/>` that is not both
    /// signed and encrypted, a `<sign/>` that is encrypted, a `<crypt/>` that is signed...).
    #[error("the OpenPGP message is {found}, but <{element}/> requires {expected}")]
    WrongProtection {
        /// The content element.
        element: &'static str,
        /// What the element requires.
        expected: &'static str,
        /// What the message is.
        found: &'static str,
    },
    /// A signature is present but made by none of the sender's known keys.
    #[error("signed by a key that is not one of {jid}'s known keys")]
    UnknownSigner {
        /// The sender whose keys were expected.
        jid: String,
    },
    /// A signature by a known key does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// No `<to/>` of the content element names us (XEP-0373 §3.2).
    #[error("the content element is not addressed to {recipient}")]
    NotForUs {
        /// The stanza's recipient.
        recipient: String,
    },
    /// The `<time/>` of the content element is implausible.
    #[error("implausible <time/>: {0}")]
    BadTime(String),
    /// A key lacks the `xmpp:` user id of its owner (XEP-0373 §8.5).
    #[error("the key has no user id xmpp:{jid}")]
    UserIdMismatch {
        /// The expected owner.
        jid: String,
    },
    /// The key is unusable (no secret parts, no encryption or signing key valid under the policy).
    #[error("unusable key: {0}")]
    BadKey(String),
    /// No public key is known for an entity.
    #[error("no OpenPGP key known for {0}")]
    NoKey(String),
    /// A shared secret or revocation was signed by someone else than the node's established signer,
    /// or is otherwise refused (XEP-0473).
    #[error("shared secret refused: {0}")]
    SecretRefused(String),
    /// No shared secret with this id is known for the node.
    #[error("unknown shared secret {id} for node {node}")]
    UnknownSecret {
        /// The node.
        node: String,
        /// The secret id.
        id: String,
    },
    /// A backup code does not have the XEP-0373 form (24 characters of the alphabet, in groups of 4).
    #[error("malformed backup code")]
    BadBackupCode,
    /// The key store failed.
    #[error("key store: {0}")]
    Store(String),
    /// The network or the server failed.
    #[error(transparent)]
    Xmpp(#[from] XmppError),
    /// A lock was poisoned by a panic in another task.
    #[error("the OX state lock is poisoned")]
    Poisoned,
}

impl OxError {
    pub(crate) fn pgp(e: impl std::fmt::Display) -> Self {
        OxError::OpenPgp(e.to_string())
    }
}
