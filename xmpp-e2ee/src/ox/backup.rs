//! Secret key backup (XEP-0373 §5): a 24-character backup code in groups of four, and the
//! transferable secret keys symmetrically encrypted with it.

use std::fmt;

use rand::Rng;

use super::error::OxError;
use super::pgp::{self, SecretKey};
use super::xml::SecretKeyBackup;

/// The alphabet of backup codes: digits and upper-case Latin letters without `0` and `O`.
pub const BACKUP_ALPHABET: &[u8] = b"123456789ABCDEFGHIJKLMNPQRSTUVWXYZ";

/// A backup code, e.g. `TWNK-KD5Y-MT3T-E1GS-DRDB-KVTW`. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupCode(String);

impl fmt::Debug for BackupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCode(..)")
    }
}

impl BackupCode {
    /// A new code from the operating system's secure random generator.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut s = String::with_capacity(29);
        for i in 0..24 {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(char::from(
                BACKUP_ALPHABET[rng.random_range(0..BACKUP_ALPHABET.len())],
            ));
        }
        BackupCode(s)
    }

    /// Reads a code as a user typed it: surrounding whitespace is ignored, lower case is accepted,
    /// the dashes may be omitted; anything else is [`OxError::BadBackupCode`].
    pub fn parse(text: &str) -> Result<Self, OxError> {
        let chars: Vec<u8> = text
            .trim()
            .bytes()
            .filter(|b| *b != b'-')
            .map(|b| b.to_ascii_uppercase())
            .collect();
        if chars.len() != 24 || !chars.iter().all(|c| BACKUP_ALPHABET.contains(c)) {
            return Err(OxError::BadBackupCode);
        }
        let mut s = String::with_capacity(29);
        for (i, c) in chars.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push('-');
            }
            s.push(char::from(*c));
        }
        Ok(BackupCode(s))
    }

    /// The code with its dashes (29 characters): the password of the backup.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Encrypts the transferable secret keys (concatenated, secret material unencrypted in the packets,
/// i.e. string-to-key usage 0) with the backup code, as XEP-0373 §5.4 says.
pub fn encrypt_backup(keys: &[&SecretKey], code: &BackupCode) -> Result<SecretKeyBackup, OxError> {
    let mut tsks = Vec::new();
    for k in keys {
        tsks.extend(k.to_bytes()?);
    }
    Ok(SecretKeyBackup {
        message: pgp::encrypt_with_password(&tsks, code.as_str())?,
    })
}

/// Decrypts a backup with its code: [`OxError::WrongPassword`] for a wrong code.
pub fn decrypt_backup(
    backup: &SecretKeyBackup,
    code: &BackupCode,
) -> Result<Vec<SecretKey>, OxError> {
    let tsks = pgp::decrypt_with_password(&backup.message, code.as_str())?;
    pgp::secret_keys_from_bytes(&tsks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_xep_form() {
        for _ in 0..50 {
            let code = BackupCode::generate();
            let s = code.as_str();
            assert_eq!(s.len(), 29);
            for (i, b) in s.bytes().enumerate() {
                if i % 5 == 4 {
                    assert_eq!(b, b'-');
                } else {
                    assert!(BACKUP_ALPHABET.contains(&b), "{s}");
                }
            }
            assert_eq!(BackupCode::parse(s).ok(), Some(code.clone()));
            assert_eq!(
                BackupCode::parse(&s.replace('-', "").to_lowercase()).ok(),
                Some(code)
            );
        }
        assert!(BackupCode::parse("TWNK-KD5Y-MT3T-E1GS-DRDB-KVTW").is_ok());
        assert!(BackupCode::parse("TWNK-KD5Y-MT3T-E1GS-DRDB-KVT0").is_err());
        assert!(BackupCode::parse("TWNK-KD5Y-MT3T-E1GS-DRDB").is_err());
        assert!(BackupCode::parse("").is_err());
        assert_eq!(format!("{:?}", BackupCode::generate()), "BackupCode(..)");
    }
}
