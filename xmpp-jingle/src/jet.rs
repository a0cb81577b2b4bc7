//! Jingle Encrypted Transports (XEP-0391) with OMEMO key transport (XEP-0396), feature `jet`.
//!
//! JET wraps a Jingle transport in AES-GCM: the initiator draws a transport key and IV (the transport
//! secret), sends them to the responder inside an end-to-end encrypted envelope in a
//! `<security xmlns='urn:xmpp:jingle:jet:0'/>` child of the Jingle `<content/>`, and the file bytes
//! cross the transport as the AES-GCM ciphertext followed by the 16-byte tag (so the transport carries
//! the file size plus 16 bytes; `<size/>`, ranges and hashes stay about the plaintext).
//!
//! Layers, from sans-IO to async:
//!
//! * [`Security`]: the `<security/>` element. The envelope (`<encrypted/>`) is kept as an element and
//!   written back unchanged. `name` is optional: Dino leaves it out.
//! * [`JetCipher`]: `urn:xmpp:ciphers:aes-128-gcm-nopadding:0` and the AES-256 variant. Both spellings
//!   are read (with `:0` as in XEP-0391's table, without as in its examples, XEP-0396's example,
//!   Conversations, Dino and Libervia); the form without `:0` is written, because Dino looks the
//!   cipher up by exact string and knows only that one.
//! * [`JetKey`]: a transport key and IV (redacted `Debug`), with the streaming adapters
//!   [`EncryptingReader`] (plaintext in; ciphertext, then the tag, out) and [`DecryptingWriter`]
//!   (ciphertext and tag in, plaintext out; the last 16 bytes are held back and checked at
//!   `shutdown`). Their output is byte for byte one-shot AES-GCM with empty associated data.
//! * [`key_transport_material`] / [`key_from_material`]: the OMEMO mapping (below), pure functions.
//! * [`seal`] / [`open`]: the async glue over an [`OmemoClient`]: build the `<security/>` for a peer
//!   (key transport to all its devices and the own other devices) and open a received one.
//! * File transfer: [`SendOptions::with_jet`] puts a sealed `<security/>` in an offer (or request) and
//!   the cipher between the file and the transport; [`IncomingOffer::security`],
//!   [`IncomingOffer::open_jet`] (or [`IncomingOffer::use_jet_key`]) do the receiving side, for
//!   `accept` and `serve` alike. [`DISCO_FEATURES`] are in [`crate::driver::FEATURES`] when the
//!   feature is on.
//!
//! # The OMEMO mapping
//!
//! **Legacy OMEMO** (`eu.siacs.conversations.axolotl`), as XEP-0396 describes and Conversations and
//! Dino do: a fresh 16-byte AES-128 key goes in the ratchet (`<key>`, no tag appended: what
//! Conversations sends for key transport) and a fresh 12-byte IV in the header's `<iv>`. When reading,
//! 16 bytes are the key; 32 bytes are key || tag (Libervia 0.9 encrypts a dummy payload and hands
//! over the payload key; Dino reads 32 bytes the same way) and the first 16 are the key; the `<iv>`
//! may be 12 bytes (Conversations, Libervia) or 16 bytes (Dino draws 16). Only AES-128 exists here.
//!
//! **OMEMO:2** (`urn:xmpp:omemo:2`): XEP-0396 is written for legacy OMEMO, and neither it nor the
//! deployed implementations define the OMEMO:2 case (Libervia 0.9 only does legacy JET; OMEMO:2 has
//! no `<iv>`, and its key-transport key material is 32 bytes). This crate's mapping: the ratchet
//! carries a fresh random 32-byte secret `S` (exactly the key of an OMEMO:2 key-transport message, so
//! python-omemo hands it over as `PlainKeyMaterial.key`), and
//! `HKDF-SHA-256(salt = 32 zero bytes, ikm = S, info = "JET-OMEMO " || cipher namespace with ":0",
//! L = key length + 12)` gives the transport key followed by the 12-byte IV. This follows OMEMO:2's own
//! payload derivation (HKDF with a zero salt and a purpose label), binds the cipher into the keys (the
//! same secret under another cipher name gives unrelated keys), and allows AES-256 too. When reading,
//! key material longer than 32 bytes (a sender that added a payload) is cut to its first 32 bytes.
//!
//! The responder must check that the envelope comes from the initiator (XEP-0391 §Security): [`open`]
//! takes the initiator's bare JID and looks the OMEMO session up under it, so an envelope made by
//! anyone else does not decrypt. As with any OMEMO message, a first key exchange binds the sender's
//! identity key rather than a JID: trust in the sending device is returned ([`Opened::trust`]) for
//! the application to judge.
//!
//! # Failed tags
//!
//! AES-GCM authenticates the whole stream only at its end. [`DecryptingWriter`] writes plaintext as
//! it comes (a file can be larger than memory), so when the tag does not verify, bytes were already
//! written: the caller must delete or flag them. The file-transfer driver fails the transfer and says
//! so in its error.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use hkdf::Hkdf;
use jid::BareJid;
use minidom::Element;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use xmpp_e2ee::files::gcm::{Encryptor, FileKey, TrailingTagDecryptor, TAG_LEN};
use xmpp_e2ee::files::FileCryptoError;
use xmpp_e2ee::omemo::{
    ClientError, DeviceAddress, Encrypted, ManagerError, OmemoClient, OmemoStore, Profile,
    SkipReason, TrustLevel,
};
use xmpp_social::xml::BuilderExt;
use xmpp_social::Connection;

use crate::driver::stage::{BoxRead, BoxWrite, Stage};
use crate::driver::{IncomingOffer, SendOptions};

/// XEP-0391 namespace (also its disco feature).
pub const NS_JET: &str = "urn:xmpp:jingle:jet:0";
/// XEP-0396 disco feature.
pub const NS_JET_OMEMO: &str = "urn:xmpp:jingle:jet-omemo:0";
/// The disco features to announce when JET with OMEMO is supported.
pub const DISCO_FEATURES: [&str; 2] = [NS_JET, NS_JET_OMEMO];

/// Length of the IV this crate draws (and of the IV derived for OMEMO:2).
pub const IV_LEN: usize = 12;
/// Length of the authentication tag after the ciphertext.
pub const JET_TAG_LEN: usize = TAG_LEN;

/// Longest `cipher`/`type` attribute kept in an error message.
const MAX_ECHO: usize = 128;
/// Pieces of ciphertext a [`DecryptingWriter`] takes at once.
const WRITE_CHUNK: usize = 64 * 1024;

/// Errors of JET.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JetError {
    /// The element is not a `<security xmlns='urn:xmpp:jingle:jet:0'/>`.
    #[error("not a JET <security/> element")]
    NotSecurity,
    /// A required attribute is missing.
    #[error("<security/> has no '{0}' attribute")]
    MissingAttribute(&'static str),
    /// No envelope (an element child in the `type` namespace) in `<security/>`.
    #[error("<security/> carries no envelope in its type's namespace")]
    NoEnvelope,
    /// The cipher is not one this crate implements.
    #[error("unknown JET cipher {0:?}")]
    UnknownCipher(String),
    /// The envelope type is not an OMEMO namespace (or not an enabled one).
    #[error("unknown JET envelope type {0:?}")]
    UnknownType(String),
    /// The cipher cannot be used with this envelope type (legacy OMEMO carries AES-128 only).
    #[error("cipher {cipher:?} cannot be used with {profile:?}")]
    CipherNotForType {
        /// The cipher.
        cipher: JetCipher,
        /// The OMEMO profile.
        profile: Profile,
    },
    /// The envelope is malformed.
    #[error("malformed envelope: {0}")]
    Envelope(#[from] xmpp_social::ParseError),
    /// The envelope has no key for this device.
    #[error("the envelope carries no key for this device")]
    NotForThisDevice,
    /// The transported key has a length the cipher and profile do not allow.
    #[error("transported key of {0} bytes")]
    BadKeyLength(usize),
    /// The IV is missing or has a length this crate does not accept (12 or 16 bytes).
    #[error("transport IV of {0} bytes")]
    BadIvLength(usize),
    /// OMEMO failed (no session, tampered, replayed, no trusted device...).
    #[error("OMEMO: {0}")]
    Omemo(#[from] ClientError),
    /// The AES-GCM tag at the end of the stream does not verify: data altered or wrong key. The
    /// plaintext already written must be discarded.
    #[error("JET authentication tag mismatch: transfer altered or wrong key")]
    TagMismatch,
    /// The stream ended before a whole tag.
    #[error("JET stream shorter than its authentication tag")]
    Truncated,
    /// The stream cipher refused (more data than one key and IV may protect).
    #[error("JET cipher: {0}")]
    Cipher(FileCryptoError),
}

impl JetError {
    /// The JET error inside an `io::Error` made by [`EncryptingReader`] or [`DecryptingWriter`].
    pub fn from_io(e: &io::Error) -> Option<&JetError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<JetError>())
    }

    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

fn cipher_err(e: FileCryptoError) -> JetError {
    match e {
        FileCryptoError::TagMismatch => JetError::TagMismatch,
        FileCryptoError::Truncated => JetError::Truncated,
        other => JetError::Cipher(other),
    }
}

fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

/// A JET cipher (XEP-0391 §Ciphers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JetCipher {
    /// `urn:xmpp:ciphers:aes-128-gcm-nopadding:0`: 16-byte key, 12-byte IV.
    Aes128Gcm,
    /// `urn:xmpp:ciphers:aes-256-gcm-nopadding:0`: 32-byte key, 12-byte IV.
    Aes256Gcm,
}

impl JetCipher {
    /// The namespace as written: without the `:0` suffix, the spelling of XEP-0391's and XEP-0396's
    /// examples and the only one Conversations and Dino recognise.
    pub fn urn(self) -> &'static str {
        match self {
            JetCipher::Aes128Gcm => "urn:xmpp:ciphers:aes-128-gcm-nopadding",
            JetCipher::Aes256Gcm => "urn:xmpp:ciphers:aes-256-gcm-nopadding",
        }
    }

    /// The namespace with its `:0` version, as in XEP-0391's cipher table.
    pub fn versioned_urn(self) -> &'static str {
        match self {
            JetCipher::Aes128Gcm => "urn:xmpp:ciphers:aes-128-gcm-nopadding:0",
            JetCipher::Aes256Gcm => "urn:xmpp:ciphers:aes-256-gcm-nopadding:0",
        }
    }

    /// The cipher of a namespace, in either spelling.
    pub fn from_urn(urn: &str) -> Option<Self> {
        match urn.strip_suffix(":0").unwrap_or(urn) {
            "urn:xmpp:ciphers:aes-128-gcm-nopadding" => Some(JetCipher::Aes128Gcm),
            "urn:xmpp:ciphers:aes-256-gcm-nopadding" => Some(JetCipher::Aes256Gcm),
            _ => None,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            JetCipher::Aes128Gcm => 16,
            JetCipher::Aes256Gcm => 32,
        }
    }
}

/// The `<security xmlns='urn:xmpp:jingle:jet:0' name cipher type>` element of a Jingle content.
#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    /// The content's name (XEP-0391; Dino leaves it out).
    pub name: Option<String>,
    /// The `cipher` attribute as received (see [`Security::cipher`]).
    pub cipher: String,
    /// The `type` attribute: the namespace of the envelope (an OMEMO namespace for XEP-0396).
    pub type_: String,
    /// The envelope element, kept as it came.
    pub envelope: Element,
}

impl Security {
    /// A `<security/>` for a content, cipher and envelope (its namespace becomes `type`).
    pub fn new(name: Option<&str>, cipher: JetCipher, envelope: Element) -> Security {
        Security {
            name: name.map(str::to_owned),
            cipher: cipher.urn().to_owned(),
            type_: envelope.ns(),
            envelope,
        }
    }

    /// Parses a `<security/>`. The envelope is the first element child in the `type` namespace.
    pub fn from_element(el: &Element) -> Result<Security, JetError> {
        if !el.is("security", NS_JET) {
            return Err(JetError::NotSecurity);
        }
        let cipher = el
            .attr("cipher")
            .ok_or(JetError::MissingAttribute("cipher"))?;
        let type_ = el.attr("type").ok_or(JetError::MissingAttribute("type"))?;
        let envelope = el
            .children()
            .find(|c| c.ns() == type_)
            .ok_or(JetError::NoEnvelope)?;
        Ok(Security {
            name: el.attr("name").map(str::to_owned),
            cipher: cipher.to_owned(),
            type_: type_.to_owned(),
            envelope: envelope.clone(),
        })
    }

    /// Finds and parses the `<security/>` among a content's children (`Ok(None)` when there is none).
    pub fn find_in(children: &[Element]) -> Result<Option<Security>, JetError> {
        children
            .iter()
            .find(|c| c.is("security", NS_JET))
            .map(Security::from_element)
            .transpose()
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("security", NS_JET);
        if let Some(name) = &self.name {
            b = b.a("name", name.as_str());
        }
        b.a("cipher", self.cipher.as_str())
            .a("type", self.type_.as_str())
            .append(self.envelope.clone())
            .build()
    }

    /// The cipher, when known.
    pub fn cipher(&self) -> Result<JetCipher, JetError> {
        JetCipher::from_urn(&self.cipher).ok_or_else(|| JetError::UnknownCipher(echo(&self.cipher)))
    }

    /// The OMEMO profile named by `type`, when it is one.
    pub fn profile(&self) -> Result<Profile, JetError> {
        Profile::from_namespace(&self.type_).ok_or_else(|| JetError::UnknownType(echo(&self.type_)))
    }
}

impl From<&Security> for Element {
    fn from(s: &Security) -> Element {
        s.to_element()
    }
}

/// A JET transport secret: cipher, key and IV. `Debug` never shows the key or IV.
#[derive(Clone, PartialEq, Eq)]
pub struct JetKey {
    cipher: JetCipher,
    key: FileKey,
    iv: Vec<u8>,
}

impl std::fmt::Debug for JetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetKey")
            .field("cipher", &self.cipher)
            .field("key", &"<redacted>")
            .field("iv", &"<redacted>")
            .finish()
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut out);
    out
}

impl JetKey {
    /// A key from its parts: the key length must fit the cipher, the IV be 12 or 16 bytes.
    pub fn new(cipher: JetCipher, key: &[u8], iv: &[u8]) -> Result<JetKey, JetError> {
        if key.len() != cipher.key_len() {
            return Err(JetError::BadKeyLength(key.len()));
        }
        if iv.len() != 12 && iv.len() != 16 {
            return Err(JetError::BadIvLength(iv.len()));
        }
        let key = FileKey::from_slice(key).map_err(|_| JetError::BadKeyLength(key.len()))?;
        Ok(JetKey {
            cipher,
            key,
            iv: iv.to_vec(),
        })
    }

    /// A fresh random key and 12-byte IV.
    pub fn generate(cipher: JetCipher) -> JetKey {
        let key = match cipher {
            JetCipher::Aes128Gcm => FileKey::random_aes128(),
            JetCipher::Aes256Gcm => FileKey::random_aes256(),
        };
        JetKey {
            cipher,
            key,
            iv: random_bytes::<IV_LEN>().to_vec(),
        }
    }

    /// The cipher.
    pub fn cipher(&self) -> JetCipher {
        self.cipher
    }

    /// The key bytes (secret).
    pub fn key_bytes(&self) -> &[u8] {
        self.key.as_bytes()
    }

    /// The IV (secret).
    pub fn iv(&self) -> &[u8] {
        &self.iv
    }

    /// How many transport bytes carry `plain` file bytes: the ciphertext and the tag.
    pub fn wire_len(plain: u64) -> u64 {
        plain.saturating_add(JET_TAG_LEN as u64)
    }

    /// Encrypts what `plain` yields: ciphertext, then the 16-byte tag.
    pub fn encrypting_reader<R: AsyncRead + Unpin>(&self, plain: R) -> EncryptingReader<R> {
        EncryptingReader {
            inner: plain,
            // Key and IV lengths were checked when the key was made.
            enc: Encryptor::new(&self.key, &self.iv).ok(),
            tag: [0; TAG_LEN],
            tag_pos: TAG_LEN,
            started: false,
        }
    }

    /// Decrypts the ciphertext-and-tag written to it into `plain`; the tag is checked at `shutdown`.
    pub fn decrypting_writer<W: AsyncWrite + Unpin>(&self, plain: W) -> DecryptingWriter<W> {
        DecryptingWriter {
            inner: plain,
            dec: TrailingTagDecryptor::new(&self.key, &self.iv).ok(),
            out: Vec::new(),
            out_pos: 0,
            state: WriterState::Open,
        }
    }
}

/// An `AsyncRead` that encrypts another: AES-GCM ciphertext of everything the inner reader yields,
/// then the 16-byte tag, then end of stream.
pub struct EncryptingReader<R> {
    inner: R,
    enc: Option<Encryptor>,
    tag: [u8; TAG_LEN],
    tag_pos: usize,
    started: bool,
}

impl<R> std::fmt::Debug for EncryptingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptingReader")
            .field("plaintext_len", &self.enc.as_ref().map(Encryptor::len))
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for EncryptingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if !this.started {
            this.started = true;
            if this.enc.is_none() {
                return Poll::Ready(Err(JetError::BadKeyLength(0).into_io()));
            }
        }
        if let Some(enc) = this.enc.as_mut() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let fresh = &mut buf.filled_mut()[before..];
            if !fresh.is_empty() {
                enc.update(fresh).map_err(|e| cipher_err(e).into_io())?;
                return Poll::Ready(Ok(()));
            }
            // End of the plaintext: the tag follows.
            if let Some(enc) = this.enc.take() {
                this.tag = enc.finish();
                this.tag_pos = 0;
            }
        }
        let rest = this.tag.get(this.tag_pos..).unwrap_or_default();
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.tag_pos += n;
        Poll::Ready(Ok(()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterState {
    Open,
    Verified,
    Failed,
}

/// An `AsyncWrite` that decrypts into another: takes the AES-GCM ciphertext followed by the 16-byte
/// tag, writes the plaintext to the inner writer as it comes (the last 16 bytes held back), and at
/// `shutdown` checks the tag: on mismatch `shutdown` fails with an `io::Error` of kind `InvalidData`
/// wrapping [`JetError::TagMismatch`] (or [`JetError::Truncated`]); see [`JetError::from_io`].
///
/// **Bytes written to the inner writer before a failed tag are not authentic and must be discarded
/// by the caller.** The inner writer is shut down only after the tag verified.
pub struct DecryptingWriter<W> {
    inner: W,
    dec: Option<TrailingTagDecryptor>,
    out: Vec<u8>,
    out_pos: usize,
    state: WriterState,
}

impl<W> std::fmt::Debug for DecryptingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingWriter")
            .field("state", &self.state)
            .field(
                "plaintext_len",
                &self.dec.as_ref().map(TrailingTagDecryptor::len),
            )
            .finish_non_exhaustive()
    }
}

impl<W> DecryptingWriter<W> {
    /// Whether the tag was checked and verified (after a successful `shutdown`).
    pub fn is_verified(&self) -> bool {
        self.state == WriterState::Verified
    }

    /// The inner writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: AsyncWrite + Unpin> DecryptingWriter<W> {
    /// Writes the decrypted bytes waiting in `out` to the inner writer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let pending = self.out.get(self.out_pos..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    fn failed() -> io::Error {
        JetError::TagMismatch.into_io()
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for DecryptingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        match this.state {
            WriterState::Open => {}
            WriterState::Failed => return Poll::Ready(Err(Self::failed())),
            WriterState::Verified => {
                return Poll::Ready(Err(io::Error::other("JET stream already ended")))
            }
        }
        let Some(dec) = this.dec.as_mut() else {
            return Poll::Ready(Err(JetError::BadKeyLength(0).into_io()));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let take = buf.len().min(WRITE_CHUNK);
        this.out.extend_from_slice(&buf[..take]);
        let n = match dec.update(&mut this.out) {
            Ok(n) => n,
            Err(e) => {
                this.out.clear();
                this.state = WriterState::Failed;
                return Poll::Ready(Err(cipher_err(e).into_io()));
            }
        };
        this.out.truncate(n);
        // Start writing now; what does not go through waits for the next call.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(take))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        match this.state {
            WriterState::Failed => return Poll::Ready(Err(Self::failed())),
            WriterState::Verified => {}
            WriterState::Open => {
                let Some(dec) = this.dec.take() else {
                    return Poll::Ready(Err(JetError::BadKeyLength(0).into_io()));
                };
                if let Err(e) = dec.finish() {
                    this.state = WriterState::Failed;
                    return Poll::Ready(Err(cipher_err(e).into_io()));
                }
                this.state = WriterState::Verified;
            }
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The HKDF label of the OMEMO:2 mapping for a cipher.
fn omemo2_info(cipher: JetCipher) -> Vec<u8> {
    let mut info = b"JET-OMEMO ".to_vec();
    info.extend_from_slice(cipher.versioned_urn().as_bytes());
    info
}

/// Length of the OMEMO:2 transport secret.
pub const OMEMO2_SECRET_LEN: usize = 32;

fn omemo2_derive(cipher: JetCipher, secret: &[u8]) -> Result<JetKey, JetError> {
    let hk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), secret);
    let mut okm = [0u8; 32 + IV_LEN];
    let len = cipher.key_len() + IV_LEN;
    let okm = okm.get_mut(..len).ok_or(JetError::BadKeyLength(len))?;
    hk.expand(&omemo2_info(cipher), okm)
        .map_err(|_| JetError::BadKeyLength(len))?;
    let (key, iv) = okm.split_at(cipher.key_len());
    let key = JetKey::new(cipher, key, iv);
    okm.fill(0);
    key
}

/// A fresh transport secret as OMEMO key transport carries it (see [`key_transport_material`]).
#[derive(Clone, PartialEq, Eq)]
pub struct TransportMaterial {
    /// The key material for the ratchet (secret).
    pub material: Vec<u8>,
    /// The legacy `<iv>` (secret); `None` for OMEMO:2.
    pub iv: Option<Vec<u8>>,
    /// The transport key the material stands for.
    pub key: JetKey,
}

impl std::fmt::Debug for TransportMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportMaterial")
            .field("material_len", &self.material.len())
            .field("iv_len", &self.iv.as_ref().map(Vec::len))
            .field("key", &self.key)
            .finish()
    }
}

/// Sans-IO half of [`seal`]: a fresh transport secret for `profile` and `cipher`, as the key material
/// (and legacy `<iv>`) to hand to OMEMO key transport, and the [`JetKey`] it stands for. See the
/// module docs for the mapping.
pub fn key_transport_material(
    profile: Profile,
    cipher: JetCipher,
) -> Result<TransportMaterial, JetError> {
    match profile {
        Profile::Legacy => {
            if cipher != JetCipher::Aes128Gcm {
                return Err(JetError::CipherNotForType { cipher, profile });
            }
            let key = JetKey::generate(cipher);
            Ok(TransportMaterial {
                material: key.key_bytes().to_vec(),
                iv: Some(key.iv.clone()),
                key,
            })
        }
        Profile::Omemo2 => {
            let secret: [u8; OMEMO2_SECRET_LEN] = random_bytes();
            let key = omemo2_derive(cipher, &secret)?;
            Ok(TransportMaterial {
                material: secret.to_vec(),
                iv: None,
                key,
            })
        }
    }
}

/// Sans-IO half of [`open`]: the [`JetKey`] from the key material (and legacy `<iv>`) OMEMO
/// delivered. See the module docs for what each profile carries.
pub fn key_from_material(
    profile: Profile,
    cipher: JetCipher,
    material: &[u8],
    iv: Option<&[u8]>,
) -> Result<JetKey, JetError> {
    match profile {
        Profile::Legacy => {
            if cipher != JetCipher::Aes128Gcm {
                return Err(JetError::CipherNotForType { cipher, profile });
            }
            let key = match material.len() {
                16 | 32 => material.get(..16).unwrap_or_default(),
                n => return Err(JetError::BadKeyLength(n)),
            };
            let iv = iv.ok_or(JetError::BadIvLength(0))?;
            JetKey::new(cipher, key, iv)
        }
        Profile::Omemo2 => {
            let secret = material
                .get(..OMEMO2_SECRET_LEN)
                .ok_or(JetError::BadKeyLength(material.len()))?;
            omemo2_derive(cipher, secret)
        }
    }
}

/// A `<security/>` made by [`seal`], with the key it carries.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The element to add to the Jingle content.
    pub security: Security,
    /// The transport key to encrypt with.
    pub key: JetKey,
    /// The devices that got the key.
    pub recipients: Vec<DeviceAddress>,
    /// The devices left out, and why.
    pub skipped: Vec<(DeviceAddress, SkipReason)>,
}

/// Builds the `<security/>` of a content (`name`) for `peer`: a fresh AES-128-GCM transport secret,
/// sent by OMEMO key transport in `profile` to every trusted device of `peer` (and the own other
/// devices). Fails when no device of `peer` can receive it.
pub async fn seal<C, S>(
    omemo: &OmemoClient<C, S>,
    profile: Profile,
    peer: &BareJid,
    name: Option<&str>,
) -> Result<Sealed, JetError>
where
    C: Connection,
    S: OmemoStore + Send + 'static,
{
    let cipher = JetCipher::Aes128Gcm;
    let TransportMaterial { material, iv, key } = key_transport_material(profile, cipher)?;
    let out = omemo
        .encrypt_key_transport(profile, peer, &material, iv.as_deref())
        .await?;
    Ok(Sealed {
        security: Security::new(name, cipher, Element::from(&out.encrypted)),
        key,
        recipients: out.recipients,
        skipped: out.skipped,
    })
}

/// What [`open`] found in a `<security/>`.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The transport key to decrypt with.
    pub key: JetKey,
    /// The OMEMO namespace of the envelope.
    pub profile: Profile,
    /// The sending device.
    pub sender: DeviceAddress,
    /// Trust in the sending device's identity key: the application decides what an untrusted key
    /// means for the transfer.
    pub trust: TrustLevel,
}

/// Opens a received `<security/>` sent by `initiator` (the bare JID of the session's initiator: the
/// envelope must be theirs): checks the cipher and type, decrypts the OMEMO key transport, and
/// derives the transport key.
pub async fn open<C, S>(
    omemo: &OmemoClient<C, S>,
    initiator: &BareJid,
    security: &Security,
) -> Result<Opened, JetError>
where
    C: Connection,
    S: OmemoStore + Send + 'static,
{
    let cipher = security.cipher()?;
    let profile = security.profile()?;
    if !security.envelope.is("encrypted", profile.namespace()) {
        return Err(JetError::NoEnvelope);
    }
    let encrypted = Encrypted::try_from(&security.envelope)?;
    if profile == Profile::Legacy && cipher != JetCipher::Aes128Gcm {
        return Err(JetError::CipherNotForType { cipher, profile });
    }
    if let Profile::Legacy = profile {
        let iv_len = encrypted.iv.as_ref().map(Vec::len).unwrap_or(0);
        if iv_len != 12 && iv_len != 16 {
            return Err(JetError::BadIvLength(iv_len));
        }
    }
    {
        let m = omemo.manager()?;
        if !m.config().profiles.contains(&profile) {
            return Err(JetError::UnknownType(echo(&security.type_)));
        }
        let own = m.own_jid().to_owned();
        if encrypted
            .keys_for(Some(&own), m.device_id())
            .next()
            .is_none()
        {
            return Err(JetError::NotForThisDevice);
        }
    }
    let transport = match omemo.decrypt_key_transport(initiator, &encrypted).await {
        Ok(t) => t,
        Err(ClientError::Manager(ManagerError::NotForThisDevice)) => {
            return Err(JetError::NotForThisDevice)
        }
        Err(e) => return Err(e.into()),
    };
    let key = key_from_material(
        profile,
        cipher,
        &transport.material,
        transport.iv.as_deref(),
    )?;
    Ok(Opened {
        key,
        profile,
        sender: transport.sender.clone(),
        trust: transport.trust,
    })
}

// ---- File transfer (the driver's stage seam) ----

/// The content name the driver gives file offers; [`seal`] it into `<security name>`.
pub const FILE_CONTENT_NAME: &str = "file";
/// The content name the driver gives file requests (for [`seal`] before `request_file_with`).
pub const REQUEST_CONTENT_NAME: &str = "file-request";

/// The JET cipher as a stage of the file-transfer driver.
struct JetStage(JetKey);

impl Stage for JetStage {
    fn wire_len(&self, plain: u64) -> u64 {
        JetKey::wire_len(plain)
    }
    fn wrap_reader<'a>(&self, plain: BoxRead<'a>) -> BoxRead<'a> {
        Box::new(self.0.encrypting_reader(plain))
    }
    fn wrap_writer<'a>(&self, plain: BoxWrite<'a>) -> BoxWrite<'a> {
        Box::new(self.0.decrypting_writer(plain))
    }
}

impl SendOptions {
    /// JET: adds the sealed `<security/>` to the offer (or request) and encrypts (or, for a request,
    /// decrypts) the file bytes with its key. The transport carries the file size plus 16 bytes.
    ///
    /// ```rust,no_run
    /// # use xmpp_jingle::{driver::{JingleClient, SendOptions}, ft::File, jet};
    /// # use xmpp_e2ee::omemo::{MemoryStore, OmemoClient, Profile};
    /// # async fn demo(
    /// #     jingle: JingleClient<xmpp_social::client::XmppClient>,
    /// #     omemo: OmemoClient<xmpp_social::client::XmppClient, MemoryStore>,
    /// #     peer: jid::Jid,
    /// #     mut reader: tokio::fs::File,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// let sealed = jet::seal(&omemo, Profile::Legacy, &peer.to_bare(), Some(jet::FILE_CONTENT_NAME)).await?;
    /// let opts = SendOptions::default().with_jet(&sealed);
    /// jingle.send_file_with(peer, File::named("photo.jpg", 1234), &mut reader, opts).await?;
    /// # Ok(()) }
    /// ```
    pub fn with_jet(mut self, sealed: &Sealed) -> Self {
        self.extra.push(sealed.security.to_element());
        self.stage = Some(std::sync::Arc::new(JetStage(sealed.key.clone())));
        self
    }
}

impl<C: Connection + Clone + 'static> IncomingOffer<C> {
    /// The offer's JET `<security/>`, if it has one (`Some(Err)` when it is malformed).
    pub fn security(&self) -> Option<Result<Security, JetError>> {
        Security::find_in(self.content_extra()).transpose()
    }

    /// Decrypts (or, when serving a request, encrypts) this transfer with `key`.
    pub fn use_jet_key(&mut self, key: &JetKey) {
        self.set_stage(std::sync::Arc::new(JetStage(key.clone())));
    }

    /// Opens the offer's `<security/>` with OMEMO ([`open`], the peer being the initiator) and sets
    /// the transfer's cipher: `Ok(None)` when the offer is not encrypted. On an error, do not accept
    /// the offer unencrypted (XEP-0391): [`reject`](Self::reject) it, e.g. with
    /// `ReasonCondition::SecurityError`.
    ///
    /// After [`accept`](Self::accept) fails with an I/O error for which [`JetError::from_io`] gives
    /// [`JetError::TagMismatch`] (see [`is_tag_failure`]), the bytes already written are not
    /// authentic: delete them.
    pub async fn open_jet<C2, S>(
        &mut self,
        omemo: &OmemoClient<C2, S>,
    ) -> Result<Option<Opened>, JetError>
    where
        C2: Connection,
        S: OmemoStore + Send + 'static,
    {
        let Some(security) = self.security().transpose()? else {
            return Ok(None);
        };
        let opened = open(omemo, &self.peer().to_bare(), &security).await?;
        self.use_jet_key(&opened.key);
        Ok(Some(opened))
    }
}

/// Whether a transfer failed because the JET tag did not verify (the data written must be discarded).
pub fn is_tag_failure(e: &crate::Error) -> bool {
    match e {
        crate::Error::Io(io) => matches!(
            JetError::from_io(io),
            Some(JetError::TagMismatch | JetError::Truncated)
        ),
        _ => false,
    }
}
