//! The OpenPGP operations OX and XEP-0473 need, over sequoia-openpgp: v4 Cv25519 keys with an
//! `xmpp:` user id, sign+encrypt, sign, encrypt, symmetric (password) encryption, and decryption with
//! the checks of XEP-0373 §3.2.
//!
//! Everything is written in the RFC 4880 profile (v4 keys, SEIPD v1) so that GnuPG 2.2 and other
//! deployed OX clients can read it. Decryption reads compressed messages (GnuPG compresses by default)
//! and bounds the plaintext ([`MAX_PLAINTEXT_BYTES`]), so a compression bomb is an error, not an
//! allocation.

use std::cell::Cell;
use std::fmt;
use std::io::{Read, Write};

use sequoia_openpgp as openpgp;

use openpgp::cert::{CertBuilder, CertParser, CipherSuite};
use openpgp::crypto::{Password, SessionKey, S2K};
use openpgp::packet::{PKESK, SKESK};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, MessageLayer, MessageStructure, VerificationError,
    VerificationHelper,
};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message, Signer};
use openpgp::serialize::SerializeInto;
use openpgp::types::SymmetricAlgorithm;
use openpgp::{Cert, Fingerprint, KeyHandle};

use super::error::OxError;

/// The largest OpenPGP message accepted (after base64 decoding).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// The largest decrypted plaintext accepted (decompression included).
pub const MAX_PLAINTEXT_BYTES: usize = 1024 * 1024;
/// The largest key (public or transferable secret key) accepted.
pub const MAX_KEY_BYTES: usize = 256 * 1024;

const CANNOT_DECRYPT: &str = "no key or password of ours decrypts this message";

fn policy() -> StandardPolicy<'static> {
    StandardPolicy::new()
}

fn check_len(what: &'static str, size: usize, limit: usize) -> Result<(), OxError> {
    if size > limit {
        return Err(OxError::TooLarge { what, size, limit });
    }
    Ok(())
}

/// The `xmpp:` URI user id of XEP-0373 §8.5 for a bare JID.
pub fn xmpp_user_id(jid: &str) -> String {
    format!("xmpp:{jid}")
}

/// The OpenPGP v4 fingerprint string of XEP-0373 §4.1 (upper-case hex, no spaces).
pub fn fingerprint_string(fpr: &Fingerprint) -> String {
    fpr.to_hex()
}

fn has_user_id(cert: &Cert, jid: &str) -> bool {
    let wanted = xmpp_user_id(jid);
    cert.userids()
        .any(|u| u.userid().value().eq_ignore_ascii_case(wanted.as_bytes()))
}

/// An entity's public key (an OpenPGP certificate).
#[derive(Clone, PartialEq)]
pub struct PublicKey {
    cert: Cert,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl PublicKey {
    /// Reads a binary (unarmored) public key; secret parts, if any, are dropped.
    pub fn from_bytes(data: &[u8]) -> Result<Self, OxError> {
        check_len("public key", data.len(), MAX_KEY_BYTES)?;
        let cert = Cert::from_bytes(data).map_err(OxError::pgp)?;
        Ok(PublicKey {
            cert: cert.strip_secret_key_material(),
        })
    }

    /// The binary (unarmored) public key, as published on PEP.
    pub fn to_bytes(&self) -> Result<Vec<u8>, OxError> {
        self.cert.to_vec().map_err(OxError::pgp)
    }

    /// The v4 fingerprint string of the primary key.
    pub fn fingerprint(&self) -> String {
        fingerprint_string(&self.cert.fingerprint())
    }

    /// Whether the key carries the user id `xmpp:<jid>`.
    pub fn has_jid(&self, jid: &str) -> bool {
        has_user_id(&self.cert, jid)
    }

    /// Fails with [`OxError::UserIdMismatch`] unless the key carries the user id `xmpp:<jid>`.
    pub fn check_jid(&self, jid: &str) -> Result<(), OxError> {
        if self.has_jid(jid) {
            Ok(())
        } else {
            Err(OxError::UserIdMismatch {
                jid: jid.to_owned(),
            })
        }
    }

    /// The sequoia certificate.
    pub fn cert(&self) -> &Cert {
        &self.cert
    }
}

/// Our own key: a transferable secret key. Its `Debug` shows the fingerprint only.
#[derive(Clone)]
pub struct SecretKey {
    cert: Cert,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// Generates a v4 Cv25519 key for `jid` (a bare JID): an Ed25519 certification primary key with
    /// the user id `xmpp:<jid>`, an Ed25519 signing subkey and an X25519 encryption subkey.
    pub fn generate(jid: &str) -> Result<Self, OxError> {
        let (cert, _revocation) = CertBuilder::new()
            .set_profile(openpgp::Profile::RFC4880)
            .map_err(OxError::pgp)?
            .set_cipher_suite(CipherSuite::Cv25519)
            .add_userid(xmpp_user_id(jid))
            .add_signing_subkey()
            .add_subkey(
                openpgp::types::KeyFlags::empty()
                    .set_transport_encryption()
                    .set_storage_encryption(),
                None,
                None,
            )
            .generate()
            .map_err(OxError::pgp)?;
        Ok(SecretKey { cert })
    }

    /// Reads a transferable secret key (binary, unarmored, secret key material not encrypted).
    pub fn from_bytes(data: &[u8]) -> Result<Self, OxError> {
        check_len("secret key", data.len(), MAX_KEY_BYTES)?;
        let cert = Cert::from_bytes(data).map_err(OxError::pgp)?;
        Self::from_cert(cert)
    }

    fn from_cert(cert: Cert) -> Result<Self, OxError> {
        if !cert.is_tsk() {
            return Err(OxError::BadKey("no secret key material".to_owned()));
        }
        let key = SecretKey { cert };
        // Both a signing and a decryption key must be usable without a password.
        key.signing_keypair()?;
        if key.decryption_keypairs().is_empty() {
            return Err(OxError::BadKey(
                "no unencrypted secret encryption key".to_owned(),
            ));
        }
        Ok(key)
    }

    /// The transferable secret key (binary, secret material unencrypted: keep it safe).
    pub fn to_bytes(&self) -> Result<Vec<u8>, OxError> {
        self.cert.as_tsk().to_vec().map_err(OxError::pgp)
    }

    /// The public part.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            cert: self.cert.clone().strip_secret_key_material(),
        }
    }

    /// The v4 fingerprint string of the primary key.
    pub fn fingerprint(&self) -> String {
        fingerprint_string(&self.cert.fingerprint())
    }

    /// Whether the key carries the user id `xmpp:<jid>`.
    pub fn has_jid(&self, jid: &str) -> bool {
        has_user_id(&self.cert, jid)
    }

    fn signing_keypair(&self) -> Result<openpgp::crypto::KeyPair, OxError> {
        let p = policy();
        let ka = self
            .cert
            .keys()
            .unencrypted_secret()
            .with_policy(&p, None)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(|| OxError::BadKey("no usable signing key".to_owned()))?;
        ka.key().clone().into_keypair().map_err(OxError::pgp)
    }

    fn decryption_keypairs(&self) -> Vec<openpgp::crypto::KeyPair> {
        let p = policy();
        self.cert
            .keys()
            .unencrypted_secret()
            .with_policy(&p, None)
            .supported()
            .for_transport_encryption()
            .for_storage_encryption()
            .filter_map(|ka| ka.key().clone().into_keypair().ok())
            .collect()
    }
}

/// Reads several concatenated transferable secret keys (a XEP-0373 backup may hold more than one).
pub fn secret_keys_from_bytes(data: &[u8]) -> Result<Vec<SecretKey>, OxError> {
    check_len("secret keys", data.len(), MAX_KEY_BYTES.saturating_mul(4))?;
    let parser = CertParser::from_bytes(data).map_err(OxError::pgp)?;
    let mut keys = Vec::new();
    for cert in parser {
        keys.push(SecretKey::from_cert(cert.map_err(OxError::pgp)?)?);
        if keys.len() > 16 {
            return Err(OxError::TooLarge {
                what: "secret key count",
                size: keys.len(),
                limit: 16,
            });
        }
    }
    if keys.is_empty() {
        return Err(OxError::BadKey("no key".to_owned()));
    }
    Ok(keys)
}

/// Signs and/or encrypts `plaintext` as one OpenPGP message (binary). `signer` signs when given;
/// `recipients` (all their valid transport-encryption subkeys) and `passwords` can decrypt when any
/// is given; with neither the message is only signed.
pub fn protect(
    plaintext: &[u8],
    signer: Option<&SecretKey>,
    recipients: &[&PublicKey],
    passwords: &[&str],
) -> Result<Vec<u8>, OxError> {
    let p = policy();
    let mut sink = Vec::new();
    {
        let mut message = Message::new(&mut sink);
        if !recipients.is_empty() || !passwords.is_empty() {
            let mut keys = Vec::new();
            for r in recipients {
                let before = keys.len();
                keys.extend(
                    r.cert
                        .keys()
                        .with_policy(&p, None)
                        .supported()
                        .alive()
                        .revoked(false)
                        .for_transport_encryption(),
                );
                if keys.len() == before {
                    return Err(OxError::BadKey(format!(
                        "{} has no usable encryption key",
                        r.fingerprint()
                    )));
                }
            }
            let pw: Vec<Password> = passwords.iter().map(|s| Password::from(*s)).collect();
            message = Encryptor::for_recipients(message, keys)
                .add_passwords(pw)
                .symmetric_algo(SymmetricAlgorithm::AES256)
                .build()
                .map_err(OxError::pgp)?;
        }
        if let Some(signer) = signer {
            message = Signer::new(message, signer.signing_keypair()?)
                .map_err(OxError::pgp)?
                .build()
                .map_err(OxError::pgp)?;
        }
        let mut w = LiteralWriter::new(message).build().map_err(OxError::pgp)?;
        w.write_all(plaintext).map_err(OxError::pgp)?;
        w.finalize().map_err(OxError::pgp)?;
    }
    Ok(sink)
}

/// Symmetrically encrypts `plaintext` with a password (XEP-0373 secret key backup, XEP-0473 items).
pub fn encrypt_with_password(plaintext: &[u8], password: &str) -> Result<Vec<u8>, OxError> {
    protect(plaintext, None, &[], &[password])
}

/// What [`open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The literal data.
    pub plaintext: Vec<u8>,
    /// Whether the message was encrypted.
    pub encrypted: bool,
    /// Whether it carried at least one signature.
    pub signed: bool,
    /// Fingerprints (of the primary keys) of the known keys whose signatures verified.
    pub good_signers: Vec<String>,
}

/// How [`open`] may decrypt.
#[derive(Debug, Clone, Copy)]
pub enum Decryption<'a> {
    /// Not at all: the message must not be encrypted.
    None,
    /// With our secret keys.
    Keys(&'a [&'a SecretKey]),
    /// With a password.
    Password(&'a str),
}

/// The largest Argon2 memory exponent accepted in a password-encrypted message (2^17 KiB = 128 MiB):
/// a hostile message could otherwise ask for terabytes.
pub const MAX_ARGON2_MEMORY_EXPONENT: u8 = 17;
/// The most Argon2 passes and lanes accepted.
pub const MAX_ARGON2_PASSES: u8 = 8;

fn s2k_affordable(skesk: &SKESK) -> bool {
    let s2k = match skesk {
        SKESK::V4(s) => s.s2k(),
        SKESK::V6(s) => s.s2k(),
        // Future packet versions: not understood, not tried.
        #[allow(unreachable_patterns)]
        _ => return false,
    };
    match s2k {
        S2K::Argon2 { t, p, m, .. } => {
            *m <= MAX_ARGON2_MEMORY_EXPONENT && *t <= MAX_ARGON2_PASSES && *p <= MAX_ARGON2_PASSES
        }
        // Iterated-and-salted hashing is bounded by its encoding (at most 62 MiB hashed).
        _ => true,
    }
}

struct Helper<'a> {
    decryption: Decryption<'a>,
    verifiers: &'a [&'a PublicKey],
    encrypted: bool,
    signed: bool,
    good: Vec<String>,
    unknown_signer: bool,
    bad: Option<String>,
    // Outlives the helper: `with_policy` consumes it when decryption fails.
    failure: &'a Cell<Option<OxError>>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.verifiers.iter().map(|k| k.cert.clone()).collect())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Compression { .. } => {}
                MessageLayer::Encryption { .. } => self.encrypted = true,
                MessageLayer::SignatureGroup { results } => {
                    for r in results {
                        self.signed = true;
                        match r {
                            Ok(good) => self
                                .good
                                .push(fingerprint_string(&good.ka.cert().fingerprint())),
                            Err(VerificationError::MissingKey { .. }) => self.unknown_signer = true,
                            Err(e) => self.bad = Some(e.to_string()),
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        match self.decryption {
            Decryption::None => self.failure.set(Some(OxError::NoDecryptionKey)),
            Decryption::Keys(keys) => {
                for key in keys {
                    for mut pair in key.decryption_keypairs() {
                        for pkesk in pkesks {
                            let addressed = pkesk
                                .recipient()
                                .is_none_or(|r| r.aliases(pair.public().key_handle()));
                            if !addressed {
                                continue;
                            }
                            if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo) {
                                if decrypt(algo, &sk) {
                                    return Ok(Some(key.cert.clone()));
                                }
                            }
                        }
                    }
                }
                self.failure.set(Some(OxError::NoDecryptionKey));
            }
            Decryption::Password(password) => {
                let password = Password::from(password);
                for skesk in skesks.iter().filter(|s| s2k_affordable(s)) {
                    if let Ok((algo, sk)) = skesk.decrypt(&password) {
                        if decrypt(algo, &sk) {
                            return Ok(None);
                        }
                    }
                }
                self.failure.set(Some(OxError::WrongPassword));
            }
        }
        Err(openpgp::Error::InvalidOperation(CANNOT_DECRYPT.to_owned()).into())
    }
}

/// Decrypts and/or verifies one binary OpenPGP message. Signatures are checked against `verifiers`
/// only (a signature by any other key is reported as [`OxError::UnknownSigner`] by the callers that
/// require one, see [`Opened::good_signers`]). Any bad signature by a known key is an error.
pub fn open(
    message: &[u8],
    decryption: Decryption<'_>,
    verifiers: &[&PublicKey],
    signer_jid: &str,
) -> Result<Opened, OxError> {
    check_len("OpenPGP message", message.len(), MAX_MESSAGE_BYTES)?;
    let p = policy();
    let failure = Cell::new(None);
    let helper = Helper {
        decryption,
        verifiers,
        encrypted: false,
        signed: false,
        good: Vec::new(),
        unknown_signer: false,
        bad: None,
        failure: &failure,
    };
    let builder = DecryptorBuilder::from_bytes(message).map_err(OxError::pgp)?;
    let mut decryptor = match builder.with_policy(&p, None, helper) {
        Ok(d) => d,
        Err(e) => return Err(failure.take().unwrap_or_else(|| OxError::pgp(e))),
    };
    let mut plaintext = Vec::new();
    let read = (&mut decryptor)
        .take(MAX_PLAINTEXT_BYTES as u64 + 1)
        .read_to_end(&mut plaintext);
    if let Err(e) = read {
        return Err(OxError::pgp(e));
    }
    check_len("plaintext", plaintext.len(), MAX_PLAINTEXT_BYTES)?;
    if !decryptor.message_processed() {
        return Err(OxError::OpenPgp("truncated message".to_owned()));
    }
    let h = decryptor.into_helper();
    if let Some(bad) = h.bad {
        return Err(OxError::BadSignature(bad));
    }
    if h.unknown_signer && h.good.is_empty() {
        return Err(OxError::UnknownSigner {
            jid: signer_jid.to_owned(),
        });
    }
    Ok(Opened {
        plaintext,
        encrypted: h.encrypted,
        signed: h.signed,
        good_signers: h.good,
    })
}

/// Decrypts a password-encrypted message (it must not be signed by an unknown key; signatures are
/// not required).
pub fn decrypt_with_password(message: &[u8], password: &str) -> Result<Vec<u8>, OxError> {
    match open(message, Decryption::Password(password), &[], "") {
        Ok(o) if o.encrypted => Ok(o.plaintext),
        Ok(_) => Err(OxError::WrongProtection {
            element: "encrypted",
            expected: "encrypted",
            found: "not encrypted",
        }),
        Err(e) => Err(e),
    }
}

/// Convenience: the armor-free bytes of a certificate list, for tests and tools.
pub fn certs_to_bytes(keys: &[&PublicKey]) -> Result<Vec<u8>, OxError> {
    let mut out = Vec::new();
    for k in keys {
        out.extend(k.cert.to_vec().map_err(OxError::pgp)?);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is a test failure
mod tests {
    use super::*;
    use openpgp::packet::skesk::SKESK4;
    use openpgp::{Packet, PacketPile};

    #[test]
    fn keys_are_v4_cv25519_with_the_xmpp_user_id() {
        let key = SecretKey::generate("juliet@example.org").unwrap();
        assert_eq!(key.cert.primary_key().key().version(), 4);
        assert!(key.has_jid("juliet@example.org"));
        assert!(!key.has_jid("romeo@example.org"));
        let fpr = key.fingerprint();
        assert_eq!(fpr.len(), 40);
        assert!(fpr
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert!(format!("{key:?}").contains(&fpr));
        let public = key.public();
        assert!(!public.cert().is_tsk());
        assert_eq!(
            PublicKey::from_bytes(&public.to_bytes().unwrap()).unwrap(),
            public
        );
    }

    #[test]
    fn hostile_argon2_parameters_are_not_tried() {
        let msg = encrypt_with_password(b"x", "pw").unwrap();
        let pile = PacketPile::from_bytes(&msg).unwrap();
        let mut packets: Vec<Packet> = pile.into_children().collect();
        // 2^31 KiB of Argon2 memory: never allocated, the packet is skipped.
        let huge = S2K::Argon2 {
            salt: [0; 16],
            t: 1,
            p: 1,
            m: 31,
        };
        let esk: Box<[u8]> = vec![1u8; 33].into_boxed_slice();
        let skesk = SKESK4::new(SymmetricAlgorithm::AES256, huge, Some(esk)).unwrap();
        packets[0] = Packet::SKESK(SKESK::V4(skesk));
        let bytes = PacketPile::from(packets).to_vec().unwrap();
        let r = decrypt_with_password(&bytes, "pw");
        assert!(matches!(r, Err(OxError::WrongPassword)), "{r:?}");
    }
}
