//! XEP-0454 `aesgcm://` URLs and the file layout they point to (AES-256-GCM ciphertext followed by its
//! 16-byte tag), with blocking stream helpers that never hold the file in memory.
//!
//! Sans-IO except for the `std::io` helpers [`encrypt_stream`] and [`decrypt_to_file`], which work on any
//! reader/writer. Decryption writes to a temporary file next to the target and renames it into place
//! only once the tag has verified; on any error the temporary file is removed.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use super::error::{FileCryptoError, UrlError};
use super::gcm::{Encryptor, FileKey, TrailingTagDecryptor, TAG_LEN};

/// Longest `aesgcm://` URL accepted.
pub const MAX_URL_LEN: usize = 8 * 1024;

/// Size of the buffer the stream helpers read into.
pub const IO_CHUNK: usize = 256 * 1024;

/// A parsed `aesgcm://host/path#<iv hex><key hex>` URL.
///
/// Its `Display` form is the URL itself, key included (that is what gets sent to the recipient);
/// its `Debug` form hides the IV and key.
#[derive(Clone, PartialEq, Eq)]
pub struct AesgcmUrl {
    /// `host[:port]/path[?query]`, without scheme and fragment.
    location: String,
    iv: Vec<u8>,
    key: [u8; 32],
}

impl AesgcmUrl {
    /// Builds the URL of a file uploaded to `https_url` (which must start with `https://` and have no
    /// fragment) encrypted with `key` and `iv` (12 or 16 bytes).
    pub fn from_https(https_url: &str, iv: &[u8], key: &[u8]) -> Result<Self, UrlError> {
        let rest = strip_prefix_ci(https_url, "https://").ok_or(UrlError::NotHttps)?;
        Self::from_location(rest, iv, key)
    }

    /// Builds the URL from a `host/path` location (no scheme, no fragment), IV and key.
    pub fn from_location(location: &str, iv: &[u8], key: &[u8]) -> Result<Self, UrlError> {
        if iv.len() != 12 && iv.len() != 16 {
            return Err(UrlError::IvLength(iv.len()));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| UrlError::KeyLength(key.len()))?;
        if location.len() + 9 + 97 > MAX_URL_LEN {
            return Err(UrlError::TooLong(MAX_URL_LEN));
        }
        check_location(location)?;
        Ok(AesgcmUrl {
            location: location.to_owned(),
            iv: iv.to_vec(),
            key,
        })
    }

    /// `host[:port]/path[?query]`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The host (with port, if any).
    pub fn host(&self) -> &str {
        host_of(&self.location)
    }

    /// The `https://` URL to download the ciphertext from.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.location)
    }

    /// The IV (12 bytes, or 16 for the legacy form).
    pub fn iv(&self) -> &[u8] {
        &self.iv
    }

    /// The AES-256 key.
    pub fn key(&self) -> FileKey {
        FileKey::Aes256(self.key)
    }
}

impl fmt::Debug for AesgcmUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesgcmUrl")
            .field("location", &self.location)
            .field("iv_len", &self.iv.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AesgcmUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("aesgcm://")?;
        f.write_str(&self.location)?;
        f.write_str("#")?;
        for b in self.iv.iter().chain(self.key.iter()) {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for AesgcmUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, UrlError> {
        if s.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong(MAX_URL_LEN));
        }
        let rest = strip_prefix_ci(s, "aesgcm://").ok_or(UrlError::Scheme)?;
        let (location, fragment) = rest.split_once('#').ok_or(UrlError::NoFragment)?;
        check_location(location)?;
        let iv_len = match fragment.len() {
            88 => 12,
            96 => 16,
            n => {
                if fragment
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(UrlError::BadCharacter);
                }
                return Err(UrlError::FragmentLength(n));
            }
        };
        let mut bytes = [0u8; 48];
        let raw = fragment.as_bytes();
        for (i, out) in bytes.iter_mut().take(fragment.len() / 2).enumerate() {
            let hi = hex_val(raw[2 * i]).ok_or(UrlError::NotHex(2 * i))?;
            let lo = hex_val(raw[2 * i + 1]).ok_or(UrlError::NotHex(2 * i + 1))?;
            *out = (hi << 4) | lo;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[iv_len..iv_len + 32]);
        Ok(AesgcmUrl {
            location: location.to_owned(),
            iv: bytes[..iv_len].to_vec(),
            key,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn host_of(location: &str) -> &str {
    let end = location.find(['/', '?']).unwrap_or(location.len());
    &location[..end]
}

fn check_location(location: &str) -> Result<(), UrlError> {
    if location
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        return Err(UrlError::BadCharacter);
    }
    if host_of(location).is_empty() {
        return Err(UrlError::NoHost);
    }
    Ok(())
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A fresh random 12-byte IV.
pub fn random_iv() -> [u8; 12] {
    super::random_bytes()
}

/// Size of the `aesgcm://` ciphertext of a `plaintext_len`-byte file (tag appended).
pub fn encrypted_len(plaintext_len: u64) -> u64 {
    plaintext_len + TAG_LEN as u64
}

/// Encrypts everything `reader` yields into `writer` (ciphertext then the 16-byte tag), in constant
/// memory. `progress` is called with the number of plaintext bytes done so far. Returns the number of
/// plaintext bytes.
pub fn encrypt_stream<R: Read, W: Write>(
    key: &FileKey,
    iv: &[u8],
    mut reader: R,
    mut writer: W,
    mut progress: impl FnMut(u64),
) -> Result<u64, FileCryptoError> {
    let mut enc = Encryptor::new(key, iv)?;
    let mut buf = vec![0u8; IO_CHUNK];
    loop {
        let n = read_some(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        enc.update(&mut buf[..n])?;
        writer.write_all(&buf[..n])?;
        progress(enc.len());
    }
    let len = enc.len();
    writer.write_all(&enc.finish())?;
    writer.flush()?;
    Ok(len)
}

/// Decrypts an `aesgcm://`-layout stream (ciphertext then tag) into the file at `target`.
///
/// The plaintext goes to a temporary file in `target`'s directory, which is renamed to `target` only
/// after the tag has verified; on any error (tag mismatch, truncation, I/O, more than `max_len`
/// ciphertext bytes) it is deleted and `target` is left untouched. Returns the plaintext length.
pub fn decrypt_to_file<R: Read>(
    key: &FileKey,
    iv: &[u8],
    mut reader: R,
    target: &Path,
    max_len: Option<u64>,
    mut progress: impl FnMut(u64),
) -> Result<u64, FileCryptoError> {
    let mut dec = TrailingTagDecryptor::new(key, iv)?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".xmpp-e2ee-download-")
        .suffix(".part")
        .tempfile_in(dir)?;
    let mut buf = vec![0u8; IO_CHUNK];
    let mut read_total: u64 = 0;
    loop {
        let n = read_some(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        read_total += n as u64;
        if let Some(limit) = max_len {
            if read_total > limit {
                return Err(FileCryptoError::SizeLimit { limit });
            }
        }
        let out = dec.update(&mut buf[..n])?;
        tmp.write_all(&buf[..out])?;
        progress(dec.len());
    }
    let len = dec.len();
    dec.finish()?;
    tmp.as_file().sync_all()?;
    tmp.persist(target)
        .map_err(|e| FileCryptoError::Io(e.error))?;
    Ok(len)
}

fn read_some<R: Read>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    // Fill as much as possible so that chunks are big (fewer, larger cipher calls).
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn url_round_trip_both_iv_lengths() {
        for iv_len in [12usize, 16] {
            let iv: Vec<u8> = (0..iv_len as u8).collect();
            let key: Vec<u8> = (100..132).collect();
            let u = AesgcmUrl::from_https("https://upload.example.org/a/b%20c.jpg?x=1", &iv, &key)
                .unwrap();
            let s = u.to_string();
            assert_eq!(s.split('#').nth(1).unwrap().len(), 2 * (iv_len + 32));
            let back: AesgcmUrl = s.parse().unwrap();
            assert_eq!(back, u);
            assert_eq!(back.host(), "upload.example.org");
            assert_eq!(
                back.https_url(),
                "https://upload.example.org/a/b%20c.jpg?x=1"
            );
            assert_eq!(back.iv(), &iv[..]);
            assert!(!format!("{back:?}").contains("6465")); // key bytes 100,101 never in Debug
        }
    }

    #[test]
    fn url_errors() {
        let frag = "00".repeat(44);
        assert_eq!("https://x/y".parse::<AesgcmUrl>(), Err(UrlError::Scheme));
        assert_eq!(
            "aesgcm://x/y".parse::<AesgcmUrl>(),
            Err(UrlError::NoFragment)
        );
        assert_eq!(
            format!("aesgcm:///y#{frag}").parse::<AesgcmUrl>(),
            Err(UrlError::NoHost)
        );
        assert_eq!(
            format!("aesgcm://x/y#{frag}00").parse::<AesgcmUrl>(),
            Err(UrlError::FragmentLength(90))
        );
        assert_eq!(
            format!("aesgcm://x/y#{}zz", "00".repeat(43)).parse::<AesgcmUrl>(),
            Err(UrlError::NotHex(86))
        );
        assert_eq!(
            format!("aesgcm://x/a b#{frag}").parse::<AesgcmUrl>(),
            Err(UrlError::BadCharacter)
        );
        assert_eq!(
            format!("aesgcm://x/y#{}é", "00".repeat(43)).parse::<AesgcmUrl>(),
            Err(UrlError::NotHex(86))
        );
        let long = format!("aesgcm://x/{}#{frag}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            long.parse::<AesgcmUrl>(),
            Err(UrlError::TooLong(MAX_URL_LEN))
        );
        assert_eq!(
            AesgcmUrl::from_https("http://x/y", &[0; 12], &[0; 32]),
            Err(UrlError::NotHttps)
        );
        assert_eq!(
            AesgcmUrl::from_https("https://x/y", &[0; 13], &[0; 32]),
            Err(UrlError::IvLength(13))
        );
        assert_eq!(
            AesgcmUrl::from_https("https://x/y", &[0; 12], &[0; 16]),
            Err(UrlError::KeyLength(16))
        );
        // Upper-case scheme and hex are accepted.
        let u: AesgcmUrl = format!("AESGCM://x/y#{}", "AB".repeat(44)).parse().unwrap();
        assert_eq!(u.iv(), &[0xab; 12]);
    }
}
