//! Payload encryption: the message content is encrypted with a fresh key, and that key (plus the
//! authentication tag) is what the ratchet transports to each device ("key material").
//!
//! * OMEMO:2: 32-byte random key, `HKDF-SHA-256(zero salt, key, "OMEMO Payload", 80)` = AES-256 key,
//!   HMAC key, IV; AES-256-CBC/PKCS#7; tag = HMAC-SHA-256(ciphertext)[..16]; key material = key || tag.
//!   An empty (key-transport) message carries 32 zero bytes.
//! * Legacy: AES-128-GCM with a 12-byte IV sent in `<iv>` (16-byte IVs of old clients are accepted on
//!   decryption); key material = key (16) || GCM tag (16).

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, AesGcm};

use super::crypto::{aes256_cbc_decrypt, aes256_cbc_encrypt, ct_eq, hkdf, hmac, random};
use super::error::OmemoError;
use super::profile::Profile;
use super::Result;

type Aes128Gcm16 = AesGcm<aes::Aes128, U16>;

/// The secret the ratchet transports for one message.
pub type KeyMaterial = Vec<u8>;

/// The encrypted content of a message (`<payload>`, and for legacy the `<iv>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedPayload {
    /// The ciphertext (legacy: without the GCM tag, which travels in the key material).
    pub ciphertext: Vec<u8>,
    /// Legacy only: the AES-GCM IV.
    pub iv: Option<Vec<u8>>,
}

fn payload_keys(key: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let out: [u8; 80] = hkdf(&[0u8; 32], key, b"OMEMO Payload");
    let mut enc = [0u8; 32];
    let mut auth = [0u8; 32];
    let mut iv = [0u8; 16];
    enc.copy_from_slice(&out[..32]);
    auth.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (enc, auth, iv)
}

/// Encrypts `plaintext` (OMEMO:2: the XEP-0420 envelope; legacy: the body text).
pub fn encrypt(profile: Profile, plaintext: &[u8]) -> (KeyMaterial, EncryptedPayload) {
    match profile {
        Profile::Omemo2 => {
            let key: [u8; 32] = random();
            let (enc, auth, iv) = payload_keys(&key);
            let ciphertext = aes256_cbc_encrypt(&enc, &iv, plaintext);
            let tag = hmac(&auth, &[&ciphertext]);
            let mut material = key.to_vec();
            material.extend_from_slice(&tag[..16]);
            (
                material,
                EncryptedPayload {
                    ciphertext,
                    iv: None,
                },
            )
        }
        Profile::Legacy => {
            let key: [u8; 16] = random();
            let iv: [u8; 12] = random();
            let cipher = Aes128Gcm::new((&key).into());
            let sealed = cipher
                .encrypt((&iv).into(), plaintext)
                .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a bounded message"));
            let (ct, tag) = sealed.split_at(sealed.len() - 16);
            let mut material = key.to_vec();
            material.extend_from_slice(tag);
            (
                material,
                EncryptedPayload {
                    ciphertext: ct.to_vec(),
                    iv: Some(iv.to_vec()),
                },
            )
        }
    }
}

/// Key material of an empty (key-transport, heartbeat) message.
pub fn empty_key_material(profile: Profile) -> KeyMaterial {
    match profile {
        Profile::Omemo2 => vec![0u8; 32],
        Profile::Legacy => random::<32>().to_vec(),
    }
}

/// Decrypts a payload with the key material the ratchet delivered.
pub fn decrypt(
    profile: Profile,
    key_material: &[u8],
    payload: &EncryptedPayload,
) -> Result<Vec<u8>> {
    match profile {
        Profile::Omemo2 => {
            if key_material.len() != 48 {
                return Err(OmemoError::InvalidKeyMaterial(key_material.len()));
            }
            let (key, tag) = key_material.split_at(32);
            let (enc, auth, iv) = payload_keys(key);
            let expected = hmac(&auth, &[&payload.ciphertext]);
            if !ct_eq(&expected[..16], tag) {
                return Err(OmemoError::BadMac);
            }
            aes256_cbc_decrypt(&enc, &iv, &payload.ciphertext)
        }
        Profile::Legacy => {
            if key_material.len() != 32 {
                return Err(OmemoError::InvalidKeyMaterial(key_material.len()));
            }
            let (key, tag) = key_material.split_at(16);
            let mut sealed = payload.ciphertext.clone();
            sealed.extend_from_slice(tag);
            let key: &[u8; 16] = key
                .try_into()
                .map_err(|_| OmemoError::InvalidKeyMaterial(key_material.len()))?;
            let iv = payload.iv.as_deref().unwrap_or_default();
            let opened = match iv.len() {
                12 => {
                    let iv: &[u8; 12] = iv
                        .try_into()
                        .map_err(|_| OmemoError::DecryptionFailed("bad IV"))?;
                    Aes128Gcm::new(key.into()).decrypt(iv.into(), sealed.as_slice())
                }
                16 => {
                    let iv: &[u8; 16] = iv
                        .try_into()
                        .map_err(|_| OmemoError::DecryptionFailed("bad IV"))?;
                    Aes128Gcm16::new(key.into()).decrypt(iv.into(), sealed.as_slice())
                }
                _ => return Err(OmemoError::DecryptionFailed("IV must be 12 or 16 bytes")),
            };
            opened.map_err(|_| OmemoError::DecryptionFailed("AES-GCM tag mismatch"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        for p in [Profile::Omemo2, Profile::Legacy] {
            for len in [0usize, 1, 15, 16, 17, 1000] {
                let pt = vec![0x61; len];
                let (km, ct) = encrypt(p, &pt);
                assert_eq!(decrypt(p, &km, &ct), Ok(pt.clone()));
                let mut bad = ct.clone();
                match bad.ciphertext.first_mut() {
                    Some(b) => *b ^= 1,
                    None => bad.ciphertext.push(0),
                }
                assert!(decrypt(p, &km, &bad).is_err());
                assert!(decrypt(p, &km[1..], &ct).is_err());
            }
        }
    }
}
