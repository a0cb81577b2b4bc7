//! OpenPGP for XMPP (XEP-0373 version 0.7, XEP-0374 version 0.2) and OpenPGP for pubsub (XEP-0473
//! version 0.2), with sequoia-openpgp.
//!
//! * [`pgp`]: keys ([`SecretKey`], [`PublicKey`]: v4 Cv25519 with the user id `xmpp:<jid>`) and the
//!   OpenPGP operations, in the RFC 4880 profile that GnuPG 2.2 reads.
//! * [`xml`]: the `<openpgp/>` element, the content elements `<signcrypt/>`, `<sign/>`, `<crypt/>`, the
//!   public key and secret key elements.
//! * [`core`]: sealing content elements into `<openpgp/>` and opening them with the receipt checks of
//!   XEP-0373 §3.2 (recipient, time, signer = one of the sender's known keys). No I/O.
//! * [`backup`]: secret key backup codes and the encrypted backup (XEP-0373 §5).
//! * [`pep`]: public keys and the secret key backup on PEP ([`OxPepExt`]).
//! * [`pubsub`]: XEP-0473 shared secrets, encrypted items, rotation and revocation ([`NodeSecrets`]).
//! * [`store`]: where keys and shared secrets live ([`OxStore`], [`MemoryOxStore`], and
//!   `SqliteOxStore` with the `sqlite` feature).
//! * [`client`]: [`OxClient`], the async driver over any [`xmpp_social::Connection`].
//!
//! Every entry point fed with remote data returns a typed [`OxError`] and changes no state on failure.

pub mod backup;
pub mod client;
pub mod core;
mod error;
pub mod pep;
pub mod pgp;
pub mod pubsub;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod xml;

pub use backup::BackupCode;
pub use client::{OxClient, OxMessage};
pub use core::{open_element, seal, Checks};
pub use error::OxError;
pub use pep::OxPepExt;
pub use pgp::{PublicKey, SecretKey};
pub use pubsub::{EncryptedItem, NodeSecrets, Revoke, SharedSecret};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOxStore, SqliteOxStoreError};
pub use store::{MemoryOxStore, OxStore};
pub use xml::{Content, ContentKind, OpenPgp, PubkeyMetadata, PublicKeysList};

/// The OX namespace (XEP-0373).
pub const NS_OX: &str = "urn:xmpp:openpgp:0";
/// The OX instant messaging feature (XEP-0374).
pub const NS_OX_IM: &str = "urn:xmpp:openpgp:im:0";
/// The OpenPGP for pubsub namespace and feature (XEP-0473).
pub const NS_OX_PUBSUB: &str = "urn:xmpp:openpgp:pubsub:0";

/// The XEP-0030 features a client using this module announces (add them to
/// `xmpp_social::client::ClientConfig::features`): OX instant messaging (XEP-0374), OpenPGP for pubsub
/// (XEP-0473), and the `+notify` of the public key metadata node (XEP-0373 §4.5).
pub const DISCO_FEATURES: &[&str] = &[
    NS_OX_IM,
    NS_OX_PUBSUB,
    "urn:xmpp:openpgp:0:public-keys+notify",
];

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, OxError>;
