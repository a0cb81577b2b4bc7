//! Encrypted file sharing: XEP-0454 `aesgcm://` URLs, XEP-0447/0448 (encrypted) stateless file
//! sharing elements and a constant-memory streaming AES-GCM ([`gcm`]) whose output is identical to the
//! one-shot `aes-gcm` crate.
//!
//! * [`aesgcm`]: URL parsing/formatting and blocking `std::io` stream helpers; decryption keeps the
//!   plaintext in a temporary file until the tag verifies.
//! * [`sfs`]: `<file-sharing/>`, `<sources/>`, `<encrypted/>`, `<file/>` metadata and `<hash/>`.
//! * `upload` (feature `http-upload`): XEP-0363 slots over any [`xmpp_social::Connection`] and
//!   streaming HTTP PUT/GET with progress, size caps and timeouts.

pub mod aesgcm;
pub mod error;
pub mod gcm;
#[cfg(all(feature = "simd-gcm", target_arch = "x86_64"))]
mod gcm_x86;
pub mod sfs;
#[cfg(feature = "http-upload")]
pub mod upload;

pub use aesgcm::AesgcmUrl;
pub use error::{FileCryptoError, SfsError, UrlError};
pub use gcm::{Decryptor, Encryptor, FileKey, TrailingTagDecryptor};

/// The file ciphers of XEP-0448 (table copied there from XEP-0391).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// `urn:xmpp:ciphers:aes-128-gcm-nopadding:0`: AES-128-GCM, 12-byte IV, tag appended.
    Aes128GcmNoPadding,
    /// `urn:xmpp:ciphers:aes-256-gcm-nopadding:0`: AES-256-GCM, 12-byte IV, tag appended.
    Aes256GcmNoPadding,
    /// `urn:xmpp:ciphers:aes-256-cbc-pkcs7:0`: AES-256-CBC with PKCS#7 padding, 16-byte IV. Parsed and
    /// written, but the stream helpers of this module do not implement it.
    Aes256CbcPkcs7,
}

impl Cipher {
    /// The namespace of the cipher.
    pub fn urn(self) -> &'static str {
        match self {
            Cipher::Aes128GcmNoPadding => "urn:xmpp:ciphers:aes-128-gcm-nopadding:0",
            Cipher::Aes256GcmNoPadding => "urn:xmpp:ciphers:aes-256-gcm-nopadding:0",
            Cipher::Aes256CbcPkcs7 => "urn:xmpp:ciphers:aes-256-cbc-pkcs7:0",
        }
    }

    /// The cipher of a namespace. The forms without the `:0` version suffix, which deployed JET
    /// implementations (Conversations, Dino) send, are accepted too.
    pub fn from_urn(urn: &str) -> Option<Self> {
        let base = urn.strip_suffix(":0").unwrap_or(urn);
        match base {
            "urn:xmpp:ciphers:aes-128-gcm-nopadding" => Some(Cipher::Aes128GcmNoPadding),
            "urn:xmpp:ciphers:aes-256-gcm-nopadding" => Some(Cipher::Aes256GcmNoPadding),
            "urn:xmpp:ciphers:aes-256-cbc-pkcs7" => Some(Cipher::Aes256CbcPkcs7),
            _ => None,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128GcmNoPadding => 16,
            _ => 32,
        }
    }

    /// IV length in bytes.
    pub fn iv_len(self) -> usize {
        match self {
            Cipher::Aes256CbcPkcs7 => 16,
            _ => 12,
        }
    }

    /// A fresh random key and IV for this cipher.
    pub fn generate(self) -> (FileKey, Vec<u8>) {
        let key = match self {
            Cipher::Aes128GcmNoPadding => FileKey::random_aes128(),
            _ => FileKey::random_aes256(),
        };
        let mut iv = vec![0u8; self.iv_len()];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut iv);
        (key, iv)
    }

    /// Whether the stream helpers ([`aesgcm::encrypt_stream`], [`aesgcm::decrypt_to_file`],
    /// [`TrailingTagDecryptor`]) implement it (the GCM ciphers, tag appended as XEP-0448 recommends).
    pub fn is_gcm(self) -> bool {
        !matches!(self, Cipher::Aes256CbcPkcs7)
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut out);
    out
}
