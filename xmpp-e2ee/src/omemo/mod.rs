//! OMEMO (XEP-0384): one sans-IO X3DH + Double Ratchet core with two wire profiles.
//!
//! * [`Profile::Omemo2`]: `urn:xmpp:omemo:2` (XEP-0384 version 0.9).
//! * [`Profile::Legacy`]: `eu.siacs.conversations.axolotl` (XEP-0384 version 0.3, as deployed by
//!   Conversations and Dino).
//!
//! Both profiles share the same state machine; they differ only in KDF labels, the associated data, the
//! MAC truncation, the message framing and the payload encryption (see [`Profile`]).
//!
//! The core does no I/O: [`DeviceKeys`] holds a device's identity key, signed prekey and one-time
//! prekeys and produces a [`Bundle`]; [`DeviceKeys::initiate`] runs X3DH against a peer's bundle and
//! returns a [`Session`]; [`DeviceKeys::accept`] answers a key exchange; [`Session::encrypt`] and
//! [`Session::decrypt`] move the Double Ratchet. [`payload`] encrypts the message body with the
//! per-message key that the ratchet transports.
//!
//! [`xml`] parses and serialises the elements of both namespaces; [`pep`] publishes and fetches
//! device lists and bundles ([`OmemoPepExt`]); [`store`] defines where state lives
//! ([`Session::to_bytes`] and [`DeviceKeys::to_bytes`] give the stored forms).
//!
//! Every function fed with remote bytes returns a typed [`OmemoError`] and leaves the state unchanged on
//! failure.

pub mod client;
mod crypto;
mod error;
mod keys;
pub mod manager;
pub mod payload;
pub mod pep;
mod profile;
mod proto;
mod ratchet;
mod session;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
mod trust;
pub mod xml;

pub use client::{ClientError, DecryptedMessage, OmemoClient};
pub use error::OmemoError;
pub use keys::{Bundle, DeviceKeys, IdentityKeyPair, PreKeyPublic, SignedPreKey};
pub use manager::{
    Action, Decrypted, Encryption, KeyTransport, ManagerError, OmemoConfig, OmemoManager,
    SkipReason, MAX_KEY_TRANSPORT_MATERIAL,
};
pub use payload::{EncryptedPayload, KeyMaterial};
pub use pep::OmemoPepExt;
pub use profile::{Profile, NS_OMEMO2, NS_OMEMO_LEGACY};
pub use ratchet::MAX_SKIPPED_KEYS;
pub use session::{EncryptedKey, Session};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use store::{DeviceAddress, MemoryStore, OmemoStore};
pub use trust::{fingerprint, DeviceRecord, TrustDecider, TrustLevel, TrustPolicy};
pub use xml::{DeviceEntry, DeviceList, Encrypted, MessageKey};

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, OmemoError>;
