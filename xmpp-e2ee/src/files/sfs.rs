//! XEP-0447 Stateless File Sharing (`<file-sharing/>`, `<sources/>`) with XEP-0103 `<url-data/>` sources,
//! XEP-0448 encrypted sources (`<encrypted cipher=...>` with key, IV, hashes and inner sources), XEP-0446
//! file metadata and XEP-0300 hashes. Sans-IO: minidom elements in, typed values out, and back.
//!
//! Every parser bounds what it accepts (counts of children, lengths of values, nesting: an encrypted
//! source may not contain another encrypted source) and returns [`SfsError`] otherwise. Unknown children
//! of `<file/>` and unknown sources are kept as elements so that re-serialising loses nothing.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use minidom::Element;
use sha2::{Digest, Sha256};
use xmpp_social::xml::{parse_bounded, qname, BuilderExt};

use super::error::SfsError;
use super::gcm::FileKey;
use super::Cipher;

/// `urn:xmpp:sfs:0` (XEP-0447).
pub const NS_SFS: &str = "urn:xmpp:sfs:0";
/// `urn:xmpp:esfs:0` (XEP-0448).
pub const NS_ESFS: &str = "urn:xmpp:esfs:0";
/// `urn:xmpp:file:metadata:0` (XEP-0446).
pub const NS_FILE_METADATA: &str = "urn:xmpp:file:metadata:0";
/// `urn:xmpp:hashes:2` (XEP-0300).
pub const NS_HASHES: &str = "urn:xmpp:hashes:2";
/// `http://jabber.org/protocol/url-data` (XEP-0103).
pub const NS_URL_DATA: &str = "http://jabber.org/protocol/url-data";

/// Most sources in one `<sources/>`.
pub const MAX_SOURCES: usize = 32;
/// Most hashes on one element.
pub const MAX_HASHES: usize = 16;
/// Most unknown children of `<file/>` kept.
pub const MAX_EXTRA: usize = 32;
/// Longest text value (name, description, media type, URL) in bytes.
pub const MAX_TEXT: usize = 8 * 1024;
/// Longest key or IV in bytes (decoded).
pub const MAX_KEY_MATERIAL: usize = 64;
/// Longest hash value in bytes (decoded).
pub const MAX_HASH_LEN: usize = 128;
/// Largest XML text [`FileSharing::parse_str`] accepts.
pub const MAX_XML: usize = 256 * 1024;

/// A XEP-0300 hash: algorithm name and raw digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash {
    /// Algorithm (`sha-256`, `sha3-256`, `id-blake2b256`...).
    pub algo: String,
    /// The digest bytes (base64 on the wire).
    pub value: Vec<u8>,
}

impl Hash {
    /// The `sha-256` hash of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Hash {
            algo: "sha-256".into(),
            value: Sha256::digest(data).to_vec(),
        }
    }

    /// Parses `<hash xmlns='urn:xmpp:hashes:2' algo='...'>base64</hash>`.
    pub fn from_element(el: &Element) -> Result<Self, SfsError> {
        expect(el, NS_HASHES, "hash")?;
        let algo = el.attr("algo").ok_or(SfsError::Missing {
            element: "hash",
            what: "algo",
        })?;
        bounded_text(algo, "hash", "algo")?;
        let text = el.text();
        if text.len() > MAX_HASH_LEN * 2 {
            return Err(SfsError::TooLarge {
                element: "hash",
                what: "value",
            });
        }
        let value = B64.decode(text.trim()).map_err(|_| SfsError::Invalid {
            element: "hash",
            what: "base64 value",
        })?;
        if value.is_empty() {
            return Err(SfsError::Invalid {
                element: "hash",
                what: "empty value",
            });
        }
        Ok(Hash {
            algo: algo.to_owned(),
            value,
        })
    }

    /// The `<hash/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder("hash", NS_HASHES)
            .a("algo", self.algo.clone())
            .append(B64.encode(&self.value))
            .build()
    }
}

/// XEP-0446 file metadata (`<file xmlns='urn:xmpp:file:metadata:0'/>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileMetadata {
    /// `<media-type/>`.
    pub media_type: Option<String>,
    /// `<name/>`.
    pub name: Option<String>,
    /// `<size/>` in bytes (of the plaintext file, for encrypted sharing).
    pub size: Option<u64>,
    /// `<width/>` in pixels.
    pub width: Option<u32>,
    /// `<height/>` in pixels.
    pub height: Option<u32>,
    /// `<desc/>`.
    pub desc: Option<String>,
    /// `<date/>` (kept as text, XEP-0082).
    pub date: Option<String>,
    /// `<hash/>` elements (XEP-0300).
    pub hashes: Vec<Hash>,
    /// Other children (`<thumbnail/>`, `<dimension/>`, ...), kept in order.
    pub extra: Vec<Element>,
}

impl FileMetadata {
    /// Metadata for a file with its name, media type, size and sha-256 hash.
    pub fn new(name: &str, media_type: &str, size: u64, sha256: Vec<u8>) -> Self {
        FileMetadata {
            name: Some(name.to_owned()),
            media_type: Some(media_type.to_owned()),
            size: Some(size),
            hashes: vec![Hash {
                algo: "sha-256".into(),
                value: sha256,
            }],
            ..Default::default()
        }
    }

    /// Parses `<file xmlns='urn:xmpp:file:metadata:0'/>`.
    pub fn from_element(el: &Element) -> Result<Self, SfsError> {
        expect(el, NS_FILE_METADATA, "file")?;
        let mut m = FileMetadata::default();
        for c in el.children() {
            if c.ns() == NS_FILE_METADATA {
                let text = || bounded_text(&c.text(), "file", "text value").map(|t| t.to_owned());
                match c.name() {
                    "media-type" => set_once(&mut m.media_type, text()?, "media-type")?,
                    "name" => set_once(&mut m.name, text()?, "name")?,
                    "desc" => set_once(&mut m.desc, text()?, "desc")?,
                    "date" => set_once(&mut m.date, text()?, "date")?,
                    "size" => set_once(&mut m.size, number(&c.text(), "size")?, "size")?,
                    "width" => set_once(&mut m.width, number(&c.text(), "width")?, "width")?,
                    "height" => set_once(&mut m.height, number(&c.text(), "height")?, "height")?,
                    _ => push_extra(&mut m.extra, c)?,
                }
            } else if c.is("hash", NS_HASHES) {
                if m.hashes.len() >= MAX_HASHES {
                    return Err(SfsError::TooLarge {
                        element: "file",
                        what: "hashes",
                    });
                }
                m.hashes.push(Hash::from_element(c)?);
            } else {
                push_extra(&mut m.extra, c)?;
            }
        }
        Ok(m)
    }

    /// The `<file/>` element.
    pub fn to_element(&self) -> Element {
        let text =
            |name: &str, v: String| Element::builder(name, NS_FILE_METADATA).append(v).build();
        let mut b = Element::builder("file", NS_FILE_METADATA);
        if let Some(v) = &self.media_type {
            b = b.append(text("media-type", v.clone()));
        }
        if let Some(v) = &self.name {
            b = b.append(text("name", v.clone()));
        }
        if let Some(v) = self.size {
            b = b.append(text("size", v.to_string()));
        }
        if let Some(v) = self.width {
            b = b.append(text("width", v.to_string()));
        }
        if let Some(v) = self.height {
            b = b.append(text("height", v.to_string()));
        }
        if let Some(v) = &self.date {
            b = b.append(text("date", v.clone()));
        }
        for h in &self.hashes {
            b = b.append(h.to_element());
        }
        if let Some(v) = &self.desc {
            b = b.append(text("desc", v.clone()));
        }
        for e in &self.extra {
            b = b.append(e.clone());
        }
        b.build()
    }

    /// The sha-256 hash, if one is given.
    pub fn sha256(&self) -> Option<&[u8]> {
        self.hashes
            .iter()
            .find(|h| h.algo == "sha-256")
            .map(|h| h.value.as_slice())
    }
}

/// One way to obtain a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// XEP-0103 `<url-data target=.../>`.
    Url(String),
    /// XEP-0448 `<encrypted/>` source.
    Encrypted(EncryptedSource),
    /// Any other source (Jingle, ...), kept as is.
    Other(Element),
}

impl Source {
    fn from_element(el: &Element, allow_encrypted: bool) -> Result<Self, SfsError> {
        if el.is("url-data", NS_URL_DATA) {
            let target = el.attr("target").ok_or(SfsError::Missing {
                element: "url-data",
                what: "target",
            })?;
            let target = bounded_text(target, "url-data", "target")?;
            if target.is_empty() {
                return Err(SfsError::Invalid {
                    element: "url-data",
                    what: "empty target",
                });
            }
            Ok(Source::Url(target.to_owned()))
        } else if el.is("encrypted", NS_ESFS) {
            if !allow_encrypted {
                return Err(SfsError::Invalid {
                    element: "encrypted",
                    what: "nesting (encrypted source inside an encrypted source)",
                });
            }
            EncryptedSource::from_element(el).map(Source::Encrypted)
        } else {
            check_extra_size(el)?;
            Ok(Source::Other(el.clone()))
        }
    }

    fn to_element(&self) -> Element {
        match self {
            Source::Url(u) => Element::builder("url-data", NS_URL_DATA)
                .a("target", u.clone())
                .build(),
            Source::Encrypted(e) => e.to_element(),
            Source::Other(e) => e.clone(),
        }
    }
}

fn parse_sources(el: &Element, allow_encrypted: bool) -> Result<Vec<Source>, SfsError> {
    expect(el, NS_SFS, "sources")?;
    let mut out = Vec::new();
    for c in el.children() {
        if out.len() >= MAX_SOURCES {
            return Err(SfsError::TooLarge {
                element: "sources",
                what: "sources",
            });
        }
        out.push(Source::from_element(c, allow_encrypted)?);
    }
    Ok(out)
}

fn sources_element(id: Option<&str>, sources: &[Source]) -> Element {
    let mut b = Element::builder("sources", NS_SFS).a_opt("id", id.map(str::to_owned));
    for s in sources {
        b = b.append(s.to_element());
    }
    b.build()
}

/// XEP-0448 `<encrypted/>` source: cipher, key, IV, hashes of the ciphertext and where to get it.
///
/// `Debug` does not show the key or IV.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedSource {
    /// The cipher URN as sent (see [`EncryptedSource::cipher`]).
    pub cipher_urn: String,
    /// Key bytes (base64 on the wire).
    pub key: Vec<u8>,
    /// IV bytes (base64 on the wire).
    pub iv: Vec<u8>,
    /// Hashes of the encrypted file.
    pub hashes: Vec<Hash>,
    /// Where to get the encrypted file (no further `<encrypted/>` inside).
    pub sources: Vec<Source>,
}

impl std::fmt::Debug for EncryptedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedSource")
            .field("cipher_urn", &self.cipher_urn)
            .field("key", &"<redacted>")
            .field("iv_len", &self.iv.len())
            .field("hashes", &self.hashes)
            .field("sources", &self.sources)
            .finish()
    }
}

impl EncryptedSource {
    /// An encrypted source for a file at `url`.
    pub fn new(cipher: Cipher, key: &FileKey, iv: &[u8], url: &str) -> Self {
        EncryptedSource {
            cipher_urn: cipher.urn().to_owned(),
            key: key.as_bytes().to_vec(),
            iv: iv.to_vec(),
            hashes: Vec::new(),
            sources: vec![Source::Url(url.to_owned())],
        }
    }

    /// The cipher, if it is one XEP-0448 lists (also in its form without `:0`, which deployed JET
    /// implementations send).
    pub fn cipher(&self) -> Option<Cipher> {
        Cipher::from_urn(&self.cipher_urn)
    }

    /// The key as a [`FileKey`], checked against the cipher's key size.
    pub fn file_key(&self) -> Result<FileKey, SfsError> {
        let bad = SfsError::Invalid {
            element: "encrypted",
            what: "key length for the cipher",
        };
        let key = FileKey::from_slice(&self.key).map_err(|_| bad.clone())?;
        match (self.cipher(), &key) {
            (Some(Cipher::Aes128GcmNoPadding), FileKey::Aes128(_))
            | (Some(Cipher::Aes256GcmNoPadding), FileKey::Aes256(_))
            | (Some(Cipher::Aes256CbcPkcs7), FileKey::Aes256(_)) => Ok(key),
            (None, _) => Err(SfsError::Invalid {
                element: "encrypted",
                what: "cipher (unknown)",
            }),
            _ => Err(bad),
        }
    }

    /// The URLs among the inner sources.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().filter_map(|s| match s {
            Source::Url(u) => Some(u.as_str()),
            _ => None,
        })
    }

    /// Parses `<encrypted xmlns='urn:xmpp:esfs:0'/>`.
    pub fn from_element(el: &Element) -> Result<Self, SfsError> {
        expect(el, NS_ESFS, "encrypted")?;
        let cipher_urn = el.attr("cipher").ok_or(SfsError::Missing {
            element: "encrypted",
            what: "cipher",
        })?;
        bounded_text(cipher_urn, "encrypted", "cipher")?;
        let mut key = None;
        let mut iv = None;
        let mut hashes = Vec::new();
        let mut sources = None;
        for c in el.children() {
            if c.is("key", NS_ESFS) {
                set_once(&mut key, key_material(c, "key")?, "key")?;
            } else if c.is("iv", NS_ESFS) {
                set_once(&mut iv, key_material(c, "iv")?, "iv")?;
            } else if c.is("hash", NS_HASHES) {
                if hashes.len() >= MAX_HASHES {
                    return Err(SfsError::TooLarge {
                        element: "encrypted",
                        what: "hashes",
                    });
                }
                hashes.push(Hash::from_element(c)?);
            } else if c.is("sources", NS_SFS) {
                set_once(&mut sources, parse_sources(c, false)?, "sources")?;
            }
            // Other children are ignored (extensibility).
        }
        Ok(EncryptedSource {
            cipher_urn: cipher_urn.to_owned(),
            key: key.ok_or(SfsError::Missing {
                element: "encrypted",
                what: "<key/>",
            })?,
            iv: iv.ok_or(SfsError::Missing {
                element: "encrypted",
                what: "<iv/>",
            })?,
            hashes,
            sources: sources.ok_or(SfsError::Missing {
                element: "encrypted",
                what: "<sources/>",
            })?,
        })
    }

    /// The `<encrypted/>` element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("encrypted", NS_ESFS)
            .a("cipher", self.cipher_urn.clone())
            .append(
                Element::builder("key", NS_ESFS)
                    .append(B64.encode(&self.key))
                    .build(),
            )
            .append(
                Element::builder("iv", NS_ESFS)
                    .append(B64.encode(&self.iv))
                    .build(),
            );
        for h in &self.hashes {
            b = b.append(h.to_element());
        }
        b.append(sources_element(None, &self.sources)).build()
    }
}

/// XEP-0447 `<file-sharing/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSharing {
    /// `disposition` (`inline` or `attachment`).
    pub disposition: Option<String>,
    /// `id`, used to attach sources later.
    pub id: Option<String>,
    /// The file metadata.
    pub file: FileMetadata,
    /// The sources; `None` when no `<sources/>` element is present (sources attached later).
    pub sources: Option<Vec<Source>>,
}

impl FileSharing {
    /// Parses `<file-sharing xmlns='urn:xmpp:sfs:0'/>`.
    pub fn from_element(el: &Element) -> Result<Self, SfsError> {
        expect(el, NS_SFS, "file-sharing")?;
        let mut file = None;
        let mut sources = None;
        for c in el.children() {
            if c.is("file", NS_FILE_METADATA) {
                set_once(&mut file, FileMetadata::from_element(c)?, "file")?;
            } else if c.is("sources", NS_SFS) {
                set_once(&mut sources, parse_sources(c, true)?, "sources")?;
            }
        }
        let opt = |name: &'static str| -> Result<Option<String>, SfsError> {
            el.attr(name)
                .map(|v| bounded_text(v, "file-sharing", name).map(str::to_owned))
                .transpose()
        };
        Ok(FileSharing {
            disposition: opt("disposition")?,
            id: opt("id")?,
            file: file.ok_or(SfsError::Missing {
                element: "file-sharing",
                what: "<file/>",
            })?,
            sources,
        })
    }

    /// Parses XML text (bounded to [`MAX_XML`] bytes).
    pub fn parse_str(xml: &str) -> Result<Self, SfsError> {
        let el = parse_bounded(xml, MAX_XML).map_err(|e| SfsError::Xml(e.to_string()))?;
        Self::from_element(&el)
    }

    /// The `<file-sharing/>` element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("file-sharing", NS_SFS)
            .a_opt("disposition", self.disposition.clone())
            .a_opt("id", self.id.clone())
            .append(self.file.to_element());
        if let Some(s) = &self.sources {
            b = b.append(sources_element(None, s));
        }
        b.build()
    }

    /// The encrypted sources.
    pub fn encrypted_sources(&self) -> impl Iterator<Item = &EncryptedSource> {
        self.sources.iter().flatten().filter_map(|s| match s {
            Source::Encrypted(e) => Some(e),
            _ => None,
        })
    }
}

/// A standalone `<sources xmlns='urn:xmpp:sfs:0' id=.../>` attached to an earlier `<file-sharing/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesAttachment {
    /// The `id` of the `<file-sharing/>` it completes.
    pub id: Option<String>,
    /// The sources.
    pub sources: Vec<Source>,
}

impl SourcesAttachment {
    /// Parses `<sources xmlns='urn:xmpp:sfs:0'/>`.
    pub fn from_element(el: &Element) -> Result<Self, SfsError> {
        let sources = parse_sources(el, true)?;
        let id = el
            .attr("id")
            .map(|v| bounded_text(v, "sources", "id").map(str::to_owned))
            .transpose()?;
        Ok(SourcesAttachment { id, sources })
    }

    /// The `<sources/>` element.
    pub fn to_element(&self) -> Element {
        sources_element(self.id.as_deref(), &self.sources)
    }
}

fn expect(el: &Element, ns: &str, name: &str) -> Result<(), SfsError> {
    if el.is(name, ns) {
        Ok(())
    } else {
        Err(SfsError::UnexpectedElement {
            expected: format!("{{{ns}}}{name}"),
            got: qname(el),
        })
    }
}

fn bounded_text<'a>(
    v: &'a str,
    element: &'static str,
    what: &'static str,
) -> Result<&'a str, SfsError> {
    if v.len() > MAX_TEXT {
        Err(SfsError::TooLarge { element, what })
    } else {
        Ok(v)
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T, what: &'static str) -> Result<(), SfsError> {
    if slot.is_some() {
        return Err(SfsError::Invalid {
            element: what,
            what: "duplicate element",
        });
    }
    *slot = Some(v);
    Ok(())
}

fn number<T: std::str::FromStr>(text: &str, element: &'static str) -> Result<T, SfsError> {
    let t = text.trim();
    if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SfsError::Invalid {
            element,
            what: "number",
        });
    }
    t.parse().map_err(|_| SfsError::Invalid {
        element,
        what: "number",
    })
}

fn key_material(el: &Element, element: &'static str) -> Result<Vec<u8>, SfsError> {
    let text = el.text();
    if text.len() > MAX_KEY_MATERIAL * 2 {
        return Err(SfsError::TooLarge {
            element,
            what: "value",
        });
    }
    let v = B64.decode(text.trim()).map_err(|_| SfsError::Invalid {
        element,
        what: "base64 value",
    })?;
    if v.is_empty() {
        return Err(SfsError::Invalid {
            element,
            what: "empty value",
        });
    }
    Ok(v)
}

fn check_extra_size(el: &Element) -> Result<(), SfsError> {
    // Kept elements are bounded in depth and total text so that a sharing cannot smuggle a huge tree.
    if xmpp_social::xml::depth(el) > 8 {
        return Err(SfsError::TooLarge {
            element: "file",
            what: "nesting of unknown children",
        });
    }
    Ok(())
}

fn push_extra(extra: &mut Vec<Element>, c: &Element) -> Result<(), SfsError> {
    if extra.len() >= MAX_EXTRA {
        return Err(SfsError::TooLarge {
            element: "file",
            what: "unknown children",
        });
    }
    check_extra_size(c)?;
    extra.push(c.clone());
    Ok(())
}
