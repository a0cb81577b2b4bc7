//! XEP-0300 (Use of Cryptographic Hash Functions in XMPP, 1.0.0): `<hash/>`, `<hash-used/>` and a hasher
//! that computes sha-256 and sha-1 together while a file streams through it.
//!
//! sha-256 is what the XEP asks for; sha-1 is computed too because Conversations verifies a sha-1
//! `<checksum/>`. Unknown algorithms are kept by name (their value as bytes) so that nothing is lost.

use base64::Engine;
use minidom::Element;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use xmpp_social::xml::BuilderExt;
use xmpp_social::ParseError;

/// `urn:xmpp:hashes:2`.
pub const NS_HASHES: &str = "urn:xmpp:hashes:2";
/// The text name of SHA-256.
pub const SHA_256: &str = "sha-256";
/// The text name of SHA-1.
pub const SHA_1: &str = "sha-1";

/// The longest digest accepted (SHA-512 and BLAKE2b-512 are 64 bytes; room for future ones).
pub const MAX_DIGEST_BYTES: usize = 256;
/// The longest algorithm name accepted.
const MAX_ALGO_CHARS: usize = 64;

/// A `<hash algo='...'>base64</hash>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Hash {
    /// The algorithm's text name (e.g. `sha-256`).
    pub algo: String,
    /// The digest.
    pub value: Vec<u8>,
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({}:{})", self.algo, self.to_base64())
    }
}

impl Hash {
    /// The digest in base64, as it is written in XML.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.value)
    }

    /// Parses a `<hash xmlns='urn:xmpp:hashes:2'/>`.
    pub fn from_element(el: &Element) -> Result<Hash, ParseError> {
        check(el, "hash")?;
        let algo = algo(el, "hash")?;
        let text: String = el
            .text()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if text.len() > MAX_DIGEST_BYTES * 2 {
            return Err(ParseError::TooLarge {
                element: "hash",
                size: text.len(),
                limit: MAX_DIGEST_BYTES * 2,
            });
        }
        let value = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| ParseError::InvalidValue {
                element: "hash",
                reason: format!("bad base64: {e}"),
            })?;
        if value.is_empty() {
            return Err(ParseError::InvalidValue {
                element: "hash",
                reason: "empty digest".into(),
            });
        }
        if let Some(len) = digest_len(&algo) {
            if value.len() != len {
                return Err(ParseError::InvalidValue {
                    element: "hash",
                    reason: format!("{algo} digest of {} bytes, expected {len}", value.len()),
                });
            }
        }
        Ok(Hash { algo, value })
    }

    /// The `<hash/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder("hash", NS_HASHES)
            .a("algo", self.algo.clone())
            .append(self.to_base64())
            .build()
    }
}

/// A `<hash-used algo='...'/>`: the algorithm the sender will use, announced before the transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashUsed {
    /// The algorithm's text name.
    pub algo: String,
}

impl HashUsed {
    /// Parses a `<hash-used xmlns='urn:xmpp:hashes:2'/>`.
    pub fn from_element(el: &Element) -> Result<HashUsed, ParseError> {
        check(el, "hash-used")?;
        Ok(HashUsed {
            algo: algo(el, "hash-used")?,
        })
    }

    /// The `<hash-used/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder("hash-used", NS_HASHES)
            .a("algo", self.algo.clone())
            .build()
    }
}

fn check(el: &Element, name: &'static str) -> Result<(), ParseError> {
    if el.is(name, NS_HASHES) {
        Ok(())
    } else {
        Err(ParseError::WrongElement {
            expected: format!("{{{NS_HASHES}}}{name}"),
            found: xmpp_social::xml::qname(el),
        })
    }
}

fn algo(el: &Element, element: &'static str) -> Result<String, ParseError> {
    let algo = el.attr("algo").ok_or(ParseError::MissingAttribute {
        element,
        attribute: "algo",
    })?;
    if algo.is_empty() || algo.chars().count() > MAX_ALGO_CHARS {
        return Err(ParseError::InvalidValue {
            element,
            reason: "algo is empty or too long".into(),
        });
    }
    Ok(algo.to_owned())
}

/// The digest length of the algorithms whose length we know.
fn digest_len(algo: &str) -> Option<usize> {
    match algo {
        SHA_1 => Some(20),
        "sha-224" | "sha3-224" => Some(28),
        SHA_256 | "sha3-256" | "blake2b-256" => Some(32),
        "sha-384" | "sha3-384" => Some(48),
        "sha-512" | "sha3-512" | "blake2b-512" => Some(64),
        _ => None,
    }
}

/// Computes sha-256 and sha-1 of a stream, fed block by block.
#[derive(Clone, Default)]
pub struct StreamHasher {
    sha256: Sha256,
    sha1: Sha1,
    bytes: u64,
}

impl std::fmt::Debug for StreamHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHasher")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl StreamHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.sha1.update(data);
        self.bytes = self.bytes.saturating_add(data.len() as u64);
    }

    /// How many bytes were fed.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digests: sha-256 first, then sha-1.
    pub fn finish(self) -> Vec<Hash> {
        vec![
            Hash {
                algo: SHA_256.into(),
                value: self.sha256.finalize().to_vec(),
            },
            Hash {
                algo: SHA_1.into(),
                value: self.sha1.finalize().to_vec(),
            },
        ]
    }
}

/// The outcome of comparing received hashes with computed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashCheck {
    /// At least one algorithm both sides know matched, and none mismatched. Names the strongest one.
    Verified(String),
    /// An algorithm both sides know gave different digests.
    Mismatch(String),
    /// No hash of a known algorithm was received (e.g. Dino sends none): nothing could be checked.
    Unverified,
}

impl HashCheck {
    /// Compares `expected` (received from the peer) with `computed`.
    pub fn compare(expected: &[Hash], computed: &[Hash]) -> HashCheck {
        let mut verified: Option<String> = None;
        for c in computed {
            for e in expected.iter().filter(|e| e.algo == c.algo) {
                if e.value != c.value {
                    return HashCheck::Mismatch(c.algo.clone());
                }
                if verified.is_none() {
                    verified = Some(c.algo.clone());
                }
            }
        }
        verified.map_or(HashCheck::Unverified, HashCheck::Verified)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hash_round_trip_and_known_values() {
        let el: Element =
            "<hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>w0mcJylzCn+AfvuGdqkty2+KP48=</hash>"
                .parse()
                .unwrap();
        let h = Hash::from_element(&el).unwrap();
        assert_eq!(h.algo, "sha-1");
        assert_eq!(h.value.len(), 20);
        assert_eq!(Hash::from_element(&h.to_element()).unwrap(), h);

        let mut s = StreamHasher::new();
        s.update(b"ab");
        s.update(b"c");
        let out = s.finish();
        assert_eq!(
            out[0].to_base64(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(out[1].to_base64(), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    }

    #[test]
    fn bad_hashes_are_errors() {
        for xml in [
            "<hash xmlns='urn:xmpp:hashes:2'>AAAA</hash>",
            "<hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>!!</hash>",
            "<hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>AAAA</hash>",
            "<hash xmlns='urn:xmpp:hashes:2' algo='sha-1'></hash>",
            "<hash xmlns='urn:xmpp:hashes:1' algo='sha-1'>AAAA</hash>",
        ] {
            let el: Element = xml.parse().unwrap();
            assert!(Hash::from_element(&el).is_err(), "{xml}");
        }
        let long = format!(
            "<hash xmlns='urn:xmpp:hashes:2' algo='x'>{}</hash>",
            "A".repeat(10_000)
        );
        assert!(Hash::from_element(&long.parse().unwrap()).is_err());
    }

    #[test]
    fn compare() {
        let mut s = StreamHasher::new();
        s.update(b"x");
        let c = s.finish();
        assert_eq!(HashCheck::compare(&[], &c), HashCheck::Unverified);
        assert_eq!(
            HashCheck::compare(&c[1..], &c),
            HashCheck::Verified("sha-1".into())
        );
        let mut bad = c.clone();
        bad[0].value[0] ^= 1;
        assert_eq!(
            HashCheck::compare(&bad, &c),
            HashCheck::Mismatch("sha-256".into())
        );
        let other = vec![Hash {
            algo: "blake3".into(),
            value: vec![1; 32],
        }];
        assert_eq!(HashCheck::compare(&other, &c), HashCheck::Unverified);
    }
}
